"""Old path of the W&B distributions as Tune domains: experiments written before 2026-12-06 with such a space hold
them pickled by this name in Tune's state, so reading or resuming one imports them from here."""

from tune_mlp.search.tune_space import SweepDistribution, _Draw

__all__ = ["SweepDistribution", "_Draw"]
