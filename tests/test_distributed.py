"""Sharded exact Mixup loss and DDP training (experiments/distributed.py) on 2 gloo processes, CPU.

The sharded loss is compared with the single-process ``theory.mixup_loss`` and with a brute-force
sum over all pairs and nodes written here; the row shards of the internal pair sums (which the
sharded loss all-reduces) are checked against the same brute force in one process, for symmetric
(folded) and asymmetric λ-rules. DDP training is replayed step by step in one process: the
gradient of each step is the mean of the ranks' local-batch gradients.
"""
import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import theory
from experiments.distributed import ddp_train, shard_rows, sharded_mixup_loss
from theory._problem import prepare
from theory import MixupLambda

WORLD = 2
RTOL = 1e-12  # shards add the same terms in another order: rounding only
DDP_RTOL = 1e-10  # float64 replay of float64 DDP training (a few SGD steps)
CONVERGED_NODES = 512  # brute-force rule for the exact λ-expectation (margins ≲ 5: converged to rounding)


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

    return TrainConfig(dataset="two_moons", model="mlp", method=method, epochs=2, batch_size=8, lr=0.1,
                       hidden=(8,), n_train=40, seed=3, device="cpu", dtype="float64")


def _worker(rank, init_file, out_dir):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        losses = {name: sharded_mixup_loss(m, X, y, **kw) for name, (m, X, y, kw) in _cases().items()}
        runs = {}
        for method in ("standard", "mixup"):
            res = ddp_train(_train_config(method))
            runs[method] = {"params": [p.detach().clone() for p in res["model"].parameters()],
                            "history": res["history"]}
        torch.save({"losses": losses, "runs": runs}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def gloo_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gloo")
    mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(WORLD)]


@pytest.mark.parametrize("name", list(_cases()))
def test_sharded_loss_equals_single_process(gloo_results, name):
    model, X, y, kw = _cases()[name]
    single = theory.mixup_loss(model, X, y, **kw)
    brute = _brute_force(model, X, y, **kw)
    values = [r["losses"][name] for r in gloo_results]
    assert values[0] == values[1]  # all_reduce hands every rank the same sum
    assert abs(values[0] - single) <= RTOL * abs(single)
    assert abs(values[0] - brute) <= RTOL * abs(brute)


@pytest.mark.parametrize("name", list(_cases()))
def test_row_shards_add_up_to_brute_force(name):
    model, X, y, kw = _cases()[name]
    kw = dict(kw)
    brute = _brute_force(model, X, y, **kw)
    n = len(X)
    for world in (1, 3, 40):  # 40 > n: some shards are empty
        parts = [theory.mixup_loss(model, X, y, chunk_elements=97, rows=shard_rows(n, r, world), **kw)
                 for r in range(world)]
        assert abs(sum(parts) - brute) <= RTOL * abs(brute)


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


def test_ddp_replicas_stay_in_sync(gloo_results):
    for method in ("standard", "mixup"):
        a, b = (r["runs"][method] for r in gloo_results)
        assert all(torch.equal(p, q) for p, q in zip(a["params"], b["params"]))
        drop = [{k: v for k, v in row.items() if k != "seconds"} for row in a["history"]]
        assert drop == [{k: v for k, v in row.items() if k != "seconds"} for row in b["history"]]
        assert all(np.isfinite(row["train_loss"]) for row in a["history"])


def test_ddp_standard_training_replayed_in_one_process(gloo_results):
    """Each DDP step = SGD on the mean over ranks of the local-batch mean losses' gradients."""
    from torch.utils.data import DistributedSampler

    from experiments.datasets import load_dataset
    from experiments.nets import build_model
    from experiments.training import batch_bounds, soft_targets, task_loss

    cfg = _train_config("standard")
    data = load_dataset(cfg.dataset, n=cfg.n_train, seed=cfg.seed)
    model = build_model(cfg.model, data.input_shape, data.n_classes, hidden=cfg.hidden, seed=cfg.seed,
                        dtype=torch.float64)
    X = torch.as_tensor(data.X_train, dtype=torch.float64)
    T = soft_targets(torch.as_tensor(data.y_train), data.n_classes, torch.float64)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    for epoch in range(1, cfg.epochs + 1):
        orders = []
        for rank in range(WORLD):
            sampler = DistributedSampler(range(X.shape[0]), num_replicas=WORLD, rank=rank, shuffle=True, seed=cfg.seed)
            sampler.set_epoch(epoch)
            orders.append(torch.as_tensor(list(sampler)))
        for b0, b1 in batch_bounds(orders[0].shape[0], cfg.batch_size):
            opt.zero_grad()
            for order in orders:
                idx = order[b0:b1]
                (task_loss(model(X[idx]), T[idx], data.n_classes) / WORLD).backward()
            opt.step()
    for p, q in zip(model.parameters(), gloo_results[0]["runs"]["standard"]["params"]):
        assert torch.allclose(p.detach(), q, rtol=DDP_RTOL, atol=DDP_RTOL)
