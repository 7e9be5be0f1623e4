#!/usr/bin/env bash
# The whole test suite, as CI runs it: a warning-free release build with gcc and one with clang,
# the tests under each, the tests again under AddressSanitizer + UndefinedBehaviorSanitizer, and
# each libFuzzer target for a short fixed time.
#   scripts/check.sh            everything
#   FUZZ_SECONDS=0 scripts/check.sh   skip fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
fuzz_seconds=${FUZZ_SECONDS:-30}
export CTEST_OUTPUT_ON_FAILURE=1

step() { printf '\n=== %s\n' "$*"; }

build_and_test() { # dir, then cmake options
    local dir=$1; shift
    cmake -S . -B "$dir" -DGN_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    (cd "$dir" && ctest -j "$jobs" --timeout 1500)
}

step "gcc release build + tests"
CC=gcc build_and_test build/gcc -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$PWD/build/install"

step "install, then build examples/minimal.c against it with pkg-config (the header as plain C)"
cmake --install build/gcc >/dev/null
export PKG_CONFIG_PATH="$PWD/build/install/lib/pkgconfig:$PWD/build/install/lib/$(gcc -print-multiarch)/pkgconfig"
libdir=$(pkg-config --variable=libdir ghostnet)
gcc -std=c11 -Wall -Wextra -pedantic -Werror examples/minimal.c $(pkg-config --cflags ghostnet) \
    "$libdir/libghostnet.a" $(pkg-config --libs --static ghostnet | sed 's/-lghostnet//') \
    -o build/minimal_static
build/minimal_static
gcc -std=c11 -Wall -Wextra -pedantic -Werror examples/minimal.c \
    $(pkg-config --cflags --libs ghostnet) -o build/minimal_shared
LD_LIBRARY_PATH="$libdir" build/minimal_shared
unset PKG_CONFIG_PATH

step "clang release build + tests"
CC=clang build_and_test build/clang -DCMAKE_BUILD_TYPE=Release

step "gcc AddressSanitizer + UndefinedBehaviorSanitizer build + tests"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    CC=gcc build_and_test build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGN_SANITIZE=ON

if [ "$fuzz_seconds" -gt 0 ]; then
    step "libFuzzer targets, ${fuzz_seconds}s each"
    # The fuzzed code needs no SIMD kernels; instrumenting them costs minutes of compile time.
    CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGN_FUZZ=ON -DGN_FORCE_SCALAR=ON \
        -DGN_BUILD_TESTS=OFF >/dev/null
    cmake --build build/fuzz -j "$jobs" --target fuzz_safetensors fuzz_image fuzz_idx fuzz_netdesc
    for target in safetensors image idx netdesc; do
        corpus=build/fuzz/corpus_$target
        mkdir -p "$corpus"
        cp fuzz/corpus_$target/* "$corpus"/ 2>/dev/null || true
        build/fuzz/fuzz/fuzz_$target -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
            -max_len=65536 "$corpus" 2>&1 | tail -n 3
    done
fi
# aarch64: cross-build and run the kernel and parity tests under qemu-user (NEON and portable
# paths) when the cross compiler and qemu are installed (.ci/run installs them).
if command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 && command -v qemu-aarch64 >/dev/null 2>&1; then
    step "aarch64 cross build + tests under qemu-user"
    GN_FIXTURES="$PWD/build/gcc/tests/fixtures/parity" scripts/check_aarch64.sh
else
    step "aarch64 skipped (needs gcc-aarch64-linux-gnu and qemu-user)"
fi
step "all checks passed"
