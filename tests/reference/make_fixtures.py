#!/usr/bin/python3
"""Generate PyTorch parity fixtures for the C engine.

usage: make_fixtures.py OUTDIR

For every configuration below: seed, build (PyTorch default init), randomize the BNs so they are
not identities, eval mode, seeded torch.randn input, float32 forward on 2 threads. Writes
    OUTDIR/<name>.weights.safetensors   the model (ghostnet_ref.save_model, with metadata)
    OUTDIR/<name>.io.safetensors        "input" [B,C,H,W], "logits" [B,classes] and, for
                                        configs with taps=1, "tap.<tap name>" for every tap
    OUTDIR/manifest.txt                 "<name> <batch> <height> <width> <taps 0|1>" per config
    OUTDIR/sizes.txt                    "<name> <params> <macs> <h> <w> <width> <s> <d>
                                         <in_chans> <classes> <stem_stride>" per size check
    OUTDIR/<block>.block.safetensors    a standalone GhostModule / GhostBottleneck: its state
                                        dict (keys relative to the block), "input", "output"
    OUTDIR/blocks.txt                   "<name> <ghost_module|bottleneck> <args,...> <batch>
                                         <h> <w>" per block
Exit status 77 (test skipped) when torch is missing, unless GN_REQUIRE_REFERENCE=1 (then 1).
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _import_reference():
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import ghostnet_ref  # noqa: F401
    except ImportError as e:
        if os.environ.get("GN_REQUIRE_REFERENCE") == "1":
            print("make_fixtures: PyTorch reference unavailable (%s) but "
                  "GN_REQUIRE_REFERENCE=1" % e, file=sys.stderr)
            sys.exit(1)
        print("make_fixtures: skipping, PyTorch reference unavailable: %s" % e, file=sys.stderr)
        sys.exit(77)


# name, cfg overrides, batch, height, width, taps.
# Not a full product; together they cover widths 0.5/1.0/1.3, s in {2,3,4}, d in {1,3,5},
# in_chans 1/3, sizes 224/64/33/28 (plus one non-square input), batch 1/3, stem stride 1/2,
# 1000 and 10 classes. Odd sizes exercise the padding of every strided conv
# (33 -> 17 -> 9 -> 5 -> 3 -> 2); 28 with stem stride 2 ends at 1x1 under 5x5 depthwise convs.
CONFIGS = [
    ("w100_224", {}, 1, 224, 224, 1),
    ("w050_224", {"width": 0.5}, 1, 224, 224, 0),
    ("w130_224", {"width": 1.3}, 1, 224, 224, 0),
    ("w050_224_b3_d5", {"width": 0.5, "ghost_dw_size": 5, "num_classes": 10}, 3, 224, 224, 0),
    ("w100_64_b3", {"num_classes": 10}, 3, 64, 64, 0),
    ("w100_64_s3d5", {"ghost_ratio": 3, "ghost_dw_size": 5, "num_classes": 10}, 1, 64, 64, 0),
    ("w100_33_b3_s4d1", {"ghost_ratio": 4, "ghost_dw_size": 1, "num_classes": 10}, 3, 33, 33, 0),
    ("w050_33_s3d1", {"width": 0.5, "ghost_ratio": 3, "ghost_dw_size": 1, "num_classes": 10},
     1, 33, 33, 0),
    ("w100_64_ss1_d5", {"stem_stride": 1, "ghost_dw_size": 5, "num_classes": 10}, 1, 64, 64, 0),
    ("w050_28_s4", {"width": 0.5, "ghost_ratio": 4, "num_classes": 10}, 1, 28, 28, 0),
    ("gray28_ss1", {"in_chans": 1, "num_classes": 10, "stem_stride": 1}, 3, 28, 28, 1),
    ("gray33_w050", {"width": 0.5, "in_chans": 1, "ghost_ratio": 3, "num_classes": 10},
     1, 33, 33, 0),
    ("w130_28_b3_s3d5", {"width": 1.3, "ghost_ratio": 3, "ghost_dw_size": 5, "num_classes": 10},
     3, 28, 28, 0),
    ("w100_33x64_nodrop", {"num_classes": 10, "dropout": 0.0}, 1, 33, 64, 0),
]

# Standalone blocks (the paper's plug-and-play parts): name, kind, constructor args, batch, h, w.
# GhostModule(inp, oup, kernel, ratio, dw_size, stride, relu);
# GhostBottleneck(in, mid, out, k, stride, se_ratio, ratio, dw_size).
BLOCKS = [
    ("gm_k1_s2", "ghost_module", (8, 16, 1, 2, 3, 1, 1), 2, 9, 7),
    ("gm_k3_stride2_s3d5", "ghost_module", (5, 13, 3, 3, 5, 2, 1), 1, 11, 10),
    ("gm_k3_s4d1_norelu", "ghost_module", (7, 9, 3, 4, 1, 1, 0), 3, 5, 7),
    ("gb_id_nose", "bottleneck", (16, 48, 16, 3, 1, 0.0, 2, 3), 2, 8, 8),
    ("gb_id_se", "bottleneck", (24, 72, 24, 5, 1, 0.25, 2, 3), 1, 7, 9),
    ("gb_s2_se_proj", "bottleneck", (12, 40, 20, 5, 2, 0.25, 3, 5), 2, 13, 11),
    ("gb_s2_proj", "bottleneck", (8, 24, 16, 3, 2, 0.0, 2, 1), 1, 6, 6),
    ("gb_s1_proj_se", "bottleneck", (8, 30, 12, 3, 1, 0.25, 4, 3), 1, 5, 5),
]

# Size checks for the C summary: name, cfg overrides, h, w.
SIZES = [
    ("w050", {"width": 0.5}, 224, 224),
    ("w100", {}, 224, 224),
    ("w130", {"width": 1.3}, 224, 224),
    ("w100_s3d5", {"ghost_ratio": 3, "ghost_dw_size": 5}, 224, 224),
    ("gray28_ss1", {"in_chans": 1, "num_classes": 10, "stem_stride": 1}, 28, 28),
]


def make_one(outdir, index, name, overrides, batch, h, w, taps):
    import torch
    import ghostnet_ref as ref
    import st_io

    # Seeds derive from the config's position: append new configs at the end so the
    # existing fixtures stay bit-identical.
    seed = 1000 + 17 * index
    torch.manual_seed(seed)                     # default init of the conv/linear weights
    overrides = dict(overrides)
    if "input_size" not in overrides:
        overrides["input_size"] = min(h, w)
    cfg = ref.make_cfg(**overrides)
    model = ref.build(cfg)
    gen = torch.Generator().manual_seed(seed + 1)
    # BN statistics are calibrated on a separate random batch (see ref.randomize_bn). Small
    # inputs end at 1x1 or 2x2 maps, so use more samples there to get stable statistics.
    calib_batch = 4 if h * w >= 128 * 128 else 32
    calib = torch.randn(calib_batch, cfg["in_chans"], h, w, generator=gen)
    ref.randomize_bn(model, gen, calib=calib)
    model.eval()
    x = torch.randn(batch, cfg["in_chans"], h, w, generator=gen)

    tensors = {"input": x}
    with torch.no_grad():
        if taps:
            logits, tap_dict = ref.forward_with_taps(model, x)
            plain = model(x)
            assert torch.allclose(plain, logits, rtol=0, atol=1e-5), name
        else:
            logits, tap_dict = model(x), {}
    tensors["logits"] = logits
    for tname, t in tap_dict.items():
        tensors["tap." + tname] = t

    ref.save_model(model, cfg, os.path.join(outdir, name + ".weights.safetensors"))
    arrays = {k: v.detach().contiguous().float().numpy() for k, v in tensors.items()}
    st_io.save(os.path.join(outdir, name + ".io.safetensors"), arrays,
               {"config": name, "seed": str(seed)})
    return "%s %d %d %d %d" % (name, batch, h, w, taps)


def make_block(outdir, index, name, kind, args, batch, h, w):
    """One standalone block: its state dict (keys relative to the block), input and output."""
    import torch
    import ghostnet_ref as ref
    import st_io

    seed = 5000 + 31 * index
    torch.manual_seed(seed)
    if kind == "ghost_module":
        inp, oup, kernel, ratio, dw, stride, relu = args
        block = ref.GhostModule(inp, oup, kernel, ratio, dw, stride, bool(relu))
    else:
        block = ref.GhostBottleneck(*args)
        inp = args[0]
    gen = torch.Generator().manual_seed(seed + 1)
    calib = torch.randn(8, inp, h, w, generator=gen)
    ref.randomize_bn(block, gen, calib=calib)
    block.eval()
    x = torch.randn(batch, inp, h, w, generator=gen)
    with torch.no_grad():
        y = block(x)
    tensors = {k: v for k, v in block.state_dict().items() if not k.endswith("num_batches_tracked")}
    tensors["input"] = x
    tensors["output"] = y
    arrays = {k: v.detach().contiguous().float().numpy() for k, v in tensors.items()}
    st_io.save(os.path.join(outdir, name + ".block.safetensors"), arrays, {"seed": str(seed)})
    return "%s %s %s %d %d %d" % (name, kind, ",".join(str(a) for a in args), batch, h, w)


def size_line(name, overrides, h, w):
    import ghostnet_ref as ref
    cfg = ref.make_cfg(**overrides)
    model = ref.build(cfg)
    return "%s %d %d %d %d %s %d %d %d %d %d" % (
        name, ref.count_params(model), ref.count_macs(model, h, w), h, w,
        repr(float(cfg["width"])), cfg["ghost_ratio"], cfg["ghost_dw_size"],
        cfg["in_chans"], cfg["num_classes"], cfg["stem_stride"])


def main(argv):
    if len(argv) != 2:
        print("usage: make_fixtures.py OUTDIR", file=sys.stderr)
        return 2
    _import_reference()
    import torch
    # Fixed thread count: results must not depend on the machine (and stay within 2 cores).
    torch.set_num_threads(2)

    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    t0 = time.time()
    manifest = [make_one(outdir, i, *c) for i, c in enumerate(CONFIGS)]
    sizes = [size_line(*s) for s in SIZES]
    blocks = [make_block(outdir, i, *b) for i, b in enumerate(BLOCKS)]
    for fname, lines in (("blocks.txt", blocks), ("sizes.txt", sizes), ("manifest.txt", manifest)):
        tmp = os.path.join(outdir, fname + ".tmp")
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, os.path.join(outdir, fname))   # written last: marks a complete set

    total = sum(os.path.getsize(os.path.join(outdir, c[0] + suffix))
                for c in CONFIGS for suffix in (".weights.safetensors", ".io.safetensors"))
    print("make_fixtures: %d configs, %.1f MB in %s, %.1f s"
          % (len(CONFIGS), total / 1e6, outdir, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
