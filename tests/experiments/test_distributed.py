"""Sharded exact Mixup loss and DDP training (experiments/distributed.py) on 2 gloo processes, CPU.

The sharded loss is compared with the single-process ``theory.mixup_loss`` and with a brute-force
sum over all pairs and nodes written here; the row shards of the internal pair sums (which the
sharded loss all-reduces) are checked against the same brute force in one process, for symmetric
(folded) and asymmetric λ-rules. Which rows of the data each rank reads is recorded by an array
wrapper. ``python -m experiments.distributed loss --weights FILE`` runs inside the same two
processes and is compared with ``theory.mixup_loss`` of the loaded weights. DDP training is replayed step by step in one process: the
gradient of each step is the mean of the ranks' local-batch gradients.
"""
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import theory
from experiments.distributed import ddp_train, main, reads_own_rows, shard_rows, sharded_mixup_loss
from theory._problem import prepare
from theory import MixupLambda

WORLD = 2
RTOL = 1e-12  # shards add the same terms in another order: rounding only
DDP_RTOL = 1e-10  # float64 DDP training vs one process: sums in another order, a dozen SGD steps
CONVERGED_NODES = 512  # brute-force rule for the exact λ-expectation (margins ≲ 5: converged to rounding)
BRUTE_RTOL = {"narrow_mlp_kinks": 1e-8}  # exact kink-aware value vs 512 nodes on a kinked integrand: ~3e-10


def _cases():
    """name -> (model, X, y, kwargs); deterministic, so the workers and the test build the same."""
    g = torch.Generator().manual_seed(0)
    n, d = 23, 4
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    yb = (torch.rand(n, generator=g) < 0.5).long()
    yc = torch.randint(0, 3, (n,), generator=g)
    yr = torch.randn(n, generator=g, dtype=torch.float64)
    gm = torch.Generator().manual_seed(1)
    return {
        "linear_logistic": (theory.linear_model(d, weight=torch.randn(d, generator=g), intercept=0.3), X, yb,
                            dict(alpha=1.0, loss="logistic", nodes=8)),
        "linear_logistic_asym": (theory.linear_model(d, weight=torch.randn(d, generator=g), intercept=-0.2), X, yb,
                                 dict(alpha=0.4, beta=2.0, loss="logistic", nodes=7)),
        "linear_squared": (theory.linear_model(d, weight=torch.randn(d, generator=g), intercept=0.1), X, yr,
                           dict(alpha=0.5, loss="squared", nodes=6)),
        "linear_logistic_separated": (theory.linear_model(d, weight=torch.randn(d, generator=g), intercept=0.5), X,
                                      yb, dict(alpha=0.6, beta=1.7, loss="logistic", method="separated")),
        "linear_softmax": (theory.linear_model(d, 3, weight=torch.randn(3, d, generator=g),
                                               intercept=torch.randn(3, generator=g)), X, yc,
                           dict(alpha=0.8, beta=1.3, loss="softmax")),
        "narrow_mlp_kinks": (theory.relu_mlp(d, [3, 5], generator=gm), X, yb, dict(alpha=0.9, loss="logistic")),
        "narrow_tanh_squared": (theory.smooth_mlp(d, [2], generator=gm), X, yr, dict(alpha=1.2, loss="squared")),
        "tanh_softmax_doubling": (theory.smooth_mlp(d, [7], 3, generator=gm), X, yc, dict(alpha=0.6, loss="softmax")),
        "mlp_softmax": (theory.relu_mlp(d, [9], 3, generator=gm), X, yc, dict(alpha=0.7, loss="softmax", nodes=5)),
        "tanh_logistic_input_mixing": (theory.smooth_mlp(d, [6], generator=gm), X, yb,
                                       dict(alpha=2.0, beta=0.5, loss="logistic", nodes=4, shortcut=False)),
    }


def _brute_force(model, X, y, alpha, beta=None, loss="logistic", nodes=None, shortcut=True, method=None):
    """``(1/n²) Σ_q w_q Σ_ij l(f(λ_q x_i + (1−λ_q) x_j), λ_q y_i + (1−λ_q) y_j)``, all pairs at once
    (``nodes=None``: a converged rule for the exact λ-expectation)."""
    lam, w = MixupLambda(alpha, beta).nodes(nodes or CONVERGED_NODES)
    P = prepare(model, X, y, loss)
    n = P.n
    total = 0.0
    for lq, wq in zip(lam, w):
        Xm = (lq * P.X[:, None, :] + (1 - lq) * P.X[None, :, :]).reshape(n * n, -1)
        Ym = (lq * P.Y[:, None, :] + (1 - lq) * P.Y[None, :, :]).reshape(n * n, -1)
        total += wq * float(P.loss.value(P.fn(Xm), Ym).sum())
    return total / n ** 2


def _train_config(method):
    from experiments.training import TrainConfig

    return TrainConfig(dataset="two_moons", model="mlp", method=method, epochs=3, batch_size=8, lr=0.1,
                       hidden=(8,), n_train=40, seed=3, device="cpu", dtype="float64")


class _RowLog:
    """An array that records which rows are read: by slices (``[a:b]``) or whole (``numpy.asarray``)."""

    def __init__(self, array):
        self.array, self.reads = np.asarray(array), []

    def __len__(self):
        return len(self.array)

    def __getitem__(self, key):
        start, stop, _ = key.indices(len(self.array))
        self.reads.append((start, stop))
        return self.array[start:stop]

    def __array__(self, dtype=None, copy=None):
        self.reads.append((0, len(self.array)))
        return np.asarray(self.array, dtype=dtype)


# CLI runs: name -> (argv without the files, model builder, data builder)
CLI_N = 41


def _cli_data(tmp):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((CLI_N, 5))
    y2 = (X[:, 0] + 0.5 * rng.standard_normal(CLI_N) > 0).astype(np.int64)
    y3 = rng.integers(0, 3, CLI_N)
    for name, arr in (("X", X), ("y2", y2), ("y3", y3)):
        np.save(os.path.join(tmp, f"{name}.npy"), arr)
    return X, y2, y3


def _cli_runs(tmp):
    """name -> (argv, model, X, y, mixup_loss keywords): trained-looking weights saved to files."""
    from experiments.nets import build_model

    X, y2, y3 = _cli_data(tmp)
    runs = {}
    specs = {"logistic_own_rows": ("logistic", (), y2, "y2", ["--alpha", "0.5", "--beta", "2"],
                                   dict(alpha=0.5, beta=2.0, loss="logistic")),
             "softmax_own_rows": ("logistic", (), y3, "y3", ["--alpha", "1.5", "--rtol", "1e-12"],
                                  dict(alpha=1.5, loss="softmax", rtol=1e-12)),
             "mlp_own_rows": ("mlp", (4,), y2, "y2", ["--hidden", "4", "--alpha", "0.7"],
                              dict(alpha=0.7, loss="logistic")),
             "mlp_all_rows": ("mlp", (6,), y2, "y2", ["--hidden", "6", "--alpha", "0.7", "--nodes", "12",
                                                      "--loss", "squared"],
                              dict(alpha=0.7, loss="squared", nodes=12))}
    for name, (kind, hidden, y, yname, extra, kw) in specs.items():
        k = 2 if yname == "y2" else 3
        model = build_model(kind, (5,), k, hidden=hidden or (6,), seed=11, dtype=torch.float64)
        with torch.no_grad():  # weights unlike any fresh initialisation
            for p in model.parameters():
                p.mul_(3.0).add_(0.1)
        path = os.path.join(tmp, f"{name}.pt")
        torch.save({k_: v.float() for k_, v in model.state_dict().items()}, path)  # float32, as usually saved
        model.load_state_dict(torch.load(path))
        argv = ["loss", "--model", kind, "--weights", path, "--data", os.path.join(tmp, "X.npy"),
                "--labels", os.path.join(tmp, f"{yname}.npy"), "--device", "cpu",
                "--out", os.path.join(tmp, f"{name}.json"), *extra]
        runs[name] = (argv, model, X, y, kw)
    return runs


TRAIN_ARGV = ["train", "--dataset", "two_moons", "--model", "mlp", "--hidden", "8", "--n-train", "40",
              "--method", "mixup", "--alpha", "0.4", "--beta", "1.5", "--epochs", "2", "--batch-size", "6",
              "--lr", "0.05", "--optimizer", "adam", "--seed", "2", "--device", "cpu", "--dtype", "float64"]


def _worker(rank, init_file, out_dir, killed_dir):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        losses, reads = {}, {}
        for name, (m, X, y, kw) in _cases().items():
            Xl, yl = _RowLog(X), _RowLog(y)
            losses[name] = sharded_mixup_loss(m, Xl, yl, **kw)
            reads[name] = (Xl.reads, yl.reads)
        for argv, *_ in _cli_runs(out_dir).values():
            assert main(argv) == 0
        runs = {}
        for method in ("standard", "mixup"):
            res = ddp_train(_train_config(method))
            runs[method] = {"params": [p.detach().clone() for p in res["model"].parameters()],
                            "history": res["history"]}
        res = ddp_train(_train_config("mixup"), checkpoint=os.path.join(out_dir, "ckpt"), checkpoint_every=1)
        runs["mixup_checkpointed"] = {"params": [p.detach().clone() for p in res["model"].parameters()]}
        assert main(TRAIN_ARGV + ["--checkpoint", os.path.join(out_dir, "cli"),
                                  "--out", os.path.join(out_dir, "cli.json")]) == 0
        res = ddp_train(_train_config("mixup"), checkpoint=killed_dir, checkpoint_every=CHECKPOINT_EVERY)
        runs["mixup_resumed"] = {"params": [p.detach().clone() for p in res["model"].parameters()],
                                 "history": res["history"], "resumed_from": res["resumed_from"]}
        torch.save({"losses": losses, "reads": reads, "runs": runs}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_results(tmp_path_factory, killed):
    tmp = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp), str(killed["two"])), nprocs=WORLD, join=True)
    results = [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]
    return results, tmp


@pytest.fixture(scope="module")
def gloo_ranks(gloo_results):
    return gloo_results[0]


@pytest.mark.parametrize("name", list(_cases()))
def test_sharded_loss_equals_single_process(gloo_ranks, name):
    model, X, y, kw = _cases()[name]
    single = theory.mixup_loss(model, X, y, **kw)
    brute = _brute_force(model, X, y, **kw)
    values = [r["losses"][name] for r in gloo_ranks]
    assert values[0] == values[1]  # all_reduce hands every rank the same sum
    assert abs(values[0] - single) <= RTOL * abs(single)
    assert abs(values[0] - brute) <= BRUTE_RTOL.get(name, RTOL) * abs(brute)


@pytest.mark.parametrize("name", list(_cases()))
def test_each_rank_reads_only_the_rows_it_needs(gloo_ranks, name):
    """Affine models and narrow first layers: rank r reads its shard of X and y only; others: its shard
    and every partner row."""
    model, X, y, kw = _cases()[name]
    n = len(X)
    for rank, result in enumerate(gloo_ranks):
        r0, r1 = shard_rows(n, rank, WORLD)
        for reads in result["reads"][name]:
            rows = {i for a, b in reads for i in range(a, b)}
            if reads_own_rows(model, tuple(X.shape[1:]), kw.get("shortcut", True)):
                assert rows == set(range(r0, r1))
            else:
                assert rows == set(range(n))


@pytest.mark.parametrize("name", ["logistic_own_rows", "softmax_own_rows", "mlp_own_rows", "mlp_all_rows"])
def test_loss_command_with_weights_equals_single_process(gloo_results, name):
    import json

    _, tmp = gloo_results
    argv, model, X, y, kw = _cli_runs(str(tmp))[name]
    with open(tmp / f"{name}.json") as fh:
        record = json.load(fh)
    single = theory.mixup_loss(model, X, y, **kw)
    assert record["world_size"] == WORLD and record["n"] == CLI_N
    assert record["rows_read_per_rank"] == ("all" if name == "mlp_all_rows" else "own")
    assert abs(record["mixup_loss"] - single) <= RTOL * abs(single)
    from experiments.nets import build_model

    hidden = (int(argv[argv.index("--hidden") + 1]),) if "--hidden" in argv else (6,)
    init = build_model(argv[2], (5,), 2 if "y2" in argv[8] else 3, hidden=hidden, seed=11, dtype=torch.float64)
    assert abs(theory.mixup_loss(init, X, y, **kw) - single) > 1e-3 * abs(single)  # the weights matter


@pytest.mark.parametrize("name", list(_cases()))
def test_row_shards_add_up_to_brute_force(name):
    model, X, y, kw = _cases()[name]
    kw = dict(kw)
    if "nodes" not in kw and not theory.is_piecewise_linear(model):
        kw["nodes"] = 64  # a share's own node doubling is not the sum's (sharded_mixup_loss doubles the sum)
    brute = _brute_force(model, X, y, **kw)
    n = len(X)
    for world in (1, 3, 40):  # 40 > n: some shards are empty
        parts = [theory.mixup_loss(model, X, y, chunk_elements=97, rows=shard_rows(n, r, world), **kw)
                 for r in range(world)]
        assert abs(sum(parts) - brute) <= BRUTE_RTOL.get(name, RTOL) * abs(brute)


def test_without_process_group_it_is_mixup_loss():
    model, X, y, kw = _cases()["mlp_softmax"]
    assert not dist.is_initialized()
    assert sharded_mixup_loss(model, X, y, **kw) == theory.mixup_loss(model, X, y, **kw)


@pytest.mark.parametrize("n, world", [(1, 1), (7, 3), (10, 10), (3, 5), (1000, 7)])
def test_shard_rows_partition(n, world):
    shards = [shard_rows(n, r, world) for r in range(world)]
    assert [i for r0, r1 in shards for i in range(r0, r1)] == list(range(n))
    sizes = [r1 - r0 for r0, r1 in shards]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("bad", [dict(n=0, rank=0, world=1), dict(n=5, rank=2, world=2), dict(n=5, rank=0, world=0)])
def test_shard_rows_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        shard_rows(**bad)


def test_ddp_train_needs_a_process_group():
    with pytest.raises(ValueError, match="process group"):
        ddp_train(_train_config("standard"))


def test_ddp_replicas_stay_in_sync(gloo_ranks):
    for method in ("standard", "mixup"):
        a, b = (r["runs"][method] for r in gloo_ranks)
        assert all(torch.equal(p, q) for p, q in zip(a["params"], b["params"]))
        drop = [{k: v for k, v in row.items() if k != "seconds"} for row in a["history"]]
        assert drop == [{k: v for k, v in row.items() if k != "seconds"} for row in b["history"]]
        assert all(np.isfinite(row["train_loss"]) for row in a["history"])


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _assert_same_weights(a, b, rtol=DDP_RTOL):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert torch.allclose(p, q, rtol=rtol, atol=rtol), (p - q).abs().max()


@pytest.mark.parametrize("method", ["standard", "mixup"])
def test_ddp_training_equals_single_process_training(gloo_ranks, method):
    """2 ranks, global batch split over them, Mixup partners from the whole batch = ``train`` in one
    process (no collectives, no DDP: an independent implementation of the same minibatch SGD)."""
    from experiments.training import train

    single = train(_train_config(method))
    _assert_same_weights(gloo_ranks[0]["runs"][method]["params"], _params(single.model))
    for row, ref in zip(gloo_ranks[0]["runs"][method]["history"], single.history):
        for key in ("train_objective", "train_loss", "test_loss", "train_acc", "test_acc"):
            assert row[key] == pytest.approx(ref[key], rel=DDP_RTOL, abs=DDP_RTOL)


def test_train_command_on_two_ranks_equals_train_in_one_process(gloo_results):
    """``python -m experiments.distributed train`` (inside the 2-rank group): its last checkpoint's
    weights and its ``--out`` history against ``experiments.training.train`` of the same options."""
    import json

    from experiments.nets import build_model
    from experiments.training import TrainConfig, train

    _, tmp = gloo_results
    cfg = TrainConfig(dataset="two_moons", model="mlp", method="mixup", alpha=0.4, beta=1.5, epochs=2,
                      batch_size=6, lr=0.05, optimizer="adam", hidden=(8,), n_train=40, seed=2, device="cpu",
                      dtype="float64")
    single = train(cfg)
    saved = torch.load(tmp / "cli" / "checkpoint.pt", weights_only=True)
    assert (saved["epoch"], saved["step"]) == (3, 0)  # both epochs done
    model = build_model("mlp", single.dataset.input_shape, 2, hidden=(8,), dtype=torch.float64)
    model.load_state_dict(saved["model"])
    _assert_same_weights(_params(model), _params(single.model))
    with open(tmp / "cli.json") as fh:
        record = json.load(fh)
    assert record["world_size"] == WORLD and record["resumed_from"] is None
    assert [r["test_acc"] for r in record["history"]] == [r["test_acc"] for r in single.history]


def test_checkpointing_does_not_change_the_run(gloo_ranks):
    a, b = gloo_ranks[0]["runs"]["mixup"], gloo_ranks[0]["runs"]["mixup_checkpointed"]
    assert all(torch.equal(p, q) for p, q in zip(a["params"], b["params"]))


# ------------------------------------------------------------------ kill, resume, other rank counts

KILL_AT = (2, 3)  # (epoch, step): killed after this step; the last checkpoint is (2, 2)
CHECKPOINT_EVERY = 2


def _kill(epoch, step):
    if (epoch, step) == KILL_AT:
        os._exit(7)  # no cleanup: as if the job were killed


def _killed_worker(rank, init_file, ckpt):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    ddp_train(_train_config("mixup"), checkpoint=ckpt, checkpoint_every=CHECKPOINT_EVERY, on_step=_kill)
    raise AssertionError("not killed")


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A 2-rank Mixup run killed mid-epoch (``os._exit``: no cleanup), its checkpoint folder copied
    twice (``two``: resumed by the 2-rank worker; ``one``: resumed on one rank)."""
    import shutil

    tmp = tmp_path_factory.mktemp("killed")
    ckpt = tmp / "ckpt"
    with pytest.raises(mp.ProcessExitedException):
        mp.spawn(_killed_worker, args=(str(tmp / "init"), str(ckpt)), nprocs=WORLD, join=True)
    out = {"saved": torch.load(ckpt / "checkpoint.pt", weights_only=True), "files": sorted(os.listdir(ckpt))}
    for name in ("two", "one"):
        shutil.copytree(ckpt, tmp / name)
        out[name] = tmp / name
    return out


@pytest.fixture(scope="module")
def one_rank(killed, tmp_path_factory):
    """A process group of one rank, in this process: the whole run, and the 2-rank checkpoint resumed."""
    init = tmp_path_factory.mktemp("one") / "init"
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=0, world_size=1)
    try:
        cfg = _train_config("mixup")
        whole = _params(ddp_train(cfg)["model"])
        res = ddp_train(cfg, checkpoint=str(killed["one"]), checkpoint_every=CHECKPOINT_EVERY)
        return {"whole": whole, "resumed": _params(res["model"]), "resumed_from": res["resumed_from"]}
    finally:
        dist.destroy_process_group()


def test_killed_run_left_an_atomic_mid_epoch_checkpoint(killed):
    assert killed["files"] == ["checkpoint.pt"]  # no temporary file left behind
    saved = killed["saved"]
    assert (saved["epoch"], saved["step"]) == (KILL_AT[0], KILL_AT[1] // CHECKPOINT_EVERY * CHECKPOINT_EVERY)
    assert saved["world_size"] == 2 and len(saved["history"]) == KILL_AT[0] - 1
    assert {"model", "optimizer", "rng", "order", "partial"} <= set(saved)


def test_resume_after_a_kill_gives_the_uninterrupted_weights(gloo_ranks):
    whole = gloo_ranks[0]["runs"]["mixup"]
    again = gloo_ranks[0]["runs"]["mixup_resumed"]
    assert again["resumed_from"] == (KILL_AT[0], 2)
    assert all(torch.equal(p, q) for p, q in zip(whole["params"], again["params"]))  # bit for bit
    for row, ref in zip(again["history"], whole["history"]):
        assert row["epoch"] == ref["epoch"] and row["test_loss"] == ref["test_loss"]
        assert row["train_objective"] == pytest.approx(ref["train_objective"], rel=1e-14)  # sum order


def test_one_rank_gives_the_two_rank_weights(gloo_ranks, one_rank):
    two = gloo_ranks[0]["runs"]["mixup"]["params"]
    _assert_same_weights(one_rank["whole"], two)
    assert one_rank["resumed_from"] == (KILL_AT[0], 2)
    _assert_same_weights(one_rank["resumed"], two)  # a 2-rank checkpoint resumed on 1 rank


def test_checkpoint_of_another_run_is_refused(killed, tmp_path, monkeypatch, capsys):
    import dataclasses

    from experiments import distributed
    from experiments.distributed import read_checkpoint

    torch.save(killed["saved"], tmp_path / "checkpoint.pt")
    cfg = _train_config("mixup")
    assert read_checkpoint(tmp_path, cfg)["step"] == 2
    with pytest.raises(ValueError, match="seed: 3 in the checkpoint, 4 now"):
        read_checkpoint(tmp_path, dataclasses.replace(cfg, seed=4))
    with pytest.raises(ValueError, match="more than epochs = 1"):
        read_checkpoint(tmp_path, dataclasses.replace(cfg, epochs=1))
    assert read_checkpoint(tmp_path, dataclasses.replace(cfg, epochs=9)) is not None  # more epochs: resumable

    def tripwire(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(distributed, "_init_from_env", tripwire)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    argv = ["train", "--dataset", "two_moons", "--model", "mlp", "--hidden", "8", "--n-train", "40",
            "--epochs", "3", "--batch-size", "8", "--seed", "5", "--device", "cpu", "--checkpoint", str(tmp_path)]
    assert distributed.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "belongs to another run" in err


# ------------------------------------------------------------------ loss command: errors before any work

def _bad_loss_files(tmp):
    """The files the bad command lines below refer to, by placeholder."""
    from experiments.nets import build_model

    _cli_data(tmp)
    files = {}
    for name, (kind, hidden) in {"log": ("logistic", (6,)), "mlp6": ("mlp", (6,)), "mlp9": ("mlp", (9,))}.items():
        files[name] = os.path.join(tmp, f"{name}.pt")
        torch.save(build_model(kind, (5,), 2, hidden=hidden).state_dict(), files[name])
    nan = build_model("logistic", (5,), 2).state_dict()
    nan["0.bias"][0] = float("nan")
    files["nan"] = os.path.join(tmp, "nan.pt")
    torch.save(nan, files["nan"])
    files["junk"] = os.path.join(tmp, "junk.pt")
    with open(files["junk"], "w") as fh:
        fh.write("not a torch file")
    files["list"] = os.path.join(tmp, "list.pt")
    torch.save([torch.zeros(2)], files["list"])
    files["npz"] = os.path.join(tmp, "X.npz")
    np.savez(files["npz"], X=np.zeros((4, 5)))
    np.save(os.path.join(tmp, "y_short.npy"), np.zeros(3, dtype=np.int64))
    np.save(os.path.join(tmp, "y_neg.npy"), -np.ones(CLI_N, dtype=np.int64))
    np.save(os.path.join(tmp, "y_real.npy"), np.linspace(0, 1, CLI_N))
    np.save(os.path.join(tmp, "X_wide.npy"), np.zeros((CLI_N, 7)))
    return files


D, Y2, Y3 = ["--data", "{tmp}/X.npy"], ["--labels", "{tmp}/y2.npy"], ["--labels", "{tmp}/y3.npy"]
BAD_LOSS = [
    (["--weights", "{tmp}/missing.pt", *D, *Y2], "no such file"),
    (["--weights", "{junk}", *D, *Y2], "not readable by torch.load"),
    (["--weights", "{list}", *D, *Y2], "expected a state_dict"),
    (["--weights", "{mlp6}", *D, *Y2], "unexpected keys"),  # an MLP's weights for --model logistic
    (["--model", "mlp", "--hidden", "6", "--weights", "{log}", *D, *Y2], "missing keys"),
    (["--model", "mlp", "--hidden", "9", "--weights", "{mlp6}", *D, *Y2], "has shape (6, 5) in the file, (9, 5)"),
    (["--model", "mlp", "--hidden", "6", "--weights", "{mlp6}", *D, *Y3], "shape"),  # 3 classes: 3 outputs
    (["--weights", "{nan}", *D, *Y2], "NaN"),
    (["--weights", "{log}", "--data", "{tmp}/X_wide.npy", *Y2], "shape"),  # 7 features for a 5-input model
    (["--weights", "{log}", *D, *Y2, "--nodes", "8", "--rtol", "1e-9"], "not both"),
    (["--model", "mlp", "--hidden", "6", "--weights", "{mlp6}", *D, *Y2, "--method", "separated"], "separated"),
    (["--model", "tanh_mlp", "--hidden", "6", *D, *Y2, "--method", "kinks"], "kinks"),
    (["--weights", "{log}", *D, *Y2, "--loss", "softmax"], "softmax"),
    (["--weights", "{log}", *D], "--labels is required"),
    (["--weights", "{log}", *Y2], "go with --data"),
    (["--weights", "{log}", *D, "--labels", "{tmp}/y_short.npy"], "shapes"),
    (["--weights", "{log}", *D, "--labels", "{tmp}/y_neg.npy"], "integers >= 0"),
    (["--weights", "{log}", *D, "--labels", "{tmp}/y_real.npy"], "--loss squared"),
    (["--weights", "{log}", *D, *Y3, "--classes", "2"], "--classes > 2"),
    (["--weights", "{log}", "--data", "{npz}", *Y2], ".npz"),
    (["--weights", "{log}", *D, *Y2, "--n-train", "1000"], "exceeds"),
    (["--weights", "{log}", *D, *Y2, "--beta", "-1"], "--beta"),
    (["--weights", "{log}", *D, *Y2, "--rtol", "0"], "--rtol"),
]


@pytest.mark.parametrize("argv, says", BAD_LOSS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_bad_loss_command_line_is_one_line_before_any_work(argv, says, tmp_path, monkeypatch, capsys):
    from experiments import distributed

    def tripwire(*a, **k):
        raise AssertionError("work started")

    for name in ("sharded_mixup_loss", "_init_from_env"):
        monkeypatch.setattr(distributed, name, tripwire)
    files = _bad_loss_files(str(tmp_path))
    full = ["loss", "--device", "cpu", *[a.format(tmp=tmp_path, **files) for a in argv]]
    assert distributed.main(full) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("python -m experiments.distributed loss: error:")
    assert says in err, err


def test_loss_command_accepts_a_ddp_state_dict_and_a_checkpoint(tmp_path, capsys):
    """``module.``-prefixed keys (saved from a DDP wrapper) and a ``train --checkpoint`` file load too."""
    import json

    from experiments.nets import build_model

    X, y2, _ = _cli_data(str(tmp_path))
    model = build_model("logistic", (5,), 2, seed=4, dtype=torch.float64)
    expected = theory.mixup_loss(model, X, y2, 1.0)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save(state, tmp_path / "ddp.pt")
    torch.save({"model": model.state_dict(), "optimizer": {}, "epoch": 1}, tmp_path / "ckpt.pt")
    for name in ("ddp.pt", "ckpt.pt"):
        assert main(["loss", "--weights", str(tmp_path / name), "--data", str(tmp_path / "X.npy"),
                     "--labels", str(tmp_path / "y2.npy"), "--device", "cpu"]) == 0
        assert json.loads(capsys.readouterr().out)["mixup_loss"] == expected
