"""mixup-theory: exact quantities of the Mixup analysis (Zhang et al., ICLR 2021).

Public names follow ../shared/CONTRACT.md. Modules are imported lazily, so each layer can be
used (and tested) on its own; ``from theory import X`` and ``theory.X`` both work.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    # mixing distributions (THEORY §1)
    "MixupLambda": "theory.mixing",
    # losses and models (THEORY §0)
    "get_loss": "theory.losses",
    "linear_model": "theory.models",
    "relu_mlp": "theory.models",
    "smooth_mlp": "theory.models",
    # exact Mixup loss (THEORY §2, C1)
    "mixup_loss": "theory.mixup_loss",
    "mixup_loss_unmixed": "theory.mixup_loss",
    "mixup_loss_sampled": "theory.mixup_loss",
    "mixup_loss_error": "theory.mixup_loss",
    # second-order expansion (C2)
    "mixup_expansion": "theory.expansion",
    # robustness (C4-C7, C13)
    "adversarial_loss": "theory.adversarial",
    "robustness_bound": "theory.robustness",
    "adversarial_losses": "theory.adversarial",
    "exact_comparison": "theory.robustness",
    "robustness_bound_softmax": "theory.robustness_softmax",
    # generalization (C9-C11)
    "glm_regularizer": "theory.regularizer",
    "shrunk_standard_loss": "theory.regularizer",
    "frozen_scale_excess": "theory.regularizer",
    "regularizer_comparison": "theory.regularizer",
    "rademacher": "theory.complexity",
    "ellipsoid_sup": "theory.complexity",
    "ridge_sup": "theory.complexity",
    "retentive_constant": "theory.generalization",
    "wgamma_bound": "theory.generalization",
    "wgamma_rademacher": "theory.generalization",
    "intrinsic_dimension_sweep": "theory.generalization",
    "generalization_gap_bound": "theory.generalization",
    "hidden_features": "theory.manifold",
    "manifold_mixup_loss": "theory.manifold",
    "manifold_regularizer": "theory.manifold",
    "manifold_comparison": "theory.manifold",
    "manifold_rademacher": "theory.manifold",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'theory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


# A submodule import binds the submodule as an attribute of the package, so a public function that
# shares its module's name (``mixup_loss`` in ``theory.mixup_loss``) is bound eagerly: after this,
# ``from theory.mixup_loss import X`` no longer rebinds ``theory.mixup_loss`` to the module.
for _name, _module in _EXPORTS.items():
    if _module.rsplit(".", 1)[1] == _name:
        globals()[_name] = getattr(importlib.import_module(_module), _name)


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
