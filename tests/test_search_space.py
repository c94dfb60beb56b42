"""Search-space files: W&B sweep syntax to Tune, and the errors a malformed file gets."""

from __future__ import annotations

import math

import pytest
from ray.tune.search.sample import Categorical, Float, Integer

from tune_mlp.search_space import SearchSpaceError, load_space


def write(tmp_path, text: str) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return str(path)


def test_wandb_sweep_file_converts_to_tune_domains(tmp_path) -> None:
    space = load_space(
        write(
            tmp_path,
            """
method: bayes
metric: {name: val_accuracy, goal: maximize}
parameters:
  optimizer: {values: [adam, sgd]}
  epochs: {value: 5}
  num_layers: {min: 1, max: 4}
  dropout: {min: 0.0, max: 0.5}
  learning_rate: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  weight_decay: {distribution: log_uniform, min: -9.2, max: -4.6}
  hidden_size: {distribution: q_uniform, min: 64, max: 512, q: 64}
""",
        )
    ).tune_space()
    assert isinstance(space["optimizer"], Categorical) and space["optimizer"].categories == ["adam", "sgd"]
    assert space["epochs"] == 5
    assert isinstance(space["num_layers"], Integer) and (space["num_layers"].lower, space["num_layers"].upper) == (1, 5)
    assert isinstance(space["dropout"], Float)
    lr = space["learning_rate"]
    assert (lr.lower, lr.upper) == (0.0001, 0.1) and isinstance(lr.get_sampler(), Float._LogUniform)
    assert space["weight_decay"].lower == pytest.approx(math.exp(-9.2))
    assert all(v % 64 == 0 for v in [space["hidden_size"].sample() for _ in range(20)])


def test_shipped_spaces_load() -> None:
    study = load_space("study")
    assert study.tune_space()["optimizer"].categories == ["sgd", "momentum", "rmsprop", "adam", "nadam"]
    default = load_space("default")
    assert isinstance(default.tune_space()["learning_rate"], Float)
    assert default.points_to_evaluate == []  # the default search finds its result itself (issue #12)
    assert set(default.tune_space()["optimizer"].categories) == {"rmsprop", "adam", "nadam"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "parameters:\n  hidden: {values: [1]}\n",
            "parameters.hidden: unknown hyperparameter (did you mean 'hidden_size'?)",
        ),
        ("parameters:\n  activation: {values: [relu, gelu]}\n", "parameters.activation: invalid choice 'gelu'"),
        ("parameters:\n  learning_rate: {values: []}\n", "'values' must be a non-empty list"),
        ("parameters:\n  learning_rate: {value: -1}\n", "parameters.learning_rate: invalid value -1"),
        ("parameters:\n  learning_rate: {distribution: log_uniform_values, min: 0, max: 1}\n", "needs min > 0"),
        ("parameters:\n  num_layers: {min: 1}\n", "needs 'value', 'values', or 'min' and 'max'"),
        ("parameters:\n  num_layers: 3\n", "expected a mapping such as {values: [...]}"),
        ("- just a list\n", "expected a mapping with a 'parameters:' key"),
        (
            "parameters:\n  num_layers: {values: [2, 3]}\npoints_to_evaluate:\n  - {num_layers: 5}\n",
            "points_to_evaluate[0].num_layers: 5 is not one of [2, 3]",
        ),
        (
            "parameters:\n  num_layers: {values: [2, 3]}\n  dropout: {min: 0.0, max: 0.5}\n"
            "points_to_evaluate:\n  - {num_layers: 2}\n",
            "missing a value for 'dropout'",
        ),
    ],
)
def test_malformed_files_name_the_key_and_problem(tmp_path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SearchSpaceError) as error:
        load_space(path)
    assert message in str(error.value) and path in str(error.value)


def test_unknown_space_name_lists_the_shipped_ones() -> None:
    with pytest.raises(SearchSpaceError, match="not one of: default, study"):
        load_space("nosuchspace")


def test_sampling_gives_valid_train_configs() -> None:
    from tune_mlp.trainable import trial_config

    space = load_space("default").tune_space()
    for _ in range(20):
        sampled = {k: (v.sample() if hasattr(v, "sample") else v) for k, v in space.items()}
        config = trial_config(sampled, max_epochs=30)
        assert config.epochs == 30 and config.hidden_size in (256, 512, 768)
    assert trial_config({"epochs": 8}, max_epochs=5).epochs == 5  # the space's epochs, capped by ASHA's max_t
