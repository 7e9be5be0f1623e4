#!/usr/bin/python3
"""PyTorch side of end-to-end classification (the reference for `ghostnet classify`).

usage: classify_ref.py --weights FILE [--topk K] [--dump-pixels OUT.safetensors]
                       [--no-torchvision] IMAGE...

Preprocessing (the official GhostNet evaluation, sizes/mean/std taken from the weights file's
metadata, defaults 256 / 224 / ImageNet):
    PIL open -> convert('RGB') ('L' when in_chans == 1)
    Resize(resize_size), bilinear: shorter side -> resize_size, longer side ->
        int(resize_size * long / short) (truncated), PIL's BILINEAR filter (which is
        antialiased: its support grows with the downscale factor)
    CenterCrop(input_size): top = int(round((h - size) / 2)), left likewise; Python round,
        i.e. halves go to the even integer
    ToTensor (uint8 / 255 in float32), Normalize ((x - mean) / std in float32)
torchvision.transforms is used when importable (python3-torchvision), otherwise the same math
with PIL + numpy (bit-identical; --no-torchvision forces that path).

Output per image: a line `<path>`, then K lines `  <prob %.6f> <class index>`, best first.
--dump-pixels writes the preprocessed batch as tensor "input" [B,C,H,W] (F32).
"""
import argparse
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def read_metadata(path):
    """The __metadata__ of a safetensors file (header only, tensors not read)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header.get("__metadata__", {}) or {}


def preprocess_params(meta):
    """(in_chans, resize_size, input_size, mean list, std list) from file metadata."""
    in_chans = int(meta.get("in_chans", 3))
    resize = int(meta.get("resize_size", 256))
    crop = int(meta.get("input_size", 224))
    default = "0.485,0.456,0.406" if in_chans == 3 else "0.5"
    mean = [float(v) for v in meta.get("mean", default).split(",")]
    std = [float(v) for v in meta.get("std", "0.229,0.224,0.225" if in_chans == 3
                                      else "0.5").split(",")]
    if len(mean) == 1:
        mean *= in_chans
    if len(std) == 1:
        std *= in_chans
    if in_chans not in (1, 3) or len(mean) != in_chans or len(std) != in_chans:
        raise ValueError("unsupported preprocessing: in_chans %d, mean %s, std %s"
                         % (in_chans, mean, std))
    return in_chans, resize, crop, mean, std


def load_image(path, in_chans):
    with Image.open(path) as im:
        return im.convert("L" if in_chans == 1 else "RGB")


def resized_size(w, h, size):
    """torchvision Resize(int) output size (w, h): shorter side -> size, longer truncated."""
    if w <= h:
        return size, int(size * h / w)
    return int(size * w / h), size


def preprocess_numpy(img, resize, crop, mean, std):
    """PIL + numpy version of Resize/CenterCrop/ToTensor/Normalize; returns [C,H,W] float32."""
    w, h = img.size
    nw, nh = resized_size(w, h, resize)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), Image.BILINEAR)
    top = int(round((nh - crop) / 2.0))
    left = int(round((nw - crop) / 2.0))
    if top < 0 or left < 0:
        raise ValueError("crop %d larger than resized image %dx%d" % (crop, nw, nh))
    img = img.crop((left, top, left + crop, top + crop))
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    x = arr.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (x - m) / s


def make_transform(resize, crop, mean, std):
    """torchvision transform, or None when torchvision is not importable."""
    try:
        from torchvision import transforms
    except ImportError:
        return None
    return transforms.Compose([
        transforms.Resize(resize, interpolation=transforms.InterpolationMode.BILINEAR),
        transforms.CenterCrop(crop),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def preprocess(paths, meta, use_torchvision=True):
    """Preprocessed batch [B,C,H,W] (torch float32) for the images, per the file metadata."""
    import torch
    in_chans, resize, crop, mean, std = preprocess_params(meta)
    tf = make_transform(resize, crop, mean, std) if use_torchvision else None
    xs = []
    for p in paths:
        img = load_image(p, in_chans)
        if tf is not None:
            xs.append(tf(img))
        else:
            xs.append(torch.from_numpy(preprocess_numpy(img, resize, crop, mean, std)))
    return torch.stack(xs)


def topk_probs(model, x, k):
    """Softmax probabilities of the batch; returns per image [(prob, class index)] best first."""
    import torch
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), dim=1)
    k = min(k, probs.shape[1])
    vals, idxs = torch.topk(probs, k, dim=1)
    return [[(float(v), int(i)) for v, i in zip(vr, ir)] for vr, ir in zip(vals, idxs)]


def format_results(paths, results):
    lines = []
    for p, res in zip(paths, results):
        lines.append(p)
        lines.extend("  %.6f %d" % (prob, idx) for prob, idx in res)
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="GhostNet PyTorch reference classifier")
    ap.add_argument("--weights", required=True, help="our safetensors weights (with metadata)")
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--dump-pixels", metavar="OUT", help="write the preprocessed input tensor")
    ap.add_argument("--no-torchvision", action="store_true",
                    help="use the PIL + numpy preprocessing even if torchvision is available")
    ap.add_argument("images", nargs="+")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(2)
    import ghostnet_ref as ref
    import st_io

    meta = read_metadata(args.weights)
    x = preprocess(args.images, meta, use_torchvision=not args.no_torchvision)
    if args.dump_pixels:
        st_io.save(args.dump_pixels, {"input": x.contiguous().numpy()},
                   {"paths": "\n".join(args.images)})
    model, _ = ref.load_model(args.weights)
    sys.stdout.write(format_results(args.images, topk_probs(model, x, args.topk)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
