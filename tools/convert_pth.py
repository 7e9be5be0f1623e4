#!/usr/bin/python3
"""Convert an official / timm GhostNet checkpoint to our safetensors form.

usage: convert_pth.py IN.pth OUT.safetensors [--width W] [--in-chans N] [--num-classes N]
                      [--stem-stride S] [--ghost-ratio s] [--ghost-dw-size d] [--dropout P]
                      [--input-size N] [--resize-size N] [--trust-pickle]

IN may be
  * the authors' state dict (huawei-noah Efficient-AI-Backbones, e.g. state_dict_73.98.pth),
  * a timm checkpoint (ghostnet_100 pytorch_model.bin / model.safetensors, or a training
    checkpoint with a {'state_dict': ...} wrapper),
  * anything torch.save'd as a state dict, optionally wrapped in {'state_dict': ...} or
    {'model': ...} and/or with DataParallel 'module.' prefixes.
Options not given are inferred from the tensor shapes where possible (in_chans, num_classes,
width, ghost ratio s, ghost dw size d); stem stride, dropout and preprocessing sizes cannot be
inferred and default to the published model (2, 0.2, 224, 256).

The keys and shapes are validated by building our PyTorch reference model
(tests/reference/ghostnet_ref.py) and loading the weights strictly; on a mismatch the missing,
unexpected and mis-shaped keys are listed. Needs torch (run with /usr/bin/python3).
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

# Widths tried when --width is not given (published: 0.5, 1.0, 1.3).
CANDIDATE_WIDTHS = (0.5, 0.75, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.75, 2.0)
CANDIDATE_RATIOS = (2, 3, 4, 5, 6)


class ConvertError(Exception):
    pass


def read_checkpoint(path, trust_pickle):
    """Returns a flat {name: torch.Tensor} state dict."""
    import torch
    if path.endswith(".safetensors"):
        import st_io
        arrays, _ = st_io.load(path)
        return {k: torch.from_numpy(v) for k, v in arrays.items()}
    try:
        # weights_only refuses arbitrary pickled objects (a .pth can run code when unpickled).
        obj = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as e:  # noqa: BLE001 - torch raises several types here
        if trust_pickle:
            raise ConvertError("cannot read %s: %s" % (path, e))
        raise ConvertError("cannot read %s with torch.load(weights_only=True): %s\n"
                           "If the file comes from a source you trust (e.g. a timm training "
                           "checkpoint that also pickles its arguments), rerun with "
                           "--trust-pickle." % (path, e))
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()  # a whole pickled nn.Module
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model"):
            inner = obj.get(wrapper)
            if isinstance(inner, dict):
                obj = inner
                break
            if inner is not None and hasattr(inner, "state_dict"):
                obj = inner.state_dict()
                break
    if not isinstance(obj, dict):
        raise ConvertError("%s does not hold a state dict (got %s)" % (path, type(obj).__name__))
    sd = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue  # e.g. stray metadata entries
        while k.startswith("module."):
            k = k[len("module."):]
        sd[k] = v
    if not sd:
        raise ConvertError("%s: no tensors found" % path)
    return sd


def infer_cfg(sd, args):
    """Fill in the model configuration from the arguments and the checkpoint shapes."""
    import ghostnet_ref as ref

    over = {}
    if "conv_stem.weight" not in sd or "classifier.weight" not in sd:
        raise ConvertError("not a GhostNet checkpoint: conv_stem.weight / classifier.weight "
                           "missing (keys start with: %s)" % ", ".join(sorted(sd)[:5]))
    over["in_chans"] = args.in_chans or int(sd["conv_stem.weight"].shape[1])
    over["num_classes"] = args.num_classes or int(sd["classifier.weight"].shape[0])
    for key, val in (("stem_stride", args.stem_stride), ("dropout", args.dropout),
                     ("input_size", args.input_size), ("resize_size", args.resize_size)):
        if val is not None:
            over[key] = val
    cheap = sd.get("blocks.0.0.ghost1.cheap_operation.0.weight")
    if args.ghost_dw_size:
        over["ghost_dw_size"] = args.ghost_dw_size
    elif cheap is not None:
        over["ghost_dw_size"] = int(cheap.shape[-1])

    widths = [args.width] if args.width else CANDIDATE_WIDTHS
    ratios = [args.ghost_ratio] if args.ghost_ratio else CANDIDATE_RATIOS
    if len(widths) == 1 and len(ratios) == 1:
        return ref.make_cfg(width=widths[0], ghost_ratio=ratios[0], **over)

    # Try the candidates; cheap filters first (stem and blocks.9 widths), then full shapes.
    stem = int(sd["conv_stem.weight"].shape[0])
    matches, plausible = [], []
    for w in widths:
        if ref.make_divisible(16 * w, 4) != stem:
            continue
        last = sd.get("blocks.9.0.conv.weight")
        if last is not None and ref.make_divisible(960 * w, 4) != int(last.shape[0]):
            continue
        plausible.append(w)
        for s in ratios:
            cfg = ref.make_cfg(width=w, ghost_ratio=s, **over)
            own = ref.build(cfg).state_dict()
            if all(k in sd and tuple(sd[k].shape) == tuple(t.shape)
                   for k, t in own.items() if not k.endswith("num_batches_tracked")):
                matches.append(cfg)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConvertError("ambiguous checkpoint: matches %s; pass --width / --ghost-ratio"
                           % ", ".join("width %s s %d" % (c["width"], c["ghost_ratio"])
                                       for c in matches))
    # No candidate fits: report the differences against the most likely configuration.
    width = args.width or (plausible[0] if plausible else 1.0)
    return ref.make_cfg(width=width, ghost_ratio=args.ghost_ratio or 2, **over)


def load_strict(cfg, sd):
    """Build the reference model and load sd strictly; ConvertError listing every problem."""
    import torch
    import ghostnet_ref as ref

    model = ref.build(cfg)
    own = model.state_dict()
    sd = dict(sd)
    # Checkpoints from PyTorch < 0.4.1 have no num_batches_tracked; it is unused in eval.
    for k, t in own.items():
        if k.endswith("num_batches_tracked") and k not in sd:
            sd[k] = torch.zeros_like(t)
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = []
    for k, t in own.items():
        if k in sd:
            src = sd[k]
            if src.numel() == t.numel() and t.dim() == 0:
                src = src.reshape(())  # [1] vs [] for num_batches_tracked
            if tuple(src.shape) != tuple(t.shape):
                shapes.append("%s: checkpoint %s, model %s"
                              % (k, list(src.shape), list(t.shape)))
            sd[k] = src.to(t.dtype)
    if missing or unexpected or shapes:
        lines = ["checkpoint does not match GhostNet width %s (in_chans %d, num_classes %d, "
                 "s %d, d %d):" % (cfg["width"], cfg["in_chans"], cfg["num_classes"],
                                   cfg["ghost_ratio"], cfg["ghost_dw_size"])]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                             ("shape mismatches", shapes)):
            if items:
                lines.append("  %s (%d):" % (title, len(items)))
                lines.extend("    " + s for s in items)
        raise ConvertError("\n".join(lines))
    model.load_state_dict(sd, strict=True)
    model.eval()
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="official / timm checkpoint (.pth, .pth.tar, .bin, "
                                  ".safetensors)")
    ap.add_argument("output", help="our safetensors file to write")
    ap.add_argument("--width", type=float)
    ap.add_argument("--in-chans", type=int)
    ap.add_argument("--num-classes", type=int)
    ap.add_argument("--stem-stride", type=int)
    ap.add_argument("--ghost-ratio", type=int)
    ap.add_argument("--ghost-dw-size", type=int)
    ap.add_argument("--dropout", type=float)
    ap.add_argument("--input-size", type=int)
    ap.add_argument("--resize-size", type=int)
    ap.add_argument("--trust-pickle", action="store_true",
                    help="allow arbitrary pickled objects in the .pth (trusted files only)")
    args = ap.parse_args(argv)

    try:
        import torch
    except ImportError as e:
        print("convert_pth: needs PyTorch (python3-torch): %s" % e, file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    import ghostnet_ref as ref

    try:
        sd = read_checkpoint(args.input, args.trust_pickle)
        cfg = infer_cfg(sd, args)
        model = load_strict(cfg, sd)
    except ConvertError as e:
        print("convert_pth: error: %s" % e, file=sys.stderr)
        return 1
    ref.save_model(model, cfg, args.output)
    print("convert_pth: wrote %s: GhostNet width %s, in_chans %d, %d classes, s %d, d %d, "
          "%d params, %d tensors" % (args.output, cfg["width"], cfg["in_chans"],
                                     cfg["num_classes"], cfg["ghost_ratio"],
                                     cfg["ghost_dw_size"], ref.count_params(model),
                                     len(model.state_dict())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
