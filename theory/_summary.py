"""Short ``__repr__`` for result objects: scalars on a few wrapped lines, arrays summarised.

An array prints as ``<array (200,) min … median … max …>``; the full array stays an attribute.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

WIDTH = 92


def _number(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}" if math.isfinite(v) else str(float(v))
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_number(x)}" for k, x in v.items()) + "}"
    if isinstance(v, tuple) and len(v) <= 8:
        return "(" + ", ".join(_number(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def _array(a) -> str:
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    head = f"<array {tuple(a.shape)}"
    if a.size == 0 or not np.issubdtype(a.dtype, np.number):
        return head + ">"
    finite = a[np.isfinite(a)] if np.issubdtype(a.dtype, np.floating) else a
    if finite.size == 0:
        return head + " no finite values>"
    return (head + f" min {_number(finite.min())}, median {_number(np.median(finite))}, "
            f"max {_number(finite.max())}>")


def summary_repr(obj, extra: tuple = ()) -> str:
    """``Name(`` + wrapped ``field=value`` lines + one line per array + ``)``."""
    names = [f.name for f in dataclasses.fields(obj)] + list(extra)
    scalars, arrays = [], []
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim > 0:
            arrays.append(f"  {name}={_array(v)}")
        else:
            scalars.append(f"{name}={_number(v)}")
    lines, line = [], ""
    for item in scalars:
        if line and len(line) + len(item) + 2 > WIDTH:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {item}" if line else f"  {item}"
    if line:
        lines.append(line + ("," if arrays else ""))
    lines += [a + "," for a in arrays[:-1]] + arrays[-1:]
    return f"{type(obj).__name__}(\n" + "\n".join(lines) + "\n)"
