#!/usr/bin/env bash
# Builds the Python environment BigCodeBench tasks need and imports its heaviest libraries as a smoke
# test. It does not run the tasks: check the environment with the canonical solutions (`eval check-gt`,
# below), which is also how to see which tasks it cannot pass.
#
#   bash eval/setup-bigcodebench-env.sh [VENV_DIR]        (default: .venv-bigcodebench)
#
# Then check it and evaluate with that interpreter:
#   unitcoder eval check-gt --benchmark bigcodebench-hard \
#       --data eval/data/bigcodebench/BigCodeBench-Hard-v0.1.4.reconstructed.jsonl.gz \
#       --python VENV_DIR/bin/python --out out/bcb-hard-gt
#
# Needs: python3 (3.11) with venv, a C compiler (a few packages build from source), network access
# to PyPI, about 4 GB of disk. Tasks that use NLTK corpora also need `nltk.download(...)` data, which
# comes from GitHub, not PyPI: without it those tasks are reported as failing canonical solutions.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${1:-.venv-bigcodebench}"
python="${PYTHON:-python3}"

"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --upgrade pip wheel setuptools
"$venv/bin/python" -m pip install -r "$here/requirements-bigcodebench.txt"
# Smoke test: the heaviest imports must load.
TZ=UTC MPLBACKEND=Agg "$venv/bin/python" -c "import numpy, pandas, scipy, sklearn, matplotlib, tensorflow, nltk, cv2, librosa; print('bigcodebench environment ready:', '$venv/bin/python')"
