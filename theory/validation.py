"""Argument validation used by ``theory`` and ``experiments`` (public, for users' own code too).

``check_scalar(value, name, target_type, min_val=, max_val=)`` raises ``TypeError`` (as
:class:`ArgumentTypeError`, also a ``ValueError``) for a wrong type and ``ValueError`` for a wrong
value, both naming the argument and the accepted range; ``check_rng`` / ``check_torch_generator``
turn ``generator=`` arguments (a generator, an int seed or ``None``) into generators. The ranges every
public function enforces (``ALPHA_RANGE``, ``MAX_NODES``, ``RTOL_RANGE``, ``MAX_DRAWS``, ``MAX_CHUNK_ELEMENTS``)
are listed in docs/theory.md §0.1.

Examples
--------
>>> from theory.validation import check_scalar, check_rng
>>> check_scalar(0.2, "alpha", float, min_val=0, include_boundaries="right")
0.2
>>> int(check_rng(0).integers(10)) == int(check_rng(0).integers(10))
True
"""
from ._validate import (ALPHA_RANGE, MAX_CHUNK_ELEMENTS, MAX_DRAWS, MAX_NODES, RTOL_RANGE, ArgumentTypeError,
                        check_alpha_beta, check_choice, check_count, check_nodes, check_nonnegative, check_positive,
                        check_rng, check_rows, check_rtol, check_scalar, check_torch_generator)

__all__ = ["ArgumentTypeError", "check_scalar", "check_alpha_beta", "check_choice", "check_count", "check_positive",
           "check_nonnegative", "check_rng", "check_torch_generator", "check_nodes", "check_rtol", "check_rows",
           "ALPHA_RANGE", "MAX_NODES", "RTOL_RANGE", "MAX_DRAWS", "MAX_CHUNK_ELEMENTS"]
