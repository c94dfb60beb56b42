"""Recovery: a crashed trial retried from its checkpoint, a killed driver resumed, and a restarted trial's result
rows (tune_mlp.search.recovery: the trimming is exact, and the Ray behaviour it relies on is pinned; the
killed-driver test meets the snapshot race it handles in most runs: a snapshot holding a result one epoch past the
trial's checkpoint in 3 of 4 runs, stop 24, which before the trim used the checkpoint's epoch failed 3 of 5)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs
import pytest
from conftest import FASHION_DIR, REPO, search_cli, state_saved, write_space

from tune_mlp.search.recovery import _trim, rows_upto, torn_state
from tune_mlp.search.results import load_results

needs_data = pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")


def reported_epochs(trial_dir: Path) -> list[int]:
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines if line.strip()]


def test_rows_after_the_checkpoint_are_dropped_from_both_files() -> None:
    rows = [{"training_iteration": i, "epoch": i, "val_accuracy": 0.5 + i / 100} for i in (1, 2, 3)]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    assert [json.loads(line)["epoch"] for line in rows_upto(text, "result.json", 2).splitlines()] == [1, 2]
    assert rows_upto(text, "result.json", 3) == text
    csv_text = "epoch,training_iteration,val_accuracy\n1,1,0.51\n2,2,0.52\n3,3,0.53\n"
    assert rows_upto(csv_text, "progress.csv", 1) == "epoch,training_iteration,val_accuracy\n1,1,0.51\n"
    assert rows_upto(csv_text, "progress.csv", 3) == csv_text


def test_trim_rewrites_a_stored_file_only_when_rows_go(tmp_path) -> None:
    path = tmp_path / "result.json"
    path.write_text('{"training_iteration": 1}\n{"training_iteration": 2}\n')
    before = path.stat().st_mtime_ns
    _trim(pyarrow.fs.LocalFileSystem(), str(path), "result.json", 2)
    assert path.stat().st_mtime_ns == before
    _trim(pyarrow.fs.LocalFileSystem(), str(path), "result.json", 1)
    assert path.read_text() == '{"training_iteration": 1}\n'
    _trim(pyarrow.fs.LocalFileSystem(), str(tmp_path / "absent.json"), "result.json", 1)  # nothing to trim


KILLED_AFTER_EPOCH = 5  # two epochs past the snapshot Tune forces at a trial's third checkpoint (num_to_keep=3)
EPOCHS = KILLED_AFTER_EPOCH + 2


def kill_trial_worker_after(trial_glob: str, experiment: Path, epoch: int, proc: subprocess.Popen) -> int:
    """SIGKILL the (one) trial worker once the trial's checkpoint of ``epoch`` is in the storage: a real crash.

    The worker writes each epoch's checkpoint to the storage before it reports it, so the checkpoint's folder
    (Tune numbers them from 0) says the epoch ran; the worker is then in its next epoch. Returns the pid killed.
    """
    deadline = time.time() + 600
    while not list(experiment.glob(f"{trial_glob}/checkpoint_{epoch - 1:06d}")):
        assert proc.poll() is None and time.time() < deadline, "the search ended before its trial crashed"
        time.sleep(0.1)
    import psutil  # installed with Ray

    # This search's own Ray runs under its driver (other tests' searches may run beside it)
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if " ".join(p.cmdline()).startswith("ray::ImplicitFunc")]  # fmt: skip
    assert len(workers) == 1, f"expected one trial worker, found {workers}"
    workers[0].kill()
    return workers[0].pid


@needs_data
@pytest.mark.ray
def test_crashed_trial_is_retried_from_its_checkpoint(tmp_path) -> None:
    space = write_space(tmp_path / "space.yaml")
    # The stand-in (no TensorFlow): what is tested is Tune's retry and the trainable's restore from Tune's
    # checkpoint; the MLP's own restore is exact (test_trainer), and it resumes under Tune in test_cluster_s3.
    proc = search_cli(
        "--samples", "1", "--stand-in", "1", "--space", space, "--max-epochs", str(EPOCHS),
        "--grace-period", str(EPOCHS), "--storage-path", str(tmp_path), "--name", "crash",
        clean_wandb_home=tmp_path / "home",
    )  # fmt: skip
    killed = kill_trial_worker_after("trial_*", tmp_path / "crash", KILLED_AFTER_EPOCH, proc)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out[-3000:]
    # The CLI chose W&B's offline mode by itself (no key) and the trial's logging actor honoured it.
    assert "logging offline" in out
    assert list((tmp_path / "crash").glob("trial_*/wandb/offline-run-*")), "no offline W&B run was written"
    (trial_dir,) = [p for p in (tmp_path / "crash").iterdir() if p.name.startswith("trial_")]
    rows = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines() if line.strip()]
    # Every epoch once, those after the crash resumed from a checkpoint (not restarted from scratch) in another
    # worker. The crash comes after the snapshot Tune forced at the third checkpoint, so the stored rows lack the
    # later epochs when the restart copies them over the driver's: KeepResultRows uploads the driver's first (CI,
    # stop 23: [1, 2, 4, 5]). Tune restores the last checkpoint it registered: epoch 5's, or 4's if the kill came
    # before the driver took epoch 5's report in (its rows are then trimmed after 4, and epoch 5 runs again once).
    assert [row["epoch"] for row in rows] == list(range(1, EPOCHS + 1)), rows
    resumed = rows[-1]["resumed_from"]
    assert resumed in (KILLED_AFTER_EPOCH - 1, KILLED_AFTER_EPOCH), rows
    assert [row["resumed_from"] for row in rows] == [0] * resumed + [resumed] * (EPOCHS - resumed), rows
    assert rows[0]["pid"] == killed != rows[-1]["pid"], rows
    results = load_results(tmp_path / "crash")
    assert [r.metrics["epoch"] for r in results] == [EPOCHS] and not results.errors


@needs_data
def test_driver_killed_mid_search_resumes_without_losing_or_rerunning_trials(tmp_path) -> None:
    space = write_space(tmp_path / "space.yaml")
    args = [
        "--stand-in",  # the driver's machinery is what is tested: trials sleep a second an epoch (no TensorFlow)
        "1",
        "--samples",
        "6",
        "--space",
        space,
        "--max-epochs",
        "4",
        "--grace-period",
        "4",
        "--no_wandb",
        "--storage-path",
        str(tmp_path),
        "--name",
        "killed",
        "--concurrency",
        "2",
    ]
    proc = search_cli(*args, start_new_session=True)
    experiment = tmp_path / "killed"
    deadline = time.time() + 600
    while time.time() < deadline:
        done = [p for p in experiment.glob("trial_*/result.json") if len(p.read_text().splitlines()) >= 2]
        if state_saved(experiment) and done:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the search never reported")
    # A second driver for the same experiment is refused while the first runs, before it starts Ray. The
    # first is paused meanwhile (SIGSTOP): alive and holding its lock, it cannot finish under a slow start.
    lock = experiment / ".driver.lock"
    os.killpg(proc.pid, signal.SIGSTOP)
    assert proc.poll() is None, "the search ended before it could be stopped: give its trials more epochs"
    second = subprocess.run(
        [sys.executable, "-m", "tune_mlp.search", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
    assert second.stderr.strip().splitlines() == [
        f"error: {experiment} is being run by another driver (pid {proc.pid} on {socket.gethostname()}, "
        f"started {json.loads(lock.read_text())['started']}; lock {lock}): wait for it, stop it, or use another --name"
    ]
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
    proc.wait()
    assert json.loads(lock.read_text())["pid"] == proc.pid  # a killed driver leaves its lock behind

    rerun = search_cli(*args, "--resume")
    out, _ = rerun.communicate(timeout=900)
    assert rerun.returncode == 0, out[-3000:]
    assert f"note: took over the stale lock {lock} (pid {proc.pid} is not running on this host)" in out
    assert "resuming experiment" in out
    assert not lock.exists()  # released at the end
    results = load_results(experiment)
    assert len(results) == 6 and not results.errors
    assert all(r.metrics["epoch"] == 4 for r in results)
    # (A trial the killed driver had created but not yet saved may leave an empty folder behind: the
    # experiment's state, not the folders, says which trials exist.)
    for result in results:
        epochs = reported_epochs(Path(result.path))
        assert epochs == sorted(set(epochs)), f"{result.path} re-ran epochs: {epochs}"


@needs_data
@pytest.mark.ray
def test_a_whole_state_passes_and_a_cut_short_one_is_named(smoke_search, tmp_path) -> None:
    """torn_state on a real finished search: whole; each of Tune's three state files emptied or cut short: named.

    Also the pin: if Tune changed a state file's format (a pickle named .json today), the whole one would fail here.
    """
    import shutil

    assert torn_state(str(smoke_search.path)) is None
    for pattern in ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl"):
        for cut in (0, -1):  # emptied; one byte short
            copy = Path(shutil.copytree(smoke_search.path, tmp_path / f"{pattern[:8]}{cut}"))
            (state,) = copy.glob(pattern)
            state.write_bytes(state.read_bytes()[:cut])
            assert torn_state(str(copy)) == state.name, (pattern, cut)
