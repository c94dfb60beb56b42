"""GPUs: --gpus-per-trial shares a GPU between trials, and TensorFlow grows its memory instead of taking it all.

This machine has no GPU: Ray is told it has one (``ray.init(num_gpus=1)``, a logical GPU), so Ray schedules
and sets ``CUDA_VISIBLE_DEVICES`` as on a GPU node; TensorFlow would find no GPU, so the trials are the stand-in's.
``scripts/gpu_check.sh`` is the same search on a real GPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import ray
from conftest import FAIR_SHARE, FASHION_DIR, REPO, write_space
from test_bad_input import TF_BANNER

from analysis.accounting import busiest_overlap, trial_intervals
from tune_mlp.errors import UserInputError
from tune_mlp.search.plan import SearchOptions, trial_slots


@pytest.mark.parametrize(
    ("cpus", "gpus", "cluster", "slots"),
    [
        (1, 0.0, {"CPU": 4.0}, 4),  # no GPU asked: CPU slots alone, as before
        (1, 0.25, {"CPU": 4.0, "GPU": 1.0}, 4),
        (1, 0.5, {"CPU": 4.0, "GPU": 1.0}, 2),  # the GPUs are fewer
        (1, 0.25, {"CPU": 2.0, "GPU": 1.0}, 2),  # the CPUs are fewer
        (2, 0.1, {"CPU": 32.0, "GPU": 1.0}, 10),  # 1 / 0.1 counts 10, not 9
        (1, 1.0, {"CPU": 64.0, "GPU": 8.0}, 8),
        (1, 0.3, {"CPU": 8.0, "GPU": 1.0}, 3),
    ],
)
def test_trial_slots_are_the_fewer_of_cpu_and_gpu_slots(cpus: int, gpus: float, cluster: dict, slots: int) -> None:
    assert trial_slots(SearchOptions(cpus_per_trial=cpus, gpus_per_trial=gpus), cluster) == slots


@pytest.mark.parametrize(
    ("gpus", "cluster", "message"),
    [
        (1.0, {"CPU": 2.0}, "--gpus-per-trial 1: the Ray cluster has 0 GPU(s); give 0 (train on CPUs) or start Ray "
                            "on a GPU node"),
        (2.0, {"CPU": 8.0, "GPU": 1.0}, "--gpus-per-trial 2: the Ray cluster has 1 GPU(s); give at most 1"),
        (1.5, {"CPU": 8.0, "GPU": 4.0}, "--gpus-per-trial 1.5: above 1 a trial takes whole GPUs"),
    ],
)  # fmt: skip
def test_more_gpus_a_trial_than_the_cluster_has_is_named(gpus: float, cluster: dict, message: str) -> None:
    with pytest.raises(UserInputError) as raised:
        trial_slots(SearchOptions(gpus_per_trial=gpus), cluster)
    assert message in str(raised.value)


def test_trial_requests_carry_the_gpu_share_only_when_asked() -> None:
    from tune_mlp.search.tuner import _resources

    assert _resources(SearchOptions(cpus_per_trial=1, gpus_per_trial=0.25)) == {"cpu": 1, "gpu": 0.25}
    assert _resources(SearchOptions(cpus_per_trial=2)) == {"cpu": 2}


def test_memory_growth_is_a_no_op_without_gpus_and_leaves_tensorflow_unstarted() -> None:
    """In a fresh process, as a trial's worker: no GPU here, so nothing grows, and TensorFlow is not initialised
    by it (the threads can still be sized after it; they can no longer once an op ran)."""
    code = (
        "import tensorflow as tf\n"
        "from tune_mlp.mlp.trainer import configure_threads, grow_gpu_memory\n"
        "print(grow_gpu_memory())\n"
        "configure_threads(1)\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads())\n"
        "tf.constant(1.0) + 1.0\n"
        "print(grow_gpu_memory())\n"  # a reused worker: TensorFlow is running; still no error
    )
    env = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["[]", "1", "[]"]


def test_memory_growth_is_set_on_every_gpu_and_survives_a_started_tensorflow(monkeypatch) -> None:
    import tensorflow as tf

    from tune_mlp.mlp import trainer

    gpus = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"),
            tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]  # fmt: skip
    grown: dict[str, bool] = {}
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus if kind == "GPU" else [])
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", lambda gpu, on: grown.__setitem__(gpu.name, on))
    monkeypatch.setattr(tf.config.experimental, "get_memory_growth", lambda gpu: grown.get(gpu.name, False))
    assert trainer.grow_gpu_memory() == [gpu.name for gpu in gpus]
    assert grown == {gpu.name: True for gpu in gpus}

    def too_late(gpu, on):  # what TensorFlow raises once its devices are initialised
        raise RuntimeError("Physical devices cannot be modified after being initialized")

    grown.clear()
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", too_late)
    assert trainer.grow_gpu_memory() == []  # reported, not raised: the trial trains with TensorFlow's setting


@pytest.mark.ray
def test_four_quarter_gpu_trials_share_one_logical_gpu_at_once(tmp_path: Path, monkeypatch) -> None:
    # The stand-in's trials (no TensorFlow: here it would find no GPU and train on the CPU anyway): what is tested
    # is Ray's placement of 0.25-GPU trials and the CUDA_VISIBLE_DEVICES each trial reports (the MLP's trainable
    # reports it through the same `report_epochs`); six 3 s epochs and the workers at nice 0 (FAIR_SHARE), so that
    # four started workers overlap on a busy machine too (with four epochs at Ray's nice 15, CI's load once started
    # the last worker as the first trial ended).
    for name, value in FAIR_SHARE.items():
        monkeypatch.setenv(name, value)  # before ray.init: the raylet passes it to the workers
    space = write_space(tmp_path / "space.yaml", "parameters:\n  hidden_size: {values: [16, 32, 64, 128]}\n")
    options = SearchOptions(
        samples=4, max_epochs=6, grace_period=6, gpus_per_trial=0.25, space=space, stand_in=3.0,
        storage_path=str(tmp_path / "results"), name="gpu", no_wandb=True,
    )  # fmt: skip
    ray.init(num_cpus=4, num_gpus=1, include_dashboard=False, log_to_driver=False)
    try:
        from tune_mlp.records import SearchRecord
        from tune_mlp.search.tuner import run_search

        results = run_search(options)
    finally:
        ray.shutdown()
    rows = pd.concat([result.metrics_dataframe for result in results], ignore_index=True)
    assert rows["trial_id"].nunique() == 4 and not results.errors
    assert set(rows["gpu_ids"].astype(str)) == {"0"}  # Ray's CUDA_VISIBLE_DEVICES, in each trial
    assert rows.groupby("trial_id")["epoch"].max().tolist() == [6, 6, 6, 6]
    assert rows["pid"].nunique() == 4  # four workers, not one reused four times
    intervals = trial_intervals(rows)
    print(intervals.assign(start=intervals["start"] - intervals["start"].min(),
                           end=intervals["end"] - intervals["start"].min()))  # fmt: skip
    # Tune's timestamp is whole seconds: the latest start must come a second before the earliest end.
    assert intervals["start"].max() + 1 < intervals["end"].min()
    assert busiest_overlap(intervals) == 4
    assert SearchRecord.load(str(tmp_path / "results" / "gpu")).parts[-1]["slots"] == 4


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="needs apt-get install dataset-fashion-mnist")
def test_a_gpu_asked_of_a_cluster_without_one_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    """Known only once Ray is up (a local Ray on this machine finds no GPU); the search's opening line about
    the space file is on stdout, the error alone on stderr (tests/test_bad_input.py's table asserts an empty stdout)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "WANDB_", "TUNE_MLP_"))}
    env |= {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "tune_mlp.search", "--no_wandb", "--smoke-test", "--gpus-per-trial", "1"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    # Besides TensorFlow's banner, Ray's own start-up warning about token authentication (printed by ray.init
    # on this machine, before our check can run) is not ours to silence here.
    ray_auth = re.compile(r"^[\d-]+ [\d:,]+\s+WARNING authentication_token_setup\.py:\d+ -- Token authentication")
    lines = [line for line in done.stderr.splitlines() if line.strip() and not TF_BANNER.match(line)
             and not ray_auth.match(line)]  # fmt: skip
    assert lines == [
        "error: --gpus-per-trial 1: the Ray cluster has 0 GPU(s); give 0 (train on CPUs) or start Ray on a GPU node"
    ], done.stderr
    assert list(cwd.iterdir()) == []  # no ./ray_results, no lock left


def test_dry_run_shows_cpus_and_gpus_per_trial() -> None:
    args = ["--dry-run", "--space", "study", "--cpus-per-trial", "2", "--gpus-per-trial", "0.25"]
    done = subprocess.run([sys.executable, "-m", "tune_mlp.search", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "per trial: cpus 2, gpus 0.25; trials at once: as many as the cluster's CPUs and GPUs fit" in done.stdout
    done = subprocess.run([sys.executable, "-m", "tune_mlp.search", *args, "--concurrency", "3"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert "per trial: cpus 2, gpus 0.25; trials at once: 3" in done.stdout
