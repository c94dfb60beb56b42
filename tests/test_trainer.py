"""The compiled training loop on real TensorFlow: learning, reproducibility, resume, divergence, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import numpy_accuracy

from tune_mlp.config import OPTIMIZER_NAMES, TrainConfig
from tune_mlp.mlp.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tune_mlp.mlp.trainer import Trainer, learning_rate_at, train_program

SMALL = {"num_layers": 2, "hidden_size": 32, "batch_size": 50}
# A structure no other test here trains, so its programs' tracing counts are this module's own.
SHARED = {"num_layers": 2, "hidden_size": 24, "batch_size": 40, "optimizer": "adam", "dropout": 0.1,
          "weight_decay": 1e-4, "epochs": 1}  # fmt: skip


@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_every_optimizer_learns(tiny_splits, optimizer: str) -> None:
    lr = {"sgd": 0.1, "momentum": 0.05, "nag": 0.05}.get(optimizer, 0.003)
    trainer = Trainer(TrainConfig(**SMALL, optimizer=optimizer, learning_rate=lr, epochs=3), tiny_splits)
    results = list(trainer.epochs())
    assert len(results) == 3
    assert results[-1].val_accuracy > 0.6, results[-1]  # chance is 0.1
    assert results[-1].train_loss < results[0].train_loss


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_losses_train_with_dropout_and_weight_decay(tiny_splits, loss: str) -> None:
    config = TrainConfig(**SMALL, loss=loss, dropout=0.2, weight_decay=1e-4, epochs=3, learning_rate=3e-3)
    last = list(Trainer(config, tiny_splits).epochs())[-1]
    assert last.val_accuracy > 0.6 and not last.diverged


@pytest.mark.slow  # trains whole runs more than once: make test, not make test-fast
def test_seeded_runs_are_reproducible(tiny_splits) -> None:
    config = TrainConfig(**SMALL, epochs=2, dropout=0.1)
    first, second = Trainer(config, tiny_splits), Trainer(config, tiny_splits)
    a, b = list(first.epochs()), list(second.epochs())
    assert [r.val_accuracy for r in a] == [r.val_accuracy for r in b]
    for w1, w2 in zip(first.weights(), second.weights()):
        np.testing.assert_array_equal(w1, w2)
    other = Trainer(TrainConfig(**SMALL, epochs=2, dropout=0.1, seed=1), tiny_splits)
    list(other.epochs())
    assert not np.array_equal(other.weights()[0], first.weights()[0])


@pytest.mark.slow  # trains whole runs more than once: make test, not make test-fast
@pytest.mark.parametrize("optimizer", ["adam", "nadam", "momentum"])
def test_resume_from_checkpoint_continues_exactly(tiny_splits, tmp_path, optimizer: str) -> None:
    config = TrainConfig(**SMALL, optimizer=optimizer, epochs=3, lr_schedule="cosine", dropout=0.1)
    straight = Trainer(config, tiny_splits)
    list(straight.epochs())

    interrupted = Trainer(config, tiny_splits)
    interrupted.train_epoch()
    interrupted.train_epoch()
    save_checkpoint(tmp_path / "ckpt", interrupted.checkpoint())
    resumed = Trainer(config, tiny_splits, resume=load_checkpoint(tmp_path / "ckpt"))
    assert resumed.epoch == 2 and len(resumed.history) == 2
    results = list(resumed.epochs())
    assert [r.epoch for r in results] == [3]
    for w1, w2 in zip(straight.weights(), resumed.weights()):
        np.testing.assert_allclose(w1, w2, rtol=1e-6, atol=1e-7)


def test_nan_loss_stops_the_run_with_a_status(tiny_splits) -> None:
    config = TrainConfig(**SMALL, optimizer="sgd", learning_rate=1e6, epochs=5)
    results = list(Trainer(config, tiny_splits).epochs())
    assert results[-1].diverged
    assert len(results) < 5


def test_checkpoint_round_trip_gives_same_predictions(tiny_splits, tmp_path) -> None:
    trainer = Trainer(TrainConfig(**SMALL, epochs=1), tiny_splits)
    trainer.train_epoch()
    save_checkpoint(tmp_path / "c", trainer.checkpoint())
    loaded = load_checkpoint(tmp_path / "c")
    assert loaded.config == trainer.config and loaded.epoch == 1
    assert sorted(np.load(tmp_path / "c" / "weights.npz").files) == ["W0", "W1", "W2", "b0", "b1", "b2"]
    _, accuracy = trainer.evaluate(tiny_splits.x_test, tiny_splits.y_test)
    assert numpy_accuracy(loaded.weights, "relu", tiny_splits.x_test, tiny_splits.y_test) == pytest.approx(accuracy)
    rebuilt = Trainer(loaded.config, tiny_splits, resume=loaded)
    assert rebuilt.evaluate(tiny_splits.x_test, tiny_splits.y_test)[1] == pytest.approx(accuracy)


def test_checkpoint_whose_config_does_not_match_weights(tiny_splits, tmp_path) -> None:
    trainer = Trainer(TrainConfig(**SMALL, epochs=1), tiny_splits)
    save_checkpoint(tmp_path / "c", trainer.checkpoint())
    TrainConfig(**{**SMALL, "hidden_size": 64}).save(tmp_path / "c" / "config.json")
    with pytest.raises(CheckpointError, match=r"W0 has shape \(784, 32\).*needs \(784, 64\)"):
        load_checkpoint(tmp_path / "c")
    with pytest.raises(CheckpointError, match="not a tune_mlp checkpoint: config.json is missing"):
        load_checkpoint(tmp_path / "missing")


def test_learning_rate_schedules() -> None:
    def lr(step, schedule, warmup=0):
        return float(learning_rate_at(tf.constant(step), 0.1, schedule, 100, warmup))

    assert lr(0, "constant") == lr(99, "constant") == pytest.approx(0.1)
    assert lr(0, "cosine") == pytest.approx(0.1)
    assert lr(50, "cosine") == pytest.approx(0.05, rel=1e-5)
    assert lr(100, "cosine") == pytest.approx(0.0, abs=1e-7)
    assert lr(0, "cosine", warmup=10) == pytest.approx(0.01)
    assert lr(10, "cosine", warmup=10) == pytest.approx(0.1)


def test_runs_of_one_structure_share_one_compiled_program(tiny_splits) -> None:
    """Scalars are arguments: a second run with other values traces (and XLA-compiles) nothing new."""
    first = Trainer(TrainConfig(**SHARED, learning_rate=1e-3, seed=0), tiny_splits)
    values = {"learning_rate": 3e-3, "weight_decay": 1e-3, "dropout": 0.3, "beta1": 0.8, "beta2": 0.99,
              "epsilon": 1e-6, "warmup_epochs": 0.5, "lr_schedule": "constant", "seed": 5}  # fmt: skip
    second = Trainer(TrainConfig(**{**SHARED, **values}), tiny_splits)
    assert first.structure == second.structure
    first.train_epoch()
    second.train_epoch()
    program = train_program(first.structure)
    assert train_program(second.structure) is program
    assert program.experimental_get_tracing_count() == 1


def test_other_structures_get_their_own_programs(tiny_splits) -> None:
    wider = Trainer(TrainConfig(**{**SHARED, "hidden_size": 28}), tiny_splits)
    other_optimizer = Trainer(TrainConfig(**{**SHARED, "optimizer": "nag"}), tiny_splits)
    without_dropout = Trainer(TrainConfig(**{**SHARED, "dropout": 0.0}), tiny_splits)
    programs = [train_program(t.structure) for t in (wider, other_optimizer, without_dropout)]
    assert len({id(program) for program in programs}) == 3
    assert train_program(Trainer(TrainConfig(**SHARED), tiny_splits).structure) not in programs
    for trainer, program in zip((wider, other_optimizer, without_dropout), programs):
        trainer.train_epoch()
        assert program.experimental_get_tracing_count() == 1


def test_each_scalar_takes_effect_through_the_shared_program(tiny_splits) -> None:
    def trained(**values) -> list[np.ndarray]:
        trainer = Trainer(TrainConfig(**{**SHARED, **values}), tiny_splits)
        trainer.train_epoch()
        return trainer.weights()

    base = trained()
    changes = {"learning_rate": 2e-3, "weight_decay": 0.05, "dropout": 0.4, "beta1": 0.5, "beta2": 0.9,
               "epsilon": 1e-3, "warmup_epochs": 1.0, "seed": 1}  # fmt: skip
    for name, value in changes.items():
        assert not np.array_equal(trained(**{name: value})[2], base[2]), name
    # After runs of other values through the same program, the first values give the first weights again.
    for w1, w2 in zip(trained(), base):
        np.testing.assert_array_equal(w1, w2)

    # A learning rate of 0 (which TrainConfig refuses) passed to the program: steps are taken, weights stay put.
    trainer = Trainer(TrainConfig(**SHARED), tiny_splits)
    before = trainer.weights()
    scalars = {**trainer.scalars, "learning_rate": tf.constant(0.0, tf.float64)}
    order = tf.range(trainer.steps_per_epoch * trainer.batch_size)
    program = train_program(trainer.structure)
    program(trainer.variables, trainer.optimizer.variables(), scalars, trainer.x_train, trainer.y_train, order)
    assert int(trainer.optimizer.iterations.numpy()) == trainer.steps_per_epoch
    for w1, w2 in zip(trainer.weights(), before):
        np.testing.assert_array_equal(w1, w2)
