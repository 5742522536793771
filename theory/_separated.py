"""Linear-time exact Mixup loss for logistic regression (docs/theory.md §2.6).

For a model affine end-to-end with one output the pair (i, j) enters the loss only through the two
margins ``a = z_i``, ``b = z_j``:  ``E_λ l = g(a, b) − E_λ[ỹ z̃]`` with

    g(a, b) = E_{λ~Beta(α,β)} softplus(λa + (1−λ)b),

and the label part is closed form in λ's first two moments. Pairs are grouped by their labels
(``label_pieces``): with equal labels the loss is ``g(z_i, z_j)`` (both 0) or ``g(−z_i, −z_j)`` (both 1),
an expectation of non-negative terms, so tiny losses keep their relative accuracy; only pairs with
different labels subtract the label part (their loss is never small next to ``g``). ``g`` is analytic in both arguments,
with its complex singularities only at ``a`` or ``b`` = ±iπ(2k+1) (those of softplus). The margin
range is split into panels graded geometrically away from 0 (``[−2, 2]``, then ``±[2, 4]``,
``±[4, 8]``, …: every panel sees the singularities at the same relative distance), and on each
pair of panels (A, B) ``g`` is replaced by its tensor Chebyshev interpolant

    g(a, b) ≈ Σ_kl C^{AB}_kl T_k(x_A(a)) T_l(x_B(b)),

so that ``Σ_ij g(z_i, z_j) = Σ_AB Σ_kl C^{AB}_kl S^A_k S^B_l`` with ``S^A_k = Σ_{z_i ∈ A} T_k(x_A(z_i))``:
O(n·p) work for the sums plus O(panels²·p²·Q) for the coefficients, instead of O(n²·Q).

Accuracy. Values of ``g`` on the interpolation grids come from a Gauss–Jacobi rule over λ; the
integrand ``softplus(b + λ(a − b))`` has singularities at distance π/|a − b| from [0, 1], so the
rule needs about 2|a − b| nodes. By default (``nodes=None``) every panel pair gets
``2·max|a − b| + 40`` nodes (measured: rounding level, ≤ 1e-15·|g|, for |a − b| ≤ 400 and α, β in
[0.05, 20]); with ``nodes`` given, that rule is used everywhere (reproducing the all-pairs value of
the same rule). The error estimate compares the interpolant with ``g`` computed independently on a
second grid (Chebyshev extrema, which include the panel corners) by the next λ-rule on the ladder
(≈ 1.41× the nodes, ``rule_size``), so it sees interpolation and λ-quadrature error together:
``bound = 2 Σ_AB n_A n_B max|ĝ − g|``. Each panel pair's degree is raised (``DEGREES``) until the
bound is below ``rtol/4`` of the value or the pair meets its share of that budget.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ._mixing import _beta_rule
from ._models import is_affine
from ._problem import logits, prepare
from ._validate import DTYPE, check_alpha_beta, check_nodes, check_rows, check_rtol
from ._docs import fill_doc

CENTER = 2.0
"""Half-width of the central panel [−2, 2]; outer panels double in width: ±[2, 4], ±[4, 8], …"""
DEGREES = (24, 32, 40, 48, 64)
"""Chebyshev degrees tried in turn (measured: 28–36 reach rounding level on every panel pair)."""
NODES_PER_UNIT, NODES_MIN = 2.0, 40
"""Default λ-rule per panel pair: ``ceil(NODES_PER_UNIT·max|a − b| + NODES_MIN)`` Gauss–Jacobi nodes."""
SAFETY = 2.0
"""Bound = SAFETY × (pairs × largest deviation on the check grid)."""
CHUNK = 1 << 16
"""Margins per block when summing Chebyshev values (memory: CHUNK × (degree + 1) floats)."""
BLOCK_ELEMENTS = 1 << 20
"""Values ``λa + (1−λ)b`` per block when tabulating ``g`` on the interpolation grids (8 MiB)."""


def rule_size(q: int) -> int:
    """The smallest size ≥ ``q`` on the ladder 8·⌈4·2^(k/2)⌉ = 32, 48, 64, 96, 128, 184, 256, 368, …
    (steps ≤ 41 %; a pair's check grid uses the next size up): a few distinct λ-rules serve every panel
    pair's grid and check, and stay cached (an accurate Gauss–Jacobi rule of q ≈ 500 nodes costs ~0.3 s; more
    nodes are never less accurate)."""
    k = 4
    while 8 * math.ceil(2 ** (k / 2)) < q:
        k += 1
    return 8 * math.ceil(2 ** (k / 2))


@lru_cache(maxsize=64)
def _lambda_rule(q: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    return _beta_rule(q, alpha, beta)


@lru_cache(maxsize=16)
def _cheb_first(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev points of the first kind (p + 1 of them) and the values → coefficients matrix."""
    theta = math.pi * (np.arange(p + 1) + 0.5) / (p + 1)
    T = np.cos(theta[:, None] * np.arange(p + 1)[None, :])  # (point, k)
    V = (2.0 / (p + 1)) * T.T
    V[0] *= 0.5
    return np.cos(theta), V


@lru_cache(maxsize=16)
def _cheb_extrema(p: int) -> tuple[np.ndarray, np.ndarray]:
    """p + 1 Chebyshev extrema cos(πj/p) (they interlace the first-kind points and hit ±1) and
    ``T_k`` there for k ≤ p − 1."""
    theta = math.pi * np.arange(p + 1) / p
    return np.cos(theta), np.cos(theta[:, None] * np.arange(p)[None, :])


def panel_edges(lo: float, hi: float, graded: bool = True) -> np.ndarray:
    """Edges of the panels covering [lo, hi], taken whole from a fixed grid (so that the coefficients of a
    panel pair can be reused across calls, ``COEFFICIENT_CACHE``): graded ±CENTER·2^k (exact
    λ-expectation, singular only at ±iπ(2k+1)), or uniform ±CENTER·(2k+1) (a fixed λ-rule: each node's
    softplus ridge λ_q a + (1−λ_q) b = 0 crosses the panels, with singularities ≥ π off the real axis)."""
    if hi - lo < 1e-3:
        mid = 0.5 * (lo + hi)
        return np.array([mid - 1.0, mid + 1.0])
    reach = max(abs(lo), abs(hi), CENTER)
    if graded:
        k = int(math.ceil(math.log2(reach / CENTER))) + 1
        grid = CENTER * 2.0 ** np.arange(k + 1)
    else:
        grid = CENTER * (2.0 * np.arange(int(math.ceil(reach / (2 * CENTER))) + 2) + 1)
    edges = np.concatenate([-grid[::-1], grid])
    first = np.searchsorted(edges, lo, side="right") - 1  # the last edge ≤ lo
    last = np.searchsorted(edges, hi, side="left")  # the first edge ≥ hi
    return edges[first:last + 1]


def _softplus_means(a: torch.Tensor, b: torch.Tensor, lam: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``g(a, b)`` on tensor grids, batched over panel pairs: ``a`` (G, pa), ``b`` (G, pb) → (G, pa, pb).

    torch's ``logaddexp`` is exact (softplus has a cut-off at 20) and about 2× faster than numpy's;
    blocks hold ``BLOCK_ELEMENTS`` values, large enough for threads to pay off, small for the cache."""
    G, pa, pb = a.shape[0], a.shape[1], b.shape[1]
    out = torch.empty(G, pa, pb, dtype=DTYPE)
    right = b[:, None, :, None] * (1 - lam)  # (G, 1, pb, q)
    step = max(1, BLOCK_ELEMENTS // max(1, pa * pb * lam.shape[0]))
    zero = torch.zeros((), dtype=DTYPE)
    for g0 in range(0, G, step):
        z = torch.addcmul(right[g0:g0 + step], a[g0:g0 + step, :, None, None], lam)
        out[g0:g0 + step] = torch.logaddexp(z, zero) @ w
    return out


@dataclass(frozen=True)
class Plan:
    """Panels, degree and coefficients ``C[A, B]`` (shape (P, P, p + 1, p + 1), zero-padded above each
    pair's own degree) of one problem."""

    edges: torch.Tensor  # (P + 1,)
    coef: torch.Tensor  # (P, P, p + 1, p + 1)
    deviation: torch.Tensor  # (P, P), on the CPU: max |ĝ − g| on the check grid
    degree: int  # the largest degree of any pair
    nodes: int  # largest λ-rule used
    counts: np.ndarray  # (P, P): ordered pairs of kernel arguments per panel pair, all pieces

    @property
    def panels(self) -> int:
        return self.edges.shape[0] - 1


def _pair_rules(edges: np.ndarray, alpha: float, beta: float, nodes):
    """λ-rules (grid, check) per panel pair: adaptive unless ``nodes`` is given.

    Pairs on opposite sides of 0 (or touching it): the kink-like feature of softplus(b + λ(a − b))
    has width π/|a − b| inside [0, 1], so ``2·max|a − b| + 40`` nodes. Pairs on one side, at least
    m away from 0: the singularities sit outside [0, 1] at distance ≈ √(m² + π²)/|a − b|, so
    ``20·√(max|a − b| / √(m² + π²)) + 40`` nodes. The check rule (the next size on the ladder, ≈ 1.41×) tests both choices."""
    P = len(edges) - 1
    rules = {}
    for A in range(P):
        for B in range(P):
            if nodes is not None:
                rules[A, B] = (nodes, nodes)
                continue
            dmax = max(abs(edges[A + 1] - edges[B]), abs(edges[A] - edges[B + 1]))
            lo, hi = min(edges[A], edges[B]), max(edges[A + 1], edges[B + 1])
            if lo >= 0 or hi <= 0:
                m = min(abs(lo), abs(hi))
                q = int(math.ceil(20.0 * math.sqrt(dmax / math.hypot(m, math.pi)) + NODES_MIN))
            else:
                q = int(math.ceil(NODES_PER_UNIT * dmax + NODES_MIN))
            rules[A, B] = (rule_size(q), rule_size(rule_size(q) + 1))
    return rules


def _grid_values(pairs, mids, halfs, x, alpha, beta, rules, which):
    """``g`` on the grid ``x`` (mapped to each panel) for every pair, batched by λ-rule."""
    out = {}
    by_rule = {}
    for A, B in pairs:
        by_rule.setdefault(rules[A, B][which], []).append((A, B))
    xt = torch.as_tensor(x, dtype=DTYPE)
    for q, group in by_rule.items():
        lam, w = (torch.as_tensor(v, dtype=DTYPE) for v in _lambda_rule(q, alpha, beta))
        A_idx = torch.tensor([A for A, _ in group])
        B_idx = torch.tensor([B for _, B in group])
        a = mids[A_idx, None] + halfs[A_idx, None] * xt
        b = mids[B_idx, None] + halfs[B_idx, None] * xt
        for pair, values in zip(group, _softplus_means(a, b, lam, w).numpy()):
            out[pair] = values
    return out


COEFFICIENT_CACHE = 2048
"""Panel-pair coefficients kept between calls (least recently used dropped): the panels come from a fixed
grid, so repeated evaluations (an L-BFGS run, the figures' α sweeps) reuse them. Memory ≤ 2048·(p + 1)²
floats (10 MiB at degree 24)."""


class _Memo:
    """A bounded, thread-safe least-recently-used memo of a pure function's values (deterministic: a hit
    returns exactly what the computation would)."""

    def __init__(self, maxsize: int):
        self.maxsize, self._items, self._lock = maxsize, OrderedDict(), threading.Lock()

    def get_fresh(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            if len(self._items) > self.maxsize:
                self._items.popitem(last=False)


_PAIRS = _Memo(COEFFICIENT_CACHE)


def _coefficients(edges: np.ndarray, p: int, alpha: float, beta: float, rules, pairs):
    """Coefficients at degree p and the largest deviation on the check grid, for the given pairs
    (α = β: only A ≤ B is computed, ``g(a, b) = g(b, a)`` gives ``C^BA = (C^AB)ᵀ``)."""
    key = {pr: (float(edges[pr[0]]), float(edges[pr[0] + 1]), float(edges[pr[1]]), float(edges[pr[1] + 1]),
                p, float(alpha), float(beta), *rules[pr]) for pr in pairs}
    coef, dev = {}, {}
    missing = []
    for pr in pairs:
        hit = _PAIRS.get_fresh(key[pr])
        if hit is None:
            missing.append(pr)
        else:
            coef[pr], dev[pr] = hit
    if missing:
        x, V = _cheb_first(p)
        xe, Te = _cheb_extrema(p + 2)
        Te = Te[:, :p + 1]
        mids = torch.as_tensor(0.5 * (edges[1:] + edges[:-1]), dtype=DTYPE)
        halfs = torch.as_tensor(0.5 * (edges[1:] - edges[:-1]), dtype=DTYPE)
        grid = _grid_values(missing, mids, halfs, x, alpha, beta, rules, 0)
        check = _grid_values(missing, mids, halfs, xe, alpha, beta, rules, 1)
        for pr in missing:
            C = V @ grid[pr] @ V.T
            coef[pr], dev[pr] = C, float(np.abs(Te @ C @ Te.T - check[pr]).max())
            _PAIRS.put(key[pr], (C, dev[pr]))
    return coef, dev


def _host(t: torch.Tensor):
    """CPU tensors as numpy arrays, device tensors as they are: numpy's element-wise kernels run on one
    thread, while torch's intra-op threads stall on every small operation when the cores are busy
    (measured for the sums at n = 10⁶ on 2 loaded cores: 0.3 s on one thread, 3–6 s on two)."""
    return t.detach().numpy() if t.device.type == "cpu" else t


def _locate(zc, edges):
    """Panel index of each margin and its position ``x ∈ [−1, 1]`` in that panel."""
    mids, halfs = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    if isinstance(zc, np.ndarray):
        idx = np.searchsorted(edges[1:-1], zc, side="right")
    else:
        idx = torch.searchsorted(edges[1:-1], zc, right=True)
    return idx, ((zc - mids[idx]) / halfs[idx]).clip(-1.0, 1.0), halfs[idx]


def _chebyshev_sums(z: torch.Tensor, edges: torch.Tensor, p: int) -> torch.Tensor:
    """``S[A, k] = Σ_{z_i in panel A} T_k(x_A(z_i))``, in blocks of ``CHUNK`` margins."""
    zh, eh = _host(z), _host(edges)
    P = edges.shape[0] - 1
    on_host = isinstance(zh, np.ndarray)
    S = np.zeros((P, p + 1)) if on_host else torch.zeros(P, p + 1, dtype=DTYPE, device=z.device)
    for i0 in range(0, z.shape[0], CHUNK):
        idx, x, _ = _locate(zh[i0:i0 + CHUNK], eh)
        T = [x ** 0, x][:p + 1]
        for _k in range(2, p + 1):
            T.append(2 * x * T[-1] - T[-2])
        if on_host:  # bincount, not a product with indicators: BLAS threads spin too
            S += np.stack([np.bincount(idx, weights=t, minlength=P) for t in T], axis=1)
        else:
            S.index_add_(0, idx, torch.stack(T, 1))
    return torch.as_tensor(S, dtype=DTYPE, device=z.device)


def _series_derivative(z: torch.Tensor, edges: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``d/dz Σ_k u[A(z), k] T_k(x_A(z))`` for every margin (``T_k' = k U_{k−1}``)."""
    p = u.shape[1] - 1
    zh, eh = _host(z), _host(edges)
    ku = _host(u * torch.arange(p + 1, dtype=DTYPE, device=u.device))  # k u_k multiplies U_{k−1}
    out = []
    for i0 in range(0, z.shape[0], CHUNK):
        zc = zh[i0:i0 + CHUNK]
        idx, x, half = _locate(zc, eh)
        coeff = ku[idx]  # (m, p + 1)
        acc = 0 * x
        u_prev, u_cur = 0 * x, 0 * x + 1  # U_{-1}, U_0
        for j in range(1, p + 1):
            acc = acc + coeff[:, j] * u_cur
            u_prev, u_cur = u_cur, 2 * x * u_cur - u_prev
        out.append(acc / half)
    if not out:
        return torch.zeros_like(z)
    joined = np.concatenate(out) if isinstance(out[0], np.ndarray) else torch.cat(out)
    return torch.as_tensor(joined, dtype=DTYPE, device=z.device)


class _BilinearSum(torch.autograd.Function):
    """``Σ_i Σ_j g(u_i, v_j) = S(u)ᵀ C S(v)`` from the plan's series; backward by differentiating the series."""

    @staticmethod
    def forward(ctx, u, v, edges, coef):
        p = coef.shape[-1] - 1
        S_u, S_v = _chebyshev_sums(u, edges, p), _chebyshev_sums(v, edges, p)
        ctx.save_for_backward(u, v, edges, coef, S_u, S_v)
        return torch.einsum("ak,abkl,bl->", S_u, coef, S_v)

    @staticmethod
    def backward(ctx, grad):
        u, v, edges, coef, S_u, S_v = ctx.saved_tensors
        gu = _series_derivative(u, edges, torch.einsum("abkl,bl->ak", coef, S_v))  # u in the first slot
        gv = _series_derivative(v, edges, torch.einsum("abkl,ak->bl", coef, S_u))  # v in the second slot
        return grad * gu, grad * gv, None, None


def label_pieces(z: torch.Tensor, Y: torch.Tensor, r0: int, r1: int):
    """The ordered pairs (i, j), ``r0 ≤ i < r1``, grouped by their labels, as (first, second) kernel arguments.

    With ``ỹ = λy_i + (1−λ)y_j`` the loss of a pair is ``ỹ·softplus(−z̃) + (1−ỹ)·softplus(z̃)``, a sum of
    non-negative terms. Pairs with equal labels have ``ỹ = y``: the loss is ``g(z_i, z_j)`` for y = 0 and
    ``g(−z_i, −z_j)`` for y = 1 (no cancellation, so tiny losses of well-classified pairs keep their
    relative accuracy). Pairs with different labels use ``g(z_i, z_j) − E[ỹ z̃]`` (``mixed_label_part``);
    their loss is at least ``E[min(λ, 1−λ)]·log 2``-sized, never tiny. Returns the four pieces
    ``[(−z₁ʳ, −z₁), (z₀ʳ, z₀), (z₁ʳ, z₀), (z₀ʳ, z₁)]`` (ʳ: rows in ``[r0, r1)``)."""
    one = Y == 1
    rows = torch.zeros_like(one)
    rows[r0:r1] = True
    z1, z0 = z[one], z[~one]
    z1r, z0r = z[one & rows], z[~one & rows]
    return [(-z1r, -z1), (z0r, z0), (z1r, z0), (z0r, z1)]


def mixed_label_part(pieces, alpha: float, beta: float):
    """``Σ E_λ[ỹ z̃]`` over the pairs with different labels (closed form in λ's moments)."""
    e2, c, o2 = label_moments(alpha, beta)
    (_, neg_z1), _, (z1r, z0), (z0r, z1) = pieces
    n1, n0 = z1.shape[0], z0.shape[0]
    # i in class 1, j in class 0: ỹ = λ, E[λ z̃] = e2 z_i + c z_j; i in class 0, j in class 1: ỹ = 1 − λ
    return (n0 * e2 * z1r.sum() + z1r.shape[0] * c * z0.sum()
            + n1 * c * z0r.sum() + z0r.shape[0] * o2 * z1.sum())


def _pair_counts(pieces, edges: np.ndarray) -> np.ndarray:
    """Ordered pairs of kernel arguments per panel pair, summed over the pieces."""
    total = np.zeros((len(edges) - 1,) * 2)
    for u, v in pieces:
        hu = np.histogram(u.detach().cpu().numpy(), bins=edges)[0].astype(np.float64)
        hv = np.histogram(v.detach().cpu().numpy(), bins=edges)[0].astype(np.float64)
        total += hu[:, None] * hv[None, :]
    return total


def plan(pieces, alpha: float, beta: float, *, label: float, nodes=None, rtol: float = 1e-12) -> Plan:
    """Panels and coefficients for the kernel arguments of ``pieces`` (``label_pieces`` over all rows), with an
    error estimate of the whole double sum ≤ ``rtol/4`` of ``|Σ g − label|`` (the value it enters; ``label`` is
    the closed-form label part of the pairs with different labels) where the rounding floor allows. Each panel
    pair's degree is raised on its own (``DEGREES``) until its share ``SAFETY·n_AB·dev_AB`` is within its share
    of that budget or its deviation stops falling (the rounding floor). The plan depends on all pairs, never on
    a shard, so shards of one problem share it."""
    cpu = [(u.detach().to("cpu"), v.detach().to("cpu")) for u, v in pieces if u.numel() and v.numel()]
    points = torch.cat([t for piece in cpu for t in piece])
    lo, hi = float(points.min()), float(points.max())
    edges = panel_edges(lo, hi, graded=nodes is None)
    P = len(edges) - 1
    counts_pair = _pair_counts(cpu, edges)
    rules = _pair_rules(edges, alpha, beta, nodes)
    edges_t = torch.as_tensor(edges, dtype=DTYPE)
    symmetric = alpha == beta
    pending = [(A, B) for A in range(P) for B in range(A if symmetric else 0, P)]
    # pairs of arguments a computed pair's coefficients serve (α = β: C^BA = (C^AB)ᵀ serves (B, A) too)
    weight = {(A, B): counts_pair[A, B] + (counts_pair[B, A] if symmetric and A != B else 0.0) for A, B in pending}
    best_coef, best_dev = {}, {}
    budget = None
    for p in DEGREES:
        coef, dev = _coefficients(edges, p, alpha, beta, rules, pending)
        improved = []
        for pair in pending:
            previous = best_dev.get(pair)
            if previous is None or dev[pair] < previous:
                best_coef[pair], best_dev[pair] = coef[pair], dev[pair]
            if previous is None or dev[pair] < 0.25 * previous:  # still converging: may refine further
                improved.append(pair)
        if budget is None:  # the value's size, from the first (cheapest) degree
            C = _assemble(best_coef, P, symmetric)
            deg = C.shape[-1] - 1
            value = sum(float(np.einsum("ak,abkl,bl->", _chebyshev_sums(u, edges_t, deg).numpy(), C,
                                        _chebyshev_sums(v, edges_t, deg).numpy())) for u, v in cpu)
            budget = 0.25 * rtol * abs(value - label) / SAFETY
        if sum(weight[pr] * best_dev[pr] for pr in best_dev) <= budget:
            break
        share = budget / max(counts_pair.sum(), 1.0)
        pending = [pr for pr in improved if weight[pr] > 0 and best_dev[pr] > share]
        if not pending:
            break
    coef = _assemble(best_coef, P, symmetric)
    dev = np.zeros((P, P))
    for (A, B), d in best_dev.items():
        dev[A, B] = d
        if symmetric:
            dev[B, A] = d
    nq = max(q for q, _ in rules.values())
    device = pieces[0][1].device
    return Plan(edges_t.to(device), torch.as_tensor(coef, dtype=DTYPE, device=device),
                torch.as_tensor(dev, dtype=DTYPE), coef.shape[-1] - 1, nq, counts_pair)


def _assemble(coef: dict, P: int, symmetric: bool) -> np.ndarray:
    """The (P, P, p + 1, p + 1) coefficient array of per-pair coefficients, zero-padded to the largest
    degree (a lower-degree series is the same series with zero high coefficients)."""
    p = max(C.shape[0] for C in coef.values()) - 1
    out = np.zeros((P, P, p + 1, p + 1))
    for (A, B), C in coef.items():
        k = C.shape[0]
        out[A, B, :k, :k] = C
        if symmetric:
            out[B, A, :k, :k] = C.T
    return out


def label_moments(alpha: float, beta: float) -> tuple[float, float, float]:
    """``(E λ², E λ(1−λ), E (1−λ)²)`` of Beta(α, β) in closed form."""
    s = alpha + beta
    den = s * (s + 1.0)
    return alpha * (alpha + 1.0) / den, alpha * beta / den, beta * (beta + 1.0) / den


def separated_pair_sum(z: torch.Tensor, Y: torch.Tensor, alpha: float, beta: float, *, nodes=None,
                       rtol: float = 1e-12, rows=None) -> tuple[torch.Tensor, float]:
    """``(Σ_{r0≤i<r1} Σ_j E_λ l(z̃_ij, ỹ_ij), error bound)`` for the logistic loss, differentiable in z.

    ``z``, ``Y``: margins and {0, 1} labels, shape (n,) or (n, 1). ``nodes=None``: λ-rules adapted
    to the margin range (the exact Beta expectation); an integer: that Gauss–Jacobi rule everywhere.
    Pairs are grouped by labels (``label_pieces``), so each pair's loss is a sum of non-negative terms.
    """
    z, Y = z.reshape(-1), Y.reshape(-1).to(DTYPE)
    n = z.shape[0]
    r0, r1 = (0, n) if rows is None else rows
    every = label_pieces(z, Y, 0, n)
    with torch.no_grad():
        label_all = float(mixed_label_part(every, alpha, beta))
    pl = plan(every, alpha, beta, label=label_all, nodes=nodes, rtol=rtol)
    pieces = every if (r0, r1) == (0, n) else label_pieces(z, Y, r0, r1)
    softplus = sum(_BilinearSum.apply(u, v, pl.edges, pl.coef) for u, v in pieces)
    label = mixed_label_part(pieces, alpha, beta)
    counts = pl.counts if (r0, r1) == (0, n) else _pair_counts(pieces, pl.edges.cpu().numpy())
    bound = float(SAFETY * (torch.as_tensor(counts, dtype=DTYPE) * pl.deviation.cpu()).sum())
    bound += 8 * torch.finfo(DTYPE).eps * float(softplus.detach().abs() + label.detach().abs())  # rounding
    return softplus - label, bound


MAX_MARGIN = 512.0
"""Largest logit ``|f(x_i)|`` of logistic regression that the separated method accepts (and that
``mixup_loss``'s default method accepts for such models). A pair on opposite sides of 0 needs a λ-rule of
about ``4·max|f|`` Gauss–Jacobi nodes, and building one costs O(q²): measured at n = 4, one thread, first call
(rules are cached): max|f| = 253 in 12 s, 506 in 27 s; at 1000 over a minute and ~0.5 GiB per rule. Larger
margins are refused up front."""


MAX_MARGIN_FIXED_RULE = 160.0
"""Largest ``|f(x_i)|`` the separated method accepts with ``nodes`` given: a fixed rule needs uniform panels of
width 4 (each node's softplus ridge crosses them), so the work grows with the square of the margins (measured
5 s at 110, 77 s at 440 on n = 4); the all-pairs path (``method="pairs"``) takes the same rule at O(n²q)."""


def check_margins(z: torch.Tensor, nodes=None) -> None:
    """``ValueError`` naming X and the model when a logit exceeds ``MAX_MARGIN`` (``MAX_MARGIN_FIXED_RULE`` with
    ``nodes`` given) in magnitude."""
    size = z.detach().abs().reshape(-1)
    reach = float(size.max())
    if nodes is None and reach > MAX_MARGIN:
        raise ValueError(f"X and model give logits up to |f(x_i)| = {reach:.6g} (at i = {int(size.argmax())}); the "
                         f"exact Mixup loss of logistic regression accepts |f(x_i)| <= {MAX_MARGIN:g} (MAX_MARGIN: "
                         f"its λ-rules need about 4·max|f| nodes). Rescale X or the model, or estimate the loss "
                         f"with mixup_loss_sampled")
    if nodes is not None and reach > MAX_MARGIN_FIXED_RULE:
        raise ValueError(f"X and model give logits up to |f(x_i)| = {reach:.6g} (at i = {int(size.argmax())}); with "
                         f"nodes given the separated method accepts |f(x_i)| <= {MAX_MARGIN_FIXED_RULE:g} "
                         f"(MAX_MARGIN_FIXED_RULE: its panels grow with the margins); use method='pairs' for a fixed "
                         f"rule at wide margins, or nodes=None")


@fill_doc
def mixup_loss_separated(model, X, y, alpha, beta=None, *, nodes: int | None = None, rtol: float = 1e-12,
                         rows=None) -> torch.Tensor:
    """Exact ``L_mix`` of logistic regression as a differentiable scalar tensor (docs/theory.md §2.6).

    ``model``: affine end-to-end with one output (``theory.linear_model``); gradients reach its
    parameters (and ``X`` if it requires grad) through the separated method, so the exact Mixup
    minimiser can be found by L-BFGS at n = 10⁶. Value as ``mixup_loss(..., method="separated")``
    (Zhang et al. 2021, the Mixup loss of Lemma 3.1; C1, C3); ``rows=(start, stop)`` gives a shard's
    share. ``nodes=None`` integrates over λ ~ Beta(α, β) exactly; an integer uses that Gauss–Jacobi rule.

    Parameters
    ----------
    model : torch.nn.Module
        Affine end-to-end with one output (e.g. ``theory.linear_model(d)``).
    %(X)s
    %(y_binary)s
    %(alpha)s
    %(beta)s
    nodes : int, optional
        Gauss–Jacobi rule for λ; ``None`` (default) integrates λ exactly.
    rtol : float, default 1e-12
        Requested relative accuracy.
    rows : tuple of int, optional
        ``(start, stop)``: this shard's share.

    Returns
    -------
    torch.Tensor
        A scalar float64 tensor, differentiable in the model's parameters (and ``X``).

    Raises
    ------
    ValueError
        If the model is not affine with one output, or an argument is out of range.

    See Also
    --------
    mixup_loss : The same value as a float (``method="separated"``).
    mixup_loss_error : Its error bound.

    Examples
    --------
    %(example_linear)s
    >>> loss = theory.mixup_loss_separated(model, X, y, 1.0)
    >>> round(loss.item(), 10)  # as theory.mixup_loss
    0.5121319468
    >>> loss.backward()
    >>> model[0].weight.grad.shape
    torch.Size([1, 2])
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    q = None if nodes is None else check_nodes(nodes)
    r = check_rtol(rtol)
    P = prepare(model, X, y, "logistic")
    if P.K != 1 or not is_affine(P.model):
        raise ValueError("model must be affine end-to-end with one output (theory.linear_model) for "
                         "mixup_loss_separated")
    n = P.n
    r0, r1 = check_rows(rows, n)
    check_margins(P.F, q)
    Xg = X if isinstance(X, torch.Tensor) and X.requires_grad else P.X
    if isinstance(model, torch.nn.Module):  # the module itself, so gradients reach its parameters
        dtype = next((t.dtype for t in model.parameters()), DTYPE)
        z = logits(lambda Z: model(Z.to(dtype)), Xg)
    else:
        z = logits(model, Xg)
    total, _ = separated_pair_sum(z, P.Y, alpha, beta, nodes=q, rtol=r, rows=(r0, r1))
    return total / n ** 2
