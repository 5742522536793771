"""Input checking shared by theory and experiments: one parametric validator (``check_scalar``) and
the array, label and generator checks built on it. ``TypeError`` for a wrong type, ``ValueError`` for a
wrong value; every message names the argument and the accepted range."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

DTYPE = torch.float64


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type. A ``TypeError``, and also a ``ValueError`` so that callers
    written against earlier versions (which raised ``ValueError`` for every bad argument) still
    catch it."""


_REAL = (int, float, np.integer, np.floating)
_INTEGRAL = (int, np.integer)


def check_scalar(value: Any, name: str, target_type: type | tuple = float, *, min_val=None, max_val=None,
                 include_boundaries: str = "both", allow_inf: bool = False):
    """One scalar argument checked and converted, in the manner of scikit-learn's ``check_scalar``.

    ``target_type`` is ``float`` (any real number: Python/numpy ints and floats, 0-d arrays and
    tensors), ``int`` (Python or numpy integers; ``bool`` is refused) or a tuple of types accepted as
    they are. A wrong type raises :class:`ArgumentTypeError` (a ``TypeError``); a value that is NaN,
    infinite (unless ``allow_inf``) or outside ``[min_val, max_val]`` raises ``ValueError``. Both
    messages name the argument and the accepted range. ``include_boundaries`` is ``"both"``,
    ``"left"``, ``"right"`` or ``"neither"``.

    Examples
    --------
    >>> check_scalar(3, "nodes", int, min_val=1)
    3
    >>> check_scalar(0.5, "alpha", float, min_val=0, include_boundaries="right")
    0.5
    >>> check_scalar("1", "alpha", float)
    Traceback (most recent call last):
    ...
    theory._validate.ArgumentTypeError: alpha must be a real number, got str '1'
    """
    if include_boundaries not in ("both", "left", "right", "neither"):
        raise ValueError(f"include_boundaries must be 'both', 'left', 'right' or 'neither', got {include_boundaries!r}")
    if isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0:
        value = value.item()
    if target_type is int:
        if isinstance(value, bool) or not isinstance(value, _INTEGRAL):
            raise ArgumentTypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
        v = int(value)
    elif target_type is float:
        if isinstance(value, bool) or not isinstance(value, _REAL):
            raise ArgumentTypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
        v = float(value)
        if math.isnan(v) or (math.isinf(v) and not allow_inf):
            raise ValueError(f"{name} must be a finite number{_range_text(min_val, max_val, include_boundaries)}, "
                             f"got {value!r}")
    else:
        if not isinstance(value, target_type):
            raise ArgumentTypeError(f"{name} must be of type {target_type}, got {type(value).__name__}")
        v = value
    low_ok = min_val is None or (v >= min_val if include_boundaries in ("both", "left") else v > min_val)
    high_ok = max_val is None or (v <= max_val if include_boundaries in ("both", "right") else v < max_val)
    if not (low_ok and high_ok):
        kind = "an integer" if target_type is int else "a number"
        raise ValueError(f"{name} must be {kind}{_range_text(min_val, max_val, include_boundaries)}, got {value!r}")
    return v


def _range_text(min_val, max_val, include_boundaries: str) -> str:
    left = include_boundaries in ("both", "left")
    right = include_boundaries in ("both", "right")
    if min_val is not None and max_val is not None:
        return f" in {'[' if left else '('}{min_val}, {max_val}{']' if right else ')'}"
    if min_val is not None:
        return f" {'>=' if left else '>'} {min_val}"
    if max_val is not None:
        return f" {'<=' if right else '<'} {max_val}"
    return ""


def check_positive(value: Any, name: str) -> float:
    """A finite float > 0."""
    return check_scalar(value, name, float, min_val=0, include_boundaries="right")


def check_nonnegative(value: Any, name: str) -> float:
    """A finite float >= 0."""
    return check_scalar(value, name, float, min_val=0)


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum``."""
    return check_scalar(value, name, int, min_val=minimum)


def check_rng(generator: Any, name: str = "generator") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator (used as is), an int seed, or ``None`` (fresh entropy)."""
    if generator is None:
        return np.random.default_rng()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, _INTEGRAL) and not isinstance(generator, bool):
        return np.random.default_rng(check_scalar(generator, name, int, min_val=0))
    raise ArgumentTypeError(f"{name} must be a numpy.random.Generator, an integer seed >= 0 or None, "
                            f"got {type(generator).__name__}")


def check_torch_generator(generator: Any, name: str = "generator", default_seed: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` from a Generator (used as is), an int seed, or ``None`` (seeded ``default_seed``)."""
    if generator is None:
        return torch.Generator().manual_seed(default_seed)
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, _INTEGRAL) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(check_scalar(generator, name, int, min_val=0))
    raise ArgumentTypeError(f"{name} must be a torch.Generator, an integer seed >= 0 or None, "
                            f"got {type(generator).__name__}")


ALPHA_RANGE = (1e-8, 1e6)
"""Mixup's α, β accepted by every function that integrates or expands over λ ~ Beta(α, β): the range where
the Gauss–Jacobi rules are verified accurate (docs/theory.md §0). ``MixupLambda`` alone takes any α, β > 0
(closed-form moments)."""
MAX_NODES = 1024
"""Largest Gauss–Jacobi rule any function builds (``nodes=``): the eigenvector step holds a q × q matrix."""
MAX_CHUNK_ELEMENTS = 1 << 28
"""Largest ``chunk_elements`` accepted (2 GiB per float64 block)."""
MAX_DRAWS = 10 ** 7
"""Largest number of Monte-Carlo draws (``draws=``) accepted."""
MAX_PAIRS = 10 ** 9
"""Largest number of ordered pairs (i, j) one call of an all-pairs method sums (a row shard counts its own
rows × n): beyond, the work is hours to days; shard it (``rows=``) or use a linear-time or sampled method."""
RTOL_RANGE = (1e-15, 1.0)
"""Relative tolerances accepted (``rtol=``): from a few ulps (below, rounding alone exceeds it) to 1 (excluded)."""


CLOSED_FORM_ALPHA_RANGE = (1e-300, 1e100)
"""α, β accepted by ``MixupLambda`` (closed-form moments only): beyond, products such as αβ overflow or the
moments underflow to subnormals."""


def check_alpha_beta(alpha: Any, beta: Any = None, *, bounded: bool = True) -> tuple[float, float]:
    """Mixup's Beta(alpha, beta) parameters; ``beta=None`` means ``beta = alpha``. In ``ALPHA_RANGE`` unless
    ``bounded=False`` (``CLOSED_FORM_ALPHA_RANGE``)."""
    lo, hi = ALPHA_RANGE if bounded else CLOSED_FORM_ALPHA_RANGE
    a = check_scalar(alpha, "alpha", float, min_val=lo, max_val=hi)
    b = a if beta is None else check_scalar(beta, "beta", float, min_val=lo, max_val=hi)
    return a, b


def check_alphas(alphas: Any, beta: Any = None, name: str = "alphas") -> list[tuple[float, float]]:
    """A non-empty sequence of α values, each in ``ALPHA_RANGE`` (with ``beta``); messages name ``alphas``."""
    if isinstance(alphas, (str, bytes)) or not hasattr(alphas, "__iter__"):
        raise ArgumentTypeError(f"{name} must be a sequence of numbers, got {type(alphas).__name__} {alphas!r}")
    values = list(alphas)
    if not values:
        raise ValueError(f"{name} is empty (need at least one alpha)")
    out = []
    for k, a in enumerate(values):
        try:
            out.append(check_alpha_beta(a, beta))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}[{k}]: {exc}") from None
    return out


def check_nodes(nodes: Any, name: str = "nodes") -> int:
    """A Gauss–Jacobi rule size, an integer in [1, MAX_NODES]."""
    return check_scalar(nodes, name, int, min_val=1, max_val=MAX_NODES)


def check_rtol(rtol: Any, name: str = "rtol") -> float:
    """A relative tolerance in ``RTOL_RANGE`` = [1e-15, 1)."""
    return check_scalar(rtol, name, float, min_val=RTOL_RANGE[0], max_val=RTOL_RANGE[1], include_boundaries="left")


def check_rows(rows: Any, n: int, name: str = "rows") -> tuple[int, int]:
    """``rows = (r0, r1)`` with integers ``0 <= r0 <= r1 <= n`` (``None``: all rows)."""
    if rows is None:
        return 0, n
    if not isinstance(rows, (tuple, list)) or len(rows) != 2:
        raise ArgumentTypeError(f"{name} must be a pair (r0, r1) of integers, got {type(rows).__name__} {rows!r}")
    r0 = check_scalar(rows[0], f"{name}[0]", int)
    r1 = check_scalar(rows[1], f"{name}[1]", int)
    if not 0 <= r0 <= r1 <= n:
        raise ValueError(f"{name} must satisfy 0 <= r0 <= r1 <= n = {n}, got {tuple(rows)!r}")
    return r0, r1


def check_pairs(rows: int, n: int, what: str = "the all-pairs method") -> None:
    """``ValueError`` naming X when ``rows × n`` ordered pairs exceed ``MAX_PAIRS``."""
    if rows * n > MAX_PAIRS:
        raise ValueError(f"X has n = {n} samples: {rows} × {n} = {rows * n:.3g} ordered pairs for {what}, above "
                         f"MAX_PAIRS = {MAX_PAIRS:.0e} per call; shard the rows (rows=(r0, r1)), or use the separated "
                         f"method (logistic regression) or mixup_loss_sampled")


def check_model(model: Any, name: str = "model") -> None:
    """A ``torch.nn.Module`` with real, finite parameters and buffers off the meta device, or a callable."""
    if not isinstance(model, torch.nn.Module):
        if not callable(model):
            raise ArgumentTypeError(f"{name} must be a torch.nn.Module or a callable, got {type(model).__name__}")
        return
    for kind, items in (("parameter", model.named_parameters()), ("buffer", model.named_buffers())):
        for key, t in items:
            if t.is_meta:
                raise ValueError(f"{name} has {kind} {key!r} on the meta device (no values); load its weights first")
            if t.is_complex():
                raise ValueError(f"{name} has complex {kind} {key!r} (dtype {t.dtype}); real parameters are needed")
            if t.is_floating_point() and not bool(torch.isfinite(t.detach()).all()):
                raise ValueError(f"{name} has NaN or inf in {kind} {key!r}")


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for parameter-free callables)."""
    if isinstance(model, torch.nn.Module):
        for t in model.parameters():
            return t.device
        for t in model.buffers():
            return t.device
    return torch.device("cpu")


def as_matrix(X: Any, name: str = "X", device: torch.device | None = None) -> torch.Tensor:
    """``X`` as a float64 ``(n, d)`` tensor on ``device``; rejects empty, NaN and inf input."""
    try:
        t = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be an array of numbers of shape (n, d): {exc}") from None
    if t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty: n = 0 samples (need n >= 1)")
    if t.shape[1] == 0:
        raise ValueError(f"{name} has d = 0 features (need d >= 1)")
    if t.is_meta:
        raise ValueError(f"{name} is on the meta device (no values)")
    t = t.detach().to(device=device, dtype=DTYPE)
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    return t


def as_inputs(X: Any, name: str = "X", device: torch.device | None = None) -> tuple[torch.Tensor, tuple]:
    """``X`` of shape ``(n, …)`` (vectors, images ``(n, C, H, W)``, sequences ``(n, C, L)``) as a float64
    ``(n, d)`` tensor of flattened rows on ``device``, and the per-sample shape ``…``. Checks as ``as_matrix``."""
    try:
        t = torch.as_tensor(np.asarray(X) if not isinstance(X, torch.Tensor) else X)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be an array of numbers of shape (n, ...): {exc}") from None
    if t.ndim < 2:
        raise ValueError(f"{name} must have shape (n, d) or (n, ...) with samples first, got shape {tuple(t.shape)}")
    shape = tuple(t.shape[1:])
    return as_matrix(t.reshape(t.shape[0], int(np.prod(shape))), name, device), shape


LABEL_KINDS = ("classes", "binary", "targets")


def as_labels(y: Any, n: int, name: str = "y", device: torch.device | None = None, *,
              kind: str = "classes") -> torch.Tensor:
    """Labels as a tensor with first dimension ``n``; rejects NaN/inf, bad lengths and bad label sets.

    ``kind="binary"``: values in {0, 1}, shape ``(n,)`` or ``(n, 1)`` (logistic loss).
    ``kind="classes"``: binary labels, class indices 0..K−1 of shape ``(n,)``, or ``(n, K)``
    one-hot/probability rows (softmax). ``kind="targets"``: any finite reals (squared loss, regression).
    Labels in {−1, +1} (or 1..K) are refused: every formula here is written for ``l = h(f) − yᵀf``
    with y in {0, 1} (docs/theory.md §0), where they silently give wrong losses.
    """
    if kind not in LABEL_KINDS:
        raise ValueError(f"kind must be one of {LABEL_KINDS}, got {kind!r}")
    try:
        t = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{name} must be an array of labels: {exc}") from None
    if t.ndim == 0:
        raise ValueError(f"{name} must have shape (n,) or (n, K), got a scalar")
    if t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} labels but X has n = {n} rows (length mismatch)")
    if t.ndim > 2:
        raise ValueError(f"{name} must have shape (n,) or (n, K), got shape {tuple(t.shape)}")
    if t.dtype == torch.bool:
        t = t.to(torch.int64)
    if not (t.is_floating_point() or t.dtype in _INT_DTYPES):
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    if t.is_meta:
        raise ValueError(f"{name} is on the meta device (no values)")
    t = t.detach().to(device=device)
    if t.is_floating_point() and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf")
    if kind != "targets":
        _check_label_set(t, name, kind)
    return t


def _check_label_set(t: torch.Tensor, name: str, kind: str) -> None:
    binary = bool(((t == 0) | (t == 1)).all())
    if kind == "binary" or (t.ndim == 2 and t.shape[1] == 1):
        if t.ndim == 2 and t.shape[1] != 1:
            raise ValueError(f"{name} must hold binary labels of shape (n,), got shape {tuple(t.shape)}")
        if not binary:
            raise ValueError(f"{name} must hold binary labels in {{0, 1}}, got values {_preview(t)}"
                             + (" (for labels in {-1, +1} pass (y + 1) / 2)" if bool((t.abs() == 1).all()) else ""))
        return
    if t.ndim == 1:
        if not bool(((t >= 0) & (t == t.round())).all()):
            raise ValueError(f"{name} must hold labels in {{0, 1}} or class indices 0..K-1, got values {_preview(t)}")
        return
    if not bool((t >= 0).all()) or not torch.allclose(t.sum(1).double(), torch.ones(t.shape[0], dtype=DTYPE, device=t.device),
                                                     atol=1e-9):
        raise ValueError(f"{name} of shape (n, K) must hold one-hot or probability rows (>= 0, summing to 1)")


def _preview(t: torch.Tensor, k: int = 4) -> str:
    values = torch.unique(t.reshape(-1)).cpu().tolist()
    shown = ", ".join(f"{v:g}" for v in values[:k])
    return "{" + shown + (", ..." if len(values) > k else "") + "}"


def check_choice(value: Any, name: str, choices: tuple) -> Any:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    try:
        ok = value in choices
    except TypeError:  # unhashable or incomparable values
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
