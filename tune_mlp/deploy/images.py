"""Image files to the network's input: grayscale, 28×28, a light object on a dark background, pixels in [0, 1].

Fashion-MNIST and MNIST show a light object on a black background. Photos and drawings are usually the
opposite, so an image whose border (the outermost ring of pixels of the 28×28 result) averages above
``LIGHT_BACKGROUND`` is inverted; ``invert=False`` turns that off. Transparent pixels are laid on white
first. The image is resized to 28×28 as a whole (the aspect ratio is not kept): by area averaging when
shrinking, so an image enlarged from 28×28 by an integer factor comes back exactly, bilinear otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tune_mlp.data import IMAGE_SIDE
from tune_mlp.errors import UserInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
LIGHT_BACKGROUND = 0.5  # border mean above this: light background, so invert


class ImageInputError(UserInputError, ValueError):
    """One input that cannot be predicted (missing, not an image, an empty folder); the others still are."""


@dataclass(frozen=True)
class PreparedImage:
    path: Path
    pixels: np.ndarray  # (784,) float32 in [0, 1], light object on dark
    inverted: bool


def image_paths(inputs: Iterable[str | Path]) -> tuple[list[Path], list[ImageInputError]]:
    """Files given, and the image files of folders given (sorted, not recursive); a problem per bad input."""
    paths: list[Path] = []
    problems: list[ImageInputError] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                problems.append(ImageInputError(f"{item}: no image files in this folder ({', '.join(IMAGE_SUFFIXES)})"))
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            problems.append(ImageInputError(f"{item}: no such file or folder"))
    return paths, problems


def read_grayscale(path: Path) -> np.ndarray:
    """The file as a 28×28 float array in [0, 1] (0 black), before any inversion."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            gray = image.convert("L")
    except UnidentifiedImageError:
        raise ImageInputError(f"{path}: not an image Pillow can read (PNG, JPEG, ...)") from None
    except OSError as error:
        raise ImageInputError(f"{path}: damaged image ({error})") from None
    shrinking = gray.width >= IMAGE_SIDE and gray.height >= IMAGE_SIDE
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    small = gray.resize((IMAGE_SIDE, IMAGE_SIDE), resample)
    return np.asarray(small, np.float32) / np.float32(255.0)


def border_mean(pixels: np.ndarray) -> float:
    """Mean of the outermost ring of a 2-D image: what decides whether the background is light."""
    ring = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    return float(ring.mean())


def prepare_image(path: Path, invert: bool = True) -> PreparedImage:
    pixels = read_grayscale(path)
    flip = invert and border_mean(pixels) > LIGHT_BACKGROUND
    if flip:
        pixels = np.float32(1.0) - pixels
    return PreparedImage(path, pixels.reshape(-1), flip)
