"""Warnings in the commands: recorded by class, counted where expected, summarised once in words.

The commands (``check``, ``explain``, ``figures``, ``property``) print no raw Python warnings. What an
instance was built to trigger (e.g. ``theory.AssumptionWarning`` on a counterexample that violates an
assumption on purpose) is expected and counted where the instance is reported; every other warning is
recorded and summarised once, in words (:func:`summary`). Filters select by class, never by message.

Recorded warnings are plain JSON (``{"category": "module.Name", "message": ...}``) so worker
processes and cache entries can carry them; :func:`category` maps a recorded name back to a class
from a fixed table (Python's own warning classes and ``theory``'s), never by importing a module
named in the record.
"""
from __future__ import annotations

import builtins
import warnings
from collections import Counter
from typing import Callable

import theory

THEORY_WARNINGS = (theory.MixupWarning, theory.AccuracyWarning, theory.ApproximationWarning,
                   theory.AssumptionWarning, theory.UndeterminedWarning)
_KNOWN = {f"{c.__module__}.{c.__qualname__}": c for c in THEORY_WARNINGS}
_KNOWN.update({f"builtins.{name}": cls for name, cls in vars(builtins).items()
               if isinstance(cls, type) and issubclass(cls, Warning)})


def name_of(cls: type[Warning]) -> str:
    """``module.Name`` of a warning class (the form stored in records)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def category(path: str) -> type[Warning]:
    """The class a record's ``category`` names: one of Python's or ``theory``'s warning classes, else
    ``UserWarning``. Nothing is imported: a record is data, never an instruction."""
    return _KNOWN.get(path, UserWarning)


def captured(fn: Callable, *, unique: bool = True, always: bool = True):
    """``(fn(), records)``: the warnings raised while ``fn`` runs, recorded instead of printed, as
    ``[{"category": "module.Name", "message": ...}]`` (``unique``: without repeats). With ``always``
    every warning is recorded, also those a default filter would show only once per location or
    hide; without it the active filters decide, as they would for printing."""
    with warnings.catch_warnings(record=True) as caught:
        if always:
            warnings.simplefilter("always")
        # torch's deprecation notices about its own internals (e.g. torch.jit.script called by torch's lazy
        # import of its JVP decompositions): not about this project's code, selected by class and module
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch(\.|$)")
        value = fn()
    out, seen = [], set()
    for w in caught:
        key = (name_of(w.category), str(w.message))
        if unique and key in seen:
            continue
        seen.add(key)
        out.append({"category": key[0], "message": key[1]})
    return value, out


def split(records: list[dict], expected: tuple[type[Warning], ...]) -> tuple[Counter, list[dict]]:
    """``(counts, others)``: records whose class is a subclass of one in ``expected``, counted per class
    name (``AssumptionWarning``: 12), and the other records."""
    counts: Counter = Counter()
    others = []
    for r in records:
        cls = category(r["category"])
        if expected and issubclass(cls, expected) and r["category"] in _KNOWN:
            counts[cls.__name__] += 1
        else:
            others.append(r)
    return counts, others


def _short(message: str, limit: int = 160) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def summary(records: list[dict], where: str = "") -> str:
    """One line in words about ``records`` (``""`` when there are none): how many, of which classes,
    and the first message of each class."""
    if not records:
        return ""
    by_class: dict[str, list[str]] = {}
    for r in records:
        by_class.setdefault(r["category"].rpartition(".")[2], []).append(r["message"])
    parts = [f"{len(msgs)} {cls}" + (f" (e.g. {_short(msgs[0])})" if msgs else "") for cls, msgs in by_class.items()]
    return (f"{len(records)} warning{'s' if len(records) != 1 else ''}" + (f" {where}" if where else "")
            + ": " + "; ".join(parts))


__all__ = ["THEORY_WARNINGS", "captured", "category", "name_of", "split", "summary"]
