"""The exact Mixup loss (docs/theory.md §2), its un-mixed form (C1, identity (I)) and sampled estimators.

Exact means: all n² ordered pairs (i = j included) × a Gauss–Jacobi rule over λ, so the only
error is quadrature error. Work is chunked so memory stays below ``chunk_elements`` float64
values per tensor, whatever n is.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ._problem import Problem, prepare
from ._validate import (DTYPE, MAX_CHUNK_ELEMENTS, ArgumentTypeError, MAX_DRAWS, MAX_NODES, as_labels, check_alpha_beta, check_choice, check_count,
                        check_nodes, check_nonnegative, check_pairs, check_rng, check_rows, check_rtol, check_scalar)
from ._summary import summary_repr
from ._kinks import kink_pair_sum
from ._mixing import MAX_NODES, MixupLambda
from ._models import AFFINE_LAYERS, eval_copy, is_affine, layers_of, split_affine_prefix
from ._separated import MAX_MARGIN_FIXED_RULE, check_margins, panel_edges, separated_pair_sum
from ._trace import kink_route
from ._warnings import AccuracyWarning
from ._docs import fill_doc

DEFAULT_NODES = 64
"""Gauss–Jacobi nodes of ``mixup_loss_unmixed`` (and the smooth-model node count of the paper's data
scales): measured relative errors at 32 / 64 nodes: logistic regression on standardized breast cancer
1.6e-9 / 4.9e-13; a Mixup-trained tanh MLP on two-moons (|f| ≤ 5) 3.4e-7 / 5.9e-11. ``mixup_loss``
itself integrates to a tolerance (``rtol``) instead: kink-aware for piecewise-linear nets, node
doubling otherwise (docs/theory.md §2.3)."""
CHUNK_ELEMENTS = 1 << 20
"""Float64 values per intermediate tensor on CPU (8 MiB). Blocks this size measured fastest on CPU
(``python -m benchmarks``): large enough to amortise per-block dispatch, small enough for the
cache. Memory stays a few chunks whatever n is."""
DEVICE_CHUNK_ELEMENTS = 1 << 24
"""Used in place of ``CHUNK_ELEMENTS`` when ``chunk_elements`` is left at that default and the model
lives on an accelerator (128 MiB per tensor): fewer, larger kernel launches. Any other value of
``chunk_elements`` is used as given."""


def _rule(alpha, beta, nodes, tilde, device):
    q = DEFAULT_NODES if nodes is None else check_nodes(nodes)
    lam, w = MixupLambda(alpha, beta).nodes(q, tilde=tilde)
    return torch.as_tensor(lam, dtype=DTYPE, device=device), torch.as_tensor(w, dtype=DTYPE, device=device)


def _features(P: Problem, shortcut: bool):
    """``(U, rest)`` with ``f = rest ∘ prefix`` and ``U = prefix(X)`` mixed in place of X (docs/theory.md §2)."""
    split = split_affine_prefix(P.model) if shortcut else None
    if split is None:  # mix the inputs in the caller's shape (n, …)
        return P.inputs, (lambda Z: P.fn(Z.reshape(Z.shape[0], -1)))
    prefix, rest = split
    with torch.no_grad():
        U = prefix(P.inputs)
    return U, (lambda Z: rest(Z).reshape(Z.shape[0], -1))


def _row_range(n: int, rows) -> tuple[int, int]:
    """``rows = (r0, r1)``: the first index i of the ordered pairs (i, j) a shard sums over (all by default)."""
    return check_rows(rows, n)


def _fold_symmetric(lam: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Halve a λ-rule symmetric under λ ↔ 1−λ (α = β) for sums over *all* ordered pairs.

    The summand at (i, j, λ) equals the one at (j, i, 1−λ) (same mixed point, same mixed label), so
    ``Σ_ij Σ_q w_q g(i, j, λ_q) = Σ_ij Σ_{λ_q > 1/2} 2w_q g(i, j, λ_q) [+ w_mid Σ_ij g(i, j, ½)]``.
    Only the sum over all ordered pairs is preserved, so row shards (``rows``) use the unfolded rule and
    return exactly ``Σ_{r0≤i<r1} Σ_j``. Rules that are not symmetric (α ≠ β) are returned unchanged.
    """
    q = lam.shape[0]
    order = torch.argsort(lam)
    lam, w = lam[order], w[order]
    mirror_lam, mirror_w = lam.flip(0), w.flip(0)
    symmetric = bool(((lam + mirror_lam - 1).abs().max() <= 64 * torch.finfo(DTYPE).eps)
                     & ((w - mirror_w).abs().max() <= 1e-12 * w.abs().max()))
    if not symmetric or q < 2:
        return lam, w
    upper = slice((q + 1) // 2, q)
    lam_f, w_f = lam[upper], (w + mirror_w)[upper]
    if q % 2:
        mid = q // 2
        lam_f, w_f = torch.cat([lam[mid:mid + 1], lam_f]), torch.cat([w[mid:mid + 1], w_f])
    return lam_f, w_f


def _pair_moment(A: torch.Tensor, B: torch.Tensor, lam: torch.Tensor, w: torch.Tensor,
                 r0: int, r1: int) -> torch.Tensor:
    """``Σ_{r0≤i<r1} Σ_j E_λ[(λa_i + (1−λ)a_j)ᵀ(λb_i + (1−λ)b_j)]`` in closed form from λ's moments (O(nK))."""
    n = A.shape[0]
    e2, c, o2 = (w * lam * lam).sum(), (w * lam * (1 - lam)).sum(), (w * (1 - lam) ** 2).sum()
    Ar, Br = A[r0:r1], B[r0:r1]
    return (e2 * n * (Ar * Br).sum()
            + c * ((Ar.sum(0) * B.sum(0)).sum() + (A.sum(0) * Br.sum(0)).sum())
            + o2 * (r1 - r0) * (A * B).sum())


def _pair_blocks(n: int, per_pair: int, chunk_elements: int, rows=None):
    """Blocks ``(i0, i1, j0, j1)`` of ordered pairs holding at most ``chunk_elements`` values.

    ``rows = (r0, r1)`` restricts i to a shard (``experiments.distributed``)."""
    r0, r1 = _row_range(n, rows)
    bj = max(1, min(n, chunk_elements // max(per_pair, 1)))
    bi = max(1, min(max(r1 - r0, 1), chunk_elements // max(per_pair * bj, 1)))
    for i0 in range(r0, r1, bi):
        for j0 in range(0, n, bj):
            yield i0, min(r1, i0 + bi), j0, min(n, j0 + bj)


def _linear_pair_sum(P: Problem, z: torch.Tensor, lam, w, chunk_elements: int, rows=None) -> torch.Tensor:
    """Σ_ij E_λ l for a model affine end-to-end (K = 1): only the n margins are mixed.

    Logistic: ``Σ_ij E_λ [ỹ·softplus(−z̃) + (1−ỹ)·softplus(z̃)]`` pair by pair — the cost — with mixed margins
    and labels (no cancellation for tiny losses). The λ-rule is folded for α = β (half the softplus
    evaluations, ``_fold_symmetric``); blocks live in one preallocated buffer of ``chunk_elements``.
    Squared: a second moment of the mixed residuals ``z − y``, so the sum is closed form, O(n).
    ``rows`` restricts i (sharding); the shards' sums add up to the total.
    """
    z = z.reshape(-1, 1)
    n = z.shape[0]
    r0, r1 = _row_range(n, rows)
    if P.loss.name == "squared":  # ½(ỹ − z̃)² = ½(λr_i + (1−λ)r_j)² with residuals r = z − y
        # (one moment of residuals: expanding into ½z̃² − ỹz̃ + ½ỹ² cancels catastrophically for offset labels)
        resid = z - P.Y
        return 0.5 * _pair_moment(resid, resid, lam, w, r0, r1)
    lam_f, w_f = _fold_symmetric(lam, w) if (r0, r1) == (0, n) else (lam, w)  # a shard: its own rows' share
    q = lam_f.shape[0]
    zf, yf = z.reshape(-1), P.Y.reshape(-1)
    left, right = zf[:, None] * lam_f, (1 - lam_f)[:, None] * zf  # (n, q): λ z_i; (q, n): (1 − λ) z_j
    yleft, yright = yf[:, None] * lam_f, (1 - lam_f)[:, None] * yf
    bj = max(1, min(n, chunk_elements // q))
    bi = max(1, min(max(r1 - r0, 1), chunk_elements // (q * bj)))
    buf = torch.empty(bi * q * bj, dtype=DTYPE, device=z.device)
    ybuf = torch.empty(bi * q * bj, dtype=DTYPE, device=z.device)
    acc = torch.zeros(q, dtype=DTYPE, device=z.device)
    for i0 in range(r0, r1, bi):
        i1 = min(r1, i0 + bi)
        for j0 in range(0, n, bj):
            j1 = min(n, j0 + bj)
            size = (i1 - i0) * q * (j1 - j0)
            block = buf[:size].view(i1 - i0, q, j1 - j0)
            ymix = ybuf[:size].view(i1 - i0, q, j1 - j0)
            torch.add(left[i0:i1, :, None], right[None, :, j0:j1], out=block)
            torch.add(yleft[i0:i1, :, None], yright[None, :, j0:j1], out=ymix)
            # ỹ·softplus(−z̃) + (1−ỹ)·softplus(z̃) as a sum of non-negative terms (GLMLoss.value): no cancellation
            acc += P.loss.value(block.unsqueeze(-1), ymix.unsqueeze(-1)).sum((0, 2))
    return acc @ w_f


class _WidestOutput(torch.overrides.TorchFunctionMode):
    """Records the largest tensor any torch function returns while active (sizes ``rest``'s layers)."""

    def __init__(self):
        super().__init__()
        self.widest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.widest = max(self.widest, t.numel())
        return out


PROBE_ROWS = 64


def _row_width(U: torch.Tensor, rest) -> int:
    """Float64 values per mixed row in the widest tensor of ``rest`` (its hidden layers, not just d)."""
    probe = U[:1].expand(PROBE_ROWS, *U.shape[1:]).contiguous()
    with torch.no_grad(), _WidestOutput() as mode:
        rest(probe)
    return max(int(np.prod(U.shape[1:])), -(-mode.widest // PROBE_ROWS))


def _generic_pair_sum(P: Problem, U: torch.Tensor, rest, lam, w, chunk_elements: int, rows=None) -> torch.Tensor:
    """Σ_ij E_λ l(f(λx_i + (1−λ)x_j), λy_i + (1−λ)y_j) with ``f = rest ∘ prefix`` and ``U = prefix(X)``.

    Blocks of (i, j, λ) rows are mixed in one fused pass into a preallocated buffer
    (``U_j + λ(U_i − U_j)``) and sent through ``rest``; no tensor of ``rest`` exceeds about
    ``chunk_elements`` values (its widest layer is probed once). The λ-rule is folded for α = β.
    ``rows`` restricts i (sharding).
    """
    n = U.shape[0]
    shape = tuple(U.shape[1:])
    width = int(np.prod(shape))
    lam_f, w_f = _fold_symmetric(lam, w) if _row_range(n, rows) == (0, n) else (lam, w)  # a shard: its rows' share
    q = lam_f.shape[0]
    per_pair = q * max(_row_width(U, rest), P.K)
    lam_u = lam_f.reshape(1, 1, q, *([1] * len(shape)))
    lam_y = lam_f.reshape(1, 1, q, 1)
    acc = torch.zeros(q, dtype=DTYPE, device=U.device)
    buf = ybuf = None
    with torch.no_grad():
        for i0, i1, j0, j1 in _pair_blocks(n, per_pair, chunk_elements, rows):
            bi, bj = i1 - i0, j1 - j0
            if buf is None:  # the first block is the largest
                buf = torch.empty(bi * bj * q * width, dtype=DTYPE, device=U.device)
                ybuf = torch.empty(bi * bj * q * P.K, dtype=DTYPE, device=U.device)
            mixed = buf[:bi * bj * q * width].view(bi, bj, q, *shape)
            Uj = U[None, j0:j1, None]
            torch.addcmul(Uj, lam_u, U[i0:i1, None, None] - Uj, out=mixed)
            Ym = ybuf[:bi * bj * q * P.K].view(bi, bj, q, P.K)
            Yj = P.Y[None, j0:j1, None]
            torch.addcmul(Yj, lam_y, P.Y[i0:i1, None, None] - Yj, out=Ym)
            F = rest(mixed.view(-1, *shape)).reshape(bi, bj, q, -1)
            acc += P.loss.value(F, Ym).sum((0, 1))
    return acc @ w_f


def _plain_rest(P: Problem, shortcut: bool):
    """``(U, rest)`` as ``_features`` gives them, with ``rest`` a plain float64 copy of the model's
    trailing layers when the model is an ``nn.Sequential`` (other models keep ``_features``' rest).

    Same layers and parameters, so the same values as ``_features``' functional call, without its
    per-call overhead; activations of the copy run in place on the block buffer (ours, not the
    caller's). The caller's module is not touched.
    """
    U, rest = _features(P, shortcut)
    layers = layers_of(P.model)
    if not isinstance(P.model, nn.Sequential) or layers is None:
        return U, rest
    k = 0
    if shortcut and split_affine_prefix(P.model) is not None:
        while k < len(layers) and isinstance(layers[k], AFFINE_LAYERS):
            k += 1
    try:
        tail = eval_copy(nn.Sequential(*layers[k:]))  # eval mode, whatever the caller's mode
    except Exception:  # modules that cannot be copied keep the functional path
        return U, rest
    for layer in tail:
        if hasattr(layer, "inplace"):
            layer.inplace = True
    return U, (lambda Z: tail(Z).reshape(Z.shape[0], -1))


def _exact_pair_sum(P: Problem, lam, w, *, shortcut: bool = True, chunk_elements: int = CHUNK_ELEMENTS,
                    rows=None) -> torch.Tensor:
    """``n² L_mix`` (or, with ``rows``, a shard's share of it) with one λ-rule: the node-based paths.

    A model affine end-to-end with one output (logistic/squared) mixes its n margins; otherwise a
    leading affine block is applied once per sample when ``shortcut`` (docs/theory.md §2) and ``rest`` sees
    the mixed features.
    """
    if P.device.type != "cpu" and chunk_elements == CHUNK_ELEMENTS:
        chunk_elements = DEVICE_CHUNK_ELEMENTS
    if shortcut and P.K == 1 and P.loss.name != "softmax" and is_affine(P.model):
        return _linear_pair_sum(P, P.F, lam, w, chunk_elements, rows)
    U, rest = _plain_rest(P, shortcut)
    return _generic_pair_sum(P, U, rest, lam, w, chunk_elements, rows)


def pair_sums_at(P: Problem, lam: torch.Tensor, *, shortcut: bool = True,
                 chunk_elements: int = CHUNK_ELEMENTS) -> torch.Tensor:
    """``Σ_ij l(f(λx_i + (1−λ)x_j), λy_i + (1−λ)y_j)`` at each λ of ``lam`` (shape ``(q,)``), unweighted.

    One pass over the pairs serves every rule whose nodes lie in ``lam`` (product quadrature that
    reweights the same values for several mixing laws). The identity matrix as weights makes the paths
    of ``_exact_pair_sum`` return the per-node sums (it is never a symmetric rule, so nothing is folded).
    """
    eye = torch.eye(lam.shape[0], dtype=DTYPE, device=P.device)
    return _exact_pair_sum(P, lam, eye, shortcut=shortcut, chunk_elements=chunk_elements)


METHODS = ("auto", "pairs", "kinks", "separated")
SMOOTH_RTOL = 1e-10
"""Default ``rtol`` of the node-doubling path (smooth models and affine models)."""
KINK_RTOL = 1e-12
"""Default ``rtol`` of the kink-aware path (piecewise-linear models)."""
FIRST_DOUBLING_NODES = 32
"""Node doubling compares Q(32) with Q(64) first."""
NODE_ROUNDING_RTOL = 64 * float(np.finfo(np.float64).eps)


def _value_and_error(model, X, y, alpha, beta, loss, nodes, rtol, method, shortcut, chunk_elements, rows):
    """``(n² L_mix or a shard's share, error bound, n)``: the dispatch shared by ``mixup_loss`` and
    ``mixup_loss_error`` (see ``mixup_loss_error`` for the guarantee)."""
    alpha, beta = check_alpha_beta(alpha, beta)
    check_choice(method, "method", METHODS)
    check_choice(shortcut, "shortcut", (True, False))
    check_scalar(chunk_elements, "chunk_elements", int, min_val=1, max_val=MAX_CHUNK_ELEMENTS)
    if rtol is not None:
        rtol = check_rtol(rtol)
    if nodes is not None:
        nodes = check_nodes(nodes)
    P = prepare(model, X, y, loss)
    rows = check_rows(rows, P.n)
    return (*pair_sum_and_error(P, alpha, beta, nodes, rtol, method, shortcut, chunk_elements, rows), P.n)


def pair_sum_and_error(P: Problem, alpha: float, beta: float, nodes, rtol, method: str = "auto",
                       shortcut: bool = True, chunk_elements: int = CHUNK_ELEMENTS, rows=None):
    """``(n² L_mix or a shard's share, error bound or None)`` for a prepared problem (validated arguments).

    ``P.Y`` may hold any targets the loss takes, soft ones included (label smoothing: the estimators
    of docs/theory.md §2.7); every path is affine in the target."""
    if method == "separated" or (method == "auto" and shortcut and _separated_applies(P)
                                 and ((nodes is None and wide_margins(P.F)) or separated_preferred(P.F, P.n))
                                 and (nodes is None or float(P.F.abs().max()) <= MAX_MARGIN_FIXED_RULE)):
        return _separated(P, alpha, beta, nodes, rtol, rows)
    if not (P.K == 1 and P.loss.name == "squared" and shortcut and is_affine(P.model)):  # that one is O(n)
        r0, r1 = (0, P.n) if rows is None else rows
        check_pairs(r1 - r0, P.n)
    if (method == "pairs" or not shortcut) and _separated_applies(P) and wide_margins(P.F) and nodes is None:
        warnings.warn(f"mixup_loss: logistic margins up to {float(P.F.abs().max()):.3g} make the λ-integrand nearly "
                      f"kinked; the node-doubling error estimate is not a bound there (method='auto' takes the "
                      f"separated method)", AccuracyWarning, stacklevel=4)
    if nodes is not None:
        q = nodes
        lam, w = _rule(alpha, beta, q, False, P.device)
        return _exact_pair_sum(P, lam, w, shortcut=shortcut, chunk_elements=chunk_elements, rows=rows), None
    plan, off_path = kink_route(P, shortcut)  # a Sequential, or a module torch.fx traces into a chain
    if method == "kinks" and plan is None:
        raise ValueError("method='kinks' needs a chain of affine layers and ReLU/LeakyReLU/ReLU6/Hardtanh "
                         "activations (an nn.Sequential, or a module torch.fx traces into one); here: "
                         + (off_path or "the model has no piecewise-linear activation"))
    if method in ("auto", "kinks") and plan is not None:
        return kink_pair_sum(P, alpha, beta, plan, KINK_RTOL if rtol is None else rtol, chunk_elements, rows)
    if method == "pairs" and plan is not None:
        off_path = "method='pairs' was asked for"
    return _doubled(P, alpha, beta, SMOOTH_RTOL if rtol is None else rtol, shortcut, chunk_elements, rows, off_path)


def _doubled(P: Problem, alpha, beta, rtol, shortcut, chunk_elements, rows, off_path=None):
    """Q(q), Q(2q), … until ``|Q(q) − Q(q/2)| ≤ rtol·|Q(q)|``: returns Q(q) and |Q(q) − Q(q/2)| + rounding.
    ``off_path``: why a model with kinks in λ is not on the kink-aware path (warned: no bound then)."""
    if off_path is not None:
        warnings.warn(f"mixup_loss: this model is not on the kink-aware path ({off_path}); where its integrand "
                      "has kinks in λ the quadrature error estimate is not a bound", AccuracyWarning, stacklevel=5)
    q = FIRST_DOUBLING_NODES
    prev = _exact_pair_sum(P, *_rule(alpha, beta, q, False, P.device), shortcut=shortcut,
                           chunk_elements=chunk_elements, rows=rows)
    while True:
        q *= 2
        cur = _exact_pair_sum(P, *_rule(alpha, beta, q, False, P.device), shortcut=shortcut,
                              chunk_elements=chunk_elements, rows=rows)
        err = abs(float(cur) - float(prev)) + NODE_ROUNDING_RTOL * abs(float(cur))
        if err <= rtol * abs(float(cur)) or 2 * q > MAX_NODES:
            break
        prev = cur
    if err > rtol * abs(float(cur)):
        warnings.warn(f"mixup_loss: error estimate {err / max(abs(float(cur)), 1e-300):.1e} (relative) above "
                      f"rtol = {rtol:g} at the largest rule ({q} nodes)", AccuracyWarning, stacklevel=5)
    return cur, torch.as_tensor(err, dtype=DTYPE)


SEPARATED_MIN_N_PER_PANEL = 24
"""``method="auto"`` takes the separated method when n > 24·P (P panels, ≈ 2·log2(max|margin|)): both
methods' λ-rules grow with the margins; the separated method tabulates ~1700 values per node and panel
pair, the all-pairs quadrature n² per node over ~3 doubling rounds, so beyond that n it is the cheaper
(measured at margins ±111, n = 200: 31 s separated vs 5 s all pairs for 8 α; at ±517 the separated
method costs ~30 s for any n, all pairs ~40 s at n = 1000)."""


PAIRS_MAX_MARGIN = 16.0
"""``method="auto"`` takes the separated method for logistic regression whenever a margin exceeds this: the
pairs integrand ``softplus(λa + (1−λ)b)`` has singularities π/|a − b| off [0, 1], and beyond ~32 node doubling
can stop on two rules that agree by chance (measured: 20× under-reported at margins ±210, α = β = 1e-4)."""


def wide_margins(margins: torch.Tensor) -> bool:
    """Whether some logistic margin exceeds ``PAIRS_MAX_MARGIN`` in magnitude."""
    return float(margins.detach().abs().max()) > PAIRS_MAX_MARGIN


def separated_preferred(margins: torch.Tensor, n: int) -> bool:
    """Whether ``method="auto"`` takes the separated method for these logistic margins (docs/theory.md §2.6)."""
    reach = float(margins.detach().abs().max())
    panels = len(panel_edges(-reach, reach)) - 1
    return n > SEPARATED_MIN_N_PER_PANEL * panels


SEPARATED_RTOL = 1e-12
"""Default target of ``method="separated"``: estimated relative error of L_mix (docs/theory.md §2)."""


def _separated_applies(P: Problem) -> bool:
    """The linear-time method needs one logistic output of a model affine end-to-end (softmax couples
    K margins, the squared loss is already closed form)."""
    return P.K == 1 and P.loss.name == "logistic" and is_affine(P.model)


def _separated(P: Problem, alpha, beta, nodes, rtol, rows) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n² L_mix or a shard's share, error bound)`` by the separated method (docs/theory.md §2.6).
    With ``nodes`` given the bound is the separation error against that rule's value."""
    if not _separated_applies(P):
        raise ValueError("method='separated' needs loss='logistic' and a model affine end-to-end with one "
                         "output (theory.linear_model); use method='pairs' or 'auto'")
    check_margins(P.F, nodes)
    r = SEPARATED_RTOL if rtol is None else rtol
    total, bound = separated_pair_sum(P.F, P.Y, alpha, beta, nodes=nodes, rtol=r, rows=_row_range(P.n, rows))
    return total, torch.as_tensor(bound, dtype=DTYPE)


@fill_doc
def mixup_loss(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
               rtol: float | None = None, method: str = "auto", shortcut: bool = True,
               chunk_elements: int = CHUNK_ELEMENTS, rows=None) -> float:
    """Exact ``L_mix(θ) = (1/n²) Σ_i Σ_j E_{λ~Beta(α,β)} l(θ, (λx_i+(1−λ)x_j, λy_i+(1−λ)y_j))`` (docs/theory.md §2).

    All ordered pairs, λ integrated to a relative tolerance ``rtol`` (see ``mixup_loss_error`` for
    the error estimate and its guarantee):

    - logistic regression (a model affine end-to-end with one output, ``loss="logistic"``;
      ``method="auto"`` or ``"separated"``): the separated expansion, O(n) (docs/theory.md §2.6).
      Default ``rtol`` 1e-12; λ integrated exactly (with ``nodes=q``: the q-node rule's value).
      Margins ``|f(x_i)|`` above ``MAX_MARGIN`` = 512 raise ``ValueError`` (ranges: docs/theory.md §0.1).
    - piecewise-linear models (affine layers — Linear, Conv, Flatten, AvgPool, eval-mode BatchNorm,
      reshapes — and ReLU, LeakyReLU, ReLU6, Hardtanh, MaxPool1d/2d; an ``nn.Sequential`` or a module that
      ``torch.fx`` traces into such a chain; ``method="auto"`` or ``"kinks"``): kink-aware integration.
      The λ-breakpoints of all pairs of a block are found exactly, layer by layer, and each affine
      piece is integrated on its own interval by Gauss–Jacobi/Gauss–Legendre rules (docs/theory.md
      §2.3). Default ``rtol`` 1e-12; measured error ≤ 1e-12 relative against QUADPACK piece by piece,
      also at α = β = 5000 and (α, β) = (2, 5000), (3e4, 0.5) (tests/theory/test_kinks.py). Cost: 2.4–3.3× a
      fixed 64-node rule on a ReLU MLP 10-64-64-1 at n = 200, one thread (``python -m benchmarks
      --only kinks``), which there misses by up to 3e-8 relative. Residual connections and padded
      max-pooling are not on this path: they take node doubling with an ``AccuracyWarning`` that says
      why.
    - every other model: Gauss–Jacobi rules of 32, 64, … nodes until two successive ones agree to
      ``rtol`` (default 1e-10), up to ``MAX_NODES``.

    ``nodes=`` overrides both with one fixed Gauss–Jacobi rule of that many nodes (no estimate);
    ``method="pairs"`` forces node quadrature. With ``shortcut`` (default) a leading affine block of
    a ``Sequential`` (``nn.Linear``/``nn.Conv*``) is applied once per sample and its outputs are
    mixed — exact, since mixing weights sum to 1. For ``loss="squared"`` this is the mean of
    ``½‖ỹ − f(x̃)‖²`` with mixed labels.

    ``rows=(start, stop)`` returns one shard's share ``(1/n²) Σ_{start ≤ i < stop} Σ_j …``; the
    shares of a partition of ``range(n)`` add up to ``L_mix`` (``experiments.distributed``).

    ``method="separated"`` on another model is a ``ValueError``: softmax couples K margins per pair
    (no two-scalar kernel), the squared loss is closed form already, hidden layers break separation.

    Parameters
    ----------
    %(mixup_loss_args)s

    Returns
    -------
    float
        ``L_mix`` (or the share of ``rows``).

    Raises
    ------
    ValueError
        If an argument is out of range (the message names it), ``method="separated"`` is asked of a
        model it does not cover, or ``X`` and ``y`` disagree in length.
    TypeError
        If an argument has the wrong type.

    See Also
    --------
    mixup_loss_error : The same value with a bound on its quadrature error.
    mixup_loss_unmixed : The right side of identity (I).
    mixup_loss_sampled : The estimators used in training.
    mixup_loss_separated : The same value, differentiable, for logistic regression.
    mixup_expansion : The second-order approximation ``L̃_mix``.

    Examples
    --------
    %(example_linear)s
    >>> round(theory.mixup_loss(model, X, y, alpha=1.0), 10)
    0.5121319468
    >>> zero = theory.linear_model(2, weight=[0.0, 0.0], intercept=0.0)
    >>> abs(theory.mixup_loss(zero, X, y, 1.0) - float(np.log(2))) < 1e-14  # every mixed point costs log 2
    True
    """
    total, _, n = _value_and_error(model, X, y, alpha, beta, loss, nodes, rtol, method, shortcut,
                                   chunk_elements, rows)
    return float(total) / n ** 2


MAX_LAMBDAS = 4096
"""Most mixing weights ``mixup_loss_at`` evaluates in one call (its cost is n² per weight)."""


@fill_doc
def mixup_loss_at(model, X, y, lam, *, loss: str = "logistic", shortcut: bool = True,
                  chunk_elements: int = CHUNK_ELEMENTS) -> np.ndarray:
    """The pair-averaged Mixup loss at fixed mixing weights: ``H(λ) = (1/n²) Σ_ij l(f(λx_i + (1−λ)x_j), λy_i + (1−λ)y_j)``.

    ``L_mix = E_{λ~Beta(α,β)} H(λ)`` (C1; docs/theory.md §2.1): one pass over the pairs gives ``H`` at every
    λ of ``lam``, so a caller can integrate it against several mixing laws at once (product quadrature),
    as the ``approximation_order`` figure does for its α sweep. ``H(1 − λ) = H(λ)`` (swap i and j).

    Parameters
    ----------
    %(model)s
    %(X)s
    %(y)s
    lam : array_like, shape (q,)
        Mixing weights in [0, 1], at most ``MAX_LAMBDAS`` of them.
    %(loss)s
    %(shortcut)s
    %(chunk_elements)s

    Returns
    -------
    numpy.ndarray, shape (q,)
        ``H`` at each weight.

    %(raises_range_named)s

    See Also
    --------
    mixup_loss : ``H`` integrated against Beta(α, β), exactly.
    MixupLambda : Quadrature rules of the mixing laws.

    Examples
    --------
    %(example_linear)s
    >>> H = theory.mixup_loss_at(model, X, y, [0.0, 0.25, 0.75, 1.0])
    >>> bool(abs(H[0] - H[3]) < 1e-15 and abs(H[1] - H[2]) < 1e-15)  # H(1 − λ) = H(λ)
    True
    >>> lam, w = theory.MixupLambda(1.0).nodes(64)
    >>> bool(abs(w @ theory.mixup_loss_at(model, X, y, lam) - theory.mixup_loss(model, X, y, 1.0)) < 1e-12)
    True
    """
    check_choice(shortcut, "shortcut", (True, False))
    check_scalar(chunk_elements, "chunk_elements", int, min_val=1, max_val=MAX_CHUNK_ELEMENTS)
    lam = check_lambdas(lam)
    P = prepare(model, X, y, loss)
    check_pairs(P.n, P.n)
    values = pair_sums_at(P, torch.as_tensor(lam, dtype=DTYPE, device=P.device), shortcut=shortcut,
                          chunk_elements=chunk_elements)
    return (values / P.n ** 2).detach().cpu().numpy()


def check_lambdas(lam) -> np.ndarray:
    """``lam`` as a 1-D float64 array of 1 to ``MAX_LAMBDAS`` finite weights in [0, 1]."""
    try:
        arr = np.asarray(lam, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"lam must be an array of mixing weights in [0, 1], got {type(lam).__name__}") from None
    if arr.ndim != 1 or not 1 <= arr.size <= MAX_LAMBDAS:
        raise ValueError(f"lam must be a 1-D array of 1 to {MAX_LAMBDAS} weights, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"lam must hold weights in [0, 1], got values in [{np.nanmin(arr):g}, {np.nanmax(arr):g}]")
    return arr


@fill_doc
def squared_label_constant(y, alpha, beta=None) -> float:
    """``E_{D_λ}[λ(1−λ)] · (1/n²) Σ_ij ½‖y_i − y_j‖²``: RHS(I) minus L_mix for the squared loss (C1).

    C1 — Zhang et al. 2021, Lemma 3.1 for the squared loss; docs/theory.md §3.1.

    Parameters
    ----------
    y : array_like, shape (n,) or (n, K)
        Labels or targets.
    %(alpha)s
    %(beta)s

    Returns
    -------
    float
        ``E_{D_λ}[λ(1−λ)] · (1/n²) Σ_ij ½‖y_i − y_j‖²``.

    Raises
    ------
    ValueError
        If ``alpha`` or ``beta`` is out of range.

    See Also
    --------
    mixup_loss_unmixed : RHS(I), which exceeds ``mixup_loss`` by this constant for the squared loss.

    Examples
    --------
    >>> import numpy as np, theory
    >>> round(theory.squared_label_constant(np.array([1, 0, 1, 0]), 1.0), 12)  # E[λ(1−λ)]·(1/n²)Σ½(y_i−y_j)²
    0.041666666667
    """
    a, b = check_alpha_beta(alpha, beta)
    t = as_labels(y, _label_count(y), "y", kind="targets")
    if t.shape[0] == 0:
        raise ValueError("y is empty: n = 0 labels (need n >= 1)")
    Y = t.to(DTYPE).reshape(t.shape[0], -1)
    n = Y.shape[0]
    C = Y - Y.mean(0)
    big = float(C.abs().max())
    if big == 0.0:
        return 0.0
    spread = float(((C / big) ** 2).sum()) * 2 * n  # Σ_ij ‖y_i − y_j‖² / big² (= 2n Σ_i ‖y_i − ȳ‖², no cancellation)
    value = MixupLambda(a, b).mean_lambda_one_minus_lambda() * 0.5 * spread / n ** 2 * big * big
    if not math.isfinite(value):
        raise ValueError(f"y (spread up to {big:.3g} from its mean) is too large: the constant overflows float64")
    return value


def _label_count(y) -> int:
    try:
        return len(y)
    except TypeError:
        raise ValueError(f"y must have shape (n,) or (n, K), got {type(y).__name__}") from None


@fill_doc
def mixup_loss_unmixed(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
                       scale: float = 1.0, shortcut: bool = True,
                       chunk_elements: int = CHUNK_ELEMENTS) -> float:
    """RHS of identity (I) along the homotopy (C1, Zhang et al. 2021, Lemma 3.1; docs/theory.md §3.1–§3.2).

    ``L_mix(s) = (1/n) Σ_i E_{λ~D̃_λ} E_{r~D_X} l(θ, (x_i + s(1−λ)(r − x_i), y_i))``.

    At ``scale = s = 1`` this equals ``mixup_loss`` for logistic and softmax losses; for the squared
    loss it exceeds it by ``squared_label_constant(y, α, β)``. At s = 0 it is ``L_std``. With
    ``nodes=None`` a ``DEFAULT_NODES`` rule of D̃ is used, except at s = 1 for models on the kink-aware
    path (piecewise-linear chains), where the kink-aware L_mix (rtol 1e-12) is returned through that
    identity: a fixed rule misses the kinks in λ by 1e-7 to 1e-6 there.

    Parameters
    ----------
    %(mixup_args)s
    nodes : int, optional
        Gauss–Jacobi nodes per component of D̃_λ (default ``DEFAULT_NODES``).
    scale : float, default 1.0
        The homotopy parameter ``s`` (``s = 1`` is Mixup, ``s = 0`` the standard loss).
    %(shortcut)s
    chunk_elements : int, default CHUNK_ELEMENTS
        Largest number of float64 values per intermediate tensor.

    Returns
    -------
    float
        ``L_mix(s)``.

    %(raises_range_named)s

    See Also
    --------
    mixup_loss : The left side of identity (I).
    squared_label_constant : The difference of the two sides for the squared loss.
    mixup_expansion : The quadratic in ``s`` that approximates ``L_mix(s)``.

    Examples
    --------
    %(example_linear)s
    >>> unmixed = theory.mixup_loss_unmixed(model, X, y, 1.0)  # identity (I): labels un-mixed
    >>> abs(unmixed - theory.mixup_loss(model, X, y, 1.0)) < 1e-12
    True
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    s = check_nonnegative(scale, "scale")
    check_scalar(chunk_elements, "chunk_elements", int, min_val=1, max_val=MAX_CHUNK_ELEMENTS)
    if nodes is not None:
        check_nodes(nodes)
    P = prepare(model, X, y, loss)
    check_pairs(P.n, P.n)
    if nodes is None and s == 1.0:  # identity (I): L_mix itself, kink by kink where the model allows
        plan, _ = kink_route(P, shortcut)
        if plan is not None:  # (a fixed rule misses the kinks by ~1e-7)
            total, _ = kink_pair_sum(P, alpha, beta, plan, KINK_RTOL, chunk_elements, None)
            return float(total) / P.n ** 2 + (squared_label_constant(y, alpha, beta) if P.loss.name == "squared"
                                               else 0.0)
    lam, w = _rule(alpha, beta, nodes, True, P.device)
    own = 1 - s * (1 - lam)  # weight on x_i after the homotopy
    U, rest = _plain_rest(P, shortcut)  # ``rest`` may run in place: ``mixed`` below is ours
    n, q = P.n, lam.shape[0]
    shape = U.shape[1:]
    width = max(int(np.prod(shape)), P.K)
    own_b = own.reshape(1, 1, q, *([1] * len(shape)))
    total = torch.zeros((), dtype=DTYPE, device=P.device)
    with torch.no_grad():
        for i0, i1, j0, j1 in _pair_blocks(n, q * width * 4, chunk_elements):
            Ui, Ur = U[i0:i1, None, None], U[None, j0:j1, None]
            mixed = torch.addcmul(Ur, own_b, Ui - Ur)  # one fused pass over (i, j, λ)
            F = rest(mixed.reshape(-1, *shape)).reshape(i1 - i0, j1 - j0, q, -1)
            values = P.loss.value(F, P.Y[i0:i1, None, None].expand_as(F))
            total = total + (values @ w).sum()
    return float(total) / n ** 2


@fill_doc
def mixup_loss_error(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
                     rtol: float | None = None, method: str = "auto", shortcut: bool = True,
                     chunk_elements: int = CHUNK_ELEMENTS, rows=None) -> tuple[float, float]:
    """``(value, error)``: ``mixup_loss``'s value and an a-posteriori bound on its quadrature error.

    C1 — the exact Mixup loss and its quadrature error; docs/theory.md §2.

    What ``error`` bounds (docs/theory.md §2, "Error estimates"):

    - kink-aware path (piecewise-linear chains, ``Sequential`` or traced): the sum over all pieces of
      ``|Q_m − Q_{m/2}|`` — the m/2-node error estimate of each piece, whose integrand is analytic
      (softplus/logsumexp/square of an affine logit times the Beta density, with the density's
      endpoint singularities in the Gauss–Jacobi weight or a log-variable) — plus 64 ulp × Σ|terms| for
      rounding and the normaliser's estimated relative error × Σ|terms|. Gauss
      rules converge geometrically on analytic integrands, so the returned m-node value's error is
      far below the m/2-node error and ``error`` is an upper bound once the pieces are resolved.
    - node path (smooth models: tanh, softplus, …): ``|Q(q) − Q(q/2)| + 64 ulp·|Q|`` for the returned
      Q(q), the same argument for an integrand analytic in λ.
    - separated path (logistic regression, ``method="auto"`` or ``"separated"``; docs/theory.md §2.6):
      twice the panel-pair-weighted largest deviation of the Chebyshev interpolant from ``g``
      computed independently (second grid, 1.5× the λ-nodes), plus rounding; λ is integrated
      exactly (adaptive rules), so this covers interpolation and quadrature together.
    - Not bounded: models with kinks outside the kink-aware path (max-pooling, residual connections,
      modules torch.fx cannot trace) — kinks in λ make the Gauss error algebraic and non-monotone, so
      the estimate can be below the true error; an ``AccuracyWarning`` says so and why. Models with discontinuities in λ are not
      covered either.

    Measured on random families (tests/theory/test_mixup_loss.py): the estimate was never below the true
    error against independent QUADPACK references (piece by piece for ReLU nets).
    With ``nodes=q`` the pair ``(Q(2q), |Q(q) − Q(2q)|)`` is returned instead (an estimate for
    smooth models, not a bound).

    Parameters
    ----------
    %(mixup_loss_args)s

    Returns
    -------
    value : float
        ``L_mix`` as ``mixup_loss`` computes it.
    error : float
        The bound on ``abs(value - L_mix)`` described above.

    %(raises_range_named)s

    Warns
    -----
    AccuracyWarning
        When ``error`` is not a bound (piecewise-linear models outside the kink-aware path).

    See Also
    --------
    mixup_loss : The value alone.

    Examples
    --------
    %(example_linear)s
    >>> value, error = theory.mixup_loss_error(model, X, y, 1.0)
    >>> round(value, 10), error < 1e-12
    (0.5121319468, True)
    """
    if nodes is not None:
        q = check_scalar(nodes, "nodes", int, min_val=1, max_val=MAX_NODES // 2)  # Q(q) and Q(2q)
        kw = dict(loss=loss, method=method, shortcut=shortcut, chunk_elements=chunk_elements, rows=rows)
        coarse = mixup_loss(model, X, y, alpha, beta, nodes=q, **kw)
        fine = mixup_loss(model, X, y, alpha, beta, nodes=2 * q, **kw)
        return fine, abs(fine - coarse)
    total, err, n = _value_and_error(model, X, y, alpha, beta, loss, None, rtol, method, shortcut,
                                     chunk_elements, rows)
    return float(total) / n ** 2, float(err) / n ** 2


@dataclass(frozen=True)
class SampledEstimate:
    """Monte-Carlo estimate of L_mix: mean over ``draws`` passes and its standard error.

    Sampled Mixup losses, docs/theory.md §2.4.

    Attributes
    ----------
    mean : float
        Mean of the per-pass losses.
    stderr : float
        Standard error of ``mean``.
    draws : int
        Number of passes.
    scheme : str
        The estimator.

    See Also
    --------
    mixup_loss_sampled : Returns this record.
    """

    mean: float
    stderr: float
    draws: int
    scheme: str

    __repr__ = summary_repr


SCHEMES = ("permutation", "per_sample", "minibatch")


@fill_doc
def mixup_loss_sampled(model, X, y, alpha, beta=None, *, loss: str = "logistic", scheme: str = "permutation",
                       draws: int = 200, batch_size: int | None = None,
                       generator: np.random.Generator | None = None) -> SampledEstimate:
    """The Mixup-loss estimators practitioners use, with their standard error (docs/theory.md §2.4).

    - ``"permutation"``: one λ per pass, partner = a uniform random permutation of all n points.
      Unbiased: for each i the partner is uniform over 1..n.
    - ``"per_sample"``: each i draws its own λ and a uniform partner j. Unbiased.
    - ``"minibatch"``: data shuffled into batches of ``batch_size``; one λ per batch and a random
      permutation inside it. Biased for batch_size < n: the partner is i itself with probability
      1/batch_size instead of 1/n.

    Parameters
    ----------
    %(mixup_args)s
    scheme : {"permutation", "per_sample", "minibatch"}, default "permutation"
        The estimator (see above).
    draws : int, default 200
        Number of passes over the data.
    batch_size : int, optional
        Batch size of ``"minibatch"`` (required there, ignored otherwise).
    generator : numpy.random.Generator or int, optional
        Source of λ and partners; an int is a seed, ``None`` draws fresh randomness.

    Returns
    -------
    SampledEstimate
        ``mean`` over the passes, its ``stderr``, ``draws`` and ``scheme``.

    %(raises_range_named)s

    See Also
    --------
    mixup_loss : The exact value the unbiased schemes estimate.
    SampledEstimate : The returned record.

    Examples
    --------
    %(example_linear)s
    >>> est = theory.mixup_loss_sampled(model, X, y, 1.0, draws=2000, generator=0)
    >>> abs(est.mean - theory.mixup_loss(model, X, y, 1.0)) < 5 * est.stderr  # unbiased
    True
    """
    alpha, beta = check_alpha_beta(alpha, beta)
    check_choice(scheme, "scheme", SCHEMES)
    draws = check_scalar(draws, "draws", int, min_val=2, max_val=MAX_DRAWS)
    P = prepare(model, X, y, loss)
    rng = check_rng(generator)
    dist = MixupLambda(alpha, beta)
    n = P.n
    if scheme == "minibatch":
        batch_size = check_count(batch_size if batch_size is not None else n, "batch_size")
    passes = []
    with torch.no_grad():
        for _ in range(draws):
            if scheme == "permutation":
                partner, lam = rng.permutation(n), np.full(n, dist.sample(None, rng))
            elif scheme == "per_sample":
                partner, lam = rng.integers(0, n, size=n), dist.sample(n, rng)
            else:
                order = rng.permutation(n)
                partner, lam = np.empty(n, dtype=np.int64), np.empty(n)
                for b0 in range(0, n, batch_size):
                    idx = order[b0:b0 + batch_size]
                    partner[idx] = idx[rng.permutation(len(idx))]
                    lam[idx] = dist.sample(None, rng)
            j = torch.as_tensor(partner, device=P.device)
            lt = torch.as_tensor(lam, dtype=DTYPE, device=P.device)[:, None]
            Xm = lt * P.X + (1 - lt) * P.X[j]
            Ym = lt * P.Y + (1 - lt) * P.Y[j]
            passes.append(P.loss.value(P.fn(Xm), Ym).mean())  # stays on device: one sync at the end
    arr = torch.stack(passes).cpu().numpy()
    return SampledEstimate(float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(draws)), draws, scheme)
