# The two commands of the README: `make search` runs the main job, `make test` the tests.
# Both first install what they need (scripts/setup.sh), so they work on a fresh machine.
.PHONY: setup search test bench lint

setup:
	bash scripts/setup.sh

search: setup
	python -m tune_mlp.search --samples 20

test: setup
	python -m pytest -q

bench: setup
	python scripts/bench_train.py

lint:
	ruff check tune_mlp analysis scripts tests
