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
CC=gcc build_and_test build/gcc -DCMAKE_BUILD_TYPE=Release

step "clang release build + tests"
CC=clang build_and_test build/clang -DCMAKE_BUILD_TYPE=Release

step "gcc AddressSanitizer + UndefinedBehaviorSanitizer build + tests"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    CC=gcc build_and_test build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGN_SANITIZE=ON

if [ "$fuzz_seconds" -gt 0 ]; then
    step "libFuzzer targets, ${fuzz_seconds}s each"
    CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGN_FUZZ=ON \
        -DGN_BUILD_TESTS=OFF >/dev/null
    cmake --build build/fuzz -j "$jobs" --target fuzz_safetensors fuzz_image fuzz_idx
    for target in safetensors image idx; do
        corpus=build/fuzz/corpus_$target
        mkdir -p "$corpus"
        cp fuzz/corpus_$target/* "$corpus"/ 2>/dev/null || true
        build/fuzz/fuzz/fuzz_$target -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
            -max_len=65536 "$corpus" 2>&1 | tail -n 3
    done
fi
step "all checks passed"
