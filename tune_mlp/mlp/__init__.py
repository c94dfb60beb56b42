"""The network and its training: TensorFlow and numpy only (no Ray, no W&B import at module level)."""
