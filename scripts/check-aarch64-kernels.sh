#!/usr/bin/env bash
# Runs the CPU kernel tests (`cargo test --lib kernels`: every kernel family against the scalar
# reference, bit for bit, on Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) for aarch64 on an x86-64 Debian 12
# machine: cross-compiled with Debian's rustc-web and its arm64 std, run under qemu-user twice,
# once as a CPU with the dot-product extension (`-cpu max`: the Dotprod kernel is selected, Neon and
# Dotprod are both compared) and once as a Cortex-A72 (NEON only: the Neon kernel is selected).
# Speed under qemu means nothing; this checks correctness and run-time selection only.
#
# Usage (as root, or with sudo for the apt step): scripts/check-aarch64-kernels.sh
# Installs with apt, where missing: rustc-web, cargo-web, libstd-rust-web-dev:arm64 (adds the arm64
# architecture to dpkg), gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user-static.
# Builds into target/aarch64-check (CARGO_TARGET_DIR overrides) so the normal target dir is untouched.
#
# qemu runs the binaries against the multiarch libc6:arm64 (pulled in by libstd-rust-web-dev:arm64),
# deliberately without `-L /usr/aarch64-linux-gnu`: that prefix holds the cross ld.so, while the
# loader's cache then finds the multiarch libc.so.6 of another build, and the mismatched pair loops
# forever in pthread_create.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
target=aarch64-unknown-linux-gnu
start=$(date +%s)

packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        $sudo dpkg --add-architecture arm64
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's toolchain, not rustup's: rustup cannot fetch the aarch64 std here, Debian ships it.
rustc=/usr/bin/rustc
cargo=/usr/bin/cargo
need="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' "$root/Cargo.toml")"
have="$($rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
    echo "check-aarch64-kernels: Debian's rustc-web is $have, the crate needs $need" >&2
    exit 2
fi
if [ ! -d "/usr/lib/rustlib/$target/lib" ]; then
    echo "check-aarch64-kernels: /usr/lib/rustlib/$target/lib is missing (libstd-rust-web-dev:arm64)" >&2
    exit 2
fi
echo "check-aarch64-kernels: $($rustc --version), $(qemu-aarch64-static --version | head -n 1)"

export RUSTC="$rustc"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/aarch64-check}"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
cd "$root"
"$cargo" test --lib --target "$target" --no-run
built=$(date +%s)

# One run per emulated CPU; the tests print which kernel families ran ("kernels: ..." lines).
run() {
    local cpu="$1" want="$2" log
    log="$(mktemp)"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64-static -cpu $cpu" \
        "$cargo" test --lib --target "$target" kernels -- --nocapture --test-threads 2 >"$log" 2>&1 || {
        cat "$log" >&2
        echo "check-aarch64-kernels: kernel tests failed on -cpu $cpu" >&2
        exit 1
    }
    echo "== qemu -cpu $cpu"
    grep -E "^kernels: |^test .*(portable_path_equals_the_fma_path|fast_paths_match).* ok$|^test result" "$log"
    if ! grep -q "^kernels: available .*, selected $want\$" "$log"; then
        echo "check-aarch64-kernels: -cpu $cpu did not select $want" >&2
        exit 1
    fi
    rm -f "$log"
}
run max Dotprod
run cortex-a72 Neon

end=$(date +%s)
echo "check-aarch64-kernels: passed in $((end - start)) s ($((built - start)) s to install and build)"
