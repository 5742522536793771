"""The adversarial loss ``L_adv(ε) = (1/n) Σ_i max_{‖δ‖_p ≤ ε} l(θ, (x_i + δ, y_i))`` (docs/theory.md §4).

One entry point, five methods (``theory.adversarial_loss``):

- ``"exact"`` — closed form for linear models ``f = θᵀx + b`` (docs/theory.md §4): logistic
  ``softplus(−s_i z_i + ε‖θ‖_q)``, squared ``½(|y_i − z_i| + ε‖θ‖_q)²`` (``q`` the dual norm:
  2 for ℓ2, 1 for ℓ∞); multi-output squared on ℓ2 by the exact trust-region solver. Raises for
  non-linear models and for softmax (no closed form).
- ``"second_order"`` — the maximum of the per-sample quadratic model, ``L̃_adv`` (C4/C5/C13;
  ``theory.second_order``).
- ``"fgsm"``, ``"pgd"`` — attacks, lower bounds (``theory.attacks``).
- ``"certified"`` — IBP/CROWN upper bound for ReLU MLPs (``theory.certify``).

For every model and ε: fgsm ≤ pgd ≤ exact ≤ certified (the exact maximum, when it exists).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ._problem import Problem, prepare
from ._validate import DTYPE, check_choice, check_count, check_nonnegative, check_positive
from ._attacks import check_box, fgsm_inputs, fgsm_losses, pgd_losses
from ._certify import ALPHA_ITERS, ALPHA_LR, CERTIFY_METHODS, Unsupported, certified_losses
from ._models import is_affine, linear_parameters
from ._second_order import dual_norm, second_order_losses, vector_norm
from ._trust_region import trust_region_max
from ._warnings import UndeterminedWarning
from ._docs import fill_doc

METHODS = ("exact", "second_order", "fgsm", "pgd", "certified")
"""Values of ``method=`` accepted by ``adversarial_loss`` (``bound=`` values: ``theory._certify.CERTIFY_METHODS``)."""
NORMS = (2, math.inf)
PGD_OPTIONS = ("steps", "restarts", "step_size", "box", "generator", "fgsm_start")
_OPTIONS = {
    "exact": (),
    "second_order": (),
    "fgsm": ("box",),
    "pgd": PGD_OPTIONS,
    "certified": ("bound", "alpha_iters", "alpha_lr"),
}


def certified_options(options: dict) -> dict:
    """``bound``, ``alpha_iters``, ``alpha_lr`` of ``method="certified"``, checked (one ``ValueError`` naming the
    argument); the slope options are accepted only with ``bound="alpha-crown"``."""
    bound = check_choice(options.get("bound", "crown"), "bound", CERTIFY_METHODS)
    extra = sorted(set(options) & {"alpha_iters", "alpha_lr"})
    if extra and bound != "alpha-crown":
        raise ValueError(f"option(s) {extra} apply only to bound='alpha-crown', got bound={bound!r}")
    iters = check_count(options.get("alpha_iters", ALPHA_ITERS), "alpha_iters", minimum=0)
    lr = check_positive(options.get("alpha_lr", ALPHA_LR), "alpha_lr")
    return {"method": bound, "alpha_iters": iters, "alpha_lr": lr}


def check_norm(norm) -> float:
    """``2`` or ``math.inf``, else ``ValueError``."""
    if isinstance(norm, (bool, str)) or not isinstance(norm, (int, float, np.integer, np.floating)):
        raise ValueError(f"norm must be 2 or math.inf, got {norm!r}")
    if float(norm) == 2.0:
        return 2
    if float(norm) == math.inf:
        return math.inf
    raise ValueError(f"norm must be 2 or math.inf, got {norm!r}")


def exact_losses(P: Problem, eps: float, norm: float) -> torch.Tensor:
    """Closed-form per-sample inner maxima for linear models (docs/theory.md §4)."""
    if P.loss.name == "softmax":
        raise ValueError("method='exact' has no closed form for loss='softmax'; use method='pgd' (a lower bound) "
                         "or method='certified' (an upper bound)")
    if not is_affine(P.model):
        raise ValueError("method='exact' needs a linear model (an nn.Sequential of nn.Linear layers): no closed form "
                         "exists for non-linear models; use method='pgd' (lower bound), 'certified' (upper bound) "
                         "or 'second_order'")
    Theta, _ = linear_parameters(P.model, P.shape)
    Theta = Theta.to(P.device)
    z, Y = P.F, P.Y
    if P.K == 1:
        w = vector_norm(Theta[0], dual_norm(norm))
        if P.loss.name == "logistic":
            shifted = -(2 * Y[:, 0] - 1) * z[:, 0] + eps * w
            return torch.logaddexp(shifted, torch.zeros_like(shifted))
        return 0.5 * ((Y[:, 0] - z[:, 0]).abs() + eps * w) ** 2
    if norm == math.inf:
        raise ValueError("method='exact' for a multi-output squared loss needs norm=2: the maximum of a convex "
                         "quadratic over an ℓ∞ ball has no closed form")
    # ½‖r − Θδ‖² with r = y − z: gradient −Θᵀr, Hessian ΘᵀΘ, maximised over the ℓ2 ball exactly
    R = Y - z
    g = -R @ Theta
    H = (Theta.T @ Theta).expand(P.n, -1, -1)
    return 0.5 * (R * R).sum(1) + trust_region_max(g, H, eps).value


@fill_doc
def adversarial_losses(model, X, y, eps, *, loss: str = "logistic", norm=2, method: str = "exact",
                       **options) -> np.ndarray:
    """Per-sample inner maxima (or their bounds) ``max_{‖δ‖_p ≤ ε} l(θ, (x_i + δ, y_i))`` as a numpy array.

    C4–C8, C13; docs/theory.md §4.1.

    Options: ``fgsm``: ``box=(lo, hi)``; ``pgd``: ``steps``, ``restarts``, ``step_size``, ``box``,
    ``generator`` (a ``torch.Generator``; default seeded 0), ``fgsm_start``; ``certified``:
    ``bound`` in ``"crown"`` (default; CROWN ∩ IBP), ``"ibp"`` or ``"alpha-crown"`` (CROWN with the
    unstable ReLUs' lower slopes optimised per sample; never above CROWN, never below the true value),
    with ``alpha_iters`` (projected Adam steps, default ``ALPHA_ITERS`` = 50; 0 gives CROWN) and
    ``alpha_lr`` (step size, default ``ALPHA_LR`` = 0.1). The hidden layers' pre-activation bounds are
    CROWN's in every variant; α-CROWN optimises the slopes of the output bound (docs/theory.md §4).

    Parameters
    ----------
    %(attack_args)s

    Returns
    -------
    numpy.ndarray, shape (n,)
        The per-sample maxima (or bounds); their mean is ``adversarial_loss``.

    %(raises_attack_method)s

    See Also
    --------
    adversarial_loss : Their mean.
    adversarial_examples : The attack's inputs.

    Examples
    --------
    %(example_linear)s
    >>> theory.adversarial_losses(model, X, y, 0.1).round(6).tolist()
    [0.313795, 0.313795, 0.599031, 0.599031]
    """
    eps = check_nonnegative(eps, "eps")
    norm = check_norm(norm)
    check_choice(method, "method", METHODS)
    unknown = set(options) - set(_OPTIONS[method])
    if unknown:
        raise ValueError(f"unexpected option(s) {sorted(unknown)} for method={method!r}; accepted: {_OPTIONS[method]}")
    certify = certified_options(options) if method == "certified" else {}
    P = prepare(model, X, y, loss)
    try:
        out = _losses_by_method(P, eps, norm, method, options, certify)
    except OverflowError:
        out = torch.full((P.n,), math.inf, dtype=DTYPE, device=P.device)
    if not (method == "certified" and bool(out.isnan().all())) and not bool(torch.isfinite(out).all()):
        raise ValueError(f"eps = {eps!r} is too large for X and the model: the adversarial loss overflows float64")
    return out.detach().cpu().numpy()


def _losses_by_method(P: Problem, eps: float, norm: float, method: str, options: dict,
                      certify: dict) -> torch.Tensor:
    if method == "exact":
        out = exact_losses(P, eps, norm)
    elif method == "second_order":
        out = second_order_losses(P, eps, norm)
    elif method == "certified":
        try:
            out = certified_losses(P, eps, norm, **certify)
        except Unsupported as exc:  # an explicit "undetermined", not an error (docs/theory.md §4)
            warnings.warn(f"method='certified' is undetermined for this model, returning nan: {exc}", UndeterminedWarning,
                          stacklevel=3)
            out = torch.full((P.n,), math.nan, dtype=DTYPE, device=P.device)
    else:
        box = check_box(options.pop("box", None), P.inputs)
        if method == "fgsm":
            out = fgsm_losses(P, eps, norm, box)
        else:
            out = pgd_losses(P, eps, norm, box=box, **options)
    return out


@fill_doc
def adversarial_examples(model, X, y, eps, *, loss: str = "logistic", norm=2, method: str = "pgd",
                         **options) -> torch.Tensor:
    """The attack's inputs ``x_i + δ_i`` (float64 tensor shaped like ``X``): FGSM's point, or PGD's best.

    Attacks for C8 (Zhang et al. 2021, Fig. 1a in spirit); docs/theory.md §4.1, §4.8.

    ``method`` in ``"fgsm"``, ``"pgd"``; options as in ``adversarial_losses`` for that method.

    Parameters
    ----------
    %(model)s
    %(X)s
    %(y)s
    %(eps)s
    loss : {"logistic", "softmax", "squared"}, default "logistic"
        The GLM-form loss.
    %(norm)s
    method : {"fgsm", "pgd"}, default "pgd"
        The attack.
    **options
        As in ``adversarial_losses`` for that method.

    Returns
    -------
    torch.Tensor
        ``x_i + δ_i``, float64, shaped like ``X``.

    Raises
    ------
    ValueError
        If an argument is out of range or ``method`` is not an attack.

    See Also
    --------
    adversarial_losses : The losses at these points (``method="fgsm"`` / ``"pgd"``).

    Examples
    --------
    %(example_linear)s
    >>> Z = theory.adversarial_examples(model, X, y, 0.1, method="fgsm")
    >>> np.linalg.norm(Z.numpy() - X, axis=1).round(12).tolist()  # on the sphere of radius ε
    [0.1, 0.1, 0.1, 0.1]
    """
    eps = check_nonnegative(eps, "eps")
    norm = check_norm(norm)
    check_choice(method, "method", ("fgsm", "pgd"))
    unknown = set(options) - set(_OPTIONS[method])
    if unknown:
        raise ValueError(f"unexpected option(s) {sorted(unknown)} for method={method!r}; accepted: {_OPTIONS[method]}")
    P = prepare(model, X, y, loss)
    box = check_box(options.pop("box", None), P.inputs)
    if method == "fgsm":
        return fgsm_inputs(P, eps, norm, box).reshape(P.inputs.shape)
    _, Z = pgd_losses(P, eps, norm, box=box, return_inputs=True, **options)
    return Z.reshape(P.inputs.shape)


@fill_doc
def adversarial_loss(model, X, y, eps, *, loss: str = "logistic", norm=2, method: str = "exact",
                     **options) -> float:
    """``L_adv(ε)`` on the ℓ2 (``norm=2``) or ℓ∞ (``norm=math.inf``) ball (docs/theory.md §4.1; C4–C8, C13).

    ``method``: ``"exact"`` (linear models, logistic/squared), ``"second_order"`` (``L̃_adv``),
    ``"fgsm"`` / ``"pgd"`` (lower bounds), ``"certified"`` (upper bound, ReLU MLPs). Options as in
    ``adversarial_losses``. PGD keeps the best of its starts (clean point, FGSM point, random
    points): per sample clean ≤ FGSM ≤ PGD and plain PGD ≤ PGD; it can miss maxima in flat regions.
    Any model state and input shape (docs/theory.md §0): modules are evaluated in eval mode and left
    exactly as they were; ``X`` may have any shape ``(n, …)`` the model accepts, norms over flattened rows.

    Parameters
    ----------
    %(attack_args)s

    Returns
    -------
    float
        ``L_adv(ε)``, or the lower (``fgsm``, ``pgd``) or upper (``certified``) bound.

    %(raises_attack_method)s

    See Also
    --------
    adversarial_losses : The per-sample values.
    adversarial_examples : The attack's inputs.
    robustness_bound : The chain that compares ``L̃_adv`` with ``L̃_mix``.
    exact_comparison : Exact ``L_mix`` against exact ``L_adv``.

    Examples
    --------
    %(example_linear)s
    >>> round(theory.adversarial_loss(model, X, y, 0.1), 6)  # closed form for a linear model
    0.456413
    >>> lower = theory.adversarial_loss(model, X, y, 0.1, method="pgd")
    >>> upper = theory.adversarial_loss(model, X, y, 0.1, method="certified")
    >>> round(lower, 6), round(upper, 6)  # both tight for a linear model
    (0.456413, 0.456413)
    """
    losses = adversarial_losses(model, X, y, eps, loss=loss, norm=norm, method=method, **options)
    return float(np.sum(losses / losses.shape[0]))  # the mean without overflow of the sum
