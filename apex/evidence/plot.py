"""Plot a replay: running accuracy of each method against questions seen."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from apex.evidence.replay import ReplayReport


def plot_replay(
    report: ReplayReport | Sequence[ReplayReport], path: str | os.PathLike[str]
) -> Path:
    """Write a PNG of running accuracies; returns its path.

    Baselines (oracle, best single, plain majority) come from the first report; each report adds
    its policy curve, labelled by whether it learned from ground truth, so a replay with and one
    without ground truth of the same panel and seed can share one figure.
    """
    reports = [report] if isinstance(report, ReplayReport) else list(report)
    if not reports:
        raise ValueError("plot_replay needs at least one report")
    base = reports[0]
    seen = [p.seen for p in base.curve]
    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        ax.plot(seen, [p.oracle for p in base.curve], ":", color="grey", label="oracle")
        ax.plot(
            seen,
            [p.best_single for p in base.curve],
            "--",
            color="tab:green",
            label=f"best single ({base.best_single_model})",
        )
        ax.plot(seen, [p.majority for p in base.curve], "-.", color="tab:red", label="majority")
        for rep in reports:
            mode = "with ground truth" if rep.ground_truth else "without ground truth"
            ax.plot(
                [p.seen for p in rep.curve],
                [p.policy for p in rep.curve],
                linewidth=2,
                label=f"policy, {mode} ({rep.policy:.2f}%)",
            )
        ax.set_xlabel("questions seen")
        ax.set_ylabel("running accuracy (%)")
        ax.set_title(f"{len(base.panel)}-model panel, seed {base.seed}: {Path(base.source).name}")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, fontsize="small")
        out = Path(path)
        fig.savefig(out, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return out
