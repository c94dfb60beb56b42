"""Pictures of trained models: the test set's confusion matrices, per-class accuracy and sample predictions,
and the study's loss comparison. Every function takes plain data, writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize
from matplotlib.ticker import MaxNLocator, PercentFormatter
from sklearn.metrics import confusion_matrix

from analysis.figures import CORRECT_COLOR, WRONG_COLOR, message_figure, save


def confusion_matrices(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str], out_dir: Path | str
) -> tuple[Path, Path]:
    """Counts show where the errors are; the row-normalised copy shows per-class recall regardless of class size."""
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
        paths.append(save(fig, out_dir / name))
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
    return save(fig, path)


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
        return message_figure(path, "Sample predictions", "no images")
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
    return save(fig, path)


def loss_comparison(histories_by_loss: dict[str, pd.DataFrame], path: Path | str) -> Path:
    """Cross-entropy vs MSE side by side on accuracy, the only scale the two losses share."""
    if not histories_by_loss:
        return message_figure(path, "Loss comparison", "no runs to compare")
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
    return save(fig, path)
