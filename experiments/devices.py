"""Device selection: ``auto`` picks CUDA when present, else CPU; nothing is hard-coded to CUDA."""
from __future__ import annotations

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` if available else ``cpu``; ``"cpu"``; ``"cuda"`` or ``"cuda:N"``.

    Asking for CUDA where none is available is a ``ValueError`` (never a silent CPU fallback).
    """
    if isinstance(name, torch.device):
        name = str(name)
    if not isinstance(name, str):
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {name!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use 'cpu' or 'auto'")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise ValueError(f"device must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {name!r}")


def device_description(device: torch.device) -> str:
    """A human-readable name for provenance records (GPU model for CUDA)."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)
