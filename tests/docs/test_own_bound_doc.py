"""docs/own_bound.md: the "test your own bound" snippet runs as a user would run it (pytest on a file of
its own) and is falsified with the counterexample the page shows."""
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "own_bound.md"


def snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "docs/own_bound.md should hold exactly one python block"
    return blocks[0]


def test_snippet_is_short():
    code = [line for line in snippet().splitlines() if line.strip()]
    assert len(code) <= 16


def test_own_bound_snippet_is_falsified_as_documented(tmp_path):
    (tmp_path / "test_my_bound.py").write_text(snippet())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_bound.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # the conjecture is false
    # hypothesis words its own report differently across releases; the instance's repr is ours
    assert "inst=instance_from_dict({" in out, out
    shown = re.search(r"```\nAssertionError: (.*?)```", DOC.read_text(), flags=re.S).group(1)
    for line in shown.strip().splitlines():  # the page shows exactly what the user sees
        assert line.strip() in out, line
