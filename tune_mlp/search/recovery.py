"""A restarted trial's result rows: every row it reported before its checkpoint kept, none after it twice.

When Tune restarts a trial from its checkpoint (a lost node, a crashed worker), Ray's ``JsonLoggerCallback`` and
``CSVLoggerCallback`` copy the trial's ``result.json`` / ``progress.csv`` from the storage over the driver's own
copy (Ray 2.60; tests/test_recovery.py and tests/test_cluster.py check the rows a restarted trial ends with, on
whatever release runs them). The driver writes its copy in its session's staging folder
(``StorageContext.trial_driver_staging_path``, under /tmp/ray, for a local ``--storage-path`` too) and syncs it to
the storage only at experiment snapshots, so the stored copy lacks the rows reported since the last one, and the
restart lost them: epoch 1 of a trial whose node was killed in tests/test_cluster_s3.py, epoch 3 of one in
tests/test_cluster.py (CI, stop 23). ``KeepResultRows`` uploads the driver's copies when Tune decides to retry the
trial (``on_trial_recover``), before the restart downloads them.

The other way round: a driver killed between two experiment snapshots (Tune 2.60 snapshots every few checkpoints,
``CheckpointConfig(num_to_keep=...)``) is resumed from a snapshot older than the trials' last results, so each
trial re-runs the epochs after its snapshotted checkpoint and the loggers append them a second time (epochs
``[1, 2, 3, 3, 4]`` in tests/test_recovery.py). When a restored trial starts, ``KeepResultRows`` drops the stored
rows after the checkpoint it resumes from: that checkpoint's ``training_iteration``, which ``Trainable.save`` copies
into the checkpoint's metrics and ``Trainable.restore`` resumes the count from. Not ``trial.last_result``: Tune
registers a checkpoint one actor call after its result, so a snapshot taken between the two holds epoch 3's result
and epoch 2's checkpoint (the killed-driver test, stop 24: the rows kept epoch 3, the trial re-ran it). The loggers
then download the trimmed files. The search passes it first, before the loggers (``tune_mlp.search.tuner._callbacks``).

And a driver killed while Tune was saving: Tune 2.60 copies its state files to the storage in place
(``pyarrow.fs.copy_files``, not a write-then-rename), so a driver killed during the copy leaves them empty or cut
short (all three empty in CI, stop 24, a driver killed as its first snapshot was copied), and ``Tuner.restore``
then fails deep inside the searcher with a traceback. ``torn_state`` names such a file, so the search refuses to
resume it in one line instead.
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
    """``result.json`` (a JSON object a line) or ``progress.csv`` (a header, then rows) without the rows whose
    ``training_iteration`` is above ``last``."""
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

    The kinds and how Tune picks the newest (the greatest name) are Tune's own (``CKPT_FILE_TMPL`` of its
    ``Searcher`` and ``SearchGenerator``; the controller's, in a module Ray does not make public, is spelled here,
    and tests/test_recovery.py checks all three on a real search). The experiment state is JSON; the searcher's and
    the search generator's are pickles (whatever their names say), and a whole pickle ends with its STOP opcode.
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
