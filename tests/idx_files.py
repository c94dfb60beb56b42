"""Write small but real IDX datasets for tests, independently of tune_mlp.data.write_idx.

The writer is deliberately separate from the code under test so a round trip checks the
reader against the file format, not against itself.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Unsigned-byte IDX encoding of a 1-D or 3-D uint8 array (big-endian header)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx_file(path: Path, array: np.ndarray, gz: bool | None = None) -> Path:
    """Write `array` to `path`; gzip when `gz` is true (default: when the name ends in .gz)."""
    data = idx_bytes(array)
    if gz if gz is not None else path.name.endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def fake_arrays(n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Random 28x28 uint8 images and labels in which every class 0..9 appears."""
    if min(n_train, n_test) < 10:
        raise ValueError("need at least 10 examples per split to cover all 10 classes")
    rng = np.random.default_rng(seed)

    def labels(n: int) -> np.ndarray:
        return rng.permutation(np.arange(n) % 10).astype(np.uint8)

    return {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": labels(n_train),
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": labels(n_test),
    }


def write_fake_dataset(directory: Path, n_train: int = 60, n_test: int = 20, gz: bool = True, seed: int = 0) -> Path:
    """Write the four standard IDX files (optionally .gz) into `directory` and return it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for role, array in fake_arrays(n_train, n_test, seed).items():
        write_idx_file(directory / f"{FILE_NAMES[role]}{suffix}", array, gz=gz)
    return directory
