"""Benchmark cases. Each runs in its own process (``benchmarks.run``) so that its peak memory can
be read from the kernel, and returns a JSON-serialisable dict with ``wall_s`` and ``cpu_s``.

Peak memory is the process's resident-set high-water mark (``VmHWM`` in ``/proc/self/status``),
reset just before the timed call (``/proc/self/clear_refs``, Linux ≥ 4.0), minus the resident set
at that moment: the memory the call itself added, torch's allocations included (``tracemalloc``
does not see them). Without ``/proc`` it falls back to ``resource.getrusage``'s lifetime peak.
"""
from __future__ import annotations

import time

import numpy as np
import torch

DTYPE = torch.float64
SEED = 0
SEPARATED_RTOL = 1e-12  # the separated method's default target (relative error of L_mix)
WARMUP = 16
"""Rows of a first, untimed call of the same function: lazy imports and one-off initialisation
(scipy, torch.func, the allocator) are not part of the cost against n and d."""


# ------------------------------------------------------------------------------ measurement

def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def timed(fn):
    """``(value, {"wall_s", "cpu_s", "peak_mib", "peak_kind"})`` for one call of ``fn``."""
    before = _status_kib("VmRSS")
    reset = before is not None and _reset_peak()
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if reset:
        peak, kind = (_status_kib("VmHWM") - before) / 1024, "added"
    else:
        import resource
        import sys

        scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2 ** 20, "process"
    return value, {"wall_s": wall, "cpu_s": cpu, "peak_mib": peak, "peak_kind": kind}


# ------------------------------------------------------------------------------------- data

def _data(n: int, d: int, seed: int = SEED):
    """Standard normal inputs; binary labels from a random linear teacher with 10% label noise."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=DTYPE)
    teacher = torch.randn(d, generator=g, dtype=DTYPE)
    y = (X @ teacher > 0).long()
    flip = torch.rand(n, generator=g) < 0.1
    return X, torch.where(flip, 1 - y, y)


def _linear(d: int):
    import theory

    g = torch.Generator().manual_seed(SEED + 1)
    return theory.linear_model(d, weight=torch.randn(d, generator=g, dtype=DTYPE) / d ** 0.5, intercept=0.1)


def _mlp(d: int, hidden: int, activation: str = "relu"):
    import theory

    g = torch.Generator().manual_seed(SEED + 2)
    if activation == "relu":
        return theory.relu_mlp(d, [hidden], generator=g)
    return theory.smooth_mlp(d, [hidden], activation=activation, generator=g)


# ------------------------------------------------------------------------------------ cases

def roofline(elements: int, chunk: int | None = None) -> dict:
    """A tight loop of ``torch.logaddexp(x, 0)`` (softplus, as the exact loss evaluates it) over
    ``elements`` float64 values, summed, in chunks with preallocated buffers of the exact loss's
    block size (``CHUNK_ELEMENTS``; one thread runs the same speed at 2¹⁶–2²² values)."""
    from theory import CHUNK_ELEMENTS

    chunk = chunk or CHUNK_ELEMENTS
    g = torch.Generator().manual_seed(SEED)
    src = torch.randn(chunk, generator=g, dtype=DTYPE) * 3
    dst = torch.empty_like(src)
    zero = torch.zeros((), dtype=DTYPE)
    full, rest = divmod(elements, chunk)

    def run():
        acc = torch.zeros((), dtype=DTYPE)
        for _ in range(full):
            torch.logaddexp(src, zero, out=dst)
            acc += dst.sum()
        if rest:
            acc += torch.logaddexp(src[:rest], zero).sum()
        return float(acc)

    _, t = timed(run)
    return {**t, "elements": elements}


def exact_linear(n: int, d: int = 10, nodes: int = 32, alpha: float = 1.0) -> dict:
    """Exact ``mixup_loss`` of a logistic-regression model: n² pairs × ``nodes`` softplus terms."""
    import theory

    X, y = _data(n, d)
    model = _linear(d)
    theory.mixup_loss(model, X[:WARMUP], y[:WARMUP], alpha, nodes=nodes, method="pairs")
    value, t = timed(lambda: theory.mixup_loss(model, X, y, alpha, nodes=nodes, method="pairs"))
    return {**t, "value": value, "work": n * n * nodes}


def _glm(n: int, d: int, margin: float):
    """Data of ``_data`` and a logistic model whose margins have standard deviation ``margin``."""
    import theory

    X, y = _data(n, d)
    g = torch.Generator().manual_seed(SEED + 1)
    w = torch.randn(d, generator=g, dtype=DTYPE)
    return theory.linear_model(d, weight=w * margin / w.norm(), intercept=0.1 * margin), X, y


def separated(n: int, d: int = 10, margin: float = 1.0, alpha: float = 1.0, beta: float | None = None) -> dict:
    """Linear-time exact ``mixup_loss`` of logistic regression (exact λ-expectation, rtol 1e-12):
    the first call (λ-rules built) and a second one (rules cached), and one gradient."""
    import theory

    model, X, y = _glm(n, d, margin)
    (value, bound), cold = timed(lambda: theory.mixup_loss_error(model, X, y, alpha, beta, method="separated"))
    _, warm = timed(lambda: theory.mixup_loss(model, X, y, alpha, beta, method="separated"))

    def gradient():
        model.zero_grad()
        theory.mixup_loss_separated(model, X, y, alpha, beta).backward()

    _, grad = timed(gradient)
    span = float((model(X).detach()).abs().max())
    return {**warm, "cold_wall_s": cold["wall_s"], "grad_wall_s": grad["wall_s"], "value": value,
            "bound_rel": bound / value, "max_margin": span, "work": n}


def separated_vs_pairs(n: int, d: int = 10, margin: float = 1.0, alpha: float = 1.0, beta: float | None = None,
                       draws: int = 2000) -> dict:
    """At one n: the separated value against the all-pairs quadrature (nodes doubled until 1e-12) and
    the permutation estimator with ``draws`` passes, whose cost for the separated method's accuracy
    (relative 1e-12) is extrapolated from its standard error (SE ∝ draws^−½)."""
    import theory

    model, X, y = _glm(n, d, margin)
    theory.mixup_loss(model, X, y, alpha, beta, method="separated")  # λ-rules cached, as in use
    sep, t_sep = timed(lambda: theory.mixup_loss(model, X, y, alpha, beta, method="separated"))
    (pairs, pairs_bound), t_pairs = timed(
        lambda: theory.mixup_loss_error(model, X, y, alpha, beta, method="pairs", rtol=1e-12))
    est, t_mc = timed(lambda: theory.mixup_loss_sampled(model, X, y, alpha, beta, draws=draws, generator=SEED))
    target = SEPARATED_RTOL * abs(pairs)
    draws_needed = draws * (est.stderr / target) ** 2
    return {**t_sep, "value": sep, "pairs": pairs, "pairs_wall_s": t_pairs["wall_s"],
            "rel_diff": abs(sep - pairs) / abs(pairs), "pairs_bound_rel": pairs_bound / abs(pairs),
            "mc_wall_s": t_mc["wall_s"], "mc_rel_se": est.stderr / abs(pairs),
            "mc_seconds_equal": t_mc["wall_s"] * draws_needed / draws, "work": n}


def mixup_minimiser(n: int, d: int = 10, alpha: float = 1.0) -> dict:
    """The exact Mixup minimiser of logistic regression by L-BFGS through the separated loss."""
    from experiments.claims.identity import mixup_fit_logistic

    _, X, y = _glm(n, d, 1.0)
    p, t = timed(lambda: mixup_fit_logistic(X, y, alpha))
    return {**t, "norm_theta": float(torch.as_tensor(p[:-1]).norm()), "work": n}


def exact_mlp(n: int, d: int, hidden: int = 256, shortcut: bool = True, nodes: int = 32,
              alpha: float = 1.0) -> dict:
    """Exact ``mixup_loss`` of a ReLU MLP d-hidden-1, mixing first-layer outputs or inputs."""
    import theory

    X, y = _data(n, d)
    model = _mlp(d, hidden)
    theory.mixup_loss(model, X[:WARMUP], y[:WARMUP], alpha, nodes=nodes, shortcut=shortcut)
    value, t = timed(lambda: theory.mixup_loss(model, X, y, alpha, nodes=nodes, shortcut=shortcut))
    return {**t, "value": value, "work": n * n * nodes}


def expansion(n: int, d: int, model: str = "relu", hidden: int = 256, alpha: float = 1.0) -> dict:
    """``mixup_expansion`` (L_std, R1, R2, R3) for a linear model or an MLP d-hidden-1."""
    import theory

    X, y = _data(n, d)
    net = _linear(d) if model == "linear" else _mlp(d, hidden, model)
    theory.mixup_expansion(net, X[:WARMUP], y[:WARMUP], alpha)
    e, t = timed(lambda: theory.mixup_expansion(net, X, y, alpha))
    return {**t, "value": e.approx, "r3": e.r3, "r3_method": e.r3_method}


def exact_kinks(n: int, d: int = 100, hidden: int = 256, alpha: float = 1.0, nodes: int = 64,
                widths: list[int] | None = None, seed: int = SEED) -> dict:
    """ReLU MLP: the kink-aware default (1e-12) against a fixed ``nodes`` rule, with the error of both
    relative to the kink-aware value and its error bound. ``widths`` (e.g. ``[64, 64]``) builds
    ``relu_mlp(d, widths, generator=manual_seed(0))`` on standard-normal X drawn with ``seed`` (the
    issue's 10-64-64-1 case); otherwise the MLP d-hidden-1 on the teacher data."""
    import theory

    if widths is None:
        X, y = _data(n, d)
        model = _mlp(d, hidden)
    else:
        g = torch.Generator().manual_seed(seed)
        X = torch.randn(n, d, generator=g, dtype=DTYPE)
        y = (torch.rand(n, generator=g) < 0.5).long()
        model = theory.relu_mlp(d, list(widths), generator=torch.Generator().manual_seed(0))
    theory.mixup_loss(model, X[:WARMUP], y[:WARMUP], alpha)
    theory.mixup_loss(model, X[:WARMUP], y[:WARMUP], alpha, nodes=nodes)
    (value, bound), t_kinks = timed(lambda: theory.mixup_loss_error(model, X, y, alpha))
    fixed, t_nodes = timed(lambda: theory.mixup_loss(model, X, y, alpha, nodes=nodes))
    return {**t_kinks, "value": value, "bound_rel": bound / value, "nodes_wall_s": t_nodes["wall_s"],
            "nodes_cpu_s": t_nodes["cpu_s"], "nodes_rel_error": abs(fixed - value) / value,
            "ratio": t_kinks["wall_s"] / t_nodes["wall_s"], "cpu_ratio": t_kinks["cpu_s"] / t_nodes["cpu_s"],
            "work": n * n}


def certified(n: int, d: int = 64, hidden: int = 64, bound: str = "crown", norm: float = 2.0, eps: float = 0.5) -> dict:
    """Certified adversarial loss (``bound`` CROWN or α-CROWN) of a ReLU MLP d-hidden-hidden/2-1."""
    import theory

    X, y = _data(n, d)
    g = torch.Generator().manual_seed(SEED + 3)
    model = theory.relu_mlp(d, [hidden, hidden // 2], generator=g)
    theory.adversarial_loss(model, X[:WARMUP], y[:WARMUP], eps, norm=norm, method="certified", bound=bound)
    value, t = timed(lambda: theory.adversarial_loss(model, X, y, eps, norm=norm, method="certified", bound=bound))
    return {**t, "value": value}


def attack(n: int, d: int = 40, hidden: int = 128, classes: int = 10, norm: float = 2.0, eps: float = 1.0,
           steps: int = 10, restarts: int = 1) -> dict:
    """PGD of ``theory.adversarial_examples`` (float64; starts: clean point, FGSM point, ``restarts``
    random points) on a ReLU MLP d-hidden-hidden-classes with softmax, against the textbook
    one-start attack of ``experiments.measure`` on a float32 copy (the robust_accuracy figure's settings)."""
    import copy

    import theory
    from experiments.measure import _local_attack

    g = torch.Generator().manual_seed(SEED + 4)
    model = theory.relu_mlp(d, [hidden, hidden], out=classes, generator=g)
    X = torch.randn(n, d, generator=g, dtype=DTYPE)
    y = torch.randint(0, classes, (n,), generator=g)
    pgd = dict(loss="softmax", norm=norm, method="pgd", steps=steps, restarts=restarts)
    theory.adversarial_examples(model, X[:WARMUP], y[:WARMUP], eps, **pgd)
    _, t = timed(lambda: theory.adversarial_examples(model, X, y, eps, **pgd))
    model32, X32 = copy.deepcopy(model).float().requires_grad_(False), X.float()
    _local_attack(model32, X32[:WARMUP], y[:WARMUP], eps, norm, "pgd", steps, None, torch.Generator().manual_seed(0))
    _, t_local = timed(lambda: _local_attack(model32, X32, y, eps, norm, "pgd", steps, None,
                                             torch.Generator().manual_seed(0)))
    return {**t, "local_wall_s": t_local["wall_s"], "local_cpu_s": t_local["cpu_s"],
            "passes": (2 + restarts) * steps + 1}


CASES = {"attack": attack,
         "certified": certified, "roofline": roofline, "exact_kinks": exact_kinks, "exact_linear": exact_linear, "exact_mlp": exact_mlp,
         "expansion": expansion, "separated": separated, "separated_vs_pairs": separated_vs_pairs,
         "mixup_minimiser": mixup_minimiser}
