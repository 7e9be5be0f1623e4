#!/usr/bin/python3
"""End-to-end classification parity: `ghostnet classify` against the PyTorch reference.

usage: classify_parity.py GHOSTNET_BINARY WORKDIR
       classify_parity.py --self-test          (checks the output parser on canned text)

1. Builds a seeded GhostNet 1.0x / 1000 classes with the reference (BN statistics randomized
   around the test images' own activations, classifier scaled so the softmax is spread out
   and the top-5 is well separated), saves it as WORKDIR/model.safetensors.
2. Makes a few seeded synthetic photo-like images (smooth shading, blobs, texture, edges) as
   JPEG (4:2:0 and 4:4:4) and PNG (RGB and grayscale), with different aspect ratios and one
   smaller than the 256 resize (upscaling).
3. Runs the classify_ref.py logic in-process and
       GHOSTNET_BINARY classify --weights WORKDIR/model.safetensors --topk 5 IMAGES...
   and requires, per image, the same top-5 classes in the same order with probabilities
   within 1e-3.
Exit 0 on success, 1 on failure, 77 (skip) when torch is missing unless GN_REQUIRE_REFERENCE=1.
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))

TOPK = 5
PROB_TOL = 1e-3
# A result line of the C tool: indented, probability then class index (more fields allowed).
PROB_RE = re.compile(r"^\s+([0-9.eE+-]+)\s+(\d+)")
# Reference margins required between consecutive top-(K+1) logits, so that float rounding
# differences between the engines cannot legitimately reorder the top-5.
MIN_LOGIT_GAP = 0.02
# (file name, width, height, format, PIL save options)
IMAGES = [
    ("landscape.jpg", 640, 480, "JPEG", {"quality": 90}),            # 4:2:0 (PIL default)
    ("portrait.png", 360, 540, "PNG", {}),
    ("square444.jpg", 500, 500, "JPEG", {"quality": 95, "subsampling": 0}),
    ("small.png", 200, 150, "PNG", {}),                              # upscaled by Resize(256)
    ("panorama.jpg", 900, 260, "JPEG", {"quality": 85}),
    ("gray.png", 300, 400, "PNG", {"mode": "L"}),                    # grayscale -> RGB
]


def need_reference():
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError as e:
        if os.environ.get("GN_REQUIRE_REFERENCE") == "1":
            print("classify_parity: PyTorch reference unavailable (%s) but "
                  "GN_REQUIRE_REFERENCE=1" % e, file=sys.stderr)
            sys.exit(1)
        print("classify_parity: skipping, PyTorch reference unavailable: %s" % e)
        sys.exit(77)


# ----------------------------------------------------------------------------- test images

def smooth_field(rng, w, h, octaves=5):
    """Fractal-ish smooth noise in [0, 1]: bicubic-upsampled random grids, 1/f weighting."""
    import numpy as np
    from PIL import Image
    acc = np.zeros((h, w), np.float64)
    total = 0.0
    for o in range(octaves):
        cells = 2 ** (o + 1)
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        up = Image.fromarray(grid, mode="F").resize((w, h), Image.BICUBIC)
        amp = 0.55 ** o
        acc += amp * np.asarray(up, np.float64)
        total += amp
    acc /= total
    return (acc - acc.min()) / max(acc.max() - acc.min(), 1e-9)


def make_photo(rng, w, h):
    """A seeded synthetic 'photo': sky gradient, textured ground, shaded blobs, sharp edges."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    yy = np.linspace(0.0, 1.0, h)[:, None] * np.ones((1, w))
    horizon = 0.35 + 0.3 * rng.random() + 0.08 * (smooth_field(rng, w, 1, 3)[0][None, :] - 0.5)
    sky_top, sky_bot = rng.random(3) * [0.3, 0.4, 0.5] + [0.2, 0.3, 0.5], rng.random(3) * 0.3 + 0.6
    ground_a, ground_b = rng.random(3) * 0.5, rng.random(3) * 0.5 + 0.3
    tex = smooth_field(rng, w, h, 6)
    img = np.empty((h, w, 3))
    for c in range(3):
        sky = sky_top[c] + (sky_bot[c] - sky_top[c]) * yy / np.maximum(horizon, 1e-3)
        ground = ground_a[c] + (ground_b[c] - ground_a[c]) * tex
        img[:, :, c] = np.where(yy < horizon, sky, ground)
    pil = Image.fromarray(np.clip(img * 255.0, 0, 255).astype(np.uint8), "RGB")

    # Objects: shaded ellipses and polygons with hard edges (then mild blur, like optics).
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(4, 9))):
        cx, cy = rng.random() * w, rng.random() * h
        rx, ry = (0.05 + 0.2 * rng.random()) * w, (0.05 + 0.2 * rng.random()) * h
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.6:
            draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=col)
        else:
            pts = [(cx + rx * np.cos(a), cy + ry * np.sin(a))
                   for a in np.sort(rng.random(int(rng.integers(3, 7))) * 2 * np.pi)]
            draw.polygon(pts, fill=col)
    pil = pil.filter(ImageFilter.GaussianBlur(0.8))

    # Lighting falloff and sensor noise.
    arr = np.asarray(pil, np.float64)
    light = 0.75 + 0.5 * smooth_field(rng, w, h, 2)[:, :, None]
    arr = arr * light + rng.normal(0.0, 4.0, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def make_images(workdir, seed=2024):
    import numpy as np
    rng = np.random.default_rng(seed)
    paths = []
    for name, w, h, fmt, opts in IMAGES:
        opts = dict(opts)
        img = make_photo(rng, w, h)
        mode = opts.pop("mode", None)
        if mode:
            img = img.convert(mode)
        path = os.path.join(workdir, name)
        img.save(path, fmt, **opts)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- model

def min_top_gap(logits, k):
    """Smallest gap between consecutive logits among each row's top k+1."""
    import torch
    top = torch.topk(logits, k + 1, dim=1).values
    return float((top[:, :-1] - top[:, 1:]).min())


def make_model(x, path):
    """Seeded 1.0x model whose top-5 on batch x is well separated; saved to path."""
    import torch
    import ghostnet_ref as ref

    cfg = ref.make_cfg()
    for seed in range(100, 140):
        torch.manual_seed(seed)
        model = ref.build(cfg)
        gen = torch.Generator().manual_seed(seed)
        # Statistics around the real preprocessed images (plus noise for more samples), so
        # the network is input dependent and different images get different classes.
        calib = torch.cat([x, torch.randn(2, *x.shape[1:], generator=gen)])
        ref.randomize_bn(model, gen, calib=calib)
        model.eval()
        with torch.no_grad():
            logits = model(x)
            # Spread the softmax: logit std ~3 across classes (top-1 roughly 5-50%).
            scale = 3.0 / float(logits.std(dim=1).mean())
            model.classifier.weight.mul_(scale)
            model.classifier.bias.mul_(scale)
            logits = model(x)
        gap = min_top_gap(logits, TOPK)
        if gap >= MIN_LOGIT_GAP:
            ref.save_model(model, cfg, path)
            return model, seed, gap
    raise RuntimeError("no seed gave a well separated top-%d" % TOPK)


# ----------------------------------------------------------------------------- C output

def parse_c_output(text):
    """[(header line, [(prob, class)...])] from `ghostnet classify` stdout.

    A non-empty line that is not a result line starts a new image block.
    """
    blocks = []
    for line in text.splitlines():
        m = PROB_RE.match(line)
        if m:
            if not blocks:
                raise ValueError("result line before any image line: %r" % line)
            blocks[-1][1].append((float(m.group(1)), int(m.group(2))))
        elif line.strip():
            blocks.append((line.strip(), []))
    return blocks


def match_blocks(paths, blocks):
    """Blocks in image order: by the path in the header line, else by position."""
    if len(blocks) != len(paths):
        raise ValueError("expected %d image blocks, got %d" % (len(paths), len(blocks)))
    out = []
    for i, p in enumerate(paths):
        hits = [b for b in blocks if b[0] == p or b[0].startswith(p)]
        out.append(hits[0] if len(hits) == 1 else blocks[i])
    return out


def compare(paths, ref_results, blocks):
    """Returns a list of failure messages (empty when everything matches)."""
    failures = []
    for p, want, (header, got) in zip(paths, ref_results, match_blocks(paths, blocks)):
        if os.path.basename(p) not in header:
            failures.append("%s: header line %r does not name the image" % (p, header))
        if len(got) < TOPK:
            failures.append("%s: %d result lines, want %d" % (p, len(got), TOPK))
            continue
        got = got[:TOPK]
        if [c for _, c in got] != [c for _, c in want]:
            failures.append("%s: top-%d classes %s, reference %s"
                            % (p, TOPK, [c for _, c in got], [c for _, c in want]))
        diff = max(abs(a - b) for (a, _), (b, _) in zip(got, want))
        if diff > PROB_TOL:
            failures.append("%s: probabilities differ by %.2e (> %.0e): %s vs reference %s"
                            % (p, diff, PROB_TOL, [round(a, 6) for a, _ in got],
                               [round(b, 6) for b, _ in want]))
    return failures


def self_test():
    """The parser and comparison on canned outputs (no torch, no binary needed)."""
    paths = ["/w/a.jpg", "/w/b.png"]
    want = [[(0.5, 7), (0.2, 3), (0.1, 9), (0.05, 1), (0.01, 2)],
            [(0.9, 1), (0.05, 0), (0.01, 5), (0.005, 4), (0.001, 8)]]
    good = ("/w/a.jpg\n  0.500000 7\n  0.200300 3 cat\n  1.000000e-01 9\n  0.050000 1\n"
            "  0.010000 2\n\n/w/b.png\n\t0.899500 1\n  0.050000 0\n  0.010000 5\n"
            "  0.005000 4\n  0.001000 8\n")
    assert not compare(paths, want, parse_c_output(good)), compare(paths, want,
                                                                    parse_c_output(good))
    swapped = good.replace("  0.200300 3 cat\n  1.000000e-01 9",
                           "  1.000000e-01 9\n  0.200300 3 cat")
    assert any("classes" in f for f in compare(paths, want, parse_c_output(swapped)))
    off = good.replace("0.899500 1", "0.897000 1")
    assert any("differ" in f for f in compare(paths, want, parse_c_output(off)))
    short = good.replace("  0.001000 8\n", "")
    assert any("result lines" in f for f in compare(paths, want, parse_c_output(short)))
    try:
        match_blocks(paths, parse_c_output(good.split("\n\n")[0]))
        raise AssertionError("missing image block not detected")
    except ValueError:
        pass
    print("classify_parity: self-test passed")
    return 0


# ----------------------------------------------------------------------------- main

def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return self_test()
    if len(argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    need_reference()
    import torch
    torch.set_num_threads(2)
    import classify_ref

    binary, workdir = argv[1], argv[2]
    os.makedirs(workdir, exist_ok=True)
    weights = os.path.join(workdir, "model.safetensors")

    paths = make_images(workdir)
    meta = {"in_chans": "3", "resize_size": "256", "input_size": "224"}  # defaults
    x = classify_ref.preprocess(paths, meta)
    model, seed, gap = make_model(x, weights)
    # Exactly the classify_ref.py path: preprocessing from the saved file's metadata.
    x = classify_ref.preprocess(paths, classify_ref.read_metadata(weights))
    ref_results = classify_ref.topk_probs(model, x, TOPK)
    print("classify_parity: model seed %d, min top-%d logit gap %.3g, %d images"
          % (seed, TOPK + 1, gap, len(paths)))

    cmd = [binary, "classify", "--weights", weights, "--topk", str(TOPK)] + paths
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("classify_parity: FAIL: cannot run %s: %s" % (binary, e))
        return 1
    if proc.returncode != 0:
        print("classify_parity: FAIL: %s exited %d\n%s" % (" ".join(cmd), proc.returncode,
                                                           proc.stderr[-4000:]))
        return 1
    try:
        blocks = parse_c_output(proc.stdout)
        failures = compare(paths, ref_results, blocks)
    except ValueError as e:
        failures = ["cannot parse the output: %s\n%s" % (e, proc.stdout[-4000:])]

    for p, want in zip(paths, ref_results):
        print("  %-14s ref top-%d %s" % (os.path.basename(p), TOPK,
                                        " ".join("%d:%.4f" % (c, pr) for pr, c in want)))
    if failures:
        print("classify_parity: FAIL (%d problems)" % len(failures))
        for f in failures:
            print("  " + f)
        return 1
    worst = max(abs(a - b) for (_, got), want in zip(match_blocks(paths, blocks), ref_results)
                for (a, _), (b, _) in zip(got[:TOPK], want))
    print("classify_parity: PASS: %d images, same top-%d, max probability difference %.2e "
          "(tolerance %.0e)" % (len(paths), TOPK, worst, PROB_TOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
