"""Past one machine: the exact Mixup loss sharded over ``torch.distributed`` ranks, and data-parallel
(DDP) standard/Mixup training. Launch with ``torchrun`` (README, "Multi-GPU and multi-node").

- :func:`sharded_mixup_loss`: ``L_mix`` of docs/theory.md §2 with the n ordered-pair rows split over the
  ranks of an initialised process group; each rank sums its rows' ``Σ_j E_λ l`` and one
  ``all_reduce(SUM)`` adds the shares. Without a process group it is ``theory.mixup_loss``.
- :func:`ddp_train`: the minibatch training of :mod:`experiments.training` wrapped in
  ``DistributedDataParallel`` with a ``DistributedSampler``.
- ``python -m experiments.distributed loss|train ...``: entry points for ``torchrun``.

Every rank must hold the same model and data (same seed); nothing here reads a rank's data from
another rank except through collectives.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from theory.validation import check_count, check_scalar
from theory import CHUNK_ELEMENTS, mixup_loss


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


def _all_reduce_sum(value: torch.Tensor, group=None) -> torch.Tensor:
    """``all_reduce(SUM)`` of a scalar tensor; gloo gets a CPU copy, other backends the tensor's device."""
    buf = value.detach().reshape(1).clone()
    if dist.get_backend(group) == "gloo" and buf.device.type != "cpu":
        buf = buf.cpu()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    return buf[0]


def sharded_mixup_loss(model, X, y, alpha, beta=None, *, loss: str = "logistic", nodes: int | None = None,
                       rtol: float | None = None, method: str = "auto", shortcut: bool = True,
                       chunk_elements: int = CHUNK_ELEMENTS, group=None) -> float:
    """Exact ``L_mix`` (docs/theory.md §2, as ``theory.mixup_loss``) with the pair rows sharded over ranks.

    Rank ``r`` of ``world`` sums the ordered pairs ``(i, j)`` with ``i`` in ``shard_rows(n, r, world)``
    over every ``j`` and the whole λ-rule; ``all_reduce(SUM)`` adds the shares, so every rank returns
    the same value, equal to the single-process one up to rounding (the order of the sum differs).
    Work per rank: ``n²Q/world`` loss evaluations on the all-pairs path; with the linear-time method
    (``method="auto"`` or ``"separated"``, logistic regression; docs/theory.md §2.6) every rank builds
    the same plan from all margins (O(n)) and sums its rows' share. ``method``, ``rtol``, ``nodes``:
    as in ``theory.mixup_loss``. Call it on every rank of ``group`` with the same model, ``X``, ``y``
    and arguments. Outside an initialised process group it is ``mixup_loss``.
    """
    options = dict(loss=loss, nodes=nodes, rtol=rtol, method=method, shortcut=shortcut,
                   chunk_elements=chunk_elements)
    if not is_distributed():
        return mixup_loss(model, X, y, alpha, beta, **options)
    n = len(X)
    rows = shard_rows(n, dist.get_rank(group), dist.get_world_size(group))
    part = mixup_loss(model, X, y, alpha, beta, rows=rows, **options)
    return float(_all_reduce_sum(torch.tensor(part, dtype=torch.float64), group))


# ------------------------------------------------------------------------------------- training

DDP_METHODS = ("standard", "mixup")


def _sharded_evaluate(model, X, y, n_classes: int, group=None) -> tuple[float, float]:
    """``(mean loss, accuracy)`` over all of ``(X, y)``: each rank evaluates its rows, sums are all-reduced."""
    from .training import evaluate

    r0, r1 = shard_rows(X.shape[0], dist.get_rank(group), dist.get_world_size(group))
    loss, acc = evaluate(model, X[r0:r1], y[r0:r1], n_classes) if r1 > r0 else (0.0, 0.0)
    dev = X.device if dist.get_backend(group) != "gloo" else torch.device("cpu")
    sums = torch.tensor([loss * (r1 - r0), acc * (r1 - r0)], dtype=torch.float64, device=dev)
    dist.all_reduce(sums, op=dist.ReduceOp.SUM, group=group)
    return float(sums[0]) / X.shape[0], float(sums[1]) / X.shape[0]


def ddp_train(config, *, dataset=None, progress: bool = False, sync_batchnorm: bool = True) -> dict:
    """Data-parallel training of ``config`` (an ``experiments.training.TrainConfig``) inside an
    initialised process group; returns ``{"config", "history", "seconds", "world_size", "model"}``.

    Each rank builds the model from ``config.seed`` (DDP also broadcasts rank 0's parameters), reads
    its ``DistributedSampler`` share of every epoch's permutation in minibatches of
    ``config.batch_size`` (global batch = world × batch_size), and under ``method="mixup"`` mixes
    inside its local batch: one λ ~ Beta(α, β) per local batch from a generator seeded by
    ``(seed, rank)``, partner = a uniform permutation of the local batch (the "minibatch" scheme of
    docs/theory.md §2 with the local batch). DDP averages the gradients over ranks. The history (clean
    train/test loss and accuracy per epoch, evaluated sharded and all-reduced) is identical on every
    rank, timings aside. ``sync_batchnorm`` converts BatchNorm layers to ``SyncBatchNorm`` on CUDA.
    """
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DistributedSampler

    from .training import DTYPES, batch_bounds, build_run, mixed_batch_loss, soft_targets, task_loss

    if not is_distributed():
        raise ValueError("ddp_train needs an initialised torch.distributed process group (launch with torchrun)")
    config.validate()
    if config.method not in DDP_METHODS:
        raise ValueError(f"method must be one of {DDP_METHODS} for ddp_train, got {config.method!r}")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = _rank_device(config.device)
    dtype = DTYPES[config.dtype]
    dataset, model = build_run(config, device, dataset)
    k = dataset.n_classes
    if sync_batchnorm and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    Xtr = torch.as_tensor(dataset.X_train, dtype=dtype, device=device)
    ytr = torch.as_tensor(dataset.y_train, dtype=torch.int64, device=device)
    Ttr = soft_targets(ytr, k, dtype)
    # Pads the epoch's permutation to a multiple of world: every rank runs the same number of steps.
    sampler = DistributedSampler(range(Xtr.shape[0]), num_replicas=world, rank=rank, shuffle=True,
                                 seed=config.seed, drop_last=False)
    Xte = torch.as_tensor(dataset.X_test, dtype=dtype, device=device)
    yte = torch.as_tensor(dataset.y_test, dtype=torch.int64, device=device)
    opt = _optimizer(config, ddp)
    lam_rng = np.random.default_rng([config.seed, 1, rank])
    perm_gen = torch.Generator().manual_seed(config.seed * 1000003 + rank)
    beta = config.alpha if config.beta is None else config.beta
    history = []
    start = time.perf_counter()
    epochs = range(1, config.epochs + 1)
    if progress and rank == 0:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc=f"ddp {config.method} {config.model} {dataset.name} x{world}")
    for epoch in epochs:
        sampler.set_epoch(epoch)
        ddp.train()
        objective = torch.zeros((), dtype=torch.float64, device=device)
        seen = torch.zeros((), dtype=torch.float64, device=device)
        order = torch.as_tensor(list(sampler), dtype=torch.int64).to(device)
        for b0, b1 in batch_bounds(order.shape[0], config.batch_size):
            idx = order[b0:b1]
            xb, tb = Xtr[idx], Ttr[idx]
            if config.method == "standard":
                loss = task_loss(ddp(xb), tb, k)
            else:
                lam = float(lam_rng.beta(config.alpha, beta))
                perm = torch.randperm(xb.shape[0], generator=perm_gen).to(device)
                loss = mixed_batch_loss(ddp, xb, tb, lam, perm, k)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            objective += loss.detach().double() * xb.shape[0]
            seen += xb.shape[0]
        sums = torch.stack([objective, seen])
        if dist.get_backend() == "gloo":
            sums = sums.cpu()
        dist.all_reduce(sums, op=dist.ReduceOp.SUM)
        model.eval()
        row = {"epoch": epoch, "train_objective": float(sums[0] / sums[1])}
        row["train_loss"], row["train_acc"] = _sharded_evaluate(model, Xtr, ytr, k)
        row["test_loss"], row["test_acc"] = _sharded_evaluate(model, Xte, yte, k)
        row["seconds"] = time.perf_counter() - start
        history.append(row)
    model.eval()
    return {"config": config, "history": history, "seconds": time.perf_counter() - start,
            "world_size": world, "model": model}


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


def _parser() -> argparse.ArgumentParser:
    from ._usage import OneLineParser

    p = OneLineParser(prog="python -m experiments.distributed", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    lo = sub.add_parser("loss", help="exact Mixup loss of a freshly initialised model, pair rows sharded over ranks")
    lo.add_argument("--dataset", default="mnist1d")
    lo.add_argument("--model", default="logistic", help="experiments.nets model name (logistic, mlp, tanh_mlp, cnn)")
    lo.add_argument("--hidden", type=int, nargs="+", default=[256])
    lo.add_argument("--n-train", type=int, default=None, help="training points (all by default)")
    lo.add_argument("--alpha", type=float, default=1.0)
    lo.add_argument("--nodes", type=int, default=None)
    lo.add_argument("--seed", type=int, default=0)
    lo.add_argument("--device", default="auto")
    tr = sub.add_parser("train", help="data-parallel standard/Mixup training (DistributedDataParallel)")
    tr.add_argument("--dataset", default="mnist1d")
    tr.add_argument("--model", default="mlp")
    tr.add_argument("--method", default="mixup", choices=DDP_METHODS)
    tr.add_argument("--alpha", type=float, default=1.0)
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--batch-size", type=int, default=128, help="per-rank minibatch")
    tr.add_argument("--lr", type=float, default=0.1)
    tr.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    tr.add_argument("--weight-decay", type=float, default=0.0)
    tr.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    tr.add_argument("--n-train", type=int, default=None)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--out", default=None, help="JSON file for the history (written by rank 0)")
    return p


def _launched_by_torchrun() -> bool:
    return is_distributed() or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def _setup(args):
    """``(data, model or TrainConfig)`` for the command; every bad argument raises before any work."""
    from ._usage import UsageError, check_distributed
    from .datasets import load_dataset
    from .nets import build_model

    check_distributed(args)
    if args.command == "train" and not _launched_by_torchrun():
        raise UsageError("train: launch with torchrun (e.g. torchrun --nproc_per_node=2 -m "
                         "experiments.distributed train ...)")
    data = load_dataset(args.dataset, n=args.n_train, seed=args.seed)
    if args.command == "loss":
        model = build_model(args.model, data.input_shape, data.n_classes, hidden=tuple(args.hidden),
                            seed=args.seed, dtype=torch.float64)
        return data, model
    from .training import TrainConfig

    config = TrainConfig(dataset=args.dataset, model=args.model, method=args.method, alpha=args.alpha,
                         epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, weight_decay=args.weight_decay,
                         hidden=tuple(args.hidden), n_train=args.n_train, seed=args.seed, device=args.device)
    config.validate()
    build_model(config.model, data.input_shape, data.n_classes, hidden=config.hidden, seed=config.seed)
    return data, config


def main(argv=None) -> int:
    """``loss`` / ``train`` entry point. Bad arguments: one stderr line, exit status 2, before any work."""
    from ._usage import UsageError, print_error

    args = _parser().parse_args(argv)
    try:
        data, what = _setup(args)
    except (UsageError, ValueError, FileNotFoundError) as exc:
        return print_error(f"python -m experiments.distributed {args.command}", exc)
    started = _init_from_env(args.device)
    rank = dist.get_rank() if is_distributed() else 0
    try:
        if args.command == "loss":
            model = what.to(_rank_device(args.device)).eval()
            loss = "logistic" if data.n_classes == 2 else "softmax"
            t0 = time.perf_counter()
            value = sharded_mixup_loss(model, data.X_train, data.y_train, args.alpha, loss=loss, nodes=args.nodes)
            if rank == 0:
                world = dist.get_world_size() if is_distributed() else 1
                print(json.dumps({"mixup_loss": value, "n": data.n_train, "world_size": world,
                                  "seconds": time.perf_counter() - t0}))
        else:
            result = ddp_train(what, dataset=data, progress=True)
            if rank == 0:
                text = json.dumps({"config": {k: v for k, v in vars(args).items()}, "world_size": result["world_size"],
                                   "seconds": result["seconds"], "history": result["history"]}, indent=1)
                if args.out:
                    with open(args.out, "w") as fh:
                        fh.write(text)
                print(json.dumps(result["history"][-1]))
    finally:
        if started:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
