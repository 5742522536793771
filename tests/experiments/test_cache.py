"""The per-configuration result cache (experiments/cache.py): keys, round trips, corruption, atomicity."""
import json
import math
import os

import numpy as np
import pytest

from experiments import cache as cache_mod
from experiments.cache import Cache, atomic_write_text, config_key

CONFIG = {"figure": "demo", "version": 1, "dataset": "two_moons", "alphas": [0.5, 1.0], "seed": 3}


class Counter:
    """A compute function that counts its calls and returns a result with NaN and inf in it."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"value": 0.125 * self.calls, "nan": math.nan, "inf": math.inf, "arr": np.arange(3)}


def test_key_ignores_dict_order_and_tuple_vs_list_but_not_values():
    reordered = dict(reversed(list(CONFIG.items())))
    as_tuple = {**CONFIG, "alphas": (0.5, 1.0)}
    assert config_key(CONFIG) == config_key(reordered) == config_key(as_tuple)
    assert config_key(CONFIG) != config_key({**CONFIG, "seed": 4})
    assert config_key(CONFIG) != config_key({**CONFIG, "alphas": [0.5, 1.0 + 1e-12]})


def test_round_trip_keeps_nan_inf_and_counts(tmp_path):
    c, compute = Cache(tmp_path), Counter()
    first, fresh = c.get_or_compute(CONFIG, compute)
    second, fresh2 = Cache(tmp_path).get_or_compute(CONFIG, compute)
    assert (fresh, fresh2, compute.calls) == (True, False, 1)
    assert second["result"]["value"] == 0.125 and second["result"]["arr"] == [0, 1, 2]
    assert math.isnan(second["result"]["nan"]) and second["result"]["inf"] == math.inf
    assert second["meta"]["seconds"] >= 0.0


def test_force_recomputes(tmp_path):
    c, compute = Cache(tmp_path), Counter()
    c.get_or_compute(CONFIG, compute)
    entry, fresh = c.get_or_compute(CONFIG, compute, force=True)
    assert fresh and compute.calls == 2 and entry["result"]["value"] == 0.25
    assert Cache(tmp_path).load(CONFIG)["result"]["value"] == 0.25


def _corrupt_bad_json(path):
    path.write_text(path.read_text()[:40])


def _corrupt_checksum(path):
    entry = json.loads(path.read_text())
    entry["result"]["value"] = 99.0
    path.write_text(json.dumps(entry))


def _corrupt_schema(path):
    entry = json.loads(path.read_text())
    entry["schema"] = "something-else/0"
    path.write_text(json.dumps(entry))


def _corrupt_foreign_entry(path):
    """A valid entry of another configuration stored under this key's file name."""
    other = Cache(path.parent / "other")
    other.store({**CONFIG, "seed": 99}, {"value": 1.0})
    path.write_text(next((path.parent / "other").glob("*.json")).read_text())


def _corrupt_not_utf8(path):
    path.write_bytes(b"\xff\xfe\x00garbage")


@pytest.mark.parametrize("corrupt", [_corrupt_bad_json, _corrupt_checksum, _corrupt_schema,
                                     _corrupt_foreign_entry, _corrupt_not_utf8])
def test_corrupt_entry_is_detected_and_recomputed(tmp_path, corrupt):
    c, compute = Cache(tmp_path), Counter()
    c.get_or_compute(CONFIG, compute)
    corrupt(c.path(config_key(CONFIG)))
    fresh_cache = Cache(tmp_path)
    entry, fresh = fresh_cache.get_or_compute(CONFIG, compute)
    assert fresh and compute.calls == 2 and fresh_cache.stats == {"computed": 1, "hits": 0, "corrupt": 1}
    assert entry["result"]["value"] == 0.25
    assert Cache(tmp_path).load(CONFIG)["result"]["value"] == 0.25  # the repaired entry is valid


def test_failed_write_leaves_old_file_and_no_temporaries(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(cache_mod.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_text(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_interrupted_compute_stores_nothing(tmp_path):
    c = Cache(tmp_path)

    def boom():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        c.get_or_compute(CONFIG, boom)
    assert c.load(CONFIG) is None and list(tmp_path.iterdir()) == []


def test_unstorable_value_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="cannot store"):
        Cache(tmp_path).store(CONFIG, {"x": object()})


def test_atomic_write_gives_the_usual_file_mode(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    atomic_write_text(tmp_path / "f.txt", "x")
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~mask
