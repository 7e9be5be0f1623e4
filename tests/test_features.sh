#!/bin/sh
# `ghostnet features` end to end on tiny .net models: the picture's size follows the layout
# rules, the report has its table and summaries, a Ghost module whose cheap operation is a
# 1x1 depthwise scale (dw=1, no ReLU) has intrinsic-ghost correlations of exactly +-1, and
# bad inputs give one-line errors and leave no output file.
# usage: test_features.sh GHOSTNET_BINARY WORKDIR   (exit 77: skipped, no python3)
set -u
bin=$1
work=$2
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac # it also runs from inside $work
rm -rf "$work" && mkdir -p "$work"
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
command -v python3 >/dev/null 2>&1 || { echo "skipped: python3 needed to make the input PNG"; exit 77; }

# A 28x28 8-bit gray PNG (a gradient, a bright square and a ring, plus fixed noise), written
# with the standard library only.
python3 - "$work/img.png" <<'PY' || { echo "could not write the input PNG"; exit 1; }
import random, struct, sys, zlib
rng = random.Random(3)
w = h = 28
rows = b""
for y in range(h):
    row = bytearray([0])  # filter: none
    for x in range(w):
        v = 4 * x + 2 * y
        if 6 <= x < 14 and 8 <= y < 16: v += 120
        if 30 <= (x - 19) ** 2 + (y - 18) ** 2 <= 42: v = 250
        row.append(max(0, min(255, v + rng.randint(-10, 10))))
    rows += bytes(row)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY

# make_model NAME LINES...: a .net file with those lines and its model file (28x28, 1 channel).
make_model() {
    name=$1; shift
    : >"$work/$name.net"
    for line in "$@"; do printf '%s\n' "$line" >>"$work/$name.net"; done
    "$bin" init --net "$work/$name.net" --in-chans 1 --num-classes 10 --stem-stride 1 \
        --input-size 28 --seed 5 --out "$work/$name.safetensors" >/dev/null 2>"$work/init.err" ||
        bad "init $name: $(cat "$work/init.err")"
}

# png_size FILE: "WIDTHxHEIGHT" from the IHDR chunk (bytes 16..23, big-endian).
png_size() {
    set -- $(od -An -tu1 -j16 -N8 "$1")
    [ $# -eq 8 ] || { echo "?"; return; }
    echo "$(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 ))x$(( ($5 << 24) + ($6 << 16) + ($7 << 8) + $8 ))"
}

# check_png FILE WxH
check_png() {
    if [ -s "$1" ] && head -c 8 "$1" | od -An -c | grep -q "P   N   G"; then ok; else bad "$1 is not a PNG"; return; fi
    got=$(png_size "$1")
    [ "$got" = "$2" ] && ok || bad "$1: ${got}, expected $2"
}

# Layout (see --help): border 2, gaps 2, 8 between an intrinsic map and its ghost maps, 16
# before the compared block; 28x28 maps are drawn x2 = 56 px. Ghost module: 16 maps, 8
# intrinsic, one ghost each: width 2+56+8+56+2 = 124. Rows: 8 x 56 + 7 x 2 = 462. Compared
# conv (8 maps): (124-4+2) / 58 = 2 per row, 4 rows = 4 x 56 + 3 x 2 = 230.
make_model tiny "conv 8 k=3 s=stem bn relu" "ghost 16 k=3 relu" "avgpool" "linear classes"
"$bin" features --weights "$work/tiny.safetensors" --out "$work/f.png" "$work/img.png" \
    >"$work/f.out" 2>"$work/f.err" && ok || bad "features: $(cat "$work/f.err")"
check_png "$work/f.png" 124x712  # 2 + 462 + 16 + 230 + 2
grep -q "^ghost layer layers.1: 16 maps of 28x28: 8 intrinsic" "$work/f.out" && ok || bad "header: $(head -2 "$work/f.out")"
[ "$(grep -Ec '^ +[0-9]+ +[0-9]+ +[+-][01]\.[0-9]{3}' "$work/f.out")" -eq 8 ] && ok || bad "expected 8 pair rows: $(cat "$work/f.out")"
grep -q "^intrinsic-ghost pairs: mean |corr| [01]\.[0-9]* over 8 pairs" "$work/f.out" && ok || bad "pair summary: $(cat "$work/f.out")"
grep -q "mean max |corr| with another intrinsic map" "$work/f.out" && ok || bad "no baseline"
grep -q "^compared layer layers.0 (conv): 8 maps of 28x28" "$work/f.out" && ok || bad "no compared layer: $(cat "$work/f.out")"
grep -q "^layers.0: mean over maps of max |corr| with another map" "$work/f.out" && ok || bad "no vanilla summary"
grep -q "^constant maps: " "$work/f.out" && ok || bad "no constant-map count"
grep -q "rows: intrinsic map j | its ghost maps" "$work/f.out" && ok || bad "no layout line"
[ ! -s "$work/f.err" ] && ok || bad "stderr not empty: $(cat "$work/f.err")"

# Fewer maps, no compared layer, default output name (in the working directory).
"$bin" features --weights "$work/tiny.safetensors" --max-maps 3 --out "$work/f3.png" "$work/img.png" \
    >"$work/f3.out" 2>&1 && ok || bad "--max-maps 3: $(cat "$work/f3.out")"
check_png "$work/f3.png" 124x306  # rows 3*56+2*2 = 172; 3 compared maps, 2 per row: 114
[ "$(grep -Ec '^ +[0-9]+ +[0-9]+ +[+-][01]\.[0-9]{3}' "$work/f3.out")" -eq 3 ] && ok || bad "--max-maps 3 rows"
grep -q "over 8 pairs" "$work/f3.out" && ok || bad "summaries must cover every pair"
(cd "$work" && "$bin" features --weights tiny.safetensors --compare none img.png >nc.out 2>&1) &&
    ok || bad "--compare none: $(cat "$work/nc.out")"
check_png "$work/features.png" 124x466  # 2 + 462 + 2
grep -q "compared layer" "$work/nc.out" && bad "--compare none still compares" || ok

# dw=1 and no activation: each ghost map is BN(a * intrinsic), an affine function of its
# intrinsic map, so every pair's |corr| is 1 (to 3 decimals).
make_model dw1 "conv 8 k=3 s=stem bn relu" "ghost 16 k=3 dw=1" "avgpool" "linear classes"
"$bin" features --weights "$work/dw1.safetensors" --out "$work/d.png" "$work/img.png" \
    >"$work/d.out" 2>"$work/d.err" && ok || bad "features dw=1: $(cat "$work/d.err")"
grep -Ec '^ +[0-9]+ +[0-9]+ +[+-][01]\.[0-9]{3}$' "$work/d.out" >"$work/d.n"
[ "$(cat "$work/d.n")" -eq 8 ] && ok || bad "dw=1: expected 8 non-constant pairs: $(cat "$work/d.out")"
not_one=$(grep -E '^ +[0-9]+ +[0-9]+ +[+-][01]\.[0-9]{3}' "$work/d.out" | grep -Ev ' [+-]1\.000$')
[ -z "$not_one" ] && ok || bad "dw=1: |corr| must be 1.000: $not_one"
grep -q "^intrinsic-ghost pairs: mean |corr| 1.000 over 8 pairs" "$work/d.out" && ok || bad "dw=1 mean: $(grep pairs: "$work/d.out")"

# ratio 3 with a cut: 16 maps = 6 intrinsic + 10 kept ghost maps of 12; intrinsic 5 has none.
make_model r3 "conv 8 k=3 s=stem bn relu" "ghost 16 k=3 ratio=3 relu" "avgpool" "linear classes"
"$bin" features --weights "$work/r3.safetensors" --out "$work/r.png" "$work/img.png" \
    >"$work/r.out" 2>&1 && ok || bad "features ratio=3: $(cat "$work/r.out")"
grep -q "over 10 pairs" "$work/r.out" && ok || bad "ratio=3 pairs: $(grep pairs: "$work/r.out")"
# width 2+56+8+2*56+2+2 = 182; rows 6*56+5*2 = 346; compared: (182-2)/58 = 3 per row, 3 rows = 172
check_png "$work/r.png" 182x538

# Errors: non-zero exit, one line "ghostnet features: ...", nothing on stdout, no output file,
# and an existing output file left as it was.
cp "$work/f.png" "$work/keep.png"
expect_fail() {
    name=$1; shift
    "$bin" features "$@" >"$work/out" 2>"$work/err"
    rc=$?
    lines=$(wc -l <"$work/err")
    if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ ! -s "$work/out" ] && grep -q "^ghostnet features: " "$work/err"; then
        ok; else bad "$name: rc=$rc, $lines stderr lines: $(cat "$work/err")"; fi
    [ ! -e "$work/none.png" ] && ok || bad "$name: wrote an output file"
    cmp -s "$work/f.png" "$work/keep.png" && ok || bad "$name: changed an existing output"
    [ -z "$(ls "$work" | grep '\.tmp\.')" ] && ok || bad "$name: left a temporary file"
}
m="--weights $work/tiny.safetensors"
expect_fail "missing weights" --weights "$work/nope.safetensors" --out "$work/none.png" "$work/img.png"
grep -q "nope.safetensors" "$work/err" && ok || bad "missing weights message: $(cat "$work/err")"
expect_fail "conv layer" $m --layer layers.0 --out "$work/none.png" "$work/img.png"
grep -q "not a Ghost module.*layers.1" "$work/err" && ok || bad "conv layer message: $(cat "$work/err")"
expect_fail "unknown layer" $m --layer layers.9 --out "$work/none.png" "$work/img.png"
grep -q "layers.1" "$work/err" && ok || bad "unknown layer message: $(cat "$work/err")"
expect_fail "unknown compare" $m --compare conv9 --out "$work/none.png" "$work/img.png"
expect_fail "max-maps 0" $m --max-maps 0 --out "$work/none.png" "$work/img.png"
expect_fail "max-maps text" $m --max-maps 4x --out "$work/none.png" "$work/img.png"
expect_fail "max-maps missing" $m --out "$work/none.png" "$work/img.png" --max-maps
expect_fail "unknown option" $m --bogus --out "$work/none.png" "$work/img.png"
expect_fail "missing image" $m --out "$work/none.png" "$work/nope.png"
grep -q "nope.png" "$work/err" && ok || bad "missing image message: $(cat "$work/err")"
printf 'not an image' >"$work/junk.png"
expect_fail "corrupt image" $m --out "$work/none.png" "$work/junk.png"
expect_fail "two images" $m --out "$work/none.png" "$work/img.png" "$work/img.png"
expect_fail "no image" $m --out "$work/none.png"
expect_fail "no weights" --out "$work/none.png" "$work/img.png"
expect_fail "unwritable output" $m --out "$work/nodir/x.png" "$work/img.png"
expect_fail "existing output kept" $m --layer layers.0 --out "$work/f.png" "$work/img.png"
make_model noghost "conv 8 k=3 s=stem bn relu" "avgpool" "linear classes"
expect_fail "no ghost module" --weights "$work/noghost.safetensors" --out "$work/none.png" "$work/img.png"
"$bin" init --width 0.1 --in-chans 1 --num-classes 10 --input-size 28 --seed 1 \
    --out "$work/builtin.safetensors" >/dev/null 2>&1 || bad "init built-in"
expect_fail "built-in GhostNet" --weights "$work/builtin.safetensors" --out "$work/none.png" "$work/img.png"
grep -q "not a .net model" "$work/err" && ok || bad "built-in message: $(cat "$work/err")"

"$bin" features --help >"$work/help" 2>&1 && grep -q "usage: ghostnet features" "$work/help" && ok || bad "--help"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
