"""The per-step Mixup loss of practical training loops: exact expectations and variances (docs/theory.md §2.7).

References, none of them the code under test:
- enumeration of every epoch shuffle, in-batch permutation and partner tuple for n = 4, 5, with λ
  integrated by QUADPACK (``tests/_brute.py``) and losses written out in numpy;
- a plain-loop simulation of each scheme (reshuffle, batch, pair, draw λ, mix inputs and labels,
  evaluate) with fixed seeds, compared in standard errors;
- closed forms in ``mixup_loss`` and a direct L_std.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import theory
from theory._estimators import PATTERNS, _distinct_means, _free_sums, epoch_batch_sizes, pattern_counts

from _brute import beta_expect

SCHEMES = ("uniform", "permutation", "flip", "flip-per-sample")


def _tanh_net(d, hidden, seed, out=1):
    g = np.random.default_rng(seed)
    W1, b1 = g.normal(size=(hidden, d)), g.normal(size=hidden) * 0.5
    W2, b2 = g.normal(size=(out, hidden)), g.normal(size=out) * 0.5
    net = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, out)).double()
    with torch.no_grad():
        for layer, (W, b) in zip((net[0], net[2]), ((W1, b1), (W2, b2))):
            layer.weight.copy_(torch.tensor(W))
            layer.bias.copy_(torch.tensor(b))

    def f(x):  # numpy, (..., d) -> (...,) or (..., out)
        z = np.tanh(x @ W1.T + b1) @ W2.T + b2
        return z[..., 0] if out == 1 else z
    return net, f


def _logistic(f, t):
    return t * np.logaddexp(0, -f) + (1 - t) * np.logaddexp(0, f)


def _problem(n=5, d=2, seed=3):
    g = np.random.default_rng(seed)
    X, y = g.normal(size=(n, d)), g.integers(0, 2, n)
    y[:2] = [0, 1]
    net, f = _tanh_net(d, 5, seed)
    return X, y, net, f


# ---------------------------------------------------------------------------------------------
# exact enumeration (n = 4, 5): every shuffle, every pairing, λ by QUADPACK
# ---------------------------------------------------------------------------------------------

def _pair_moments(X, t, f, a, b):
    """E_λ A_ij and E_λ[A_ij A_kl] (shared λ) by adaptive quadrature, A_ij(λ) the mixed pair's loss."""
    n = len(X)

    def A(i, j, lam):
        return _logistic(f(lam * X[i] + (1 - lam) * X[j]), lam * t[i] + (1 - lam) * t[j])
    E = np.array([[beta_expect(lambda lam: A(i, j, lam), a, b) for j in range(n)] for i in range(n)])
    pairs = list(itertools.product(range(n), repeat=2))
    M = np.zeros((n, n, n, n))
    for (i, j), (k, l) in itertools.combinations_with_replacement(pairs, 2):
        M[i, j, k, l] = M[k, l, i, j] = beta_expect(lambda lam: A(i, j, lam) * A(k, l, lam), a, b)
    return E, M


def _enumerated(E, M, n, scheme, batch_size, last_batch="keep"):
    """Mean and variance of the loss of a step drawn uniformly from an epoch, by enumeration."""
    steps = epoch_batch_sizes(n, batch_size, last_batch)
    bounds = np.cumsum([0] + steps)
    m1 = m2 = 0.0
    shuffles = list(itertools.permutations(range(n)))
    for sigma in shuffles:
        for b0, b1 in zip(bounds[:-1], bounds[1:]):
            idx = sigma[b0:b1]
            m = len(idx)
            if scheme == "permutation":
                partners = [[idx[p] for p in pi] for pi in itertools.permutations(range(m))]
            elif scheme == "uniform":
                partners = [list(js) for js in itertools.product(range(n), repeat=m)]
            else:
                partners = [[idx[m - 1 - p] for p in range(m)]]
            for js in partners:
                terms = list(zip(idx, js))
                first = sum(E[i, j] for i, j in terms) / m
                second = 0.0
                for p, (i, j) in enumerate(terms):
                    for r, (k, l) in enumerate(terms):
                        if scheme == "flip-per-sample" and p != r:  # independent λ's
                            second += E[i, j] * E[k, l]
                        else:
                            second += M[i, j, k, l]
                m1 += first / len(partners)
                m2 += second / m ** 2 / len(partners)
    count = len(shuffles) * len(steps)
    m1, m2 = m1 / count, m2 / count
    return m1, m2 - m1 * m1


@pytest.fixture(scope="module")
def enumerated_problem():
    X, y, net, f = _problem(n=5)
    a, b, s = 0.7, 1.3, 0.1
    t = (1 - s) * y + s / 2
    E, M = _pair_moments(X, t, f, a, b)
    return X, y, net, a, b, s, E, M


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("batch_size,last_batch", [(1, "keep"), (2, "keep"), (2, "merge"), (3, "keep"),
                                                   (3, "drop"), (5, "keep")])
def test_expectation_and_variance_match_enumeration(enumerated_problem, scheme, batch_size, last_batch):
    X, y, net, a, b, s, E, M = enumerated_problem
    if scheme == "uniform" and batch_size > 3:
        pytest.skip("n^m partner tuples: too many to enumerate")
    n = len(X)
    mean, var = _enumerated(E, M, n, scheme, batch_size, last_batch)
    kw = dict(scheme=scheme, batch_size=batch_size, label_smoothing=s, last_batch=last_batch)
    value, err = theory.estimator_expectation(net, X, y, a, b, return_error=True, **kw)
    assert abs(value - mean) <= 1e-12 * mean
    assert abs(value - mean) <= err <= 1e-9 * mean  # the error estimate covers the true error
    v, verr = theory.estimator_variance(net, X, y, a, b, return_error=True, **kw)
    # the reference variance is m2 − m1² (cancellation at ~1e-16·m1²)
    assert abs(v - var) <= 1e-9 * var + 1e-14, (v, var)
    assert verr <= 1e-8 * var + 1e-14


@settings(max_examples=10, deadline=None)
@given(n=st.sampled_from([3, 4]), seed=st.integers(0, 10_000), a=st.floats(0.3, 3.0), b=st.floats(0.3, 3.0),
       s=st.sampled_from([0.0, 0.05, 0.3]), scheme=st.sampled_from(SCHEMES), batch=st.integers(1, 4),
       last_batch=st.sampled_from(["keep", "drop", "merge"]), symmetric=st.booleans())
def test_moments_match_enumeration_on_random_problems(n, seed, a, b, s, scheme, batch, last_batch, symmetric):
    """Any α, β (α = β takes the folded λ-rule), smoothing, scheme, batch size and last-batch rule:
    enumeration (QUADPACK in λ) agrees."""
    batch = min(batch, n)
    b = a if symmetric else b
    X, y, net, f = _problem(n=n, seed=seed)
    t = (1 - s) * y + s / 2
    E, M = _pair_moments(X, t, f, a, b)
    mean, var = _enumerated(E, M, n, scheme, batch, last_batch)
    kw = dict(scheme=scheme, batch_size=batch, label_smoothing=s, last_batch=last_batch)
    assert theory.estimator_expectation(net, X, y, a, b, **kw) == pytest.approx(mean, rel=1e-11)
    assert theory.estimator_variance(net, X, y, a, b, **kw) == pytest.approx(var, rel=1e-7, abs=1e-13)


# ---------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------

def _standard_loss(net, X, y):
    with torch.no_grad():
        f = net(torch.as_tensor(X, dtype=torch.float64)).reshape(-1).numpy()
    return float(np.mean(_logistic(f, y)))


MODELS = {
    "logistic regression": lambda d: theory.linear_model(d, weight=np.linspace(1, -2, d), intercept=0.3),
    "tanh net": lambda d: _tanh_net(d, 8, 0)[0],
    "relu net": lambda d: theory.relu_mlp(d, (8,), generator=torch.Generator().manual_seed(0)).double(),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_uniform_equals_mixup_loss_and_flip_permutation_closed_forms(name):
    g = np.random.default_rng(0)
    n, d, B = 12, 3, 4
    X, y = g.normal(size=(n, d)), g.integers(0, 2, n)
    net = MODELS[name](d)
    mix = theory.mixup_loss(net, X, y, 0.5)
    std = _standard_loss(net, X, y)
    kw = dict(batch_size=B)
    assert abs(theory.estimator_expectation(net, X, y, 0.5, scheme="uniform", **kw) - mix) <= 1e-12 * mix
    flip = (n * mix - std) / (n - 1)  # even B: a partner is uniform among the other n − 1 points
    for scheme in ("flip", "flip-per-sample"):
        assert abs(theory.estimator_expectation(net, X, y, 0.5, scheme=scheme, **kw) - flip) <= 1e-12 * flip
    perm = std / B + (1 - 1 / B) * flip
    assert abs(theory.estimator_expectation(net, X, y, 0.5, scheme="permutation", **kw) - perm) <= 1e-12 * perm
    # odd batches (n = 12 = 5 + 5 + 2, kept): the middle of a batch of 5 is its own partner
    odd = np.mean([std / 5 + (1 - 1 / 5) * flip, std / 5 + (1 - 1 / 5) * flip, flip])
    assert abs(theory.estimator_expectation(net, X, y, 0.5, scheme="flip", batch_size=5) - odd) <= 1e-12 * odd


def test_label_smoothing_is_mixup_loss_with_smoothed_probability_rows():
    g = np.random.default_rng(1)
    n, d, K, s = 15, 4, 3, 0.2
    X, y = g.normal(size=(n, d)), g.integers(0, K, n)
    net = _tanh_net(d, 6, 2, out=K)[0]
    soft = (1 - s) * np.eye(K)[y] + s / K
    for scheme, B in (("uniform", 4), ("permutation", 4), ("flip", 3)):
        got = theory.estimator_expectation(net, X, y, 1.0, scheme=scheme, batch_size=B, label_smoothing=s,
                                           loss="softmax")
        plain = theory.estimator_expectation(net, X, soft, 1.0, scheme=scheme, batch_size=B, loss="softmax")
        assert abs(got - plain) <= 1e-12 * plain
    mix = theory.mixup_loss(net, X, soft, 1.0, loss="softmax")
    got = theory.estimator_expectation(net, X, y, 1.0, scheme="uniform", batch_size=4, label_smoothing=s,
                                       loss="softmax")
    assert abs(got - mix) <= 1e-12 * mix


def test_brute_force_over_all_permutations_n4():
    """n = 4, one batch: the permutation scheme's expectation is the mean over all 24 in-batch permutations
    (and every shuffle), λ integrated by QUADPACK."""
    X, y, net, f = _problem(n=4, seed=7)
    a = 2.0
    total = 0.0
    perms = list(itertools.permutations(range(4)))
    for pi in perms:
        total += sum(beta_expect(lambda lam: _logistic(f(lam * X[i] + (1 - lam) * X[pi[i]]),
                                                       lam * y[i] + (1 - lam) * y[pi[i]]), a, a) for i in range(4)) / 4
    ref = total / len(perms)  # the shuffle of a single batch does not change the batch mean
    got = theory.estimator_expectation(net, X, y, a, scheme="permutation", batch_size=4)
    assert abs(got - ref) <= 1e-12 * ref


# ---------------------------------------------------------------------------------------------
# simulation of the training loop, scheme by scheme
# ---------------------------------------------------------------------------------------------

def _simulate_steps(net, X, y, a, b, scheme, batch_size, s, draws, seed):
    """Loss of one step drawn uniformly from a fresh epoch, ``draws`` independent times (plain loop)."""
    rng = np.random.default_rng(seed)
    n = len(X)
    t = (1 - s) * y + s / 2
    bounds = [(b0, min(n, b0 + batch_size)) for b0 in range(0, n, batch_size)]
    out = np.empty(draws)
    Xt = torch.as_tensor(X, dtype=torch.float64)
    with torch.no_grad():
        for k in range(draws):
            order = rng.permutation(n)
            b0, b1 = bounds[rng.integers(len(bounds))]
            idx = order[b0:b1]
            m = len(idx)
            if scheme == "uniform":
                partner = rng.integers(0, n, size=m)
            elif scheme == "permutation":
                partner = idx[rng.permutation(m)]
            else:
                partner = idx[::-1].copy()
            lam = rng.beta(a, b, size=m) if scheme == "flip-per-sample" else np.full(m, rng.beta(a, b))
            xm = torch.as_tensor(lam[:, None]) * Xt[idx] + torch.as_tensor(1 - lam[:, None]) * Xt[partner]
            tm = lam * t[idx] + (1 - lam) * t[partner]
            f = net(xm).reshape(-1).numpy()
            out[k] = np.mean(_logistic(f, tm))
    return out


@pytest.mark.parametrize("scheme", SCHEMES)
def test_simulated_training_steps_agree_in_standard_errors(scheme):
    g = np.random.default_rng(4)
    n, d, B, s = 11, 2, 4, 0.1  # batches 4, 4, 3: an odd last batch
    X, y = g.normal(size=(n, d)), g.integers(0, 2, n)
    net = _tanh_net(d, 6, 5)[0]
    a, b = 0.4, 0.4
    sample = _simulate_steps(net, X, y, a, b, scheme, B, s, 6000, seed=11)
    kw = dict(scheme=scheme, batch_size=B, label_smoothing=s)
    mean = theory.estimator_expectation(net, X, y, a, b, **kw)
    var = theory.estimator_variance(net, X, y, a, b, **kw)
    N = len(sample)
    z_mean = (sample.mean() - mean) / math.sqrt(var / N)
    centred = sample - sample.mean()
    s2 = centred.var(ddof=1)
    se_s2 = math.sqrt(max(np.mean(centred ** 4) - s2 ** 2 * (N - 3) / (N - 1), 0) / N)
    z_var = (s2 - var) / se_s2
    assert abs(z_mean) < 4.5, z_mean
    assert abs(z_var) < 4.5, z_var


@pytest.mark.parametrize("scheme", SCHEMES)
def test_sampled_variance_agrees_with_exact_softmax(scheme):
    """``method="sampled"`` (for data too large for the exact sums) against the exact variance, softmax loss."""
    g = np.random.default_rng(8)
    n, d, K, B = 14, 3, 3, 4  # batches 4, 4, 4, 2
    X, y = g.normal(size=(n, d)), g.integers(0, K, n)
    net = _tanh_net(d, 5, 9, out=K)[0]
    kw = dict(scheme=scheme, batch_size=B, label_smoothing=0.1, loss="softmax")
    exact = theory.estimator_variance(net, X, y, 0.6, 1.5, **kw)
    value, se = theory.estimator_variance(net, X, y, 0.6, 1.5, method="sampled", draws=2000, generator=3,
                                          return_error=True, **kw)
    assert abs(value - exact) < 4.5 * se, (value, exact, se)
    assert se < 0.15 * exact


# ---------------------------------------------------------------------------------------------
# internals against brute force
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("m", [1, 2, 3, 4, 5, 6])
def test_pattern_counts_match_enumeration_of_permutations(m):
    def pattern(slots):
        seen = {}
        return tuple(seen.setdefault(x, len(seen)) for x in slots)

    for scheme in ("permutation", "flip"):
        maps = list(itertools.permutations(range(m))) if scheme == "permutation" else [tuple(range(m))[::-1]]
        counts = {}
        for pi in maps:
            for p in range(m):
                for r in range(m):
                    key = pattern((p, pi[p], r, pi[r]))
                    counts[key] = counts.get(key, 0) + 1
        got = {k: v for k, v in pattern_counts(scheme, m).items() if v}
        assert set(got) == set(counts)
        for k in got:
            assert got[k] * len(maps) == counts[k]  # integers: exact


def test_distinct_index_means_match_quadruple_loops():
    n = 5
    A = np.random.default_rng(0).normal(size=(n, n))
    F = _free_sums(torch.as_tensor(A)).numpy()
    D = _distinct_means(F, n)
    for k, p in enumerate(PATTERNS):
        blocks = max(p) + 1
        vals = [A[v[p[0]], v[p[1]]] * A[v[p[2]], v[p[3]]] for v in itertools.permutations(range(n), blocks)]
        assert D[k] == pytest.approx(np.mean(vals), rel=1e-12, abs=1e-12)


def test_epoch_batch_sizes():
    assert epoch_batch_sizes(10, 4) == [4, 4, 2]
    assert epoch_batch_sizes(10, 4, "drop") == [4, 4]
    assert epoch_batch_sizes(9, 4, "merge") == [4, 5]
    assert epoch_batch_sizes(3, 8) == [3]
    with pytest.raises(ValueError, match="batch_size"):
        epoch_batch_sizes(3, 8, "drop")


def test_merge_matches_the_training_loop_batches():
    from experiments.training import batch_bounds

    for n, B in [(9, 4), (10, 3), (7, 7), (5, 2)]:
        assert epoch_batch_sizes(n, B, "merge") == [b1 - b0 for b0, b1 in batch_bounds(n, B)]


@pytest.mark.parametrize("kw,exc,word", [
    (dict(scheme="reverse", batch_size=2), ValueError, "scheme"),
    (dict(scheme="flip", batch_size=0), ValueError, "batch_size"),
    (dict(scheme="flip", batch_size=2.0), TypeError, "batch_size"),
    (dict(scheme="flip", batch_size=2, label_smoothing=1.5), ValueError, "label_smoothing"),
    (dict(scheme="flip", batch_size=2, last_batch="pad"), ValueError, "last_batch"),
    (dict(scheme="flip", batch_size=9, last_batch="drop"), ValueError, "batch_size"),
])
def test_invalid_arguments_name_the_argument(kw, exc, word):
    X, y, net, _ = _problem(n=5)
    for fn in (theory.estimator_expectation, theory.estimator_variance):
        with pytest.raises(exc, match=word):
            fn(net, X, y, 1.0, **kw)


def test_auto_method_samples_large_data_and_says_so():
    g = np.random.default_rng(2)
    n = 4100  # just above EXACT_MAX_N
    X, y = g.normal(size=(n, 2)), g.integers(0, 2, n)
    lin = theory.linear_model(2, weight=[1.0, -0.5], intercept=0.2)
    with pytest.warns(theory.AccuracyWarning, match="Monte-Carlo"):
        value, se = theory.estimator_variance(lin, X, y, 1.0, scheme="permutation", batch_size=64, draws=300,
                                              generator=0, return_error=True)
    exact = theory.estimator_variance(lin, X[:400], y[:400], 1.0, scheme="permutation", batch_size=64)
    assert 0 < se < value and 0.2 * exact < value < 5 * exact  # the same kind of problem, not the same one


def test_variance_method_and_draws_are_validated():
    X, y, net, _ = _problem(n=5)
    with pytest.raises(ValueError, match="method"):
        theory.estimator_variance(net, X, y, 1.0, scheme="flip", batch_size=2, method="mc")
    with pytest.raises(ValueError, match="draws"):
        theory.estimator_variance(net, X, y, 1.0, scheme="flip", batch_size=2, method="sampled", draws=1)


def test_smoothing_a_one_output_squared_loss_is_refused():
    X, y, net, _ = _problem(n=5)
    with pytest.raises(ValueError, match="label_smoothing"):
        theory.estimator_expectation(net, X, y.astype(float), 1.0, scheme="flip", batch_size=2,
                                     label_smoothing=0.1, loss="squared")
