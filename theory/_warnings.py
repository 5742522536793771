"""The warnings of ``theory``: one base class, one subclass per kind of event, so callers filter by class.

``MixupWarning`` derives from ``UserWarning``; the accuracy shortfall also from ``RuntimeWarning``
(a numerical event), so filters written for either base keep working.
"""
from __future__ import annotations


class MixupWarning(UserWarning):
    """Base class of every warning that ``theory`` emits.

    Filter by class, never by message text (docs/theory.md §0).

    See Also
    --------
    AccuracyWarning, ApproximationWarning, AssumptionWarning, UndeterminedWarning : The kinds.

    Examples
    --------
    >>> import warnings, theory
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", theory.MixupWarning)  # silence every kind, by class
    ...     issubclass(theory.AssumptionWarning, theory.MixupWarning)
    True
    """


class AccuracyWarning(MixupWarning, RuntimeWarning):
    """A computed value may miss its requested accuracy: its error estimate exceeds ``rtol``, or is not a bound.

    Filter by class, never by message text (docs/theory.md §0).

    See Also
    --------
    MixupWarning : The base class.
    mixup_loss_error : Warns when its error is not a bound.
    """


class ApproximationWarning(MixupWarning):
    """An approximation of the analysis (the second-order expansion L̃_mix) is far from the exact quantity.

    Filter by class, never by message text (docs/theory.md §0).

    See Also
    --------
    MixupWarning : The base class.
    mixup_expansion : The approximation concerned.
    """


class AssumptionWarning(MixupWarning):
    """A theorem's assumptions fail on this instance: a conclusion that holds here is not guaranteed by it.

    Filter by class, never by message text (docs/theory.md §0).

    See Also
    --------
    MixupWarning : The base class.
    robustness_bound : Reports the assumptions as ``assumptions``.
    """


class UndeterminedWarning(MixupWarning):
    """A method cannot decide this case for this model and returns its documented "undetermined" value (nan).

    Filter by class, never by message text (docs/theory.md §0).

    See Also
    --------
    MixupWarning : The base class.
    exact_comparison : Its ``status`` can be ``"undecided"``.
    """


__all__ = ["MixupWarning", "AccuracyWarning", "ApproximationWarning", "AssumptionWarning", "UndeterminedWarning"]
