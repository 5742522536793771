"""The tutorial (docs/tutorial.py) runs as a plain script and parses as a jupytext percent notebook."""
import runpy
from pathlib import Path

import matplotlib

from experiments.claims._common import single_thread

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.py"
FIGURES = ("mixing_distributions", "expansion_remainder", "robustness_chain", "rademacher")


def test_tutorial_runs_and_saves_its_plots(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIXUP_TUTORIAL_OUT", str(tmp_path / "plots"))
    backend = matplotlib.get_backend()
    try:
        with single_thread():
            runpy.run_path(str(TUTORIAL), run_name="__main__")  # its own asserts check each step
    finally:
        matplotlib.use(backend)
    for name in FIGURES:
        assert (tmp_path / "plots" / f"{name}.png").stat().st_size > 0


def test_tutorial_is_a_percent_format_notebook():
    import jupytext

    nb = jupytext.read(TUTORIAL)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds.count("markdown") >= 8 and kinds.count("code") >= 10
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# How does Mixup help")
