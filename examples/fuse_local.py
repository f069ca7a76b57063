"""Fuse three SmolLM2 samples offline with the shipped ``local`` workflow, from Python.

.venv/bin/python examples/fuse_local.py "Why is the sky blue?"
"""

from __future__ import annotations

import sys

import apex.fusion


def main() -> None:
    """Run one fusion cycle and print the answer, the path that produced it and the analysis."""
    prompt = " ".join(sys.argv[1:]) or "Why is the sky blue? Answer in two sentences."
    result = apex.fusion.fuse_sync(prompt, workflow="local")
    print(f"[{result.synthesis_path}] {result.answer}")
    print(result.analysis.model_dump_json(indent=2))


if __name__ == "__main__":
    main()
