"""Shared test settings: hypothesis profiles (derandomized ``ci`` when CI is set) and torch threads."""
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# The tests use small problems, where one thread is several times faster than two on a 2-core
# machine (thread start-up dominates, and oversubscription is costly on a loaded box).
torch.set_num_threads(1)


N_TASKS = 5
"""Tasks of the ``fake`` figure."""


@pytest.fixture
def fake(monkeypatch):
    """A registered figure ``fake_demo`` whose ``compute`` records each call (``x`` of its task) in the
    returned list; ``compute`` sleeps ``fake_demo.SLEEP`` seconds (0 unless a test sets it)."""
    import sys
    import time
    import types

    from experiments import registry
    from experiments.figures import style

    calls = []
    m = types.ModuleType("experiments.figures.fake_demo")
    m.NAME, m.CLAIMS, m.TITLE, m.VERSION, m.SLEEP = "fake_demo", "C0", "demo", 1, 0.0
    m.tasks = lambda scale: [{"x": k, "seed": 0} for k in range(N_TASKS)]

    def compute(task, ctx):
        calls.append(task["x"])
        time.sleep(m.SLEEP)
        return {"y": task["x"] ** 2}

    def plot(rows, summary):
        fig, axes = style.subplots()
        axes[0].plot([r["x"] for r in rows], [r["y"] for r in rows], "o-", label="y = x²")
        axes[0].legend()
        style.suptitle(fig, "C0", "demo")
        return fig

    m.compute, m.plot = compute, plot
    m.rows = lambda task, result: [{"x": task["x"], "y": result["y"]}]
    m.summarize = lambda rows: {"total": sum(r["y"] for r in rows)}
    monkeypatch.setattr(registry, "FIGURES", registry.FIGURES + ["fake_demo"])
    monkeypatch.setitem(sys.modules, "experiments.figures.fake_demo", m)
    return calls
