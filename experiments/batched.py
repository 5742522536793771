"""Many small models trained at once: an ensemble of configurations in one set of kernels (docs/theory.md §6).

The figure experiments train dozens of small networks that differ only in seed, α, method or ``n``.
:func:`train_many` stacks the parameters of every configuration of a group
(``torch.func.stack_module_state``) and runs the forward and backward passes of all of them as one
``torch.func.vmap`` over ``torch.func.functional_call``; the optimiser steps the stacked tensors
(SGD/Adam act elementwise, so a stacked step is each model's own step). The data of every model stay
on the device, stacked ``(M, n, d)``.

Each configuration keeps its own randomness exactly as :func:`experiments.training.train` draws it:
initialisation from ``build_model(seed)``, one CPU ``torch.Generator(seed)`` for the epoch order and
the partner permutations (in the same interleaving), and ``numpy.random.default_rng([seed, 1])`` for
λ. The draws of a whole epoch are made on the host before the epoch and copied once, so the step
loop issues no host synchronisation (on CUDA nothing waits for the device until the histories are
read at the end). A standard-training model in a group with Mixup models trains with ``λ = 1`` and
the identity partner, which is exactly its unmixed loss. Results agree with training each
configuration alone up to the rounding of batched matrix products (tests/experiments/test_batched.py).

Per-epoch theory measurements (``config.measure``) are taken on each model's own copy of its
parameters at the measured epochs (one host synchronisation per measured epoch, none per step).
Models with BatchNorm (``wrn16_8``) are not batched: :func:`train_many` trains them one by one with
:func:`experiments.training.train`.
"""
from __future__ import annotations

import copy
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from .datasets import Dataset, load_dataset
from .devices import resolve_device
from .nets import split_at_hidden
from .training import (DTYPES, EVAL_BATCH, MANIFOLD_LAYER, TrainConfig, TrainResult, _deterministic,
                       batch_bounds, build_run, train)

BATCHABLE_MODELS = ("logistic", "mlp", "tanh_mlp", "cnn")
MAX_GROUP = 256
"""At most this many configurations share one stacked ensemble (bounds memory)."""


def group_key(config: TrainConfig) -> tuple | None:
    """Configurations with equal keys can be trained as one ensemble; ``None``: train alone.

    Everything that fixes the shapes, the optimiser's hyperparameters or the measurement schedule
    enters the key; seed, α, β and the choice between standard and input Mixup do not (manifold Mixup mixes elsewhere and
    forms its own groups)."""
    if config.model not in BATCHABLE_MODELS:
        return None
    return (config.dataset, config.dataset_kwargs, config.n_train, config.model, tuple(config.hidden),
            config.bias, config.dtype, config.epochs, config.batch_size, config.optimizer, config.lr,
            config.momentum, config.weight_decay, config.measure_every, tuple(config.measure),
            config.method == "manifold", config.device)


def plan_groups(configs: list[TrainConfig], max_group: int = MAX_GROUP) -> list[list[int]]:
    """Indices of ``configs`` split into ensembles (equal :func:`group_key`, at most ``max_group``
    each); an unbatchable configuration is a group of its own. Order within a group follows ``configs``."""
    if isinstance(max_group, bool) or not isinstance(max_group, int) or max_group < 1:
        raise ValueError(f"max_group must be an integer >= 1, got {max_group!r}")
    groups: dict = defaultdict(list)
    alone = []
    for i, c in enumerate(configs):
        key = group_key(c)
        (alone.append([i]) if key is None else groups[key].append(i))
    out = []
    for members in groups.values():
        out.extend(members[k:k + max_group] for k in range(0, len(members), max_group))
    return out + alone


def train_many(configs: list[TrainConfig], *, datasets: list[Dataset] | None = None,
               max_group: int = MAX_GROUP, compile: bool = False) -> list[TrainResult]:
    """One :class:`~experiments.training.TrainResult` per configuration, in order, each equal (to
    float rounding) to ``train(config)``; batchable configurations are trained as ensembles.
    ``compile=True`` wraps each ensemble's forward pass in ``torch.compile`` (worth it on a GPU for
    long runs; it needs a working compiler tool chain)."""
    configs = [c.validate() for c in configs]
    if datasets is not None and len(datasets) != len(configs):
        raise ValueError(f"datasets must have one entry per config ({len(configs)}), got {len(datasets)}")
    results: list[TrainResult | None] = [None] * len(configs)
    for members in plan_groups(configs, max_group):
        given = None if datasets is None else [datasets[i] for i in members]
        if len(members) == 1 and group_key(configs[members[0]]) is None:
            results[members[0]] = train(configs[members[0]], dataset=given[0] if given else None)
            continue
        for i, res in zip(members, _train_group([configs[i] for i in members], given, compile)):
            results[i] = res
    return results


# ----------------------------------------------------------------------------- one ensemble

def _load(config: TrainConfig) -> Dataset:
    return load_dataset(config.dataset, n=config.n_train, seed=config.seed, **dict(config.dataset_kwargs))


def _draws(configs, gens, rngs, n: int, bounds) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One epoch's random draws, in :func:`~experiments.training.train`'s order: per model the epoch
    order ``(M, n)``, the partner permutations ``(batches, M, B)`` (padded; identity for standard
    training) and λ ``(batches, M)`` (1 for standard training)."""
    m, width = len(configs), max(b1 - b0 for b0, b1 in bounds)
    order = torch.empty(m, n, dtype=torch.int64)
    perms = torch.arange(width).repeat(len(bounds), m, 1)
    lams = torch.ones(len(bounds), m, dtype=torch.float64)
    for j, (c, gen, rng) in enumerate(zip(configs, gens, rngs)):
        order[j] = torch.randperm(n, generator=gen)
        if c.method == "standard":
            continue
        beta = c.alpha if c.beta is None else c.beta
        for b, (b0, b1) in enumerate(bounds):
            lams[b, j] = float(rng.beta(c.alpha, beta))
            perms[b, j, :b1 - b0] = torch.randperm(b1 - b0, generator=gen)
    return order, perms, lams


def _stacked_loss(logits: torch.Tensor, target: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-model mean task loss ``(M,)`` of logits ``(M, B, out)`` against targets ``(M, B[, K])``."""
    if n_classes == 2:
        return F.binary_cross_entropy_with_logits(logits.squeeze(-1), target, reduction="none").mean(1)
    m, b, k = logits.shape
    return F.cross_entropy(logits.reshape(m * b, k), target.reshape(m * b, k), reduction="none").view(m, b).mean(1)


def _eval_sums(forward, params, X: torch.Tensor, y: torch.Tensor, n_classes: int, dtype) -> torch.Tensor:
    """Summed loss and correct count per model, ``(2, M)`` float64 on the device (no host sync)."""
    m, n = y.shape
    out = torch.zeros(2, m, dtype=torch.float64, device=y.device)
    rows = max(1, EVAL_BATCH // max(1, m))
    for i in range(0, n, rows):
        xb, yb = X[:, i:i + rows], y[:, i:i + rows]
        logits = forward(params, xb)
        if n_classes == 2:
            z = logits.squeeze(-1)
            out[0] += F.binary_cross_entropy_with_logits(z, yb.to(dtype), reduction="none").double().sum(1)
            out[1] += ((z > 0).long() == yb).double().sum(1)
        else:
            b = yb.shape[1]
            ce = F.cross_entropy(logits.reshape(m * b, -1), yb.reshape(-1), reduction="none").view(m, b)
            out[0] += ce.double().sum(1)
            out[1] += (logits.argmax(-1) == yb).double().sum(1)
    return out


_ACTIVATIONS = {torch.nn.ReLU: torch.relu, torch.nn.Tanh: torch.tanh}


def _dense_ops(base) -> list | None:
    """The layers of an MLP-like ``Sequential`` (Linear and ReLU/Tanh only) as ``(kind, names)``;
    ``None`` for anything else."""
    ops = []
    for name, layer in base.named_children():
        if isinstance(layer, torch.nn.Linear):
            ops.append(("linear", f"{name}.weight", f"{name}.bias" if layer.bias is not None else None))
        elif type(layer) in _ACTIVATIONS:
            ops.append(("act", _ACTIVATIONS[type(layer)], None))
        else:
            return None
    return ops


def _functional(base, names: list[str]):
    """``forward(params, x)`` of the stacked ensemble, ``x`` of shape ``(M, B, d)``.

    MLPs and linear models run as batched matrix products (``baddbmm``: one kernel per layer for all
    models); other models as ``vmap`` of ``functional_call`` over the models. The explicit products
    are hand-written because ``vmap`` of ``nn.Linear`` with per-model weights was ~20x slower on the
    CPU (measured on 10 MLPs 64-128-128-10, batch 32)."""
    ops = _dense_ops(base)
    if ops is not None:
        def dense(p, x):
            for kind, a, b in ops:
                if kind == "act":
                    x = a(x)
                elif b is None:
                    x = torch.bmm(x, p[a].transpose(1, 2))
                else:
                    x = torch.baddbmm(p[b].unsqueeze(1), x, p[a].transpose(1, 2))
            return x

        return dense

    def one(p, x):
        return torch.func.functional_call(base, {k: p[k] for k in names}, (x,))

    return torch.func.vmap(one)


def _optimizer(config: TrainConfig, params: list[torch.Tensor]):
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _train_group(configs: list[TrainConfig], datasets: list[Dataset] | None,
                 compile: bool = False) -> list[TrainResult]:
    first = configs[0]
    device = resolve_device(first.device)
    dtype = DTYPES[first.dtype]
    datasets = datasets or [_load(c) for c in configs]
    shapes = {(d.X_train.shape, d.X_test.shape, d.n_classes) for d in datasets}
    if len(shapes) > 1:  # e.g. n_train=None on data whose size depends on the seed: split by shape
        by_shape: dict = defaultdict(list)
        for i, d in enumerate(datasets):
            by_shape[(d.X_train.shape, d.X_test.shape, d.n_classes)].append(i)
        out: list = [None] * len(configs)
        for idx in by_shape.values():
            for i, r in zip(idx, _train_group([configs[i] for i in idx], [datasets[i] for i in idx], compile)):
                out[i] = r
        return out
    models = [build_run(c, device, d)[1] for c, d in zip(configs, datasets)]
    k = datasets[0].n_classes
    m = len(configs)
    pin = device.type == "cuda"  # page-locked host tensors: the per-epoch copies stay asynchronous
    Xtr = torch.as_tensor(np.stack([d.X_train for d in datasets]), dtype=dtype).to(device)
    ytr = torch.as_tensor(np.stack([d.y_train for d in datasets]), dtype=torch.int64).to(device)
    Xte = torch.as_tensor(np.stack([d.X_test for d in datasets]), dtype=dtype).to(device)
    yte = torch.as_tensor(np.stack([d.y_test for d in datasets]), dtype=torch.int64).to(device)
    Ttr = ytr.to(dtype) if k == 2 else F.one_hot(ytr, k).to(dtype)
    params, _ = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    forward = _functional(base, list(params))
    if compile:
        forward = torch.compile(forward, dynamic=False)
    manifold = first.method == "manifold"
    if manifold:
        head, tail = split_at_hidden(base, MANIFOLD_LAYER)
        head_names = [n for n, _ in head.named_parameters()]
        tail_names = [n for n, _ in tail.named_parameters()]
        f_head, f_tail = _functional(head, head_names), _functional(tail, tail_names)
    opt = _optimizer(first, list(params.values()))
    gens = [torch.Generator().manual_seed(c.seed) for c in configs]
    rngs = [np.random.default_rng([c.seed, 1]) for c in configs]
    n = Xtr.shape[1]
    bounds = batch_bounds(n, first.batch_size)
    rows_of = torch.arange(m, device=device)[:, None]
    records, start = [], time.perf_counter()
    with _deterministic(device):
        for epoch in range(1, first.epochs + 1):
            order, perms, lams = (t.pin_memory().to(device, non_blocking=True) if pin else t
                                  for t in _draws(configs, gens, rngs, n, bounds))
            lam_w = lams.to(dtype)[..., None, None]
            lam_c = (1 - lams).to(dtype)[..., None, None]
            objective = torch.zeros(m, dtype=torch.float64, device=device)
            for b, (b0, b1) in enumerate(bounds):
                idx = order[:, b0:b1]
                xb, tb = Xtr[rows_of, idx], Ttr[rows_of, idx]
                perm = perms[b, :, :b1 - b0]
                lw, lc = lam_w[b], lam_c[b]
                tmix = lw.view(m, *[1] * (tb.dim() - 1)) * tb + lc.view(m, *[1] * (tb.dim() - 1)) * tb[rows_of, perm]
                if manifold:
                    hb = f_head({n_: params[n_] for n_ in head_names}, xb)
                    hmix = lw.view(m, *[1] * (hb.dim() - 1)) * hb + lc.view(m, *[1] * (hb.dim() - 1)) * hb[rows_of, perm]
                    logits = f_tail({n_: params[n_] for n_ in tail_names}, hmix)
                else:
                    logits = forward(params, lw * xb + lc * xb[rows_of, perm])
                loss = _stacked_loss(logits, tmix, k)
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
                objective += loss.detach().double() * (b1 - b0)
            if epoch % first.measure_every == 0 or epoch == first.epochs:
                with torch.no_grad():
                    record = torch.stack([objective / n, *_eval_sums(forward, params, Xtr, ytr, k, dtype) / n,
                                          *_eval_sums(forward, params, Xte, yte, k, dtype) / Xte.shape[1]])
                extra = _measured(configs, models, datasets, params) if first.measure else None
                records.append((epoch, record, time.perf_counter() - start, extra))
    seconds = time.perf_counter() - start
    table = torch.stack([r[1] for r in records]).cpu().numpy() if records else np.zeros((0, 5, m))
    _unstack(params, models)
    results = []
    for j, (c, d, model) in enumerate(zip(configs, datasets, models)):
        history = [{"epoch": e, "train_objective": float(table[r, 0, j]), "train_loss": float(table[r, 1, j]),
                    "train_acc": float(table[r, 2, j]), "test_loss": float(table[r, 3, j]),
                    "test_acc": float(table[r, 4, j]), **(extra[j] if extra else {}), "seconds": s}
                   for r, (e, _, s, extra) in enumerate(records)]
        model.eval()
        results.append(TrainResult(c, history, model, d, seconds / m, str(device)))
    return results


@torch.no_grad()
def _unstack(params: dict, models: list) -> None:
    """Copies each model's slice of the stacked parameters into the model."""
    for name, stacked in params.items():
        for j, model in enumerate(models):
            model.get_parameter(name).copy_(stacked[j])


def _measured(configs, models, datasets, params) -> list[dict]:
    """The theory measurements of every model at this epoch (``experiments.measure.measure``)."""
    from .measure import measure

    _unstack(params, models)
    out = []
    for c, model, d in zip(configs, models, datasets):
        model.eval()
        out.append(measure(model, d, c.measure, c.alpha, c.beta, seed=c.seed))
    return out


def estimated_cost(config: TrainConfig) -> float:
    """A rough relative cost (samples processed × width) for scheduling the largest work first."""
    n = config.n_train or 1000
    width = sum(config.hidden) if config.model != "logistic" else 1
    return float(config.epochs) * n * max(width, 1)


__all__ = ["BATCHABLE_MODELS", "MAX_GROUP", "group_key", "plan_groups", "train_many", "estimated_cost"]
