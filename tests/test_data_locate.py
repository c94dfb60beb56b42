"""tune_mlp.data on real files: IDX decoding, dataset look-up, errors and splitting."""

from __future__ import annotations

import gzip
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from idx_files import FILE_NAMES, fake_arrays, idx_bytes, write_fake_dataset, write_idx_file

from tune_mlp.data import (
    CLASS_NAMES,
    DatasetFormatError,
    DatasetNotFoundError,
    DataSources,
    IDXFormatError,
    Splits,
    find_dataset_dir,
    load_dataset,
    load_splits,
    read_idx,
    stratified_split,
    write_idx,
)
from tune_mlp.data import locate as data

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may pick up a data dir or proxy from the developer's shell."""
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, object]:
    """Search options that find nothing and never touch the network."""
    return {
        "allow_download": False,
        "debian_dirs": [tmp_path / "no-debian" / "fashion-mnist"],
        "keras_homes": [tmp_path / "no-keras"],
    }


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


# --------------------------------------------------------------------------- loading


def test_load_dataset_arrays(tmp_path: Path) -> None:
    directory = write_fake_dataset(tmp_path / "fake", n_train=60, n_test=20, seed=5)
    (x_train, y_train), (x_test, y_test) = load_dataset("fashion_mnist", DataSources(directory, allow_download=False))
    raw = fake_arrays(60, 20, seed=5)
    assert x_train.shape == (60, 784) and x_test.shape == (20, 784)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    np.testing.assert_allclose(x_train, raw["train_images"].reshape(60, 784) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_test, raw["test_labels"])
    assert set(np.unique(y_train)) == set(range(10))


def test_loaded_arrays_are_cached_and_read_only(tmp_path: Path) -> None:
    directory = write_fake_dataset(tmp_path / "fake")
    first = load_dataset("fashion_mnist", DataSources(directory, allow_download=False))
    second = load_dataset("fashion_mnist", DataSources(directory, allow_download=False))
    assert first[0][0] is second[0][0]
    with pytest.raises(ValueError, match="read-only"):
        first[0][0][0, 0] = 1.0
    # Rewriting the files invalidates the cache entry.
    time.sleep(0.01)
    write_fake_dataset(directory, n_train=40, seed=9)
    (x_train, _), _ = load_dataset("fashion_mnist", DataSources(directory, allow_download=False))
    assert len(x_train) == 40


def test_count_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    directory = write_fake_dataset(tmp_path / "fake", n_train=60)
    labels = directory / f"{FILE_NAMES['train_labels']}.gz"
    write_idx_file(labels, np.arange(59, dtype=np.uint8) % 10)
    with pytest.raises(DatasetFormatError) as excinfo:
        load_dataset("fashion_mnist", DataSources(directory, allow_download=False))
    message = str(excinfo.value)
    assert "60 images" in message and "59 labels" in message
    assert FILE_NAMES["train_images"] in message and FILE_NAMES["train_labels"] in message


def test_swapped_files_are_a_clear_error(tmp_path: Path) -> None:
    directory = write_fake_dataset(tmp_path / "fake")
    images = directory / f"{FILE_NAMES['test_images']}.gz"
    labels = directory / f"{FILE_NAMES['test_labels']}.gz"
    swap = tmp_path / "swap"
    images.rename(swap)
    labels.rename(images)
    swap.rename(labels)
    with pytest.raises(IDXFormatError, match="swapped"):
        load_dataset("fashion_mnist", DataSources(directory, allow_download=False))


def test_wrong_image_size_and_label_range(tmp_path: Path) -> None:
    directory = write_fake_dataset(tmp_path / "fake")
    write_idx_file(directory / f"{FILE_NAMES['train_images']}.gz", np.zeros((60, 32, 32), np.uint8))
    with pytest.raises(DatasetFormatError, match=r"\(count, 28, 28\)"):
        load_dataset("fashion_mnist", DataSources(directory, allow_download=False))
    directory = write_fake_dataset(tmp_path / "fake2")
    write_idx_file(directory / f"{FILE_NAMES['test_labels']}.gz", np.full(20, 12, np.uint8))
    with pytest.raises(DatasetFormatError, match=r"0\.\.9, found 12\.\.12"):
        load_dataset("fashion_mnist", DataSources(directory, allow_download=False))


def test_unknown_dataset_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="fashion_mnist, mnist"):
        load_dataset("cifar10")


# --------------------------------------------------------------------------- look-up order


def test_data_dir_argument(tmp_path: Path, nowhere: dict[str, object]) -> None:
    directory = write_fake_dataset(tmp_path / "explicit", gz=False)
    location = find_dataset_dir("fashion_mnist", DataSources(directory, **nowhere))
    assert location == ("idx", directory)
    (x_train, _), _ = load_dataset("fashion_mnist", DataSources(str(directory), **nowhere))
    assert len(x_train) == 60


def test_env_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = write_fake_dataset(tmp_path / "from-env", n_train=30)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(directory))
    # Even with the Debian package installed, the env var wins.
    (x_train, _), _ = load_dataset("fashion_mnist", DataSources(allow_download=False))
    assert len(x_train) == 30


def test_explicit_data_dir_beats_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(data.DATA_DIR_ENV, str(write_fake_dataset(tmp_path / "env", n_train=30)))
    explicit = write_fake_dataset(tmp_path / "explicit", n_train=50)
    (x_train, _), _ = load_dataset("fashion_mnist", DataSources(explicit, allow_download=False))
    assert len(x_train) == 50


@pytest.mark.parametrize(
    ("name", "subdir"),
    [("fashion_mnist", "fashion-mnist"), ("fashion_mnist", "fashion_mnist"), ("mnist", "mnist")],
)
def test_parent_dir_with_dataset_subfolder(tmp_path: Path, nowhere: dict[str, object], name: str, subdir: str) -> None:
    write_fake_dataset(tmp_path / "datasets" / subdir)
    location = find_dataset_dir(name, DataSources(tmp_path / "datasets", **nowhere))
    assert location == ("idx", tmp_path / "datasets" / subdir)


def test_parent_dir_does_not_mix_up_datasets(tmp_path: Path, nowhere: dict[str, object]) -> None:
    write_fake_dataset(tmp_path / "datasets" / "mnist")
    with pytest.raises(DatasetNotFoundError):
        find_dataset_dir("fashion_mnist", DataSources(tmp_path / "datasets", **nowhere))


def test_explicit_dir_without_files_is_an_error(tmp_path: Path) -> None:
    directory = tmp_path / "partial"
    directory.mkdir()
    write_idx_file(directory / f"{FILE_NAMES['train_labels']}.gz", np.arange(10, dtype=np.uint8))
    # Debian/Keras are not consulted: the user asked for this directory.
    with pytest.raises(DatasetNotFoundError) as excinfo:
        find_dataset_dir("fashion_mnist", DataSources(directory, allow_download=False))
    message = str(excinfo.value)
    assert str(directory) in message and "--data-dir" in message
    for role in ("train_images", "test_images", "test_labels"):
        assert FILE_NAMES[role] in message
    assert "incomplete" in message


def test_env_dir_that_does_not_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv(data.DATA_DIR_ENV, str(missing))
    with pytest.raises(DatasetNotFoundError) as excinfo:
        find_dataset_dir("fashion_mnist", DataSources(allow_download=False))
    message = str(excinfo.value)
    assert f"${data.DATA_DIR_ENV} {missing}" in message and "does not exist" in message


def test_debian_dir_is_used(tmp_path: Path, nowhere: dict[str, object]) -> None:
    debian = write_fake_dataset(tmp_path / "usr-share" / "fashion-mnist")
    options = {**nowhere, "debian_dirs": [debian]}
    assert find_dataset_dir("fashion_mnist", DataSources(**options)) == ("idx", debian)


def test_keras_cache_idx_and_npz(tmp_path: Path, nowhere: dict[str, object]) -> None:
    keras_home = tmp_path / "keras-home"
    cache = write_fake_dataset(keras_home / "datasets" / "fashion-mnist")
    options = {**nowhere, "keras_homes": [keras_home]}
    assert find_dataset_dir("fashion_mnist", DataSources(**options)) == ("idx", cache)

    raw = fake_arrays(40, 10, seed=2)
    npz = keras_home / "datasets" / "mnist.npz"
    np.savez(
        npz,
        x_train=raw["train_images"],
        y_train=raw["train_labels"],
        x_test=raw["test_images"],
        y_test=raw["test_labels"],
    )
    options["debian_dirs"] = [tmp_path / "no-debian" / "mnist"]
    assert find_dataset_dir("mnist", DataSources(**options)) == ("npz", npz)
    (x_train, y_train), (x_test, _) = load_dataset("mnist", DataSources(**options))
    assert x_train.shape == (40, 784) and x_test.shape == (10, 784)
    np.testing.assert_array_equal(y_train, raw["train_labels"])
    # An explicit path to the npz file works too.
    assert find_dataset_dir("mnist", DataSources(npz, allow_download=False)) == ("npz", npz)


def test_keras_home_env_is_respected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert data.default_keras_homes()[0] == tmp_path / "kh"


def test_missing_everywhere_lists_every_place(tmp_path: Path, nowhere: dict[str, object]) -> None:
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_splits("fashion_mnist", DataSources(**nowhere))
    message = str(excinfo.value)
    assert "'fashion_mnist'" in message
    assert str(tmp_path / "no-debian" / "fashion-mnist") in message
    assert str(tmp_path / "no-keras" / "datasets" / "fashion-mnist") in message
    assert "download via keras.datasets.fashion_mnist: disabled" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message and data.DATA_DIR_ENV in message
    for base in FILE_NAMES.values():
        assert base in message
    assert isinstance(excinfo.value, FileNotFoundError)


def test_missing_mnist_does_not_suggest_the_fashion_package(tmp_path: Path, nowhere: dict[str, object]) -> None:
    options = {**nowhere, "debian_dirs": [tmp_path / "no-debian" / "mnist"]}
    with pytest.raises(DatasetNotFoundError) as excinfo:
        find_dataset_dir("mnist", DataSources(**options))
    message = str(excinfo.value)
    assert "apt-get" not in message
    assert str(tmp_path / "no-keras" / "datasets" / "mnist.npz") in message
    assert "mnist.npz" in message


def test_offline_download_fails_fast(
    tmp_path: Path, nowhere: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead HTTPS proxy makes the online check fail at once, without importing Keras."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{port}")
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as excinfo:
        find_dataset_dir("fashion_mnist", DataSources(**{**nowhere, "allow_download": True}))
    assert time.monotonic() - start < 5
    assert f"download via keras.datasets.fashion_mnist: offline (cannot connect to 127.0.0.1:{port}" in str(
        excinfo.value
    )


def test_importing_data_does_not_import_tensorflow() -> None:
    code = "import sys, tune_mlp.data; assert 'tensorflow' not in sys.modules; assert 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# --------------------------------------------------------------------------- splitting


def test_stratified_split_is_proportional_complete_and_seeded() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(10, size=1003, p=np.linspace(1, 3, 10) / np.linspace(1, 3, 10).sum())
    x = np.arange(len(y))  # the row index, so membership can be tracked
    x_tr, y_tr, x_val, y_val = stratified_split(x, y, 0.2, seed=7)

    assert len(x_val) == round(0.2 * len(y))
    assert set(x_tr).isdisjoint(x_val)
    np.testing.assert_array_equal(np.sort(np.concatenate([x_tr, x_val])), x)
    np.testing.assert_array_equal(y[x_tr], y_tr)
    np.testing.assert_array_equal(y[x_val], y_val)
    for label in range(10):
        ideal = 0.2 * np.sum(y == label)
        assert abs(np.sum(y_val == label) - ideal) <= 1

    again = stratified_split(x, y, 0.2, seed=7)
    np.testing.assert_array_equal(again[2], x_val)
    other = stratified_split(x, y, 0.2, seed=8)
    assert not np.array_equal(other[2], x_val)


def test_stratified_split_rejects_bad_arguments() -> None:
    x, y = np.zeros((10, 2)), np.arange(10) % 2
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(x, y, 0.0, seed=0)
    with pytest.raises(ValueError, match="empty validation set"):
        stratified_split(x, y, 0.01, seed=0)
    with pytest.raises(ValueError, match="rows"):
        stratified_split(x[:5], y, 0.2, seed=0)


def test_load_splits_on_fake_data(tmp_path: Path, nowhere: dict[str, object]) -> None:
    directory = write_fake_dataset(tmp_path / "fake", n_train=100, n_test=40)
    splits = load_splits("fashion_mnist", DataSources(directory, **nowhere), val_fraction=0.2, seed=1)
    assert isinstance(splits, Splits)
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (80, 20, 40)
    assert splits.class_names == CLASS_NAMES["fashion_mnist"] and splits.num_classes == 10
    assert splits.dataset == "fashion_mnist" and splits.source == str(directory)
    assert np.bincount(splits.y_val, minlength=10).tolist() == [2] * 10
    assert "train=80" in repr(splits)
    # Callers get their own arrays, so changing them cannot corrupt the shared cache.
    splits.x_test[0, 0] = 5.0
    assert load_splits("fashion_mnist", DataSources(directory, **nowhere)).x_test[0, 0] <= 1.0

    small = load_splits("fashion_mnist", DataSources(directory, **nowhere), val_fraction=0.2, seed=1, limit=50)
    assert len(small.y_train) + len(small.y_val) == 50 and len(small.y_val) == 10
    assert len(small.y_test) == 20  # proportional: 50/100 of 40
    assert set(np.unique(np.concatenate([small.y_train, small.y_val]))) == set(range(10))
    with pytest.raises(ValueError, match="limit"):
        load_splits("fashion_mnist", DataSources(directory, **nowhere), limit=0)


def test_mnist_class_names() -> None:
    assert CLASS_NAMES["mnist"] == tuple("0123456789")
    assert CLASS_NAMES["fashion_mnist"][0] == "T-shirt/top" and CLASS_NAMES["fashion_mnist"][-1] == "Ankle boot"


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(
    not all((DEBIAN_FASHION / f"{base}.gz").is_file() for base in FILE_NAMES.values()),
    reason=f"real Fashion-MNIST not installed at {DEBIAN_FASHION} (apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_from_debian(tmp_path: Path) -> None:
    assert find_dataset_dir("fashion_mnist", DataSources(allow_download=False, keras_homes=[tmp_path])) == (
        "idx",
        DEBIAN_FASHION,
    )
    (x_train, y_train), (x_test, y_test) = load_dataset(
        "fashion_mnist", DataSources(allow_download=False, keras_homes=[tmp_path])
    )
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert len(y_train) == 60000 and len(y_test) == 10000
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert abs(float(x_train.mean()) - 0.286) < 0.001

    splits = load_splits(
        "fashion_mnist", DataSources(allow_download=False, keras_homes=[tmp_path]), val_fraction=0.1, seed=0
    )
    assert (len(splits.y_train), len(splits.y_val), len(splits.y_test)) == (54000, 6000, 10000)
    assert np.bincount(splits.y_val).tolist() == [600] * 10
