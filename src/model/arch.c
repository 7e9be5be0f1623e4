#include "model/arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"

/* The MobileNetV3-style layout of the paper's Table 1: k, mid, out, se_ratio > 0, stride;
 * stage[] groups the bottlenecks into timm's blocks.N.M names. */
static const struct {
    int stage, k, mid, out, se, stride;
} kLayout[] = {
    {0, 3, 16, 16, 0, 1},   {1, 3, 48, 24, 0, 2},   {2, 3, 72, 24, 0, 1},
    {3, 5, 72, 40, 1, 2},   {4, 5, 120, 40, 1, 1},  {5, 3, 240, 80, 0, 2},
    {6, 3, 200, 80, 0, 1},  {6, 3, 184, 80, 0, 1},  {6, 3, 184, 80, 0, 1},
    {6, 3, 480, 112, 1, 1}, {6, 3, 672, 112, 1, 1}, {7, 5, 672, 160, 1, 2},
    {8, 5, 960, 160, 0, 1}, {8, 5, 960, 160, 1, 1}, {8, 5, 960, 160, 0, 1},
    {8, 5, 960, 160, 1, 1},
};
enum { kNumLayout = sizeof kLayout / sizeof kLayout[0] };

int gn_make_divisible(double v, int divisor) {
    int nv = (int)(v + divisor / 2.0) / divisor * divisor;
    if (nv < divisor) nv = divisor;
    if (nv < 0.9 * v) nv += divisor;
    return nv;
}

gn_config gn_config_default(void) {
    gn_config c;
    c.width = 1.0f;
    c.in_chans = 3;
    c.num_classes = 1000;
    c.dropout = 0.2f;
    c.stem_stride = 2;
    c.ghost_ratio = 2;
    c.ghost_dw_size = 3;
    return c;
}

gn_status gn_config_validate(const gn_config *c, gn_error *err) {
    if (!c) return gn_fail(err, GN_ERR_INVALID_ARG, "config is NULL");
    if (!(c->width > 0.0f && c->width <= 8.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG, "width %g out of range (0, 8]", (double)c->width);
    if (c->in_chans < 1 || c->in_chans > 64)
        return gn_fail(err, GN_ERR_INVALID_ARG, "in_chans %d out of range 1..64", c->in_chans);
    if (c->num_classes < 1 || c->num_classes > 1000000)
        return gn_fail(err, GN_ERR_INVALID_ARG, "num_classes %d out of range 1..1000000",
                       c->num_classes);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG, "dropout %g out of range [0, 1)",
                       (double)c->dropout);
    if (c->stem_stride != 1 && c->stem_stride != 2)
        return gn_fail(err, GN_ERR_INVALID_ARG, "stem_stride %d must be 1 or 2", c->stem_stride);
    if (c->ghost_ratio < 2 || c->ghost_ratio > 16)
        return gn_fail(err, GN_ERR_INVALID_ARG, "ghost ratio s=%d out of range 2..16",
                       c->ghost_ratio);
    if (c->ghost_dw_size < 1 || c->ghost_dw_size > 15 || c->ghost_dw_size % 2 == 0)
        return gn_fail(err, GN_ERR_INVALID_ARG, "ghost dw size d=%d must be odd, 1..15",
                       c->ghost_dw_size);
    return GN_OK;
}

/* ---- tensor table ---------------------------------------------------------------------- */

typedef struct builder {
    gn_arch *arch;
    gn_status status;
} builder;

static int add_tensor(builder *b, const char *prefix, const char *suffix, int ndim,
                      const int64_t *shape, int is_param, int is_bn) {
    gn_arch *a = b->arch;
    if (b->status != GN_OK) return -1;
    if (a->num_tensors >= GN_MAX_TENSORS) {
        b->status = GN_ERR_NOMEM;
        return -1;
    }
    gn_tensor_desc *t = &a->tensors[a->num_tensors];
    snprintf(t->name, sizeof t->name, "%s%s%s", prefix, prefix[0] ? "." : "", suffix);
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < 4; i++) t->shape[i] = i < ndim ? shape[i] : 1;
    for (int i = 0; i < ndim; i++) t->numel *= (size_t)shape[i];
    t->offset = a->total_floats;
    t->is_param = is_param;
    t->is_bn = is_bn;
    a->total_floats += t->numel;
    return a->num_tensors++;
}

static gn_bn_ref add_bn(builder *b, const char *prefix, int channels) {
    const int64_t shape[1] = {channels};
    gn_bn_ref bn;
    bn.first = add_tensor(b, prefix, "weight", 1, shape, 1, 1);
    add_tensor(b, prefix, "bias", 1, shape, 1, 1);
    add_tensor(b, prefix, "running_mean", 1, shape, 0, 1);
    add_tensor(b, prefix, "running_var", 1, shape, 0, 1);
    bn.channels = channels;
    return bn;
}

/* A conv whose weight is "<wprefix>.weight"; BN (if bn_prefix) or bias (if with_bias). */
static gn_conv_desc add_conv(builder *b, const char *wprefix, int in_c, int out_c, int kernel,
                             int stride, int groups, const char *bn_prefix, int with_bias) {
    gn_conv_desc c;
    c.in_c = in_c;
    c.out_c = out_c;
    c.kernel = kernel;
    c.stride = stride;
    c.groups = groups;
    const int64_t shape[4] = {out_c, in_c / groups, kernel, kernel};
    c.weight = add_tensor(b, wprefix, "weight", 4, shape, 1, 0);
    c.bias = -1;
    if (with_bias) {
        const int64_t bshape[1] = {out_c};
        c.bias = add_tensor(b, wprefix, "bias", 1, bshape, 1, 0);
    }
    c.bn.first = -1;
    c.bn.channels = 0;
    if (bn_prefix) c.bn = add_bn(b, bn_prefix, out_c);
    return c;
}

static gn_ghost_desc add_ghost(builder *b, const char *prefix, int in_c, int out_c, int relu,
                               int ratio, int dw_size) {
    gn_ghost_desc g;
    char wp[64], bp[64];
    g.in_c = in_c;
    g.out_c = out_c;
    g.init_c = (out_c + ratio - 1) / ratio;
    g.new_c = g.init_c * (ratio - 1);
    g.kept_new = out_c - g.init_c;
    g.relu = relu;
    snprintf(wp, sizeof wp, "%s.primary_conv.0", prefix);
    snprintf(bp, sizeof bp, "%s.primary_conv.1", prefix);
    g.primary = add_conv(b, wp, in_c, g.init_c, 1, 1, 1, bp, 0);
    snprintf(wp, sizeof wp, "%s.cheap_operation.0", prefix);
    snprintf(bp, sizeof bp, "%s.cheap_operation.1", prefix);
    g.cheap = add_conv(b, wp, g.init_c, g.new_c, dw_size, 1, g.init_c, bp, 0);
    return g;
}

static void add_bottleneck(builder *b, gn_bottleneck_desc *blk, int in_c, int mid_c, int out_c,
                           int kernel, int stride, int se, const gn_config *cfg) {
    char p[64], q[64];
    blk->in_c = in_c;
    blk->mid_c = mid_c;
    blk->out_c = out_c;
    blk->kernel = kernel;
    blk->stride = stride;

    snprintf(p, sizeof p, "%s.ghost1", blk->name);
    blk->ghost1 = add_ghost(b, p, in_c, mid_c, 1, cfg->ghost_ratio, cfg->ghost_dw_size);
    blk->has_dw = stride > 1;
    if (blk->has_dw) {
        snprintf(p, sizeof p, "%s.conv_dw", blk->name);
        snprintf(q, sizeof q, "%s.bn_dw", blk->name);
        blk->conv_dw = add_conv(b, p, mid_c, mid_c, kernel, stride, mid_c, q, 0);
    }
    blk->has_se = se;
    if (se) {
        gn_se_desc *s = &blk->se;
        s->channels = mid_c;
        s->reduced = gn_make_divisible(mid_c * 0.25, 4);
        const int64_t rw[4] = {s->reduced, mid_c, 1, 1}, rb[1] = {s->reduced};
        const int64_t ew[4] = {mid_c, s->reduced, 1, 1}, eb[1] = {mid_c};
        snprintf(p, sizeof p, "%s.se.conv_reduce", blk->name);
        s->reduce_w = add_tensor(b, p, "weight", 4, rw, 1, 0);
        s->reduce_b = add_tensor(b, p, "bias", 1, rb, 1, 0);
        snprintf(p, sizeof p, "%s.se.conv_expand", blk->name);
        s->expand_w = add_tensor(b, p, "weight", 4, ew, 1, 0);
        s->expand_b = add_tensor(b, p, "bias", 1, eb, 1, 0);
    }
    snprintf(p, sizeof p, "%s.ghost2", blk->name);
    blk->ghost2 = add_ghost(b, p, mid_c, out_c, 0, cfg->ghost_ratio, cfg->ghost_dw_size);
    blk->has_projection = !(in_c == out_c && stride == 1);
    if (blk->has_projection) {
        snprintf(p, sizeof p, "%s.shortcut.0", blk->name);
        snprintf(q, sizeof q, "%s.shortcut.1", blk->name);
        blk->shortcut_dw = add_conv(b, p, in_c, in_c, kernel, stride, in_c, q, 0);
        snprintf(p, sizeof p, "%s.shortcut.2", blk->name);
        snprintf(q, sizeof q, "%s.shortcut.3", blk->name);
        blk->shortcut_pw = add_conv(b, p, in_c, out_c, 1, 1, 1, q, 0);
    }
}

gn_status gn_arch_build(const gn_config *config, gn_arch *arch, gn_error *err) {
    gn_status st = gn_config_validate(config, err);
    if (st != GN_OK) return st;
    memset(arch, 0, sizeof *arch);
    arch->config = *config;
    builder b = {arch, GN_OK};
    const double w = config->width;

    int channels = gn_make_divisible(16 * w, 4);
    arch->stem = add_conv(&b, "conv_stem", config->in_chans, channels, 3, config->stem_stride, 1,
                          "bn1", 0);
    int stage_count[10] = {0};
    for (int i = 0; i < kNumLayout; i++) {
        gn_bottleneck_desc *blk = &arch->blocks[i];
        int stage = kLayout[i].stage;
        snprintf(blk->name, sizeof blk->name, "blocks.%d.%d", stage, stage_count[stage]++);
        int out_c = gn_make_divisible(kLayout[i].out * w, 4);
        int mid_c = gn_make_divisible(kLayout[i].mid * w, 4);
        add_bottleneck(&b, blk, channels, mid_c, out_c, kLayout[i].k, kLayout[i].stride,
                       kLayout[i].se, config);
        channels = out_c;
    }
    arch->num_blocks = kNumLayout;
    int final_c = gn_make_divisible(960 * w, 4);
    arch->final_conv = add_conv(&b, "blocks.9.0.conv", channels, final_c, 1, 1, 1, "blocks.9.0.bn1", 0);
    arch->head = add_conv(&b, "conv_head", final_c, GN_HEAD_CHANNELS, 1, 1, 1, NULL, 1);
    const int64_t cw[2] = {config->num_classes, GN_HEAD_CHANNELS}, cb[1] = {config->num_classes};
    arch->classifier_w = add_tensor(&b, "classifier", "weight", 2, cw, 1, 0);
    arch->classifier_b = add_tensor(&b, "classifier", "bias", 1, cb, 1, 0);
    if (b.status != GN_OK)
        return gn_fail(err, b.status, "architecture has more than %d tensors", GN_MAX_TENSORS);
    return GN_OK;
}

int64_t gn_conv_desc_macs(const gn_conv_desc *c, int out_h, int out_w) {
    return (int64_t)out_h * out_w * c->out_c * (c->in_c / c->groups) * c->kernel * c->kernel;
}

int64_t gn_conv_desc_params(const gn_conv_desc *c) {
    int64_t n = (int64_t)c->out_c * (c->in_c / c->groups) * c->kernel * c->kernel;
    if (c->bias >= 0) n += c->out_c;
    if (c->bn.first >= 0) n += 2 * (int64_t)c->bn.channels;
    return n;
}
