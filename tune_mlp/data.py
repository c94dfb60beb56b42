"""Find, decode and split Fashion-MNIST / MNIST without needing the internet.

Machines that run searches are often offline, so the data is looked for in a fixed order
(explicit directory, Debian's ``dataset-fashion-mnist`` package, the Keras cache) and a
download is only tried when a quick connection check succeeds. When everything fails the
error names every place looked and how to fix it. TensorFlow is imported only for the
download, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import gzip
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from tune_mlp.config import DATASETS
from tune_mlp.errors import UserInputError

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

IMAGE_SIDE = 28
NUM_FEATURES = IMAGE_SIDE * IMAGE_SIDE

IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dims (count, rows, cols)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dim (count)
_IDX_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

# Role -> standard file name (each may also end in .gz).
IDX_FILES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
KERAS_MNIST_NPZ = "mnist.npz"
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

DATA_DIR_ENV = "TUNE_MLP_DATA_DIR"

# Subfolders accepted when --data-dir / TUNE_MLP_DATA_DIR points at a parent directory.
SUBDIR_NAMES: dict[str, tuple[str, ...]] = {
    "fashion_mnist": ("fashion-mnist", "fashion_mnist"),
    "mnist": ("mnist",),
}

# Read at call time so callers (and tests) can redirect them; `find_dataset_dir`'s
# keyword arguments are the per-call override.
DEBIAN_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),  # apt: dataset-fashion-mnist
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
DEBIAN_PACKAGES: dict[str, str] = {"fashion_mnist": "dataset-fashion-mnist"}

# Keras' own cache layout (keras.datasets.*.load_data).
_KERAS_CACHE_SUBDIR = {"fashion_mnist": "fashion-mnist", "mnist": None}

DOWNLOAD_HOST = ("storage.googleapis.com", 443)
ONLINE_CHECK_TIMEOUT_S = 3.0


class DatasetFormatError(UserInputError, ValueError):
    """A dataset file exists but its contents are not what the loader needs."""


class IDXFormatError(DatasetFormatError):
    """An IDX file is truncated, corrupt or of the wrong kind; the message names the file."""


class DatasetNotFoundError(UserInputError, FileNotFoundError):
    """No usable copy of the dataset anywhere; the message lists every place looked."""


class DatasetLocation(NamedTuple):
    """Where a dataset was found: an IDX directory or Keras' mnist.npz file."""

    kind: Literal["idx", "npz"]
    path: Path


# --------------------------------------------------------------------------- IDX files


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode a (optionally gzipped) unsigned-byte IDX file into a read-only uint8 array.

    Gzip is detected from the content, not the name, because renamed/extracted copies are
    common. Every defect raises IDXFormatError naming the file instead of a numpy error.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXFormatError(f"{path}: corrupt or truncated gzip data ({exc})") from None

    if len(raw) < 4:
        raise IDXFormatError(f"{path}: file is {len(raw)} bytes, too short for an IDX header (needs at least 4)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC):
        expected = f"expected 0x{IDX_IMAGES_MAGIC:08X} (images) or 0x{IDX_LABELS_MAGIC:08X} (labels)"
        if raw[0] or raw[1]:
            detail = "not an IDX file"
        elif raw[2] != _IDX_UBYTE:
            detail = f"data type byte 0x{raw[2]:02X} is not supported, only 0x08 (unsigned byte)"
        else:
            detail = f"{raw[3]} dimensions are not supported"
        raise IDXFormatError(f"{path}: bad magic number 0x{magic:08X}: {detail}; {expected}")

    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(
            f"{path}: header truncated: {ndim} dimension sizes need {header} bytes, file has {len(raw)}"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected_bytes = 1
    for size in dims:
        expected_bytes *= size
    found = len(raw) - header
    if found != expected_bytes:
        what = "pixels" if ndim == 3 else "labels"
        hint = "file truncated?" if found < expected_bytes else "trailing data after the payload"
        shape = "x".join(str(d) for d in dims)
        raise IDXFormatError(
            f"{path}: expected {expected_bytes} bytes of {what} for shape {shape}, found {found} ({hint})"
        )
    return np.frombuffer(raw, dtype=np.uint8, count=expected_bytes, offset=header).reshape(dims)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Write a 1-D label or 3-D image array as unsigned-byte IDX (gzipped if the name ends in .gz).

    Lets users convert their own data and lets tests build real files. The write goes
    through a temporary file so a reader never sees a half-written dataset.
    """
    path = Path(path)
    data = np.asarray(array)
    if data.ndim not in (1, 3):
        raise ValueError(
            f"write_idx: expected a 1-D label array or a 3-D (count, rows, cols) image array, got shape {data.shape}"
        )
    if data.dtype != np.uint8:
        integral = data.dtype.kind in "biu"
        if not integral or (data.size and (data.min() < 0 or data.max() > 255)):
            raise ValueError(
                f"write_idx: IDX stores unsigned bytes; got dtype {data.dtype} "
                "(scale to 0..255 and cast to uint8 first)"
            )
        data = data.astype(np.uint8)
    magic = IDX_IMAGES_MAGIC if data.ndim == 3 else IDX_LABELS_MAGIC
    payload = magic.to_bytes(4, "big")
    payload += b"".join(int(size).to_bytes(4, "big") for size in data.shape)
    payload += np.ascontiguousarray(data).tobytes()
    if path.name.endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- look-up


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")


def _idx_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """The four standard files in `directory` (plain preferred over .gz) and the missing names."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for role, base in IDX_FILES.items():
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(f"{base}[.gz]")
    return found, missing


def _probe_dir(name: str, directory: Path) -> tuple[DatasetLocation | None, str]:
    """Check one directory for the dataset; the string says why it was not usable."""
    if not directory.exists():
        return None, "does not exist"
    if not directory.is_dir():
        return None, "not a directory"
    found, missing = _idx_files(directory)
    if not missing:
        return DatasetLocation("idx", directory), "found"
    if name == "mnist" and (directory / KERAS_MNIST_NPZ).is_file():
        return DatasetLocation("npz", directory / KERAS_MNIST_NPZ), "found"
    if found:
        return None, "incomplete, missing " + ", ".join(missing)
    return None, "no dataset files (" + ", ".join(missing) + ")"


def default_keras_homes() -> tuple[Path, ...]:
    """Where Keras keeps its cache: $KERAS_HOME, else ~/.keras (with Keras' /tmp/.keras fallback)."""
    if os.environ.get("KERAS_HOME"):
        homes = [Path(os.environ["KERAS_HOME"]).expanduser()]
    else:
        homes = [Path.home() / ".keras"]
    fallback = Path("/tmp/.keras")
    if fallback not in homes:
        homes.append(fallback)
    return tuple(homes)


def _keras_cache_places(name: str, keras_homes: Sequence[Path]) -> list[Path]:
    subdir = _KERAS_CACHE_SUBDIR[name]
    places = []
    for home in keras_homes:
        datasets = Path(home) / "datasets"
        places.append(datasets / subdir if subdir else datasets / KERAS_MNIST_NPZ)
    return places


def _probe_keras_cache(name: str, place: Path) -> tuple[DatasetLocation | None, str]:
    if place.suffix == ".npz":
        if place.is_file():
            return DatasetLocation("npz", place), "found"
        return None, "does not exist"
    return _probe_dir(name, place)


def _offline_reason(timeout: float = ONLINE_CHECK_TIMEOUT_S) -> str | None:
    """None if the download host (or the HTTPS proxy) answers within `timeout`, else why not.

    Runs in a daemon thread so a hanging DNS lookup cannot stretch the wait past `timeout`.
    """
    import socket
    import threading
    import urllib.parse

    host, port = DOWNLOAD_HOST
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if proxy:
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    outcome: dict[str, object] = {}

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    if outcome.get("ok"):
        return None
    if "error" in outcome:
        return f"offline (cannot connect to {host}:{port}: {outcome['error']})"
    return f"offline (no answer from {host}:{port} within {timeout:g} s)"


def _download_with_keras(name: str) -> str | None:
    """Fill the Keras cache via keras.datasets; returns None on success, else the reason."""
    offline = _offline_reason()
    if offline:
        return offline
    try:
        import keras  # heavy: imports TensorFlow, so only here

        loader = keras.datasets.fashion_mnist if name == "fashion_mnist" else keras.datasets.mnist
        loader.load_data()
    except Exception as exc:  # any failure just means "not found here"
        return f"failed ({type(exc).__name__}: {exc})"
    return None


def _how_to_fix(name: str) -> list[str]:
    files = ", ".join(f"{base}.gz" for base in IDX_FILES.values())
    fixes = []
    if name in DEBIAN_PACKAGES:
        where = ", ".join(str(d) for d in DEBIAN_DIRS.get(name, ()))
        fixes.append(f"apt-get install {DEBIAN_PACKAGES[name]}   (Debian/Ubuntu; installs {where})")
    fixes.append(
        f"pass --data-dir DIR (or set {DATA_DIR_ENV}=DIR) where DIR holds {files} "
        "(the .gz suffix is optional)" + (f" or Keras' {KERAS_MNIST_NPZ}" if name == "mnist" else "")
    )
    fixes.append(f"run once with internet access so keras.datasets.{name}.load_data() fills the Keras cache")
    return fixes


def find_dataset_dir(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    debian_dirs: Sequence[str | os.PathLike[str]] | None = None,
    keras_homes: Sequence[str | os.PathLike[str]] | None = None,
) -> DatasetLocation:
    """Locate `name`: data_dir / $TUNE_MLP_DATA_DIR, Debian package, Keras cache, Keras download.

    An explicit directory that lacks the files is an error right away (the user asked for
    it). `debian_dirs` / `keras_homes` override DEBIAN_DIRS / default_keras_homes() and
    `allow_download=False` skips the network, so the not-found path is testable anywhere.
    """
    _check_name(name)
    looked: list[str] = []

    explicit, label = data_dir, "--data-dir"
    if explicit is None and os.environ.get(DATA_DIR_ENV):
        explicit, label = os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"
    if explicit is not None:
        root = Path(explicit).expanduser()
        if name == "mnist" and root.suffix == ".npz" and root.is_file():
            return DatasetLocation("npz", root)
        problems = []
        for candidate in (root, *(root / sub for sub in SUBDIR_NAMES[name])):
            location, reason = _probe_dir(name, candidate)
            if location is not None:
                return location
            if candidate == root or candidate.exists():
                problems.append(f"  - {candidate}: {reason}")
        subdirs = " or ".join(SUBDIR_NAMES[name])
        raise DatasetNotFoundError(
            f"dataset {name!r} not found in {label} {root}:\n"
            + "\n".join(problems)
            + f"\nThat directory (or a subfolder named {subdirs}) must hold "
            + ", ".join(f"{base}[.gz]" for base in IDX_FILES.values())
            + (f", or Keras' {KERAS_MNIST_NPZ}" if name == "mnist" else "")
            + "."
        )
    looked.append(f"--data-dir / ${DATA_DIR_ENV}: not given")

    debian = DEBIAN_DIRS.get(name, ()) if debian_dirs is None else debian_dirs
    for directory in map(Path, debian):
        location, reason = _probe_dir(name, directory)
        if location is not None:
            return location
        looked.append(f"{directory}: {reason}")

    homes = default_keras_homes() if keras_homes is None else tuple(map(Path, keras_homes))
    keras_places = _keras_cache_places(name, homes)
    for place in keras_places:
        location, reason = _probe_keras_cache(name, place)
        if location is not None:
            return location
        looked.append(f"{place}: {reason}")

    download = f"download via keras.datasets.{name}"
    if not allow_download:
        looked.append(f"{download}: disabled")
    else:
        failure = _download_with_keras(name)
        if failure is None:
            # Keras writes to its own home, which may differ from an overridden `keras_homes`.
            recheck = keras_places + [
                p for p in _keras_cache_places(name, default_keras_homes()) if p not in keras_places
            ]
            for place in recheck:
                location, _ = _probe_keras_cache(name, place)
                if location is not None:
                    return location
            failure = "succeeded but the files are not in " + ", ".join(map(str, recheck))
        looked.append(f"{download}: {failure}")

    raise DatasetNotFoundError(
        f"dataset {name!r} not found. Looked in:\n"
        + "\n".join(f"  - {entry}" for entry in looked)
        + "\nFix it with one of:\n"
        + "\n".join(f"  - {fix}" for fix in _how_to_fix(name))
    )


# --------------------------------------------------------------------------- decoding


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


def clear_cache() -> None:
    """Forget decoded arrays (frees memory; files are re-read on the next load)."""
    _load_cached.cache_clear()


def _location_files(location: DatasetLocation) -> list[Path]:
    if location.kind == "npz":
        return [location.path]
    found, missing = _idx_files(location.path)
    if missing:
        raise DatasetNotFoundError(f"{location.path}: missing {', '.join(missing)}")
    return [found[role] for role in IDX_FILES]


def load_dataset(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    allow_download: bool = True,
    debian_dirs: Sequence[str | os.PathLike[str]] | None = None,
    keras_homes: Sequence[str | os.PathLike[str]] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_test, y_test)): x float32 (N, 784) in [0, 1], y int64 in 0..9.

    The arrays are cached per process and read-only; `.copy()` them to modify.
    """
    _, (x_train, y_train, x_test, y_test) = _locate_and_load(name, data_dir, allow_download, debian_dirs, keras_homes)
    return (x_train, y_train), (x_test, y_test)


def _locate_and_load(
    name: str,
    data_dir: str | os.PathLike[str] | None,
    allow_download: bool,
    debian_dirs: Sequence[str | os.PathLike[str]] | None,
    keras_homes: Sequence[str | os.PathLike[str]] | None,
) -> tuple[DatasetLocation, tuple[np.ndarray, ...]]:
    """Where the data set is, and its four cached read-only arrays."""
    location = find_dataset_dir(
        name, data_dir, allow_download=allow_download, debian_dirs=debian_dirs, keras_homes=keras_homes
    )
    return location, _load_cached(name, location.kind, _fingerprint(_location_files(location)))


# --------------------------------------------------------------------------- splitting


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
    data_dir: str | os.PathLike[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    *,
    allow_download: bool = True,
    debian_dirs: Sequence[str | os.PathLike[str]] | None = None,
    keras_homes: Sequence[str | os.PathLike[str]] | None = None,
) -> Splits:
    """Load `name` and hold out a stratified validation split (seeded by `seed`).

    `limit` keeps a stratified sample of `limit` training examples (before the split) and
    a proportional head of the test set, so smoke tests run in seconds.
    """
    location, (x_train, y_train, x_test, y_test) = _locate_and_load(
        name, data_dir, allow_download, debian_dirs, keras_homes
    )
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
