"""Classify image files with a trained model: the top-k classes and their probabilities.

    python -m tune_mlp.predict MODEL IMAGE_OR_DIR... [--top-k 3] [--json] [--csv FILE] [--no-invert]

MODEL is an export (``tune_mlp.export --out`` folder or its model.keras), a search (its best epoch),
a ``tune_mlp.train`` output folder or a checkpoint folder. A folder of images is read in name order.
Images are made grayscale, 28×28, and inverted when their background is light (see
``tune_mlp.deploy.images``). An input that cannot be read is one ``error:`` line on stderr and the others are
still predicted; the exit code is then 2 (0 when every input was predicted), so scripts notice.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tune_mlp.deploy.images import ImageInputError, PreparedImage, image_paths, prepare_image

NUM_CLASSES = 10


def top_k(probabilities: np.ndarray, class_names: Sequence[str], k: int) -> list[dict[str, Any]]:
    """The k most probable classes of one image, most probable first."""
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [{"label": int(i), "class": class_names[i], "probability": float(probabilities[i])} for i in order]


def predict_files(
    model: str | Path, inputs: Sequence[str], k: int, invert: bool
) -> tuple[list[dict[str, Any]], list[ImageInputError]]:
    """One row per readable image (file, inverted, top-k), and one error per input that was not."""
    from tune_mlp.data import CLASS_NAMES
    from tune_mlp.deploy.model_source import load_classifier, resolve_model

    source = resolve_model(model)  # a model that is not ours fails before any image is read
    paths, problems = image_paths(inputs)
    prepared: list[PreparedImage] = []
    for path in paths:
        try:
            prepared.append(prepare_image(path, invert))
        except ImageInputError as error:
            problems.append(error)
    rows = []
    if prepared:  # the network (and TensorFlow) is loaded only when there is something to predict
        classifier = load_classifier(source)
        probabilities = classifier.probabilities(np.stack([image.pixels for image in prepared]))
        names = CLASS_NAMES[classifier.dataset]
        for image, probs in zip(prepared, probabilities):
            rows.append({"file": str(image.path), "inverted": image.inverted, "top": top_k(probs, names, k)})
    return rows, problems


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    k = len(rows[0]["top"])
    header = ["file", *(f"#{i + 1}" for i in range(k)), "inverted"]
    body = [
        [row["file"], *(f"{p['class']} {p['probability']:.3f}" for p in row["top"]), "yes" if row["inverted"] else ""]
        for row in rows
    ]
    widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [header, *body])


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    k = len(rows[0]["top"])
    fields = ["file", "inverted", *(f"{name}_{i + 1}" for i in range(k) for name in ("class", "probability"))]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(fields)
        for row in rows:
            ranked = [value for p in row["top"] for value in (p["class"], f"{p['probability']:.6f}")]
            writer.writerow([row["file"], int(row["inverted"]), *ranked])


def build_parser() -> argparse.ArgumentParser:
    from tune_mlp.cli import add_flag

    parser = argparse.ArgumentParser(prog="python -m tune_mlp.predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="export folder / model.keras, experiment, tune_mlp.train output or checkpoint")
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...) or folders of them")
    add_flag(parser, "top-k", type=int, default=3, help="classes shown per image (default: %(default)s)")
    add_flag(parser, "json", action="store_true", help="print JSON instead of a table")
    add_flag(parser, "csv", type=Path, default=None, help="also write the predictions to this CSV file")
    add_flag(parser, "no-invert", action="store_true", help="never invert images with a light background")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from tune_mlp.cli import report_user_errors

    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.top_k <= NUM_CLASSES:
        parser.error(f"argument --top-k: {args.top_k} is not in 1..{NUM_CLASSES}")
    return report_user_errors(lambda: _predict_and_print(args))


def _predict_and_print(args: argparse.Namespace) -> int:
    rows, problems = predict_files(args.model, args.images, args.top_k, invert=not args.no_invert)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    if rows:
        print(json.dumps(rows, indent=2) if args.json else format_table(rows))
        if args.csv:
            write_csv(args.csv, rows)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
