"""Kink-aware exact Mixup loss for piecewise-linear networks, vectorised (docs/theory.md §2.3).

Along a pair's segment ``λ ↦ u_j + λ(u_i − u_j)`` a network of affine layers and piecewise-linear
activations (ReLU, LeakyReLU, ReLU6, Hardtanh) is affine in λ between breakpoints. All pairs of a
block are processed at once, layer by layer, with tensor operations only:

- the breakpoints ``T`` (pairs × B, sorted) start as fixed cuts (0, ½, 1 and, for a concentrated
  Beta density, its quantiles); at an activation every unit whose pre-activation changes side of a
  threshold between two neighbouring breakpoints crosses it once there (it is affine on the piece),
  at a λ found by linear interpolation; up to ``cap`` such crossings per pair are compacted with a
  cumulative sum (no sort of candidates, no per-pair loop) and the layer's values there interpolated;
- the next affine block is applied at all points, which are then sorted;
- a pair with more crossings than ``cap`` raises its block's overflow flag (a device tensor); after
  all blocks one synchronisation reads the flags and recomputes the flagged blocks with twice the cap
  (up to every unit on every piece, where no overflow is possible). Nothing inside the block loop reads
  a value back to the host.

On each piece the logit is affine, so the integrand is the loss of an affine function of λ times the
Beta density. Every piece is integrated on its own interval (never as a difference of two integrals
of an extension): in the half of [0, 1] it lies in, with μ = λ (left) or μ = 1 − λ (right),

- the end pieces ``[0, T₁]`` and ``[T_{B−2}, 1]`` by Gauss–Jacobi in the weight ``μ^(a−1)`` (the
  density's endpoint singularity is in the weight);
- every other piece ``[l, r]`` by Gauss–Legendre in μ, or in ``s = log μ`` (``dμ = μ ds``) when the
  density is singular at μ = 0 and r > 2l: the singularity is at s = −∞, so the rule converges
  geometrically however close the piece is to 0.

The density enters as ``(μ/c)^(a−1)((1−μ)/(1−c))^(b−1)`` with ``log1p`` of relative offsets from a
dyadic centre ``c`` (no cancellation of large logarithms at large α, β), normalised by its integral
computed with the same rules over the fixed cuts (no ``betaln``). Each piece is integrated with m and
m/2 nodes; ``Σ|Q_m − Q_{m/2}|`` (an estimate of the m/2-node error, so an over-estimate of the returned
m-node value's error when convergence is geometric) plus a rounding allowance is the reported error.
When it exceeds ``rtol``·value, the whole sum is redone with 2m nodes (one synchronisation per round).

With ``rows=None`` only the pairs i < j are integrated, with the density ``Beta(α, β) + Beta(β, α)``
(pair (j, i) at λ is pair (i, j) at 1 − λ), and the n pairs i = i contribute their standard loss.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy import special
from torch import nn

from ._mixing import MixupLambda
from ._models import AFFINE_LAYERS, eval_copy
from ._validate import DTYPE
from ._warnings import AccuracyWarning

KINK_AFFINE_LAYERS = AFFINE_LAYERS + (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.Dropout, nn.BatchNorm1d,
                                      nn.BatchNorm2d, nn.BatchNorm3d, nn.Unflatten)
"""Layers applied as they are at the breakpoints: affine maps in eval mode (the model is evaluated as an
eval-mode copy, where ``Dropout`` is the identity and batch norm uses its running statistics)."""
KINK_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.Hardtanh)
KINK_POOLS = (nn.MaxPool1d, nn.MaxPool2d)
"""Max-pooling: a maximum of affine functions of λ, whose kinks lie where two entries of a window cross;
those crossings are the zero crossings of the pairwise differences of the window's entries (a linear map
of the layer's input), a superset of the kinks (extra breakpoints are harmless)."""
KINK_NONLINEAR = KINK_ACTIVATIONS + KINK_POOLS
FIRST_NODES = 8
"""Nodes per piece in the first round (the m/2 = 4-node rule gives the error estimate)."""
MAX_PIECE_NODES = 256
ROUNDING_RTOL = 64 * float(np.finfo(np.float64).eps)
"""Rounding allowance added to the error estimate, relative to Σ|terms| (≈ 1.4e-14)."""
QUANTILE_LEVELS = (1e-15, 1e-12, 1e-9, 1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.15, 0.3, 0.5)
"""Cuts at these quantiles of each Beta density (and their complements) when α or β exceeds
``CONCENTRATED``: every piece then spans at most about one standard deviation of the bulk, where the
density varies slowly enough for a few nodes."""
CONCENTRATED = 3.0
TINY = 1e-290
"""Crossings closer than this to 0 are moved there (their pieces' logs stay finite; the moved mass is
below 1e-290^min(α,β), and the logit is continuous)."""
MIN_BLOCK_PAIRS = 64
"""Pairs per block at least (wide layers would otherwise give blocks of a few pairs, dominated by the
per-operation overhead); otherwise blocks hold ``chunk_elements`` values in the widest tensor, which
measured fastest (4× larger blocks: 1.8× slower on a 10-64-64-1 net, one thread)."""


# ---------------------------------------------------------------- the network as stages

@dataclass
class KinkPlan:
    """``f = stages ∘ head ∘ prefix``: ``prefix`` (affine, applied once per sample, or ``None``),
    ``head`` (affine layers applied at the breakpoints before the first activation, or ``None``),
    then ``(activation, affine block)`` stages; every module is a float64 eval-mode copy."""
    prefix: nn.Module | None
    head: nn.Module | None
    stages: list


def pool_reason(layer: nn.Module) -> str | None:
    """Why a max-pooling layer is not on the kink-aware path (``None`` when it is)."""
    pairs = lambda v: v if isinstance(v, tuple) else (v,)
    if any(p != 0 for p in pairs(layer.padding)) or any(d != 1 for d in pairs(layer.dilation)) or layer.ceil_mode \
            or layer.return_indices:
        return (f"{type(layer).__name__} with padding, dilation, ceil_mode or return_indices (only plain windows "
                "are on the kink-aware path)")
    return None


def _detect(layer: nn.Module, Z: torch.Tensor) -> torch.Tensor:
    """(N, D) values whose crossings of ``_thresholds(layer)`` are the kinks of ``layer`` on (N, …) inputs:
    the pre-activations themselves, or for max-pooling the pairwise differences within each window."""
    N = Z.shape[0]
    if not isinstance(layer, KINK_POOLS):
        return Z.reshape(N, -1)
    two = lambda v: v if isinstance(v, tuple) else (v, v)
    if isinstance(layer, nn.MaxPool1d):
        k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
        st = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
        win = Z.unfold(-1, k, st)  # (N, C, L', k)
    else:
        (kh, kw), (sh, sw) = two(layer.kernel_size), two(layer.stride)
        win = Z.unfold(-2, kh, sh).unfold(-2, kw, sw)  # (N, C, H', W', kh, kw)
        win = win.reshape(*win.shape[:-2], kh * kw)
    ia, ib = torch.triu_indices(win.shape[-1], win.shape[-1], 1, device=Z.device)
    return (win[..., ia] - win[..., ib]).reshape(N, -1)


def _thresholds(layer: nn.Module) -> tuple[float, ...]:
    if isinstance(layer, (nn.ReLU, nn.LeakyReLU)) or isinstance(layer, KINK_POOLS):
        return (0.0,)
    if isinstance(layer, nn.ReLU6):
        return (0.0, 6.0)
    return (float(layer.min_val), float(layer.max_val))  # Hardtanh


def _flat_layers(model) -> list[nn.Module] | None:
    if not isinstance(model, nn.Sequential):
        return None
    out: list[nn.Module] = []
    for m in model:
        if isinstance(m, nn.Sequential):
            inner = _flat_layers(m)
            if inner is None:
                return None
            out.extend(inner)
        else:
            out.append(m)
    return out


def _inplace(act: nn.Module) -> nn.Module:
    if isinstance(act, KINK_ACTIVATIONS):
        act.inplace = True  # our copy, applied to our own tensors (saves an allocation per layer)
    return act


def plan_from_layers(layers: list[nn.Module], shortcut: bool, extra_affine: tuple = ()) -> KinkPlan | None:
    """The ``KinkPlan`` of a chain of affine layers (``KINK_AFFINE_LAYERS`` and ``extra_affine``) and
    piecewise-linear activations (at least one activation), else ``None``."""
    if not layers or not all(isinstance(m, KINK_AFFINE_LAYERS + KINK_NONLINEAR + extra_affine) for m in layers):
        return None
    if not any(isinstance(m, KINK_NONLINEAR) for m in layers) or \
            any(isinstance(m, KINK_POOLS) and pool_reason(m) for m in layers):
        return None
    k = 0
    while not isinstance(layers[k], KINK_NONLINEAR):
        k += 1
    lead = eval_copy(nn.Sequential(*layers[:k])) if k else None
    stages, block = [], []
    for m in layers[k:]:
        if isinstance(m, KINK_NONLINEAR):
            if stages or block:
                stages[-1][1] = block
            stages.append([m, None])
            block = []
        else:
            block.append(m)
    stages[-1][1] = block
    stages = [(_inplace(eval_copy(act)), eval_copy(nn.Sequential(*blk)) if blk else None) for act, blk in stages]
    return KinkPlan(lead if shortcut else None, None if shortcut else lead, stages)


def kink_plan(model, shortcut: bool) -> KinkPlan | None:
    """The ``KinkPlan`` of an ``nn.Sequential`` of affine layers and piecewise-linear activations, else
    ``None`` (``theory._trace.traced_plan`` covers other modules)."""
    layers = _flat_layers(model)
    return None if layers is None else plan_from_layers(layers, shortcut)


# ---------------------------------------------------------------- breakpoints, vectorised

def _first_crossings(Z0: torch.Tensor, Z1: torch.Tensor, thresholds: torch.Tensor, cuts: torch.Tensor, cap: int):
    """Sorted breakpoints (P, B) of the first activation, whose pre-activation ``Z0 + λ(Z1 − Z0)`` is affine
    on all of [0, 1]: each unit crosses each threshold at most once, at ``(θ − Z0)/(Z1 − Z0)``. ``cap`` is at
    least every pair's number of crossings (the block's pairs were counted before); unused slots put a
    copy of the cut ½ (a zero-length piece)."""
    P = Z0.shape[0]
    D0 = Z0.reshape(P, -1, 1) - thresholds
    D1 = Z1.reshape(P, -1, 1) - thresholds
    cross = D0 * D1 < 0  # strictly inside (0, 1)
    t = torch.where(cross, D0 / torch.where(cross, D0 - D1, 1.0), 2.0).reshape(P, -1)
    if cap < t.shape[1]:
        t = torch.sort(t, dim=1).values[:, :cap]
    t = torch.where(t < 1.5, t.clamp(min=TINY), 0.5)
    return torch.sort(torch.cat([cuts.expand(P, cuts.shape[0]), t], 1), dim=1).values


def _crossings(T: torch.Tensor, Z: torch.Tensor, thresholds: torch.Tensor, cap: int, D: torch.Tensor | None = None):
    """Up to ``cap`` threshold crossings per pair between neighbouring breakpoints.

    ``T`` (P, B) sorted, ``Z`` (P, B, H) values affine between neighbours, ``D`` (P, B, H') the values
    whose threshold crossings are the kinks (``Z`` itself by default; linear in ``Z``). Returns the new points
    ``t`` (P, cap), the values there ``Zt`` (P, cap, H) and a per-pair overflow flag. Unused slots repeat
    the last interior breakpoint ``T[:, B−2]`` (a zero-length piece), keeping ``T[:, 1] > 0`` and
    ``T[:, −2] < 1`` so that the end pieces stay at indices 0 and B − 2."""
    P, B, H = Z.shape
    D = Z if D is None else D
    Hd = D.shape[2]
    R = thresholds.shape[0]
    above = D > thresholds[0] if R == 1 else D[..., None] > thresholds  # (P, B, H'[, R])
    hit = (above[:, 1:] ^ above[:, :-1]).reshape(P, -1)  # over (piece, unit[, threshold])
    N = hit.shape[1]
    rank = torch.cumsum(hit, 1, dtype=torch.int32)
    overflow = rank[:, -1] > cap
    slot = (rank * hit).clamp_(max=cap + 1).long()  # 0: no crossing, 1..cap: kept, cap + 1: over the cap
    sel = torch.full((P, cap + 2), N, dtype=torch.long, device=T.device)
    sel.scatter_(1, slot, torch.arange(N, device=T.device).expand(P, N))
    sel = sel[:, 1:cap + 1]
    used = sel < N
    sel = torch.where(used, sel, 0)
    b, h, r = sel // (Hd * R), (sel // R) % Hd, sel % R
    theta = thresholds[r]
    Dflat = D.reshape(P, B * Hd)
    d0 = Dflat.gather(1, b * Hd + h) - theta
    d1 = Dflat.gather(1, (b + 1) * Hd + h) - theta
    frac = d0 / torch.where(used, d0 - d1, 1.0)
    tb, tb1 = T.gather(1, b), T.gather(1, b + 1)
    t = tb + (tb1 - tb) * frac
    keep = used & (t > 0) & (t < 1)
    b = torch.where(keep, b, B - 2)
    frac = torch.where(keep, frac, 0.0)
    t = torch.where(keep, t.clamp(min=TINY), T[:, B - 2:B - 1])
    gi = b[..., None].expand(P, cap, H)
    Zt = Z.gather(1, gi).lerp_(Z[:, 1:].gather(1, gi), frac[..., None])
    return t, Zt, overflow


def _apply(block, Z: torch.Tensor, shape) -> torch.Tensor:
    """An affine block (or activation) on (P, B, …) points of per-point shape ``shape``."""
    P, B = Z.shape[:2]
    out = block(Z.reshape(P * B, *shape))
    return out.reshape(P, B, *out.shape[1:])


def _breakpoints(Ui, Uj, plan: KinkPlan, cuts: torch.Tensor, caps):
    """Sorted breakpoints ``T`` (P, B) and logits ``F`` (P, B, K) there; per-pair overflow flags."""
    P = Ui.shape[0]
    shape = tuple(Ui.shape[1:])
    Z0, Z1 = (Uj, Ui) if plan.head is None else (plan.head(Uj), plan.head(Ui))
    unit_shape = tuple(Z0.shape[1:])
    act, block = plan.stages[0]
    thr = torch.tensor(_thresholds(act), dtype=DTYPE, device=Ui.device)
    T = _first_crossings(_detect(act, Z0), _detect(act, Z1), thr, cuts, caps[0])
    Z = torch.addcmul(Z0[:, None], T.reshape(P, -1, *([1] * len(unit_shape))), (Z1 - Z0)[:, None])
    overflow = torch.zeros(P, dtype=torch.bool, device=Ui.device)
    for k, (act, next_block) in enumerate(plan.stages):
        if k:
            unit_shape = tuple(Z.shape[2:])
            B = Z.shape[1]
            Zf = Z.reshape(P, B, -1)
            thr = torch.tensor(_thresholds(act), dtype=DTYPE, device=Ui.device)
            D = None if isinstance(act, KINK_ACTIVATIONS) else \
                _detect(act, Z.reshape(P * B, *unit_shape)).reshape(P, B, -1)
            t, Zt, over = _crossings(T, Zf, thr, caps[k], D)
            overflow |= over
            T, order = torch.sort(torch.cat([T, t], 1), dim=1, stable=True)
            Z = torch.cat([Zf, Zt], 1).reshape(P, order.shape[1], *unit_shape)
        else:
            order = None
        # in place for activations (the eval copies have inplace=True); pooling on (points, …)
        Z = act(Z) if isinstance(act, KINK_ACTIVATIONS) else _apply(act, Z, unit_shape)
        unit_shape = tuple(Z.shape[2:])
        if next_block is not None:
            Z = _apply(next_block, Z, unit_shape)
        if order is not None:  # points back in λ order, after the block (the narrower side for the logits)
            Zf = Z.reshape(P, order.shape[1], -1)
            Z = Zf.gather(1, order[..., None].expand_as(Zf)).reshape(Z.shape)
    return T, Z.reshape(P, T.shape[1], -1), overflow


def _unit_counts(U: torch.Tensor, plan: KinkPlan) -> list[int]:
    """Kink-detecting units × thresholds of each activation stage (probed on one row), then the output size."""
    counts = []
    with torch.no_grad():
        Z = U[:1].clone()  # the activations work in place
        if plan.head is not None:
            Z = plan.head(Z)
        for act, block in plan.stages:
            counts.append(_detect(act, Z).shape[1] * len(_thresholds(act)))
            Z = act(Z)
            if block is not None:
                Z = block(Z)
        counts.append(Z[0].numel())
    return counts


def _caps(counts: list[int], first: int, scale: int = 1, n_cuts: int = 3) -> list[int]:
    """Crossings allowed per pair at each activation: ``first`` (counted exactly beforehand) at the first
    one, then 1.5 × the previous cap + 8 (measured on a 10-64-64-1 net: a pair's second-layer count
    is at most 1.6 × its first-layer count, and 15 above it), at most the layer's units × thresholds;
    ``scale`` multiplies that after an overflow, up to all units on every piece (no overflow possible)."""
    caps, B = [first], n_cuts + first
    for c in counts[1:-1]:
        guess = min(c, caps[-1] + caps[-1] // 2 + 8)
        cap = min(scale * guess, (B - 1) * c)
        caps.append(cap)
        B += cap
    return caps


# ---------------------------------------------------------------- the density and the rules

@lru_cache(maxsize=64)
def _legendre(m: int):
    t, w = np.polynomial.legendre.leggauss(m)
    return (t + 1) / 2, w / 2  # on [0, 1]


@dataclass(frozen=True)
class _Density:
    """``weight × Beta(a, b)`` on λ, unnormalised as ``(λ/c)^(a−1)((1−λ)/(1−c))^(b−1)``, and ``log_norm``,
    the log of its integral (so the normalised density is ``exp(log ρ̃ − log_norm)``)."""
    a: float
    b: float
    c: float
    weight: float
    log_norm: float = 0.0


def _centre(a: float, b: float) -> float:
    """A dyadic point where the density has its mass (mode, or mean for a, b ≤ 1): 1 − c is exact."""
    c = (a - 1) / (a + b - 2) if a > 1 and b > 1 else a / (a + b)
    return min(max(round(c * 2 ** 30) / 2 ** 30, 2.0 ** -30), 1 - 2.0 ** -30)


def _log_ratio(x, c, offset=None):
    """``log(x/c)``; near c from the relative offset ``x − c`` (given exactly as ``offset``, or formed)."""
    off = x - c if offset is None else offset
    near = off.abs() < 0.5 * c
    return torch.where(near, torch.log1p(off / c), torch.log(x) - torch.log(c))


def _log_rho(mu, offset, a: float, b: float, c: float, right):
    """``log ρ̃`` at μ = c' + offset in the coordinates of its half: λ = μ (left) or 1 − μ (right, with
    a ↔ b, c' = c or 1 − c). The offset from the centre is exact, so large α, β lose nothing to rounding."""
    if a == 1.0 and b == 1.0:
        return torch.zeros_like(mu)
    as_t = lambda v: torch.tensor(v, dtype=DTYPE, device=mu.device)
    aa, bb, cc = torch.where(right, as_t(b), as_t(a)), torch.where(right, as_t(a), as_t(b)), \
        torch.where(right, as_t(1 - c), as_t(c))
    # (a−1)·log(μ/c) + (b−1)·log((1−μ)/(1−c))
    return (aa - 1) * _log_ratio(mu, cc, offset(cc)) + (bb - 1) * _log_ratio(1 - mu, 1 - cc, -offset(cc))


class _Rules:
    """Nodes of one round: Legendre (m and m/2) and Gauss–Jacobi for μ^(a−1) per density exponent."""

    def __init__(self, densities, m: int, device):
        as_t = lambda v: torch.as_tensor(v, dtype=DTYPE, device=device)
        self.m = m
        self.legendre = [tuple(map(as_t, _legendre(q))) for q in (m, m // 2)]
        self.jacobi = {}
        for d in densities:
            for e in (d.a, d.b):
                if e not in self.jacobi:
                    self.jacobi[e] = [tuple(map(as_t, MixupLambda(e, 1.0).nodes(q))) for q in (m, m // 2)]


def _interior_terms(l, r, Fl, Fr, Yi, Yj, loss, densities, t, w, singular):
    """Terms (P, I, q) of ∫ loss·density over interior pieces [l, r] (P, I): Legendre in log μ where the
    density is singular at μ = 0 (``singular[side]``) and the piece is near it (r > 2l), else in μ."""
    if not any(singular) and all(d.a == 1.0 and d.b == 1.0 for d in densities):  # uniform: Legendre in λ
        h = r - l
        lam = torch.addcmul(l[..., None], h[..., None], t)
        F = torch.addcmul(Fl[:, :, None], t[:, None], (Fr - Fl)[:, :, None])
        Y = torch.addcmul(Yj[:, None, None], lam[..., None], (Yi - Yj)[:, None, None])
        scale = sum(d.weight * math.exp(-d.log_norm) for d in densities)
        return (h[..., None] * (w * scale)) * loss(F, Y)
    right = l >= 0.5
    lm = torch.where(right, 1 - r, l)
    rm = torch.where(right, 1 - l, r)
    width = rm - lm
    logs = (rm > 2 * lm) & torch.where(right, singular[1], singular[0])
    kappa = torch.where(logs, torch.log1p(width / lm), 0.0)[..., None]  # log(r/l) from the relative width
    E = torch.expm1(kappa * t)
    D = torch.expm1(kappa)
    frac = torch.where(logs[..., None], E / torch.where(logs[..., None], D, 1.0), t)  # (μ − l)/(r − l)
    jac = torch.where(logs[..., None], kappa * (E + 1) / torch.where(logs[..., None], D, 1.0), 1.0)
    step = width[..., None] * frac
    mu = lm[..., None] + step
    offset = lambda cc: (lm[..., None] - cc) + step  # μ − c without the rounding of μ
    Fa = torch.where(right[..., None], Fr, Fl)
    Fb = torch.where(right[..., None], Fl, Fr)
    F = Fa[:, :, None] + frac[..., None] * (Fb - Fa)[:, :, None]
    lam = torch.where(right[..., None], 1 - mu, mu)
    Y = Yj[:, None, None] + lam[..., None] * (Yi - Yj)[:, None, None]
    rb = right[..., None]
    dens = 0.0
    for d in densities:
        dens = dens + d.weight * torch.exp(_log_rho(mu, offset, d.a, d.b, d.c, rb) - d.log_norm)
    return (width[..., None] * w) * jac * dens * loss(F, Y)


def _end_terms(x, F0, F1, Yi, Yj, loss, densities, jacobi, q_index, right: bool):
    """Terms (P, q) of the end piece [0, x] (or, ``right``, [1 − x, 1]) in μ = λ (or 1 − λ): Gauss–Jacobi
    in μ^(a−1) with a the exponent of that end; F0, F1: the logits at μ = 0 and μ = x."""
    out = 0.0
    for d in densities:
        a, b, c = (d.b, d.a, 1 - d.c) if right else (d.a, d.b, d.c)
        nodes, nu = jacobi[a][q_index]
        mu = x[:, None] * nodes  # (P, q)
        # ∫_0^x μ^(a−1) g dμ = (x^a/a) Σ ν g(xν); with the centring c^(1−a): (x/c)^a · c/a
        c_t = torch.tensor(c, dtype=DTYPE, device=x.device)
        log_scale = a * _log_ratio(x, c_t) + math.log(c / a)
        logw = log_scale[:, None] + torch.log(nu) + (0.0 if b == 1.0 else (b - 1) * _log_ratio(1 - mu, 1 - c_t))
        F = F0[:, None] + nodes[None, :, None] * (F1 - F0)[:, None]
        lam = 1 - mu if right else mu
        Y = Yj[:, None] + lam[..., None] * (Yi - Yj)[:, None]
        out = out + d.weight * torch.exp(logw - d.log_norm) * loss(F, Y)
    return out


def _integrate(T, F, Yi, Yj, loss, densities, rules: _Rules):
    """``(Σ Q_m, Σ|Q_m − Q_{m/2}|, Σ|terms|)`` over all pieces of a block (tensors, no host sync)."""
    B = T.shape[1]
    integer = lambda e: float(e).is_integer() and e >= 1  # μ^(e−1) a polynomial: no singularity at μ = 0
    singular = (not all(integer(d.a) for d in densities), not all(integer(d.b) for d in densities))
    l, r = T[:, 1:B - 2], T[:, 2:B - 1]
    Fl, Fr = F[:, 1:B - 2], F[:, 2:B - 1]
    q = []
    for k, (t, w) in enumerate(rules.legendre):
        inner = _interior_terms(l, r, Fl, Fr, Yi, Yj, loss, densities, t, w, singular)
        left = _end_terms(T[:, 1], F[:, 0], F[:, 1], Yi, Yj, loss, densities, rules.jacobi, k, False)
        right = _end_terms(1 - T[:, B - 2], F[:, B - 1], F[:, B - 2], Yi, Yj, loss, densities, rules.jacobi, k,
                           True)
        pieces = torch.cat([inner.sum(-1), left.sum(-1, keepdim=True), right.sum(-1, keepdim=True)], 1)
        mag = inner.abs().sum() + left.abs().sum() + right.abs().sum() if k == 0 else None
        q.append((pieces, mag))
    (fine, mag), (coarse, _) = q
    return fine.sum(), (fine - coarse).abs().sum(), mag


def _stable_loss(name: str):
    """The loss as a sum of non-negative terms (no cancellation at large margins), on (..., K) logits."""
    if name == "logistic":
        def logistic(F, Y):  # ỹ softplus(−f) + (1 − ỹ) softplus(f): non-negative terms
            f, y = F[..., 0], Y[..., 0]
            # threshold 40: softplus(x) = x above it, off by log1p(e^−40) ≈ 4e-18 (relative ≤ 1e-19)
            up = torch.nn.functional.softplus(f, threshold=40.0)
            down = torch.nn.functional.softplus(-f, threshold=40.0)
            return torch.lerp(up, down, y)
        return logistic
    if name == "softmax":
        return lambda F, Y: -(Y * torch.log_softmax(F, -1)).sum(-1)

    def squared(F, Y):
        R = Y - F
        return 0.5 * (R * R).sum(-1)
    return squared


def _cuts(alpha: float, beta: float) -> np.ndarray:
    """Fixed breakpoints: 0, ½, 1 and, for a concentrated density, quantiles of Beta(α, β) and Beta(β, α)."""
    pts = {0.0, 0.5, 1.0}
    if max(alpha, beta) > CONCENTRATED:
        levels = np.array(QUANTILE_LEVELS)
        for a, b in ((alpha, beta), (beta, alpha)):
            q = np.concatenate([special.betaincinv(a, b, levels), 1 - special.betaincinv(b, a, levels)])
            pts.update(float(v) for v in q if TINY < v < 1 - 1e-15 and np.isfinite(v))
    return np.array(sorted(pts))


def _normalised(densities, cuts: torch.Tensor, device) -> tuple[list[_Density], float]:
    """Each density with ``log_norm`` = log ∫ρ̃, computed with the integrator's own rules over the fixed
    cuts (128 nodes per piece), and the relative difference from 64 nodes (its error estimate)."""
    out, err = [], 0.0
    T = cuts[None]
    one = lambda F, Y: torch.ones(F.shape[:-1], dtype=DTYPE, device=device)
    F = torch.zeros(1, T.shape[1], 1, dtype=DTYPE, device=device)
    Y = torch.zeros(1, 1, dtype=DTYPE, device=device)
    for d in densities:
        unit = _Density(d.a, d.b, d.c, 1.0)
        rules = _Rules([unit], 128, device)
        fine, diff, _ = _integrate(T, F, Y, Y, one, [unit], rules)
        fine, diff = float(fine), float(diff)
        out.append(_Density(d.a, d.b, d.c, d.weight, math.log(fine)))
        err = max(err, diff / fine)
    return out, err


# ---------------------------------------------------------------- the sum over pairs

SCHEDULE_PAIRS = 1 << 22
"""Pairs counted and sorted together (one host synchronisation per window, before its blocks)."""


def _pair_windows(n: int, rows, folded: bool, device):
    """Index tensors ``(I, J)`` of the pairs to integrate, in windows of about ``SCHEDULE_PAIRS``: the pairs
    i < j (``folded``) or the ordered pairs with i in ``rows``."""
    r0, r1 = (0, n) if rows is None else (int(rows[0]), int(rows[1]))
    i0 = r0
    while i0 < r1:
        i1, size = i0, 0
        while i1 < r1 and (size == 0 or size + n <= SCHEDULE_PAIRS):
            size += (n - 1 - i1) if folded else n
            i1 += 1
        I = torch.arange(i0, i1, device=device)[:, None].expand(i1 - i0, n).reshape(-1)
        J = torch.arange(n, device=device)[None].expand(i1 - i0, n).reshape(-1)
        if folded:  # a static selection (no data involved): the pairs j > i of these rows
            flat = np.flatnonzero(np.triu(np.ones((i1 - i0, n), dtype=bool), i0 + 1))
            flat = torch.as_tensor(flat, device=device)
            I, J = I[flat], J[flat]
        if I.shape[0]:
            yield I, J
        i0 = i1


def _schedule(U, plan: KinkPlan, rows, folded: bool, per_block: int, device):
    """Blocks ``(I, J, first-layer cap)``: each window's pairs sorted by their number of first-activation
    crossings (a sign-pattern count, exact), cut into blocks of ``per_block`` pairs; a block's cap is its
    largest count, so blocks of pairs with few kinks carry little padding."""
    n = U.shape[0]
    act = plan.stages[0][0]
    thr = torch.tensor(_thresholds(act), dtype=DTYPE, device=device)
    with torch.no_grad():
        Z = plan.head(U) if plan.head is not None else U
        above = _detect(act, Z)[..., None] > thr  # (n, H, R)
    blocks = []
    for I, J in _pair_windows(n, rows, folded, device):
        count = (above[I] != above[J]).reshape(I.shape[0], -1).sum(1)
        count, order = torch.sort(count, stable=True)
        I, J = I[order], J[order]
        ends = list(range(per_block, I.shape[0], per_block)) + [I.shape[0]]
        caps = count[torch.as_tensor(ends, device=device) - 1].cpu().tolist()  # one synchronisation per window
        start = 0
        for end, cap in zip(ends, caps):
            blocks.append((I[start:end], J[start:end], int(cap)))
            start = end
    return blocks


def kink_pair_sum(P, alpha: float, beta: float, plan: KinkPlan, rtol: float, chunk_elements: int, rows):
    """``(Σ_pairs E_λ l, error bound)`` as tensors: the kink-aware sum over ordered pairs (all of them, or
    those with i in ``rows``)."""
    device = P.device
    folded = rows is None or (int(rows[0]) == 0 and int(rows[1]) == P.n)
    if folded:
        dens = [_Density(alpha, alpha, _centre(alpha, alpha), 2.0)] if alpha == beta else \
            [_Density(alpha, beta, _centre(alpha, beta), 1.0), _Density(beta, alpha, _centre(beta, alpha), 1.0)]
    else:
        dens = [_Density(alpha, beta, _centre(alpha, beta), 1.0)]
    cuts = torch.as_tensor(_cuts(alpha, beta), dtype=DTYPE, device=device)
    dens, norm_err = _normalised(dens, cuts, device)
    loss = _stable_loss(P.loss.name)
    with torch.no_grad():
        U = plan.prefix(P.inputs) if plan.prefix is not None else P.inputs
        counts = _unit_counts(U, plan)
        caps = _caps(counts, counts[0], 1, cuts.shape[0])  # the widest blocks (sizes the blocks)
        width = (cuts.shape[0] + sum(caps)) * max(max(counts), int(np.prod(U.shape[1:])), 2 * FIRST_NODES * P.K)
        per_block = max(MIN_BLOCK_PAIRS, chunk_elements // width)
        blocks = _schedule(U, plan, None if folded else rows, folded, per_block, device)
        diag = torch.zeros((), dtype=DTYPE, device=device)
        if folded:
            diag = loss(P.F, P.Y).sum()
        m = FIRST_NODES
        while True:
            rules = _Rules(dens, m, device)
            # per-block results written in place into preallocated tensors: small tensors kept alive between
            # blocks would pin the heap above each block's large temporaries (RSS grew by MiBs per block)
            sums = torch.zeros(max(len(blocks), 1), 3, dtype=DTYPE, device=device)
            flags = torch.zeros(max(len(blocks), 1), dtype=torch.bool, device=device)
            for k, (I, J, c1) in enumerate(blocks):
                caps_k = _caps(counts, c1, 1, cuts.shape[0])
                _block(P, U, I, J, plan, cuts, caps_k, loss, dens, rules, sums[k], flags[k:k + 1])
            scale, redo = 1, np.ones(len(blocks), dtype=bool)
            while blocks and redo.any():
                redo &= flags[:len(blocks)].cpu().numpy()  # the one synchronisation of the round
                scale *= 2
                for k in np.flatnonzero(redo):  # more crossings than the cap: redo with twice the cap
                    I, J, c1 = blocks[k]
                    caps_k = _caps(counts, c1, scale, cuts.shape[0])
                    _block(P, U, I, J, plan, cuts, caps_k, loss, dens, rules, sums[k], flags[k:k + 1])
            value, diff, size = sums.sum(0)
            total = diag + value
            mag = diag.abs() + size
            err = diff + (ROUNDING_RTOL + norm_err) * mag
            tot, e = float(total), float(err)
            if e <= rtol * abs(tot) or 2 * m > MAX_PIECE_NODES:
                break
            m *= 2
    if not e <= rtol * abs(tot):
        warnings.warn(f"kink-aware Mixup loss: error estimate {e:.2e} above rtol × value with {m} nodes per "
                      f"piece", AccuracyWarning, stacklevel=3)
    return total, err


def _block(P, U, I, J, plan, cuts, caps, loss, dens, rules, out: torch.Tensor, flag: torch.Tensor) -> None:
    """One block: writes ``(value, Σ|Q_m − Q_{m/2}|, Σ|terms|)`` into ``out``, its overflow flag into ``flag``."""
    T, F, overflow = _breakpoints(U[I], U[J], plan, cuts, caps)
    value, diff, mag = _integrate(T, F, P.Y[I], P.Y[J], loss, dens, rules)
    out[0], out[1], out[2] = value, diff, mag
    torch.any(overflow, dim=0, keepdim=True, out=flag)
