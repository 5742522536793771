"""Shared numpydoc entries of the public functions, each written once, and ``fill_doc``.

A docstring line that holds only ``%(key)s`` is replaced, at import time, by ``DOCS[key]``
re-indented to that line's column, so the rendered ``__doc__`` is plain numpydoc for Sphinx,
``help`` and ``numpydoc.validate``. Same scheme as ``scipy._lib.doccer`` and ``mne.utils.fill_doc``;
written here because doccer is private scipy API (no stability promise) and MNE is far too heavy a
dependency for a dozen lines.
"""
from __future__ import annotations

import re
from typing import Callable, TypeVar

__all__ = ["DOCS", "fill_doc"]

_F = TypeVar("_F", bound=Callable)
_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<key>\w+)\)s[ \t]*$", re.MULTILINE)

DOCS: dict[str, str] = {
    "alpha": """\
alpha : float
    First parameter of the mixing law ``Beta(alpha, beta)``, ``alpha > 0``.""",
    "beta": """\
beta : float, optional
    Second parameter; ``None`` (default) means ``beta = alpha``.""",
    "bias": """\
bias : bool, default True
    Whether every ``nn.Linear`` has a bias.""",
    "chunk_elements": """\
chunk_elements : int, default CHUNK_ELEMENTS
    Largest number of float64 values per intermediate tensor (bounds the memory).""",
    "d": """\
d : int
    Number of input features.""",
    "eps": """\
eps : float
    Radius ``ε ≥ 0`` of the ball.""",
    "gamma": """\
gamma : float
    ``γ`` of ``W_γ``.""",
    "generator_numpy": """\
generator : numpy.random.Generator or int, optional
    Source of randomness; an int is a seed, ``None`` draws fresh randomness.""",
    "generator_torch": """\
generator : torch.Generator or int, optional
    Source of the initial weights; an int is a seed. ``None`` uses the fixed seed 0.""",
    "hidden": """\
hidden : sequence of int
    Widths of the hidden layers.""",
    "loss": """\
loss : {"logistic", "softmax", "squared"}, default "logistic"
    The GLM-form loss (docs/theory.md §0).""",
    "loss_as_mixup_loss": """\
loss : {"logistic", "softmax", "squared"}
    As for :func:`theory.mixup_loss`.""",
    "loss_squared_default": """\
loss : {"squared", "logistic"}, default "squared"
    The GLM.""",
    "loss_binary": """\
loss : {"logistic", "squared"}, default "logistic"
    The GLM.""",
    "method_attack": """\
method : {"exact", "second_order", "fgsm", "pgd", "certified"}, default "exact"
    How the inner maximum is computed or bounded (see above).""",
    "method_quadrature": """\
method : {"auto", "pairs", "kinks", "separated"}, default "auto"
    How the λ-integral is computed (see above).""",
    "model": """\
model : torch.nn.Module or callable
    Maps a float tensor ``(n, ...)`` to logits ``(n,)`` or ``(n, K)``; evaluated in float64 and eval
    mode and returned exactly as it was.""",
    "model_head": """\
model : torch.nn.Sequential
    A network ending in ``nn.Linear``; ``φ`` is everything before it.""",
    "model_linear": """\
model : torch.nn.Module
    A linear model with one output.""",
    "model_X_y_alpha_beta_as_mixup_loss": """\
model, X, y, alpha, beta
    As for :func:`theory.mixup_loss`.""",
    "n": """\
n : int
    Number of samples.""",
    "nodes_fixed": """\
nodes : int, optional
    Gauss–Jacobi nodes.""",
    "nodes": """\
nodes : int, optional
    Force one Gauss–Jacobi rule of this many nodes (no accuracy estimate); ``None`` (default)
    integrates λ to ``rtol``.""",
    "norm": """\
norm : {2, math.inf}, default 2
    The ℓp ball.""",
    "options": """\
**options
    Method options: ``fgsm``: ``box=(lo, hi)``; ``pgd``: ``steps``, ``restarts``, ``step_size``,
    ``box``, ``generator``, ``fgsm_start``; ``certified``: ``bound`` in ``"ibp"``, ``"crown"``,
    ``"alpha-crown"``.""",
    "out": """\
out : int, default 1
    Number of outputs (logits).""",
    "raises_attack_method": """\
Raises
------
ValueError
    If an argument is out of range (the message names it), ``method="exact"`` is asked of a
    non-linear model or the softmax loss, ``"second_order"`` in ℓ∞ meets a non-zero input Hessian,
    or ``"certified"`` meets a layer it cannot bound.""",
    "raises_sign_vectors": """\
Raises
------
ValueError
    If ``X`` is not a numeric ``(n, d)`` array, ``c ≤ 0``, or ``sigma`` does not have ``n`` entries
    per sign vector.""",
    "raises_head": """\
Raises
------
ValueError
    If the model does not end in ``nn.Linear``.""",
    "raises_range_or_head": """\
Raises
------
ValueError
    If an argument is out of range or the model does not end in ``nn.Linear``.""",
    "raises_range_named": """\
Raises
------
ValueError
    If an argument is out of range (the message names it).""",
    "raises_range": """\
Raises
------
ValueError
    If an argument is out of range.""",
    "raises_linear_or_range": """\
Raises
------
ValueError
    If the model is not linear or an argument is out of range.""",
    "rho": """\
rho : float
    Retentive constant, ``0 < ρ ≤ 1/2``.""",
    "rows": """\
rows : tuple of int, optional
    ``(start, stop)``: return this shard's share of the sum over ``i``.""",
    "rtol": """\
rtol : float, optional
    Requested relative accuracy of the λ-integral (default 1e-12 for piecewise-linear and affine
    models, 1e-10 otherwise).""",
    "shortcut": """\
shortcut : bool, default True
    Mix the outputs of a leading affine block instead of the inputs (exact).""",
    "sigma": """\
sigma : array_like, shape (n,) or (m, n)
    Sign vector(s).""",
    "X": """\
X : array_like, shape (n, d) or (n, ...)
    Inputs (numpy or torch), any per-sample shape the model accepts.""",
    "X_data": """\
X : array_like, shape (n, d)
    Data matrix.""",
    "X_centered": """\
X : array_like, shape (n, d)
    Centered inputs.""",
    "y": """\
y : array_like, shape (n,) or (n, K)
    Binary labels in {0, 1}, integer class labels, or one-hot / probability rows.""",
    "y_binary": """\
y : array_like, shape (n,)
    Binary labels in {0, 1}.""",
}
"""Each entry as it reads at column 0 (continuation lines indented four spaces); keys by name,
with a suffix where one parameter name has several meanings. ``raises_*`` entries are whole Raises
sections, header included."""


def _joined(*keys: str) -> str:
    return "\n".join(DOCS[k] for k in keys)


# Doctest setups: the four-point data set (centered; every point on its side of the linear model)
# and the two-layer ReLU net of the Manifold Mixup examples.
DOCS["example_data"] = """\
>>> import numpy as np, theory
>>> X = np.array([[1.0, 0.5], [-1.0, -0.5], [0.5, -1.0], [-0.5, 1.0]])  # centered
>>> y = np.array([1, 0, 1, 0])"""
DOCS["example_linear"] = (DOCS["example_data"]
                          + "\n>>> model = theory.linear_model(2, weight=[1.0, 0.2], intercept=0.0)  # every point on its side")
DOCS["example_relu"] = ">>> import numpy as np, theory\n>>> net = theory.relu_mlp(2, [5], generator=0)"
# The whole Parameters section (header included) of the structural queries on a model.
DOCS["params_model"] = "Parameters\n----------\n" + DOCS["model"]
# Runs of entries that several functions share, in this order.
DOCS["mixup_args"] = _joined("model", "X", "y", "alpha", "beta", "loss")
DOCS["mixup_loss_args"] = DOCS["mixup_args"] + "\n" + _joined("nodes", "rtol", "method_quadrature", "shortcut",
                                                              "chunk_elements", "rows")
DOCS["attack_args"] = _joined("model", "X", "y", "eps", "loss", "norm", "method_attack", "options")
DOCS["glm_args"] = _joined("model_linear", "X_centered", "y", "alpha", "beta", "loss_binary")
DOCS["binary_args"] = _joined("model", "X", "y_binary", "alpha", "beta")


def fill_doc(func: _F) -> _F:
    """Replace every ``%(key)s`` line of ``func.__doc__`` by ``DOCS[key]`` at that line's indent.

    An unknown key is a ``KeyError`` at import time; other ``%`` characters are left as they are.
    Returns ``func`` itself (only ``__doc__`` changes); a docstring stripped by ``-OO`` stays ``None``.
    """
    if func.__doc__:
        func.__doc__ = _PLACEHOLDER.sub(
            lambda m: "\n".join(m["indent"] + line if line else line for line in DOCS[m["key"]].splitlines()),
            func.__doc__)
    return func
