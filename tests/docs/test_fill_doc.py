"""``theory._docs.fill_doc``: placeholders become the shared entries at their column, none is left."""
import importlib
import inspect
import pkgutil
import re

import pytest

import theory
from theory._docs import fill_doc

PLACEHOLDER = re.compile(r"^\s*%\(\w+\)s\s*$", re.MULTILINE)  # the lines fill_doc fills


def documented_callables():
    for info in pkgutil.iter_modules(theory.__path__):
        module = importlib.import_module(f"theory.{info.name}")
        for name, obj in vars(module).items():
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj


@pytest.mark.parametrize("name, obj", list(documented_callables()), ids=lambda v: v if isinstance(v, str) else "")
def test_no_placeholder_left(name, obj):
    assert not PLACEHOLDER.search(obj.__doc__ or ""), name


def test_fills_at_the_placeholder_column():
    def f(model, alpha):
        """Summary with 100%% of a literal percent sign.

        Parameters
        ----------
        %(model)s
        %(alpha)s
        """
    assert fill_doc(f) is f
    assert f.__doc__ == (
        "Summary with 100%% of a literal percent sign.\n\n"
        "        Parameters\n"
        "        ----------\n"
        "        model : torch.nn.Module or callable\n"
        "            Maps a float tensor ``(n, ...)`` to logits ``(n,)`` or ``(n, K)``; evaluated in float64 and eval\n"
        "            mode and returned exactly as it was.\n"
        "        alpha : float\n"
        "            First parameter of the mixing law ``Beta(alpha, beta)``, ``alpha > 0``.\n"
        "        ")


def test_unknown_key_is_an_error_and_no_docstring_is_kept():
    def f():
        """Summary.

        %(no_such_entry)s
        """
    with pytest.raises(KeyError, match="no_such_entry"):
        fill_doc(f)

    def g():
        pass
    assert fill_doc(g).__doc__ is None

