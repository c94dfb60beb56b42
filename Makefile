# The two commands of the README: `make search` runs the main job, `make test` the tests.
# Both first install what they need (scripts/setup.sh), so they work on a fresh machine.
# `make test` runs every test on five pytest-xdist workers (most tests wait on Ray, sleeps and child processes: with
# four the suite kept 2 cores ~70 % busy), a module to a worker (module fixtures stay whole; the session's smoke
# search is made once for all: tests/conftest.py).
# `make test-fast`: the tests that start no Ray and no child process (tests/tiers.py marks the others).
# `make compat`: the search's tier (scripts/compat.py) in this interpreter; `make compat RAY=2.52.1` in a fresh venv
# with that Ray release (docs/compat.md).
.PHONY: setup search test test-fast bench lint compat

setup:
	bash scripts/setup.sh

search: setup
	python -m tune_mlp.search --samples 20

test: setup
	python -m pytest -q -n 5 --dist loadfile --no-loadscope-reorder --durations=30

test-fast:
	python -m pytest -q -n 2 -m "not ray and not subprocess and not slow"

bench: setup
	python scripts/bench_train.py

lint:
	ruff check tune_mlp analysis scripts tests

compat:
	scripts/compat.sh $(if $(RAY),$(RAY),--here)
