#!/usr/bin/env bash
# Submit the hyperparameter search to a running Ray cluster as a Ray job (docs/cluster.md).
#
#   scripts/submit.sh [flags of python -m tune_mlp.search]
#   scripts/submit.sh --smoke-test --no_wandb
#   scripts/submit.sh --samples 40 --storage-path s3://my-bucket/ray_results
#
# The repository (minus results, see scripts/runtime_env.yaml) is uploaded as the job's working
# directory, and the job runs `python -m tune_mlp.search --address auto ...` on the head node
# with the cluster's own python. Without --storage-path the results land in ~/ray_results on the
# head, which is only right for a single machine: give a cluster an s3://, gs:// or NFS path.
#
# Environment:
#   RAY_ADDRESS     the job server (dashboard) URL, default http://127.0.0.1:8265. It listens on the
#                   head's 127.0.0.1 only: forward it first with `ray dashboard scripts/cluster.yaml`
#                   or `ssh -L 8265:127.0.0.1:8265 HEAD`.
#   RAY_AUTH_TOKEN  the cluster's token; otherwise the file $RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token.
#                   The `ray` CLI sends it as an HTTP header; this script never reads or copies it.
#   WANDB_API_KEY   optional; handed to the job's runtime environment in memory (a pipe), never
#                   written to a file nor put on a command line.
#   SUBMISSION_ID   optional job id (default tune-mlp-<time>), also the experiment name unless
#                   --name or --resume is given.
set -euo pipefail
cd "$(dirname "$0")/.."

address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
case "$address" in
  http://* | https://*) ;;
  *)
    echo "error: RAY_ADDRESS=$address: ray job submit talks to the job server, an http:// URL such as" \
         "http://127.0.0.1:8265 (the dashboard port), not a GCS address or 'auto'" >&2
    exit 2
    ;;
esac

# Token authentication: the ray CLI reads RAY_AUTH_TOKEN, else $RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token.
export RAY_AUTH_MODE=token
if [ -z "${RAY_AUTH_TOKEN:-}" ]; then
  token_file="${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}"
  if [ ! -s "$token_file" ]; then
    echo "error: no Ray auth token: set RAY_AUTH_TOKEN or put the cluster's token in $token_file" \
         "(the head prints it with 'ray get-auth-token'; scripts/cluster.yaml copies yours to the nodes)" >&2
    exit 2
  fi
fi

command -v ray >/dev/null 2>&1 || { echo "error: no 'ray' command: pip install 'ray[default]'" >&2; exit 2; }
python_bin="$(command -v python || command -v python3 || true)"

# What the job will be called and where it writes, to tell the user at the end.
storage="" name="" resume=0 wandb=1 prev=""
for arg in "$@"; do
  case "$prev" in
    --storage-path | --storage_path) storage="$arg" ;;
    --name) name="$arg" ;;
  esac
  case "$arg" in
    --storage-path=* | --storage_path=*) storage="${arg#*=}" ;;
    --name=*) name="${arg#*=}" ;;
    --resume) resume=1 ;;
    --no_wandb | --no-wandb) wandb=0 ;;
  esac
  prev="$arg"
done

submission_id="${SUBMISSION_ID:-tune-mlp-$(date +%Y%m%d-%H%M%S)}"
extra=()
if [ -z "$storage" ]; then
  storage="~/ray_results"  # expanded by the driver on the head, not here
  extra+=(--storage-path "$storage")
fi
if [ -z "$name" ] && [ "$resume" = 0 ]; then
  name="$submission_id"
  extra+=(--name "$name")
fi

search_args=("$@")
submit() {  # $1: the runtime env file
  ray job submit \
    --address "$address" \
    --working-dir . \
    --runtime-env "$1" \
    --submission-id "$submission_id" \
    --no-wait \
    -- python -m tune_mlp.search --address auto ${extra[@]+"${extra[@]}"} ${search_args[@]+"${search_args[@]}"}
}

if [ "$wandb" = 1 ] && [ -n "${WANDB_API_KEY:-}" ]; then
  [ -n "$python_bin" ] || { echo "error: python is needed to add WANDB_API_KEY to the runtime env" >&2; exit 2; }
  echo "W&B: WANDB_API_KEY goes to the job's environment (logging online)"
  # runtime_env.yaml plus the key, read by ray from a pipe: no file and no command line holds the key.
  submit <("$python_bin" -c '
import json, os, sys
import yaml
env = yaml.safe_load(open(sys.argv[1])) or {}
env.setdefault("env_vars", {})["WANDB_API_KEY"] = os.environ["WANDB_API_KEY"]
json.dump(env, sys.stdout)
' scripts/runtime_env.yaml)
else
  if [ "$wandb" = 1 ]; then
    echo "W&B: no WANDB_API_KEY here; the job logs offline unless the cluster's nodes have a key"
  fi
  submit scripts/runtime_env.yaml
fi

case "$storage" in
  s3://*) fetch="aws s3 sync ${storage%/}/${name:-NAME} ./ray_results/${name:-NAME}" ;;
  gs://*) fetch="gcloud storage rsync -r ${storage%/}/${name:-NAME} ./ray_results/${name:-NAME}" ;;
  *://*) fetch="copy ${storage%/}/${name:-NAME} to ./ray_results/ with your storage's tool" ;;
  *) fetch="ray rsync-down scripts/cluster.yaml '${storage%/}/${name:-NAME}' ./ray_results/   (a ray up cluster)" ;;
esac
cat <<EOF

Submitted job $submission_id to $address. With RAY_AUTH_MODE=token and the same token as here:
  follow:  ray job logs -f $submission_id --address $address
  status:  ray job status $submission_id --address $address
  stop:    ray job stop $submission_id --address $address
Results: ${storage%/}/${name:-<newest experiment>} on the cluster; the job log ends with the best trial.
  fetch:   $fetch
  report:  python -m analysis ./ray_results/${name:-NAME} --out reports/${name:-NAME}
  resume:  scripts/submit.sh --name ${name:-NAME} [same flags]   (after a driver crash or ray job stop)
EOF
