#!/usr/bin/env python3
"""Side-by-side speed of scoring HumanEval+ samples: evalplus 0.3.1 vs `unitcoder eval score`.

Same 328 samples (per task: the canonical solution and its first mutant, built with the mutation
rules of scripts/eval-agreement/agreement.py, or a body returning None where no rule applies), same machine, same number of workers, ground truth
cached for both (each tool's first run computes and caches it; that warm-up is not timed). Rounds
alternate the two tools so that a change in machine load hits both. Verdicts (base and plus, per
sample) are compared: the speed-up only counts if they are identical, with evalplus 0.3.1's
HumanEval/32 bug (it fails every sample of that task) set apart and counted.

    python3 bench/eval/speed.py --unitcoder target/release/unitcoder \
        --evalplus-python bench/eval/.venv/bin/python [--jobs 2] [--rounds 3]

bench/eval/speed.sh builds the evalplus venv first when it is missing.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts", "eval-agreement"))
from agreement import mutants, read_jsonl, write_jsonl  # noqa: E402


def cpu_of_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, env=None):
    """Wall seconds and CPU seconds of the whole process tree (every descendant is reaped by its
    parent, so RUSAGE_CHILDREN covers the workers). On a shared machine the CPU time is the steadier
    figure: it does not count the time the tool waited for a core."""
    t, c = time.perf_counter(), cpu_of_children()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    secs, cpu = time.perf_counter() - t, cpu_of_children() - c
    if p.returncode not in (0, 1):
        sys.exit("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr[-3000:]))
    return secs, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unitcoder", required=True)
    ap.add_argument("--evalplus-python", required=True)
    ap.add_argument("--benchmarks", default=os.path.join(HERE, "..", "..", "eval", "data"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=None)
    args = ap.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="unitcoder-eval-speed-")
    os.makedirs(work, exist_ok=True)
    data = os.path.abspath(os.path.join(args.benchmarks, "evalplus/HumanEvalPlus-v0.1.10.jsonl.gz"))
    samples = []
    for p in read_jsonl(data):
        # A task without a mutant gets a body that returns None: still two samples per task.
        wrong = (mutants(p["canonical_solution"]) + ["    return None\n"])[0]
        for body in [p["canonical_solution"], wrong]:
            samples.append({"task_id": p["task_id"], "solution": p["prompt"] + body})
    ep_dir = os.path.join(work, "evalplus")
    os.makedirs(ep_dir, exist_ok=True)
    sp = os.path.join(ep_dir, "samples.jsonl")
    write_jsonl(sp, samples)
    ep_results = os.path.join(ep_dir, "samples_eval_results.json")
    env = dict(os.environ, HUMANEVAL_OVERRIDE_PATH=data)
    ep_cmd = [args.evalplus_python, "-m", "evalplus.evaluate", "--dataset", "humaneval", "--samples", sp,
              "--parallel", str(args.jobs), "--i-just-wanna-run"]
    ours_out = os.path.join(work, "ours")
    ours_cmd = [args.unitcoder, "eval", "score", "--benchmark", "humaneval-plus", "--data", data, "--samples", sp,
                "--out", ours_out, "--jobs", str(args.jobs), "-k", "1", "--cache-dir", os.path.join(work, "gt-cache")]

    print("load before: %s" % os.getloadavg().__repr__())
    (warm_ep, _), (warm_ours, _) = timed(ep_cmd, env), timed(ours_cmd)
    print("warm-up (includes each tool's ground-truth pass): evalplus %.1f s, unitcoder %.1f s" % (warm_ep, warm_ours))
    t_ep, t_ours, c_ep, c_ours = [], [], [], []
    for r in range(args.rounds):
        for cmd, e, ts, cs in [(ep_cmd, env, t_ep, c_ep), (ours_cmd, None, t_ours, c_ours)]:
            secs, cpu = timed(cmd, e)
            ts.append(secs)
            cs.append(cpu)
        print("round %d: evalplus %.1f s (CPU %.1f s), unitcoder %.1f s (CPU %.1f s), load %.2f"
              % (r + 1, t_ep[-1], c_ep[-1], t_ours[-1], c_ours[-1], os.getloadavg()[0]))

    # Identical verdicts? evalplus keys by solution text; ours is in sample order.
    ep = json.load(open(ep_results))["eval"]
    ref = {}
    for tid, rows in ep.items():
        for row in rows:
            ref[(tid, row["solution"])] = (row["base_status"] == "pass", row["plus_status"] == "pass")
    mine = [json.loads(l) for l in open(os.path.join(ours_out, "results.jsonl"))]
    diff, he32 = [], 0
    for s, m in zip(samples, mine):
        rb, rp = ref[(s["task_id"], s["solution"])]
        ours_v = (m["base"]["passed"], m["passed"])
        if (rb, rb and rp) != ours_v:
            if s["task_id"] == "HumanEval/32" and not rb:
                he32 += 1
            else:
                diff.append((s["task_id"], (rb, rb and rp), ours_v))
    a, b = statistics.median(t_ep), statistics.median(t_ours)
    ca, cb = statistics.median(c_ep), statistics.median(c_ours)
    print("%d HumanEval+ samples, %d jobs, median of %d rounds: evalplus %.1f s, unitcoder %.1f s, speed-up %.2fx"
          % (len(samples), args.jobs, args.rounds, a, b, a / b))
    print("CPU time (all processes): evalplus %.1f s, unitcoder %.1f s, ratio %.2fx" % (ca, cb, ca / cb))
    print("verdicts: %d differ (+%d HumanEval/32 samples that evalplus 0.3.1 fails by its bug)" % (len(diff), he32))
    for d in diff:
        print("  ", d)
    print("load after: %s" % os.getloadavg().__repr__())
    json.dump({"samples": len(samples), "jobs": args.jobs, "evalplus_s": t_ep, "unitcoder_s": t_ours,
               "evalplus_cpu_s": c_ep, "unitcoder_cpu_s": c_ours, "speedup_median": a / b, "cpu_ratio": ca / cb, "verdict_differences": diff, "humaneval32_bug": he32},
              open(os.path.join(work, "speed.json"), "w"), indent=1)
    sys.exit(1 if diff else 0)


if __name__ == "__main__":
    main()
