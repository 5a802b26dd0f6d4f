#!/usr/bin/env bash
# Side-by-side speed of scoring 328 HumanEval+ samples: evalplus 0.3.1 (PyPI) vs `unitcoder eval
# score`, with identical verdicts required. Builds the evalplus venv first if it is missing (needs
# PyPI), then runs bench/eval/speed.py (see its docstring for the method).
#
#   bash bench/eval/speed.sh UNITCODER_BIN [EVALPLUS_VENV] [JOBS] [ROUNDS]
#
# EVALPLUS_VENV defaults to bench/eval/.venv (made on first use).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$1"; venv="${2:-$here/.venv}"; jobs="${3:-2}"; rounds="${4:-3}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import evalplus" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q evalplus==0.3.1
fi
echo "machine: $(nproc) CPUs; $(uptime)"
python3 "$here/speed.py" --unitcoder "$bin" --evalplus-python "$venv/bin/python" --jobs "$jobs" --rounds "$rounds"
echo "after: $(uptime)"
