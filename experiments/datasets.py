"""Datasets of the experiments (docs/theory.md §6): offline generators, scikit-learn sets, MNIST-1D, and
image sets read from the user's disk. Nothing here downloads.

Every loader returns a :class:`Dataset` whose inputs are flat ``(n, d)`` float64 arrays (the shape
the theory functions take); ``input_shape`` keeps the structure (``(d,)`` or ``(C, H, W)``) so image
models can unflatten. Splits and subsamples are fixed by ``seed``. ``center``/``standardize`` use
training-set statistics only, so with ``center=True`` the training inputs have mean exactly 0 (up to
rounding), which is the "centered data" of the analysis.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from theory.validation import check_choice, check_scalar

DATASETS = ("two_moons", "digits", "digits01", "digits_pair", "breast_cancer", "mnist1d",
            "lowrank_gaussian", "npz", "svhn", "cifar10", "cifar100", "fashion_mnist")
IMAGE_DATASETS = ("svhn", "cifar10", "cifar100", "fashion_mnist")
SYNTHETIC_DEFAULT_N = 500
"""Training-set size of the generated datasets (two_moons, lowrank_gaussian) when ``n`` is None."""
CACHE_ENV = "MIXUP_THEORY_CACHE"
DATA_ENV = "MIXUP_THEORY_DATA"
DEFAULT_CACHE = Path("~/.cache/mixup-theory")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split: flat float64 inputs ``(n, d)``, int64 labels ``(n,)``."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    n_classes: int
    input_shape: tuple
    info: dict = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return self.X_train.shape[0]

    @property
    def d(self) -> int:
        return self.X_train.shape[1]

    def __repr__(self) -> str:  # arrays summarised; they stay available as attributes
        return (f"Dataset({self.name!r}, n_train={self.n_train}, n_test={self.X_test.shape[0]}, d={self.d}, "
                f"n_classes={self.n_classes}, input_shape={self.input_shape},\n"
                f"  train labels per class {np.bincount(self.y_train, minlength=self.n_classes).tolist()})")


def dataset_names() -> list[str]:
    return list(DATASETS)


def cache_dir() -> Path:
    """``$MIXUP_THEORY_CACHE`` or ``~/.cache/mixup-theory`` (created on demand)."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


# ----------------------------------------------------------------------------- splitting, scaling

def _split(X, y, test_size, seed, stratify=True):
    """Stratified split by ``seed``; ``test_size`` a fraction in (0, 1) or a count."""
    from sklearn.model_selection import train_test_split

    if isinstance(test_size, float):
        check_scalar(test_size, "test_fraction", float, min_val=0.0, max_val=1.0, include_boundaries="neither")
    counts = np.bincount(y)
    strat = y if stratify and counts[counts > 0].min() >= 2 else None
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=strat)


def _subsample(X, y, n, seed, name="n"):
    """A fixed random subset of ``n`` rows (all rows, in order, when ``n`` is None)."""
    if n is None:
        return X, y
    n = check_scalar(n, name, int, min_val=1)
    if n > len(y):
        raise ValueError(f"{name} = {n} exceeds the {len(y)} available samples")
    idx = np.sort(np.random.default_rng(seed).permutation(len(y))[:n])
    return X[idx], y[idx]


def _scale(X_train, X_test, input_shape, center, standardize):
    """Subtract the per-feature training mean (``center``); divide by the training standard deviation
    (``standardize``: per feature for vectors, per channel for images; zero deviations left at 1)."""
    info = {"centered": bool(center), "standardized": bool(standardize)}
    if center:  # in place: the loaders hand over fresh arrays (image sets are large)
        mean = X_train.mean(0)
        X_train -= mean
        X_test -= mean
    if standardize:
        if len(input_shape) > 1:  # images: one scale per channel keeps the picture's structure
            c = input_shape[0]
            std = X_train.reshape(len(X_train), c, -1).transpose(1, 0, 2).reshape(c, -1).std(1)
            std = np.repeat(np.where(std > 0, std, 1.0), int(np.prod(input_shape[1:])))
        else:
            std = X_train.std(0)
            std = np.where(std > 0, std, 1.0)
        X_train /= std
        X_test /= std
    return X_train, X_test, info


def _finish(name, X_train, y_train, X_test, y_test, input_shape, *, n, seed, center, standardize,
            n_classes=None, n_test=None, info=None):
    X_train, y_train = _subsample(np.asarray(X_train, np.float64), np.asarray(y_train, np.int64), n, seed)
    X_test, y_test = _subsample(np.asarray(X_test, np.float64), np.asarray(y_test, np.int64), n_test,
                                seed + 1, "n_test")
    d = int(np.prod(input_shape))
    X_train, X_test = X_train.reshape(len(X_train), d), X_test.reshape(len(X_test), d)
    X_train, X_test, scaled = _scale(X_train, X_test, tuple(input_shape), center, standardize)
    k = int(n_classes if n_classes is not None else max(y_train.max(), y_test.max()) + 1)
    meta = {"seed": seed, "n_train": len(y_train), "n_test": len(y_test), **scaled, **(info or {})}
    return Dataset(np.ascontiguousarray(X_train), y_train, np.ascontiguousarray(X_test), y_test,
                   name, k, tuple(int(s) for s in input_shape), meta)


# ----------------------------------------------------------------------------- generated / sklearn

def _test_size_for(n, test_fraction):
    check_scalar(test_fraction, "test_fraction", float, min_val=0.0, max_val=1.0, include_boundaries="neither")
    return max(1, int(round(n * test_fraction / (1.0 - test_fraction))))


def _two_moons(*, n, seed, test_fraction, noise=0.1, **_):
    from sklearn.datasets import make_moons

    n_train = SYNTHETIC_DEFAULT_N if n is None else n
    n_total = n_train + _test_size_for(n_train, test_fraction)
    X, y = make_moons(n_total, noise=noise, random_state=seed)
    Xtr, Xte, ytr, yte = _split(X, y, n_total - n_train, seed)
    return Xtr, ytr, Xte, yte, (2,), 2, {"noise": noise}


def _lowrank_gaussian(*, n, seed, test_fraction, d=20, rank=3, classes=2, label_noise=0.0, **_):
    """``x = A z``, ``z ~ N(0, I_rank)``, ``A`` a random ``d × rank`` orthonormal frame (so Σ has rank
    ``rank``); labels from a random linear teacher (sign for 2 classes, argmax otherwise), a fraction
    ``label_noise`` of them replaced by uniform random classes."""
    d = check_scalar(d, "d", int, min_val=1)
    rank = check_scalar(rank, "rank", int, min_val=1, max_val=d)
    label_noise = check_scalar(label_noise, "label_noise", float, min_val=0.0, max_val=1.0)
    rng = np.random.default_rng(seed)
    n_train = SYNTHETIC_DEFAULT_N if n is None else n
    n_total = n_train + _test_size_for(n_train, test_fraction)
    A, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    X = rng.standard_normal((n_total, rank)) @ A.T
    if classes == 2:
        theta = A @ rng.standard_normal(rank)
        y = (X @ theta > 0).astype(np.int64)
    else:
        W = rng.standard_normal((classes, rank)) @ A.T
        y = np.argmax(X @ W.T, 1)
    flip = rng.random(n_total) < label_noise
    y[flip] = rng.integers(0, classes, size=int(flip.sum()))
    Xtr, Xte, ytr, yte = X[:n_train], X[n_train:], y[:n_train], y[n_train:]
    return Xtr, ytr, Xte, yte, (d,), classes, {"d": d, "rank": rank, "label_noise": label_noise}


def _sklearn_split(X, y, *, n, seed, test_fraction, shape, k, info=None):
    Xtr, Xte, ytr, yte = _split(X, y, test_fraction, seed)
    return Xtr, ytr, Xte, yte, shape, k, info or {}


def _digits(*, n, seed, test_fraction, **_):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return _sklearn_split(X / 16.0, y, n=n, seed=seed, test_fraction=test_fraction, shape=(64,), k=10)


def _digits_pair(*, n, seed, test_fraction, classes=(0, 1), **_):
    from sklearn.datasets import load_digits

    a, b = (int(c) for c in classes)
    if a == b or not {a, b} <= set(range(10)):
        raise ValueError(f"classes must be two different digits in 0..9, got {classes!r}")
    X, y = load_digits(return_X_y=True)
    keep = (y == a) | (y == b)
    return _sklearn_split(X[keep] / 16.0, (y[keep] == b).astype(np.int64), n=n, seed=seed,
                          test_fraction=test_fraction, shape=(64,), k=2, info={"classes": [a, b]})


def _breast_cancer(*, n, seed, test_fraction, **_):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return _sklearn_split(X, y, n=n, seed=seed, test_fraction=test_fraction, shape=(30,), k=2)


def _atomic_save_npz(path: Path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_mnist1d_cache(path: Path, args: dict):
    """The cached arrays, checked for the shapes ``args`` implies (``ValueError`` when they differ)."""
    with np.load(path, allow_pickle=False) as z:
        x, y, xt, yt = z["x"], z["y"], z["x_test"], z["y_test"]
    n_train = int(args["num_samples"] * args["train_split"])
    if (x.ndim != 2 or len(x) + len(xt) != args["num_samples"] or len(x) != n_train or y.shape != (len(x),)
            or yt.shape != (len(xt),) or xt.shape[1:] != x.shape[1:]
            or not (np.isfinite(x).all() and np.isfinite(xt).all())):
        raise ValueError(f"cached MNIST-1D file {path} has unexpected contents")
    return x, y, xt, yt


def _mnist1d(*, n, seed, test_fraction, num_samples=5000, data_seed=42, **overrides):
    """MNIST-1D from ``mnist1d``'s procedural generator (never its download), cached on disk as
    ``<cache>/mnist1d-<hash of the generator arguments>.npz``, written atomically. Its own
    train/test split (``train_split``, default 0.8) is kept; ``test_fraction`` is not used."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args(as_dict=True)
    args.pop("url", None)
    unknown = set(overrides) - set(args)
    if unknown:
        raise ValueError(f"unknown mnist1d generator arguments {sorted(unknown)}; accepted: {sorted(args)}")
    args.update(overrides, num_samples=int(num_samples), seed=int(data_seed))
    digest = hashlib.sha256(json.dumps(args, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_dir() / f"mnist1d-{digest}.npz"
    try:
        x, y, xt, yt = _read_mnist1d_cache(path, args)
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile, zlib.error):
        # Missing, truncated or otherwise corrupt (an interrupted copy, a full disk): regenerate.
        from mnist1d.utils import ObjectView

        import random

        states = np.random.get_state(), random.getstate()  # the generator seeds both global states
        try:
            data = make_dataset(ObjectView(dict(args)))
        finally:
            np.random.set_state(states[0])
            random.setstate(states[1])
        x, y, xt, yt = data["x"], data["y"], data["x_test"], data["y_test"]
        _atomic_save_npz(path, x=x, y=y, x_test=xt, y_test=yt)
    info = {"generator_args": args, "cache": str(path)}
    return x, y, xt, yt, (x.shape[1],), 10, info


def _npz(*, n, seed, test_fraction, path=None, **_):
    """Arrays ``X`` (n, ...) and ``y`` (n,) integer labels from an ``.npz`` file; split by ``seed``."""
    if path is None:
        raise ValueError("dataset 'npz' needs path=<file.npz> holding arrays X and y")
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {p}")
    try:
        with np.load(p, allow_pickle=False) as z:
            files = set(z.files) if hasattr(z, "files") else set()
            arrays = {k: np.asarray(z[k]) for k in ("X", "y") if k in files}
    except Exception as exc:
        raise ValueError(f"cannot read npz dataset {p}: {exc}") from exc
    if len(arrays) < 2:
        raise ValueError(f"{p} lacks arrays {sorted({'X', 'y'} - files)} (has {sorted(files)}); need X and y")
    try:
        X, y = arrays["X"].astype(np.float64), arrays["y"]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{p}: X must be numeric: {exc}") from exc
    if X.ndim < 2 or y.shape != (X.shape[0],):
        raise ValueError(f"{p}: X must be (n, ...) and y (n,), got {X.shape} and {y.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{p}: X contains NaN or inf")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.all(y == np.round(y)):
            raise ValueError(f"{p}: y must hold integer class labels")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"{p}: y must hold class labels >= 0")
    shape = X.shape[1:]
    Xtr, Xte, ytr, yte = _split(X.reshape(len(X), -1), y, test_fraction, seed)
    return Xtr, ytr, Xte, yte, shape, int(y.max()) + 1, {"path": str(p)}


# ----------------------------------------------------------------------------- image files on disk

def _find(root, names, dataset):
    """First existing ``root/<sub>/<name>`` over the candidate sub-folders, else FileNotFoundError."""
    if root is None:
        root = os.environ.get(DATA_ENV)
        if not root:
            raise FileNotFoundError(f"dataset {dataset!r} is read from disk: pass root=<folder> "
                                    f"or set ${DATA_ENV} (nothing is downloaded)")
    root = Path(root).expanduser()
    subs = ["", dataset, dataset.upper(), dataset.replace("_", "-"), "cifar-10-batches-py",
            "cifar-100-python", "FashionMNIST/raw", "fashion-mnist"]
    for name in names:
        for sub in subs:
            p = root / sub / name
            if p.is_file():
                return p
    raise FileNotFoundError(f"{dataset}: none of {list(names)} found under {root} "
                            f"(looked in {[str(root / s) for s in subs[:4]]} …)")


def _svhn_split(root, which):
    from scipy.io import loadmat

    p = _find(root, [f"{which}_32x32.mat"], "svhn")
    try:
        m = loadmat(p)
    except Exception as exc:
        raise ValueError(f"cannot read SVHN file {p}: {exc}") from exc
    if "X" not in m or "y" not in m:
        raise ValueError(f"{p} is not an SVHN .mat file: needs variables X and y, has "
                         f"{sorted(k for k in m if not k.startswith('__'))}")
    X, y = m["X"], np.asarray(m["y"]).reshape(-1).astype(np.int64)
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3) or X.shape[3] != len(y):
        raise ValueError(f"{p}: X must be (32, 32, 3, N) with N = len(y), got {X.shape}")
    y[y == 10] = 0  # SVHN stores digit 0 as label 10
    return np.transpose(X, (3, 2, 0, 1)).astype(np.float64) / 255.0, y


def _unpickle(p):
    try:
        with open(p, "rb") as fh:
            # CIFAR's official format is a pickle; only open files you trust.
            return pickle.load(fh, encoding="bytes")
    except Exception as exc:
        raise ValueError(f"cannot read CIFAR batch {p}: {exc}") from exc


def _cifar_batches(paths, label_key):
    xs, ys = [], []
    for p in paths:
        d = _unpickle(p)
        if not isinstance(d, dict) or b"data" not in d or label_key not in d:
            keys = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{p} is not a CIFAR batch: needs keys b'data' and {label_key!r}, has {keys}")
        x = np.asarray(d[b"data"])
        y = np.asarray(d[label_key], np.int64)
        if x.ndim != 2 or x.shape[1] != 3072 or x.shape[0] != len(y):
            raise ValueError(f"{p}: data must be (N, 3072) with N = len(labels), got {x.shape}")
        xs.append(x.reshape(-1, 3, 32, 32).astype(np.float64) / 255.0)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _cifar10(*, n, seed, test_fraction, root=None, **_):
    train = [_find(root, [f"data_batch_{k}"], "cifar10") for k in range(1, 6)]
    Xtr, ytr = _cifar_batches(train, b"labels")
    Xte, yte = _cifar_batches([_find(root, ["test_batch"], "cifar10")], b"labels")
    return Xtr, ytr, Xte, yte, (3, 32, 32), 10, {"root": str(train[0].parent)}


def _cifar100(*, n, seed, test_fraction, root=None, **_):
    tr, te = _find(root, ["train"], "cifar100"), _find(root, ["test"], "cifar100")
    Xtr, ytr = _cifar_batches([tr], b"fine_labels")
    Xte, yte = _cifar_batches([te], b"fine_labels")
    return Xtr, ytr, Xte, yte, (3, 32, 32), 100, {"root": str(tr.parent)}


def read_idx(path) -> np.ndarray:
    """An IDX array (MNIST format, optionally gzipped); ValueError naming the path if malformed."""
    p = Path(path)
    try:
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ValueError(f"cannot read IDX file {p}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{p} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{p}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != int(np.prod(shape)):
        raise ValueError(f"{p}: IDX payload has {len(raw) - header} bytes, header says shape {shape}")
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _fashion_split(root, prefix):
    img = _find(root, [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-images-idx3-ubyte"], "fashion_mnist")
    lab = _find(root, [f"{prefix}-labels-idx1-ubyte.gz", f"{prefix}-labels-idx1-ubyte"], "fashion_mnist")
    X, y = read_idx(img), read_idx(lab).astype(np.int64)
    if X.ndim != 3 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError(f"{img}, {lab}: need images (N, H, W) and labels (N,), got {X.shape}, {y.shape}")
    return X[:, None].astype(np.float64) / 255.0, y


def _svhn(*, n, seed, test_fraction, root=None, **_):
    Xtr, ytr = _svhn_split(root, "train")
    Xte, yte = _svhn_split(root, "test")
    return Xtr, ytr, Xte, yte, (3, 32, 32), 10, {}


def _fashion_mnist(*, n, seed, test_fraction, root=None, **_):
    Xtr, ytr = _fashion_split(root, "train")
    Xte, yte = _fashion_split(root, "t10k")
    return Xtr, ytr, Xte, yte, (1,) + Xtr.shape[2:], 10, {}


_LOADERS = {
    "two_moons": _two_moons, "digits": _digits, "digits01": _digits_pair, "digits_pair": _digits_pair,
    "breast_cancer": _breast_cancer, "mnist1d": _mnist1d, "lowrank_gaussian": _lowrank_gaussian,
    "npz": _npz, "svhn": _svhn, "cifar10": _cifar10, "cifar100": _cifar100, "fashion_mnist": _fashion_mnist,
}
_KWARGS = {
    "two_moons": {"noise"}, "digits": set(), "digits01": set(), "digits_pair": {"classes"},
    "breast_cancer": set(), "lowrank_gaussian": {"d", "rank", "classes", "label_noise"}, "npz": {"path"},
    "svhn": set(), "cifar10": set(), "cifar100": set(), "fashion_mnist": set(),
}


def load_dataset(name: str, *, n: int | None = None, seed: int = 0, standardize: bool = True,
                 center: bool = True, test_fraction: float = 0.25, root=None, n_test: int | None = None,
                 **kw) -> Dataset:
    """Load ``name`` (one of :data:`DATASETS`) as a :class:`Dataset`.

    ``n`` keeps a fixed random subset (by ``seed``) of ``n`` training points (for the generated sets it
    is the number generated); ``n_test`` does the same for the test set. Datasets without a standard
    split are split by ``seed`` with ``test_fraction`` (stratified); MNIST-1D and the image sets keep
    their own split. Image sets are read from ``root`` (or ``$MIXUP_THEORY_DATA``) and pixels are
    scaled to [0, 1] before ``center``/``standardize``. Extra keywords: ``noise`` (two_moons),
    ``classes`` (digits_pair), ``d``, ``rank``, ``classes``, ``label_noise`` (lowrank_gaussian),
    ``path`` (npz), the generator's arguments plus ``num_samples``, ``data_seed`` (mnist1d).
    """
    check_choice(name, "dataset", DATASETS)
    seed = check_scalar(seed, "seed", int, min_val=0)
    if name != "mnist1d":
        unknown = set(kw) - _KWARGS[name]
        if unknown:
            raise ValueError(f"unknown keyword(s) {sorted(unknown)} for dataset {name!r}; "
                             f"accepted: {sorted(_KWARGS[name])}")
    if name in IMAGE_DATASETS:
        kw["root"] = root
    if name in ("two_moons", "lowrank_gaussian"):
        Xtr, ytr, Xte, yte, shape, k, info = _LOADERS[name](n=n, seed=seed, test_fraction=test_fraction, **kw)
        n = None  # already generated at size n
    else:
        Xtr, ytr, Xte, yte, shape, k, info = _LOADERS[name](n=n, seed=seed, test_fraction=test_fraction, **kw)
    return _finish(name, Xtr, ytr, Xte, yte, shape, n=n, seed=seed, center=center, standardize=standardize,
                   n_classes=k, n_test=n_test, info=info)
