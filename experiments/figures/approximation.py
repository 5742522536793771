"""C3: exact Mixup loss vs its second-order approximation along Mixup training (paper's two-moons experiment).

For each problem a model is trained with Mixup (α = 1) by ``experiments.training.train`` with the
per-epoch measurements ``"mixup"`` (exact ``L_mix``: all pairs × Gauss–Jacobi nodes) and
``"expansion"`` (``L̃_mix = L_std + R1 + R2 + R3``, C2). Plotted: both losses (and ``L_std``) per
epoch, and the relative error ``|L̃_mix − L_mix| / L_mix``. Problems: two-moons with logistic
regression and with a ReLU MLP (R3 = 0 a.e.), and breast cancer with logistic regression.
"""
from __future__ import annotations

from ._common import select, train_run

NAME = "approximation"
CLAIMS = "C3"
TITLE = "exact Mixup loss L_mix vs second-order approximation L̃_mix during Mixup training (α = 1)"
VERSION = 1
PROBLEMS = [("two_moons", "logistic"), ("two_moons", "mlp"), ("breast_cancer", "logistic")]
SCALES = {
    "smoke": {"two_moons": 80, "breast_cancer": 120, "epochs": 4, "hidden": [16, 16], "every": 1},
    "default": {"two_moons": 200, "breast_cancer": None, "epochs": 20, "hidden": [32, 32], "every": 2},
}
SCALES["paper"] = SCALES["default"]


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    return [{"dataset": ds, "model": model, "method": "mixup", "alpha": 1.0, "epochs": p["epochs"],
             "hidden": p["hidden"], "n_train": p[ds], "lr": 0.1, "batch_size": 32,
             "measure": ["mixup", "expansion"], "measure_every": p["every"], "seed": 0}
            for ds, model in PROBLEMS]


def train_config(task: dict, ctx) -> dict:
    """The training run ``compute`` performs (with measurements: the runner trains it alone)."""
    return task


def compute(task: dict, ctx) -> dict:
    result = train_run(task, ctx.device)
    return {"history": result.history, "seconds": result.seconds, "device": result.device}


def rows(task: dict, result: dict) -> list[dict]:
    out = []
    for h in result["history"]:
        exact, approx = h["mixup_loss"], h["exp_approx"]
        out.append({"dataset": task["dataset"], "model": task["model"], "seed": task["seed"],
                    "n": h["measure_n"], "epoch": h["epoch"], "exact": exact,
                    "exact_kind": h["mixup_loss_kind"], "exact_stderr": h["mixup_loss_stderr"],
                    "approx": approx, "rel_error": abs(approx - exact) / abs(exact),
                    "standard": h["exp_standard"], "r1": h["exp_r1"], "r2": h["exp_r2"], "r3": h["exp_r3"],
                    "train_acc": h["train_acc"], "test_acc": h["test_acc"]})
    return out


def _problems(rows):
    seen = []
    for r in rows:
        if (r["dataset"], r["model"]) not in seen:
            seen.append((r["dataset"], r["model"]))
    return seen


def summarize(rows: list[dict]) -> dict:
    out = {"final_rel_error": {}, "max_rel_error": {}, "median_rel_error": {}, "exact_kinds": {}}
    for ds, model in _problems(rows):
        rs = sorted(select(rows, dataset=ds, model=model), key=lambda r: r["epoch"])
        errs = sorted(r["rel_error"] for r in rs)
        key = f"{ds}/{model}"
        out["final_rel_error"][key] = rs[-1]["rel_error"]
        out["max_rel_error"][key] = errs[-1]
        out["median_rel_error"][key] = errs[len(errs) // 2]
        out["exact_kinds"][key] = sorted({r["exact_kind"] for r in rs})
    return out


def plot(rows: list[dict], summary: dict):
    from . import style

    problems = _problems(rows)
    fig, axes = style.subplots((len(problems) + 2) // 2, 2)
    for k, (ds, model) in enumerate(problems):
        ax = axes[k]
        rs = sorted(select(rows, dataset=ds, model=model), key=lambda r: r["epoch"])
        ep = [r["epoch"] for r in rs]
        ax.plot(ep, [r["exact"] for r in rs], "o-", color=style.PALETTE[0], label="L_mix (exact)")
        ax.plot(ep, [r["approx"] for r in rs], "s--", color=style.PALETTE[1], label="L̃_mix = L_std+R1+R2+R3")
        ax.plot(ep, [r["standard"] for r in rs], ":", color=style.PALETTE[7], label="L_std")
        ax.set_title(f"{ds}, {model} (n = {rs[0]['n']})")
        style.integer_x(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        axes[-1].plot(ep, [r["rel_error"] for r in rs], "o-", color=style.PALETTE[2 + k], label=f"{ds}, {model}")
    ax = axes[-1]
    style.integer_x(ax)
    ax.set_yscale("log")
    style.plain_log_labels(ax, "y")
    ax.set_xlabel("epoch")
    ax.set_ylabel("|L̃_mix − L_mix| / L_mix")
    ax.set_title("relative error")
    ax.legend()
    style.suptitle(fig, CLAIMS, TITLE)
    style.figure_legend(fig, [axes[0]], ncol=3)
    return fig
