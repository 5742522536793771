"""Certified upper bounds on the adversarial loss of ReLU MLPs over ℓ2 / ℓ∞ balls (docs/theory.md §4, C7).

Two bound propagations, both sound for every input in the ball ``‖δ‖_p ≤ ε`` around ``x_i``:

- IBP (interval bound propagation): the first affine layer is bounded exactly,
  ``Wx_i + b ± ε‖W_row‖_q`` (``q`` the dual norm), later layers by interval arithmetic.
- CROWN (Zhang et al., 2018): a linear relaxation propagated backwards; each unstable ReLU
  ``l < z < u`` is bounded by ``a ≤ u(z − l)/(u − l)`` above and ``a ≥ 𝟙[u > −l]·z`` below,
  and the final linear function of the input is minimised in closed form over the ball,
  ``min_{‖δ‖_p≤ε} Λ(x_i + δ) = Λx_i − ε‖Λ‖_q``. Pre-activation bounds of every ReLU layer come from
  CROWN on that layer, intersected with IBP's.

The loss is then bounded through monotone facts: logistic loss ``softplus(−s f)`` by a lower
bound on the signed margin ``s f``; softmax cross-entropy by lower bounds on logit differences,
``CE = Σ_c y_c log Σ_k exp(f_k − f_c) ≤ Σ_c y_c log Σ_k exp(−lb(f_c − f_k))``; squared loss by
``½ max((y − lb f)², (y − ub f)²)`` per output. For an affine model both bounds are exact, so
``certified`` equals the closed form there. Written by hand (auto_LiRPA is not a dependency and
does not offer float64 ℓ2 balls on plain Sequentials out of the box); the layer code is ~60 lines.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ._problem import Problem
from ._validate import DTYPE, check_choice

CERTIFY_METHODS = ("crown", "ibp")
CERTIFY_CHUNK_ELEMENTS = 1 << 23
_PASS_THROUGH = (nn.Identity, nn.Flatten, nn.Dropout)


def relu_ops(model) -> list[tuple]:
    """The model as ``[("linear", W, b) | ("relu",)]`` in float64, or ``ValueError`` if it is not a
    (possibly nested) ``Sequential`` of ``nn.Linear`` / ``nn.ReLU`` layers (``Identity``/``Flatten``
    and ``Dropout``, the identity in eval mode, are skipped)."""
    ops: list[tuple] = []

    def walk(m):
        if isinstance(m, nn.Sequential):
            for child in m:
                walk(child)
        elif isinstance(m, nn.Linear):
            W = m.weight.detach().to(DTYPE)
            b = m.bias.detach().to(DTYPE) if m.bias is not None else torch.zeros(W.shape[0], dtype=DTYPE, device=W.device)
            ops.append(("linear", W, b))
        elif isinstance(m, nn.ReLU):
            ops.append(("relu",))
        elif isinstance(m, _PASS_THROUGH):  # Dropout: the identity in eval mode, where models are evaluated
            return
        else:
            raise ValueError("method='certified' supports ReLU MLPs only: a torch.nn.Sequential of nn.Linear and "
                             f"nn.ReLU layers (got a {type(m).__name__})")

    if not isinstance(model, nn.Module):
        raise ValueError("method='certified' needs a torch.nn.Sequential of nn.Linear / nn.ReLU layers, "
                         f"got {type(model).__name__}")
    walk(model)
    if not any(op[0] == "linear" for op in ops):
        raise ValueError("method='certified' needs at least one nn.Linear layer")
    return ops


def _dual(norm: float) -> float:
    return 1.0 if norm == math.inf else 2.0


def _relu_relaxation(l: torch.Tensor, u: torch.Tensor):
    """Slopes/intercepts ``(s_lo, s_up, t_up)`` with ``s_lo z ≤ relu(z) ≤ s_up z + t_up`` on [l, u]."""
    active, inactive = l >= 0, u <= 0
    unstable = ~(active | inactive)
    width = (u - l).clamp(min=1e-300)
    s_up = torch.where(active, torch.ones_like(l), torch.where(unstable, u / width, torch.zeros_like(l)))
    t_up = torch.where(unstable, -u * l / width, torch.zeros_like(l))
    s_lo = torch.where(active | (unstable & (u > -l)), torch.ones_like(l), torch.zeros_like(l))
    return s_lo, s_up, t_up


def _crown_lower(ops, relax, Lam: torch.Tensor, X0: torch.Tensor, eps: float, norm: float) -> torch.Tensor:
    """Lower bound of ``Λ·out(ops)(x)`` over the ball, ``Λ`` (n, M, width_out); ``relax[k]`` holds the
    relaxation of the ReLU at ``ops[k]``."""
    const = torch.zeros(Lam.shape[:2], dtype=DTYPE, device=Lam.device)
    for k in range(len(ops) - 1, -1, -1):
        op = ops[k]
        if op[0] == "linear":
            _, W, b = op
            const = const + Lam @ b
            Lam = Lam @ W
        else:
            s_lo, s_up, t_up = relax[k]
            pos, neg = Lam.clamp(min=0), Lam.clamp(max=0)
            const = const + (neg * t_up[:, None, :]).sum(-1)
            Lam = pos * s_lo[:, None, :] + neg * s_up[:, None, :]
    return (Lam * X0[:, None, :]).sum(-1) + const - eps * Lam.norm(p=_dual(norm), dim=-1)


def _interval_linear(W, b, l, u):
    c, r = 0.5 * (u + l), 0.5 * (u - l)
    mid, rad = c @ W.T + b, r @ W.abs().T
    return mid - rad, mid + rad


def output_bounds(ops, X0: torch.Tensor, eps: float, norm: float, spec: torch.Tensor,
                  method: str = "crown") -> torch.Tensor:
    """Lower bounds of ``spec · f(x)`` over the ball, ``spec`` (n, M, K); returns (n, M).

    ``method="crown"`` returns the better (larger) of the CROWN and IBP bounds, ``"ibp"`` IBP's.
    """
    use_crown = method == "crown"
    relax: dict[int, tuple] = {}
    linears = 0
    l = u = None  # interval of the current activation (None: still the ball around X0)
    for k, op in enumerate(ops):
        if op[0] == "linear":
            _, W, b = op
            if l is None:  # exact bounds of an affine map over the ball
                mid, rad = X0 @ W.T + b, eps * W.norm(p=_dual(norm), dim=1)
                l, u = mid - rad, mid + rad
            else:
                l, u = _interval_linear(W, b, l, u)
            linears += 1
        else:
            if l is None:
                l, u = X0 - eps, X0 + eps
            elif use_crown and (linears >= 2 or ops[0][0] == "relu"):  # one affine layer on the ball: IBP exact
                width = l.shape[1]
                eye = torch.eye(width, dtype=DTYPE, device=X0.device)
                Lam = torch.cat([eye, -eye]).expand(X0.shape[0], -1, -1)
                bound = _crown_lower(ops[:k], relax, Lam, X0, eps, norm)
                l, u = torch.maximum(l, bound[:, :width]), torch.minimum(u, -bound[:, width:])
                u = torch.maximum(u, l)  # guard against rounding crossing
            relax[k] = _relu_relaxation(l, u)
            l, u = l.clamp(min=0), u.clamp(min=0)
    interval = (spec.clamp(min=0) * l[:, None, :] + spec.clamp(max=0) * u[:, None, :]).sum(-1)
    if not use_crown:
        return interval
    return torch.maximum(interval, _crown_lower(ops, relax, spec, X0, eps, norm))


def certified_losses(P: Problem, eps: float, norm: float, method: str = "crown") -> torch.Tensor:
    """Per-sample certified upper bounds on ``max_{‖δ‖_p ≤ ε} l(x_i + δ, y_i)`` (see module docstring)."""
    check_choice(method, "bound", CERTIFY_METHODS)
    ops = relu_ops(P.model)
    widths = [op[1].shape[0] for op in ops if op[0] == "linear"]
    K, n = P.K, P.n
    rows = 2 * K if P.loss.name == "squared" else K
    per_sample = 4 * max(widths + [P.d]) * (max(widths) * 2 + rows)
    chunk = max(1, CERTIFY_CHUNK_ELEMENTS // per_sample)
    out = []
    for r0 in range(0, n, chunk):
        X0, Y = P.X[r0:r0 + chunk], P.Y[r0:r0 + chunk]
        m = X0.shape[0]
        eye = torch.eye(K, dtype=DTYPE, device=P.device)
        if P.loss.name == "logistic":
            s = (2 * Y - 1).reshape(m, 1, 1)
            margin = output_bounds(ops, X0, eps, norm, s, method)[:, 0]
            out.append(torch.logaddexp(-margin, torch.zeros_like(margin)))
        elif P.loss.name == "squared":
            spec = torch.cat([eye, -eye]).expand(m, -1, -1)
            bound = output_bounds(ops, X0, eps, norm, spec, method)
            lo, hi = bound[:, :K], -bound[:, K:]
            out.append(0.5 * torch.maximum((Y - lo) ** 2, (Y - hi) ** 2).sum(1))
        else:  # softmax: Σ_c y_c log Σ_k exp(−lb(f_c − f_k)), only classes with some y_c > 0
            total = torch.zeros(m, dtype=DTYPE, device=P.device)
            for c in torch.nonzero(Y.sum(0) > 0).flatten().tolist():
                spec = (eye[c][None, :] - eye).expand(m, -1, -1)  # rows e_c − e_k
                diff_lo = output_bounds(ops, X0, eps, norm, spec, method)
                diff_lo[:, c] = 0.0
                total = total + Y[:, c] * torch.logsumexp(-diff_lo, 1)
            out.append(total)
    return torch.cat(out)
