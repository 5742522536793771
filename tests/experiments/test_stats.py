"""Intervals and decisions of experiments.stats against scipy.stats and hand-built data (C3, C8, C12)."""
import math

import numpy as np
import pytest
from scipy import stats as sps

from experiments import stats

N_SEEDS = 5
BOOTSTRAP_N = 400
"""Normal samples for the bootstrap-vs-t comparison: large enough that both intervals agree to ~10 %."""


def test_t_interval_matches_scipy_ttest():
    x = np.random.default_rng(0).normal(0.3, 1.0, N_SEEDS)
    iv = stats.mean_interval(x)
    ci = sps.ttest_1samp(x, 0.0).confidence_interval(0.95)  # an independent scipy path
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert iv.mean == pytest.approx(x.mean(), rel=1e-15) and iv.n == N_SEEDS
    # and by hand: mean ± t_{0.975, n−1} · s / √n
    half = sps.t.ppf(0.975, N_SEEDS - 1) * x.std(ddof=1) / math.sqrt(N_SEEDS)
    assert iv.high - iv.mean == pytest.approx(half, rel=1e-12)


def test_paired_interval_uses_the_pairs():
    rng = np.random.default_rng(1)
    base = rng.normal(0.0, 10.0, N_SEEDS)  # large seed effect, shared by both methods
    effect = rng.normal(1.0, 0.1, N_SEEDS)
    treat = {s: base[s] + effect[s] for s in range(N_SEEDS)}
    ctrl = {s: base[s] for s in range(N_SEEDS)}
    ctrl[99] = 1e6  # unpaired seed: ignored
    iv = stats.paired_interval(treat, ctrl)
    ci = sps.ttest_rel(list(treat.values()), [ctrl[s] for s in range(N_SEEDS)]).confidence_interval(0.95)
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    assert stats.decide(iv) == "supported"
    unpaired = sps.ttest_ind(list(treat.values()), [ctrl[s] for s in range(N_SEEDS)]).confidence_interval(0.95)
    assert unpaired.low < 0 < unpaired.high  # unpaired, the seed effect would hide the difference


def test_bootstrap_agrees_with_t_on_normal_data():
    x = np.random.default_rng(2).normal(0.0, 1.0, BOOTSTRAP_N)
    t, b = stats.mean_interval(x), stats.mean_interval(x, method="bootstrap")
    assert b.method == "bootstrap"
    assert b.high - b.low == pytest.approx(t.high - t.low, rel=0.1)
    assert b.low == pytest.approx(t.low, abs=0.02) and b.high == pytest.approx(t.high, abs=0.02)


@pytest.mark.parametrize("shift,above,below", [(2.0, "supported", "contradicted"), (-2.0, "contradicted", "supported"),
                                               (0.0, "inconclusive", "inconclusive")])
def test_decision_comes_from_the_interval(shift, above, below):
    x = np.array([-0.1, 0.05, 0.1, -0.05, 0.0]) + shift
    iv = stats.mean_interval(x)
    assert stats.decide(iv, predicted="above") == above
    assert stats.decide(iv, predicted="below") == below


def test_positive_mean_with_wide_interval_is_inconclusive():
    x = [0.05, -0.04, 0.06, -0.03, 0.01]  # mean +0.01 > 0, yet the interval spans 0
    iv = stats.mean_interval(x)
    assert iv.mean > 0 and iv.low < 0 < iv.high
    assert stats.decide(iv) == "inconclusive"


def test_threshold_decision():
    iv = stats.mean_interval([0.113, 0.117, 0.105, 0.107, 0.116])
    assert stats.decide(iv, boundary=0.10, predicted="below") == "contradicted"
    assert stats.decide(iv, boundary=0.20, predicted="below") == "supported"


def test_degenerate_samples():
    one = stats.mean_interval([0.5])
    assert one.n == 1 and math.isinf(one.low) and stats.decide(one) == "inconclusive"
    assert "no interval" in one.text()
    const = stats.mean_interval([0.2] * 4)
    assert const.low == const.high == 0.2 and stats.decide(const) == "supported"
    empty = stats.mean_interval([math.nan])
    assert empty.n == 0 and stats.decide(empty) == "inconclusive"


def test_overall_and_tally():
    assert stats.overall(["supported", "supported"]) == "supported"
    assert stats.overall(["supported", "inconclusive"]) == "inconclusive"
    assert stats.overall(["inconclusive", "contradicted", "supported"]) == "contradicted"
    assert stats.overall([]) == "inconclusive"
    assert stats.tally(["supported", "contradicted", "supported"]) == "supported 2/3, contradicted 1/3"


def test_bad_arguments():
    with pytest.raises(ValueError, match="level"):
        stats.mean_interval([1, 2], level=1.5)
    with pytest.raises(ValueError, match="method"):
        stats.mean_interval([1, 2], method="z")
    with pytest.raises(ValueError, match="predicted"):
        stats.decide(stats.mean_interval([1, 2]), predicted="up")
