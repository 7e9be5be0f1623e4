"""Our own PyTorch reference implementation of GhostNet (Han et al., CVPR 2020).

Written from docs/ghostnet-spec.md (shared docs), not copied from timm or the authors' code, but
it produces exactly their state-dict keys and shapes so that official / timm checkpoints load
strictly. Everything here is plain PyTorch (1.13) + numpy; weights are stored as safetensors
through st_io (our numpy reader/writer), never through the `safetensors` pip package.

Public helpers:
    build(cfg)                      -> GhostNet (cfg: dict, see DEFAULT_CFG / make_cfg)
    count_params(model)             -> learnable parameter count
    count_macs(model, h, w)         -> conv + linear multiply-adds for one h x w image
    randomize_bn(model, gen)        -> make every BN a non-identity affine map (for fixtures)
    forward_with_taps(model, x)     -> (logits, {tap name: tensor})
    save_model(model, cfg, path)    -> safetensors with our __metadata__
    load_model(path)                -> (model in eval mode, cfg) rebuilt from the metadata
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402  (our numpy safetensors reader/writer, next to this file)

# Defaults = the published GhostNet 1.0x ImageNet model.
DEFAULT_CFG = {
    "width": 1.0,
    "in_chans": 3,
    "num_classes": 1000,
    "dropout": 0.2,
    "stem_stride": 2,
    "ghost_ratio": 2,     # s: init = ceil(oup / s) intrinsic maps, init*(s-1) ghost maps
    "ghost_dw_size": 3,   # d: kernel of the cheap depthwise operation
    "input_size": 224,    # preprocessing metadata only (the network is size agnostic)
    "resize_size": 256,
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Bottleneck table from the spec, one inner list per stage "blocks.N":
# (dw kernel k, mid channels, out channels, se ratio, stride), all at width 1.0.
STAGES = [
    [(3, 16, 16, 0.0, 1)],
    [(3, 48, 24, 0.0, 2)],
    [(3, 72, 24, 0.0, 1)],
    [(5, 72, 40, 0.25, 2)],
    [(5, 120, 40, 0.25, 1)],
    [(3, 240, 80, 0.0, 2)],
    [(3, 200, 80, 0.0, 1), (3, 184, 80, 0.0, 1), (3, 184, 80, 0.0, 1),
     (3, 480, 112, 0.25, 1), (3, 672, 112, 0.25, 1)],
    [(5, 672, 160, 0.25, 2)],
    [(5, 960, 160, 0.0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0.0, 1),
     (5, 960, 160, 0.25, 1)],
]
HEAD_CHANNELS = 1280  # conv_head width, NOT scaled by the width multiplier


def make_divisible(v, divisor=4):
    """Round v to a multiple of `divisor` (at least divisor), never going below 90% of v."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def make_cfg(**overrides):
    """DEFAULT_CFG with overrides; fills resize_size from input_size (crop ratio 0.875)."""
    unknown = set(overrides) - set(DEFAULT_CFG)
    if unknown:
        raise ValueError("unknown cfg keys: %s" % sorted(unknown))
    cfg = dict(DEFAULT_CFG)
    cfg.update(overrides)
    if "input_size" in overrides and "resize_size" not in overrides:
        cfg["resize_size"] = int(round(cfg["input_size"] / 0.875))
    return cfg


def hard_sigmoid(x):
    return F.relu6(x + 3.0) / 6.0


class GhostModule(nn.Module):
    """primary conv (inp -> init) + cheap depthwise conv (init -> init*(s-1)); concat, keep oup."""

    def __init__(self, inp, oup, kernel=1, ratio=2, dw_size=3, stride=1, relu=True):
        super().__init__()
        self.oup = oup
        init = math.ceil(oup / ratio)
        new = init * (ratio - 1)

        def act():
            # An empty Sequential is the identity and, like ReLU, adds no state-dict keys.
            return nn.ReLU() if relu else nn.Sequential()

        self.primary_conv = nn.Sequential(
            nn.Conv2d(inp, init, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(init),
            act(),
        )
        # groups=init: each intrinsic map yields (s-1) ghost maps (channel multiplier s-1).
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init, new, dw_size, 1, dw_size // 2, groups=init, bias=False),
            nn.BatchNorm2d(new),
            act(),
        )

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        # Intrinsic maps first, then ghost maps; drop the surplus when s does not divide oup.
        return torch.cat([x1, x2], dim=1)[:, :self.oup]


class SqueezeExcite(nn.Module):
    def __init__(self, chs, se_ratio=0.25):
        super().__init__()
        reduced = make_divisible(chs * se_ratio, 4)
        self.conv_reduce = nn.Conv2d(chs, reduced, 1, bias=True)
        self.conv_expand = nn.Conv2d(reduced, chs, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = F.relu(self.conv_reduce(s))
        s = hard_sigmoid(self.conv_expand(s))
        return x * s


class GhostBottleneck(nn.Module):
    def __init__(self, in_chs, mid_chs, out_chs, k, stride, se_ratio, ratio, dw_size):
        super().__init__()
        self.stride = stride
        self.ghost1 = GhostModule(in_chs, mid_chs, ratio=ratio, dw_size=dw_size, relu=True)
        if stride > 1:
            self.conv_dw = nn.Conv2d(mid_chs, mid_chs, k, stride, (k - 1) // 2,
                                     groups=mid_chs, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid_chs)
        self.se = SqueezeExcite(mid_chs, se_ratio) if se_ratio > 0 else None
        self.ghost2 = GhostModule(mid_chs, out_chs, ratio=ratio, dw_size=dw_size, relu=False)
        if in_chs == out_chs and stride == 1:
            self.shortcut = nn.Sequential()  # identity, no keys
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chs, in_chs, k, stride, (k - 1) // 2, groups=in_chs, bias=False),
                nn.BatchNorm2d(in_chs),
                nn.Conv2d(in_chs, out_chs, 1, bias=False),
                nn.BatchNorm2d(out_chs),
            )

    def forward(self, x):
        y = self.ghost1(x)
        if self.stride > 1:
            y = self.bn_dw(self.conv_dw(y))  # no ReLU after the strided depthwise conv
        if self.se is not None:
            y = self.se(y)
        y = self.ghost2(y)
        return y + self.shortcut(x)  # no ReLU after the add


class ConvBnAct(nn.Module):
    """blocks.9.0: keys `conv` and `bn1` as in the official / timm models."""

    def __init__(self, in_chs, out_chs):
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chs)

    def forward(self, x):
        return F.relu(self.bn1(self.conv(x)))


class GhostNet(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        w = float(cfg["width"])
        s, d = int(cfg["ghost_ratio"]), int(cfg["ghost_dw_size"])
        if s < 2 or d < 1 or d % 2 == 0:
            raise ValueError("need ghost_ratio >= 2 and an odd ghost_dw_size >= 1")
        self.dropout = float(cfg["dropout"])

        chs = make_divisible(16 * w, 4)
        self.conv_stem = nn.Conv2d(int(cfg["in_chans"]), chs, 3, int(cfg["stem_stride"]), 1,
                                   bias=False)
        self.bn1 = nn.BatchNorm2d(chs)

        stages = []
        mid = None
        for stage in STAGES:
            layers = []
            for k, mid_base, out_base, se, stride in stage:
                mid = make_divisible(mid_base * w, 4)
                out = make_divisible(out_base * w, 4)
                layers.append(GhostBottleneck(chs, mid, out, k, stride, se, s, d))
                chs = out
            stages.append(nn.Sequential(*layers))
        # blocks.9: 1x1 conv to the scaled last expansion size (960w).
        last = make_divisible(960 * w, 4)
        assert last == mid
        stages.append(nn.Sequential(ConvBnAct(chs, last)))
        self.blocks = nn.Sequential(*stages)

        self.conv_head = nn.Conv2d(last, HEAD_CHANNELS, 1, bias=True)  # bias, no BN
        self.classifier = nn.Linear(HEAD_CHANNELS, int(cfg["num_classes"]))

    def _stem(self, x):
        return F.relu(self.bn1(self.conv_stem(x)))

    def _head(self, x):
        x = x.mean((2, 3), keepdim=True)  # global average pool
        return F.relu(self.conv_head(x))

    def _classify(self, x):
        x = torch.flatten(x, 1)
        if self.dropout > 0:
            x = F.dropout(x, self.dropout, self.training)
        return self.classifier(x)

    def forward(self, x):
        return self._classify(self._head(self.blocks(self._stem(x))))


def build(cfg=None):
    """Build a GhostNet from a (possibly partial) cfg dict; PyTorch default init."""
    full = dict(DEFAULT_CFG)
    full.update(cfg or {})
    return GhostNet(full)


def count_params(model):
    """Learnable parameters only (weights, biases, BN gamma/beta; no running stats)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model, h, w, in_chans=None):
    """Conv + linear multiply-adds for one h x w input (BN, ReLU, pool, add, SE scale excluded).
    in_chans defaults to the GhostNet config's; any nn.Module works when it is given."""
    total = [0]

    def conv_hook(m, inp, out):
        kh, kw = m.kernel_size
        total[0] += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, inp, out):
        total[0] += m.in_features * m.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans or model.cfg["in_chans"], h, w))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    return total[0]


def randomize_bn(model, gen, calib=None):
    """Give every BatchNorm non-trivial statistics and affine params so it is not an identity.

    weight ~ U(0.5, 1.5), bias ~ N(0, 0.1) always. Running statistics:
      calib is None:  running_mean ~ N(0, 0.1), running_var ~ U(0.5, 2).
      calib = input batch [B, C, H, W]: the statistics are drawn around what each BN really sees
                      on that batch: mean = mu + N(0, 0.1) * sigma, var = sigma^2 * U(0.5, 2).
    Why calibrate: PyTorch's default conv init shrinks the activation variance about 3x per conv,
    so with absolute statistics the BNs mostly output their constant offset; at 1.0x/224 the
    input-dependent part of the logits is then ~0.1% of their size, and a parity fixture would
    barely see bugs in the early layers. Calibrated statistics keep every layer at unit scale.
    `gen` is a torch.Generator, so results do not depend on the global RNG state.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
            m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.copy_(torch.randn(n, generator=gen) * 0.1)
        if calib is None:
            return

        # One eval-mode pass; a pre-hook calibrates each BN just before it runs, so later
        # BNs see inputs already produced with the calibrated earlier ones.
        def pre_hook(m, inp):
            x = inp[0]
            mu = x.mean((0, 2, 3))
            var = x.var((0, 2, 3), unbiased=False)
            # Floor: a (near) constant channel must not get a tiny variance that would turn
            # rounding noise into signal.
            var = torch.maximum(var, torch.full_like(var, 1e-2 * float(var.mean()) + 1e-6))
            # Reuse the absolute draws above as relative perturbations (same distributions).
            m.running_mean.copy_(mu + m.running_mean * var.sqrt())
            m.running_var.copy_(var * m.running_var)

        handles = [m.register_forward_pre_hook(pre_hook) for m in bns]
        was_training = model.training
        model.eval()
        try:
            model(calib)
        finally:
            for hd in handles:
                hd.remove()
            model.train(was_training)


def forward_with_taps(model, x):
    """Forward pass that also returns intermediate activations.

    Taps: "conv_stem" (after bn1 + ReLU), "blocks.N.M" (output of every bottleneck),
    "blocks.9.0" (after conv + bn1 + ReLU), "conv_head" (after global pool + conv_head + ReLU,
    shape [B, 1280, 1, 1]).
    """
    taps = {}
    y = model._stem(x)
    taps["conv_stem"] = y
    for n, stage in enumerate(model.blocks):
        for m, block in enumerate(stage):
            y = block(y)
            taps["blocks.%d.%d" % (n, m)] = y
    y = model._head(y)
    taps["conv_head"] = y
    return model._classify(y), taps


# ----------------------------------------------------------------------------- safetensors

def norm_stats(in_chans):
    """(mean, std) strings for the metadata: ImageNet for RGB, 0.5 per channel otherwise."""
    if int(in_chans) == 3:
        return (",".join(str(v) for v in IMAGENET_MEAN), ",".join(str(v) for v in IMAGENET_STD))
    half = ",".join(["0.5"] * int(in_chans))
    return half, half


def cfg_metadata(cfg):
    full = dict(DEFAULT_CFG)
    full.update(cfg)
    mean, std = norm_stats(full["in_chans"])
    return {
        "format": "pt",
        "arch": "ghostnet",
        "width": repr(float(full["width"])),
        "in_chans": str(int(full["in_chans"])),
        "num_classes": str(int(full["num_classes"])),
        "stem_stride": str(int(full["stem_stride"])),
        "ghost_ratio": str(int(full["ghost_ratio"])),
        "ghost_dw_size": str(int(full["ghost_dw_size"])),
        "dropout": repr(float(full["dropout"])),
        "input_size": str(int(full["input_size"])),
        "resize_size": str(int(full["resize_size"])),
        "mean": mean,
        "std": std,
    }


def cfg_from_metadata(meta):
    cfg = dict(DEFAULT_CFG)
    for key, conv in (("width", float), ("in_chans", int), ("num_classes", int),
                      ("stem_stride", int), ("ghost_ratio", int), ("ghost_dw_size", int),
                      ("dropout", float), ("input_size", int), ("resize_size", int)):
        if key in meta:
            cfg[key] = conv(meta[key])
    return cfg


def state_dict_arrays(state_dict):
    """state dict -> ordered {name: numpy}; F32 everywhere except num_batches_tracked (I64)."""
    out = {}
    for name, t in state_dict.items():
        t = t.detach().cpu()
        if name.endswith("num_batches_tracked"):
            out[name] = t.to(torch.int64).numpy()
        else:
            out[name] = t.to(torch.float32).contiguous().numpy()
    return out


def save_model(model, cfg, path):
    """Write every state-dict tensor, in state_dict order, plus our __metadata__.

    Note: st_io writes 0-d tensors (num_batches_tracked) with shape [1] because it goes
    through np.ascontiguousarray; readers should accept [] or [1] there.
    """
    st_io.save(path, state_dict_arrays(model.state_dict()), cfg_metadata(cfg))


def arrays_to_state_dict(model, arrays):
    """numpy arrays -> torch tensors shaped/typed like the model's own state dict entries."""
    own = model.state_dict()
    sd = {}
    for name, arr in arrays.items():
        t = torch.from_numpy(arr.copy())
        ref = own.get(name)
        if ref is not None:
            # 0-d vs [1] for num_batches_tracked; F16/BF16 checkpoints become F32.
            if t.numel() == ref.numel() and t.dim() != ref.dim() and ref.dim() == 0:
                t = t.reshape(ref.shape)
            t = t.to(ref.dtype)
        sd[name] = t
    return sd


def load_model(path):
    """Rebuild the model from a safetensors file's metadata and load it strictly.

    Files without our metadata (e.g. timm's model.safetensors) get the defaults, with
    in_chans / num_classes read from the tensor shapes. Returns (model in eval mode, cfg).
    """
    arrays, meta = st_io.load(path)
    cfg = cfg_from_metadata(meta)
    if "in_chans" not in meta and "conv_stem.weight" in arrays:
        cfg["in_chans"] = int(arrays["conv_stem.weight"].shape[1])
    if "num_classes" not in meta and "classifier.weight" in arrays:
        cfg["num_classes"] = int(arrays["classifier.weight"].shape[0])
    model = build(cfg)
    model.load_state_dict(arrays_to_state_dict(model, arrays), strict=True)
    model.eval()
    return model, cfg


if __name__ == "__main__":
    # Quick self-check of the published sizes: python3 ghostnet_ref.py
    torch.set_num_threads(2)
    for width in (0.5, 1.0, 1.3):
        m = build({"width": width})
        print("width %.1f: params %d, MACs %.2fM, state-dict entries %d"
              % (width, count_params(m), count_macs(m, 224, 224) / 1e6, len(m.state_dict())))
