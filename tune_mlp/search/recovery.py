"""Tune's stored state after a restart, mended (``KeepResultRows``) or refused (``torn_state``); why each is
needed: docs/architecture.md, "Restarts"."""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import logging
import os
import pickle
from typing import Any

from ray import tune
from ray.air.constants import EXPR_PROGRESS_FILE, EXPR_RESULT_FILE

from tune_mlp import storage

logger = logging.getLogger(__name__)


def rows_upto(text: str, name: str, last: int) -> str:
    """``result.json`` or ``progress.csv`` without the rows whose ``training_iteration`` is above ``last``."""
    if name == EXPR_RESULT_FILE:
        lines = [line for line in text.splitlines(keepends=True) if line.strip()]
        return "".join(line for line in lines if json.loads(line).get("training_iteration", 0) <= last)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or "training_iteration" not in rows[0]:
        return text
    column = rows[0].index("training_iteration")
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(
        [rows[0], *(row for row in rows[1:] if row[column] == "" or float(row[column]) <= last)]
    )
    return out.getvalue()


class KeepResultRows(tune.Callback):
    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        import pyarrow.fs

        resumed = trial.latest_checkpoint_result
        last = resumed.metrics.get("training_iteration") if resumed and resumed.checkpoint else None
        if last is None:  # a new trial: nothing to resume from
            return
        for name in (EXPR_RESULT_FILE, EXPR_PROGRESS_FILE):
            for filesystem, path in (
                (trial.storage.storage_filesystem, f"{trial.storage.trial_fs_path}/{name}"),  # what the loggers read
                (pyarrow.fs.LocalFileSystem(), os.path.join(trial.local_path, name)),  # if there is none stored
            ):
                _trim(filesystem, path, name, int(last))

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        import pyarrow.fs

        for name in (EXPR_RESULT_FILE, EXPR_PROGRESS_FILE):
            local = os.path.join(trial.local_path, name)
            if not os.path.isfile(local):
                continue
            try:
                pyarrow.fs.copy_files(local, f"{trial.storage.trial_fs_path}/{name}",
                                      source_filesystem=pyarrow.fs.LocalFileSystem(),
                                      destination_filesystem=trial.storage.storage_filesystem)  # fmt: skip
            except OSError as error:  # the restart then reads the older stored copy, as without this callback
                logger.warning("could not upload %s of %s before its restart: %s", name, trial, error)


def _trim(filesystem: Any, path: str, name: str, last: int) -> None:
    import pyarrow.fs

    try:
        if filesystem.get_file_info(path).type != pyarrow.fs.FileType.File:
            return
        with filesystem.open_input_stream(path) as stream:
            text = stream.read().decode()
        kept = rows_upto(text, name, last)
        if kept != text:
            with filesystem.open_output_stream(path) as stream:
                stream.write(kept.encode())
    except (OSError, ValueError) as error:  # the rows then stay as Tune leaves them: some epochs twice
        logger.warning("could not drop the rows after epoch %d from %s: %s", last, path, error)


# Tune's TuneController.CKPT_FILE_TMPL, in a module Ray does not make public (tests/test_recovery.py checks it).
EXPERIMENT_STATE = "experiment_state-{}.json"


def torn_state(path: str) -> str | None:
    """The newest of Tune's state files of a kind in ``path`` if it is cut short (the searchers' states are pickles,
    whatever their names say: a whole one ends with STOP); None if all are whole."""
    from ray.tune.search import Searcher
    from ray.tune.search.search_generator import SearchGenerator

    names = storage.file_names(path)
    kinds = ((EXPERIMENT_STATE, _whole_json), (SearchGenerator.CKPT_FILE_TMPL, _whole_pickle),
             (Searcher.CKPT_FILE_TMPL, _whole_pickle))  # fmt: skip
    for template, whole in kinds:
        newest = max((name for name in names if fnmatch.fnmatch(name, template.format("*"))), default=None)
        if newest is not None and not whole(storage.read_bytes(path, newest) or b""):
            return newest
    return None


def _whole_json(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def _whole_pickle(data: bytes) -> bool:
    return data.endswith(pickle.STOP)
