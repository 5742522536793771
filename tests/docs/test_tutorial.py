"""The classroom notebook: docs/tutorial.ipynb (committed executed) paired with docs/tutorial.py.

The script runs headless and saves its plots; the notebook executes in a real Jupyter kernel
(nbclient + ipykernel, part of the dev extra) without any error and shows its plots inline; the two
files hold the same cells; the notebook cites docs/theory.md.
"""
import os
import runpy
from pathlib import Path

import matplotlib
import pytest

from experiments.claims._common import single_thread

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docs" / "tutorial.py"
NOTEBOOK = REPO / "docs" / "tutorial.ipynb"
FIGURES = ("mixing_distributions", "expansion_remainder", "relu_approximation", "relu_robustness_chain",
           "robustness_chain", "rho2", "rademacher", "alpha_panel")
INLINE_PLOTS = 7  # every figure above but the slider's, which lives in the widget state
EXERCISES = 3


def _images(nb) -> int:
    return sum("image/png" in out.get("data", {}) for c in nb.cells if c.cell_type == "code" for out in c.outputs)


def _errors(nb) -> list:
    return [out for c in nb.cells if c.cell_type == "code" for out in c.outputs if out.output_type == "error"]


def test_tutorial_runs_headless_and_saves_its_plots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIXUP_TUTORIAL_OUT", str(tmp_path / "plots"))
    backend = matplotlib.get_backend()
    try:
        with single_thread():
            runpy.run_path(str(SCRIPT), run_name="__main__")  # its own asserts check each step
    finally:
        matplotlib.use(backend)
    for name in FIGURES:
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0


def test_notebook_executes_in_a_kernel_without_error(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MIXUP_TUTORIAL_OUT", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "docs")}})
    client.execute()  # raises CellExecutionError on the first failing cell (an assert included)
    assert not _errors(nb)
    assert _images(nb) >= INLINE_PLOTS
    assert not list((REPO / "docs").glob("tutorial_figures")), "notebook mode must not write plot files"


def test_committed_notebook_is_executed_and_in_sync_with_the_script():
    nbformat = pytest.importorskip("nbformat")
    jupytext = pytest.importorskip("jupytext")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    script = jupytext.read(SCRIPT)
    assert [(c.cell_type, c.source) for c in nb.cells] == [(c.cell_type, c.source) for c in script.cells], \
        "docs/tutorial.ipynb and docs/tutorial.py differ: run `jupytext --sync docs/tutorial.py`"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "commit the notebook executed (with outputs)"
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "executed top to bottom in one run"
    assert not _errors(nb)
    assert _images(nb) >= INLINE_PLOTS
    streams = [o.text for c in code for o in c.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert not streams, f"warnings in the committed notebook: {streams}"


def test_notebook_teaches_the_relu_model_and_has_exercises_with_solutions():
    jupytext = pytest.importorskip("jupytext")
    nb = jupytext.read(SCRIPT)
    md = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "ReLU" in md and "## 4. The paper's main model: a bias-free ReLU network" in md
    assert md.count("### Exercise") >= EXERCISES and md.count("**Solution.**") >= EXERCISES
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]  # text and code (docs/student.py)
    assert sum(c.cell_type == "code" for c in solutions) >= EXERCISES
    assert sum(c.source.startswith("**Solution.**") for c in solutions) >= EXERCISES
    assert "ipywidgets" in "\n".join(c.source for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", [SCRIPT, NOTEBOOK], ids=lambda p: p.name)
def test_tutorial_cites_docs_theory_md(path):
    """Its references resolve inside the repository (tests/docs/test_docs.py checks every tracked file)."""
    text = path.read_text(encoding="utf-8")
    assert "[`docs/theory.md`](theory.md)" in text and "§4.4" in text
