#!/bin/bash
# Slurm array job: each array task runs one shard of `unitcoder synth`; a dependent job merges them.
#
#   sbatch --array=0-15 examples/cluster/slurm_synth.sh /shared/corpus /shared/runs/stack
#   sbatch --dependency=afterok:<ARRAY_JOB_ID> --wrap \
#     "unitcoder merge /shared/runs/stack/shard-* --out /shared/runs/stack/merged && unitcoder report /shared/runs/stack/merged"
#
# Shards are split by a stable hash of each source file, so the N outputs are disjoint; with a corpus of
# many files (a Hub dataset such as hf:bigcode/the-stack-dedup:data/python/*.parquet), SHARD_BY=file
# gives each task whole files instead, so it reads and downloads only its own. A preempted or
# failed task is simply requeued: rerunning the same command resumes from its run directory (records and
# the model/execution caches are append-only and fsync'd).
#SBATCH --job-name=unitcoder-synth
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=%x-%A_%a.log
set -euo pipefail

CORPUS=${1:?usage: slurm_synth.sh CORPUS OUT_ROOT}
OUT_ROOT=${2:?usage: slurm_synth.sh CORPUS OUT_ROOT}
INDEX=${SLURM_ARRAY_TASK_ID:?run as an array job (sbatch --array=0-N)}
COUNT=${SLURM_ARRAY_TASK_COUNT:?run as an array job}

mkdir -p "$OUT_ROOT"
exec unitcoder synth \
  --corpus "$CORPUS" \
  --model "${UNITCODER_MODEL:-qwen2.5-coder-1.5b}" \
  --shard "$INDEX/$COUNT" \
  --shard-by "${SHARD_BY:-content}" \
  --jobs "${SLURM_CPUS_PER_TASK:-8}" \
  --seed 0 \
  --out "$OUT_ROOT/shard-$INDEX"
