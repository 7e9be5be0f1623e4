/* The training graph: forward in training mode with saved activations, and backward, over the
 * gn_arch description (the same walk as session.c, without BN folding).
 *
 * Layout: every activation is batch-innermost, [channel][pixel][image] (see gn_tlayout), so a
 * 1x1 convolution is one product over plane * batch columns (a 2x2 plane alone would give
 * 4-wide products), a channel's BN statistics are one contiguous run, every depthwise tap is a
 * contiguous vector over the batch, and a channel range of a tensor is a plain pointer
 * offset. The caller's NCHW input is transposed once per pass; parts run in isolation
 * (gn_train_part_run) convert at their edges. Kernels always run over the planned batch: an
 * eval pass of fewer images leaves the other columns stale, which no column reads.
 *
 * Every conv of the network is followed by a BN, so the unit here is a conv node: conv into a
 * dense pre-BN buffer z (all output channels, so BN statistics and running-stat updates cover
 * the channels a Ghost module later drops, as in PyTorch), then BN + activation into an output
 * view of `kept` channels. A Ghost module is two nodes writing channels [0, init) and
 * [init, out) of one buffer, so the concat is free in both directions: the cheap conv's input
 * gradient accumulates straight into the primary output's gradient.
 *
 * Memory: every buffer is allocated once at creation; a step only walks the plan. What is
 * saved for the backward pass is each node's z, the SE gates and the block outputs. The
 * post-BN outputs inside a block (Ghost outputs, conv_dw, SE and shortcut outputs) are one
 * elementwise pass from a z: they live in transient buffers shared by all blocks, and the
 * backward pass recomputes them from z (1.0x at 28x28, batch 128: 117 MiB of z and 25 MiB of
 * block outputs saved; 257 MiB in all with the scratch, against 327 MiB when the inner outputs
 * were saved too). Gradients of activations live in scratch
 * buffers shared by all blocks (two ping-pong buffers for block inputs/outputs plus four inner
 * ones, and one for a node's dz); each buffer's first writer in a step overwrites it, the
 * others accumulate, so nothing is zeroed per step but the parameter gradients.
 *
 * Threads: the graph owns a pool and per-thread kernel scratch; every kernel splits its work
 * so that results do not depend on the thread count (see grad_ops.c). */
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/threadpool.h"
#include "model/model_internal.h"
#include "net/net.h"
#include "train/train.h"

enum { kMaxNodes = 8 * GN_MAX_BLOCKS + 8, kMaxAllocs = 1024 };

typedef struct conv_node {
    const gn_conv_desc *d;
    gn_tconv c;       /* planned batch: every output channel into z */
    int kept;         /* channels passed on after BN (a Ghost module drops the rest) */
    gn_act act;
    const float *in;  /* channel-major (the stem: the caller's NCHW input) */
    float *din;       /* gradient of `in` (same layout); NULL: not needed */
    int din_first;    /* 1: this node writes din first (overwrites instead of adding) */
    float *z;         /* out_c channels before BN (kept through backward: test hooks) */
    float *mean, *var, *invstd;
    float *out, *dout; /* kept channels */
    float *frozen;     /* test hook: 0/1 ReLU pattern shaped like out (or NULL) */
} conv_node;

typedef struct block_plan {
    const gn_bottleneck_desc *d;
    int h, w, ho, wo;
    float *x, *dx;            /* input (the previous output, saved) and its gradient */
    int ghost1[2], ghost2[2]; /* node indices: primary, cheap */
    int dw, sdw, spw;         /* node indices or -1 */
    float *g1, *dg1;          /* ghost1 output (transient): mid channels */
    float *dwo, *ddwo;        /* conv_dw + bn_dw output (transient) */
    float *se_in, *se_out, *dse_in, *dse_out;
    gn_se_saved se;
    float *se_frozen; /* test hook: hidden ReLU pattern [R x B], gate linear pattern [C x B] */
    float *g2_in, *dg2_in;    /* ghost2 input (g1, dwo or se_out) and its gradient */
    float *g2;                /* ghost2 output (transient) */
    float *sdw_out, *dsdw_out;
    float *y, *dy;            /* block output (saved) and its gradient */
} block_plan;

struct gn_train_graph {
    gn_net_graph *net; /* a .net model: everything runs on this graph (net_graph.c) */
    gn_model *model;
    const gn_arch *arch;
    gn_train_options opt;
    gn_threadpool *pool;
    gn_tctx ctx;
    float dropout;
    int batch, height, width;
    int cur_batch; /* images in the current pass (eval may run fewer) */
    float *input;  /* the caller's input, batch-inner: in_chans x pixels x batch */
    int64_t step;
    float *grads;

    conv_node nodes[kMaxNodes];
    int num_nodes;
    int stem, final_conv;
    block_plan blocks[GN_MAX_BLOCKS];
    float *gio[2]; /* gradients of the stem output and of each block output, alternating */
    int fh, fw;    /* final spatial size */
    /* head, feature-major ([feature][batch]) except mask and logits ([batch][feature]) */
    float *pooled, *dpooled, *head, *dhead, *mask, *dropped, *logits_fm, *dlogits_fm;
    float *logits, *dlogits;
    float *se_scratch;
    float *dz;           /* the gradient of a node's z, shared by all nodes */
    int frozen;          /* test hook: ReLUs replaced by the recorded 0/1 pattern */
    float *head_frozen;

    void *allocs[kMaxAllocs];
    int num_allocs;
    size_t arena_bytes;
    int alloc_failed;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static float *param(const gn_train_graph *g, int tensor) {
    return g->model->data + g->arch->tensors[tensor].offset;
}

static float *grad(const gn_train_graph *g, int tensor) {
    return g->grads + g->arch->tensors[tensor].offset;
}

static void zero(float *p, size_t n) { memset(p, 0, n * sizeof *p); }

/* One zero-filled, 64-byte aligned buffer, owned by the graph. */
static float *take(gn_train_graph *g, size_t floats) {
    size_t bytes;
    if (g->alloc_failed || g->num_allocs >= kMaxAllocs ||
        !gn_mul_size(floats ? floats : 1, sizeof(float), &bytes) || bytes > ((size_t)1 << 40)) {
        g->alloc_failed = 1;
        return NULL;
    }
    bytes = (bytes + 63) / 64 * 64;
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        g->alloc_failed = 1;
        return NULL;
    }
    memset(p, 0, bytes);
    g->allocs[g->num_allocs++] = p;
    g->arena_bytes += bytes;
    return p;
}

static size_t bchw(const gn_train_graph *g, int c, int h, int w) {
    return (size_t)g->batch * c * h * w;
}

/* Batch-inner planes: c channels of h x w. */
static gn_planes bi_planes(const gn_train_graph *g, int c, int h, int w) {
    const size_t hw = (size_t)h * w, B = (size_t)g->batch;
    gn_planes t = {g->batch, c, hw, 1, hw * B, B};
    return t;
}

static gn_tlayout bi_layout(const gn_train_graph *g, int h, int w) {
    const size_t B = (size_t)g->batch;
    gn_tlayout l = {1, (size_t)h * w * B, B};
    return l;
}

static void gemm(const gn_train_graph *g, const gn_gemm *m) {
    if (g->opt.force_reference) {
        gn_gemm_ref(m);
    } else {
        gn_gemm_run(&g->ctx, m);
    }
}

/* Elementwise y = a + b (b may be NULL: y += a) over n floats, in parallel. */
typedef struct add_job {
    float *y;
    const float *a, *b;
    size_t n;
} add_job;
enum { kAddBlock = 16384 };

static void add_range(const void *arg, int lo, int hi) {
    const add_job *j = arg;
    const size_t i0 = (size_t)lo * kAddBlock;
    size_t i1 = (size_t)hi * kAddBlock;
    if (i1 > j->n) i1 = j->n;
    if (j->b) {
        for (size_t i = i0; i < i1; i++) j->y[i] = j->a[i] + j->b[i];
    } else {
        for (size_t i = i0; i < i1; i++) j->y[i] += j->a[i];
    }
}

static void add_into(const gn_train_graph *g, float *y, const float *a, const float *b,
                     size_t n) {
    const add_job j = {y, a, b, n};
    gn_tctx_for(&g->ctx, (int)((n + kAddBlock - 1) / kAddBlock), add_range, &j);
}

/* ---- planning ----------------------------------------------------------------------------- */

/* A conv + BN node reading `in` and writing `kept` channels of BN + act output into out, all
 * batch-inner at h x w in. Returns the node index, or -1. */
static int plan_node(gn_train_graph *g, const gn_conv_desc *d, int kept, gn_act act, int h,
                     int w, const float *in, float *din, float *out, float *dout) {
    if (g->num_nodes >= kMaxNodes) {
        g->alloc_failed = 1;
        return -1;
    }
    conv_node *n = &g->nodes[g->num_nodes];
    n->d = d;
    gn_conv_params *p = &n->c.p;
    gn_conv_params_dense(p, g->batch, d->in_c, h, w, d->out_c, d->kernel, d->stride, d->groups,
                         GN_ACT_NONE);
    n->c.in = bi_layout(g, h, w);
    n->c.out = bi_layout(g, p->out_h, p->out_w);
    n->kept = kept;
    n->act = act;
    n->in = in;
    n->din = din;
    n->z = take(g, bchw(g, d->out_c, p->out_h, p->out_w));
    n->mean = take(g, (size_t)d->out_c);
    n->var = take(g, (size_t)d->out_c);
    n->invstd = take(g, (size_t)d->out_c);
    n->out = out;
    n->dout = dout;
    return g->num_nodes++;
}

/* Ghost module into out (out_c channels at h x w), gradient dout alike. */
static void plan_ghost(gn_train_graph *g, const gn_ghost_desc *gh, int h, int w, const float *in,
                       float *din, float *out, float *dout, int idx[2]) {
    const gn_act act = gh->relu ? GN_ACT_RELU : GN_ACT_NONE;
    idx[0] = plan_node(g, &gh->primary, gh->init_c, act, h, w, in, din, out, dout);
    const size_t ghost_at = (size_t)gh->init_c * bchw(g, 1, h, w);
    idx[1] = plan_node(g, &gh->cheap, gh->kept_new, act, h, w, out, dout,
                       out ? out + ghost_at : NULL, dout ? dout + ghost_at : NULL);
}

/* Buffers shared by all blocks, sized for the largest: transient outputs and gradients. */
typedef struct shared_bufs {
    float *g1, *dwo, *se_out, *g2, *sdw;      /* transient forward outputs */
    float *dmid1, *dmid2, *dmid3, *dsc;       /* gradients */
} shared_bufs;

static void plan_block(gn_train_graph *g, block_plan *bp, const gn_bottleneck_desc *d, int h,
                       int w, float *x, float *dx, float *dy, const shared_bufs *sb) {
    const int B = g->batch;
    bp->d = d;
    bp->h = h;
    bp->w = w;
    bp->ho = gn_conv_out_size(h, d->kernel, d->stride);
    bp->wo = gn_conv_out_size(w, d->kernel, d->stride);
    bp->x = x;
    bp->dx = dx;
    bp->dy = dy;

    bp->g1 = sb->g1;
    bp->dg1 = sb->dmid1;
    plan_ghost(g, &d->ghost1, h, w, x, dx, bp->g1, bp->dg1, bp->ghost1);
    float *cur = bp->g1, *dcur = bp->dg1;

    bp->dw = -1;
    if (d->has_dw) {
        bp->dwo = sb->dwo;
        bp->ddwo = sb->dmid2;
        bp->dw = plan_node(g, &d->conv_dw, d->mid_c, GN_ACT_NONE, h, w, cur, dcur, bp->dwo,
                           bp->ddwo);
        cur = bp->dwo;
        dcur = bp->ddwo;
    }
    if (d->has_se) {
        const size_t c = (size_t)B * d->mid_c;
        bp->se_in = cur;
        bp->dse_in = dcur;
        bp->se_out = sb->se_out;
        bp->dse_out = sb->dmid3;
        bp->se.pooled = take(g, c);
        bp->se.hidden = take(g, (size_t)B * d->se.reduced);
        bp->se.gate_pre = take(g, c);
        bp->se.gate = take(g, c);
        bp->se.ld = (size_t)B;
        cur = bp->se_out;
        dcur = bp->dse_out;
    }
    bp->g2_in = cur;
    bp->dg2_in = dcur;
    bp->g2 = sb->g2;
    bp->y = take(g, bchw(g, d->out_c, bp->ho, bp->wo));
    plan_ghost(g, &d->ghost2, bp->ho, bp->wo, cur, dcur, bp->g2, dy, bp->ghost2);
    if (bp->ghost2[0] >= 0) g->nodes[bp->ghost2[0]].din_first = 1;
    if (bp->dw >= 0) g->nodes[bp->dw].din_first = 1;

    bp->sdw = bp->spw = -1;
    if (d->has_projection) {
        bp->sdw_out = sb->sdw;
        bp->dsdw_out = sb->dsc;
        bp->sdw = plan_node(g, &d->shortcut_dw, d->in_c, GN_ACT_NONE, h, w, x, dx, bp->sdw_out,
                            bp->dsdw_out);
        /* The projection's BN output goes straight into y; ghost2's output is added after. */
        bp->spw = plan_node(g, &d->shortcut_pw, d->out_c, GN_ACT_NONE, bp->ho, bp->wo,
                            bp->sdw_out, bp->dsdw_out, bp->y, dy);
        if (bp->sdw >= 0) g->nodes[bp->sdw].din_first = 1;
        if (bp->spw >= 0) g->nodes[bp->spw].din_first = 1;
    }
}

/* Largest per-image sizes over the network, for the shared buffers. */
typedef struct shared_sizes {
    size_t io, mid1, mid2, out, sc;
} shared_sizes;

static void grow(size_t *v, size_t n) {
    if (n > *v) *v = n;
}

static shared_sizes scratch_sizes(const gn_train_graph *g) {
    const gn_arch *a = g->arch;
    int h = gn_conv_out_size(g->height, 3, a->stem.stride);
    int w = gn_conv_out_size(g->width, 3, a->stem.stride);
    shared_sizes s = {(size_t)a->stem.out_c * h * w, 1, 1, 1, 1};
    for (int i = 0; i < a->num_blocks; i++) {
        const gn_bottleneck_desc *d = &a->blocks[i];
        const int ho = gn_conv_out_size(h, d->kernel, d->stride);
        const int wo = gn_conv_out_size(w, d->kernel, d->stride);
        const size_t o = (size_t)ho * wo;
        grow(&s.mid1, (size_t)d->mid_c * h * w);
        grow(&s.mid2, (size_t)d->mid_c * o);
        grow(&s.sc, (size_t)d->in_c * o);
        grow(&s.out, (size_t)d->out_c * o);
        grow(&s.io, (size_t)d->in_c * h * w);
        grow(&s.io, (size_t)d->out_c * o);
        h = ho;
        w = wo;
    }
    grow(&s.io, (size_t)a->final_conv.out_c * h * w);
    /* the final conv's output (transient) lives in the ghost1 buffer */
    grow(&s.mid1, (size_t)a->final_conv.out_c * h * w);
    return s;
}

static void plan_graph(gn_train_graph *g) {
    const gn_arch *a = g->arch;
    const size_t B = (size_t)g->batch;
    const shared_sizes ss = scratch_sizes(g);
    g->gio[0] = take(g, B * ss.io);
    g->gio[1] = take(g, B * ss.io);
    const shared_bufs sb = {take(g, B * ss.mid1), take(g, B * ss.mid2), take(g, B * ss.mid2),
                            take(g, B * ss.out),  take(g, B * ss.sc),   take(g, B * ss.mid1),
                            take(g, B * ss.mid2), take(g, B * ss.mid2), take(g, B * ss.sc)};

    int h = gn_conv_out_size(g->height, 3, a->stem.stride);
    int w = gn_conv_out_size(g->width, 3, a->stem.stride);
    float *x = take(g, bchw(g, a->stem.out_c, h, w));
    g->input = take(g, bchw(g, a->config.in_chans, g->height, g->width));
    g->stem = plan_node(g, &a->stem, a->stem.out_c, GN_ACT_RELU, g->height, g->width, g->input,
                        NULL, x, g->gio[0]);
    for (int i = 0; i < a->num_blocks; i++) {
        block_plan *bp = &g->blocks[i];
        plan_block(g, bp, &a->blocks[i], h, w, x, g->gio[i % 2], g->gio[(i + 1) % 2], &sb);
        x = bp->y;
        h = bp->ho;
        w = bp->wo;
    }
    const gn_conv_desc *fc = &a->final_conv;
    const int nb = a->num_blocks;
    g->final_conv = plan_node(g, fc, fc->out_c, GN_ACT_RELU, h, w, x, g->gio[nb % 2], sb.g1,
                              g->gio[(nb + 1) % 2]);
    if (g->final_conv >= 0) g->nodes[g->final_conv].din_first = 1;
    g->fh = h;
    g->fw = w;
    const size_t k = (size_t)a->config.num_classes;
    g->pooled = take(g, B * fc->out_c);
    g->dpooled = take(g, B * fc->out_c);
    g->head = take(g, B * GN_HEAD_CHANNELS);
    g->dhead = take(g, B * GN_HEAD_CHANNELS);
    g->mask = take(g, B * GN_HEAD_CHANNELS);
    g->dropped = take(g, B * GN_HEAD_CHANNELS);
    g->logits_fm = take(g, B * k);
    g->dlogits_fm = take(g, B * k);
    g->logits = take(g, B * k);
    g->dlogits = take(g, B * k);
    size_t se_max = 1;
    for (int i = 0; i < nb; i++)
        if (a->blocks[i].has_se)
            grow(&se_max, B * ((size_t)a->blocks[i].se.channels + a->blocks[i].se.reduced));
    g->se_scratch = take(g, se_max);
    size_t z_max = 1;
    for (int i = 0; i < g->num_nodes; i++) {
        const gn_conv_params *p = &g->nodes[i].c.p;
        grow(&z_max, bchw(g, p->out_c, p->out_h, p->out_w));
    }
    g->dz = take(g, z_max);
}

/* ---- conv nodes --------------------------------------------------------------------------- */

static gn_planes node_planes(const gn_train_graph *g, const conv_node *n, int channels) {
    return bi_planes(g, channels, n->c.p.out_h, n->c.p.out_w);
}

/* BN + act of the saved z into out (the forward, and its recomputation in backward). */
static void node_apply(gn_train_graph *g, conv_node *n) {
    const gn_bn_ref *bn = &n->d->bn;
    const gn_planes t = node_planes(g, n, n->kept);
    const int freeze = g->frozen && n->frozen;
    gn_bn_forward(&g->ctx, &t, n->z, param(g, bn->first), param(g, bn->first + 1), n->mean,
                  n->invstd, freeze ? GN_ACT_NONE : n->act, n->out, t.stride);
    if (freeze)
        for (size_t i = 0; i < (size_t)n->kept * t.cs; i++) n->out[i] *= n->frozen[i];
}

/* conv -> z; statistics (batch, or running in eval mode); BN + act -> out. */
static void node_forward(gn_train_graph *g, conv_node *n, int bn_train) {
    const gn_bn_ref *bn = &n->d->bn;
    if (g->opt.force_reference) {
        gn_tconv_forward_ref(&n->c, n->in, param(g, n->d->weight), n->z);
    } else {
        gn_tconv_forward(&g->ctx, &n->c, n->in, param(g, n->d->weight), n->z);
    }
    const gn_planes t = node_planes(g, n, n->d->out_c);
    if (bn_train) {
        gn_bn_batch_stats(&g->ctx, &t, n->z, n->mean, n->var);
    } else {
        memcpy(n->mean, param(g, bn->first + 2), (size_t)t.channels * sizeof(float));
        memcpy(n->var, param(g, bn->first + 3), (size_t)t.channels * sizeof(float));
    }
    gn_bn_invstd(t.channels, n->var, GN_BN_EPS, n->invstd);
    node_apply(g, n);
}

/* dout (read only) -> dz -> dW, and din += conv^T(dz). */
static void node_backward(gn_train_graph *g, conv_node *n, int bn_train) {
    const gn_bn_ref *bn = &n->d->bn;
    const gn_planes t = node_planes(g, n, n->kept);
    float *dz = g->dz;
    gn_bn_backward(&g->ctx, &t, n->z, n->dout, t.stride, param(g, bn->first),
                   param(g, bn->first + 1), n->mean, n->invstd, n->act, bn_train, dz,
                   grad(g, bn->first), grad(g, bn->first + 1));
    gn_tconv c = n->c;
    c.p.out_c = n->kept;
    c.overwrite = n->din_first;
    const float *w = param(g, n->d->weight);
    if (g->opt.force_reference) {
        if (n->din) gn_tconv_backward_data_ref(&c, dz, w, n->din);
        gn_tconv_backward_weight_ref(&c, n->in, dz, grad(g, n->d->weight));
    } else {
        if (n->din) gn_tconv_backward_data(&g->ctx, &c, dz, w, n->din);
        gn_tconv_backward_weight(&g->ctx, &c, n->in, dz, grad(g, n->d->weight));
    }
}

static void node_update_running(gn_train_graph *g, const conv_node *n) {
    const gn_bn_ref *bn = &n->d->bn;
    const size_t count = (size_t)g->cur_batch * n->c.p.out_h * n->c.p.out_w;
    gn_bn_update_running(n->d->out_c, n->mean, n->var, count, GN_BN_MOMENTUM,
                         param(g, bn->first + 2), param(g, bn->first + 3));
}

/* ---- bottlenecks -------------------------------------------------------------------------- */

static gn_se_weights se_weights(const gn_train_graph *g, const gn_se_desc *s) {
    gn_se_weights w = {s->channels, s->reduced, param(g, s->reduce_w), param(g, s->reduce_b),
                       param(g, s->expand_w), param(g, s->expand_b)};
    return w;
}

static void ghost_forward(gn_train_graph *g, const int idx[2], int bn_train) {
    node_forward(g, &g->nodes[idx[0]], bn_train);
    node_forward(g, &g->nodes[idx[1]], bn_train);
}

/* Ghost maps first: their input gradient lands in the primary maps' gradient. The cheap
 * conv's input (the primary output) is recomputed first unless the caller already did. */
static void ghost_backward(gn_train_graph *g, const int idx[2], int bn_train, int recompute) {
    if (recompute) node_apply(g, &g->nodes[idx[0]]);
    node_backward(g, &g->nodes[idx[1]], bn_train);
    node_backward(g, &g->nodes[idx[0]], bn_train);
}

/* Test hook (gn_train_freeze_relu): SE with its ReLU and hard-sigmoid replaced by their
 * recorded linear pieces; a saturated gate keeps its recorded value (0 or 1). */
static void se_forward_frozen(gn_train_graph *g, block_plan *bp) {
    const gn_bottleneck_desc *d = bp->d;
    const int C = d->se.channels, R = d->se.reduced, nb = g->batch;
    const size_t hw = (size_t)bp->ho * bp->wo, ld = bp->se.ld, cs = (size_t)g->batch * hw;
    const gn_se_weights w = se_weights(g, &d->se);
    const float *hmask = bp->se_frozen, *gmask = bp->se_frozen + (size_t)R * ld;
    float *pooled = bp->se.pooled, *hidden = bp->se.hidden, *gate = bp->se.gate;
    for (int b = 0; b < nb; b++) {
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (size_t i = 0; i < hw; i++) s += bp->se_in[c * cs + i * ld + b];
            pooled[c * ld + b] = (float)(s / hw);
        }
        for (int r = 0; r < R; r++) {
            double acc = w.reduce_b[r];
            for (int c = 0; c < C; c++) acc += (double)w.reduce_w[(size_t)r * C + c] * pooled[c * ld + b];
            hidden[r * ld + b] = (float)acc * hmask[r * ld + b];
        }
        for (int c = 0; c < C; c++) {
            if (gmask[c * ld + b] == 0.0f) continue; /* saturated: gate keeps its recorded value */
            double acc = w.expand_b[c];
            for (int r = 0; r < R; r++) acc += (double)w.expand_w[(size_t)c * R + r] * hidden[r * ld + b];
            gate[c * ld + b] = (float)(acc / 6.0 + 0.5);
        }
    }
    const gn_planes t = bi_planes(g, C, bp->ho, bp->wo);
    gn_se_apply_gate(&g->ctx, &t, bp->se_in, &bp->se, bp->se_out);
}

static void se_forward(gn_train_graph *g, block_plan *bp) {
    if (g->frozen && bp->se_frozen) {
        se_forward_frozen(g, bp);
        return;
    }
    const gn_bottleneck_desc *d = bp->d;
    const gn_planes t = bi_planes(g, d->mid_c, bp->ho, bp->wo);
    const gn_se_weights w = se_weights(g, &d->se);
    gn_se_forward_train(&g->ctx, &t, bp->se_in, &w, &bp->se, bp->se_out);
}

static void block_forward(gn_train_graph *g, block_plan *bp, int bn_train) {
    const gn_bottleneck_desc *d = bp->d;
    ghost_forward(g, bp->ghost1, bn_train);
    if (d->has_dw) node_forward(g, &g->nodes[bp->dw], bn_train);
    if (d->has_se) se_forward(g, bp);
    ghost_forward(g, bp->ghost2, bn_train);
    const size_t n = bchw(g, d->out_c, bp->ho, bp->wo);
    if (d->has_projection) {
        node_forward(g, &g->nodes[bp->sdw], bn_train);
        node_forward(g, &g->nodes[bp->spw], bn_train); /* writes y */
        add_into(g, bp->y, bp->g2, NULL, n);
    } else {
        add_into(g, bp->y, bp->g2, bp->x, n);
    }
}

static void block_update_running(gn_train_graph *g, const block_plan *bp) {
    const int idx[] = {bp->ghost1[0], bp->ghost1[1], bp->dw, bp->ghost2[0], bp->ghost2[1],
                       bp->sdw, bp->spw};
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++)
        if (idx[i] >= 0) node_update_running(g, &g->nodes[idx[i]]);
}

static void se_backward(gn_train_graph *g, block_plan *bp) {
    const gn_bottleneck_desc *d = bp->d;
    const gn_planes t = bi_planes(g, d->mid_c, bp->ho, bp->wo);
    const gn_se_weights w = se_weights(g, &d->se);
    const gn_se_grads gr = {grad(g, d->se.reduce_w), grad(g, d->se.reduce_b),
                            grad(g, d->se.expand_w), grad(g, d->se.expand_b)};
    gn_se_backward(&g->ctx, &t, bp->se_in, bp->dse_out, &w, &bp->se, bp->dse_in, 1, &gr,
                   g->se_scratch);
}

/* The block's transient outputs from the saved z's and SE gates, for the backward pass. */
static void block_recompute(gn_train_graph *g, block_plan *bp) {
    const gn_bottleneck_desc *d = bp->d;
    node_apply(g, &g->nodes[bp->ghost1[0]]);
    node_apply(g, &g->nodes[bp->ghost1[1]]);
    if (d->has_dw) node_apply(g, &g->nodes[bp->dw]);
    if (d->has_se) {
        const gn_planes t = bi_planes(g, d->mid_c, bp->ho, bp->wo);
        gn_se_apply_gate(&g->ctx, &t, bp->se_in, &bp->se, bp->se_out);
    }
    if (d->has_projection) node_apply(g, &g->nodes[bp->sdw]);
}

/* dy (the block output's gradient) -> parameter gradients and dx (overwritten). dy's first
 * ghost2 channels are modified on the way (the cheap conv's input gradient lands there).
 * Every gradient buffer's first writer overwrites it (plan_block marks them), in this order:
 * the shortcut writes dx, ghost2's primary conv its input's gradient, then SE, conv_dw;
 * ghost1 adds to dx and to its own output's gradient. */
static void block_backward(gn_train_graph *g, block_plan *bp, int bn_train) {
    const gn_bottleneck_desc *d = bp->d;
    block_recompute(g, bp);
    /* The shortcut first: it reads dy before ghost2's backward changes it. */
    if (d->has_projection) {
        node_backward(g, &g->nodes[bp->spw], bn_train);
        node_backward(g, &g->nodes[bp->sdw], bn_train);
    } else {
        memcpy(bp->dx, bp->dy, bchw(g, d->out_c, bp->ho, bp->wo) * sizeof(float));
    }
    ghost_backward(g, bp->ghost2, bn_train, 1);
    if (d->has_se) se_backward(g, bp);
    if (d->has_dw) node_backward(g, &g->nodes[bp->dw], bn_train);
    ghost_backward(g, bp->ghost1, bn_train, 0);
}

/* ---- whole network ------------------------------------------------------------------------ */

typedef struct pool_job {
    const float *x;
    float *y;
    size_t hw, cs, ld;
} pool_job;

/* y[c][b] = mean of plane (c, b) of a batch-inner x (y feature-major, rows ld apart). */
static void pool_range(const void *arg, int c0, int c1) {
    const pool_job *j = arg;
    const float inv = 1.0f / (float)j->hw;
    for (int c = c0; c < c1; c++) {
        float *y = j->y + c * j->ld;
        for (size_t b = 0; b < j->ld; b++) y[b] = 0.0f;
        for (size_t i = 0; i < j->hw; i++) {
            const float *x = j->x + c * j->cs + i * j->ld;
            for (size_t b = 0; b < j->ld; b++) y[b] += x[b];
        }
        for (size_t b = 0; b < j->ld; b++) y[b] *= inv;
    }
}

/* dx plane (c, b) = dy[c][b] / hw (overwrites). */
static void unpool_range(const void *arg, int c0, int c1) {
    const pool_job *j = arg;
    const float inv = 1.0f / (float)j->hw;
    for (int c = c0; c < c1; c++)
        for (size_t i = 0; i < j->hw; i++) {
            float *p = j->y + c * j->cs + i * j->ld;
            const float *d = j->x + c * j->ld;
            for (size_t b = 0; b < j->ld; b++) p[b] = d[b] * inv;
        }
}

static void head_forward(gn_train_graph *g, int training) {
    const gn_arch *a = g->arch;
    const gn_conv_desc *fc = &a->final_conv;
    const int nb = g->cur_batch, K = a->config.num_classes, H = GN_HEAD_CHANNELS;
    const size_t ld = (size_t)g->batch, hw = (size_t)g->fh * g->fw;
    const conv_node *fn = &g->nodes[g->final_conv];
    const pool_job pj = {fn->out, g->pooled, hw, ld * hw, ld};
    gn_tctx_for(&g->ctx, fc->out_c, pool_range, &pj);
    /* conv_head on the pooled features: head[H][nb] = relu(W pooled + b) */
    const gn_gemm hm = {H, nb, fc->out_c, param(g, a->head.weight), (size_t)fc->out_c, 1,
                        g->pooled, ld, 0, g->head, ld, 0};
    gemm(g, &hm);
    const float *hb = param(g, a->head.bias);
    for (int n = 0; n < H; n++)
        for (int b = 0; b < nb; b++) {
            float *v = g->head + n * ld + b;
            const float u = *v + hb[n];
            *v = g->frozen ? u * g->head_frozen[n * ld + b] : (u > 0.0f ? u : 0.0f);
        }
    const float *feat = g->head;
    if (training && g->dropout > 0.0f) {
        gn_rng rng;
        gn_rng_seed(&rng, g->opt.seed ^ (uint64_t)g->step * 0x9E3779B97F4A7C15ULL);
        /* the mask is drawn batch-major, [b][feature], as the stream has always been used */
        gn_dropout_mask(&rng, g->dropout, (size_t)nb * H, g->mask);
        for (int n = 0; n < H; n++)
            for (int b = 0; b < nb; b++)
                g->dropped[n * ld + b] = g->head[n * ld + b] * g->mask[(size_t)b * H + n];
        feat = g->dropped;
    }
    const gn_gemm cm = {K, nb, H, param(g, a->classifier_w), (size_t)H, 1, feat, ld, 0,
                        g->logits_fm, ld, 0};
    gemm(g, &cm);
    const float *cb = param(g, a->classifier_b);
    for (int b = 0; b < nb; b++)
        for (int k = 0; k < K; k++) g->logits[(size_t)b * K + k] = g->logits_fm[k * ld + b] + cb[k];
}

static void row_sums(const float *x, int rows, int nb, size_t ld, float *out) {
    for (int i = 0; i < rows; i++) {
        double s = 0.0;
        for (int b = 0; b < nb; b++) s += x[i * ld + b];
        out[i] += (float)s;
    }
}

static void head_backward(gn_train_graph *g) {
    const gn_arch *a = g->arch;
    const gn_conv_desc *fc = &a->final_conv;
    const int nb = g->cur_batch, K = a->config.num_classes, H = GN_HEAD_CHANNELS;
    const size_t ld = (size_t)g->batch, hw = (size_t)g->fh * g->fw;
    const int drop = g->dropout > 0.0f;
    for (int b = 0; b < nb; b++)
        for (int k = 0; k < K; k++) g->dlogits_fm[k * ld + b] = g->dlogits[(size_t)b * K + k];
    const float *feat = drop ? g->dropped : g->head;
    /* classifier: dW += dlogits feat^T, db += sum, dfeat = W^T dlogits */
    const gn_gemm cw = {K, H, nb, g->dlogits_fm, ld, 1, feat, ld, 1, grad(g, a->classifier_w),
                        (size_t)H, 1};
    gemm(g, &cw);
    row_sums(g->dlogits_fm, K, nb, ld, grad(g, a->classifier_b));
    const gn_gemm cx = {H, nb, K, param(g, a->classifier_w), 1, (size_t)H, g->dlogits_fm, ld, 0,
                        g->dhead, ld, 0};
    gemm(g, &cx);
    for (int n = 0; n < H; n++)
        for (int b = 0; b < nb; b++) {
            float *d = g->dhead + n * ld + b;
            const float v = drop ? *d * g->mask[(size_t)b * H + n] : *d;
            *d = g->head[n * ld + b] > 0.0f ? v : 0.0f; /* ReLU after conv_head */
        }
    /* conv_head: dW += dhead pooled^T, db += sum, dpooled = W^T dhead */
    const gn_gemm hw_ = {H, fc->out_c, nb, g->dhead, ld, 1, g->pooled, ld, 1,
                         grad(g, a->head.weight), (size_t)fc->out_c, 1};
    gemm(g, &hw_);
    row_sums(g->dhead, H, nb, ld, grad(g, a->head.bias));
    const gn_gemm hx = {fc->out_c, nb, H, param(g, a->head.weight), 1, (size_t)fc->out_c,
                        g->dhead, ld, 0, g->dpooled, ld, 0};
    gemm(g, &hx);
    conv_node *fn = &g->nodes[g->final_conv];
    const pool_job pj = {g->dpooled, fn->dout, hw, ld * hw, ld};
    gn_tctx_for(&g->ctx, fc->out_c, unpool_range, &pj);
}

static void forward_all(gn_train_graph *g, const float *input, int training) {
    const int bn_train = training && !g->opt.freeze_bn;
    gn_nchw_to_batch_inner(input, g->cur_batch, g->arch->config.in_chans,
                           (size_t)g->height * g->width, (size_t)g->batch, g->input);
    node_forward(g, &g->nodes[g->stem], bn_train);
    for (int i = 0; i < g->arch->num_blocks; i++) block_forward(g, &g->blocks[i], bn_train);
    node_forward(g, &g->nodes[g->final_conv], bn_train);
    head_forward(g, training);
}

static void backward_all(gn_train_graph *g) {
    const int bn_train = !g->opt.freeze_bn;
    head_backward(g);
    node_backward(g, &g->nodes[g->final_conv], bn_train);
    for (int i = g->arch->num_blocks - 1; i >= 0; i--)
        block_backward(g, &g->blocks[i], bn_train);
    node_backward(g, &g->nodes[g->stem], bn_train);
}

static void update_running_all(gn_train_graph *g) {
    node_update_running(g, &g->nodes[g->stem]);
    for (int i = 0; i < g->arch->num_blocks; i++) block_update_running(g, &g->blocks[i]);
    node_update_running(g, &g->nodes[g->final_conv]);
}

/* ---- public API --------------------------------------------------------------------------- */

gn_train_options gn_train_options_default(void) {
    gn_train_options o;
    o.label_smoothing = 0.0f;
    o.dropout = -1.0f;
    o.seed = 0;
    o.freeze_bn = 0;
    o.force_reference = 0;
    o.num_threads = 0;
    o.split_all = 0;
    return o;
}

void gn_train_graph_free(gn_train_graph *g) {
    if (!g) return;
    gn_net_graph_free(g->net);
    gn_threadpool_free(g->pool);
    for (int i = 0; i < g->num_allocs; i++) free(g->allocs[i]);
    free(g->grads);
    free(g);
}

/* PyTorch refuses BN training on a single value per channel; so do we. */
static gn_status check_bn_counts(const gn_train_graph *g, gn_error *err) {
    if (g->opt.freeze_bn) return GN_OK;
    for (int i = 0; i < g->num_nodes; i++) {
        const conv_node *n = &g->nodes[i];
        if ((size_t)g->batch * n->c.p.out_h * n->c.p.out_w < 2)
            return gn_fail(err, GN_ERR_INVALID_ARG,
                           "batch %d at %dx%d leaves one value per channel at %s: BN training "
                           "needs more",
                           g->batch, g->height, g->width, g->arch->tensors[n->d->weight].name);
    }
    return GN_OK;
}

gn_status gn_train_graph_create(gn_model *model, int batch, int height, int width,
                                const gn_train_options *options, gn_train_graph **out,
                                gn_error *err) {
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_graph_create: out is NULL");
    *out = NULL;
    if (!model) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_graph_create: model is NULL");
    if (batch < 1 || batch > 65536)
        return gn_fail(err, GN_ERR_INVALID_ARG, "batch %d out of range 1..65536", batch);
    if (height < 1 || width < 1 || height > 8192 || width > 8192)
        return gn_fail(err, GN_ERR_INVALID_ARG, "input size %dx%d out of range 1..8192", height,
                       width);
    gn_train_options opt = options ? *options : gn_train_options_default();
    if (!(opt.label_smoothing >= 0.0f && opt.label_smoothing <= 1.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG, "label smoothing %g out of range [0, 1]",
                       (double)opt.label_smoothing);
    if (!(opt.dropout < 1.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG, "dropout %g must be below 1",
                       (double)opt.dropout);
    if (opt.num_threads < 0 || opt.num_threads > 1024)
        return gn_fail(err, GN_ERR_INVALID_ARG, "thread count %d out of range 0..1024",
                       opt.num_threads);
    /* Channel-major planes put batch * plane floats in one product row (int sized). */
    if ((int64_t)batch * height * width > INT32_MAX / 4)
        return gn_fail(err, GN_ERR_INVALID_ARG, "batch %d at %dx%d is too large", batch, height,
                       width);
    gn_train_graph *g = calloc(1, sizeof *g);
    if (!g) return gn_fail(err, GN_ERR_NOMEM, "out of memory for the training graph");
    if (model->arch->net) {
        if (opt.freeze_bn || opt.force_reference) {
            free(g);
            return gn_fail(err, GN_ERR_UNSUPPORTED, "freeze_bn and force_reference are for the "
                           "built-in GhostNet only");
        }
        g->model = model;
        g->arch = model->arch;
        g->opt = opt;
        g->batch = g->cur_batch = batch;
        g->height = height;
        g->width = width;
        gn_status st = gn_net_graph_create(model, batch, height, width, 1, opt.num_threads,
                                           opt.seed, &g->net, err);
        if (st == GN_OK && !(g->grads = gn_calloc(model->arch->total_floats, sizeof(float))))
            st = gn_fail(err, GN_ERR_NOMEM, "out of memory for the gradients");
        if (st != GN_OK) {
            gn_train_graph_free(g);
            return st;
        }
        *out = g;
        return GN_OK;
    }
    g->model = model;
    g->arch = model->arch;
    g->opt = opt;
    g->dropout = opt.dropout < 0.0f ? model->arch->config.dropout : opt.dropout;
    g->batch = g->cur_batch = batch;
    g->height = height;
    g->width = width;
    const int threads = opt.num_threads > 0 ? opt.num_threads : gn_cpu_count();
    gn_status st = gn_threadpool_create(threads, &g->pool, err);
    if (st != GN_OK) {
        free(g);
        return st;
    }
    g->ctx.pool = g->pool;
    g->ctx.avx2 = gn_train_avx2_available();
    g->ctx.split_all = opt.split_all != 0;
    /* per-thread kernel scratch (packed product operands) */
    g->ctx.scratch = take(g, (size_t)threads * GN_TCTX_SCRATCH_FLOATS);
    g->grads = gn_calloc(model->arch->total_floats, sizeof(float));
    if (g->grads) plan_graph(g);
    if (!g->grads || g->alloc_failed) {
        size_t mb = g->arena_bytes >> 20;
        gn_train_graph_free(g);
        return gn_fail(err, GN_ERR_NOMEM,
                       "out of memory planning training at batch %d, %dx%d (%zu MiB so far)",
                       batch, height, width, mb);
    }
    st = check_bn_counts(g, err);
    if (st != GN_OK) {
        gn_train_graph_free(g);
        return st;
    }
    *out = g;
    return GN_OK;
}

static gn_status check_labels(const gn_train_graph *g, const int *labels, gn_error *err) {
    const int k = g->arch->config.num_classes;
    for (int b = 0; b < g->batch; b++)
        if (labels[b] < 0 || labels[b] >= k)
            return gn_fail(err, GN_ERR_INVALID_ARG, "label %d of image %d out of range 0..%d",
                           labels[b], b, k - 1);
    return GN_OK;
}

gn_status gn_train_forward_backward(gn_train_graph *g, const float *input, const int *labels,
                                    float *loss, int *correct, gn_error *err) {
    if (!g || !input || !labels)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_forward_backward: NULL argument");
    if (g->net) {
        double l = 0.0;
        gn_status st = gn_net_graph_train(g->net, input, labels, g->opt.label_smoothing, 1, 1,
                                          g->grads, &l, correct, NULL, err);
        if (loss) *loss = (float)l;
        return st;
    }
    gn_status st = check_labels(g, labels, err);
    if (st != GN_OK) return st;
    g->cur_batch = g->batch;
    zero(g->grads, g->arch->total_floats);
    forward_all(g, input, 1);
    double l = gn_softmax_xent(g->logits, g->batch, g->arch->config.num_classes, labels,
                               g->opt.label_smoothing, g->dlogits, correct);
    backward_all(g);
    if (!g->opt.freeze_bn) update_running_all(g);
    g->step++;
    if (loss) *loss = (float)l;
    return GN_OK;
}

gn_status gn_train_loss(gn_train_graph *g, const float *input, const int *labels,
                        float *logits, double *loss, int *correct, gn_error *err) {
    if (!g || !input) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_loss: NULL argument");
    if (g->net)
        return gn_net_graph_train(g->net, input, labels, g->opt.label_smoothing, 0, 0, NULL,
                                  labels ? loss : NULL, labels ? correct : NULL, logits, err);
    if (labels) {
        gn_status st = check_labels(g, labels, err);
        if (st != GN_OK) return st;
    }
    g->cur_batch = g->batch;
    forward_all(g, input, 1);
    const int k = g->arch->config.num_classes;
    if (logits) memcpy(logits, g->logits, (size_t)g->batch * k * sizeof(float));
    if (labels) {
        double l = gn_softmax_xent(g->logits, g->batch, k, labels, g->opt.label_smoothing, NULL,
                                   correct);
        if (loss) *loss = l;
    }
    return GN_OK;
}

gn_status gn_train_eval(gn_train_graph *g, const float *input, int batch, float *logits,
                        gn_error *err) {
    if (!g || !input || !logits)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_eval: NULL argument");
    if (g->net) return gn_net_graph_eval(g->net, input, batch, logits, err);
    if (batch < 1 || batch > g->batch)
        return gn_fail(err, GN_ERR_INVALID_ARG, "eval batch %d out of range 1..%d", batch,
                       g->batch);
    g->cur_batch = batch;
    forward_all(g, input, 0);
    memcpy(logits, g->logits, (size_t)batch * g->arch->config.num_classes * sizeof(float));
    g->cur_batch = g->batch;
    return GN_OK;
}

float *gn_train_grads(gn_train_graph *g) { return g ? g->grads : NULL; }
gn_model *gn_train_model(gn_train_graph *g) { return g ? g->model : NULL; }
int64_t gn_train_step_count(const gn_train_graph *g) {
    if (g && g->net) return gn_net_graph_steps(g->net);
    return g ? g->step : 0;
}

void gn_train_set_step_count(gn_train_graph *g, int64_t step) {
    if (g && step >= 0) g->step = step;
    if (g && g->net && step >= 0) gn_net_graph_set_steps(g->net, step);
}
size_t gn_train_arena_bytes(const gn_train_graph *g) {
    if (g && g->net) return gn_net_graph_bytes(g->net);
    return g ? g->arena_bytes : 0;
}

/* ---- test hooks --------------------------------------------------------------------------- */

static float *relu_pattern(gn_train_graph *g, const float *out, size_t n, float *mask) {
    if (!mask) mask = take(g, n);
    if (!mask) return NULL;
    for (size_t i = 0; i < n; i++) mask[i] = out[i] > 0.0f ? 1.0f : 0.0f;
    return mask;
}

gn_status gn_train_freeze_relu(gn_train_graph *g, int on, gn_error *err) {
    if (!g) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_freeze_relu: NULL graph");
    if (g->net) return gn_fail(err, GN_ERR_UNSUPPORTED, "freeze_relu: built-in GhostNet only");
    g->frozen = 0;
    if (!on) return GN_OK;
    g->cur_batch = g->batch;
    for (int i = 0; i < g->num_nodes; i++) {
        conv_node *n = &g->nodes[i];
        if (n->act != GN_ACT_RELU) continue;
        /* outputs are transient: recompute this node's from its saved z */
        node_apply(g, n);
        n->frozen = relu_pattern(g, n->out, bchw(g, n->kept, n->c.p.out_h, n->c.p.out_w),
                                 n->frozen);
    }
    g->head_frozen =
        relu_pattern(g, g->head, (size_t)g->batch * GN_HEAD_CHANNELS, g->head_frozen);
    for (int i = 0; i < g->arch->num_blocks; i++) {
        block_plan *bp = &g->blocks[i];
        if (!bp->d->has_se) continue;
        const size_t nr = (size_t)g->batch * bp->d->se.reduced;
        const size_t nc = (size_t)g->batch * bp->d->se.channels;
        if (!bp->se_frozen) bp->se_frozen = take(g, nr + nc);
        if (!bp->se_frozen) break;
        for (size_t j = 0; j < nr; j++) bp->se_frozen[j] = bp->se.hidden[j] > 0.0f;
        for (size_t j = 0; j < nc; j++)
            bp->se_frozen[nr + j] = bp->se.gate_pre[j] > -3.0f && bp->se.gate_pre[j] < 3.0f;
    }
    if (g->alloc_failed) return gn_fail(err, GN_ERR_NOMEM, "out of memory for ReLU patterns");
    g->frozen = 1;
    return GN_OK;
}

/* ---- parts in isolation (gradient checks) ------------------------------------------------- */

gn_status gn_train_part_shape(const gn_train_graph *g, int block, gn_train_part part,
                              gn_part_shape *s, gn_error *err) {
    if (!g || !s) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_part_shape: NULL argument");
    if (g->net) return gn_fail(err, GN_ERR_UNSUPPORTED, "parts: built-in GhostNet only");
    if (block < 0 || block >= g->arch->num_blocks)
        return gn_fail(err, GN_ERR_INVALID_ARG, "block %d out of range", block);
    const block_plan *bp = &g->blocks[block];
    const gn_bottleneck_desc *d = bp->d;
    switch (part) {
    case GN_PART_BLOCK: *s = (gn_part_shape){d->in_c, bp->h, bp->w, d->out_c, bp->ho, bp->wo}; break;
    case GN_PART_GHOST1: *s = (gn_part_shape){d->in_c, bp->h, bp->w, d->mid_c, bp->h, bp->w}; break;
    case GN_PART_GHOST2:
        *s = (gn_part_shape){d->mid_c, bp->ho, bp->wo, d->out_c, bp->ho, bp->wo};
        break;
    default: return gn_fail(err, GN_ERR_INVALID_ARG, "unknown part %d", (int)part);
    }
    return GN_OK;
}

gn_status gn_train_part_run(gn_train_graph *g, int block, gn_train_part part, const float *x,
                            float *y, const float *dy, float *dx, gn_error *err) {
    gn_part_shape s;
    gn_status st = gn_train_part_shape(g, block, part, &s, err);
    if (st != GN_OK) return st;
    if (!x || !y || (dy && !dx))
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_train_part_run: NULL argument");
    block_plan *bp = &g->blocks[block];
    g->cur_batch = g->batch;
    const int B = g->batch;
    const size_t in_hw = (size_t)s.in_h * s.in_w, out_hw = (size_t)s.out_h * s.out_w;
    /* Where the part reads its input, writes its output, and their gradients. */
    float *xin = part == GN_PART_GHOST2 ? bp->g2_in : bp->x;
    float *dxin = part == GN_PART_GHOST2 ? bp->dg2_in : bp->dx;
    const float *yout = part == GN_PART_BLOCK ? bp->y : part == GN_PART_GHOST1 ? bp->g1 : bp->g2;
    float *dyout = part == GN_PART_GHOST1 ? bp->dg1 : bp->dy;
    gn_nchw_to_batch_inner(x, B, s.in_c, in_hw, (size_t)B, xin);
    if (part == GN_PART_BLOCK) {
        block_forward(g, bp, 1);
    } else {
        ghost_forward(g, part == GN_PART_GHOST1 ? bp->ghost1 : bp->ghost2, 1);
    }
    gn_batch_inner_to_nchw(yout, B, s.out_c, out_hw, (size_t)B, y);
    if (!dy) return GN_OK;
    gn_nchw_to_batch_inner(dy, B, s.out_c, out_hw, (size_t)B, dyout);
    if (part == GN_PART_BLOCK) {
        block_backward(g, bp, 1);
    } else {
        zero(dxin, (size_t)B * s.in_c * in_hw);
        ghost_backward(g, part == GN_PART_GHOST1 ? bp->ghost1 : bp->ghost2, 1, 1);
    }
    gn_batch_inner_to_nchw(dxin, B, s.in_c, in_hw, (size_t)B, dx);
    return GN_OK;
}
