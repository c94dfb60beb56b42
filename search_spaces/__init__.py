"""The search spaces shipped with tune_mlp (W&B sweep YAML), installed as tune_mlp.search_spaces."""
