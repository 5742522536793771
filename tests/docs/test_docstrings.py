"""Every public name of ``theory`` is documented numpydoc-style, checked by ``numpydoc.validate``.

The checks, and why these:

- every function: ``GL08`` (a docstring), ``SS01``/``SS06`` (a one-line summary), ``PR01``/``PR02``/
  ``PR03`` (the Parameters section lists exactly the signature's parameters, in order), ``RT01``
  (a Returns section), ``SA01`` (See Also, linking the related functions), ``EX01`` (an Examples
  block; the suite runs it as a doctest, so it is also correct), and a Raises section (our own check:
  numpydoc has none) except for the four structural queries that accept any object;
- every class: ``GL08``, ``SS01``, ``SS06``, ``SA01``; classes a user constructs (``MixupLambda``)
  also ``PR01``/``PR02``. Result records (``Expansion``, ``RobustnessBound``, …) document their fields
  under "Attributes" instead of "Parameters" — they are returned, never built by hand — and take
  their examples from the function that returns them, so ``PR01``/``PR02``/``EX01`` do not apply.

Left out on purpose: ``ES01`` (an extended summary is not needed for a one-line helper), the
punctuation and type-spelling checks (``PR05``–``PR09``, ``RT02``–``RT05``), which judge wording
rather than completeness.
"""
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate", reason="numpydoc is part of the docs extra")

import theory  # noqa: E402

FUNCTION_CHECKS = {"GL08", "SS01", "SS06", "PR01", "PR02", "PR03", "RT01", "SA01", "EX01"}
# numpydoc has no check for a missing Raises section; every public function has one except these
# structural queries, which accept any object and return a bool or None.
WITHOUT_RAISES = {"has_bias", "is_affine", "is_piecewise_linear", "split_affine_prefix"}
CLASS_CHECKS = {"GL08", "SS01", "SS06", "SA01"}
CONSTRUCTED_CLASS_CHECKS = CLASS_CHECKS | {"PR01", "PR02"}


def documented_objects():
    for name in theory.__all__:
        obj = getattr(theory, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


def checks_for(obj) -> set[str]:
    if inspect.isfunction(obj):
        return FUNCTION_CHECKS
    doc = inspect.getdoc(obj) or ""
    return CLASS_CHECKS if "\nAttributes\n---" in doc else CONSTRUCTED_CLASS_CHECKS


@pytest.mark.parametrize("name", [name for name, _ in documented_objects()])
def test_public_docstring_is_numpydoc(name):
    obj = getattr(theory, name)
    report = numpydoc_validate.validate(f"theory.{name}")
    errors = [f"{code}: {message}" for code, message in report["errors"] if code in checks_for(obj)]
    assert not errors, f"theory.{name}:\n" + "\n".join(errors)


def test_every_function_documents_what_it_raises():
    from numpydoc.docscrape import FunctionDoc

    missing = [name for name, obj in documented_objects()
               if inspect.isfunction(obj) and name not in WITHOUT_RAISES and not FunctionDoc(obj)["Raises"]]
    assert not missing, f"public functions without a Raises section: {missing}"


def test_result_records_document_every_field():
    """A record's Attributes section names each of its dataclass fields (``r1, r2, r3 : float`` counts for three)."""
    import dataclasses

    from numpydoc.docscrape import ClassDoc

    missing = []
    for name, obj in documented_objects():
        if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and "\nAttributes\n---" in (inspect.getdoc(obj) or ""):
            documented = {part.strip() for entry in ClassDoc(obj)["Attributes"] for part in entry.name.split(",")}
            missing += [f"{name}.{f.name}" for f in dataclasses.fields(obj) if f.name not in documented]
    assert not missing, f"record fields missing from Attributes: {missing}"


def test_see_also_names_exist():
    """Every name a See Also section links is a public name of ``theory`` (or a method of one)."""
    from numpydoc.docscrape import FunctionDoc, ClassDoc

    missing = []
    for name, obj in documented_objects():
        doc = ClassDoc(obj) if inspect.isclass(obj) else FunctionDoc(obj)
        for entries, _ in doc["See Also"]:
            for target, _role in entries:
                if target.split(".")[0] not in theory.__all__:
                    missing.append(f"{name} → {target}")
    assert not missing, "See Also entries that are not public names:\n" + "\n".join(missing)


def test_every_public_callable_is_checked():
    """Nothing in ``__all__`` escapes the checks but plain constants (``DEFAULT_NODES``, ...)."""
    unchecked = {name: getattr(theory, name) for name in theory.__all__ if name not in dict(documented_objects())}
    callables = [name for name, obj in unchecked.items() if callable(obj)]
    assert not callables, f"public callables that are neither functions nor classes: {callables}"
    assert {"DEFAULT_NODES", "CHUNK_ELEMENTS"} <= set(unchecked)
