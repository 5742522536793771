"""How the figure runner executes tasks: ensembles of training runs, worker processes, thread policy.

The runner hands over the tasks that are not cached yet; this module

1. asks each figure which training configuration a task trains (``train_config(task, ctx)``, an
   optional hook of a figure module) and groups equal-shaped configurations into ensembles trained
   at once (:func:`experiments.batched.train_many`); the figure's ``compute`` then receives its
   trained model through :func:`experiments.training.pretrained`;
2. runs these units in ``jobs`` worker processes (one intra-op thread each by default), or in this
   process when ``jobs == 1`` or the device is CUDA (one process drives the GPU);
3. yields each task's result as its unit finishes, so the runner caches results per configuration
   and an interrupted run resumes where it stopped;
4. records the warnings each task raised (``experiments._warnings.captured``) instead of letting
   every worker print them: the runner counts the ones a figure expects (``EXPECTED_WARNINGS``, by
   class) into the figure's data and summarises the others once, in words.

Thread policy (:func:`policy`): small problems (``smoke``/``default`` scales on the CPU) run
single-threaded with configurations spread over ``jobs = cores`` processes — on a shared machine
torch's intra-op threads oversubscribe the cores and spin; large problems (``paper``/``gpu``) run
in one process with intra-op threads.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Iterator

SMALL_SCALES = ("smoke", "default")
MIN_PER_CHUNK = 4
"""An ensemble is split over worker processes only into chunks of at least this many models."""
DEFAULT_TASK_SECONDS = 2.0
"""Scheduling estimate of a task's own computation when its figure has no ``cost(task)`` hook."""
TRAIN_SECONDS_PER_COST = 8e-8
"""Seconds per unit of ``batched.estimated_cost`` (measured: an ensemble of 10 MLPs 64-128-128-10,
1500 SGD steps, one thread: 7e-8 to 9e-8)."""


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


PER_CPU = 4
"""Caps of ``--jobs`` and ``--threads``: at most this many per CPU (more only oversubscribes the cores)."""


def max_jobs() -> int:
    """The largest ``--jobs``: ``PER_CPU`` × the cores this process may use."""
    return PER_CPU * cores()


def max_threads() -> int:
    """The largest ``--threads``: ``PER_CPU`` × the machine's CPUs."""
    return PER_CPU * max(1, os.cpu_count() or 1)


def policy(scale: str, device, jobs: int | None, threads: int | None) -> tuple[int, int | None]:
    """``(jobs, threads)`` for a run on ``device`` (a ``torch.device``): explicit values win; else small
    CPU scales get ``cores()`` single-threaded processes and everything else one process with torch's
    default threads (``None``). CUDA runs use one process."""
    if device.type == "cuda":
        return 1, threads
    if scale in SMALL_SCALES:
        return (jobs or cores()), (threads or 1)
    return (jobs or 1), threads


@dataclass
class Unit:
    """Tasks computed together: ``items`` are ``(figure, index in its plan, task)``; ``train`` the
    JSON training configs of the items (one per item) when they form an ensemble."""

    items: list
    train: list | None = None
    cost: float = 0.0
    ensemble: int = field(default=1)


def task_seconds(module, task: dict) -> float:
    """Rough seconds of a task's own computation (its figure's ``cost(task)`` hook, else
    ``DEFAULT_TASK_SECONDS``): used only to start the longest work first."""
    hook = getattr(module, "cost", None)
    return float(hook(task)) if hook is not None else DEFAULT_TASK_SECONDS


def plan_units(pending: list[tuple[str, int, dict]], modules: dict, ctx, jobs: int) -> list[Unit]:
    """Units of work for the pending tasks, longest first (longest-processing-time-first: the
    workers then finish nearly together). A unit's cost is its estimated training time plus its
    tasks' :func:`task_seconds`."""
    from experiments import batched
    from experiments.training import config_from_json

    alone, trainable = [], []
    for name, i, task in pending:
        hook = getattr(modules[name], "train_config", None)
        fields = hook(task, ctx) if hook is not None else None
        if fields is None:
            alone.append(Unit([(name, i, task)], cost=task_seconds(modules[name], task)))
        else:
            trainable.append(((name, i, task), fields, config_from_json(fields, ctx.device)))
    units = []
    for members in batched.plan_groups([c for _, _, c in trainable]):
        chunks = max(1, min(jobs, len(members) // MIN_PER_CHUNK)) if len(members) > 1 else 1
        size = math.ceil(len(members) / chunks)
        for k in range(0, len(members), size):
            part = [trainable[j] for j in members[k:k + size]]
            cost = sum(TRAIN_SECONDS_PER_COST * batched.estimated_cost(c) + task_seconds(modules[it[0]], it[2])
                       for it, _, c in part)
            units.append(Unit([p[0] for p in part], [p[1] for p in part], cost, len(part)))
    return sorted(alone + units, key=lambda u: -u.cost)


def execute(unit: Unit, ctx) -> list[tuple]:
    """``[(figure, index, task, result, seconds, ensemble, warnings)]`` for one unit, in this process
    (``warnings``: what ``experiments._warnings.captured`` recorded for the task, training included)."""
    from experiments import batched
    from experiments._warnings import captured
    from experiments.training import config_from_json, pretrained

    from experiments.registry import figure_module

    out = []
    if unit.train is None:
        (name, i, task), = unit.items
        start = time.perf_counter()
        result, caught = captured(lambda: figure_module(name).compute(task, ctx))
        return [(name, i, task, result, time.perf_counter() - start, 1, caught)]
    start = time.perf_counter()
    results, trained = captured(lambda: batched.train_many([config_from_json(f, ctx.device) for f in unit.train]))
    share = (time.perf_counter() - start) / len(results)
    with pretrained(results):
        for name, i, task in unit.items:
            t = time.perf_counter()
            result, caught = captured(lambda: figure_module(name).compute(task, ctx))
            out.append((name, i, task, result, share + time.perf_counter() - t, len(results),
                        trained + [w for w in caught if w not in trained]))
    return out


def _end_with_parent(parent: int) -> None:
    """This worker ends when its parent process dies, however it dies (SIGKILL included): Linux's
    ``prctl(PR_SET_PDEATHSIG, SIGTERM)``; elsewhere a daemon thread that polls the parent's pid."""
    import ctypes
    import signal
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch():
        while os.getppid() == parent:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCHDOG_SECONDS = 0.5


def _init_worker(threads: int | None, parent: int) -> None:
    import signal

    import torch

    _end_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    if threads is not None:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1) if threads == 1 else None


def run_units(units: list[Unit], ctx, jobs: int, threads: int | None) -> Iterator[list[tuple]]:
    """Executes ``units`` and yields each unit's results as it finishes (in this process when
    ``jobs == 1``, one unit at a time, or CUDA; else in ``jobs`` forked workers). Leaving the
    generator early (an exception in the caller) stops the workers."""
    if jobs == 1 or len(units) <= 1 or ctx.device.type != "cpu":
        for unit in units:
            yield execute(unit, ctx)
        return
    # fork: workers inherit the loaded modules (figures registered at run time included); they
    # set their own thread count before any parallel region runs
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(units)), mp_context=multiprocessing.get_context("fork"),
                               initializer=_init_worker, initargs=(threads, os.getpid()))
    finished = False
    try:
        running = {pool.submit(execute, u, ctx) for u in units}
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
        finished = True
    finally:
        if not finished:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
