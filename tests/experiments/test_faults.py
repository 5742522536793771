"""Signals and faults of `mixup-theory figures`: Ctrl-C, a parent killed with SIGKILL, a full disk, and
cache files that name modules. Each ends in one line (or silently, for the workers), never a traceback,
and leaves no partial file."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from experiments.cli import main
from experiments.figures import runner

REPO = Path(__file__).resolve().parents[2]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_ctrl_c_is_one_line_exit_130_and_the_cached_results_resume(fake, tmp_path, capsys, monkeypatch):
    from experiments.figures import executor

    real = executor.execute

    def interrupt_third(unit, ctx):  # Ctrl-C arrives while the third task computes
        if len(fake) == 2:
            raise KeyboardInterrupt
        return real(unit, ctx)

    monkeypatch.setattr(executor, "execute", interrupt_third)
    code = main(["figures", "fake_demo", "--out", str(tmp_path), "--no-progress", "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 130 and err == "mixup-theory figures: interrupted: 2 results cached; rerun to resume\n"
    monkeypatch.setattr(executor, "execute", real)
    rep = runner.run(["fake_demo"], out=tmp_path, progress=False, jobs=1)["fake_demo"]
    assert (rep.computed, rep.cached) == (3, 2)


def _script(tmp_path: Path, pids: Path, call: str) -> Path:
    """A script that registers the ``fake`` figure with a compute that records its pid and sleeps."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / 'tests')!r})
        import conftest, pytest
        conftest.fake.__wrapped__(pytest.MonkeyPatch())
        def compute(task, ctx):
            open(os.path.join({str(pids)!r}, str(os.getpid())), "w").close()
            time.sleep(120)
            return {{"y": 0}}
        sys.modules["experiments.figures.fake_demo"].compute = compute
    """) + call)
    return script


def _wait_for_workers(pids: Path, k: int = 2) -> list[int]:
    deadline = time.time() + 60
    while len(list(pids.iterdir())) < k and time.time() < deadline:
        time.sleep(0.1)
    return [int(p.name) for p in pids.iterdir()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_of_a_real_process_prints_no_traceback(tmp_path):
    """SIGINT to the whole process group (what a terminal's Ctrl-C does), workers included."""
    pids = tmp_path / "pids"
    pids.mkdir()
    script = _script(tmp_path, pids, "from experiments.cli import main\n"
                     f"sys.exit(main(['figures', 'fake_demo', '--out', {str(tmp_path / 'out')!r}, '--no-progress', "
                     "'--jobs', '2']))\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    workers = _wait_for_workers(pids)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == [
        "mixup-theory figures: interrupted: 0 results cached; rerun to resume"], err
    assert len(workers) == 2 and not any(_alive(w) for w in workers)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_the_parent_is_killed(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    script = _script(tmp_path, pids, "from experiments.figures import runner\n"
                     f"runner.run(['fake_demo'], out={str(tmp_path / 'out')!r}, progress=False, jobs=2, device='cpu')\n")
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    workers = _wait_for_workers(pids)
    assert len(workers) == 2 and all(_alive(w) for w in workers)
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)


def test_full_disk_is_one_line_exit_1_and_leaves_no_partial_file(fake, tmp_path, capsys, monkeypatch):
    from experiments import cache

    real = os.fsync

    def full(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp") and "fake_demo.json" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(cache.os, "fsync", full)
    code = main(["figures", "fake_demo", "--out", str(tmp_path), "--no-progress", "--jobs", "1"])
    err = capsys.readouterr().err
    target = tmp_path / "data" / "fake_demo.json"
    assert code == 1 and err == f"mixup-theory figures: error: {target}: No space left on device\n"
    left = _files(tmp_path)
    assert not any(name.endswith(".tmp") for name in left), left
    assert "data/fake_demo.json" not in left and "fake_demo.png" not in left
    assert sum(name.startswith(".cache/") for name in left) == 5  # the results are kept: a rerun resumes


def test_cache_entries_never_import_the_modules_they_name(fake, tmp_path):
    """Recorded warning classes are looked up in a fixed table; a module named in a cache file is
    data, never imported."""
    from experiments._warnings import category

    runner.run(["fake_demo"], out=tmp_path, progress=False, jobs=1)
    name = "mixup_theory_test_never_imported"
    (tmp_path / f"{name}.py").write_text("raise SystemExit('imported')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        for entry in (tmp_path / ".cache").glob("*.json"):
            data = json.loads(entry.read_text())
            data["meta"]["warnings"] = [{"category": f"{name}.Boom", "message": "x"},
                                        {"category": "os.system", "message": "y"}]
            entry.write_text(json.dumps(data))
        rep = runner.run(["fake_demo"], out=tmp_path, progress=False, jobs=1)["fake_demo"]
        assert name not in sys.modules and rep.cached == 5
        assert category(f"{name}.Boom") is UserWarning and category("os.system") is UserWarning
        assert category("theory._warnings.AssumptionWarning").__name__ == "AssumptionWarning"
        assert category("builtins.RuntimeWarning") is RuntimeWarning
    finally:
        sys.path.remove(str(tmp_path))


def test_experiments_filter_warnings_by_class_never_by_message():
    import ast

    offenders = []
    for path in (REPO / "experiments").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "filterwarnings":
                if any(k.arg == "message" for k in node.keywords) or node.args[1:2]:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders
