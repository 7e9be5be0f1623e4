#!/bin/sh
# `ghostnet experiment` end to end at a tiny budget (the CI smoke run of the paper's
# experiments): every variant trains and is measured, results.md has one row per variant with
# numbers, results.csv and the chart are written; a second run reuses the finished variants;
# a described network resumes exactly; bad arguments fail with one line and no output.
# usage: test_experiment.sh GHOSTNET_BINARY SOURCE_DIR WORKDIR
set -u
bin=$1
src=$2
work=$3
rm -rf "$work" && mkdir -p "$work/data"
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# Four classes of 16x16 images (a bright quadrant plus noise), raw IDX.
python3 "$src/tests/make_quadrants.py" "$work/data" 16 64 32 3 ||
    { echo "python3 needed to make the dataset"; exit 1; }

tiny="--data $work/data --nets $src/nets --epochs 1 --batch 16 --threads 1 --latency-runs 3"
for ex in ablation ghost-vs-vanilla frontier; do
    case $ex in
        frontier) extra="" ;;
        *) extra="--width 0.25" ;;
    esac
    out="$work/$ex"
    if "$bin" experiment $ex $tiny $extra --out "$out" >"$out.log" 2>&1; then ok; else
        bad "$ex: $(tail -3 "$out.log")"; continue; fi
    for f in results.md results.csv $ex.png; do
        [ -s "$out/$f" ] && ok || bad "$ex: missing $f"
    done
    # one table row per variant, each with a positive parameter count and an accuracy
    want=$(grep -c '^== ' "$out.log")
    rows=$(grep -c '^| [a-z].* | [0-9.]*M | [0-9.]*M | [0-9.]* | [0-9.]*% |' "$out/results.md")
    [ "$want" -ge 4 ] && [ "$rows" -eq "$want" ] && ok || bad "$ex: $rows table rows for $want variants"
    head -c 8 "$out/$ex.png" | od -An -tx1 | grep -q '89 50 4e 47' && ok || bad "$ex: not a PNG"
done
# a second run trains nothing again and gives the same accuracies
out="$work/ablation"
cp "$out/results.csv" "$work/first.csv"
"$bin" experiment ablation $tiny --width 0.25 --out "$out" >"$work/again.log" 2>&1 && ok || bad "rerun failed"
grep -q 'steps per epoch' "$work/again.log" && bad "rerun trained again" || ok
cut -d, -f1-3,5 "$work/first.csv" >"$work/a.csv"
cut -d, -f1-3,5 "$out/results.csv" >"$work/b.csv"
cmp -s "$work/a.csv" "$work/b.csv" && ok || bad "rerun changed the results"

# a described network (with dropout) interrupted mid-run and resumed ends bit-identical
common="--net $src/tests/nets_extra/all_layers.net --data $work/data --in-chans 1 --epochs 2 --batch 16 --threads 1 --lr 0.05 --stem-stride 1"
"$bin" train $common --out "$work/ra" >/dev/null 2>&1 && ok || bad "net train failed"
"$bin" train $common --out "$work/rb" --stop-after 3 >/dev/null 2>&1
[ $? -eq 130 ] && ok || bad "--stop-after did not stop"
"$bin" train $common --out "$work/rb" --resume >/dev/null 2>&1 && ok || bad "net resume failed"
cmp -s "$work/ra/model.safetensors" "$work/rb/model.safetensors" && ok || bad "resumed net differs"

# errors: one line, non-zero exit, nothing written
for args in "nosuch --data $work/data --out $work/e1" "ablation --out $work/e2" \
    "ablation --data $work/data --out $work/e3 --epochs 0" \
    "frontier --data $work/data --out $work/e4 --nets $work/none"; do
    if "$bin" experiment $args >"$work/err.out" 2>"$work/err.txt"; then bad "accepted: $args"; else ok; fi
    [ "$(wc -l <"$work/err.txt")" -eq 1 ] && ok || bad "not one line: $(cat "$work/err.txt")"
done
[ ! -e "$work/e2" ] && [ ! -e "$work/e3" ] && ok || bad "output folder made on error"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
