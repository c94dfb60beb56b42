"""``python -m tune_mlp.predict`` on real Fashion-MNIST test images saved as PNG: both polarities, one enlarged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FASHION_DIR, run_module
from PIL import Image

from tune_mlp.data import CLASS_NAMES, load_dataset
from tune_mlp.deploy.images import border_mean, prepare_image
from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.mlp.model import numpy_logits

pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
N_IMAGES = 6
NAMES = CLASS_NAMES["fashion_mnist"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, run_dir: Path) -> tuple[Path, dict[str, str]]:
    """PNG files of real test images: as stored (dark background), inverted (light), one enlarged to 280x280;
    with the class the in-memory model gives each."""
    folder = tmp_path_factory.mktemp("images")
    _, (x_test, _) = load_dataset("fashion_mnist")
    checkpoint = load_checkpoint(run_dir / "checkpoint")
    predicted = numpy_logits(checkpoint.weights, x_test[:N_IMAGES], checkpoint.config.activation).argmax(axis=1)
    expected = {}
    for i in range(N_IMAGES):
        pixels = np.round(x_test[i] * 255).astype(np.uint8).reshape(28, 28)
        Image.fromarray(pixels).save(folder / f"{i}_dark.png")
        Image.fromarray(255 - pixels).save(folder / f"{i}_light.png")
        expected[f"{i}_dark.png"] = expected[f"{i}_light.png"] = NAMES[predicted[i]]
    big = np.kron(np.round(x_test[0] * 255).astype(np.uint8).reshape(28, 28), np.ones((10, 10), np.uint8))
    Image.fromarray(255 - big).save(folder / "0_big_light.png")
    expected["0_big_light.png"] = NAMES[predicted[0]]
    return folder, expected


def test_enlarged_and_inverted_images_come_back_as_the_test_pixels(images) -> None:
    folder, _ = images
    _, (x_test, _) = load_dataset("fashion_mnist")
    for name in ("0_dark.png", "0_light.png", "0_big_light.png"):
        prepared = prepare_image(folder / name)
        assert prepared.inverted == ("light" in name)
        np.testing.assert_allclose(prepared.pixels, x_test[0], atol=1e-6)
    assert border_mean(np.ones((28, 28))) == 1.0


@pytest.mark.parametrize("model", ["checkpoint", "training run", "export"])
def test_cli_predicts_the_in_memory_models_classes(model: str, run_dir: Path, images, tmp_path: Path) -> None:
    folder, expected = images
    source = {"checkpoint": run_dir / "checkpoint", "training run": run_dir, "export": run_dir / "exported"}[model]
    done = run_module("tune_mlp.predict", str(source), str(folder), "--json", "--top-k", "3")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert {Path(row["file"]).name: row["top"][0]["class"] for row in rows} == expected
    for row in rows:
        assert row["inverted"] == ("light" in row["file"])
        probabilities = [p["probability"] for p in row["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)


def test_table_and_csv(run_dir: Path, images, tmp_path: Path) -> None:
    folder, expected = images
    table = tmp_path / "predictions.csv"
    image = str(folder / "1_light.png")
    done = run_module("tune_mlp.predict", str(run_dir), image, "--top-k", "2", "--csv", str(table))
    assert done.returncode == 0, done.stderr[-3000:]
    header, line = done.stdout.splitlines()
    assert header.split() == ["file", "#1", "#2", "inverted"]
    assert line.startswith(str(folder / "1_light.png")) and expected["1_light.png"] in line and line.endswith("yes")
    with table.open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["class_1"] == expected["1_light.png"] and row["inverted"] == "1"
    assert float(row["probability_1"]) >= float(row["probability_2"])


def test_no_invert_keeps_light_backgrounds(run_dir: Path, images) -> None:
    folder, _ = images
    done = run_module("tune_mlp.predict", str(run_dir), str(folder / "2_light.png"), "--json", "--no-invert")
    assert done.returncode == 0 and json.loads(done.stdout)[0]["inverted"] is False


def test_bad_files_are_one_line_each_and_the_others_are_predicted(run_dir: Path, images, tmp_path: Path) -> None:
    folder, expected = images
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    missing = tmp_path / "missing.png"
    done = run_module("tune_mlp.predict", str(run_dir), str(missing), str(not_image), str(folder / "3_dark.png"))
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        f"error: {missing}: no such file or folder",
        f"error: {not_image}: not an image Pillow can read (PNG, JPEG, ...)",
    ]
    assert expected["3_dark.png"] in done.stdout.splitlines()[1]


@pytest.mark.parametrize("case", ["empty folder", "not our model"])
def test_nothing_to_predict_is_one_line_exit_2_nothing_written(case: str, run_dir: Path, images, tmp_path) -> None:
    folder, _ = images
    empty = tmp_path / "empty"
    empty.mkdir()
    model, inputs = (run_dir, empty) if case == "empty folder" else (empty, folder)
    table = tmp_path / "out.csv"
    done = run_module("tune_mlp.predict", str(model), str(inputs), "--csv", str(table))
    expected = "no image files in this folder" if case == "empty folder" else "is not a tune_mlp model"
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected in lines[0], done.stderr
    assert done.stdout == "" and not table.exists()
