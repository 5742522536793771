"""Performance benchmarks of the exact Mixup loss and its expansion (``python -m benchmarks``).

Prints one table per suite with wall and CPU seconds, throughput, peak memory added by the call,
the scaling exponent in n (least-squares slope of log time against log n), and whether the
performance targets are met:

- ``linear``: exact ``mixup_loss`` of logistic regression at n ∈ {10³, 3·10³, 10⁴} (Q = 32 nodes),
  against the softplus roofline — ``torch.logaddexp(x, 0)`` in a tight loop over the same n²Q
  float64 values. Target: time ≤ 2× the roofline's.
- ``mlp``: ReLU MLP 100-256-1 at n = 2000 with and without the first-layer shortcut.
- ``kinks``: the kink-aware exact loss (rtol 1e-12) of ReLU MLPs against the fixed 64-node rule:
  10-64-64-1 (``relu_mlp(10, [64, 64])``, standard-normal X) at n ∈ {100, 200, 400}, widths 32 and
  128 and two more draws of X at n = 200, and 100-256-1 at n = 300. Target: ≤ 3× the 64-node rule at
  n = 200 (run it with ``--threads 1`` and ``--threads 2``).
- ``shortcut``: MLP d-256-1, d ∈ {2, 100, 784}: identical results, speed-up of the shortcut over
  input mixing. Target: ≥ 10× for d ≥ 100.
- ``separated``: the linear-time exact loss of logistic regression (d = 10, exact λ-expectation,
  rtol 1e-12) at n from 4·10⁴ to 4·10⁶, with wide margins and α ≠ β, its gradient, the all-pairs
  quadrature and the sampled estimator beside it at n ≤ 3000, and the exact Mixup minimiser by
  L-BFGS. Targets: n = 10⁶ in ≤ 2 s (first call); cost linear in n beyond a fixed planning cost.
- ``certified``: ``adversarial_loss(..., method="certified")`` of a ReLU MLP 64-64-32-1, CROWN against
  α-CROWN (50 projected Adam steps), ℓ2 and ℓ∞: time, memory and how much lower α-CROWN's bound is.
- ``attack``: ``adversarial_examples(..., method="pgd")`` at the robust_accuracy figure's settings (10
  steps from the clean point, the FGSM point and one random point; float64) on a ReLU MLP 40-128-128-10
  at n ∈ {1000, 4000}, ℓ2 and ℓ∞, against the textbook one-start PGD-10 in float32
  (``experiments.measure``): the cost ratio (3 starts and float64 make ≈ 6× the work).
- ``expansion``: ``mixup_expansion`` against n and d (ReLU MLP d-256-1; R3 = 0 structurally),
  a tanh MLP (R3 by Hutchinson) and a linear model. Target: ReLU MLP at n = 10⁴, d = 784 in < 30 s.

Every case runs in a fresh process (peak memory per case). ``--quick`` runs a small subset
(about a minute); ``--threads`` sets ``torch.set_num_threads`` (default: torch's default);
``--json FILE`` saves every measurement. On a machine shared with other jobs prefer
``--threads 1`` and read the CPU-seconds columns: OpenMP regions with several threads stall
whenever another process holds a core.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

THREADS_ENV = "MIXUP_BENCH_THREADS"
NODES = 32
TARGET_ROOFLINE_FACTOR = 2.0
TARGET_SHORTCUT_SPEEDUP = 10.0
TARGET_EXPANSION_SECONDS = 30.0
TARGET_KINKS_FACTOR = 3.0
TARGET_SEPARATED_SECONDS, SEPARATED_TARGET_N = 2.0, 1_000_000
SAME_RESULT_RTOL = 1e-12


def suites(quick: bool) -> dict[str, list[tuple[str, dict]]]:
    """Suite name -> list of (case, params)."""
    ns = [1000, 3000] if quick else [1000, 3000, 10000]
    linear = []
    for n in ns:
        linear += [("roofline", {"elements": n * n * NODES}), ("exact_linear", {"n": n, "nodes": NODES})]
    n_mlp = 500 if quick else 2000
    mlp = [("exact_mlp", {"n": n_mlp, "d": 100, "shortcut": s, "nodes": NODES}) for s in (True, False)]
    n_sc = 120 if quick else 400
    shortcut = [("exact_mlp", {"n": n_sc, "d": d, "shortcut": s, "nodes": NODES})
                for d in (2, 100, 784) for s in (True, False)]
    n_big = 3000 if quick else 10000
    exp_n = [1000, 3000] if quick else [1000, 3000, 10000]
    expansion = [("expansion", {"n": n, "d": 784, "model": "relu"}) for n in exp_n]
    expansion += [("expansion", {"n": n_big, "d": d, "model": "relu"}) for d in (10, 100)]
    expansion += [("expansion", {"n": n_big, "d": 784, "model": "linear"}),
                  ("expansion", {"n": 1000 if quick else n_big, "d": 784, "model": "tanh"})]
    kinks = [("exact_kinks", {"n": k, "d": 10, "widths": [64, 64], "nodes": 64})
             for k in ([100, 200] if quick else [100, 200, 400])]
    if not quick:
        kinks += [("exact_kinks", {"n": 200, "d": 10, "widths": [w, w], "nodes": 64}) for w in (32, 128)]
        kinks += [("exact_kinks", {"n": 200, "d": 10, "widths": [64, 64], "nodes": 64, "seed": s}) for s in (1, 2)]
        kinks += [("exact_kinks", {"n": 300, "d": 100, "hidden": 256, "nodes": 64})]
    sep_ns = [40_000, 400_000] if quick else [40_000, 400_000, 1_000_000, 4_000_000]
    separated = [("separated", {"n": n}) for n in sep_ns]
    separated += [("separated", {"n": sep_ns[-1] if quick else SEPARATED_TARGET_N, "margin": m, "alpha": 0.2,
                                 "beta": 3.0}) for m in (5.0, 15.0)]
    separated += [("separated_vs_pairs", {"n": n, "draws": 500}) for n in ([1000] if quick else [1000, 3000])]
    separated += [("mixup_minimiser", {"n": 10_000 if quick else SEPARATED_TARGET_N})]
    certified = [("certified", {"n": 200 if quick else 2000, "bound": b, "norm": nm})
                 for nm in (2.0, math.inf) for b in ("crown", "alpha-crown")]
    attack = [("attack", {"n": n, "norm": nm}) for n in ([1000] if quick else [1000, 4000]) for nm in (2.0, math.inf)]
    return {"linear": linear, "mlp": mlp, "kinks": kinks, "shortcut": shortcut, "separated": separated,
            "expansion": expansion, "certified": certified, "attack": attack}


# ----------------------------------------------------------------------------- running cases

def run_case(case: str, params: dict, threads: int | None) -> dict:
    """Runs one case in a fresh interpreter and returns its measurements."""
    env = dict(os.environ)
    if threads:
        env[THREADS_ENV] = str(threads)
    cmd = [sys.executable, "-m", "benchmarks.run", "--case", case, "--params", json.dumps(params)]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"case": case, "params": params, **json.loads(line[len("RESULT "):])}
    raise RuntimeError(f"benchmark case {case} {params} failed:\n{proc.stdout}\n{proc.stderr}")


def _child(case: str, params: dict) -> None:
    import torch

    from .cases import CASES

    if os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(os.environ[THREADS_ENV]))
    out = CASES[case](**params)
    out["threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------------- analysis

def slope(xs, ys) -> float:
    """Least-squares slope of log y against log x (the scaling exponent)."""
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    den = sum((a - mx) ** 2 for a in lx)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / den if den else float("nan")


def _fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths))
    body = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join([title, line, "-" * len(line), *body])


def report(results: dict[str, list[dict]]) -> tuple[str, list[tuple[str, bool | None, str]]]:
    """The printed tables and the list of (target, met, measured)."""
    out, targets = [], []
    if "linear" in results:
        rs = results["linear"]
        roof = {r["params"]["elements"]: r for r in rs if r["case"] == "roofline"}
        rows, ns, walls, cpus = [], [], [], []
        for r in (r for r in rs if r["case"] == "exact_linear"):
            n = r["params"]["n"]
            ref = roof.get(n * n * NODES)
            fw = r["wall_s"] / ref["wall_s"] if ref else None
            fc = r["cpu_s"] / ref["cpu_s"] if ref else None
            rows.append([f"{n:g}", f"{r['work']:.2e}", _fmt(r["wall_s"]), _fmt(r["cpu_s"]),
                         f"{r['work'] / r['wall_s']:.3e}", f"{ref['elements'] / ref['wall_s']:.3e}" if ref else "-",
                         _fmt(fw, ".2f"), _fmt(fc, ".2f"), _fmt(r["peak_mib"], ".1f")])
            ns.append(n), walls.append(r["wall_s"]), cpus.append(r["cpu_s"])
            if ref:
                targets.append((f"linear exact loss n={n}: time ≤ {TARGET_ROOFLINE_FACTOR:g}× roofline",
                                min(fw, fc) <= TARGET_ROOFLINE_FACTOR, f"{fw:.2f}× wall, {fc:.2f}× cpu"))
        out.append(_table("Exact mixup_loss, logistic regression (d = 10, Q = 32) vs softplus roofline",
                          ["n", "pairs*nodes", "wall s", "cpu s", "pairs*nodes/s", "roofline/s",
                           "x roof wall", "x roof cpu", "peak MiB"], rows))
        if len(ns) > 1:
            out.append(f"scaling exponent in n: {slope(ns, walls):.2f} (wall), {slope(ns, cpus):.2f} (cpu)")
    if "mlp" in results:
        rows = []
        for r in results["mlp"]:
            p = r["params"]
            rows.append([f"{p['n']}", "first layer" if p["shortcut"] else "inputs", _fmt(r["wall_s"]),
                         _fmt(r["cpu_s"]), f"{r['work'] / r['wall_s']:.3e}", _fmt(r["peak_mib"], ".1f"),
                         f"{r['value']:.15f}"])
        out.append(_table("Exact mixup_loss, ReLU MLP 100-256-1 (Q = 32): first-layer shortcut vs input mixing",
                          ["n", "mixes", "wall s", "cpu s", "pairs*nodes/s", "peak MiB", "L_mix"], rows))
        if len(results["mlp"]) == 2:
            a, b = results["mlp"]
            out.append(f"speed-up {b['wall_s'] / a['wall_s']:.1f}x (wall), {b['cpu_s'] / a['cpu_s']:.1f}x (cpu); "
                       f"relative difference {abs(a['value'] - b['value']) / abs(b['value']):.1e}")
    if "kinks" in results:
        rows = []
        for r in results["kinks"]:
            p = r["params"]
            net = "-".join(str(k) for k in [p["d"], *(p.get("widths") or [p.get("hidden", 256)]), 1])
            rows.append([net, f"{p['n']}", f"{p.get('seed', 0)}", _fmt(r["wall_s"]), _fmt(r["nodes_wall_s"]),
                         f"{r['ratio']:.2f}", f"{r.get('cpu_ratio', float('nan')):.2f}", f"{r['bound_rel']:.1e}",
                         f"{r['nodes_rel_error']:.1e}", _fmt(r["peak_mib"], ".1f")])
            if p.get("widths") == [64, 64] and p["n"] == 200:
                ratio = min(r["ratio"], r.get("cpu_ratio", r["ratio"]))
                targets.append((f"kink-aware exact (1e-12) ≤ {TARGET_KINKS_FACTOR:g}× the 64-node rule, "
                                f"10-64-64-1, n=200, X seed {p.get('seed', 0)}",
                                ratio <= TARGET_KINKS_FACTOR and r["bound_rel"] <= 1e-12,
                                f"{r['ratio']:.2f}× wall, {r.get('cpu_ratio', float('nan')):.2f}× cpu, "
                                f"bound {r['bound_rel']:.1e}"))
        out.append(_table("ReLU MLPs: kink-aware default (rtol 1e-12) vs a fixed 64-node rule (α = 1)",
                          ["net", "n", "X seed", "kinks wall s", "64 nodes wall s", "x wall", "x cpu",
                           "kinks bound (rel)", "64-node error (rel)", "peak MiB"], rows))
    if "separated" in results:
        out.append(_separated_report(results["separated"], targets))
    if "shortcut" in results:
        rows = []
        by_d = {}
        for r in results["shortcut"]:
            by_d.setdefault(r["params"]["d"], {})[r["params"]["shortcut"]] = r
        for d, pair in sorted(by_d.items()):
            if True not in pair or False not in pair:
                continue
            a, b = pair[True], pair[False]
            rel = abs(a["value"] - b["value"]) / abs(b["value"])
            sw, sc = b["wall_s"] / a["wall_s"], b["cpu_s"] / a["cpu_s"]
            rows.append([f"{d}", f"{a['params']['n']}", _fmt(a["wall_s"]), _fmt(b["wall_s"]), _fmt(a["cpu_s"]),
                         _fmt(b["cpu_s"]), f"{sw:.1f}", f"{sc:.1f}", f"{rel:.1e}",
                         _fmt(a["peak_mib"], ".1f"), _fmt(b["peak_mib"], ".1f")])
            if d >= 100:
                targets.append((f"shortcut ≥ {TARGET_SHORTCUT_SPEEDUP:g}× input mixing, d={d}, identical",
                                max(sw, sc) >= TARGET_SHORTCUT_SPEEDUP and rel <= SAME_RESULT_RTOL,
                                f"{sw:.1f}× wall, {sc:.1f}× cpu, rel diff {rel:.1e}"))
        out.append(_table("First-layer shortcut vs input mixing, ReLU MLP d-256-1 (Q = 32)",
                          ["d", "n", "short wall", "input wall", "short cpu", "input cpu", "x wall", "x cpu",
                           "rel diff", "short MiB", "input MiB"], rows))
    if "expansion" in results:
        rows = []
        for r in results["expansion"]:
            p = r["params"]
            rows.append([p["model"], f"{p['n']}", f"{p['d']}", _fmt(r["wall_s"]), _fmt(r["cpu_s"]),
                         _fmt(r["peak_mib"], ".1f"), r["r3_method"]])
            if p["model"] == "relu" and p["n"] == 10000 and p["d"] == 784:
                targets.append((f"expansion ReLU MLP n=10^4, d=784 < {TARGET_EXPANSION_SECONDS:g} s",
                                r["wall_s"] < TARGET_EXPANSION_SECONDS, f"{r['wall_s']:.2f} s wall"))
        out.append(_table("mixup_expansion cost (MLP d-256-1)", ["model", "n", "d", "wall s", "cpu s",
                                                                  "peak MiB", "R3"], rows))
        sweep = [r for r in results["expansion"] if r["params"]["model"] == "relu" and r["params"]["d"] == 784]
        if len(sweep) > 1:
            xs = [r["params"]["n"] for r in sweep]
            out.append(f"scaling exponent in n (ReLU, d = 784): {slope(xs, [r['wall_s'] for r in sweep]):.2f} (wall), "
                       f"{slope(xs, [r['cpu_s'] for r in sweep]):.2f} (cpu)")
    if "certified" in results:
        rows, by = [], {}
        for r in results["certified"]:
            p = r["params"]
            by[(p["norm"], p["bound"])] = r
            rows.append([p["bound"], "inf" if p["norm"] == math.inf else f"{p['norm']:g}", f"{p['n']}",
                         _fmt(r["wall_s"]), _fmt(r["cpu_s"]), _fmt(r["peak_mib"], ".1f"), f"{r['value']:.6g}"])
        for nm in (2.0, math.inf):
            if (nm, "crown") in by and (nm, "alpha-crown") in by:
                c, a = by[(nm, "crown")], by[(nm, "alpha-crown")]
                rows.append(["α-CROWN / CROWN", "inf" if nm == math.inf else f"{nm:g}", "",
                             f"{a['wall_s'] / c['wall_s']:.1f}×", f"{a['cpu_s'] / c['cpu_s']:.1f}×", "",
                             f"{a['value'] / c['value']:.3f}"])
        out.append(_table("certified adversarial loss, ReLU MLP 64-64-32-1, ε = 0.5",
                          ["bound", "norm", "n", "wall s", "cpu s", "peak MiB", "L_adv upper bound"], rows))
    if "attack" in results:
        rows = []
        for r in results["attack"]:
            p = r["params"]
            rows.append(["inf" if p["norm"] == math.inf else f"{p['norm']:g}", f"{p['n']}", f"{r['passes']}",
                         _fmt(r["wall_s"]), _fmt(r["cpu_s"]), _fmt(r["local_wall_s"]), _fmt(r["local_cpu_s"]),
                         f"{r['cpu_s'] / r['local_cpu_s']:.1f}×", _fmt(r["peak_mib"], ".1f")])
        out.append(_table("PGD-10 (FGSM start + 1 random start, float64) vs textbook PGD-10 (1 start, float32), "
                          "ReLU MLP 40-128-128-10",
                          ["norm", "n", "gradient passes", "wall s", "cpu s", "textbook wall s", "textbook cpu s",
                           "cpu ratio", "peak MiB"], rows))
    return "\n\n".join(out), targets


def _separated_report(rs: list[dict], targets: list) -> str:
    out = []
    rows, plain = [], []
    for r in (r for r in rs if r["case"] == "separated"):
        p = r["params"]
        rows.append([f"{p['n']:g}", f"{p.get('alpha', 1.0):g}, {p.get('beta') or p.get('alpha', 1.0):g}",
                     f"{r['max_margin']:.1f}", _fmt(r["cold_wall_s"]), _fmt(r["wall_s"]), _fmt(r["cpu_s"]),
                     _fmt(r["grad_wall_s"]), f"{r['bound_rel']:.1e}", _fmt(r["peak_mib"], ".1f")])
        if "margin" not in p:
            plain.append(r)
        if p["n"] == SEPARATED_TARGET_N:
            targets.append((f"separated n=10^6, d=10 (max |margin| {r['max_margin']:.0f}) ≤ "
                            f"{TARGET_SEPARATED_SECONDS:g} s, first call", r["cold_wall_s"] <= TARGET_SEPARATED_SECONDS,
                            f"{r['cold_wall_s']:.2f} s first call, {r['wall_s']:.2f} s again"))
    out.append(_table("Linear-time exact mixup_loss, logistic regression (d = 10, exact λ, rtol 1e-12)",
                      ["n", "α, β", "max |margin|", "first call s", "again s", "again cpu s", "gradient s",
                       "bound (rel)", "peak MiB"], rows))
    if len(plain) > 1:
        ns, walls = [r["params"]["n"] for r in plain], [r["wall_s"] for r in plain]
        by_n = dict(zip(ns, walls))
        ratio = by_n[400_000] / by_n[40_000] if {40_000, 400_000} <= by_n.keys() else float("nan")
        out.append(f"scaling exponent in n: {slope(ns, walls):.2f} (wall, second calls); "
                   f"time(4e5)/time(4e4) = {ratio:.1f} (the planning cost does not grow with n)")
    rows = []
    for r in (r for r in rs if r["case"] == "separated_vs_pairs"):
        rows.append([f"{r['params']['n']}", _fmt(r["wall_s"]), _fmt(r["pairs_wall_s"]), f"{r['rel_diff']:.1e}",
                     f"{r['pairs_bound_rel']:.1e}", _fmt(r["mc_wall_s"]), f"{r['mc_rel_se']:.1e}",
                     f"{r['mc_seconds_equal']:.1e}"])
    if rows:
        out.append(_table("Separated vs all pairs (nodes doubled to 1e-12) vs the permutation estimator",
                          ["n", "separated s", "pairs s", "rel diff", "pairs bound (rel)", "sampled s",
                           "sampled rel SE", "sampled s for equal accuracy"], rows))
    for r in (r for r in rs if r["case"] == "mixup_minimiser"):
        out.append(f"exact Mixup minimiser (L-BFGS through the separated loss), n = {r['params']['n']:g}: "
                   f"{r['wall_s']:.1f} s wall, |θ| = {r['norm_theta']:.4f}")
    return "\n\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a small subset (about a minute)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per case (default: torch's default)")
    p.add_argument("--only", nargs="+", default=None, help="suites to run: linear mlp kinks shortcut separated expansion "
                                                                 "certified attack")
    p.add_argument("--json", default=None, help="write all measurements to this file")
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--params", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        _child(args.case, json.loads(args.params))
        return 0
    import platform

    import torch

    plan = suites(args.quick)
    if args.only:
        unknown = set(args.only) - set(plan)
        if unknown:
            p.error(f"unknown suite(s) {sorted(unknown)}; choose from {sorted(plan)}")
        plan = {k: v for k, v in plan.items() if k in args.only}
    threads = args.threads or torch.get_num_threads()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{threads} torch threads per case{' (quick)' if args.quick else ''}", flush=True)
    results: dict[str, list[dict]] = {}
    for name, cases in plan.items():
        for case, params in cases:
            r = run_case(case, params, args.threads)
            results.setdefault(name, []).append(r)
            print(f"  {name:<10} {case:<13} {json.dumps(params):<58} wall {r['wall_s']:8.3f} s  "
                  f"cpu {r['cpu_s']:8.3f} s  peak {r['peak_mib']:8.1f} MiB", flush=True)
    text, targets = report(results)
    print("\n" + text + "\n\nTargets")
    for name, met, measured in targets:
        print(f"  [{'met' if met else 'NOT met'}] {name}: {measured}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": threads, "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
