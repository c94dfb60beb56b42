"""What runs and searches write beside their results, as plain JSON (no Ray needed to read them).

- ``BestResult``: the best epoch. Training (``metrics.json``), the search driver (``best.json``) and
  analysis (``summary.json``) all write it with ``to_dict()`` and read it with ``from_dict``.
- ``SearchRecord`` (``search.json``): what a search was asked to do. The driver writes it before the
  first trial; analysis, ``--resume`` and extending a search read it, so the metric, its direction
  and the space are known from the experiment itself, never guessed.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from tune_mlp import storage
from tune_mlp.config import METRIC, MODE

SEARCH_FILE = "search.json"
BEST_FILE = "best.json"


@dataclass(frozen=True)
class BestResult:
    """The best epoch of a run or of a whole search, by ``metric`` in direction ``mode``."""

    metric: str  # what it was selected by
    mode: str  # max | min
    score: float  # the metric's value at that epoch
    epoch: int  # 1-based epoch of the chosen checkpoint
    checkpoint: str  # its folder (tune_mlp checkpoint format)
    config: dict[str, Any]  # the run's hyperparameters
    trial_id: str | None = None  # None for a plain training run
    test_accuracy: float | None = None  # the checkpoint scored once on the test set
    test_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BestResult:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass(frozen=True)
class SearchRecord:
    metric: str = METRIC  # what every part selects by
    mode: str = MODE  # max | min
    method: str = "bayes"  # the sweep file's method: bayes | random | grid
    searcher: str = "hyperopt_tpe"  # what ran it: hyperopt_tpe | random | grid
    # "samples" are trials asked for, "trials" are trials that ran (reported an epoch or errored): in every file.
    samples: int = 0  # trials the first part asked for (a grid: every combination x num_samples); -1: until a budget
    trials: int = 0  # trials that ran, over all parts (written as each part ends)
    num_samples: int = 0  # Tune's num_samples of the first part (a grid runs every combination that many times)
    scheduler: dict[str, Any] = field(default_factory=dict)  # ASHA's parameters, and whether the file set them
    space: str = ""  # the sweep / space file it came from
    used_keys: list[str] = field(default_factory=list)  # the file's keys that shaped the search
    ignored_keys: list[str] = field(default_factory=list)  # the file's keys about launching runs, not searching
    parameters: dict[str, Any] = field(default_factory=dict)  # the checked space, our names
    options: dict[str, Any] = field(default_factory=dict)  # the SearchOptions it ran with
    # One entry per driver run that added trials: the first Tune experiment is folder ".", an
    # extension (a later --samples) is a Tune experiment in a subfolder; see tune_mlp.search.results.
    parts: list[dict[str, Any]] = field(default_factory=list)

    def save(self, experiment: str) -> None:
        text = json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True, default=str) + "\n"
        storage.write_text(experiment, SEARCH_FILE, text)

    def describe(self) -> str:
        """How the search ran, in one line: the search's last output line and the report say it."""
        scheduler = self.scheduler
        last = self.parts[-1] if self.parts else {}
        asked = self.samples  # the first part's plan; an extension asked for its samples on top of what ran before
        if len(self.parts) > 1:
            asked = sum(int(part.get("trials", 0)) for part in self.parts[:-1]) + int(last.get("samples", 0))
        trials = "trials until the time budget ended" if last.get("until_budget") else f"{asked} trials"
        return (
            f"method {self.method} ({self.searcher}), {self.metric} ({self.mode}), ASHA max_t "
            f"{scheduler.get('max_t')} grace {scheduler.get('grace_period')} reduction "
            f"{scheduler.get('reduction_factor')}, {trials}"
        )

    def part_paths(self, experiment: str) -> list[str]:
        """The Tune experiment folders that make up this search, oldest first (just ``experiment`` if one)."""
        root = str(experiment).rstrip("/")
        folders = [part.get("folder", ".") for part in self.parts] or ["."]
        return [root if folder == "." else f"{root}/{folder}" for folder in folders]

    @classmethod
    def load(cls, experiment: str) -> SearchRecord | None:
        text = storage.read_text(experiment, SEARCH_FILE)
        if text is None:
            return None
        values = json.loads(text)
        if "num_samples" not in values:  # written before samples meant trials asked for (and trials, those that ran)
            values["num_samples"], values["samples"] = values.get("samples", 0), values.get("trials", 0)
            values["trials"] = sum(int(part.get("trials", 0)) for part in values.get("parts", []))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
