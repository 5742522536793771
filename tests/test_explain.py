"""``mixup-theory explain``: runs for every dataset/model pair, in the order of the argument, deterministically."""
import contextlib
import io
import math

import numpy as np
import pytest

from experiments import cli
from experiments.explain import DATASETS, MODELS, explain, load_small

N_SMALL = 24  # training points per problem: keeps the nine runs to a few seconds
QUADRATURE_RTOL = 1e-4  # identity (I) with 64-node rules on trained nets (measured ≤ 3e-5 relative)
SECTIONS = ["1. Data", "2. Mixing distributions", "3. Model", "4. The Mixup loss as a pair sum",
            "5. Second-order expansion", "6. Robustness", "7. Generalization", "8. Rademacher complexity"]


def _explain(data, model, alpha=1.0, n=N_SMALL):
    lines = []
    values = explain(data, model, alpha, n=n, out=lines.append)
    return values, lines


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("data", DATASETS)
def test_explain_runs_in_order_with_sources(data, model):
    values, lines = _explain(data, model)
    positions = [next(k for k, ln in enumerate(lines) if ln.startswith(s)) for s in SECTIONS]
    assert positions == sorted(positions)
    quantity_lines = [ln for ln in lines if ln.startswith("  ") and ln.strip()]
    assert quantity_lines
    for ln in quantity_lines:  # each quantity names its docs/theory.md section, or is an explanatory note
        assert ln.rstrip().endswith("]") or "n/a" in ln or "for a net" in ln, ln
    assert not any("n/a (theory." in ln for ln in lines)  # no module missing
    # independent checks of a few printed values
    X, y = load_small(data, N_SMALL)
    assert float(values["max abs(x_bar)"]) < 1e-12
    assert values["m_1 = E_D~[1-lambda]"] == pytest.approx(1 / 3, rel=1e-12)
    assert values["m_2 = E_D~[(1-lambda)^2]"] == pytest.approx(1 / 6, rel=1e-12)
    identity_gap = values["abs(L_mix - RHS(I))"]
    if model == "logistic":  # smooth in λ: Gauss–Jacobi converges geometrically
        assert identity_gap == "<1e-12"
    else:  # nets: the two sides use different quadrature rules; ReLU kinks converge only algebraically
        assert identity_gap == "<1e-12" or identity_gap <= QUADRATURE_RTOL * values["L_mix (exact)"]
    exact, approx = values["L_mix (exact)"], values["L~_mix = L_std + R1+R2+R3"]
    assert values["relative error"] == pytest.approx(abs(exact - approx) / exact, rel=1e-12)
    assert values["L~_mix = L_std + R1+R2+R3"] == pytest.approx(
        values["L_std"] + values["R1"] + values["R2"] + values["R3"], rel=1e-12)
    assert values["rank Sigma_hat"] == np.linalg.matrix_rank(X)
    assert values["Rad(ellipsoid theta'S0 theta<=c)"] <= values["  bound sqrt(c rank / n)"] * 1.05
    if model != "tanh":
        assert values["R3"] == 0.0  # piecewise linear: zero input Hessian


def test_explain_alpha_above_one_gives_finite_rho2_and_paper_form():
    values, _ = _explain("two_moons", "logistic", alpha=2.0)
    assert values["rho_2 = E_D~[((1-l)/l)^2]"] == pytest.approx(3.0, rel=1e-12)  # docs/theory.md §1
    assert math.isfinite(values["Reg paper form"])
    values1, _ = _explain("two_moons", "logistic", alpha=1.0)
    assert math.isinf(values1["Reg paper form"])


def test_explain_is_deterministic_and_runs_from_the_cli():
    _, lines = _explain("breast_cancer", "relu")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["explain", "--data", "breast_cancer", "--model", "relu", "--n", str(N_SMALL)])
    assert code == 0
    assert out.getvalue().rstrip("\n").split("\n") == lines


def test_explain_rejects_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        explain("two_moons", "logistic", -1.0, out=lambda s: None)
    with pytest.raises(ValueError, match="data"):
        explain("mnist", "logistic", 1.0, out=lambda s: None)
    with pytest.raises(ValueError, match="model"):
        explain("two_moons", "resnet", 1.0, out=lambda s: None)
