"""Custom modules on the kink-aware path: a model is traced once with ``torch.fx`` into a chain of layers.

A module written as a class (``forward`` calling its submodules and ``torch.relu``, ``F.relu``,
``x.view(x.size(0), -1)``, ``torch.flatten``, ``x * 2``…) computes the same function as an
``nn.Sequential`` of the layers it calls, in order, when its graph is a chain: every operation
takes the previous one's tensor (and constants). ``kink_route`` turns such a graph into that layer
list, checks it against the model on the first rows of X, and hands it to the kink-aware integrator
(``theory._kinks``). Anything else gets a precise reason, which the caller raises (``method="kinks"``)
or puts in the ``AccuracyWarning`` of the quadrature path — never a silent switch:

- a residual connection (an operation combining two computed tensors): the sum of two piecewise-affine
  functions has the union of their breakpoints, but the integrator carries one chain of values;
- max-pooling: its kinks are where two window entries cross (a maximum of affine functions of λ),
  which the integrator's per-unit threshold crossings do not cover;
- smooth activations (tanh, …): not piecewise linear, the node-doubling quadrature is the exact path.
"""
from __future__ import annotations

import operator

import torch
import torch.nn.functional as Fn
from torch import nn

from ._kinks import (KINK_AFFINE_LAYERS, KINK_NONLINEAR, KINK_POOLS, KinkPlan, _flat_layers, plan_from_layers,
                     pool_reason)
from ._validate import DTYPE

KINKED = KINK_NONLINEAR + (nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                             nn.Hardswish, nn.PReLU, nn.RReLU)
"""Modules whose presence puts kinks into the integrand (a model with one of them, off the kink-aware
path, gets an ``AccuracyWarning``)."""
MAXPOOL_REASON = ("this max-pooling layer: the kink-aware path takes nn.MaxPool1d/2d modules with plain windows, "
                  "whose kinks are the crossings of two window entries")
TRACE_CHECK_ROWS = 4
TRACE_CHECK_RTOL = 1e-12


class _Reshape(nn.Module):
    """``x ↦ x.reshape(len(x), *shape)`` (a traced ``view``/``reshape`` whose first size is the batch)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)


class _Scale(nn.Module):
    """``x ↦ x · a + b`` with constants (a traced ``x * 2``, ``x + 1``, ``x / 3``, ``-x``)."""

    def __init__(self, a: float = 1.0, b: float = 0.0):
        super().__init__()
        self.a, self.b = float(a), float(b)

    def forward(self, x):
        return x * self.a + self.b


class _Squeeze(nn.Module):
    """``x.squeeze(dim)`` / ``x.unsqueeze(dim)`` of a non-batch dimension."""

    def __init__(self, dim: int, un: bool):
        super().__init__()
        self.dim, self.un = int(dim), bool(un)

    def forward(self, x):
        return x.unsqueeze(self.dim) if self.un else x.squeeze(self.dim)


class Unsupported(Exception):
    """A model the kink-aware path does not take; the message says why."""


SHAPE_OPS = (_Reshape, _Scale, _Squeeze)
"""Traced operations applied as layers (affine, batch dimension kept)."""


def _module_of(node, gm):
    return gm.get_submodule(node.target)


def _is_shape(node) -> bool:
    """Nodes computing sizes (``x.size(0)``, ``x.shape[0]``), not tensors."""
    if node.op == "call_method" and node.target in ("size", "dim"):
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1] == "shape":
        return True
    return node.op == "call_function" and node.target is operator.getitem and _is_shape(node.args[0])


def _batch_size_arg(arg, x) -> bool:
    """``arg`` is ``x.size(0)`` or ``x.shape[0]`` of the chain's current tensor (or of the input)."""
    if getattr(arg, "op", None) == "call_method" and arg.target == "size":
        return len(arg.args) > 1 and arg.args[1] == 0
    if getattr(arg, "op", None) == "call_function" and arg.target is operator.getitem:
        return _is_shape(arg.args[0]) and arg.args[1] == 0
    return False


def _layer(node, gm, x) -> nn.Module:
    """The layer computing ``node`` from the chain's current tensor ``x`` (an fx node), or ``Unsupported``."""
    args = [a for a in node.args]
    name = f"{node.op} {getattr(node.target, '__name__', node.target)!s}"
    if node.op == "call_module":
        m = _module_of(node, gm)
        if isinstance(m, KINK_AFFINE_LAYERS + KINK_NONLINEAR):
            return m
        if isinstance(m, (nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
            raise Unsupported(f"{type(m).__name__} at `{node.target}` ({MAXPOOL_REASON})")
        raise Unsupported(f"layer {type(m).__name__} at `{node.target}` is not an affine map or a "
                          "piecewise-linear activation")
    target = node.target
    if "max_pool" in str(getattr(target, "__name__", target)):
        raise Unsupported(f"{getattr(target, '__name__', target)} at `{node.name}` ({MAXPOOL_REASON})")
    if target in (torch.relu, Fn.relu) or (node.op == "call_method" and target == "relu"):
        return nn.ReLU()
    if target is Fn.leaky_relu:
        slope = node.kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
        return nn.LeakyReLU(float(slope))
    if target is Fn.hardtanh:
        lo = node.kwargs.get("min_val", args[1] if len(args) > 1 else -1.0)
        hi = node.kwargs.get("max_val", args[2] if len(args) > 2 else 1.0)
        return nn.Hardtanh(float(lo), float(hi))
    if target is Fn.relu6:
        return nn.ReLU6()
    if target is torch.flatten or (node.op == "call_method" and target == "flatten"):
        start = node.kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
        end = node.kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
        if start != 1:
            raise Unsupported(f"`{node.name}`: flatten(start_dim={start}) mixes the batch dimension")
        return nn.Flatten(1, end)
    if node.op == "call_method" and target in ("view", "reshape") or target is torch.reshape:
        sizes = args[1:] if node.op == "call_method" else list(args[1])
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = list(sizes[0])
        if sizes and (_batch_size_arg(sizes[0], x) or sizes[0] == -1) and all(isinstance(s, int) for s in sizes[1:]):
            return _Reshape(sizes[1:])  # with -1 first: checked against the model's output on X
        raise Unsupported(f"`{node.name}`: a reshape whose first size is not the batch size x.size(0)")
    if node.op == "call_method" and target in ("squeeze", "unsqueeze") or target in (torch.squeeze, torch.unsqueeze):
        dim = node.kwargs.get("dim", args[1] if len(args) > 1 else None)
        if isinstance(dim, int) and dim != 0:
            return _Squeeze(dim, target in ("unsqueeze", torch.unsqueeze))
        raise Unsupported(f"`{node.name}`: squeeze/unsqueeze of the batch dimension (or of all dimensions)")
    if target in (operator.mul, operator.truediv, operator.add, operator.sub, torch.mul, torch.add) \
            or (node.op == "call_method" and target in ("mul", "add", "sub", "div")):
        other = args[1] if args[0] is x else args[0]
        if not isinstance(other, (int, float)):
            raise Unsupported(f"`{node.name}` combines two computed tensors (a residual connection or a "
                              "product; the kink-aware path follows one chain of layers)")
        if target in (operator.mul, torch.mul, "mul"):
            return _Scale(other, 0.0)
        if target in (operator.truediv, "div"):
            if args[0] is not x:
                raise Unsupported(f"`{node.name}` divides by the input (not affine)")
            return _Scale(1.0 / other, 0.0)
        if target in (operator.sub, "sub"):
            return _Scale(1.0, -other) if args[0] is x else _Scale(-1.0, other)
        return _Scale(1.0, other)
    if target in (operator.neg, torch.neg) or (node.op == "call_method" and target == "neg"):
        return _Scale(-1.0, 0.0)
    raise Unsupported(f"operation `{name}` at `{node.name}` is not an affine map or a piecewise-linear activation")


def traced_layers(model: nn.Module) -> list[nn.Module]:
    """The chain of layers ``model`` computes, by ``torch.fx``; ``Unsupported`` with the reason otherwise."""
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many kinds (TraceError, TypeError on data-dependent control flow…)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Unsupported(f"torch.fx cannot trace it ({type(exc).__name__}: {first[:160]})") from None
    layers, x = [], None
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            if x is not None:
                raise Unsupported("forward takes more than one input")
            x = node
        elif node.op == "output":
            out = node.args[0]
            if out is not x:
                raise Unsupported("the output is not the last layer's tensor (a tuple, or a branch)")
        elif _is_shape(node):
            continue
        elif node.op == "get_attr":
            raise Unsupported(f"`{node.target}` is a tensor used directly in forward (not through a layer)")
        else:
            tensors = [a for a in node.all_input_nodes if not _is_shape(a)]
            if tensors != [x]:
                raise Unsupported(f"`{node.name}` combines two computed tensors (a residual connection or "
                                  "a concatenation; the kink-aware path follows one chain of layers)")
            if len(x.users) > 1 and any(not _is_shape(u) for u in x.users if u is not node):
                raise Unsupported(f"`{x.name}` feeds two operations (a residual connection or another branch: "
                                  "a sum of two piecewise-affine chains has the union of their breakpoints, but the "
                                  "kink-aware path carries one chain of values)")
            layers.append(_layer(node, gm, x))
            x = node
    return layers


def kink_route(P, shortcut: bool) -> tuple[KinkPlan | None, str | None]:
    """``(plan, None)`` for the kink-aware path, or ``(None, reason)``: ``reason`` is ``None`` when the
    model has no kinks (the node-doubling quadrature is exact for it), else why it is off the path."""
    model = P.model
    layers = _flat_layers(model)
    if layers is None:
        if not isinstance(model, nn.Module):
            return None, "a plain callable: torch.fx cannot trace it, so its kinks in λ cannot be located"
        try:
            layers = traced_layers(model)
        except Unsupported as exc:
            return None, (str(exc) if _has_kinks(model) else None)
    if not any(isinstance(m, KINK_NONLINEAR) for m in layers):
        bad = next((m for m in layers if isinstance(m, KINKED)), None)
        return None, None if bad is None else _why(bad)
    bad = next((m for m in layers if not isinstance(m, KINK_AFFINE_LAYERS + KINK_NONLINEAR + SHAPE_OPS)
                or (isinstance(m, KINK_POOLS) and pool_reason(m))), None)
    if bad is not None:
        return None, _why(bad)
    if any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and m.running_mean is None
           for m in layers):
        return None, "batch norm without running statistics normalises by the batch (not affine per sample)"
    plan = plan_from_layers(layers, shortcut, SHAPE_OPS)
    if plan is None:
        return None, "no layer list could be formed"
    if not isinstance(model, nn.Sequential) and not _same_function(plan, P):
        return None, "the traced chain of layers does not reproduce the model's output on X"
    return plan, None


def _why(layer: nn.Module) -> str:
    if isinstance(layer, KINK_POOLS) and pool_reason(layer):
        return pool_reason(layer)
    if isinstance(layer, (nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
        return f"{type(layer).__name__} ({MAXPOOL_REASON})"
    return f"layer {type(layer).__name__} is not an affine map or a piecewise-linear activation"


def _has_kinks(model) -> bool:
    return not isinstance(model, nn.Module) or any(isinstance(m, KINKED) for m in model.modules()) or \
        _calls_kinks(model)


def _calls_kinks(model: nn.Module) -> bool:
    """Whether forward (traceable or not) names a ReLU-type function: a cheap look at its source."""
    import inspect

    try:
        src = inspect.getsource(type(model))
    except (OSError, TypeError):
        return True  # unknown: assume kinks, so a switch of path is never silent
    return any(k in src for k in ("relu", "hardtanh", "max_pool", "maximum", "clamp", ".max("))


def _same_function(plan: KinkPlan, P) -> bool:
    """The chain evaluated on the first rows of X equals the model's logits there (to 1e-12 relative)."""
    with torch.no_grad():
        Z = P.inputs[:TRACE_CHECK_ROWS].to(DTYPE)
        for part in (plan.prefix, plan.head):
            if part is not None:
                Z = part(Z)
        for act, block in plan.stages:
            Z = act(Z.clone())
            if block is not None:
                Z = block(Z)
        Z = Z.reshape(Z.shape[0], -1)
        F = P.F[:TRACE_CHECK_ROWS]
    return Z.shape == F.shape and bool(((Z - F).abs() <= TRACE_CHECK_RTOL * (1 + F.abs())).all())
