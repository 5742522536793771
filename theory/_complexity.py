"""C10: empirical Rademacher complexity of the ellipsoid and ridge classes (docs/theory.md §5).

``Rad_n(F, S) = E_ξ sup_{f∈F} (1/n) Σ_i ξ_i f(x_i)`` over Rademacher signs ξ (the paper's σ; here σ is
the sigmoid). For linear classes the supremum over θ has a closed form per sign vector (``v = Xᵀξ/n``):

- ellipsoid ``E_c = {θ : θᵀΣ̂₀θ ≤ c}``: ``sup θᵀv = √(c·vᵀΣ̂₀⁺v) = √(c/n)·‖Pξ‖``, P the orthogonal
  projector onto the column space of X (rank r). Jensen: ``Rad = √(c/n) E‖Pξ‖ ≤ √(c r/n)``.
- ridge ball ``{‖θ‖₂ ≤ √c}``: ``sup θᵀv = √c·‖Xᵀξ‖/n``; ``Rad ≤ √c·√(E‖Xᵀξ‖²)/n = √(c·tr Σ̂₀/n)``.

Only the expectation over ξ is Monte Carlo. ``Σ̂₀ = XᵀX/n`` is the uncentered second moment
(the sample version of the theorem's ``Σ₀ = E[xxᵀ]``, the paper's Σ_X).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._validate import MAX_DRAWS, as_matrix, check_choice, check_count, check_positive, check_rng, check_scalar
from ._summary import summary_repr
from ._docs import fill_doc

CLASSES = ("ellipsoid", "ridge")
CHUNK_ELEMENTS = 1 << 22  # float64 values per block of sign vectors


@dataclass(frozen=True)
class RademacherEstimate:
    """Monte-Carlo Rademacher complexity ``value`` ± ``stderr`` and the closed-form ``bound``.

    C10; docs/theory.md §5.2.

    ``stderr`` is ``nan`` for a single draw (no spread to measure).

    Attributes
    ----------
    value : float
        Monte-Carlo mean of the exact per-sign-vector supremum.
    stderr : float
        Its standard error.
    bound : float
        ``√(c·r/n)`` (ellipsoid) or ``√(c·tr Σ̂₀/n)`` (ridge).
    cls : str
        ``"ellipsoid"`` or ``"ridge"``.
    c : float
        The size of the class.
    n : int
        Number of samples.
    rank : int
        ``rank(X)``.
    draws : int
        Number of sign vectors.

    See Also
    --------
    rademacher : Returns this record.
    """

    value: float
    stderr: float
    bound: float
    cls: str
    c: float
    n: int
    rank: int
    draws: int

    __repr__ = summary_repr


def _as_numpy(X) -> np.ndarray:
    return as_matrix(X, "X").cpu().numpy()


def svd_rank(Xn: np.ndarray):
    """``(U, S, Vt, r)``: thin SVD of X and its rank with ``np.linalg.matrix_rank``'s default tolerance
    ``S.max()·max(n, d)·eps`` (one SVD instead of two)."""
    U, S, Vt = np.linalg.svd(Xn, full_matrices=False)
    tol = S.max(initial=0.0) * max(Xn.shape) * np.finfo(Xn.dtype).eps
    return U, S, Vt, int((S > tol).sum())


def column_basis(X) -> np.ndarray:
    """Orthonormal basis ``U_r`` (n × r) of the column space of X; r = ``np.linalg.matrix_rank(X)``."""
    U, _, _, r = svd_rank(_as_numpy(X))
    return U[:, :r]


def _sign_rows(sigma, n: int) -> np.ndarray:
    """``sigma`` as rows of ``n`` signs (one vector becomes one row); another length is a ValueError."""
    S = np.atleast_2d(np.asarray(sigma, dtype=float))
    if S.shape[-1] != n:
        raise ValueError(f"sigma must have n = {n} entries per sign vector, got shape {S.shape}")
    return S


@fill_doc
def ellipsoid_sup(X, c, sigma) -> np.ndarray:
    """Per sign vector: ``sup_{θᵀΣ̂₀θ ≤ c} (1/n) Σ_i ξ_i θᵀx_i = √(c/n)·‖Pξ‖`` (C10), ξ = ``sigma``.

    C10; docs/theory.md §5.2.

    ``sigma``: one sign vector ``(n,)`` or a stack ``(m, n)`` (any reals: the formula is linear in ξ).
    Accuracy: the projector comes from X's SVD, so it degrades with X's conditioning (measured ≤ 4e-5 relative
    at singular values 1, 1e-6, 1e-12; docs/theory.md §0.1).

    Parameters
    ----------
    %(X_data)s
    c : float
        Size of the ellipsoid ``{θᵀΣ̂₀θ ≤ c}``.
    %(sigma)s

    Returns
    -------
    numpy.ndarray
        The supremum per sign vector (a 0-d array for one vector).

    %(raises_sign_vectors)s

    See Also
    --------
    ridge_sup : The ridge ball.
    rademacher : The Monte-Carlo mean over sign vectors.

    Examples
    --------
    >>> import numpy as np, theory
    >>> X = np.eye(2)
    >>> round(float(theory.ellipsoid_sup(X, 1.0, np.array([1.0, -1.0]))), 12)  # √(c/n)·‖Pξ‖ = √(1/2)·√2
    1.0
    """
    c = check_positive(c, "c")
    U = column_basis(X)
    S = _sign_rows(sigma, U.shape[0])
    out = math.sqrt(c / U.shape[0]) * np.linalg.norm(S @ U, axis=-1)
    return out if np.ndim(sigma) > 1 else out[0]


@fill_doc
def ridge_sup(X, c, sigma) -> np.ndarray:
    """Per sign vector: ``sup_{‖θ‖ ≤ √c} (1/n) Σ_i ξ_i θᵀx_i = √c·‖Xᵀξ‖/n`` (C10), ξ = ``sigma``.

    C10; docs/theory.md §5.2.

    Parameters
    ----------
    %(X_data)s
    c : float
        Squared radius of the ball ``{‖θ‖² ≤ c}``.
    %(sigma)s

    Returns
    -------
    numpy.ndarray
        The supremum per sign vector.

    %(raises_sign_vectors)s

    See Also
    --------
    ellipsoid_sup : The ellipsoid of Mixup's class.
    rademacher : The Monte-Carlo mean over sign vectors.

    Examples
    --------
    >>> import numpy as np, theory
    >>> float(theory.ridge_sup(np.eye(2), 4.0, np.array([1.0, 1.0])))  # √c·‖Xᵀξ‖/n = 2·√2/2
    1.4142135623730951
    """
    c = check_positive(c, "c")
    Xn = _as_numpy(X)
    S = _sign_rows(sigma, Xn.shape[0])
    out = math.sqrt(c) * np.linalg.norm(S @ Xn, axis=-1) / Xn.shape[0]
    return out if np.ndim(sigma) > 1 else out[0]


@fill_doc
def rademacher(X, c, *, cls: str = "ellipsoid", draws: int = 2000,
               generator: np.random.Generator | None = None) -> RademacherEstimate:
    """C10 (Zhang et al. 2021, Theorem 4.2; docs/theory.md §5.2): ``Rad_n`` of the ellipsoid ``{θᵀΣ̂₀θ ≤ c}`` or ridge ``{‖θ‖² ≤ c}`` class on X.

    Exact supremum per sign vector (``ellipsoid_sup``/``ridge_sup``), Monte Carlo over ``draws``
    Rademacher sign vectors from ``generator`` (a numpy Generator; ``None`` draws fresh randomness).
    ``bound``: ``√(c·r/n)`` (ellipsoid, r = ``np.linalg.matrix_rank(X)``) or ``√(c·tr Σ̂₀/n)`` (ridge).

    Parameters
    ----------
    %(X_data)s
    c : float
        Size of the class, ``c > 0``.
    cls : {"ellipsoid", "ridge"}, default "ellipsoid"
        ``{θᵀΣ̂₀θ ≤ c}`` or ``{‖θ‖² ≤ c}``.
    draws : int, default 2000
        Number of Rademacher sign vectors.
    %(generator_numpy)s

    Returns
    -------
    RademacherEstimate
        ``value``, ``stderr``, ``bound`` and ``rank``.

    %(raises_range)s

    See Also
    --------
    ellipsoid_sup, ridge_sup : The supremum for one sign vector.
    wgamma_rademacher : The class ``W_γ`` of the paper's theorem.
    manifold_rademacher : The class at a network's hidden layer (C11).

    Examples
    --------
    >>> import numpy as np, theory
    >>> X = np.array([[1.0, 0.5], [-1.0, -0.5], [0.5, -1.0], [-0.5, 1.0]])
    >>> r = theory.rademacher(X, 1.0, draws=4000, generator=0)
    >>> r.rank, round(r.bound, 6), bool(r.value <= r.bound)  # bound = √(c·rank/n)
    (2, 0.707107, True)
    """
    c = check_positive(c, "c")
    check_choice(cls, "cls", CLASSES)
    draws = check_scalar(draws, "draws", int, min_val=2, max_val=MAX_DRAWS)
    Xn = _as_numpy(X)
    n = Xn.shape[0]
    rng = check_rng(generator)
    U, _, _, r = svd_rank(Xn)
    if cls == "ellipsoid":
        M, scale, bound = U[:, :r], math.sqrt(c / n), math.sqrt(c * r / n)
    else:
        M, scale, bound = Xn, math.sqrt(c) / n, math.sqrt(c * float((Xn * Xn).sum()) / n / n)
    block = max(1, CHUNK_ELEMENTS // max(n, M.shape[1]))
    sups = []
    for start in range(0, draws, block):
        m = min(block, draws - start)
        S = rng.integers(0, 2, size=(m, n)).astype(float) * 2.0 - 1.0
        sups.append(scale * np.linalg.norm(S @ M, axis=1))
    sups = np.concatenate(sups)
    stderr = float(sups.std(ddof=1) / math.sqrt(draws)) if draws > 1 else math.nan
    return RademacherEstimate(float(sups.mean()), stderr, bound, cls, c, n, r, draws)
