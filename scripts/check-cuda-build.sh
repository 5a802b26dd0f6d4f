#!/usr/bin/env bash
# Checks that unitcoder compiles with `--features cuda` on a machine without a GPU or a CUDA toolkit.
#
# candle's cuda feature compiles its kernels with nvcc at build time (even for `cargo check`), so this
# installs a CUDA 13.0 toolkit from PyPI into a venv: `nvidia-cuda-nvcc` (nvcc, ptxas, fatbinary),
# `nvidia-nvvm` (cicc), `nvidia-cuda-crt` (the host-stub headers, which must match nvcc's minor version:
# left unpinned pip picks a newer one and the stubs fail with "__cudaLaunch passed 2 arguments"),
# `nvidia-cuda-runtime` and `nvidia-cuda-cccl` (headers), which together form one toolkit tree under
# nvidia/cu13. The CUDA 12 wheels (`nvidia-cuda-nvcc-cu12`) ship only ptxas and libnvvm, not the nvcc
# driver, so they cannot build candle's kernels.
#
# Usage: scripts/check-cuda-build.sh [VENV_DIR]   (default: target/cuda-venv; needs python3 and network
# access to PyPI on the first run). Builds into target/cuda-check so the normal target dir is untouched.
# CUDA_COMPUTE_CAP (default 90, H100) picks the architecture candle's kernels are compiled for.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-$root/target/cuda-venv}"
cuda_version="13.0.*"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet \
    "nvidia-cuda-nvcc==$cuda_version" "nvidia-nvvm==$cuda_version" "nvidia-cuda-crt==$cuda_version" \
    "nvidia-cuda-runtime==$cuda_version" "nvidia-cuda-cccl==$cuda_version"

site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cuda="$site/nvidia/cu13"
for f in bin/nvcc nvvm/bin/cicc include/cuda_runtime.h; do
    if [ ! -e "$cuda/$f" ]; then
        echo "check-cuda-build: $cuda/$f is missing: the PyPI CUDA wheels changed their layout" >&2
        exit 2
    fi
done

export PATH="$cuda/bin:$PATH" CUDA_HOME="$cuda" CUDA_PATH="$cuda" CUDA_ROOT="$cuda"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/cuda-check}"
nvcc --version | tail -n 1
start=$(date +%s)
cd "$root"
cargo check --features cuda --all-targets
echo "check-cuda-build: cargo check --features cuda passed in $(( $(date +%s) - start )) s"
