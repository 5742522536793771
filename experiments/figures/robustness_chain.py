"""C4/C5/C7: the robustness chain along Mixup training, with the exact quantities beside it.

At each measured epoch (the model after ``e`` epochs is re-created by training with ``epochs=e``: the
training run is deterministic in its seed, so these are the snapshots of one run):

- ``L̃_mix ≥ mean_i L̃_adv,i(ε_i) ≥ L̃_adv(ε_mix)`` — ``theory.robustness_bound`` (ℓ2, C4/C5);
- exact ``L_mix`` and exact ``L_adv(ε_mix)`` (logistic regression: closed form) or its bracket
  [PGD lower bound, certified (α-CROWN) upper bound] for a bias-free ReLU MLP — ``exact_comparison`` (C7);
  the CROWN upper bound is drawn beside it, to show how much the optimised slopes tighten the bracket.
  At ε_mix the ball is tiny and every bound nearly coincides, so the same bracket is also drawn at ε* (the
  largest radius the approximate chain allows), where the certified bounds differ visibly.

Plot (one column per problem): top, the approximate chain (C4/C5); bottom, the exact comparison
(C7). Grey shading marks epochs at which an assumption of the theorem fails (centered data (A1),
every training point on its side (A2), homogeneity): the chain is computed regardless and the
figure shows whether it held anyway. The radii (ε_mix, mean ε_i, the sharper ``m_1·dist_i``, ε*)
are in the data; ε_mix and ε* at the last epoch are named in the bottom titles.

``robustness_bound`` warns when the chain holds although an assumption fails (the theorem does not
cover the instance). Here that is a finding, not a fault: the runner counts these warnings into the
data (``EXPECTED_WARNINGS``) and the summary counts the epochs where the chain held outside the
assumptions (``holds_outside_assumptions``), which the verdict names.
"""
from __future__ import annotations

import math

from theory import AssumptionWarning

from ._common import select, train_run

NAME = "robustness_chain"
CLAIMS = "C4/C5/C7"
TITLE = "robustness chain L̃_mix ≥ mean L̃_adv(ε_i) ≥ L̃_adv(ε_mix) and exact L_mix vs L_adv(ε_mix) (ℓ2)"
VERSION = 3
PROBLEMS = [("two_moons", "logistic"), ("breast_cancer", "logistic"), ("two_moons", "mlp")]
SCALES = {
    "smoke": {"n": {"two_moons": 60, "breast_cancer": 100}, "epochs": [1, 3], "hidden": [8, 8],
              "problems": [("two_moons", "logistic"), ("two_moons", "mlp")]},
    "default": {"n": {"two_moons": 200, "breast_cancer": None}, "epochs": [1, 2, 4, 6, 8, 10, 15, 20],
                "hidden": [16, 16], "problems": PROBLEMS},
}
SCALES["paper"] = SCALES["default"]
PGD_OPTIONS = {"steps": 50, "restarts": 2}
EXPECTED_WARNINGS = {"chain holds while an assumption fails": AssumptionWarning}


def tasks(scale: str) -> list[dict]:
    p = SCALES[scale]
    return [{"dataset": ds, "model": model, "method": "mixup", "alpha": 1.0, "bias": False, "hidden": p["hidden"],
             "n_train": p["n"][ds], "lr": 0.1, "batch_size": 32, "epochs": e, "seed": 0}
            for ds, model in p["problems"] for e in p["epochs"]]


def train_config(task: dict, ctx) -> dict:
    """The training run ``compute`` performs (the runner trains such runs together as ensembles)."""
    return task


def compute(task: dict, ctx) -> dict:
    import torch

    from theory import adversarial_loss, exact_comparison, robustness_bound

    run = train_run(task, ctx.device)
    X, y = run.dataset.X_train, run.dataset.y_train
    gen = torch.Generator(device="cpu").manual_seed(task["seed"])
    rb = robustness_bound(run.model, X, y, task["alpha"], norm=2)
    cmp = exact_comparison(run.model, X, y, task["alpha"], norm=2, pgd={**PGD_OPTIONS, "generator": gen},
                           bound="alpha-crown")
    crown = cmp.adv_upper if cmp.exact_adversary else adversarial_loss(run.model, X, y, cmp.eps, norm=2,
                                                                       method="certified", bound="crown")
    star = _bracket(run.model, X, y, rb.eps_star, cmp.exact_adversary, gen)
    return {"mixup_approx": rb.mixup_approx, "adv_at_eps_i": rb.adv_at_eps_i, "adv_at_eps_mix": rb.adv_at_eps_mix,
            "eps_mix": rb.eps_mix, "eps_star": rb.eps_star, "eps_i_mean": float(rb.eps_i.mean()),
            "eps_sharp_mean": float(rb.eps_sharp.mean()), "holds": rb.holds, "assumptions": rb.assumptions,
            "mixup_exact": cmp.mixup_exact, "adv_lower": cmp.adv_lower, "adv_upper": cmp.adv_upper,
            "adv_upper_crown": crown, "adv_star": star,
            "exact_status": cmp.status, "exact_adversary": cmp.exact_adversary,
            "train_acc": run.history[-1]["train_acc"], "n": int(len(y))}


def _bracket(model, X, y, eps: float, exact: bool, gen) -> tuple[float, float, float]:
    """``(lower, α-CROWN upper, CROWN upper)`` of ``L_adv(eps)`` (ℓ2); all three the closed form for a
    linear model; NaN when ``eps`` is not finite (ε* = ∞ or undefined)."""
    from theory import adversarial_loss

    if not math.isfinite(eps):
        return (math.nan,) * 3
    if exact:
        value = adversarial_loss(model, X, y, eps, norm=2, method="exact")
        return value, value, value
    lower = adversarial_loss(model, X, y, eps, norm=2, method="pgd", **PGD_OPTIONS, generator=gen)
    return (lower, adversarial_loss(model, X, y, eps, norm=2, method="certified", bound="alpha-crown"),
            adversarial_loss(model, X, y, eps, norm=2, method="certified", bound="crown"))


def rows(task: dict, result: dict) -> list[dict]:
    a = result["assumptions"]
    return [{"dataset": task["dataset"], "model": task["model"], "seed": task["seed"], "epoch": task["epochs"],
             "n": result["n"], "mixup_approx": result["mixup_approx"], "adv_at_eps_i": result["adv_at_eps_i"],
             "adv_at_eps_mix": result["adv_at_eps_mix"], "mixup_exact": result["mixup_exact"],
             "adv_exact_lower": result["adv_lower"], "adv_exact_upper": result["adv_upper"],
             "adv_exact_upper_crown": result["adv_upper_crown"],
             **dict(zip(("adv_star_lower", "adv_star_upper", "adv_star_upper_crown"), result["adv_star"])),
             "eps_mix": result["eps_mix"], "eps_i_mean": result["eps_i_mean"],
             "eps_sharp_mean": result["eps_sharp_mean"], "eps_star": result["eps_star"], "chain_holds": result["holds"],
             "exact_status": result["exact_status"],
             "adv_exact_kind": "closed form" if result["exact_adversary"] else "PGD/certified bracket",
             "assumptions_hold": all(a.values()),
             **{f"assume_{k}": v for k, v in a.items()}, "train_acc": result["train_acc"]}]


def _problems(rows):
    return list(dict.fromkeys((r["dataset"], r["model"]) for r in rows))


def summarize(rows: list[dict]) -> dict:
    out = {}
    for ds, model in _problems(rows):
        rs = select(rows, dataset=ds, model=model)
        out[f"{ds}/{model}"] = {
            "chain_holds": f"{sum(r['chain_holds'] for r in rs)}/{len(rs)}",
            "assumptions_hold": f"{sum(r['assumptions_hold'] for r in rs)}/{len(rs)}",
            "assumption_fails": {k[len("assume_"):]: sum(not r[k] for r in rs) for k in rs[0] if k.startswith("assume_")},
            "holds_outside_assumptions": sum(r["chain_holds"] and not r["assumptions_hold"] for r in rs),
            "exact_status": {s: sum(r["exact_status"] == s for r in rs) for s in ("holds", "fails", "undecided")},
            "final": {k: max(rs, key=lambda r: r["epoch"])[k] for k in
                      ("epoch", "eps_mix", "eps_star", "mixup_approx", "adv_at_eps_mix", "mixup_exact",
                       "adv_exact_lower", "adv_exact_upper", "adv_exact_upper_crown", "eps_star",
                       "adv_star_lower", "adv_star_upper", "adv_star_upper_crown")},
        }
    return out


SERIES = [("mixup_approx", "L̃_mix", "o-"), ("adv_at_eps_i", "mean L̃_adv,i(ε_i)", "s-"),
          ("adv_at_eps_mix", "L̃_adv(ε_mix)", "^-")]
ASSUMPTION_NAMES = {"centered": "(A1) centered", "in_theta": "(A2) θ ∈ Θ", "homogeneous": "homogeneous"}


def _shade_assumption_failures(ax, rs) -> list[str]:
    """Grey spans over the epochs where an assumption fails; returns the failing assumptions' names."""
    failing = []
    epochs = [r["epoch"] for r in rs]
    for k, r in enumerate(rs):
        bad = [name for key, name in ASSUMPTION_NAMES.items() if r.get(f"assume_{key}") is False]
        if bad:
            lo = (epochs[k - 1] + r["epoch"]) / 2 if k else r["epoch"] - 0.5
            hi = (epochs[k + 1] + r["epoch"]) / 2 if k + 1 < len(rs) else r["epoch"] + 0.5
            ax.axvspan(lo, hi, color="0.92", linewidth=0, zorder=0,
                       label="an assumption of C4/C5 fails at this epoch")
            failing.extend(b for b in bad if b not in failing)
    return failing


def chain_verdict(rows: list[dict]) -> str:
    """The verdict line: the chain is judged where the theorem's assumptions hold; where one fails the
    chain is only reported (it is not guaranteed there), and an assumption that fails at every epoch
    means the figure does not test C4/C5 at all."""
    def count(rs, key, value=True):
        return f"{sum(r[key] == value for r in rs)}/{len(rs)}"

    inside = [r for r in rows if r["assumptions_hold"]]
    outside = [r for r in rows if not r["assumptions_hold"]]
    failing = {k[len("assume_"):]: sum(r[k] is False for r in rows) for k in rows[0] if k.startswith("assume_")}
    fail_text = ", ".join(f"{ASSUMPTION_NAMES.get(k, k)} fails at {v}/{len(rows)}" for k, v in failing.items() if v)
    if not inside:
        return (f"Verdict: C4/C5/C7 not tested here — {fail_text} epochs, so the theorem covers none of them;\n"
                f"outside it the approximate chain held anyway at {count(rows, 'chain_holds')} epochs and exact "
                f"L_mix ≥ L_adv(ε_mix) at {count(rows, 'exact_status', 'holds')} (not guaranteed there)")
    ok = all(r["chain_holds"] for r in inside)
    verdict = (f"Verdict: where the assumptions hold ({len(inside)}/{len(rows)} epochs) the approximate chain (C4/C5) "
               f"{'holds' if ok else 'FAILS'} at {count(inside, 'chain_holds')}; exact L_mix ≥ L_adv(ε_mix) (C7) "
               f"at {count(inside, 'exact_status', 'holds')}")
    if outside:
        verdict += (f"\n(grey: {fail_text}; there the chain held anyway at {count(outside, 'chain_holds')} epochs — "
                    "not guaranteed: the assumptions are sufficient, not necessary)")
    return verdict


def plot(rows: list[dict], summary: dict):
    from . import style

    problems = _problems(rows)
    fig, axes = style.subplots(2, len(problems))
    for ax, exact_ax, (ds, model) in zip(axes, axes[len(problems):], problems):
        rs = sorted(select(rows, dataset=ds, model=model), key=lambda r: r["epoch"])
        ep = [r["epoch"] for r in rs]
        s = summary[f"{ds}/{model}"]
        failing = _shade_assumption_failures(ax, rs)
        for k, (key, label, fmt) in enumerate(SERIES):
            ax.plot(ep, [r[key] for r in rs], fmt, color=style.PALETTE[k], label=label)
        bias = "no bias" if model != "logistic" else "no intercept"
        covered = sum(r["assumptions_hold"] for r in rs)
        scope = ("assumptions met" if covered == len(rs) else
                 f"{', '.join(failing)} fails (grey): "
                 + ("no epoch covered by the theorem" if covered == 0 else f"{covered}/{len(rs)} epochs covered"))
        ax.set_title(f"{ds}, {model} ({bias}), n = {rs[0]['n']}\n"
                     f"C4/C5 chain held at {s['chain_holds']} epochs\n{scope}", fontsize=8)
        style.integer_x(ax)
        ax.set_xlabel("epoch of Mixup training (α = 1)")
        ax.set_ylabel("approximate loss")

        _shade_assumption_failures(exact_ax, rs)
        exact_ax.plot(ep, [r["mixup_exact"] for r in rs], "o-", color=style.PALETTE[0], label="L_mix (exact)")
        lo, hi = [r["adv_exact_lower"] for r in rs], [r["adv_exact_upper"] for r in rs]
        color = style.PALETTE[4]
        if all(r["adv_exact_kind"] == "closed form" for r in rs):
            exact_ax.plot(ep, lo, "v--", color=color, label="L_adv(ε_mix) (exact, closed form)")
        else:
            width = max(h - l for l, h in zip(lo, hi))
            exact_ax.fill_between(ep, lo, hi, color=color, alpha=0.35, linewidth=0)
            crown = [r["adv_exact_upper_crown"] for r in rs]
            wide = max(c - l for l, c in zip(lo, crown))
            exact_ax.plot(ep, hi, "^:", color=color,
                          label=f"L_adv(ε_mix) ∈ [PGD, α-CROWN] (net; width ≤ {width:.2g}, CROWN's ≤ {wide:.2g})")
        # ε* (where the bounds differ visibly): an in-panel legend, the figure legend stays short
        star_lo, star_hi = [r["adv_star_lower"] for r in rs], [r["adv_star_upper"] for r in rs]
        star_color = style.PALETTE[3]
        if all(r["adv_exact_kind"] == "closed form" for r in rs):
            handles = exact_ax.plot(ep, star_lo, "v-.", color=star_color)
            labels, title = ["L_adv(ε*) (exact, closed form)"], None
        else:
            star_crown = [r["adv_star_upper_crown"] for r in rs]
            handles = [exact_ax.fill_between(ep, star_lo, star_hi, color=star_color, alpha=0.3, linewidth=0),
                       exact_ax.plot(ep, star_crown, "x--", color=star_color, linewidth=0.9)[0]]
            labels = ["L_adv(ε*) ∈ [PGD, α-CROWN]", "CROWN upper bound at ε*"]
            gaps = [(c - a) / (c - l) for l, a, c in zip(star_lo, star_hi, star_crown) if c > l]
            title = f"at ε*, α-CROWN closes {min(gaps):.0%}–{max(gaps):.0%}\nof CROWN's gap to PGD" if gaps else None
        exact_ax.legend(handles, labels, title=title, fontsize=7, title_fontsize=7, loc="best", frameon=True,
                        framealpha=0.85)
        counts = s["exact_status"]
        last = rs[-1]
        exact_ax.set_title(f"C7: L_mix ≥ L_adv(ε_mix) holds at {counts['holds']}/{len(rs)} epochs"
                           + (f", undecided {counts['undecided']}" if counts.get("undecided") else "")
                           + f"\nlast epoch: ε_mix = {last['eps_mix']:.2g}, ε* = {last['eps_star']:.2g}", fontsize=8)
        style.integer_x(exact_ax)
        exact_ax.set_xlabel("epoch of Mixup training (α = 1)")
        exact_ax.set_ylabel("exact loss")
    verdict = chain_verdict(rows)
    style.suptitle(fig, CLAIMS, "robustness chain along Mixup training (ℓ2)", verdict)
    style.figure_legend(fig, list(axes), ncol=4)
    return fig
