"""``mixup-theory check``: JSON schema, exit status, idempotent ``--write`` of paper_checks.md, helpers."""
import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

from experiments import check, cli
from experiments.claims import CLAIM_IDS, STATUSES, Result, run_check
from experiments.claims import _common

REPO = Path(__file__).resolve().parents[2]
MIN_FIT_RTOL = 1e-4  # L-BFGS and Nelder–Mead minima of a smooth 3-parameter loss


def _run_cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Two full runs writing a copy of paper_checks.md: (exit code, JSON results, text after run 1, after run 2)."""
    path = tmp_path_factory.mktemp("checks") / "paper_checks.md"
    shutil.copy(REPO / "paper_checks.md", path)
    code, out = _run_cli(["check", "--json", "--write", "--file", str(path)])
    first = path.read_text(encoding="utf-8")
    code2, _ = _run_cli(["check", "--write", "--file", str(path)])
    second = path.read_text(encoding="utf-8")
    return code, json.loads(out), first, second, code2


def _all_rows(results):
    for r in results:
        yield r
        yield from r.get("subchecks", [])


def test_json_lists_every_claim_once_with_allowed_fields(written):
    _, results, *_ = written
    assert [r["id"] for r in results] == list(CLAIM_IDS)
    for r in _all_rows(results):
        assert r["status"] in STATUSES
        assert isinstance(r["command"], str) and r["command"].strip()
        assert isinstance(r["measured"], (dict, str)) and r["measured"]
        if r["status"] == "skipped":
            assert "skipped" in str(r["measured"])  # the reason is given


def test_exit_status_is_one_exactly_when_a_claim_expected_to_hold_fails(written):
    code, results, _, _, code2 = written
    failing = [r["id"] for r in _all_rows(results) if r["status"] == "fails" and r["expected"] == "holds"]
    assert code == (1 if failing else 0)
    assert code2 == code


def test_empirical_claims_never_fail_and_exact_ones_never_are_not_reproduced(written):
    from experiments.claims import EMPIRICAL

    _, results, *_ = written
    for r in _all_rows(results):
        if r["id"] in EMPIRICAL:
            assert r["status"] in ("holds", "not-reproduced", "skipped"), r
            if r["status"] == "not-reproduced":
                assert "[" in r["reason"] and "seeds" in r["reason"]  # the interval that shows it
        else:
            assert r["status"] != "not-reproduced", r["id"]


def test_write_is_idempotent(written):
    _, _, first, second, _ = written
    assert first == second


def test_write_changes_only_status_and_measured_cells(written):
    _, _, first, _, _ = written
    original = (REPO / "paper_checks.md").read_text(encoding="utf-8").split("\n")
    new = first.split("\n")
    header = next(k for k, ln in enumerate(new) if ln.startswith("| ID |"))
    cols = [c.strip() for c in new[header].strip("|").split("|")]
    keep = [k for k, c in enumerate(cols) if c not in ("Status", "Measured")]
    assert len(new) >= len(original)
    for a, b in zip(original, new):
        if a.startswith("| C"):
            ca, cb = ([c.strip() for c in s.strip().strip("|").split("|")] for s in (a, b))
            assert [ca[k] for k in keep] == [cb[k] for k in keep]
        else:
            assert a == b


def test_table_has_a_row_and_figure_link_per_claim():
    text = (REPO / "paper_checks.md").read_text(encoding="utf-8")
    rows = {ln.split("|")[1].strip(): ln for ln in text.split("\n") if ln.startswith("| C")}
    for cid in CLAIM_IDS:
        assert cid in rows, cid
    for name in ("approximation", "approximation_order", "robustness_chain", "robust_accuracy", "regularizer",
                 "rademacher", "generalization_gap"):
        assert f'src="figures/{name}.png"' in text
    for sub in ("C9/paper-alpha<=1", "C9/paper-vs-exact", "C7/relu-random", "C7/relu-abs"):
        assert sub in rows


def test_every_result_has_its_own_row_in_the_committed_table(written):
    """No row is appended by --write: each result (sub-rows and C6 fixtures included) is already in the table."""
    _, results, *_ = written
    text = (REPO / "paper_checks.md").read_text(encoding="utf-8")
    rows = {ln.split("|")[1].strip() for ln in text.split("\n") if ln.startswith("| C")}
    assert {r["id"] for r in _all_rows(results)} <= rows


def test_table_cites_existing_tests():
    """Every pytest id named in the Tests column exists (file and function)."""
    text = (REPO / "paper_checks.md").read_text(encoding="utf-8")
    import re

    ids = re.findall(r"`(tests/(?:theory|experiments|docs)/test_\w+\.py)::(\w+)", text)
    assert ids
    for path, name in ids:
        source = (REPO / path).read_text(encoding="utf-8")
        assert re.search(rf"def {name}\b", source), f"{path}::{name}"


# ----------------------------------------------------------------------------- unit pieces

TABLE = """intro | not a table
| ID | Claim | Status | Measured |
|---|---|---|---|
| C1 | identity | old | old |
| C2 | expansion | old | old |

after"""


def test_update_markdown_replaces_cells_and_appends_new_rows():
    results = [Result("C1", "holds", {"x": 1, "y": "a|b"}, "cmd1"),
               Result("C2", "fails", "oops", "cmd2", subchecks=[Result("C2/sub", "expected-fail", {"z": 2}, "c", "fails")])]
    out = check.update_markdown(TABLE, results)
    lines = out.split("\n")
    assert lines[0] == "intro | not a table"
    assert lines[3] == "| C1 | identity | ✅ holds | x: 1; y: a&#124;b |"
    assert lines[4] == "| C2 | expansion | ❌ fails | oops |"
    assert lines[5] == "| C2/sub |  | ⚠️ expected-fail | z: 2 |"
    assert lines[-1] == "after"
    assert check.update_markdown(out, results) == out


def test_update_markdown_without_table_raises():
    with pytest.raises(ValueError, match="Status"):
        check.update_markdown("no table here", [])


@pytest.mark.parametrize("ok,expected,status", [(True, "holds", "holds"), (False, "holds", "fails"),
                                                (False, "fails", "expected-fail"), (True, "fails", "holds")])
def test_verdict(ok, expected, status):
    assert _common.verdict(ok, expected) == status


def test_missing_data_is_skipped_and_errors_fail(monkeypatch):
    from experiments import claims

    def missing():
        raise _common.Skip("no cached figures/data/demo.csv")

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(claims, "_registry", lambda: {"C1": missing, "C2": broken})
    skipped, failed = run_check("C1"), run_check("C2")
    assert skipped.status == "skipped" and "demo.csv" in skipped.measured
    assert failed.status == "fails" and "boom" in failed.measured and failed.unexpected_failure


SEEDS = range(5)
"""Constructed per-seed figure data: 5 paired seeds, as at default scale."""


def _robust_csv(path, effect):
    """robust_accuracy.csv rows: standard accuracy 0.5 + seed noise, Mixup = standard + effect[seed] at ε > 0."""
    lines = ["dataset,model,method,alpha,seed,attack,eps,accuracy"]
    for s in SEEDS:
        base = 0.5 + 0.03 * ((s * 7) % 5 - 2)  # seed-to-seed variation cancels in the pairs
        lines += [f"digits,mlp,standard,,{s},fgsm_linf,0.0,0.99", f"digits,mlp,standard,,{s},fgsm_linf,0.1,{base}",
                  f"digits,mlp,mixup,1.0,{s},fgsm_linf,0.0,0.99",
                  f"digits,mlp,mixup,1.0,{s},fgsm_linf,0.1,{base + effect[s]}"]
    path.write_text("\n".join(lines) + "\n")


def test_cached_figure_data_is_parsed_into_paired_intervals(tmp_path, monkeypatch):
    """C8 and C12 read the figure CSVs (written here by hand): paired t intervals against scipy, decisions
    from the interval (not the sign of the mean), source and scale named."""
    from scipy import stats as sps

    from experiments.claims import generalization, robustness

    monkeypatch.setattr(_common, "FIGURE_DATA", tmp_path)
    (tmp_path / "robust_accuracy.json").write_text('{"scale": "smoke"}')
    effect = [0.02, 0.03, 0.025, 0.035, 0.03]  # clearly positive: supported
    _robust_csv(tmp_path / "robust_accuracy.csv", effect)
    c8 = robustness.check_c8()
    expected = sps.ttest_1samp(effect, 0.0).confidence_interval(0.95)
    key = next(iter(c8.measured))
    text = c8.measured[key]["digits/fgsm_linf/alpha=1"]
    assert f"{expected.low:+.3g}" in text and f"{expected.high:+.3g}" in text and "supported" in text
    assert c8.status == "holds" and "scale smoke" in c8.measured["source"]
    _robust_csv(tmp_path / "robust_accuracy.csv", [0.05, -0.04, 0.06, -0.03, 0.01])  # mean > 0, interval spans 0
    c8 = robustness.check_c8()
    assert c8.status == "not-reproduced" and "inconclusive" in c8.reason and not c8.unexpected_failure
    _robust_csv(tmp_path / "robust_accuracy.csv", [-0.02, -0.03, -0.025, -0.035, -0.03])
    assert "contradicted" in robustness.check_c8().reason

    lines = ["dataset,method,alpha,seed,n,loss_gap"]
    for s in SEEDS:
        lines += [f"d,standard,,{s},50,{0.5 + 0.1 * s}", f"d,mixup,1.0,{s},50,{0.2 + 0.1 * s}",
                  f"d,standard,,{s},400,{0.1}", f"d,mixup,1.0,{s},400,{0.15 + 0.01 * s}"]
    (tmp_path / "generalization_gap.csv").write_text("\n".join(lines) + "\n")
    c12 = generalization.check_c12()
    per_seed = [((0.3) + (0.1 - 0.15 - 0.01 * s)) / 2 for s in SEEDS]  # mean over n of standard − Mixup
    ci = sps.ttest_1samp(per_seed, 0.0).confidence_interval(0.95)
    text = c12.measured[next(iter(c12.measured))]["d/alpha=1"]
    assert f"{np.mean(per_seed):+.3g}" in text and f"{ci.low:+.3g}" in text
    assert c12.status == ("holds" if ci.low > 0 else "not-reproduced")
    smallest = c12.measured["reduction at the smallest and largest n (alpha=1)"]["d"]
    assert "+0.3" in smallest["n=50"] and "supported" in smallest["n=50"]  # constant pairs: zero-width interval


def test_missing_columns_skip_instead_of_crashing(tmp_path, monkeypatch):
    from experiments.claims import robustness

    monkeypatch.setattr(_common, "FIGURE_DATA", tmp_path)
    (tmp_path / "robust_accuracy.csv").write_text("dataset,method,attack,eps,accuracy\nd,mixup,fgsm,0.1,0.5\n")
    with pytest.raises(_common.Skip, match="seed"):
        robustness.check_c8()


# ----------------------------------------------------------------------------- statuses and exit codes

def _fake_registry(monkeypatch, statuses: dict):
    from experiments import claims

    def make(cid, status, expected="holds"):
        return lambda: Result(cid, status, {"value": 1}, f"cmd {cid}", expected=expected,
                              reason=f"why {cid}" if status != "holds" else "")

    reg = {cid: make(cid, *(st if isinstance(st, tuple) else (st,))) for cid, st in statuses.items()}
    monkeypatch.setattr(claims, "_registry", lambda: reg)
    monkeypatch.setattr(claims, "CLAIM_IDS", tuple(reg))
    return reg


@pytest.mark.parametrize("statuses,code,strict_code", [
    ({"C1": "holds", "C2": ("expected-fail", "fails")}, 0, 0),
    ({"C1": "holds", "C3": "not-reproduced"}, 0, 1),
    ({"C1": "fails", "C3": "not-reproduced"}, 1, 1),
    ({"C1": "skipped", "C2": "holds"}, 0, 0),
])
def test_exit_status_by_status(monkeypatch, statuses, code, strict_code):
    _fake_registry(monkeypatch, statuses)
    ids = list(statuses)
    got, out = _run_cli(["check", "--only", *ids])
    assert got == code
    assert _run_cli(["check", "--strict", "--only", *ids])[0] == strict_code
    summary = out.split("checked in")[1]
    for cid, st in statuses.items():
        status = st[0] if isinstance(st, tuple) else st
        named = f"why {cid}" in summary
        assert named == (status in ("fails", "not-reproduced", "skipped")), (cid, status)
    got_json, text = _run_cli(["check", "--json", "--only", ",".join(ids)])
    rows = json.loads(text)
    assert got_json == code and [r["id"] for r in rows] == ids
    for r in rows:
        assert {"id", "status", "measured", "command"} <= r.keys() and r["status"] in STATUSES


def test_only_rejects_unknown_ids_with_exit_two(capsys):
    assert cli.main(["check", "--only", "C99"]) == 2
    err = capsys.readouterr().err
    assert "C99" in err and err.count("\n") == 1


def test_commands_run_on_a_cpu():
    from experiments.claims import COMMANDS

    text = (REPO / "paper_checks.md").read_text(encoding="utf-8")
    assert "--scale paper" not in text
    assert all("--scale paper" not in c and "cuda" not in c for c in COMMANDS.values())


def test_empirical_verdict():
    assert _common.empirical_verdict("supported") == "holds"
    assert _common.empirical_verdict("contradicted") == "not-reproduced"
    assert _common.empirical_verdict("inconclusive") == "not-reproduced"
    with pytest.raises(ValueError, match="decision"):
        _common.empirical_verdict("maybe")


def test_mixup_fit_logistic_matches_derivative_free_minimum():
    """The L-BFGS Mixup minimiser of C3 (gradients through the separated method) equals a Nelder–Mead
    minimum of theory.mixup_loss over all pairs (an independent path, no gradients)."""
    import theory
    from experiments.claims.identity import mixup_fit_logistic

    X, y = _common.two_moons(30, seed=3)
    p = mixup_fit_logistic(X, y, 1.0)

    def objective(v):
        return theory.mixup_loss(theory.linear_model(2, weight=v[:2], intercept=v[2:]), X, y, 1.0, method="pairs")

    res = optimize.minimize(objective, np.zeros(3), method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000})
    assert objective(p) <= res.fun * (1 + 1e-9)
    np.testing.assert_allclose(p, res.x, rtol=MIN_FIT_RTOL, atol=MIN_FIT_RTOL)


def test_counterexamples_are_package_data():
    """The C6 fixtures load through importlib.resources (so `check --only C6` works from a wheel)."""
    names = [p.name for p in _common.counterexample_files()]
    assert names == sorted(f"c6_{s}.json" for s in ("intercept", "non_centered", "outside_theta", "relu_biases"))
    assert all(json.loads(p.read_text())["y"] for p in _common.counterexample_files())


def test_reproduce_lines_say_where_pytest_commands_run(monkeypatch):
    """In an installed wheel (no tests/ beside the package) a pytest reproduce line says it needs the
    source repository; in a checkout it is the bare command."""
    from experiments import check

    cmd = "python -m pytest -q tests/theory/test_manifold.py"
    assert check.tests_available() and check.reproduce_text(cmd) == cmd
    monkeypatch.setattr(check, "tests_available", lambda: False)
    assert "source repository" in check.reproduce_text(cmd)
    assert check.reproduce_text("mixup-theory figures rademacher") == "mixup-theory figures rademacher"


def test_check_prints_no_raw_warning_and_counts_the_expected_ones(capfd, monkeypatch):
    """C6's instances are built to violate an assumption: their AssumptionWarnings are counted in the C6
    row (once per robustness_bound call on such an instance), never printed; the rows say what their
    status means."""
    import warnings

    import theory
    from experiments.claims import robustness

    calls = []
    real = theory.robustness_bound

    def counting(*args, **kwargs):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = real(*args, **kwargs)
        calls.append(sum(issubclass(x.category, theory.AssumptionWarning) for x in w))
        for x in w:
            warnings.warn_explicit(x.message, x.category, x.filename, x.lineno)
        return out

    monkeypatch.setattr(theory, "robustness_bound", counting)
    assert cli.main(["check", "--only", "C6"]) == 0
    out, err = capfd.readouterr()
    assert "Warning:" not in err and "warnings.warn" not in err, err
    assert re.search(rf"expected warnings: (\d+ ApproximationWarning, )?{sum(calls)} AssumptionWarning", out)
    assert "(instances built to violate an assumption; off the assumptions the expansion" in out
    assert sum(calls) > 0 and "counterexample found (expected)" in out


def test_data_source_names_the_scale_and_the_seeds():
    from experiments.claims._common import data_source

    assert data_source("robust_accuracy", {"scale": "default", "seed": [0, 1, 2, 3, 4]}) == \
        "cached figures/data/robust_accuracy.csv (scale default, seeds 0-4)"
    assert data_source("approximation", {"scale": "smoke", "seed": [1, 0]}).endswith("(scale smoke, seeds 0, 1)")
    assert data_source("x", None).endswith("(scale unknown, seeds unknown)")


def test_smoke_scale_never_writes_the_committed_figures(tmp_path, monkeypatch, fake):
    """Only the default scale writes figures/; the others write figures/SCALE/ unless --out says otherwise."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["figures", "fake_demo", "--scale", "smoke", "--no-progress", "--jobs", "1"]) == 0
    assert (tmp_path / "figures" / "smoke" / "fake_demo.png").is_file()
    assert not (tmp_path / "figures" / "fake_demo.png").exists()
    assert cli.main(["figures", "fake_demo", "--no-progress", "--jobs", "1"]) == 0
    assert (tmp_path / "figures" / "fake_demo.png").is_file()
