"""Hypothesis strategies for property-testing the robustness chain and your own variants of it.

``instances(model, norm, drop, **sizes)`` draws small problems (model, X, y, α, β, norm) that satisfy
every assumption of the chain of C4/C5/C13 (Zhang et al. 2021, Theorems 3.1 and 3.3, Corollary 3.4;
docs/theory.md §4) — the keys of ``theory.robustness_bound(...).assumptions`` — except those named in
``drop``, which are violated *by construction* (never by filtering):

- ``centered`` (A1): ``X`` has mean 0; dropped: every row is shifted by a non-zero grid vector.
- ``in_theta`` (A2): ``y_i = 1[f(x_i) ≥ 0]``; dropped: the label of the point with the largest
  ``|f(x_i)|`` is flipped (a point with ``f ≠ 0`` is planted if there is none), others may be.
- ``homogeneous``: bias-free models (``f(x) = ∇f(x)ᵀx``); dropped: a non-zero output bias (intercept).
- ``norm_bound`` (A3, ℓ2 only): ``c_x`` is the default ``min_i ‖x_i‖/√d``; dropped: ``c_x`` larger.

Data lie on a grid (``x_step``), weights on a grid (``weight_step``) or are floats, and every size
shrinks towards the smallest, so a falsified property shrinks to a short, readable instance. An
``Instance`` prints itself readably and round-trips JSON (``save`` / ``load_instance``), weights
included. See docs/own_bound.md for a worked example ("test your own bound").
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from ._validate import ArgumentTypeError, check_alpha_beta, check_positive

__all__ = ["ASSUMPTIONS", "MODELS", "Instance", "instances", "instance_from_dict", "load_instance", "model_from_layers"]

ASSUMPTIONS = ("centered", "in_theta", "homogeneous", "norm_bound")
"""The keys of ``theory.robustness_bound(...).assumptions`` (docs/theory.md §4)."""
MODELS = ("logistic", "relu")
FORMAT = "mixup-theory instance v1"
TINY = 1e-12
"""Float weights below this snap to 0: products of subnormal floats carry no significant digits."""


def _check_norm(norm) -> float:
    if isinstance(norm, str) and norm.lower() in ("inf", "infinity", "linf"):
        return math.inf
    if isinstance(norm, (int, float)) and not isinstance(norm, bool) and norm in (2, math.inf):
        return float(norm) if norm == math.inf else 2
    raise ValueError(f"norm must be 2 or 'inf' (math.inf), got {norm!r}")


def _check_range(value, name: str, lo_min: float, integer: bool = False) -> tuple:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a (min, max) pair, got {value!r}") from None
    if integer and not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lo, hi)):
        raise TypeError(f"{name} must be a pair of integers, got {value!r}")
    if not (lo_min <= lo <= hi and math.isfinite(hi)):
        raise ValueError(f"{name} must satisfy {lo_min} <= min <= max < inf, got {value!r}")
    return lo, hi


def model_from_layers(layers: list[dict], relu: bool = True) -> nn.Sequential:
    """A float64 ``Sequential`` of ``Linear`` layers from their weights (``ReLU`` between them when ``relu``).

    Parameters
    ----------
    layers : list of dict
        One ``{"weight": (out, in) array-like, "bias": (out,) array-like or None}`` per ``Linear``
        layer, input side first (the ``layers`` of an instance's JSON, ``Instance.layers()``).
    relu : bool
        Put a ``ReLU`` between consecutive layers (none after the last).

    Returns
    -------
    torch.nn.Sequential
        float64 layers holding exactly the given values.

    See Also
    --------
    load_instance : the instances whose ``layers`` this builds.

    Examples
    --------
    >>> net = model_from_layers([{"weight": [[1.0], [-1.0]], "bias": None}, {"weight": [[0.5, 0.5]], "bias": [0.0]}])
    >>> net
    Sequential(
      (0): Linear(in_features=1, out_features=2, bias=False)
      (1): ReLU()
      (2): Linear(in_features=2, out_features=1, bias=True)
    )
    >>> float(net(torch.tensor([[-2.0]], dtype=torch.float64)))  # |x| / 2
    1.0
    """
    mods: list[nn.Module] = []
    for k, layer in enumerate(layers):
        W = torch.as_tensor(np.asarray(layer["weight"], dtype=float), dtype=torch.float64)
        bias = layer.get("bias")
        lin = nn.Linear(W.shape[1], W.shape[0], bias=bias is not None, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(W)
            if bias is not None:
                lin.bias.copy_(torch.as_tensor(np.asarray(bias, dtype=float), dtype=torch.float64))
        mods.append(lin)
        if relu and k < len(layers) - 1:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def _logits(model: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(X, dtype=torch.float64)).reshape(-1).numpy()


def _fmt(a) -> str:
    return np.array2string(np.asarray(a, dtype=float), precision=6, suppress_small=False, separator=", ",
                           max_line_width=100, floatmode="maxprec")


@dataclass(frozen=True, eq=False)
class Instance:
    """One problem of the robustness chain: ``model`` (a float64 ``nn.Sequential``), ``X`` (n, d),
    ``y`` (n,) in {0, 1}, ``alpha``, ``beta`` (``None``: β = α), ``norm`` (2 or ``math.inf``),
    ``c_x`` (``None``: the default ``min_i ‖x_i‖/√d``), ``kind`` (``"logistic"``/``"relu"``) and the
    assumptions it was built to violate (``dropped``)."""

    model: nn.Module
    X: np.ndarray
    y: np.ndarray
    alpha: float
    beta: float | None = None
    norm: float = 2
    c_x: float | None = None
    kind: str = "logistic"
    dropped: tuple = field(default=())

    @property
    def kwargs(self) -> dict:
        """Keyword arguments of ``theory.robustness_bound`` / ``theory.exact_comparison`` after (model, X, y)."""
        return {"alpha": self.alpha, "beta": self.beta, "norm": self.norm, "c_x": self.c_x}

    def robustness_bound(self):
        """``theory.robustness_bound`` on this instance (C4/C5/C13, docs/theory.md §4)."""
        from . import robustness_bound

        return robustness_bound(self.model, self.X, self.y, **self.kwargs)

    def exact_comparison(self, **kw):
        """``theory.exact_comparison`` on this instance (C7, docs/theory.md §4)."""
        from . import exact_comparison

        return exact_comparison(self.model, self.X, self.y, **self.kwargs, **kw)

    def layers(self) -> list[dict]:
        """``[{"weight": W, "bias": b or None}, ...]`` of the model's ``Linear`` layers, as lists."""
        out = []
        for m in self.model.modules():
            if isinstance(m, nn.Linear):
                out.append({"weight": m.weight.detach().double().tolist(),
                            "bias": None if m.bias is None else m.bias.detach().double().tolist()})
        return out

    def to_dict(self) -> dict:
        return {"format": FORMAT, "model": self.kind, "layers": self.layers(), "X": self.X.tolist(),
                "y": [int(v) for v in self.y], "alpha": float(self.alpha),
                "beta": None if self.beta is None else float(self.beta),
                "norm": "inf" if self.norm == math.inf else 2, "c_x": self.c_x, "dropped": list(self.dropped)}

    def save(self, path) -> Path:
        """Write the instance (weights included) as JSON; ``load_instance(path)`` reads it back exactly."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    def __str__(self) -> str:
        norm = "ℓ∞" if self.norm == math.inf else "ℓ2"
        what = "logistic regression" if self.kind == "logistic" else "ReLU net"
        beta = "β = α" if self.beta is None else f"β = {self.beta!r}"
        lines = [f"{what}, {norm}, α = {self.alpha!r}, {beta}, n = {len(self.y)}, d = {self.X.shape[1]}"
                 + (f"; built to violate: {', '.join(self.dropped)}" if self.dropped else "")]
        for k, layer in enumerate(self.layers()):
            name = "θ" if self.kind == "logistic" else f"W{k + 1}"
            W = np.asarray(layer["weight"])
            lines.append(f"  {name} = {_fmt(W[0] if self.kind == 'logistic' else W)}"
                         + ("" if layer["bias"] is None else f", bias = {_fmt(layer['bias'])}"))
        f = _logits(self.model, self.X)
        lines.append("  X rows, y, f(x):")
        for x, yi, fi in zip(self.X, self.y, f):
            lines.append(f"    {_fmt(x)}  y = {int(yi)}  f = {fi:.6g}")
        if self.c_x is not None:
            lines.append(f"  c_x = {self.c_x!r} (min_i ‖x_i‖/√d = {np.linalg.norm(self.X, axis=1).min() / math.sqrt(self.X.shape[1]):.6g})")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"instance_from_dict({self.to_dict()!r})"  # valid Python: paste it into an @example

    def _repr_pretty_(self, printer, cycle) -> None:  # hypothesis's "Falsifying example" uses this
        printer.text(repr(self))


def instance_from_dict(data: dict) -> Instance:
    """The ``Instance`` described by ``data`` (the format of ``Instance.to_dict`` / ``save``).

    Every field is checked (a ``ValueError`` naming it, ``TypeError`` for a wrong type): ``format`` (when
    present) is ``FORMAT``, labels are exactly 0 or 1 (soft labels are refused, never rounded), numbers are
    finite and the layers' shapes chain from X's d features to one logit.
    """
    if not isinstance(data, dict):
        raise ArgumentTypeError(f"instance data must be a JSON object (dict), got {type(data).__name__}")
    if "format" in data and data["format"] != FORMAT:
        raise ValueError(f"format must be {FORMAT!r}, got {data['format']!r}")
    try:
        kind = data["model"]
        if kind not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {kind!r}")
        X = _finite_array(data["X"], "X", 2)
        y = _finite_array(data["y"], "y", 1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {y.shape[0]} labels but X has n = {X.shape[0]} rows")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError(f"y must hold labels 0 or 1 (soft labels are not part of the format), got {sorted(set(y.tolist()))[:4]}")
        layers = data["layers"]
        if not isinstance(layers, list) or not layers or not all(isinstance(layer, dict) for layer in layers):
            raise ValueError("layers must be a non-empty list of {'weight': ..., 'bias': ...} objects")
        width = X.shape[1]
        for k, layer in enumerate(layers):
            W = _finite_array(layer.get("weight"), f"layers[{k}].weight", 2)
            if W.shape[1] != width:
                raise ValueError(f"layers[{k}].weight has shape {W.shape} but takes {width} inputs")
            if layer.get("bias") is not None and _finite_array(layer["bias"], f"layers[{k}].bias", 1).shape != (W.shape[0],):
                raise ValueError(f"layers[{k}].bias must have {W.shape[0]} entries")
            width = W.shape[0]
        if width != 1:
            raise ValueError(f"the last layer must have one output (a logit), got {width}")
        alpha, beta = check_alpha_beta(data["alpha"], data.get("beta"))
        c_x = data.get("c_x")
        dropped = data.get("dropped", ())
        if not isinstance(dropped, (list, tuple)) or not all(d in ASSUMPTIONS for d in dropped):
            raise ValueError(f"dropped must be a list of names from {ASSUMPTIONS}, got {dropped!r}")
        return Instance(model=model_from_layers(layers, relu=kind == "relu"), X=X, y=y.astype(np.int64),
                        alpha=alpha, beta=None if data.get("beta") is None else beta,
                        norm=_check_norm(data.get("norm", 2)), c_x=None if c_x is None else check_positive(c_x, "c_x"),
                        kind=kind, dropped=tuple(dropped))
    except KeyError as exc:
        raise ValueError(f"instance data lacks the field {exc.args[0]!r}") from None


def _finite_array(value, name: str, ndim: int) -> np.ndarray:
    """``value`` as a float array of ``ndim`` dimensions with finite entries, else ``ValueError`` naming it."""
    try:
        a = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {'list of rows' if ndim == 2 else 'list'} of numbers") from None
    if a.ndim != ndim or 0 in a.shape:
        raise ValueError(f"{name} must be a non-empty {'list of rows' if ndim == 2 else 'list'} of numbers, "
                         f"got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


MAX_INSTANCE_BYTES = 64 << 20
"""Largest instance file ``load_instance`` reads (64 MiB)."""


def load_instance(path) -> Instance:
    """Read an instance written by ``Instance.save`` (weights included).

    A file that is not a valid instance (not UTF-8, not JSON, nested too deeply, larger than
    ``MAX_INSTANCE_BYTES``, or a field out of range) raises ``ValueError`` naming the path; a missing file
    raises ``FileNotFoundError``.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > MAX_INSTANCE_BYTES:
        raise ValueError(f"{path}: {path.stat().st_size} bytes, larger than an instance file can be "
                         f"({MAX_INSTANCE_BYTES} bytes, MAX_INSTANCE_BYTES)")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        return instance_from_dict(data)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise ValueError(f"{path}: JSON nested too deeply to be an instance") from None
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{path}: {exc}") from None


def _grid_values(draw, shape, limit: float, step: float | None) -> np.ndarray:
    if step is None:
        a = draw(arrays(np.float64, shape, elements=st.floats(-limit, limit, allow_nan=False, allow_infinity=False)))
        return np.where(np.abs(a) < TINY, 0.0, a)
    k = int(math.floor(limit / step + 1e-9))
    return draw(arrays(np.int64, shape, elements=st.integers(-k, k))) * step


def _nonzero(draw, limit: float, step: float | None) -> float:
    """A non-zero value of the weight grid (or float with |v| ≥ step-or-1/8), shrinking towards +step."""
    if step is None:
        v = draw(st.floats(0.125, max(limit, 0.125)))
    else:
        v = draw(st.integers(1, max(1, int(math.floor(limit / step + 1e-9))))) * step
    return v if draw(st.booleans()) is False else -v


def _center(X: np.ndarray) -> np.ndarray:
    X = X - X.mean(0)
    return X - X.mean(0)  # twice: the first pass leaves a rounding residual of a few ulps


@st.composite
def _instances(draw, kind, norm, drop, n, d, alpha, asymmetric, x_max, x_step, weight_max, weight_step,
               hidden, depth):
    nn_, dd = draw(st.integers(*n)), draw(st.integers(*d))
    X = draw(arrays(np.int64, (nn_, dd), elements=st.integers(-int(round(x_max / x_step)),
                                                                 int(round(x_max / x_step))))) * x_step
    X = _center(X)
    if "centered" in drop:  # (A1) violated: shift every row by a non-zero grid vector
        shift = np.zeros(dd)
        shift[draw(st.integers(0, dd - 1))] = _nonzero(draw, x_max, x_step)
        X = X + shift
    biased = "homogeneous" in drop
    if kind == "logistic":
        theta = _grid_values(draw, (dd,), weight_max, weight_step)
        if "in_theta" in drop and not theta.any():
            theta[0] = weight_step or 1.0  # a label can only be on the wrong side of a non-zero θ
        layers = [{"weight": [theta.tolist()], "bias": [_nonzero(draw, weight_max, weight_step)] if biased else None}]
    else:
        widths = [dd, *draw(st.lists(st.integers(*hidden), min_size=depth[0], max_size=depth[1])), 1]
        layers = [{"weight": _grid_values(draw, (b, a), weight_max, weight_step).tolist(), "bias": None}
                  for a, b in zip(widths[:-1], widths[1:])]
        if biased:  # an output bias b: f − ∇fᵀx = b ≠ 0 (hidden layers stay bias-free)
            layers[-1]["bias"] = [_nonzero(draw, weight_max, weight_step)]
    model = model_from_layers(layers, relu=kind == "relu")
    f = _logits(model, X)
    if "in_theta" in drop and not np.any(f != 0):
        # plant a pair c ± v with f(c + v) ≠ 0 or f(c − v) ≠ 0 (the pair keeps the mean)
        m = X.mean(0)
        candidates = [np.asarray(layers[0]["weight"][0])] if kind == "logistic" else \
            [s * x_step * np.eye(dd)[j] * k for k in (1, 4) for j in range(dd) for s in (1, -1)]
        for v in candidates:
            c = X[:2].mean(0) if len(X) >= 2 else m  # replacing two rows by c ± v keeps the mean
            pair = np.stack([c + v, c - v])
            if np.any(_logits(model, pair) != 0):
                X = np.concatenate([pair, X[2:]]) if len(X) >= 2 else np.concatenate([X, pair])
                break
        else:
            assume(False)  # a ReLU net that vanishes near the data: no label can be on a wrong side
        if "centered" not in drop:
            X = _center(X)
        f = _logits(model, X)
    y = (f >= 0).astype(np.int64)
    if "in_theta" in drop:  # (A2) violated: flip the label of the point farthest from the boundary
        flips = np.asarray(draw(st.lists(st.booleans(), min_size=len(y), max_size=len(y))), dtype=bool)
        flips[int(np.argmax(np.abs(f)))] = True
        y = np.where(flips, 1 - y, y)
    c_x = None
    if "norm_bound" in drop:  # (A3) violated: c_x√d above the smallest ‖x_i‖
        smallest = float(np.linalg.norm(X, axis=1).min())
        factor = draw(st.sampled_from([2.0, 1.5, 4.0, 10.0]))
        c_x = factor * max(smallest, x_step) / math.sqrt(dd)
    a = draw(st.floats(*alpha))
    b = draw(st.one_of(st.none(), st.floats(*alpha))) if asymmetric else None
    return Instance(model=model, X=X, y=y, alpha=a, beta=b, norm=norm, c_x=c_x, kind=kind, dropped=tuple(drop))


def instances(model: str = "logistic", norm=2, drop=(), *, n=(2, 6), d=(1, 4), alpha=(0.05, 8.0),
              asymmetric: bool = True, x_max: float = 3.0, x_step: float = 0.25, weight_max: float = 3.0,
              weight_step: float | None = 0.5, hidden=(1, 6), depth=(1, 3)):
    """Hypothesis strategy of ``Instance`` objects for the robustness chain (C4–C6, C13; docs/theory.md §4).

    Every assumption in ``ASSUMPTIONS`` holds except those named in ``drop``, which are violated by
    construction (module docstring). ``model``: ``"logistic"`` (bias-free ``θᵀx``) or ``"relu"`` (a
    bias-free ReLU MLP with ``depth`` hidden layers of widths in ``hidden``); ``norm``: 2 or ``"inf"``
    (``math.inf``; ``norm_bound`` cannot be dropped there, ℓ∞ needs no c_x). Sizes: ``n`` samples and
    ``d`` features as (min, max); ``alpha`` range (β = α, or with ``asymmetric`` also β from the same
    range); data on the grid ``x_step·ℤ`` within ``±x_max`` (then centered); weights on
    ``weight_step·ℤ`` within ``±weight_max`` (``weight_step=None``: floats).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    norm = _check_norm(norm)
    if isinstance(drop, str):
        drop = (drop,)
    drop = tuple(drop)
    unknown = [name for name in drop if name not in ASSUMPTIONS]
    if unknown:
        raise ValueError(f"drop must name assumptions among {ASSUMPTIONS}, got {unknown[0]!r}")
    if "norm_bound" in drop and norm == math.inf:
        raise ValueError("drop='norm_bound' needs norm=2: the ℓ∞ chain (C13) has no c_x, so (A3) cannot fail")
    n = _check_range(n, "n", 1, integer=True)
    d = _check_range(d, "d", 1, integer=True)
    hidden = _check_range(hidden, "hidden", 1, integer=True)
    depth = _check_range(depth, "depth", 1, integer=True)
    alpha = _check_range(alpha, "alpha", 0.0)
    if alpha[0] <= 0:
        raise ValueError(f"alpha must be a range of positive values, got {alpha!r}")
    for value, name in ((x_max, "x_max"), (x_step, "x_step"), (weight_max, "weight_max")):
        if not (isinstance(value, (int, float)) and 0 < value < math.inf):
            raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    if weight_step is not None and not (isinstance(weight_step, (int, float)) and 0 < weight_step <= weight_max):
        raise ValueError(f"weight_step must be None or in (0, weight_max], got {weight_step!r}")
    return _instances(model, norm, tuple(name for name in ASSUMPTIONS if name in drop), n, d, alpha, asymmetric,
                      float(x_max), float(x_step), float(weight_max), weight_step, hidden, depth)
