"""A trial restarted after a failure keeps every result row it reported before (with a storage URI).

When Tune restarts a trial from its checkpoint (a lost node, a crashed worker), Ray's ``JsonLoggerCallback`` and
``CSVLoggerCallback`` copy the trial's ``result.json`` / ``progress.csv`` from the storage over the driver's own
copy (``LoggerCallback._restore_from_remote``, checked against ray 2.60.0: the pin test is in
tests/test_budget_extend.py). With results in a bucket the stored copy is only as new as the driver's last sync,
so the rows reported since were lost: epoch 1 of a trial whose node was killed, under load, in
tests/test_cluster_s3.py. ``KeepResultRows`` uploads the driver's copies when Tune decides to retry the trial
(``on_trial_recover``), before the restart downloads them. Local results need nothing: there the two are one file.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ray import tune
from ray.air.constants import EXPR_PROGRESS_FILE, EXPR_RESULT_FILE

logger = logging.getLogger(__name__)


def is_local(trial: Any) -> bool:
    """Whether the trial's results are on a local file system (else a bucket: the driver stages them)."""
    import pyarrow.fs

    return isinstance(trial.storage.storage_filesystem, pyarrow.fs.LocalFileSystem)


class KeepResultRows(tune.Callback):
    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        import pyarrow.fs

        if is_local(trial):
            return
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
