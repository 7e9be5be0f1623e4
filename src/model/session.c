/* Inference sessions: the network compiled into a flat list of fused ops over one arena.
 *
 * Planning runs the same emitter twice: a counting pass sizes the op list, the weight block
 * and every arena slot; the second pass fills them. gn_session_run then only walks the op
 * list: no allocation, no shape logic.
 *
 * Two plans share this emitter:
 *   reference (options.force_reference): the plain kernels of ops_ref.c, NCHW, one thread;
 *     the oracle the fast plan is tested against.
 *   fast: BN folded and weights packed into GEMM panels; kernels from a table picked once
 *     from the CPU (AVX2+FMA, NEON or portable). Layouts: NCHW for one image; a batch is
 *     channel-major (each channel holds B planes back to back) or, when B % 8 == 0,
 *     batch-innermost ([C][H][W][B]): either way a 1x1 conv is one GEMM over every pixel of
 *     every image, and batch-innermost vectorises depthwise convs over images. Fusions:
 *     activation and bias in every kernel, the Ghost concat in place, the identity shortcut
 *     added by the second Ghost module's cheap op, squeeze-excite pooling done by the
 *     depthwise conv that produces its input and its gate applied by the expand FC.
 *     Threads: a session-owned pool; each op is split into tasks, or, when a large batch runs
 *     in several cache-sized groups, each thread takes whole groups in its own arena copy. */
#define _DEFAULT_SOURCE /* madvise */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/common.h"
#include "core/threadpool.h"
#include "model/model_internal.h"
#include "model/session_internal.h"
#include "net/net.h"
#include "ops/fastops.h"
#include "ops/ops.h"

enum { kMaxSlots = 64, kMaxTaps = 24, kSlotUserInput = -1, kSlotUserOutput = -2, kSlotNone = -3 };
enum { kMaxThreads = 256 };

typedef enum op_kind {
    /* reference plan */
    OP_CONV,
    OP_SQUEEZE_EXCITE,
    OP_ADD,
    OP_AVGPOOL,
    OP_LINEAR,
    /* fast plan */
    OP_FCONV,
    OP_FLINEAR,
    OP_FPOOL,
    OP_FTRANSPOSE
} op_kind;

/* A place in memory: an arena slot (or the caller's input/output) plus a float offset. */
typedef struct view {
    int slot;
    size_t offset;
} view;

static const view kNoView = {kSlotNone, 0};

typedef struct exec_op {
    op_kind kind;
    view in, out;
    gn_conv_params conv;   /* reference ops: batch, channel and plane sizes */
    size_t weight, bias;   /* offsets into the weight block; SIZE_MAX for none */
    size_t se_weights[4];  /* OP_SQUEEZE_EXCITE: reduce w, b, expand w, b */
    int se_reduced;
    view scratch;
    /* fast ops: descriptors (weight pointers filled in the second pass) and extra views */
    gn_fconv fc;
    gn_flinear fl;
    gn_fpool fp;
    gn_ftranspose ft;
    view res, sums, target;
    int ntasks;
} exec_op;

typedef struct tap {
    char name[24];
    view where;
    int channels, height, width;
} tap;

struct gn_session {
    gn_net_graph *net; /* a .net model: its eval graph (borrows the model), nothing below */
    const gn_arch *arch; /* borrowed layout facts only; weights are copied and folded */
    gn_config config;
    int batch, height, width; /* batch: images per pass (the planned group) */
    int total_batch, groups;  /* a large batch runs in groups of `batch` (cache-sized) */
    gn_session_options options;
    int fast;             /* fast plan (else reference) */
    int threads;          /* workers including the caller */
    int split_threads;    /* threads an op's work is split for (1 when groups run in parallel) */
    int group_parallel;   /* each thread runs whole groups in its own arena copy: no barriers */
    size_t arena_stride;  /* floats between the threads' arena copies (group_parallel) */
    gn_kernels kt;        /* chosen once, at creation */
    gn_threadpool *pool;  /* NULL with one thread */
    exec_op *ops;
    int num_ops;
    float *weights;
    size_t weights_floats;
    float *arena;
    size_t slot_floats[kMaxSlots];
    size_t slot_base[kMaxSlots];
    int num_slots;
    size_t arena_floats;
    int scratch_slot;     /* per-thread scratch: threads x scratch_stride floats */
    size_t scratch_stride;
    tap taps[kMaxTaps];
    int num_taps;
    gn_arch arch_copy;
};

/* Big blocks (arena, weights) are 2 MiB aligned and, on Linux, asked for transparent huge
 * pages: a batch's channel planes lie megabytes apart and a GEMM walks all of them, so 4 KiB
 * pages would cost a TLB miss per row. Free with free(). */
static void *alloc_big(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
    const size_t rounded = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, rounded);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (p) madvise(p, rounded, MADV_HUGEPAGE); /* a hint: failure is harmless */
#endif
    return p;
}

/* ---- planning --------------------------------------------------------------------------- */

typedef struct planner {
    gn_session *s;
    const gn_model *model;
    int counting; /* first pass: sizes only */
    int ops_used;
    size_t weights_used;
    int overflow;
    int cm;          /* fast plan, channel-major batch layout */
    int bv;          /* fast plan, batch-innermost layout (batch % 8 == 0) */
    int lin_packed;  /* fast plan, linear layers as GEMMs over the batch (feature-major) */
    size_t tmp_floats, scratch_floats;
    float *tmp;      /* second pass: folding buffer of tmp_floats */
    exec_op sink;    /* counting pass: ops are written here and discarded */
} planner;

/* A tensor in the arena: where channel 0 of image 0 is, and the channel / image strides. */
typedef struct tens {
    view v;
    size_t cs, bs;
} tens;

static tens make_tens(const planner *pl, view v, int channels, size_t plane) {
    tens t;
    t.v = v;
    t.cs = pl->cm || pl->bv ? (size_t)pl->s->batch * plane : plane;
    t.bs = pl->bv ? 1 : pl->cm ? plane : (size_t)channels * plane;
    return t;
}

static tens channel_view(tens t, int c0) {
    t.v.offset += (size_t)c0 * t.cs;
    return t;
}

static int new_slot(planner *pl, size_t floats) {
    gn_session *s = pl->s;
    if (s->num_slots >= kMaxSlots) {
        pl->overflow = 1;
        return 0;
    }
    s->slot_floats[s->num_slots] = floats;
    return s->num_slots++;
}

static void need_slot(planner *pl, int slot, size_t floats) {
    if (pl->s->slot_floats[slot] < floats) pl->s->slot_floats[slot] = floats;
}

static exec_op *push_op(planner *pl, op_kind kind) {
    int i = pl->ops_used++;
    exec_op *op = pl->counting ? &pl->sink : &pl->s->ops[i];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->weight = op->bias = SIZE_MAX;
    op->res = op->sums = op->target = kNoView;
    op->ntasks = 1;
    return op;
}

static size_t reserve_weights(planner *pl, size_t floats) {
    size_t at = pl->weights_used;
    pl->weights_used += (floats + 15) / 16 * 16; /* 64-byte aligned blocks */
    return at;
}

static void need_scratch(planner *pl, size_t floats) {
    if (pl->scratch_floats < floats) pl->scratch_floats = floats;
}

static void fold_into(const gn_model *m, const gn_conv_desc *c, int out_c, float *dw, float *db) {
    gn_conv_fold_bn(m->arch, m->data, c, out_c, dw, db);
}

static void fold_conv(planner *pl, const gn_conv_desc *c, int out_c, exec_op *op) {
    const size_t per_out = (size_t)(c->in_c / c->groups) * c->kernel * c->kernel;
    op->weight = reserve_weights(pl, per_out * out_c);
    op->bias = reserve_weights(pl, (size_t)out_c);
    if (pl->counting) return;
    fold_into(pl->model, c, out_c, pl->s->weights + op->weight, pl->s->weights + op->bias);
}

/* Folds, then packs into GEMM panels (the folding goes through pl->tmp). */
static void fold_pack(planner *pl, const gn_conv_desc *c, int out_c, exec_op *op,
                      const float **w, const float **b) {
    const size_t k = (size_t)(c->in_c / c->groups) * c->kernel * c->kernel;
    const size_t need = k * out_c + out_c;
    if (pl->tmp_floats < need) pl->tmp_floats = need;
    op->weight = reserve_weights(pl, gn_pack_gemm_floats(out_c, (int)k));
    if (pl->counting) return;
    fold_into(pl->model, c, out_c, pl->tmp, pl->tmp + k * out_c);
    *w = pl->s->weights + op->weight;
    *b = gn_pack_gemm(pl->tmp, pl->tmp + k * out_c, out_c, (int)k, 1.0f, pl->s->weights + op->weight);
}

/* ---- reference plan --------------------------------------------------------------------- */

/* Emits one conv (+ folded BN + activation) from `in` (in_c channels of a tensor whose images
 * hold in_stride floats) into `out`. Returns the op so callers can adjust it. */
static exec_op *emit_conv(planner *pl, const gn_conv_desc *c, int out_c, view in,
                          size_t in_stride, int h, int w, view out, size_t out_stride,
                          gn_act act) {
    exec_op *op = push_op(pl, OP_CONV);
    gn_conv_params_dense(&op->conv, pl->s->batch, c->in_c, h, w, c->out_c, c->kernel, c->stride,
                         c->groups, act);
    op->conv.out_c = out_c; /* out_per_group stays that of the full conv */
    op->conv.in_image_stride = in_stride;
    op->conv.out_image_stride = out_stride;
    op->in = in;
    op->out = out;
    fold_conv(pl, c, out_c, op);
    return op;
}

/* Ghost module: primary maps into channels [0, init), ghost maps into [init, out) of the same
 * buffer, so the concat and the [:, :out] slice cost nothing. */
static void emit_ghost(planner *pl, const gn_ghost_desc *g, view in, size_t in_stride, int h,
                       int w, view out) {
    const size_t plane = (size_t)h * w, out_stride = (size_t)g->out_c * plane;
    const gn_act act = g->relu ? GN_ACT_RELU : GN_ACT_NONE;
    emit_conv(pl, &g->primary, g->init_c, in, in_stride, h, w, out, out_stride, act);
    if (g->kept_new > 0) {
        view ghosts = {out.slot, out.offset + (size_t)g->init_c * plane};
        emit_conv(pl, &g->cheap, g->kept_new, out, out_stride, h, w, ghosts, out_stride, act);
    }
}

static void add_tap(planner *pl, const char *name, view where, int c, int h, int w) {
    gn_session *s = pl->s;
    if (pl->counting || s->num_taps >= kMaxTaps) return;
    tap *t = &s->taps[s->num_taps++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->where = where;
    t->channels = c;
    t->height = h;
    t->width = w;
}

typedef struct slots {
    int io[2], mid, dw, shortcut, se, pooled, head, hidden;
} slots;

static void emit_bottleneck_ref(planner *pl, const slots *sl, const gn_bottleneck_desc *blk,
                                view x, int h, int w, view y) {
    const size_t batch = (size_t)pl->s->batch;
    const size_t plane = (size_t)h * w;
    const int ho = gn_conv_out_size(h, blk->kernel, blk->stride);
    const int wo = gn_conv_out_size(w, blk->kernel, blk->stride);
    const size_t oplane = (size_t)ho * wo;
    const size_t x_stride = (size_t)blk->in_c * plane;

    view mid = {sl->mid, 0};
    need_slot(pl, sl->mid, batch * blk->mid_c * plane);
    emit_ghost(pl, &blk->ghost1, x, x_stride, h, w, mid);

    view cur = mid;
    if (blk->has_dw) {
        view dw = {sl->dw, 0};
        need_slot(pl, sl->dw, batch * blk->mid_c * oplane);
        emit_conv(pl, &blk->conv_dw, blk->mid_c, mid, blk->mid_c * plane, h, w, dw,
                  blk->mid_c * oplane, GN_ACT_NONE);
        cur = dw;
    }
    if (blk->has_se) {
        exec_op *op = push_op(pl, OP_SQUEEZE_EXCITE);
        gn_conv_params_dense(&op->conv, pl->s->batch, blk->mid_c, ho, wo, blk->mid_c, 1, 1, 1,
                             GN_ACT_NONE);
        op->in = op->out = cur;
        op->se_reduced = blk->se.reduced;
        const int idx[4] = {blk->se.reduce_w, blk->se.reduce_b, blk->se.expand_w,
                            blk->se.expand_b};
        for (int i = 0; i < 4; i++) {
            const gn_tensor_desc *t = &pl->s->arch->tensors[idx[i]];
            op->se_weights[i] = reserve_weights(pl, t->numel);
            if (!pl->counting)
                memcpy(pl->s->weights + op->se_weights[i], gn_model_data(pl->model, idx[i]),
                       t->numel * sizeof(float));
        }
        op->scratch = (view){sl->se, 0};
        need_slot(pl, sl->se, (size_t)blk->mid_c + blk->se.reduced);
    }
    emit_ghost(pl, &blk->ghost2, cur, blk->mid_c * oplane, ho, wo, y);

    const size_t y_stride = (size_t)blk->out_c * oplane;
    if (blk->has_projection) {
        view sc = {sl->shortcut, 0};
        need_slot(pl, sl->shortcut, batch * blk->in_c * oplane);
        emit_conv(pl, &blk->shortcut_dw, blk->in_c, x, x_stride, h, w, sc, blk->in_c * oplane,
                  GN_ACT_NONE);
        exec_op *pw = emit_conv(pl, &blk->shortcut_pw, blk->out_c, sc, blk->in_c * oplane, ho,
                                wo, y, y_stride, GN_ACT_NONE);
        pw->conv.accumulate = 1; /* the residual add, fused */
    } else {
        exec_op *op = push_op(pl, OP_ADD);
        gn_conv_params_dense(&op->conv, pl->s->batch, blk->out_c, ho, wo, blk->out_c, 1, 1, 1,
                             GN_ACT_NONE);
        op->conv.in_image_stride = x_stride;
        op->conv.out_image_stride = y_stride;
        op->in = x;
        op->out = y;
    }
}

/* ---- fast plan -------------------------------------------------------------------------- */

/* One conv as a fast op: GEMM (1x1), im2col + GEMM (other dense), or depthwise. */
static exec_op *emit_fconv(planner *pl, const gn_conv_desc *c, int out_c, tens in, int h, int w,
                           tens out, gn_act act) {
    exec_op *op = push_op(pl, OP_FCONV);
    gn_fconv *f = &op->fc;
    f->bv = pl->bv;
    f->batch = pl->s->batch;
    f->in_c = c->in_c;
    f->in_h = h;
    f->in_w = w;
    f->out_c = out_c;
    f->kernel = c->kernel;
    f->stride = c->stride;
    f->pad = c->kernel / 2;
    f->out_h = gn_conv_out_size(h, c->kernel, c->stride);
    f->out_w = gn_conv_out_size(w, c->kernel, c->stride);
    f->in_cs = in.cs;
    f->in_bs = in.bs;
    f->out_cs = out.cs;
    f->out_bs = out.bs;
    f->act = act;
    f->sum_out_c = f->sum_src_c = -1;
    op->in = in.v;
    op->out = out.v;
    if (c->groups == 1) {
        f->kind = (c->kernel == 1 && c->stride == 1) ? GN_FCONV_GEMM : GN_FCONV_IM2COL;
        fold_pack(pl, c, out_c, op, &f->weight, &f->bias);
    } else {
        /* every grouped conv of the network is depthwise (one input channel per group) */
        f->kind = GN_FCONV_DW;
        f->in_c = c->groups;
        f->mult = c->out_c / c->groups;
        fold_conv(pl, c, out_c, op);
        if (!pl->counting) {
            f->weight = pl->s->weights + op->weight;
            f->bias = pl->s->weights + op->bias;
        }
    }
    return op;
}

/* Finishes a fast conv once its fusions are set: task split and scratch size. */
static void plan_fconv(planner *pl, exec_op *op) {
    gn_fconv_plan(&op->fc, &pl->s->kt, pl->s->split_threads);
    op->ntasks = op->fc.ntasks;
    need_scratch(pl, gn_fconv_scratch_floats(&op->fc));
}

/* Pooled sums for squeeze-excite: [C][B] when linear layers run over the batch, else [B][C]. */
typedef struct sums_dest {
    view v;
    size_t cs, bs;
} sums_dest;

static sums_dest sums_layout(const planner *pl, view v, int channels) {
    sums_dest d = {v, pl->lin_packed ? (size_t)pl->s->batch : 1,
                   pl->lin_packed ? 1 : (size_t)channels};
    return d;
}

/* Ghost module, fast: primary GEMM into out[0, init), cheap depthwise into out[init, out).
 * Optional fusions on the cheap op: squeeze-excite sums of the whole output (`sums`), and the
 * identity shortcut `res` (a tensor like out). Returns 1 when the sums were produced. */
static int emit_fghost(planner *pl, const gn_ghost_desc *g, tens in, int h, int w, tens out,
                       const sums_dest *sums, const tens *res) {
    const gn_act act = g->relu ? GN_ACT_RELU : GN_ACT_NONE;
    exec_op *p = emit_fconv(pl, &g->primary, g->init_c, in, h, w, out, act);
    plan_fconv(pl, p);
    if (g->kept_new == 0 && !sums && !res) return 0;
    /* the cheap op works at the primary's output size (the same in GhostNet: 1x1, stride 1) */
    const int ph = gn_conv_out_size(h, g->primary.kernel, g->primary.stride);
    const int pw = gn_conv_out_size(w, g->primary.kernel, g->primary.stride);
    exec_op *c = emit_fconv(pl, &g->cheap, g->kept_new, out, ph, pw, channel_view(out, g->init_c), act);
    if (sums) {
        c->sums = sums->v;
        c->fc.sum_src_c = 0;
        c->fc.sum_out_c = g->init_c;
        c->fc.sum_cs = sums->cs;
        c->fc.sum_bs = sums->bs;
    }
    if (res) {
        c->res = res->v;
        c->fc.res_mode = 1;
        c->fc.res_src_c = 0;
        c->fc.res_out_c = g->init_c;
        c->fc.res_cs = res->cs;
        c->fc.res_bs = res->bs;
    }
    plan_fconv(pl, c);
    return sums != NULL;
}

/* A linear layer as a fast op. x and y layouts follow pl->lin_packed unless y_fs/y_bs given. */
static exec_op *emit_flinear(planner *pl, int in_f, int out_f, const float *w, const float *b,
                             float scale, gn_act act, view x, view y) {
    exec_op *op = push_op(pl, OP_FLINEAR);
    gn_flinear *l = &op->fl;
    l->batch = pl->s->batch;
    l->in_f = in_f;
    l->out_f = out_f;
    l->act = act;
    l->packed = pl->lin_packed;
    l->y_fs = l->packed ? (size_t)l->batch : 1;
    l->y_bs = l->packed ? 1 : (size_t)out_f;
    op->in = x;
    op->out = y;
    if (l->packed) {
        op->weight = reserve_weights(pl, gn_pack_gemm_floats(out_f, in_f));
        if (!pl->counting) {
            l->weight = pl->s->weights + op->weight;
            l->bias = gn_pack_gemm(w, b, out_f, in_f, scale, pl->s->weights + op->weight);
        }
    } else {
        op->weight = reserve_weights(pl, (size_t)out_f * in_f);
        op->bias = reserve_weights(pl, (size_t)out_f);
        if (!pl->counting) {
            float *dw = pl->s->weights + op->weight, *db = pl->s->weights + op->bias;
            for (size_t i = 0; i < (size_t)out_f * in_f; i++) dw[i] = w[i] * scale;
            for (int i = 0; i < out_f; i++) db[i] = b ? b[i] : 0.0f;
            l->weight = dw;
            l->bias = db;
        }
    }
    gn_flinear_plan(l, pl->s->split_threads);
    op->ntasks = l->ntasks;
    need_scratch(pl, gn_flinear_scratch_floats(l));
    return op;
}

static exec_op *emit_fpool(planner *pl, tens x, int channels, int hw, const sums_dest *y) {
    exec_op *op = push_op(pl, OP_FPOOL);
    gn_fpool *p = &op->fp;
    p->bv = pl->bv;
    p->batch = pl->s->batch;
    p->channels = channels;
    p->hw = hw;
    p->x_cs = x.cs;
    p->x_bs = x.bs;
    p->y_cs = y->cs;
    p->y_bs = y->bs;
    gn_fpool_plan(p, pl->s->split_threads);
    op->ntasks = p->ntasks;
    op->in = x.v;
    op->out = y->v;
    return op;
}

static const float *model_tensor(planner *pl, int index) {
    return pl->counting ? NULL : gn_model_data(pl->model, index);
}

static void emit_bottleneck_fast(planner *pl, const slots *sl, const gn_bottleneck_desc *blk,
                                 tens x, int h, int w, tens y) {
    const size_t batch = (size_t)pl->s->batch;
    const size_t plane = (size_t)h * w;
    const int ho = gn_conv_out_size(h, blk->kernel, blk->stride);
    const int wo = gn_conv_out_size(w, blk->kernel, blk->stride);
    const size_t oplane = (size_t)ho * wo;

    need_slot(pl, sl->mid, batch * blk->mid_c * plane);
    tens mid = make_tens(pl, (view){sl->mid, 0}, blk->mid_c, plane);
    sums_dest sums = sums_layout(pl, (view){sl->pooled, 0}, blk->mid_c);
    if (blk->has_se) need_slot(pl, sl->pooled, batch * blk->mid_c);
    int pooled = emit_fghost(pl, &blk->ghost1, x, h, w, mid,
                             blk->has_se && !blk->has_dw ? &sums : NULL, NULL);
    tens cur = mid;
    if (blk->has_dw) {
        need_slot(pl, sl->dw, batch * blk->mid_c * oplane);
        tens dw = make_tens(pl, (view){sl->dw, 0}, blk->mid_c, oplane);
        exec_op *op = emit_fconv(pl, &blk->conv_dw, blk->mid_c, mid, h, w, dw, GN_ACT_NONE);
        if (blk->has_se) { /* pool while producing */
            op->sums = sums.v;
            op->fc.sum_out_c = 0;
            op->fc.sum_cs = sums.cs;
            op->fc.sum_bs = sums.bs;
            pooled = 1;
        }
        plan_fconv(pl, op);
        cur = dw;
    }
    if (blk->has_se) {
        if (!pooled) emit_fpool(pl, cur, blk->mid_c, (int)oplane, &sums);
        const gn_se_desc *se = &blk->se;
        need_slot(pl, sl->hidden, batch * se->reduced);
        /* reduce FC reads plane sums: the 1/(h*w) of the mean is folded into its weights */
        emit_flinear(pl, se->channels, se->reduced, model_tensor(pl, se->reduce_w),
                     model_tensor(pl, se->reduce_b), 1.0f / (float)oplane, GN_ACT_RELU,
                     sums.v, (view){sl->hidden, 0});
        exec_op *ex = emit_flinear(pl, se->reduced, se->channels, model_tensor(pl, se->expand_w),
                                   model_tensor(pl, se->expand_b), 1.0f, GN_ACT_HSIGMOID,
                                   (view){sl->hidden, 0}, kNoView);
        ex->fl.gate = 1; /* the gate multiplies cur's planes in place */
        ex->fl.bv = pl->bv;
        ex->fl.hw = (int)oplane;
        ex->fl.t_cs = cur.cs;
        ex->fl.t_bs = cur.bs;
        ex->target = cur.v;
    }
    const int identity = !blk->has_projection;
    emit_fghost(pl, &blk->ghost2, cur, ho, wo, y, NULL, identity ? &x : NULL);
    if (blk->has_projection) {
        need_slot(pl, sl->shortcut, batch * blk->in_c * oplane);
        tens sc = make_tens(pl, (view){sl->shortcut, 0}, blk->in_c, oplane);
        plan_fconv(pl, emit_fconv(pl, &blk->shortcut_dw, blk->in_c, x, h, w, sc, GN_ACT_NONE));
        exec_op *pw = emit_fconv(pl, &blk->shortcut_pw, blk->out_c, sc, ho, wo, y, GN_ACT_NONE);
        pw->fc.accumulate = 1; /* the residual add, fused */
        plan_fconv(pl, pw);
    }
}

/* ---- the network ------------------------------------------------------------------------ */

static void plan_network(planner *pl) {
    gn_session *s = pl->s;
    const gn_arch *a = s->arch;
    const size_t batch = (size_t)s->batch;
    const int fast = s->fast;
    s->num_slots = 0;
    s->num_taps = 0;
    pl->scratch_floats = 0;
    slots sl;
    sl.io[0] = new_slot(pl, 0);
    sl.io[1] = new_slot(pl, 0);
    sl.mid = new_slot(pl, 0);
    sl.dw = new_slot(pl, 0);
    sl.shortcut = new_slot(pl, 0);
    sl.se = new_slot(pl, 0);
    sl.pooled = new_slot(pl, 0);
    sl.head = new_slot(pl, 0);
    sl.hidden = new_slot(pl, 0);
    const int xin_slot = new_slot(pl, 0);
    s->scratch_slot = new_slot(pl, 0);
    int ping = 0;
    const int keep = s->options.keep_taps;

    /* stem: conv_stem + bn1 + ReLU, from the caller's NCHW input */
    int h = gn_conv_out_size(s->height, 3, a->stem.stride);
    int w = gn_conv_out_size(s->width, 3, a->stem.stride);
    int c = a->stem.out_c;
    size_t floats = batch * c * h * w;
    view x = {keep ? new_slot(pl, floats) : sl.io[ping], 0};
    if (!keep) {
        need_slot(pl, x.slot, floats);
        ping ^= 1;
    }
    const size_t in_plane = (size_t)s->height * s->width;
    view input = {kSlotUserInput, 0};
    if (fast) {
        tens in = {input, in_plane, (size_t)a->config.in_chans * in_plane};
        if (pl->bv) { /* the caller's NCHW batch, transposed to batch-innermost */
            const size_t n = batch * a->config.in_chans * in_plane;
            need_slot(pl, xin_slot, n);
            exec_op *op = push_op(pl, OP_FTRANSPOSE);
            op->ft.rows = s->batch;
            op->ft.cols = (int)(n / batch);
            op->ft.ldx = n / batch;
            op->ft.ldy = batch;
            gn_ftranspose_plan(&op->ft, s->split_threads);
            op->ntasks = op->ft.ntasks;
            op->in = input;
            op->out = (view){xin_slot, 0};
            in = make_tens(pl, op->out, a->config.in_chans, in_plane);
        }
        plan_fconv(pl, emit_fconv(pl, &a->stem, c, in, s->height, s->width,
                                  make_tens(pl, x, c, (size_t)h * w), GN_ACT_RELU));
    } else {
        emit_conv(pl, &a->stem, c, input, (size_t)a->config.in_chans * in_plane, s->height,
                  s->width, x, (size_t)c * h * w, GN_ACT_RELU);
    }
    add_tap(pl, "conv_stem", x, c, h, w);

    for (int i = 0; i < a->num_blocks; i++) {
        const gn_bottleneck_desc *blk = &a->blocks[i];
        int ho = gn_conv_out_size(h, blk->kernel, blk->stride);
        int wo = gn_conv_out_size(w, blk->kernel, blk->stride);
        floats = batch * blk->out_c * ho * wo;
        view y = {keep ? new_slot(pl, floats) : sl.io[ping], 0};
        if (!keep) {
            need_slot(pl, y.slot, floats);
            ping ^= 1;
        }
        if (fast)
            emit_bottleneck_fast(pl, &sl, blk, make_tens(pl, x, c, (size_t)h * w), h, w,
                                 make_tens(pl, y, blk->out_c, (size_t)ho * wo));
        else
            emit_bottleneck_ref(pl, &sl, blk, x, h, w, y);
        h = ho;
        w = wo;
        add_tap(pl, blk->name, y, blk->out_c, h, w);
        x = y;
        c = blk->out_c;
    }

    /* blocks.9.0: 1x1 conv + BN + ReLU */
    const gn_conv_desc *fc = &a->final_conv;
    const size_t plane = (size_t)h * w;
    floats = batch * fc->out_c * plane;
    view y = {keep ? new_slot(pl, floats) : sl.io[ping], 0};
    if (!keep) need_slot(pl, y.slot, floats);
    need_slot(pl, sl.pooled, batch * fc->out_c);
    need_slot(pl, sl.head, batch * GN_HEAD_CHANNELS);
    const int classes = a->config.num_classes;
    if (fast) {
        tens yt = make_tens(pl, y, fc->out_c, plane);
        plan_fconv(pl, emit_fconv(pl, fc, fc->out_c, make_tens(pl, x, c, plane), h, w, yt,
                                  GN_ACT_RELU));
        add_tap(pl, "blocks.9.0", y, fc->out_c, h, w);
        /* global pool -> conv_head (a linear layer on pooled features) + ReLU -> classifier */
        sums_dest pooled = sums_layout(pl, (view){sl.pooled, 0}, fc->out_c);
        emit_fpool(pl, yt, fc->out_c, (int)plane, &pooled);
        const size_t hk = (size_t)GN_HEAD_CHANNELS * fc->out_c;
        if (pl->tmp_floats < hk + GN_HEAD_CHANNELS) pl->tmp_floats = hk + GN_HEAD_CHANNELS;
        if (!pl->counting) fold_into(pl->model, &a->head, GN_HEAD_CHANNELS, pl->tmp, pl->tmp + hk);
        emit_flinear(pl, fc->out_c, GN_HEAD_CHANNELS, pl->tmp, pl->tmp + hk, 1.0f, GN_ACT_RELU,
                     (view){sl.pooled, 0}, (view){sl.head, 0});
        add_tap(pl, "conv_head", (view){sl.head, 0}, GN_HEAD_CHANNELS, 1, 1);
        exec_op *op = emit_flinear(pl, GN_HEAD_CHANNELS, classes, model_tensor(pl, a->classifier_w),
                                   model_tensor(pl, a->classifier_b), 1.0f, GN_ACT_NONE,
                                   (view){sl.head, 0}, (view){kSlotUserOutput, 0});
        op->fl.y_fs = 1; /* logits: batch x classes */
        op->fl.y_bs = (size_t)classes;
        need_slot(pl, s->scratch_slot, pl->scratch_floats);
        return;
    }
    emit_conv(pl, fc, fc->out_c, x, (size_t)c * plane, h, w, y, (size_t)fc->out_c * plane,
              GN_ACT_RELU);
    add_tap(pl, "blocks.9.0", y, fc->out_c, h, w);

    exec_op *op = push_op(pl, OP_AVGPOOL);
    gn_conv_params_dense(&op->conv, s->batch, fc->out_c, h, w, fc->out_c, 1, 1, 1, GN_ACT_NONE);
    op->in = y;
    op->out = (view){sl.pooled, 0};

    op = push_op(pl, OP_LINEAR);
    gn_conv_params_dense(&op->conv, s->batch, fc->out_c, 1, 1, GN_HEAD_CHANNELS, 1, 1, 1,
                         GN_ACT_RELU);
    op->in = (view){sl.pooled, 0};
    op->out = (view){sl.head, 0};
    fold_conv(pl, &a->head, GN_HEAD_CHANNELS, op);
    add_tap(pl, "conv_head", op->out, GN_HEAD_CHANNELS, 1, 1);

    op = push_op(pl, OP_LINEAR);
    gn_conv_params_dense(&op->conv, s->batch, GN_HEAD_CHANNELS, 1, 1, classes, 1, 1, 1,
                         GN_ACT_NONE);
    op->in = (view){sl.head, 0};
    op->out = (view){kSlotUserOutput, 0};
    const size_t cw = (size_t)classes * GN_HEAD_CHANNELS;
    op->weight = reserve_weights(pl, cw);
    op->bias = reserve_weights(pl, (size_t)classes);
    if (!pl->counting) {
        memcpy(s->weights + op->weight, gn_model_data(pl->model, a->classifier_w), cw * sizeof(float));
        memcpy(s->weights + op->bias, gn_model_data(pl->model, a->classifier_b),
               (size_t)classes * sizeof(float));
    }
}

/* ---- public API ------------------------------------------------------------------------- */

/* Images per pass: a big batch runs in groups whose activations stay in cache (a measured
 * 1.6x at batch 256 on 28x28), the largest divisor of the batch within the budget, a multiple
 * of 8 when one fits (the batch-innermost layout). The reference plan and taps keep one pass. */
enum { kGroupBudgetFloats = 3 << 20 };

static int choose_group(gn_session *s, const gn_model *model, int batch) {
    if (!s->fast || s->options.keep_taps || batch == 1) return batch;
    s->batch = 1; /* a counting plan of one image gives the activation floats per image */
    planner pl = {.s = s, .model = model, .counting = 1};
    plan_network(&pl);
    size_t per_image = 0;
    for (int i = 0; i < s->num_slots; i++)
        if (i != s->scratch_slot) per_image += s->slot_floats[i];
    if (pl.overflow || per_image == 0) return batch;
    const size_t fit = kGroupBudgetFloats / per_image;
    int best = 1, best8 = 0;
    for (int d = 1; d <= batch; d++)
        if (batch % d == 0 && (size_t)d <= fit) {
            best = d;
            if (d % 8 == 0) best8 = d;
        }
    return best8 ? best8 : best;
}

gn_session_options gn_session_options_default(void) {
    gn_session_options o;
    o.num_threads = 0;
    o.force_reference = 0;
    o.keep_taps = 0;
    return o;
}

void gn_session_free(gn_session *s) {
    if (!s) return;
    gn_net_graph_free(s->net);
    gn_threadpool_free(s->pool);
    free(s->ops);
    free(s->weights);
    free(s->arena);
    free(s);
}

gn_status gn_session_create(const gn_model *model, int batch, int height, int width,
                            const gn_session_options *options, gn_session **out, gn_error *err) {
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_session_create: out is NULL");
    *out = NULL;
    if (!model) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_session_create: model is NULL");
    if (batch < 1 || batch > 65536)
        return gn_fail(err, GN_ERR_INVALID_ARG, "batch %d out of range 1..65536", batch);
    if (height < 1 || width < 1 || height > 8192 || width > 8192)
        return gn_fail(err, GN_ERR_INVALID_ARG, "input size %dx%d out of range 1..8192", height,
                       width);
    gn_session_options o = options ? *options : gn_session_options_default();
    if (o.num_threads < 0 || o.num_threads > kMaxThreads)
        return gn_fail(err, GN_ERR_INVALID_ARG, "num_threads %d out of range 0..%d",
                       o.num_threads, kMaxThreads);
    gn_session *s = calloc(1, sizeof *s);
    if (!s) return gn_fail(err, GN_ERR_NOMEM, "out of memory for the session");
    if (model->arch->net) {
        /* described networks run on their own graph, which reads the model's weights live */
        s->config = model->arch->config;
        s->batch = s->total_batch = batch;
        s->groups = 1;
        s->height = height;
        s->width = width;
        s->options = o;
        s->threads = o.num_threads > 0 ? o.num_threads : gn_cpu_count();
        gn_kernels_get(gn_isa_detect(0), &s->kt);
        gn_status st = gn_net_graph_create((gn_model *)model, batch, height, width, 0, s->threads,
                                           0, &s->net, err);
        if (st != GN_OK) {
            free(s);
            return st;
        }
        *out = s;
        return GN_OK;
    }
    s->arch_copy = *model->arch;
    s->arch = &s->arch_copy;
    s->config = model->arch->config;
    s->batch = batch;
    s->height = height;
    s->width = width;
    s->options = o;
    s->fast = !o.force_reference;
    s->threads = !s->fast ? 1 : (o.num_threads > 0 ? o.num_threads : gn_cpu_count());
    if (s->threads > kMaxThreads) s->threads = kMaxThreads;
    gn_kernels_get(gn_isa_detect(0), &s->kt);
    s->split_threads = s->threads;
    s->total_batch = batch;
    s->batch = choose_group(s, model, batch);
    s->groups = batch / s->batch;
    batch = s->batch;
    /* Enough groups for every thread: threads take whole groups (dynamically), each in its own
     * arena; a thread slowed by a busy core then delays nobody at a per-op barrier. */
    s->group_parallel = s->fast && s->threads > 1 && s->groups >= s->threads;
    s->split_threads = s->group_parallel ? 1 : s->threads;

    planner pl = {.s = s, .model = model, .counting = 1};
    pl.bv = s->fast && batch % 8 == 0 && !o.keep_taps;
    pl.cm = s->fast && batch > 1 && !o.keep_taps && !pl.bv;
    pl.lin_packed = s->fast && batch >= 4 && !o.keep_taps;
    plan_network(&pl);
    if (pl.overflow) {
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "session plan needs too many buffers");
    }
    /* per-thread scratch, each thread's part 64-byte aligned */
    s->scratch_stride = (pl.scratch_floats + 15) / 16 * 16;
    if (!gn_mul_size(s->scratch_stride, (size_t)s->split_threads, &s->slot_floats[s->scratch_slot])) {
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "scratch memory for %d threads overflows", s->threads);
    }
    size_t total = 0;
    for (int i = 0; i < s->num_slots; i++) {
        s->slot_base[i] = total;
        /* Keep each slot 64-byte aligned for vector loads. */
        size_t padded = (s->slot_floats[i] + 15) / 16 * 16;
        if (!gn_add_size(total, padded, &total)) {
            gn_session_free(s);
            return gn_fail(err, GN_ERR_NOMEM, "activation memory for batch %d at %dx%d overflows",
                           batch, height, width);
        }
    }
    s->arena_stride = s->group_parallel ? total : 0;
    if (s->group_parallel && !gn_mul_size(total, (size_t)s->threads, &total)) {
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "activation memory for %d threads overflows", s->threads);
    }
    s->arena_floats = total;
    s->weights_floats = pl.weights_used;
    size_t arena_bytes;
    if (!gn_mul_size(total, sizeof(float), &arena_bytes) || arena_bytes > ((size_t)1 << 40)) {
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "activation memory for batch %d at %dx%d too large",
                       batch, height, width);
    }
    s->ops = gn_calloc((size_t)pl.ops_used, sizeof *s->ops);
    s->weights = alloc_big(s->weights_floats * sizeof(float));
    s->arena = alloc_big(arena_bytes);
    float *tmp = gn_malloc(pl.tmp_floats * sizeof(float));
    if (!s->ops || !s->weights || !s->arena || !tmp) {
        free(tmp);
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for a %zu-byte activation arena",
                       arena_bytes);
    }
    memset(s->weights, 0, s->weights_floats * sizeof(float));
    memset(s->arena, 0, arena_bytes);
    s->num_ops = pl.ops_used;
    const size_t tmp_floats = pl.tmp_floats;
    pl = (planner){.s = s, .model = model, .counting = 0, .cm = pl.cm, .bv = pl.bv,
                   .lin_packed = pl.lin_packed, .tmp = tmp, .tmp_floats = tmp_floats};
    plan_network(&pl);
    free(tmp);
    if (s->threads > 1) {
        gn_status st = gn_threadpool_create(s->threads, &s->pool, err);
        if (st != GN_OK) {
            gn_session_free(s);
            return st;
        }
    }
    *out = s;
    return GN_OK;
}

static float *resolve(const gn_session *s, float *arena, view v, const float *input,
                      float *output) {
    if (v.slot == kSlotNone) return NULL;
    if (v.slot == kSlotUserInput) return (float *)input + v.offset;
    if (v.slot == kSlotUserOutput) return output + v.offset;
    return arena + s->slot_base[v.slot] + v.offset;
}

/* One fast op's resolved pointers, shared by the threads running its tasks. */
typedef struct run_ctx {
    gn_session *s;
    const exec_op *op;
    float *arena;
    float *in, *out, *res, *sums, *target;
} run_ctx;

static void run_task(void *arg, int task, int thread) {
    const run_ctx *r = arg;
    const gn_session *s = r->s;
    float *scratch = r->arena + s->slot_base[s->scratch_slot] + (size_t)thread * s->scratch_stride;
    switch (r->op->kind) {
    case OP_FCONV: {
        const gn_fio io = {r->in, r->out, r->res, r->sums, scratch};
        gn_fconv_task(&s->kt, &r->op->fc, &io, task);
        break;
    }
    case OP_FLINEAR:
        gn_flinear_task(&s->kt, &r->op->fl, r->in, r->out, r->target, scratch, task);
        break;
    case OP_FPOOL: gn_fpool_task(&s->kt, &r->op->fp, r->in, r->out, task); break;
    case OP_FTRANSPOSE: gn_ftranspose_task(&s->kt, &r->op->ft, r->in, r->out, task); break;
    default: break;
    }
}

static void run_reference_op(gn_session *s, const exec_op *op, const float *input, float *logits) {
    const gn_conv_params *p = &op->conv;
    float *in = resolve(s, s->arena, op->in, input, logits);
    float *out = resolve(s, s->arena, op->out, input, logits);
    const float *w = op->weight != SIZE_MAX ? s->weights + op->weight : NULL;
    const float *b = op->bias != SIZE_MAX ? s->weights + op->bias : NULL;
    switch (op->kind) {
    case OP_CONV: gn_conv2d_ref(p, in, w, b, out); break;
    case OP_SQUEEZE_EXCITE: {
        gn_se_weights se = {p->in_c, op->se_reduced, s->weights + op->se_weights[0],
                            s->weights + op->se_weights[1], s->weights + op->se_weights[2],
                            s->weights + op->se_weights[3]};
        gn_squeeze_excite_ref(out, p->batch, p->in_h * p->in_w, p->in_image_stride, &se,
                              resolve(s, s->arena, op->scratch, input, logits));
        break;
    }
    case OP_ADD:
        gn_add_ref(out, in, p->batch, p->out_c, p->out_h * p->out_w, p->out_image_stride,
                   p->in_image_stride);
        break;
    case OP_AVGPOOL:
        gn_global_avgpool_ref(in, p->batch, p->in_c, p->in_h * p->in_w, p->in_image_stride, out);
        break;
    case OP_LINEAR: gn_linear_ref(in, p->batch, p->in_c, p->out_c, w, b, p->act, out); break;
    default: break;
    }
}

/* One op over `arena`; its tasks go to `pool`, or run here when pool is NULL. */
static void run_op(gn_session *s, float *arena, gn_threadpool *pool, const exec_op *op,
                   const float *input, float *logits) {
    if (op->kind < OP_FCONV) {
        run_reference_op(s, op, input, logits);
        return;
    }
    run_ctx r = {s, op, arena, resolve(s, arena, op->in, input, logits),
                 resolve(s, arena, op->out, input, logits), resolve(s, arena, op->res, input, logits),
                 resolve(s, arena, op->sums, input, logits),
                 resolve(s, arena, op->target, input, logits)};
    gn_threadpool_run(pool, run_task, &r, op->ntasks);
}

typedef struct group_ctx {
    gn_session *s;
    const float *input;
    float *logits;
} group_ctx;

/* Group g, start to end, on the calling thread in its own arena copy. */
static void run_group(void *arg, int g, int thread) {
    const group_ctx *c = arg;
    gn_session *s = c->s;
    const size_t in_per = (size_t)s->config.in_chans * s->height * s->width * s->batch;
    const size_t out_per = (size_t)s->config.num_classes * s->batch;
    float *arena = s->arena + (size_t)thread * s->arena_stride;
    for (int i = 0; i < s->num_ops; i++)
        run_op(s, arena, NULL, &s->ops[i], c->input + g * in_per, c->logits + g * out_per);
}

gn_status gn_session_run(gn_session *s, const float *input, float *logits, gn_error *err) {
    if (!s || !input || !logits)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_session_run: NULL argument");
    if (s->net) return gn_net_graph_eval(s->net, input, s->batch, logits, err);
    if (s->group_parallel) {
        group_ctx c = {s, input, logits};
        gn_threadpool_run(s->pool, run_group, &c, s->groups);
        return GN_OK;
    }
    const size_t in_per = (size_t)s->config.in_chans * s->height * s->width * s->batch;
    const size_t out_per = (size_t)s->config.num_classes * s->batch;
    for (int g = 0; g < s->groups; g++)
        for (int i = 0; i < s->num_ops; i++)
            run_op(s, s->arena, s->pool, &s->ops[i], input + g * in_per, logits + g * out_per);
    return GN_OK;
}

/* ---- internals for benchmarks (session_internal.h) -------------------------------------- */

static double seconds_now(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

gn_status gn_session_run_timed(gn_session *s, const float *input, float *logits,
                               double *op_seconds, gn_error *err) {
    if (!s || !input || !logits || !op_seconds)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_session_run_timed: NULL argument");
    if (s->net) return gn_net_graph_eval(s->net, input, s->batch, logits, err);
    const size_t in_per = (size_t)s->config.in_chans * s->height * s->width * s->batch;
    const size_t out_per = (size_t)s->config.num_classes * s->batch;
    for (int g = 0; g < s->groups; g++)
        for (int i = 0; i < s->num_ops; i++) {
            const double t0 = seconds_now();
            /* groups in sequence on this thread (a per-op view of one thread's work) */
            run_op(s, s->arena, s->group_parallel ? NULL : s->pool, &s->ops[i],
                   input + g * in_per, logits + g * out_per);
            op_seconds[i] += seconds_now() - t0;
        }
    return GN_OK;
}

int gn_session_op_count(const gn_session *s) { return s ? s->num_ops : 0; }

long long gn_session_op_macs(const gn_session *s, int i) {
    if (!s || i < 0 || i >= s->num_ops) return 0;
    const exec_op *op = &s->ops[i];
    if (op->kind == OP_FCONV) {
        const gn_fconv *c = &op->fc;
        const long long per = c->kind == GN_FCONV_DW ? 1 : (long long)c->in_c;
        return per * c->kernel * c->kernel * c->out_c * c->out_h * c->out_w * c->batch * s->groups;
    }
    if (op->kind == OP_FLINEAR)
        return (long long)op->fl.in_f * op->fl.out_f * op->fl.batch * s->groups;
    return 0;
}
const char *gn_session_isa(const gn_session *s) { return s->fast ? s->kt.name : "reference"; }
int gn_session_threads(const gn_session *s) { return s->threads; }
int gn_session_group(const gn_session *s) { return s->batch; }

void gn_session_op_describe(const gn_session *s, int i, char *buf, size_t size) {
    if (!s || i < 0 || i >= s->num_ops || size == 0) return;
    const exec_op *op = &s->ops[i];
    const gn_fconv *c = &op->fc;
    static const char *const kinds[] = {"gemm", "im2col", "dw"};
    switch (op->kind) {
    case OP_FCONV:
        snprintf(buf, size, "%-6s %4d->%-4d k%d s%d %3dx%-3d%s%s%s t%d", kinds[c->kind], c->in_c,
                 c->out_c, c->kernel, c->stride, c->in_h, c->in_w, c->accumulate ? " acc" : "",
                 c->res_mode ? " res" : "", c->sum_out_c >= 0 ? " sum" : "", op->ntasks);
        break;
    case OP_FLINEAR:
        snprintf(buf, size, "linear %4d->%-4d b%d%s%s t%d", op->fl.in_f, op->fl.out_f, op->fl.batch,
                 op->fl.packed ? " packed" : "", op->fl.gate ? " gate" : "", op->ntasks);
        break;
    case OP_FPOOL:
        snprintf(buf, size, "pool   %4d hw%d t%d", op->fp.channels, op->fp.hw, op->ntasks);
        break;
    case OP_FTRANSPOSE:
        snprintf(buf, size, "transpose %dx%d t%d", op->ft.rows, op->ft.cols, op->ntasks);
        break;
    default: snprintf(buf, size, "reference op %d", (int)op->kind); break;
    }
}

gn_status gn_session_tap(const gn_session *s, const char *name, const float **data,
                         int *channels, int *height, int *width, gn_error *err) {
    if (!s || !name || !data) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_session_tap: NULL argument");
    if (!s->options.keep_taps)
        return gn_fail(err, GN_ERR_INVALID_ARG, "session was created without keep_taps");
    for (int i = 0; i < s->num_taps; i++) {
        const tap *t = &s->taps[i];
        if (strcmp(t->name, name) != 0) continue;
        *data = s->arena + s->slot_base[t->where.slot] + t->where.offset;
        if (channels) *channels = t->channels;
        if (height) *height = t->height;
        if (width) *width = t->width;
        return GN_OK;
    }
    return gn_fail(err, GN_ERR_INVALID_ARG, "no tap named '%s'", name);
}

size_t gn_session_arena_bytes(const gn_session *s) {
    if (s && s->net) return gn_net_graph_bytes(s->net);
    return s ? s->arena_floats * sizeof(float) : 0;
}
