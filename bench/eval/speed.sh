#!/usr/bin/env bash
# Side-by-side speed of scoring HumanEval+ samples: evalplus 0.3.1 vs `unitcoder eval score`, same
# samples, same machine, ground truth cached for both (each tool's first run computes it).
#
#   bash bench/eval/speed.sh UNITCODER_BIN EVALPLUS_VENV_PYTHON [JOBS]
#
# Samples: two per task (the canonical solution and its first mutant), 328 in all, taken from the
# set scripts/eval-agreement/agreement.py builds; run that script first (it writes /tmp/agreement).
set -euo pipefail
bin="$1"; evalplus_py="$2"; jobs="${3:-2}"
data="$(cd "$(dirname "$0")/../.." && pwd)/../shared/benchmarks/evalplus/HumanEvalPlus-v0.1.10.jsonl.gz"
work="$(mktemp -d)"
python3 - "$work/samples.jsonl" <<'PY'
import json, sys, collections
seen = collections.Counter()
with open(sys.argv[1], "w") as out:
    for line in open("/tmp/agreement/evalplus/samples.jsonl"):
        s = json.loads(line)
        if seen[s["task_id"]] < 2:
            seen[s["task_id"]] += 1
            out.write(line)
PY
# Warm both ground-truth caches.
HUMANEVAL_OVERRIDE_PATH="$data" "$evalplus_py" -m evalplus.evaluate --dataset humaneval --samples "$work/samples.jsonl" --parallel "$jobs" --i-just-wanna-run >/dev/null
"$bin" eval score --benchmark humaneval-plus --data "$data" --samples "$work/samples.jsonl" --out "$work/ours" --jobs "$jobs" >/dev/null || true
t0=$(date +%s.%N)
HUMANEVAL_OVERRIDE_PATH="$data" "$evalplus_py" -m evalplus.evaluate --dataset humaneval --samples "$work/samples.jsonl" --parallel "$jobs" --i-just-wanna-run >/dev/null
t1=$(date +%s.%N)
"$bin" eval score --benchmark humaneval-plus --data "$data" --samples "$work/samples.jsonl" --out "$work/ours" --jobs "$jobs" >/dev/null || true
t2=$(date +%s.%N)
python3 -c "a=$t1-$t0; b=$t2-$t1; print(f'328 HumanEval+ samples, {$jobs} jobs: evalplus {a:.1f} s, unitcoder {b:.1f} s, speed-up {a/b:.2f}x')"
