#!/bin/sh
# `ghostnet train` and `ghostnet eval` end to end on a small synthetic IDX dataset: outputs,
# logs and plot; an interrupted run resumed with --resume ends bit-identical to an
# uninterrupted one; clear errors for bad datasets and options.
# usage: test_train_cli.sh GHOSTNET_BINARY WORKDIR
set -u
bin=$1
work=$2
rm -rf "$work" && mkdir -p "$work/data"
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# Four classes of 20x20 images (a bright square in one quadrant plus noise), gzip'd IDX.
python3 - "$work/data" <<'PY' || { echo "python3 needed to make the dataset"; exit 1; }
import gzip, random, struct, sys
def write(path, magic, dims, payload):
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload)
rng = random.Random(7)
for split, n in (("train", 192), ("t10k", 64)):
    imgs, labels = bytearray(), bytearray()
    for i in range(n):
        c = i % 4
        oy, ox = (c // 2) * 10, (c % 2) * 10
        for y in range(20):
            for x in range(20):
                v = 200 if oy <= y < oy + 10 and ox <= x < ox + 10 else 20
                imgs.append(max(0, min(255, v + rng.randint(-20, 20))))
        labels.append(c)
    write(sys.argv[1] + "/%s-images-idx3-ubyte.gz" % split, 0x803, (n, 20, 20), bytes(imgs))
    write(sys.argv[1] + "/%s-labels-idx1-ubyte.gz" % split, 0x801, (n,), bytes(labels))
PY

common="--data $work/data --width 0.25 --in-chans 1 --stem-stride 1 --epochs 2 --batch 16 --lr 0.05 --erase 0.25 --threads 1"
"$bin" train $common --out "$work/a" >"$work/a.out" 2>"$work/a.err" && ok || bad "train: $(tail -3 "$work/a.err")"
for f in model.safetensors train_state.safetensors log.csv log.json plot.png; do
    [ -s "$work/a/$f" ] && ok || bad "missing $f"
done
[ "$(wc -l <"$work/a/log.csv")" -eq 3 ] && ok || bad "log.csv rows: $(cat "$work/a/log.csv")"
head -c 8 "$work/a/plot.png" | od -An -c | grep -q "P   N   G" && ok || bad "plot.png is not a PNG"
grep -q "^epoch 2/2: lr" "$work/a.out" && ok || bad "no epoch summary: $(cat "$work/a.out")"

# Interrupt after 5 steps (of 12 per epoch), resume, and compare with the uninterrupted run.
"$bin" train $common --out "$work/b" --stop-after 5 >/dev/null 2>"$work/b.err"
[ $? -eq 130 ] && ok || bad "interrupted run should exit 130: $(tail -2 "$work/b.err")"
grep -q "checkpoint saved" "$work/b.err" && ok || bad "no checkpoint message"
"$bin" train $common --out "$work/b" --resume --stop-after 9 >/dev/null 2>&1 # stops again mid epoch 2
"$bin" train $common --out "$work/b" --resume >/dev/null 2>"$work/b.err" && ok || bad "resume: $(tail -2 "$work/b.err")"
cmp -s "$work/a/model.safetensors" "$work/b/model.safetensors" && ok || bad "resumed model differs from the uninterrupted one"
cut -d, -f1-6 "$work/a/log.csv" >"$work/a.cols"; cut -d, -f1-6 "$work/b/log.csv" >"$work/b.cols"
cmp -s "$work/a.cols" "$work/b.cols" && ok || bad "resumed log differs: $(cat "$work/b/log.csv")"
"$bin" train $common --lr 0.01 --out "$work/b" --resume >/dev/null 2>"$work/b.err"
[ $? -ne 0 ] && grep -q "other options" "$work/b.err" && ok || bad "resume with other options must fail"

# eval reads the architecture and preprocessing from the file.
"$bin" eval --weights "$work/a/model.safetensors" "$work/data" >"$work/eval.out" 2>&1 && ok || bad "eval: $(cat "$work/eval.out")"
grep -q "test accuracy .*(.*/64)" "$work/eval.out" && ok || bad "eval output: $(head -3 "$work/eval.out")"
grep -q "confusion matrix" "$work/eval.out" && ok || bad "no confusion matrix"

# Errors: one line, non-zero exit.
for args in "--out $work/c" "--data $work/nope --out $work/c" "--data $work/data --out $work/c --lr -1" \
            "--data $work/data --out $work/c --optimizer rmsprop" "--data $work/data --out $work/c --in-chans 3"; do
    "$bin" train $args >/dev/null 2>"$work/err"
    rc=$?
    [ $rc -ne 0 ] && [ "$(wc -l <"$work/err")" -eq 1 ] && ok || bad "train $args: rc=$rc $(cat "$work/err")"
done
printf 'garbage' | gzip >"$work/data/t10k-labels-idx1-ubyte.gz"
"$bin" eval --weights "$work/a/model.safetensors" "$work/data" >/dev/null 2>"$work/err"
[ $? -ne 0 ] && grep -q "t10k-labels" "$work/err" && ok || bad "eval on a corrupt label file: $(cat "$work/err")"
"$bin" train --help | grep -q "usage: ghostnet train" && ok || bad "train --help"
"$bin" eval --help | grep -q "usage: ghostnet eval" && ok || bad "eval --help"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
