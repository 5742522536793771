"""C10: the W_γ complexity theorem and the generalization-gap corollary (docs/theory.md §5).

``W_γ = {x ↦ θᵀx : E_x[h''(θᵀx)]·θᵀΣ₀θ ≤ γ}`` (here E_x and ``Σ₀ = Σ̂₀ = XᵀX/n`` are taken on the
sample). ρ-retentive: ``(E_x[h''(vᵀx)])² ≥ ρ·min{1, E_x[(vᵀx)²]}`` for all ``v ≠ 0``. Claim:
``Rad_n(W_γ, S) ≤ max{(γ/ρ)^{1/4}, (γ/ρ)^{1/2}}·√(rank(Σ₀)/n)``.

What we compute, and why it is what we compute:

- For the logistic h, ``h''(z) = σ(z)σ(−z) → 0`` as ``|z| → ∞``, so no ρ > 0 works for *all* v: the
  ratio ``(E h''(vᵀx))² / min{1, E(vᵀx)²}`` is non-increasing along every ray ``v = s·u`` (numerator
  falls, denominator rises) and tends to 0. Retentiveness needs a bounded parameter set; we use the
  ball ``Θ_B = {‖θ‖₂ ≤ B}`` (the corollary assumes bounded Θ). By the ray monotonicity, the infimum
  over ``Θ_B`` is attained on the sphere ``‖v‖ = B``: ``retentive_constant`` minimises over directions
  there (random and principal directions, then BFGS from the best) — an estimate from above of
  the true infimum, reported as such. On the sample, W_γ itself is unbounded (``E h''(s·uᵀx)`` decays
  exponentially in s when no ``uᵀx_i = 0``), so the theorem is about ``W_γ ∩ Θ_B``.
- Containment (derived here): for θ ∈ W_γ ∩ Θ_B with ``q = θᵀΣ̂₀θ`` and ``u = γ/√ρ``: if ``q ≥ 1``,
  ``E h'' ≥ √ρ`` so ``q ≤ u``; if ``q < 1``, ``E h'' ≥ √(ρq)`` so ``√ρ q^{3/2} ≤ γ``, ``q ≤ u^{2/3}``.
  Hence ``W_γ ∩ Θ_B ⊂ E_c = {θᵀΣ̂₀θ ≤ c}``, ``c(γ, ρ) = max{u^{2/3}, u}``, whose Rademacher complexity
  is exact per sign vector (``theory.rademacher``) and ``≤ √(c·r/n) = max{u^{1/3}, u^{1/2}}·√(r/n)``.
  For ρ ≤ 1 this is below the paper's bound (``u ≤ γ/ρ``; for u < 1, ``u^{1/3} ≤ u^{1/4} ≤ (γ/ρ)^{1/4}``),
  so the claim holds under the squared definition above, with room to spare. (With the unsquared
  definition ``E h'' ≥ ρ·min{1, q}`` the same argument gives ``c = max{(γ/ρ)^{1/2}, γ/ρ}``, exactly the
  paper's bound.)
- A lower bound on ``sup_{W_γ ∩ Θ_B} θᵀv`` per sign vector: feasible points found by a ray search along
  the maximisers ``(Σ̂₀ + μI)⁺v`` of the ellipsoid/ball problems — shows how tight the upper bound is.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special
import torch

from ._validate import (MAX_DRAWS, ArgumentTypeError, as_labels, as_matrix, check_count, check_positive, check_rng,
                        check_scalar)

MAX_ELEMENTS = 10 ** 9
"""Largest n × d of generated data (8 GB of float64)."""
MAX_DIRECTIONS = 10 ** 5
"""Largest number of random directions ``retentive_constant`` searches (each costs a pass over X)."""
from ._complexity import ellipsoid_sup, rademacher
from ._docs import fill_doc

SWEEP_RANKS = (1, 2, 5, 10, 20, 50, 100)
RAY_GRID = 128
RAY_BISECTIONS = 30
RIDGE_SHIFTS = (0.0, 1e-3, 1e-2, 1e-1, 1.0, math.inf)  # μ/λ_max for the (Σ̂₀ + μI)⁺v directions


def _np(X) -> np.ndarray:
    return as_matrix(X, "X").cpu().numpy()


def _log_logistic_curvature(Z: np.ndarray) -> np.ndarray:
    """``log h''(z) = log σ(z)σ(−z) = −|z| − 2·log(1 + e^{−|z|})``, stable for any z."""
    a = np.abs(Z)
    return -a - 2.0 * np.log1p(np.exp(-a))


@fill_doc
def retentiveness_ratio(X, V) -> np.ndarray:
    """``(E_x[h''(vᵀx)])² / min{1, E_x[(vᵀx)²]}`` for each row v of V, logistic h, on the sample (C10).

    C10 — Zhang et al. 2021, Theorem 4.2; docs/theory.md §5.2.

    ``inf`` where ``E(vᵀx)² = 0`` (the condition is void there).

    Parameters
    ----------
    %(X_data)s
    V : array_like, shape (m, d)
        Directions ``v`` (rows).

    Returns
    -------
    numpy.ndarray, shape (m,)
        The ratio per direction.

    Raises
    ------
    ValueError
        If the rows of ``V`` and of ``X`` differ in length.

    See Also
    --------
    retentive_constant : Its minimum over a sphere.

    Examples
    --------
    >>> import numpy as np, theory
    >>> X = np.array([[1.0], [-1.0]])
    >>> round(float(theory.retentiveness_ratio(X, np.array([[1.0]]))[0]), 6)  # h''(1)² / min(1, 1)
    0.038656
    """
    Xn = _np(X)
    Vn = np.atleast_2d(np.asarray(V, dtype=float))
    Z = Xn @ Vn.T  # (n, m)
    g = np.exp(special.logsumexp(_log_logistic_curvature(Z), axis=0) - math.log(Xn.shape[0]))
    q = (Z * Z).mean(0)
    with np.errstate(divide="ignore"):
        out = np.where(q > 0, g * g / np.minimum(1.0, q), np.inf)
    return out if np.ndim(V) > 1 else out[0]


def _log_ratio_and_grad(w, Xn, radius):
    """log of the retentiveness ratio at ``v = radius·w/‖w‖`` and its gradient in w."""
    norm = np.linalg.norm(w)
    v = radius * w / norm
    z = Xn @ v
    la = _log_logistic_curvature(z)
    log_g = special.logsumexp(la) - math.log(len(z))
    p = special.softmax(la)
    grad_v = 2.0 * Xn.T @ (p * (-np.tanh(z / 2.0)))  # d log A''/dz = 1 − 2σ(z) = −tanh(z/2)
    q = float((z * z).mean())
    value = 2.0 * log_g
    if q < 1.0:
        value -= math.log(q)
        grad_v -= 2.0 * Xn.T @ z / len(z) / q
    grad_w = radius / norm * (grad_v - (w / norm) * ((w / norm) @ grad_v))
    return value, grad_w


@fill_doc
def retentive_constant(X, radius, *, directions: int = 256, refine: int = 4,
                       generator: np.random.Generator | None = None) -> dict:
    """Estimate of the retentive constant ρ of the logistic h on ``Θ_B = {‖θ‖ ≤ radius}`` (C10).

    C10 — Zhang et al. 2021, Theorem 4.2; docs/theory.md §5.2.

    Minimises the ratio of ``retentiveness_ratio`` over the sphere ``‖v‖ = radius`` (where the
    infimum over the ball lies, see the module docstring): ``directions`` random Gaussian directions
    plus the principal axes of Σ̂₀, then BFGS (analytic gradient) from the ``refine`` best. Returns a dict:
    ``rho`` (the estimate, clipped to (0, 1/2] — ``clipped`` says whether the cap 1/2 was applied; a
    raw 0 is returned as 0), ``raw`` (minimum found), ``direction`` (the minimiser v), ``radius``.
    An estimate from above of the infimum (a search can miss the minimum).

    Parameters
    ----------
    %(X_data)s
    radius : float
        ``B`` of ``Θ_B = {‖θ‖ ≤ B}``.
    directions : int, default 256
        Random starting directions.
    refine : int, default 4
        Number of best directions refined by BFGS.
    %(generator_numpy)s

    Returns
    -------
    dict
        ``rho``, ``raw``, ``clipped``, ``direction``, ``radius`` (see above).

    %(raises_range)s

    See Also
    --------
    retentiveness_ratio : The ratio minimised.
    wgamma_rademacher, wgamma_bound : Use ``rho``.

    Examples
    --------
    >>> import numpy as np, theory
    >>> X = np.random.default_rng(0).standard_normal((50, 2))
    >>> est = theory.retentive_constant(X, 1.0, directions=16, refine=1, generator=0)
    >>> bool(0 < est["rho"] <= 0.5)
    True
    """
    radius = check_positive(radius, "radius")
    directions = check_scalar(directions, "directions", int, min_val=1, max_val=MAX_DIRECTIONS)
    refine = check_count(refine, "refine", 0)
    Xn = _np(X)
    rng = check_rng(generator)
    _, _, Vt = np.linalg.svd(Xn, full_matrices=False)
    W = np.vstack([Vt, rng.standard_normal((directions, Xn.shape[1]))])
    W /= np.linalg.norm(W, axis=1, keepdims=True)
    ratios = retentiveness_ratio(Xn, radius * W)
    order = np.argsort(ratios)
    best_v, best = radius * W[order[0]], float(ratios[order[0]])
    for k in order[:refine]:
        if not np.isfinite(ratios[k]):
            continue
        res = optimize.minimize(_log_ratio_and_grad, W[k], args=(Xn, radius), jac=True, method="BFGS")
        v = radius * res.x / np.linalg.norm(res.x)
        value = float(retentiveness_ratio(Xn, v))
        if value < best:
            best, best_v = value, v
    return {"rho": min(best, 0.5), "raw": best, "clipped": best > 0.5, "direction": best_v, "radius": radius}


@fill_doc
def wgamma_ellipsoid_constant(gamma, rho) -> float:
    """``c(γ, ρ) = max{u^{2/3}, u}``, ``u = γ/√ρ``: ``W_γ ∩ Θ_B ⊂ {θᵀΣ̂₀θ ≤ c}`` (C10, derived above).

    C10 (our containment argument); docs/theory.md §5.2.

    Parameters
    ----------
    %(gamma)s
    %(rho)s

    Returns
    -------
    float
        ``c(γ, ρ)``.

    %(raises_range)s

    See Also
    --------
    wgamma_rademacher : Uses the ellipsoid as its upper bound.

    Examples
    --------
    >>> import theory
    >>> theory.wgamma_ellipsoid_constant(2.0, 0.25)  # u = 4: max{4^(2/3), 4}
    4.0
    """
    gamma, rho = check_positive(gamma, "gamma"), check_positive(rho, "rho")
    u = gamma / math.sqrt(rho)
    return max(u ** (2.0 / 3.0), u)


@fill_doc
def wgamma_bound(gamma, rho, rank, n) -> float:
    """The paper's bound ``max{(γ/ρ)^{1/4}, (γ/ρ)^{1/2}}·√(rank/n)`` (C10, Zhang et al. 2021, Theorem 4.2; docs/theory.md §5.2).

    Parameters
    ----------
    %(gamma)s
    %(rho)s
    rank : int
        ``rank(Σ₀)``.
    %(n)s

    Returns
    -------
    float
        The bound on ``Rad_n(W_γ)``.

    %(raises_range)s

    See Also
    --------
    wgamma_rademacher : The measured complexity against this bound.
    wgamma_ellipsoid_constant : Our sharper containment.

    Examples
    --------
    >>> import theory
    >>> theory.wgamma_bound(0.5, 0.5, 2, 8)  # max{1, 1}·√(2/8)
    0.5
    """
    gamma, rho = check_positive(gamma, "gamma"), check_positive(rho, "rho")
    rank, n = check_count(rank, "rank", 0), check_count(n, "n")
    v = gamma / rho
    return max(v ** 0.25, v ** 0.5) * math.sqrt(rank / n)


@fill_doc
def wgamma_value(X, theta) -> np.ndarray:
    """``E_x[h''(θᵀx)]·θᵀΣ̂₀θ`` (logistic h) for each row θ: the quantity W_γ bounds by γ.

    C10 — Zhang et al. 2021, Theorem 4.2; docs/theory.md §5.2.

    Parameters
    ----------
    %(X_data)s
    theta : array_like, shape (d,) or (m, d)
        Parameter vector(s).

    Returns
    -------
    numpy.ndarray
        ``E_x[h''(θᵀx)]·θᵀΣ̂₀θ`` per row.

    Raises
    ------
    ValueError
        If ``theta`` and the rows of ``X`` differ in length.

    See Also
    --------
    wgamma_rademacher : Complexity of ``{θ : wgamma_value ≤ γ}``.

    Examples
    --------
    >>> import numpy as np, theory
    >>> X = np.array([[1.0], [-1.0]])
    >>> theory.wgamma_value(X, np.array([[0.0], [2.0]])).round(6).tolist()  # θ = 0 and θ = 2
    [0.0, 0.419974]
    """
    Xn = _np(X)
    T = as_matrix(np.atleast_2d(np.asarray(theta)) if not isinstance(theta, torch.Tensor) else torch.atleast_2d(theta),
                  "theta").cpu().numpy()
    if T.shape[1] != Xn.shape[1]:
        raise ValueError(f"theta must have d = {Xn.shape[1]} entries per row (X has d = {Xn.shape[1]} features), "
                         f"got shape {np.shape(theta)}")
    Z = Xn @ T.T
    g = np.exp(special.logsumexp(_log_logistic_curvature(Z), axis=0) - math.log(Xn.shape[0]))
    out = g * (Z * Z).mean(0)
    return out if np.ndim(theta) > 1 else out[0]


def _feasible_sup(Xn, gamma, radius, U, v):
    """max over candidate directions (rows of U, oriented so uᵀv ≥ 0) of s·uᵀv with s·u ∈ W_γ ∩ Θ_B."""
    U = U * np.where(U @ v < 0, -1.0, 1.0)[:, None]
    norms = np.linalg.norm(U, axis=1)
    keep = norms > 0
    U, norms = U[keep], norms[keep]
    Z = Xn @ U.T  # (n, m)
    q = (Z * Z).mean(0)
    s_max = radius / norms
    grid = s_max[None, :] * np.geomspace(1e-6, 1.0, RAY_GRID)[:, None]  # (G, m)

    def h(s):  # E A''(s z)·s² q along each ray
        la = _log_logistic_curvature(s[..., None, :] * Z)  # (..., n, m)
        return np.exp(special.logsumexp(la, axis=-2) - math.log(len(Xn))) * s * s * q

    ok = h(grid) <= gamma
    last = np.where(ok.any(0), RAY_GRID - 1 - np.argmax(ok[::-1], axis=0), -1)
    cols = np.arange(U.shape[0])
    lo = np.where(last >= 0, grid[np.maximum(last, 0), cols], 0.0)
    hi = np.where(last < RAY_GRID - 1, grid[np.minimum(last + 1, RAY_GRID - 1), cols], lo)
    for _ in range(RAY_BISECTIONS):
        mid = 0.5 * (lo + hi)
        good = h(mid) <= gamma
        lo, hi = np.where(good, mid, lo), np.where(good, hi, mid)
    return float(np.max(lo * (U @ v)))


@fill_doc
def wgamma_rademacher(X, gamma, radius, *, rho: float | None = None, draws: int = 2000,
                      lower_draws: int = 200, generator: np.random.Generator | None = None) -> dict:
    """C10 check: ``Rad_n(W_γ ∩ Θ_B)`` bracketed, against the paper's bound (docs/theory.md §5.2).

    - ``rho``: the retentive constant on Θ_B (``retentive_constant(X, radius)`` if None);
    - ``upper`` ± ``upper_se``: exact-per-σ Rademacher complexity of the ellipsoid ``{θᵀΣ̂₀θ ≤ c(γ,ρ)}``
      containing ``W_γ ∩ Θ_B`` (valid if ρ is); ``derived_bound = √(c·r/n)``;
    - ``lower`` ± ``lower_se``: mean over ``lower_draws`` sign vectors of feasible values of
      ``θᵀXᵀξ/n`` (ξ: the sign vector) on ``W_γ ∩ Θ_B`` (ray searches) — a lower bound on the Rademacher complexity;
    - ``bound``: ``max{(γ/ρ)^{1/4}, (γ/ρ)^{1/2}}·√(r/n)``; ``holds``: ``upper ≤ bound`` within 4 SE.

    Parameters
    ----------
    %(X_data)s
    %(gamma)s
    radius : float
        ``B`` of ``Θ_B``.
    rho : float, optional
        Retentive constant; ``None`` estimates it.
    draws : int, default 2000
        Sign vectors for the upper bound.
    lower_draws : int, default 200
        Sign vectors for the lower bound.
    %(generator_numpy)s

    Returns
    -------
    dict
        ``rho``, ``upper``, ``upper_se``, ``derived_bound``, ``lower``, ``lower_se``, ``bound``, ``holds``.

    %(raises_range)s

    See Also
    --------
    wgamma_bound : The paper's bound.
    wgamma_ellipsoid_constant : The containing ellipsoid.
    rademacher : The ellipsoid's complexity.

    Examples
    --------
    >>> import numpy as np, theory
    >>> X = np.random.default_rng(0).standard_normal((40, 2))
    >>> out = theory.wgamma_rademacher(X, 0.5, 1.0, rho=0.1, draws=200, lower_draws=20, generator=0)
    >>> bool(out["lower"] <= out["upper"] + 4 * out["upper_se"]), out["holds"]
    (True, True)
    """
    gamma, radius = check_positive(gamma, "gamma"), check_positive(radius, "radius")
    lower_draws = check_scalar(lower_draws, "lower_draws", int, min_val=2, max_val=MAX_DRAWS)
    Xn = _np(X)
    n, d = Xn.shape
    rng = check_rng(generator)
    if rho is None:
        rho = retentive_constant(Xn, radius, generator=rng)["rho"]
    rho = check_positive(rho, "rho")
    c = wgamma_ellipsoid_constant(gamma, rho)
    ell = rademacher(Xn, c, cls="ellipsoid", draws=draws, generator=rng)
    Ux, S, Vt = np.linalg.svd(Xn, full_matrices=False)
    r = ell.rank
    evals = S[:r] ** 2 / n  # eigenvalues of Σ̂₀ on its range
    lows = []
    for _ in range(lower_draws):
        sigma = rng.integers(0, 2, size=n) * 2.0 - 1.0
        v = Xn.T @ sigma / n
        coef = Vt[:r] @ v
        cands = []
        for mu in RIDGE_SHIFTS:
            if math.isinf(mu):
                cands.append(v)
            else:
                cands.append(Vt[:r].T @ (coef / (evals + mu * evals[0])))
        lows.append(_feasible_sup(Xn, gamma, radius, np.array(cands), v))
    lows = np.array(lows)
    bound = wgamma_bound(gamma, rho, r, n)
    return {"gamma": gamma, "radius": radius, "rho": rho, "c": c, "rank": r, "n": n,
            "upper": ell.value, "upper_se": ell.stderr, "derived_bound": math.sqrt(c * r / n),
            "lower": float(lows.mean()),
            "lower_se": float(lows.std(ddof=1) / math.sqrt(len(lows))) if len(lows) > 1 else math.nan,
            "bound": bound, "holds": ell.value <= bound + 4 * ell.stderr if draws > 1 else ell.value <= bound}


@fill_doc
def lowrank_gaussian(n, d, r, generator: np.random.Generator) -> np.ndarray:
    """Draw n samples of ``x = A z``, ``z ~ N(0, I_r)``, ``A = √(d/r)·Q`` (Q: random d×r orthonormal).

    C10 data of chosen intrinsic dimension; docs/theory.md §5.2.

    ``Σ₀ = (d/r)·QQᵀ`` has rank r and trace d (unit variance per coordinate on average).

    Parameters
    ----------
    %(n)s
    d : int
        Ambient dimension.
    r : int
        Intrinsic dimension, ``1 ≤ r ≤ d``.
    generator : numpy.random.Generator or int
        Source of randomness.

    Returns
    -------
    numpy.ndarray, shape (n, d)
        The samples.

    Raises
    ------
    ValueError
        If a size is out of range.

    See Also
    --------
    intrinsic_dimension_sweep : Complexities on such data.

    Examples
    --------
    >>> import numpy as np, theory
    >>> X = theory.lowrank_gaussian(100, 10, 3, np.random.default_rng(0))
    >>> X.shape, int(np.linalg.matrix_rank(X))
    ((100, 10), 3)
    """
    n, d, r = check_count(n, "n"), check_count(d, "d"), check_count(r, "r")
    generator = check_rng(generator)
    if n * d > MAX_ELEMENTS:
        raise ValueError(f"n × d = {n} × {d} exceeds {MAX_ELEMENTS:.0e} values (8 GB); choose smaller n or d")
    if r > d:
        raise ValueError(f"r must be an integer in 1..d = {d}, got {r}")
    Q, _ = np.linalg.qr(generator.standard_normal((d, r)))
    return generator.standard_normal((n, r)) @ (math.sqrt(d / r) * Q).T


@fill_doc
def intrinsic_dimension_sweep(ranks=SWEEP_RANKS, *, d: int = 100, n: int = 500, c: float = 1.0,
                              draws: int = 2000, generator: np.random.Generator | None = None) -> list[dict]:
    """C10 sweep: Rademacher complexity of the ellipsoid vs ridge class on ``lowrank_gaussian`` data.

    C10; docs/theory.md §5.2.

    One dict per rank r: ``r, rank`` (measured), ``trace`` (tr Σ̂₀), ``ellipsoid, ellipsoid_se,
    ellipsoid_bound`` (√(c r/n)), ``ridge, ridge_se, ridge_bound`` (√(c tr Σ̂₀/n)), and the scaled values
    ``ellipsoid_over_sqrt_r = ellipsoid/√(c r/n)``, ``ridge_over_sqrt_d = ridge/√(c d/n)``: the
    ellipsoid class grows like √r, the ridge class like √(tr Σ̂₀) ≈ √d whatever r.

    Parameters
    ----------
    ranks : sequence of int, default (1, 2, 5, 10, 20, 50, 100)
        Intrinsic dimensions.
    d : int, default 100
        Ambient dimension.
    n : int, default 500
        Samples per rank.
    c : float, default 1.0
        Size of both classes.
    draws : int, default 2000
        Sign vectors per estimate.
    %(generator_numpy)s

    Returns
    -------
    list of dict
        One row per rank, keys as above.

    %(raises_range)s

    See Also
    --------
    lowrank_gaussian : The data.
    rademacher : Each estimate.

    Examples
    --------
    >>> import theory
    >>> rows = theory.intrinsic_dimension_sweep((1, 4), d=8, n=50, draws=200, generator=0)
    >>> [row["rank"] for row in rows]
    [1, 4]
    """
    rng = check_rng(generator)
    c = check_positive(c, "c")
    d, n = check_count(d, "d"), check_count(n, "n")
    if isinstance(ranks, (str, bytes)) or not hasattr(ranks, "__iter__"):
        raise ArgumentTypeError(f"ranks must be a sequence of integers in 1..d, got {ranks!r}")
    ranks = list(ranks)
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= d:
            raise ValueError(f"ranks must hold integers in 1..d = {d}, got {r!r}")
    if n * d > MAX_ELEMENTS:
        raise ValueError(f"n × d = {n} × {d} exceeds {MAX_ELEMENTS:.0e} values (8 GB); choose smaller n or d")
    rows = []
    for r in ranks:
        X = lowrank_gaussian(n, d, r, rng)
        ell = rademacher(X, c, cls="ellipsoid", draws=draws, generator=rng)
        rid = rademacher(X, c, cls="ridge", draws=draws, generator=rng)
        rows.append({"r": int(r), "rank": ell.rank, "d": d, "n": n, "c": c, "trace": float((X * X).sum() / n),
                     "ellipsoid": ell.value, "ellipsoid_se": ell.stderr, "ellipsoid_bound": ell.bound,
                     "ridge": rid.value, "ridge_se": rid.stderr, "ridge_bound": rid.bound,
                     "ellipsoid_over_sqrt_r": ell.value / math.sqrt(c * r / n),
                     "ridge_over_sqrt_d": rid.value / math.sqrt(c * d / n)})
    return rows


def _softplus(z):
    return np.logaddexp(z, 0.0)


@fill_doc
def generalization_gap_bound(X_train, y_train, X_test, y_test, *, C: float = 1.0, delta: float = 0.05,
                             draws: int = 2000, generator: np.random.Generator | None = None) -> dict:
    """C10 corollary for a trained logistic model: bound vs measured test − train gap (docs/theory.md §5.2).

    Both sets are centered with the training mean; ``LogisticRegression(C, fit_intercept=False)`` is
    fitted on the training set. With ``B = ‖θ̂‖`` (Θ = Θ_B), ``γ̂ = E h''(θ̂ᵀx)·θ̂ᵀΣ̂₀θ̂`` (the smallest γ
    with θ̂ ∈ W_γ; choosing γ after seeing the data ignores a union bound over γ), ``ρ̂`` from
    ``retentive_constant`` on Θ_B, L = 1 (logistic loss is 1-Lipschitz in the logit) and the loss
    range ``B_loss = softplus(B·max_i‖x_i‖)`` (max over train and test):

    ``bound = 2L·max{(γ̂/ρ̂)^{1/4}, (γ̂/ρ̂)^{1/2}}·√(r/n) + B_loss·√(log(1/δ)/(2n))``.

    Also ``bound_ellipsoid`` (Monte-Carlo Rad of the containing ellipsoid in place of the closed form)
    and ``bound_ridge`` (ball Θ_B: ``B·√(tr Σ̂₀/n)``). ``vacuous``: bound ≥ B_loss (no information, as the
    gap never exceeds the loss range); ``above_trivial``: ``train_loss + bound ≥ log 2``, i.e. the bound
    cannot certify a test loss better than the constant predictor θ = 0. Measured: ``train_loss, test_loss, gap``, accuracies, ``acc_gap``.

    Parameters
    ----------
    X_train : array_like, shape (n, d)
        Training inputs.
    y_train : array_like, shape (n,)
        Training labels in {0, 1}.
    X_test : array_like, shape (m, d)
        Test inputs.
    y_test : array_like, shape (m,)
        Test labels in {0, 1}.
    C : float, default 1.0
        Inverse regularization strength of the logistic fit.
    delta : float, default 0.05
        Failure probability of the bound.
    draws : int, default 2000
        Sign vectors for ``bound_ellipsoid``.
    %(generator_numpy)s

    Returns
    -------
    dict
        ``bound``, ``bound_ellipsoid``, ``bound_ridge``, ``vacuous``, ``above_trivial`` and the measured
        losses, accuracies and gaps.

    %(raises_range)s

    See Also
    --------
    wgamma_bound : The complexity term.
    retentive_constant : The estimate of ρ used.

    Examples
    --------
    >>> import numpy as np, theory
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((80, 2)); y = (X[:, 0] > 0).astype(int)
    >>> out = theory.generalization_gap_bound(X[:60], y[:60], X[60:], y[60:], draws=100, generator=0)
    >>> bool(out["bound"] > 0)
    True
    """
    from sklearn.linear_model import LogisticRegression

    delta = check_scalar(delta, "delta", float, min_val=0.0, max_val=1.0, include_boundaries="neither")
    C = check_positive(C, "C")
    if delta >= 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    Xtr, Xte = as_matrix(X_train, "X_train").cpu().numpy(), as_matrix(X_test, "X_test").cpu().numpy()
    ytr = as_labels(y_train, len(Xtr), "y_train", kind="binary").cpu().numpy().astype(float).reshape(-1)
    yte = as_labels(y_test, len(Xte), "y_test", kind="binary").cpu().numpy().astype(float).reshape(-1)
    if Xte.shape[1] != Xtr.shape[1]:
        raise ValueError(f"X_test must have d = {Xtr.shape[1]} columns like X_train, got {Xte.shape[1]}")
    mean = Xtr.mean(0)
    Xtr, Xte = Xtr - mean, Xte - mean
    rng = check_rng(generator)
    clf = LogisticRegression(C=C, fit_intercept=False, max_iter=10_000, tol=1e-10).fit(Xtr, ytr)
    theta = clf.coef_.reshape(-1)
    n = len(Xtr)
    radius = float(np.linalg.norm(theta))
    gamma = float(wgamma_value(Xtr, theta))
    ret = retentive_constant(Xtr, radius, generator=rng)
    rank = int(np.linalg.matrix_rank(Xtr))
    rad = wgamma_bound(gamma, ret["rho"], rank, n)
    ell = rademacher(Xtr, wgamma_ellipsoid_constant(gamma, ret["rho"]), cls="ellipsoid", draws=draws,
                     generator=rng)
    x_max = float(max(np.linalg.norm(Xtr, axis=1).max(), np.linalg.norm(Xte, axis=1).max()))
    loss_bound = float(_softplus(radius * x_max))
    conf = loss_bound * math.sqrt(math.log(1 / delta) / (2 * n))
    ridge_rad = radius * math.sqrt(float((Xtr * Xtr).sum()) / n / n)

    def loss(X, y):
        z = X @ theta
        return float((y * _softplus(-z) + (1 - y) * _softplus(z)).mean())  # = softplus(z) − yz, no cancellation

    train_loss, test_loss = loss(Xtr, ytr), loss(Xte, yte)
    train_acc = float(((Xtr @ theta > 0) == (ytr == 1)).mean())
    test_acc = float(((Xte @ theta > 0) == (yte == 1)).mean())
    bound = 2.0 * rad + conf
    return {"n_train": n, "n_test": len(Xte), "rank": rank, "C": C, "delta": delta, "radius": radius,
            "gamma": gamma, "rho": ret["rho"], "rho_raw": ret["raw"], "lipschitz": 1.0, "loss_bound": loss_bound,
            "rad_bound": rad, "rad_ellipsoid": ell.value, "rad_ellipsoid_se": ell.stderr, "rad_ridge": ridge_rad,
            "confidence_term": conf, "bound": bound, "bound_ellipsoid": 2.0 * ell.value + conf,
            "bound_ridge": 2.0 * ridge_rad + conf, "train_loss": train_loss, "test_loss": test_loss,
            "gap": test_loss - train_loss, "train_acc": train_acc, "test_acc": test_acc,
            "acc_gap": train_acc - test_acc, "vacuous": bound >= loss_bound,
            "above_trivial": train_loss + bound >= math.log(2.0)}
