"""C8: test accuracy under attack vs ε, Mixup vs standard training (paper's Fig. 1a in spirit).

Each task trains one model (``experiments.training.train``; dataset, method, α, seed) and measures
``experiments.measure.accuracy_under_attack`` on a fixed test subset for every ε of two attacks:
FGSM in ℓ∞ (the paper's attack; C13 for the ℓ∞ reading) and 10-step PGD in ℓ2 (the theory's norm).
ε is in the units of the standardized inputs.

Statistics (docs/theory.md §6): the score of a run is its mean accuracy over ε > 0. For every
(dataset, attack, α) the Mixup score minus the standard score is paired by seed (same subsample,
initialisation and batch order) and given a 95 % t interval; the claim is supported there when the
interval lies above 0, contradicted when below, inconclusive otherwise. Bands: 95 % intervals of
the mean accuracy over seeds. CPU scales: MNIST-1D and scikit-learn digits with a ReLU MLP; paper
scale: SVHN and CIFAR-10 with WRN-16-8, read from ``--data-root`` (nothing is downloaded).
"""
from __future__ import annotations

import math

import numpy as np

from ._common import (claim_verdict, datasets_of, empirical_title, mean_ci, mean_sd, method_bands, run_label, select, shown_alpha,
                      train_fields, train_run)

NAME = "robust_accuracy"
CLAIMS = "C8"
TITLE = "accuracy under FGSM (ℓ∞) and PGD (ℓ2) attacks, Mixup vs standard training"
VERSION = 1  # the cache key holds every config field, so new α/seeds add entries
ATTACKS = {"fgsm_linf": ("fgsm", math.inf), "pgd_l2": ("pgd", 2)}
ATTACK_LABELS = {"fgsm_linf": "FGSM, ℓ∞", "pgd_l2": "PGD-10, ℓ2"}
EPS_CPU = {"fgsm_linf": [0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3], "pgd_l2": [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]}
EPS_PAPER = {"fgsm_linf": [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2], "pgd_l2": [0.0, 0.1, 0.25, 0.5, 1.0, 1.5]}
_MLP = {"model": "mlp", "hidden": [128, 128], "lr": 0.05, "batch_size": 64, "epochs": 30}
SCALES = {
    "smoke": {"datasets": {"digits": {**_MLP, "epochs": 8, "n_train": 500}}, "seeds": [0, 1], "n_eval": 200,
              "alphas": [0.2, 1.0], "eps": {"fgsm_linf": [0.0, 0.1, 0.2], "pgd_l2": [0.0, 1.0, 2.0]}},
    "default": {"datasets": {"mnist1d": dict(_MLP), "digits": dict(_MLP)}, "seeds": [0, 1, 2, 3, 4],
                "n_eval": 1000, "alphas": [0.2, 1.0, 4.0], "eps": EPS_CPU},
    "paper": {"datasets": {ds: {"model": "wrn16_8", "lr": 0.1, "batch_size": 128, "epochs": 30,
                                "weight_decay": 5e-4, "hidden": [64, 64]} for ds in ("svhn", "cifar10")},
              "seeds": [0, 1, 2, 3, 4], "n_eval": 2000, "alphas": [1.0], "eps": EPS_PAPER},
}
PAPER_ALPHA = 1.0
"""The α of the paper's Fig. 1a: the accuracy panels show Mixup at this α (the sweep is in the last column)."""
PAPER_FILES = {"svhn": ["train_32x32.mat"], "cifar10": ["data_batch_1"]}


def tasks(scale: str) -> list[dict]:
    """One standard run per (dataset, seed) and one Mixup run per (dataset, α, seed); the standard
    runs carry ``alpha = 1`` only because the training config has the field (it is unused)."""
    p = SCALES[scale]
    runs = [("standard", 1.0)] + [("mixup", a) for a in p["alphas"]]
    return [{"dataset": ds, **cfg, "method": method, "alpha": alpha, "seed": seed, "n_eval": p["n_eval"],
             "eps": p["eps"]}
            for ds, cfg in p["datasets"].items() for method, alpha in runs for seed in p["seeds"]]


def unavailable(scale: str, ctx) -> str | None:
    """At paper scale the image files must be on disk (``--data-root`` or $MIXUP_THEORY_DATA)."""
    if scale != "paper":
        return None
    from experiments import datasets

    missing = []
    for ds, names in PAPER_FILES.items():
        try:
            datasets._find(ctx.data_root, names, ds)
        except FileNotFoundError as exc:
            missing.append(str(exc))
    return "; ".join(missing) or None


def train_config(task: dict, ctx) -> dict:
    """The training run ``compute`` performs (the runner trains such runs together as ensembles)."""
    fields = train_fields(task)
    return {**fields, "dataset_kwargs": [["root", ctx.data_root]]} if ctx.data_root else fields


def compute(task: dict, ctx) -> dict:
    from experiments.measure import accuracy_under_attack

    kwargs = {"root": ctx.data_root} if ctx.data_root else {}
    result = train_run(train_fields(task), ctx.device, **({"dataset_kwargs": list(kwargs.items())} if kwargs else {}))
    ds = result.dataset
    idx = np.sort(np.random.default_rng([task["seed"], 7]).permutation(len(ds.y_test))[:task["n_eval"]])
    X, y = ds.X_test[idx], ds.y_test[idx]
    curves = {}
    for name, eps_list in task["eps"].items():
        attack, norm = ATTACKS[name]
        curves[name] = [accuracy_under_attack(result.model, X, y, float(e), norm, attack, seed=task["seed"])
                        for e in eps_list]
    last = result.history[-1]
    return {"curves": curves, "train_acc": last["train_acc"], "test_acc": last["test_acc"],
            "n_eval": int(len(y)), "train_seconds": result.seconds}


def rows(task: dict, result: dict) -> list[dict]:
    out = []
    for name, accs in result["curves"].items():
        for e, a in zip(task["eps"][name], accs):
            out.append({"dataset": task["dataset"], "model": task["model"], "method": task["method"],
                        "alpha": task["alpha"] if task["method"] != "standard" else None,
                        "seed": task["seed"], "attack": name, "eps": e, "accuracy": a,
                        "clean_test_acc": result["test_acc"], "n_eval": result["n_eval"]})
    return out


def scores(rows: list[dict]) -> dict:
    """``{(dataset, attack, run label): {seed: mean accuracy over ε > 0}}`` (the per-run score of C8)."""
    acc: dict = {}
    for r in rows:
        eps, a = float(r["eps"]), float(r["accuracy"])
        if not (eps > 0 and math.isfinite(a)):
            continue
        key = (r["dataset"], r["attack"], run_label(r["method"], r.get("alpha")))
        acc.setdefault(key, {}).setdefault(r["seed"], []).append(a)
    return {k: {s: float(np.mean(v)) for s, v in by_seed.items()} for k, by_seed in acc.items()}


def claim_intervals(rows: list[dict]) -> dict:
    """C8 per (dataset, attack, α): paired (by seed) Mixup − standard mean accuracy over ε > 0, with its
    95 % t interval and decision. Returns ``{"dataset/attack/alpha=A": {mean, low, high, n, decision}}``."""
    from experiments import stats

    sc = scores(rows)
    out = {}
    for (ds, attack, label), by_seed in sorted(sc.items()):
        if label == "standard" or (ds, attack, "standard") not in sc:
            continue
        iv = stats.paired_interval(by_seed, sc[(ds, attack, "standard")])
        out[f"{ds}/{attack}/alpha={label.split('=')[1]}"] = {**iv.as_dict(), "decision": stats.decide(iv)}
    return out


def _mean_ci(rows: list[dict]) -> list[dict]:
    """Mean accuracy with its 95 % t interval over seeds per (dataset, attack, run, ε)."""
    groups: dict = {}
    for r in rows:
        key = (r["dataset"], r["attack"], run_label(r["method"], r.get("alpha")), float(r["eps"]))
        groups.setdefault(key, []).append(float(r["accuracy"]))
    return mean_ci(groups, ("dataset", "attack", "run", "eps"))


def summarize(rows: list[dict]) -> dict:
    intervals = claim_intervals(rows)
    decision, tally = claim_verdict(intervals)
    return {"mean_ci": _mean_ci(rows), "intervals": intervals, "verdict": decision, "tally": tally,
            "seeds": sorted({r["seed"] for r in rows}),
            "alphas": sorted({float(r["alpha"]) for r in rows if r.get("alpha") is not None})}


def plot(rows: list[dict], summary: dict):
    from experiments.stats import LEVEL

    from . import style

    datasets = datasets_of(rows)
    ncol = len(ATTACKS) + 1
    fig, axes = style.subplots(len(datasets), ncol)
    agg = summary["mean_ci"]
    alphas = summary.get("alphas") or [PAPER_ALPHA]
    shown = shown_alpha(alphas, PAPER_ALPHA)
    for i, ds in enumerate(datasets):
        for j, attack in enumerate(ATTACKS):
            ax = axes[i * ncol + j]
            method_bands(ax, agg, "eps", shown, dataset=ds, attack=attack)
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel(f"ε ({'ℓ∞' if attack == 'fgsm_linf' else 'ℓ2'}, standardized inputs)")
            ax.set_ylabel("test accuracy under attack")
            ax.set_title(f"{ds}: {ATTACK_LABELS[attack]}")
        ax = axes[i * ncol + ncol - 1]
        for j, attack in enumerate(ATTACKS):
            items = sorted(((float(k.rsplit("=", 1)[1]), v) for k, v in summary["intervals"].items()
                            if k.startswith(f"{ds}/{attack}/")), key=lambda kv: kv[0])
            if not items:
                continue
            x = np.arange(len(items)) + (j - 0.5) * 0.2
            for xk, (a, v) in zip(x, items):
                lo = v["low"] if math.isfinite(v["low"]) else v["mean"]
                hi = v["high"] if math.isfinite(v["high"]) else v["mean"]
                ax.errorbar([xk], [v["mean"]], yerr=[[v["mean"] - lo], [hi - v["mean"]]],
                            fmt="os"[j], color=style.decision_color(v["decision"]), capsize=3)
            ax.set_xticks(np.arange(len(items)), [f"{a:g}" for a, _ in items])
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        ax.set_xlabel("Mixup α (circles: FGSM ℓ∞, squares: PGD ℓ2)")
        ax.set_ylabel("Mixup − standard accuracy\n(mean over ε > 0, paired by seed)")
        ax.set_title(f"{ds}: effect with {LEVEL:.0%} interval\n(green: supported, grey: inconclusive, red: contradicted)",
                     fontsize=8)
    empirical_title(fig, CLAIMS, TITLE, summary, "(dataset, attack, α) settings", [axes[0]])
    return fig
