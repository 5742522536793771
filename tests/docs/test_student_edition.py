"""The student edition of the notebook: ``python docs/student.py`` removes every solution cell.

- every cell of a worked solution is tagged ``solution``: from each "**Solution.**" cell up to the next
  heading or exercise, text and code alike (so the command cannot leave half a solution behind);
- the command writes a valid notebook (nbformat) with no solution cell, no "Solution" text, and every
  other cell unchanged and in order; bad arguments are one line on stderr and exit status 2;
- (slow) the student edition executes in a kernel without error: no kept cell needs a solution's variables.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is part of the dev and docs extras")

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "docs" / "tutorial.ipynb"
SCRIPT = REPO / "docs" / "student.py"
EXERCISES = 3


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_every_solution_cell_is_tagged():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    inside, untagged, seen = False, [], 0
    for k, cell in enumerate(nb.cells):
        text = cell.source.lstrip()
        if cell.cell_type == "markdown" and text.startswith("**Solution"):
            inside, seen = True, seen + 1
        elif cell.cell_type == "markdown" and re.match(r"#{1,6} ", text):
            inside = False  # the next section or exercise
        if inside and "solution" not in tags(cell):
            untagged.append(k)
    assert seen == EXERCISES
    assert not untagged, f"cells of a worked solution without the tag 'solution': {untagged}"


def run(*args, cwd):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_student_command_removes_every_solution(tmp_path):
    result = run("--out", str(tmp_path / "student.ipynb"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    original = nbformat.read(NOTEBOOK, as_version=4)
    student = nbformat.read(tmp_path / "student.ipynb", as_version=4)
    nbformat.validate(student)
    assert not [c for c in student.cells if "solution" in tags(c)]
    assert not [c for c in student.cells if "**Solution" in c.source]
    kept = [c for c in original.cells if "solution" not in tags(c)]
    assert [c.source for c in student.cells] == [c.source for c in kept]
    assert len(student.cells) < len(original.cells)
    exercises = [c for c in student.cells if c.cell_type == "markdown" and c.source.startswith("### Exercise")]
    assert len(exercises) == EXERCISES  # the questions stay


def test_clear_outputs_and_bad_arguments(tmp_path):
    assert run("--out", "s.ipynb", "--clear-outputs", cwd=tmp_path).returncode == 0
    student = nbformat.read(tmp_path / "s.ipynb", as_version=4)
    assert all(not c.outputs for c in student.cells if c.cell_type == "code")
    missing = run("--notebook", str(tmp_path / "nope.ipynb"), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nope.ipynb" in missing.stderr
    same = run("--notebook", str(NOTEBOOK), "--out", str(NOTEBOOK), cwd=tmp_path)
    assert same.returncode == 2 and "overwrite" in same.stderr


@pytest.mark.slow
def test_student_edition_executes(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    assert run("--out", str(tmp_path / "student.ipynb"), "--clear-outputs", cwd=tmp_path).returncode == 0
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = nbformat.read(tmp_path / "student.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(REPO / "docs")}}).execute()
