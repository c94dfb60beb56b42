"""Synthetic search tables and a PNG check for the analysis tests: real pandas frames shaped like an Experiment's."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLASS_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def png_pixels(path: Path) -> np.ndarray:
    """The picture as an (h, w, 3) uint8 array."""
    return (mpimg.imread(path)[..., :3] * 255).round().astype(np.uint8)


def count_colour(path: Path, hex_colour: str, tolerance: int = 12) -> int:
    """How many pixels are (nearly) this colour: a drawn element's footprint."""
    target = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(png_pixels(path).astype(int) - target).max(axis=-1) <= tolerance).sum())


def assert_real_png(path: Path, min_bytes: int = 5_000, min_width: int = 300) -> None:
    path = Path(path)
    assert path.is_file(), path
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    assert len(data) > min_bytes, (path, len(data))
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= min_width, (path, image.shape)
    colours = np.unique((image[..., :3].reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert len(colours) > 20, (path, len(colours))


def make_trials(n: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, -1, n)
    trials = pd.DataFrame(
        {
            "trial_id": [f"trial_{i:02d}" for i in range(n)],
            "status": ["TERMINATED"] * (n - 1) + ["ERROR"],
            "stopped_early": [i % 3 == 1 for i in range(n)],
            "val_accuracy": 0.8 + 0.02 * np.arange(n),
            "epochs": [3 if i % 3 == 1 else 8 for i in range(n)],
            "training_seconds": rng.uniform(10, 60, n),
            "config/learning_rate": lr,
            "config/num_layers": rng.integers(1, 5, n),
            "config/optimizer": rng.choice(["sgd", "adam", "nadam"], n),
            "config/activation": ["relu", "tanh"] * (n // 2) + ["relu"] * (n % 2),
            "config/dropout": rng.uniform(0, 0.5, n),
            "config/weight_decay": [0.0, 1e-5, 1e-3, 0.0, 1e-4, 1e-2][:n] * (n // 6) + [0.0] * (n % 6),
            "config/batch_size": [32] * n,  # constant: must be dropped
            "config/lr_schedule": ["constant"] * n,  # constant: must be dropped
        }
    )
    trials.loc[n - 1, "val_accuracy"] = np.nan  # the errored/diverged trial
    trials["val_loss"] = 1.5 - trials["val_accuracy"]  # lowest loss = highest accuracy: trial_04
    return trials


def make_histories(trials: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    clock = 0.0
    for _, trial in trials.iterrows():
        final = trial["val_accuracy"] if np.isfinite(trial["val_accuracy"]) else 0.1
        for epoch in range(1, int(trial["epochs"]) + 1):
            clock += rng.uniform(2, 6)
            val = final - 0.25 * np.exp(-0.6 * epoch) + rng.normal(0, 0.003)
            rows.append(
                {
                    "trial_id": trial["trial_id"],
                    "epoch": epoch,
                    "val_accuracy": np.nan if not np.isfinite(trial["val_accuracy"]) and epoch > 1 else val,
                    "val_loss": 1.5 - val,
                    "train_loss": 1.4 - val,
                    "train_accuracy": val + 0.02,
                    "wall_time": clock,
                }
            )
    return pd.DataFrame(rows)
