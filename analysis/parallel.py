"""Parallel coordinates: every trial as one line through its hyperparameters, coloured by its score.

Each hyperparameter becomes one vertical axis in [0, 1]: categories evenly spaced, positive values spanning
more than a decade on a log scale (zeros in their own slot), the rest linear, missing values in an n/a slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize

from analysis.columns import is_categorical, short_name, varying_config_columns
from analysis.figures import NAN_COLOR, message_figure, save
from analysis.objective import DEFAULT_OBJECTIVE, Objective

NA_POSITION = -0.1
TICK_BOX = {"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75}


@dataclass
class Axis:
    """One parallel-coordinates axis: every trial's position in [0, 1] (n/a below 0) and labelled ticks."""

    name: str
    positions: np.ndarray
    ticks: list[tuple[float, str]]


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e6 else f"{value:.3g}"


def _add_tick(ticks: list[tuple[float, str]], position: float, label: str, spacing: float) -> None:
    """Skip a tick that would overlap one already placed."""
    if all(abs(position - q) > spacing for q, _ in ticks):
        ticks.append((float(position), label))


def _categorical_axis(values: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]]]:
    labels = values.astype(str)
    categories = sorted(labels.unique())
    spacing = max(len(categories) - 1, 1)
    lookup = {c: (i / spacing if len(categories) > 1 else 0.5) for i, c in enumerate(categories)}
    return labels.map(lookup).to_numpy(), [(lookup[c], c) for c in categories]


def _wants_log(finite: np.ndarray) -> bool:
    """Log only when it spreads the values better: positive, > 1 decade, and linearly bunched at the bottom
    (log-uniform samples like learning rates are; a uniform dropout that happens to span 0.01..0.5 isn't)."""
    positive = finite[finite > 0]
    return bool(
        len(positive) > 1
        and (finite >= 0).all()
        and positive.max() / positive.min() > 10
        and (np.median(positive) - positive.min()) / (positive.max() - positive.min()) < 0.25
    )


def _log_axis(finite: np.ndarray) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Zeros (e.g. no weight decay) get their own slot at the bottom, the positive values a log scale."""
    positive = finite[finite > 0]
    has_zero = bool((finite == 0).any())
    base = 0.15 if has_zero else 0.0
    lo, hi = np.log10(positive.min()), np.log10(positive.max())

    def to_pos(v: float) -> float:
        return float(base + (1 - base) * (np.log10(v) - lo) / (hi - lo))

    positions = np.array([to_pos(v) if v > 0 else 0.0 for v in finite])
    ticks: list[tuple[float, str]] = [(0.0, "0")] if has_zero else []
    decades = [10.0**k for k in range(int(np.ceil(lo)), int(np.floor(hi)) + 1)]
    for v in [positive.min(), *decades, positive.max()]:
        _add_tick(ticks, to_pos(v), f"{v:.2g}", 0.07)
    return positions, ticks


def _linear_axis(finite: np.ndarray) -> tuple[np.ndarray, list[tuple[float, str]]]:
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    span = hi - lo if hi > lo else 1.0
    positions = (finite - lo) / span if hi > lo else np.full(finite.size, 0.5)
    unique = np.unique(finite)
    ticks: list[tuple[float, str]] = []
    for v in unique if unique.size <= 8 else np.linspace(lo, hi, 5):
        _add_tick(ticks, (v - lo) / span if hi > lo else 0.5, _fmt(v), 0.04)
    return positions, ticks


def encode_axis(name: str, series: pd.Series) -> Axis:
    """Categorical -> evenly spaced; positive spanning > 1 decade -> log; else linear. NaN -> an n/a slot."""
    missing = series.isna().to_numpy()
    positions = np.full(len(series), NA_POSITION)
    if is_categorical(series):
        placed, ticks = _categorical_axis(series[~missing])
    else:
        finite = series.astype(float).to_numpy()[~missing]
        placed, ticks = _log_axis(finite) if _wants_log(finite) else _linear_axis(finite)
    positions[~missing] = placed
    if missing.any():
        ticks.append((NA_POSITION, "n/a"))
    return Axis(name, positions, ticks)


def _color_scale(scores: np.ndarray, objective: Objective) -> tuple[Normalize, object]:
    """The best end is always the bright end of viridis, whichever way the metric points."""
    finite = scores[np.isfinite(scores)]
    norm = Normalize(finite.min(), finite.max()) if finite.size and finite.min() < finite.max() else Normalize(0, 1)
    if finite.size and finite.min() == finite.max():
        norm = Normalize(finite.min() - 0.01, finite.max() + 0.01)
    return norm, plt.get_cmap("viridis" if objective.mode == "max" else "viridis_r")


def _draw_axes(ax: plt.Axes, axes_spec: list[Axis]) -> None:
    for x, axis in enumerate(axes_spec):
        ax.axvline(x, color="#333333", linewidth=1.0, zorder=0)
        for y, label in axis.ticks:
            ax.plot([x - 0.03, x], [y, y], color="#333333", linewidth=1.0, zorder=4)
            ax.text(x - 0.05, y, label, ha="right", va="center", fontsize=8, zorder=5, bbox=TICK_BOX)
    n_axes = len(axes_spec)
    ax.set_xticks(range(n_axes))
    ax.set_xticklabels([a.name.replace("_", "\n", 1) if len(a.name) > 12 else a.name for a in axes_spec], fontsize=9.5)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.set_xlim(-0.55, n_axes - 1 + 0.25)
    has_na = any(t[0] == NA_POSITION for a in axes_spec for t in a.ticks)
    ax.set_ylim((NA_POSITION - 0.05) if has_na else -0.05, 1.05)
    for spine in ax.spines.values():
        spine.set_visible(False)


def parallel_coordinates(trials: pd.DataFrame, path: Path | str, objective: Objective = DEFAULT_OBJECTIVE) -> Path:
    """Every trial as one line through its hyperparameters, coloured by score: where the good region lies."""
    columns = varying_config_columns(trials)
    if not columns or trials.empty:
        return message_figure(path, "Parallel coordinates", "no hyperparameter varies across the trials")
    metric = objective.metric
    axes_spec = [encode_axis(short_name(c), trials[c]) for c in columns] + [encode_axis(metric, trials[metric])]
    scores = trials[metric].to_numpy(dtype=float)
    norm, cmap = _color_scale(scores, objective)

    fig, ax = plt.subplots(figsize=(max(8.0, 1.55 * len(axes_spec) + 2.5), 6.2))
    order = objective.order_best_last(trials[metric])  # best drawn last, on top
    best_row = order[-1] if np.isfinite(scores).any() else None
    for row in order:
        ys = [axis.positions[row] for axis in axes_spec]
        if not np.isfinite(scores[row]):
            ax.plot(range(len(ys)), ys, color=NAN_COLOR, linewidth=1.0, linestyle="--", alpha=0.6, zorder=1)
        else:
            best = row == best_row
            ax.plot(range(len(ys)), ys, color=cmap(norm(scores[row])), linewidth=3.0 if best else 1.4,
                    alpha=1 if best else 0.8, zorder=3 if best else 2)  # fmt: skip
    _draw_axes(ax, axes_spec)
    colorbar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, pad=0.02, fraction=0.04)
    colorbar.set_label(f"{objective.label.capitalize()} (grey dashed = no result)")
    n_nan = int((~np.isfinite(scores)).sum())
    ax.set_title(
        f"Hyperparameters of {len(trials)} trials, coloured by {objective.label}"
        + (f" ({n_nan} without a result)" if n_nan else ""),
        pad=38,
    )
    return save(fig, path)
