"""GPU check, prepared for a session with a CUDA device: ``python benchmarks/gpu_check.py``.

Runs, on the GPU and on the CPU beside it (same process, same inputs):

1. exact ``mixup_loss`` of logistic regression at n = 10⁴ and 3·10⁴ (Q = 32): time, pairs·nodes/s,
   and the relative difference between the two devices;
2. exact ``mixup_loss`` of a ReLU MLP 100-256-1 at n = 2000 (first-layer shortcut);
3. ``mixup_expansion`` of a ReLU MLP 784-256-1 at n = 10⁴;
4. one training epoch (``experiments.training.train``, Mixup, MLP on MNIST-1D);
4b. one Mixup epoch of an ensemble of ``ENSEMBLE`` MLPs (``experiments.batched.train_many``: seeds
   and methods stacked) on MNIST-1D with 40 000 training samples, GPU vs the CPU with
   ``--cpu-threads`` (default 2) threads — target: ≥ 10× faster on the GPU; ``--compile`` adds
   the same with ``torch.compile``;
4c. host synchronisations of ensemble training at 2 and 4 epochs (``set_sync_debug_mode``): equal
   counts mean nothing synchronises inside the step loop;
4d. ``--scale-run``: the whole ``mixup-theory figures --scale gpu`` (target ≤ 10 minutes);
5. host synchronisations per ``mixup_loss`` call, counted with ``torch.cuda.set_sync_debug_mode``
   at two chunk sizes: a count that grows with the number of blocks means a CPU round-trip in the
   hot loop (the theory functions should show the same small count at both sizes).

Prints a table; ``--json FILE`` also writes the measurements (``$OUT/gpu_check.json`` when ``$OUT``
is set). ``--device cpu --small`` is a dry run for machines without a GPU. Budget: about two
minutes on one H100, most of it on the CPU side.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.cases import _data, _linear, _mlp  # noqa: E402

NODES = 32
ENSEMBLE = 20
"""Models per ensemble in check 4b (10 seeds × standard/Mixup, as at the gpu scale)."""


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    _sync(device)
    t = time.perf_counter()
    value = fn()
    _sync(device)
    return value, time.perf_counter() - t


def _on(device, *tensors):
    return [t.to(device) for t in tensors]


def exact_linear(n, devices):
    import theory

    X, y = _data(n, 10)
    out = {}
    for dev in devices:
        model = _linear(10).to(dev)
        Xd, yd = _on(dev, X, y)
        theory.mixup_loss(model, Xd[:16], yd[:16], 1.0)  # warm-up
        value, sec = _timed(lambda: theory.mixup_loss(model, Xd, yd, 1.0, nodes=NODES), dev)
        out[dev.type] = {"value": value, "seconds": sec, "pairs_nodes_per_s": n * n * NODES / sec}
    return out


def exact_mlp(n, devices):
    import theory

    X, y = _data(n, 100)
    out = {}
    for dev in devices:
        model = _mlp(100, 256).to(dev)
        Xd, yd = _on(dev, X, y)
        theory.mixup_loss(model, Xd[:16], yd[:16], 1.0)
        value, sec = _timed(lambda: theory.mixup_loss(model, Xd, yd, 1.0, nodes=NODES), dev)
        out[dev.type] = {"value": value, "seconds": sec, "pairs_nodes_per_s": n * n * NODES / sec}
    return out


def expansion(n, d, devices):
    import theory

    X, y = _data(n, d)
    out = {}
    for dev in devices:
        model = _mlp(d, 256).to(dev)
        Xd, yd = _on(dev, X, y)
        theory.mixup_expansion(model, Xd[:16], yd[:16], 1.0)
        e, sec = _timed(lambda: theory.mixup_expansion(model, Xd, yd, 1.0), dev)
        out[dev.type] = {"value": e.approx, "seconds": sec}
    return out


def training_epoch(devices, n_train):
    from experiments.training import TrainConfig, train

    out = {}
    for dev in devices:
        cfg = TrainConfig(dataset="mnist1d", model="mlp", method="mixup", epochs=1, batch_size=128,
                          hidden=(256, 256), n_train=n_train, seed=0, device=str(dev))
        res, sec = _timed(lambda: train(cfg), dev)
        out[dev.type] = {"value": res.history[-1]["train_loss"], "seconds": sec}
    return out


def _ensemble_configs(device, n_samples, epochs=1, seeds=ENSEMBLE // 2, measure_every=1):
    from experiments.training import TrainConfig

    return [TrainConfig(dataset="mnist1d", dataset_kwargs=(("num_samples", n_samples),), model="mlp", method=m,
                        epochs=epochs, batch_size=128, hidden=(256, 256), seed=s, device=str(device),
                        measure_every=measure_every) for m in ("standard", "mixup") for s in range(seeds)]


def ensemble_epoch(devices, n_samples, compile=False):
    """One epoch of ``ENSEMBLE`` MLPs trained as one ensemble; seconds per model-epoch beside it."""
    from experiments.batched import train_many
    from experiments.datasets import load_dataset

    data = [load_dataset("mnist1d", n=None, seed=s, num_samples=n_samples) for s in range(ENSEMBLE // 2)] * 2
    out = {}
    for dev in devices:
        configs = _ensemble_configs(dev, n_samples)
        train_many(_ensemble_configs(dev, 500), compile=compile)  # warm-up (CUDA context, kernels, compile)
        res, sec = _timed(lambda: train_many(configs, datasets=data, compile=compile), dev)
        out[dev.type] = {"value": res[-1].history[-1]["train_loss"], "seconds": sec,
                         "seconds_per_model": sec / len(configs), "n_train": res[0].dataset.n_train}
    return out


def ensemble_syncs(device, n_samples):
    """Host synchronisations of ensemble training at 2 and 4 epochs (evaluated at the last one only)."""
    from experiments.batched import train_many

    counts = {}
    for epochs in (2, 4):
        configs = _ensemble_configs(device, n_samples, epochs=epochs, seeds=2, measure_every=epochs)
        train_many(configs)
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                train_many(configs)
        finally:
            torch.cuda.set_sync_debug_mode("default")
        counts[f"{epochs} epochs"] = sum("synchroniz" in str(w.message) for w in caught)
    return counts


def scale_run(device):
    """Wall time of ``mixup-theory figures --scale gpu`` into a fresh folder."""
    import tempfile

    from experiments.figures import runner

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        reports = runner.run(scale="gpu", device=device.type, out=out, progress=False)
        total = time.perf_counter() - start
    return {"seconds": total, "figures": {k: r.seconds for k, r in reports.items()}}


def syncs_per_call(n, device):
    """Host synchronisations of one ``mixup_loss`` call (linear and MLP) at two chunk sizes."""
    import theory

    X, y = _data(n, 100)
    counts = {}
    for name, model in (("linear", _linear(100)), ("mlp", _mlp(100, 64))):
        model = model.to(device)
        Xd, yd = _on(device, X, y)
        for chunk in (1 << 16, 1 << 22):
            theory.mixup_loss(model, Xd, yd, 1.0, chunk_elements=chunk)
            torch.cuda.set_sync_debug_mode("warn")
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    theory.mixup_loss(model, Xd, yd, 1.0, chunk_elements=chunk)
            finally:
                torch.cuda.set_sync_debug_mode("default")
            counts[f"{name}, chunk 2^{chunk.bit_length() - 1}"] = sum("synchroniz" in str(w.message) for w in caught)
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--small", action="store_true", help="small sizes (a dry run)")
    p.add_argument("--json", default=None)
    p.add_argument("--cpu-threads", type=int, default=2, help="CPU threads of the CPU side (default 2)")
    p.add_argument("--compile", action="store_true", help="also time the ensemble epoch with torch.compile")
    p.add_argument("--scale-run", action="store_true", help="also time the whole figures --scale gpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.cpu_threads)
    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (use --device cpu --small for a dry run)")
        return 2
    devices = [dev] if dev.type == "cpu" else [dev, torch.device("cpu")]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    print(f"torch {torch.__version__}; device {name}; CPU threads {torch.get_num_threads()}", flush=True)
    small = args.small
    results = {}
    for n in ((300, 600) if small else (10_000, 30_000)):
        results[f"exact loss, logistic regression, n={n}"] = exact_linear(n, devices)
        print(".", end="", flush=True)
    n_mlp = 200 if small else 2000
    results[f"exact loss, MLP 100-256-1, n={n_mlp}"] = exact_mlp(n_mlp, devices)
    n_exp = 500 if small else 10_000
    results[f"expansion, ReLU MLP 784-256-1, n={n_exp}"] = expansion(n_exp, 784, devices)
    results["one Mixup training epoch, MLP 40-256-256-10, MNIST-1D"] = training_epoch(devices, 500 if small else 4000)
    n_big = 600 if small else 50_000
    key = f"Mixup epoch, {ENSEMBLE} MLPs as one ensemble, n={int(n_big * 0.8)}"
    results[key] = ensemble_epoch(devices, n_big)
    if args.compile:
        results[key + ", torch.compile"] = ensemble_epoch(devices, n_big, compile=True)
    print()
    header = f"{'check':<52}{'gpu s':>10}{'cpu s':>10}{'speed-up':>10}{'rel diff':>10}"
    print(header + "\n" + "-" * len(header))
    for key, r in results.items():
        g, c = r.get("cuda"), r.get("cpu")
        gs = f"{g['seconds']:.3f}" if g else "-"
        speed = f"{c['seconds'] / g['seconds']:.1f}" if g and c else "-"
        rel = f"{abs(g['value'] - c['value']) / abs(c['value']):.1e}" if g and c else "-"
        print(f"{key:<52}{gs:>10}{c['seconds']:>10.3f}{speed:>10}{rel:>10}")
    if dev.type == "cuda":
        counts = ensemble_syncs(dev, 600 if small else 5000)
        results["host syncs of ensemble training"] = counts
        print("\nhost synchronisations of ensemble training (equal at 2 and 4 epochs: none in the step loop):")
        for key, c in counts.items():
            print(f"  {key}: {c}")
        counts = syncs_per_call(300 if small else 2000, dev)
        results["host syncs per mixup_loss call"] = counts
        print("\nhost synchronisations per mixup_loss call (should not grow with the number of blocks):")
        for key, c in counts.items():
            print(f"  {key}: {c}")
    if args.scale_run:
        results["figures --scale gpu"] = scale_run(dev)
        print(f"\nfigures --scale gpu: {results['figures --scale gpu']['seconds']:.0f} s")
    path = args.json or (os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None)
    if path:
        with open(path, "w") as fh:
            json.dump({"device": name, "torch": torch.__version__, "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
