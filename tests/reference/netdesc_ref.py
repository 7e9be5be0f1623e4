"""Our own PyTorch implementation of the `.net` network description format (docs/netdesc.md).

Written from the document, not from the C parser: an independent second implementation, so that
the C engine's parameter names, counts, MACs and outputs can be tested against it. Plain
PyTorch (1.13) + numpy; safetensors go through st_io (our numpy reader/writer).

Public helpers:
    parse(text, name=None)            -> Net (header + layer tree, repeats expanded); ValueError
                                         "<name or 'line'>:<N>: message" on any malformed line
    build(text, in_chans, num_classes, width=None, stem_stride=2, ratio=None, dw=None,
          h=None, w=None, name=None)   -> NetModel (torch.nn.Module); state-dict keys are the
                                         doc's "Parameter names" (layers.N..., .body.J, ...)
    build_file(path, in_chans, num_classes, **kw) -> the same from a file (errors name the file)
    count_params(model)               -> weights, biases, BN gamma/beta (no running statistics)
    count_macs(model, in_chans, h, w) -> conv + linear multiply-adds for one h x w image
    randomize_bn(model, gen, calib)   -> ghostnet_ref.randomize_bn (BN not an identity)
    save_state(model, path, extra)    -> safetensors of the state dict (num_batches_tracked
                                         dropped) plus the `extra` tensors

BatchNorm: eps 1e-5, momentum 0.1 (PyTorch defaults). Activations: relu, relu6,
hswish(x) = x * relu6(x + 3) / 6, hsigmoid(x) = relu6(x + 3) / 6.

Run as a script for a summary: netdesc_ref.py FILE.net [--in-chans C] [--classes N]
[--width W] [--stem-stride S] [--ratio R] [--dw-size D] [--size H]
"""
import argparse
import copy
import math
import os
import re
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import st_io  # noqa: E402
import ghostnet_ref  # noqa: E402
from ghostnet_ref import make_divisible, randomize_bn  # noqa: E402,F401  (same rounding rule)

ACTS = ("relu", "relu6", "hswish", "hsigmoid")
BN_EPS = 1e-5

# Per layer kind: options taking a value, bare flags (activations are handled separately),
# whether a channel count / number comes first, and whether an activation is allowed.
_KINDS = {
    "conv": {"values": ("k", "s", "groups"), "flags": ("bias", "bn"), "pos": "channels",
             "act": True},
    "dwconv": {"values": ("k", "s", "mult"), "flags": ("bn",), "pos": None, "act": True},
    "ghost": {"values": ("k", "s", "ratio", "dw"), "flags": (), "pos": "channels", "act": True},
    "se": {"values": ("ratio", "divisor"), "flags": (), "pos": None, "act": False},
    "bn": {"values": (), "flags": (), "pos": None, "act": True},
    "maxpool": {"values": ("k", "s"), "flags": (), "pos": None, "act": False},
    "avgpool": {"values": (), "flags": (), "pos": None, "act": False},
    "linear": {"values": (), "flags": (), "pos": "channels", "act": True},
    "dropout": {"values": (), "flags": (), "pos": "rate", "act": False},
}
for _a in ACTS:
    _KINDS[_a] = {"values": (), "flags": (), "pos": None, "act": False}

_INT_RE = re.compile(r"^[0-9]+$")
_FLOAT_RE = re.compile(r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$")


class Layer:
    """One parsed layer. kind: a _KINDS key or 'residual'; opts: parsed values."""

    def __init__(self, kind, line):
        self.kind = kind
        self.line = line
        self.opts = {}
        self.act = None
        self.body = []       # residual only
        self.shortcut = None  # residual only: None = identity, else a list of layers

    def __repr__(self):
        return "Layer(%s, line %d, %r, act=%s)" % (self.kind, self.line, self.opts, self.act)


class Net:
    def __init__(self):
        self.width = 1.0
        self.divisor = 1
        self.layers = []


class _Err:
    def __init__(self, name):
        self.name = name

    def __call__(self, line, msg):
        where = "%s:%d" % (self.name, line) if self.name else "line %d" % line
        return ValueError("%s: %s" % (where, msg))


def _int(err, line, text, what):
    if not _INT_RE.match(text):
        raise err(line, "bad number '%s' for %s" % (text, what))
    return int(text)


def _float(err, line, text, what):
    if not _FLOAT_RE.match(text):
        raise err(line, "bad number '%s' for %s" % (text, what))
    return float(text)


def _channels(err, line, text):
    """'C', 'C!' or 'classes' -> ('n', C, scaled) or ('classes',)."""
    if text == "classes":
        return ("classes",)
    fixed = text.endswith("!")
    n = _int(err, line, text[:-1] if fixed else text, "a channel count")
    if n < 1:
        raise err(line, "channel count must be at least 1, got %d" % n)
    return ("n", n, not fixed)


def _stride(err, line, text):
    if text == "stem":
        return "stem"
    s = _int(err, line, text, "s")
    if s < 1:
        raise err(line, "stride must be at least 1")
    return s


def _parse_layer(err, line, kind, words):
    spec = _KINDS[kind]
    layer = Layer(kind, line)
    rest = list(words)
    if spec["pos"] is not None:
        if not rest or "=" in rest[0] or rest[0] in ACTS or rest[0] in spec["flags"]:
            raise err(line, "%s: missing %s" % (
                kind, "channel count" if spec["pos"] == "channels" else "rate"))
        first = rest.pop(0)
        if spec["pos"] == "channels":
            layer.opts["C"] = _channels(err, line, first)
        else:
            p = _float(err, line, first, "the dropout rate")
            if not 0.0 <= p < 1.0:
                raise err(line, "dropout rate must be in [0, 1), got %s" % first)
            layer.opts["p"] = p
    seen = set()
    for word in rest:
        if "=" in word:
            key, val = word.split("=", 1)
            if key not in spec["values"]:
                raise err(line, "unknown option '%s' for %s" % (word, kind))
            if key in seen:
                raise err(line, "option '%s' given twice" % key)
            seen.add(key)
            if val == "":
                raise err(line, "bad number '' for %s" % key)
            if key == "s":
                layer.opts["s"] = _stride(err, line, val)
            elif key == "k":
                k = _int(err, line, val, "k")
                if kind != "maxpool" and k % 2 == 0:
                    raise err(line, "kernel size k=%d must be odd" % k)
                if k < 1:
                    raise err(line, "kernel size must be at least 1")
                layer.opts["k"] = k
            elif key == "dw":
                d = _int(err, line, val, "dw")
                if d % 2 == 0:
                    raise err(line, "cheap kernel dw=%d must be odd" % d)
                layer.opts["dw"] = d
            elif key == "ratio" and kind == "ghost":
                r = _int(err, line, val, "ratio")
                if r < 2:
                    raise err(line, "ghost ratio must be at least 2, got %d" % r)
                layer.opts["ratio"] = r
            elif key == "ratio":  # se
                x = _float(err, line, val, "ratio")
                if not 0.0 < x <= 1.0:
                    raise err(line, "se ratio must be in (0, 1], got %s" % val)
                layer.opts["ratio"] = x
            else:  # groups, mult, divisor
                v = _int(err, line, val, key)
                if v < 1:
                    raise err(line, "%s must be at least 1" % key)
                layer.opts[key] = v
        elif word in ACTS:
            if not spec["act"]:
                raise err(line, "unknown option '%s' for %s (no activation here)" % (word, kind))
            if layer.act is not None:
                raise err(line, "more than one activation")
            layer.act = word
        elif word in spec["flags"]:
            if word in seen:
                raise err(line, "option '%s' given twice" % word)
            seen.add(word)
            layer.opts[word] = True
        else:
            raise err(line, "unknown option '%s' for %s" % (word, kind))
    if kind == "maxpool":
        layer.opts.setdefault("k", 2)
        layer.opts.setdefault("s", layer.opts["k"])
    return layer


def parse(text, name=None):
    """Parse a .net text into a Net (repeats expanded in place). Raises ValueError."""
    err = _Err(name)
    net = Net()
    width_seen = False
    top = []
    # Stack of open blocks: dicts {kind: residual|repeat, line, layer|count, target list}.
    stack = []
    cur = top
    nlines = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        nlines = lineno
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        kw, args = words[0], words[1:]
        if kw == "width":
            if width_seen:
                raise err(lineno, "width given twice")
            if top or stack:
                raise err(lineno, "width must come before the first layer")
            width_seen = True
            if not args:
                raise err(lineno, "width: missing value")
            net.width = _float(err, lineno, args[0], "width")
            if net.width <= 0:
                raise err(lineno, "width must be greater than 0")
            rest = args[1:]
            if rest:
                if rest[0] != "divisor":
                    raise err(lineno, "unknown option '%s' for width" % rest[0])
                if len(rest) < 2:
                    raise err(lineno, "width: divisor needs a value")
                net.divisor = _int(err, lineno, rest[1], "divisor")
                if net.divisor < 1:
                    raise err(lineno, "width divisor must be at least 1")
                if len(rest) > 2:
                    raise err(lineno, "unknown option '%s' for width" % rest[2])
            continue
        if kw == "residual":
            if args:
                raise err(lineno, "unknown option '%s' for residual" % args[0])
            layer = Layer("residual", lineno)
            cur.append(layer)
            stack.append({"kind": "residual", "line": lineno, "layer": layer, "parent": cur})
            cur = layer.body
            continue
        if kw == "shortcut":
            if args:
                raise err(lineno, "unknown option '%s' for shortcut" % args[0])
            if not stack or stack[-1]["kind"] != "residual":
                raise err(lineno, "'shortcut' outside a residual")
            layer = stack[-1]["layer"]
            if layer.shortcut is not None:
                raise err(lineno, "'shortcut' given twice in the residual of line %d"
                          % stack[-1]["line"])
            if not layer.body:
                raise err(lineno, "empty residual body before 'shortcut'")
            layer.shortcut = []
            cur = layer.shortcut
            continue
        if kw == "repeat":
            if not args:
                raise err(lineno, "repeat: missing count")
            n = _int(err, lineno, args[0], "the repeat count")
            if n < 1:
                raise err(lineno, "repeat count must be at least 1, got %d" % n)
            if len(args) > 1:
                raise err(lineno, "unknown option '%s' for repeat" % args[1])
            inner = []
            stack.append({"kind": "repeat", "line": lineno, "count": n, "parent": cur,
                          "items": inner})
            cur = inner
            continue
        if kw == "end":
            if not stack:
                raise err(lineno, "'end' without an open residual or repeat")
            blk = stack.pop()
            if blk["kind"] == "residual":
                layer = blk["layer"]
                if not layer.body:
                    raise err(lineno, "empty residual body (residual of line %d)" % blk["line"])
                if layer.shortcut is not None and not layer.shortcut:
                    raise err(lineno, "empty shortcut (residual of line %d)" % blk["line"])
                if len(args) > 1:
                    raise err(lineno, "unknown option '%s' for end" % args[1])
                if args:
                    if args[0] not in ACTS:
                        raise err(lineno, "unknown option '%s' for end" % args[0])
                    layer.act = args[0]
            else:
                if args:
                    raise err(lineno, "'end' of a repeat takes no options (got '%s')" % args[0])
                if not blk["items"]:
                    raise err(lineno, "empty repeat (line %d)" % blk["line"])
                for _ in range(blk["count"]):
                    blk["parent"].extend(copy.deepcopy(blk["items"]))
            cur = blk["parent"]
            continue
        if kw not in _KINDS:
            raise err(lineno, "unknown layer '%s'" % kw)
        cur.append(_parse_layer(err, lineno, kw, args))
    if stack:
        blk = stack[-1]
        raise err(blk["line"], "missing 'end' for the %s opened at line %d"
                  % (blk["kind"], blk["line"]))
    if not top:
        raise err(max(nlines, 1), "empty network: no layers")
    net.layers = top
    return net


# ----------------------------------------------------------------------------- modules

def make_act(name):
    if name is None:
        return nn.Identity()
    return {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish,
            "hsigmoid": nn.Hardsigmoid}[name]()


def _bn(c):
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=0.1)


class ConvLayer(nn.Module):
    """conv / dwconv: keys conv.weight [, conv.bias] [, bn.*]."""

    def __init__(self, cin, cout, k, s, groups, bias, bn, act):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=bias)
        self.bn = _bn(cout) if bn else None
        self.act = make_act(act)

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x)


class GhostLayer(nn.Module):
    """Ghost module: keys primary_conv.0/1, cheap_operation.0/1 (as in ghostnet_ref)."""

    def __init__(self, cin, cout, k, s, ratio, dw, act):
        super().__init__()
        self.oup = cout
        init = math.ceil(cout / ratio)
        new = init * (ratio - 1)
        self.primary_conv = nn.Sequential(
            nn.Conv2d(cin, init, k, s, k // 2, bias=False), _bn(init), make_act(act))
        self.cheap_operation = nn.Sequential(
            nn.Conv2d(init, new, dw, 1, dw // 2, groups=init, bias=False), _bn(new),
            make_act(act))

    def forward(self, x):
        x1 = self.primary_conv(x)
        x2 = self.cheap_operation(x1)
        return torch.cat([x1, x2], dim=1)[:, :self.oup]


class SELayer(nn.Module):
    def __init__(self, c, reduced):
        super().__init__()
        self.conv_reduce = nn.Conv2d(c, reduced, 1, bias=True)
        self.conv_expand = nn.Conv2d(reduced, c, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        s = F.relu(self.conv_reduce(s))
        s = F.relu6(self.conv_expand(s) + 3.0) / 6.0
        return x * s


class BNLayer(nn.BatchNorm2d):
    """A lone `bn [ACT]`: the BN's own keys sit directly under the layer name."""

    def __init__(self, c, act):
        super().__init__(c, eps=BN_EPS, momentum=0.1)
        self.act = make_act(act)

    def forward(self, x):
        return self.act(super().forward(x))


class MaxPoolLayer(nn.Module):
    def __init__(self, k, s, line_err):
        super().__init__()
        self.k, self.s = k, s
        self.line_err = line_err

    def forward(self, x):
        if x.shape[2] < self.k or x.shape[3] < self.k:
            raise self.line_err("maxpool k=%d is larger than its %dx%d input"
                                % (self.k, x.shape[2], x.shape[3]))
        return F.max_pool2d(x, self.k, self.s)


class AvgPoolLayer(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)


class LinearLayer(nn.Linear):
    def __init__(self, fin, fout, act):
        super().__init__(fin, fout, bias=True)
        self.act = make_act(act)

    def forward(self, x):
        x = torch.flatten(x, 1)
        if x.shape[1] != self.in_features:
            raise ValueError("linear: input has %d features, expected %d"
                             % (x.shape[1], self.in_features))
        return self.act(super().forward(x))


class DropoutLayer(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training) if self.p > 0 else x


class ResidualLayer(nn.Module):
    def __init__(self, body, shortcut, act, line_err):
        super().__init__()
        self.body = nn.ModuleList(body)
        self.shortcut = nn.ModuleList(shortcut)  # empty = identity (no keys)
        self.act = make_act(act)
        self.line_err = line_err

    def forward(self, x):
        y = x
        for m in self.body:
            y = m(y)
        z = x
        for m in self.shortcut:
            z = m(z)
        if y.shape != z.shape:
            raise self.line_err("shape mismatch in residual: body gives %s, shortcut %s"
                                % (list(y.shape[1:]), list(z.shape[1:])))
        return self.act(y + z)


class NetModel(nn.Module):
    def __init__(self, layers, in_chans, num_classes, out_features):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.out_features = out_features

    def forward(self, x):
        for m in self.layers:
            x = m(x)
        return torch.flatten(x, 1)


# ----------------------------------------------------------------------------- build

class _State:
    """What flows between layers: channels (or features once flat) and, if known, the size."""

    def __init__(self, c, hw, flat=False):
        self.c = c
        self.hw = hw        # (h, w) or None when the input size was not given
        self.flat = flat    # after a linear: [B, N]


def _build_list(layers, st, ctx):
    out = []
    for layer in layers:
        mod, st = _build_layer(layer, st, ctx)
        out.append(mod)
    return out, st


def _build_layer(layer, st, ctx):
    err = lambda msg: ctx["err"](layer.line, msg)  # noqa: E731
    kind, o = layer.kind, layer.opts
    spatial = kind not in ("linear", "dropout", "residual") + ACTS
    if spatial and st.flat:
        raise err("%s needs a [C, H, W] input but follows a linear layer" % kind)

    def chans():
        c = o["C"]
        if c[0] == "classes":
            return ctx["num_classes"]
        n, scaled = c[1], c[2]
        return make_divisible(n * ctx["width"], ctx["divisor"]) if scaled else n

    def stride():
        s = o.get("s", 1)
        return ctx["stem_stride"] if s == "stem" else s

    def conv_hw(s):
        if st.hw is None:
            return None
        return ((st.hw[0] - 1) // s + 1, (st.hw[1] - 1) // s + 1)

    if kind == "conv":
        cout, g, s = chans(), o.get("groups", 1), stride()
        if st.c % g or cout % g:
            raise err("groups=%d must divide the input (%d) and output (%d) channels"
                      % (g, st.c, cout))
        mod = ConvLayer(st.c, cout, o.get("k", 1), s, g, o.get("bias", False),
                        o.get("bn", False), layer.act)
        return mod, _State(cout, conv_hw(s))
    if kind == "dwconv":
        cout, s = st.c * o.get("mult", 1), stride()
        mod = ConvLayer(st.c, cout, o.get("k", 1), s, st.c, False, o.get("bn", False), layer.act)
        return mod, _State(cout, conv_hw(s))
    if kind == "ghost":
        cout, s = chans(), stride()
        ratio = o.get("ratio", ctx["ratio"])
        dw = o.get("dw", ctx["dw"])
        mod = GhostLayer(st.c, cout, o.get("k", 1), s, ratio, dw, layer.act)
        return mod, _State(cout, conv_hw(s))
    if kind == "se":
        reduced = make_divisible(st.c * o.get("ratio", 0.25), o.get("divisor", 4))
        return SELayer(st.c, reduced), st
    if kind == "bn":
        return BNLayer(st.c, layer.act), st
    if kind in ACTS:
        return make_act(kind), st
    if kind == "maxpool":
        k, s = o["k"], stride()
        hw = None
        if st.hw is not None:
            if st.hw[0] < k or st.hw[1] < k:
                raise err("maxpool k=%d is larger than its %dx%d input" % (k, st.hw[0], st.hw[1]))
            hw = ((st.hw[0] - k) // s + 1, (st.hw[1] - k) // s + 1)
        return MaxPoolLayer(k, s, err), _State(st.c, hw)
    if kind == "avgpool":
        return AvgPoolLayer(), _State(st.c, (1, 1))
    if kind == "linear":
        if st.flat or st.hw == (1, 1):
            fin = st.c
        elif st.hw is not None:
            fin = st.c * st.hw[0] * st.hw[1]
        else:
            raise err("linear after a spatial map of unknown size: pass h and w to build()")
        cout = chans()
        return LinearLayer(fin, cout, layer.act), _State(cout, None, flat=True)
    if kind == "dropout":
        return DropoutLayer(o["p"]), st
    if kind == "residual":
        body, sb = _build_list(layer.body, st, ctx)
        if layer.shortcut is None:
            short, ss = [], st
        else:
            short, ss = _build_list(layer.shortcut, st, ctx)
        if sb.c != ss.c or sb.flat != ss.flat or (
                sb.hw is not None and ss.hw is not None and sb.hw != ss.hw):
            def desc(x):
                if x.flat:
                    return "[%d]" % x.c
                return "[%d, %s]" % (x.c, "?" if x.hw is None else "%d, %d" % x.hw)
            raise err("shape mismatch in residual: body gives %s, shortcut %s"
                      % (desc(sb), desc(ss)))
        return ResidualLayer(body, short, layer.act, err), sb
    raise AssertionError(kind)


def build(text, in_chans, num_classes, width=None, stem_stride=2, ratio=None, dw=None,
          h=None, w=None, name=None):
    """Build the network of a .net text. width/ratio/dw: the command-line overrides.

    h, w are only needed when a linear layer sees a map whose size is not known to be 1x1
    (no avgpool before it); when given, sizes and residual shapes are also checked here.
    PyTorch default init; BN eps 1e-5.
    """
    net = parse(text, name)
    err = _Err(name)
    if ratio is not None and int(ratio) < 2:
        raise ValueError("ghost ratio must be at least 2")
    if dw is not None and (int(dw) < 1 or int(dw) % 2 == 0):
        raise ValueError("dw size must be odd")
    ctx = {
        "err": err,
        "width": float(width) if width is not None else net.width,
        "divisor": net.divisor,
        "stem_stride": int(stem_stride),
        "ratio": int(ratio) if ratio is not None else 2,
        "dw": int(dw) if dw is not None else 3,
        "num_classes": int(num_classes),
    }
    if ctx["width"] <= 0:
        raise ValueError("width must be greater than 0")
    hw = (int(h), int(w)) if h is not None and w is not None else None
    mods, st = _build_list(net.layers, _State(int(in_chans), hw), ctx)
    return NetModel(mods, int(in_chans), int(num_classes), st.c)


def build_file(path, in_chans, num_classes, **kw):
    with open(path) as f:
        text = f.read()
    kw.setdefault("name", path)
    return build(text, in_chans, num_classes, **kw)


# ----------------------------------------------------------------------------- counting

def count_params(model):
    """Weights, biases, BN gamma/beta; running statistics are buffers and not counted."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model, in_chans, h, w):
    """Conv (cheap operations and SE 1x1s included) + linear multiply-adds for one image."""
    return ghostnet_ref.count_macs(model, h, w, in_chans=in_chans)


def state_arrays(model):
    """Ordered {name: float32 numpy} of the state dict without num_batches_tracked."""
    return {k: v.detach().cpu().float().contiguous().numpy()
            for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


def save_state(model, path, extra=None, metadata=None):
    arrays = state_arrays(model)
    for k, v in (extra or {}).items():
        arrays[k] = v.detach().cpu().float().contiguous().numpy()
    st_io.save(path, arrays, metadata)


def main(argv):
    ap = argparse.ArgumentParser(description="summarize a .net file with the PyTorch reference")
    ap.add_argument("net")
    ap.add_argument("--in-chans", type=int, default=3)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--width", type=float)
    ap.add_argument("--stem-stride", type=int, default=2)
    ap.add_argument("--ratio", type=int)
    ap.add_argument("--dw-size", type=int)
    ap.add_argument("--size", type=int, default=224)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        m = build_file(a.net, a.in_chans, a.classes, width=a.width, stem_stride=a.stem_stride,
                       ratio=a.ratio, dw=a.dw_size, h=a.size, w=a.size)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    print("%s: params %d, MACs %d at %dx%d, %d state-dict tensors"
          % (a.net, count_params(m), count_macs(m, a.in_chans, a.size, a.size), a.size, a.size,
             len(state_arrays(m))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
