#!/usr/bin/env bash
# Cross-builds for aarch64 (NEON kernels) and runs the kernel, model, parity and net tests under
# qemu-user, on the NEON path and again on the portable one (GN_FORCE_SCALAR=1).
#   needs: apt-get install gcc-aarch64-linux-gnu qemu-user
#   scripts/check_aarch64.sh            (fixtures: GN_FIXTURES, else made with /usr/bin/python3)
# No libjpeg/libpng/zlib for arm64 is assumed: the build uses -DGN_WITH_IMAGES=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build/aarch64}
sysroot=${GN_AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
jobs=${JOBS:-2}

cmake -S . -B "$dir" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DGN_WITH_IMAGES=OFF \
    -DGN_AARCH64_SYSROOT="$sysroot" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j "$jobs" --target test_ops test_kernels test_model test_parity test_net

fixtures=${GN_FIXTURES:-$dir/fixtures/parity}
if [ ! -f "$fixtures/manifest.txt" ]; then
    echo "=== making parity fixtures in $fixtures (PyTorch on the host)"
    /usr/bin/python3 tests/reference/make_fixtures.py "$fixtures"
fi

net_fixtures=${GN_NET_FIXTURES:-$dir/fixtures/nets}
if [ ! -f "$net_fixtures/manifest.txt" ]; then
    echo "=== making network fixtures in $net_fixtures (PyTorch on the host)"
    /usr/bin/python3 tests/reference/make_net_fixtures.py "$net_fixtures"
fi

run() { (cd "$dir/tests" && qemu-aarch64 -L "$sysroot" "$@"); }
fail=0
for scalar in 0 1; do
    # test_kernels already compares each NEON kernel with its scalar twin: the portable pass
    # only needs the whole-network checks.
    tests="test_ops test_kernels test_model"
    [ "$scalar" = 1 ] && tests="test_model"
    for t in $tests; do
        echo "=== $t (qemu-aarch64, GN_FORCE_SCALAR=$scalar)"
        GN_FORCE_SCALAR=$scalar run "./$t" | tail -n 3 || fail=1
    done
    echo "=== test_parity (qemu-aarch64, GN_FORCE_SCALAR=$scalar)"
    GN_FORCE_SCALAR=$scalar GN_FIXTURES="$(cd "$fixtures" && pwd)" run ./test_parity | tail -n 3 || fail=1
done
echo "=== test_net: described networks, gradients and PyTorch parity (qemu-aarch64)"
GN_SOURCE_DIR="$(pwd)" GN_NET_FIXTURES="$(cd "$net_fixtures" && pwd)" run ./test_net | tail -n 3 || fail=1
[ "$fail" = 0 ] && echo "=== aarch64: all passed" || { echo "=== aarch64: FAILED"; exit 1; }
