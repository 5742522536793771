"""``benchmarks/gpu_check.py`` stays runnable without a GPU: the ``--device cpu --small`` dry run goes
through every stage's code (the CUDA-only one is skipped with its reason) and writes its JSON and
Markdown; a budget too small for a stage stops it and still writes the file. Speed is measured on a
GPU by the script itself, never here."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu_check.py")


def _run(tmp_path, *argv):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    env.pop("OUT", None)
    proc = subprocess.run([sys.executable, SCRIPT, "--out", str(tmp_path), "--cpu-threads", "1", *argv],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "gpu_check.json") as fh:
        report = json.load(fh)
    return report, (tmp_path / "gpu_check.md").read_text(), {s["name"]: s for s in report["stages"]}


def test_dry_run_covers_every_stage(tmp_path):
    from benchmarks.gpu_check import STAGES

    report, md, stages = _run(tmp_path, "--device", "cpu", "--small")
    assert list(stages) == list(STAGES)
    for name in ("env", "kinks", "separated_1e6", "separated_1e7", "ensemble_epoch", "figures_gpu"):
        assert stages[name]["status"] == "done", (name, stages[name]["reason"])
    assert stages["syncs"]["status"] == "skipped" and "CUDA" in stages["syncs"]["reason"]
    env = stages["env"]["results"]
    assert env["torch"] and env["numpy"] and env["scipy"] and env["python"]
    kinks = stages["kinks"]["results"]
    # the kink-aware value against the 64-node rule, an independent quadrature of the same integral
    assert kinks["nodes64_rel_error"] < 1e-6
    assert kinks["reference_value"] == kinks["device_value_at_reference_n"]  # CPU vs CPU: the same value
    for name in ("separated_1e6", "separated_1e7"):
        r = stages[name]["results"]
        assert r["value"] == pytest.approx(r["reference_value"], rel=1e-12)
    assert stages["separated_1e6"]["results"]["separated_tensor_value"] == pytest.approx(
        stages["separated_1e6"]["results"]["value"], rel=1e-12)
    assert stages["ensemble_epoch"]["results"]["models"] == 4
    assert list(stages["figures_gpu"]["results"]["figures"]) == ["rademacher"]
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    assert [r.split("|")[1].strip() for r in rows] == list(STAGES)


def test_exhausted_budget_stops_the_stage_and_still_writes(tmp_path):
    report, md, stages = _run(tmp_path, "--device", "cpu", "--budget", "3", "--only", "separated_1e7")
    assert list(stages) == ["env", "separated_1e7"]
    stage = stages["separated_1e7"]  # 0.44 s of the 3 s; n = 10⁷ takes about 12 s on a CPU
    assert stage["status"] == "stopped" and "budget" in stage["reason"]
    assert stage["results"]["stage_seconds"] < 3 + 2  # stopped near its budget
    assert "| separated_1e7 | stopped |" in md
