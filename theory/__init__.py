"""mixup-theory: exact quantities of the Mixup analysis.

Zhang, Deng, Kawaguchi, Ghorbani, Zou, *How Does Mixup Help With Robustness and Generalization?*,
ICLR 2021 (arXiv:2010.04819). The analysis, in our words, is in ``docs/theory.md``.

Implementation modules are private (``theory._mixup_loss``, ...); every public name is re-exported
here and listed in ``__all__``. ``theory.strategies`` (hypothesis strategies) is the one public
submodule.
"""
from __future__ import annotations

from ._adversarial import adversarial_examples, adversarial_loss, adversarial_losses
from ._complexity import RademacherEstimate, ellipsoid_sup, rademacher, ridge_sup
from ._estimators import EstimatorMoments, estimator_expectation, estimator_moments, estimator_variance
from ._expansion import Expansion, mixup_expansion
from ._carratino import mixup_loss_recentred
from ._generalization import (generalization_gap_bound, intrinsic_dimension_sweep, lowrank_gaussian,
                              retentive_constant, retentiveness_ratio, wgamma_bound, wgamma_ellipsoid_constant,
                              wgamma_rademacher, wgamma_value)
from ._losses import GLMLoss, get_loss
from ._manifold import (centered_head, hidden_features, manifold_comparison, manifold_mixup_loss,
                        manifold_rademacher, manifold_regularizer)
from ._mixing import MixupLambda
from ._mixup_loss import (CHUNK_ELEMENTS, DEFAULT_NODES, SampledEstimate, mixup_loss, mixup_loss_at, mixup_loss_error,
                          mixup_loss_sampled, mixup_loss_unmixed, squared_label_constant)
from ._models import (as_function, has_bias, is_affine, is_piecewise_linear, linear_model, linear_parameters, mlp,
                      relu_mlp, smooth_mlp, split_affine_prefix)
from ._separated import mixup_loss_separated
from ._regularizer import frozen_scale_excess, glm_regularizer, regularizer_comparison, shrunk_standard_loss
from ._robustness import ExactComparison, RobustnessBound, exact_comparison, robustness_bound
from ._robustness_softmax import robustness_bound_softmax
from ._warnings import (AccuracyWarning, ApproximationWarning, AssumptionWarning, MixupWarning,
                        UndeterminedWarning)

__all__ = [
    # mixing distributions D_λ, D̃_λ (docs/theory.md §1)
    "MixupLambda",
    # losses and models (§0)
    "GLMLoss", "get_loss", "linear_model", "mlp", "relu_mlp", "smooth_mlp",
    "as_function", "has_bias", "is_affine", "is_piecewise_linear", "linear_parameters", "split_affine_prefix",
    # exact Mixup loss and identity (I) (§2, C1)
    "mixup_loss", "mixup_loss_error", "mixup_loss_at", "mixup_loss_unmixed", "mixup_loss_sampled", "SampledEstimate",
    "mixup_loss_separated",
    "squared_label_constant", "DEFAULT_NODES", "CHUNK_ELEMENTS",
    # what a training loop minimises: moments of the per-step Mixup loss (§2.7)
    "estimator_expectation", "estimator_variance", "estimator_moments", "EstimatorMoments",
    # second-order expansion (§3, C2)
    "mixup_expansion", "Expansion", "mixup_loss_recentred",
    # robustness (§4, C4–C7, C13)
    "adversarial_loss", "adversarial_losses", "adversarial_examples",
    "robustness_bound", "RobustnessBound", "exact_comparison", "ExactComparison", "robustness_bound_softmax",
    # generalization (§5, C9–C12)
    "glm_regularizer", "shrunk_standard_loss", "frozen_scale_excess", "regularizer_comparison",
    "rademacher", "RademacherEstimate", "ellipsoid_sup", "ridge_sup",
    "retentive_constant", "retentiveness_ratio", "wgamma_bound", "wgamma_value", "wgamma_rademacher",
    "wgamma_ellipsoid_constant", "lowrank_gaussian", "intrinsic_dimension_sweep", "generalization_gap_bound",
    "hidden_features", "centered_head", "manifold_mixup_loss", "manifold_regularizer", "manifold_comparison",
    "manifold_rademacher",
    # warnings (§0): filter by class
    "MixupWarning", "AccuracyWarning", "ApproximationWarning", "AssumptionWarning", "UndeterminedWarning",
]


from . import strategies  # noqa: E402  (public submodule: hypothesis strategies, docs/own_bound.md)
