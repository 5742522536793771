"""Names of figures and datasets, shared by the CLI (datasets come from experiments.datasets)."""
from __future__ import annotations

FIGURES = ["approximation", "approximation_order", "robustness_chain", "robust_accuracy",
           "regularizer", "rademacher", "generalization_gap", "estimators"]


GPU_FIGURES = ["training_at_scale"]
"""Figures that only the ``gpu`` scale makes (they are no part of the CPU scales)."""


def figure_names(scale: str | None = None) -> list[str]:
    """The figures a run makes by default: every CPU figure, plus the GPU-only ones at ``scale="gpu"``."""
    return list(FIGURES) + (list(GPU_FIGURES) if scale == "gpu" else [])


def all_figure_names() -> list[str]:
    """Every figure that can be named on the command line."""
    return list(FIGURES) + list(GPU_FIGURES)


def figure_module(name: str):
    """The module ``experiments.figures.NAME`` of a registered figure (``name`` from :func:`all_figure_names`)."""
    import importlib

    return importlib.import_module(f"experiments.figures.{name}")


def dataset_names() -> list[str]:
    from .datasets import dataset_names as names

    return list(names())
