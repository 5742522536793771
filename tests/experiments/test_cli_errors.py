"""Every bad command line is one stderr line with exit status 2, before any work, never a traceback.

The table runs in-process through each entry point's ``main`` with the functions that do the work
replaced by tripwires (so "before any work starts" is checked, not assumed); a few rows also run
as real subprocesses to cover the interpreter's own exit path.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
MT, DIST = "mixup-theory", "python -m experiments.distributed"


def _files(tmp: Path) -> dict:
    """Paths the table refers to: a plain file, folders with corrupt or incomplete saved figures."""
    (tmp / "a_file").write_text("not a folder\n")
    (tmp / "notable.md").write_text("# no claims table here\n")
    for name, text in [("corrupt", '{"rows": [1, 2'), ("norows", json.dumps({"summary": {}})),
                       ("nulls", "null")]:
        (tmp / name / "data").mkdir(parents=True)
        (tmp / name / "data" / "rademacher.json").write_text(text)
    (tmp / "empty").mkdir()
    return {"FILE": str(tmp / "a_file"), "DIR": str(tmp / "empty"), "NOTABLE": str(tmp / "notable.md"),
            "CORRUPT": str(tmp / "corrupt"), "NOROWS": str(tmp / "norows"), "NULLS": str(tmp / "nulls"),
            "MISSING": str(tmp / "missing" / "deeper")}


BAD_CLI = [
    [],
    ["nope"],
    ["list", "extra"],
    ["figures", "nope"],
    ["figures", "rademacher", "nope"],
    ["figures", "--scale", "huge"],
    ["figures", "--device", "tpu"],
    ["figures", "--device", "cuda:99"],
    ["figures", "rademacher", "--replot", "--device", "cuda:99", "--out", "{DIR}"],
    ["figures", "--threads", "0"],
    ["figures", "--threads", "abc"],
    ["figures", "--threads", "99999999999999999999"],
    ["figures", "rademacher", "--jobs", "100000"],
    ["figures", "rademacher", "--out", ""],
    ["figures", "rademacher", "--out", "x" * 300],
    ["figures", "rademacher", "--out", "/".join(["d"] * 3000)],
    ["figures", "rademacher", "--cache-dir", ""],
    ["figures", "rademacher", "--data-root", "/nonexistent"],
    ["figures", "rademacher", "--jobs", "0"],
    ["figures", "rademacher", "--out", "{FILE}"],
    ["figures", "rademacher", "--out", "{FILE}/sub"],
    ["figures", "rademacher", "--out", "/proc/mixup-figures"],
    ["figures", "rademacher", "--cache-dir", "{FILE}"],
    ["figures", "rademacher", "--replot", "--out", "{CORRUPT}"],
    ["figures", "rademacher", "--replot", "--out", "{NOROWS}"],
    ["figures", "rademacher", "--replot", "--out", "{NULLS}"],
    ["figures", "rademacher", "--replot", "--out", "{DIR}"],
    ["figures", "--scale", "paper", "--device", "cpu"],
    ["figures", "rademacher", "--data-root", "{MISSING}"],
    ["check", "--only", "C99"],
    ["check", "--only", "C1,C99"],
    ["check", "--only", ","],
    ["check", "--only"],
    ["check", "--write", "--file", "/proc/paper_checks.md"],
    ["check", "--write", "--file", "{MISSING}"],
    ["check", "--write", "--file", "{NOTABLE}"],
    ["check", "--write", "--file", "{DIR}"],
    ["check", "--bogus"],
    ["explain", "--alpha", "-1"],
    ["explain", "--alpha", "0"],
    ["explain", "--alpha", "nan"],
    ["explain", "--alpha", "inf"],
    ["explain", "--alpha", "abc"],
    ["explain", "--alpha", "1e308"],
    ["explain", "--alpha", "1e-300"],
    ["explain", "--n", "0"],
    ["explain", "--n", "-5"],
    ["explain", "--n", "2.5"],
    ["explain", "--data", "nope"],
    ["explain", "--model", "nope"],
    ["explain", "--data", "digits01", "--n", "5000"],
    ["explain", "--n", "100000"],
    ["explain", "--train", "nope"],
    ["decompose", "--alpha", "0"],
    ["decompose", "--n", "1"],
    ["decompose", "--seed", "-1"],
    ["decompose", "--n", "100000"],
    ["property", "C4", "--examples", "0"],
    ["property", "C4", "--seed", "-1"],
    ["property", "C4", "--save", "/proc/counterexample.json"],
    ["property", "C4", "--save", "{DIR}"],
    ["property", "C4", "--save", ""],
    ["property", "C4", "--examples", "2000000"],
    ["property", "C99"],
    ["property", "C13", "--drop", "norm_bound"],
    ["check", "--write", "--file", ""],
]

BAD_DISTRIBUTED = [
    [],
    ["nope"],
    ["loss", "--alpha", "-1"],
    ["loss", "--alpha", "0"],
    ["loss", "--alpha", "nan"],
    ["loss", "--nodes", "0"],
    ["loss", "--n-train", "0"],
    ["loss", "--dataset", "breast_cancer", "--n-train", "100000"],
    ["loss", "--dataset", "nope"],
    ["loss", "--model", "nope"],
    ["loss", "--hidden", "0"],
    ["loss", "--device", "tpu"],
    ["loss", "--seed", "-1"],
    ["train", "--epochs", "0"],
    ["train", "--batch-size", "0"],
    ["train", "--lr", "0"],
    ["train", "--weight-decay", "-1"],
    ["train", "--method", "manifold"],
    ["train", "--optimizer", "lbfgs"],
    ["train", "--out", "/proc/x.json"],
    ["train", "--out", "{DIR}"],
    ["train", "--out", "{MISSING}"],
    ["train"],  # not launched by torchrun
]


def _fill(argv, files):
    return [a.format(**files) for a in argv]


def _tripwire(*_, **__):
    raise AssertionError("work started although the arguments are bad")


def _exit_code(main, argv) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _assert_one_line(code, err, prog, argv):
    lines = err.strip().splitlines()
    assert code == 2, (argv, code, err)
    assert len(lines) == 1, (argv, err)
    assert "Traceback" not in err and lines[0].startswith(prog), (argv, err)


@pytest.fixture
def tripwires(monkeypatch, tmp_path):
    from experiments import check, cli, distributed, explain
    from experiments.figures import runner

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for module, name in [(check, "run_checks"), (check, "write_table"), (explain, "explain"), (runner, "run"),
                         (cli, "_run"), (distributed, "sharded_mixup_loss"), (distributed, "ddp_train"),
                         (distributed, "_init_from_env")]:
        monkeypatch.setattr(module, name, _tripwire)
    return _files(tmp_path)


def test_the_table_is_large_enough():
    assert len(BAD_CLI) + len(BAD_DISTRIBUTED) >= 30


@pytest.mark.parametrize("argv", BAD_CLI, ids=" ".join)
def test_bad_mixup_theory_command_line(argv, tripwires, capsys):
    from experiments.cli import main

    code = _exit_code(main, _fill(argv, tripwires))
    _assert_one_line(code, capsys.readouterr().err, MT, argv)


@pytest.mark.parametrize("argv", BAD_DISTRIBUTED, ids=" ".join)
def test_bad_distributed_command_line(argv, tripwires, capsys):
    from experiments.distributed import main

    code = _exit_code(main, _fill(argv, tripwires))
    _assert_one_line(code, capsys.readouterr().err, DIST, argv)


def test_output_file_probe_leaves_nothing_behind(tmp_path):
    from experiments._usage import check_output_dir, check_output_file

    check_output_file(tmp_path / "h.json", "--out")
    check_output_dir(tmp_path / "new" / "dir", "--out")
    assert list(tmp_path.iterdir()) == []


def test_check_only_accepts_spaces_and_commas(tripwires):
    from experiments.check import claim_ids

    assert claim_ids(["C1,c4", "C7", "C1"]) == ["C1", "C4", "C7"]


SUBPROCESS = [
    ([sys.executable, "-m", "experiments.cli", "explain", "--alpha", "-1"], MT),
    ([sys.executable, "-m", "experiments.distributed", "train", "--out", "/proc/x.json"], DIST),
]


@pytest.mark.parametrize("cmd,prog", SUBPROCESS, ids=lambda v: " ".join(v[2:]) if isinstance(v, list) else v)
def test_bad_command_line_in_a_subprocess(cmd, prog, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    _assert_one_line(proc.returncode, proc.stderr, prog, cmd)
    assert proc.stdout == ""



@pytest.mark.parametrize("rows", [[1, 2], [{"unrelated": 1}]], ids=["not_rows", "foreign_rows"])
def test_replot_of_data_that_does_not_fit_the_figure(rows, tmp_path, monkeypatch, capsys):
    """Structurally valid JSON whose rows the figure cannot draw: still one line and exit 2."""
    from experiments.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "out" / "data").mkdir(parents=True)
    (tmp_path / "out" / "data" / "rademacher.json").write_text(json.dumps({"rows": rows, "summary": {}}))
    code = _exit_code(main, ["figures", "rademacher", "--replot", "--out", "out"])
    _assert_one_line(code, capsys.readouterr().err, MT, rows)
    assert not (tmp_path / "out" / "rademacher.png").exists()


@pytest.mark.parametrize("command, threads", [("check", 1), ("explain", 1), ("property", 1), ("figures", None)])
def test_small_problem_commands_run_torch_on_one_thread(command, threads, monkeypatch):
    """check/explain/property set one torch thread before their work; figures leaves it to --threads."""
    import argparse

    import torch

    from experiments import cli

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    assert cli._run(argparse.Namespace(command=command, func=lambda args: 0)) == 0
    assert calls == ([] if threads is None else [threads])


def test_every_subcommand_has_a_description_and_every_option_a_help_text():
    from experiments.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert p.description and len(p.description) > 40, name
        for action in p._actions:
            if action.dest != "help":
                assert action.help, (name, action.option_strings or action.dest)


def test_caps_are_documented_in_the_help(capsys):
    from experiments.cli import main
    from experiments.figures import executor

    with pytest.raises(SystemExit):
        main(["figures", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert f"1 to {executor.max_jobs()}" in out and f"1 to {executor.max_threads()}" in out


def test_valid_extremes_pass_the_edge(tripwires):
    """The largest accepted values get through the validators (and reach the tripwire, not a refusal)."""
    from experiments.cli import main
    from experiments.explain import ALPHA_RANGE
    from experiments.figures import executor

    for argv in (["figures", "rademacher", "--jobs", str(executor.max_jobs()), "--threads", str(executor.max_threads()),
                  "--out", "out"],
                 ["explain", "--alpha", repr(ALPHA_RANGE[0])], ["explain", "--alpha", repr(ALPHA_RANGE[1])]):
        with pytest.raises(AssertionError, match="work started"):
            main(argv)
