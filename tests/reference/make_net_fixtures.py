#!/usr/bin/python3
"""Generate PyTorch parity fixtures for the C `.net` engine (docs/netdesc.md).

usage: make_net_fixtures.py OUTDIR

For every configuration below: seed, build the .net file with netdesc_ref (PyTorch default
init), randomize the BNs with statistics calibrated on a random batch (ghostnet_ref.randomize_bn,
so activations stay O(1) and no BN is an identity), eval mode, seeded torch.randn input,
float32 forward on one thread. Writes
    OUTDIR/<name>.safetensors   every state-dict tensor under its name (float32,
                                num_batches_tracked dropped), "__input" [B,C,H,W] and
                                "__logits" [B,classes]
    OUTDIR/manifest.txt         one line per config (written last: marks a complete set):
        <name> <net file, relative to the repo root> <width> <in_chans> <classes>
        <stem_stride> <ratio or 0> <dw or 0> <batch> <h> <w> <params> <macs>
    (width is the effective one; ratio / dw 0 = not given, the defaults 2 / 3 apply;
    params / macs from netdesc_ref.count_params / count_macs at h x w.)
Exit status 77 (test skipped) when torch is missing, unless GN_REQUIRE_REFERENCE=1 (then 1).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)


def _import_reference():
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import netdesc_ref  # noqa: F401
    except ImportError as e:
        if os.environ.get("GN_REQUIRE_REFERENCE") == "1":
            print("make_net_fixtures: PyTorch reference unavailable (%s) but "
                  "GN_REQUIRE_REFERENCE=1" % e, file=sys.stderr)
            sys.exit(1)
        print("make_net_fixtures: skipping, PyTorch reference unavailable: %s" % e,
              file=sys.stderr)
        sys.exit(77)


# name, net file (relative to the repo root), width, in_chans, classes, stem_stride,
# ratio (None = default), dw (None = default), batch, h, w.
# The CIFAR nets (vgg16, resnet56 and Ghost versions) do not use s=stem; their stem_stride
# column is irrelevant. Append new configs at the end: seeds derive from the position.
CONFIGS = [
    ("vgg16_w025_28", "nets/vgg16.net", 0.25, 1, 10, 1, None, None, 2, 28, 28),
    ("ghost_vgg16_w025_28", "nets/ghost_vgg16.net", 0.25, 1, 10, 1, None, None, 2, 28, 28),
    ("resnet56_32", "nets/resnet56.net", 1.0, 3, 10, 1, None, None, 2, 32, 32),
    ("ghost_resnet56_s3d5_28", "nets/ghost_resnet56.net", 1.0, 1, 10, 1, 3, 5, 2, 28, 28),
    ("ghostnet_w050_28", "nets/ghostnet.net", 0.5, 1, 10, 1, None, None, 3, 28, 28),
    ("ghostnet_w100_224", "nets/ghostnet.net", 1.0, 3, 1000, 2, None, None, 1, 224, 224),
    ("mobilenetv3_large_64", "nets/mobilenetv3_large.net", 1.0, 3, 10, 2, None, None, 2, 64, 64),
    ("mobilenetv3_small_28", "nets/mobilenetv3_small.net", 1.0, 1, 10, 1, None, None, 2, 28, 28),
    ("mobilenetv2_w050_33", "nets/mobilenetv2.net", 0.5, 3, 10, 2, None, None, 2, 33, 33),
    ("all_layers_w075_28", "tests/nets_extra/all_layers.net", 0.75, 3, 10, 1, None, None,
     2, 28, 28),
    ("ghost_vgg16_s4d1_w050_32x20", "nets/ghost_vgg16.net", 0.5, 3, 10, 1, 4, 1, 1, 32, 20),
]


def make_one(outdir, index, name, net, width, in_chans, classes, stem, ratio, dw, batch, h, w):
    import torch
    import netdesc_ref as R

    seed = 2000 + 17 * index
    torch.manual_seed(seed)  # default init of the conv / linear weights
    model = R.build_file(os.path.join(ROOT, net), in_chans, classes, width=width,
                         stem_stride=stem, ratio=ratio, dw=dw, h=h, w=w, name=net)
    gen = torch.Generator().manual_seed(seed + 1)
    # Small inputs end at 1x1 / 2x2 maps: calibrate on more samples there.
    calib_batch = 4 if h * w >= 128 * 128 else 32
    calib = torch.randn(calib_batch, in_chans, h, w, generator=gen)
    R.randomize_bn(model, gen, calib=calib)
    model.eval()
    x = torch.randn(batch, in_chans, h, w, generator=gen)
    with torch.no_grad():
        logits = model(x)
    assert tuple(logits.shape) == (batch, classes), (name, tuple(logits.shape))
    assert torch.isfinite(logits).all(), name
    R.save_state(model, os.path.join(outdir, name + ".safetensors"),
                 {"__input": x, "__logits": logits},
                 {"net": net, "seed": str(seed)})
    params = R.count_params(model)
    macs = R.count_macs(model, in_chans, h, w)
    return "%s %s %s %d %d %d %d %d %d %d %d %d %d" % (
        name, net, repr(float(width)), in_chans, classes, stem, ratio or 0, dw or 0,
        batch, h, w, params, macs)


def main(argv):
    if len(argv) != 2:
        print("usage: make_net_fixtures.py OUTDIR", file=sys.stderr)
        return 2
    _import_reference()
    import torch
    torch.set_num_threads(1)  # results must not depend on the machine

    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    t0 = time.time()
    lines = [make_one(outdir, i, *c) for i, c in enumerate(CONFIGS)]
    tmp = os.path.join(outdir, "manifest.txt.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(outdir, "manifest.txt"))
    total = sum(os.path.getsize(os.path.join(outdir, c[0] + ".safetensors")) for c in CONFIGS)
    print("make_net_fixtures: %d configs, %.1f MB in %s, %.1f s"
          % (len(CONFIGS), total / 1e6, outdir, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
