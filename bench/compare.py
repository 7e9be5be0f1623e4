#!/usr/bin/python3
"""Side-by-side speed of this engine, ONNX Runtime and PyTorch on the same GhostNet weights.

usage: bench/compare.py [--rounds 5] [--iters 30] [--quick] [--out FILE.md]

What it does, all on this machine and in one time window:
  1. builds `ghostnet` (Release) and installs npm's onnxruntime-node (CPU build shipped inside
     the package; --ignore-scripts because its install script only fetches CUDA files) into
     bench/.ort;
  2. writes seeded random weights with `ghostnet init`, loads them into our PyTorch reference
     (tests/reference/ghostnet_ref.py) and exports ONNX with torch.onnx.export;
  3. checks that the three engines agree on one input (max|diff| / max|logit|);
  4. times every case in interleaved rounds (each round runs every engine once, in a rotating
     order, each in a fresh process whose peak RSS is taken from wait4), and reports the median
     of the round medians with the range of the round medians.
Speed on shared machines drifts, so only ratios from one run of this script mean anything.
"""
import argparse
import array
import json
import os
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "out")
ORT_DIR = os.path.join(HERE, ".ort")
ORT_VERSION = "1.30.0"
GHOSTNET = os.path.join(ROOT, "build", "bench", "ghostnet")

# name, ghostnet init options, (in_chans, size)
MODELS = {
    "0.5x": (["--width", "0.5"], 3, 224),
    "1.0x": (["--width", "1.0"], 3, 224),
    "1.3x": (["--width", "1.3"], 3, 224),
    "fmnist": (["--width", "1.0", "--in-chans", "1", "--stem-stride", "1", "--num-classes", "10",
                "--input-size", "28"], 1, 28),
}
# model, batch, threads
CASES = [
    ("1.0x", 1, 1), ("1.0x", 1, 2), ("1.0x", 16, 2),
    ("0.5x", 1, 1), ("0.5x", 1, 2), ("0.5x", 16, 2),
    ("1.3x", 1, 1), ("1.3x", 1, 2), ("1.3x", 16, 2),
    ("fmnist", 256, 2),
]
QUICK_CASES = [("1.0x", 1, 1), ("1.0x", 1, 2), ("1.0x", 16, 2), ("fmnist", 256, 2)]
ENGINES = ["ghostnet", "ort", "torch", "torchscript"]


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def setup():
    os.makedirs(OUT, exist_ok=True)
    run(["cmake", "-S", ROOT, "-B", os.path.join(ROOT, "build", "bench"),
         "-DCMAKE_BUILD_TYPE=Release", "-DGN_BUILD_TESTS=OFF"])
    run(["cmake", "--build", os.path.join(ROOT, "build", "bench"), "-j", "2",
         "--target", "ghostnet"])
    if not os.path.isdir(os.path.join(ORT_DIR, "node_modules", "onnxruntime-node")):
        os.makedirs(ORT_DIR, exist_ok=True)
        run(["npm", "install", "--prefix", ORT_DIR, "--ignore-scripts", "--no-audit", "--no-fund",
             "onnxruntime-node@" + ORT_VERSION])


def make_model(name):
    """Weights from our engine; ONNX from our PyTorch reference loading those weights (in a
    child process: this driver stays small, since a child's peak RSS counts its pre-exec fork)."""
    opts, chans, size = MODELS[name]
    weights = os.path.join(OUT, name + ".safetensors")
    run([GHOSTNET, "init", "--seed", "1", "--out", weights] + opts)
    run(["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), weights, "--shape",
         "1,%d,%d,%d" % (chans, size, size), "--export-onnx", os.path.join(OUT, name + ".onnx")])


def engine_cmd(engine, name, batch, threads, iters, extra=()):
    opts, chans, size = MODELS[name]
    weights = os.path.join(OUT, name + ".safetensors")
    shape = "%d,%d,%d,%d" % (batch, chans, size, size)
    if engine == "ghostnet":
        return [GHOSTNET, "bench", "--weights", weights, "--size", str(size), "--batch",
                str(batch), "--threads", str(threads), "--iters", str(iters), "--json"] + list(extra)
    if engine == "ort":
        return ["node", os.path.join(HERE, "ort_bench.mjs"), os.path.join(OUT, name + ".onnx"),
                "--shape", shape, "--threads", str(threads), "--iters", str(iters)] + list(extra)
    mode = "script" if engine == "torchscript" else "eager"
    return ["/usr/bin/python3", os.path.join(HERE, "torch_bench.py"), weights, "--mode", mode,
            "--shape", shape, "--threads", str(threads), "--iters", str(iters)] + list(extra)


def measure(cmd):
    """Runs one timing process; returns (its JSON, its peak RSS in MB)."""
    env = dict(os.environ, ORT_NODE_PATH=os.path.join(ORT_DIR, "node_modules", "onnxruntime-node"))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(cmd), err[-2000:]))
    line = [l for l in out.splitlines() if l.startswith("{")][-1]
    return json.loads(line), usage.ru_maxrss / 1024.0


def read_f32(path):
    values = array.array("f")
    with open(path, "rb") as f:
        values.frombytes(f.read())
    return values


def agreement(name):
    """Logits of the three engines on one input: max|diff| / max|logit| against PyTorch."""
    _, chans, size = MODELS[name]
    batch = 2
    rng = random.Random(0)
    x = array.array("f", (rng.gauss(0.0, 1.0) for _ in range(batch * chans * size * size)))
    inp = os.path.join(OUT, name + ".input.f32")
    with open(inp, "wb") as f:
        x.tofile(f)
    logits = {}
    for engine in ("ghostnet", "ort", "torch"):
        dump = os.path.join(OUT, "%s.%s.logits.f32" % (name, engine))
        measure(engine_cmd(engine, name, batch, 1, 1, ["--input", inp, "--dump", dump]))
        logits[engine] = read_f32(dump)
    ref = logits["torch"]
    scale = max(abs(v) for v in ref)
    return {e: max(abs(a - b) for a, b in zip(v, ref)) / scale
            for e, v in logits.items() if e != "torch"}


def cpu_info():
    model, mhz = "unknown CPU", 0.0
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown CPU":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("cpu MHz") and not mhz:
                    mhz = float(line.split(":", 1)[1])
    except OSError:
        pass
    return model, mhz


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30, help="timed runs per process (batch 1)")
    ap.add_argument("--quick", action="store_true", help="1.0x and Fashion-MNIST cases only")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    a = ap.parse_args()

    setup()
    cases = QUICK_CASES if a.quick else CASES
    models = sorted({c[0] for c in cases})
    macs = {}
    for name in models:
        make_model(name)
        _, chans, size = MODELS[name]
        out = run([GHOSTNET, "summary", "--weights", os.path.join(OUT, name + ".safetensors"),
                   "--size", str(size)]).stdout
        macs[name] = int([l for l in out.splitlines() if l.startswith("Total MACs")][0]
                         .split("(")[1].rstrip(")").replace(",", ""))
    agree = {name: agreement(name) for name in models}

    results = {}  # (case, engine) -> list of (median_ms, rss)
    t0 = time.time()
    for r in range(a.rounds):
        for ci, case in enumerate(cases):
            name, batch, threads = case
            iters = max(3, a.iters // batch) if batch > 1 else a.iters
            order = ENGINES[(r + ci) % len(ENGINES):] + ENGINES[:(r + ci) % len(ENGINES)]
            for engine in order:
                res, rss = measure(engine_cmd(engine, name, batch, threads, iters))
                results.setdefault((case, engine), []).append((res["median_ms"], rss))
        print("round %d/%d done (%.0f s)" % (r + 1, a.rounds, time.time() - t0), file=sys.stderr)

    cpu, mhz = cpu_info()
    lines = []
    lines.append("Machine: %s, %d cores, %.0f MHz nominal; %d interleaved rounds; "
                 "median of round medians (range of round medians)." %
                 (cpu, os.cpu_count() or 0, mhz, a.rounds))
    lines.append("")
    lines.append("| model | batch | threads | ghostnet (this) | ONNX Runtime %s | PyTorch eager "
                 "| TorchScript | this / ORT latency | this img/s | ORT img/s | "
                 "peak RSS this / ORT (MB) | AVX2 peak used |" % ORT_VERSION)
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for case in cases:
        name, batch, threads = case
        cell, med = {}, {}
        for engine in ENGINES:
            ms = [m for m, _ in results[(case, engine)]]
            med[engine] = median(ms)
            cell[engine] = "%.2f ms (%.2f-%.2f)" % (med[engine], min(ms), max(ms))
        rss = {e: max(r for _, r in results[(case, e)]) for e in ("ghostnet", "ort")}
        ips = {e: batch * 1000.0 / med[e] for e in ("ghostnet", "ort")}
        # AVX2 + FMA: 2 FMA units x 8 lanes = 16 multiply-adds per cycle per core.
        peak = threads * 16 * mhz * 1e6 if mhz else float("nan")
        used = macs[name] * batch / (med["ghostnet"] / 1000.0) / peak
        lines.append("| %s | %d | %d | %s | %s | %s | %s | %.2f | %.0f | %.0f | %.0f / %.0f | %.0f%% |" % (
            name, batch, threads, cell["ghostnet"], cell["ort"], cell["torch"],
            cell["torchscript"], med["ghostnet"] / med["ort"], ips["ghostnet"], ips["ort"],
            rss["ghostnet"], rss["ort"], 100 * used))
    lines.append("")
    lines.append("Agreement with PyTorch on one batch-2 input (max|diff| / max|logit|): " +
                 "; ".join("%s: ghostnet %.1e, ORT %.1e" % (n, v["ghostnet"], v["ort"])
                           for n, v in sorted(agree.items())))
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    bad = [n for n, v in agree.items() if max(v.values()) > 1e-4]
    if bad:
        print("engines disagree for: %s" % ", ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
