"""Search-space files: W&B sweep syntax to Tune, and the errors a malformed file gets."""

from __future__ import annotations

import math

import pytest
from ray.tune.search.sample import Categorical, Float, Integer

from tune_mlp.search.space import SearchSpaceError, load_sweep
from tune_mlp.search.tune_space import to_tune_space


def load_space(name_or_path):
    """The checked parameters (and start points) of a space file: what these tests look at."""
    return load_sweep(name_or_path).space


def write(tmp_path, text: str) -> str:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return str(path)


def test_wandb_sweep_file_converts_to_tune_domains(tmp_path) -> None:
    space = to_tune_space(load_space(
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
    ))
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
    assert to_tune_space(study)["optimizer"].categories == ["sgd", "momentum", "rmsprop", "adam", "nadam"]
    default = load_space("default")
    assert isinstance(to_tune_space(default)["learning_rate"], Float)
    assert default.points_to_evaluate == []  # the default search finds its result itself (issue #12)
    assert set(to_tune_space(default)["optimizer"].categories) == {"rmsprop", "adam", "nadam"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "parameters:\n  hidden: {values: [1]}\n",
            "parameters.hidden: unknown hyperparameter (did you mean 'hidden_size'",
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
    from tune_mlp.search.trainable import trial_config

    space = to_tune_space(load_space("default"))
    for _ in range(20):
        sampled = {k: (v.sample() if hasattr(v, "sample") else v) for k, v in space.items()}
        config = trial_config(sampled, max_epochs=30)
        assert config.epochs == 30 and config.hidden_size in (256, 512, 768)
    assert trial_config({"epochs": 8}, max_epochs=5).epochs == 5  # the space's epochs, capped by ASHA's max_t


def test_every_wandb_distribution_samples_inside_its_range_and_the_field(tmp_path) -> None:
    import numpy as np

    space = to_tune_space(load_space(
        write(
            tmp_path,
            """
parameters:
  learning_rate: {distribution: inv_log_uniform_values, min: 1e-4, max: 1e-2}
  epsilon: {distribution: inv_log_uniform, min: 9.2, max: 18.4}
  weight_decay: {distribution: q_log_uniform, min: -9, max: -2, q: 0.001}
  hidden_size: {distribution: q_log_uniform_values, min: 16, max: 256}
  num_layers: {distribution: q_normal, mu: 2, sigma: 2}
  momentum: {distribution: beta, a: 2, b: 5}
  beta: {distribution: q_beta, a: 5, b: 1, q: 0.1}
  warmup_epochs: {distribution: log_normal, mu: 0, sigma: 0.5}
  epochs: {distribution: q_log_normal, mu: 1, sigma: 0.5}
  dropout: {distribution: normal, mu: 0.2, sigma: 0.5}
  batch_size: {values: [32, 64, 128], probabilities: [0.8, 0.2, 0.0]}
  seed: {distribution: uniform, min: 0, max: 10}
""",
        )
    ))
    rng = np.random.default_rng(0)
    draws = {key: [domain.sample(random_state=rng) for _ in range(400)] for key, domain in space.items()}
    assert all(1e-4 <= v <= 1e-2 for v in draws["learning_rate"])
    assert all(math.exp(-18.4) <= v <= math.exp(-9.2) for v in draws["epsilon"])
    assert all(abs(v / 0.001 - round(v / 0.001)) < 1e-9 for v in draws["weight_decay"])
    assert all(isinstance(v, int) and v >= 1 for v in draws["num_layers"])  # q defaults to 1; clipped to >= 1
    assert min(draws["dropout"]) == 0.0 and max(draws["dropout"]) == 0.95  # clipped into dropout's [0, 0.95]
    assert 0.2 < np.mean(draws["momentum"]) < 0.37  # beta(2, 5) has mean 2/7
    assert all(abs(v * 10 - round(v * 10)) < 1e-9 and 0 <= v <= 1 for v in draws["beta"])
    assert all(v > 0 for v in draws["warmup_epochs"]) and all(isinstance(v, int) for v in draws["epochs"])
    assert 0.7 < draws["batch_size"].count(32) / 400 < 0.9 and 128 not in draws["batch_size"]
    assert all(0 <= v <= 10 for v in draws["seed"])


def test_hyperopt_searches_every_distribution(tmp_path) -> None:
    from tune_mlp.search.searchers import TPE

    space = to_tune_space(load_space(
        write(
            tmp_path,
            "parameters:\n  momentum: {distribution: beta, a: 2, b: 2}\n"
            "  batch_size: {values: [32, 64], probabilities: [0.5, 0.5]}\n"
            "  weight_decay: {distribution: log_normal, mu: -7, sigma: 1}\n  loss: {value: mse}\n",
        )
    ))
    searcher = TPE(random_state_seed=0)
    assert searcher.set_search_properties("val_accuracy", "max", space)
    configs = [searcher.suggest(str(i)) for i in range(5)]
    assert all(c["loss"] == "mse" and c["batch_size"] in (32, 64) and 0 <= c["momentum"] <= 1 for c in configs)
    assert all(c["weight_decay"] > 0 for c in configs) and len({c["momentum"] for c in configs}) == 5


def test_assignment_spellings_aliases_numeric_strings_and_nested_groups(tmp_path) -> None:
    space = load_space(
        write(
            tmp_path,
            """
parameters:
  Learning-Rate: {values: ["1e-3", "1e-4"]}
  hidden_layer: {values: ["3"]}
  model:
    parameters:
      hidden_layer_size: {min: "32", max: "64"}
      activation_function: {values: [ReLU, Identity, Sigmoid]}
  w_i: {value: Xavier}
  l: {value: mean_squared_error}
  o: {values: [NAG, Adam]}
  d: {value: Fashion-MNIST}
  alpha: {distribution: q_uniform, min: 0, max: "0.001", q: "0.0005"}
""",
        )
    ).parameters
    assert space["learning_rate"]["values"] == [0.001, 0.0001] and space["num_layers"]["values"] == [3.0]
    assert (space["hidden_size"]["min"], space["hidden_size"]["max"]) == (32.0, 64.0)
    assert space["activation"]["values"] == ["relu", "identity", "sigmoid"]
    assert (space["weight_init"]["value"], space["loss"]["value"], space["dataset"]["value"]) == (
        "xavier",
        "mse",
        "fashion_mnist",
    )
    assert space["optimizer"]["values"] == ["nag", "adam"] and space["weight_decay"]["q"] == 0.0005


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("parameters:\n  lr: {values: [0.1]}\n  learning_rate: {value: 0.2}\n", "sets learning_rate, as parameters.lr"),
        ("parameters:\n  g: {parameters: {hiddn: {values: [1]}}}\n", "parameters.g.hiddn: unknown hyperparameter"),
        ("parameters:\n  lr: {values: [0.1, 0.2], probabilities: [0.5, 0.6]}\n", "sum to 1; these sum to 1.1"),
        ("parameters:\n  lr: {values: [0.1, 0.2], probabilities: [1]}\n", "a list of 2 numbers, one per value"),
        ("parameters:\n  lr: {values: ['1e-3x']}\n", "'value' must be a number, got '1e-3x'"),
        ("parameters:\n  lr: {distribution: log_unifrom, min: 1, max: 2}\n", "did you mean 'log_uniform'?"),
        ("parameters:\n  lr: {valus: [0.1]}\n", "unknown key 'valus'"),
        ("parameters:\n  activation: {distribution: normal}\n", "takes choices; use 'values: [...]'"),
        ("parameters:\n  momentum: {distribution: beta, a: 0}\n", "a and b must be > 0"),
        ("parameters:\n  num_layers: {distribution: int_uniform, min: 1.5, max: 3}\n", "whole-number bounds"),
        ("parameters:\n  lr: {distribution: q_log_uniform_values, min: 1e-3, max: 1, q: 0.01}\n", "invalid value 0.0"),
    ],
)
def test_sweep_parameter_errors_name_key_and_fix(tmp_path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SearchSpaceError) as error:
        load_space(path)
    assert message in str(error.value) and path in str(error.value)


def test_a_heavy_tailed_draw_is_a_number_not_a_crash(tmp_path) -> None:
    # sigma 1000: scipy's ppf gives inf (or exp overflows) near either end; rounding inf to the q grid would raise
    # OverflowError inside Tune's sampling and end the search. The draw is capped at 2**53 instead.
    space = to_tune_space(load_space(write(tmp_path, """
parameters:
  hidden_size: {distribution: q_log_normal, mu: 5, sigma: 1000}
  weight_decay: {distribution: q_log_uniform, min: -9, max: 700, q: 0.001}
  warmup_epochs: {distribution: q_normal, mu: 0, sigma: 1e15, q: 0.5}
""")))  # fmt: skip
    for key, domain in space.items():
        for u in (1e-12, 0.5, 1 - 1e-12):
            value = domain.ppf(u)
            assert math.isfinite(value) and abs(value) <= 2.0**53, (key, u, value)
    assert space["hidden_size"].ppf(1 - 1e-12) == 2**53 and isinstance(space["hidden_size"].ppf(0.5), int)
