#!/usr/bin/python3
"""Independent cross-checks of the networks in nets/ built by netdesc_ref.py.

usage: /usr/bin/python3 tests/reference/check_nets.py    (exit 0 when every check passes)

(a) nets/mobilenetv3_large.net, mobilenetv3_small.net, mobilenetv2.net (224x224, 1000 classes)
    against torchvision.models.mobilenet_v3_large() / mobilenet_v3_small() / mobilenet_v2():
    same parameter count, and the same logits (eval mode, calibrated random BN statistics)
    once torchvision's state dict is copied in by order. torchvision's MobileNetV3 BNs use
    eps 1e-3; they are set to the .net eps (1e-5) before the comparison.
(b) nets/ghostnet.net at widths 0.5 / 1.0 / 1.3 against ghostnet_ref.build: same parameters,
    MACs (1.0x: 5,182,508 and 141,150,512 at 224) and logits after copying by order.
(c) the CIFAR nets (10 classes, 32x32): ResNet-56 about 0.85M parameters, VGG-16 about
    14.7M, and the Ghost versions' parameter / MAC ratios (about 1/2 at s = 2).
(d) every state-dict key of every net follows docs/netdesc.md "Parameter names"; the doc's
    example block parses; every tests/nets_bad/*.net is rejected with a message that names
    the file and line and contains its `# expect:` substring.
"""
import glob
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

try:
    import torch  # noqa: E402
    import torch.nn as nn  # noqa: E402
    import torchvision  # noqa: E402,F401
except ImportError as e:  # exit 77 = skipped (ctest), unless the reference is required
    print("check_nets: PyTorch/torchvision unavailable: %s" % e, file=sys.stderr)
    sys.exit(1 if os.environ.get("GN_REQUIRE_REFERENCE") == "1" else 77)

import ghostnet_ref  # noqa: E402
import netdesc_ref as R  # noqa: E402

RTOL = 1e-4  # max |diff| / max |logit|

failures = []
rows = []


def net_path(name):
    return os.path.join(ROOT, "nets", name + ".net")


def check(ok, what):
    if not ok:
        failures.append(what)
    return "ok" if ok else "FAIL"


def copy_by_order(src, dst):
    """Copy src's state dict into dst position by position (num_batches_tracked skipped).
    Shapes may differ only by a reshape (conv_head [N, C, 1, 1] -> linear [N, C]); the last
    name component (weight / bias / running_mean / running_var) must agree."""
    s = [(k, v) for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")]
    d = [(k, v) for k, v in dst.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(s) != len(d):
        raise AssertionError("%d tensors vs %d" % (len(s), len(d)))
    new = {}
    for (ks, vs), (kd, vd) in zip(s, d):
        if vs.numel() != vd.numel() or ks.rsplit(".", 1)[1] != kd.rsplit(".", 1)[1]:
            raise AssertionError("%s %s vs %s %s" % (ks, list(vs.shape), kd, list(vd.shape)))
        if vs.dim() == vd.dim() and vs.shape != vd.shape:
            raise AssertionError("%s %s vs %s %s" % (ks, list(vs.shape), kd, list(vd.shape)))
        new[kd] = vs.reshape(vd.shape).clone()
    dst.load_state_dict(new, strict=False)  # num_batches_tracked left as is
    return len(s)


def rel_diff(a, b):
    return float((a - b).abs().max()) / max(float(b.abs().max()), 1e-12)


def compare_outputs(src, dst, in_chans, size, batch, seed):
    """Randomize src's BNs (calibrated), copy into dst, compare eval logits."""
    gen = torch.Generator().manual_seed(seed)
    calib = torch.randn(4, in_chans, size, size, generator=gen)
    ghostnet_ref.randomize_bn(src, gen, calib=calib)
    n = copy_by_order(src, dst)
    src.eval()
    dst.eval()
    x = torch.randn(batch, in_chans, size, size, generator=gen)
    with torch.no_grad():
        a, b = dst(x), src(x)
    return n, rel_diff(a, b), tuple(a.shape) == tuple(b.shape)


def part_a():
    import torchvision.models as tvm
    for name, ctor in (("mobilenetv3_large", tvm.mobilenet_v3_large),
                       ("mobilenetv3_small", tvm.mobilenet_v3_small),
                       ("mobilenetv2", tvm.mobilenet_v2)):
        torch.manual_seed(1)
        tv = ctor()
        for m in tv.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = R.BN_EPS
        ours = R.build_file(net_path(name), 3, 1000)
        p_tv, p_ours = R.count_params(tv), R.count_params(ours)
        m_tv, m_ours = R.count_macs(tv, 3, 224, 224), R.count_macs(ours, 3, 224, 224)
        n, d, shape_ok = compare_outputs(tv, ours, 3, 224, 2, 11)
        ok = p_tv == p_ours and m_tv == m_ours and d < RTOL and shape_ok
        rows.append(("a", name + " 224 vs torchvision", p_ours, p_tv, m_ours, m_tv,
                     "%d tensors, rel diff %.1e" % (n, d), check(ok, name)))


def part_b():
    for width in (0.5, 1.0, 1.3):
        torch.manual_seed(2)
        ref = ghostnet_ref.build({"width": width})
        ours = R.build_file(net_path("ghostnet"), 3, 1000, width=width)
        p_ref, p_ours = ghostnet_ref.count_params(ref), R.count_params(ours)
        m_ref, m_ours = ghostnet_ref.count_macs(ref, 224, 224), R.count_macs(ours, 3, 224, 224)
        n, d, shape_ok = compare_outputs(ref, ours, 3, 224, 1, 12)
        ok = p_ref == p_ours and m_ref == m_ours and d < RTOL and shape_ok
        if width == 1.0:
            ok = ok and p_ours == 5182508 and m_ours == 141150512
        rows.append(("b", "ghostnet %.1fx 224 vs ghostnet_ref" % width, p_ours, p_ref, m_ours,
                     m_ref, "%d tensors, rel diff %.1e" % (n, d), check(ok, "ghostnet %s" % width)))
    # Also a ghost ratio / dw override and stem stride 1 at a small size.
    torch.manual_seed(3)
    ref = ghostnet_ref.build({"ghost_ratio": 3, "ghost_dw_size": 5, "in_chans": 1,
                              "num_classes": 10, "stem_stride": 1, "width": 0.5})
    ours = R.build_file(net_path("ghostnet"), 1, 10, width=0.5, ratio=3, dw=5, stem_stride=1)
    p_ref, p_ours = ghostnet_ref.count_params(ref), R.count_params(ours)
    m_ref, m_ours = ghostnet_ref.count_macs(ref, 28, 28), R.count_macs(ours, 1, 28, 28)
    n, d, shape_ok = compare_outputs(ref, ours, 1, 28, 3, 13)
    ok = p_ref == p_ours and m_ref == m_ours and d < RTOL and shape_ok
    rows.append(("b", "ghostnet 0.5x s3 d5 stem1 1ch 28", p_ours, p_ref, m_ours, m_ref,
                 "%d tensors, rel diff %.1e" % (n, d), check(ok, "ghostnet s3d5")))


def part_c():
    sizes = {}
    for name in ("resnet56", "ghost_resnet56", "vgg16", "ghost_vgg16"):
        m = R.build_file(net_path(name), 3, 10)
        sizes[name] = (R.count_params(m), R.count_macs(m, 3, 32, 32))
        with torch.no_grad():  # any input >= 16 works (28x28 grayscale here)
            y = R.build_file(net_path(name), 1, 10).eval()(torch.randn(1, 1, 28, 28))
        check(tuple(y.shape) == (1, 10), name + " 28x28 forward")
    p, m = sizes["resnet56"]
    rows.append(("c", "resnet56 32x32 (He et al.: 0.85M, 125M)", p, 850000, m, 125000000,
                 "", check(abs(p - 0.85e6) < 0.01e6, "resnet56 size")))
    p, m = sizes["vgg16"]
    rows.append(("c", "vgg16 32x32 (~14.7M; paper 15M, 313M)", p, 14700000, m, 313000000,
                 "", check(abs(p - 14.7e6) < 0.1e6, "vgg16 size")))
    for g, b, paper in (("ghost_resnet56", "resnet56", "paper 0.43M, 63M"),
                        ("ghost_vgg16", "vgg16", "paper 7.7M")):
        (pg, mg), (pb, mb) = sizes[g], sizes[b]
        rp, rm = pg / pb, mg / mb
        rows.append(("c", "%s 32x32 (%s)" % (g, paper), pg, pb, mg, mb,
                     "ratio params %.3f, MACs %.3f" % (rp, rm),
                     check(0.4 < rp < 0.6 and 0.4 < rm < 0.6, g + " ratio")))


KEY_RE = re.compile(
    r"^layers\.\d+(\.(body|shortcut)\.\d+)*\.("
    r"conv\.(weight|bias)|bn\.(weight|bias|running_mean|running_var)"
    r"|(primary_conv|cheap_operation)\.(0\.weight|1\.(weight|bias|running_mean|running_var))"
    r"|conv_(reduce|expand)\.(weight|bias)"
    r"|weight|bias|running_mean|running_var)$")

DOC_EXAMPLE = """\
conv 16 k=3 bn relu
residual
  ghost 32 k=3 s=2 relu
  ghost 32 k=3
shortcut
  conv 32 k=1 s=2 bn
end relu
"""


def part_d():
    bad_keys = []
    nets = sorted(glob.glob(os.path.join(ROOT, "nets", "*.net")))
    for p in nets:
        m = R.build_file(p, 3, 10)
        bad_keys += [os.path.basename(p) + ": " + k
                     for k in R.state_arrays(m) if not KEY_RE.match(k)]
    m = R.build(DOC_EXAMPLE, 3, 10)
    keys = list(R.state_arrays(m))
    ok_example = ("layers.1.body.0.primary_conv.0.weight" in keys
                  and "layers.1.shortcut.0.bn.running_var" in keys
                  and "layers.1.body.1.cheap_operation.1.bias" in keys)
    rows.append(("d", "parameter names (%d nets + doc example)" % len(nets), len(bad_keys), 0,
                 len(keys), len(keys), "; ".join(bad_keys[:3]),
                 check(not bad_keys and ok_example, "parameter names")))

    bad = sorted(glob.glob(os.path.join(ROOT, "tests", "nets_bad", "*.net")))
    wrong = []
    for p in bad:
        with open(p) as f:
            first = f.readline()
        expect = first.split("expect:", 1)[1].strip().strip("'\"").lower()
        try:
            R.build_file(p, 3, 10, h=32, w=32)
            wrong.append("%s accepted" % os.path.basename(p))
        except ValueError as e:
            msg = str(e)
            if expect not in msg.lower() or not re.match(re.escape(p) + r":\d+: ", msg):
                wrong.append("%s: %s" % (os.path.basename(p), msg))
    rows.append(("d", "tests/nets_bad rejected as expected", len(bad) - len(wrong), len(bad),
                 0, 0, "; ".join(wrong[:3]), check(bad and not wrong, "nets_bad")))


def main():
    torch.set_num_threads(1)
    t0 = time.time()
    for part in (part_a, part_b, part_c, part_d):
        try:
            part()
        except Exception as e:  # report and go on with the other parts
            failures.append("%s: %s: %s" % (part.__name__, type(e).__name__, e))
    print("%-2s %-42s %12s %12s %14s %14s  %-5s %s"
          % ("", "check", "params", "expected", "MACs", "expected", "", "notes"))
    for part, what, p, pe, m, me, notes, status in rows:
        print("%-2s %-42s %12d %12d %14d %14d  %-5s %s" % (part, what, p, pe, m, me, status, notes))
    print("%d checks, %d failures, %.1f s" % (len(rows), len(failures), time.time() - t0))
    for f in failures:
        print("FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
