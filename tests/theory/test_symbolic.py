"""Symbolic checks (sympy) of the algebra behind identity (I) and the expansion (C1, C2; docs/theory.md §1, §3).

- Size-biasing: ``E_{Beta(α,β)}[λ g(λ)] = (α/(α+β)) E_{Beta(α+1,β)}[g]`` for polynomial g, symbolically in
  α, β (Beta moments as Gamma ratios), anchored by exact integrals at integer α, β.
- ``m_k`` and ``ρ₂`` closed forms of docs/theory.md §1 against the definition of D̃ (un-mixing), and against
  ``theory.MixupLambda``.
- The second-order Taylor coefficients of ``(1/n) Σ_r l(x_i + t(x_r − x_i))`` for a generic polynomial
  loss ``h`` and model ``f`` match the R1, R2 (+ R3) formulas with x̄ and Σ̂ — and ``theory.mixup_expansion``
  reproduces them for a polynomial model under the squared loss.
"""
import math

import numpy as np
import pytest
import sympy as sp
import torch

import theory

a, b = sp.symbols("alpha beta", positive=True)
lam = sp.Symbol("lambda", positive=True)
POLY_DEGREE = 4
RTOL = 1e-12


def beta_moment(p, q, k):
    """``E_{Beta(p,q)}[λ^k] = B(p+k, q)/B(p, q)`` as a Gamma ratio."""
    return sp.gamma(p + k) * sp.gamma(p + q) / (sp.gamma(p) * sp.gamma(p + q + k))


def expect_poly(poly, p, q):
    """``E_{Beta(p,q)}[poly(λ)]`` for a polynomial in λ, term by term."""
    P = sp.Poly(sp.expand(poly), lam)
    return sum(coef * beta_moment(p, q, k) for (k,), coef in P.terms())


def test_beta_moment_matches_integral_at_integer_parameters():
    """Anchor: the Gamma-ratio moments equal the integrals ∫ λ^k λ^(p−1)(1−λ)^(q−1) dλ / B(p, q)."""
    for p, q in [(1, 1), (2, 3), (3, 1), (4, 2)]:
        norm = sp.integrate(lam ** (p - 1) * (1 - lam) ** (q - 1), (lam, 0, 1))
        for k in range(POLY_DEGREE + 2):
            direct = sp.integrate(lam ** (k + p - 1) * (1 - lam) ** (q - 1), (lam, 0, 1)) / norm
            assert sp.simplify(direct - beta_moment(sp.Integer(p), sp.Integer(q), k)) == 0


def test_size_biasing_identity_symbolic_in_alpha_beta():
    """E_{Beta(α,β)}[λ g(λ)] = (α/(α+β)) E_{Beta(α+1,β)}[g(λ)] for a generic polynomial g (symbolic α, β, coefficients)."""
    c = sp.symbols(f"c0:{POLY_DEGREE + 1}")
    g = sum(ck * lam ** k for k, ck in enumerate(c))
    lhs = expect_poly(lam * g, a, b)
    rhs = a / (a + b) * expect_poly(g, a + 1, b)
    assert sp.simplify(sp.gammasimp(lhs - rhs)) == 0


def test_size_biasing_identity_by_direct_integration():
    """The same identity with the densities integrated directly, α = 2, β = 3 (no moment formula used)."""
    c = sp.symbols(f"c0:{POLY_DEGREE + 1}")
    g = sum(ck * lam ** k for k, ck in enumerate(c))

    def expect(expr, p, q):
        dens = lam ** (p - 1) * (1 - lam) ** (q - 1)
        return sp.integrate(sp.expand(expr * dens), (lam, 0, 1)) / sp.integrate(dens, (lam, 0, 1))

    assert sp.expand(expect(lam * g, 2, 3) - sp.Rational(2, 5) * expect(g, 3, 3)) == 0


def m_k_theory(k):
    """docs/theory.md §1: m_k = (α/(α+β)) B(α+1, β+k)/B(α+1, β) + (β/(α+β)) B(β+1, α+k)/B(β+1, α)."""
    def ratio(p, q, k):  # B(p, q+k)/B(p, q)
        return sp.gamma(q + k) * sp.gamma(p + q) / (sp.gamma(q) * sp.gamma(p + q + k))
    return a / (a + b) * ratio(a + 1, b, k) + b / (a + b) * ratio(b + 1, a, k)


def m_k_definition(k):
    """From un-mixing (C1): E_{D̃}[(1−λ)^k] = E_{Beta(α,β)}[λ(1−λ)^k + (1−λ)λ^k]."""
    return expect_poly(lam * (1 - lam) ** k + (1 - lam) * lam ** k, a, b)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_m_k_closed_form_matches_definition(k):
    assert sp.simplify(sp.gammasimp(m_k_theory(k) - m_k_definition(k))) == 0


def test_m1_m2_special_forms():
    """m_1 = 2αβ/((α+β)(α+β+1)); for α = β: m_1 = α/(2α+1), m_2 = α(α+1)/((2α+1)(2α+2))."""
    assert sp.simplify(sp.gammasimp(m_k_definition(1) - 2 * a * b / ((a + b) * (a + b + 1)))) == 0
    m2_sym = sp.gammasimp(m_k_definition(2).subs(b, a))
    assert sp.simplify(m2_sym - a * (a + 1) / ((2 * a + 1) * (2 * a + 2))) == 0
    assert sp.simplify(sp.gammasimp(m_k_definition(1).subs(b, a)) - a / (2 * a + 1)) == 0


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.3, 0.3), (2.0, 0.5), (0.7, 4.0)])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_mixup_lambda_m_matches_symbolic(alpha, beta, k):
    expected = float(m_k_definition(k).subs({a: alpha, b: beta}).evalf(30))
    assert theory.MixupLambda(alpha, beta).m(k) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize("alpha,expected", [(2, 3), (4, sp.Rational(5, 3))])
def test_rho2_by_direct_integration(alpha, expected):
    """ρ₂ = E_{Beta(α+1,α)}[((1−λ)/λ)²] integrated exactly: 3 at α = 2, 5/3 at α = 4 (docs/theory.md §1)."""
    dens = lam ** alpha * (1 - lam) ** (alpha - 1)
    value = sp.integrate(sp.cancel(((1 - lam) / lam) ** 2 * dens), (lam, 0, 1)) / sp.integrate(dens, (lam, 0, 1))
    assert value == expected
    assert theory.MixupLambda(alpha).rho2() == pytest.approx(float(expected), rel=RTOL)


# ----------------------------------------------------------------------------- Taylor coefficients of (I)

X_POINTS = [(sp.Rational(1, 2), sp.Rational(-1, 3)), (sp.Rational(-2, 5), sp.Rational(3, 4)),
            (sp.Rational(1, 5), sp.Rational(1, 7))]
x1, x2, t = sp.symbols("x1 x2 t")
z = sp.Symbol("z")


def _generic_model():
    """A generic polynomial model f(x1, x2) (quadratic plus cubic terms, symbolic coefficients)."""
    w = sp.symbols("w0:6")
    f = w[0] * x1 + w[1] * x2 + w[2] * x1 ** 2 + w[3] * x1 * x2 + w[4] * x1 * x2 ** 2 + w[5]
    return f, w


def _formula_coefficients(f, h, y, i, pts):
    """(coefficient of t, coefficient of t²) from docs/theory.md §3 for point i (per point, before × m_k/n)."""
    n = len(pts)
    X = sp.Matrix([list(p) for p in pts])
    xbar = sp.Matrix([sum(X[:, j]) / n for j in range(2)])
    C = X - sp.ones(n, 1) * xbar.T
    Sigma = C.T * C / n
    at = {x1: pts[i][0], x2: pts[i][1]}
    grad = sp.Matrix([sp.diff(f, v) for v in (x1, x2)]).subs(at)
    hess = sp.hessian(f, (x1, x2)).subs(at)
    fi = f.subs(at)
    hp = sp.diff(h, z).subs(z, fi)
    hpp = sp.diff(h, z, 2).subs(z, fi)
    dvec = xbar - sp.Matrix(pts[i])
    g = hp - y[i]
    first = g * (grad.T * dvec)[0]
    r2 = hpp * ((grad.T * Sigma * grad)[0] + (grad.T * dvec)[0] ** 2)
    r3 = g * ((hess * Sigma).trace() + (dvec.T * hess * dvec)[0])
    return first, (r2 + r3) / 2


def test_taylor_coefficients_of_identity_match_r1_r2_r3():
    """d/dt and ½d²/dt² at t = 0 of (1/n) Σ_r l(x_i + t(x_r − x_i)) equal the R1 and R2 + R3 summands of docs/theory.md §3.2.

    l = h(f) − y f with a generic cubic h (symbolic coefficients) and a generic polynomial model f.
    """
    f, _ = _generic_model()
    hc = sp.symbols("h0:4")
    h = hc[0] + hc[1] * z + hc[2] * z ** 2 + hc[3] * z ** 3
    y = sp.symbols(f"y0:{len(X_POINTS)}")
    n = len(X_POINTS)
    for i in range(n):
        xi = X_POINTS[i]
        total = 0
        for r in X_POINTS:
            path = {x1: xi[0] + t * (r[0] - xi[0]), x2: xi[1] + t * (r[1] - xi[1])}
            fp = f.subs(path)
            total += h.subs(z, fp) - y[i] * fp
        total = total / n
        c1 = sp.diff(total, t).subs(t, 0)
        c2 = sp.diff(total, t, 2).subs(t, 0) / 2
        first, second = _formula_coefficients(f, h, y, i, X_POINTS)
        assert sp.expand(c1 - first) == 0
        assert sp.expand(c2 - second) == 0


def test_mixup_expansion_code_matches_symbolic_terms():
    """theory.mixup_expansion (squared loss, a polynomial model as a plain callable) equals the symbolic
    R1 = (m_1/n) Σ first_i and R2 + R3 = (m_2/n) Σ second_i at α = 1 (m_1 = 1/3, m_2 = 1/6)."""
    f, w = _generic_model()
    wv = dict(zip(w, [sp.Rational(v) for v in ("1/2", "-1", "1/3", "2/5", "-1/3", "1/5")]))
    fnum = f.subs(wv)
    h = z ** 2 / 2  # squared loss: l = ½(y − f)² = h(f) − y f + ½y²
    yv = [sp.Rational(1, 3), sp.Rational(-1, 2), sp.Rational(2, 1)]
    n = len(X_POINTS)
    firsts, seconds = zip(*[_formula_coefficients(fnum, h, yv, i, X_POINTS) for i in range(n)])
    m1, m2 = sp.Rational(1, 3), sp.Rational(1, 6)
    r1 = float(m1 * sum(firsts) / n)
    r2r3 = float(m2 * sum(seconds) / n)
    coeffs = [float(wv[k]) for k in w]

    def model(X):
        u, v = X[:, 0], X[:, 1]
        return coeffs[0] * u + coeffs[1] * v + coeffs[2] * u ** 2 + coeffs[3] * u * v + coeffs[4] * u * v ** 2 + coeffs[5]

    X = np.array([[float(p) for p in pt] for pt in X_POINTS])
    e = theory.mixup_expansion(model, X, np.array([float(v) for v in yv]), 1.0, loss="squared", r3="exact")
    assert e.r1 == pytest.approx(r1, rel=RTOL, abs=1e-14)
    assert e.r2 + e.r3 == pytest.approx(r2r3, rel=RTOL, abs=1e-14)
    lstd = float(sum((sp.Rational(1, 2) * (yv[i] - fnum.subs({x1: X_POINTS[i][0], x2: X_POINTS[i][1]})) ** 2)
                     for i in range(n)) / n)
    assert e.standard == pytest.approx(lstd, rel=RTOL)
    assert math.isfinite(e.approx)


def test_quadratic_model_expansion_is_exact_for_squared_loss():
    """For f linear and the squared loss, (1/n) Σ_r l(x_i + t u) is quadratic in t: the expansion has no remainder,
    so the exact RHS of (I) equals L_std + R1 + R2 + R3 (checked through the code at α = 0.7)."""
    from theory import mixup_loss_unmixed

    X = np.array([[float(p) for p in pt] for pt in X_POINTS])
    yv = np.array([0.3, -0.5, 2.0])
    model = theory.linear_model(2, weight=[0.5, -1.0], intercept=[0.2])
    e = theory.mixup_expansion(model, X, yv, 0.7, loss="squared")
    exact = mixup_loss_unmixed(model, X, yv, 0.7, loss="squared")
    assert e.approx == pytest.approx(exact, rel=1e-12)
    assert torch.get_default_dtype() == torch.float32  # the library never changes the global default
