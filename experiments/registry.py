"""Names of figures and datasets, shared by the CLI (datasets come from experiments.datasets)."""
from __future__ import annotations

FIGURES = ["approximation", "approximation_order", "robustness_chain", "robust_accuracy",
           "regularizer", "rademacher", "generalization_gap"]


def figure_names() -> list[str]:
    return list(FIGURES)


def dataset_names() -> list[str]:
    from .datasets import dataset_names as names

    return list(names())
