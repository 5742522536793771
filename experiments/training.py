"""Standard, Mixup and manifold-Mixup training with per-epoch measurements (docs/theory.md §2, §6).

One :class:`TrainConfig` (hashable, with ``seed`` and ``device="auto"``) fixes a run; :func:`train`
returns the trained model and a JSON-serialisable history. All randomness comes from generators
seeded by ``config.seed`` (initialisation, shuffling, partners, λ), so equal seeds give equal
histories on the same device.

Mixup as practised: one ``λ ~ Beta(α, β)`` per minibatch, partner = a uniform random permutation of
the batch, labels mixed with the same ``λ``. Binary tasks train one logit with the logistic loss
(BCE-with-logits on the mixed label), multi-class tasks ``K`` logits with softmax cross-entropy on the
mixed one-hot label. Manifold Mixup mixes the output of the first hidden block instead of the input.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from theory.validation import check_alpha_beta, check_choice, check_scalar

from .datasets import Dataset, load_dataset
from .devices import resolve_device
from .nets import build_model, split_at_hidden

METHODS = ("standard", "mixup", "manifold")
OPTIMIZERS = ("sgd", "adam")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
EVAL_BATCH = 4096
MANIFOLD_LAYER = 1


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "two_moons"
    model: str = "logistic"
    method: str = "standard"  # "standard" | "mixup" | "manifold"
    alpha: float = 1.0
    beta: float | None = None
    epochs: int = 20
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    optimizer: str = "sgd"  # or "adam"
    hidden: tuple = (64, 64)
    bias: bool = True
    n_train: int | None = None
    seed: int = 0
    device: str = "auto"
    measure: tuple = ()  # names from experiments.measure.MEASUREMENTS
    measure_every: int = 1
    dataset_kwargs: tuple = ()  # (key, value) pairs passed to load_dataset
    dtype: str = "float32"  # training precision; measurements are float64 whatever this is

    def key(self) -> str:
        """A stable 16-hex-digit hash of every field except ``device`` (for result caching)."""
        fields = dataclasses.asdict(self)
        fields.pop("device")
        text = json.dumps(fields, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def validate(self) -> "TrainConfig":
        from .measure import MEASUREMENTS

        check_choice(self.method, "method", METHODS)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.dtype, "dtype", tuple(DTYPES))
        for name, value, lo in [("epochs", self.epochs, 1), ("batch_size", self.batch_size, 1),
                                ("measure_every", self.measure_every, 1), ("seed", self.seed, 0)]:
            check_scalar(value, name, int, min_val=lo)
        check_alpha_beta(self.alpha, self.beta)
        check_scalar(self.lr, "lr", float, min_val=0, include_boundaries="right")
        check_scalar(self.weight_decay, "weight_decay", float, min_val=0)
        bad = [m for m in self.measure if m not in MEASUREMENTS]
        if bad:
            raise ValueError(f"measure names must be among {MEASUREMENTS}, got {bad}")
        return self


@dataclass
class TrainResult:
    config: TrainConfig
    history: list  # one dict per measured epoch
    model: nn.Module
    dataset: Dataset
    seconds: float
    device: str


@contextlib.contextmanager
def _deterministic(device: torch.device):
    """Deterministic kernels for the run (restored afterwards); warn-only where none exists (on CUDA,
    e.g. the backward of max/adaptive-average pooling, so CNN runs there may differ in the last bits)."""
    prev = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic)
    if device.type == "cuda":  # deterministic cuBLAS needs a fixed workspace (read when cuBLAS starts)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0], warn_only=prev[1])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = prev[2], prev[3]


def task_loss(logits: torch.Tensor, target: torch.Tensor, n_classes: int, reduction: str = "mean") -> torch.Tensor:
    """Logistic loss on one logit (target: probability of class 1) or softmax cross-entropy on
    ``K`` logits (target: class probabilities ``(n, K)``)."""
    if n_classes == 2:
        return F.binary_cross_entropy_with_logits(logits.reshape(-1), target, reduction=reduction)
    return F.cross_entropy(logits, target, reduction=reduction)


def soft_targets(y: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """Labels as the loss's target: ``y`` itself (binary) or its one-hot rows."""
    if n_classes == 2:
        return y.to(dtype)
    return F.one_hot(y, n_classes).to(dtype)


def predictions(logits: torch.Tensor, n_classes: int) -> torch.Tensor:
    return (logits.reshape(-1) > 0).long() if n_classes == 2 else logits.argmax(1)


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, n_classes: int) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``model`` on ``(X, y)`` in eval mode, batched."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    dtype = next(model.parameters()).dtype
    for i in range(0, X.shape[0], EVAL_BATCH):
        xb, yb = X[i:i + EVAL_BATCH], y[i:i + EVAL_BATCH]
        out = model(xb)
        total += float(task_loss(out, soft_targets(yb, n_classes, dtype), n_classes, "sum"))
        correct += int((predictions(out, n_classes) == yb).sum())
    model.train(was_training)
    n = max(X.shape[0], 1)
    return total / n, correct / n


def mixed_batch_loss(model, xb: torch.Tensor, tb: torch.Tensor, lam: float, perm: torch.Tensor,
                     n_classes: int) -> torch.Tensor:
    """The Mixup minibatch loss for one ``λ`` and partner permutation ``perm`` (docs/theory.md §2):
    ``mean_i l(f(λx_i + (1−λ)x_perm(i)), λt_i + (1−λ)t_perm(i))``. ``model`` a module (input Mixup)
    or a ``(head, tail)`` pair (manifold Mixup: ``head``'s outputs are mixed, ``tail`` maps them on)."""
    target = lam * tb + (1 - lam) * tb[perm]
    if isinstance(model, tuple):
        head, tail = model
        hb = head(xb)
        return task_loss(tail(lam * hb + (1 - lam) * hb[perm]), target, n_classes)
    return task_loss(model(lam * xb + (1 - lam) * xb[perm]), target, n_classes)


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """Minibatch ``[b0, b1)`` ranges covering ``0..n``; a trailing batch of one sample joins the one
    before it (BatchNorm cannot train on a single sample, and a lone sample has no Mixup partner)."""
    bounds = [(b0, min(n, b0 + batch_size)) for b0 in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


def _optimizer(config: TrainConfig, model: nn.Module):
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False)


def build_run(config: TrainConfig, device: torch.device, dataset: Dataset | None = None) -> tuple[Dataset, nn.Module]:
    """The dataset (loaded unless given) and the freshly initialised model of ``config`` on ``device``."""
    if dataset is None:
        dataset = load_dataset(config.dataset, n=config.n_train, seed=config.seed, **dict(config.dataset_kwargs))
    model = build_model(config.model, dataset.input_shape, dataset.n_classes, hidden=config.hidden,
                        bias=config.bias, seed=config.seed, dtype=DTYPES[config.dtype]).to(device)
    return dataset, model


_PRETRAINED: dict[tuple[str, str], TrainResult] = {}


@contextlib.contextmanager
def pretrained(results: list[TrainResult]):
    """Within the block, :func:`train` of a config (no ``dataset`` given) hands back the matching
    result from ``results`` once instead of training again; the figure runner trains a group of
    configurations as one ensemble (:func:`experiments.batched.train_many`) and then lets the
    figures' ``compute`` functions ask for them one by one."""
    keys = [(r.config.key(), r.device) for r in results]
    _PRETRAINED.update(zip(keys, results))
    try:
        yield
    finally:
        for k in keys:
            _PRETRAINED.pop(k, None)


def config_from_json(fields: dict, device: str = "auto") -> TrainConfig:
    """A :class:`TrainConfig` from JSON fields (lists become tuples), on ``device``."""
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    fields["dataset_kwargs"] = tuple(tuple(kv) for kv in fields.get("dataset_kwargs", ()))
    return TrainConfig(**{**fields, "device": device})


def train(config: TrainConfig, *, progress: bool = False, dataset: Dataset | None = None) -> TrainResult:
    """Train ``config.model`` on ``config.dataset`` with ``config.method``; history per measured epoch.

    Each history entry holds ``epoch``, ``train_objective`` (mean minibatch objective of the epoch:
    the mixed loss under Mixup), ``train_loss``/``train_acc``/``test_loss``/``test_acc`` (clean,
    eval mode), ``seconds``, and the measurements named in ``config.measure``
    (:func:`experiments.measure.measure`, float64 theory functions). Entries are recorded every
    ``measure_every`` epochs and at the last epoch.
    """
    from .measure import measure

    config.validate()
    device = resolve_device(config.device)
    if dataset is None and (hit := _PRETRAINED.pop((config.key(), str(device)), None)) is not None:
        return hit
    dtype = DTYPES[config.dtype]
    dataset, model = build_run(config, device, dataset)
    k = dataset.n_classes
    if config.method == "manifold":
        head, tail = split_at_hidden(model, MANIFOLD_LAYER)
    else:
        head = tail = None
    Xtr = torch.as_tensor(dataset.X_train, dtype=dtype, device=device)
    ytr = torch.as_tensor(dataset.y_train, dtype=torch.int64, device=device)
    Xte = torch.as_tensor(dataset.X_test, dtype=dtype, device=device)
    yte = torch.as_tensor(dataset.y_test, dtype=torch.int64, device=device)
    Ttr = soft_targets(ytr, k, dtype)
    opt = _optimizer(config, model)
    shuffle_gen = torch.Generator().manual_seed(config.seed)
    lam_rng = np.random.default_rng([config.seed, 1])
    n = Xtr.shape[0]
    history: list[dict] = []
    start = time.perf_counter()
    with _deterministic(device):
        bar = _progress(range(1, config.epochs + 1), progress, f"{config.method} {config.model} {dataset.name}")
        for epoch in bar:
            model.train()
            order = torch.randperm(n, generator=shuffle_gen).to(device)
            objective = torch.zeros((), dtype=torch.float64, device=device)  # summed on device: no sync per step
            seen = 0
            for b0, b1 in batch_bounds(n, config.batch_size):
                idx = order[b0:b1]
                xb, tb = Xtr[idx], Ttr[idx]
                if config.method == "standard":
                    loss = task_loss(model(xb), tb, k)
                else:
                    lam = float(lam_rng.beta(config.alpha, config.alpha if config.beta is None else config.beta))
                    perm = torch.randperm(len(idx), generator=shuffle_gen).to(device)
                    loss = mixed_batch_loss(model if config.method == "mixup" else (head, tail), xb, tb, lam, perm, k)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                objective += loss.detach().double() * len(idx)
                seen += len(idx)
            if epoch % config.measure_every == 0 or epoch == config.epochs:
                model.eval()
                row = {"epoch": epoch, "train_objective": float(objective) / seen}
                row["train_loss"], row["train_acc"] = evaluate(model, Xtr, ytr, k)
                row["test_loss"], row["test_acc"] = evaluate(model, Xte, yte, k)
                if config.measure:
                    row.update(measure(model, dataset, config.measure, config.alpha, config.beta,
                                       seed=config.seed))
                row["seconds"] = time.perf_counter() - start
                history.append(row)
                if progress:
                    bar.set_postfix(loss=f"{row['train_loss']:.4f}", test_acc=f"{row['test_acc']:.3f}")
    model.eval()
    return TrainResult(config, history, model, dataset, time.perf_counter() - start, str(device))
