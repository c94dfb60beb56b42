"""``python -m tune_mlp.export`` on a real smoke search: Keras without tune_mlp, TFLite, weights and card agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import FASHION_DIR

from tune_mlp.data import CLASS_NAMES, load_dataset
from tune_mlp.deploy.model_source import softmax
from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.mlp.model import numpy_logits

pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
ROOT = Path(__file__).resolve().parents[1]
N_TEST = 500


def run_module(module: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "WANDB_MODE": "offline"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def experiment(smoke_search) -> Path:
    return smoke_search.path  # the session's smoke search (conftest)


@pytest.fixture(scope="module")
def exported(experiment: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "best"
    done = run_module("tune_mlp.export", str(experiment), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"to {out}: model.keras, model.weights.h5, model.tflite, model_card.md, export.json" in done.stdout
    return out


@pytest.fixture(scope="module")
def reference(exported: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test images, labels and the numpy forward pass's probabilities for the exported checkpoint."""
    checkpoint = load_checkpoint(json.loads((exported / "export.json").read_text())["source"]["checkpoint"])
    _, (x_test, y_test) = load_dataset("fashion_mnist")
    x = np.asarray(x_test[:N_TEST])
    return x, y_test[:N_TEST], softmax(numpy_logits(checkpoint.weights, x, checkpoint.config.activation))


def test_the_export_is_the_best_epoch_over_all_trials(experiment: Path, exported: Path) -> None:
    from tune_mlp.search.results import load_experiment

    best = load_experiment(experiment).best  # what python -m analysis reports
    info = json.loads((exported / "export.json").read_text())
    assert info["source"] == {"kind": "experiment", "path": str(experiment), "checkpoint": best.checkpoint}
    assert info["metrics"]["val_accuracy"] == best.score and info["metrics"]["trial_id"] == best.trial_id
    assert info["config"] == load_checkpoint(best.checkpoint).config.to_dict()


def test_keras_model_loads_without_tune_mlp_and_matches_numpy(exported: Path, reference, tmp_path: Path) -> None:
    x, _, expected = reference
    np.save(tmp_path / "images.npy", x.reshape(-1, 28, 28))
    script = tmp_path / "load.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.modules["tune_mlp"] = None  # the editable install would make it importable even under -I
            try:
                import tune_mlp
            except ImportError:
                pass
            else:
                raise SystemExit("tune_mlp is importable")
            import keras, numpy as np
            model = keras.models.load_model({str(exported / "model.keras")!r})
            print(model.input_shape, [type(layer).__name__ for layer in model.layers])
            np.save("probabilities.npy", model.predict(np.load("images.npy"), verbose=0))
            """
        )
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("(None, 28, 28) ['Flatten', 'Dense', 'Dense'")
    np.testing.assert_allclose(np.load(tmp_path / "probabilities.npy"), expected, atol=1e-5)


def test_keras_takes_28x28_images_and_784_pixel_rows_reshaped(exported: Path, reference) -> None:
    import keras

    x, _, expected = reference
    model = keras.models.load_model(exported / "model.keras")
    np.testing.assert_allclose(model.predict(x.reshape(-1, 28, 28), verbose=0), expected, atol=1e-5)
    with pytest.raises(ValueError):  # a Keras 3 model has one input rank: why the card says reshape (N, 784)
        model.predict(x, verbose=0)


def test_tflite_matches_numpy(exported: Path, reference) -> None:
    import tensorflow as tf

    x, _, expected = reference
    interpreter = tf.lite.Interpreter(model_path=str(exported / "model.tflite"))
    (given,) = interpreter.get_input_details()
    assert list(given["shape_signature"]) == [-1, 28, 28]
    interpreter.resize_tensor_input(given["index"], [len(x), 28, 28])
    interpreter.allocate_tensors()
    interpreter.set_tensor(given["index"], x.reshape(-1, 28, 28).astype(np.float32))
    interpreter.invoke()
    output = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_weights_h5_load_into_the_same_architecture(exported: Path, reference) -> None:
    from tune_mlp.config import TrainConfig
    from tune_mlp.export import build_keras_model

    x, _, expected = reference
    info = json.loads((exported / "export.json").read_text())
    config = TrainConfig.from_dict(info["config"])
    zeros = [np.zeros_like(w) for w in load_checkpoint(info["source"]["checkpoint"]).weights]
    model = build_keras_model(config, zeros)
    model.load_weights(exported / "model.weights.h5")
    np.testing.assert_allclose(model.predict(x.reshape(-1, 28, 28), verbose=0), expected, atol=1e-5)


def test_model_card_and_export_json_hold_the_scores(exported: Path) -> None:
    info = json.loads((exported / "export.json").read_text())
    metrics = info["metrics"]
    _, (_, y_test) = load_dataset("fashion_mnist")
    recall = metrics["per_class_recall"]
    assert list(recall) == list(CLASS_NAMES["fashion_mnist"]) and metrics["test_examples"] == len(y_test)
    # accuracy = support-weighted mean of the per-class recalls
    support = np.bincount(y_test, minlength=10)
    assert metrics["test_accuracy"] == pytest.approx(np.dot(list(recall.values()), support) / len(y_test))
    card = (exported / "model_card.md").read_text()
    assert f"| {metrics['test_accuracy']:.4f} |" in card and f"| {metrics['val_accuracy']:.4f} |" in card
    assert f"| Ankle boot | {recall['Ankle boot']:.4f} |" in card
    assert 'keras.models.load_model("model.keras")' in card


@pytest.mark.parametrize("case", ["missing", "not ours", "an export"])
def test_bad_source_is_one_line_exit_2_nothing_written(case: str, exported: Path, tmp_path: Path) -> None:
    source = {"missing": tmp_path / "nope", "not ours": tmp_path, "an export": exported}[case]
    out = tmp_path / "out"
    done = run_module("tune_mlp.export", str(source), "--out", str(out))
    expected = {"missing": "does not exist", "not ours": "is not a tune_mlp model", "an export": "already an export"}
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and expected[case] in lines[0], done.stderr
    assert not out.exists()
