"""C3/C8 at scale (``--scale gpu``): Mixup vs standard training of an MLP and a CNN on MNIST-1D with
40 000 training samples, with the exact Mixup loss tracked along training.

Each task trains one model (``experiments.training.train``; the runner trains all seeds and both
methods of a model as one ensemble, ``experiments.batched``) and measures at every
``measure_every``-th epoch the Mixup loss ``L_mix`` of the current model (``"mixup"``
measurement, docs/theory.md §2): exact (all pairs × Gauss–Jacobi nodes) where that is affordable,
else the sampled estimator with its standard error, on a fixed subsample of the training set.
Plotted per model: test accuracy and ``L_mix`` (mean ± sd over seeds; error bars of the sampled
estimator are within each run) along training.

Only the ``gpu`` scale runs it (it is no part of the CPU scales); ``SCALES["gpu"]`` fixes the sizes.
"""
from __future__ import annotations

from ._common import mean_sd, select, train_run

NAME = "training_at_scale"
CLAIMS = "C3/C8"
TITLE = "Mixup vs standard training at scale: test accuracy and L_mix along training (MNIST-1D)"
VERSION = 1
MODELS = {"mlp": {"hidden": [256, 256], "lr": 0.05}, "cnn": {"hidden": [64, 64], "lr": 0.05}}
SCALES = {
    "gpu": {"num_samples": 50_000, "epochs": 30, "batch_size": 128, "seeds": list(range(10)), "every": 3},
}


def tasks(scale: str) -> list[dict]:
    if scale not in SCALES:
        return []
    p = SCALES[scale]
    return [{"dataset": "mnist1d", "dataset_kwargs": [["num_samples", p["num_samples"]]], "model": model, **cfg,
             "method": method, "alpha": 1.0, "epochs": p["epochs"], "batch_size": p["batch_size"],
             "measure": ["mixup"], "measure_every": p["every"], "seed": seed}
            for model, cfg in MODELS.items() for method in ("standard", "mixup") for seed in p["seeds"]]


def unavailable(scale: str, ctx) -> str | None:
    return None if scale in SCALES else "only --scale gpu makes this figure"


def train_config(task: dict, ctx) -> dict:
    """The training run ``compute`` performs (the runner trains such runs together as ensembles)."""
    return task


def compute(task: dict, ctx) -> dict:
    run = train_run(task, ctx.device)
    keep = ("epoch", "train_loss", "test_loss", "test_acc", "train_objective", "mixup_loss", "mixup_loss_stderr",
            "mixup_loss_kind", "measure_n")
    return {"history": [{k: h[k] for k in keep} for h in run.history], "n_train": run.dataset.n_train,
            "seconds": run.seconds, "device": run.device}


def rows(task: dict, result: dict) -> list[dict]:
    return [{"model": task["model"], "method": task["method"], "seed": task["seed"], "n_train": result["n_train"],
             **h} for h in result["history"]]


def summarize(rows: list[dict]) -> dict:
    by = ("model", "method", "epoch")
    last = max((r["epoch"] for r in rows), default=0)
    final = mean_sd([r for r in rows if r["epoch"] == last], ("model", "method"), "test_acc")
    return {"test_acc": mean_sd(rows, by, "test_acc"), "mixup_loss": mean_sd(rows, by, "mixup_loss"),
            "final_test_acc": final, "n_train": max((r["n_train"] for r in rows), default=0),
            "exact_kinds": {m: sorted({r["mixup_loss_kind"] for r in rows if r["model"] == m})
                            for m in dict.fromkeys(r["model"] for r in rows)}}


def plot(rows: list[dict], summary: dict):
    from . import style

    models = list(dict.fromkeys(r["model"] for r in rows))
    panels = [("test_acc", "test accuracy"), ("mixup_loss", "Mixup loss L_mix (α = 1)")]
    fig, axes = style.subplots(max(1, len(models)), len(panels))
    for i, model in enumerate(models):
        for j, (metric, ylabel) in enumerate(panels):
            ax = axes[i * len(panels) + j]
            for method in ("standard", "mixup"):
                pts = sorted(select(summary[metric], model=model, method=method), key=lambda r: r["epoch"])
                if not pts:
                    continue
                st = style.method_style(method)
                style.band(ax, [p["epoch"] for p in pts], [p[f"{metric}_mean"] for p in pts],
                           [p[f"{metric}_sd"] for p in pts], color=st["color"],
                           label=f"{st['label']} ({pts[0]['count']} seeds)")
            ax.set_xlabel("epoch")
            style.integer_x(ax)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{model}, n = {summary['n_train']} ({' / '.join(summary['exact_kinds'][model])} L_mix)")
            ax.legend()
    style.suptitle(fig, CLAIMS, TITLE + " (mean ± sd over seeds)")
    return fig
