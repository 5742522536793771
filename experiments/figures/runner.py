"""Runs figure experiments through the cache, writes their data, and plots from the data alone.

A figure module (``experiments/figures/<name>.py``) defines::

    NAME, CLAIMS, TITLE, VERSION          # VERSION: bump when ``compute`` changes meaning
    tasks(scale) -> list[dict]            # one JSON config per unit of work, each with a "seed"
    compute(task, ctx) -> dict            # the result of one task (JSON types)
    rows(task, result) -> list[dict]      # flat rows for data/NAME.csv
    summarize(rows) -> dict               # headline numbers, stored in data/NAME.json
    plot(rows, summary) -> Figure         # reads only rows + summary
    unavailable(scale, ctx) -> str|None   # optional: why this figure cannot run (e.g. missing data)
    EXPECTED_WARNINGS = {label: class}    # optional: warnings that are findings, counted, not printed

Each task is cached under ``{"figure": NAME, "version": VERSION, **task}``; the plot is drawn from
``data/NAME.json`` after it is written, so a figure can always be rebuilt without recomputing
(``--replot``).

Warnings raised while computing a task are recorded with its cache entry (``meta["warnings"]``).
Those of a class a figure lists in ``EXPECTED_WARNINGS`` (e.g. ``theory.AssumptionWarning``: "an
assumption of the theorem fails here" — itself a finding) are counted per label into
``data/NAME.json`` (``"warnings"``: configurations per label) and reported once on the figure's line;
any other warning is recorded too and summarised once, in words, on the same line (never printed raw).
"""
from __future__ import annotations

import csv
import io
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import registry
from ..registry import figure_module
from .._warnings import category, summary
from ..cache import Cache, atomic_write_text, to_jsonable
from . import style

SCALES = ("smoke", "default", "gpu", "paper")
FIGURES_DIR = Path("figures")
"""The committed figures (relative to the working directory): only the default scale writes here."""


def default_out(scale: str) -> Path:
    """Where ``scale`` writes when no ``--out`` is given: ``figures/`` for the default scale, a folder
    of its own (``figures/smoke/``, ``figures/gpu/``, ``figures/paper/``, ignored by git) for every
    other scale, so a quick smoke run never overwrites the committed default-scale figures."""
    return FIGURES_DIR if scale == "default" else FIGURES_DIR / scale
DEVICES = ("auto", "cpu", "cuda")


class FigureError(RuntimeError):
    """Saved figure data that ``--replot`` cannot draw: a clean refusal (one line, exit status 2)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``cached``: results of the run's tasks now in the cache (a rerun resumes)."""

    def __init__(self, cached: int):
        super().__init__(cached)
        self.cached = cached


@dataclass
class Context:
    """What a task's ``compute`` may depend on besides its config (none of it enters the cache key)."""

    scale: str
    device: "torch.device"
    data_root: str | None = None


@dataclass
class FigureReport:
    name: str
    paths: dict
    summary: dict
    computed: int = 0
    cached: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    warnings: dict = field(default_factory=dict)


def library_versions() -> dict:
    import matplotlib
    import numpy
    import scipy
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
            "scipy": scipy.__version__, "sklearn": sklearn.__version__, "matplotlib": matplotlib.__version__}


def data_paths(out: Path, name: str) -> dict:
    return {"png": out / f"{name}.png", "pdf": out / f"{name}.pdf",
            "csv": out / "data" / f"{name}.csv", "json": out / "data" / f"{name}.json"}


def _csv_text(rows: list[dict]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in row.items()})
    return buf.getvalue()


def load_data(path: str | Path) -> dict:
    """The saved ``data/NAME.json`` (rows, summary, provenance)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def plot_from_data(module, paths: dict) -> None:
    """Draws the figure from ``data/NAME.json`` alone (experiments write results; figures read them)."""
    data = load_data(paths["json"])
    fig = module.plot(data["rows"], data["summary"])
    style.save(fig, paths["png"], paths["pdf"])


def run(names=None, *, scale: str = "default", device="auto", out: str | Path | None = None,
        force: bool = False, cache_dir: str | Path | None = None, data_root: str | None = None,
        progress: bool = True, replot: bool = False, threads: int | None = None, jobs: int | None = None,
        on_task: Callable[[str, dict, bool], None] | None = None) -> dict[str, FigureReport]:
    """Regenerates the named figures (default: all) into ``out`` (default: :func:`default_out`);
    returns a report per figure.

    ``on_task(name, task, computed)`` is called after every task (tests use it to interrupt a run).
    ``jobs`` worker processes compute the tasks and ``threads`` sets ``torch.set_num_threads`` in
    each (this process's setting is restored afterwards); by default small scales on the CPU run
    ``jobs = cores`` single-threaded processes and large ones one process with torch's threads
    (``executor.policy``). Training runs that differ only in seed, α or method are trained as one
    ensemble (``experiments.batched``); results are still cached per configuration.

    The arguments are trusted (``mixup-theory figures`` validates them once, at the command line);
    ``device`` is a ``torch.device`` or a name for ``experiments.devices.resolve_device``.
    """
    import torch

    from ..devices import resolve_device
    from . import executor

    device = resolve_device(device)
    jobs, threads = executor.policy(scale, device if not replot else torch.device("cpu"), jobs, threads)
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run(names, scale, device, out, force, cache_dir, data_root, progress, replot, on_task, jobs, threads)
    finally:
        torch.set_num_threads(previous)


def _scale_tasks(module, scale: str) -> list[dict]:
    """The module's tasks at ``scale``; a module without its own ``gpu`` scale runs its ``default``
    tasks there."""
    if scale == "gpu" and "gpu" not in getattr(module, "SCALES", {"gpu": None}):
        return module.tasks("default")
    return module.tasks(scale)


def _run(names, scale, device, out, force, cache_dir, data_root, progress, replot, on_task, jobs, threads):
    names = list(names) if names else registry.figure_names(scale)
    modules = {name: figure_module(name) for name in names}
    out = Path(out) if out is not None else default_out(scale)
    if replot:
        reports = {}
        for name, module in modules.items():
            paths = data_paths(out, name)
            try:  # saved data edited or from another version: a clean refusal, not a traceback
                plot_from_data(module, paths)
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
                raise FigureError(f"--replot: {paths['json']} does not hold the data {name!r} plots "
                                  f"({type(exc).__name__}: {exc}); rerun without --replot") from None
            reports[name] = FigureReport(name, paths, load_data(paths["json"])["summary"])
        return reports

    ctx = Context(scale=scale, device=device, data_root=data_root)
    cache = Cache(Path(cache_dir) if cache_dir is not None else out / ".cache")
    plan = {name: _scale_tasks(m, scale) for name, m in modules.items()}
    entries: dict[str, list] = {name: [None] * len(tasks) for name, tasks in plan.items()}
    fresh: dict[str, list] = {name: [False] * len(tasks) for name, tasks in plan.items()}
    spent = {name: 0.0 for name in plan}
    pending = []
    for name, tasks in plan.items():
        for i, task in enumerate(tasks):
            entry = None if force else cache.load(_cache_config(name, modules[name], task))
            if entry is None:
                pending.append((name, i, task))
            else:
                cache.stats["hits"] += 1
                entries[name][i] = entry
    start = time.perf_counter()
    try:
        _compute(plan, entries, fresh, spent, pending, modules, ctx, cache, jobs, threads, progress, on_task)
    except KeyboardInterrupt:
        raise Interrupted(sum(e is not None for es in entries.values() for e in es)) from None
    return _write(plan, entries, fresh, spent, modules, out, scale, jobs, threads, start)


def _compute(plan, entries, fresh, spent, pending, modules, ctx, cache, jobs, threads, progress, on_task) -> None:
    """Computes the pending tasks (in worker processes), caching each result as it arrives."""
    from tqdm.auto import tqdm

    from . import executor

    total = sum(len(t) for t in plan.values())
    with tqdm(total=total, initial=total - len(pending), disable=not progress, unit="config",
              dynamic_ncols=True) as bar:
        for name, tasks in plan.items():
            for i, task in enumerate(tasks):
                if entries[name][i] is not None and on_task is not None:
                    on_task(name, task, False)
        units = executor.plan_units(pending, modules, ctx, jobs)
        for done in executor.run_units(units, ctx, jobs, threads):
            for name, i, task, result, seconds, ensemble, caught in done:
                meta = {"device": str(ctx.device), "seconds": seconds, "ensemble": ensemble, "warnings": caught}
                config = _cache_config(name, modules[name], task)
                cache.store(config, result, meta)
                cache.stats["computed"] += 1
                entries[name][i] = {"config": config, "result": to_jsonable(result), "meta": meta}
                fresh[name][i] = True
                spent[name] += seconds
                bar.set_description(name)
                bar.update(1)
                if on_task is not None:
                    on_task(name, task, True)


def _write(plan, entries, fresh, spent, modules, out, scale, jobs, threads, start) -> dict:
    """Writes each figure's data (CSV, JSON with provenance) and draws it from that data."""
    reports = {}
    for name, module in modules.items():
        t0 = time.perf_counter()
        rows, compute_seconds, devices = [], 0.0, set()
        for task, entry in zip(plan[name], entries[name]):
            compute_seconds += float(entry.get("meta", {}).get("seconds", 0.0))
            devices.add(entry.get("meta", {}).get("device", "unknown"))
            rows.extend(module.rows(task, entry["result"]))
        computed = sum(fresh[name])
        warned = warning_counts(module, entries[name])
        summary = to_jsonable(module.summarize(rows))
        paths = data_paths(out, name)
        seeds = sorted({t["seed"] for t in plan[name] if "seed" in t})
        provenance = {
            "figure": name, "claims": module.CLAIMS, "title": module.TITLE, "scale": scale,
            "seed": seeds, "configs": plan[name], "versions": library_versions(),
            "device": sorted(devices), "seconds": compute_seconds,
            "seconds_this_run": spent[name] + time.perf_counter() - t0,
            "execution": {"jobs": jobs, "threads": threads, "wall_seconds": time.perf_counter() - start},
            "cache": {"computed": computed, "reused": len(plan[name]) - computed}, "warnings": warned,
            "summary": summary, "rows": rows,
        }
        atomic_write_text(paths["csv"], _csv_text(rows))
        atomic_write_text(paths["json"], json.dumps(to_jsonable(provenance), indent=1, allow_nan=True))
        plot_from_data(module, paths)
        reports[name] = FigureReport(name, paths, summary, computed, len(plan[name]) - computed,
                                     spent[name] + time.perf_counter() - t0, warnings=warned)
    return reports


def _expected_label(module, record: dict) -> str | None:
    cls = category(record["category"])
    for label, expected in getattr(module, "EXPECTED_WARNINGS", {}).items():
        if issubclass(cls, expected):
            return label
    return None


def warning_counts(module, entries: list) -> dict:
    """``{"expected": {label: configurations}, "unexpected": [{category, message, configurations}]}``
    over the cache entries of a figure's tasks (entries cached before warnings were recorded count none)."""
    expected = {label: 0 for label in getattr(module, "EXPECTED_WARNINGS", {})}
    unexpected: dict = {}
    for entry in entries:
        labels = set()
        for w in entry.get("meta", {}).get("warnings", []):
            label = _expected_label(module, w)
            if label is not None:
                labels.add(label)
            else:
                key = (w["category"], w["message"])
                unexpected[key] = unexpected.get(key, 0) + 1
        for label in labels:
            expected[label] += 1
    return {"expected": expected,
            "unexpected": [{"category": c, "message": m, "configurations": k} for (c, m), k in unexpected.items()]}


def warnings_note(report: FigureReport) -> str:
    """One line about the warnings a figure recorded: expected ones counted per label, any other
    summarised in words (``""`` when none)."""
    counts = {k: v for k, v in report.warnings.get("expected", {}).items() if v}
    parts = []
    if counts:
        parts.append("expected warnings recorded in " + report.paths["json"].name + ": "
                     + ", ".join(f"{label} ({k} configs)" for label, k in counts.items()))
    other = summary(report.warnings.get("unexpected", []), "not expected by this figure")
    if other:
        parts.append(other)
    return "; ".join(parts)


def _cache_config(name: str, module, task: dict) -> dict:
    return {"figure": name, "version": module.VERSION, **task}
