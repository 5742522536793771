"""Kink-aware exact Mixup loss for piecewise-linear networks (docs/theory.md §2).

Along a pair's segment ``λ ↦ u_j + λ(u_i − u_j)`` a network of affine layers and piecewise-linear
activations (ReLU, LeakyReLU, ReLU6, Hardtanh) is affine in λ between breakpoints. The breakpoints
are found exactly, layer by layer: on each piece a unit's pre-activation is affine, so it crosses an
activation threshold θ at most once, at ``t = t_k + (t_{k+1} − t_k)(z_k − θ)/(z_k − z_{k+1})``.
Values at new breakpoints are interpolated linearly (exact on an affine piece), then the layer is
applied at all breakpoints. On each piece the logit is affine, so the integrand is the smooth loss
of an affine function of λ times the Beta(α, β) density; it is integrated by rules that converge
geometrically on every piece:

- pieces touching 0 (or 1) by Gauss–Jacobi in the weight λ^(α−1) (or (1−λ)^(β−1)) on ``[0, x]``
  (``[x, 1]``); ½ is always a breakpoint, so the other factor of the density is analytic there;
- pieces ``[l, r] ⊂ [0, ½]`` with ``l ≥ r/2`` (away from 0 relative to their length) by
  Gauss–Legendre; closer pieces as ``∫_0^r − ∫_0^l`` of the piece's affine extension (twice the
  piece's length at most), each by Gauss–Jacobi; the same mirrored on ``[½, 1]``.

Every integral is evaluated with m and m/2 nodes; ``Σ|Q_m − Q_{m/2}|`` (an estimate of the m/2-node
error, so a large over-estimate of the returned m-node error when convergence is geometric) plus a
rounding allowance is the reported error; m doubles on the integrals whose difference is too large.
"""
from __future__ import annotations

import math
import warnings
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
                                      nn.BatchNorm2d)
"""Layers applied as they are at the breakpoints: affine maps in eval mode (the model is evaluated as an
eval-mode copy, where ``Dropout`` is the identity and batch norm uses its running statistics)."""
KINK_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ReLU6, nn.Hardtanh)
FIRST_NODES = 8
"""Nodes per piece on the first try (the m/2 = 4-node rule gives the error estimate)."""
MAX_PIECE_NODES = 512
ROUNDING_RTOL = 64 * float(np.finfo(np.float64).eps)
"""Rounding allowance added to the error estimate, relative to Σ|terms| (≈ 1.4e-14)."""


def _thresholds(layer: nn.Module) -> tuple[float, ...]:
    if isinstance(layer, (nn.ReLU, nn.LeakyReLU)):
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


def kink_plan(model, shortcut: bool):
    """``(prefix_layers, tail_layers)`` when ``model`` is a ``Sequential`` of affine layers and
    piecewise-linear activations with at least one activation, else ``None``. ``prefix_layers`` is the
    leading affine block applied once per sample (the first-layer shortcut) when ``shortcut``."""
    layers = _flat_layers(model)
    if not layers or not all(isinstance(m, KINK_AFFINE_LAYERS + KINK_ACTIVATIONS) for m in layers):
        return None
    if not any(isinstance(m, KINK_ACTIVATIONS) for m in layers):
        return None
    k = 0
    if shortcut:
        while not isinstance(layers[k], KINK_ACTIVATIONS):
            k += 1
    return layers[:k], layers[k:]


def _float64_eval(layers: list[nn.Module]) -> nn.Sequential:
    return eval_copy(nn.Sequential(*layers))


# ---------------------------------------------------------------- breakpoints

def _insert_kinks(T: torch.Tensor, Z: torch.Tensor, thresholds) -> tuple[torch.Tensor, torch.Tensor]:
    """Add every crossing of a threshold by a unit on a piece; values there by linear interpolation."""
    P, B = T.shape
    H = Z[0, 0].numel()
    Zf = Z.reshape(P, B, H)
    news = []
    for theta in thresholds:
        D = Zf - theta
        d0, d1 = D[:, :-1], D[:, 1:]
        cross = (d0 * d1) < 0
        if not bool(cross.any()):
            continue
        t0, t1 = T[:, :-1, None], T[:, 1:, None]
        t = t0 + (t1 - t0) * (d0 / torch.where(cross, d0 - d1, torch.ones((), dtype=DTYPE, device=T.device)))
        t = torch.where(cross, t.clamp(min=0.0, max=1.0), torch.full((), 2.0, dtype=DTYPE, device=T.device))
        count = int(cross.sum((1, 2)).max())
        news.append(torch.sort(t.reshape(P, -1), dim=1).values[:, :count])
    if not news:
        return T, Z
    new = torch.cat(news, 1)
    new = torch.where(new > 1.0, torch.ones((), dtype=DTYPE, device=T.device), new)  # padding: empty pieces at 1
    T2 = torch.sort(torch.cat([T, new], 1), dim=1).values
    idx = (torch.searchsorted(T, T2, right=True) - 1).clamp(0, B - 2)
    ta, tb = T.gather(1, idx), T.gather(1, idx + 1)
    span = tb - ta
    frac = torch.where(span > 0, (T2 - ta) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(span))
    frac = frac.clamp(0.0, 1.0)
    gi = idx[:, :, None].expand(P, T2.shape[1], H)
    Za, Zb = Zf.gather(1, gi), Zf.gather(1, gi + 1)
    Z2 = torch.lerp(Za, Zb, frac[:, :, None])  # exact at both ends of a piece
    return T2, Z2.reshape(P, T2.shape[1], *Z.shape[2:])


def _breakpoints(Ui, Uj, tail: list[nn.Module]):
    """Breakpoints ``T`` (P, B), sorted, with 0, ½, 1, and the logits ``F`` (P, B, K) there."""
    P = Ui.shape[0]
    T = torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE, device=Ui.device).expand(P, 3).contiguous()
    shape = Ui.shape[1:]
    Z = torch.lerp(Uj[:, None].expand(P, 3, *shape), Ui[:, None].expand(P, 3, *shape),
                   T.reshape(P, 3, *([1] * len(shape))).expand(P, 3, *shape))
    for layer in tail:
        if isinstance(layer, KINK_ACTIVATIONS):
            T, Z = _insert_kinks(T, Z, _thresholds(layer))
            Z = layer(Z)
        else:
            B = T.shape[1]
            Z = layer(Z.reshape(P * B, *Z.shape[2:]))
            Z = Z.reshape(P, B, *Z.shape[1:])
    return T, Z.reshape(T.shape[0], T.shape[1], -1)


# ---------------------------------------------------------------- one activation layer: events and running sums

_REGIONS = {  # activation on the regions between its thresholds: act(z) = σ z + τ
    nn.ReLU: lambda m: ((0.0, 0.0), (1.0, 0.0)),
    nn.LeakyReLU: lambda m: ((float(m.negative_slope), 0.0), (1.0, 0.0)),
    nn.ReLU6: lambda m: ((0.0, 0.0), (1.0, 0.0), (0.0, 6.0)),
    nn.Hardtanh: lambda m: ((0.0, float(m.min_val)), (1.0, 0.0), (0.0, float(m.max_val))),
}


def _regions(layer):
    for cls, fn in _REGIONS.items():
        if type(layer) is cls:
            return fn(layer)
    return None


def single_activation(tail: list[nn.Module], U: torch.Tensor):
    """``(pre, act, M, c)`` when ``tail`` = affine layers, one activation, affine layers: ``pre`` maps
    the mixed features to the pre-activations and the affine rest is ``v ↦ M v + c`` (M: K × H)."""
    acts = [k for k, m in enumerate(tail) if isinstance(m, KINK_ACTIVATIONS)]
    if len(acts) != 1 or _regions(tail[acts[0]]) is None:
        return None
    k = acts[0]
    pre, post = nn.Sequential(*tail[:k]), nn.Sequential(*tail[k + 1:])
    with torch.no_grad():
        Z0 = pre(U[:1])
        H = Z0[0].numel()
        if H > 16384:
            return None
        basis = torch.cat([torch.zeros(1, H, dtype=DTYPE, device=U.device),
                           torch.eye(H, dtype=DTYPE, device=U.device)]).reshape(H + 1, *Z0.shape[1:])
        out = post(basis).reshape(H + 1, -1)
    c = out[0]
    return pre, tail[k], (out[1:] - c).T.contiguous(), c


def _event_pieces(Zi: torch.Tensor, Zj: torch.Tensor, act: nn.Module, M: torch.Tensor, c: torch.Tensor):
    """Breakpoints ``T`` (P, B) and per piece the logit at its left end and its slope, for
    ``F(λ) = M act(Z_j + λ(Z_i − Z_j)) + c``: each unit crossing a threshold is an event that changes
    its (σ, τ); running sums of ``M_h(Δσ z_h + Δτ)`` and ``M_h Δσ dz_h`` over the sorted events give
    the affine logit of every piece (no network evaluation between or at breakpoints)."""
    regions = _regions(act)
    thresholds = torch.tensor(_thresholds(act), dtype=DTYPE, device=Zi.device)
    sig = torch.tensor([r[0] for r in regions], dtype=DTYPE, device=Zi.device)
    tau = torch.tensor([r[1] for r in regions], dtype=DTYPE, device=Zi.device)
    P = Zi.shape[0]
    dZ = Zi - Zj  # (P, H)
    # region just after λ = 0: thresholds below z (or equal with z increasing)
    start = ((Zj[..., None] > thresholds) | ((Zj[..., None] == thresholds) & (dZ[..., None] > 0))).sum(-1)
    A = c + (sig[start] * Zj + tau[start]) @ M.T  # (P, K)
    Bs = (sig[start] * dZ) @ M.T
    safe = torch.where(dZ != 0, dZ, torch.ones_like(dZ))
    t = (thresholds - Zj[..., None]) / safe[..., None]  # (P, H, R−1)
    hit = (dZ[..., None] != 0) & (t > 0) & (t < 1)
    up = (dZ > 0)[..., None].expand_as(t)
    # region index after the crossing: above threshold k is region k+1 when rising, k when falling
    kidx = torch.arange(thresholds.shape[0], device=Zi.device).expand_as(t)
    old = torch.where(up, kidx, kidx + 1)
    new = torch.where(up, kidx + 1, kidx)
    d_sig = torch.where(hit, sig[new] - sig[old], torch.zeros_like(t))
    d_tau = torch.where(hit, tau[new] - tau[old], torch.zeros_like(t))
    tt = torch.where(hit, t, torch.full_like(t, 2.0)).reshape(P, -1)
    order = torch.argsort(tt, dim=1)
    count = int(hit.reshape(P, -1).sum(1).max()) if hit.numel() else 0
    order = order[:, :count]
    te = tt.gather(1, order)  # (P, E) sorted event times (padding 2.0)
    H = Zi.shape[1]
    unit = order // thresholds.shape[0]
    dA = (d_sig.reshape(P, -1).gather(1, order) * Zj.gather(1, unit) + d_tau.reshape(P, -1).gather(1, order))
    dB = d_sig.reshape(P, -1).gather(1, order) * dZ.gather(1, unit)
    MA = M.T[unit]  # (P, E, K)
    cumA = torch.cat([A[:, None], A[:, None] + torch.cumsum(dA[..., None] * MA, 1)], 1)  # (P, E+1, K)
    cumB = torch.cat([Bs[:, None], Bs[:, None] + torch.cumsum(dB[..., None] * MA, 1)], 1)
    base = torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE, device=Zi.device).expand(P, 3)
    T = torch.sort(torch.cat([base, te.clamp(max=1.0)], 1), dim=1).values
    l = T[:, :-1]
    idx = torch.searchsorted(te.contiguous(), l.contiguous(), right=True)  # events at or before the piece's start
    K = M.shape[0]
    Apiece = cumA.gather(1, idx[..., None].expand(P, idx.shape[1], K))
    Bpiece = cumB.gather(1, idx[..., None].expand(P, idx.shape[1], K))
    del H
    return T, Apiece + l[..., None] * Bpiece, Bpiece


# ---------------------------------------------------------------- rules and the smooth loss

@lru_cache(maxsize=64)
def _legendre(m: int):
    t, w = np.polynomial.legendre.leggauss(m)
    return (t + 1) / 2, w / 2  # on [0, 1]


def _stable_loss(name: str, F: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """The loss as a sum of non-negative terms (no cancellation at large margins)."""
    if name == "logistic":
        # ỹ softplus(−f) + (1 − ỹ) softplus(f) = log1p(e^−|f|) + (1 − ỹ) relu(f) + ỹ relu(−f): one exp
        f, y = F[..., 0], Y[..., 0]
        return torch.log1p(torch.exp(-f.abs())) + (1 - y) * torch.relu(f) + y * torch.relu(-f)
    if name == "softmax":
        return -(Y * torch.log_softmax(F, -1)).sum(-1)
    R = Y - F
    return 0.5 * (R * R).sum(-1)


class _Rules:
    """Node sets for one (α, β) and m: Gauss–Jacobi for λ^(α−1) and (1−λ)^(β−1) on [0, 1], Legendre."""

    def __init__(self, alpha: float, beta: float, m: int, device):
        as_t = lambda v: torch.as_tensor(v, dtype=DTYPE, device=device)
        self.mu_a, self.nu_a = map(as_t, MixupLambda(alpha, 1.0).nodes(m))
        self.mu_b, self.nu_b = map(as_t, MixupLambda(beta, 1.0).nodes(m))
        self.gl_t, self.gl_w = map(as_t, _legendre(m))


def _piece_integrals(loss: str, alpha: float, beta: float, rules: _Rules, kind: str, x, sign, l, Fl, S, Yi, Yj):
    """Signed integrals ``∫ loss(F_l + (λ − l)S, ỹ(λ)) Beta(α, β)(dλ)``, one per row (see the module doc)."""
    log_norm = special.betaln(alpha, beta)
    if kind == "left":  # over [0, x], λ = xμ, μ ~ Beta(α, 1)
        lam = x[:, None] * rules.mu_a
        off = lam - l[:, None]
        logc = alpha * torch.log(x) - math.log(alpha) - log_norm
        wt = rules.nu_a * torch.exp(logc[:, None] + (beta - 1.0) * torch.log1p(-lam))
    elif kind == "right":  # over [x, 1], 1 − λ = (1 − x)μ, μ ~ Beta(β, 1)
        s = (1 - x)[:, None] * rules.mu_b
        lam = 1 - s
        off = (1 - l)[:, None] - s
        logc = beta * torch.log1p(-x) - math.log(beta) - log_norm
        wt = rules.nu_b * torch.exp(logc[:, None] + (alpha - 1.0) * torch.log1p(-s))
    else:  # Legendre on [l, x]
        h = (x - l)[:, None]
        off = h * rules.gl_t
        lam = l[:, None] + off
        logd = (alpha - 1.0) * torch.log(lam) + (beta - 1.0) * torch.log1p(-lam) - log_norm
        wt = h * rules.gl_w * torch.exp(logd)
    F = Fl[:, None, :] + off[..., None] * S[:, None, :]
    Y = Yj[:, None, :] + lam[..., None] * (Yi - Yj)[:, None, :]
    terms = sign[:, None] * wt * _stable_loss(loss, F, Y)
    return terms.sum(1), terms.abs().sum(1)


def _slopes(T: torch.Tensor, F: torch.Tensor):
    """Per piece: the logit at its left end and its slope in λ, from the logits at the breakpoints."""
    l, r = T[:, :-1], T[:, 1:]
    h = torch.where(r > l, r - l, torch.ones_like(r))
    return F[:, :-1], (F[:, 1:] - F[:, :-1]) / h[..., None]


def _panels(T: torch.Tensor, Fl: torch.Tensor, S: torch.Tensor):
    """Integral items ``(kind, x, sign, l, F_l, S, pair)`` for the pieces between breakpoints."""
    l, r = T[:, :-1], T[:, 1:]
    valid = r > l
    pair = torch.arange(T.shape[0], device=T.device)[:, None].expand_as(l)
    left_side = r <= 0.5
    items = []

    def add(kind, mask, x, sign):
        if bool(mask.any()):
            items.append((kind, x[mask], torch.full_like(x[mask], sign), l[mask], Fl[mask], S[mask], pair[mask]))

    near0 = valid & left_side & (l < r / 2)  # includes l = 0
    add("legendre", valid & left_side & ~near0, r, 1.0)
    add("left", near0, r, 1.0)
    add("left", near0 & (l > 0), l, -1.0)
    near1 = valid & ~left_side & ((1 - r) < (1 - l) / 2)  # includes r = 1
    add("legendre", valid & ~left_side & ~near1, r, 1.0)
    add("right", near1, l, 1.0)
    add("right", near1 & (r < 1), r, -1.0)
    return items


def _block_integral(loss, alpha, beta, T, Fl, S, Yi, Yj, rtol, device):
    """``(Q, Σ|Q_m − Q_{m/2}| + rounding, largest m)`` for one block of pairs.

    Every integral starts with m = ``FIRST_NODES``; those whose ``|Q_m − Q_{m/2}|`` exceeds
    ``rtol/2 · max(|Q_m|, block value / items)`` are redone with 2m nodes (the m-node value becomes the
    new comparison), up to ``MAX_PIECE_NODES``."""
    rules = {}

    def rule(m):
        if m not in rules:
            rules[m] = _Rules(alpha, beta, m, device)
        return rules[m]

    groups = []
    for kind, x, sign, l, Fl_, S_, pair in _panels(T, Fl, S):
        args = (kind, x, sign, l, Fl_, S_, Yi[pair], Yj[pair])
        fine, mag = _piece_integrals(loss, alpha, beta, rule(FIRST_NODES), *args)
        coarse, _ = _piece_integrals(loss, alpha, beta, rule(FIRST_NODES // 2), *args)
        groups.append([args, fine, coarse, mag])
    total = sum(float(g[1].sum()) for g in groups)
    count = sum(g[1].shape[0] for g in groups)
    floor = abs(total) / max(count, 1)
    m = FIRST_NODES
    while m < MAX_PIECE_NODES:
        todo = [(g, (g[1] - g[2]).abs() > 0.5 * rtol * torch.clamp(g[1].abs(), min=floor)) for g in groups]
        if not any(bool(bad.any()) for _, bad in todo):
            break
        m *= 2
        for g, bad in todo:
            if bool(bad.any()):
                args = tuple(a[bad] if isinstance(a, torch.Tensor) else a for a in g[0])
                fine, mag = _piece_integrals(loss, alpha, beta, rule(m), *args)
                g[2] = g[2].clone()
                g[2][bad] = g[1][bad]
                g[1] = g[1].clone()
                g[1][bad] = fine
                g[3] = g[3].clone()
                g[3][bad] = mag
    value = sum(g[1].sum() for g in groups)
    error = sum((g[1] - g[2]).abs().sum() + ROUNDING_RTOL * g[3].sum() for g in groups)
    return value, error, m


def _per_pair_width(U: torch.Tensor, tail: list[nn.Module]) -> int:
    """A size estimate for one pair's breakpoint tensor: (3 + possible kinks) × widest layer."""
    with torch.no_grad():
        Z = U[:1]
        widest, kinks = Z[0].numel(), 0
        for layer in tail:
            if isinstance(layer, KINK_ACTIVATIONS):
                kinks += len(_thresholds(layer)) * Z[0].numel()
            Z = layer(Z)
            widest = max(widest, Z[0].numel())
    return (3 + min(kinks, 4096)) * widest


def kink_pair_sum(P, alpha: float, beta: float, plan, rtol: float, chunk_elements: int, rows, pair_blocks):
    """``(Σ_pairs E_λ l, error bound)``: the kink-aware sum over ordered pairs (or a shard's rows)."""
    prefix_layers, tail_layers = plan
    with torch.no_grad():
        X = P.inputs  # the caller's shape (n, …): a conv first layer needs it
        U = _float64_eval(prefix_layers)(X) if prefix_layers else X
        layers = list(_float64_eval(tail_layers))
        fast = single_activation(layers, U)
        if fast is not None:
            pre, act, M, c = fast
            U = pre(U).reshape(U.shape[0], -1)
            width = U.shape[1] * len(_thresholds(act)) * (2 * FIRST_NODES + 4 * M.shape[0]) + 2 * U.shape[1]
        else:
            width = _per_pair_width(U, layers)
        total = torch.zeros((), dtype=DTYPE, device=U.device)
        err = torch.zeros((), dtype=DTYPE, device=U.device)
        worst_m = FIRST_NODES
        for i0, i1, j0, j1 in pair_blocks(P.n, width, chunk_elements, rows):
            bi, bj = i1 - i0, j1 - j0
            Ui = U[i0:i1, None].expand(bi, bj, *U.shape[1:]).reshape(bi * bj, *U.shape[1:])
            Uj = U[None, j0:j1].expand(bi, bj, *U.shape[1:]).reshape(bi * bj, *U.shape[1:])
            Yi = P.Y[i0:i1, None].expand(bi, bj, P.K).reshape(bi * bj, P.K)
            Yj = P.Y[None, j0:j1].expand(bi, bj, P.K).reshape(bi * bj, P.K)
            if fast is not None:
                T, Fl, S = _event_pieces(Ui, Uj, act, M, c)
            else:
                T, F = _breakpoints(Ui, Uj, layers)
                Fl, S = _slopes(T, F)
            value, error, m = _block_integral(P.loss.name, alpha, beta, T, Fl, S, Yi, Yj, rtol, U.device)
            worst_m = max(worst_m, m)
            total, err = total + value, err + error
    if float(err) > rtol * float(total):
        warnings.warn(f"kink-aware Mixup loss: error estimate {float(err):.2e} above rtol × value with "
                      f"{MAX_PIECE_NODES} nodes per piece", AccuracyWarning, stacklevel=3)
    return total, err
