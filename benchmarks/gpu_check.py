"""GPU check: one prepared script, at most 8 minutes on one GPU, that always writes its results.

    python benchmarks/gpu_check.py --out DIR            # on a machine with CUDA
    python benchmarks/gpu_check.py --device cpu --small  # dry run anywhere (seconds; tests/experiments/test_gpu_check.py)

Stages, each with its own time budget (seconds at full size; ``--budget`` scales them all):

- ``env``: device, driver/CUDA/cuDNN, Python, torch, numpy, scipy versions, CPU threads.
- ``kinks``: the default exact value (kink-aware, ``theory.mixup_loss(..., method="kinks")``) of a
  10-64-64-1 ReLU MLP (``theory.relu_mlp(10, [64, 64], generator=0)``), standard-normal X, α = 1,
  at n = 200, beside the 64-node rule on the same device (target: kinks ≤ 3× the rule's time);
  agreement with the same computation on the CPU in float64 at n = 60.
- ``separated_1e6``, ``separated_1e7``: the linear-time exact loss of logistic regression
  (``theory.mixup_loss(..., method="separated")``, d = 10) at n = 10⁶ and 10⁷, and the
  differentiable ``theory.mixup_loss_separated`` with its backward pass at 10⁶; agreement with the
  CPU float64 value (at 10⁷ only where the stage's budget leaves time for it).
- ``ensemble_epoch``: one Mixup epoch of 20 MLPs 40-256-256-10 trained as one ensemble
  (``experiments.batched.train_many``) on MNIST-1D with 40 000 training samples, against the CPU
  with ``--cpu-threads`` threads (target: ≥ 10× faster on the GPU); the final training losses of
  the two devices are compared (float32 training: agreement to float32 rounding only).
- ``syncs`` (CUDA only): host synchronisations of ensemble training at 2 and 4 epochs and of one
  ``mixup_loss`` call at two chunk sizes (``torch.cuda.set_sync_debug_mode``): equal counts mean
  no CPU round-trip inside the loops.
- ``figures_gpu``: ``python -m experiments.cli figures --scale gpu`` in a subprocess, with the time
  left (the whole scale's target is ≤ 10 minutes, so under this script's limit it may be stopped;
  the figures finished by then and their times are recorded).

A stage whose budget runs out is stopped (``SIGALRM`` inside this process; the figures subprocess is
killed) and recorded with what it had measured and the reason; a stage that cannot start in the
time left is skipped with the reason. The results go to ``DIR/gpu_check.json`` and
``DIR/gpu_check.md`` (a Markdown table) after every stage, so a killed run leaves the stages done.
``--out`` defaults to ``$OUT`` when set, else ``benchmarks/results``. Exit status 0 when the file was
written (whatever the stages' outcome), 2 for bad arguments or a missing CUDA device.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

TOTAL_BUDGET = 480.0
"""Seconds for the whole script at full size (8 minutes)."""
SMALL_BUDGET = 120.0
"""Seconds for ``--small`` (a dry run takes about 15 s on an idle CPU core)."""
STAGES = ("env", "kinks", "separated_1e6", "separated_1e7", "ensemble_epoch", "syncs", "figures_gpu")
BUDGETS = {"env": 20, "kinks": 70, "separated_1e6": 35, "separated_1e7": 70, "ensemble_epoch": 100,
           "syncs": 35, "figures_gpu": None}
"""Seconds per stage at full size; ``None``: whatever is left of the total."""
MIN_START = 5.0
"""A stage is not started with fewer seconds than this left."""
ENSEMBLE = 20
"""Models per ensemble (10 seeds × standard/Mixup, as at the gpu scale)."""
SIZES = {
    False: {"kinks_n": 200, "kinks_ref_n": 60, "sep": {"separated_1e6": 10 ** 6, "separated_1e7": 10 ** 7},
            "ensemble_samples": 50_000, "ensemble_models": ENSEMBLE, "sync_samples": 5000, "sync_n": 2000},
    True: {"kinks_n": 24, "kinks_ref_n": 12, "sep": {"separated_1e6": 20_000, "separated_1e7": 100_000},
           "ensemble_samples": 600, "ensemble_models": 4, "sync_samples": 600, "sync_n": 300},
}


class StageTimeout(Exception):
    """A stage's budget ran out (raised by the ``SIGALRM`` handler)."""


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise :class:`StageTimeout` in this (the main) thread after ``seconds``."""
    def handler(signum, frame):
        raise StageTimeout

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    t = time.perf_counter()
    value = fn()
    _sync(device)
    return value, time.perf_counter() - t


def _rel(a, b) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def _logistic_data(n: int, d: int, seed: int):
    """Standard-normal X (float64, CPU) and labels of a logistic teacher."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    teacher = torch.randn(d, generator=g, dtype=torch.float64) / d ** 0.5
    y = (torch.rand(n, generator=g, dtype=torch.float64) < torch.sigmoid(X @ teacher)).long()
    return X, y


# ------------------------------------------------------------------------------------ stages
# Each stage fills ``rec`` (a dict) as it goes, so a stage stopped by its budget keeps what it measured.
# ``rec["summary"]``: device_s, value, reference_value, reference_s, rel_diff, note (the table's columns).

def stage_env(rec, device, cpu_threads, small):
    import scipy

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None  # not a git checkout: recorded as unknown
    rec.update(python=platform.python_version(), torch=torch.__version__, numpy=np.__version__,
               scipy=scipy.__version__, platform=platform.platform(), cpu_count=os.cpu_count(),
               cpu_threads=cpu_threads, small=small, commit=commit)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        rec.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    rec["summary"] = {"note": rec.get("gpu", "cpu") + f"; torch {torch.__version__}"}


def stage_kinks(rec, device, cpu_threads, small):
    import theory

    sizes = SIZES[small]
    n, n_ref = sizes["kinks_n"], sizes["kinks_ref_n"]
    model = theory.relu_mlp(10, [64, 64], generator=torch.Generator().manual_seed(0))
    X, _ = _logistic_data(n, 10, seed=1)
    y = (torch.rand(n, generator=torch.Generator().manual_seed(2)) < 0.5).long()
    cpu = torch.device("cpu")
    with _threads(cpu_threads):  # the CPU float64 reference first: cheap at n_ref, and kept if time runs out
        ref, ref_s = _timed(lambda: theory.mixup_loss(model, X[:n_ref], y[:n_ref], 1.0, method="kinks"), cpu)
    rec.update(n=n, reference_n=n_ref, reference_value=ref, reference_s=ref_s)
    m, Xd, yd = model.to(device), X.to(device), y.to(device)  # (moves model too: Module.to is in place)
    theory.mixup_loss(m, Xd[:8], yd[:8], 1.0, method="kinks")  # warm-up (kernels, allocator)
    at_ref = theory.mixup_loss(m, Xd[:n_ref], yd[:n_ref], 1.0, method="kinks")
    rec.update(device_value_at_reference_n=at_ref)
    rec["summary"] = {"reference_value": ref, "reference_s": ref_s, "rel_diff": _rel(at_ref, ref),
                      "note": f"rel. diff at n={n_ref}"}
    rule, rule_s = _timed(lambda: theory.mixup_loss(m, Xd, yd, 1.0, nodes=64), device)
    rec.update(nodes64_value=rule, nodes64_s=rule_s)
    rec["summary"]["note"] = f"n={n}; 64-node rule {rule_s:.3g} s; " + rec["summary"]["note"]
    value, sec = _timed(lambda: theory.mixup_loss(m, Xd, yd, 1.0, method="kinks"), device)
    rec.update(kinks_value=value, kinks_s=sec, kinks_over_nodes64=sec / rule_s, nodes64_rel_error=_rel(rule, value))
    rec["summary"].update(device_s=sec, value=value)
    rec["summary"]["note"] += (f"; kinks/rule {sec / rule_s:.1f}× (target ≤ 3×); the rule's error "
                               f"{_rel(rule, value):.1e}")


def stage_separated(rec, device, cpu_threads, small, name, deadline):
    import theory

    n = SIZES[small]["sep"][name]
    d = 10
    X, y = _logistic_data(n, d, seed=3)
    w = torch.randn(d, generator=torch.Generator().manual_seed(4), dtype=torch.float64) / d ** 0.5
    model = theory.linear_model(d, weight=w, intercept=0.1)
    m, Xd, yd = model.to(device), X.to(device), y.to(device)
    theory.mixup_loss(m, Xd[:1000], yd[:1000], 1.0, method="separated")  # warm-up
    value, sec = _timed(lambda: theory.mixup_loss(m, Xd, yd, 1.0, method="separated"), device)
    rec.update(n=n, value=value, seconds=sec)
    rec["summary"] = {"device_s": sec, "value": value, "note": f"n={n:.0e}, d={d}"}
    if name == "separated_1e6":
        def with_grad():
            loss = theory.mixup_loss_separated(m, Xd, yd, 1.0)
            loss.backward()
            return float(loss)

        grad_value, grad_s = _timed(with_grad, device)
        m.zero_grad(set_to_none=True)
        rec.update(separated_with_backward_s=grad_s, separated_tensor_value=grad_value)
        rec["summary"]["note"] += f"; mixup_loss_separated + backward {grad_s:.3g} s"
    left = deadline - time.monotonic()
    per_row = _CPU_SECONDS_PER_ROW.get("separated")
    estimate = None if per_row is None else per_row * n
    if estimate is not None and estimate > 0.8 * left:
        rec["reference_skipped"] = f"CPU reference estimated at {estimate:.0f} s, {left:.0f} s left in the stage"
        rec["summary"]["note"] += "; " + rec["reference_skipped"]
        return
    with _threads(cpu_threads):
        ref, ref_s = _timed(lambda: theory.mixup_loss(model.cpu(), X, y, 1.0, method="separated"),
                            torch.device("cpu"))
    _CPU_SECONDS_PER_ROW["separated"] = ref_s / n
    rec.update(reference_value=ref, reference_s=ref_s)
    rec["summary"].update(reference_value=ref, reference_s=ref_s, rel_diff=_rel(value, ref))


_CPU_SECONDS_PER_ROW: dict = {}
"""The separated CPU reference's seconds per row at 10⁶, to decide whether 10⁷ fits its stage."""


def _ensemble_configs(device, n_samples, models, epochs=1, measure_every=1):
    from experiments.training import TrainConfig

    seeds = models // 2
    return [TrainConfig(dataset="mnist1d", dataset_kwargs=(("num_samples", n_samples),), model="mlp", method=m,
                        epochs=epochs, batch_size=128, hidden=(256, 256), seed=s, device=str(device),
                        measure_every=measure_every) for m in ("standard", "mixup") for s in range(seeds)]


def stage_ensemble(rec, device, cpu_threads, small):
    from experiments.batched import train_many
    from experiments.datasets import load_dataset

    sizes = SIZES[small]
    n_samples, models = sizes["ensemble_samples"], sizes["ensemble_models"]
    data = [load_dataset("mnist1d", n=None, seed=s, num_samples=n_samples) for s in range(models // 2)] * 2
    configs = _ensemble_configs(device, n_samples, models)
    train_many(_ensemble_configs(device, 500, 2))  # warm-up (CUDA context, kernels)
    res, sec = _timed(lambda: train_many(configs, datasets=data), device)
    value = res[-1].history[-1]["train_loss"]
    rec.update(models=len(configs), n_train=res[0].dataset.n_train, seconds=sec, value=value,
               seconds_per_model=sec / len(configs))
    rec["summary"] = {"device_s": sec, "value": value,
                      "note": f"{len(configs)} MLPs, n_train={res[0].dataset.n_train}, float32"}
    with _threads(cpu_threads):
        cpu = _ensemble_configs(torch.device("cpu"), n_samples, models)
        ref_res, ref_s = _timed(lambda: train_many(cpu, datasets=data), torch.device("cpu"))
    ref = ref_res[-1].history[-1]["train_loss"]
    rec.update(reference_value=ref, reference_s=ref_s, speedup=ref_s / sec)
    rec["summary"].update(reference_value=ref, reference_s=ref_s, rel_diff=_rel(value, ref))
    rec["summary"]["note"] += f"; speed-up {ref_s / sec:.1f}× over {cpu_threads} CPU threads (target ≥ 10×)"


def _count_syncs(fn) -> int:
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fn()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def stage_syncs(rec, device, cpu_threads, small):
    import theory
    from experiments.batched import train_many

    sizes = SIZES[small]
    for epochs in (2, 4):
        configs = _ensemble_configs(device, sizes["sync_samples"], 4, epochs=epochs, measure_every=epochs)
        train_many(configs)
        rec[f"ensemble training, {epochs} epochs"] = _count_syncs(lambda: train_many(configs))
    X, y = _logistic_data(sizes["sync_n"], 100, seed=5)
    Xd, yd = X.to(device), y.to(device)
    for name, model in (("linear", theory.linear_model(100, weight=torch.ones(100) / 10, intercept=0.0)),
                        ("mlp", theory.relu_mlp(100, [64], generator=torch.Generator().manual_seed(6)))):
        model = model.to(device)
        for chunk in (1 << 16, 1 << 22):
            theory.mixup_loss(model, Xd, yd, 1.0, nodes=32, chunk_elements=chunk)
            rec[f"mixup_loss {name}, 32 nodes, chunk 2^{chunk.bit_length() - 1}"] = _count_syncs(
                lambda: theory.mixup_loss(model, Xd, yd, 1.0, nodes=32, chunk_elements=chunk))
    counts = {k: v for k, v in rec.items() if isinstance(v, int)}
    rec["summary"] = {"note": "; ".join(f"{k}: {v}" for k, v in counts.items())}


def stage_figures(rec, device, cpu_threads, small, seconds):
    """``figures --scale gpu`` (``--small``: one smoke-scale figure) in a subprocess, killed at the budget."""
    out = tempfile.mkdtemp(prefix="gpu-check-figures-")
    names, scale = (["rademacher"], "smoke") if small else ([], "gpu")
    cmd = [sys.executable, "-m", "experiments.cli", "figures", *names, "--scale", scale, "--device", device.type,
           "--out", out, "--force", "--no-progress"]
    rec.update(command=" ".join(cmd[1:]), out=out)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "PYTHONPATH": ROOT})
    try:
        output, _ = proc.communicate(timeout=seconds)
        rec["returncode"] = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        rec["stopped"] = f"budget of {seconds:.0f} s exhausted; the figures finished by then are listed"
    rec["seconds"] = time.perf_counter() - start
    rec["output_tail"] = output[-2000:]
    done = {}
    data = os.path.join(out, "data")
    for fname in sorted(os.listdir(data)) if os.path.isdir(data) else []:
        if fname.endswith(".json"):
            with open(os.path.join(data, fname)) as fh:
                meta = json.load(fh)
            done[fname[:-5]] = meta.get("seconds")
    rec["figures"] = done
    note = f"{len(done)} figures written ({', '.join(done) or 'none'})"
    if "stopped" in rec:
        note += "; " + rec["stopped"]
    elif rec["returncode"] != 0:
        note += f"; exit status {rec['returncode']}"
    rec["summary"] = {"device_s": rec["seconds"], "note": note}
    if rec.get("returncode") not in (0, None):
        raise RuntimeError(f"figures exited with status {rec['returncode']}: {output.strip().splitlines()[-1:]}")


@contextlib.contextmanager
def _threads(n: int):
    prev = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


# ------------------------------------------------------------------------------------ driver

def _run_stage(name, device, args, budget, deadline_total):
    """``(record, status, reason)`` of one stage within ``budget`` seconds."""
    rec: dict = {}
    start = time.monotonic()
    stage_deadline = start + budget
    try:
        if name == "figures_gpu":
            stage_figures(rec, device, args.cpu_threads, args.small, budget)
        else:
            fn = {"env": stage_env, "kinks": stage_kinks, "ensemble_epoch": stage_ensemble,
                  "syncs": stage_syncs}.get(name)
            with _deadline(budget):
                if fn is not None:
                    fn(rec, device, args.cpu_threads, args.small)
                else:
                    stage_separated(rec, device, args.cpu_threads, args.small, name, stage_deadline)
        status = "stopped" if "stopped" in rec else "done"
        reason = rec.get("stopped", "")
    except StageTimeout:
        status, reason = "stopped", f"budget of {budget:.0f} s exhausted; what it measured before is kept"
    except Exception as exc:  # a failed stage is a result too; the others still run
        status, reason = "failed", f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    rec["stage_seconds"] = time.monotonic() - start
    return rec, status, reason


def _markdown(report) -> str:
    env = next((s["results"] for s in report["stages"] if s["name"] == "env"), {})
    lines = [f"# GPU check ({report['device']})", "",
             f"{report['started']}; torch {env.get('torch', '?')}, CUDA {env.get('cuda', '-')}, "
             f"cuDNN {env.get('cudnn', '-')}, Python {env.get('python', '?')}, numpy {env.get('numpy', '?')}, "
             f"scipy {env.get('scipy', '?')}; CPU side: {report['cpu_threads']} threads of {env.get('cpu_count', '?')}; "
             f"{'small sizes (dry run)' if report['small'] else 'full sizes'}; total {report['total_s']:.0f} s of a "
             f"{report['budget_s']:.0f} s budget; commit {env.get('commit') or '?'}. Command: `{report['command']}`.", "",
             "| stage | status | budget s | device s | value | CPU float64 reference | ref s | rel. diff | notes |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    for s in report["stages"]:
        sm = s["results"].get("summary", {})
        note = sm.get("note", "")
        if s["reason"]:
            note = (note + "; " if note else "") + s["reason"]
        lines.append(f"| {s['name']} | {s['status']} | {num(s['budget_s'], '.0f')} | {num(sm.get('device_s'), '.3g')} "
                     f"| {num(sm.get('value'), '.12g')} | {num(sm.get('reference_value'), '.12g')} "
                     f"| {num(sm.get('reference_s'), '.3g')} | {num(sm.get('rel_diff'), '.1e')} "
                     f"| {note.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def _write(report, out_dir) -> None:
    for name, text in (("gpu_check.json", json.dumps(report, indent=1, default=str)),
                       ("gpu_check.md", _markdown(report))):
        tmp = os.path.join(out_dir, f".{name}.tmp")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, os.path.join(out_dir, name))


def _parser():
    p = argparse.ArgumentParser(prog="python benchmarks/gpu_check.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--small", action="store_true", help="small sizes: a dry run in seconds")
    p.add_argument("--out", default=None, help="folder for gpu_check.json and gpu_check.md "
                   "(default: $OUT if set, else benchmarks/results)")
    p.add_argument("--budget", type=float, default=None, help=f"total seconds (default {TOTAL_BUDGET:.0f}; "
                   f"{SMALL_BUDGET:.0f} with --small); the stages' budgets scale with it")
    p.add_argument("--cpu-threads", type=int, default=2, help="CPU threads of the CPU side (default 2)")
    p.add_argument("--only", nargs="+", choices=STAGES, default=None, help="run only these stages (env always)")
    return p


def main(argv=None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    from experiments.devices import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as exc:
        print(f"{p.prog}: error: --device: {exc}", file=sys.stderr)
        return 2
    if args.cpu_threads < 1 or (args.budget is not None and not args.budget > 0):
        print(f"{p.prog}: error: --cpu-threads must be >= 1 and --budget > 0", file=sys.stderr)
        return 2
    out_dir = args.out or os.environ.get("OUT") or os.path.join(ROOT, "benchmarks", "results")
    try:
        os.makedirs(out_dir, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=out_dir, prefix=".probe-")
        probe.close()
    except OSError as exc:
        print(f"{p.prog}: error: --out {out_dir}: cannot write there ({exc.strerror or exc})", file=sys.stderr)
        return 2
    total = args.budget or (SMALL_BUDGET if args.small else TOTAL_BUDGET)
    scale = total / TOTAL_BUDGET
    report = {"device": str(device), "small": args.small, "budget_s": total, "cpu_threads": args.cpu_threads,
              "command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "stages": [], "total_s": 0.0}
    start = time.monotonic()
    end = start + total
    for name in STAGES:
        if args.only and name != "env" and name not in args.only:
            continue
        left = end - time.monotonic()
        budget = BUDGETS[name] * scale if BUDGETS[name] is not None else left
        budget = min(budget, left)
        entry = {"name": name, "budget_s": budget, "status": "skipped", "reason": "", "results": {}}
        if name == "syncs" and device.type != "cuda":
            entry["reason"] = "needs CUDA (torch.cuda.set_sync_debug_mode)"
        elif budget < MIN_START * min(scale, 1.0):
            entry["reason"] = f"not started: {max(left, 0):.0f} s left of the {total:.0f} s total"
        else:
            entry["results"], entry["status"], entry["reason"] = _run_stage(name, device, args, budget, end)
        if name == "env" and device.type == "cuda":
            report["device"] = f"{device} ({entry['results'].get('gpu', '?')})"
        report["stages"].append(entry)
        report["total_s"] = time.monotonic() - start
        _write(report, out_dir)
        print(f"{name}: {entry['status']} {entry['reason']}".rstrip(), flush=True)
    print(_markdown(report))
    print(f"written: {os.path.join(out_dir, 'gpu_check.json')}, gpu_check.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
