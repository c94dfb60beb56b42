"""``--searcher``: the peers the replay compares are one flag away, said in --dry-run, refused in one line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tune_mlp.errors import UserInputError
from tune_mlp.search import plan


def _search(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tune_mlp.search", *args], capture_output=True, text=True)


def test_dry_run_says_what_runs() -> None:
    out = _search("--space", "study", "--searcher", "optuna", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "searcher: --searcher optuna -> OptunaSearch (Optuna TPE, multivariate, constant liar; seed 0)" in out.stdout
    bohb = _search("--space", "study", "--searcher", "bohb", "--dry-run", "--seed", "3")
    assert "TuneBOHB (seed 3) with HyperBandForBOHB instead of HyperOpt and ASHA" in bohb.stdout


def test_a_missing_peer_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "optuna" else real(name))
    with pytest.raises(UserInputError, match=r"^--searcher optuna needs optuna: pip install 'tune_mlp\[peers\]'$"):
        plan.check_installed("optuna")
    plan.check_installed("bohb")  # installed here


def test_peer_searchers_are_the_real_ones() -> None:
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.bohb import TuneBOHB
    from ray.tune.search.optuna import OptunaSearch

    from tune_mlp.search.searchers import build

    optuna = build("optuna", {}, seed=1, concurrency=3, startup=10)
    assert isinstance(optuna, ConcurrencyLimiter) and isinstance(optuna.searcher, OptunaSearch)
    assert optuna.max_concurrent == 3
    assert isinstance(build("bohb", {}, seed=1, concurrency=3, startup=10), TuneBOHB)
    assert build("random", {}, seed=1, concurrency=3, startup=10) is None


def test_the_replay_variants_that_name_the_cause_of_optunas_lead() -> None:
    """ours-g50/g100: HyperOpt's gamma changed, nothing else; optuna-uni: Optuna one dimension at a time."""
    from tune_mlp.replay.peers import PEERS, Setting

    setting = Setting(workers=2, seed=0, max_t=9, startup=6)
    base = PEERS["ours"](setting)[0].searcher.algo.keywords
    for name, gamma in (("ours-g50", 0.5), ("ours-g100", 1.0)):
        keywords = PEERS[name](setting)[0].searcher.algo.keywords
        assert keywords == {**base, "gamma": gamma} and base["gamma"] == 0.25
    univariate = PEERS["optuna-uni"](setting)[0].searcher._sampler
    joint = PEERS["optuna"](setting)[0].searcher._sampler
    assert univariate._multivariate is False and joint._multivariate is None  # None: Optuna 5's default, joint
    assert univariate._n_startup_trials == joint._n_startup_trials == 6
