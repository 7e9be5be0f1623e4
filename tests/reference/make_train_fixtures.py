#!/usr/bin/python3
"""Generate PyTorch training-parity fixtures for the C training graph.

usage: make_train_fixtures.py OUTDIR

One small configuration (width 0.5, in_chans 1, stem stride 1, 10 classes, dropout 0 so the
step is deterministic, 28x28, batch 4), PyTorch default init plus randomised BN affine
parameters and statistics, training mode, float32 on 2 threads. Each optimizer runs two steps
from the initial weights (the C test starts its second step from PyTorch's state after the
first, see tests/test_train_parity.c). Writes
    OUTDIR/train.weights.safetensors  the initial model (ghostnet_ref.save_model)
    OUTDIR/train.io.safetensors       F32 tensors:
        input1, labels1, input2, labels2     two batches (labels as floats)
        loss1, logits1                       first step's loss (label smoothing 0.1)
        grad.<param>                         every parameter's gradient on batch 1
        stats1.<bn>.running_{mean,var}       BN running statistics after that forward
        <opt>.loss2                          the loss on batch 2 after one <opt> step
        <opt>.step1.<key>, <opt>.step2.<key> the state dict (params + running stats) after
                                             one and two optimizer steps (batch 1, batch 2)
      with <opt> in
        sgd     SGD lr 0.02, momentum 0.9, Nesterov, weight decay 5e-5 on every parameter
        sgd_nd  the same with weight decay 5e-3, none on 1-D parameters (BN gamma/beta, biases)
        adamw   AdamW lr 1e-3, betas (0.9, 0.999), eps 0.1, weight decay 0.05
    OUTDIR/train.txt                  "batch height width smoothing sgd_lr sgd_wd sgd_nd_wd
                                      adamw_lr adamw_eps adamw_wd" (written last)
Exit status 77 (test skipped) when torch is missing, unless GN_REQUIRE_REFERENCE=1 (then 1).
"""
import copy
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

BATCH, SIZE, SMOOTHING, SEED = 4, 28, 0.1, 4242
# Step sizes that keep the network well conditioned after one step: at SGD lr 0.1 the second
# step's gradients move by 2% when the weights move by 1e-7 (in PyTorch alone), which no
# float32 comparison can survive. At 0.02 they move by 3e-5.
SGD_LR = 0.02
# sgd_nd's decay is large enough that decaying the exempt 1-D tensors would show.
SGD_WD, SGD_ND_WD = 5e-5, 5e-3
# AdamW's first update is lr * g / (|g| + eps): with eps 1e-8 it is a sign function that
# turns 1e-5 gradient differences on tiny elements into whole steps (it magnifies them by up to
# 1 / (4 eps)). eps 0.1 keeps the same formula, with gradients on both sides of eps, but makes
# it well conditioned.
ADAMW_LR, ADAMW_EPS, ADAMW_WD = 1e-3, 0.1, 0.05
OPTIMIZERS = ("sgd", "sgd_nd", "adamw")


def _import_reference():
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
        import ghostnet_ref  # noqa: F401
    except ImportError as e:
        if os.environ.get("GN_REQUIRE_REFERENCE") == "1":
            print("make_train_fixtures: PyTorch reference unavailable (%s) but "
                  "GN_REQUIRE_REFERENCE=1" % e, file=sys.stderr)
            sys.exit(1)
        print("make_train_fixtures: skipping, PyTorch reference unavailable: %s" % e,
              file=sys.stderr)
        sys.exit(77)


def make_optimizer(name, model):
    import torch
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=ADAMW_LR, betas=(0.9, 0.999),
                                 eps=ADAMW_EPS, weight_decay=ADAMW_WD)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=SGD_LR, momentum=0.9, nesterov=True,
                               weight_decay=SGD_WD)
    groups = [{"params": [p for p in model.parameters() if p.dim() > 1]},
              {"params": [p for p in model.parameters() if p.dim() <= 1], "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=SGD_LR, momentum=0.9, nesterov=True, weight_decay=SGD_ND_WD)


def train_step(model, opt, x, y):
    import torch.nn.functional as F
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y, label_smoothing=SMOOTHING)
    loss.backward()
    opt.step()
    return loss.detach()


def float_state(model, prefix):
    return {prefix + k: v.detach().clone() for k, v in model.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def main(argv):
    if len(argv) != 2:
        print("usage: make_train_fixtures.py OUTDIR", file=sys.stderr)
        return 2
    _import_reference()
    import torch
    import torch.nn.functional as F
    import ghostnet_ref as ref
    import st_io

    torch.set_num_threads(2)
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)

    torch.manual_seed(SEED)
    cfg = ref.make_cfg(width=0.5, in_chans=1, stem_stride=1, num_classes=10, dropout=0.0,
                       input_size=SIZE)
    model = ref.build(cfg)
    gen = torch.Generator().manual_seed(SEED + 1)
    # Training mode normalises with batch statistics, so no calibration pass is needed: the
    # drawn running statistics only serve as the starting point of the momentum update.
    ref.randomize_bn(model, gen)
    x1 = torch.randn(BATCH, 1, SIZE, SIZE, generator=gen)
    y1 = torch.randint(0, 10, (BATCH,), generator=gen)
    x2 = torch.randn(BATCH, 1, SIZE, SIZE, generator=gen)
    y2 = torch.randint(0, 10, (BATCH,), generator=gen)
    ref.save_model(model, cfg, os.path.join(outdir, "train.weights.safetensors"))

    tensors = {"input1": x1, "labels1": y1.float(), "input2": x2, "labels2": y2.float()}

    # Step 1 gradients and statistics, without an optimizer.
    m = copy.deepcopy(model).train()
    logits = m(x1)
    loss = F.cross_entropy(logits, y1, label_smoothing=SMOOTHING)
    loss.backward()
    tensors["loss1"] = loss.detach().reshape(1)
    tensors["logits1"] = logits.detach()
    for name, p in m.named_parameters():
        tensors["grad." + name] = p.grad.detach().clone()
    for k, v in m.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            tensors["stats1." + k] = v.detach().clone()

    # Two optimizer steps per optimizer, from the same initial weights.
    for name in OPTIMIZERS:
        m = copy.deepcopy(model).train()
        opt = make_optimizer(name, m)
        train_step(m, opt, x1, y1)
        tensors.update(float_state(m, name + ".step1."))
        tensors[name + ".loss2"] = train_step(m, opt, x2, y2).reshape(1)
        tensors.update(float_state(m, name + ".step2."))

    arrays = {k: v.detach().contiguous().float().numpy() for k, v in tensors.items()}
    st_io.save(os.path.join(outdir, "train.io.safetensors"), arrays, {"seed": str(SEED)})
    tmp = os.path.join(outdir, "train.txt.tmp")
    with open(tmp, "w") as f:
        f.write("%d %d %d %r %r %r %r %r %r %r\n" % (BATCH, SIZE, SIZE, SMOOTHING, SGD_LR, SGD_WD,
                                                       SGD_ND_WD, ADAMW_LR, ADAMW_EPS, ADAMW_WD))
    os.replace(tmp, os.path.join(outdir, "train.txt"))  # written last: marks a complete set
    print("make_train_fixtures: %d tensors in %s" % (len(arrays), outdir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
