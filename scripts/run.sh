#!/usr/bin/env bash
# The main job: build the engine, then classify the 10,000 Fashion-MNIST test images with the
# GhostNet this project trained in C (models/ghostnet_fmnist.safetensors; how it was made:
# models/README.md) and print the test accuracy, per-class accuracy, confusion matrix and speed.
#   scripts/run.sh [--weights FILE] [--threads N] [DATASET]
# DATASET defaults to Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).
set -euo pipefail
cd "$(dirname "$0")/.."
weights=models/ghostnet_fmnist.safetensors
threads=0
while [ $# -gt 0 ]; do
    case $1 in
        --weights) weights=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        *) break ;;
    esac
done
data=${1:-/usr/share/datasets/fashion-mnist}
if [ ! -e "$data/t10k-images-idx3-ubyte.gz" ] && [ ! -e "$data/t10k-images-idx3-ubyte" ]; then
    echo "run.sh: no Fashion-MNIST test set in $data (sudo apt-get install dataset-fashion-mnist)" >&2
    exit 1
fi
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DGN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target ghostnet >/dev/null
bin=build/release/ghostnet
"$bin" summary --weights "$weights" --size 28 | tail -n 2
"$bin" eval --weights "$weights" --threads "$threads" "$data"
