#!/usr/bin/env bash
# The main job: build the engine and classify images with a GhostNet model file.
#   scripts/run.sh [--weights FILE] [IMAGE...]
# Without --weights it writes a randomly initialised 1.0x model (so the classes mean nothing:
# bring timm's ghostnet_100 model.safetensors, or convert the authors' .pth with
# tools/convert_pth.py). Without images it makes two sample photos (needs python3-pil).
set -euo pipefail
cd "$(dirname "$0")/.."
weights=""
if [ "${1:-}" = "--weights" ]; then weights=$2; shift 2; fi
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DGN_BUILD_TESTS=OFF >/dev/null
cmake --build build/release -j "$(nproc 2>/dev/null || echo 2)" --target ghostnet >/dev/null
bin=build/release/ghostnet
mkdir -p build/demo
if [ -z "$weights" ]; then
    weights=build/demo/ghostnet_100_random.safetensors
    "$bin" init --width 1.0 --seed 1 --out "$weights"
fi
if [ $# -eq 0 ]; then
    /usr/bin/python3 - build/demo <<'PY'
import sys
from PIL import Image, ImageDraw
for name, size in (("sample1.jpg", (640, 480)), ("sample2.png", (400, 600))):
    img = Image.new("RGB", size)
    d = ImageDraw.Draw(img)
    for y in range(size[1]):
        d.line([(0, y), (size[0], y)], fill=(y % 256, 128, 255 - y % 256))
    d.ellipse([size[0] // 4, size[1] // 4, size[0] * 3 // 4, size[1] * 3 // 4], fill=(200, 40, 40))
    img.save(sys.argv[1] + "/" + name)
PY
    set -- build/demo/sample1.jpg build/demo/sample2.png
fi
"$bin" summary --weights "$weights" | tail -n 2
time "$bin" classify --weights "$weights" --topk 5 "$@"
