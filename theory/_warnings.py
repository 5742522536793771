"""The warnings of ``theory``: one base class, one subclass per kind of event, so callers filter by class.

``MixupWarning`` derives from ``UserWarning``; the accuracy shortfall also from ``RuntimeWarning``
(a numerical event), so filters written for either base keep working.
"""
from __future__ import annotations


class MixupWarning(UserWarning):
    """Base class of every warning that ``theory`` emits; each subclass's event is described where it
    arises (docs/theory.md §2, §3.2, §4.2, §4.7)."""


class AccuracyWarning(MixupWarning, RuntimeWarning):
    """A computed value may miss its requested accuracy: its error estimate exceeds ``rtol``, or is not a
    bound (docs/theory.md §2)."""


class ApproximationWarning(MixupWarning):
    """An approximation of the analysis (the second-order expansion L̃_mix) is far from the exact quantity
    (docs/theory.md §3.2)."""


class AssumptionWarning(MixupWarning):
    """A theorem's assumptions fail on this instance: a conclusion that holds here is not guaranteed by it
    (docs/theory.md §4.2)."""


class UndeterminedWarning(MixupWarning):
    """A method cannot decide this case for this model and returns its documented "undetermined" value (nan)
    (docs/theory.md §4.7)."""


__all__ = ["MixupWarning", "AccuracyWarning", "ApproximationWarning", "AssumptionWarning", "UndeterminedWarning"]
