#!/usr/bin/env bash
# Type-checks, on a Linux machine, the GPU stack that `--features metal` turns on for macOS: candle-core,
# candle-nn and candle-transformers with their `metal` features (candle's Metal backend and kernels,
# the objc2-metal bindings), at the versions pinned in unitcoder's Cargo.lock, for
# aarch64-apple-darwin. std for that target is built from Debian's rust-web-src (`-Zbuild-std`, which
# needs RUSTC_BOOTSTRAP=1 on a release compiler). Check only: nothing is linked, no SDK is needed.
#
# What it cannot check, and why: unitcoder itself for aarch64-apple-darwin. Four of its dependencies
# compile C in build scripts, which run even under `cargo check`: ring (hf-hub -> ureq -> rustls),
# zstd-sys (parquet -> zstd), tree-sitter and tree-sitter-python. cc-rs then needs a C compiler for
# the Apple target and the macOS SDK's headers (ring includes <TargetConditionals.h>, the others
# <stdlib.h> and <stdio.h>); Linux has neither (the host gcc stops at `-arch arm64`). unitcoder's own
# Metal code is the `Device::new_metal` call in src/engine/device.rs behind `cfg!(feature = "metal")`,
# an expression compiled into every build, so the native `cargo test` already type-checks it against
# the same candle API; the probe crate below makes that call for the Apple target.
#
# Usage (as root, or with sudo for the apt step): scripts/check-metal-build.sh
# Installs with apt, where missing: rustc-web, cargo-web, rust-web-src (needs network access to the
# Debian mirror, and to crates.io for std's own dependencies on the first run). Builds into
# target/metal-check (CARGO_TARGET_DIR overrides).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target=aarch64-apple-darwin
start=$(date +%s)

packages=(rustc-web cargo-web rust-web-src)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rustc=/usr/bin/rustc
cargo=/usr/bin/cargo
if [ ! -d "$($rustc --print sysroot)/lib/rustlib/src/rust/library/std" ]; then
    echo "check-metal-build: std sources missing under $($rustc --print sysroot)/lib/rustlib/src (rust-web-src)" >&2
    exit 2
fi
echo "check-metal-build: $($rustc --version)"

# A probe crate with unitcoder's lock file, so that cargo keeps every pinned version it still uses.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/metal-check}"
probe="$CARGO_TARGET_DIR/probe"
mkdir -p "$probe/src"
version() { sed -n "/^name = \"$1\"\$/{n;s/^version = \"\(.*\)\"/\1/p;q}" "$2"; }
candle="$(version candle-core "$root/Cargo.lock")"
cat >"$probe/Cargo.toml" <<EOF
[package]
name = "unitcoder-metal-probe"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
candle-core = { version = "=$candle", features = ["metal"] }
candle-nn = { version = "=$candle", features = ["metal"] }
candle-transformers = { version = "=$candle", features = ["metal"] }

[workspace]
EOF
cat >"$probe/src/lib.rs" <<'EOF'
//! The call unitcoder makes for `--device metal` (src/engine/device.rs), for the Apple target.
pub fn metal(ordinal: usize) -> candle_core::Result<candle_core::Device> {
    candle_core::Device::new_metal(ordinal)
}
EOF
cp "$root/Cargo.lock" "$probe/Cargo.lock"

cd "$probe"
RUSTC="$rustc" RUSTC_BOOTSTRAP=1 "$cargo" check -Zbuild-std=std,panic_abort --target "$target"
for p in candle-core candle-metal-kernels objc2-metal objc2; do
    ours="$(version "$p" "$root/Cargo.lock")" probed="$(version "$p" "$probe/Cargo.lock")"
    if [ "$ours" != "$probed" ]; then
        echo "check-metal-build: $p resolved to $probed, unitcoder's Cargo.lock has ${ours:-none}" >&2
        exit 1
    fi
    echo "check-metal-build: $p $probed"
done
echo "check-metal-build: candle's metal stack type-checks for $target in $(( $(date +%s) - start )) s"
