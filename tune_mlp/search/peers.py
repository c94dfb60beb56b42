"""``--searcher``: our HyperOpt TPE (the default), or a peer the replay benchmark compares it with.

    python -m tune_mlp.search --searcher optuna      # Optuna 5's TPE (multivariate, constant liar) via Ray
    python -m tune_mlp.search --searcher bohb        # TuneBOHB + HyperBandForBOHB instead of ASHA
    python -m tune_mlp.search --searcher random      # random draws + ASHA

optuna and bohb are an optional extra (``pip install 'tune_mlp[peers]'``); asking for one that is not
installed is refused in one line before anything runs. ``--dry-run`` says what runs.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from tune_mlp.errors import UserInputError

SEARCHERS = ("hyperopt", "optuna", "bohb", "random")
NEEDS = {"optuna": ("optuna",), "bohb": ("hpbandster", "ConfigSpace")}


def check_installed(searcher: str) -> None:
    """Refuse a peer whose library is missing, naming the extra that installs it."""
    missing = [name for name in NEEDS.get(searcher, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise UserInputError(f"--searcher {searcher} needs {' and '.join(missing)}: pip install 'tune_mlp[peers]'")


def describe(searcher: str, seed: int) -> str:
    """The ``--dry-run`` line of a peer searcher (hyperopt is described by the plan itself)."""
    return {
        "optuna": f"OptunaSearch (Optuna TPE, multivariate, constant liar; seed {seed}) instead of HyperOpt, "
        "warm-started in an extension as HyperOpt is",
        "bohb": f"TuneBOHB (seed {seed}) with HyperBandForBOHB instead of HyperOpt and ASHA",
        "random": "random search (Tune's BasicVariantGenerator) instead of HyperOpt",
    }[searcher]


def check_searcher(options: Any, plan: Any) -> None:
    """``--searcher`` before anything runs: its library installed, and a search it can drive."""
    if options.searcher == "hyperopt":
        return
    if plan.searcher != "hyperopt_tpe" and options.searcher != "random":
        raise UserInputError(
            f"--searcher {options.searcher}: the space's method gives {plan.searcher} search; "
            "use a space with method: bayes"
        )
    if options.searcher == "bohb" and options.time_budget:
        raise UserInputError("--searcher bohb does not take --time-budget (HyperBand pauses trials); drop one")
    check_installed(options.searcher)
