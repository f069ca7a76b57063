"""``apex feedback RUN_ID --correct | --wrong [--answer X]``: ground truth after the fact."""

from __future__ import annotations

from typing import Annotated

import typer

from apex.cli.common import bad_input, console, guarded


@guarded
def feedback(
    run_id: Annotated[
        str, typer.Argument(help="The run id printed by apex fuse (`apex runs` lists them).")
    ],
    correct: Annotated[
        bool | None, typer.Option("--correct/--wrong", help="Was the run's answer right?")
    ] = None,
    answer: Annotated[str | None, typer.Option(help="The right answer, when known.")] = None,
    db: Annotated[str | None, typer.Option(help="Evidence store URL.")] = None,
) -> None:
    """Record whether a run's answer was right; each panel member's record is updated."""
    if correct is None and answer is None:
        bad_input("say what was right: --correct, --wrong, or --answer X")
    from apex.cli.stores import open_store
    from apex.feedback import record_feedback

    with open_store(db, write=False) as store:  # feedback needs the run: the store must exist
        added = record_feedback(store, run_id, correct=correct, answer=answer)
    if added == 0:
        console.print(f"nothing new: feedback on {run_id} was already recorded, or says nothing")
    else:
        console.print(f"recorded {added} ground-truth event(s) for run {run_id}")
