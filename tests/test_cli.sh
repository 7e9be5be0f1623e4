#!/bin/sh
# The command-line tool: exact summary figures, --help everywhere, one-line errors with a
# non-zero exit, init/classify round trip. usage: test_cli.sh GHOSTNET_BINARY WORKDIR
set -u
bin=$1
work=$2
rm -rf "$work" && mkdir -p "$work"
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect_fail NAME CMD...: non-zero exit, exactly one line on stderr, nothing on stdout.
expect_fail() {
    name=$1; shift
    "$@" >"$work/out" 2>"$work/err"
    rc=$?
    lines=$(wc -l <"$work/err")
    if [ $rc -ne 0 ] && [ "$lines" -eq 1 ] && [ ! -s "$work/out" ]; then ok; else
        bad "$name: rc=$rc, $lines stderr lines: $(cat "$work/err")"; fi
}

# Summary: the spec's exact figures.
check_summary() {
    width=$1 params=$2 macs=$3
    "$bin" summary --width "$width" >"$work/sum" 2>&1 || { bad "summary --width $width failed"; return; }
    grep -q "^Total params: $params\$" "$work/sum" && ok || bad "summary $width: $(grep Total "$work/sum")"
    grep -q "^Total MACs:   $macs" "$work/sum" && ok || bad "summary $width MACs: $(grep MACs: "$work/sum")"
}
check_summary 1.0 5,182,508 141.15M
check_summary 0.5 2,587,292 42.33M
check_summary 1.3 7,358,820 227.00M
"$bin" summary >"$work/sum" && grep -q "blocks.6.4.se" "$work/sum" && grep -q "56x56" "$work/sum" && ok || bad "summary table rows"

for c in summary init classify; do
    "$bin" $c --help >"$work/help" 2>&1 && grep -q "usage: ghostnet $c" "$work/help" && ok || bad "$c --help"
done
"$bin" --help >/dev/null && ok || bad "--help"

expect_fail "no command" "$bin"
expect_fail "unknown command" "$bin" frobnicate
expect_fail "unknown option" "$bin" summary --bogus
expect_fail "bad width" "$bin" summary --width abc
expect_fail "width out of range" "$bin" summary --width 0
expect_fail "even dw" "$bin" summary --dw-size 4
expect_fail "missing value" "$bin" summary --width
expect_fail "init without seed" "$bin" init --out "$work/x.safetensors"
expect_fail "init into missing dir" "$bin" init --seed 1 --out "$work/no/such/dir/m.safetensors"
[ -z "$(ls "$work/no" 2>/dev/null)" ] && ok || bad "init left files behind"
expect_fail "classify without weights" "$bin" classify "$work/img.png"
expect_fail "classify missing weights file" "$bin" classify --weights "$work/none.safetensors" x.png

# init -> summary --weights -> classify on a generated image.
"$bin" init --width 0.5 --num-classes 7 --seed 3 --out "$work/m.safetensors" >/dev/null && ok || bad "init"
"$bin" summary --weights "$work/m.safetensors" >"$work/sum" && grep -q "7 classes" "$work/sum" && ok || bad "summary --weights"
expect_fail "classify not an image" "$bin" classify --weights "$work/m.safetensors" "$work/sum"
expect_fail "classify missing image" "$bin" classify --weights "$work/m.safetensors" "$work/none.png"
expect_fail "classify weights not safetensors" "$bin" classify --weights "$work/sum" "$work/sum"
printf 'a\nb\n' >"$work/labels.txt"
if command -v python3 >/dev/null 2>&1 && python3 -c "import zlib, struct" 2>/dev/null; then
    python3 - "$work/img.png" <<'PY'
import struct, sys, zlib
w, h = 40, 30
rows = b"".join(b"\x00" + bytes(v for x in range(w) for v in ((x * 7 + y * 3) % 256, (x * y) % 256, (255 - x * 5) % 256)) for y in range(h))
def chunk(t, d):
    c = struct.pack(">I", len(d)) + t + d
    return c + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
    "$bin" classify --weights "$work/m.safetensors" --topk 3 "$work/img.png" "$work/img.png" >"$work/cls" 2>"$work/err" && ok || bad "classify: $(cat "$work/err")"
    [ "$(grep -c '^  0\.' "$work/cls")" -eq 6 ] && ok || bad "classify output: $(cat "$work/cls")"
    expect_fail "labels count mismatch" "$bin" classify --weights "$work/m.safetensors" --labels "$work/labels.txt" "$work/img.png"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
