"""Certified upper bounds on the adversarial loss of ReLU MLPs over ℓ2 / ℓ∞ balls (docs/theory.md §4, C7).

Two bound propagations, both sound for every input in the ball ``‖δ‖_p ≤ ε`` around ``x_i``:

- IBP (interval bound propagation): the first affine layer is bounded exactly,
  ``Wx_i + b ± ε‖W_row‖_q`` (``q`` the dual norm), later layers by interval arithmetic.
- CROWN (Zhang et al., 2018): a linear relaxation propagated backwards; each unstable ReLU
  ``l < z < u`` is bounded by ``a ≤ u(z − l)/(u − l)`` above and ``a ≥ 𝟙[u > −l]·z`` below,
  and the final linear function of the input is minimised in closed form over the ball,
  ``min_{‖δ‖_p≤ε} Λ(x_i + δ) = Λx_i − ε‖Λ‖_q``. Pre-activation bounds of every ReLU layer come from
  CROWN on that layer, intersected with IBP's.
- α-CROWN (Xu et al., 2021): the same backward pass, with the slope ``a ∈ [slope, 1]`` of every
  unstable ReLU's lower line ``σ(z) ≥ a·z`` chosen per sample and per output row to maximise the
  output bound, by projected Adam ascent started at CROWN's choice. Every slope in the interval
  gives a valid relaxation, so every iterate is a sound bound; the best iterate (per sample and row)
  is kept, so the result is never worse than CROWN. The pre-activation bounds of the hidden layers
  stay CROWN's (only the output bound's slopes are optimised).

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

CERTIFY_METHODS = ("crown", "ibp", "alpha-crown")
ALPHA_ITERS = 50
"""Default number of projected-Adam steps on the lower slopes (``bound="alpha-crown"``)."""
ALPHA_LR = 0.1
"""Default Adam step size on the slopes (they live in [0, 1])."""
CERTIFY_CHUNK_ELEMENTS = 1 << 23
DENSE_MAX_ELEMENTS = 1 << 26
"""Affine stretches (convolutions, pooling, reshapes) become dense matrices of at most this many entries."""
SUPPORTED = ("nn.Linear", "nn.Conv1d", "nn.Conv2d", "nn.AvgPool1d", "nn.AvgPool2d", "nn.Flatten", "nn.Unflatten",
             "nn.Identity", "nn.Dropout (the identity: models are evaluated in eval mode)", "nn.ReLU", "nn.LeakyReLU", "torch.relu / F.relu",
             "F.leaky_relu", "flatten / view / reshape / squeeze / unsqueeze (torch.* or Tensor methods)")
"""Layers of a model ``method='certified'`` and ``exact_comparison`` bound (docs/theory.md §4)."""
_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool1d, nn.AvgPool2d, nn.Flatten, nn.Unflatten, nn.Identity,
           nn.Dropout)
_AFFINE_FUNCTIONS = (torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)
_AFFINE_METHODS = ("flatten", "view", "reshape", "squeeze", "unsqueeze")


class Unsupported(ValueError):
    """The model holds a layer the certified bound does not handle; the message says which and why."""


def _layer_steps(model) -> list:
    """The model as a chain of steps ``("affine", fn) | ("relu", slope)``, or ``Unsupported``.

    ``Sequential`` containers are walked in order; any other module is traced with ``torch.fx`` and
    must be a plain chain (each node feeds only the next) of supported layers (``SUPPORTED``).
    """
    if not isinstance(model, nn.Module):
        raise Unsupported(f"the certified bound needs a torch.nn.Module, got {type(model).__name__}")
    steps: list = []

    def module_step(m):
        if isinstance(m, nn.Sequential):
            for child in m:
                module_step(child)
        elif isinstance(m, (nn.Dropout, nn.Identity)):
            pass  # the identity in eval mode, whatever mode the caller left the module in
        elif isinstance(m, _AFFINE):
            steps.append(("affine", m))
        elif isinstance(m, nn.ReLU):
            steps.append(("relu", 0.0))
        elif isinstance(m, nn.LeakyReLU):
            if not 0 <= m.negative_slope <= 1:
                raise Unsupported(f"nn.LeakyReLU with negative_slope {m.negative_slope} outside [0, 1]")
            steps.append(("relu", float(m.negative_slope)))
        elif list(m.children()) or type(m).forward is not nn.Module.forward:
            trace(m)
        else:
            raise Unsupported(f"layer {type(m).__name__} is not supported (supported: {', '.join(SUPPORTED)})")

    def trace(m):
        if isinstance(m, _LEAVES):
            raise Unsupported(f"layer {type(m).__name__} is not supported (supported: {', '.join(SUPPORTED)})")
        try:
            graph = torch.fx.symbolic_trace(m).graph
        except Exception as exc:  # data-dependent control flow and the like
            raise Unsupported(f"{type(m).__name__} could not be traced with torch.fx ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}); write it as a chain of supported "
                              "layers") from None
        modules = dict(m.named_modules())
        previous = None
        for node in graph.nodes:
            if node.op == "placeholder":
                if previous is not None:
                    raise Unsupported(f"{type(m).__name__}.forward takes more than one input")
                previous = node
                continue
            if node.op == "output":
                if node.args[0] is not previous:
                    raise Unsupported(f"{type(m).__name__}.forward does not return the last layer's output")
                continue
            inputs = [a for a in node.all_input_nodes]
            if inputs != [previous] or len(previous.users) != 1:
                raise Unsupported(f"{type(m).__name__} is not a chain of layers (node {node.name} has inputs "
                                  f"{[a.name for a in inputs]}): skip connections and branches are not supported")
            if node.op == "call_module":
                module_step(modules[node.target])
            elif node.op == "call_function" and node.target in (torch.relu, nn.functional.relu):
                steps.append(("relu", 0.0))
            elif node.op == "call_function" and node.target is nn.functional.leaky_relu:
                slope = node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
                steps.append(("relu", float(slope)))
            elif node.op == "call_function" and node.target in _AFFINE_FUNCTIONS:
                args, kwargs = node.args[1:], dict(node.kwargs)
                if any(isinstance(v, torch.fx.Node) for v in (*args, *kwargs.values())):
                    raise Unsupported(f"{node.target.__name__} with a computed shape is not supported")
                steps.append(("affine", lambda X, f=node.target, a=args, k=kwargs: f(X, *a, **k)))
            elif node.op == "call_method" and node.target in _AFFINE_METHODS:
                args, kwargs = node.args[1:], dict(node.kwargs)
                if any(isinstance(v, torch.fx.Node) for v in (*args, *kwargs.values())):
                    raise Unsupported(f"{node.target} with a computed shape is not supported")
                steps.append(("affine", lambda X, t=node.target, a=args, k=kwargs: getattr(X, t)(*a, **k)))
            elif node.op == "call_method" and node.target == "relu":
                steps.append(("relu", 0.0))
            else:
                what = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", node.target)
                raise Unsupported(f"operation {what!r} in {type(m).__name__}.forward is not supported "
                                  f"(supported: {', '.join(SUPPORTED)})")
            previous = node

    module_step(model)
    return steps


_LEAVES = (nn.Tanh, nn.Sigmoid, nn.Softplus, nn.GELU, nn.ELU, nn.SiLU, nn.MaxPool1d, nn.MaxPool2d, nn.BatchNorm1d,
           nn.BatchNorm2d, nn.LayerNorm, nn.Embedding, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.Conv3d)


def _dense(fns: list, in_shape: tuple, device) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """``(W, b, out_shape)`` with ``fns(x) = W vec(x) + b`` for the affine stretch ``fns`` (float64)."""
    D = int(math.prod(in_shape))
    with torch.no_grad():
        def apply(Z):
            for f in fns:
                Z = f(Z)
            return Z

        zero = apply(torch.zeros((1, *in_shape), dtype=DTYPE, device=device))
        out_shape = tuple(zero.shape[1:])
        if D * zero.numel() > DENSE_MAX_ELEMENTS:
            raise Unsupported(f"an affine stretch maps {D} to {zero.numel()} values: its dense matrix exceeds "
                              f"{DENSE_MAX_ELEMENTS} entries")
        b = zero.reshape(-1)
        W = (apply(torch.eye(D, dtype=DTYPE, device=device).reshape(D, *in_shape)).reshape(D, -1) - b).T
    return W.contiguous(), b, out_shape


def _float64(m):
    if isinstance(m, nn.Module):
        params = {k: v.detach().to(DTYPE) for k, v in list(m.named_parameters()) + list(m.named_buffers())
                  if v.is_floating_point()}
        return lambda X: torch.func.functional_call(m, params, (X,))
    return m


def relu_ops(model, in_shape: tuple | None = None, device=None) -> list[tuple]:
    """The model as ``[("linear", W, b) | ("relu", slope)]`` on flattened inputs, in float64.

    Any ``nn.Module`` composed of supported layers (``SUPPORTED``; a ``Sequential`` or a custom class whose
    ``forward`` chains them) works; affine stretches (convolutions, average pooling, reshapes) become
    dense matrices. ``in_shape``: one sample's shape (needed only for convolutions/reshapes; default:
    the first ``nn.Linear``'s input width). Anything else raises ``Unsupported`` with the reason.
    """
    steps = _layer_steps(model)
    if in_shape is None:
        first = next((s[1] for s in steps if s[0] == "affine" and isinstance(s[1], nn.Linear)), None)
        if first is None or any(s[0] == "affine" and not isinstance(s[1], (nn.Linear, nn.Identity, nn.Dropout))
                                for s in steps):
            raise Unsupported("pass the sample shape: the model has convolutions or reshapes")
        in_shape = (first.in_features,)
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    ops: list[tuple] = []
    shape, pending = tuple(in_shape), []
    for kind, arg in steps + [("end", None)]:
        if kind == "affine":
            pending.append(_float64(arg))
            continue
        if pending:
            W, b, shape = _dense(pending, shape, device)
            ops.append(("linear", W, b))
            pending = []
        if kind == "relu":
            ops.append(("relu", arg))
    if not any(op[0] == "linear" for op in ops):
        raise Unsupported("the certified bound needs at least one nn.Linear or convolution layer")
    if int(math.prod(shape)) < 1:
        raise Unsupported("the model has an empty output")
    return ops


def _dual(norm: float) -> float:
    return 1.0 if norm == math.inf else 2.0


def _relu_relaxation(l: torch.Tensor, u: torch.Tensor, slope: float = 0.0):
    """``(s_lo, s_up, t_up)`` with ``s_lo z ≤ σ(z) ≤ s_up z + t_up`` on [l, u], ``σ(z) = max(z, slope·z)``
    (ReLU for slope 0, LeakyReLU otherwise; the upper line is the chord, the lower one z or slope·z)."""
    active, inactive = l >= 0, u <= 0
    unstable = ~(active | inactive)
    width = (u - l).clamp(min=1e-300)
    chord = (u - slope * l) / width
    one, a = torch.ones_like(l), torch.full_like(l, slope)
    s_up = torch.where(active, one, torch.where(unstable, chord, a))
    t_up = torch.where(unstable, (slope - chord) * l, torch.zeros_like(l))
    s_lo = torch.where(active | (unstable & (u > -l)), one, a)
    return s_lo, s_up, t_up


def _crown_lower(ops, relax, Lam: torch.Tensor, X0: torch.Tensor, eps: float, norm: float) -> torch.Tensor:
    """Lower bound of ``Λ·out(ops)(x)`` over the ball, ``Λ`` (n, M, width_out); ``relax[k]`` holds the
    relaxation of the ReLU at ``ops[k]`` (its lower slopes ``(n, width)``, or ``(n, M, width)`` per row)."""
    const = torch.zeros(Lam.shape[:2], dtype=DTYPE, device=Lam.device)
    for k in range(len(ops) - 1, -1, -1):
        op = ops[k]
        if op[0] == "linear":
            _, W, b = op
            const = const + Lam @ b
            Lam = Lam @ W
        else:
            s_lo, s_up, t_up = relax[k][:3]
            if s_lo.dim() == 2:
                s_lo = s_lo[:, None, :]
            pos, neg = Lam.clamp(min=0), Lam.clamp(max=0)
            const = const + (neg * t_up[:, None, :]).sum(-1)
            Lam = pos * s_lo + neg * s_up[:, None, :]
    return (Lam * X0[:, None, :]).sum(-1) + const - eps * Lam.norm(p=_dual(norm), dim=-1)


def _interval_linear(W, b, l, u):
    c, r = 0.5 * (u + l), 0.5 * (u - l)
    mid, rad = c @ W.T + b, r @ W.abs().T
    return mid - rad, mid + rad


def _alpha_lower(ops, relax, spec: torch.Tensor, X0: torch.Tensor, eps: float, norm: float, iters: int,
                 lr: float) -> torch.Tensor:
    """α-CROWN: the largest of the lower bounds met while optimising the unstable ReLUs' lower slopes.

    Projected Adam ascent on ``Σ bound`` (each sample's and row's bound depends only on its own slopes,
    and Adam acts per coordinate, so every row is optimised independently of the batch). Written by
    hand: auto_LiRPA is not a dependency, and the loop is a dozen lines over ``_crown_lower``.
    """
    n, M = spec.shape[:2]
    free, lo_hi = {}, {}
    for k, (s_lo, s_up, t_up, unstable, slope) in relax.items():
        if bool(unstable.any()):
            free[k] = s_lo[:, None, :].expand(n, M, -1).clone().requires_grad_(True)
            lo_hi[k] = (unstable[:, None, :], slope)
    with torch.no_grad():
        best = _crown_lower(ops, relax, spec, X0, eps, norm)  # CROWN's slopes: the starting point
    if not free or iters == 0:
        return best
    optimiser = torch.optim.Adam(list(free.values()), lr=lr)
    with torch.enable_grad():
        for step in range(iters + 1):
            current = dict(relax)
            for k, a in free.items():
                s_lo, s_up, t_up = relax[k][:3]
                current[k] = (torch.where(lo_hi[k][0], a, s_lo[:, None, :]), s_up, t_up)
            bound = _crown_lower(ops, current, spec, X0, eps, norm)
            best = torch.maximum(best, bound.detach())
            if step == iters:
                break
            optimiser.zero_grad(set_to_none=False)
            (-bound.sum()).backward()
            for a in free.values():  # a zero row of Λ has no gradient in ‖Λ‖_q: a subgradient 0
                a.grad.nan_to_num_(0.0)
            optimiser.step()
            with torch.no_grad():
                for k, a in free.items():  # the projection onto [slope, 1]: every iterate stays valid
                    a.clamp_(min=lo_hi[k][1], max=1.0)
    return best


def output_bounds(ops, X0: torch.Tensor, eps: float, norm: float, spec: torch.Tensor,
                  method: str = "crown", alpha_iters: int = ALPHA_ITERS, alpha_lr: float = ALPHA_LR) -> torch.Tensor:
    """Lower bounds of ``spec · f(x)`` over the ball, ``spec`` (n, M, K); returns (n, M).

    ``method="crown"`` returns the better (larger) of the CROWN and IBP bounds, ``"ibp"`` IBP's,
    ``"alpha-crown"`` the better of IBP and the best α-CROWN iterate (``alpha_iters`` projected Adam
    steps of size ``alpha_lr`` on the lower slopes, from CROWN's), which is never below CROWN's.
    """
    use_crown = method in ("crown", "alpha-crown")
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
            a = op[1] if len(op) > 1 else 0.0
            relax[k] = (*_relu_relaxation(l, u, a), (l < 0) & (u > 0), a)
            l, u = torch.where(l >= 0, l, a * l), torch.where(u >= 0, u, a * u)
    interval = (spec.clamp(min=0) * l[:, None, :] + spec.clamp(max=0) * u[:, None, :]).sum(-1)
    if not use_crown:
        return interval
    if method == "alpha-crown":
        return torch.maximum(interval, _alpha_lower(ops, relax, spec, X0, eps, norm, alpha_iters, alpha_lr))
    return torch.maximum(interval, _crown_lower(ops, relax, spec, X0, eps, norm))


def certified_losses(P: Problem, eps: float, norm: float, method: str = "crown", alpha_iters: int = ALPHA_ITERS,
                     alpha_lr: float = ALPHA_LR) -> torch.Tensor:
    """Per-sample certified upper bounds on ``max_{‖δ‖_p ≤ ε} l(x_i + δ, y_i)`` (see module docstring)."""
    check_choice(method, "bound", CERTIFY_METHODS)
    opts = {"alpha_iters": alpha_iters, "alpha_lr": alpha_lr}
    ops = relu_ops(P.model, tuple(P.X.shape[1:]), P.device)
    widths = [op[1].shape[0] for op in ops if op[0] == "linear"]
    K, n = P.K, P.n
    rows = 2 * K if P.loss.name == "squared" else K
    per_sample = 4 * max(widths + [P.X[0].numel()]) * (max(widths) * 2 + rows)
    if method == "alpha-crown":  # autograd keeps a few (rows, width) tensors per layer for the slopes' gradient
        per_sample += 8 * len(ops) * rows * max(widths + [P.X[0].numel()])
    chunk = max(1, CERTIFY_CHUNK_ELEMENTS // per_sample)
    out = []
    for r0 in range(0, n, chunk):
        X0, Y = P.X[r0:r0 + chunk].flatten(1), P.Y[r0:r0 + chunk]
        m = X0.shape[0]
        eye = torch.eye(K, dtype=DTYPE, device=P.device)
        if P.loss.name == "logistic":
            s = (2 * Y - 1).reshape(m, 1, 1)
            margin = output_bounds(ops, X0, eps, norm, s, method, **opts)[:, 0]
            out.append(torch.logaddexp(-margin, torch.zeros_like(margin)))
        elif P.loss.name == "squared":
            spec = torch.cat([eye, -eye]).expand(m, -1, -1)
            bound = output_bounds(ops, X0, eps, norm, spec, method, **opts)
            lo, hi = bound[:, :K], -bound[:, K:]
            out.append(0.5 * torch.maximum((Y - lo) ** 2, (Y - hi) ** 2).sum(1))
        else:  # softmax: Σ_c y_c log Σ_k exp(−lb(f_c − f_k)), only classes with some y_c > 0
            total = torch.zeros(m, dtype=DTYPE, device=P.device)
            for c in torch.nonzero(Y.sum(0) > 0).flatten().tolist():
                spec = (eye[c][None, :] - eye).expand(m, -1, -1)  # rows e_c − e_k
                diff_lo = output_bounds(ops, X0, eps, norm, spec, method, **opts)
                diff_lo[:, c] = 0.0
                total = total + Y[:, c] * torch.logsumexp(-diff_lo, 1)
            out.append(total)
    return torch.cat(out)
