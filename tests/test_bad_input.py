"""Bad input to every command-line tool, as users run them: one clear line, exit code 2, nothing on disk changed.

One table: (command, arguments, what the message must say). Two shapes of answer, asserted exactly:
- ``error: ...``: our own checks (``tune_mlp.errors.UserInputError``), exactly one line on stderr;
- a flag argparse rejects: its usage block, then exactly one ``PROG: error: argument --FLAG: ...`` line
  (the convention every argparse tool shares; the usage lines only restate the flags).
The experiments come from real smoke searches (conftest's ``experiments``) copied and broken here; the cases
that need none run first.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from s3_server import S3Server, s3_server

from tune_mlp.mlp.checkpoint import CONFIG_FILE, WEIGHTS_FILE

REPO = Path(__file__).resolve().parent.parent
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
# What TensorFlow's C++ logging prints on stderr when it is imported (before any of our output): a CLI whose
# input is found bad only once TensorFlow is loaded shows these above its one error line.
TF_BANNER = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called|[IWE]\d{4} [\d:.]+ +\d+ \S+:\d+\])"
)

SEARCH = ["-m", "tune_mlp.search", "--no_wandb"]
ANALYSIS = ["-m", "analysis"]
TRAIN = ["-m", "tune_mlp.train", "--no_wandb", "--no_progress", "-e", "1"]
LOSSES = ["-m", "tune_mlp.study.compare_losses", "--no-progress", "--epochs", "1"]
MNIST = ["-m", "tune_mlp.study.mnist_configs", "--no-progress", "--epochs", "1"]
EXPORT = ["-m", "tune_mlp.export"]
PREDICT = ["-m", "tune_mlp.predict"]

# The S3 cases' environment: the server, credentials that are nobody's, and no other place to look for them.
S3_ENV = {
    "AWS_ENDPOINT_URL": "{s3}",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "{secret}",
    "AWS_REGION": "us-east-1",
    "AWS_SHARED_CREDENTIALS_FILE": "{root}/no-credentials",
    "AWS_CONFIG_FILE": "{root}/no-config",
    "AWS_EC2_METADATA_DISABLED": "true",
}
SECRET = "bad-input-secret-0123456789"  # must appear in no output

# (id, command + arguments ({root}: this module's folder), "error" or "usage", a fragment of the error line
#  [, environment])
CASES = [
    ("replay-unknown-searcher", [str(REPO / "scripts" / "bench_replay.py"), "--searchers", "ours", "nope@3"], "error",
     "--searchers nope@3: not a replayed searcher; give some of ours, "),
    ("search-samples-0", SEARCH + ["--samples", "0"], "usage", "argument --samples: invalid value 0 (must be >= 1)"),
    ("search-cpus-0", SEARCH + ["--cpus-per-trial", "0"], "usage", "argument --cpus_per_trial: invalid value 0"),
    ("search-concurrency--1", SEARCH + ["--concurrency", "-1"], "usage", "argument --concurrency: invalid value -1"),
    ("search-gpus--1", SEARCH + ["--gpus-per-trial", "-1"], "usage",
     "argument --gpus_per_trial: invalid value -1.0 (must be >= 0.0)"),
    ("search-gpus-word", SEARCH + ["--gpus-per-trial", "quarter"], "usage",
     "argument --gpus_per_trial/--gpus-per-trial: invalid float value: 'quarter'"),
    ("search-budget-0", SEARCH + ["--time-budget", "0"], "error", "--time-budget '0': the budget must be more than 0"),
    ("search-storage-file", SEARCH + ["--storage-path", "{root}/a-file"], "error", "a-file is a file, not a folder"),
    ("search-storage-under-file", SEARCH + ["--storage-path", "{root}/a-file/results"], "error",
     "a-file is a file, not a folder; give a folder"),
    # Tests run as root, and root may write any folder whatever its mode bits, so chmod proves nothing here:
    # /proc is a folder that no one, root included, can create anything in.
    ("search-storage-unwritable", SEARCH + ["--storage-path", "/proc/tune_mlp_results"], "error",
     "/proc is not writable; give a folder you can write to"),
    ("search-resume-nothing", SEARCH + ["--resume", "--storage-path", "{root}/missing"], "error",
     "--resume: no experiment to resume in"),
    ("search-space-missing", SEARCH + ["--space", "{root}/missing.yaml"], "error", "missing.yaml"),
    # A driver killed while Tune copied its state to the storage (tune_mlp.search.recovery.torn_state).
    ("search-resume-torn-state", SEARCH + ["--smoke-test", "--resume", "--storage-path", "{root}/torn", "--name",
     "killed"], "error", "torn/killed cannot be resumed: Tune's saved state experiment_state-"),
    ("analysis-missing", ANALYSIS + ["{root}/missing"], "error",
     "missing does not exist: give an experiment, a training run, a checkpoint or an export"),
    ("analysis-not-experiment", ANALYSIS + ["{root}/not-an-experiment"], "error",
     "is not a tune_mlp model: give an experiment folder"),
    ("analysis-all-diverged", ANALYSIS + ["{root}/all-nan"], "error",
     "all-nan: no trial of this experiment reported a finite val_accuracy"),
    ("analysis-truncated-weights", ANALYSIS + ["{root}/truncated"], "error", "weights.npz is truncated or damaged"),
    ("analysis-config-not-json", ANALYSIS + ["{root}/not-json"], "error", "config.json is not JSON"),
    ("train-epochs-0", TRAIN[:-2] + ["-e", "0"], "usage", "argument --epochs: invalid value 0"),
    ("train-data-missing", TRAIN + ["--data-dir", "{root}/missing", "--output", "{root}/run"], "error",
     "missing"),
    ("train-resume-truncated", TRAIN + ["--resume", "--output", "{root}/run-truncated", "--data-dir", str(FASHION_DIR)],
     "error", "weights.npz is truncated or damaged"),
    ("train-resume-not-json", TRAIN + ["--resume", "--output", "{root}/run-not-json", "--data-dir", str(FASHION_DIR)],
     "error", "config.json is not JSON"),
    ("losses-data-missing", LOSSES + ["--data-dir", "{root}/missing", "--out", "{root}/losses"], "error", "missing"),
    ("mnist-experiment-missing", MNIST + ["--experiment", "{root}/missing", "--out", "{root}/mnist"], "error",
     "missing does not exist"),
    ("mnist-not-experiment", MNIST + ["--experiment", "{root}/not-an-experiment", "--out", "{root}/mnist"], "error",
     "is not a Ray Tune experiment"),
    ("mnist-all-diverged", MNIST + ["--experiment", "{root}/all-nan", "--out", "{root}/mnist"], "error",
     "all-nan: no trial of this experiment reported a finite val_accuracy"),
    ("export-missing", EXPORT + ["{root}/missing", "--out", "{root}/export"], "error", "missing does not exist"),
    ("export-not-a-model", EXPORT + ["{root}/not-an-experiment", "--out", "{root}/export"], "error",
     "is not a tune_mlp model"),
    ("export-all-diverged", EXPORT + ["{root}/all-nan", "--out", "{root}/export"], "error",
     "no trial of this experiment reported a finite val_accuracy"),
    ("export-truncated-weights", EXPORT + ["{root}/truncated", "--out", "{root}/export"], "error",
     "weights.npz is truncated or damaged"),
    # --ensemble (docs/ensemble.md): checkpoints that cannot be averaged, found before anything is written
    ("export-ensemble-one-checkpoint", EXPORT + ["{root}/one-checkpoint", "--ensemble", "--out", "{root}/export"],
     "error", "one-checkpoint has 1 kept checkpoint with a finite score: an ensemble needs at least 2; run a search"),
    ("export-ensemble-two-data-sets", EXPORT + ["{root}/two-data-sets", "--ensemble", "--out", "{root}/export"],
     "error", "its checkpoints have different data sets ("),
    ("export-ensemble-of-a-checkpoint", EXPORT + ["{root}/a-checkpoint", "--ensemble", "--out", "{root}/export"],
     "error", "--ensemble: {root}/a-checkpoint is a checkpoint, not a search: give an experiment folder"),
    ("export-pick-unreachable", EXPORT + ["{root}/smoke", "--pick", "smallest-reaching", "0.999", "--out",
     "{root}/export"], "error", "--pick smallest-reaching 0.999: no kept checkpoint of {root}/smoke reaches it (the "
     "best is 0."),
    ("export-pick-unknown-rule", EXPORT + ["{root}/missing", "--pick", "fastest", "1", "--out", "{root}/export"],
     "usage", "argument --pick: 'fastest' is not a rule; give one of smallest-within, smallest-reaching"),
    ("export-pick-not-a-number", EXPORT + ["{root}/missing", "--pick", "smallest-within", "half", "--out",
     "{root}/export"], "usage", "argument --pick: 'half' is not a number (e.g. --pick smallest-within 0.005)"),
    ("export-ensemble-size-0", EXPORT + ["{root}/missing", "--ensemble", "--ensemble-size", "0", "--out",
     "{root}/export"], "usage", "argument --ensemble_size: invalid value 0 (must be >= 1)"),
    ("predict-not-a-model", PREDICT + ["{root}/not-an-experiment", "{root}/not-an-experiment"], "error",
     "is not a tune_mlp model"),
    ("predict-no-images", PREDICT + ["{root}/smoke", "{root}/empty"], "error", "empty"),
    # S3 storage (a moto server, tests/s3_server.py; {s3} its address, {down} a port nothing listens on), checked
    # before Ray starts; the fifth item is the environment the case runs with.
    ("search-s3-server-down", SEARCH + ["--storage-path", "s3://results/ray_results"], "error",
     "cannot reach the storage server (http://127.0.0.1:", S3_ENV | {"AWS_ENDPOINT_URL": "{down}"}),
    ("search-s3-no-bucket", SEARCH + ["--storage-path", "s3://no-such-bucket/ray_results"], "error",
     "bucket no-such-bucket does not exist at http://127.0.0.1:", S3_ENV),
    ("search-s3-no-credentials", SEARCH + ["--storage-path", "s3://results/ray_results"], "error",
     "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
     {key: value for key, value in S3_ENV.items() if key not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}),
    ("search-s3-secret-in-uri", SEARCH + ["--storage-path", "s3://AKIAEXAMPLE:{secret}@results/ray_results"], "error",
     "--storage-path s3://results/ray_results: give the endpoint and credentials in the environment", S3_ENV),
]  # fmt: skip


def _break_checkpoints(experiment: Path, name: str, damage: str) -> None:
    for directory in experiment.glob("trial_*/checkpoint_*"):
        if damage == "truncate":
            data = (directory / name).read_bytes()
            (directory / name).write_bytes(data[: len(data) // 2])
        else:
            (directory / name).write_text("{'num_layers': 2,")  # Python, not JSON


def _tear_state(experiment: Path) -> None:
    """What a driver killed while Tune copied its state leaves: its run never ended, its state file empty."""
    record = json.loads((experiment / "search.json").read_text())
    record["parts"][-1]["ended_by"] = None
    (experiment / "search.json").write_text(json.dumps(record))
    next(experiment.glob("experiment_state-*.json")).write_text("")


# The folders copied from the real experiments: a case that names one waits for conftest's ``experiments`` (two
# more smoke searches after the session's); the others run first, while those are being made.
EXPERIMENT_COPIES = ("all-nan", "smoke", "torn", "truncated", "not-json", "run-truncated", "run-not-json",
                     "one-checkpoint", "two-data-sets", "a-checkpoint")  # fmt: skip


def needs_experiments(command: list[str]) -> bool:
    return any(f"{{root}}/{name}" in arg for arg in command for name in EXPERIMENT_COPIES)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cases' folder: a file, a plain folder, an empty one; ``broken`` adds the experiments' copies."""
    root = tmp_path_factory.mktemp("bad-input")
    (root / "a-file").write_text("not a folder\n")
    (root / "not-an-experiment").mkdir()
    (root / "not-an-experiment" / "notes.txt").write_text("a folder, but no experiment_state-*.json\n")
    (root / "empty").mkdir()  # a folder of no images
    (root / "cwd").mkdir()  # the commands' working directory: a default output folder would appear here
    return root


@pytest.fixture(scope="module")
def broken(root: Path, experiments: Path) -> Path:
    """Copies of the real experiments in ``root``, broken in one way each, and two broken train runs."""
    shutil.copytree(experiments / "all-nan", root / "all-nan")
    shutil.copytree(experiments / "smoke", root / "smoke")
    _tear_state(shutil.copytree(experiments / "smoke", root / "torn" / "killed"))
    for name, file, damage in (("truncated", WEIGHTS_FILE, "truncate"), ("not-json", CONFIG_FILE, "python")):
        shutil.copytree(experiments / "smoke", root / name)
        _break_checkpoints(root / name, file, damage)
        run = root / f"run-{name}" / "last_checkpoint"
        shutil.copytree(next((root / name).glob("trial_*/checkpoint_*")), run)
    shutil.copytree(next((experiments / "smoke").glob("trial_*/checkpoint_*")), root / "a-checkpoint")
    shutil.copytree(experiments / "smoke", root / "two-data-sets")
    for config in sorted((root / "two-data-sets").glob("trial_*/checkpoint_*/config.json"))[-1:]:
        config.write_text(config.read_text().replace('"fashion_mnist"', '"mnist"'))  # one checkpoint's data set
    _one_checkpoint_search(root)
    return root


def _one_checkpoint_search(root: Path) -> None:
    """A real search that keeps one checkpoint (one trial of one epoch): no ensemble can be made of it."""
    import ray

    from tune_mlp.search.tuner import SearchOptions, run_search

    space = root / "one-epoch.yaml"
    space.write_text(
        "parameters:\n  num_layers: {value: 1}\n  hidden_size: {value: 16}\n  batch_size: {value: 256}\n"
        "  optimizer: {value: adam}\n  learning_rate: {value: 0.001}\n"
    )
    options = SearchOptions(samples=1, max_epochs=1, space=str(space), no_wandb=True, data_dir=str(FASHION_DIR),
                            storage_path=str(root), name="one-checkpoint")  # fmt: skip
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_search(options)
    finally:
        ray.shutdown()


def _snapshot(folder: Path) -> dict[str, str]:
    """Every path under the folder with its content's hash (folders: empty)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        for path in sorted(folder.rglob("*"))
    }


def _error_line(stderr: str, shape: str, prog: str) -> str:
    """The one error line, after checking that stderr holds nothing else (TensorFlow's banner aside)."""
    lines = [line for line in stderr.splitlines() if line.strip() and not TF_BANNER.match(line)]
    if shape == "usage":
        assert lines and lines[0].startswith("usage: python -m "), stderr
        assert all(line.startswith(" ") for line in lines[1:-1]), stderr  # the usage block's continuation lines
        assert lines[-1].startswith(f"{prog}: error: "), stderr
        return lines[-1]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error:' line, got:\n{stderr}"
    return lines[0]


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """A real S3 server with one bucket, ``results``, for the cases that name ``{s3}``."""
    pytest.importorskip("moto", reason="moto (the S3 server) is not installed")
    pytest.importorskip("boto3", reason="boto3 (to read the bucket) is not installed")
    with s3_server() as server:
        server.client().create_bucket(Bucket="results")
        yield server


def _bucket_snapshot(s3: S3Server) -> dict[str, list[str]]:
    buckets = [bucket["Name"] for bucket in s3.client().list_buckets()["Buckets"]]
    return {bucket: s3.keys(bucket) for bucket in buckets}


# Those cases last (a stable sort: the table's order otherwise), marked 'ray': the experiments start Ray here.
PARAMS = [
    pytest.param(
        *c[1:4], c[4] if len(c) > 4 else {}, id=c[0], marks=[pytest.mark.ray] if needs_experiments(c[1]) else []
    )
    for c in sorted(CASES, key=lambda c: needs_experiments(c[1]))
]


@pytest.mark.parametrize(("command", "shape", "fragment", "case_env"), PARAMS)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    root: Path, command: list[str], shape: str, fragment: str, case_env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if needs_experiments(command):
        request.getfixturevalue("broken")
    s3 = request.getfixturevalue("s3") if case_env else None
    places = {"{root}": str(root), "{secret}": SECRET}
    if s3:
        places |= {"{s3}": s3.endpoint, "{down}": f"http://127.0.0.1:{_closed_port()}"}

    def fill(text: str) -> str:
        for name, value in places.items():
            text = text.replace(name, value)
        return text

    args = [fill(arg) for arg in command]
    prefixes = ("RAY_", "WANDB_", "TUNE_MLP_", "AWS_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env |= {key: fill(value) for key, value in case_env.items()}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    before, bucket_before = _snapshot(root), _bucket_snapshot(s3) if s3 else None
    ran = subprocess.run([sys.executable, *args], cwd=root / "cwd", env=env, capture_output=True, text=True,
                         timeout=240)  # fmt: skip
    assert ran.returncode == 2, f"exit {ran.returncode}\nstdout:\n{ran.stdout[-2000:]}\nstderr:\n{ran.stderr[-4000:]}"
    line = _error_line(ran.stderr, shape, f"python -m {args[1]}")
    assert fill(fragment) in line, line
    assert ran.stdout == "", ran.stdout
    assert SECRET not in ran.stderr
    assert _snapshot(root) == before  # nothing written, moved or removed: not even an empty folder
    if s3:
        assert _bucket_snapshot(s3) == bucket_before  # nor in the object storage: no object, no bucket


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
