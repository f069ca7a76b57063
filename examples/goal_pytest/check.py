"""Verifier for the example goal: the answer's Python code must make test_solution.py pass.

APEX runs this as the goal's shell verifier; the answer is in ``$APEX_ANSWER_FILE``. Exit 0 means
the goal is met; whatever pytest prints becomes the feedback for the next cycle.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def code_of(answer: str) -> str:
    """The first fenced code block of the answer, or the whole answer."""
    found = re.search(r"```(?:python|py)?\s*\n(.*?)```", answer, re.DOTALL)
    return found.group(1) if found else answer


def main() -> int:
    """Write the answer's code next to the tests and run pytest on them."""
    answer = Path(os.environ["APEX_ANSWER_FILE"]).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "solution.py").write_text(code_of(answer), encoding="utf-8")
        shutil.copy(HERE / "test_solution.py", tmp)
        command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", tmp]
        return subprocess.run(command, cwd=tmp, check=False, timeout=60).returncode


if __name__ == "__main__":
    sys.exit(main())
