"""Using the winner: what a model path is, image files in (``python -m tune_mlp.export|predict`` are the commands)."""
