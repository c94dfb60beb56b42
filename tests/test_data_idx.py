"""tune_mlp.data.idx on real files: IDX decoding and encoding, and the errors that name file and bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from idx_files import FILE_NAMES, fake_arrays, idx_bytes, write_fake_dataset, write_idx_file

from tune_mlp.data import (
    DataSources,
    IDXFormatError,
    load_dataset,
    read_idx,
    write_idx,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.usefixtures("isolated_data_env")  # no data dir or proxy from the shell


# --------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    arrays = fake_arrays(n_train=30, n_test=10, seed=3)
    suffix = ".gz" if gz else ""
    for role, array in arrays.items():
        path = write_idx_file(tmp_path / f"{FILE_NAMES[role]}{suffix}", array)
        decoded = read_idx(path)
        assert decoded.dtype == np.uint8
        np.testing.assert_array_equal(decoded, array)


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    labels = np.arange(10, dtype=np.uint8)
    gz_without_suffix = write_idx_file(tmp_path / "labels", labels, gz=True)
    plain_with_suffix = write_idx_file(tmp_path / "labels.gz", labels, gz=False)
    np.testing.assert_array_equal(read_idx(gz_without_suffix), labels)
    np.testing.assert_array_equal(read_idx(plain_with_suffix), labels)


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_write_idx_matches_the_format(tmp_path: Path, name: str) -> None:
    images = fake_arrays(seed=1)["train_images"]
    path = write_idx(tmp_path / name, images)
    raw = path.read_bytes()
    if name.endswith(".gz"):
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw == idx_bytes(images)
    np.testing.assert_array_equal(read_idx(path), images)


def test_write_idx_rejects_non_byte_data(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsigned bytes"):
        write_idx(tmp_path / "x", np.zeros((2, 28, 28), dtype=np.float32))
    with pytest.raises(ValueError, match="unsigned bytes"):
        write_idx(tmp_path / "y", np.array([1, 300]))
    with pytest.raises(ValueError, match="1-D label array or a 3-D"):
        write_idx(tmp_path / "z", np.zeros((2, 784), dtype=np.uint8))
    # Integer data that fits in a byte is accepted.
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "ok", np.array([0, 9]))), [0, 9])


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_file_names_file_and_byte_counts(tmp_path: Path, gz: bool) -> None:
    directory = write_fake_dataset(tmp_path / "d", n_train=60, gz=False)
    images = directory / FILE_NAMES["train_images"]
    raw = images.read_bytes()
    truncated = raw[: 16 + 1000]
    if gz:
        images.unlink()
        images = directory / f"{FILE_NAMES['train_images']}.gz"
        images.write_bytes(gzip.compress(truncated))
    else:
        images.write_bytes(truncated)

    with pytest.raises(IDXFormatError) as excinfo:
        read_idx(images)
    message = str(excinfo.value)
    assert str(images) in message
    assert "expected 47040 bytes of pixels" in message
    assert "found 1000" in message

    # The loader surfaces the same error, never a numpy reshape traceback.
    with pytest.raises(IDXFormatError, match="found 1000"):
        load_dataset("fashion_mnist", DataSources(directory, allow_download=False))


def test_truncated_gzip_stream(tmp_path: Path) -> None:
    path = write_idx_file(tmp_path / "labels.gz", np.arange(5000, dtype=np.uint8) % 10)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(IDXFormatError, match="gzip") as excinfo:
        read_idx(path)
    assert str(path) in str(excinfo.value)


def test_trailing_bytes_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(IDXFormatError, match=r"expected 10 bytes of labels .*found 12"):
        read_idx(path)


@pytest.mark.parametrize(
    ("header", "magic", "why"),
    [
        (b"\x00\x00\x08\x02", "0x00000802", "2 dimensions"),
        (b"\x00\x00\x0d\x03", "0x00000D03", "data type byte 0x0D"),
        (b"PK\x03\x04", "0x504B0304", "not an IDX file"),
    ],
)
def test_wrong_magic_names_the_magic(tmp_path: Path, header: bytes, magic: str, why: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(header + b"\x00" * 64)
    with pytest.raises(IDXFormatError) as excinfo:
        read_idx(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert magic in message
    assert why in message
    assert "0x00000803" in message  # says what was expected


def test_tiny_and_header_truncated_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(IDXFormatError, match="too short for an IDX header"):
        read_idx(empty)
    short_header = tmp_path / "short"
    short_header.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(IDXFormatError, match="header truncated"):
        read_idx(short_header)
