"""Workflow files: shipped ones load, bad ones fail with one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from apex.errors import WorkflowFileError
from apex.workflow import load_workflow, parse_workflow, shipped_workflows


def test_shipped_workflows_load() -> None:
    names = shipped_workflows()
    assert "local" in names
    for name in names:
        assert load_workflow(name).panel


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "x"\n[[panel]]\nmodel = 3\n', "panel[0].model"),
        ('name = "x"\n[[panel]]\nmodel = "nocolon"\n[judge]\nmodel="a:b"', "panel[0].model"),
        ('name = "x"\n[[panel]]\nmodel = "a:b"\n', "needs a [judge]"),
        ('name = "x"\npanel = []\n', "panel"),
        ('name = "x"\nbogus = 1\n[[panel]]\nmodel = "a:b"\n[judge]\nmodel="a:b"', "bogus"),
        ('name = "x"\n[[panel]]\nmodel = "a:b"\n[judge]\nmodel="a:b"\n[providers.p]\n', "base_url"),
        ("name = = 1", "not valid TOML"),
    ],
)
def test_bad_workflow_errors_name_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(WorkflowFileError) as info:
        load_workflow(path)
    message = str(info.value)
    assert str(path) in message and needle in message and "\n" not in message


def test_unknown_workflow_lists_shipped() -> None:
    with pytest.raises(WorkflowFileError, match=r"shipped: .*local"):
        load_workflow("no-such-workflow")


def test_readme_workflow_example_is_valid() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("## Workflow files")[1].split("```toml")[1].split("```")[0]
    workflow = parse_workflow(block, "README.md")
    assert workflow.name == "lab" and workflow.judge is not None
    assert workflow.prices["lab:m1"].output_per_mtok == 1.5
