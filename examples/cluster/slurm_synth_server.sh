#!/bin/bash
# Slurm array job: N synth shards (CPU nodes: retrieval and the sandbox) sharing a pool of model servers
# (GPU nodes running vLLM, SGLang, TGI or llama.cpp's server, each started e.g. as in vllm_server.sh).
# Shard i talks to server i mod R, so the load spreads without a load balancer; with one in front of
# the pool, give its single URL instead.
#
#   SERVERS="http://gpu01:8000/v1 http://gpu02:8000/v1" MODEL_NAME=Qwen/Qwen2.5-Coder-7B-Instruct \
#     sbatch --array=0-31 examples/cluster/slurm_synth_server.sh /shared/corpus /shared/runs/stack
#   sbatch --dependency=afterok:<ARRAY_JOB_ID> --wrap \
#     "unitcoder merge /shared/runs/stack/shard-* --out /shared/runs/stack/merged && unitcoder report /shared/runs/stack/merged"
#
# Each shard keeps --concurrency requests in flight: with S shards per server, S x concurrency should
# about fill the server's batch (vLLM's --max-num-seqs). A requeued or failed shard resumes from its run
# directory; the model cache is keyed by the served model's name, not the URL, so keep MODEL_NAME the
# same across reruns (a shard moved to another replica of the same model asks nothing twice).
#SBATCH --job-name=unitcoder-synth-server
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=%x-%A_%a.log
set -euo pipefail

CORPUS=${1:?usage: slurm_synth_server.sh CORPUS OUT_ROOT}
OUT_ROOT=${2:?usage: slurm_synth_server.sh CORPUS OUT_ROOT}
INDEX=${SLURM_ARRAY_TASK_ID:?run as an array job (sbatch --array=0-N)}
COUNT=${SLURM_ARRAY_TASK_COUNT:?run as an array job}
read -r -a POOL <<<"${SERVERS:?set SERVERS to the base URLs of the servers, space-separated}"
NAME=${MODEL_NAME:?set MODEL_NAME to the model name the servers serve}
URL=${POOL[$((INDEX % ${#POOL[@]}))]}

mkdir -p "$OUT_ROOT"
exec unitcoder synth \
  --corpus "$CORPUS" \
  --model "openai:$URL#$NAME" \
  --concurrency "${CONCURRENCY:-16}" \
  --shard "$INDEX/$COUNT" \
  --jobs "${SLURM_CPUS_PER_TASK:-8}" \
  --seed 0 \
  --out "$OUT_ROOT/shard-$INDEX"
