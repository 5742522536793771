"""Smoke tests of the benchmark harness (benchmarks/): tiny cases, the report, the measurement.

Speed is measured by ``python -m benchmarks``, never here; these only keep the harness from rotting.
"""
import math
import os

import pytest
import torch

from benchmarks import cases
from benchmarks.run import NODES, report, slope, suites

ALLOC_MIB = 80


def test_slope_recovers_a_power_law():
    ns = [10, 30, 100, 300]
    assert math.isclose(slope(ns, [3.0 * n ** 2 for n in ns]), 2.0, rel_tol=1e-12)
    assert math.isclose(slope(ns, [0.5 * n ** 0.5 for n in ns]), 0.5, rel_tol=1e-12)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
def test_peak_memory_sees_torch_allocations():
    def allocate():
        t = torch.ones(ALLOC_MIB * 2 ** 20 // 8, dtype=torch.float64)
        return float(t[-1])

    _, t = cases.timed(allocate)
    assert t["peak_kind"] == "added"
    assert t["peak_mib"] >= 0.9 * ALLOC_MIB


def test_tiny_cases_and_report():
    n = 24
    res = {
        "linear": [{"case": "roofline", "params": {"elements": n * n * NODES}, **cases.roofline(n * n * NODES, 256)},
                   {"case": "exact_linear", "params": {"n": n}, **cases.exact_linear(n, d=3, nodes=NODES)}],
        "shortcut": [{"case": "exact_mlp", "params": {"n": n, "d": 100, "shortcut": s},
                      **cases.exact_mlp(n, 100, hidden=8, shortcut=s, nodes=4)} for s in (True, False)],
        "expansion": [{"case": "expansion", "params": {"n": n, "d": 5, "model": m},
                       **cases.expansion(n, 5, model=m, hidden=8)} for m in ("relu", "tanh")],
        "kinks": [{"case": "exact_kinks", "params": {"n": n, "d": 5}, **cases.exact_kinks(n, d=5, hidden=8, nodes=8)},
                  {"case": "exact_kinks", "params": {"n": n, "d": 4, "widths": [6, 6]},
                   **cases.exact_kinks(n, d=4, widths=[6, 6], nodes=8)}],
    }
    a, b = (r["value"] for r in res["shortcut"])
    assert abs(a - b) <= 1e-12 * abs(b)  # the shortcut is exact
    text, targets = report(res)
    assert "softplus roofline" in text and "First-layer shortcut" in text and "mixup_expansion" in text
    assert "kink-aware" in text
    assert res["kinks"][0]["bound_rel"] <= 1e-12 < res["kinks"][0]["nodes_rel_error"]  # 8 nodes miss the kinks
    assert res["kinks"][1]["bound_rel"] <= 1e-12 and "4-6-6-1" in text
    assert {name.split(":")[0].split(" n=")[0] for name, _, _ in targets} >= {"linear exact loss"}
    assert res["expansion"][0]["r3"] == 0.0 and res["expansion"][1]["r3"] != 0.0


def test_separated_cases_and_report():
    res = [{"case": "separated", "params": {"n": n}, **cases.separated(n)} for n in (40_000, 400_000)]
    res.append({"case": "separated", "params": {"n": 300, "margin": 15.0, "alpha": 0.2, "beta": 3.0},
                **cases.separated(300, margin=15.0, alpha=0.2, beta=3.0)})
    res.append({"case": "separated_vs_pairs", "params": {"n": 40}, **cases.separated_vs_pairs(40, draws=20)})
    res.append({"case": "mixup_minimiser", "params": {"n": 200}, **cases.mixup_minimiser(200)})
    vs = res[3]
    assert vs["rel_diff"] <= 1e-12  # separated vs all pairs (nodes doubled) agree
    assert vs["mc_seconds_equal"] > 1e6 * vs["wall_s"]  # sampling to 1e-12 is hopeless
    assert all(r["bound_rel"] <= 1e-12 for r in res[:3])
    text, targets = report({"separated": res})
    assert "Linear-time exact mixup_loss" in text and "time(4e5)/time(4e4)" in text
    assert "exact Mixup minimiser" in text


def test_attack_case_and_report():
    res = [{"case": "attack", "params": {"n": 40, "norm": nm}, **cases.attack(40, d=5, hidden=8, classes=3, norm=nm)}
           for nm in (2.0, math.inf)]
    assert all(r["passes"] == 31 and r["local_cpu_s"] > 0 for r in res)
    text, _ = report({"attack": res})
    assert "textbook PGD-10" in text and " inf " in text


def test_quick_plan_is_a_subset_of_sizes():
    quick, full = suites(True), suites(False)
    assert set(quick) == set(full) == {"linear", "mlp", "kinks", "shortcut", "separated", "expansion", "certified",
                                            "attack"}
    assert max(p.get("n", 0) for k, v in quick.items() if k != "separated" for _, p in v) <= 3000
    assert max(p["n"] for _, p in quick["separated"]) <= 400_000  # linear-time: large n stays quick


def test_figures_times_table_reads_run_folders(tmp_path):
    import json

    from benchmarks.figures_times import table

    (tmp_path / "data").mkdir()
    for name, n, sec in (("a", 3, 1.5), ("b", 2, 4.0)):
        (tmp_path / "data" / f"{name}.json").write_text(json.dumps(
            {"figure": name, "configs": [{}] * n, "seconds": sec, "execution": {"jobs": 2, "threads": 1,
                                                                              "wall_seconds": 9.0}}))
    text = table(tmp_path, loads=(1.0, 2.0))
    assert text.startswith("wall 9 s for 5 configurations (jobs 2, threads 1); load average 1.0 before")
    assert "| a | 3 | 1.5 |" in text and "| b | 2 | 4.0 |" in text
