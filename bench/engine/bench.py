"""Side-by-side speed of unitcoder's engine and llama.cpp on the same GGUF.

Both run the same file with the same thread count on the same 256-token prompt, then 128 greedy decode
steps, single-stream and with 8 sequences decoded together. Prints prefill and decode tok/s for each and
the ratios unitcoder / llama.cpp.

    python3 bench/engine/bench.py [--model FILE.gguf] [--threads 2] [--steps 128] [--seqs 8]
                                  [--context 64,700] [--context-steps 64] [--rounds 3]

--rounds runs both sides that many times, alternating which goes first, and prints medians and the
median (and range) of the per-round ratios: on a shared machine the memory bandwidth drifts.

--context also times single-stream decode after prompts of those lengths (does decode speed hold as
the context grows?); --context '' skips it.

llama.cpp comes from llama-cpp-python 0.3.36 in a virtual environment: BENCH_VENV names an existing one
(one with llama-cpp-python 0.3.36 installed); otherwise bench/engine/.venv is created and llama-cpp-python is built from the PyPI
sdist (about 5 minutes). UNITCODER_BIN names a unitcoder binary; otherwise `cargo build --release` builds
one. Without --model, `unitcoder models path smollm2-135m` finds (and if needed pulls) the
bench's default model, the small SmolLM2 card (unitcoder's own default is qwen2.5-coder-1.5b).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.36"

# Source text for the prompt: plain Python, cut to exactly the prompt length in llama.cpp tokens.
PROMPT_SOURCE = '''import json
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional


@dataclass
class Record:
    """One line of a JSONL corpus with its metadata."""

    path: str
    content: str
    language: str = "python"
    tags: List[str] = field(default_factory=list)

    def word_count(self) -> int:
        return len(self.content.split())


def read_records(path: str, limit: Optional[int] = None) -> Iterable[Record]:
    """Yields the records of a JSONL file, skipping blank lines."""
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            line = line.strip()
            if not line:
                continue
            data = json.loads(line)
            yield Record(path=data["path"], content=data["content"], tags=data.get("tags", []))


def group_by_directory(records: Iterable[Record]) -> Dict[str, List[Record]]:
    groups: Dict[str, List[Record]] = {}
    for r in records:
        groups.setdefault(os.path.dirname(r.path), []).append(r)
    return groups


def summarize(groups: Dict[str, List[Record]]) -> List[str]:
    lines = []
    for directory, items in sorted(groups.items()):
        words = sum(r.word_count() for r in items)
        lines.append(f"{directory}: {len(items)} files, {words} words")
    return lines


def llama_side(py: Path, model: str, n_prompt: int, steps: int, threads: int, counts: str) -> dict:
    """llama.cpp's figures for each sequence count, and the exact prompt text both sides run."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as src:
        src.write(PROMPT_SOURCE)
    try:
        out = subprocess.run(
            [str(py), "-c", LLAMA_SIDE, model, str(n_prompt), str(steps), str(threads), counts, src.name],
            check=True, capture_output=True, text=True,
        )
    finally:
        os.unlink(src.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(xs: list) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def report(label: str, theirs: list, ours: list) -> None:
    """Medians over the rounds, and the median and range of the per-round ratios: each round runs both
    sides back to back, so a ratio compares two runs that saw the same machine (on a shared VM the
    memory bandwidth drifts by 20-30% over minutes, which moves both sides alike)."""
    med = lambda runs, k: median([r[k] for r in runs])
    print(f"{label:<14}{'llama.cpp':<12}{med(theirs, 'prefill_tok_s'):>15.1f}{med(theirs, 'decode_tok_s'):>15.1f}")
    print(f"{'':<14}{'unitcoder':<12}{med(ours, 'prefill_tok_s'):>15.1f}{med(ours, 'decode_tok_s'):>15.1f}"
          f"   peak RSS {max(r['peak_rss_mb'] for r in ours):.0f} MB")
    cells = []
    for k in ("prefill_tok_s", "decode_tok_s"):
        ratios = [o[k] / t[k] for o, t in zip(ours, theirs)]
        cells.append((median(ratios), min(ratios), max(ratios)))
    line = f"{'':<14}{'ratio':<12}{cells[0][0]:>15.2f}{cells[1][0]:>15.2f}"
    if len(ours) > 1:
        line += "   per round: prefill " + f"{cells[0][1]:.2f}-{cells[0][2]:.2f}" + \
                f", decode {cells[1][1]:.2f}-{cells[1][2]:.2f}"
    print(line)


def main() -> None:
    import sys

    groups = group_by_directory(read_records(sys.argv[1]))
    for line in summarize(groups):
        print(line)
'''


def sh(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, **kw)


def venv_python() -> Path:
    """The python of a venv that has llama_cpp, building one if needed."""
    given = os.environ.get("BENCH_VENV")
    venv = Path(given) if given else ROOT / "bench/engine/.venv"
    py = venv / "bin/python"
    if not py.exists():
        sh([sys.executable, "-m", "venv", str(venv)])
    probe = subprocess.run([str(py), "-c", "import llama_cpp, numpy"], capture_output=True)
    if probe.returncode != 0:
        sh([str(py), "-m", "pip", "install", "cmake", "ninja", "scikit-build-core", "numpy"])
        sh([str(py), "-m", "pip", "install", "--no-build-isolation", LLAMA_CPP_PYTHON])
    return py


def unitcoder_bin() -> Path:
    given = os.environ.get("UNITCODER_BIN")
    if given:
        return Path(given)
    sh(["cargo", "build", "--release", "--bin", "unitcoder"], cwd=ROOT)
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release/unitcoder"


# Runs inside the llama_cpp venv: builds the prompt, then times prefill and decode for n sequences.
LLAMA_SIDE = r'''
import json, sys, time, ctypes
import numpy as np
import llama_cpp as L

model_path, n_prompt, steps, threads, seq_counts, source = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5], sys.argv[6]
L.llama_backend_init()
model = L.llama_model_load_from_file(model_path.encode(), L.llama_model_default_params())
vocab = L.llama_model_get_vocab(model)
n_vocab = L.llama_vocab_n_tokens(vocab)

def tokenize(text):
    raw = text.encode()
    buf = (L.llama_token * (len(raw) + 16))()
    n = L.llama_tokenize(vocab, raw, len(raw), buf, len(buf), False, False)
    return list(buf[:n])

# Cut the source to exactly n_prompt tokens (cutting characters off the end until the count is exact).
text = open(source).read()
while len(tokenize(text)) < n_prompt:
    text += text
ids = tokenize(text)
lo, hi = 0, len(text)
while lo < hi:  # shortest prefix with >= n_prompt tokens
    mid = (lo + hi) // 2
    if len(tokenize(text[:mid])) >= n_prompt:
        hi = mid
    else:
        lo = mid + 1
text = text[:lo]
while len(tokenize(text)) > n_prompt:
    text = text[:-1]
assert len(tokenize(text)) == n_prompt, len(tokenize(text))
ids = tokenize(text)

def run(n_seq):
    cp = L.llama_context_default_params()
    cp.n_ctx = ((n_seq * (n_prompt + steps + 8)) // 256 + 1) * 256
    cp.n_batch = max(512, n_seq * n_prompt)
    cp.n_ubatch = 512
    cp.n_seq_max = n_seq
    cp.n_threads = threads
    cp.n_threads_batch = threads
    ctx = L.llama_init_from_model(model, cp)
    batch = L.llama_batch_init(max(n_seq * n_prompt, n_seq), 0, 1)

    def submit(entries):
        batch.n_tokens = len(entries)
        for i, (tok, pos, seq, want) in enumerate(entries):
            batch.token[i] = tok
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = want
        rc = L.llama_decode(ctx, batch)
        assert rc == 0, rc

    entries = [(t, p, s, p == n_prompt - 1) for s in range(n_seq) for p, t in enumerate(ids)]
    t0 = time.perf_counter()
    submit(entries)
    prefill = time.perf_counter() - t0
    out_idx = [s * n_prompt + n_prompt - 1 for s in range(n_seq)]
    t0 = time.perf_counter()
    for step in range(steps):
        nxt = []
        for i in out_idx:
            logits = np.ctypeslib.as_array(L.llama_get_logits_ith(ctx, i), shape=(n_vocab,))
            nxt.append(int(np.argmax(logits)))
        submit([(t, n_prompt + step, s, True) for s, t in enumerate(nxt)])
        out_idx = list(range(n_seq))
    decode = time.perf_counter() - t0
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    return {"prefill_tok_s": n_seq * n_prompt / prefill, "decode_tok_s": n_seq * steps / decode}

results = {str(n): run(n) for n in map(int, seq_counts.split(","))}
print(json.dumps({"prompt": text, "results": results}))
'''


def run_unitcoder(binary: Path, model: str, prompt: str, n_seq: int, steps: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        common = ["--model", model, "--max-tokens", str(steps), "--ignore-eos", "--stats", "--threads", str(threads)]
        if n_seq == 1:
            pf = Path(tmp, "prompt.txt")
            pf.write_text(prompt)
            args = ["--prompt-file", str(pf)]
        else:
            pj = Path(tmp, "prompts.jsonl")
            pj.write_text("".join(json.dumps({"id": i, "prompt": prompt}) + "\n" for i in range(n_seq)))
            args = ["--prompts", str(pj), "--out", str(Path(tmp, "out.jsonl")), "--max-batch", str(n_seq)]
        proc = subprocess.run([str(binary), "generate", *common, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"unitcoder failed ({proc.returncode}):\n{proc.stderr}")
        return json.loads(proc.stderr.strip().splitlines()[-1])


def llama_side(py: Path, model: str, n_prompt: int, steps: int, threads: int, counts: str) -> dict:
    """llama.cpp's figures for each sequence count, and the exact prompt text both sides run."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as src:
        src.write(PROMPT_SOURCE)
    try:
        out = subprocess.run(
            [str(py), "-c", LLAMA_SIDE, model, str(n_prompt), str(steps), str(threads), counts, src.name],
            check=True, capture_output=True, text=True,
        )
    finally:
        os.unlink(src.name)
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(xs: list) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def report(label: str, theirs: list, ours: list) -> None:
    """Medians over the rounds, and the median and range of the per-round ratios: each round runs both
    sides back to back, so a ratio compares two runs that saw the same machine (on a shared VM the
    memory bandwidth drifts by 20-30% over minutes, which moves both sides alike)."""
    med = lambda runs, k: median([r[k] for r in runs])
    print(f"{label:<14}{'llama.cpp':<12}{med(theirs, 'prefill_tok_s'):>15.1f}{med(theirs, 'decode_tok_s'):>15.1f}")
    print(f"{'':<14}{'unitcoder':<12}{med(ours, 'prefill_tok_s'):>15.1f}{med(ours, 'decode_tok_s'):>15.1f}"
          f"   peak RSS {max(r['peak_rss_mb'] for r in ours):.0f} MB")
    cells = []
    for k in ("prefill_tok_s", "decode_tok_s"):
        ratios = [o[k] / t[k] for o, t in zip(ours, theirs)]
        cells.append((median(ratios), min(ratios), max(ratios)))
    line = f"{'':<14}{'ratio':<12}{cells[0][0]:>15.2f}{cells[1][0]:>15.2f}"
    if len(ours) > 1:
        line += "   per round: prefill " + f"{cells[0][1]:.2f}-{cells[0][2]:.2f}" + \
                f", decode {cells[1][1]:.2f}-{cells[1][2]:.2f}"
    print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--seqs", type=int, default=8)
    ap.add_argument("--context", default="64,700")
    ap.add_argument("--context-steps", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3,
                    help="alternating rounds of both sides; medians and per-round ratios are printed")
    a = ap.parse_args()

    py = venv_python()
    binary = unitcoder_bin()
    model = a.model or subprocess.run(
        [str(binary), "models", "path", "smollm2-135m"], check=True, capture_output=True, text=True
    ).stdout.strip()

    print(f"model {model}, {a.threads} threads, {a.prompt_tokens}-token prompt, {a.steps} greedy decode steps, "
          f"{a.rounds} round(s), medians")
    counts = (1, a.seqs)
    theirs = {n: [] for n in counts}
    ours = {n: [] for n in counts}
    for r in range(a.rounds):
        # Alternate which side goes first, so neither always runs on a warmer or quieter machine.
        sides = ("llama", "ours") if r % 2 == 0 else ("ours", "llama")
        for side in sides:
            if side == "llama":
                llama = llama_side(py, model, a.prompt_tokens, a.steps, a.threads, ",".join(map(str, counts)))
                prompt = llama["prompt"]
                for n in counts:
                    theirs[n].append(llama["results"][str(n)])
            else:
                if r == 0:
                    # The prompt text comes from llama.cpp's side (cut to exact tokens there).
                    prompt = llama_side(py, model, a.prompt_tokens, 1, a.threads, "1")["prompt"]
                for n in counts:
                    run = run_unitcoder(binary, model, prompt, n, a.steps, a.threads)
                    if run["prompt_tokens"] != n * a.prompt_tokens:
                        raise SystemExit(
                            f"unitcoder saw {run['prompt_tokens']} prompt tokens, llama.cpp {n * a.prompt_tokens}")
                    ours[n].append(run)
        print(f"  round {r + 1}: decode llama.cpp {theirs[1][-1]['decode_tok_s']:.1f}, "
              f"unitcoder {ours[1][-1]['decode_tok_s']:.1f} tok/s", file=sys.stderr, flush=True)
    print(f"{'':<14}{'':<12}{'prefill tok/s':>15}{'decode tok/s':>15}")
    for n in counts:
        report("single stream" if n == 1 else f"{n} sequences", theirs[n], ours[n])
    sys.stdout.flush()
    contexts = [int(c) for c in a.context.split(",") if c.strip()]
    if contexts:
        print(f"\nsingle-stream decode after a prompt of N tokens, {a.context_steps} steps")
        print(f"{'':<14}{'':<12}{'prefill tok/s':>15}{'decode tok/s':>15}")
    for n_prompt in contexts:
        llama = llama_side(py, model, n_prompt, a.context_steps, a.threads, "1")
        run = run_unitcoder(binary, model, llama["prompt"], 1, a.context_steps, a.threads)
        if run["prompt_tokens"] != n_prompt:
            raise SystemExit(f"unitcoder saw {run['prompt_tokens']} prompt tokens, llama.cpp {n_prompt}")
        report(f"N = {n_prompt}", [llama["results"]["1"]], [run])
        sys.stdout.flush()


if __name__ == "__main__":
    t = time.time()
    main()
    print(f"({time.time() - t:.0f} s)", file=sys.stderr)
