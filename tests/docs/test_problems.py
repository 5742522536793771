"""The problem sheet docs/problems.md: every Python block of its solutions runs, in order, as printed.

The blocks share one namespace (the first block imports what the others use), exactly as a student
pasting them into one session would. A block that raises — an assertion of a solution included —
fails the test with the block's number and first line.
"""
import re
from pathlib import Path

import pytest

from experiments.claims._common import single_thread

PAGE = Path(__file__).resolve().parents[2] / "docs" / "problems.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
MIN_PROBLEMS = 8  # the notebook's three exercises and at least five more


def blocks() -> list[str]:
    return BLOCK.findall(PAGE.read_text(encoding="utf-8"))


def test_the_sheet_has_enough_problems_with_solutions():
    text = PAGE.read_text(encoding="utf-8")
    problems = re.findall(r"^## Problem \d+", text, re.M)
    solutions = re.findall(r"^:::\{admonition\} Solution", text, re.M)
    assert len(problems) >= MIN_PROBLEMS and len(solutions) == len(problems)
    assert "hypothesis" in text and "@given" in text  # at least one property test


def test_every_solution_block_runs():
    namespace: dict = {"__name__": "problems"}
    with single_thread():
        for k, code in enumerate(blocks()):
            try:
                exec(compile(code, f"docs/problems.md, block {k}", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 - reported with the block that raised
                pytest.fail(f"block {k} ({code.splitlines()[0]!r}) raised {type(exc).__name__}: {exc}")
