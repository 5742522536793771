"""C12: generalization gap vs training-set size, Mixup (α sweep) vs standard training.

Each task trains a ReLU MLP (``experiments.training.train``) on ``n`` training points for a fixed
number of SGD steps (epochs = ⌈steps / batches per epoch⌉, so small and large n get comparable
optimisation) and records the final clean losses and accuracies. Both gaps are oriented so that
positive means "worse on test than on train" (overfitting): loss gap = test − train loss (the plain
loss of the model, not the mixed objective), accuracy gap = train − test accuracy.

Statistics (docs/theory.md §6): for every (dataset, α) the reduction of the loss gap, standard minus
Mixup, is paired by seed (each seed draws its own subsample, initialisation and batches, shared by
both methods), averaged over the sizes n and given a 95 % t interval: supported above 0, contradicted
below 0, inconclusive otherwise. The per-n reductions are drawn with their intervals as bands.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import (claim_verdict, datasets_of, empirical_title, mean_ci, method_bands, run_label, select, shown_alpha, train_fields,
                      train_run)

NAME = "generalization_gap"
CLAIMS = "C12"
TITLE = "generalization gap vs training-set size, Mixup vs standard training"
VERSION = 1  # the cache key holds every config field, so new α/seeds add entries
_NET = {"model": "mlp", "hidden": [128, 128], "lr": 0.05, "batch_size": 32}
SCALES = {
    "smoke": {"sizes": {"digits": [60, 240], "breast_cancer": [60, 240]}, "seeds": [0, 1], "steps": 120,
              "alphas": [0.2, 1.0]},
    "default": {"sizes": {"digits": [50, 100, 200, 400, 800, 1347], "breast_cancer": [25, 50, 100, 200, 426]},
                "seeds": [0, 1, 2, 3, 4], "steps": 1500, "alphas": [0.2, 1.0, 4.0]},
}
SCALES["paper"] = SCALES["default"]
PAPER_ALPHA = 1.0
METRICS = {"loss_gap": "generalization gap: test − train loss", "acc_gap": "generalization gap: train − test accuracy"}


def tasks(scale: str) -> list[dict]:
    """Per (dataset, n, seed): one standard run and one Mixup run per α (standard runs carry α = 1,
    unused, because the training config has the field)."""
    p = SCALES[scale]
    runs = [("standard", 1.0)] + [("mixup", a) for a in p["alphas"]]
    out = []
    for ds, sizes in p["sizes"].items():
        for n in sizes:
            epochs = max(1, math.ceil(p["steps"] / math.ceil(n / _NET["batch_size"])))
            for method, alpha in runs:
                for seed in p["seeds"]:
                    out.append({"dataset": ds, **_NET, "alpha": alpha, "n_train": n, "epochs": epochs,
                                "method": method, "seed": seed, "measure_every": epochs})  # final epoch only
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
    return [{"dataset": task["dataset"], "method": task["method"],
             "alpha": task["alpha"] if task["method"] != "standard" else None, "seed": task["seed"],
             "n": result["n_train"], "epochs": task["epochs"], "train_loss": result["train_loss"],
             "test_loss": result["test_loss"], "loss_gap": result["test_loss"] - result["train_loss"],
             "train_acc": result["train_acc"], "test_acc": result["test_acc"],
             "acc_gap": result["train_acc"] - result["test_acc"]}]


def _by_seed(rows, metric: str) -> dict:
    """``{(dataset, run label, n): {seed: value}}``."""
    out: dict = {}
    for r in rows:
        v = float(r[metric])
        if math.isfinite(v):
            out.setdefault((r["dataset"], run_label(r["method"], r.get("alpha")), int(r["n"])), {})[r["seed"]] = v
    return out


def reductions(rows: list[dict]) -> list[dict]:
    """Per (dataset, α, n): loss-gap reduction standard − Mixup, paired by seed, with its 95 % interval."""
    from experiments import stats

    g = _by_seed(rows, "loss_gap")
    out = []
    for (ds, label, n), mix in sorted(g.items()):
        if label == "standard" or (ds, "standard", n) not in g:
            continue
        iv = stats.paired_interval(g[(ds, "standard", n)], mix)
        out.append({"dataset": ds, "alpha": float(label.split("=")[1]), "n": n, "mean": iv.mean, "low": iv.low,
                    "high": iv.high, "count": iv.n, "decision": stats.decide(iv)})
    return out


def claim_intervals(rows: list[dict]) -> dict:
    """C12 per (dataset, α): the loss-gap reduction standard − Mixup averaged over n, paired by seed,
    with its 95 % t interval and decision (``{"dataset/alpha=A": {mean, low, high, n, decision}}``)."""
    from experiments import stats

    g = _by_seed(rows, "loss_gap")
    per: dict = {}
    for (ds, label, n), mix in g.items():
        if label == "standard" or (ds, "standard", n) not in g:
            continue
        std = g[(ds, "standard", n)]
        for s in set(mix) & set(std):
            per.setdefault((ds, label), {}).setdefault(s, []).append(std[s] - mix[s])
    out = {}
    for (ds, label), by_seed in sorted(per.items()):
        sizes = max(len(v) for v in by_seed.values())
        complete = [float(np.mean(v)) for v in by_seed.values() if len(v) == sizes]  # seeds with every n
        iv = stats.mean_interval(complete)
        out[f"{ds}/alpha={label.split('=')[1]}"] = {**iv.as_dict(), "decision": stats.decide(iv), "sizes": sizes}
    return out


def _mean_ci(rows, metric):
    """Mean ``metric`` with its 95 % t interval over seeds per (dataset, run, n)."""
    return mean_ci({k: by_seed.values() for k, by_seed in _by_seed(rows, metric).items()}, ("dataset", "run", "n"))


def summarize(rows: list[dict]) -> dict:
    intervals = claim_intervals(rows)
    decision, tally = claim_verdict(intervals)
    out: dict = {metric: _mean_ci(rows, metric) for metric in ("loss_gap", "acc_gap", "test_acc")}
    red = reductions(rows)
    smallest_vs_largest = {}
    for ds in datasets_of(rows):
        pts = [r for r in red if r["dataset"] == ds and r["alpha"] == PAPER_ALPHA]
        if pts:
            lo, hi = min(pts, key=lambda r: r["n"]), max(pts, key=lambda r: r["n"])
            smallest_vs_largest[ds] = {f"n={lo['n']}": [lo["mean"], lo["low"], lo["high"]],
                                       f"n={hi['n']}": [hi["mean"], hi["low"], hi["high"]]}
    out.update({"reductions": red, "intervals": intervals, "verdict": decision, "tally": tally,
                "smallest_vs_largest_n": smallest_vs_largest, "seeds": sorted({r["seed"] for r in rows}),
                "alphas": sorted({float(r["alpha"]) for r in rows if r.get("alpha") is not None})})
    return out


ALPHA_COLORS = ["#F2B27E", "#DD8452", "#8C3B0F", "#5A2509"]


def plot(rows: list[dict], summary: dict):
    from experiments.stats import LEVEL

    from . import style

    datasets = datasets_of(rows)
    alphas = summary.get("alphas") or [PAPER_ALPHA]
    shown = shown_alpha(alphas, PAPER_ALPHA)
    ncol = len(METRICS) + 1
    fig, axes = style.subplots(len(datasets), ncol)
    for i, ds in enumerate(datasets):
        sizes = sorted({r["n"] for r in select(summary["loss_gap"], dataset=ds)})
        for j, (metric, ylabel) in enumerate(METRICS.items()):
            ax = axes[i * ncol + j]
            method_bands(ax, summary[metric], "n", shown, dataset=ds)
            ax.axhline(0.0, color="0.5", linewidth=0.8)
            style.log_ticks(ax, sizes)
            ax.set_xlabel("training-set size n")
            ax.set_ylabel(ylabel.replace(": ", ":\n"))
            ax.set_title(f"{ds}: {'loss' if metric == 'loss_gap' else 'accuracy'} gap (> 0: overfits)")
        ax = axes[i * ncol + ncol - 1]
        for k, a in enumerate(alphas):
            pts = sorted((r for r in summary["reductions"] if r["dataset"] == ds and r["alpha"] == a),
                         key=lambda r: r["n"])
            if not pts:
                continue
            iv = summary["intervals"].get(f"{ds}/alpha={a:g}", {})
            style.ci_band(ax, [p["n"] for p in pts], [p["mean"] for p in pts], [p["low"] for p in pts],
                          [p["high"] for p in pts], color=ALPHA_COLORS[k % len(ALPHA_COLORS)],
                          label=f"α = {a:g}: {iv.get('decision', '?')}", marker="os^D"[k % 4])
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        style.log_ticks(ax, sizes)
        ax.set_xlabel("training-set size n")
        ax.set_ylabel("loss-gap reduction:\nstandard − Mixup (paired by seed)")
        ax.set_title(f"{ds}: reduction (> 0: Mixup better)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), title="mean over n", title_fontsize=7)
    empirical_title(fig, CLAIMS, TITLE, summary, "(dataset, α) settings; loss-gap reduction averaged over n", [axes[0]])
    return fig
