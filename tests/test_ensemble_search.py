"""Ensembles of a real search's kept checkpoints (the session's smoke search, conftest): chosen on the search's own
validation split, reproducibly, without reading the test set; exported as one model whose Keras, TFLite and numpy
outputs agree and equal the weighted average of its members'."""

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

from tune_mlp.deploy import members as kept
from tune_mlp.deploy.ensemble import accuracy
from tune_mlp.deploy.model_source import softmax
from tune_mlp.mlp.checkpoint import load_checkpoint
from tune_mlp.mlp.model import numpy_logits

pytestmark = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
N_TEST = 500
SIZE = 4  # picks of the exported ensemble: more than one member, whatever the best point would have been


@pytest.fixture(scope="module")
def experiment(smoke_search) -> Path:
    members = kept.kept_checkpoints(smoke_search.path)[1]
    assert len(members) >= 2, "the smoke search keeps too few checkpoints to make an ensemble"
    return smoke_search.path


@pytest.fixture(scope="module")
def exported(experiment: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    from tune_mlp.export import export_ensemble

    out = tmp_path_factory.mktemp("export") / "ensemble"
    return out, export_ensemble(experiment, out, size=SIZE)


def test_the_validation_split_is_the_one_the_trials_were_scored_on(experiment: Path) -> None:
    from tune_mlp.search.tuner import SMOKE_TRAIN_EXAMPLES

    assert kept.SMOKE_TRAIN_EXAMPLES == SMOKE_TRAIN_EXAMPLES
    ensemble = kept.select_from_search(experiment, candidates="kept")  # every kept checkpoint
    for member, probabilities in zip(ensemble.members, ensemble.val_probabilities):
        # float64 numpy against the trial's float32 TensorFlow: an example on the edge may flip, no more
        assert accuracy(probabilities, ensemble.y_val) == pytest.approx(member.score, abs=1.5 / len(ensemble.y_val))


def test_the_candidates_are_the_best_checkpoint_of_each_trial_by_default(experiment: Path) -> None:
    _, every = kept.kept_checkpoints(experiment)
    trials = {m.trial_id for m in every}
    ensemble = kept.select_from_search(experiment)
    assert ensemble.candidates == "best-of-trial" and len(trials) >= 2 and len(every) > len(trials)
    assert sorted(m.trial_id for m in ensemble.members) == sorted(trials)
    for member in ensemble.members:
        assert member.score == max(m.score for m in every if m.trial_id == member.trial_id)
    assert (
        ensemble.described
        == f"the best checkpoint of each of its {len(trials)} trials (of {len(every)} kept checkpoints)"
    )
    everything = kept.select_from_search(experiment, candidates="kept")
    assert [m.checkpoint for m in everything.members] == [m.checkpoint for m in every]
    assert everything.described == f"all its {len(every)} kept checkpoints"
    single = everything.members[everything.best]
    assert ensemble.members[ensemble.best].checkpoint == single.checkpoint  # the same single best either way


def test_selection_is_reproducible(experiment: Path) -> None:
    first, second = kept.select_from_search(experiment), kept.select_from_search(experiment)
    assert first.selection == second.selection
    assert [m.checkpoint for m in first.members] == [m.checkpoint for m in second.members]
    assert first.weights.sum() == pytest.approx(1.0)


def test_choosing_never_reads_the_test_set(experiment: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The selection gets the validation labels; the test set is read only after the choice (analysis and export)."""
    from analysis.ensemble_report import compare
    from tune_mlp.export import export_ensemble

    events: list[tuple[str, object]] = []
    real_validation, real_select, real_test = kept.validation_split, kept.select_ensemble, kept.load_test_set

    def validation_split(*args, **kwargs):
        x, y = real_validation(*args, **kwargs)
        events.append(("validation", y))
        return x, y

    def select_ensemble(probabilities, labels, *args, **kwargs):
        events.append(("selecting", labels))
        selection = real_select(probabilities, labels, *args, **kwargs)
        events.append(("selected", None))
        return selection

    def load_test_set(*args, **kwargs):
        events.append(("test set", None))
        return real_test(*args, **kwargs)

    monkeypatch.setattr(kept, "validation_split", validation_split)
    monkeypatch.setattr(kept, "select_ensemble", select_ensemble)
    monkeypatch.setattr(kept, "load_test_set", load_test_set)
    for run in (lambda: compare(str(experiment), None), lambda: export_ensemble(experiment, tmp_path / "out")):
        events.clear()
        run()
        assert [name for name, _ in events] == ["validation", "selecting", "selected", "test set"]
        assert events[1][1] is events[0][1]  # the labels chosen on are the validation split's, nothing else


def test_export_predicts_the_weighted_average_of_its_members(exported: tuple[Path, dict]) -> None:
    import keras

    from tune_mlp.data import load_dataset
    from tune_mlp.deploy.keras_model import tflite_predict

    out, info = exported
    members = info["ensemble"]["members"]
    assert len(members) > 1 and sum(m["picks"] for m in members) == SIZE
    assert [m["weight"] for m in members] == [m["picks"] / SIZE for m in members]
    _, (x_test, _) = load_dataset("fashion_mnist")
    x = np.asarray(x_test[:N_TEST])
    expected = np.zeros((N_TEST, 10))
    for m in members:  # each member straight from its checkpoint, through the numpy forward pass
        checkpoint = load_checkpoint(m["checkpoint"])
        expected += m["weight"] * softmax(numpy_logits(checkpoint.weights, x, checkpoint.config.activation))
    images = x.reshape(-1, 28, 28)
    from_keras = keras.models.load_model(out / "model.keras").predict(images, verbose=0)
    from_tflite = tflite_predict((out / "model.tflite").read_bytes(), images)
    np.testing.assert_allclose(from_keras, expected, atol=1e-5)
    np.testing.assert_allclose(from_tflite, expected, atol=1e-5)
    np.testing.assert_allclose(from_tflite, from_keras, atol=1e-5)


def test_export_json_and_model_card_name_every_member(exported: tuple[Path, dict]) -> None:
    from tune_mlp.data import load_dataset

    out, info = exported
    assert json.loads((out / "export.json").read_text()) == info
    assert info["source"]["kind"] == "ensemble" and info["config"] == info["ensemble"]["members"][0]["config"]
    _, (_, y_test) = load_dataset("fashion_mnist")
    assert info["metrics"]["test_examples"] == len(y_test)
    card = (out / "model_card.md").read_text()
    for m in info["ensemble"]["members"]:
        assert f"| {m['trial_id']} | {m['epoch']} | {m['weight']:.4f} | {m['picks']} |" in card
        assert f"`{m['checkpoint']}`" in card
    assert f"| {info['metrics']['test_accuracy']:.4f} |" in card
    assert f"chosen among {info['ensemble']['candidates']} by" in card.replace("\n", " ")


def test_a_one_member_choice_is_named_in_the_singular(experiment: Path, tmp_path: Path, capsys) -> None:
    """--ensemble-size 1 keeps one checkpoint: the card and the command's line say "1 checkpoint", not "1 MLPs"."""
    from tune_mlp.export import main

    assert main([str(experiment), "--ensemble", "--ensemble-size", "1", "--out", str(tmp_path / "one")]) == 0
    printed = capsys.readouterr().out
    info = json.loads((tmp_path / "one" / "export.json").read_text())
    member = info["ensemble"]["members"][0]
    assert len(info["ensemble"]["members"]) == 1 and member["weight"] == 1.0
    assert f"the ensemble of 1 checkpoint ({member['trial_id']}@{member['epoch']} 1.00)" in printed
    card = (tmp_path / "one" / "model_card.md").read_text()
    assert card.startswith("# Model card: tune_mlp MLP on fashion_mnist, chosen by ensemble selection\n")
    assert "The softmax output of one checkpoint of the search" in card and ": 1 pick, weight = picks / 1." in card
    assert "1 MLPs" not in card and "1 checkpoints" not in card


def test_a_several_member_card_counts_them_in_the_plural(exported: tuple[Path, dict]) -> None:
    out, info = exported
    count = len(info["ensemble"]["members"])
    card = (out / "model_card.md").read_text()
    assert card.startswith(f"# Model card: tune_mlp ensemble of {count} MLPs on fashion_mnist\n")
    assert f"softmax outputs of {count} checkpoints" in card and f": {SIZE} picks, weight = picks / {SIZE}." in card


def test_predict_takes_the_ensemble_unchanged(exported: tuple[Path, dict], tmp_path: Path) -> None:
    import keras
    from PIL import Image

    from tune_mlp.data import load_dataset
    from tune_mlp.predict import predict_files

    out, _ = exported
    _, (x_test, _) = load_dataset("fashion_mnist")
    Image.fromarray((x_test[0].reshape(28, 28) * 255).round().astype(np.uint8)).save(tmp_path / "image.png")
    rows, problems = predict_files(out, [str(tmp_path / "image.png")], k=3, invert=True)
    assert problems == [] and len(rows) == 1
    expected = keras.models.load_model(out / "model.keras").predict(x_test[:1].reshape(1, 28, 28), verbose=0)[0]
    assert rows[0]["top"][0]["label"] == int(expected.argmax())
    assert rows[0]["top"][0]["probability"] == pytest.approx(float(expected.max()), abs=1e-5)


def test_the_ensemble_loads_without_tune_mlp(exported: tuple[Path, dict], tmp_path: Path) -> None:
    out, info = exported
    script = tmp_path / "load.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.modules["tune_mlp"] = None  # the editable install would make it importable even under -I
            import keras
            model = keras.models.load_model({str(out / "model.keras")!r})
            print(sorted({{type(layer).__name__ for layer in model.layers}}))
            """
        )
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-I", str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "['Add', 'Dense', 'Flatten', 'InputLayer', 'Rescaling']"


def test_pick_exports_the_smallest_checkpoint_good_enough(experiment: Path, tmp_path: Path) -> None:
    from tune_mlp.export import export_pick

    record, members = kept.kept_checkpoints(experiment)
    best = max(members, key=lambda m: m.score)
    info = export_pick(experiment, tmp_path / "best", "smallest-within", 0.0)  # nothing but the best is within 0
    assert (info["source"]["checkpoint"], info["source"]["pick"]["score"]) == (best.checkpoint, best.score)
    info = export_pick(experiment, tmp_path / "any", "smallest-within", 1.0)  # every checkpoint is within 1
    smallest = min(m.parameters for m in members)
    assert info["source"]["pick"]["parameters"] == smallest
    assert load_checkpoint(info["source"]["checkpoint"]).config.to_dict() == info["config"]
    assert sum(w.size for w in load_checkpoint(info["source"]["checkpoint"]).weights) == smallest


def test_analysis_reports_the_ensemble_and_the_front(experiment: Path, tmp_path: Path) -> None:
    from analysis.analyze import analyze

    summary = analyze(str(experiment), tmp_path)
    ensemble, pareto = summary["ensemble"], summary["pareto"]
    assert set(ensemble["models"]) == {"single best", "ensemble"}
    single = ensemble["models"]["single best"]
    assert single["test_accuracy"] == pytest.approx(summary["best"]["test_accuracy"], abs=2e-4)  # float64 vs float32
    assert ensemble["single_best"]["checkpoint"] == summary["best"]["checkpoint"]
    assert ensemble["models"]["ensemble"]["val_loss"] <= single["val_loss"] + 1e-12  # the selection's guarantee
    assert pareto["best"]["checkpoint"] == summary["best"]["checkpoint"]
    assert pareto["smallest_within"]["parameters"] <= pareto["best"]["parameters"]
    assert pareto["checkpoints"] == len(kept.kept_checkpoints(experiment)[1])
    report = (tmp_path / "report.md").read_text()
    for heading in ("## Ensemble of the kept checkpoints", "## Accuracy against size and speed"):
        assert heading in report
    for picture in ("ensemble_trajectory.png", "pareto.png"):
        assert (tmp_path / picture).stat().st_size > 10_000
