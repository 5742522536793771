"""Mixing distributions (docs/theory.md §1): moments, ρ₂ and Gauss–Jacobi nodes against scipy."""
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from fractions import Fraction

from theory import MixupLambda
from theory._mixing import MAX_NODES

from _brute import beta_expect

RTOL = 1e-9  # quad (epsrel 1e-12) vs closed form
POLY_RTOL = 1e-10  # Gauss rule vs exact moments (rounding only)
SAMPLE_DRAWS = 20_000


def beta_moment(a, b, k):
    """``E_{Beta(a,b)} λ^k = Π_{j<k} (a+j)/(a+b+j)`` (rising factorials, not the library's Beta functions)."""
    return math.prod((a + j) / (a + b + j) for j in range(k))

ab = st.floats(0.05, 20.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=40)
@given(alpha=ab, beta=ab, k=st.sampled_from([0.5, 1.0, 2.0, 3.0]))
@example(alpha=0.05, beta=20.0, k=2.0)
@example(alpha=10.0, beta=13.0, k=0.5)
def test_m_matches_quadrature_of_tilde_density(alpha, beta, k):
    # E_D̃(1−λ)^k = E_Beta(α,β)[λ(1−λ)^k + (1−λ)λ^k]; the non-integer powers go into quad's weight
    opts = dict(weight="alg", epsabs=1e-15, epsrel=1e-12, limit=400)
    left = integrate.quad(lambda t: t, 0, 1, wvar=(alpha - 1, beta - 1 + k), **opts)[0]
    right = integrate.quad(lambda t: 1 - t, 0, 1, wvar=(alpha - 1 + k, beta - 1), **opts)[0]
    ref = (left + right) / math.exp(special.betaln(alpha, beta))
    assert MixupLambda(alpha, beta).m(k) == pytest.approx(ref, rel=RTOL, abs=1e-15)


@settings(max_examples=40)
@given(alpha=ab, beta=ab)
def test_m1_closed_form(alpha, beta):
    assert MixupLambda(alpha, beta).m(1) == pytest.approx(
        2 * alpha * beta / ((alpha + beta) * (alpha + beta + 1)), rel=1e-13)


@settings(max_examples=30)
@given(alpha=ab)
def test_symmetric_moments_closed_form(alpha):
    mix = MixupLambda(alpha)
    assert mix.beta == alpha
    assert mix.m(1) == pytest.approx(alpha / (2 * alpha + 1), rel=1e-13)
    assert mix.m(2) == pytest.approx(alpha * (alpha + 1) / ((2 * alpha + 1) * (2 * alpha + 2)), rel=1e-13)


def test_uniform_mixing_moments():
    mix = MixupLambda(1.0)
    assert mix.m(1) == pytest.approx(1 / 3, rel=1e-14)
    assert mix.m(2) == pytest.approx(1 / 6, rel=1e-14)
    assert mix.m(0) == pytest.approx(1.0, rel=1e-14)


def test_m_rejects_negative_order():
    with pytest.raises(ValueError, match="k"):
        MixupLambda(1.0).m(-1)


@settings(max_examples=40)
@given(alpha=st.floats(1.05, 20.0), beta=st.floats(1.05, 20.0))
def test_rho2_matches_quadrature(alpha, beta):
    # E_D̃[((1−λ)/λ)²] = E_Beta(α,β)[(1−λ)²/λ + λ²/(1−λ)]: fold 1/λ and 1/(1−λ) into quad's weight
    norm = math.exp(special.betaln(alpha, beta))
    opts = dict(weight="alg", epsabs=1e-14, epsrel=1e-12, limit=400)
    left = integrate.quad(lambda t: (1 - t) ** 2, 0, 1, wvar=(alpha - 2, beta - 1), **opts)[0]
    right = integrate.quad(lambda t: t ** 2, 0, 1, wvar=(alpha - 1, beta - 2), **opts)[0]
    ref = (left + right) / norm
    assert MixupLambda(alpha, beta).rho2() == pytest.approx(ref, rel=1e-8)


def test_rho2_reference_values():
    assert MixupLambda(2.0).rho2() == pytest.approx(3.0, rel=1e-13)
    assert MixupLambda(4.0).rho2() == pytest.approx(5 / 3, rel=1e-13)


@given(alpha=st.floats(0.05, 1.0), beta=ab, swap=st.booleans())
@example(alpha=1.0, beta=1.0, swap=False)
@example(alpha=1.0, beta=5.0, swap=False)
@example(alpha=1.0, beta=5.0, swap=True)
@example(alpha=1.0, beta=20.0, swap=True)
def test_rho2_infinite_unless_both_above_one(alpha, beta, swap):
    a, b = (beta, alpha) if swap else (alpha, beta)
    assert MixupLambda(a, b).rho2() == math.inf


def test_rho2_truncated_integral_diverges_at_alpha_one():
    """Independent evidence for ρ₂ = ∞ at α = 1: ∫_ε^1 grows like log(1/ε) under D̃ = Beta(2, 1)."""
    dens = stats.beta(2.0, 1.0).pdf
    vals = [integrate.quad(lambda t: ((1 - t) / t) ** 2 * dens(t), eps, 1.0, limit=200)[0]
            for eps in (1e-3, 1e-6)]
    assert vals[1] - vals[0] == pytest.approx(2 * math.log(1e3), rel=1e-2)


@settings(max_examples=40)
@given(alpha=ab, beta=ab, q=st.integers(1, 12))
@example(alpha=1.0, beta=1.0, q=1)
def test_nodes_exact_for_polynomials(alpha, beta, q):
    mix = MixupLambda(alpha, beta)
    lam, w = mix.nodes(q)
    assert lam.shape == w.shape == (q,)
    assert w.sum() == pytest.approx(1.0, rel=1e-14)
    assert (w > 0).all() and (lam > 0).all() and (lam < 1).all()
    for k in range(2 * q):
        assert (w * lam ** k).sum() == pytest.approx(beta_moment(alpha, beta, k), rel=POLY_RTOL)


@settings(max_examples=40)
@given(alpha=ab, beta=ab, q=st.integers(1, 12))
def test_tilde_nodes_exact_for_polynomials(alpha, beta, q):
    mix = MixupLambda(alpha, beta)
    lam, w = mix.nodes(q, tilde=True)
    assert lam.shape == w.shape == ((q if alpha == beta else 2 * q),)
    assert w.sum() == pytest.approx(1.0, rel=1e-14)
    for k in range(2 * q):
        # E_D̃ λ^k = E_Beta(α,β)[λ^(k+1) + (1−λ)^(k+1)] (size biasing, docs/theory.md §1)
        ref = beta_moment(alpha, beta, k + 1) + beta_moment(beta, alpha, k + 1)
        assert (w * lam ** k).sum() == pytest.approx(ref, rel=POLY_RTOL)


@pytest.mark.parametrize("alpha, beta", [(0.05, 20.0), (0.05, 0.05), (0.2, 0.2), (20.0, 0.3)])
@pytest.mark.parametrize("q", [32, 64, 512])
def test_many_nodes_with_small_parameters_stay_accurate(alpha, beta, q):
    """Regression: scipy's roots_jacobi misses low moments by up to 7e-6 here (see mixing._beta_rule)."""
    lam, w = MixupLambda(alpha, beta).nodes(q)
    for k in range(12):
        assert (w * lam ** k).sum() == pytest.approx(beta_moment(alpha, beta, k), rel=1e-12)


def test_symmetric_rule_is_symmetric():
    lam, w = MixupLambda(0.3).nodes(33)
    np.testing.assert_allclose(lam + lam[::-1], 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(w, w[::-1], rtol=1e-14)


def test_tilde_node_counts():
    assert MixupLambda(0.5, 2.0).nodes(7, tilde=True)[0].shape == (14,)
    assert MixupLambda(0.5).nodes(7, tilde=True)[0].shape == (7,)
    assert MixupLambda(0.5, 2.0).nodes(7)[0].shape == (7,)


def test_gauss_rule_not_exact_beyond_degree_2q_minus_1():
    """The degree bound is sharp: λ^(2q) is integrated with a visible error (so the test above can fail)."""
    lam, w = MixupLambda(0.7, 1.3).nodes(3)
    assert abs((w * lam ** 6).sum() - beta_moment(0.7, 1.3, 6)) > 1e-6


def test_mean_lambda_one_minus_lambda():
    for a, b in [(0.2, 0.2), (1.0, 1.0), (0.5, 3.0)]:
        ref = beta_expect(lambda lam: lam * (1 - lam), a, b)
        assert MixupLambda(a, b).mean_lambda_one_minus_lambda() == pytest.approx(ref, rel=RTOL)


def test_sample_follows_beta():
    mix = MixupLambda(0.4, 1.5)
    draws = mix.sample(SAMPLE_DRAWS, np.random.default_rng(0))
    se = draws.std(ddof=1) / math.sqrt(SAMPLE_DRAWS)
    assert abs(draws.mean() - 0.4 / 1.9) < 5 * se
    again = mix.sample(SAMPLE_DRAWS, np.random.default_rng(0))
    np.testing.assert_array_equal(draws, again)
    assert stats.kstest(draws, stats.beta(0.4, 1.5).cdf).pvalue > 1e-4


@pytest.mark.parametrize("alpha, beta, name", [
    (0.0, None, "alpha"), (-1.0, None, "alpha"), (math.nan, None, "alpha"), (math.inf, None, "alpha"),
    ("a", None, "alpha"), (1.0, 0.0, "beta"), (1.0, math.nan, "beta"), (1.0, -math.inf, "beta"),
])
def test_bad_parameters(alpha, beta, name):
    with pytest.raises(ValueError, match=name):
        MixupLambda(alpha, beta)


@pytest.mark.parametrize("q", [0, -3, 2.5, True])
def test_bad_node_count(q):
    with pytest.raises(ValueError, match="q"):
        MixupLambda(1.0).nodes(q)


# ---------------------------------------------------------------- rules over the whole accepted range

EXTREME_RTOL = 1e-13  # promised by MixupLambda.nodes for α, β in [1e-8, 1e6]
EXTREME_PARAMS = [1e-8, 1e-6, 1e-3, 0.05, 1.0, 7.0, 1e3, 1e6]


def exact_moments(a, b, count):
    """``E_{Beta(a,b)} λ^k``, k < count, as exact rationals of the float inputs (then rounded once)."""
    a, b = Fraction(a), Fraction(b)
    out, r = [1.0], Fraction(1)
    for j in range(count - 1):
        r *= (a + j) / (a + b + j)
        out.append(float(r))
    return out


def _rule_moment_error(lam, w, moments):
    return max(abs(math.fsum(w * lam ** k) - m) / m for k, m in enumerate(moments))


@pytest.mark.parametrize("q", [1, 2, 7, 64])
@pytest.mark.parametrize("alpha", EXTREME_PARAMS)
def test_nodes_accurate_for_extreme_parameters(alpha, q):
    """Regression: at α = 1e-8 the old rule had λ = −2.8e-9 and E λ² off by 2.8e-9 (cancelling
    recurrence coefficients, absolute-accuracy eigenvalues)."""
    for beta in EXTREME_PARAMS:
        lam, w = MixupLambda(alpha, beta).nodes(q)
        assert (lam >= 0).all() and (lam <= 1).all() and (w >= 0).all()
        moments = exact_moments(alpha, beta, min(2 * q, 41))
        assert _rule_moment_error(lam, w, moments) <= EXTREME_RTOL, (alpha, beta)


@pytest.mark.parametrize("alpha, beta", [(1e-8, 1e-8), (1e-8, 1.0), (0.05, 1e6), (1e6, 1e6), (1e6, 1e-8), (3.0, 1e-7)])
def test_tilde_nodes_accurate_for_extreme_parameters(alpha, beta):
    q = 16
    lam, w = MixupLambda(alpha, beta).nodes(q, tilde=True)
    assert (lam >= 0).all() and (lam <= 1).all()
    # E_D̃ λ^k = E_Beta(α,β)[λ^(k+1) + (1−λ)^(k+1)], the second a moment of Beta(β, α)
    left, right = exact_moments(alpha, beta, 2 * q + 1), exact_moments(beta, alpha, 2 * q + 1)
    for k in range(2 * q):
        ref = left[k + 1] + right[k + 1]
        assert abs(math.fsum(w * lam ** k) - ref) <= EXTREME_RTOL * ref


@pytest.mark.slow
@pytest.mark.parametrize("q", [256])
def test_many_nodes_accurate_for_extreme_parameters(q):
    for alpha, beta in [(0.05, 1.0), (1e-8, 0.2), (1e-3, 1e6), (0.3, 0.3)]:
        lam, w = MixupLambda(alpha, beta).nodes(q)
        assert _rule_moment_error(lam, w, exact_moments(alpha, beta, 41)) <= EXTREME_RTOL


def test_node_count_is_capped():
    """Regression: 100 000 nodes used to try to allocate 74 GiB."""
    with pytest.raises(ValueError, match=f"q must be an integer <= {MAX_NODES}"):
        MixupLambda(1.0).nodes(100_000)
    assert MixupLambda(1.0).nodes(MAX_NODES)[0].shape == (MAX_NODES,)


@pytest.mark.parametrize("alpha, beta, name", [(1e-9, 1.0, "alpha"), (2e6, 1.0, "alpha"), (1.0, 5e-9, "beta")])
def test_nodes_refuse_parameters_outside_the_verified_range(alpha, beta, name):
    mix = MixupLambda(alpha, beta)  # moments in closed form stay available
    assert math.isfinite(mix.m(1))
    with pytest.raises(ValueError, match=rf"{name} must lie in \[1e-08, 1e\+06\]"):
        mix.nodes(8)
