"""Tune's stored state after a restart, mended or refused.

- A trial Tune restarts from its checkpoint (a lost node, a crashed worker): Ray's JSON and CSV loggers copy the
  stored ``result.json``/``progress.csv`` over the driver's copy, which is synced only at experiment snapshots, so
  the rows since the last one were lost (tests/test_cluster*.py). ``KeepResultRows`` uploads the driver's copies when
  Tune decides to retry the trial (``on_trial_recover``), before the restart downloads them.
- A driver killed between two snapshots is resumed from one older than the trials' last results, and each trial
  re-runs the epochs after its checkpoint, which the loggers append a second time (tests/test_recovery.py). When a
  restored trial starts, ``KeepResultRows`` drops the stored rows after the checkpoint it resumes from: that
  checkpoint's ``training_iteration``, not ``trial.last_result`` (Tune registers a checkpoint one call after its
  result, so a snapshot may hold epoch 3's result and epoch 2's checkpoint). It runs before the loggers.
- A driver killed while Tune copied its state files (in place, not write-then-rename) leaves them cut short, and
  ``Tuner.restore`` fails deep in the searcher: ``torn_state`` names such a file, so resuming is refused in one line.
"""

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


EXPERIMENT_STATE = "experiment_state-{}.json"  # Tune's TuneController.CKPT_FILE_TMPL (Ray 2.52-2.60)


def torn_state(path: str) -> str | None:
    """The newest of Tune's state files of a kind in ``path`` if it is cut short; None if all are whole.

    The controller's name template is in a module Ray does not make public, so it is spelled here
    (tests/test_recovery.py checks all three on a real search). The searchers' states are pickles, whatever their
    names say: a whole pickle ends with its STOP opcode.
    """
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
