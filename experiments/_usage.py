"""Argument checking for ``mixup-theory`` and ``python -m experiments.distributed``.

Every bad input is answered with one line on stderr and exit status 2, before any work starts and
never with a traceback: :class:`OneLineParser` turns argparse's usage errors into one line, and the
``check_*`` functions below validate values and output paths (by a real probe write, so ``/proc``,
read-only mounts and missing folders are caught even when running as root) and raise
:class:`UsageError`, which the entry points print the same way. Each subcommand's own validator
(``validate(args)``, registered with its parser) sits next to that parser and uses these helpers;
``mixup-theory`` calls it once, before the command runs, and the command trusts its arguments.
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path


class UsageError(Exception):
    """A bad command-line argument: printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are a single stderr line (``prog: error: message``), exit 2."""

    def error(self, message):  # argparse's default prints the whole usage block first
        self.exit(2, f"{self.prog}: error: {one_line(message)}\n")


def one_line(text) -> str:
    return " ".join(str(text).split())


def print_error(prog: str, exc) -> int:
    """Print ``prog: error: exc`` as one line on stderr; returns the exit status 2."""
    import sys

    print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
    return 2


# ----------------------------------------------------------------------------- values

def check_number(value, flag: str, *, low: float = 0.0, strict: bool = True) -> float:
    """A finite number ``> low`` (``>= low`` when not ``strict``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < low or (strict and v == low):
        raise UsageError(f"{flag} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return v


def check_int(value, flag: str, *, low: int = 1, high: int | None = None, optional: bool = False):
    """An integer in ``[low, high]`` (``None`` passes when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        accepted = f">= {low}" if high is None else f"in {low}..{high}"
        raise UsageError(f"{flag} must be an integer {accepted}, got {value!r}")
    return value


SEED_MAX = 2 ** 32 - 1  # numpy's and scikit-learn's seeds


def check_seed(value, flag: str = "--seed") -> int:
    return check_int(value, flag, low=0, high=SEED_MAX)


def check_choice(value, flag: str, choices) -> str:
    if value not in choices:
        raise UsageError(f"{flag} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_device(name: str, flag: str = "--device"):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (CUDA only where torch sees it), resolved once to the
    ``torch.device`` the command then uses."""
    from .devices import resolve_device

    try:
        return resolve_device(name)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


# ----------------------------------------------------------------------------- paths

def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_path_text(path, flag: str) -> Path:
    """A non-empty path whose length and every component's length the file system accepts."""
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not text or not text.strip():
        raise UsageError(f"{flag} must be a non-empty path, got {path!r}")
    if "\0" in text:
        raise UsageError(f"{flag} must not contain a NUL character, got {path!r}")
    p = Path(text)
    try:
        base = _nearest_existing(p)
        name_max = os.pathconf(base if base.is_dir() else base.parent, "PC_NAME_MAX")
        path_max = os.pathconf(base if base.is_dir() else base.parent, "PC_PATH_MAX")
    except OSError as exc:
        raise UsageError(f"{flag} {text[:80]}{'…' if len(text) > 80 else ''}: {exc.strerror or exc}") from None
    long = next((part for part in p.parts if len(os.fsencode(part)) > name_max), None)
    if long is not None:
        raise UsageError(f"{flag}: the name {long[:40]}… is {len(os.fsencode(long))} bytes long; "
                         f"this file system allows at most {name_max}")
    if len(os.fsencode(str(p.absolute()))) >= path_max:
        raise UsageError(f"{flag}: the path is {len(os.fsencode(str(p.absolute())))} bytes long; "
                         f"this file system allows at most {path_max - 1}")
    return p


def check_output_dir(path, flag: str) -> Path:
    """A folder that exists and is writable, or can be created under a writable existing folder
    (a non-empty path that the file system accepts)."""
    p = _check_path_text(path, flag)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a folder")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise UsageError(f"{flag} {path}: {base} is a file, not a folder")
    try:  # a probe file: permission bits say nothing for root, /proc or read-only mounts
        fd, probe = tempfile.mkstemp(dir=base, prefix=".mixup-theory-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot write in {base} ({exc.strerror or exc})") from None
    return p


def check_output_file(path, flag: str, *, must_exist: bool = False) -> Path:
    """A file that can be written (created in an existing folder, or an existing writable file)."""
    p = _check_path_text(path, flag)
    if p.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, expected a file")
    if p.exists():
        try:
            with open(p, "ab"):  # opening for append changes neither content nor mtime
                pass
        except OSError as exc:
            raise UsageError(f"{flag} {path}: cannot write it ({exc.strerror or exc})") from None
        return p
    if must_exist:
        raise UsageError(f"{flag} {path}: no such file")
    if not p.absolute().parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {p.absolute().parent} does not exist")
    try:
        with open(p, "xb"):
            pass
        p.unlink()
    except FileExistsError:  # created meanwhile (another rank's probe): writable
        pass
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create it ({exc.strerror or exc})") from None
    return p


def check_input_dir(path, flag: str) -> Path:
    """An existing folder."""
    p = _check_path_text(path, flag)
    if not p.is_dir():
        raise UsageError(f"{flag} {path}: no such folder")
    return p


# ----------------------------------------------------------------------------- experiments.distributed

def check_distributed(args) -> None:
    """The options every ``experiments.distributed`` command shares; each command checks its own after."""
    from .nets import MODELS

    check_choice(args.model, "--model", MODELS)
    check_number(args.alpha, "--alpha")
    check_seed(args.seed)
    check_device(args.device)
    for width in args.hidden:
        check_int(width, "--hidden")
    check_int(args.n_train, "--n-train", optional=True)
    if args.out is not None and int(os.environ.get("RANK", "0")) == 0:  # rank 0 writes it
        check_output_file(args.out, "--out")
