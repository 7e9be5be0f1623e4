#!/usr/bin/python3
"""PyTorch side of bench/compare.py: our reference GhostNet, eager or TorchScript.

usage: torch_bench.py WEIGHTS --mode eager|script --shape B,C,H,W --threads T --warmup N
                      --iters N [--input in.f32 --dump out.f32]
Prints one JSON line with median/p10/p90 latency in ms.
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
    ap.add_argument("weights")
    ap.add_argument("--mode", choices=("eager", "script"), default="eager")
    ap.add_argument("--shape", default="1,3,224,224")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--input")
    ap.add_argument("--dump")
    ap.add_argument("--export-onnx", metavar="PATH", help="write the model as ONNX and exit")
    a = ap.parse_args()

    import numpy as np
    import torch
    import ghostnet_ref as ref
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    shape = [int(v) for v in a.shape.split(",")]
    model, _ = ref.load_model(a.weights)
    model.eval()
    if a.export_onnx:
        torch.onnx.export(model, torch.zeros(*shape), a.export_onnx, opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        return
    if a.input:
        x = torch.from_numpy(np.fromfile(a.input, dtype=np.float32).reshape(shape))
    else:
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        if a.mode == "script":
            # Traced: the reference keeps optional submodules as None, which script rejects.
            model = torch.jit.freeze(torch.jit.trace(model, x))
        for _ in range(a.warmup):
            out = model(x)
        times = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            out = model(x)
            times.append((time.perf_counter() - t0) * 1e3)
    if a.dump:
        out.numpy().astype(np.float32).tofile(a.dump)
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(round(q * (len(times) - 1))))]  # noqa: E731
    print(json.dumps({"median_ms": pick(0.5), "p10_ms": pick(0.1), "p90_ms": pick(0.9)}))


if __name__ == "__main__":
    main()
