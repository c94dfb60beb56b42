"""tune_mlp.data.splits on real files: arrays, the cache, format errors, the stratified split, the real data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from idx_files import FILE_NAMES, fake_arrays, write_fake_dataset, write_idx_file

from tune_mlp.data import (
    CLASS_NAMES,
    DatasetFormatError,
    DataSources,
    IDXFormatError,
    Splits,
    find_dataset_dir,
    load_dataset,
    load_splits,
    stratified_split,
)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.usefixtures("isolated_data_env")  # no data dir or proxy from the shell


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
