"""C8: test accuracy under attack vs ε, Mixup vs standard training (paper's Fig. 1a in spirit).

Each task trains one model (``experiments.training.train``; dataset, method, seed) and measures
``experiments.measure.accuracy_under_attack`` on a fixed test subset for every ε of two attacks:
FGSM in ℓ∞ (the paper's attack; C13 for the ℓ∞ reading) and 10-step PGD in ℓ2 (the theory's norm).
ε is in the units of the standardized inputs. Bands: mean ± sd over seeds.
CPU scales: MNIST-1D and scikit-learn digits with a ReLU MLP; paper scale: SVHN and CIFAR-10 with
WRN-16-8, read from ``--data-root`` (nothing is downloaded).
"""
from __future__ import annotations

import math

import numpy as np

from ._common import mean_sd, select, train_fields, train_run

NAME = "robust_accuracy"
CLAIMS = "C8"
TITLE = "accuracy under FGSM (ℓ∞) and PGD (ℓ2) attacks, Mixup vs standard training"
VERSION = 1
ATTACKS = {"fgsm_linf": ("fgsm", math.inf), "pgd_l2": ("pgd", 2)}
ATTACK_LABELS = {"fgsm_linf": "FGSM, ℓ∞", "pgd_l2": "PGD-10, ℓ2"}
EPS_CPU = {"fgsm_linf": [0.0, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3], "pgd_l2": [0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0]}
EPS_PAPER = {"fgsm_linf": [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2], "pgd_l2": [0.0, 0.1, 0.25, 0.5, 1.0, 1.5]}
_MLP = {"model": "mlp", "hidden": [128, 128], "lr": 0.05, "batch_size": 64, "epochs": 30}
SCALES = {
    "smoke": {"datasets": {"digits": {**_MLP, "epochs": 8, "n_train": 500}}, "seeds": [0, 1], "n_eval": 200,
              "eps": {"fgsm_linf": [0.0, 0.1, 0.2], "pgd_l2": [0.0, 1.0, 2.0]}},
    "default": {"datasets": {"mnist1d": dict(_MLP), "digits": dict(_MLP)}, "seeds": [0, 1, 2], "n_eval": 1000,
                "eps": EPS_CPU},
    "paper": {"datasets": {ds: {"model": "wrn16_8", "lr": 0.1, "batch_size": 128, "epochs": 30,
                                "weight_decay": 5e-4, "hidden": [64, 64]} for ds in ("svhn", "cifar10")},
              "seeds": [0, 1, 2], "n_eval": 2000, "eps": EPS_PAPER},
}
PAPER_FILES = {"svhn": ["train_32x32.mat"], "cifar10": ["data_batch_1"]}


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    return [{"dataset": ds, **cfg, "method": method, "alpha": 1.0, "seed": seed, "n_eval": p["n_eval"],
             "eps": p["eps"]}
            for ds, cfg in p["datasets"].items() for method in ("standard", "mixup") for seed in p["seeds"]]


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
                        "seed": task["seed"], "attack": name, "eps": e, "accuracy": a,
                        "clean_test_acc": result["test_acc"], "n_eval": result["n_eval"]})
    return out


def _datasets(rows):
    return list(dict.fromkeys(r["dataset"] for r in rows))


def summarize(rows: list[dict]) -> dict:
    agg = mean_sd(rows, ("dataset", "attack", "eps", "method"), "accuracy")
    out: dict = {"mean_sd": agg, "mixup_minus_standard": {}, "seeds": sorted({r["seed"] for r in rows})}
    for ds in _datasets(rows):
        for attack in ATTACKS:
            diffs = {}
            for a in select(agg, dataset=ds, attack=attack, method="mixup"):
                s = select(agg, dataset=ds, attack=attack, method="standard", eps=a["eps"])
                if s:
                    diffs[str(a["eps"])] = a["accuracy_mean"] - s[0]["accuracy_mean"]
            if diffs:
                out["mixup_minus_standard"][f"{ds}/{attack}"] = diffs
    return out


def plot(rows: list[dict], summary: dict):
    from . import style

    datasets = _datasets(rows)
    fig, axes = style.subplots(len(datasets), len(ATTACKS))
    agg = summary["mean_sd"]
    for i, ds in enumerate(datasets):
        for j, attack in enumerate(ATTACKS):
            ax = axes[i * len(ATTACKS) + j]
            for method in ("standard", "mixup"):
                pts = sorted(select(agg, dataset=ds, attack=attack, method=method), key=lambda r: r["eps"])
                if not pts:
                    continue
                st = style.method_style(method)
                style.band(ax, [p["eps"] for p in pts], [p["accuracy_mean"] for p in pts],
                           [p["accuracy_sd"] for p in pts], color=st["color"],
                           label=f"{st['label']} ({pts[0]['count']} seeds)")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel(f"ε ({'ℓ∞' if attack == 'fgsm_linf' else 'ℓ2'}, standardized inputs)")
            ax.set_ylabel("test accuracy under attack")
            ax.set_title(f"{ds}: {ATTACK_LABELS[attack]}")
            ax.legend(loc="lower left")
    style.suptitle(fig, CLAIMS, TITLE + " (mean ± sd over seeds)")
    return fig
