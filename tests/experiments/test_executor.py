"""How the figure runner executes tasks: worker processes, ensembles of training runs cached per
configuration (resume, --force), the --jobs option and the thread policy."""
import json
import sys
import types

import pytest

import theory

from experiments import registry
from experiments.cli import main
from experiments.figures import executor, runner, style
from experiments.training import TrainConfig, train

SEEDS = (0, 1, 2, 3, 4)
TRAIN = {"dataset": "two_moons", "model": "mlp", "hidden": [8], "n_train": 48, "epochs": 2, "batch_size": 16,
         "lr": 0.05}


@pytest.fixture
def trained_demo(monkeypatch):
    """A registered figure whose tasks each train one small MLP (standard and Mixup, five seeds)."""
    m = types.ModuleType("experiments.figures.trained_demo")
    m.NAME, m.CLAIMS, m.TITLE, m.VERSION = "trained_demo", "C0", "demo", 1
    m.tasks = lambda scale: [{**TRAIN, "method": meth, "seed": s} for meth in ("standard", "mixup") for s in SEEDS]
    m.train_config = lambda task, ctx: task

    def compute(task, ctx):
        from experiments.figures._common import train_run

        r = train_run(task, ctx.device)
        return {"test_loss": r.history[-1]["test_loss"], "pid": __import__("os").getpid()}

    def plot(rows, summary):
        fig, axes = style.subplots()
        axes[0].plot([r["seed"] for r in rows], [r["test_loss"] for r in rows], "o")
        style.suptitle(fig, "C0", "demo")
        return fig

    m.compute, m.plot = compute, plot
    m.rows = lambda task, result: [{"seed": task["seed"], "method": task["method"], **result}]
    m.summarize = lambda rows: {"n": len(rows)}
    monkeypatch.setattr(registry, "FIGURES", registry.FIGURES + ["trained_demo"])
    monkeypatch.setitem(sys.modules, "experiments.figures.trained_demo", m)
    return m


def _alone(task):
    return train(TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in task.items()},
                             device="cpu")).history[-1]["test_loss"]


def test_ensembles_in_workers_equal_training_alone_and_cache_per_configuration(trained_demo, tmp_path):
    rep = runner.run(["trained_demo"], out=tmp_path, progress=False, jobs=2, device="cpu")["trained_demo"]
    assert (rep.computed, rep.cached) == (10, 0)
    data = json.loads((tmp_path / "data" / "trained_demo.json").read_text())
    assert data["execution"]["jobs"] == 2 and data["execution"]["threads"] == 1
    rows = data["rows"]
    assert len({r["pid"] for r in rows}) == 2  # two worker processes shared the ensemble
    for task, row in zip(trained_demo.tasks("default"), rows):
        assert row["test_loss"] == pytest.approx(_alone(task), abs=2e-5)
    entries = sorted((tmp_path / ".cache").glob("*.json"))
    assert len(entries) == 10  # one entry per configuration, not per ensemble
    assert {json.loads(p.read_text())["meta"]["ensemble"] for p in entries} == {5}
    entries[3].unlink()
    rep = runner.run(["trained_demo"], out=tmp_path, progress=False, jobs=2, device="cpu")["trained_demo"]
    assert (rep.computed, rep.cached) == (1, 9)
    again = json.loads((tmp_path / "data" / "trained_demo.json").read_text())["rows"]
    assert [r["test_loss"] for r in again] == pytest.approx([r["test_loss"] for r in rows], abs=2e-5)
    rep = runner.run(["trained_demo"], out=tmp_path, progress=False, jobs=1, force=True)["trained_demo"]
    assert (rep.computed, rep.cached) == (10, 0)


class Interrupt(Exception):
    pass


def test_interrupted_parallel_run_resumes(trained_demo, tmp_path):
    seen = []

    def stop(name, task, computed):
        seen.append(task["seed"])
        if len(seen) == 3:
            raise Interrupt

    with pytest.raises(Interrupt):
        runner.run(["trained_demo"], out=tmp_path, progress=False, jobs=2, device="cpu", on_task=stop)
    stored = len(list((tmp_path / ".cache").glob("*.json")))
    assert 3 <= stored < 10 and not (tmp_path / "data" / "trained_demo.json").exists()
    rep = runner.run(["trained_demo"], out=tmp_path, progress=False, jobs=2, device="cpu")["trained_demo"]
    assert (rep.computed, rep.cached) == (10 - stored, stored)


@pytest.fixture
def warning_demo(monkeypatch):
    """A registered figure whose tasks warn: an expected finding at odd seeds, an unexpected warning
    (the same text at every seed) at seeds ≥ 2, a RuntimeWarning at seed 3."""
    m = types.ModuleType("experiments.figures.warning_demo")
    m.NAME, m.CLAIMS, m.TITLE, m.VERSION = "warning_demo", "C0", "demo", 1
    m.EXPECTED_WARNINGS = {"assumption fails": theory.AssumptionWarning}
    m.tasks = lambda scale: [{"seed": s} for s in range(6)]

    def compute(task, ctx):
        import warnings

        for _ in range(2):  # emitted twice per task, as a figure calling a theory function twice does
            if task["seed"] % 2:
                warnings.warn(f"assumption A2 fails at seed {task['seed']}", theory.AssumptionWarning)
        if task["seed"] >= 2:
            warnings.warn("something unexpected", UserWarning)
        if task["seed"] == 3:
            warnings.warn("overflow in demo", RuntimeWarning)
        return {"value": float(task["seed"])}

    def plot(rows, summary):
        fig, axes = style.subplots()
        axes[0].plot([r["seed"] for r in rows], "o")
        style.suptitle(fig, "C0", "demo")
        return fig

    m.compute, m.plot = compute, plot
    m.rows = lambda task, result: [{"seed": task["seed"], **result}]
    m.summarize = lambda rows: {"n": len(rows)}
    monkeypatch.setattr(registry, "FIGURES", registry.FIGURES + ["warning_demo"])
    monkeypatch.setitem(sys.modules, "experiments.figures.warning_demo", m)
    return m


@pytest.mark.parametrize("jobs", [1, 2])
def test_expected_warnings_are_counted_and_others_summarised_never_printed(warning_demo, tmp_path, capfd, jobs):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rep = runner.run(["warning_demo"], out=tmp_path, progress=False, jobs=jobs, device="cpu")["warning_demo"]
    err = capfd.readouterr().err
    assert "assumption" not in err and "unexpected" not in err  # no worker printed anything
    assert not caught  # nothing raw: the unexpected ones are summarised in words on the figure's line
    recorded = json.loads((tmp_path / "data" / "warning_demo.json").read_text())["warnings"]
    assert recorded["expected"] == {"assumption fails": 3}  # configurations (seeds 1, 3, 5), not emissions
    assert sorted((w["message"], w["configurations"]) for w in recorded["unexpected"]) == [
        ("overflow in demo", 1), ("something unexpected", 4)]
    note = runner.warnings_note(rep)
    assert rep.warnings == recorded and "assumption fails (3 configs)" in note
    assert "2 warnings not expected by this figure: 1 UserWarning (e.g. something unexpected); 1 RuntimeWarning" in note
    with warnings.catch_warnings(record=True) as again:  # from the cache: counted again, not re-shown
        warnings.simplefilter("always")
        rep = runner.run(["warning_demo"], out=tmp_path, progress=False, jobs=jobs, device="cpu")["warning_demo"]
    assert rep.cached == 6 and rep.warnings == recorded and not again


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5", ""])
def test_bad_jobs_is_one_line_exit_2(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:  # argparse's own refusal (non-integers) exits directly
        code = main(["figures", "regularizer", "--jobs", bad, "--out", str(tmp_path), "--no-progress"])
        raise SystemExit(code)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--jobs" in err and "Traceback" not in err
    assert not (tmp_path / ".cache").exists()  # refused before any work


def test_jobs_policy_and_caps(monkeypatch):
    import torch

    monkeypatch.setattr(executor, "cores", lambda: 4)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert executor.policy("default", cpu, None, None) == (4, 1)
    assert executor.policy("smoke", cpu, 2, 3) == (2, 3)
    assert executor.policy("paper", cpu, None, None) == (1, None)
    assert executor.policy("default", cuda, 4, None) == (1, None)
    assert executor.max_jobs() == 4 * executor.PER_CPU


@pytest.mark.gpu_scale
@pytest.mark.slow  # ~100 s on the loaded 2-core machine (mnist1d generation, L_mix measurements)
def test_gpu_scale_tiny_on_cpu(tmp_path, monkeypatch):
    """The ``gpu`` scale's own figure, shrunk to seconds, through the same code path on the CPU."""
    from experiments.figures import training_at_scale as tas

    from experiments import measure

    monkeypatch.setitem(tas.SCALES, "gpu", {"num_samples": 100, "epochs": 2, "batch_size": 32, "seeds": [0, 1],
                                            "every": 1})
    monkeypatch.setitem(tas.MODELS, "mlp", {"hidden": [8, 8], "lr": 0.05})
    monkeypatch.setattr(measure, "SAMPLED_DRAWS", 4)  # the estimator's passes, read at call time
    rep = runner.run(["training_at_scale"], scale="gpu", out=tmp_path, progress=False, device="cpu")
    data = json.loads((tmp_path / "data" / "training_at_scale.json").read_text())
    assert rep["training_at_scale"].computed == 8 and data["execution"]["jobs"] == 1
    rows = data["rows"]
    assert {(r["model"], r["method"]) for r in rows} == {(m, k) for m in ("mlp", "cnn") for k in ("standard", "mixup")}
    assert all(r["n_train"] == 80 and r["epoch"] in (1, 2) for r in rows)
    for r in rows:  # exact where affordable (zero standard error), else sampled with a positive one
        assert (r["mixup_loss_kind"] == "exact") == (r["mixup_loss_stderr"] == 0.0) and r["mixup_loss"] > 0
    assert main(["figures", "training_at_scale", "--scale", "default", "--out", str(tmp_path)]) == 2


def test_units_start_longest_first():
    """Longest-processing-time-first: the figures' cost hooks and the training estimate order the units."""
    from experiments.figures import approximation_order, regularizer

    modules = {"approximation_order": approximation_order, "regularizer": regularizer}
    pending = [(name, i, t) for name, m in modules.items() for i, t in enumerate(m.tasks("default"))]
    units = executor.plan_units(pending, modules, runner.Context("default", "cpu"), jobs=2)
    by_figure = {name: [u for u in units if u.items[0][0] == name] for name in modules}
    first = by_figure["approximation_order"][0]
    assert first.items[0][2]["model"] == "tanh_mlp"  # the tanh MLPs' exact losses along the homotopies
    hooked = max(approximation_order.cost(t) for t in approximation_order.tasks("default"))
    assert first.cost == pytest.approx(hooked)  # the largest cost the figure's own hook names
    assert by_figure["regularizer"][0].items[0][2]["dataset"] == "breast_cancer"  # the largest data set
    assert [u.cost for u in units] == sorted((u.cost for u in units), reverse=True)
