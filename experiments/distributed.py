"""Past one machine: the exact Mixup loss sharded over ``torch.distributed`` ranks, and data-parallel
(DDP) standard/Mixup training. Launch with ``torchrun`` (README, "Multi-GPU and multi-node").

- :func:`sharded_mixup_loss`: ``L_mix`` of docs/theory.md §2 with the n ordered-pair rows split over the
  ranks of an initialised process group; each rank sums its rows' ``Σ_j E_λ l`` and one
  ``all_reduce(SUM)`` adds the shares. For a model affine end-to-end each rank reads only its own
  rows of the data (the logits are all-gathered); otherwise every rank reads all of it. Without a
  process group it is ``theory.mixup_loss``.
- :func:`ddp_train`: the minibatch training of :mod:`experiments.training` wrapped in
  ``DistributedDataParallel``: the global batch split over the ranks, Mixup partners drawn from the
  whole (all-gathered) batch, so the weights do not depend on the number of ranks; checkpoints
  written atomically and resumed (``--checkpoint DIR``).
- ``python -m experiments.distributed loss|train ...``: entry points for ``torchrun``; ``loss --weights
  FILE`` evaluates a saved ``state_dict``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from theory.validation import check_count, check_scalar
from theory import CHUNK_ELEMENTS, is_affine, is_piecewise_linear, mixup_loss


def is_distributed() -> bool:
    """True inside an initialised ``torch.distributed`` process group."""
    return dist.is_available() and dist.is_initialized()


def shard_rows(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows ``[r0, r1)`` of rank ``rank`` out of ``world``: contiguous, sizes differing by at most one.

    Every row costs the same (n partners × the λ-rule), so equal row counts balance the work."""
    n, world = check_count(n, "n"), check_count(world, "world")
    rank = check_scalar(rank, "rank", int, min_val=0, max_val=world - 1)
    base, extra = divmod(n, world)
    r0 = rank * base + min(rank, extra)
    return r0, r0 + base + (rank < extra)


def _collective_device(device: torch.device, group=None) -> torch.device:
    """Where a collective's tensors must live: the CPU for gloo; for nccl the tensor's CUDA device, or
    this rank's current one for a CPU tensor (nccl reduces only CUDA tensors); else the tensor's."""
    backend = dist.get_backend(group)
    if backend == "gloo":
        return torch.device("cpu")
    if backend == "nccl" and device.type != "cuda":
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _all_reduce_sum(value: torch.Tensor, group=None) -> torch.Tensor:
    """``all_reduce(SUM)`` of a scalar tensor; gloo gets a CPU copy, other backends the tensor's device."""
    buf = value.detach().reshape(1).clone().to(_collective_device(value.device, group))
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    return buf[0].cpu()


def all_gather_rows(part: torch.Tensor, n: int, group=None) -> torch.Tensor:
    """The ``(n, …)`` tensor whose rows ``shard_rows(n, r, world)`` are rank ``r``'s ``part``.

    Shards differ in size by at most one row, so each is padded to ``⌈n/world⌉`` rows for
    ``all_gather`` and trimmed after. Returned on ``part``'s device."""
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    size = -(-n // world)
    dev = _collective_device(part.device, group)
    buf = torch.zeros((size, *part.shape[1:]), dtype=part.dtype, device=dev)
    buf[:part.shape[0]] = part.to(dev)
    pieces = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(pieces, buf, group=group)
    rows = [shard_rows(n, r, world) for r in range(world)]
    return torch.cat([p[:r1 - r0] for p, (r0, r1) in zip(pieces, rows)]).to(part.device)


def _affine_head(model) -> int:
    """How many leading layers of an ``nn.Sequential`` are affine (Linear, Conv, Flatten, ...); 0 otherwise."""
    if not isinstance(model, torch.nn.Sequential):
        return 0
    k = 0
    while k < len(model) and is_affine(torch.nn.Sequential(model[k])):
        k += 1
    return k


def _partner_head(model, sample_shape, shortcut: bool = True) -> int:
    """``k > 0`` when the partners' rows can be replaced by the outputs of ``model[:k]``, the leading
    affine block (the whole model when it is affine end-to-end), because those are no wider than
    a sample: mixing commutes with an affine map, so ``model[k:]`` on mixed block outputs is the model
    on mixed inputs. 0 when there is no such block, it widens the data, or ``shortcut`` is off."""
    k = _affine_head(model) if shortcut else 0
    if k == 0:
        return 0
    head = copy.deepcopy(model[:k]).to(device="meta", dtype=torch.float64)  # shapes only: no memory, no work
    out = head(torch.empty((1, *sample_shape), device="meta", dtype=torch.float64))
    return k if out[0].numel() <= int(np.prod(sample_shape)) else 0


def reads_own_rows(model, sample_shape, shortcut: bool = True) -> bool:
    """Whether :func:`sharded_mixup_loss` reads only each rank's own rows of the data for this model.

    True for a ``nn.Sequential`` whose leading affine block (Linear/Conv/Flatten layers, or the whole
    model if it is affine end-to-end) maps a sample of shape ``sample_shape`` to no more numbers
    than the sample has: each rank then evaluates that block on its own rows and the ranks exchange
    its outputs (``n ×`` width numbers, exact: mixing commutes with an affine map), e.g. the ``n × K``
    logits of logistic or softmax regression, or the first hidden layer of an MLP narrower than its
    input. False otherwise (every rank reads every row), and with ``shortcut=False``.

    Parameters
    ----------
    model : nn.Module
        The model given to ``sharded_mixup_loss``.
    sample_shape : tuple of int
        One sample's shape, ``X.shape[1:]``.
    shortcut : bool
        As in ``theory.mixup_loss``.

    Returns
    -------
    bool

    Examples
    --------
    >>> import theory
    >>> reads_own_rows(theory.linear_model(10), (10,)), reads_own_rows(theory.relu_mlp(10, [64]), (10,))
    (True, False)
    >>> reads_own_rows(theory.relu_mlp(784, [256]), (784,))
    True
    """
    return _partner_head(model, tuple(sample_shape), shortcut) > 0


def _as_tensor(rows) -> torch.Tensor:
    return rows if isinstance(rows, torch.Tensor) else torch.as_tensor(np.asarray(rows))


def _logit_model(device: torch.device) -> torch.nn.Module:
    """``f(F) = F``: the model of the gathered logits (affine, so ``mixup_loss`` takes the same paths),
    with an empty buffer that places the computation on ``device``."""
    model = torch.nn.Sequential(torch.nn.Identity())
    model.register_buffer("device_anchor", torch.empty(0, dtype=torch.float64, device=device))
    return model


def sharded_mixup_loss(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
                       rtol: float | None = None, method: str = "auto", shortcut: bool = True,
                       chunk_elements: int = CHUNK_ELEMENTS, group=None) -> float:
    """Exact ``L_mix`` (docs/theory.md §2, as ``theory.mixup_loss``) with the pair rows sharded over ranks.

    Rank ``r`` of ``world`` sums the ordered pairs ``(i, j)`` with ``i`` in ``shard_rows(n, r, world)``
    over every partner ``j`` and the whole λ-integral; ``all_reduce(SUM)`` adds the shares, so every
    rank returns the same value, equal to the single-process ``theory.mixup_loss`` up to rounding
    (the order of the sum differs; tested to 1e-12 relative).

    What each rank reads of ``X`` and ``y`` (any object with ``len`` and row slicing: a tensor, an
    array, a ``numpy.memmap`` that reads only the rows indexed):

    - only its rows ``X[r0:r1]``, ``y[r0:r1]`` when :func:`reads_own_rows` (a model affine end-to-end,
      or a ``Sequential`` whose leading affine block is no wider than a sample). It evaluates that
      block on its rows, ``all_gather`` hands every rank the block's outputs for all ``n`` rows and the
      labels (the partner index runs over all of them), and the rest of the model runs on those:
      for logistic regression the ``n × 1`` logits, and (``method="auto"``/``"separated"``) the
      linear-time method (docs/theory.md §2.6).
    - otherwise its rows for the first index and every row for the partner index, i.e. all of
      ``X`` and ``y``.

    Either way the work, ``n²Q/world`` loss evaluations per rank on the all-pairs paths, is divided.

    Parameters
    ----------
    model, X, y, alpha, beta, loss, nodes, rtol, method, shortcut, chunk_elements
        As in ``theory.mixup_loss``; the same on every rank of ``group``.
    group : ProcessGroup, optional
        The ranks that share the sum (default: the whole world).

    Returns
    -------
    float
        ``L_mix`` on every rank. Outside an initialised process group: ``theory.mixup_loss``.

    Raises
    ------
    ValueError
        Invalid arguments, as ``theory.mixup_loss`` (checked on the gathered logits and labels, so
        every rank raises alike).
    """
    options = dict(loss=loss, nodes=nodes, rtol=rtol, method=method, shortcut=shortcut,
                   chunk_elements=chunk_elements)
    if not is_distributed():
        return mixup_loss(model, X, y, alpha, beta, **options)
    n = check_count(len(X), "n")
    rows = shard_rows(n, dist.get_rank(group), dist.get_world_size(group))
    r0, r1 = rows
    own = _as_tensor(X[r0:r1])  # the rank's own rows: needed in every case
    k = _partner_head(model, tuple(own.shape[1:]), shortcut)
    if k:
        device = next((t.device for t in model.parameters()), torch.device("cpu"))
        head = copy.deepcopy(model[:k]).to(torch.float64).eval()  # the caller's model is left as it was
        with torch.no_grad():
            U = head(own.to(device=device, dtype=torch.float64))
        ys = _as_tensor(y[r0:r1])
        ys = ys.to(torch.float64 if ys.is_floating_point() else torch.int64)
        U, Y = all_gather_rows(U, n, group), all_gather_rows(ys, n, group)
        tail = model[k:] if k < len(model) else _logit_model(U.device)
        args = (tail, U, Y)
    else:
        args = (model, X, y)

    def total(**override):
        part = mixup_loss(*args, alpha, beta, rows=rows, **{**options, **override})
        return float(_all_reduce_sum(torch.tensor(part, dtype=torch.float64), group))

    if nodes is None and (method == "pairs" or (method == "auto" and not is_piecewise_linear(model))):
        return _doubled_total(total, SMOOTH_RTOL if rtol is None else rtol)
    return total()


SMOOTH_RTOL = 1e-10
FIRST_NODES, MAX_NODES = 32, 1024
"""Node doubling of ``theory.mixup_loss`` (smooth models, ``method="pairs"``): default tolerance, first
and largest rule (the values of its docs and contract)."""


def _doubled_total(total, rtol: float) -> float:
    """Node doubling on the **summed** shares: Q(32), Q(64), … until ``|Q(q) − Q(q/2)| ≤ rtol·|Q(q)|``,
    the rule ``theory.mixup_loss`` applies to the whole sum, so the ranks stop at the node count one
    process would and the value is the single-process one. Doubling each rank's share alone would
    stop the ranks at different rules, and a share can converge later than the sum: with a λ-rule
    folded for α = β (exact only for the sum over all pairs), a tanh 4-2-1 net's shares (squared
    loss, α = 1.2, 23 rows in 3 shares) still moved by 1e-7 relative between 512 and 1024 nodes (an
    AccuracyWarning on every rank) while the sum's estimate was 7e-15."""
    import warnings

    from theory import AccuracyWarning

    q = FIRST_NODES
    prev = total(nodes=q, rtol=None)
    while True:
        q *= 2
        cur = total(nodes=q, rtol=None)
        err = abs(cur - prev) + 64 * float(np.finfo(np.float64).eps) * abs(cur)
        if err <= rtol * abs(cur) or 2 * q > MAX_NODES:
            break
        prev = cur
    if err > rtol * abs(cur):
        warnings.warn(f"sharded_mixup_loss: error estimate {err / max(abs(cur), 1e-300):.1e} (relative) above "
                      f"rtol = {rtol:g} at the largest rule ({q} nodes)", AccuracyWarning, stacklevel=3)
    return cur


# ------------------------------------------------------------------------------------- training

DDP_METHODS = ("standard", "mixup")


def _sharded_evaluate(model, X, y, n_classes: int, group=None) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over all of ``(X, y)``: each rank evaluates its rows, sums are all-reduced."""
    from .training import evaluate

    r0, r1 = shard_rows(X.shape[0], dist.get_rank(group), dist.get_world_size(group))
    loss, acc = evaluate(model, X[r0:r1], y[r0:r1], n_classes) if r1 > r0 else (0.0, 0.0)
    sums = torch.tensor([loss * (r1 - r0), acc * (r1 - r0)], dtype=torch.float64,
                        device=_collective_device(X.device, group))
    dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=group)
    return float(sums[0]) / X.shape[0], float(sums[1]) / X.shape[0]


CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
_RESUMABLE_CHANGES = ("epochs", "device")
"""Config fields a resumed run may change (more epochs, another device); every other field must match."""


def _config_fields(config) -> dict:
    import dataclasses

    return {k: v for k, v in dataclasses.asdict(config).items() if k not in _RESUMABLE_CHANGES}


def read_checkpoint(directory, config=None):
    """The checkpoint in ``directory`` (``None`` when there is none), checked against ``config``.

    Raises ``ValueError`` naming the file when it cannot be read, or when ``config`` differs from
    the checkpoint's in a field other than ``epochs`` and ``device``, or asks for fewer epochs
    than the checkpoint has done."""
    path = os.path.join(directory, CHECKPOINT_FILE)
    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain data only
    except Exception as exc:  # damaged or foreign files raise many types
        raise ValueError(f"checkpoint {path}: cannot be read ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {path}: not a checkpoint of this program (format {CHECKPOINT_FORMAT})")
    if config is not None:
        saved, now = state["config"], _config_fields(config)
        diff = [f"{k}: {saved.get(k)!r} in the checkpoint, {now[k]!r} now" for k in now if saved.get(k) != now[k]]
        if diff:
            raise ValueError(f"checkpoint {path} belongs to another run ({'; '.join(diff[:3])}); "
                             "use another --checkpoint folder")
        if state["epoch"] - (state["step"] == 0) > config.epochs:
            raise ValueError(f"checkpoint {path} has done {state['epoch'] - (state['step'] == 0)} epochs, "
                             f"more than epochs = {config.epochs}")
    return state


def _write_checkpoint(directory, state: dict) -> None:
    """``torch.save`` to a temporary file in ``directory``, flushed to disk, then ``os.replace``: a
    reader (or a run killed meanwhile) sees the old checkpoint or the new one, never a partial file."""
    import tempfile

    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, os.path.join(directory, CHECKPOINT_FILE))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _rng_states(shuffle_gen, lam_rng, device) -> dict:
    states = {"shuffle": shuffle_gen.get_state(), "lam": lam_rng.bit_generator.state,
              "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _set_rng_states(states, shuffle_gen, lam_rng, device) -> None:
    shuffle_gen.set_state(states["shuffle"])
    lam_rng.bit_generator.state = states["lam"]
    torch.set_rng_state(states["torch"])
    if device.type == "cuda" and "cuda" in states:
        torch.cuda.set_rng_state(states["cuda"], device)


def ddp_train(config, *, dataset=None, progress: bool = False, sync_batchnorm: bool = True,
              checkpoint=None, checkpoint_every: int | None = None, on_step=None) -> dict:
    """Data-parallel training of ``config`` (an ``experiments.training.TrainConfig``) inside an
    initialised process group, with the same result whatever the number of ranks.

    The run is ``experiments.training.train`` of the same config, with each step's work split over
    the ranks. Every rank draws the same random numbers, from the generators and in the order
    ``train`` uses: the epoch's order is ``torch.randperm(n)`` of a ``torch.Generator`` seeded with
    ``config.seed``; ``config.batch_size`` is the **global** batch (``batch_bounds``); under Mixup each
    batch draws one ``λ ~ Beta(α, β)`` (numpy ``default_rng([seed, 1])``) and one partner permutation
    of the whole global batch (the same torch generator). Rank ``r`` takes rows
    ``shard_rows(b, r, world)`` of the batch, **all-gathers** the batch's inputs and targets, mixes
    its rows with their partners wherever they are, and weights its summed loss by ``world / b``, so
    the gradient DDP averages is the global batch's mean-loss gradient. The weights therefore agree
    with one process and with any other number of ranks to float64 rounding (tested: 1 vs 2 ranks
    vs ``train``). Models with BatchNorm normalise over each rank's rows, so they agree only where
    ``SyncBatchNorm`` is used (``sync_batchnorm``, on CUDA).

    Parameters
    ----------
    config : TrainConfig
        ``method`` ``"standard"`` or ``"mixup"``.
    dataset : Dataset, optional
        The loaded dataset (default: loaded from ``config``).
    progress : bool
        A progress bar on rank 0.
    sync_batchnorm : bool
        Convert BatchNorm layers to ``SyncBatchNorm`` on CUDA.
    checkpoint : str or path, optional
        A folder. Rank 0 writes ``checkpoint.pt`` there (model ``state_dict``, optimizer, epoch and
        step, the partial epoch sums, the history so far, every random generator's state) atomically
        (temporary file, ``os.replace``) after every ``checkpoint_every`` steps and at the end of
        every epoch; all ranks wait until it is written. If the folder holds a checkpoint of the same
        config (``epochs`` and ``device`` may differ) training resumes from it, also on another
        number of ranks; the final weights equal those of an uninterrupted run.
    checkpoint_every : int, optional
        Steps between checkpoints (default: only at the end of each epoch).
    on_step : callable, optional
        ``on_step(epoch, step)`` after each optimizer step (and its checkpoint), ``step`` counted
        from 1 within the epoch.

    Returns
    -------
    dict
        ``{"config", "history", "seconds", "world_size", "model", "resumed_from"}``; the history
        (clean train/test loss and accuracy per epoch, evaluated sharded and all-reduced, and
        ``train_objective``, the epoch's mean minibatch loss) is the same on every rank, timings
        aside. ``resumed_from`` is ``(epoch, step)`` of the checkpoint resumed, else ``None``.

    Raises
    ------
    ValueError
        Outside a process group, for another method, or for a checkpoint of another config.
    """
    from torch.nn.parallel import DistributedDataParallel

    from .training import DTYPES, _deterministic, batch_bounds, build_run, soft_targets, task_loss

    if not is_distributed():
        raise ValueError("ddp_train needs an initialised torch.distributed process group (launch with torchrun)")
    config.validate()
    if config.method not in DDP_METHODS:
        raise ValueError(f"method must be one of {DDP_METHODS} for ddp_train, got {config.method!r}")
    if checkpoint_every is not None:
        checkpoint_every = check_count(checkpoint_every, "checkpoint_every")
    state = read_checkpoint(checkpoint, config) if checkpoint is not None else None
    rank, world = dist.get_rank(), dist.get_world_size()
    device = _rank_device(config.device)
    dtype = DTYPES[config.dtype]
    dataset, model = build_run(config, device, dataset)
    k = dataset.n_classes
    if sync_batchnorm and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    Xtr = torch.as_tensor(dataset.X_train, dtype=dtype, device=device)
    ytr = torch.as_tensor(dataset.y_train, dtype=torch.int64, device=device)
    Ttr = soft_targets(ytr, k, dtype)
    Xte = torch.as_tensor(dataset.X_test, dtype=dtype, device=device)
    yte = torch.as_tensor(dataset.y_test, dtype=torch.int64, device=device)
    n = Xtr.shape[0]
    bounds = batch_bounds(n, config.batch_size)
    shuffle_gen = torch.Generator().manual_seed(config.seed)  # as experiments.training.train
    lam_rng = np.random.default_rng([config.seed, 1])
    beta = config.alpha if config.beta is None else config.beta
    if state is not None:
        model.load_state_dict(state["model"])
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    opt = _optimizer(config, ddp)
    epoch, step, history, order, elapsed = 1, 0, [], None, 0.0
    partial = (0.0, 0)
    if state is not None:
        opt.load_state_dict(state["optimizer"])
        _set_rng_states(state["rng"], shuffle_gen, lam_rng, device)
        epoch, step, history, elapsed = state["epoch"], state["step"], state["history"], state["seconds"]
        order = None if state["order"] is None else state["order"].to(device)
        partial = state["partial"]
    resumed_from = None if state is None else (epoch, step)
    start = time.perf_counter() - elapsed

    def save(epoch, step, order, objective, seen):
        sums = _global_sums(objective, seen)
        if rank == 0:
            _write_checkpoint(checkpoint, {
                "format": CHECKPOINT_FORMAT, "config": _config_fields(config), "world_size": world,
                "epoch": epoch, "step": step, "order": None if order is None else order.cpu(),
                "partial": (float(sums[0]), int(sums[1])), "history": history,
                "seconds": time.perf_counter() - start, "model": model.state_dict(),
                "optimizer": opt.state_dict(), "rng": _rng_states(shuffle_gen, lam_rng, device)})
        dist.barrier()

    epochs = range(epoch, config.epochs + 1)
    if progress and rank == 0:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=f"ddp {config.method} {config.model} {dataset.name} x{world}")
    with _deterministic(device):
        for epoch in epochs:
            ddp.train()
            if order is None:
                order = torch.randperm(n, generator=shuffle_gen).to(device)
            first = rank == 0  # the checkpoint's partial sums are global: one rank adds them back
            objective = torch.full((), partial[0] if first else 0.0, dtype=torch.float64, device=device)
            seen = torch.full((), partial[1] if first else 0, dtype=torch.float64, device=device)
            for s in range(step, len(bounds)):
                b0, b1 = bounds[s]
                b = b1 - b0
                r0, r1 = shard_rows(b, rank, world)
                idx = order[b0 + r0:b0 + r1]
                xb, tb = Xtr[idx], Ttr[idx]
                if config.method == "standard":
                    local = task_loss(ddp(xb), tb, k, reduction="sum")
                else:
                    lam = float(lam_rng.beta(config.alpha, beta))
                    perm = torch.randperm(b, generator=shuffle_gen).to(device)
                    partner = perm[r0:r1]
                    x_all, t_all = all_gather_rows(xb, b), all_gather_rows(tb, b)
                    local = task_loss(ddp(lam * xb + (1 - lam) * x_all[partner]),
                                      lam * tb + (1 - lam) * t_all[partner], k, reduction="sum")
                opt.zero_grad(set_to_none=True)
                (local * (world / b)).backward()  # DDP averages over ranks: the global batch mean
                opt.step()
                objective += local.detach().double()
                seen += r1 - r0
                mid_epoch = s + 1 < len(bounds)  # the end of the epoch is saved below, with its history row
                if checkpoint is not None and checkpoint_every and (s + 1) % checkpoint_every == 0 and mid_epoch:
                    save(epoch, s + 1, order, objective, seen)
                if on_step is not None:
                    on_step(epoch, s + 1)
            step, order, partial = 0, None, (0.0, 0)
            sums = _global_sums(objective, seen)
            model.eval()
            row = {"epoch": epoch, "train_objective": float(sums[0] / sums[1])}
            row["train_loss"], row["train_acc"] = _sharded_evaluate(model, Xtr, ytr, k)
            row["test_loss"], row["test_acc"] = _sharded_evaluate(model, Xte, yte, k)
            row["seconds"] = time.perf_counter() - start
            history.append(row)
            if checkpoint is not None:
                save(epoch + 1, 0, None, torch.zeros((), dtype=torch.float64, device=device),
                     torch.zeros((), dtype=torch.float64, device=device))
    model.eval()
    return {"config": config, "history": history, "seconds": time.perf_counter() - start,
            "world_size": world, "model": model, "resumed_from": resumed_from}


def _global_sums(objective: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """``[Σ loss, Σ rows]`` over the ranks (one ``all_reduce``)."""
    sums = torch.stack([objective, seen]).to(_collective_device(objective.device))
    dist.all_reduce(sums, op=dist.ReduceOp.SUM)
    return sums


def _optimizer(config, module):
    if config.optimizer == "sgd":
        return torch.optim.SGD(module.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _rank_device(name: str) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` for ``auto``/``cuda`` when CUDA is present, else CPU."""
    from .devices import resolve_device

    device = resolve_device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


# ---------------------------------------------------------------------------------- entry point

def _init_from_env(device: str) -> bool:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...);
    False when not launched by torchrun (single process)."""
    if is_distributed():
        return False
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    backend = "nccl" if _rank_device(device).type == "cuda" and dist.is_nccl_available() else "gloo"
    dist.init_process_group(backend, timeout=timedelta(minutes=30))
    return True


LOSSES = ("logistic", "softmax", "squared")
MIXUP_METHODS = ("auto", "pairs", "kinks", "separated")


def _parser() -> argparse.ArgumentParser:
    from ._usage import OneLineParser

    p = OneLineParser(prog="python -m experiments.distributed", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    lo = sub.add_parser("loss", help="exact Mixup loss of given (or freshly initialised) weights, pair rows "
                                     "sharded over ranks")
    lo.add_argument("--weights", default=None, help="state_dict of the model (torch.save), e.g. a trained "
                    "model's, or a train --checkpoint file; default: the model freshly initialised from --seed")
    lo.add_argument("--dataset", default="mnist1d", help="built-in dataset (its training split)")
    lo.add_argument("--data", default=None, help="your own inputs instead of --dataset: a .npy file (n, ...), "
                    "used as stored (no standardisation), read memory-mapped")
    lo.add_argument("--labels", default=None, help="with --data: a .npy file of n labels (integer classes; "
                    "real numbers with --loss squared)")
    lo.add_argument("--classes", type=int, default=None, help="with --data: number of classes "
                    "(default: largest label + 1, at least 2)")
    lo.add_argument("--model", default="logistic", help="experiments.nets model name (logistic, mlp, tanh_mlp, cnn)")
    lo.add_argument("--hidden", type=int, nargs="+", default=[256])
    lo.add_argument("--n-train", type=int, default=None, help="training points (all by default; with --data "
                    "the first N rows)")
    lo.add_argument("--alpha", type=float, default=1.0)
    lo.add_argument("--beta", type=float, default=None, help="Beta(alpha, beta); default beta = alpha")
    lo.add_argument("--loss", default=None, choices=LOSSES, help="default: logistic for two classes, "
                    "softmax otherwise")
    lo.add_argument("--method", default="auto", choices=MIXUP_METHODS, help="as theory.mixup_loss")
    lo.add_argument("--rtol", type=float, default=None, help="relative tolerance (default: mixup_loss's)")
    lo.add_argument("--nodes", type=int, default=None, help="one fixed Gauss-Jacobi rule of this many "
                    "nodes instead of a tolerance")
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--device", default="auto")
    lo.add_argument("--out", default=None, help="JSON file for the result (written by rank 0)")
    tr = sub.add_parser("train", help="data-parallel standard/Mixup training (DistributedDataParallel)")
    tr.add_argument("--dataset", default="mnist1d")
    tr.add_argument("--model", default="mlp")
    tr.add_argument("--method", default="mixup", choices=DDP_METHODS)
    tr.add_argument("--alpha", type=float, default=1.0)
    tr.add_argument("--beta", type=float, default=None, help="Beta(alpha, beta); default beta = alpha")
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--batch-size", type=int, default=128, help="global minibatch, split over the ranks "
                    "(the result does not depend on the number of ranks)")
    tr.add_argument("--lr", type=float, default=0.1)
    tr.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    tr.add_argument("--weight-decay", type=float, default=0.0)
    tr.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    tr.add_argument("--n-train", type=int, default=None)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--out", default=None, help="JSON file for the history (written by rank 0)")
    tr.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="training precision")
    tr.add_argument("--checkpoint", default=None, help="folder for checkpoint.pt; a run resumes from it")
    tr.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints "
                    "(default: at the end of each epoch)")
    return p


def _launched_by_torchrun() -> bool:
    return is_distributed() or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def _env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


class _Rows:
    """Labels or inputs of a ``--data`` run: the first ``n`` rows of a memory-mapped ``.npy`` array,
    indexed by row slices (only the rows sliced are read from disk)."""

    def __init__(self, array, n: int):
        self.array, self.n = array, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: slice):
        start, stop, _ = key.indices(self.n)
        return np.array(self.array[start:stop])  # a copy: the rows read, as an ordinary array

    def __array__(self, dtype=None, copy=None):  # every row: what the all-pairs sum needs
        return np.array(self.array[:self.n], dtype=dtype)


def _open_npy(path, flag: str):
    from ._usage import UsageError

    if path is None:
        raise UsageError(f"{flag} is required with --data")
    if not os.path.isfile(path):
        raise UsageError(f"{flag} {path}: no such file")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError... for files it cannot read
        raise UsageError(f"{flag} {path}: not a readable .npy file ({exc})") from None
    if not isinstance(array, np.ndarray):
        raise UsageError(f"{flag} {path}: an .npz archive; save one array with numpy.save (.npy)")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise UsageError(f"{flag} {path}: dtype {array.dtype} is not numeric")
    return array


def _own_data(args):
    """``(X, y, input_shape, n_classes)`` of ``--data``/``--labels``: memory-mapped, nothing read but
    the labels (n values, checked here so that no rank fails after the others started)."""
    from ._usage import UsageError, check_int

    X = _open_npy(args.data, "--data")
    y = _open_npy(args.labels, "--labels")
    if X.ndim < 2 or y.ndim != 1 or len(y) != len(X):
        raise UsageError(f"--data must hold an array (n, ...) and --labels one of n labels; got shapes "
                         f"{X.shape} and {y.shape}")
    n = len(X) if args.n_train is None else args.n_train
    if n > len(X):
        raise UsageError(f"--n-train {n} exceeds the {len(X)} rows of --data")
    labels = np.asarray(y[:n])
    if not np.all(np.isfinite(labels)):
        raise UsageError(f"--labels {args.labels}: contains NaN or inf")
    integral = bool(np.all(labels == np.round(labels)))
    if args.loss == "squared" and not integral:
        k = 2  # real targets: one output
    elif not integral or labels.min() < 0:
        raise UsageError(f"--labels {args.labels}: class labels must be integers >= 0 "
                         f"(real targets need --loss squared)")
    else:
        k = max(2, int(labels.max()) + 1)
    if args.classes is not None:
        check_int(args.classes, "--classes", low=2)
        if integral and args.loss != "squared" and labels.max() >= args.classes:
            raise UsageError(f"--labels {args.labels}: label {int(labels.max())} needs --classes > {args.classes}")
        k = args.classes
    return _Rows(X, n), _Rows(y, n), tuple(X.shape[1:]), k


def _load_weights(path, model) -> None:
    """Load ``path`` (a ``state_dict``, or a ``train --checkpoint`` file) into ``model``; any mismatch
    with the model is a ``UsageError`` naming the keys and shapes."""
    from ._usage import UsageError

    if not os.path.isfile(path):
        raise UsageError(f"--weights {path}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for foreign or damaged files
        raise UsageError(f"--weights {path}: not readable by torch.load(weights_only=True) ({exc})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict) and "optimizer" in state:
        state = state["model"]  # a checkpoint of `train --checkpoint`
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"--weights {path}: expected a state_dict (a dict of tensors, as saved by "
                         f"torch.save(model.state_dict(), FILE)), got {type(state).__name__}")
    if state and all(k.startswith("module.") for k in state):  # saved from a DistributedDataParallel wrapper
        state = {k[len("module."):]: v for k, v in state.items()}
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [f"{k} has shape {tuple(state[k].shape)} in the file, {tuple(own[k].shape)} in the model"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = ([f"missing keys {missing[:4]}{' ...' if len(missing) > 4 else ''}"] if missing else []) + \
               ([f"unexpected keys {extra[:4]}{' ...' if len(extra) > 4 else ''}"] if extra else []) + shapes[:3]
    if problems:
        raise UsageError(f"--weights {path} does not fit the model given by --model/--hidden and the data: "
                         + "; ".join(problems))
    if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
        raise UsageError(f"--weights {path}: contains NaN or inf")
    model.load_state_dict(state)


def _setup_loss(args):
    """``(model, X, y, loss)`` of ``loss``; every bad argument raises ``UsageError`` before any work.

    The model, the options and the data's shape are tried on two rows (``theory.mixup_loss``
    validates them: loss vs outputs, method vs model, labels) so that no rank fails after starting."""
    from ._usage import UsageError, check_choice, check_distributed, check_int, check_number
    from .datasets import dataset_names, load_dataset
    from .nets import build_model

    check_distributed(args)
    if args.beta is not None:
        check_number(args.beta, "--beta")
    if args.rtol is not None:
        check_number(args.rtol, "--rtol")
    check_int(args.nodes, "--nodes", optional=True)
    if args.nodes is not None and args.rtol is not None:
        raise UsageError("--nodes fixes the λ-rule (no tolerance): give --nodes or --rtol, not both")
    if args.data is None:
        if args.labels is not None or args.classes is not None:
            raise UsageError("--labels and --classes go with --data")
        check_choice(args.dataset, "--dataset", dataset_names())
        try:
            data = load_dataset(args.dataset, n=args.n_train, seed=args.seed)
        except (ValueError, FileNotFoundError) as exc:
            raise UsageError(f"--dataset {args.dataset}: {exc}") from None
        X, y, shape, k = data.X_train, data.y_train, data.input_shape, data.n_classes
    else:
        X, y, shape, k = _own_data(args)
    loss = args.loss or ("logistic" if k == 2 else "softmax")
    try:
        model = build_model(args.model, shape, k, hidden=tuple(args.hidden), seed=args.seed, dtype=torch.float64)
    except ValueError as exc:
        raise UsageError(f"--model {args.model}: {exc}") from None
    if args.weights is not None:
        _load_weights(args.weights, model)
    model.eval()
    try:
        mixup_loss(model, X[:2], y[:2], args.alpha, args.beta, loss=loss, method=args.method, nodes=args.nodes,
                   rtol=args.rtol)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return model, X, y, loss


def _setup_train(args):
    """``(dataset, TrainConfig)`` of ``train``; every bad argument raises before any work."""
    from ._usage import UsageError, check_choice, check_distributed, check_int, check_number, check_output_dir
    from .datasets import dataset_names, load_dataset
    from .nets import build_model
    from .training import TrainConfig

    check_distributed(args)
    check_choice(args.dataset, "--dataset", dataset_names())
    check_int(args.epochs, "--epochs")
    check_int(args.batch_size, "--batch-size")
    check_number(args.lr, "--lr")
    check_number(args.weight_decay, "--weight-decay", strict=False)
    if not _launched_by_torchrun():
        raise UsageError("train: launch with torchrun (e.g. torchrun --nproc_per_node=2 -m "
                         "experiments.distributed train ...)")
    check_int(args.checkpoint_every, "--checkpoint-every", optional=True)
    if args.checkpoint_every is not None and args.checkpoint is None:
        raise UsageError("--checkpoint-every needs --checkpoint DIR")
    try:
        data = load_dataset(args.dataset, n=args.n_train, seed=args.seed)
    except (ValueError, FileNotFoundError) as exc:
        raise UsageError(f"--dataset {args.dataset}: {exc}") from None
    config = TrainConfig(dataset=args.dataset, model=args.model, method=args.method, alpha=args.alpha,
                         beta=args.beta, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, weight_decay=args.weight_decay,
                         hidden=tuple(args.hidden), n_train=args.n_train, seed=args.seed, device=args.device,
                         dtype=args.dtype)
    config.validate()
    build_model(config.model, data.input_shape, data.n_classes, hidden=config.hidden, seed=config.seed)
    if args.checkpoint is not None:
        check_output_dir(args.checkpoint, "--checkpoint")
        try:
            read_checkpoint(args.checkpoint, config)
        except ValueError as exc:
            raise UsageError(f"--checkpoint {args.checkpoint}: {exc}") from None
    return data, config


def _write_json(path, record) -> None:
    with open(path, "w") as fh:
        json.dump(record, fh, indent=1)


def main(argv=None) -> int:
    """``loss`` / ``train`` entry point. Bad arguments: one stderr line, exit status 2, before any work."""
    from ._usage import UsageError, print_error

    args = _parser().parse_args(argv)
    try:
        setup = _setup_loss(args) if args.command == "loss" else _setup_train(args)
    except (UsageError, ValueError, FileNotFoundError) as exc:
        return print_error(f"python -m experiments.distributed {args.command}", exc)
    started = _init_from_env(args.device)
    rank = dist.get_rank() if is_distributed() else 0
    world = dist.get_world_size() if is_distributed() else 1
    try:
        if args.command == "loss":
            model, X, y, loss = setup
            model = model.to(_rank_device(args.device))
            t0 = time.perf_counter()
            value = sharded_mixup_loss(model, X, y, args.alpha, args.beta, loss=loss, nodes=args.nodes,
                                       rtol=args.rtol, method=args.method)
            if rank == 0:
                record = {"mixup_loss": value, "n": len(X), "world_size": world, "loss": loss,
                          "alpha": args.alpha, "beta": args.alpha if args.beta is None else args.beta,
                          "method": args.method, "weights": args.weights,
                          "rows_read_per_rank": "own" if reads_own_rows(model, X[:1].shape[1:]) else "all",
                          "seconds": time.perf_counter() - t0}
                if args.out:
                    _write_json(args.out, record)
                print(json.dumps(record))
        else:
            data, config = setup
            result = ddp_train(config, dataset=data, progress=True, checkpoint=args.checkpoint,
                               checkpoint_every=args.checkpoint_every)
            if rank == 0:
                if args.out:
                    _write_json(args.out, {"config": vars(args), "world_size": result["world_size"],
                                           "resumed_from": result["resumed_from"],
                                           "seconds": result["seconds"], "history": result["history"]})
                print(json.dumps(result["history"][-1]))
    finally:
        if started:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
