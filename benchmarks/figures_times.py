"""Wall time of ``mixup-theory figures`` per figure, with the machine's load: ``python -m benchmarks.figures_times``.

Runs the figures at ``--scale`` into a fresh folder (``--out``, removed first), optionally beside
``--competitors K`` busy-looping processes (a machine loaded by other work), and prints a Markdown
table: per figure the configurations computed, the summed compute seconds of its configurations
(an ensemble's training time is shared equally among its members) and the total wall time, with the
1-minute load average before, after, and its mean and maximum sampled every 5 s during the run. ``--table DIR`` prints the table of an existing run folder.
The results are kept in ``benchmarks/results/figures_times.md``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _spin() -> None:  # a CPU-bound competitor
    while True:
        pass


def _sample_load(samples: list, stop: threading.Event, every: float = 5.0) -> None:
    while not stop.wait(every):
        samples.append(os.getloadavg()[0])


def table(out: Path, wall: float | None = None, loads=None, during=None) -> str:
    rows = ["| figure | configs | compute s (sum) |", "|---|---:|---:|"]
    total = 0
    execution = {}
    for path in sorted((Path(out) / "data").glob("*.json")):
        data = json.loads(path.read_text())
        execution = data.get("execution", execution)
        total += len(data["configs"])
        rows.append(f"| {data['figure']} | {len(data['configs'])} | {data['seconds']:.1f} |")
    wall = wall if wall is not None else execution.get("wall_seconds", float("nan"))
    head = f"wall {wall:.0f} s for {total} configurations (jobs {execution.get('jobs')}, threads {execution.get('threads')})"
    if loads:
        head += f"; load average {loads[0]:.1f} before, {loads[1]:.1f} after"
    if during:
        head += f", {sum(during) / len(during):.1f} mean and {max(during):.1f} max during the run"
    return head + "\n\n" + "\n".join(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="default")
    p.add_argument("--out", default="/tmp/mixup-theory-figures-times")
    p.add_argument("--competitors", type=int, default=0, help="busy-looping processes beside the run")
    p.add_argument("--jobs", type=int, default=None)
    p.add_argument("--table", default=None, metavar="DIR", help="only print the table of an existing run")
    args = p.parse_args(argv)
    if args.table:
        print(table(Path(args.table)))
        return 0
    from experiments.figures import runner

    shutil.rmtree(args.out, ignore_errors=True)
    hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(args.competitors)]
    for h in hogs:
        h.start()
    during, stop = [], threading.Event()
    sampler = threading.Thread(target=_sample_load, args=(during, stop), daemon=True)
    try:
        before = os.getloadavg()[0]
        sampler.start()
        start = time.perf_counter()
        runner.run(scale=args.scale, out=args.out, progress=False, jobs=args.jobs, device="cpu")
        wall = time.perf_counter() - start
        after = os.getloadavg()[0]
    finally:
        stop.set()
        for h in hogs:
            h.terminate()
    print(f"--scale {args.scale}, {args.competitors} competing processes: "
          + table(Path(args.out), wall, (before, after), during))
    return 0


if __name__ == "__main__":
    sys.exit(main())
