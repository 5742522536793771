"""What a Mixup training loop minimises: exact moments of the per-step loss (docs/theory.md §2.7).

Data reshuffled every epoch and cut into batches; inside a batch each example is mixed with a
partner (``scheme``), inputs and (label-smoothed) targets alike. The expectation of one step's loss
is a combination of two exact quantities: the pair sum ``Σ_ij E_λ l(i, j) = n² L_mix`` and the
self-pair sum ``Σ_i l(i, i) = n L_std`` (self-mixing leaves ``x_i`` unchanged). The variance needs
second moments: sums of products of two pair losses over index patterns, reduced to O(n²) row,
column and diagonal sums of the pair-loss matrix at each λ-node (docs/theory.md §2.7).
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ._mixing import MAX_NODES, MixupLambda
from ._mixup_loss import CHUNK_ELEMENTS, _fold_symmetric, _pair_blocks, _plain_rest, pair_sum_and_error
from ._models import is_affine, is_piecewise_linear
from ._problem import Problem, prepare
from ._summary import summary_repr
from ._validate import (DTYPE, MAX_CHUNK_ELEMENTS, MAX_DRAWS, ArgumentTypeError, check_alpha_beta, check_choice,
                        check_count, check_rng, check_rtol, check_scalar)
from ._warnings import AccuracyWarning
from ._docs import fill_doc

ESTIMATOR_SCHEMES = ("uniform", "permutation", "flip", "flip-per-sample")
LAST_BATCH = ("keep", "drop", "merge")
VARIANCE_RTOL = 1e-8
"""Default relative target of the variance's node doubling (its error estimate is ``|V(2q) − V(q)|``)."""
FIRST_NODES = 32
EXACT_MAX_N = 4096
"""``estimator_variance(method="auto")`` sums exactly up to this n (pair-loss matrices of n² floats: 128 MiB
each at 4096), and simulates steps above it."""
ROUNDING = 64 * float(np.finfo(np.float64).eps)


# ---------------------------------------------------------------------------------------------
# the epoch: batch sizes
# ---------------------------------------------------------------------------------------------

def epoch_batch_sizes(n: int, batch_size: int, last_batch: str = "keep") -> list[int]:
    """Sizes of the steps of one epoch over ``n`` reshuffled points (docs/theory.md §2.7).

    ``last_batch``: ``"keep"`` (a last, smaller batch is a step of its own — PyTorch's
    ``DataLoader(drop_last=False)``), ``"drop"`` (it is skipped — ``drop_last=True``) or ``"merge"``
    (a last batch of one sample joins the batch before it, as ``experiments.training`` does).
    ``batch_size > n`` gives one batch of all n points (``"drop"``: no step, a ``ValueError``).

    Examples
    --------
    >>> epoch_batch_sizes(10, 4), epoch_batch_sizes(10, 4, "drop"), epoch_batch_sizes(9, 4, "merge")
    ([4, 4, 2], [4, 4], [4, 5])
    """
    sizes = [batch_size] * (n // batch_size)
    rest = n - batch_size * len(sizes)
    if rest and last_batch != "drop":
        if last_batch == "merge" and rest == 1 and sizes:
            sizes[-1] += 1
        else:
            sizes.append(rest)
    if not sizes:
        raise ValueError(f"batch_size = {batch_size} exceeds n = {n} with last_batch='drop': an epoch has no step")
    return sizes


# ---------------------------------------------------------------------------------------------
# index patterns: set partitions of the four slots (i, j, k, l) of l(i, j)·l(k, l)
# ---------------------------------------------------------------------------------------------

def _partitions(slots: int = 4) -> list[tuple[int, ...]]:
    """Set partitions of ``slots`` items as restricted growth strings: (0, 1, 0, 1) is {i=k}{j=l}."""
    out = [(0,)]
    for _ in range(slots - 1):
        out = [p + (b,) for p in out for b in range(max(p) + 2)]
    return out


PATTERNS = _partitions()


def _blocks(p: tuple[int, ...]) -> list[frozenset]:
    return [frozenset(s for s, b in enumerate(p) if b == label) for label in range(max(p) + 1)]


@lru_cache(maxsize=None)
def _moebius() -> np.ndarray:
    """``M[π, σ] = μ(π, σ)`` on the lattice of set partitions (σ coarser than π), zero elsewhere.

    Distinct-index sums from free sums: ``D(π) = Σ_{σ ≥ π} μ(π, σ) F(σ)``, with
    ``μ(π, σ) = Π_{B ∈ σ} (−1)^{k_B − 1} (k_B − 1)!``, ``k_B`` the number of π-blocks merged into B.
    """
    M = np.zeros((len(PATTERNS), len(PATTERNS)))
    for a, p in enumerate(PATTERNS):
        pb = _blocks(p)
        for b, s in enumerate(PATTERNS):
            sb = _blocks(s)
            if not all(any(x <= y for y in sb) for x in pb):
                continue
            mu = 1
            for y in sb:
                k = sum(1 for x in pb if x <= y)
                mu *= (-1) ** (k - 1) * math.factorial(k - 1)
            M[a, b] = mu
    return M


def _free_sums(A: torch.Tensor) -> torch.Tensor:
    """``F(π) = Σ A[s0, s1]·A[s2, s3]`` over index assignments constant on the blocks of π (no
    distinctness), for the 15 partitions π of ``PATTERNS``, from row/column/diagonal sums (O(n²))."""
    T = A.sum()
    r, c, d = A.sum(1), A.sum(0), torch.diagonal(A)
    tr = d.sum()
    values = {
        (0, 1, 2, 3): T * T,
        (0, 0, 1, 2): tr * T, (0, 1, 2, 2): tr * T,
        (0, 1, 0, 2): (r * r).sum(), (0, 1, 2, 1): (c * c).sum(),
        (0, 1, 2, 0): (r * c).sum(), (0, 1, 1, 2): (r * c).sum(),
        (0, 0, 1, 1): tr * tr, (0, 1, 0, 1): (A * A).sum(), (0, 1, 1, 0): (A * A.T).sum(),
        (0, 0, 0, 1): (d * r).sum(), (0, 1, 0, 0): (d * r).sum(),
        (0, 0, 1, 0): (d * c).sum(), (0, 1, 1, 1): (d * c).sum(),
        (0, 0, 0, 0): (d * d).sum(),
    }
    return torch.stack([values[p] for p in PATTERNS])


def _falling(n: int, k: int) -> float:
    return float(math.prod(range(n - k + 1, n + 1)))


def _distinct_means(F: np.ndarray, n: int) -> np.ndarray:
    """Mean of ``A[s0, s1]·A[s2, s3]`` over distinct indices per block of each pattern (0 where n is too small)."""
    D = _moebius() @ F
    k = np.array([max(p) + 1 for p in PATTERNS])
    falling = np.array([_falling(n, int(kk)) for kk in k])
    return np.divide(D, falling, out=np.zeros_like(D), where=falling > 0)


def pattern_counts(scheme: str, m: int) -> dict[tuple[int, ...], float]:
    """Expected number of ordered position pairs ``(p, r)`` of a batch of size ``m`` whose slots
    ``(p, partner(p), r, partner(r))`` fall on each pattern of positions (docs/theory.md §2.7).

    ``"permutation"``: averaged over the uniform permutation; ``"flip"``/``"flip-per-sample"``: the
    fixed pairing ``p ↔ m − 1 − p``. The counts sum to ``m²``.
    """
    if scheme == "permutation":
        if m == 1:
            return {(0, 0, 0, 0): 1.0}
        return {(0, 0, 0, 0): 1.0, (0, 1, 0, 1): m - 1.0, (0, 0, 1, 1): 1.0, (0, 1, 1, 0): 1.0,
                (0, 0, 1, 2): m - 2.0, (0, 1, 1, 2): m - 2.0, (0, 1, 2, 0): m - 2.0, (0, 1, 2, 2): m - 2.0,
                (0, 1, 2, 3): (m - 2.0) * (m - 3.0)}
    h = m % 2  # the middle of an odd batch is paired with itself
    e = m - h
    return {(0, 1, 0, 1): float(e), (0, 0, 0, 0): float(h), (0, 1, 1, 0): float(e),
            (0, 0, 1, 2): float(h * e), (0, 1, 2, 2): float(h * e), (0, 1, 2, 3): float(e * (e - 2))}


def self_probability(scheme: str, m: int, n: int) -> float:
    """Probability that an example of a batch of size ``m`` is mixed with itself."""
    if scheme == "uniform":
        return 1.0 / n
    if scheme == "permutation":
        return 1.0 / m
    return (m % 2) / m


# ---------------------------------------------------------------------------------------------
# exact pair sums and per-node pair-loss matrices
# ---------------------------------------------------------------------------------------------

def smoothed_problem(P: Problem, s: float) -> Problem:
    """``P`` with targets ``(1 − s)·y + s/K`` (K = 2 for the logistic loss, else the model's outputs)."""
    if s == 0:
        return P
    if P.loss.name == "squared" and P.K == 1:
        raise ValueError(f"label_smoothing = {s!r} needs class targets: loss='squared' with one output has no "
                         "classes to smooth over (use 0, or a model with K >= 2 outputs)")
    K = 2 if P.loss.name == "logistic" else P.K
    return dataclasses.replace(P, Y=(1 - s) * P.Y + s / K)


def _pair_matrix(P: Problem, U: torch.Tensor, rest, lam: float, chunk_elements: int) -> torch.Tensor:
    """``A[i, j] = l(f(λx_i + (1−λ)x_j), λy_i + (1−λ)y_j)`` at one λ, as an (n, n) tensor."""
    n = U.shape[0]
    shape = tuple(U.shape[1:])
    width = max(int(np.prod(shape)), P.K) * 4
    A = torch.empty(n, n, dtype=DTYPE, device=U.device)
    with torch.no_grad():
        for i0, i1, j0, j1 in _pair_blocks(n, width, chunk_elements):
            Uj = U[None, j0:j1]
            mixed = Uj + lam * (U[i0:i1, None] - Uj)
            Yj = P.Y[None, j0:j1]
            Ym = Yj + lam * (P.Y[i0:i1, None] - Yj)
            F = rest(mixed.reshape(-1, *shape)).reshape(i1 - i0, j1 - j0, -1)
            A[i0:i1, j0:j1] = P.loss.value(F, Ym)
    return A


@dataclass
class _NodeSums:
    """Second-moment ingredients of one λ-rule (pair losses centred at ``center``)."""

    shared: np.ndarray  # E_λ of the free sums of A(λ) (both factors at the same λ)
    independent: np.ndarray  # free sums of G = E_λ A(λ) (the factors at independent λ's)
    total: float  # Σ_ij G_ij
    trace: float  # Σ_i G_ii


def _node_sums(P: Problem, lam: np.ndarray, w: np.ndarray, center: float, chunk_elements: int) -> _NodeSums:
    """Free sums of the λ-rule's pair-loss matrices. A rule symmetric under λ ↔ 1 − λ (α = β) evaluates
    half its nodes: ``A(1 − λ) = A(λ)ᵀ`` (the same mixed point and label with i and j swapped)."""
    U, rest = _plain_rest(P, True)
    n = P.n
    shared = torch.zeros(len(PATTERNS), dtype=DTYPE, device=P.device)
    G = torch.zeros(n, n, dtype=DTYPE, device=P.device)
    lam_t, w_t = torch.as_tensor(lam, dtype=DTYPE), torch.as_tensor(w, dtype=DTYPE)
    lam_f, w_f = _fold_symmetric(lam_t, w_t)
    folded = lam_f.shape[0] < lam_t.shape[0]
    for lq, wq in zip((lam_f if folded else lam_t).tolist(), (w_f if folded else w_t).tolist()):
        A = _pair_matrix(P, U, rest, lq, chunk_elements) - center
        if folded and abs(lq - 0.5) > 1e-12:  # this node and its mirror 1 − λ, each with weight wq/2
            shared += 0.5 * wq * (_free_sums(A) + _free_sums(A.T))
            G += 0.5 * wq * (A + A.T)
        else:
            shared += wq * _free_sums(A)
            G += wq * A
    independent = _free_sums(G)
    return _NodeSums(shared.cpu().numpy(), independent.cpu().numpy(), float(G.sum()), float(torch.diagonal(G).sum()))


def _second_moment(S: _NodeSums, scheme: str, m: int, n: int) -> tuple[float, float]:
    """``(E[L_m], E[L_m²])`` for one batch of size ``m`` (centred pair losses), L_m the batch mean."""
    off = (S.total - S.trace) / (n * (n - 1)) if n > 1 else 0.0
    p_self = self_probability(scheme, m, n)
    first = p_self * S.trace / n + (1 - p_self) * off if scheme != "uniform" else S.total / n ** 2
    if scheme == "uniform":  # partners i.i.d. uniform on 1..n, one λ per batch
        sq = m * S.shared[PATTERNS.index((0, 1, 0, 1))] / n ** 2
        if m > 1:
            cross = S.shared[PATTERNS.index((0, 1, 2, 3))] - S.shared[PATTERNS.index((0, 1, 0, 2))]
            sq += m * (m - 1) * cross / (n ** 3 * (n - 1))
        return first, sq / m ** 2
    shared = _distinct_means(S.shared, n)
    independent = _distinct_means(S.independent, n)
    total = 0.0
    for p, count in pattern_counts(scheme, m).items():
        if count == 0:
            continue
        k = PATTERNS.index(p)
        same_term = p[0] == p[2]  # p = r: one example, one λ
        total += count * (shared[k] if scheme != "flip-per-sample" or same_term else independent[k])
    return first, total / m ** 2


def sampled_step_variance(P: Problem, alpha: float, beta: float, scheme: str, batch_size: int, last_batch: str,
                          draws: int, rng: np.random.Generator) -> tuple[float, float]:
    """``(sample variance, its standard error)`` of ``draws`` independent simulated steps.

    Each draw picks a step of the epoch uniformly, its batch as a uniform random ordered subset of
    that size (the law of a reshuffled epoch's step), partners and λ by ``scheme``, and evaluates the
    mean loss of the mixed batch. Standard error of the unbiased sample variance ``s²``:
    ``√((m₄ − s⁴(N − 3)/(N − 1))/N)`` with the sample fourth central moment ``m₄``.
    """
    steps = epoch_batch_sizes(P.n, batch_size, last_batch)
    n, inputs = P.n, P.inputs
    out = torch.empty(draws, dtype=DTYPE, device=P.device)
    with torch.no_grad():
        for k in range(draws):
            m = steps[rng.integers(len(steps))]
            idx = rng.choice(n, size=m, replace=False)
            if scheme == "uniform":
                partner = rng.integers(0, n, size=m)
            elif scheme == "permutation":
                partner = idx[rng.permutation(m)]
            else:
                partner = idx[::-1].copy()
            lam = rng.beta(alpha, beta, size=m) if scheme == "flip-per-sample" else np.full(m, rng.beta(alpha, beta))
            i, j = torch.as_tensor(idx, device=P.device), torch.as_tensor(partner, device=P.device)
            lt = torch.as_tensor(lam, dtype=DTYPE, device=P.device)
            lx = lt.reshape(m, *([1] * (inputs.ndim - 1)))
            mixed = inputs[j] + lx * (inputs[i] - inputs[j])
            Ym = P.Y[j] + lt[:, None] * (P.Y[i] - P.Y[j])
            out[k] = P.loss.value(P.fn(mixed.reshape(m, -1)), Ym).mean()
    values = out.cpu().numpy()
    centred = values - values.mean()
    s2 = float(centred.var(ddof=1))
    m4 = float(np.mean(centred ** 4))
    return s2, math.sqrt(max(m4 - s2 * s2 * (draws - 3) / (draws - 1), 0.0) / draws)


# ---------------------------------------------------------------------------------------------
# public results
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EstimatorMoments:
    """Exact moments of one training step's Mixup loss, per scheme and batch size (docs/theory.md §2.7).

    ``expectation[s][b]``, ``variance[s][b]`` (and their ``*_error``) are numpy arrays over
    ``batch_sizes`` for each scheme ``s`` of ``schemes``. ``mixup_loss`` (= L_mix), ``standard_loss``
    (= L_std, the mean self-pair loss) and ``off_diagonal`` (the mean over ordered pairs i ≠ j) are
    computed with the smoothed targets.

    Attributes
    ----------
    schemes : tuple of str
        The schemes computed.
    batch_sizes : numpy.ndarray
        The batch sizes computed.
    n : int
        Number of points.
    label_smoothing : float
        ``s``: targets ``(1 − s)·y + s/K`` before mixing.
    last_batch : str
        What happens to a last, smaller batch.
    mixup_loss, standard_loss, off_diagonal : float
        L_mix, L_std (the mean self-pair loss) and the mean over ordered pairs i ≠ j.
    pair_sum_error : float
        Error bound of the pair sum n²·L_mix (the only inexact ingredient of the expectations).
    expectation, expectation_error : dict
        Per scheme, numpy arrays over ``batch_sizes``: the exact expectation of one step's loss and its bound.
    variance, variance_error : dict
        Per scheme, numpy arrays over ``batch_sizes``: the variance of one step's loss and its error estimate
        (empty when not computed).
    nodes : int
        λ-nodes of the variance's rule.

    See Also
    --------
    estimator_moments : Returns this record.
    estimator_expectation, estimator_variance : One scheme and batch size at a time.
    """

    schemes: tuple
    batch_sizes: np.ndarray
    n: int
    label_smoothing: float
    last_batch: str
    mixup_loss: float
    standard_loss: float
    off_diagonal: float
    pair_sum_error: float
    expectation: dict
    expectation_error: dict
    variance: dict
    variance_error: dict
    nodes: int

    __repr__ = summary_repr


def _validated(model, X, y, alpha, beta, scheme, batch_size, label_smoothing, loss, last_batch):
    alpha, beta = check_alpha_beta(alpha, beta)
    if isinstance(scheme, str):
        schemes = (scheme,)
    elif isinstance(scheme, (list, tuple)):
        schemes = tuple(scheme)
    else:
        raise ArgumentTypeError(f"scheme must be a scheme name or a sequence of them ({ESTIMATOR_SCHEMES}), "
                                f"got {type(scheme).__name__} {scheme!r}")
    if not schemes:
        raise ValueError("scheme must name at least one scheme")
    for s in schemes:
        check_choice(s, "scheme", ESTIMATOR_SCHEMES)
    sizes = list(batch_size) if isinstance(batch_size, (list, tuple, np.ndarray, range)) else [batch_size]
    if not sizes:
        raise ValueError("batch_size must be at least one integer >= 1")
    sizes = [check_count(b, "batch_size") for b in sizes]
    s = check_scalar(label_smoothing, "label_smoothing", float, min_val=0, max_val=1)
    check_choice(last_batch, "last_batch", LAST_BATCH)
    P = smoothed_problem(prepare(model, X, y, loss), s)
    for b in sizes:
        epoch_batch_sizes(P.n, b, last_batch)  # raises for an epoch without steps
    return P, alpha, beta, schemes, sizes, s


def _expectations(P, alpha, beta, schemes, sizes, last_batch, rtol):
    """Exact pair sum T and self sum D, and the expectation (with its error) per scheme and batch size."""
    n = P.n
    total, err = pair_sum_and_error(P, alpha, beta, None, rtol)
    T = float(total)
    T_err = float(err) if err is not None else 0.0
    D = float(P.loss.value(P.F, P.Y).sum())
    off = (T - D) / (n * (n - 1)) if n > 1 else 0.0
    E, E_err = {}, {}
    for s in schemes:
        vals, errs = [], []
        for b in sizes:
            steps = epoch_batch_sizes(n, b, last_batch)
            if s == "uniform":
                v, e = T / n ** 2, T_err / n ** 2
            else:
                p = np.array([self_probability(s, m, n) for m in steps])
                v = float(np.mean(p * D / n + (1 - p) * off))
                e = float(np.mean(1 - p)) * T_err / max(n * (n - 1), 1)
            vals.append(v)
            errs.append(e + ROUNDING * abs(v))
        E[s], E_err[s] = np.array(vals), np.array(errs)
    return T, T_err, D, off, E, E_err


def _variances(P, alpha, beta, schemes, sizes, last_batch, rtol, center, chunk_elements):
    """Variance of one step's loss by node doubling; returns (V, V_err, nodes)."""
    dist = MixupLambda(alpha, beta)
    if is_piecewise_linear(P.model) and not is_affine(P.model):
        warnings.warn("estimator_variance: the pair losses of a piecewise-linear network have kinks in λ; "
                      "the node-doubling error estimate of the variance is not a bound", AccuracyWarning,
                      stacklevel=4)

    def at(q):
        S = _node_sums(P, *dist.nodes(q), center, chunk_elements)
        out = {}
        for s in schemes:
            row = []
            for b in sizes:
                steps = epoch_batch_sizes(P.n, b, last_batch)
                moments = {m: _second_moment(S, s, m, P.n) for m in set(steps)}
                m1 = float(np.mean([moments[m][0] for m in steps]))
                m2 = float(np.mean([moments[m][1] for m in steps]))
                row.append((max(m2 - m1 * m1, 0.0), m2))
            out[s] = np.array(row)
        return out

    q = FIRST_NODES
    prev = at(q)
    while True:
        q *= 2
        cur = at(q)
        # rounding of the centred products: ~ulp·(m2 + |c|·√m2) (pair losses of size |c| shifted by c)
        floor = {s: ROUNDING * (cur[s][:, 1] + abs(center) * np.sqrt(cur[s][:, 1])) for s in schemes}
        diff = {s: np.abs(cur[s][:, 0] - prev[s][:, 0]) for s in schemes}
        err = {s: diff[s] + floor[s] for s in schemes}
        done = all(np.all(diff[s] <= rtol * cur[s][:, 0] + floor[s]) for s in schemes)
        if done or 2 * q > MAX_NODES:
            break
        prev = cur
    if not done:
        warnings.warn(f"estimator_variance: error estimate above rtol = {rtol:g} at the largest rule ({q} nodes)",
                      AccuracyWarning, stacklevel=4)
    return {s: cur[s][:, 0] for s in schemes}, err, q


@fill_doc
def estimator_moments(model, X, y, alpha, beta=None, *, schemes=ESTIMATOR_SCHEMES, batch_sizes,
                      label_smoothing: float = 0.0, loss: str = "logistic", last_batch: str = "keep",
                      variance: bool = True, rtol: float | None = None,
                      chunk_elements: int = CHUNK_ELEMENTS) -> EstimatorMoments:
    """Expectation and variance of one training step's Mixup loss for several schemes and batch sizes.

    The pair-loss sums are computed once and shared by every scheme and batch size (what
    :func:`estimator_expectation` and :func:`estimator_variance` compute one at a time).
    docs/theory.md §2.7; the setting of Zhang et al. 2021, §2 (the Mixup loss) as trained in practice.

    Parameters
    ----------
    %(model_X_y_alpha_beta_as_mixup_loss)s
    schemes : str or sequence of str
        Among ``"uniform"``, ``"permutation"``, ``"flip"``, ``"flip-per-sample"`` (see
        :func:`estimator_expectation`).
    batch_sizes : int or sequence of int
        Batch sizes, each >= 1.
    label_smoothing : float
        ``s`` in [0, 1]: targets ``(1 − s)·y + s/K`` before mixing.
    %(loss_as_mixup_loss)s
    last_batch : {"keep", "drop", "merge"}
        What happens to a last, smaller batch (:func:`epoch_batch_sizes`).
    variance : bool
        Also compute the variances (the expensive part: all pair losses at every λ-node).
    rtol : float, optional
        Relative target of the variance's node doubling (default ``VARIANCE_RTOL`` = 1e-8); the
        expectation uses ``mixup_loss``'s default accuracy.
    chunk_elements : int
        Memory budget per intermediate tensor, as for ``mixup_loss``.

    Returns
    -------
    EstimatorMoments

    Raises
    ------
    ValueError
        For an unknown scheme or ``last_batch``, a batch size < 1 (or an epoch without steps),
        ``label_smoothing`` outside [0, 1], and every invalid input ``mixup_loss`` refuses.
    TypeError
        For a non-integer batch size or a non-numeric ``label_smoothing``.

    See Also
    --------
    estimator_expectation, estimator_variance, mixup_loss

    Examples
    --------
    %(example_linear)s
    >>> r = theory.estimator_moments(model, X, y, 1.0, schemes=("permutation", "flip"), batch_sizes=(2, 4))
    >>> bool(np.all(r.variance["flip"] >= 0)), bool(abs(r.expectation["flip"][1] - r.off_diagonal) < 1e-12)
    (True, True)
    """
    rtol = VARIANCE_RTOL if rtol is None else check_rtol(rtol)
    check_scalar(chunk_elements, "chunk_elements", int, min_val=1, max_val=MAX_CHUNK_ELEMENTS)
    check_choice(variance, "variance", (True, False))
    P, alpha, beta, schemes, sizes, s = _validated(model, X, y, alpha, beta, schemes, batch_sizes,
                                                   label_smoothing, loss, last_batch)
    T, T_err, D, off, E, E_err = _expectations(P, alpha, beta, schemes, sizes, last_batch, None)
    n = P.n
    if variance:
        V, V_err, q = _variances(P, alpha, beta, schemes, sizes, last_batch, rtol, T / n ** 2, chunk_elements)
    else:
        V = {k: np.full(len(sizes), np.nan) for k in schemes}
        V_err, q = dict(V), 0
    return EstimatorMoments(schemes, np.array(sizes), n, s, last_batch, T / n ** 2, D / n, off, T_err / n ** 2,
                            E, E_err, V, V_err, q)


@fill_doc
def estimator_expectation(model, X, y, alpha, beta=None, *, scheme: str, batch_size: int,
                          label_smoothing: float = 0.0, loss: str = "logistic", last_batch: str = "keep",
                          return_error: bool = False):
    """Exact expectation of one training step's Mixup loss under a practical pairing scheme.

    Data reshuffled every epoch (uniformly) and cut into consecutive batches of ``batch_size``;
    every step of an epoch weighs the same (the expectation is that of the loss of a step drawn
    uniformly from the epoch: what SGD's steps average). One step's loss is the batch mean of
    ``l(f(λx_i + (1−λ)x_j), λỹ_i + (1−λ)ỹ_j)`` with partner j and ``λ ~ Beta(α, β)``, and label
    smoothing ``ỹ = (1 − s)·y + s/K`` before mixing (K = 2 for the logistic loss). With
    ``T = Σ_ij E_λ l(i, j) = n² L_mix`` and ``D = Σ_i l(x_i, ỹ_i) = n L_std`` (docs/theory.md §2.7):

    - ``"uniform"``: partners i.i.d. uniform on all n points: ``L_mix`` (= ``mixup_loss``);
    - ``"permutation"``: a uniform random permutation of the batch, one λ per batch: a batch of
      size m pairs an example with itself with probability 1/m, so
      ``E_m = D/(n m) + (1 − 1/m)·(T − D)/(n(n − 1))``;
    - ``"flip"``: the batch paired with its reverse, one λ per batch: no self-pair in an even
      batch (``E_m = (T − D)/(n(n − 1)) = (n L_mix − L_std)/(n − 1)``); an odd batch pairs its
      middle with itself (the permutation's formula);
    - ``"flip-per-sample"``: the same pairing, one λ per example: the same expectation as ``"flip"``.

    The result averages ``E_m`` over the epoch's batch sizes (``last_batch``).

    Parameters
    ----------
    %(model_X_y_alpha_beta_as_mixup_loss)s
    scheme : {"uniform", "permutation", "flip", "flip-per-sample"}
        How partners (and λ) are drawn inside a batch.
    batch_size : int
        Batch size, >= 1 (larger than n: one batch of all points).
    label_smoothing : float
        ``s`` in [0, 1].
    %(loss_as_mixup_loss)s
    last_batch : {"keep", "drop", "merge"}
        A last, smaller batch: a step of its own (default, ``DataLoader(drop_last=False)``), dropped,
        or (one sample only) merged into the previous batch (``experiments.training``).
    return_error : bool
        Return ``(value, error)``: ``error`` bounds the error of the value as ``mixup_loss_error``'s
        does (quadrature of T, the only inexact ingredient), plus rounding.

    Returns
    -------
    float, or (float, float) with ``return_error``.

    Raises
    ------
    ValueError
        For an unknown ``scheme`` or ``last_batch``, ``batch_size`` < 1, ``label_smoothing`` outside
        [0, 1] (or any smoothing for a one-output squared loss), and every input ``mixup_loss`` refuses.
    TypeError
        For a non-integer ``batch_size`` or a non-numeric ``label_smoothing``.

    See Also
    --------
    estimator_variance, estimator_moments, mixup_loss, mixup_loss_error

    Examples
    --------
    %(example_linear)s
    >>> mix = theory.mixup_loss(model, X, y, 1.0)
    >>> abs(theory.estimator_expectation(model, X, y, 1.0, scheme="uniform", batch_size=2) - mix) < 1e-12
    True
    >>> flip = theory.estimator_expectation(model, X, y, 1.0, scheme="flip", batch_size=4)
    >>> std = float(np.mean(np.logaddexp(0, -(2 * y - 1) * (X @ [1.0, 0.2]))))  # L_std
    >>> abs(flip - (4 * mix - std) / 3) < 1e-12  # (n L_mix − L_std)/(n − 1)
    True
    """
    P, alpha, beta, schemes, sizes, _ = _validated(model, X, y, alpha, beta, scheme, batch_size,
                                                   label_smoothing, loss, last_batch)
    if len(schemes) != 1 or len(sizes) != 1:
        raise ValueError("estimator_expectation takes one scheme and one batch_size (estimator_moments takes several)")
    *_, E, E_err = _expectations(P, alpha, beta, schemes, sizes, last_batch, None)
    value, error = float(E[schemes[0]][0]), float(E_err[schemes[0]][0])
    return (value, error) if return_error else value


@fill_doc
def estimator_variance(model, X, y, alpha, beta=None, *, scheme: str, batch_size: int,
                       label_smoothing: float = 0.0, loss: str = "logistic", last_batch: str = "keep",
                       rtol: float | None = None, return_error: bool = False, method: str = "auto",
                       draws: int = 4000, generator=None):
    """Variance of one training step's Mixup loss under a practical pairing scheme (docs/theory.md §2.7).

    The step, the schemes and the conventions are those of :func:`estimator_expectation`; the
    randomness is the epoch's reshuffle, the step (uniform over the epoch's steps), the pairing and
    λ. Computed exactly up to quadrature in λ: the second moment of a batch mean is a sum over index
    patterns of products of two pair losses, each reduced to row, column and diagonal sums of the
    pair-loss matrix ``A(λ)`` at each node (O(n² q) loss evaluations, O(n²) memory).

    One λ per batch couples every two terms of a batch through the shared λ; one λ per example
    (``"flip-per-sample"``) keeps only each term's own λ-variance. The difference is the
    between-term λ-covariance: positive for most pairs of terms (mixed losses rise and fall with λ
    together), so the shared λ leaves a floor ``Var_λ E[L | λ]`` that no batch size removes and one λ
    per example is far less variable at large batches; but negative for a term and its mirror in
    the flip (``A_ab(λ)`` and ``A_ba(λ) = A_ab(1 − λ)``: antithetic in λ), so at small batches one λ
    per batch can be the less variable (docs/theory.md §2.7).

    Parameters
    ----------
    model, X, y, alpha, beta, scheme, batch_size, label_smoothing, loss, last_batch
        As for :func:`estimator_expectation`.
    rtol : float, optional
        Relative target of the Gauss–Jacobi node doubling (default 1e-8, 32, 64, … up to 1024 nodes).
    return_error : bool
        Return ``(value, error)`` with ``error = |V(q) − V(q/2)|`` plus rounding: an estimate, which
        for smooth models is far above the true error (geometric convergence); for piecewise-linear
        networks it is not a bound (kinks in λ), and an ``AccuracyWarning`` says so.

    method : {"auto", "exact", "sampled"}
        ``"exact"``: the pattern sums above, O(n² q) time and O(n²) memory. ``"sampled"``: the
        unbiased sample variance of ``draws`` independent simulated steps (a step's batch is a uniform
        random subset of its size, exactly the law of a reshuffled epoch's step), with its standard
        error as ``error``. ``"auto"`` (default): exact for n ≤ ``EXACT_MAX_N`` = 4096, sampled above
        (with an ``AccuracyWarning`` saying the value is an estimate).
    draws : int
        Steps simulated with ``method="sampled"`` (>= 2).
    generator : numpy.random.Generator, int or None
        The randomness of ``method="sampled"`` (``None``: fresh entropy).

    Returns
    -------
    float, or (float, float) with ``return_error``.

    Raises
    ------
    ValueError, TypeError
        As :func:`estimator_expectation`; ``rtol`` must be > 0.

    Warns
    -----
    AccuracyWarning
        When the estimate misses ``rtol`` at 1024 nodes, the model is a piecewise-linear network, or
        ``method="auto"`` samples (n > 4096).

    See Also
    --------
    estimator_expectation, estimator_moments

    Examples
    --------
    %(example_linear)s
    >>> single = theory.estimator_variance(model, X, y, 1.0, scheme="flip", batch_size=1)
    >>> losses = np.logaddexp(0, -(2 * y - 1) * (X @ [1.0, 0.2]))  # a batch of one mixes a point with itself
    >>> bool(abs(single - losses.var()) < 1e-12)
    True
    """
    check_choice(method, "method", ("auto", "exact", "sampled"))
    draws = check_scalar(draws, "draws", int, min_val=2, max_val=MAX_DRAWS)
    rng = check_rng(generator)
    rtol = VARIANCE_RTOL if rtol is None else check_rtol(rtol)
    P, alpha, beta, schemes, sizes, _ = _validated(model, X, y, alpha, beta, scheme, batch_size,
                                                   label_smoothing, loss, last_batch)
    if len(schemes) != 1 or len(sizes) != 1:
        raise ValueError("estimator_variance takes one scheme and one batch_size (estimator_moments takes several)")
    if method == "auto" and P.n > EXACT_MAX_N:
        warnings.warn(f"estimator_variance: n = {P.n} > {EXACT_MAX_N}: the variance is a Monte-Carlo estimate from "
                      f"{draws} simulated steps (its standard error with return_error=True; method='exact' forces "
                      "the O(n²) sums)", AccuracyWarning, stacklevel=2)
        method = "sampled"
    if method == "sampled":
        value, error = sampled_step_variance(P, alpha, beta, schemes[0], sizes[0], last_batch, draws, rng)
        return (value, error) if return_error else value
    center = float(pair_sum_and_error(P, alpha, beta, FIRST_NODES, None)[0]) / P.n ** 2
    V, V_err, _ = _variances(P, alpha, beta, schemes, sizes, last_batch, rtol, center, CHUNK_ELEMENTS)
    value, error = float(V[schemes[0]][0]), float(V_err[schemes[0]][0])
    return (value, error) if return_error else value
