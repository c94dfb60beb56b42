"""The network's shape from its config, without TensorFlow: what a checkpoint's weights are checked against.

Kept apart from ``tune_mlp.mlp.model`` so reading a checkpoint (a CLI checking its input) loads no TensorFlow.
"""

from __future__ import annotations

from tune_mlp.config import TrainConfig

INPUT_SIZE = 784
NUM_CLASSES = 10


def layer_sizes(config: TrainConfig) -> list[int]:
    """Units per layer, input to output: ``[784, hidden, ..., hidden, 10]``."""
    return [INPUT_SIZE] + [config.hidden_size] * config.num_layers + [NUM_CLASSES]
