"""A non-editable install works: build the wheel, install it into a fresh virtual environment outside the
checkout, and run the main commands from a temporary folder (no source tree on the path)."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from conftest import FASHION_DIR

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The python of a venv holding only the wheel (dependencies come from this interpreter's site-packages)."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(root), str(REPO)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = root.glob("tune_mlp-*.whl")
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(root / "venv")
    python = root / "venv" / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return python


def run(python: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TUNE_MLP_DATA_DIR")}
    return subprocess.run(
        [str(python), *args], cwd=cwd, env={**env, "WANDB_MODE": "offline"}, capture_output=True, text=True, timeout=900
    )


def test_the_wheel_ships_the_spaces_and_imports_from_the_venv(installed, tmp_path) -> None:
    probe = run(
        installed, tmp_path, "-c",
        "import tune_mlp, tune_mlp.search.space as s; print(tune_mlp.__file__); print(sorted(p.name for p in "
        "s.SPACES_DIR.glob('*.yaml')))",
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr[-2000:]
    location, spaces = probe.stdout.strip().splitlines()[-2:]
    assert str(installed.parent.parent) in location and str(REPO) not in location
    assert spaces == "['default.yaml', 'study.yaml']"


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Fashion-MNIST is not installed")
def test_smoke_search_and_analysis_from_an_installed_wheel(installed, tmp_path) -> None:
    search = run(
        installed, tmp_path, "-m", "tune_mlp.search", "--smoke-test", "--no_wandb",
        "--storage-path", str(tmp_path / "results"), "--name", "wheel",
    )  # fmt: skip
    assert search.returncode == 0, search.stdout[-3000:] + search.stderr[-3000:]
    assert "2 trials ran, 0 errored" in search.stdout
    report = run(installed, tmp_path, "-m", "analysis", str(tmp_path / "results" / "wheel"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert "test_accuracy" in report.stdout
    assert (tmp_path / "results" / "wheel" / "analysis" / "confusion_matrix.png").stat().st_size > 5_000
