/* The per-layer table behind `ghostnet summary`: walks the architecture description and
 * counts parameters and multiply-adds (convs and linear layers, SE's 1x1 convs included). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/model_internal.h"
#include "net/net.h"

typedef struct table {
    gn_layer_info *rows;
    size_t cap, count;
    gn_layer_info discard; /* rows past cap are written here and dropped */
} table;

static gn_layer_info *add_row(table *t, int depth, const char *name, const char *type, int c,
                              int h, int w, int64_t params, int64_t macs) {
    gn_layer_info *r = t->count < t->cap ? &t->rows[t->count] : &t->discard;
    t->count++;
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->type, sizeof r->type, "%s", type);
    r->depth = depth;
    r->out_c = c;
    r->out_h = h;
    r->out_w = w;
    r->params = params;
    r->macs = macs;
    return r;
}

static void conv_type(char *buf, size_t n, const char *what, const gn_conv_desc *c) {
    snprintf(buf, n, "%s %dx%d/%d", what, c->kernel, c->kernel, c->stride);
}

static int64_t bottleneck_rows(table *t, const gn_bottleneck_desc *b, int h, int w, int *ho,
                               int *wo) {
    char name[64], type[32];
    const int oh = gn_conv_out_size(h, b->kernel, b->stride);
    const int ow = gn_conv_out_size(w, b->kernel, b->stride);
    int64_t params = 0, macs = 0;
    size_t parent = t->count;
    snprintf(type, sizeof type, "GhostBottleneck k%d/%d%s", b->kernel, b->stride,
             b->has_se ? " SE" : "");
    add_row(t, 0, b->name, type, b->out_c, oh, ow, 0, 0);

    int64_t p = gn_ghost_params(&b->ghost1), m = gn_ghost_macs(&b->ghost1, h, w);
    snprintf(name, sizeof name, "%s.ghost1", b->name);
    add_row(t, 1, name, "GhostModule+ReLU", b->mid_c, h, w, p, m);
    params += p;
    macs += m;
    if (b->has_dw) {
        p = gn_conv_desc_params(&b->conv_dw);
        m = gn_conv_desc_macs(&b->conv_dw, oh, ow);
        snprintf(name, sizeof name, "%s.conv_dw", b->name);
        conv_type(type, sizeof type, "DWConv+BN", &b->conv_dw);
        add_row(t, 1, name, type, b->mid_c, oh, ow, p, m);
        params += p;
        macs += m;
    }
    if (b->has_se) {
        const gn_se_desc *s = &b->se;
        p = gn_se_params(s);
        m = gn_se_macs(s);
        snprintf(name, sizeof name, "%s.se", b->name);
        add_row(t, 1, name, "SqueezeExcite", b->mid_c, oh, ow, p, m);
        params += p;
        macs += m;
    }
    p = gn_ghost_params(&b->ghost2);
    m = gn_ghost_macs(&b->ghost2, oh, ow);
    snprintf(name, sizeof name, "%s.ghost2", b->name);
    add_row(t, 1, name, "GhostModule", b->out_c, oh, ow, p, m);
    params += p;
    macs += m;
    if (b->has_projection) {
        p = gn_conv_desc_params(&b->shortcut_dw) + gn_conv_desc_params(&b->shortcut_pw);
        m = gn_conv_desc_macs(&b->shortcut_dw, oh, ow) + gn_conv_desc_macs(&b->shortcut_pw, oh, ow);
        snprintf(name, sizeof name, "%s.shortcut", b->name);
        add_row(t, 1, name, "DWConv+BN, Conv1x1+BN", b->out_c, oh, ow, p, m);
        params += p;
        macs += m;
    }
    if (parent < t->cap) {
        t->rows[parent].params = params;
        t->rows[parent].macs = macs;
    }
    *ho = oh;
    *wo = ow;
    return macs;
}

/* Fills the table (rows beyond cap are counted, not stored); returns total MACs. */
static int64_t build_table(const gn_arch *a, int height, int width, table *t) {
    char type[32];
    int64_t macs = 0;
    int h = gn_conv_out_size(height, 3, a->stem.stride);
    int w = gn_conv_out_size(width, 3, a->stem.stride);
    conv_type(type, sizeof type, "Conv+BN+ReLU", &a->stem);
    int64_t m = gn_conv_desc_macs(&a->stem, h, w);
    add_row(t, 0, "conv_stem", type, a->stem.out_c, h, w, gn_conv_desc_params(&a->stem), m);
    macs += m;
    for (int i = 0; i < a->num_blocks; i++) macs += bottleneck_rows(t, &a->blocks[i], h, w, &h, &w);
    const gn_conv_desc *fc = &a->final_conv;
    m = gn_conv_desc_macs(fc, h, w);
    add_row(t, 0, "blocks.9.0", "Conv+BN+ReLU 1x1/1", fc->out_c, h, w, gn_conv_desc_params(fc), m);
    macs += m;
    add_row(t, 0, "global_pool", "GlobalAvgPool", fc->out_c, 1, 1, 0, 0);
    m = gn_conv_desc_macs(&a->head, 1, 1);
    add_row(t, 0, "conv_head", "Conv+ReLU 1x1/1", GN_HEAD_CHANNELS, 1, 1, gn_conv_desc_params(&a->head), m);
    macs += m;
    const int64_t n = a->config.num_classes;
    m = n * GN_HEAD_CHANNELS;
    add_row(t, 0, "classifier", "Linear", (int)n, 1, 1, m + n, m);
    macs += m;
    return macs;
}

static int64_t tensor_params(const gn_arch *a, int first, int count) {
    int64_t n = 0;
    for (int i = first; first >= 0 && i < first + count; i++)
        if (a->tensors[i].is_param) n += (int64_t)a->tensors[i].numel;
    return n;
}

/* One row per operation of a described network. */
static gn_status net_table(const gn_arch *a, int height, int width, table *t, gn_error *err) {
    const gn_net *net = a->net;
    int *vh = gn_calloc((size_t)net->num_values * 2, sizeof *vh);
    if (!vh) return gn_fail(err, GN_ERR_NOMEM, "out of memory");
    int *vw = vh + net->num_values;
    gn_status st = gn_net_spatial(net, height, width, vh, vw, err);
    static const char *const kActs[] = {"", "+ReLU", "+ReLU6", "+HSigmoid", "+HSwish"};
    for (int i = 0; st == GN_OK && i < net->num_nodes; i++) {
        const gn_net_node *d = &net->nodes[i];
        const int oh = vh[d->out.value], ow = vw[d->out.value];
        const char *act = kActs[d->act];
        char type[32];
        int64_t params = 0, macs = 0;
        switch (d->op) {
        case GN_NET_CONV:
            snprintf(type, sizeof type, "%s %dx%d/%d%s%s%s",
                     d->groups == d->in.channels && d->groups > 1 ? "DWConv" : "Conv", d->kernel,
                     d->kernel, d->stride, d->bias >= 0 ? "+b" : "", d->bn >= 0 ? "+BN" : "", act);
            params = tensor_params(a, d->weight, 1) + tensor_params(a, d->bias, 1) +
                     tensor_params(a, d->bn, 4);
            macs = (int64_t)oh * ow * d->full_out * (d->in.channels / d->groups) * d->kernel *
                   d->kernel;
            break;
        case GN_NET_SE:
            snprintf(type, sizeof type, "SqueezeExcite %d", d->reduced);
            params = tensor_params(a, d->weight, 1) + tensor_params(a, d->bias, 1) +
                     tensor_params(a, d->weight2, 1) + tensor_params(a, d->bias2, 1);
            macs = 2 * (int64_t)d->in.channels * d->reduced;
            break;
        case GN_NET_BN:
            snprintf(type, sizeof type, "BN%s", act);
            params = tensor_params(a, d->bn, 4);
            break;
        case GN_NET_ACT: snprintf(type, sizeof type, "%s", act + 1); break;
        case GN_NET_MAXPOOL: snprintf(type, sizeof type, "MaxPool %dx%d/%d", d->kernel, d->kernel, d->stride); break;
        case GN_NET_AVGPOOL: snprintf(type, sizeof type, "GlobalAvgPool"); break;
        case GN_NET_LINEAR:
            snprintf(type, sizeof type, "Linear%s", act);
            params = tensor_params(a, d->weight, 1) + tensor_params(a, d->bias, 1);
            macs = (int64_t)d->in.channels * d->out.channels;
            break;
        case GN_NET_DROPOUT: snprintf(type, sizeof type, "Dropout %g", (double)d->rate); break;
        case GN_NET_ADD: snprintf(type, sizeof type, "Add%s", act); break;
        }
        add_row(t, 0, d->name, type, d->out.channels, oh, ow, params, macs);
    }
    free(vh);
    return st;
}

gn_status gn_model_layers(const gn_model *model, int height, int width, gn_layer_info *rows,
                          size_t cap, size_t *count, gn_error *err) {
    if (!model || !count || (cap && !rows))
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_model_layers: NULL argument");
    if (height < 1 || width < 1 || height > 8192 || width > 8192)
        return gn_fail(err, GN_ERR_INVALID_ARG, "input size %dx%d out of range 1..8192", height,
                       width);
    table t = {.rows = rows, .cap = cap};
    if (model->arch->net) {
        gn_status st = net_table(model->arch, height, width, &t, err);
        if (st != GN_OK) return st;
    } else {
        build_table(model->arch, height, width, &t);
    }
    *count = t.count;
    return GN_OK;
}

int64_t gn_model_macs(const gn_model *model, int height, int width) {
    if (model->arch->net) return gn_net_macs(model->arch->net, height, width);
    table t = {.rows = NULL};
    return build_table(model->arch, height, width, &t);
}
