#include "model/arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"

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

/* "<prefix>.<suffix>", or just the suffix for a standalone block's empty prefix. */
static void join(char *buf, size_t n, const char *prefix, const char *suffix) {
    snprintf(buf, n, "%s%s%s", prefix, prefix[0] ? "." : "", suffix);
}

int gn_arch_add_tensor(gn_arch *a, const char *name, int ndim, const int64_t *shape,
                       int is_param, int is_bn) {
    if (a->num_tensors >= GN_MAX_TENSORS || strlen(name) >= sizeof a->tensors[0].name) return -1;
    gn_tensor_desc *t = &a->tensors[a->num_tensors];
    snprintf(t->name, sizeof t->name, "%s", name);
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

static int add_tensor(builder *b, const char *prefix, const char *suffix, int ndim,
                      const int64_t *shape, int is_param, int is_bn) {
    if (b->status != GN_OK) return -1;
    char name[160];
    join(name, sizeof name, prefix, suffix);
    int index = gn_arch_add_tensor(b->arch, name, ndim, shape, is_param, is_bn);
    if (index < 0) b->status = GN_ERR_NOMEM;
    return index;
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

static gn_ghost_desc add_ghost(builder *b, const char *prefix, int in_c, int out_c, int kernel,
                               int stride, int relu, int ratio, int dw_size) {
    gn_ghost_desc g;
    char wp[64], bp[64];
    g.in_c = in_c;
    g.out_c = out_c;
    g.init_c = (out_c + ratio - 1) / ratio;
    g.new_c = g.init_c * (ratio - 1);
    g.kept_new = out_c - g.init_c;
    g.relu = relu;
    join(wp, sizeof wp, prefix, "primary_conv.0");
    join(bp, sizeof bp, prefix, "primary_conv.1");
    g.primary = add_conv(b, wp, in_c, g.init_c, kernel, stride, 1, bp, 0);
    join(wp, sizeof wp, prefix, "cheap_operation.0");
    join(bp, sizeof bp, prefix, "cheap_operation.1");
    g.cheap = add_conv(b, wp, g.init_c, g.new_c, dw_size, 1, g.init_c, bp, 0);
    return g;
}

static void add_bottleneck(builder *b, gn_bottleneck_desc *blk, int in_c, int mid_c, int out_c,
                           int kernel, int stride, double se_ratio, int ratio, int dw_size) {
    char p[64], q[64];
    const char *name = blk->name;
    blk->in_c = in_c;
    blk->mid_c = mid_c;
    blk->out_c = out_c;
    blk->kernel = kernel;
    blk->stride = stride;

    join(p, sizeof p, name, "ghost1");
    blk->ghost1 = add_ghost(b, p, in_c, mid_c, 1, 1, 1, ratio, dw_size);
    blk->has_dw = stride > 1;
    if (blk->has_dw) {
        join(p, sizeof p, name, "conv_dw");
        join(q, sizeof q, name, "bn_dw");
        blk->conv_dw = add_conv(b, p, mid_c, mid_c, kernel, stride, mid_c, q, 0);
    }
    blk->has_se = se_ratio > 0.0;
    if (blk->has_se) {
        gn_se_desc *s = &blk->se;
        s->channels = mid_c;
        s->reduced = gn_make_divisible(mid_c * se_ratio, 4);
        const int64_t rw[4] = {s->reduced, mid_c, 1, 1}, rb[1] = {s->reduced};
        const int64_t ew[4] = {mid_c, s->reduced, 1, 1}, eb[1] = {mid_c};
        join(p, sizeof p, name, "se.conv_reduce");
        s->reduce_w = add_tensor(b, p, "weight", 4, rw, 1, 0);
        s->reduce_b = add_tensor(b, p, "bias", 1, rb, 1, 0);
        join(p, sizeof p, name, "se.conv_expand");
        s->expand_w = add_tensor(b, p, "weight", 4, ew, 1, 0);
        s->expand_b = add_tensor(b, p, "bias", 1, eb, 1, 0);
    }
    join(p, sizeof p, name, "ghost2");
    blk->ghost2 = add_ghost(b, p, mid_c, out_c, 1, 1, 0, ratio, dw_size);
    blk->has_projection = !(in_c == out_c && stride == 1);
    if (blk->has_projection) {
        join(p, sizeof p, name, "shortcut.0");
        join(q, sizeof q, name, "shortcut.1");
        blk->shortcut_dw = add_conv(b, p, in_c, in_c, kernel, stride, in_c, q, 0);
        join(p, sizeof p, name, "shortcut.2");
        join(q, sizeof q, name, "shortcut.3");
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
                       kLayout[i].se ? 0.25 : 0.0, config->ghost_ratio, config->ghost_dw_size);
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

/* ---- standalone blocks ----------------------------------------------------------------- */

gn_status gn_arch_build_ghost_module(const gn_ghost_module_config *c, gn_arch *arch,
                                     gn_ghost_desc *out, gn_error *err) {
    if (c->in_chans < 1 || c->out_chans < 1 || c->in_chans > 65536 || c->out_chans > 65536)
        return gn_fail(err, GN_ERR_INVALID_ARG, "ghost module channels %d -> %d out of range",
                       c->in_chans, c->out_chans);
    if (c->kernel < 1 || c->kernel > 15 || c->kernel % 2 == 0 || c->stride < 1 || c->stride > 8)
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "ghost module kernel %d must be odd 1..15 and stride %d 1..8", c->kernel,
                       c->stride);
    if (c->ratio < 2 || c->ratio > 16 || c->dw_size < 1 || c->dw_size > 15 || c->dw_size % 2 == 0)
        return gn_fail(err, GN_ERR_INVALID_ARG, "ghost module s=%d (2..16), d=%d (odd 1..15)",
                       c->ratio, c->dw_size);
    memset(arch, 0, sizeof *arch);
    builder b = {arch, GN_OK};
    *out = add_ghost(&b, "", c->in_chans, c->out_chans, c->kernel, c->stride, c->relu != 0,
                     c->ratio, c->dw_size);
    return b.status == GN_OK ? GN_OK : gn_fail(err, b.status, "too many tensors");
}

gn_status gn_arch_build_bottleneck(const gn_bottleneck_config *c, gn_arch *arch,
                                   gn_bottleneck_desc *out, gn_error *err) {
    if (c->in_chans < 1 || c->mid_chans < 1 || c->out_chans < 1 || c->in_chans > 65536 ||
        c->mid_chans > 65536 || c->out_chans > 65536)
        return gn_fail(err, GN_ERR_INVALID_ARG, "bottleneck channels %d/%d/%d out of range",
                       c->in_chans, c->mid_chans, c->out_chans);
    if (c->kernel < 1 || c->kernel > 15 || c->kernel % 2 == 0 || c->stride < 1 || c->stride > 8)
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "bottleneck kernel %d must be odd 1..15 and stride %d 1..8", c->kernel,
                       c->stride);
    if (!(c->se_ratio >= 0.0f && c->se_ratio <= 1.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG, "se_ratio %g out of range [0, 1]",
                       (double)c->se_ratio);
    if (c->ratio < 2 || c->ratio > 16 || c->dw_size < 1 || c->dw_size > 15 || c->dw_size % 2 == 0)
        return gn_fail(err, GN_ERR_INVALID_ARG, "bottleneck s=%d (2..16), d=%d (odd 1..15)",
                       c->ratio, c->dw_size);
    memset(arch, 0, sizeof *arch);
    memset(out, 0, sizeof *out);
    builder b = {arch, GN_OK};
    add_bottleneck(&b, out, c->in_chans, c->mid_chans, c->out_chans, c->kernel, c->stride,
                   c->se_ratio, c->ratio, c->dw_size);
    return b.status == GN_OK ? GN_OK : gn_fail(err, b.status, "too many tensors");
}

/* ---- shared helpers over a tensor table ------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* PyTorch's defaults: Conv2d and Linear weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))
 * (kaiming_uniform with a = sqrt(5)); BN weight 1, bias 0, mean 0, var 1. */
void gn_arch_init_tensors(const gn_arch *a, float *data, uint64_t seed) {
    gn_rng rng;
    gn_rng_seed(&rng, seed);
    float fan_in = 1.0f;
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *t = &a->tensors[i];
        float *d = data + t->offset;
        if (t->is_bn) {
            int ones = ends_with(t->name, ".weight") || ends_with(t->name, ".running_var");
            for (size_t j = 0; j < t->numel; j++) d[j] = ones ? 1.0f : 0.0f;
            continue;
        }
        if (t->ndim >= 2) {
            fan_in = 1.0f;
            for (int k = 1; k < t->ndim; k++) fan_in *= (float)t->shape[k];
        } /* a bias follows its weight and shares its fan_in */
        const float bound = 1.0f / sqrtf(fan_in);
        for (size_t j = 0; j < t->numel; j++) d[j] = (2.0f * gn_rng_uniform(&rng) - 1.0f) * bound;
    }
}

void gn_arch_tensor_info(const gn_arch *a, float *data, int index, gn_tensor_info *info) {
    const gn_tensor_desc *t = &a->tensors[index];
    info->name = t->name;
    info->ndim = t->ndim;
    for (int i = 0; i < 4; i++) info->shape[i] = t->shape[i];
    info->data = data + t->offset;
    info->numel = t->numel;
}

int gn_arch_find_tensor(const gn_arch *a, const char *name) {
    for (int i = 0; i < a->num_tensors; i++)
        if (strcmp(a->tensors[i].name, name) == 0) return i;
    return -1;
}

size_t gn_arch_param_count(const gn_arch *a) {
    size_t n = 0;
    for (int i = 0; i < a->num_tensors; i++)
        if (a->tensors[i].is_param) n += a->tensors[i].numel;
    return n;
}

/* Counted as the network defines it (the whole cheap conv, as PyTorch counters do), even
 * though the engine skips ghost maps that the [:out] slice drops (only when out % s != 0). */
int64_t gn_ghost_macs(const gn_ghost_desc *g, int out_h, int out_w) {
    return gn_conv_desc_macs(&g->primary, out_h, out_w) + gn_conv_desc_macs(&g->cheap, out_h, out_w);
}

int64_t gn_ghost_params(const gn_ghost_desc *g) {
    return gn_conv_desc_params(&g->primary) + gn_conv_desc_params(&g->cheap);
}

int64_t gn_se_macs(const gn_se_desc *s) { return 2 * (int64_t)s->channels * s->reduced; }

int64_t gn_se_params(const gn_se_desc *s) {
    return 2 * (int64_t)s->channels * s->reduced + s->channels + s->reduced;
}

int64_t gn_bottleneck_macs(const gn_bottleneck_desc *b, int h, int w) {
    const int oh = gn_conv_out_size(h, b->kernel, b->stride);
    const int ow = gn_conv_out_size(w, b->kernel, b->stride);
    int64_t m = gn_ghost_macs(&b->ghost1, h, w) + gn_ghost_macs(&b->ghost2, oh, ow);
    if (b->has_dw) m += gn_conv_desc_macs(&b->conv_dw, oh, ow);
    if (b->has_se) m += gn_se_macs(&b->se);
    if (b->has_projection)
        m += gn_conv_desc_macs(&b->shortcut_dw, oh, ow) + gn_conv_desc_macs(&b->shortcut_pw, oh, ow);
    return m;
}

/* w' = w * g / sqrt(v + eps), b' = beta + (bias - mean) * g / sqrt(v + eps), in double so
 * folding adds no error beyond the final rounding. */
void gn_conv_fold_bn(const gn_arch *a, const float *data, const gn_conv_desc *c, int out_c,
                     float *w_out, float *b_out) {
    const size_t per_out = (size_t)(c->in_c / c->groups) * c->kernel * c->kernel;
    const float *w = data + a->tensors[c->weight].offset;
    const float *bias = c->bias >= 0 ? data + a->tensors[c->bias].offset : NULL;
    const float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
    if (c->bn.first >= 0) {
        gamma = data + a->tensors[c->bn.first].offset;
        beta = data + a->tensors[c->bn.first + 1].offset;
        mean = data + a->tensors[c->bn.first + 2].offset;
        var = data + a->tensors[c->bn.first + 3].offset;
    }
    for (int j = 0; j < out_c; j++) {
        double scale = 1.0, shift = bias ? bias[j] : 0.0;
        if (gamma) {
            scale = gamma[j] / sqrt((double)var[j] + GN_BN_EPS);
            shift = beta[j] + (shift - mean[j]) * scale;
        }
        for (size_t k = 0; k < per_out; k++)
            w_out[j * per_out + k] = (float)(w[j * per_out + k] * scale);
        b_out[j] = (float)shift;
    }
}
