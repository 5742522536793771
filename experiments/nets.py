"""Networks of the experiments, all plain ``nn.Sequential`` at the top level.

Every model maps flat ``(n, d)`` inputs to ``out`` logits, ``out = 1`` for two classes (logistic
loss) and ``K`` otherwise (softmax cross-entropy); image models begin with ``nn.Unflatten`` to
``input_shape``. The theory shortcuts see the leading affine layers of the ``Sequential``.
``model.mixup_splits`` lists the indices at which manifold Mixup may cut the ``Sequential``
(:func:`split_at_hidden`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from theory.validation import check_scalar

MODELS = ("logistic", "mlp", "tanh_mlp", "cnn", "wrn16_8")
CNN_WIDTHS = (32, 64)
CNN_HIDDEN = 128


def n_outputs(n_classes: int) -> int:
    """One logit for a binary task, ``K`` logits otherwise."""
    check_scalar(n_classes, "n_classes", int, min_val=2)
    return 1 if n_classes == 2 else n_classes


def _mlp(d, hidden, out, activation, bias):
    layers, splits, width = [], [], d
    for h in hidden:
        layers += [nn.Linear(width, h, bias=bias), activation()]
        splits.append(len(layers))
        width = h
    layers.append(nn.Linear(width, out, bias=bias))
    return layers, splits


def _cnn(shape, out, bias):
    """Two conv–ReLU–max-pool blocks, then a ReLU dense layer: Conv1d for ``(L,)`` inputs, Conv2d for ``(C, H, W)``."""
    if len(shape) == 1:
        shape, conv, pool, k = (1, shape[0]), nn.Conv1d, nn.MaxPool1d, 5
    elif len(shape) == 3:
        conv, pool, k = nn.Conv2d, nn.MaxPool2d, 3
    else:
        raise ValueError(f"cnn needs input_shape (L,) or (C, H, W), got {shape!r}")
    layers: list[nn.Module] = [nn.Unflatten(1, tuple(shape))]
    splits, channels = [], shape[0]
    for w in CNN_WIDTHS:
        layers += [conv(channels, w, k, padding=k // 2, bias=bias), nn.ReLU(), pool(2)]
        splits.append(len(layers))
        channels = w
    spatial = [s // 2 ** len(CNN_WIDTHS) for s in shape[1:]]
    if min(spatial) < 1:
        raise ValueError(f"cnn input {shape!r} is too small for {len(CNN_WIDTHS)} 2x poolings")
    layers += [nn.Flatten(), nn.Linear(channels * math.prod(spatial), CNN_HIDDEN, bias=bias), nn.ReLU()]
    splits.append(len(layers))
    layers.append(nn.Linear(CNN_HIDDEN, out, bias=bias))
    return layers, splits


class WideBasic(nn.Module):
    """Pre-activation wide residual block (Zagoruyko & Komodakis 2016): BN-ReLU-conv ×2 + shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.bn2 = nn.BatchNorm2d(c_in), nn.BatchNorm2d(c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = None if (c_in == c_out and stride == 1) else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x):
        o = torch.relu(self.bn1(x))
        y = self.conv2(torch.relu(self.bn2(self.conv1(o))))
        return y + (x if self.shortcut is None else self.shortcut(o))


def _wrn(shape, out, depth=16, widen=8):
    if len(shape) != 3:
        raise ValueError(f"wrn16_8 needs input_shape (C, H, W), got {shape!r}")
    blocks = (depth - 4) // 6
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    layers: list[nn.Module] = [nn.Unflatten(1, tuple(shape)), nn.Conv2d(shape[0], widths[0], 3, 1, 1, bias=False)]
    splits = []
    for g in range(3):
        group = [WideBasic(widths[g] if b == 0 else widths[g + 1], widths[g + 1], (1 if g == 0 else 2) if b == 0 else 1)
                 for b in range(blocks)]
        layers.append(nn.Sequential(*group))
        splits.append(len(layers))
    layers += [nn.BatchNorm2d(widths[3]), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[3], out)]
    for m in layers:
        for sub in m.modules():
            if isinstance(sub, nn.Conv2d):
                nn.init.kaiming_normal_(sub.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(sub, nn.Linear):
                nn.init.zeros_(sub.bias)
    return layers, splits


def build_model(name: str, input_shape: Sequence[int], n_classes: int, *, hidden: Sequence[int] = (64, 64),
                bias: bool = True, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """A freshly initialised model; PyTorch's default initialisation drawn under ``torch.manual_seed(seed)``
    inside ``torch.random.fork_rng`` (the global random state is left as it was).

    ``logistic``: ``Sequential(Linear(d, out))``. ``mlp``/``tanh_mlp``: ReLU/Tanh MLP with widths
    ``hidden`` (``bias`` on/off: bias-free ReLU nets are positively homogeneous, C5). ``cnn``: a small
    CNN (``hidden`` unused). ``wrn16_8``: WideResNet-16-8 (BatchNorm; call ``model.eval()`` before
    the theory functions, which assume rows are treated independently).
    """
    shape = tuple(int(s) for s in input_shape)
    if not shape or min(shape) < 1:
        raise ValueError(f"input_shape must be a non-empty tuple of positive sizes, got {input_shape!r}")
    out = n_outputs(n_classes)
    d = math.prod(shape)
    hidden = tuple(int(h) for h in hidden)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == "logistic":
            layers, splits = [nn.Linear(d, out, bias=bias)], []
        elif name in ("mlp", "tanh_mlp"):
            if not hidden or min(hidden) < 1:
                raise ValueError(f"hidden must be a non-empty tuple of positive widths for {name}, got {hidden!r}")
            layers, splits = _mlp(d, hidden, out, nn.ReLU if name == "mlp" else nn.Tanh, bias)
        elif name == "cnn":
            layers, splits = _cnn(shape, out, bias)
        elif name == "wrn16_8":
            layers, splits = _wrn(shape, out)
        else:
            raise ValueError(f"model must be one of {MODELS}, got {name!r}")
        model = nn.Sequential(*layers).to(dtype)
    model.mixup_splits = tuple(splits)
    return model


def split_at_hidden(model: nn.Sequential, layer: int = 1) -> tuple[nn.Sequential, nn.Sequential]:
    """``(head, tail)`` with ``model = tail ∘ head`` and ``head`` the first ``layer`` hidden blocks
    (manifold Mixup mixes ``head(x)``). Shares the model's parameters."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model must be an nn.Sequential, got {type(model).__name__}")
    splits = getattr(model, "mixup_splits", None)
    if splits is None:  # a plain Sequential: cut after each ReLU/Tanh
        splits = [k + 1 for k, m in enumerate(model) if isinstance(m, (nn.ReLU, nn.Tanh))]
        splits = [s for s in splits if s < len(model)]
    check_scalar(layer, "layer", int, min_val=1, max_val=len(splits))  # the model's hidden blocks
    cut = splits[layer - 1]
    return model[:cut], model[cut:]
