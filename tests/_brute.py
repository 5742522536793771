"""Independent brute-force references for the core tests.

Nothing here imports ``theory``: losses are written out in numpy, expectations over λ use
QUADPACK's algebraic-weight rule (``scipy.integrate.quad(..., weight="alg")``, which integrates
the Beta density's endpoint singularities analytically) instead of Gauss–Jacobi nodes, and the
label-weighted law D̃ is reached through its definition, ``E_D̃ g = E_{Beta(α,β)}[λ g(λ) + (1−λ) g(1−λ)]``,
not through the mixture formula the library uses. Pairs are plain python loops over i and j.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import integrate, special

QUAD_EPSABS = 1e-14
QUAD_EPSREL = 1e-12


def beta_expect(g, a: float, b: float) -> float:
    """``E_{λ~Beta(a, b)} g(λ)`` by adaptive quadrature with the weight ``λ^(a−1)(1−λ)^(b−1)``."""
    val, _ = integrate.quad(g, 0.0, 1.0, weight="alg", wvar=(a - 1.0, b - 1.0),
                            epsabs=QUAD_EPSABS, epsrel=QUAD_EPSREL, limit=400)
    return val / math.exp(special.betaln(a, b))


def tilde_expect(g, a: float, b: float) -> float:
    """``E_{λ~D̃} g(λ)`` from the size-biasing definition ``E_{Beta(a,b)}[λ g(λ) + (1−λ) g(1−λ)]``."""
    return beta_expect(lambda lam: lam * g(lam) + (1.0 - lam) * g(1.0 - lam), a, b)


def loss_np(name: str, f: np.ndarray, y: np.ndarray) -> float:
    """One sample's loss, written out directly: ``softplus(f) − y f``, ``logsumexp(f) − yᵀf``, ``½‖y − f‖²``."""
    f, y = np.atleast_1d(f), np.atleast_1d(y)
    if name == "logistic":
        return float(np.logaddexp(0.0, f[0]) - y[0] * f[0])
    if name == "softmax":
        return float(special.logsumexp(f) - y @ f)
    if name == "squared":
        return float(0.5 * np.sum((y - f) ** 2))
    raise KeyError(name)


def numpy_model(model):
    """``x (d,) ↦ logits (K,)`` evaluating ``model`` on one row in float64."""
    def f(x):
        with torch.no_grad():
            out = model(torch.as_tensor(np.asarray(x, dtype=np.float64)[None]))
        return out.double().numpy().reshape(-1)
    return f


def brute_mixup_loss(f, X, Y, loss: str, a: float, b: float) -> float:
    """``(1/n²) Σ_i Σ_j E_{Beta(a,b)} l(f(λx_i+(1−λ)x_j), λy_i+(1−λ)y_j)`` by loops and quad (docs/theory.md §2)."""
    n = len(X)
    total = 0.0
    for i in range(n):
        for j in range(n):
            total += beta_expect(lambda lam: loss_np(loss, f(lam * X[i] + (1 - lam) * X[j]),
                                                    lam * Y[i] + (1 - lam) * Y[j]), a, b)
    return total / n ** 2


def brute_unmixed(f, X, Y, loss: str, a: float, b: float, s: float = 1.0) -> float:
    """RHS of identity (I) on the homotopy: ``(1/n²) Σ_i Σ_r E_D̃ l(f(x_i + s(1−λ)(x_r − x_i)), y_i)``."""
    n = len(X)
    total = 0.0
    for i in range(n):
        for r in range(n):
            total += tilde_expect(lambda lam: loss_np(loss, f(X[i] + s * (1 - lam) * (X[r] - X[i])), Y[i]), a, b)
    return total / n ** 2


def brute_squared_constant(Y, a: float, b: float) -> float:
    """``E_{Beta}[λ(1−λ)] · (1/n²) Σ_ij ½‖y_i − y_j‖²`` with the λ-moment integrated numerically."""
    n = len(Y)
    pair = sum(0.5 * float(np.sum((np.atleast_1d(Y[i]) - np.atleast_1d(Y[j])) ** 2))
               for i in range(n) for j in range(n))
    return beta_expect(lambda lam: lam * (1 - lam), a, b) * pair / n ** 2


def one_hot(labels, K: int) -> np.ndarray:
    return np.eye(K)[np.asarray(labels)]


# ---------------------------------------------------------------- piecewise-linear nets, kink by kink

KINK_GRID = 4000  # λ-grid on which activation patterns are compared before bisection
KINK_EPSREL, KINK_EPSABS = 1e-14, 1e-16


def _mlp_layers(model):
    """``[(W, b, negative_slope | None)]`` of a Sequential of Linear and ReLU/LeakyReLU layers (None: no activation)."""
    out = []
    for m in model:
        if isinstance(m, torch.nn.Linear):
            out.append([m.weight.detach().double().numpy(), m.bias.detach().double().numpy(), None])
        elif isinstance(m, torch.nn.ReLU):
            out[-1][2] = 0.0
        elif isinstance(m, torch.nn.LeakyReLU):
            out[-1][2] = m.negative_slope
        else:
            raise TypeError(type(m).__name__)
    return out


def _forward_with_pattern(layers, xs):
    h, pattern = xs, []
    for W, b, slope in layers:
        h = h @ W.T + b
        if slope is not None:
            pattern.append(h > 0)
            h = np.where(h > 0, h, slope * h)
    return h, (np.concatenate(pattern, axis=1) if pattern else np.zeros((len(xs), 0), bool))


def _pair_kinks(layers, xi, xj):
    """λ where the activation pattern on ``x_j + λ(x_i − x_j)`` changes: grid scan, then bisection,
    repeated inside a grid cell until its right end's pattern is reached (several kinks per cell)."""
    pattern = lambda lam: _forward_with_pattern(layers, (xj + lam * (xi - xj))[None])[1][0]
    lam = np.linspace(0.0, 1.0, KINK_GRID + 1)
    _, pat = _forward_with_pattern(layers, xj + lam[:, None] * (xi - xj))
    kinks = []
    for c in np.flatnonzero((pat[1:] != pat[:-1]).any(1)):
        start, p_start = lam[c], pat[c]
        for _ in range(64):
            if (p_start == pat[c + 1]).all():
                break
            lo, hi = start, lam[c + 1]
            for _ in range(80):
                mid = 0.5 * (lo + hi)
                if mid in (lo, hi):
                    break
                if (pattern(mid) == p_start).all():
                    lo = mid
                else:
                    hi = mid
            kinks.append(0.5 * (lo + hi))
            start, p_start = hi, pattern(hi)
    return kinks


def _log_ratio(x: float, c: float) -> float:
    """``log(x/c)`` without the cancellation of ``log x − log c`` for x near c."""
    return math.log1p((x - c) / c) if abs(x - c) < 0.5 * c else math.log(x / c)


DENSITY_SPLITS = (1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 0.95, 0.99, 0.999, 1 - 1e-4,
                  1 - 1e-6)


def kink_reference(model, X, Y, loss: str, a: float, b: float) -> tuple[float, float]:
    """``(L_mix, QUADPACK's error estimate)`` for an MLP of Linear/ReLU/LeakyReLU layers, integrating each
    pair piece by piece between kinks found independently (numpy forward pass, pattern bisection):
    the end pieces with QUADPACK's algebraic weight where the density is singular there, the others
    with plain ``quad``; pieces in [½, 1] in the variable u = 1 − λ.

    The density is scaled by ``c^(1−a)(1−c)^(1−b)`` (c = a/(a+b)) so that large α, β neither under- nor
    overflow, normalised by ``B(a, b)`` from mpmath at 30 digits; pieces are also split at quantiles of
    Beta(a, b) (``scipy.special.betaincinv``) so that QUADPACK sees a concentrated density's bulk."""
    import mpmath

    layers = _mlp_layers(model)
    f = lambda x: _forward_with_pattern(layers, np.asarray(x)[None])[0][0]
    c = a / (a + b)
    with mpmath.workdps(30):
        log_norm = float(mpmath.log(mpmath.beta(a, b)) - (a - 1) * mpmath.log(c) - (b - 1) * mpmath.log(1 - c))
    norm = math.exp(log_norm)
    splits = [float(q) for q in special.betaincinv(a, b, DENSITY_SPLITS) if 1e-8 < q < 1.0 - 1e-8] \
        if max(a, b) > 3.0 else []
    opts = dict(epsabs=KINK_EPSABS, epsrel=KINK_EPSREL, limit=200)

    def half(g, A, B, C, lo, hi):
        """∫_lo^hi g(u) u^(A−1)(1−u)^(B−1) / (C^(A−1)(1−C)^(B−1)) du on a piece of [0, ½] (u is the
        distance to the nearer end of [0, 1], so nothing near 1 is formed as 1 − u)."""
        if lo == 0.0 and A < 1.0:
            h = lambda u: g(u) * math.exp((B - 1) * _log_ratio(1 - u, 1 - C) + (1 - A) * math.log(C))
            return integrate.quad(h, lo, hi, weight="alg", wvar=(A - 1.0, 0.0), **opts)
        h = lambda u: g(u) * math.exp((A - 1) * _log_ratio(u, C) + (B - 1) * _log_ratio(1 - u, 1 - C))
        return integrate.quad(h, lo, hi, **opts)

    n = len(X)
    total = err = 0.0
    for i in range(n):
        for j in range(n):
            left = lambda lam: loss_np(loss, f(X[j] + lam * (X[i] - X[j])), Y[j] + lam * (Y[i] - Y[j]))
            right = lambda u: loss_np(loss, f(X[i] + u * (X[j] - X[i])), Y[i] + u * (Y[j] - Y[i]))  # λ = 1 − u
            cuts = sorted(set([0.0, 0.5, 1.0] + splits + _pair_kinks(layers, X[i], X[j])))
            for lo, hi in zip(cuts[:-1], cuts[1:]):
                if hi <= 0.5:
                    v, e = half(left, a, b, c, lo, hi)
                else:
                    v, e = half(right, b, a, 1 - c, 1.0 - hi, 1.0 - lo)
                total += v
                err += e
    return total / norm / n ** 2, err / norm / n ** 2
