"""Decode a located data set into float features and labels (once per process), and split it for a run."""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tune_mlp.data.idx import IDX_FILES, IMAGE_SIDE, NUM_FEATURES, DatasetFormatError, IDXFormatError, read_idx
from tune_mlp.data.locate import (
    DatasetLocation,
    DatasetNotFoundError,
    DataSources,
    as_sources,
    find_dataset_dir,
    idx_files,
)

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "mnist": tuple(str(digit) for digit in range(10)),
}


_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _fingerprint(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """Cache key that changes when a file is replaced, so a rewritten dataset is re-read."""
    key = []
    for path in paths:
        stat = path.stat()
        key.append((str(path.resolve()), stat.st_mtime_ns, stat.st_size))
    return tuple(key)


def _to_features(images: np.ndarray, source: str) -> np.ndarray:
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DatasetFormatError(
            f"{source}: expected images of shape (count, {IMAGE_SIDE}, {IMAGE_SIDE}), got {images.shape}"
        )
    features = images.reshape(len(images), NUM_FEATURES).astype(np.float32)
    features /= np.float32(255.0)
    return features


def _to_labels(labels: np.ndarray, source: str, num_classes: int) -> np.ndarray:
    if labels.ndim != 1:
        raise DatasetFormatError(f"{source}: expected a 1-D label array, got shape {labels.shape}")
    out = labels.astype(np.int64)
    if out.size and (out.min() < 0 or out.max() >= num_classes):
        raise DatasetFormatError(f"{source}: labels must be in 0..{num_classes - 1}, found {out.min()}..{out.max()}")
    return out


def _check_pair(x: np.ndarray, y: np.ndarray, x_source: str, y_source: str) -> None:
    if len(x) != len(y):
        raise DatasetFormatError(
            f"image/label count mismatch: {x_source} holds {len(x)} images but {y_source} holds {len(y)} labels"
        )


def _read_idx_role(path: Path, role: str) -> np.ndarray:
    """read_idx plus a check that an images file holds images and a labels file labels."""
    array = read_idx(path)
    want = 3 if role.endswith("images") else 1
    if array.ndim != want:
        kinds = {1: "labels (1-D)", 3: "images (3-D)"}
        raise IDXFormatError(
            f"{path}: expected {kinds[want]} but the file holds {kinds.get(array.ndim, array.ndim)}"
            " - are the files swapped?"
        )
    return array


@functools.lru_cache(maxsize=4)
def _load_cached(
    name: str, kind: str, fingerprint: tuple[tuple[str, int, int], ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Decode once per process: search drivers and tests load the same files many times."""
    num_classes = len(CLASS_NAMES[name])
    paths = [Path(entry[0]) for entry in fingerprint]
    if kind == "npz":
        (npz_path,) = paths
        try:
            with np.load(npz_path, allow_pickle=False) as archive:
                absent = [key for key in _NPZ_KEYS if key not in archive.files]
                if absent:
                    raise DatasetFormatError(f"{npz_path}: missing arrays {', '.join(absent)}")
                raw = {key: archive[key] for key in _NPZ_KEYS}
        except DatasetFormatError:
            raise
        except (OSError, ValueError, zlib.error) as exc:
            raise DatasetFormatError(f"{npz_path}: unreadable npz file ({exc})") from None
        sources = {key: f"{npz_path}[{key}]" for key in _NPZ_KEYS}
    else:
        files = dict(zip(IDX_FILES, paths, strict=True))
        raw = {
            "x_train": _read_idx_role(files["train_images"], "train_images"),
            "y_train": _read_idx_role(files["train_labels"], "train_labels"),
            "x_test": _read_idx_role(files["test_images"], "test_images"),
            "y_test": _read_idx_role(files["test_labels"], "test_labels"),
        }
        sources = {
            "x_train": str(files["train_images"]),
            "y_train": str(files["train_labels"]),
            "x_test": str(files["test_images"]),
            "y_test": str(files["test_labels"]),
        }
    for split in ("train", "test"):
        _check_pair(raw[f"x_{split}"], raw[f"y_{split}"], sources[f"x_{split}"], sources[f"y_{split}"])
    arrays = (
        _to_features(raw["x_train"], sources["x_train"]),
        _to_labels(raw["y_train"], sources["y_train"], num_classes),
        _to_features(raw["x_test"], sources["x_test"]),
        _to_labels(raw["y_test"], sources["y_test"], num_classes),
    )
    for array in arrays:
        array.flags.writeable = False  # shared by every caller: nobody may corrupt the cache
    return arrays


def _location_files(location: DatasetLocation) -> list[Path]:
    if location.kind == "npz":
        return [location.path]
    found, missing = idx_files(location.path)
    if missing:
        raise DatasetNotFoundError(f"{location.path}: missing {', '.join(missing)}")
    return [found[role] for role in IDX_FILES]


def load_dataset(
    name: str, sources: DataSources | str | os.PathLike[str] | None = None
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)): x float32 (N, 784) in [0, 1], y int64 in 0..9.

    The arrays are cached per process and read-only; `.copy()` them to modify.
    """
    _, (x_train, y_train, x_test, y_test) = _locate_and_load(name, as_sources(sources))
    return (x_train, y_train), (x_test, y_test)


def _locate_and_load(name: str, sources: DataSources) -> tuple[DatasetLocation, tuple[np.ndarray, ...]]:
    """Where the data set is, and its four cached read-only arrays."""
    location = find_dataset_dir(name, sources)
    return location, _load_cached(name, location.kind, _fingerprint(_location_files(location)))


def _stratified_indices(y: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of `count` examples drawn per class in proportion to class sizes.

    Largest-remainder rounding keeps the total exact and every class within one example
    of its ideal share.
    """
    classes, inverse, sizes = np.unique(y, return_inverse=True, return_counts=True)
    ideal = sizes * (count / len(y))
    quota = np.floor(ideal).astype(np.int64)
    shortfall = count - int(quota.sum())
    order = np.argsort(-(ideal - quota), kind="stable")
    quota[order[:shortfall]] += 1
    picked = []
    for index in range(len(classes)):
        members = np.flatnonzero(inverse == index)
        picked.append(rng.permutation(members)[: quota[index]])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def stratified_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_val, y_val): a seeded per-class hold-out, original order kept.

    Stratifying keeps validation accuracy comparable across seeds and trials.
    """
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} rows but y has {len(y)} labels")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_val = round(len(y) * val_fraction)
    if n_val == 0 or n_val == len(y):
        raise ValueError(
            f"val_fraction {val_fraction} of {len(y)} examples leaves an empty "
            f"{'validation' if n_val == 0 else 'training'} set"
        )
    val_idx = _stratified_indices(y, n_val, np.random.default_rng(seed))
    is_val = np.zeros(len(y), dtype=bool)
    is_val[val_idx] = True
    return x[~is_val], y[~is_val], x[is_val], y[is_val]


@dataclass(frozen=True, eq=False)
class Splits:
    """Train / validation / test arrays of one run plus what they are."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    dataset: str
    source: str = ""  # where the files came from, for logs

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:  # the default repr would print the arrays
        return (
            f"Splits(dataset={self.dataset!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, features={self.x_train.shape[1:]}, source={self.source!r})"
        )


def load_splits(
    name: str = "fashion_mnist",
    sources: DataSources | str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
) -> Splits:
    """Load `name` and hold out a stratified validation split (seeded by `seed`).

    `limit` keeps a stratified sample of `limit` training examples (before the split) and
    a proportional head of the test set, so smoke tests run in seconds.
    """
    location, (x_train, y_train, x_test, y_test) = _locate_and_load(name, as_sources(sources))
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        if limit < len(y_train):
            n_test = max(1, round(limit * len(y_test) / len(y_train)))
            keep = _stratified_indices(y_train, limit, np.random.default_rng((seed, 1)))
            x_train, y_train = x_train[keep], y_train[keep]
            x_test, y_test = x_test[:n_test], y_test[:n_test]
    x_tr, y_tr, x_val, y_val = stratified_split(x_train, y_train, val_fraction, seed)
    return Splits(
        x_train=x_tr,
        y_train=y_tr,
        x_val=x_val,
        y_val=y_val,
        x_test=np.array(x_test),  # writable copy, detached from the shared cache
        y_test=np.array(y_test),
        class_names=CLASS_NAMES[name],
        dataset=name,
        source=str(location.path),
    )
