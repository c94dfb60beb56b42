#!/usr/bin/env bash
# Submit the hyperparameter search to a running Ray cluster as a Ray job (docs/cluster.md).
#
#   scripts/submit.sh [flags of python -m tune_mlp.search]
#   scripts/submit.sh --smoke-test --no_wandb
#   scripts/submit.sh --samples 40 --storage-path s3://my-bucket/ray_results
#
# The same as `python -m tune_mlp.search --address "$RAY_ADDRESS" ...`: tune_mlp/cluster/job.py builds and submits
# the job (the tune_mlp package as py_modules, the search space, tune_mlp/cluster/runtime_env.yaml), checks the token,
# names the experiment after the submission id unless --name or --resume is given, and prints the commands
# to follow, stop and fetch it. Without --storage-path the results land in ~/ray_results on the head, which
# is only right for a single machine: give a cluster an s3://, gs:// or NFS path.
#
# Environment:
#   RAY_ADDRESS     the job server (dashboard) URL, default http://127.0.0.1:8265. It listens on the
#                   head's 127.0.0.1 only: forward it first with `ray dashboard scripts/cluster.yaml`
#                   or `ssh -L 8265:127.0.0.1:8265 HEAD`.
#   RAY_AUTH_TOKEN  the cluster's token; otherwise the file $RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
#                   Ray's client sends it as an HTTP header; nothing here writes or copies it.
#   WANDB_API_KEY   stays here: Ray logs a job's runtime env in clear text, so the head needs its own key
#                   (wandb login there) for online logging; otherwise the job logs offline.
#   SUBMISSION_ID   optional job id (default tune-mlp-<time>), also the experiment name unless
#                   --name or --resume is given.
set -euo pipefail

address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
case "$address" in
  http://* | https://*) ;;
  *)
    echo "error: RAY_ADDRESS=$address: a job is submitted to the job server, an http:// URL such as" \
         "http://127.0.0.1:8265 (the dashboard port), not a GCS address or 'auto'" >&2
    exit 2
    ;;
esac
# From a checkout, its tune_mlp comes first; an installed tune_mlp otherwise.
export PYTHONPATH="$(cd "$(dirname "$0")/.." && pwd)${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" -m tune_mlp.search --address "$address" "$@"
