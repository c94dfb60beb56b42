"""IDX files, the format Fashion-MNIST and MNIST ship in: read and written on real bytes, every defect named."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from tune_mlp.errors import UserInputError

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


class DatasetFormatError(UserInputError, ValueError):
    """A dataset file exists but its contents are not what the loader needs."""


class IDXFormatError(DatasetFormatError):
    """An IDX file is truncated, corrupt or of the wrong kind; the message names the file."""


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
