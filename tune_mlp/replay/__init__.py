"""Replay: searchers and schedulers run over recorded learning-curve tables in simulated time."""
