#!/usr/bin/env bash
# Run the search's tier on a Ray release, in a fresh venv (scripts/compat.py says what each step checks).
#
#   scripts/compat.sh 2.52.1                    # python3.11 -m venv build/compat/ray-2.52.1, ray[default,tune]==2.52.1,
#                                               # pyproject's other dependencies, pip install --no-deps . ; the tier
#   scripts/compat.sh 2.52.1 --hyperopt 0.2.7   # and that HyperOpt
#   scripts/compat.sh --here                    # the tier in the current interpreter (CI, after the tests)
#
# Ends with a summary (step, seconds, PASS/FAIL); exit 1 if a step failed, 2 on bad arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--here" ]]; then
  exec "${PYTHON:-python}" scripts/compat.py "$@"
fi
exec python3.11 scripts/compat.py "$@"
