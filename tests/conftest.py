"""Shared fixtures: tiny learnable data made here, and the real Fashion-MNIST where installed."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("WANDB_MODE", "offline")  # tests never talk to W&B's servers
os.environ.setdefault("WANDB_SILENT", "true")

from tiers import mark_tiers, tier_guard  # noqa: E402, F401  (the tiers: tests/tiers.py)

from tune_mlp.data import CLASS_NAMES, Splits, load_splits  # noqa: E402
from tune_mlp.data.locate import DATA_DIR_ENV  # noqa: E402

# The modules that take longest (the timeline of `make test` on 2 cores, 2026-12-02), run first: `make test`'s
# xdist workers each take whole modules (--dist loadfile; --no-loadscope-reorder keeps this order, where xdist
# would start the modules with the most tests first), and a long module started last would leave the other
# workers idle while one finishes it. test_tuning first: its first test makes the session's smoke search, which
# test_bad_input's last cases wait for (its first ones need none).
SLOWEST_MODULES = ["test_tuning.py", "test_bad_input.py", "test_budget_extend.py", "test_cluster.py",
                   "test_cluster_s3.py", "test_wheel.py", "test_gpus.py", "test_recovery.py", "test_standin.py",
                   "test_exposure.py", "test_actors.py", "test_predict.py", "test_model_report.py", "test_sweep.py",
                   "test_trainer.py", "test_analysis_cli.py", "test_training.py", "test_optimizers.py"]  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tiers(items)
    first = {name: rank for rank, name in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: first.get(Path(str(item.path)).name, len(first)))  # stable: order kept within


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
REPO = Path(__file__).resolve().parent.parent
# The pictures of any model's report (a search's best or one model), and those only a search's report has.
MODEL_PNGS = [
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
    "per_class_accuracy.png",
    "sample_predictions.png",
]
SEARCH_PNGS = ["learning_curves.png", "best_so_far.png", "parallel_coordinates.png", "importance.png",
               "ensemble_trajectory.png", "pareto.png"]  # fmt: skip


def numpy_accuracy(weights: list[np.ndarray], activation: str, x: np.ndarray, y: np.ndarray) -> float:
    """The MLP's test accuracy in plain numpy, independent of TensorFlow and of tune_mlp.mlp.model."""
    act = {
        "relu": lambda z: np.maximum(z, 0),
        "tanh": np.tanh,
        "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
        "identity": lambda z: z,
    }[activation]
    h = x.astype(np.float64)
    for i in range(0, len(weights), 2):
        h = h @ weights[i] + weights[i + 1]
        if i + 2 < len(weights):
            h = act(h)
    return float(np.mean(h.argmax(axis=1) == y))


def make_tiny_splits(n_train: int = 1200, n_val: int = 300, n_test: int = 300, seed: int = 0) -> Splits:
    """Ten Gaussian blobs in 784-d pixel space: learnable in a few epochs, so accuracy is meaningful."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0.0, 1.0, size=(10, 784)).astype(np.float32)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 10, size=n)
        x = np.clip(centers[y] + rng.normal(0, 0.35, size=(n, 784)), 0, 1).astype(np.float32)
        return x, y.astype(np.int64)

    (xt, yt), (xv, yv), (xs, ys) = sample(n_train), sample(n_val), sample(n_test)
    return Splits(xt, yt, xv, yv, xs, ys, CLASS_NAMES["fashion_mnist"], "fashion_mnist")


@pytest.fixture(scope="session")
def tiny_splits() -> Splits:
    return make_tiny_splits()


@pytest.fixture(scope="session")
def fashion_splits() -> Splits:
    if not FASHION_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    return load_splits("fashion_mnist", str(FASHION_DIR), 0.1, 0)


@dataclasses.dataclass(frozen=True)
class SmokeSearch:
    """The session's one smoke search, as ``python -m tune_mlp.search --smoke-test`` makes it (W&B offline)."""

    path: Path  # the experiment folder; read-only: a test that edits it copies it first
    results: object  # the ray.tune.ResultGrid that run_search returned
    best: object  # the BestResult that write_best wrote to best.json, as the CLI does at the end


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder all of this session's pytest-xdist workers see (make test runs five); the base temp without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def smoke_search(tmp_path_factory: pytest.TempPathFactory) -> SmokeSearch:
    """One real smoke search for the whole session: every test that needs *a* finished search reads this one.

    Made once for all xdist workers: the first makes it under a file lock, the others read it (best.json last).
    """
    if not FASHION_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist")
    import ray
    from filelock import FileLock

    from tune_mlp.search.results import best_result, load_results
    from tune_mlp.search.tuner import SearchOptions, run_search, write_best

    root = shared_root(tmp_path_factory) / "experiments"
    root.mkdir(exist_ok=True)
    with FileLock(root / ".smoke.lock"):
        if not (root / "smoke" / "best.json").is_file():
            options = SearchOptions(
                smoke_test=True, samples=2, storage_path=str(root), name="smoke", wandb_project="tune_mlp_tests"
            )
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            try:
                write_best(run_search(options))
            finally:
                ray.shutdown()
    results = load_results(root / "smoke")
    return SmokeSearch(root / "smoke", results, best_result(results))


@pytest.fixture(scope="session")
def experiments(smoke_search: SmokeSearch) -> Path:
    """The folder of real experiments made by real smoke searches (read-only: a test that edits one copies it first).

    ``smoke``: the session's `smoke_search`, by val_accuracy (max); ``by-loss``: the same search selecting by
    val_loss (min); ``all-nan``: one trial whose loss diverges at once. Made once for all xdist workers.
    """
    import ray
    from filelock import FileLock

    from tune_mlp.search.tuner import SearchOptions, run_search

    root = smoke_search.path.parent
    with FileLock(root / ".experiments.lock"):
        if (root / ".experiments-made").is_file():
            return root
        by_loss = SearchOptions(smoke_test=True, samples=2, storage_path=str(root), name="by-loss", no_wandb=True,
                                metric="val_loss", mode="min")  # fmt: skip
        space = root / "nan.yaml"
        space.write_text(
            "parameters:\n  num_layers: {value: 2}\n  hidden_size: {value: 16}\n"
            "  batch_size: {value: 256}\n  optimizer: {value: sgd}\n  learning_rate: {value: 1000000.0}\n"
        )
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            run_search(by_loss)
            all_nan = dataclasses.replace(by_loss, name="all-nan", metric="val_accuracy", mode="max",
                                          smoke_test=False, samples=1, space=str(space), max_epochs=2,
                                          data_dir=str(FASHION_DIR))  # fmt: skip
            run_search(all_nan)
        finally:
            ray.shutdown()
        (root / ".experiments-made").touch()
    return root


@pytest.fixture
def isolated_data_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No data test may pick up a data dir or proxy from the developer's shell."""
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, object]:
    """Data look-up options that find nothing and never touch the network."""
    return {
        "allow_download": False,
        "debian_dirs": [tmp_path / "no-debian" / "fashion-mnist"],
        "keras_homes": [tmp_path / "no-keras"],
    }


# The search CLI as users run it, on a tiny space: shared by the search, budget and exposure tests.
TINY_SPACE = """
parameters:
  num_layers: {value: 1}
  hidden_size: {values: [16, 32]}
  batch_size: {value: 256}
  learning_rate: {distribution: log_uniform_values, min: 0.001, max: 0.01}
"""


def state_saved(experiment: Path) -> bool:
    """Tune's state is in the storage, whole: a driver killed now can be resumed. Tune copies its state files in
    place, so one appears before it is written (tune_mlp.search.recovery.torn_state)."""
    from tune_mlp import storage
    from tune_mlp.search.recovery import torn_state

    return storage.is_experiment(str(experiment)) and torn_state(str(experiment)) is None


def write_space(path: Path, text: str = TINY_SPACE) -> str:
    path.write_text(text)
    return str(path)


# Ray runs its workers at nice 15 (ray 2.60's `worker_niceness`, settable as RAY_worker_niceness) so a laptop
# stays responsive. Under make test the other workers' nice-0 processes (pytest, drivers, GCS, raylets) then starve a
# test's trial actors: with 24 busy nice-0 processes on 2 cores a stand-in trial's actor took 78 s to be created and
# a 2-minute budget ended before any trial reported (CI, stop 22); at nice 0 the same search ran its trials.
# Tests that time a search against the wall clock (a budget, trials that must overlap) run it with this.
FAIR_SHARE = {"RAY_worker_niceness": "0"}


def search_cli(
    *args: str, env: dict[str, str] | None = None, clean_wandb_home: Path | None = None, **popen
) -> subprocess.Popen[str]:
    """The search CLI in a subprocess; ``clean_wandb_home`` runs it as a user with no W&B settings or key."""
    base = dict(os.environ)
    if clean_wandb_home is not None:
        base = {k: v for k, v in base.items() if not k.startswith("WANDB")}
        clean_wandb_home.mkdir(parents=True, exist_ok=True)
        base["HOME"] = str(clean_wandb_home)
    return subprocess.Popen(
        [sys.executable, "-m", "tune_mlp.search", *args],
        cwd=REPO,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**base, **(env or {})},
        **popen,
    )


def run_module(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real one-epoch tune_mlp.train run and its export."""
    out = tmp_path_factory.mktemp("train") / "run"
    done = run_module(
        "tune_mlp.train", "--epochs", "1", "--num_layers", "1", "--hidden_size", "64", "--batch_size", "128",
        "--no_wandb", "--no_progress", "--output", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_module("tune_mlp.export", str(out), "--out", str(out / "exported"))
    assert done.returncode == 0, done.stderr[-3000:]
    return out
