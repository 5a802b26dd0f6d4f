#!/bin/bash
# A vLLM server on one GPU node and a synth run that uses it through `--model openai:URL#NAME`.
#
#   examples/cluster/vllm_server.sh /shared/corpus /shared/runs/vllm
#
# vLLM batches whatever requests are in flight, so synth keeps --concurrency of them open (and its
# --batch is raised to match). The run is resumable as usual: the model cache is keyed by the
# served model's NAME (not the URL), so rerunning after a crash of either side, even with the server
# back on another port, sends no request twice. A server
# that restarts mid-run is ridden out by the retries (--retries, backoff up to 30 s per attempt).
# The key, if the server wants one, is read from $OPENAI_API_KEY (or --api-key-env NAME) and never
# written anywhere.
set -euo pipefail

CORPUS=${1:?usage: vllm_server.sh CORPUS OUT}
OUT=${2:?usage: vllm_server.sh CORPUS OUT}
MODEL=${MODEL:-Qwen/Qwen2.5-Coder-7B-Instruct}
PORT=${PORT:-8000}

# --max-num-seqs bounds vLLM's batch; keep synth's --concurrency at or above it to fill it.
vllm serve "$MODEL" --port "$PORT" --max-num-seqs 64 --gpu-memory-utilization 0.9 &
SERVER=$!
trap 'kill $SERVER' EXIT
until curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null; do sleep 5; done

unitcoder synth \
  --corpus "$CORPUS" \
  --model "openai:http://127.0.0.1:$PORT/v1#$MODEL" \
  --concurrency 64 \
  --jobs "$(nproc)" \
  --seed 0 \
  --out "$OUT"
