"""The original study's experiments that train models: cross-entropy vs MSE, and the recommended configs on MNIST.

They train through ``tune_mlp.mlp.training.run_training`` (what ``python -m tune_mlp.train`` calls) and
hand their results to ``analysis``'s report writer: the one part of tune_mlp allowed to import analysis.
"""
