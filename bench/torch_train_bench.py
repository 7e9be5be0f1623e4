#!/usr/bin/python3
"""PyTorch side of bench/train_compare.py: training (forward + backward + SGD step) or
evaluation throughput of our reference GhostNet (tests/reference/ghostnet_ref.py) on random
data.

usage: torch_train_bench.py --mode train|eval [--width 1.0] [--in-chans 1] [--stem-stride 1]
                            [--classes 10] [--size 28] [--batch 128] [--threads T]
                            [--warmup N] [--iters N]
Prints one JSON line with the median time per batch and images/s.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("train", "eval"), default="train")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--in-chans", type=int, default=1)
    ap.add_argument("--stem-stride", type=int, default=1)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--size", type=int, default=28)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()

    import torch
    import ghostnet_ref as ref
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(1)
    model = ref.build(ref.make_cfg(width=a.width, in_chans=a.in_chans, num_classes=a.classes,
                                   stem_stride=a.stem_stride, input_size=a.size))
    gen = torch.Generator().manual_seed(7)
    x = torch.rand(a.batch, a.in_chans, a.size, a.size, generator=gen) * 2 - 1
    y = torch.randint(0, a.classes, (a.batch,), generator=gen)
    times = []
    loss = 0.0
    if a.mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                              weight_decay=4e-5)
        crit = torch.nn.CrossEntropyLoss()
        for i in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            out = crit(model(x), y)
            out.backward()
            opt.step()
            if i >= a.warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        loss = float(out)
    else:
        model.eval()
        with torch.no_grad():
            for i in range(a.warmup + a.iters):
                t0 = time.perf_counter()
                model(x)
                if i >= a.warmup:
                    times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(json.dumps({"mode": a.mode, "batch": a.batch, "threads": a.threads, "iters": a.iters,
                      "median_ms": round(med, 3), "min_ms": round(times[0], 3),
                      "images_per_s": round(a.batch * 1000.0 / med, 2), "loss": round(loss, 5)}))


if __name__ == "__main__":
    main()
