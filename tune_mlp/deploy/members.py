"""A search's kept checkpoints as ensemble members (by default the best of each trial), and the ensemble chosen among
them on the search's own validation split (``tune_mlp.deploy.ensemble`` does the choosing).

    ensemble = select_from_search("ray_results/NAME")       # reads the validation split only
    x_test, y_test = load_test_set(ensemble.config, data_dir)   # afterwards, to score what was chosen

The validation split is the one every trial was scored on (its data set, ``val_fraction``, ``split_seed``, and a
smoke test's slice), so choosing among checkpoints there is what the search itself did; the test set is read by
``load_test_set`` alone, and only after the choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tune_mlp.config import TrainConfig, is_better
from tune_mlp.deploy.ensemble import INIT_SIZE, MAX_SIZE, Selection, select_ensemble
from tune_mlp.errors import UserInputError
from tune_mlp.records import SearchRecord

# The candidates the selection chooses among. "best-of-trial" (the default): each trial's best kept checkpoint. Over six
# 5- and 10-minute searches it matched all kept checkpoints on test (-0.0007 to +0.0019) with 17-58 % fewer parameters:
# a trial's other kept epochs are near-duplicates of its best that the selection spreads weight over for nothing
# (docs/benchmarks.md, "Ensembles: what more members buy"). "kept": every kept checkpoint.
CANDIDATES = ("best-of-trial", "kept")

# tune_mlp.search.tuner's: a smoke test's trials train and validate on this stratified slice of the training set.
# Not imported: the tuner loads Ray and TensorFlow and is a training internal (tests check the two agree).
SMOKE_TRAIN_EXAMPLES = 3000


class EnsembleError(UserInputError, ValueError):
    """A search whose checkpoints cannot make an ensemble; the message says why and what to do."""


@dataclass(frozen=True, eq=False)
class Member:
    """One kept checkpoint of one trial."""

    trial_id: str
    epoch: int
    checkpoint: str  # its folder, or a URI
    score: float  # the search's metric at that epoch, as the trial reported it
    config: TrainConfig
    weights: list[np.ndarray]

    @property
    def parameters(self) -> int:
        return int(sum(w.size for w in self.weights))

    @property
    def input_size(self) -> int:
        return int(self.weights[0].shape[0])


@dataclass(frozen=True, eq=False)
class Ensemble:
    """What the selection chose, and the validation arrays it chose on (never the test set)."""

    experiment: str
    record: SearchRecord
    members: list[Member]  # the candidates (see CANDIDATES), in the search's order
    selection: Selection
    val_probabilities: np.ndarray  # (members, n_val, classes)
    y_val: np.ndarray
    best: int  # the single best member by the search's metric (what analysis and a plain export pick)
    candidates: str = CANDIDATES[0]  # what the members are: "best-of-trial" or "kept" (CANDIDATES)
    kept: int = 0  # kept checkpoints with a finite score in the search (members is a subset of them)

    @property
    def described(self) -> str:
        """The candidates in words, for the report and the model card."""
        if self.candidates == "best-of-trial":
            return f"the best checkpoint of each of its {len(self.members)} trials (of {self.kept} kept checkpoints)"
        return f"all its {len(self.members)} kept checkpoints"

    @property
    def config(self) -> TrainConfig:
        """The data every member shares (data set, split): the heaviest member's config."""
        return self.members[self.selection.chosen[0]].config

    @property
    def weights(self) -> np.ndarray:
        return self.selection.weights


def kept_checkpoints(experiment: str | Path) -> tuple[SearchRecord, list[Member]]:
    """The record and every kept checkpoint of every trial of every part, with a finite score."""
    from tune_mlp.mlp.checkpoint import load_checkpoint
    from tune_mlp.search.results import checkpoint_uri, load_search

    record, results = load_search(experiment)
    members: list[Member] = []
    seen: set[str] = set()
    for result in results:
        for checkpoint, metrics in result.best_checkpoints or []:
            score, uri = metrics.get(record.metric), checkpoint_uri(checkpoint)
            if score is None or not math.isfinite(float(score)) or uri in seen:
                continue  # a diverged epoch is no member
            seen.add(uri)
            loaded = load_checkpoint(uri)
            members.append(
                Member(str(metrics.get("trial_id", "")), int(metrics.get("epoch", loaded.epoch)), uri, float(score),
                       loaded.config, loaded.weights)
            )  # fmt: skip
    return record, members


def check_members(members: list[Member], experiment: str | Path) -> None:
    """One clear error if these checkpoints cannot be averaged on one validation split."""
    if len(members) < 2:
        raise EnsembleError(
            f"{experiment} has {len(members)} kept checkpoint{'' if len(members) == 1 else 's'} with a finite score: "
            "an ensemble needs at least 2; run a search with more trials (--samples) or export the single best "
            "without --ensemble"
        )
    first = members[0]
    for member in members[1:]:
        for what, mine, theirs in (
            ("input sizes", member.input_size, first.input_size),
            ("data sets", member.config.dataset, first.config.dataset),
            ("validation splits (val_fraction, split_seed)", (member.config.val_fraction, member.config.split_seed),
             (first.config.val_fraction, first.config.split_seed)),
        ):  # fmt: skip
            if mine != theirs:
                raise EnsembleError(
                    f"{experiment}: its checkpoints have different {what} ({first.checkpoint}: {theirs}, "
                    f"{member.checkpoint}: {mine}): an ensemble averages models of one input on one data set; "
                    "export them one by one"
                )


def validation_split(record: SearchRecord, config: TrainConfig, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The validation images and labels every trial of the search was scored on (no test arrays leave here)."""
    from tune_mlp.data import load_splits

    limit = SMOKE_TRAIN_EXAMPLES if record.options.get("smoke_test") else None
    splits = load_splits(config.dataset, data_dir, config.val_fraction, config.split_seed, limit=limit)
    return splits.x_val, splits.y_val


def load_test_set(config: TrainConfig, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The whole test set of the members' data set: read only to score models already chosen."""
    from tune_mlp.data import load_dataset

    _, (x_test, y_test) = load_dataset(config.dataset, data_dir)
    return np.array(x_test), np.array(y_test)


def member_probabilities(members: list[Member], x: np.ndarray) -> np.ndarray:
    """Each member's softmax output on `x`, (members, n, classes) float64: through the forward pass the trials were
    scored with (TensorFlow, float32; ten times the speed of the float64 numpy pass on a 60-checkpoint search)."""
    import tensorflow as tf

    from tune_mlp.mlp.model import forward

    images = tf.constant(x, tf.float32)
    return np.stack(
        [
            tf.nn.softmax(forward([tf.constant(w) for w in m.weights], images, m.config.activation)).numpy()
            for m in members
        ]
    ).astype(np.float64)


def single_best(members: list[Member], record: SearchRecord) -> int:
    """The member analysis picks: the first with the best score by the search's metric and mode."""
    best = 0
    for index, member in enumerate(members):
        if is_better(member.score, members[best].score, record.mode):
            best = index
    return best


def best_of_each_trial(members: list[Member], mode: str) -> list[Member]:
    """Each trial's best checkpoint by the search's metric and mode (the first on ties), in the search's order."""
    best: dict[str, Member] = {}
    for member in members:
        if member.trial_id not in best or is_better(member.score, best[member.trial_id].score, mode):
            best[member.trial_id] = member
    chosen = {id(m) for m in best.values()}
    return [m for m in members if id(m) in chosen]


def select_from_search(
    experiment: str | Path, data_dir: str | None = None, size: int | None = None, candidates: str = CANDIDATES[0]
) -> Ensemble:
    """Greedy ensemble selection over the search's candidates (``CANDIDATES``; a search of one trial: its kept
    checkpoints), on its validation split: the best point of up to ``MAX_SIZE`` picks, or exactly ``size`` picks."""
    if candidates not in CANDIDATES:
        raise ValueError(f"candidates must be one of {CANDIDATES}, got {candidates!r}")
    record, kept = kept_checkpoints(experiment)
    check_members(kept, experiment)
    members = best_of_each_trial(kept, record.mode) if candidates == "best-of-trial" else kept
    if len(members) < 2:  # one trial: its kept epochs are the only choice there is
        members, candidates = kept, "kept"
    x_val, y_val = validation_split(record, members[0].config, data_dir)
    probabilities = member_probabilities(members, x_val)
    selection = select_ensemble(probabilities, y_val, INIT_SIZE, size or MAX_SIZE, keep_best=size is None)
    best = single_best(members, record)
    return Ensemble(str(experiment), record, members, selection, probabilities, y_val, best, candidates, len(kept))
