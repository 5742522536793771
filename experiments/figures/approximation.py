"""C3: exact Mixup loss vs its second-order approximation along Mixup training (paper's two-moons experiment).

For each problem a model is trained with Mixup (α = 1) by ``experiments.training.train`` with the
per-epoch measurements ``"mixup"`` (exact ``L_mix``: all pairs × Gauss–Jacobi nodes) and
``"expansion"`` (``L̃_mix = L_std + R1 + R2 + R3``, C2). Plotted: both losses (and ``L_std``) per
epoch, and the relative error ``|L̃_mix − L_mix| / L_mix``. Beside it, the re-centred expansion of
Carratino et al. (``form="carratino"``, docs/theory.md §3.4–§3.5: around the shrunk points
``x̄ + θ̄(x_i − x̄)``), against the same exact loss. Problems: two-moons with logistic
regression and with a ReLU MLP (R3 = 0 a.e.), and breast cancer with logistic regression.

Verdict (docs/theory.md §6): the paper's experiment is two-moons at α = 1; for each two-moons model
the final-epoch relative error over seeds gets a 95 % t interval, and the claim "L̃_mix tracks
L_mix" is supported when the interval lies below ``THRESHOLD`` (10 %), contradicted when above it,
inconclusive otherwise. Breast cancer is context (not the paper's experiment). Curves: mean over seeds.
"""
from __future__ import annotations

from ._common import claim_verdict, select, train_run

NAME = "approximation"
CLAIMS = "C3"
TITLE = "exact Mixup loss L_mix vs second-order approximation L̃_mix during Mixup training (α = 1)"
VERSION = 2
PROBLEMS = [("two_moons", "logistic"), ("two_moons", "mlp"), ("breast_cancer", "logistic")]
SCALES = {
    "smoke": {"two_moons": 80, "breast_cancer": 120, "epochs": 4, "hidden": [16, 16], "every": 1, "seeds": [0, 1]},
    "default": {"two_moons": 200, "breast_cancer": None, "epochs": 20, "hidden": [32, 32], "every": 2,
                "seeds": [0, 1, 2, 3, 4]},
}
THRESHOLD = 0.10
"""Our reading of "tracks": relative error |L̃_mix − L_mix| / L_mix at most 10 % (paper_checks.md, C3)."""
JUDGED = ("two_moons",)
"""Datasets of the paper's experiment: their models decide the verdict; the others are context."""
SCALES["paper"] = SCALES["default"]


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    return [{"dataset": ds, "model": model, "method": "mixup", "alpha": 1.0, "epochs": p["epochs"],
             "hidden": p["hidden"], "n_train": p[ds], "lr": 0.1, "batch_size": 32,
             "measure": ["mixup", "expansion"], "measure_every": p["every"], "seed": seed}
            for ds, model in PROBLEMS for seed in p["seeds"]]


def train_config(task: dict, ctx) -> dict:
    """The training run ``compute`` performs (with measurements: the runner trains it alone)."""
    return task


def cost(task: dict) -> float:
    """Rough seconds on one core of the per-epoch measurements (for scheduling only): the exact L_mix
    of a ReLU MLP (~0.4 s at n = 200) dominates; a logistic model's is cheap."""
    per_measurement = 0.4 if task["model"] == "mlp" else 0.05
    return per_measurement * task["epochs"] / task["measure_every"]


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
                    "approx_carratino": h["exp_c_approx"],
                    "rel_error_carratino": abs(h["exp_c_approx"] - exact) / abs(exact),
                    "standard": h["exp_standard"], "r1": h["exp_r1"], "r2": h["exp_r2"], "r3": h["exp_r3"],
                    "train_acc": h["train_acc"], "test_acc": h["test_acc"]})
    return out


def _problems(rows):
    seen = []
    for r in rows:
        if (r["dataset"], r["model"]) not in seen:
            seen.append((r["dataset"], r["model"]))
    return seen


def final_errors(rows: list[dict], key_name: str = "rel_error") -> dict:
    """``{"dataset/model": {seed: relative error at the last measured epoch}}`` (``key_name``: the
    paper form's ``rel_error`` or the re-centred form's ``rel_error_carratino``)."""
    last: dict = {}
    for r in rows:
        key = f"{r['dataset']}/{r['model']}"
        seed = r.get("seed", 0)
        if seed not in last.setdefault(key, {}) or r["epoch"] >= last[key][seed][0]:
            last[key][seed] = (r["epoch"], float(r[key_name]))
    return {k: {s: v[1] for s, v in by_seed.items()} for k, by_seed in last.items()}


def claim_intervals(rows: list[dict]) -> dict:
    """C3 per problem: final-epoch relative error over seeds, 95 % t interval, decision against
    ``THRESHOLD`` (``judged``: whether the problem is the paper's experiment)."""
    from experiments import stats

    out = {}
    for key, by_seed in sorted(final_errors(rows).items()):
        iv = stats.mean_interval(list(by_seed.values()))
        out[key] = {**iv.as_dict(), "decision": stats.decide(iv, boundary=THRESHOLD, predicted="below"),
                    "judged": key.split("/")[0] in JUDGED}
    return out


def summarize(rows: list[dict]) -> dict:
    out = {"final_rel_error": {}, "max_rel_error": {}, "median_rel_error": {}, "exact_kinds": {}}
    for ds, model in _problems(rows):
        rs = sorted(select(rows, dataset=ds, model=model), key=lambda r: r["epoch"])
        errs = sorted(r["rel_error"] for r in rs)
        key = f"{ds}/{model}"
        out["final_rel_error"][key] = max(r["rel_error"] for r in rs if r["epoch"] == rs[-1]["epoch"])
        out["max_rel_error"][key] = errs[-1]
        out["median_rel_error"][key] = errs[len(errs) // 2]
        out["exact_kinds"][key] = sorted({r["exact_kind"] for r in rs})
    intervals = claim_intervals(rows)
    decision, tally = claim_verdict(intervals)
    from experiments import stats

    out["carratino_intervals"] = {k: stats.mean_interval(list(v.values())).as_dict()
                                  for k, v in sorted(final_errors(rows, "rel_error_carratino").items())}
    out.update({"intervals": intervals, "verdict": decision, "tally": tally, "threshold": THRESHOLD,
                "seeds": sorted({r.get("seed", 0) for r in rows})})
    return out


def _curve(rs, key):
    """``(epochs, mean, low, high)`` of ``key`` over seeds per epoch (95 % t interval)."""
    from experiments import stats

    epochs = sorted({r["epoch"] for r in rs})
    ivs = [stats.mean_interval([r[key] for r in rs if r["epoch"] == e]) for e in epochs]
    return epochs, [i.mean for i in ivs], [i.low for i in ivs], [i.high for i in ivs]


def plot(rows: list[dict], summary: dict):
    from experiments.stats import LEVEL

    from . import style

    problems = _problems(rows)
    fig, axes = style.subplots((len(problems) + 2) // 2, 2)
    err_ax = axes[len(problems)]
    for k, (ds, model) in enumerate(problems):
        ax = axes[k]
        rs = select(rows, dataset=ds, model=model)
        for key, label, fmt, color in (("exact", "L_mix (exact)", "o-", style.PALETTE[0]),
                                       ("approx", "L̃_mix = L_std+R1+R2+R3", "s--", style.PALETTE[1]),
                                       ("approx_carratino", "re-centred expansion (Carratino et al.)", "d-.",
                                        style.PALETTE[6]),
                                       ("standard", "L_std", ":", style.PALETTE[7])):
            ep, mean, _, _ = _curve(rs, key)
            ax.plot(ep, mean, fmt, color=color, label=label)
        iv = summary.get("intervals", {}).get(f"{ds}/{model}")
        note = "" if iv is None else f"\nfinal rel. error, paper {iv['mean']:.3f} [{iv['low']:.3f}, {iv['high']:.3f}]"
        ivc = summary.get("carratino_intervals", {}).get(f"{ds}/{model}")
        if ivc is not None:
            note += f"\nre-centred {ivc['mean']:.3f} [{ivc['low']:.3f}, {ivc['high']:.3f}]"
        context = "" if iv is None or iv["judged"] else ", context"
        ax.set_title(f"{ds}, {model} (n = {rs[0]['n']}{context}){note}", fontsize=8)
        style.integer_x(ax)
        ax.set_xlabel("epoch of Mixup training (α = 1)")
        ax.set_ylabel("loss (mean over seeds)")
        ep, mean, lo, hi = _curve(rs, "rel_error")
        lo = [max(v, m / 4) for v, m in zip(lo, mean)]  # log axis: a band reaching 0 is cut at mean/4
        style.ci_band(err_ax, ep, mean, lo, hi, color=style.PALETTE[2 + k], label=f"{ds}, {model}: paper")
        ep, mean, lo, hi = _curve(rs, "rel_error_carratino")
        lo = [max(v, m / 4) for v, m in zip(lo, mean)]
        style.ci_band(err_ax, ep, mean, lo, hi, color=style.PALETTE[2 + k], label=f"{ds}, {model}: re-centred",
                      marker="d", linestyle=":")
    threshold = summary.get("threshold", THRESHOLD)
    err_ax.axhline(threshold, color="#C62828", linestyle="--", linewidth=1.2, label=f"threshold {threshold:.0%}")
    style.integer_x(err_ax)
    err_ax.set_yscale("log")
    style.plain_log_labels(err_ax, "y")
    err_ax.set_xlabel("epoch of Mixup training (α = 1)")
    err_ax.set_ylabel("|approximation − L_mix| / L_mix")
    err_ax.set_title(f"relative error\npaper (solid), re-centred (dotted)\n(bands: {LEVEL:.0%} interval, "
                     f"{len(summary.get('seeds', [0]))} seeds)", fontsize=8)
    err_ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    for ax in axes[len(problems) + 1:]:
        ax.set_visible(False)
    detail = f"two-moons final relative error vs {threshold:.0%}: {summary.get('tally', '')}"
    style.suptitle(fig, CLAIMS, TITLE, style.verdict_line("C3", summary.get("verdict", "inconclusive"), detail))
    style.figure_legend(fig, [axes[0]], ncol=3)
    return fig
