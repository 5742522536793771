"""C12: generalization gap vs training-set size, Mixup vs standard training.

Each task trains a ReLU MLP (``experiments.training.train``) on ``n`` training points for a fixed
number of SGD steps (epochs = ⌈steps / batches per epoch⌉, so small and large n get comparable
optimisation) and records the final clean losses and accuracies. Gap = test − train loss (both the
plain loss of the model, not the mixed objective); accuracy gap = train − test accuracy.
Bands: mean ± sd over seeds (each seed draws its own subsample, initialisation and batches).
"""
from __future__ import annotations

import math

from ._common import mean_sd, select, train_fields, train_run

NAME = "generalization_gap"
CLAIMS = "C12"
TITLE = "generalization gap vs training-set size, Mixup vs standard training"
VERSION = 1
_NET = {"model": "mlp", "hidden": [128, 128], "lr": 0.05, "batch_size": 32, "alpha": 1.0}
SCALES = {
    "smoke": {"sizes": {"digits": [60, 240], "breast_cancer": [60, 240]}, "seeds": [0, 1], "steps": 120},
    "default": {"sizes": {"digits": [50, 100, 200, 400, 800, 1347], "breast_cancer": [25, 50, 100, 200, 426]},
                "seeds": [0, 1, 2], "steps": 1500},
}
SCALES["paper"] = SCALES["default"]


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    out = []
    for ds, sizes in p["sizes"].items():
        for n in sizes:
            epochs = max(1, math.ceil(p["steps"] / math.ceil(n / _NET["batch_size"])))
            for method in ("standard", "mixup"):
                for seed in p["seeds"]:
                    out.append({"dataset": ds, **_NET, "n_train": n, "epochs": epochs, "method": method,
                                "seed": seed})
    return out


def train_config(task: dict, ctx) -> dict:
    """The training run ``compute`` performs (the runner trains such runs together as ensembles)."""
    return train_fields(task)


def compute(task: dict, ctx) -> dict:
    run = train_run(train_fields(task), ctx.device)
    last = run.history[-1]
    return {k: last[k] for k in ("train_loss", "test_loss", "train_acc", "test_acc")} | {
        "n_train": run.dataset.n_train, "n_test": int(len(run.dataset.y_test))}


def rows(task: dict, result: dict) -> list[dict]:
    return [{"dataset": task["dataset"], "method": task["method"], "seed": task["seed"], "n": result["n_train"],
             "epochs": task["epochs"], "train_loss": result["train_loss"], "test_loss": result["test_loss"],
             "loss_gap": result["test_loss"] - result["train_loss"], "train_acc": result["train_acc"],
             "test_acc": result["test_acc"], "acc_gap": result["train_acc"] - result["test_acc"]}]


def _datasets(rows):
    return list(dict.fromkeys(r["dataset"] for r in rows))


def summarize(rows: list[dict]) -> dict:
    out: dict = {"loss_gap": mean_sd(rows, ("dataset", "n", "method"), "loss_gap"),
                 "acc_gap": mean_sd(rows, ("dataset", "n", "method"), "acc_gap"),
                 "test_acc": mean_sd(rows, ("dataset", "n", "method"), "test_acc"),
                 "mixup_minus_standard": {}}
    for ds in _datasets(rows):
        for metric in ("loss_gap", "acc_gap", "test_acc"):
            diffs = {}
            for a in select(out[metric], dataset=ds, method="mixup"):
                s = select(out[metric], dataset=ds, method="standard", n=a["n"])
                if s:
                    diffs[str(a["n"])] = a[f"{metric}_mean"] - s[0][f"{metric}_mean"]
            out["mixup_minus_standard"][f"{ds}/{metric}"] = diffs
    return out


def plot(rows: list[dict], summary: dict):
    from . import style

    datasets = _datasets(rows)
    metrics = [("loss_gap", "test − train loss"), ("acc_gap", "train − test accuracy")]
    fig, axes = style.subplots(len(datasets), len(metrics))
    for i, ds in enumerate(datasets):
        for j, (metric, ylabel) in enumerate(metrics):
            ax = axes[i * len(metrics) + j]
            for method in ("standard", "mixup"):
                pts = sorted(select(summary[metric], dataset=ds, method=method), key=lambda r: r["n"])
                st = style.method_style(method)
                style.band(ax, [p["n"] for p in pts], [p[f"{metric}_mean"] for p in pts],
                           [p[f"{metric}_sd"] for p in pts], color=st["color"],
                           label=f"{st['label']} ({pts[0]['count']} seeds)")
            ax.axhline(0.0, color="0.5", linewidth=0.8)
            style.log_ticks(ax, [p["n"] for p in select(summary[metric], dataset=ds)])
            ax.set_xlabel("training-set size n")
            ax.set_ylabel(ylabel)
            ax.set_title(f"{ds}: {'loss' if metric == 'loss_gap' else 'accuracy'} gap")
            ax.legend()
    style.suptitle(fig, CLAIMS, TITLE + " (mean ± sd over seeds)")
    return fig
