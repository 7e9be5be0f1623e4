#!/usr/bin/python3
"""Training throughput of this engine against PyTorch on the same GhostNet configuration.

usage: bench/train_compare.py [--rounds 5] [--iters 8] [--threads 1,2] [--batch 128]
                              [--width 1.0] [--size 28] [--quick] [--out FILE.md]

Configuration (both sides): GhostNet width 1.0, in_chans 1, stem stride 1, 10 classes, 28x28
random inputs, batch 128; a training step is forward + backward + SGD (momentum 0.9,
Nesterov, weight decay 4e-5); evaluation is a forward pass in eval mode (no gradients).

  ours:    bench/train_bench.c, compiled here against build/trainbench/libghostnet.a
           (training steps with gn_train_forward_backward + gn_optimizer_step; evaluation with
           the inference session, BN folded, and with the training graph's eval forward)
  PyTorch: bench/torch_train_bench.py, Debian's /usr/bin/python3 with torch.set_num_threads(T)
           and our reference model tests/reference/ghostnet_ref.py

Every measurement is a fresh process; its peak RSS comes from os.wait4 (this driver imports
nothing heavy, since a forked child's peak RSS counts the parent's pre-exec memory). Rounds are
interleaved (each round runs every case once, engines in a rotating order) and the table
reports the median of the round medians with their range: speed on shared machines drifts, so
only ratios from one run of this script mean anything.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build", "trainbench")
BENCH_BIN = os.path.join(BUILD, "train_bench")
PYTHON = "/usr/bin/python3"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def setup():
    """Release library (tests off) and the C timing program linked against it."""
    run(["cmake", "-S", ROOT, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release", "-DGN_BUILD_TESTS=OFF"])
    run(["cmake", "--build", BUILD, "-j", "2", "--target", "ghostnet_static"])
    libs = ["-lm", "-lpthread"]
    try:
        libs = run(["pkg-config", "--libs", "libpng", "libjpeg", "zlib"]).stdout.split() + libs
    except (OSError, subprocess.CalledProcessError):
        libs = ["-lpng", "-ljpeg", "-lz"] + libs
    run([os.environ.get("CC", "cc"), "-O2", "-std=c11", "-Wall", "-Wextra",
         "-I", os.path.join(ROOT, "include"), "-I", os.path.join(ROOT, "src"),
         os.path.join(HERE, "train_bench.c"), os.path.join(BUILD, "libghostnet.a"),
         "-o", BENCH_BIN] + libs)


def engine_cmd(engine, mode, a, threads, iters):
    common = ["--width", str(a.width), "--in-chans", "1", "--stem-stride", "1", "--classes", "10",
              "--size", str(a.size), "--batch", str(a.batch), "--threads", str(threads),
              "--warmup", str(a.warmup), "--iters", str(iters)]
    if engine == "torch":
        return [PYTHON, os.path.join(HERE, "torch_train_bench.py"),
                "--mode", "train" if mode == "train" else "eval"] + common
    return [BENCH_BIN, "--mode", mode] + common


def measure(cmd):
    """Runs one timing process; returns (its JSON, its peak RSS in MiB). Output goes to files,
    not pipes, so a chatty child cannot block before wait4 reaps it."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError("%s failed: %s" % (" ".join(cmd), err.read()[-2000:]))
        line = [l for l in out.read().splitlines() if l.startswith("{")][-1]
    return json.loads(line), usage.ru_maxrss / 1024.0


def loadavg():
    """1-minute load average: other processes on the cores skew both engines, and PyTorch's
    OpenMP threads far more (seconds per step once a core is taken)."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def cpu_info():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return model


# (label, our mode, PyTorch mode): our two evaluation paths are both compared with PyTorch's
ROWS = [
    ("training step", "train", "train"),
    ("evaluation (inference session)", "eval", "eval"),
    ("evaluation (training graph)", "graph-eval", "eval"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=8, help="timed training steps per process")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--quick", action="store_true", help="2 rounds, 4 iterations")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.iters, a.warmup = 2, 4, 1
    threads = [int(t) for t in a.threads.split(",") if t]

    load_before = loadavg()  # before our own build
    setup()
    # torch runs once per (threads, torch mode): both eval rows share it
    jobs = []  # (threads, engine, mode)
    for t in threads:
        for _, ours, theirs in ROWS:
            jobs.append((t, "ghostnet", ours))
        for m in sorted({theirs for _, _, theirs in ROWS}):
            jobs.append((t, "torch", m))
    results = {}  # job -> list of (ms, rss)
    t0 = time.time()
    for r in range(a.rounds):
        order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
        for job in order:
            t, engine, mode = job
            # evaluation is ~5x cheaper than a step: more iterations for the same time
            iters = a.iters if mode == "train" else 3 * a.iters
            res, rss = measure(engine_cmd(engine, mode, a, t, iters))
            results.setdefault(job, []).append((res["median_ms"], rss))
        print("round %d/%d done (%.0f s)" % (r + 1, a.rounds, time.time() - t0), file=sys.stderr)

    load_after = loadavg()
    lines = []
    lines.append("Machine: %s, %d cores; GhostNet %gx, in_chans 1, stem stride 1, 10 classes, "
                 "%dx%d, batch %d; %d interleaved rounds, median of round medians (range); "
                 "1-minute load average %.2f before, %.2f at the end (which counts this run's own "
                 "busy threads)." %
                 (cpu_info(), os.cpu_count() or 0, a.width, a.size, a.size, a.batch, a.rounds,
                  load_before, load_after))
    lines.append("")
    lines.append("| threads | pass | ours img/s | PyTorch img/s | ours / PyTorch | "
                 "ours ms/batch | PyTorch ms/batch | peak RSS ours / PyTorch (MiB) |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for t in threads:
        for label, ours, theirs in ROWS:
            mine, base = results[(t, "ghostnet", ours)], results[(t, "torch", theirs)]
            ms_m, ms_b = median([m for m, _ in mine]), median([m for m, _ in base])
            ips_m, ips_b = a.batch * 1000.0 / ms_m, a.batch * 1000.0 / ms_b
            rss_m, rss_b = max(r for _, r in mine), max(r for _, r in base)
            lines.append("| %d | %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.2fx | %.1f | %.1f | "
                         "%.0f / %.0f |" % (
                             t, label, ips_m, a.batch * 1000.0 / max(m for m, _ in mine),
                             a.batch * 1000.0 / min(m for m, _ in mine), ips_b,
                             a.batch * 1000.0 / max(m for m, _ in base),
                             a.batch * 1000.0 / min(m for m, _ in base), ips_m / ips_b, ms_m, ms_b,
                             rss_m, rss_b))
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
