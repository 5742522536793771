"""Model helpers: builders for the models of the analysis, and structural facts the formulas use.

Any ``nn.Module`` or callable mapping ``(n, …)`` float tensors to logits ``(n,)``/``(n, K)`` works;
the helpers evaluate it in float64 on its own device without touching the caller's module
(``torch.func.functional_call`` with float64 copies of the parameters).

Model state: every evaluation of a module runs inside ``evaluation(module)``, i.e. in eval mode
(BatchNorm uses its running statistics, Dropout is the identity), so results do not depend on the
mode the caller left the model in, on chunk sizes or on the call, and rows are treated
independently (per-sample input gradients are gradients of the batch sum). On return the caller's
module is exactly as it was: the ``training`` flag of every submodule is restored, and parameters,
buffers (running statistics, ``num_batches_tracked``) and ``requires_grad`` flags are never written.
"""
from __future__ import annotations

import contextlib
import copy
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from ._validate import DTYPE, ArgumentTypeError, check_count, check_model, check_torch_generator, model_device
from ._docs import fill_doc

AFFINE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Flatten, nn.Unflatten, nn.Identity)
# Layers that keep a network piecewise linear in its input (zero input Hessian a.e.; R3 = 0, C2/C5).
PIECEWISE_LINEAR_LAYERS = AFFINE_LAYERS + (nn.ReLU, nn.LeakyReLU, nn.MaxPool1d, nn.MaxPool2d,
                                           nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
# Piecewise-linear layers that are also positively homogeneous when the affine layers are bias-free (C5).
_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "softplus": nn.Softplus}


MAX_PARAMETERS = 10 ** 9
"""Largest parameter count the model builders allocate (8 GB of float64)."""


def check_parameter_count(count: int, widths) -> None:
    """``ValueError`` naming the widths when a model would hold more than ``MAX_PARAMETERS`` parameters."""
    if count > MAX_PARAMETERS:
        raise ValueError(f"d, hidden and out = {tuple(widths)} give {count:.3g} parameters; at most "
                         f"{MAX_PARAMETERS:.0e} (MAX_PARAMETERS) are allocated")


@fill_doc
def linear_model(d: int, out: int = 1, *, bias: bool = True, weight=None, intercept=None) -> nn.Sequential:
    """``f(x) = θᵀx + b`` as ``nn.Sequential(nn.Linear(d, out))`` in float64, optionally with given weights.

    Models of docs/theory.md §0 (logistic regression is the setting of C4, C7, C9).

    Parameters
    ----------
    %(d)s
    %(out)s
    bias : bool, default True
        Whether the layer has an intercept.
    weight : array_like, optional
        Weights ``(out, d)`` (or ``(d,)`` for one output); ``None`` draws them from a seeded generator.
    intercept : float or array_like, optional
        Intercept(s); only with ``bias=True``.

    Returns
    -------
    torch.nn.Sequential
        ``Sequential(Linear(d, out))`` in float64.

    Raises
    ------
    ValueError
        If a size is not a positive integer or ``weight``/``intercept`` have the wrong shape.

    See Also
    --------
    linear_parameters : Reads ``(Θ, b)`` back from an affine model.
    relu_mlp, smooth_mlp, mlp : Networks with hidden layers.

    Examples
    --------
    >>> import torch, theory
    >>> model = theory.linear_model(2, weight=[1.0, 0.2], intercept=0.5)
    >>> model(torch.tensor([[1.0, 0.5]], dtype=torch.float64)).item()
    1.6
    >>> theory.is_affine(model), theory.has_bias(model)
    (True, True)
    """
    d, out = check_count(d, "d"), check_count(out, "out")
    check_parameter_count(d * out + out, (d, out))
    layer = nn.Linear(d, out, bias=bias, dtype=DTYPE)
    with torch.no_grad():
        if weight is not None:
            layer.weight.copy_(torch.as_tensor(weight, dtype=DTYPE).reshape(out, d))
        if intercept is not None:
            if not bias:
                raise ValueError("intercept given but bias=False")
            layer.bias.copy_(torch.as_tensor(intercept, dtype=DTYPE).reshape(out))
    return nn.Sequential(layer)


@fill_doc
def mlp(d: int, hidden: Sequence[int], out: int = 1, *, activation: str = "relu", bias: bool = True,
        generator: torch.Generator | None = None) -> nn.Sequential:
    """A float64 MLP ``d → hidden… → out`` with the given activation (``relu``, ``tanh``, ``softplus``).

    Models of docs/theory.md §0.

    Weights are drawn with PyTorch's default initialisation from ``generator`` (fixed seed 0 if None).

    Parameters
    ----------
    %(d)s
    %(hidden)s
    %(out)s
    activation : {"relu", "tanh", "softplus"}, default "relu"
        Activation after each hidden layer.
    %(bias)s
    %(generator_torch)s

    Returns
    -------
    torch.nn.Sequential
        ``Linear, activation, ..., Linear`` in float64.

    Raises
    ------
    ValueError
        If a width is not a positive integer or ``activation`` is unknown.

    See Also
    --------
    relu_mlp : The ReLU case (homogeneous without biases, C5).
    smooth_mlp : The tanh / softplus case (``R3 ≠ 0``).
    linear_model : No hidden layer.

    Examples
    --------
    >>> import theory
    >>> net = theory.mlp(3, [8, 4], activation="tanh", generator=0)
    >>> [type(layer).__name__ for layer in net]
    ['Linear', 'Tanh', 'Linear', 'Tanh', 'Linear']
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(_ACTIVATIONS)}, got {activation!r}")
    gen = check_torch_generator(generator)
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise ArgumentTypeError(f"hidden must be a sequence of layer widths, got {type(hidden).__name__} {hidden!r}")
    widths = [check_count(d, "d"), *(check_count(h, "hidden") for h in hidden), check_count(out, "out")]
    check_parameter_count(sum(a * b + b for a, b in zip(widths[:-1], widths[1:])), widths)
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(a, b, bias=bias, dtype=DTYPE)
        with torch.no_grad():
            bound = 1.0 / a ** 0.5
            lin.weight.copy_((torch.rand(b, a, generator=gen, dtype=DTYPE) * 2 - 1) * bound)
            if bias:
                lin.bias.copy_((torch.rand(b, generator=gen, dtype=DTYPE) * 2 - 1) * bound)
        layers.append(lin)
        if k < len(widths) - 2:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


@fill_doc
def relu_mlp(d: int, hidden: Sequence[int], out: int = 1, *, bias: bool = True,
             generator: torch.Generator | None = None) -> nn.Sequential:
    """ReLU MLP (C5: bias-free ReLU nets are positively homogeneous).

    Models of docs/theory.md §0 (bias-free ReLU nets are homogeneous: the setting of C5).

    Parameters
    ----------
    %(d)s
    %(hidden)s
    %(out)s
    bias : bool, default True
        Whether every ``nn.Linear`` has a bias; ``False`` makes the net homogeneous.
    %(generator_torch)s

    Returns
    -------
    torch.nn.Sequential
        A float64 ReLU MLP.

    Raises
    ------
    ValueError
        If a width is not a positive integer.

    See Also
    --------
    mlp : Any activation.
    is_piecewise_linear, has_bias : The structural facts the robustness chain needs.
    robustness_bound : The chain of C5 for such nets.

    Examples
    --------
    >>> import theory
    >>> net = theory.relu_mlp(2, [8], bias=False, generator=0)  # bias-free: positively homogeneous
    >>> theory.is_piecewise_linear(net), theory.has_bias(net), theory.is_affine(net)
    (True, False, False)
    """
    return mlp(d, hidden, out, activation="relu", bias=bias, generator=generator)


@fill_doc
def smooth_mlp(d: int, hidden: Sequence[int], out: int = 1, *, activation: str = "tanh", bias: bool = True,
               generator: torch.Generator | None = None) -> nn.Sequential:
    """Smooth MLP (tanh or softplus): non-zero input Hessian, so R3 ≠ 0 (C2).

    Models of docs/theory.md §0 (smooth nets have R3 ≠ 0, docs/theory.md §3.2).

    Parameters
    ----------
    %(d)s
    %(hidden)s
    %(out)s
    activation : {"tanh", "softplus"}, default "tanh"
        The smooth activation.
    %(bias)s
    %(generator_torch)s

    Returns
    -------
    torch.nn.Sequential
        A float64 MLP with a smooth activation.

    Raises
    ------
    ValueError
        If a width is not a positive integer or ``activation`` is not smooth.

    See Also
    --------
    mlp : Any activation.
    mixup_expansion : Its ``r3`` is non-zero for these nets.

    Examples
    --------
    >>> import theory
    >>> theory.is_piecewise_linear(theory.smooth_mlp(2, [8], generator=0))
    False
    """
    if activation == "relu":
        raise ValueError("activation for smooth_mlp must be 'tanh' or 'softplus'")
    return mlp(d, hidden, out, activation=activation, bias=bias, generator=generator)


@contextlib.contextmanager
def evaluation(model):
    """Context in which ``model`` (an ``nn.Module``; anything else is left alone) is in eval mode.

    The ``training`` flag of every submodule is recorded on entry and restored on exit, also when
    the body raises: the one place where theory functions change a caller's module, and only for the
    duration of an evaluation.
    """
    if not isinstance(model, nn.Module):
        yield model
        return
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def eval_copy(module: nn.Module) -> nn.Module:
    """A float64 deep copy of ``module`` in eval mode, with gradients off (the caller's is untouched)."""
    tail = copy.deepcopy(module).to(dtype=DTYPE).eval()
    tail.requires_grad_(False)
    return tail


def _float64_call(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    params = {k: (v.detach().to(DTYPE) if v.is_floating_point() else v)
              for k, v in {**dict(module.named_parameters()), **dict(module.named_buffers())}.items()}

    def call(X):
        with evaluation(module):
            return torch.func.functional_call(module, params, (X,))

    return call


@fill_doc
def as_function(model) -> Callable[[torch.Tensor], torch.Tensor]:
    """A float64 callable ``X ↦ logits`` for ``model`` (an ``nn.Module`` or plain callable).

    Model conventions of docs/theory.md §0.

    %(params_model)s

    Returns
    -------
    callable
        ``X ↦ logits`` evaluating ``model`` on float64 tensors.

    Raises
    ------
    TypeError
        If ``model`` is neither an ``nn.Module`` nor callable.

    See Also
    --------
    linear_model, relu_mlp : Builders of models.

    Examples
    --------
    >>> import torch, theory
    >>> f = theory.as_function(lambda X: X.sum(1))  # any callable works
    >>> f(torch.ones(2, 3, dtype=torch.float64)).tolist()
    [3.0, 3.0]
    """
    if isinstance(model, nn.Module):
        return _float64_call(model)
    if callable(model):
        return model
    raise ValueError(f"model must be a torch.nn.Module or a callable, got {type(model).__name__}")


def layers_of(model) -> list[nn.Module] | None:
    """The layer list of a ``Sequential`` (or a lone layer); ``None`` for other models.

    Nested ``Sequential``s are flattened (``Sequential(Sequential(Linear), ReLU)`` has the layers
    ``[Linear, ReLU]``), so every structural query (``is_affine``, ``is_piecewise_linear``,
    ``split_affine_prefix``) sees through them.
    """
    if isinstance(model, nn.Sequential):
        flat: list[nn.Module] = []
        for child in model:
            inner = layers_of(child) if isinstance(child, nn.Sequential) else [child]
            flat.extend(inner or [])
        return flat
    if isinstance(model, nn.Module) and not list(model.children()):
        return [model]
    return None


@fill_doc
def split_affine_prefix(model) -> tuple[Callable, Callable] | None:
    """``(prefix, rest)`` with ``model = rest ∘ prefix`` and ``prefix`` affine, or ``None``.

    Mixing commutes with an affine map when the weights sum to 1 (docs/theory.md §2), so the exact Mixup
    loss may mix ``prefix(x_i)`` instead of ``x_i``. ``rest`` is the identity for linear models.

    %(params_model)s

    Returns
    -------
    tuple of (callable, callable) or None
        ``(prefix, rest)``, or ``None`` when the model does not start with an affine block.

    See Also
    --------
    mixup_loss : Mixes ``prefix(x_i)`` instead of ``x_i`` (``shortcut=True``).
    is_affine : Whether the whole model is affine.

    Examples
    --------
    >>> import torch, theory
    >>> net = theory.relu_mlp(2, [4], generator=0)
    >>> prefix, rest = theory.split_affine_prefix(net)
    >>> x = torch.ones(1, 2, dtype=torch.float64)
    >>> torch.allclose(rest(prefix(x)), net(x))
    True
    """
    layers = layers_of(model)
    if not layers:
        return None
    k = 0
    while k < len(layers) and isinstance(layers[k], AFFINE_LAYERS):
        k += 1
    if k == 0 or not any(isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) for m in layers[:k]):
        return None
    prefix = _float64_call(nn.Sequential(*layers[:k]))
    rest = _float64_call(nn.Sequential(*layers[k:])) if k < len(layers) else (lambda U: U)
    return prefix, rest


@fill_doc
def is_affine(model) -> bool:
    """True when the model is structurally affine (a ``Sequential`` of affine layers).

    Model structure, docs/theory.md §0 (affine models: closed forms of docs/theory.md §2.2, §4.1).

    %(params_model)s

    Returns
    -------
    bool
        ``True`` for a ``Sequential`` of affine layers only (no activation).

    See Also
    --------
    linear_parameters : ``(Θ, b)`` of an affine model.
    has_bias, is_piecewise_linear : The other structural queries.

    Examples
    --------
    >>> import theory
    >>> theory.is_affine(theory.linear_model(3)), theory.is_affine(theory.relu_mlp(3, [4], generator=0))
    (True, False)
    """
    layers = layers_of(model)
    return bool(layers) and all(isinstance(m, AFFINE_LAYERS) for m in layers)


@fill_doc
def linear_parameters(model, d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Θ, b)`` with ``f(x) = Θ vec(x) + b`` (``Θ`` is ``K × d``) for an affine model, in float64.

    ``d``: the number of input features, or the per-sample input shape (e.g. ``(1, 8, 8)`` for a
    ``Flatten → Linear`` model on images; ``d`` is then its product). Model structure, docs/theory.md §0.

    Parameters
    ----------
    %(model)s
    d : int or tuple of int
        Number of input features, or the per-sample input shape.

    Returns
    -------
    Theta : torch.Tensor, shape (K, d)
        The weights, float64.
    b : torch.Tensor, shape (K,)
        The intercepts, float64.

    Raises
    ------
    ValueError
        If ``model`` is not affine.

    See Also
    --------
    is_affine : Whether this applies.
    linear_model : Builds an affine model from ``(Θ, b)``.

    Examples
    --------
    >>> import theory
    >>> Theta, b = theory.linear_parameters(theory.linear_model(2, weight=[1.0, 2.0], intercept=0.5), 2)
    >>> Theta.tolist(), b.tolist()
    ([[1.0, 2.0]], [0.5])
    """
    check_model(model)
    if not is_affine(model):
        raise ValueError("model must be linear (a Sequential of nn.Linear/Flatten/Identity layers) here")
    if isinstance(d, (int, np.integer)) and not isinstance(d, bool):
        shape = (check_count(d, "d"),)
    elif isinstance(d, (tuple, list)) and d and all(isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                                                    and k >= 1 for k in d):
        shape = tuple(int(k) for k in d)
    else:
        raise ArgumentTypeError(f"d must be a positive integer or a per-sample shape of positive integers, got {d!r}")
    d = int(np.prod(shape))
    check_parameter_count(d * d, shape)
    f = as_function(model)
    dev = model_device(model)
    zero = torch.zeros(1, *shape, dtype=DTYPE, device=dev)
    try:
        b = f(zero).reshape(1, -1)
    except RuntimeError as exc:
        raise ValueError(f"model does not take inputs of shape d = {shape}: {str(exc).splitlines()[0]}") from None
    Theta = (f(torch.eye(d, dtype=DTYPE, device=dev).reshape(d, *shape)).reshape(d, -1) - b).T
    return Theta, b.reshape(-1)


@fill_doc
def is_piecewise_linear(model) -> bool:
    """True when every layer is affine, ReLU-like or pooling: the input Hessian vanishes a.e.

    Model structure, docs/theory.md §0 (R3 = 0 a.e., docs/theory.md §3.2).

    %(params_model)s

    Returns
    -------
    bool
        ``True`` when every layer is affine, ReLU-like or pooling.

    See Also
    --------
    is_affine, has_bias : The other structural queries.
    mixup_expansion : Sets ``r3 = 0`` for these models.

    Examples
    --------
    >>> import theory
    >>> theory.is_piecewise_linear(theory.relu_mlp(2, [4], generator=0))
    True
    """
    layers = layers_of(model)
    return bool(layers) and all(isinstance(m, PIECEWISE_LINEAR_LAYERS) for m in layers)


@fill_doc
def has_bias(model) -> bool:
    """True when any affine layer carries a non-zero bias (breaks homogeneity, C5/C6).

    Model structure, docs/theory.md §0 (biases break homogeneity: C5, C6, docs/theory.md §4.2).

    %(params_model)s

    Returns
    -------
    bool
        ``True`` if some affine layer has a non-zero bias.

    See Also
    --------
    is_affine, is_piecewise_linear : The other structural queries.
    robustness_bound : Reports homogeneity in ``assumptions["homogeneous"]``.

    Examples
    --------
    >>> import theory
    >>> theory.has_bias(theory.relu_mlp(2, [4], bias=False, generator=0))
    False
    """
    if not isinstance(model, nn.Module):
        return True
    for m in model.modules():
        b = getattr(m, "bias", None)
        if isinstance(b, torch.Tensor) and bool((b != 0).any()):
            return True
    return False
