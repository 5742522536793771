"""The public API: explicit re-exports, no name that is both a module and a function, and callers that
use only public names (the implementation modules ``theory._*`` are private)."""
import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import theory

REPO = Path(__file__).resolve().parents[2]
CORE = ["MixupLambda", "mixup_loss", "mixup_loss_error", "mixup_expansion", "adversarial_loss",
        "robustness_bound", "glm_regularizer", "rademacher"]
PRIVATE_IMPORT = re.compile(r"^\s*(from\s+theory\._\w+\s+import|import\s+theory\._|from\s+theory\s+import\s+_)", re.M)


def test_every_public_name_is_exported_and_none_is_a_module():
    assert len(set(theory.__all__)) == len(theory.__all__)
    for name in theory.__all__:
        assert not isinstance(getattr(theory, name), types.ModuleType), name
    assert set(CORE) <= set(theory.__all__)
    assert not hasattr(theory, "__getattr__")  # explicit imports, no lazy module attributes


@pytest.mark.parametrize("name", ["mixup_loss", "mixup_expansion", "robustness_bound", "rademacher"])
def test_function_names_are_not_importable_modules(name):
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"theory.{name}")


def test_import_order_cannot_shadow_a_function():
    """Importing every private module first must leave each public name bound to its function."""
    code = ("import importlib, pkgutil, types, theory\n"
            "for m in pkgutil.iter_modules(theory.__path__):\n"
            "    importlib.import_module('theory.' + m.name)\n"
            "bad = [n for n in theory.__all__ if isinstance(getattr(theory, n), types.ModuleType)]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_callers_use_only_public_names():
    offenders = []
    for folder in ("experiments", "benchmarks", "docs"):
        for path in (REPO / folder).rglob("*.py"):
            if PRIVATE_IMPORT.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(REPO)))
    assert not offenders, f"import private theory modules: {offenders}"


def test_public_functions_have_doctested_examples():
    for name in CORE:
        assert ">>>" in (getattr(theory, name).__doc__ or ""), f"theory.{name} has no Examples section"
