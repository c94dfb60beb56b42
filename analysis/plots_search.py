"""Pictures of a search: learning curves, the best score so far and hyperparameter importance.

Every function takes plain tables (``tune_mlp.search.results.Experiment``'s trials and histories), writes one PNG and
returns its path. "Best" follows the experiment's ``Objective`` (its metric and mode), never a fixed max.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter

from analysis.figures import BEST_COLOR, message_figure, metric_axis, save
from analysis.importance import importance_problem, scored_trials
from analysis.objective import DEFAULT_OBJECTIVE, Objective

FULL_COLOR = "#1f77b4"
STOPPED_COLOR = "#8c8c8c"


def learning_curves(
    histories: pd.DataFrame, trials: pd.DataFrame, path: Path | str, objective: Objective = DEFAULT_OBJECTIVE
) -> Path:
    """The metric per epoch for every trial: shows what ASHA cut and how the winner pulled ahead."""
    if histories.empty:
        return message_figure(path, "Learning curves", "no epochs reported")
    metric = objective.metric
    stopped = dict(zip(trials["trial_id"], trials["stopped_early"].fillna(False).astype(bool), strict=True))
    best_id = best_trial_id(trials, histories, objective)

    fig, ax = plt.subplots(figsize=(9.5, 5.8))
    counts = {True: 0, False: 0}
    for trial_id, group in histories.sort_values("epoch").groupby("trial_id", sort=False):
        if trial_id == best_id:
            continue
        was_stopped = stopped.get(trial_id, False)
        counts[was_stopped] += 1
        if was_stopped:
            ax.plot(group["epoch"], group[metric], color=STOPPED_COLOR, linewidth=0.9, alpha=0.6, zorder=2)
            last = group.dropna(subset=[metric]).tail(1)
            ax.scatter(last["epoch"], last[metric], marker="x", color="#555555", s=30, linewidths=1.2, zorder=3)
        else:
            ax.plot(group["epoch"], group[metric], color=FULL_COLOR, linewidth=1.5, alpha=0.75, zorder=4)
    if best_id is not None:
        _draw_best_trial(ax, histories, best_id, objective)
    ax.legend(handles=_curve_legend(counts[False], counts[True], best_id is not None), framealpha=0.95,
              loc="lower right" if objective.mode == "max" else "upper right")  # fmt: skip
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Epoch")
    ax.set_title(f"Learning curves of {histories['trial_id'].nunique()} trials")
    ax.grid(alpha=0.3)
    metric_axis(ax, histories[metric], objective)
    return save(fig, path)


def best_trial_id(
    trials: pd.DataFrame, histories: pd.DataFrame, objective: Objective = DEFAULT_OBJECTIVE
) -> str | None:
    """Best by the trials table (the tuner's view), falling back to the histories if it has no finite value."""
    metric = objective.metric
    scores = trials.set_index("trial_id")[metric].dropna() if not trials.empty else pd.Series(dtype=float)
    scores = scores[scores.index.isin(histories["trial_id"])]
    if scores.empty:
        scores = objective.best_per_group(histories, "trial_id")
    return objective.best_index(scores)


def _draw_best_trial(ax: plt.Axes, histories: pd.DataFrame, best_id: str, objective: Objective) -> None:
    metric = objective.metric
    group = histories[histories["trial_id"] == best_id].sort_values("epoch")
    ax.plot(group["epoch"], group[metric], color=BEST_COLOR, linewidth=3, zorder=6, marker="o", markersize=4)
    peak = group.loc[objective.best_index(group[metric])]
    right_half = peak["epoch"] > (histories["epoch"].min() + histories["epoch"].max()) / 2
    ax.annotate(
        f"best: {best_id}\n{objective.format(peak[metric])} (epoch {int(peak['epoch'])})",
        xy=(peak["epoch"], peak[metric]),
        xytext=(-15 if right_half else 15, -45 if objective.mode == "max" else 45),
        textcoords="offset points",
        ha="right" if right_half else "left",
        fontsize=9,
        color=BEST_COLOR,
        arrowprops={"arrowstyle": "->", "color": BEST_COLOR},
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": BEST_COLOR, "alpha": 0.9},
        zorder=7,
    )


def _curve_legend(n_full: int, n_stopped: int, has_best: bool) -> list[Line2D]:
    handles = [
        Line2D([], [], color=FULL_COLOR, linewidth=1.5, label=f"ran its full budget ({n_full})"),
        Line2D([], [], color=STOPPED_COLOR, linewidth=0.9, marker="x", markeredgecolor="#555555",
               label=f"stopped early by ASHA ({n_stopped}), × = last epoch"),
    ]  # fmt: skip
    if has_best:
        handles.append(Line2D([], [], color=BEST_COLOR, linewidth=3, marker="o", markersize=4, label="best trial"))
    return handles


def best_so_far(histories: pd.DataFrame, path: Path | str, objective: Objective = DEFAULT_OBJECTIVE) -> Path:
    """The best score found so far against wall time: how quickly the search paid off."""
    metric = objective.metric
    title = f"Best {objective.label} so far"
    data = histories.dropna(subset=["wall_time"]).sort_values("wall_time").reset_index(drop=True)
    if data[metric].notna().sum() == 0:
        return message_figure(path, title, f"no finite {objective.label} reported")
    scale, unit = (60.0, "minutes") if data["wall_time"].max() > 600 else (1.0, "seconds")
    t = data["wall_time"] / scale
    best = objective.cumulative_best(data[metric])
    final = best.iloc[-1]
    first_time = t[best == final].iloc[0]

    fig, ax = plt.subplots(figsize=(9, 5))
    ax.scatter(t, data[metric], s=12, color=FULL_COLOR, alpha=0.25, linewidths=0, label="a reported epoch")
    ax.step(t, best, where="post", color=BEST_COLOR, linewidth=2.2, label="best so far")
    ax.scatter([first_time], [final], marker="*", s=180, color=BEST_COLOR, zorder=5, edgecolor="black")
    right_half = first_time > t.max() / 2
    ax.annotate(
        f"{objective.format(final)} after {first_time:.1f} {unit}",
        xy=(first_time, final),
        xytext=(-10 if right_half else 10, -40 if objective.mode == "max" else 40),
        textcoords="offset points",
        ha="right" if right_half else "left",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        fontsize=9,
        color=BEST_COLOR,
    )
    ax.set_xlabel(f"Wall time since the start of the experiment ({unit})")
    ax.set_title(f"{title} ({len(data)} epochs of {data['trial_id'].nunique()} trials)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right" if objective.mode == "max" else "upper right", framealpha=0.95)
    metric_axis(ax, data[metric], objective)
    return save(fig, path)


def importance_chart(
    importance: pd.Series, trials: pd.DataFrame, path: Path | str, objective: Objective = DEFAULT_OBJECTIVE
) -> Path:
    """``analysis.importance.hyperparameter_importance`` as bars, or the reason it is empty."""
    problem = importance_problem(trials, objective.metric)
    if problem or importance.empty:
        return message_figure(path, "Hyperparameter importance", problem or "no importance to show")
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(importance) + 1.6))
    shown = importance.iloc[::-1]
    colors = plt.get_cmap("viridis")(Normalize(0, max(importance.max(), 1e-12))(shown.to_numpy()) * 0.8 + 0.1)
    ax.barh(shown.index, shown.to_numpy(), color=colors, edgecolor="#444444", linewidth=0.5)
    for y, value in enumerate(shown):
        ax.text(value + 0.01, y, f"{value:.1%}", va="center", fontsize=9)
    ax.set_xlim(0, max(importance.max() * 1.18, 0.05))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"Share of permutation importance (random forest on configs → {objective.label})")
    ax.set_title(f"Hyperparameter importance ({len(scored_trials(trials, objective.metric))} trials with a result)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return save(fig, path)
