"""Linear-time exact Mixup loss for logistic regression (docs/theory.md §2.6).

For a model affine end-to-end with one output the pair (i, j) enters the loss only through the two
margins ``a = z_i``, ``b = z_j``:  ``E_λ l = g(a, b) − E_λ[ỹ z̃]`` with

    g(a, b) = E_{λ~Beta(α,β)} softplus(λa + (1−λ)b),

and the label part is closed form in λ's first two moments. ``g`` is analytic in both arguments,
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
second grid (Chebyshev extrema, which include the panel corners) by a rule with 1.5× the nodes, so it
sees interpolation and λ-quadrature error together: ``bound = 2 Σ_AB n_A n_B max|ĝ − g|``. The
degree is raised (``DEGREES``) until that bound is below ``rtol/4`` of the value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ._mixing import _beta_rule
from ._models import is_affine
from ._problem import logits, prepare
from ._validate import DTYPE, check_alpha_beta, check_count, check_positive

CENTER = 2.0
"""Half-width of the central panel [−2, 2]; outer panels double in width: ±[2, 4], ±[4, 8], …"""
DEGREES = (24, 32, 40, 48, 64)
"""Chebyshev degrees tried in turn (measured: 28–36 reach rounding level on every panel pair)."""
NODES_PER_UNIT, NODES_MIN = 2.0, 40
"""Default λ-rule per panel pair: ``ceil(NODES_PER_UNIT·max|a − b| + NODES_MIN)`` Gauss–Jacobi nodes."""
CHECK_NODE_FACTOR = 1.5
"""The check grid uses a λ-rule this much finer, so the estimate includes λ-quadrature error."""
SAFETY = 2.0
"""Bound = SAFETY × (pairs × largest deviation on the check grid)."""
CHUNK = 1 << 16
"""Margins per block when summing Chebyshev values (memory: CHUNK × (degree + 1) floats)."""


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
    """Edges of the panels covering [lo, hi], cut at lo and hi: graded ±CENTER·2^k (exact λ-expectation,
    singular only at ±iπ(2k+1)), or uniform ±CENTER·(2k+1) (a fixed λ-rule: each node's softplus ridge
    λ_q a + (1−λ_q) b = 0 crosses the panels, with singularities ≥ π off the real axis)."""
    if hi - lo < 1e-3:
        mid = 0.5 * (lo + hi)
        return np.array([mid - 1.0, mid + 1.0])
    reach = max(abs(lo), abs(hi), CENTER)
    if graded:
        k = int(math.ceil(math.log2(reach / CENTER))) + 1
        grid = CENTER * 2.0 ** np.arange(k + 1)
    else:
        grid = CENTER * (2.0 * np.arange(int(math.ceil(reach / (2 * CENTER))) + 2) + 1)
    inner = np.concatenate([-grid[::-1], grid])
    inner = inner[(inner > lo) & (inner < hi)]
    return np.concatenate([[lo], inner, [hi]])


def _softplus_mean(a: np.ndarray, b: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``g(a, b)`` on the tensor grid a × b with the rule (lam, w): shape (len(a), len(b)).

    numpy, single-threaded: these blocks are small, and threaded kernels on small blocks stall on a
    busy machine (measured 10× slower with 2 torch threads under load)."""
    out = np.empty((a.shape[0], b.shape[0]))
    step = max(1, (1 << 18) // max(1, b.shape[0] * lam.shape[0]))
    right = (1 - lam)[None, None, :] * b[None, :, None]
    for i0 in range(0, a.shape[0], step):
        z = lam[None, None, :] * a[i0:i0 + step, None, None] + right
        out[i0:i0 + step] = np.logaddexp(z, 0.0) @ w
    return out


@dataclass(frozen=True)
class Plan:
    """Panels, degree and coefficients ``C[A, B]`` (shape (P, P, p + 1, p + 1)) of one problem."""

    edges: torch.Tensor  # (P + 1,)
    coef: torch.Tensor  # (P, P, p + 1, p + 1)
    deviation: torch.Tensor  # (P, P), on the CPU: max |ĝ − g| on the check grid
    degree: int
    nodes: int  # largest λ-rule used

    @property
    def panels(self) -> int:
        return self.edges.shape[0] - 1


def _pair_rules(edges: np.ndarray, alpha: float, beta: float, nodes):
    """λ-rules (grid, check) per panel pair: adaptive unless ``nodes`` is given.

    Pairs on opposite sides of 0 (or touching it): the kink-like feature of softplus(b + λ(a − b))
    has width π/|a − b| inside [0, 1], so ``2·max|a − b| + 40`` nodes. Pairs on one side, at least
    m away from 0: the singularities sit outside [0, 1] at distance ≈ √(m² + π²)/|a − b|, so
    ``20·√(max|a − b| / √(m² + π²)) + 40`` nodes. The check rule (1.5×) tests both choices."""
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
            rules[A, B] = (q, int(math.ceil(CHECK_NODE_FACTOR * q)))
    return rules


def _coefficients(edges: np.ndarray, p: int, alpha: float, beta: float, rules) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients of every panel pair at degree p and the largest deviation on the check grid."""
    P = len(edges) - 1
    x, V = _cheb_first(p)
    xe, Te = _cheb_extrema(p + 2)
    Te = Te[:, :p + 1]
    mids, halfs = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    coef = np.empty((P, P, p + 1, p + 1))
    dev = np.empty((P, P))
    for A in range(P):
        a, ae = mids[A] + halfs[A] * x, mids[A] + halfs[A] * xe
        for B in range(A if alpha == beta else 0, P):  # α = β: g(a, b) = g(b, a), C^BA = (C^AB)ᵀ
            b, be = mids[B] + halfs[B] * x, mids[B] + halfs[B] * xe
            q, qc = rules[A, B]
            C = V @ _softplus_mean(a, b, *_lambda_rule(q, alpha, beta)) @ V.T
            check = _softplus_mean(ae, be, *_lambda_rule(qc, alpha, beta))
            coef[A, B] = C
            dev[A, B] = np.abs(Te @ C @ Te.T - check).max()
            if alpha == beta:
                coef[B, A], dev[B, A] = C.T, dev[A, B]
    return coef, dev


def _chebyshev_sums(z: torch.Tensor, edges: torch.Tensor, p: int) -> torch.Tensor:
    """``S[A, k] = Σ_{z_i in panel A} T_k(x_A(z_i))``, in blocks of ``CHUNK`` margins."""
    P = edges.shape[0] - 1
    mids, halfs = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    S = torch.zeros(P, p + 1, dtype=DTYPE, device=z.device)
    for i0 in range(0, z.shape[0], CHUNK):
        zc = z[i0:i0 + CHUNK]
        idx = torch.searchsorted(edges[1:-1], zc, right=True)
        x = ((zc - mids[idx]) / halfs[idx]).clamp(-1.0, 1.0)
        T = torch.empty(zc.shape[0], p + 1, dtype=DTYPE, device=z.device)
        T[:, 0] = 1.0
        if p >= 1:
            T[:, 1] = x
        for k in range(2, p + 1):
            torch.addcmul(-T[:, k - 2], 2 * x, T[:, k - 1], out=T[:, k])
        S.index_add_(0, idx, T)
    return S


def _series_derivative(z: torch.Tensor, edges: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``d/dz Σ_k u[A(z), k] T_k(x_A(z))`` for every margin (``T_k' = k U_{k−1}``)."""
    p = u.shape[1] - 1
    mids, halfs = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    out = torch.empty_like(z)
    k = torch.arange(p + 1, dtype=DTYPE, device=z.device)
    for i0 in range(0, z.shape[0], CHUNK):
        zc = z[i0:i0 + CHUNK]
        idx = torch.searchsorted(edges[1:-1], zc, right=True)
        x = ((zc - mids[idx]) / halfs[idx]).clamp(-1.0, 1.0)
        coeff = u[idx] * k  # (m, p + 1): k u_k multiplies U_{k−1}
        acc = torch.zeros_like(zc)
        u_prev, u_cur = torch.zeros_like(zc), torch.ones_like(zc)  # U_{-1}, U_0
        for j in range(1, p + 1):
            acc += coeff[:, j] * u_cur
            u_prev, u_cur = u_cur, 2 * x * u_cur - u_prev
        out[i0:i0 + CHUNK] = acc / halfs[idx]
    return out


class _SeparatedSum(torch.autograd.Function):
    """``Σ_{r0≤i<r1} Σ_j g(z_i, z_j)`` from the plan; backward by differentiating the series."""

    @staticmethod
    def forward(ctx, z, edges, coef, r0, r1):
        p = coef.shape[-1] - 1
        S_all = _chebyshev_sums(z, edges, p)
        S_rows = S_all if (r0, r1) == (0, z.shape[0]) else _chebyshev_sums(z[r0:r1], edges, p)
        ctx.save_for_backward(z, edges, coef, S_all, S_rows)
        ctx.rows = (r0, r1)
        return torch.einsum("ak,abkl,bl->", S_rows, coef, S_all)

    @staticmethod
    def backward(ctx, grad):
        z, edges, coef, S_all, S_rows = ctx.saved_tensors
        r0, r1 = ctx.rows
        as_first = torch.einsum("abkl,bl->ak", coef, S_all)  # z_i in the first slot (i in rows)
        as_second = torch.einsum("abkl,ak->bl", coef, S_rows)  # z_j in the second slot (every j)
        gz = _series_derivative(z, edges, as_second)
        if r1 > r0:
            gz[r0:r1] += _series_derivative(z[r0:r1], edges, as_first)
        return grad * gz, None, None, None, None


def plan(z: torch.Tensor, alpha: float, beta: float, *, label: float, nodes=None, rtol: float = 1e-12) -> Plan:
    """Panels and coefficients for the margins ``z``: the degree is raised until the estimated error
    of the whole double sum is ≤ ``rtol/4`` of ``|Σ_ij g − label|`` (the value it enters; ``label``
    is the closed-form label part over all pairs). The plan depends on all of ``z``, never on a
    shard, so shards of one problem share it."""
    zd = z.detach().to("cpu")
    lo, hi = float(zd.min()), float(zd.max())
    edges = panel_edges(lo, hi, graded=nodes is None)
    counts = np.histogram(zd.numpy(), bins=edges)[0].astype(np.float64)
    counts_pair = counts[:, None] * counts[None, :]
    rules = _pair_rules(edges, alpha, beta, nodes)
    edges_t = torch.as_tensor(edges, dtype=DTYPE)
    target = previous = None
    for p in DEGREES:
        coef, dev = _coefficients(edges, p, alpha, beta, rules)
        if target is None:  # the value's size, from the first (cheapest) degree
            S = _chebyshev_sums(zd, edges_t, p).numpy()
            target = abs(float(np.einsum("ak,abkl,bl->", S, coef, S)) - label)
        bound = float(SAFETY * (counts_pair * dev).sum())
        if bound <= 0.25 * rtol * target or (previous is not None and bound > 0.25 * previous):
            break  # accurate enough, or at the rounding floor (the estimate stopped falling)
        previous = bound
    nq = max(q for q, _ in rules.values())
    return Plan(edges_t.to(z.device), torch.as_tensor(coef, dtype=DTYPE, device=z.device),
                torch.as_tensor(dev, dtype=DTYPE), p, nq)


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
    """
    z, Y = z.reshape(-1), Y.reshape(-1).to(DTYPE)
    n = z.shape[0]
    r0, r1 = (0, n) if rows is None else rows
    e2, c, o2 = label_moments(alpha, beta)

    def label_part(a, b):  # Σ_{a≤i<b} Σ_j E_λ[ỹ z̃] in closed form
        Yr, zr = Y[a:b], z[a:b]
        return (e2 * n * (Yr * zr).sum() + c * (Yr.sum() * z.sum() + Y.sum() * zr.sum())
                + o2 * (b - a) * (Y * z).sum())

    with torch.no_grad():
        label_all = float(label_part(0, n))
    pl = plan(z, alpha, beta, label=label_all, nodes=nodes, rtol=rtol)
    softplus = _SeparatedSum.apply(z, pl.edges, pl.coef, r0, r1)
    label = label_part(r0, r1)
    bins = pl.edges.cpu().numpy()
    counts = torch.as_tensor(np.histogram(z.detach().cpu().numpy(), bins=bins)[0], dtype=DTYPE)
    counts_rows = torch.as_tensor(np.histogram(z[r0:r1].detach().cpu().numpy(), bins=bins)[0], dtype=DTYPE)
    bound = float(SAFETY * (counts_rows[:, None] * counts[None, :] * pl.deviation.cpu()).sum())
    bound += 8 * torch.finfo(DTYPE).eps * float(softplus.detach().abs() + label.detach().abs())  # rounding
    return softplus - label, bound


def mixup_loss_separated(model, X, y, alpha, beta=None, *, nodes: int | None = None, rtol: float = 1e-12,
                         rows=None) -> torch.Tensor:
    """Exact ``L_mix`` of logistic regression as a differentiable scalar tensor (docs/theory.md §2.6).

    ``model``: affine end-to-end with one output (``theory.linear_model``); gradients reach its
    parameters (and ``X`` if it requires grad) through the separated method, so the exact Mixup
    minimiser can be found by L-BFGS at n = 10⁶. Value as ``mixup_loss(..., method="separated")``
    (Zhang et al. 2021, the Mixup loss of Lemma 3.1; C1, C3); ``rows=(start, stop)`` gives a shard's
    share. ``nodes=None`` integrates over λ ~ Beta(α, β) exactly; an integer uses that Gauss–Jacobi rule.
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    P = prepare(model, X, y, "logistic")
    if P.K != 1 or not is_affine(P.model):
        raise ValueError("model must be affine end-to-end with one output (theory.linear_model) for "
                         "mixup_loss_separated")
    q = None if nodes is None else check_count(nodes, "nodes")
    r = check_positive(rtol, "rtol")
    n = P.n
    r0, r1 = (0, n) if rows is None else (int(rows[0]), int(rows[1]))
    if not 0 <= r0 <= r1 <= n:
        raise ValueError(f"rows must satisfy 0 <= r0 <= r1 <= n = {n}, got {tuple(rows)}")
    Xg = X if isinstance(X, torch.Tensor) and X.requires_grad else P.X
    if isinstance(model, torch.nn.Module):  # the module itself, so gradients reach its parameters
        dtype = next((t.dtype for t in model.parameters()), DTYPE)
        z = logits(lambda Z: model(Z.to(dtype)), Xg)
    else:
        z = logits(model, Xg)
    total, _ = separated_pair_sum(z, P.Y, alpha, beta, nodes=q, rtol=r, rows=(r0, r1))
    return total / n ** 2
