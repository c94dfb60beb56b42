"""Plots and reports made from a finished Ray Tune experiment (data in, files out)."""
