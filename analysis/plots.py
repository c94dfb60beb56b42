"""Figures for a finished search: every function takes plain data, writes one PNG and returns its path.

Kept free of Ray/TensorFlow imports so the pictures can be (re)drawn and tested from saved tables alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: figures only ever go to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator, PercentFormatter  # noqa: E402

DPI = 110
CONFIG_PREFIX = "config/"
from tune_mlp.config import METRIC  # noqa: E402  (named once, for searcher, scheduler and plots)

CORRECT_COLOR = "#2e7d32"
WRONG_COLOR = "#c62828"
BEST_COLOR = "#d62728"
NAN_COLOR = "#9e9e9e"
MIN_TRIALS_FOR_IMPORTANCE = 4


def _save(fig: Figure, path: Path | str) -> Path:
    """One place for the output format, so every picture looks alike and no figure leaks memory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path


def _message_figure(path: Path | str, title: str, message: str) -> Path:
    """A readable placeholder instead of a crash when the data cannot support the plot."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.set_axis_off()
    ax.set_title(title, fontsize=13)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#555555", wrap=True)
    return _save(fig, path)


def _short(column: str) -> str:
    return column[len(CONFIG_PREFIX) :] if column.startswith(CONFIG_PREFIX) else column


def varying_config_columns(trials: pd.DataFrame) -> list[str]:
    """`config/*` columns with more than one value (NaN counts as a value): constant ones explain nothing."""
    return [c for c in trials.columns if c.startswith(CONFIG_PREFIX) and trials[c].nunique(dropna=False) > 1]


def _is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)


# --------------------------------------------------------------------------- test-set figures


def confusion_matrices(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], out_dir: Path | str
) -> tuple[Path, Path]:
    """Counts show where the errors are; the row-normalised copy shows per-class recall regardless of class size."""
    from sklearn.metrics import confusion_matrix

    out_dir = Path(out_dir)
    labels = list(range(len(class_names)))
    counts = confusion_matrix(y_true, y_pred, labels=labels)
    row_sums = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, row_sums, out=np.zeros(counts.shape, dtype=float), where=row_sums > 0)
    accuracy = np.trace(counts) / max(counts.sum(), 1)

    paths = []
    for name, matrix, fmt, cbar_label, title in (
        ("confusion_matrix.png", counts, "d", "test images", "Confusion matrix (counts)"),
        (
            "confusion_matrix_normalized.png",
            normalized,
            ".2f",
            "share of the true class",
            "Confusion matrix (row-normalised = recall)",
        ),
    ):
        fig, ax = plt.subplots(figsize=(9.5, 8))
        sns.heatmap(
            matrix,
            annot=True,
            fmt=fmt,
            cmap="Blues",
            vmin=0,
            vmax=1 if fmt != "d" else None,
            xticklabels=class_names,
            yticklabels=class_names,
            square=True,
            linewidths=0.5,
            linecolor="white",
            cbar_kws={"label": cbar_label, "shrink": 0.8},
            annot_kws={"fontsize": 8.5},
            ax=ax,
        )
        ax.set_xlabel("Predicted class")
        ax.set_ylabel("True class")
        ax.set_title(f"{title}\n{counts.sum()} test images, accuracy {accuracy:.2%}")
        ax.tick_params(axis="x", rotation=40)
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        ax.tick_params(axis="y", rotation=0)
        paths.append(_save(fig, out_dir / name))
    return paths[0], paths[1]


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], path: Path | str) -> Path:
    """Sorted per-class accuracy against the overall one: which classes drag the model down."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    rows = []
    for index, name in enumerate(class_names):
        mask = y_true == index
        rows.append((name, float(np.mean(y_pred[mask] == index)) if mask.any() else np.nan, int(mask.sum())))
    frame = pd.DataFrame(rows, columns=["class", "accuracy", "n"]).sort_values("accuracy", na_position="first")
    overall = float(np.mean(y_true == y_pred)) if y_true.size else np.nan

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(frame) + 1.5))
    colors = sns.color_palette("RdYlGn", as_cmap=True)(Normalize(0.5, 1.0, clip=True)(frame["accuracy"].fillna(0)))
    ax.barh(frame["class"], frame["accuracy"].fillna(0), color=colors, edgecolor="#444444", linewidth=0.5)
    # Values in their own column right of 100%, so neither the bars nor the overall line cover them.
    for y, (value, n) in enumerate(zip(frame["accuracy"], frame["n"], strict=True)):
        label = "no samples" if np.isnan(value) else f"{value:.1%}  (n={n})"
        ax.text(1.03, y, label, va="center", fontsize=9)
    if not np.isnan(overall):
        ax.axvline(overall, color="#333333", linestyle="--", linewidth=1.2)
        ax.text(
            overall,
            1.01,
            f"overall {overall:.1%}",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_xlim(0, 1.25)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Accuracy on the class (recall)")
    ax.set_title("Per-class test accuracy", pad=18)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def sample_predictions(
    x: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str],
    path: Path | str,
    count: int = 24,
    seed: int = 0,
) -> Path:
    """A grid of test images, about half of them mistakes, so one look shows what the model confuses."""
    x = np.asarray(x)
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    count = min(count, len(x))
    if count == 0:
        return _message_figure(path, "Sample predictions", "no images")
    wrong = np.flatnonzero(y_true != y_pred)
    right = np.flatnonzero(y_true == y_pred)
    n_wrong = min(len(wrong), count // 2)
    n_right = min(len(right), count - n_wrong)
    n_wrong = min(len(wrong), count - n_right)  # few correct ones: fill up with mistakes
    chosen = np.concatenate(
        [rng.choice(wrong, n_wrong, replace=False), rng.choice(right, n_right, replace=False)]
    ).astype(int)
    chosen = chosen[rng.permutation(len(chosen))]

    cols = min(8, max(1, int(np.ceil(np.sqrt(count * 1.5)))))
    rows = int(np.ceil(len(chosen) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.75 * cols, 2.2 * rows), squeeze=False, layout="constrained")
    fig.get_layout_engine().set(h_pad=0.08, w_pad=0.06)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, index in zip(axes.ravel(), chosen, strict=False):
        ax.set_axis_on()
        side = int(round(np.sqrt(x[index].size)))
        ax.imshow(x[index].reshape(side, side), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        is_right = y_true[index] == y_pred[index]
        color = CORRECT_COLOR if is_right else WRONG_COLOR
        for spine in ax.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(1.5 if is_right else 3)
        pred, true = class_names[y_pred[index]], class_names[y_true[index]]
        ax.set_title(f"{pred}\n/ {true}", fontsize=8.5, color=color, fontweight="normal" if is_right else "bold")
    fig.suptitle(
        f"Sample test predictions (title: predicted / true)\n"
        f"{n_wrong} mistakes in red, {n_right} correct in green; "
        f"overall {len(wrong)} of {len(y_true)} test images wrong",
        fontsize=11,
    )
    return _save(fig, path)


# --------------------------------------------------------------------------- search figures


def learning_curves(histories: pd.DataFrame, trials: pd.DataFrame, path: Path | str) -> Path:
    """Validation accuracy per epoch for every trial: shows what ASHA cut and how the winner pulled ahead."""
    if histories.empty:
        return _message_figure(path, "Learning curves", "no epochs reported")
    stopped = dict(zip(trials["trial_id"], trials["stopped_early"].fillna(False).astype(bool), strict=True))
    best_id = _best_trial_id(trials, histories)

    fig, ax = plt.subplots(figsize=(9.5, 5.8))
    n_stopped = n_full = 0
    for trial_id, group in histories.sort_values("epoch").groupby("trial_id", sort=False):
        if trial_id == best_id:
            continue
        if stopped.get(trial_id, False):
            n_stopped += 1
            ax.plot(group["epoch"], group[METRIC], color="#8c8c8c", linewidth=0.9, alpha=0.6, zorder=2)
            last = group.dropna(subset=[METRIC]).tail(1)
            ax.scatter(last["epoch"], last[METRIC], marker="x", color="#555555", s=30, linewidths=1.2, zorder=3)
        else:
            n_full += 1
            ax.plot(group["epoch"], group[METRIC], color="#1f77b4", linewidth=1.5, alpha=0.75, zorder=4)
    if best_id is not None:
        group = histories[histories["trial_id"] == best_id].sort_values("epoch")
        ax.plot(group["epoch"], group[METRIC], color=BEST_COLOR, linewidth=3, zorder=6, marker="o", markersize=4)
        peak = group.loc[group[METRIC].idxmax()]
        right_half = peak["epoch"] > (histories["epoch"].min() + histories["epoch"].max()) / 2
        ax.annotate(
            f"best: {best_id}\n{peak[METRIC]:.2%} (epoch {int(peak['epoch'])})",
            xy=(peak["epoch"], peak[METRIC]),
            xytext=(-15 if right_half else 15, -45),
            textcoords="offset points",
            ha="right" if right_half else "left",
            fontsize=9,
            color=BEST_COLOR,
            arrowprops={"arrowstyle": "->", "color": BEST_COLOR},
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": BEST_COLOR, "alpha": 0.9},
            zorder=7,
        )

    handles = [
        Line2D([], [], color="#1f77b4", linewidth=1.5, label=f"ran its full budget ({n_full})"),
        Line2D(
            [],
            [],
            color="#8c8c8c",
            linewidth=0.9,
            marker="x",
            markeredgecolor="#555555",
            label=f"stopped early by ASHA ({n_stopped}), × = last epoch",
        ),
    ]
    if best_id is not None:
        handles.append(Line2D([], [], color=BEST_COLOR, linewidth=3, marker="o", markersize=4, label="best trial"))
    ax.legend(handles=handles, loc="lower right", framealpha=0.95)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Epoch")
    ax.set_ylabel("Validation accuracy")
    ax.set_title(f"Learning curves of {histories['trial_id'].nunique()} trials")
    ax.grid(alpha=0.3)
    _clip_low_outliers(ax, histories[METRIC])
    return _save(fig, path)


def _best_trial_id(trials: pd.DataFrame, histories: pd.DataFrame) -> str | None:
    """Best by the trials table (the tuner's view), falling back to the histories if it has no finite value."""
    scores = trials.set_index("trial_id")[METRIC].dropna() if not trials.empty else pd.Series(dtype=float)
    scores = scores[scores.index.isin(histories["trial_id"])]
    if scores.empty:
        scores = histories.groupby("trial_id")[METRIC].max().dropna()
    return None if scores.empty else scores.idxmax()


def _clip_low_outliers(ax: plt.Axes, values: pd.Series) -> None:
    """Diverged trials sit at chance level; don't let them squash the interesting top of the plot."""
    finite = values.dropna()
    if finite.empty:
        return
    low = max(0.0, min(finite.quantile(0.05), finite.max() - 0.02) - 0.03)
    ax.set_ylim(low, min(1.0, finite.max() + 0.02) + 0.005)


def best_so_far(histories: pd.DataFrame, path: Path | str) -> Path:
    """Best validation accuracy found so far against wall time: how quickly the search paid off."""
    data = histories.dropna(subset=["wall_time"]).sort_values("wall_time")
    if data[METRIC].notna().sum() == 0:
        return _message_figure(path, "Best validation accuracy so far", "no finite validation accuracy reported")
    scale, unit = (60.0, "minutes") if data["wall_time"].max() > 600 else (1.0, "seconds")
    t = data["wall_time"] / scale
    best = data[METRIC].cummax().ffill()

    fig, ax = plt.subplots(figsize=(9, 5))
    ax.scatter(t, data[METRIC], s=12, color="#1f77b4", alpha=0.25, linewidths=0, label="a reported epoch")
    ax.step(t, best, where="post", color=BEST_COLOR, linewidth=2.2, label="best so far")
    final_index = best.idxmax()
    first_time = t[best == best.max()].iloc[0]
    ax.scatter([first_time], [best[final_index]], marker="*", s=180, color=BEST_COLOR, zorder=5, edgecolor="black")
    right_half = first_time > t.max() / 2
    ax.annotate(
        f"{best.max():.2%} after {first_time:.1f} {unit}",
        xy=(first_time, best.max()),
        xytext=(-10 if right_half else 10, -40),
        textcoords="offset points",
        ha="right" if right_half else "left",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        fontsize=9,
        color=BEST_COLOR,
    )
    ax.set_xlabel(f"Wall time since the start of the experiment ({unit})")
    ax.set_ylabel("Validation accuracy")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(f"Best validation accuracy so far ({len(data)} epochs of {data['trial_id'].nunique()} trials)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", framealpha=0.95)
    _clip_low_outliers(ax, data[METRIC])
    return _save(fig, path)


@dataclass
class _Axis:
    """One parallel-coordinates axis: every trial's position in [0, 1] (n/a below 0) and labelled ticks."""

    name: str
    positions: np.ndarray
    ticks: list[tuple[float, str]]


NA_POSITION = -0.1


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e6 else f"{value:.3g}"


def _encode_axis(name: str, series: pd.Series) -> _Axis:
    """Categorical -> evenly spaced; positive spanning > 1 decade -> log; else linear. NaN -> an n/a slot."""
    missing = series.isna().to_numpy()
    positions = np.full(len(series), NA_POSITION)
    ticks: list[tuple[float, str]] = []
    if _is_categorical(series):
        labels = series[~missing].astype(str)
        categories = sorted(labels.unique())
        spacing = max(len(categories) - 1, 1)
        lookup = {c: (i / spacing if len(categories) > 1 else 0.5) for i, c in enumerate(categories)}
        positions[~missing] = labels.map(lookup).to_numpy()
        ticks = [(lookup[c], c) for c in categories]
    else:
        values = series.astype(float).to_numpy()
        finite = values[~missing]
        positive = finite[finite > 0]
        has_zero = bool((finite == 0).any())
        # Log only when it spreads the values better: positive, > 1 decade, and linearly bunched at the bottom
        # (log-uniform samples like learning rates are; a uniform dropout that happens to span 0.01..0.5 isn't).
        use_log = (
            len(positive) > 1
            and (finite >= 0).all()
            and positive.max() / positive.min() > 10
            and (np.median(positive) - positive.min()) / (positive.max() - positive.min()) < 0.25
        )
        if use_log:
            # Zeros (e.g. no weight decay) get their own slot at the bottom, the positive values a log scale.
            base = 0.15 if has_zero else 0.0
            lo, hi = np.log10(positive.min()), np.log10(positive.max())

            def to_pos(v: np.ndarray) -> np.ndarray:
                return base + (1 - base) * (np.log10(v) - lo) / (hi - lo)

            pos = np.zeros(finite.size)
            pos[finite > 0] = to_pos(finite[finite > 0])
            positions[~missing] = pos
            if has_zero:
                ticks.append((0.0, "0"))
            decades = [10.0**k for k in range(int(np.ceil(lo)), int(np.floor(hi)) + 1)]
            candidates = [positive.min(), *decades, positive.max()]
            for v in candidates:
                p = float(to_pos(np.array([v]))[0])
                if all(abs(p - q) > 0.07 for q, _ in ticks):
                    ticks.append((p, f"{v:.2g}"))
        else:
            lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
            span = hi - lo if hi > lo else 1.0
            positions[~missing] = (finite - lo) / span if hi > lo else 0.5
            unique = np.unique(finite)
            tick_values = unique if unique.size <= 8 else np.linspace(lo, hi, 5)
            for v in tick_values:
                p = (v - lo) / span if hi > lo else 0.5
                if all(abs(p - q) > 0.04 for q, _ in ticks):
                    ticks.append((float(p), _fmt(v)))
    if missing.any():
        ticks.append((NA_POSITION, "n/a"))
    return _Axis(name, positions, ticks)


def parallel_coordinates(trials: pd.DataFrame, path: Path | str) -> Path:
    """Every trial as one line through its hyperparameters, coloured by score: where the good region lies."""
    columns = varying_config_columns(trials)
    if not columns or trials.empty:
        return _message_figure(path, "Parallel coordinates", "no hyperparameter varies across the trials")
    axes_spec = [_encode_axis(_short(c), trials[c]) for c in columns]
    axes_spec.append(_encode_axis(METRIC, trials[METRIC]))
    scores = trials[METRIC].to_numpy(dtype=float)
    finite = scores[np.isfinite(scores)]
    norm = Normalize(finite.min(), finite.max()) if finite.size and finite.min() < finite.max() else Normalize(0, 1)
    if finite.size and finite.min() == finite.max():
        norm = Normalize(finite.min() - 0.01, finite.max() + 0.01)
    cmap = plt.get_cmap("viridis")

    n_axes = len(axes_spec)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.55 * n_axes + 2.5), 6.2))
    xs = np.arange(n_axes)
    order = np.argsort(np.where(np.isfinite(scores), scores, -np.inf), kind="stable")  # best drawn last, on top
    best_row = order[-1] if finite.size else None
    for row in order:
        ys = [axis.positions[row] for axis in axes_spec]
        if not np.isfinite(scores[row]):
            ax.plot(xs, ys, color=NAN_COLOR, linewidth=1.0, linestyle="--", alpha=0.6, zorder=1)
        else:
            best = row == best_row
            ax.plot(
                xs,
                ys,
                color=cmap(norm(scores[row])),
                linewidth=3.0 if best else 1.4,
                alpha=1 if best else 0.8,
                zorder=3 if best else 2,
            )
    for x, axis in zip(xs, axes_spec, strict=True):
        ax.axvline(x, color="#333333", linewidth=1.0, zorder=0)
        for y, label in axis.ticks:
            ax.plot([x - 0.03, x], [y, y], color="#333333", linewidth=1.0, zorder=4)
            ax.text(
                x - 0.05,
                y,
                label,
                ha="right",
                va="center",
                fontsize=8,
                zorder=5,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.75},
            )
    ax.set_xticks(xs)
    ax.set_xticklabels([a.name.replace("_", "\n", 1) if len(a.name) > 12 else a.name for a in axes_spec], fontsize=9.5)
    ax.xaxis.tick_top()
    ax.set_yticks([])
    ax.set_xlim(-0.55, n_axes - 1 + 0.25)
    has_na = any(t[0] == NA_POSITION for a in axes_spec for t in a.ticks)
    ax.set_ylim((NA_POSITION - 0.05) if has_na else -0.05, 1.05)
    for spine in ax.spines.values():
        spine.set_visible(False)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    colorbar = fig.colorbar(sm, ax=ax, pad=0.02, fraction=0.04)
    colorbar.set_label("Validation accuracy (grey dashed = no result)")
    n_nan = int((~np.isfinite(scores)).sum())
    ax.set_title(
        f"Hyperparameters of {len(trials)} trials, coloured by validation accuracy"
        + (f" ({n_nan} without a result)" if n_nan else ""),
        pad=38,
    )
    return _save(fig, path)


def hyperparameter_importance(trials: pd.DataFrame, path: Path | str) -> tuple[Path, pd.Series]:
    """Which knobs mattered: permutation importance of a random forest fitted from configs to val accuracy.

    Returns the importances indexed by hyperparameter name without the `config/` prefix, sorted descending,
    clipped at 0 and normalised to sum to 1 (empty when there are too few trials to say anything).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.inspection import permutation_importance
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    columns = varying_config_columns(trials)
    data = trials.dropna(subset=[METRIC]) if METRIC in trials else trials.iloc[0:0]
    if len(data) < MIN_TRIALS_FOR_IMPORTANCE or not columns:
        reason = (
            f"not enough trials with a result ({len(data)}, need at least {MIN_TRIALS_FOR_IMPORTANCE})"
            if len(data) < MIN_TRIALS_FOR_IMPORTANCE
            else "no hyperparameter varies across the trials"
        )
        return _message_figure(path, "Hyperparameter importance", reason), pd.Series(dtype=float, name="importance")

    features = data[columns].copy()
    categorical = [c for c in columns if _is_categorical(features[c])]
    numeric = [c for c in columns if c not in categorical]
    for c in categorical:
        features[c] = features[c].astype(str)  # NaN -> "nan", bools -> "True"/"False": one category each
    encoder = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("numeric", SimpleImputer(strategy="median", keep_empty_features=True), numeric),
        ]
    )
    model = Pipeline([("encode", encoder), ("forest", RandomForestRegressor(n_estimators=300, random_state=0))])
    target = data[METRIC].to_numpy(dtype=float)
    model.fit(features, target)
    # Permuting the raw columns scores each hyperparameter as a whole, however many one-hot columns it became.
    result = permutation_importance(model, features, target, n_repeats=10, random_state=0)
    raw = pd.Series(np.clip(result.importances_mean, 0, None), index=[_short(c) for c in columns])
    importance = (raw / raw.sum() if raw.sum() > 0 else raw).sort_values(ascending=False).rename("importance")

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(importance) + 1.6))
    shown = importance.iloc[::-1]
    colors = plt.get_cmap("viridis")(Normalize(0, max(importance.max(), 1e-12))(shown.to_numpy()) * 0.8 + 0.1)
    ax.barh(shown.index, shown.to_numpy(), color=colors, edgecolor="#444444", linewidth=0.5)
    for y, value in enumerate(shown):
        ax.text(value + 0.01, y, f"{value:.1%}", va="center", fontsize=9)
    ax.set_xlim(0, max(importance.max() * 1.18, 0.05))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Share of permutation importance (random forest on configs → val accuracy)")
    ax.set_title(f"Hyperparameter importance ({len(data)} trials with a result)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path), importance


def loss_comparison(histories_by_loss: dict[str, pd.DataFrame], path: Path | str) -> Path:
    """Cross-entropy vs MSE side by side on accuracy, the only scale the two losses share."""
    if not histories_by_loss:
        return _message_figure(path, "Loss comparison", "no runs to compare")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    palette = sns.color_palette("tab10", len(histories_by_loss))
    for color, (name, frame) in zip(palette, histories_by_loss.items(), strict=True):
        for ax, column in zip(axes, ("val_accuracy", "train_accuracy"), strict=True):
            # Several runs (seeds) per loss: mean line with a min-max band.
            stats = frame.groupby("epoch")[column].agg(["mean", "min", "max"]).sort_index()
            ax.plot(stats.index, stats["mean"], color=color, linewidth=2.2, marker="o", markersize=3.5, label=name)
            if (stats["max"] > stats["min"]).any():
                ax.fill_between(stats.index, stats["min"], stats["max"], color=color, alpha=0.15, linewidth=0)
            if stats["mean"].notna().any():
                last = stats["mean"].dropna()
                ax.annotate(
                    f"{last.iloc[-1]:.1%}",
                    xy=(last.index[-1], last.iloc[-1]),
                    xytext=(5, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=9,
                    color=color,
                )
    for ax, title in zip(axes, ("Validation accuracy", "Training accuracy"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(alpha=0.3)
        ax.margins(x=0.1)
    axes[0].set_ylabel("Accuracy")
    axes[0].legend(title="loss", loc="lower right", framealpha=0.95)
    fig.suptitle("Loss functions compared: accuracy per epoch", fontsize=12)
    fig.tight_layout()
    return _save(fig, path)
