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

# Four classes of 20x20 images (a bright quadrant plus noise), gzip'd IDX.
python3 "$(dirname "$0")/make_quadrants.py" "$work/data" 20 192 64 7 --gzip ||
    { echo "python3 needed to make the dataset"; exit 1; }

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

# Weight average: a model_ema file beside the model, two more log columns, and the same
# bit-identical resume for the average as for the weights.
"$bin" train $common --ema 0.9 --out "$work/e" >"$work/e.out" 2>"$work/e.err" && ok || bad "train --ema: $(tail -3 "$work/e.err")"
[ -s "$work/e/model_ema.safetensors" ] && ok || bad "--ema wrote no model_ema.safetensors"
head -1 "$work/e/log.csv" | grep -q ",ema_test_loss,ema_test_acc$" && ok || bad "--ema log header: $(head -1 "$work/e/log.csv")"
grep -q "EMA test loss" "$work/e.out" && ok || bad "--ema epoch summary: $(tail -1 "$work/e.out")"
cmp -s "$work/e/model_ema.safetensors" "$work/e/model.safetensors" && bad "average equals the last weights" || ok
cmp -s "$work/a/model.safetensors" "$work/e/model.safetensors" && ok || bad "--ema changed the training itself"
"$bin" train $common --ema 0.9 --out "$work/f" --stop-after 7 >/dev/null 2>&1
"$bin" train $common --ema 0.9 --out "$work/f" --resume >/dev/null 2>"$work/f.err" && ok || bad "resume --ema: $(tail -2 "$work/f.err")"
cmp -s "$work/e/model_ema.safetensors" "$work/f/model_ema.safetensors" && ok || bad "resumed weight average differs"
cut -d, -f1-6,9,10 "$work/e/log.csv" >"$work/e.cols"; cut -d, -f1-6,9,10 "$work/f/log.csv" >"$work/f.cols"
cmp -s "$work/e.cols" "$work/f.cols" && ok || bad "resumed --ema log differs: $(cat "$work/f/log.csv")"
# The average's file evaluates to the accuracy the log gives it.
"$bin" eval --weights "$work/e/model_ema.safetensors" "$work/data" >"$work/eval_ema.out" 2>&1 && ok || bad "eval model_ema: $(cat "$work/eval_ema.out")"
ema_acc=$(tail -1 "$work/e/log.csv" | cut -d, -f10)
grep -q "test accuracy $(printf '%.2f' "$ema_acc")%" "$work/eval_ema.out" && ok || bad "model_ema accuracy $ema_acc in the log, eval says: $(grep 'test accuracy' "$work/eval_ema.out")"
"$bin" train $common --out "$work/e" --resume >/dev/null 2>"$work/err"
[ $? -ne 0 ] && grep -q "other options" "$work/err" && ok || bad "resume without --ema must fail"

# Fine-tuning: --init takes the architecture (here 1 input channel, width 0.25) from the file,
# so no model options are needed, and the run starts from those weights.
"$bin" train --data "$work/data" --init "$work/a/model.safetensors" --epochs 1 --batch 16 \
    --lr 0.001 --threads 1 --out "$work/ft" >"$work/ft.out" 2>"$work/ft.err" && ok || bad "--init: $(tail -2 "$work/ft.err")"
grep -q "0.25x .* 1 ch, 4 classes" "$work/ft.out" && ok || bad "--init architecture: $(head -1 "$work/ft.out")"
# From scratch one epoch leaves the loss near chance (ln 4 = 1.39); from the trained weights with
# a tiny learning rate it stays at least as low as where run a ended.
a_loss=$(cut -d, -f5 "$work/a/log.csv" | tail -1)
ft_loss=$(cut -d, -f5 "$work/ft/log.csv" | tail -1)
python3 -c "import sys; sys.exit(0 if float('$ft_loss') <= float('$a_loss') + 0.1 < 1.3 else 1)" && ok ||
    bad "--init should start from the trained weights: test loss $a_loss before, $ft_loss after"

# eval reads the architecture and preprocessing from the file.
"$bin" eval --weights "$work/a/model.safetensors" "$work/data" >"$work/eval.out" 2>&1 && ok || bad "eval: $(cat "$work/eval.out")"
grep -q "test accuracy .*(.*/64)" "$work/eval.out" && ok || bad "eval output: $(head -3 "$work/eval.out")"
grep -q "confusion matrix" "$work/eval.out" && ok || bad "no confusion matrix"

# A model trained here loads in PyTorch (our reference GhostNet, strict state-dict load) and
# evaluates to the same accuracy and loss there.
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    want=$(sed -n 's/^\(test accuracy .*loss [0-9.]*\),.*/\1/p' "$work/eval.out")
    got=$(/usr/bin/python3 "$(dirname "$0")/reference/eval_ref.py" --threads 1 "$work/a/model.safetensors" "$work/data" 2>&1)
    [ -n "$want" ] && [ "$got" = "$want" ] && ok || bad "PyTorch evaluation of the trained model: '$got', ghostnet eval: '$want'"
elif [ "${GN_REQUIRE_REFERENCE:-0}" = 1 ]; then
    bad "GN_REQUIRE_REFERENCE=1 but /usr/bin/python3 has no torch"
fi

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
