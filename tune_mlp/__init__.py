"""tune_mlp: tune an MLP on Fashion-MNIST with a compiled TensorFlow loop and Ray Tune."""

from __future__ import annotations

import os

# TensorFlow's C++ start-up chatter hides what a user wants to read; keep warnings and errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
