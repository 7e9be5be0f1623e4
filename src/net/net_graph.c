/* Runs a .net program (net.h) forward, in eval or training mode, and backward.
 *
 * Every value (feature map) has its own buffer, batch-inner ([channel][pixel][image], as in
 * train_graph.c), so the convolution, BN and SE kernels of grad_ops.c apply unchanged and a
 * channel range is a pointer offset. Training keeps every value and each conv's pre-BN z for
 * the backward pass and gives every value a gradient buffer, zeroed by its first writer in a
 * step. That is simple rather than lean: the built-in GhostNet's graph (train_graph.c) saves
 * far less, and this one is meant for the small networks of the experiments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "core/threadpool.h"
#include "model/model_internal.h"
#include "net/net.h"
#include "train/train.h"

/* Dense convolutions (groups 1, kernel > 1) run as im2col + product over chunks of output
 * pixels, each chunk's columns at most this many floats. */
enum { kColFloats = 1 << 21 };

typedef struct node_state {
    int ih, iw, oh, ow;
    gn_tconv c;          /* conv nodes */
    float *z;            /* conv: full_out pre-BN channels (bias added); linear: pre-act */
    float *mean, *var, *invstd;
    int32_t *argmax;     /* maxpool: input pixel of each output element */
    float *mask;         /* dropout */
    float *pre;          /* add with an activation: the sum */
    gn_se_saved se;
} node_state;

struct gn_net_graph {
    gn_model *model;
    const gn_net *net;
    int batch, h, w, training, cur_batch;
    int classes;
    uint64_t seed;
    int64_t steps;
    gn_threadpool *pool;
    gn_tctx ctx;
    int *vh, *vw;
    float **val, **gval;
    unsigned char *touched; /* this step's gradient of value i has been written */
    node_state *ns;
    float *dz;
    float *col, *dcol; /* im2col chunks for dense convolutions */
    float *se_scratch;
    float *logits, *dlogits; /* [batch][classes] */
    float *grads;            /* the caller's, during a step */
    int bn_train;
    void **allocs;
    int num_allocs, cap_allocs, failed;
    size_t bytes;
};

static float *P(const gn_net_graph *g, int tensor) {
    return g->model->data + g->model->arch->tensors[tensor].offset;
}

static float *G(const gn_net_graph *g, int tensor) {
    return g->grads + g->model->arch->tensors[tensor].offset;
}

static void *take(gn_net_graph *g, size_t bytes) {
    if (g->failed) return NULL;
    if (g->num_allocs == g->cap_allocs) {
        int cap = g->cap_allocs ? 2 * g->cap_allocs : 256;
        void **a = realloc(g->allocs, (size_t)cap * sizeof *a);
        if (!a) {
            g->failed = 1;
            return NULL;
        }
        g->allocs = a;
        g->cap_allocs = cap;
    }
    bytes = (bytes ? bytes : 1);
    if (bytes > ((size_t)1 << 40)) {
        g->failed = 1;
        return NULL;
    }
    bytes = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) {
        g->failed = 1;
        return NULL;
    }
    memset(p, 0, bytes);
    g->allocs[g->num_allocs++] = p;
    g->bytes += bytes;
    return p;
}

static float *takef(gn_net_graph *g, size_t floats) {
    size_t bytes;
    if (!gn_mul_size(floats, sizeof(float), &bytes)) {
        g->failed = 1;
        return NULL;
    }
    return take(g, bytes);
}

static size_t plane(const gn_net_graph *g, int value) {
    return (size_t)g->vh[value] * g->vw[value];
}

/* Pointer to channel c0 of a value (or of its gradient). */
static float *at(const gn_net_graph *g, float *const *bufs, gn_net_view v) {
    return bufs[v.value] + (size_t)v.c0 * plane(g, v.value) * g->batch;
}

static gn_planes planes_of(const gn_net_graph *g, int channels, size_t hw) {
    const size_t B = (size_t)g->batch;
    gn_planes t = {g->batch, channels, hw, 1, hw * B, B};
    return t;
}

/* The gradient of value v, zeroed on its first use in a step; NULL for the input. */
static float *grad_of(gn_net_graph *g, int v) {
    if (v == 0) return NULL;
    if (!g->touched[v]) {
        memset(g->gval[v], 0, (size_t)g->net->values[v].channels * plane(g, v) * g->batch *
                                  sizeof(float));
        g->touched[v] = 1;
    }
    return g->gval[v];
}

/* ---- planning ------------------------------------------------------------------------------ */

static void bn_buffers(gn_net_graph *g, node_state *s, int channels) {
    s->mean = takef(g, (size_t)channels);
    s->var = takef(g, (size_t)channels);
    s->invstd = takef(g, (size_t)channels);
}

static void plan(gn_net_graph *g) {
    const gn_net *net = g->net;
    const size_t B = (size_t)g->batch;
    size_t dz_max = 1, se_max = 1;
    for (int v = 0; v < net->num_values; v++) {
        const size_t n = (size_t)net->values[v].channels * plane(g, v) * B;
        g->val[v] = takef(g, n);
        if (g->training && v > 0) g->gval[v] = takef(g, n);
    }
    for (int i = 0; i < net->num_nodes; i++) {
        const gn_net_node *d = &net->nodes[i];
        node_state *s = &g->ns[i];
        s->ih = g->vh[d->in.value];
        s->iw = g->vw[d->in.value];
        s->oh = g->vh[d->out.value];
        s->ow = g->vw[d->out.value];
        const size_t out_hw = (size_t)s->oh * s->ow, in_hw = (size_t)s->ih * s->iw;
        const size_t out_n = (size_t)d->out.channels * out_hw * B;
        if (out_n > dz_max) dz_max = out_n;
        switch (d->op) {
        case GN_NET_CONV:
            gn_conv_params_dense(&s->c.p, g->batch, d->in.channels, s->ih, s->iw, d->full_out,
                                 d->kernel, d->stride, d->groups, GN_ACT_NONE);
            s->c.in.bs = 1, s->c.in.cs = in_hw * B, s->c.in.ps = B;
            s->c.out.bs = 1, s->c.out.cs = out_hw * B, s->c.out.ps = B;
            s->z = takef(g, (size_t)d->full_out * out_hw * B);
            bn_buffers(g, s, d->full_out);
            break;
        case GN_NET_BN: bn_buffers(g, s, d->out.channels); break;
        case GN_NET_SE:
            s->se.pooled = takef(g, (size_t)d->in.channels * B);
            s->se.hidden = takef(g, (size_t)d->reduced * B);
            s->se.gate_pre = takef(g, (size_t)d->in.channels * B);
            s->se.gate = takef(g, (size_t)d->in.channels * B);
            s->se.ld = B;
            if ((size_t)(d->in.channels + d->reduced) * B > se_max)
                se_max = (size_t)(d->in.channels + d->reduced) * B;
            break;
        case GN_NET_MAXPOOL: {
            size_t bytes;
            if (!gn_mul_size(out_n, sizeof(int32_t), &bytes) || in_hw > INT32_MAX) g->failed = 1;
            else s->argmax = take(g, bytes);
            break;
        }
        case GN_NET_LINEAR: s->z = takef(g, out_n); break;
        case GN_NET_DROPOUT: s->mask = takef(g, out_n); break;
        case GN_NET_ADD:
            if (d->act != GN_ACT_NONE) s->pre = takef(g, out_n);
            break;
        default: break;
        }
    }
    g->dz = takef(g, dz_max);
    g->col = takef(g, kColFloats);
    if (g->training) g->dcol = takef(g, kColFloats);
    g->se_scratch = takef(g, se_max);
    g->logits = takef(g, B * g->classes);
    g->dlogits = takef(g, B * g->classes);
}

gn_status gn_net_graph_create(gn_model *model, int batch, int h, int w, int training,
                              int threads, uint64_t seed, gn_net_graph **out, gn_error *err) {
    if (!model || !model->arch->net || !out) return gn_fail(err, GN_ERR_INVALID_ARG, "no network");
    *out = NULL;
    if (batch < 1 || batch > 65536) return gn_fail(err, GN_ERR_INVALID_ARG, "batch %d out of range", batch);
    const gn_net *net = model->arch->net;
    gn_net_graph *g = calloc(1, sizeof *g);
    if (!g) return gn_fail(err, GN_ERR_NOMEM, "out of memory");
    g->model = model;
    g->net = net;
    g->batch = g->cur_batch = batch;
    g->h = h;
    g->w = w;
    g->training = training;
    g->seed = seed;
    g->classes = net->values[net->output].channels;
    g->vh = calloc((size_t)net->num_values * 2, sizeof *g->vh);
    g->val = calloc((size_t)net->num_values, sizeof *g->val);
    g->gval = calloc((size_t)net->num_values, sizeof *g->gval);
    g->touched = calloc((size_t)net->num_values, 1);
    g->ns = calloc((size_t)net->num_nodes, sizeof *g->ns);
    if (!g->vh || !g->val || !g->gval || !g->touched || !g->ns) {
        gn_net_graph_free(g);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory");
    }
    g->vw = g->vh + net->num_values;
    gn_status st = gn_net_spatial(net, h, w, g->vh, g->vw, err);
    if (st != GN_OK) {
        gn_net_graph_free(g);
        return st;
    }
    /* the kernels index a channel's run of plane * batch floats with int */
    for (int v = 0; v < net->num_values; v++)
        if ((double)plane(g, v) * batch * net->values[v].channels > (double)INT32_MAX / 2) {
            gn_net_graph_free(g);
            return gn_fail(err, GN_ERR_INVALID_ARG, "batch %d at %dx%d is too large", batch, h, w);
        }
    if (training)
        for (int i = 0; i < net->num_nodes; i++) {
            const gn_net_node *d = &net->nodes[i];
            if ((d->bn >= 0) && (size_t)batch * plane(g, d->out.value) < 2) {
                gn_net_graph_free(g);
                return gn_fail(err, GN_ERR_INVALID_ARG,
                               "%s: batch norm over a single value (batch %d, %dx%d map) cannot "
                               "train", d->name, batch, g->vh[d->out.value], g->vw[d->out.value]);
            }
        }
    if (threads <= 0) threads = gn_cpu_count();
    st = gn_threadpool_create(threads, &g->pool, err);
    if (st != GN_OK) {
        gn_net_graph_free(g);
        return st;
    }
    g->ctx.pool = g->pool;
    g->ctx.avx2 = gn_train_avx2_available();
    g->ctx.scratch = takef(g, (size_t)threads * GN_TCTX_SCRATCH_FLOATS);
    plan(g);
    if (g->failed) {
        size_t mb = g->bytes >> 20;
        gn_net_graph_free(g);
        return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory planning batch %d at %dx%d (%zu MiB "
                       "so far)", net->source, batch, h, w, mb);
    }
    *out = g;
    return GN_OK;
}

void gn_net_graph_free(gn_net_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->num_allocs; i++) free(g->allocs[i]);
    free(g->allocs);
    gn_threadpool_free(g->pool);
    free(g->vh);
    free(g->val);
    free(g->gval);
    free(g->touched);
    free(g->ns);
    free(g);
}

size_t gn_net_graph_bytes(const gn_net_graph *g) { return g->bytes; }
int64_t gn_net_graph_steps(const gn_net_graph *g) { return g->steps; }
void gn_net_graph_set_steps(gn_net_graph *g, int64_t steps) { g->steps = steps; }


/* ---- dense convolutions as products ------------------------------------------------------ */

static int is_dense(const gn_net_node *d) { return d->op == GN_NET_CONV && d->groups == 1 && d->kernel > 1; }

/* Output pixels per chunk so that R rows of pixels * B columns fit kColFloats. */
static int chunk_pixels(const gn_net_node *d, const node_state *s, int B) {
    const size_t row = (size_t)d->in.channels * d->kernel * d->kernel * B;
    size_t p = kColFloats / row;
    if (p < 1) p = 1;
    const size_t all = (size_t)s->oh * s->ow;
    return (int)(p < all ? p : all);
}

/* col[r][(o - p0) * B + b] = x[ci][pixel under tap (ky, kx) of output o][b], 0 in the padding;
 * dir 1 scatters back: dx[...] += col[...] (col2im). */
static void im2col(const gn_net_node *d, const node_state *s, int B, int p0, int p1, float *x,
                   float *col, int scatter) {
    const int k = d->kernel, st = d->stride, pad = k / 2;
    const size_t ihw = (size_t)s->ih * s->iw, ncols = (size_t)(p1 - p0) * B;
    for (int ci = 0; ci < d->in.channels; ci++)
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ci * k + ky) * k + kx) * ncols;
                for (int o = p0; o < p1; o++) {
                    const int oy = o / s->ow, ox = o % s->ow;
                    const int iy = oy * st - pad + ky, ix = ox * st - pad + kx;
                    float *c = row + (size_t)(o - p0) * B;
                    if (iy < 0 || iy >= s->ih || ix < 0 || ix >= s->iw) {
                        if (!scatter) memset(c, 0, (size_t)B * sizeof *c);
                        continue;
                    }
                    float *xp = x + ((size_t)ci * ihw + (size_t)iy * s->iw + ix) * B;
                    if (scatter) {
                        for (int b = 0; b < B; b++) xp[b] += c[b];
                    } else {
                        memcpy(c, xp, (size_t)B * sizeof *c);
                    }
                }
            }
}

static void dense_forward(gn_net_graph *g, const gn_net_node *d, const node_state *s,
                          const float *x, const float *w, float *z) {
    const int B = g->batch, R = d->in.channels * d->kernel * d->kernel;
    const int P = chunk_pixels(d, s, B), ohw = s->oh * s->ow;
    for (int p0 = 0; p0 < ohw; p0 += P) {
        const int p1 = p0 + P < ohw ? p0 + P : ohw;
        const size_t n = (size_t)(p1 - p0) * B;
        im2col(d, s, B, p0, p1, (float *)x, g->col, 0);
        const gn_gemm m = {d->full_out, (int)n, R, w, (size_t)R, 1, g->col, n, 0,
                           z + (size_t)p0 * B, (size_t)ohw * B, 0};
        gn_gemm_run(&g->ctx, &m);
    }
}

/* dW += dz col^T and (dx not NULL) dx += col2im(W^T dz), kept output channels. */
static void dense_backward(gn_net_graph *g, const gn_net_node *d, const node_state *s,
                           const float *x, const float *w, const float *dz, float *dw, float *dx) {
    const int B = g->batch, R = d->in.channels * d->kernel * d->kernel, kept = d->out.channels;
    const int P = chunk_pixels(d, s, B), ohw = s->oh * s->ow;
    for (int p0 = 0; p0 < ohw; p0 += P) {
        const int p1 = p0 + P < ohw ? p0 + P : ohw;
        const size_t n = (size_t)(p1 - p0) * B;
        im2col(d, s, B, p0, p1, (float *)x, g->col, 0);
        const gn_gemm wg = {kept, R, (int)n, dz + (size_t)p0 * B, (size_t)ohw * B, 1, g->col, n,
                            1, dw, (size_t)R, 1};
        gn_gemm_run(&g->ctx, &wg);
        if (!dx) continue;
        const gn_gemm xg = {R, (int)n, kept, w, 1, (size_t)R, dz + (size_t)p0 * B,
                            (size_t)ohw * B, 0, g->dcol, n, 0};
        gn_gemm_run(&g->ctx, &xg);
        im2col(d, s, B, p0, p1, dx, g->dcol, 1);
    }
}

/* ---- forward ------------------------------------------------------------------------------- */

/* Per-channel statistics of n channels of x (batch or running) into the node's mean/invstd. */
static void bn_stats(gn_net_graph *g, const node_state *s, int first, const gn_planes *t,
                     const float *x) {
    if (g->bn_train) {
        gn_bn_batch_stats(&g->ctx, t, x, s->mean, s->var);
    } else {
        memcpy(s->mean, P(g, first + 2), (size_t)t->channels * sizeof(float));
        memcpy(s->var, P(g, first + 3), (size_t)t->channels * sizeof(float));
    }
    gn_bn_invstd(t->channels, s->var, GN_BN_EPS, s->invstd);
}

static void update_running(gn_net_graph *g, const node_state *s, int first, int channels,
                           size_t hw) {
    gn_bn_update_running(channels, s->mean, s->var, (size_t)g->cur_batch * hw, GN_BN_MOMENTUM,
                         P(g, first + 2), P(g, first + 3));
}

typedef struct max_job {
    const float *x;
    float *y;
    int32_t *arg;
    int iw, ow, oh, k, s, B;
    size_t ihw;
} max_job;

static void maxpool_range(const void *arg, int c0, int c1) {
    const max_job *j = arg;
    for (int c = c0; c < c1; c++)
        for (int oy = 0; oy < j->oh; oy++)
            for (int ox = 0; ox < j->ow; ox++) {
                const size_t o = ((size_t)c * j->oh * j->ow + (size_t)oy * j->ow + ox) * j->B;
                float *y = j->y + o;
                int32_t *a = j->arg + o;
                for (int ky = 0; ky < j->k; ky++)
                    for (int kx = 0; kx < j->k; kx++) {
                        const int32_t pix = (oy * j->s + ky) * j->iw + ox * j->s + kx;
                        const float *x = j->x + ((size_t)c * j->ihw + (size_t)pix) * j->B;
                        for (int b = 0; b < j->B; b++)
                            if ((ky == 0 && kx == 0) || x[b] > y[b] || isnan(x[b])) {
                                y[b] = x[b];
                                a[b] = pix;
                            }
                    }
            }
}

static void node_forward(gn_net_graph *g, int index, int update) {
    const gn_net_node *d = &g->net->nodes[index];
    node_state *s = &g->ns[index];
    const size_t B = (size_t)g->batch, out_hw = (size_t)s->oh * s->ow;
    const size_t in_hw = (size_t)s->ih * s->iw;
    const float *x = at(g, g->val, d->in);
    float *y = at(g, g->val, d->out);
    const size_t out_n = (size_t)d->out.channels * out_hw * B;
    switch (d->op) {
    case GN_NET_CONV: {
        if (is_dense(d)) {
            dense_forward(g, d, s, x, P(g, d->weight), s->z);
        } else {
            gn_tconv_forward(&g->ctx, &s->c, x, P(g, d->weight), s->z);
        }
        if (d->bias >= 0) {
            const float *bias = P(g, d->bias);
            for (int c = 0; c < d->full_out; c++) {
                float *zc = s->z + (size_t)c * out_hw * B;
                for (size_t i = 0; i < out_hw * B; i++) zc[i] += bias[c];
            }
        }
        if (d->bn >= 0) {
            gn_planes t = planes_of(g, d->full_out, out_hw);
            bn_stats(g, s, d->bn, &t, s->z);
            if (update) update_running(g, s, d->bn, d->full_out, out_hw);
            t.channels = d->out.channels;
            gn_bn_forward(&g->ctx, &t, s->z, P(g, d->bn), P(g, d->bn + 1), s->mean, s->invstd,
                          d->act, y, 1);
        } else {
            gn_act_forward(d->act, s->z, out_n, y);
        }
        break;
    }
    case GN_NET_BN: {
        const gn_planes t = planes_of(g, d->out.channels, out_hw);
        bn_stats(g, s, d->bn, &t, x);
        if (update) update_running(g, s, d->bn, d->out.channels, out_hw);
        gn_bn_forward(&g->ctx, &t, x, P(g, d->bn), P(g, d->bn + 1), s->mean, s->invstd, d->act,
                      y, 1);
        break;
    }
    case GN_NET_SE: {
        const gn_planes t = planes_of(g, d->in.channels, in_hw);
        const gn_se_weights w = {d->in.channels, d->reduced, P(g, d->weight), P(g, d->bias),
                                 P(g, d->weight2), P(g, d->bias2)};
        gn_se_forward_train(&g->ctx, &t, x, &w, &s->se, y);
        break;
    }
    case GN_NET_ACT: gn_act_forward(d->act, x, out_n, y); break;
    case GN_NET_MAXPOOL: {
        const max_job j = {x, y, s->argmax, s->iw, s->ow, s->oh, d->kernel, d->stride,
                           g->batch, in_hw};
        gn_tctx_for(&g->ctx, d->out.channels, maxpool_range, &j);
        break;
    }
    case GN_NET_AVGPOOL:
        for (int c = 0; c < d->in.channels; c++)
            for (size_t b = 0; b < B; b++) {
                double sum = 0.0;
                for (size_t i = 0; i < in_hw; i++) sum += x[((size_t)c * in_hw + i) * B + b];
                y[(size_t)c * B + b] = (float)(sum / (double)in_hw);
            }
        break;
    case GN_NET_LINEAR: {
        const int in_f = d->in.channels, out_f = d->out.channels;
        const gn_gemm m = {out_f, g->batch, in_f, P(g, d->weight), (size_t)in_f, 1, x, B, 0,
                           s->z, B, 0};
        gn_gemm_run(&g->ctx, &m);
        const float *bias = P(g, d->bias);
        for (int o = 0; o < out_f; o++)
            for (size_t b = 0; b < B; b++) s->z[(size_t)o * B + b] += bias[o];
        gn_act_forward(d->act, s->z, out_n, y);
        break;
    }
    case GN_NET_DROPOUT:
        if (g->bn_train && d->rate > 0.0f) {
            gn_rng rng;
            gn_rng_seed(&rng, g->seed ^ ((uint64_t)g->steps * 0x9E3779B97F4A7C15ULL) ^
                                  ((uint64_t)(index + 1) * 0xD1B54A32D192ED03ULL));
            gn_dropout_mask(&rng, d->rate, out_n, s->mask);
            for (size_t i = 0; i < out_n; i++) y[i] = x[i] * s->mask[i];
        } else {
            memcpy(y, x, out_n * sizeof *y);
        }
        break;
    case GN_NET_ADD: {
        const float *x2 = at(g, g->val, d->in2);
        float *sum = d->act != GN_ACT_NONE ? s->pre : y;
        for (size_t i = 0; i < out_n; i++) sum[i] = x[i] + x2[i];
        if (d->act != GN_ACT_NONE) gn_act_forward(d->act, sum, out_n, y);
        break;
    }
    }
}

static void forward(gn_net_graph *g, const float *input, int n, int bn_train, int update) {
    g->bn_train = bn_train;
    g->cur_batch = n;
    gn_nchw_to_batch_inner(input, n, g->net->values[0].channels, plane(g, 0), (size_t)g->batch,
                           g->val[0]);
    for (int i = 0; i < g->net->num_nodes; i++) node_forward(g, i, update);
    const float *out = g->val[g->net->output];
    for (int b = 0; b < n; b++)
        for (int k = 0; k < g->classes; k++)
            g->logits[(size_t)b * g->classes + k] = out[(size_t)k * g->batch + b];
}

gn_status gn_net_graph_eval(gn_net_graph *g, const float *input, int n, float *logits,
                            gn_error *err) {
    if (!g || !input || !logits || n < 1 || n > g->batch)
        return gn_fail(err, GN_ERR_INVALID_ARG, "eval of %d images on a graph planned for %d", n,
                       g ? g->batch : 0);
    forward(g, input, n, 0, 0);
    memcpy(logits, g->logits, (size_t)n * g->classes * sizeof *logits);
    return GN_OK;
}

/* ---- backward ------------------------------------------------------------------------------ */

static void add_to(float *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

static void node_backward(gn_net_graph *g, int index) {
    const gn_net_node *d = &g->net->nodes[index];
    node_state *s = &g->ns[index];
    if (!g->touched[d->out.value]) return; /* nothing downstream depends on it */
    const size_t B = (size_t)g->batch, out_hw = (size_t)s->oh * s->ow;
    const size_t in_hw = (size_t)s->ih * s->iw;
    const size_t out_n = (size_t)d->out.channels * out_hw * B, in_n = (size_t)d->in.channels * in_hw * B;
    const float *x = at(g, g->val, d->in);
    const float *dy = at(g, g->gval, d->out);
    float *dx = grad_of(g, d->in.value);
    if (dx) dx += (size_t)d->in.c0 * in_hw * B;
    float *dz = g->dz;
    switch (d->op) {
    case GN_NET_CONV: {
        const int kept = d->out.channels;
        if (d->bn >= 0) {
            const gn_planes t = planes_of(g, kept, out_hw);
            gn_bn_backward(&g->ctx, &t, s->z, dy, 1, P(g, d->bn), P(g, d->bn + 1), s->mean,
                           s->invstd, d->act, 1, dz, G(g, d->bn), G(g, d->bn + 1));
        } else {
            gn_act_backward(d->act, s->z, dy, out_n, dz);
        }
        if (d->bias >= 0) {
            float *db = G(g, d->bias);
            for (int c = 0; c < kept; c++) {
                double sum = 0.0;
                const float *dc = dz + (size_t)c * out_hw * B;
                for (size_t i = 0; i < out_hw * B; i++) sum += dc[i];
                db[c] += (float)sum;
            }
        }
        if (is_dense(d)) {
            dense_backward(g, d, s, x, P(g, d->weight), dz, G(g, d->weight), dx);
            break;
        }
        gn_tconv c = s->c;
        c.p.out_c = kept;
        c.overwrite = 0;
        gn_tconv_backward_weight(&g->ctx, &c, x, dz, G(g, d->weight));
        if (dx) gn_tconv_backward_data(&g->ctx, &c, dz, P(g, d->weight), dx);
        break;
    }
    case GN_NET_BN: {
        const gn_planes t = planes_of(g, d->out.channels, out_hw);
        gn_bn_backward(&g->ctx, &t, x, dy, 1, P(g, d->bn), P(g, d->bn + 1), s->mean, s->invstd,
                       d->act, 1, dz, G(g, d->bn), G(g, d->bn + 1));
        if (dx) add_to(dx, dz, in_n);
        break;
    }
    case GN_NET_SE: {
        const gn_planes t = planes_of(g, d->in.channels, in_hw);
        const gn_se_weights w = {d->in.channels, d->reduced, P(g, d->weight), P(g, d->bias),
                                 P(g, d->weight2), P(g, d->bias2)};
        const gn_se_grads gr = {G(g, d->weight), G(g, d->bias), G(g, d->weight2),
                                G(g, d->bias2)};
        /* the kernel wants somewhere to put dx even for the input */
        gn_se_backward(&g->ctx, &t, x, dy, &w, &s->se, dx ? dx : dz, dx ? 0 : 1, &gr,
                       g->se_scratch);
        break;
    }
    case GN_NET_ACT:
        if (dx)
            for (size_t i = 0; i < in_n; i++) dx[i] += dy[i] * gn_act_grad(d->act, x[i]);
        break;
    case GN_NET_MAXPOOL:
        if (dx)
            for (int c = 0; c < d->out.channels; c++) {
                float *dxc = dx + (size_t)c * in_hw * B;
                for (size_t o = 0; o < out_hw; o++) {
                    const size_t k = ((size_t)c * out_hw + o) * B;
                    for (size_t b = 0; b < B; b++)
                        dxc[(size_t)s->argmax[k + b] * B + b] += dy[k + b];
                }
            }
        break;
    case GN_NET_AVGPOOL:
        if (dx)
            for (int c = 0; c < d->in.channels; c++)
                for (size_t i = 0; i < in_hw; i++)
                    for (size_t b = 0; b < B; b++)
                        dx[((size_t)c * in_hw + i) * B + b] += dy[(size_t)c * B + b] / (float)in_hw;
        break;
    case GN_NET_LINEAR: {
        const int in_f = d->in.channels, out_f = d->out.channels;
        gn_act_backward(d->act, s->z, dy, out_n, dz);
        const gn_gemm wg = {out_f, in_f, g->batch, dz, B, 1, x, B, 1, G(g, d->weight),
                            (size_t)in_f, 1};
        gn_gemm_run(&g->ctx, &wg);
        float *db = G(g, d->bias);
        for (int o = 0; o < out_f; o++) {
            double sum = 0.0;
            for (size_t b = 0; b < B; b++) sum += dz[(size_t)o * B + b];
            db[o] += (float)sum;
        }
        if (dx) {
            const gn_gemm xg = {in_f, g->batch, out_f, P(g, d->weight), 1, (size_t)in_f, dz, B, 0,
                                dx, B, 1};
            gn_gemm_run(&g->ctx, &xg);
        }
        break;
    }
    case GN_NET_DROPOUT:
        if (dx) {
            if (d->rate > 0.0f) {
                for (size_t i = 0; i < in_n; i++) dx[i] += dy[i] * s->mask[i];
            } else {
                add_to(dx, dy, in_n);
            }
        }
        break;
    case GN_NET_ADD: {
        const float *dsum = dy;
        if (d->act != GN_ACT_NONE) {
            gn_act_backward(d->act, s->pre, dy, out_n, dz);
            dsum = dz;
        }
        if (dx) add_to(dx, dsum, out_n);
        float *dx2 = grad_of(g, d->in2.value);
        if (dx2) add_to(dx2 + (size_t)d->in2.c0 * out_hw * B, dsum, out_n);
        break;
    }
    }
}

gn_status gn_net_graph_train(gn_net_graph *g, const float *input, const int *labels,
                             float smoothing, int backward, int update_running, float *grads,
                             double *loss, int *correct, float *logits, gn_error *err) {
    if (!g || !input || (!labels && (backward || loss || correct)) || (backward && !grads))
        return gn_fail(err, GN_ERR_INVALID_ARG, "NULL argument");
    if (!g->training) return gn_fail(err, GN_ERR_INVALID_ARG, "graph was planned for inference");
    if (labels)
        for (int b = 0; b < g->batch; b++)
            if (labels[b] < 0 || labels[b] >= g->classes)
                return gn_fail(err, GN_ERR_INVALID_ARG, "label %d out of range 0..%d", labels[b],
                               g->classes - 1);
    forward(g, input, g->batch, 1, update_running);
    if (logits) memcpy(logits, g->logits, (size_t)g->batch * g->classes * sizeof *logits);
    double l = 0.0;
    if (labels)
        l = gn_softmax_xent(g->logits, g->batch, g->classes, labels, smoothing,
                            backward ? g->dlogits : NULL, correct);
    if (loss) *loss = l;
    if (!backward) return GN_OK;
    g->grads = grads;
    memset(grads, 0, g->model->arch->total_floats * sizeof *grads);
    memset(g->touched, 0, (size_t)g->net->num_values);
    float *dout = grad_of(g, g->net->output);
    for (int b = 0; b < g->batch; b++)
        for (int k = 0; k < g->classes; k++)
            dout[(size_t)k * g->batch + b] = g->dlogits[(size_t)b * g->classes + k];
    for (int i = g->net->num_nodes - 1; i >= 0; i--) node_backward(g, i);
    g->steps++;
    return GN_OK;
}

gn_status gn_net_graph_value(const gn_net_graph *g, int value, const float **data, int *channels,
                             int *h, int *w) {
    if (!g || value < 0 || value >= g->net->num_values) return GN_ERR_INVALID_ARG;
    *data = g->val[value];
    *channels = g->net->values[value].channels;
    *h = g->vh[value];
    *w = g->vw[value];
    return GN_OK;
}
