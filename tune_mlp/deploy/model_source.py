"""What a user may point export, predict and analysis at: a search, a training run, a checkpoint or an export.

    experiment folder   ray_results/NAME (experiment_state-*.json): the best epoch over all trials
    training run        the --output of python -m tune_mlp.train (metrics.json naming its best checkpoint/)
    checkpoint          config.json + weights.npz
    export              the --out of python -m tune_mlp.export (model.keras + export.json), or its model.keras

``resolve_model`` says which it is (or one clear error); ``load_classifier`` gives the network behind it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tune_mlp import storage
from tune_mlp.config import TrainConfig
from tune_mlp.errors import UserInputError
from tune_mlp.mlp.checkpoint import CONFIG_FILE, WEIGHTS_FILE  # no TensorFlow
from tune_mlp.records import BestResult, SearchRecord

EXPORT_INFO = "export.json"  # what the export was made from; marks a folder as ours
KERAS_FILE = "model.keras"
# Not imported from tune_mlp.mlp.training: it loads TensorFlow, and a wrong path should fail at once with one
# line, not after TensorFlow's start-up log (tests check the name agrees).
TRAIN_METRICS = "metrics.json"


class ModelPathError(UserInputError, ValueError):
    """A path that is none of the model sources; the message lists what is accepted."""


@dataclass(frozen=True)
class ModelSource:
    kind: str  # experiment | training run | checkpoint | export
    path: Path | str  # what the user gave (a URI stays a str: only an experiment)
    model_dir: Path | str  # the checkpoint folder (a URI for an experiment in object storage), or the export folder
    metrics: dict[str, Any]  # what is known of its scores (val_accuracy, test_accuracy, epoch, trial_id)

    def describe(self) -> str:
        where = f"{self.kind} {self.path}"
        if "trial_id" in self.metrics:
            where += f", trial {self.metrics['trial_id']} epoch {self.metrics.get('epoch')}"
        return where


def best_of_experiment(experiment: Path | str) -> BestResult:
    """The best epoch over all trials of a search, by the search's own metric, as analysis picks it."""
    from tune_mlp.search.results import best_result, load_results

    record = SearchRecord.load(str(experiment)) or SearchRecord()
    return best_result(load_results(experiment, record), record.metric, record.mode)


def _metrics(best: BestResult) -> dict[str, Any]:
    """What is known of a best epoch's scores, keyed like the trials' reports."""
    known = {best.metric: best.score, "epoch": best.epoch, "trial_id": best.trial_id}
    known |= {"test_accuracy": best.test_accuracy, "test_loss": best.test_loss}
    return {key: value for key, value in known.items() if value is not None}


def resolve_model(path: str | Path) -> ModelSource:
    if storage.is_uri(str(path)):  # object storage holds searches (a model of its own is a local folder)
        if not storage.is_experiment(str(path)):
            raise ModelPathError(
                f"{path} is not a Ray Tune experiment (no experiment_state-*.json): give the URI of a search, "
                "e.g. s3://bucket/ray_results/<name>"
            )
        best = best_of_experiment(str(path))
        return ModelSource("experiment", str(path), best.checkpoint, _metrics(best))
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelPathError(f"{path} does not exist: give an experiment, a training run, a checkpoint or an export")
    if path.is_file() and path.name == KERAS_FILE and (path.parent / EXPORT_INFO).is_file():
        path = path.parent
    if path.is_dir():
        if (path / EXPORT_INFO).is_file() and (path / KERAS_FILE).is_file():
            info = json.loads((path / EXPORT_INFO).read_text())
            return ModelSource("export", path, path, dict(info.get("metrics", {})))
        if list(path.glob("experiment_state-*.json")):
            best = best_of_experiment(path)
            return ModelSource("experiment", path, Path(best.checkpoint), _metrics(best))
        summary = json.loads((path / TRAIN_METRICS).read_text()) if (path / TRAIN_METRICS).is_file() else {}
        if isinstance(summary.get("best"), dict):
            best = BestResult.from_dict(summary["best"])
            # the run folder may have moved since: its checkpoint is the folder of that name inside it
            return ModelSource("training run", path, path / Path(best.checkpoint).name, _metrics(best))
        if (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file():
            state = path / "state.json"
            metrics = json.loads(state.read_text()).get("metrics", {}) if state.is_file() else {}
            return ModelSource("checkpoint", path, path, dict(metrics))
    raise ModelPathError(
        f"{path} is not a tune_mlp model: give an experiment folder (experiment_state-*.json), a "
        f"tune_mlp.train output ({TRAIN_METRICS} + checkpoint/), a checkpoint ({CONFIG_FILE} + {WEIGHTS_FILE}) "
        f"or a tune_mlp.export folder ({KERAS_FILE} + {EXPORT_INFO})"
    )


@dataclass(frozen=True)
class Classifier:
    """The network behind a source: its config and a function from (N, 784) pixels to class probabilities."""

    source: ModelSource
    config: TrainConfig
    probabilities: Callable[[np.ndarray], np.ndarray]
    weights: list[np.ndarray] | None = None  # the checkpoint's arrays (None for an export)

    @property
    def dataset(self) -> str:
        return self.config.dataset


def load_classifier(source: ModelSource) -> Classifier:
    """Checkpoints run through the numpy forward pass (float64, like the tests' reference); exports through Keras."""
    if source.kind == "export":
        return _keras_classifier(source)
    from tune_mlp.mlp.checkpoint import load_checkpoint  # lazy: TensorFlow (see above)
    from tune_mlp.mlp.model import numpy_logits

    checkpoint = load_checkpoint(source.model_dir)
    config, weights = checkpoint.config, checkpoint.weights

    def probabilities(x: np.ndarray) -> np.ndarray:
        return softmax(numpy_logits(weights, x, config.activation))

    return Classifier(source, config, probabilities, weights)


def _keras_classifier(source: ModelSource) -> Classifier:
    import keras

    info = json.loads((source.model_dir / EXPORT_INFO).read_text())
    model = keras.models.load_model(source.model_dir / KERAS_FILE)
    side = model.input_shape[1]

    def probabilities(x: np.ndarray) -> np.ndarray:
        images = np.asarray(x, np.float32).reshape(len(x), side, -1)
        return np.asarray(model.predict(images, verbose=0, batch_size=1024), np.float64)

    return Classifier(source, TrainConfig.from_dict(info["config"]), probabilities)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
