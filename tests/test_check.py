"""``mixup-theory check``: JSON schema, exit status, idempotent ``--write`` of paper_checks.md, helpers."""
import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

from experiments import check, cli
from experiments.claims import CLAIM_IDS, STATUSES, Result, run_check
from experiments.claims import _common

REPO = Path(__file__).resolve().parents[1]
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

    ids = re.findall(r"`(tests/test_\w+\.py)::(\w+)", text)
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


def test_missing_code_is_skipped_and_errors_fail(monkeypatch):
    from experiments import claims

    def missing():
        _common.need("theory", "no_such_name")

    def broken():
        raise RuntimeError("boom")

    monkeypatch.setattr(claims, "_registry", lambda: {"C1": missing, "C2": broken})
    skipped, failed = run_check("C1"), run_check("C2")
    assert skipped.status == "skipped" and "theory.no_such_name" in skipped.measured
    assert failed.status == "fails" and "boom" in failed.measured and failed.unexpected_failure
    with pytest.raises(_common.Missing):
        _common.api("no_such_function")


def test_cached_figure_data_is_parsed(tmp_path, monkeypatch):
    """C8 and C12 read the figure CSVs (written here by hand) and name their source and scale."""
    from experiments.claims import generalization, robustness

    (tmp_path / "robust_accuracy.csv").write_text(
        "dataset,method,attack,eps,accuracy\n"
        "digits,standard,fgsm,0.0,0.99\ndigits,standard,fgsm,0.1,0.5\ndigits,mixup,fgsm,0.1,0.7\n")
    (tmp_path / "robust_accuracy.json").write_text('{"scale": "smoke"}')
    (tmp_path / "generalization_gap.csv").write_text(
        "dataset,method,n,loss_gap\nd,standard,50,0.5\nd,mixup,50,0.2\nd,standard,400,0.1\nd,mixup,400,0.15\n")
    monkeypatch.setattr(_common, "FIGURE_DATA", tmp_path)
    c8 = robustness.check_c8()
    assert c8.status == "holds"
    assert c8.measured["mean robust accuracy, Mixup minus standard (eps > 0)"] == {"digits/fgsm": 0.2}
    assert "scale smoke" in c8.measured["source"]
    c12 = generalization.check_c12()
    assert c12.status == "fails"  # the gap grows at n = 400
    assert c12.measured["test-train loss gap, standard minus Mixup, by n"] == {"d": {50: 0.3, 400: -0.05}}
    assert c12.measured["larger reduction at the smallest n"] == {"d": True}


def test_mixup_fit_logistic_matches_derivative_free_minimum():
    """The L-BFGS Mixup minimiser of C3 equals a Nelder–Mead minimum of theory.mixup_loss (independent path)."""
    import theory
    from experiments.claims.identity import mixup_fit_logistic

    X, y = _common.two_moons(30, seed=3)
    p = mixup_fit_logistic(X, y, 1.0)

    def objective(v):
        return theory.mixup_loss(theory.linear_model(2, weight=v[:2], intercept=v[2:]), X, y, 1.0, nodes=16)

    res = optimize.minimize(objective, np.zeros(3), method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-12, "maxiter": 4000})
    assert objective(p) <= res.fun * (1 + 1e-9)
    np.testing.assert_allclose(p, res.x, rtol=MIN_FIT_RTOL, atol=MIN_FIT_RTOL)


def test_counterexamples_are_package_data():
    """The C6 fixtures load through importlib.resources (so `check --only C6` works from a wheel)."""
    names = [p.name for p in _common.counterexample_files()]
    assert names == sorted(f"c6_{s}.json" for s in ("intercept", "non_centered", "outside_theta", "relu_biases"))
    assert all(json.loads(p.read_text())["y"] for p in _common.counterexample_files())
