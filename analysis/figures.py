"""What every picture shares: the output format, a placeholder for data that cannot be drawn, colours, axes.

Kept free of Ray/TensorFlow imports so the pictures can be (re)drawn and tested from saved tables alone.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures only ever go to files

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from analysis.objective import Objective  # noqa: E402

DPI = 110
CORRECT_COLOR = "#2e7d32"
WRONG_COLOR = "#c62828"
BEST_COLOR = "#d62728"
NAN_COLOR = "#9e9e9e"


def save(fig: Figure, path: Path | str) -> Path:
    """One place for the output format, so every picture looks alike and no figure leaks memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def message_figure(path: Path | str, title: str, message: str) -> Path:
    """A readable placeholder instead of a crash when the data cannot support the plot."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.set_axis_off()
    ax.set_title(title, fontsize=13)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#555555", wrap=True)
    return save(fig, path)


def metric_axis(ax: plt.Axes, values: pd.Series, objective: Objective) -> None:
    """Label the y axis with the metric and zoom on its good end: diverged or poor trials sit far from the best
    (chance-level accuracy, a large loss) and would squash the interesting part of the plot."""
    ax.set_ylabel(objective.label.capitalize())
    if objective.is_fraction:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    finite = values.dropna()
    if finite.empty:
        return
    if objective.mode == "max":
        best = finite.max()
        low, high = min(finite.quantile(0.05), best - 0.02) - 0.03, best + 0.02
    else:
        best = finite.min()
        low, high = best - 0.02, max(finite.quantile(0.95), best + 0.02) + 0.03
    if objective.is_fraction:
        low, high = max(0.0, low), min(1.0, high)
    elif finite.min() >= 0:
        low = max(0.0, low)
    ax.set_ylim(low - 0.005, high + 0.005)
