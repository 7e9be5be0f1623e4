/* Standalone Ghost modules and bottlenecks: the same descriptors and tensor table as inside
 * GhostNet, with names relative to the block. */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/block_internal.h"
#include "ops/ops.h"

static gn_status block_alloc(gn_block *b, gn_error *err) {
    b->data = gn_calloc(b->arch.total_floats, sizeof(float));
    if (!b->data) return gn_fail(err, GN_ERR_NOMEM, "out of memory for a block's parameters");
    gn_block_init_random(b, 0);
    return GN_OK;
}

gn_status gn_block_create_ghost_module(const gn_ghost_module_config *config, gn_block **out,
                                       gn_error *err) {
    if (!config || !out) return gn_fail(err, GN_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    gn_block *b = calloc(1, sizeof *b);
    if (!b) return gn_fail(err, GN_ERR_NOMEM, "out of memory for a block");
    b->kind = GN_BLOCK_GHOST_MODULE;
    gn_status st = gn_arch_build_ghost_module(config, &b->arch, &b->ghost, err);
    if (st == GN_OK) st = block_alloc(b, err);
    if (st != GN_OK) {
        gn_block_free(b);
        return st;
    }
    *out = b;
    return GN_OK;
}

gn_status gn_block_create_bottleneck(const gn_bottleneck_config *config, gn_block **out,
                                     gn_error *err) {
    if (!config || !out) return gn_fail(err, GN_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    gn_block *b = calloc(1, sizeof *b);
    if (!b) return gn_fail(err, GN_ERR_NOMEM, "out of memory for a block");
    b->kind = GN_BLOCK_BOTTLENECK;
    gn_status st = gn_arch_build_bottleneck(config, &b->arch, &b->bottleneck, err);
    if (st == GN_OK) st = block_alloc(b, err);
    if (st != GN_OK) {
        gn_block_free(b);
        return st;
    }
    *out = b;
    return GN_OK;
}

void gn_block_free(gn_block *block) {
    if (!block) return;
    free(block->data);
    free(block);
}

/* Same scheme as gn_model_init_random: PyTorch's default init, BN as identity. */
gn_status gn_block_init_random(gn_block *block, uint64_t seed) {
    if (!block) return GN_ERR_INVALID_ARG;
    gn_arch_init_tensors(&block->arch, block->data, seed);
    return GN_OK;
}

size_t gn_block_tensor_count(const gn_block *block) { return (size_t)block->arch.num_tensors; }

gn_status gn_block_tensor(const gn_block *block, size_t index, gn_tensor_info *info) {
    if (!block || !info || index >= (size_t)block->arch.num_tensors) return GN_ERR_INVALID_ARG;
    gn_arch_tensor_info(&block->arch, block->data, (int)index, info);
    return GN_OK;
}

gn_status gn_block_find_tensor(const gn_block *block, const char *name, gn_tensor_info *info) {
    if (!block || !name) return GN_ERR_INVALID_ARG;
    int i = gn_arch_find_tensor(&block->arch, name);
    if (i < 0) return GN_ERR_INVALID_ARG;
    gn_arch_tensor_info(&block->arch, block->data, i, info);
    return GN_OK;
}

size_t gn_block_param_count(const gn_block *block) { return gn_arch_param_count(&block->arch); }

gn_status gn_block_output_shape(const gn_block *block, int in_h, int in_w, int *channels,
                                int *out_h, int *out_w) {
    if (!block || in_h < 1 || in_w < 1) return GN_ERR_INVALID_ARG;
    int c, k, s;
    if (block->kind == GN_BLOCK_GHOST_MODULE) {
        c = block->ghost.out_c;
        k = block->ghost.primary.kernel;
        s = block->ghost.primary.stride;
    } else {
        c = block->bottleneck.out_c;
        k = block->bottleneck.kernel;
        s = block->bottleneck.stride;
    }
    if (channels) *channels = c;
    if (out_h) *out_h = gn_conv_out_size(in_h, k, s);
    if (out_w) *out_w = gn_conv_out_size(in_w, k, s);
    return GN_OK;
}

int64_t gn_block_macs(const gn_block *block, int in_h, int in_w) {
    int ho, wo;
    if (gn_block_output_shape(block, in_h, in_w, NULL, &ho, &wo) != GN_OK) return 0;
    if (block->kind == GN_BLOCK_GHOST_MODULE) return gn_ghost_macs(&block->ghost, ho, wo);
    return gn_bottleneck_macs(&block->bottleneck, in_h, in_w);
}

/* ---- forward (eval mode) --------------------------------------------------------------- */

/* One conv with its BN folded, from `in` (images in_stride floats apart) into `out` (images
 * out_stride apart), writing only the first out_c channels. */
static gn_status run_conv(const gn_block *b, const gn_conv_desc *c, int out_c, int batch,
                          const float *in, size_t in_stride, int h, int w, float *out,
                          size_t out_stride, gn_act act, int accumulate) {
    const size_t per_out = (size_t)(c->in_c / c->groups) * c->kernel * c->kernel;
    float *folded = gn_malloc((per_out * out_c + out_c) * sizeof(float));
    if (!folded) return GN_ERR_NOMEM;
    gn_conv_fold_bn(&b->arch, b->data, c, out_c, folded, folded + per_out * out_c);
    gn_conv_params p;
    gn_conv_params_dense(&p, batch, c->in_c, h, w, c->out_c, c->kernel, c->stride, c->groups, act);
    p.out_c = out_c; /* out_per_group stays that of the full conv */
    p.in_image_stride = in_stride;
    p.out_image_stride = out_stride;
    p.accumulate = accumulate;
    gn_conv2d(&p, in, folded, folded + per_out * out_c, out);
    free(folded);
    return GN_OK;
}

/* Ghost module: primary maps into channels [0, init), ghost maps into [init, out) of `out`. */
static gn_status run_ghost(const gn_block *b, const gn_ghost_desc *g, int batch, const float *in,
                           size_t in_stride, int h, int w, float *out) {
    const int oh = gn_conv_out_size(h, g->primary.kernel, g->primary.stride);
    const int ow = gn_conv_out_size(w, g->primary.kernel, g->primary.stride);
    const size_t plane = (size_t)oh * ow, stride = (size_t)g->out_c * plane;
    const gn_act act = g->relu ? GN_ACT_RELU : GN_ACT_NONE;
    gn_status st = run_conv(b, &g->primary, g->init_c, batch, in, in_stride, h, w, out, stride,
                            act, 0);
    if (st == GN_OK && g->kept_new > 0)
        st = run_conv(b, &g->cheap, g->kept_new, batch, out, stride, oh, ow,
                      out + (size_t)g->init_c * plane, stride, act, 0);
    return st;
}

static const float *block_tensor(const gn_block *b, int index) {
    return b->data + b->arch.tensors[index].offset;
}

static gn_status run_bottleneck(const gn_block *b, int batch, const float *x, int h, int w,
                                float *y) {
    const gn_bottleneck_desc *k = &b->bottleneck;
    const int oh = gn_conv_out_size(h, k->kernel, k->stride);
    const int ow = gn_conv_out_size(w, k->kernel, k->stride);
    const size_t plane = (size_t)h * w, oplane = (size_t)oh * ow;
    float *mid = gn_malloc((size_t)batch * k->mid_c * plane * sizeof(float));
    float *dw = k->has_dw ? gn_malloc((size_t)batch * k->mid_c * oplane * sizeof(float)) : NULL;
    float *sc = k->has_projection ? gn_malloc((size_t)batch * k->in_c * oplane * sizeof(float)) : NULL;
    float *se_scratch = gn_malloc(((size_t)k->mid_c + (k->has_se ? k->se.reduced : 0)) * sizeof(float));
    gn_status st = GN_ERR_NOMEM;
    if (!mid || (k->has_dw && !dw) || (k->has_projection && !sc) || !se_scratch) goto done;
    const size_t x_stride = (size_t)k->in_c * plane;
    if ((st = run_ghost(b, &k->ghost1, batch, x, x_stride, h, w, mid)) != GN_OK) goto done;
    float *cur = mid;
    if (k->has_dw) {
        st = run_conv(b, &k->conv_dw, k->mid_c, batch, mid, k->mid_c * plane, h, w, dw,
                      k->mid_c * oplane, GN_ACT_NONE, 0);
        if (st != GN_OK) goto done;
        cur = dw;
    }
    if (k->has_se) {
        const gn_se_weights se = {k->mid_c, k->se.reduced, block_tensor(b, k->se.reduce_w),
                                  block_tensor(b, k->se.reduce_b), block_tensor(b, k->se.expand_w),
                                  block_tensor(b, k->se.expand_b)};
        gn_squeeze_excite_ref(cur, batch, (int)oplane, k->mid_c * oplane, &se, se_scratch);
    }
    if ((st = run_ghost(b, &k->ghost2, batch, cur, k->mid_c * oplane, oh, ow, y)) != GN_OK)
        goto done;
    const size_t y_stride = (size_t)k->out_c * oplane;
    if (k->has_projection) {
        st = run_conv(b, &k->shortcut_dw, k->in_c, batch, x, x_stride, h, w, sc,
                      k->in_c * oplane, GN_ACT_NONE, 0);
        if (st == GN_OK)
            st = run_conv(b, &k->shortcut_pw, k->out_c, batch, sc, k->in_c * oplane, oh, ow, y,
                          y_stride, GN_ACT_NONE, 1);
    } else {
        gn_add_ref(y, x, batch, k->out_c, (int)oplane, y_stride, x_stride);
    }
done:
    free(mid);
    free(dw);
    free(sc);
    free(se_scratch);
    return st;
}

gn_status gn_block_forward(const gn_block *block, int batch, int h, int w, const float *input,
                           float *output, gn_error *err) {
    if (!block || !input || !output)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_block_forward: NULL argument");
    if (batch < 1 || h < 1 || w < 1 || batch > 65536 || h > 8192 || w > 8192)
        return gn_fail(err, GN_ERR_INVALID_ARG, "batch %d, size %dx%d out of range", batch, h, w);
    gn_status st;
    if (block->kind == GN_BLOCK_GHOST_MODULE)
        st = run_ghost(block, &block->ghost, batch, input, (size_t)block->ghost.in_c * h * w, h, w,
                       output);
    else
        st = run_bottleneck(block, batch, input, h, w, output);
    return st == GN_OK ? GN_OK : gn_fail(err, st, "out of memory in gn_block_forward");
}
