"""Per-configuration result cache: experiments write results, figures read them.

One JSON file per configuration key under a cache directory (``figures/.cache`` by default), so an
interrupted run resumes where it stopped. Each entry holds::

    {"schema": SCHEMA, "key": <key>, "config": {...}, "result": {...}, "meta": {...}, "checksum": <sha256>}

Writes are atomic (temporary file in the same directory, ``fsync``, ``os.replace``): a reader sees
either the old entry or the new one, never half a file. An entry that cannot be read back —
invalid JSON, wrong schema, a key that does not match its config, or a checksum mismatch — counts
as absent and is recomputed (``Cache.stats["corrupt"]`` counts them).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

SCHEMA = "mixup-theory-cache/1"
KEY_CHARS = 24


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types for configs and results: tuples → lists, numpy → Python, dataclasses → dicts."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if hasattr(obj, "item") and callable(obj.item):  # 0-d torch tensors
        return to_jsonable(obj.item())
    raise ValueError(f"cannot store a value of type {type(obj).__name__} in the cache")


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text (sorted keys, no spaces; NaN/Infinity spelled as Python's json does)."""
    return json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=True)


def config_key(config: Mapping) -> str:
    """Stable key of a configuration: the first ``KEY_CHARS`` hex digits of sha256(canonical JSON)."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:KEY_CHARS]


def _checksum(config: Any, result: Any) -> str:
    return hashlib.sha256(canonical_json({"config": config, "result": result}).encode()).hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temporary file in the same folder, fsync, os.replace).

    On failure (a full disk, a quota, a read-only file system) nothing is left behind — neither a
    partial ``path`` nor the temporary file — and the ``OSError`` names ``path`` (``exc.filename``).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class Cache:
    """A directory of cached results, one JSON file per configuration key.

    ``get_or_compute(config, compute)`` returns ``(result, computed)``; ``stats`` counts
    ``computed``, ``hits`` and ``corrupt`` entries (recomputed) for this object's lifetime.
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.stats = {"computed": 0, "hits": 0, "corrupt": 0}

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, config: Mapping) -> dict | None:
        """The stored entry for ``config`` (``config``, ``result``, ``meta``), or None if absent/corrupt."""
        config = to_jsonable(config)
        key = config_key(config)
        path = self.path(key)
        if not path.exists():
            return None
        entry = self._validated(path, key, config)
        if entry is None:
            self.stats["corrupt"] += 1
        return entry

    @staticmethod
    def _validated(path: Path, key: str, config: Any) -> dict | None:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("schema") != SCHEMA or entry.get("key") != key:
            return None
        if not {"config", "result", "checksum"} <= entry.keys():
            return None
        if canonical_json(entry["config"]) != canonical_json(config):
            return None
        if entry["checksum"] != _checksum(entry["config"], entry["result"]):
            return None
        return entry

    def store(self, config: Mapping, result: Any, meta: Mapping | None = None) -> Path:
        config, result = to_jsonable(config), to_jsonable(result)
        key = config_key(config)
        entry = {"schema": SCHEMA, "key": key, "config": config, "result": result,
                 "meta": to_jsonable(meta or {}), "checksum": _checksum(config, result)}
        path = self.path(key)
        atomic_write_text(path, json.dumps(entry, indent=1, allow_nan=True))
        return path

    def get_or_compute(self, config: Mapping, compute: Callable[[], Any], *, force: bool = False,
                       meta: Mapping | None = None) -> tuple[dict, bool]:
        """``(entry, computed)``: the cached entry, or a fresh one from ``compute()`` (stored atomically).

        ``meta`` is stored beside the result (with the measured ``seconds``) and is not checksummed.
        """
        if not force:
            entry = self.load(config)
            if entry is not None:
                self.stats["hits"] += 1
                return entry, False
        start = time.perf_counter()
        result = compute()
        seconds = time.perf_counter() - start
        info = {**(meta or {}), "seconds": seconds}
        self.store(config, result, info)
        self.stats["computed"] += 1
        return {"config": to_jsonable(config), "result": to_jsonable(result), "meta": to_jsonable(info)}, True
