"""Attacks: FGSM and PGD on ℓ2 and ℓ∞ balls — lower bounds on the adversarial loss (docs/theory.md §4).

``L_adv(ε) = (1/n) Σ_i max_{‖δ‖_p ≤ ε} l(θ, (x_i + δ, y_i))``; every point an attack visits lies in
the ball (and in the caller's ``box`` if given), so the loss there is a lower bound on the inner max.

Steps follow the *attack objective*, a monotone transform of the per-sample loss with
well-scaled gradients: ``−s·f`` for logistic (loss = softplus(−s f)), ``logsumexp_{k≠y}(f_k − f_y)``
for softmax with one-hot labels (loss = softplus of it), the loss itself otherwise. Its ascent
directions equal the loss's (sign and ℓ2-normalised steps are scale-free) but do not underflow at
large margins.

- FGSM: one step of size ε from x (``ε·sign ∇`` for ℓ∞, ``ε·∇/‖∇‖₂`` for ℓ2 — the fast gradient
  method). The loss is reported as the better of the clean point and the step (δ = 0 is in the ball).
- PGD: ``steps`` projected steepest-ascent steps from each start: the clean point (plain PGD,
  always), the FGSM point (``fgsm_start``) and ``restarts`` uniform random points of the ball. The
  best point per sample over every iterate of every start is kept, so per sample
  ``clean ≤ FGSM ≤ PGD`` and ``plain PGD ≤ PGD`` hold by construction (plain PGD = the same
  function with ``fgsm_start=False, restarts=0``). Projection is onto the ball around the original
  input; no clamping unless ``box=(lo, hi)``.

PGD is a *lower bound* on the inner maximum, not the maximum: ascent needs a non-zero gradient,
so where the loss is flat around ``x_i`` (a ReLU net with every unit of some layer inactive, a
saturated logit) the steps do not move and a larger loss elsewhere in the ball is missed unless a
random start lands near it. Example: on a flat ReLU region PGD from the clean point reports the
clean loss 0.3133 while the maximum over the ball is 1.3133. ``method="certified"`` gives the
matching upper bound (docs/theory.md §4).
"""
from __future__ import annotations

import math

import torch

from ._problem import Problem
from ._validate import DTYPE, check_count, check_nonnegative, check_scalar, check_torch_generator

PGD_STEPS = 50
PGD_RESTARTS = 2
PGD_STEP_FACTOR = 2.5
"""Default PGD step size ``PGD_STEP_FACTOR · ε / steps`` (Madry et al.'s choice)."""
ATTACK_CHUNK_ROWS = 512
"""Rows per forward/backward pass of an attack: bounds memory, and keeps a few-hundred-wide layer's
activations in a core's L2 cache (PGD-10 on a 40-128-128-10 ReLU MLP, 3 starts × 1000 rows, one
thread: 0.14 s CPU per call in passes of 512 rows, 0.18 s in one pass of 3000)."""


def attack_objective(P: Problem, F: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Per-sample monotone transform of the loss (see module docstring); ``F``, ``Y`` are (m, K)."""
    if P.loss.name == "logistic":
        return -(2 * Y[:, 0] - 1) * F[:, 0]
    if P.loss.name == "softmax" and bool(((Y == 0) | (Y == 1)).all()):
        fy = (F * Y).sum(1, keepdim=True)
        others = torch.where(Y > 0, torch.full_like(F, -math.inf), F - fy)
        return torch.logsumexp(others, 1)
    return P.loss.value(F, Y)


def _loss_and_grad(P: Problem, Z: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss at ``Z`` and the gradient of the attack objective, from one forward pass
    (the logits are the ones ``losses_at`` would compute: same function, same rows)."""
    with torch.enable_grad():
        Z = Z.detach().requires_grad_(True)
        F = P.fn(Z)
        obj = attack_objective(P, F, Y).sum()
        (grad,) = torch.autograd.grad(obj, Z)
    with torch.no_grad():
        return P.loss.value(F.detach(), Y), grad.detach()


def _chunked_loss_and_grad(P: Problem, Z: torch.Tensor, Y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``_loss_and_grad`` over at most ``ATTACK_CHUNK_ROWS`` rows at a time."""
    if Z.shape[0] <= ATTACK_CHUNK_ROWS:
        return _loss_and_grad(P, Z, Y)
    parts = [_loss_and_grad(P, Z[r0:r0 + ATTACK_CHUNK_ROWS], Y[r0:r0 + ATTACK_CHUNK_ROWS])
             for r0 in range(0, Z.shape[0], ATTACK_CHUNK_ROWS)]
    return torch.cat([v for v, _ in parts]), torch.cat([g for _, g in parts])


def losses_at(P: Problem, Z: torch.Tensor, Y: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample loss at inputs ``Z`` (rows matching ``Y``, default ``P.Y``)."""
    with torch.no_grad():
        return P.loss.value(P.fn(Z), P.Y if Y is None else Y)


def _chunked_losses(P: Problem, Z: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """``losses_at`` over at most ``ATTACK_CHUNK_ROWS`` rows at a time."""
    return torch.cat([losses_at(P, Z[r0:r0 + ATTACK_CHUNK_ROWS], Y[r0:r0 + ATTACK_CHUNK_ROWS])
                      for r0 in range(0, Z.shape[0], ATTACK_CHUNK_ROWS)])


def ascent_step(grad: torch.Tensor, size, norm: float) -> torch.Tensor:
    """Steepest-ascent step of the given size for the norm: ``sign`` (ℓ∞) or normalised (ℓ2)."""
    if norm == math.inf:
        return size * torch.sign(grad)
    length = grad.norm(dim=1, keepdim=True)
    return size * torch.where(length > 0, grad / length.clamp(min=1e-300), torch.zeros_like(grad))


def project(Z: torch.Tensor, X0: torch.Tensor, eps, norm: float, box=None) -> torch.Tensor:
    """Project ``Z`` onto the ball of radius ``eps`` around ``X0``, then clamp into ``box``.

    For ℓ∞ the result is the exact projection onto ball ∩ box. For ℓ2 it is a feasible point of
    ball ∩ box: clamping each coordinate into an interval containing ``X0``'s coordinate never
    moves it away from ``X0``, so the ℓ2 distance cannot grow.
    """
    D = Z - X0
    if norm == math.inf:
        D = D.clamp(min=-eps, max=eps)
    else:
        length = D.norm(dim=1, keepdim=True)
        D = D * torch.where(length > eps, eps / length.clamp(min=1e-300), torch.ones_like(length))
    Z = X0 + D
    if box is not None:
        Z = torch.clamp(Z, box[0], box[1])
    return Z


MAX_PGD_STEPS = 10 ** 5
"""Largest number of PGD gradient steps, ``steps × (restarts + 1)``: each is a forward and backward pass over X."""


def check_box(box, X: torch.Tensor):
    """``box=(lo, hi)`` with lo ≤ X ≤ hi (``X`` in the caller's shape ``(n, …)``, bounds broadcastable
    to one sample), as float64 rows of flattened length d, or ``None``."""
    if box is None:
        return None
    try:
        lo, hi = box
        lo = torch.as_tensor(lo, dtype=DTYPE, device=X.device)
        hi = torch.as_tensor(hi, dtype=DTYPE, device=X.device)
        torch.broadcast_shapes(lo.shape, X.shape[1:])
        torch.broadcast_shapes(hi.shape, X.shape[1:])
    except (TypeError, ValueError, RuntimeError):
        raise ValueError("box must be a pair (lo, hi) of numbers or arrays broadcastable to one row of X") from None
    if not (lo <= hi).all():
        raise ValueError("box must have lo <= hi")
    if not ((X >= lo) & (X <= hi)).all():
        raise ValueError("box must contain every row of X (lo <= X <= hi)")
    return lo.expand(X.shape[1:]).reshape(-1), hi.expand(X.shape[1:]).reshape(-1)


def fgsm_inputs(P: Problem, eps: float, norm: float, box=None, grad: torch.Tensor | None = None) -> torch.Tensor:
    """The FGSM / fast-gradient point ``proj(x + ε·step(∇))`` for every row of ``P.X`` (``grad``: the
    attack objective's gradient at ``P.X`` if already known)."""
    if grad is None:
        grad = _chunked_loss_and_grad(P, P.X, P.Y)[1]
    return project(P.X + ascent_step(grad, eps, norm), P.X, eps, norm, box)


def fgsm_losses(P: Problem, eps: float, norm: float, box=None) -> torch.Tensor:
    """Per-sample ``max(l(x), l(x_fgsm))``: a lower bound on the inner maximum."""
    clean, grad = _chunked_loss_and_grad(P, P.X, P.Y)
    return torch.maximum(clean, _chunked_losses(P, fgsm_inputs(P, eps, norm, box, grad=grad), P.Y))


def _random_in_ball(m: int, d: int, eps: float, norm: float, generator: torch.Generator) -> torch.Tensor:
    if norm == math.inf:
        return (2 * torch.rand(m, d, generator=generator, dtype=DTYPE) - 1) * eps
    direction = torch.randn(m, d, generator=generator, dtype=DTYPE)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp(min=1e-300)
    radius = eps * torch.rand(m, 1, generator=generator, dtype=DTYPE) ** (1.0 / d)
    return direction * radius


def check_pgd_options(steps=PGD_STEPS, restarts=PGD_RESTARTS, step_size=None, fgsm_start=True, generator=None,
                      box=None, *, prefix: str = "") -> tuple[int, int, float | None]:
    """PGD's options checked (``box`` is checked against X by ``check_box``); ``prefix`` names the dict they came
    in (e.g. ``"pgd"``). Returns ``(steps, restarts, step_size)``."""
    try:
        steps = check_scalar(steps, "steps", int, min_val=0, max_val=MAX_PGD_STEPS)
        restarts = check_scalar(restarts, "restarts", int, min_val=0, max_val=MAX_PGD_STEPS)
        if steps * (restarts + 1) > MAX_PGD_STEPS:
            raise ValueError(f"steps × (restarts + 1) = {steps} × {restarts + 1} exceeds {MAX_PGD_STEPS} gradient "
                             f"steps (MAX_PGD_STEPS)")
        step_size = None if step_size is None else check_nonnegative(step_size, "step_size")
        check_scalar(fgsm_start, "fgsm_start", bool)
        check_torch_generator(generator)
    except (TypeError, ValueError) as exc:
        if prefix:
            raise type(exc)(f"{prefix}: {exc}") from None
        raise
    return steps, restarts, step_size


def pgd_losses(P: Problem, eps: float, norm: float, *, steps: int = PGD_STEPS, restarts: int = PGD_RESTARTS,
               step_size: float | None = None, box=None, generator: torch.Generator | None = None,
               fgsm_start: bool = True, return_inputs: bool = False):
    """Per-sample best loss found by PGD (and optionally the inputs achieving it): a lower bound.

    Starts: the clean point (always: plain PGD), the FGSM point (if ``fgsm_start``) and
    ``restarts`` uniform points of the ball drawn from ``generator`` (default: a fresh
    ``torch.Generator`` seeded 0, so results are deterministic). The best iterate per sample over
    all starts is kept, so the result is ≥ the clean loss, ≥ FGSM (with ``fgsm_start``) and ≥ plain
    PGD, sample by sample. It can miss maxima in flat regions (module docstring).
    """
    steps, restarts, step_size = check_pgd_options(steps, restarts, step_size, fgsm_start, generator)
    alpha = PGD_STEP_FACTOR * eps / max(steps, 1) if step_size is None else step_size
    gen = check_torch_generator(generator)
    X0, Y0, n = P.X, P.Y, P.n
    # One forward/backward at the clean point gives the clean loss, the FGSM direction and the first
    # step of the start from the clean point.
    clean, grad0 = _chunked_loss_and_grad(P, X0, Y0)
    starts = [X0]  # plain PGD from the clean point: the result is never below it
    if fgsm_start:
        starts.append(fgsm_inputs(P, eps, norm, box, grad=grad0))
    for _ in range(restarts):
        noise = _random_in_ball(n, P.d, eps, norm, gen).to(P.device)
        starts.append(project(X0 + noise, X0, eps, norm, box))
    # Every start steps at once, as one stacked batch (fewer, larger passes). Each start keeps its
    # first highest-loss iterate; combining them in start order with a strict ">" picks the same
    # point as scanning every iterate of every start in turn.
    S = len(starts)
    Z, Xs, Ys = torch.cat(starts), X0.repeat(S, 1), Y0.repeat(S, 1)
    best_s = torch.full((S * n,), -math.inf, dtype=clean.dtype, device=clean.device)
    best_zs = Z.clone()
    for k in range(steps + 1):
        if k == steps:
            vals = _chunked_losses(P, Z, Ys)
        elif k == 0:
            vals_rest, grad_rest = _chunked_loss_and_grad(P, Z[n:], Ys[n:])
            vals, grad = torch.cat([clean, vals_rest]), torch.cat([grad0, grad_rest])
        else:
            vals, grad = _chunked_loss_and_grad(P, Z, Ys)
        better = vals > best_s
        best_s = torch.where(better, vals, best_s)
        best_zs = torch.where(better[:, None], Z, best_zs)
        if k == steps:
            break
        Z = project(Z + ascent_step(grad, alpha, norm), Xs, eps, norm, box)
    best, best_x = clean, X0.clone()
    for s in range(S):
        vals, Zb = best_s[s * n:(s + 1) * n], best_zs[s * n:(s + 1) * n]
        better = vals > best
        best = torch.where(better, vals, best)
        best_x = torch.where(better[:, None], Zb, best_x)
    return (best, best_x) if return_inputs else best
