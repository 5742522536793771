"""Names of figures and datasets, shared by the CLI (filled in by the figure and data modules)."""
from __future__ import annotations

FIGURES = ["approximation", "approximation_order", "robustness_chain", "robust_accuracy",
           "regularizer", "rademacher", "generalization_gap"]
DATASETS = ["two_moons", "digits", "digits01", "breast_cancer", "mnist1d", "lowrank_gaussian"]


def figure_names() -> list[str]:
    return list(FIGURES)


def dataset_names() -> list[str]:
    return list(DATASETS)
