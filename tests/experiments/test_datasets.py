"""Dataset loaders: generated sets, scikit-learn sets, MNIST-1D cache, and on-disk formats written
here as tiny fake files (SVHN .mat, CIFAR pickles, Fashion-MNIST idx.gz, npz)."""
import gzip
import pickle
import random
import struct

import numpy as np
import pytest
from scipy.io import savemat

from experiments.datasets import DATASETS, Dataset, dataset_names, load_dataset, read_idx

N_FAKE = 12  # images per fake split
RAW = dict(center=False, standardize=False)


def _pixels(rng, *shape):
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def svhn_root(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        X = _pixels(rng, 32, 32, 3, N_FAKE)
        y = (np.arange(N_FAKE) % 10 + 1).reshape(-1, 1)  # labels 1..10, 10 meaning digit 0
        savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
    return tmp_path


@pytest.fixture
def cifar_root(tmp_path):
    rng = np.random.default_rng(1)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for name in [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]:
        batch = {b"data": _pixels(rng, N_FAKE, 3072), b"labels": list(rng.integers(0, 10, N_FAKE))}
        with open(d / name, "wb") as fh:
            pickle.dump(batch, fh)
    return tmp_path


@pytest.fixture
def fashion_root(tmp_path):
    rng = np.random.default_rng(2)
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", _pixels(rng, N_FAKE, 28, 28))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(N_FAKE) % 10)
    return tmp_path


def test_names_listed():
    assert set(dataset_names()) == set(DATASETS)
    assert {"two_moons", "digits", "digits01", "breast_cancer", "mnist1d", "lowrank_gaussian", "npz",
            "svhn", "cifar10", "cifar100", "fashion_mnist"} <= set(DATASETS)


@pytest.mark.parametrize("name, d, k", [("two_moons", 2, 2), ("digits", 64, 10), ("digits01", 64, 2),
                                        ("breast_cancer", 30, 2)])
def test_builtin_shapes_and_centering(name, d, k):
    D = load_dataset(name, seed=3)
    assert isinstance(D, Dataset) and D.n_classes == k and D.input_shape == (d,)
    assert D.X_train.dtype == np.float64 and D.y_train.dtype == np.int64
    assert D.X_train.shape[1] == D.X_test.shape[1] == d
    np.testing.assert_allclose(D.X_train.mean(0), 0.0, atol=1e-12)
    std = D.X_train.std(0)
    np.testing.assert_allclose(std[std > 1e-9], 1.0, rtol=1e-12)
    assert set(np.unique(D.y_train)) == set(range(k))


def test_two_moons_sizes_follow_n_and_test_fraction():
    D = load_dataset("two_moons", n=90, test_fraction=0.25)
    assert len(D.y_train) == 90 and len(D.y_test) == 30


def test_split_determinism_and_seed_dependence():
    a, b, c = (load_dataset("breast_cancer", seed=s, n=100) for s in (5, 5, 6))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)


def test_statistics_come_from_training_set_only():
    raw = load_dataset("breast_cancer", seed=1, **RAW)
    z = load_dataset("breast_cancer", seed=1)
    mean, std = raw.X_train.mean(0), raw.X_train.std(0)
    np.testing.assert_allclose(z.X_test, (raw.X_test - mean) / std, rtol=1e-10, atol=1e-10)


def test_digits_pair_labels_match_sklearn():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    D = load_dataset("digits_pair", classes=(3, 8), **RAW)
    eights = {tuple(r) for r in X[y == 8]}
    threes = {tuple(r) for r in X[y == 3]}
    for row, label in zip(np.round(D.X_train * 16), D.y_train):
        assert tuple(row) in (eights if label == 1 else threes)


def test_lowrank_gaussian_rank_and_linear_labels():
    from sklearn.svm import LinearSVC

    D = load_dataset("lowrank_gaussian", n=300, d=12, rank=3)
    assert D.X_train.shape == (300, 12)
    assert np.linalg.matrix_rank(D.X_train) == 3
    clf = LinearSVC(C=1e4, max_iter=200000).fit(D.X_train, D.y_train)  # a linear teacher separates them
    assert clf.score(D.X_train, D.y_train) == 1.0


def test_mnist1d_generated_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXUP_THEORY_CACHE", str(tmp_path))
    np.random.seed(7)
    random.seed(7)
    expect = np.random.rand(), random.random()
    np.random.seed(7)
    random.seed(7)
    D = load_dataset("mnist1d", num_samples=200, **RAW)
    assert (np.random.rand(), random.random()) == expect  # global random state untouched
    assert D.input_shape == (40,) and D.n_classes == 10 and len(D.y_train) + len(D.y_test) == 200
    files = list(tmp_path.glob("mnist1d-*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    with np.load(files[0]) as z:  # the cached arrays are what a second load returns
        z_x = z["x"]
    np.testing.assert_array_equal(load_dataset("mnist1d", num_samples=200, **RAW).X_train, z_x)


def test_svhn_mat(svhn_root):
    D = load_dataset("svhn", root=svhn_root, **RAW)
    assert D.input_shape == (3, 32, 32) and D.X_train.shape == (N_FAKE, 3072) and D.n_classes == 10
    from scipy.io import loadmat

    m = loadmat(svhn_root / "train_32x32.mat")
    expect = np.transpose(m["X"], (3, 2, 0, 1)).reshape(N_FAKE, -1) / 255.0
    np.testing.assert_allclose(D.X_train, expect)
    np.testing.assert_array_equal(D.y_train, m["y"].ravel() % 10)  # label 10 is digit 0


def test_cifar10_pickles(cifar_root):
    D = load_dataset("cifar10", root=cifar_root, **RAW)
    assert D.X_train.shape == (5 * N_FAKE, 3072) and D.X_test.shape == (N_FAKE, 3072)
    with open(cifar_root / "cifar-10-batches-py" / "test_batch", "rb") as fh:
        batch = pickle.load(fh)
    np.testing.assert_allclose(D.X_test, batch[b"data"] / 255.0)
    np.testing.assert_array_equal(D.y_test, batch[b"labels"])
    z = load_dataset("cifar10", root=cifar_root, n=20, n_test=5)
    assert z.X_train.shape == (20, 3072) and z.X_test.shape == (5, 3072)
    np.testing.assert_allclose(z.X_train.mean(0), 0, atol=1e-12)


def test_cifar100_pickles(tmp_path):
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    rng = np.random.default_rng(4)
    for name in ("train", "test"):
        with open(d / name, "wb") as fh:
            pickle.dump({b"data": _pixels(rng, N_FAKE, 3072), b"fine_labels": list(range(N_FAKE))}, fh)
    D = load_dataset("cifar100", root=tmp_path)
    assert D.n_classes == 100 and D.X_train.shape == (N_FAKE, 3072)


def test_fashion_mnist_idx(fashion_root):
    D = load_dataset("fashion_mnist", root=fashion_root, **RAW)
    assert D.input_shape == (1, 28, 28) and D.X_train.shape == (N_FAKE, 784)
    with gzip.open(fashion_root / "train-images-idx3-ubyte.gz") as fh:
        raw = np.frombuffer(fh.read()[16:], np.uint8)
    np.testing.assert_allclose(D.X_train.ravel(), raw / 255.0)
    np.testing.assert_array_equal(D.y_train, np.arange(N_FAKE) % 10)


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(40, 2, 3)), np.repeat([0, 1, 2, 3], 10)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    D = load_dataset("npz", path=tmp_path / "d.npz", **RAW)
    assert D.input_shape == (2, 3) and D.n_classes == 4 and len(D.y_train) == 30
    got = {tuple(np.round(r, 12)) + (int(t),) for r, t in zip(np.vstack([D.X_train, D.X_test]),
                                                              np.concatenate([D.y_train, D.y_test]))}
    want = {tuple(np.round(r, 12)) + (int(t),) for r, t in zip(X.reshape(40, -1), y)}
    assert got == want


@pytest.mark.parametrize("name", ["svhn", "cifar10", "cifar100", "fashion_mnist"])
def test_missing_image_files_name_the_path(tmp_path, name):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_dataset(name, root=tmp_path)


def test_missing_root_is_explained(monkeypatch):
    monkeypatch.delenv("MIXUP_THEORY_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match="root"):
        load_dataset("svhn")


def test_bad_files_name_the_path(tmp_path):
    savemat(tmp_path / "train_32x32.mat", {"images": np.zeros((2, 2))})  # wrong keys
    with pytest.raises(ValueError, match="train_32x32.mat"):
        load_dataset("svhn", root=tmp_path)
    (tmp_path / "train_32x32.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ValueError, match="train_32x32.mat"):
        load_dataset("svhn", root=tmp_path)

    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    for k in range(1, 6):
        (d / f"data_batch_{k}").write_bytes(b"\x00corrupt")
    with pytest.raises(ValueError, match="data_batch_1"):
        load_dataset("cifar10", root=tmp_path)
    with open(d / "data_batch_1", "wb") as fh:
        pickle.dump({b"pixels": 1}, fh)
    with pytest.raises(ValueError, match="data_batch_1"):
        load_dataset("cifar10", root=tmp_path)

    bad = tmp_path / "train-images-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        read_idx(bad)

    np.savez(tmp_path / "wrong.npz", A=np.zeros((3, 2)), y=np.zeros(3))
    with pytest.raises(ValueError, match="wrong.npz"):
        load_dataset("npz", path=tmp_path / "wrong.npz")
    (tmp_path / "corrupt.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupt.npz"):
        load_dataset("npz", path=tmp_path / "corrupt.npz")
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        load_dataset("npz", path=tmp_path / "absent.npz")


def test_bad_arguments():
    with pytest.raises(ValueError, match="dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="noise_level"):
        load_dataset("two_moons", noise_level=0.1)
    with pytest.raises(ValueError, match="test_fraction"):
        load_dataset("digits", test_fraction=1.5)
    with pytest.raises(ValueError, match="n = 10000"):
        load_dataset("breast_cancer", n=10000)
    with pytest.raises(ValueError, match="rank"):
        load_dataset("lowrank_gaussian", d=3, rank=5)


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "wrong_arrays", "short_arrays"])
def test_corrupt_mnist1d_cache_is_regenerated(tmp_path, monkeypatch, damage):
    """A damaged cache file (interrupted copy, full disk) is detected and rewritten, not a BadZipFile forever."""
    monkeypatch.setenv("MIXUP_THEORY_CACHE", str(tmp_path))
    fresh = load_dataset("mnist1d", num_samples=100, **RAW)
    (path,) = tmp_path.glob("mnist1d-*.npz")
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"PK\x03\x04" + bytes(200))
    elif damage == "wrong_arrays":
        np.savez(path, a=np.zeros(3))
    else:
        with np.load(path) as z:
            np.savez(path, x=z["x"][:5], y=z["y"][:5], x_test=z["x_test"], y_test=z["y_test"])
    again = load_dataset("mnist1d", num_samples=100, **RAW)
    np.testing.assert_array_equal(again.X_train, fresh.X_train)
    np.testing.assert_array_equal(again.y_test, fresh.y_test)
    with np.load(path) as z:  # rewritten whole
        assert z["x"].shape == fresh.X_train.shape and z["x_test"].shape == fresh.X_test.shape


def test_dataset_repr_is_short():
    D = load_dataset("two_moons", n=2000)
    text = repr(D)
    assert len(text.splitlines()) <= 3 and len(text) < 300 and "n_train=2000" in text
    assert D.X_train.shape == (2000, 2)
