#!/usr/bin/python3
"""PyTorch side of `ghostnet eval` on MNIST-style IDX data: loads a model file made by this
project (or any file ghostnet_ref.load_model takes) into our PyTorch reference GhostNet, and
evaluates it on the test split with the preprocessing its metadata records.

usage: eval_ref.py [--threads N] [--batch N] MODEL.safetensors DATASET_DIR

DATASET_DIR holds t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]. Preprocessing:
uint8 / 255 in float32, then (x - mean) / std with the file's `mean` and `std` metadata (first
value per channel); the images are used at their stored size (the `input_size` metadata must
match it). Prints `test accuracy A% (correct/count), loss L`, the same line `ghostnet eval`
begins with, so the two can be compared.
"""
import argparse
import gzip
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import ghostnet_ref  # noqa: E402
from classify_ref import read_metadata  # noqa: E402


def read_idx(path):
    """An IDX file (optionally gzip'd) as a numpy array of its stored shape."""
    for candidate in (path + ".gz", path):
        if os.path.exists(candidate):
            opener = gzip.open if candidate.endswith(".gz") else open
            with opener(candidate, "rb") as f:
                raw = f.read()
            break
    else:
        sys.exit("eval_ref.py: %s[.gz] not found" % path)
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit("eval_ref.py: %s is not a uint8 IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    return data.reshape(dims)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("model")
    ap.add_argument("data")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model, cfg = ghostnet_ref.load_model(args.model)
    meta = read_metadata(args.model)
    channels = cfg["in_chans"]
    mean = [float(v) for v in meta.get("mean", "0.5,0.5,0.5").split(",")][:channels]
    std = [float(v) for v in meta.get("std", "0.5,0.5,0.5").split(",")][:channels]

    images = read_idx(os.path.join(args.data, "t10k-images-idx3-ubyte"))
    labels = read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte")).astype(np.int64)
    if images.ndim == 3:
        images = images[:, None, :, :]  # N, 1, H, W
    if images.shape[1] != channels or images.shape[0] != labels.shape[0]:
        sys.exit("eval_ref.py: %s does not fit the model (%d channels)" % (args.data, channels))
    if cfg["input_size"] != images.shape[2]:
        sys.exit("eval_ref.py: model input size %d, images %d" % (cfg["input_size"], images.shape[2]))

    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for lo in range(0, len(labels), args.batch):
            x = torch.from_numpy(images[lo:lo + args.batch].astype(np.float32)) / 255.0
            x = (x - mean_t) / std_t
            y = torch.from_numpy(labels[lo:lo + args.batch])
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits.double(), y, reduction="sum"))
            correct += int((logits.argmax(dim=1) == y).sum())
    n = len(labels)
    print("test accuracy %.2f%% (%d/%d), loss %.4f" % (100.0 * correct / n, correct, n, loss_sum / n))


if __name__ == "__main__":
    main()
