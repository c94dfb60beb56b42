"""tune_mlp.data.locate: where a data set is looked for, in which order, and the message when it is nowhere."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from idx_files import FILE_NAMES, fake_arrays, write_fake_dataset, write_idx_file

from tune_mlp.data import (
    DatasetNotFoundError,
    DataSources,
    find_dataset_dir,
    load_dataset,
    load_splits,
)
from tune_mlp.data import locate as data

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("isolated_data_env")  # no data dir or proxy from the shell


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


def test_offline_download_fails_at_once_without_loading_keras(tmp_path: Path, nowhere: dict[str, object]) -> None:
    """A dead HTTPS proxy makes the online check fail at once: Keras (and TensorFlow) are never imported."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    options = {**nowhere, "allow_download": True}
    code = (
        "import sys\nfrom pathlib import Path\nfrom tune_mlp.data import DataSources, find_dataset_dir\n"
        f"try:\n    find_dataset_dir('fashion_mnist', DataSources(**{options!r}))\n"
        "except Exception as error:\n    print(error)\n"
        "print('imported:', sorted({'keras', 'tensorflow'} & set(sys.modules)))\n"
    ).replace("PosixPath", "Path")
    env = {**os.environ, "HTTPS_PROXY": f"http://127.0.0.1:{port}"}
    env.pop(data.DATA_DIR_ENV, None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert f"download via keras.datasets.fashion_mnist: offline (cannot connect to 127.0.0.1:{port}" in result.stdout
    assert "imported: []" in result.stdout


def test_importing_data_does_not_import_tensorflow() -> None:
    code = "import sys, tune_mlp.data; assert 'tensorflow' not in sys.modules; assert 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
