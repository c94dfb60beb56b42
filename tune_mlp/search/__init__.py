"""The search: Ray Tune, HyperOpt and W&B. ``python -m tune_mlp.search`` is ``cli.py``.

Importing this package imports nothing heavy: ``analysis`` reads ``results`` from here.
"""
