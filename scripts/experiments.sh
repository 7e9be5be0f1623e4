#!/usr/bin/env bash
# The run behind docs/results.md: the paper's three experiments in miniature on Fashion-MNIST
# (the ablation twice, with two seeds), then the feature maps of a trained Ghost-ResNet-56;
# everything is copied to docs/results/.
#   scripts/experiments.sh            (the recorded run: about an hour on the 2-core machine)
#   EPOCHS=30 LIMIT=60000 SMALL=60000 TESTS=10000 scripts/experiments.sh   (all data: a day)
#   EPOCHS=1 LIMIT=512 scripts/experiments.sh   (a smoke run of a few minutes)
# Variants already trained in $OUT are measured again, not retrained.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-/usr/share/datasets/fashion-mnist}
out=${OUT:-runs/experiments}
epochs=${EPOCHS:-3}
limit=${LIMIT:-20000}      # training images per epoch for the ablation
small=${SMALL:-10000}      # ... for the slower networks of the other two
tests=${TESTS:-10000}
latency_runs=${LATENCY_RUNS:-300} # batch-1 runs timed per variant (median)
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DGN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target ghostnet >/dev/null
bin=build/release/ghostnet
mkdir -p "$out"
common="--data $data --epochs $epochs --limit-test $tests --latency-runs $latency_runs"
[ "$small" -gt "$limit" ] && small=$limit
"$bin" experiment ablation $common --limit-train "$limit" --out "$out/ablation"
# the same with another seed: how far apart two runs of one variant land (the noise level)
"$bin" experiment ablation $common --limit-train "$limit" --seed 1 --out "$out/ablation-seed1"
"$bin" experiment ghost-vs-vanilla $common --limit-train "$small" --out "$out/ghost-vs-vanilla"
"$bin" experiment frontier $common --limit-train "$small" --out "$out/frontier"

# Feature maps of the first test image through the trained Ghost-ResNet-56: a Ghost module of
# the first stage against the network's one vanilla conv (the stem).
/usr/bin/python3 - "$data" "$out/sample.png" <<'PY'
import gzip, os, struct, sys, zlib
path = os.path.join(sys.argv[1], "t10k-images-idx3-ubyte")
raw = gzip.open(path + ".gz").read() if os.path.exists(path + ".gz") else open(path, "rb").read()
n, h, w = struct.unpack(">III", raw[4:16])
pix = raw[16:16 + h * w]
rows = b"".join(b"\0" + pix[y * w:(y + 1) * w] for y in range(h))
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[2], "wb").write(png)
PY
"$bin" features --weights "$out/ghost-vs-vanilla/ghost-resnet56/model.safetensors" \
    --layer layers.1.body.0 --out "$out/features.png" "$out/sample.png" | tee "$out/features.txt"

mkdir -p docs/results
for ex in ablation ghost-vs-vanilla frontier; do
    cp "$out/$ex/results.md" "docs/results/$ex.md"
    cp "$out/$ex/results.csv" "docs/results/$ex.csv"
    cp "$out/$ex/$ex.png" "docs/results/$ex.png"
done
cp "$out/ablation-seed1/results.md" docs/results/ablation-seed1.md
cp "$out/ablation-seed1/results.csv" docs/results/ablation-seed1.csv
cp "$out/features.png" "$out/features.txt" "$out/sample.png" docs/results/
echo "copied the tables, charts and feature maps to docs/results/"
