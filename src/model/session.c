/* Inference sessions: the network compiled into a flat list of fused ops over one arena.
 *
 * Planning runs the same emitter twice: a counting pass sizes the op list, the folded-weight
 * block and every arena slot; the second pass fills them. gn_session_run then only walks the
 * op list: no allocation, no shape logic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/model_internal.h"
#include "ops/ops.h"

enum { kMaxSlots = 64, kMaxTaps = 24, kSlotUserInput = -1, kSlotUserOutput = -2 };

typedef enum op_kind { OP_CONV, OP_SQUEEZE_EXCITE, OP_ADD, OP_AVGPOOL, OP_LINEAR } op_kind;

/* A place in memory: an arena slot (or the caller's input/output) plus a float offset. */
typedef struct view {
    int slot;
    size_t offset;
} view;

typedef struct exec_op {
    op_kind kind;
    view in, out;
    gn_conv_params conv;   /* OP_CONV; batch, channel and plane sizes for the others too */
    size_t weight, bias;   /* offsets into the folded-weight block; SIZE_MAX for none */
    size_t se_weights[4];  /* OP_SQUEEZE_EXCITE: reduce w, b, expand w, b */
    int se_reduced;
    view scratch;
} exec_op;

typedef struct tap {
    char name[24];
    view where;
    int channels, height, width;
} tap;

struct gn_session {
    const gn_arch *arch; /* borrowed layout facts only; weights are copied and folded */
    gn_config config;
    int batch, height, width;
    gn_session_options options;
    exec_op *ops;
    int num_ops;
    float *weights;
    size_t weights_floats;
    float *arena;
    size_t slot_floats[kMaxSlots];
    size_t slot_base[kMaxSlots];
    int num_slots;
    size_t arena_floats;
    tap taps[kMaxTaps];
    int num_taps;
    gn_arch arch_copy;
};

/* ---- planning --------------------------------------------------------------------------- */

typedef struct planner {
    gn_session *s;
    const gn_model *model;
    int counting; /* first pass: sizes only */
    int ops_used;
    size_t weights_used;
    int overflow;
    exec_op sink; /* counting pass: ops are written here and discarded */
} planner;

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
    return op;
}

static size_t reserve_weights(planner *pl, size_t floats) {
    size_t at = pl->weights_used;
    pl->weights_used += floats;
    return at;
}

/* Copies a conv's first `out_c` output channels, folding its BN: w' = w * g / sqrt(v + eps),
 * b' = beta + (bias - mean) * g / sqrt(v + eps). Computed in double so folding adds no error
 * beyond the final rounding. */
static void fold_conv(planner *pl, const gn_conv_desc *c, int out_c, exec_op *op) {
    const size_t per_out = (size_t)(c->in_c / c->groups) * c->kernel * c->kernel;
    op->weight = reserve_weights(pl, per_out * out_c);
    op->bias = reserve_weights(pl, (size_t)out_c);
    if (pl->counting) return;
    const gn_model *m = pl->model;
    const float *w = gn_model_data(m, c->weight);
    const float *bias = c->bias >= 0 ? gn_model_data(m, c->bias) : NULL;
    float *dw = pl->s->weights + op->weight, *db = pl->s->weights + op->bias;
    for (int j = 0; j < out_c; j++) {
        double scale = 1.0, shift = bias ? bias[j] : 0.0;
        if (c->bn.first >= 0) {
            const float *gamma = gn_model_data(m, c->bn.first);
            const float *beta = gn_model_data(m, c->bn.first + 1);
            const float *mean = gn_model_data(m, c->bn.first + 2);
            const float *var = gn_model_data(m, c->bn.first + 3);
            scale = gamma[j] / sqrt((double)var[j] + GN_BN_EPS);
            shift = beta[j] + (shift - mean[j]) * scale;
        }
        for (size_t k = 0; k < per_out; k++)
            dw[j * per_out + k] = (float)(w[j * per_out + k] * scale);
        db[j] = (float)shift;
    }
}

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
    int io[2], mid, dw, shortcut, se, pooled, head;
} slots;

static void emit_bottleneck(planner *pl, const slots *sl, const gn_bottleneck_desc *blk, view x,
                            int h, int w, view y, int *out_h, int *out_w) {
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
    *out_h = ho;
    *out_w = wo;
}

static void plan_network(planner *pl) {
    gn_session *s = pl->s;
    const gn_arch *a = s->arch;
    const size_t batch = (size_t)s->batch;
    s->num_slots = 0;
    s->num_taps = 0;
    slots sl;
    sl.io[0] = new_slot(pl, 0);
    sl.io[1] = new_slot(pl, 0);
    sl.mid = new_slot(pl, 0);
    sl.dw = new_slot(pl, 0);
    sl.shortcut = new_slot(pl, 0);
    sl.se = new_slot(pl, 0);
    sl.pooled = new_slot(pl, 0);
    sl.head = new_slot(pl, 0);
    int ping = 0;
    const int keep = s->options.keep_taps;

    /* stem: conv_stem + bn1 + ReLU */
    int h = gn_conv_out_size(s->height, 3, a->stem.stride);
    int w = gn_conv_out_size(s->width, 3, a->stem.stride);
    int c = a->stem.out_c;
    size_t floats = batch * c * h * w;
    view x = {keep ? new_slot(pl, floats) : sl.io[ping], 0};
    if (!keep) {
        need_slot(pl, x.slot, floats);
        ping ^= 1;
    }
    view input = {kSlotUserInput, 0};
    emit_conv(pl, &a->stem, c, input, (size_t)a->config.in_chans * s->height * s->width,
              s->height, s->width, x, (size_t)c * h * w, GN_ACT_RELU);
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
        emit_bottleneck(pl, &sl, blk, x, h, w, y, &h, &w);
        add_tap(pl, blk->name, y, blk->out_c, h, w);
        x = y;
        c = blk->out_c;
    }

    /* blocks.9.0: 1x1 conv + BN + ReLU */
    const gn_conv_desc *fc = &a->final_conv;
    floats = batch * fc->out_c * h * w;
    view y = {keep ? new_slot(pl, floats) : sl.io[ping], 0};
    if (!keep) need_slot(pl, y.slot, floats);
    emit_conv(pl, fc, fc->out_c, x, (size_t)c * h * w, h, w, y, (size_t)fc->out_c * h * w,
              GN_ACT_RELU);
    add_tap(pl, "blocks.9.0", y, fc->out_c, h, w);

    /* global pool -> conv_head (a linear layer on pooled features) + ReLU -> classifier */
    exec_op *op = push_op(pl, OP_AVGPOOL);
    gn_conv_params_dense(&op->conv, s->batch, fc->out_c, h, w, fc->out_c, 1, 1, 1, GN_ACT_NONE);
    op->in = y;
    op->out = (view){sl.pooled, 0};
    need_slot(pl, sl.pooled, batch * fc->out_c);

    op = push_op(pl, OP_LINEAR);
    gn_conv_params_dense(&op->conv, s->batch, fc->out_c, 1, 1, GN_HEAD_CHANNELS, 1, 1, 1,
                         GN_ACT_RELU);
    op->in = (view){sl.pooled, 0};
    op->out = (view){sl.head, 0};
    need_slot(pl, sl.head, batch * GN_HEAD_CHANNELS);
    fold_conv(pl, &a->head, GN_HEAD_CHANNELS, op);
    add_tap(pl, "conv_head", op->out, GN_HEAD_CHANNELS, 1, 1);

    op = push_op(pl, OP_LINEAR);
    gn_conv_params_dense(&op->conv, s->batch, GN_HEAD_CHANNELS, 1, 1, a->config.num_classes, 1,
                         1, 1, GN_ACT_NONE);
    op->in = (view){sl.head, 0};
    op->out = (view){kSlotUserOutput, 0};
    const size_t cw = (size_t)a->config.num_classes * GN_HEAD_CHANNELS;
    op->weight = reserve_weights(pl, cw);
    op->bias = reserve_weights(pl, (size_t)a->config.num_classes);
    if (!pl->counting) {
        memcpy(s->weights + op->weight, gn_model_data(pl->model, a->classifier_w), cw * sizeof(float));
        memcpy(s->weights + op->bias, gn_model_data(pl->model, a->classifier_b),
               (size_t)a->config.num_classes * sizeof(float));
    }
}

/* ---- public API ------------------------------------------------------------------------- */

gn_session_options gn_session_options_default(void) {
    gn_session_options o;
    o.num_threads = 0;
    o.force_reference = 0;
    o.keep_taps = 0;
    return o;
}

void gn_session_free(gn_session *s) {
    if (!s) return;
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
    gn_session *s = calloc(1, sizeof *s);
    if (!s) return gn_fail(err, GN_ERR_NOMEM, "out of memory for the session");
    s->arch_copy = *model->arch;
    s->arch = &s->arch_copy;
    s->config = model->arch->config;
    s->batch = batch;
    s->height = height;
    s->width = width;
    s->options = options ? *options : gn_session_options_default();

    planner pl = {.s = s, .model = model, .counting = 1};
    plan_network(&pl);
    if (pl.overflow) {
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "session plan needs too many buffers");
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
    s->arena_floats = total;
    s->weights_floats = pl.weights_used;
    size_t arena_bytes;
    if (!gn_mul_size(total, sizeof(float), &arena_bytes) || arena_bytes > ((size_t)1 << 40)) {
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "activation memory for batch %d at %dx%d too large",
                       batch, height, width);
    }
    s->ops = gn_calloc((size_t)pl.ops_used, sizeof *s->ops);
    s->weights = gn_calloc(s->weights_floats, sizeof(float));
    s->arena = aligned_alloc(64, arena_bytes ? (arena_bytes + 63) / 64 * 64 : 64);
    if (!s->ops || !s->weights || !s->arena) {
        gn_session_free(s);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for a %zu-byte activation arena",
                       arena_bytes);
    }
    memset(s->arena, 0, arena_bytes);
    s->num_ops = pl.ops_used;
    pl = (planner){.s = s, .model = model, .counting = 0};
    plan_network(&pl);
    *out = s;
    return GN_OK;
}

static float *resolve(gn_session *s, view v, const float *input, float *output) {
    if (v.slot == kSlotUserInput) return (float *)input + v.offset;
    if (v.slot == kSlotUserOutput) return output + v.offset;
    return s->arena + s->slot_base[v.slot] + v.offset;
}

gn_status gn_session_run(gn_session *s, const float *input, float *logits, gn_error *err) {
    if (!s || !input || !logits)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_session_run: NULL argument");
    const int ref = s->options.force_reference;
    for (int i = 0; i < s->num_ops; i++) {
        const exec_op *op = &s->ops[i];
        const gn_conv_params *p = &op->conv;
        float *in = resolve(s, op->in, input, logits);
        float *out = resolve(s, op->out, input, logits);
        const float *w = op->weight != SIZE_MAX ? s->weights + op->weight : NULL;
        const float *b = op->bias != SIZE_MAX ? s->weights + op->bias : NULL;
        switch (op->kind) {
        case OP_CONV:
            (ref ? gn_conv2d_ref : gn_conv2d)(p, in, w, b, out);
            break;
        case OP_SQUEEZE_EXCITE: {
            gn_se_weights se = {p->in_c, op->se_reduced, s->weights + op->se_weights[0],
                                s->weights + op->se_weights[1], s->weights + op->se_weights[2],
                                s->weights + op->se_weights[3]};
            gn_squeeze_excite_ref(out, p->batch, p->in_h * p->in_w, p->in_image_stride, &se,
                                  resolve(s, op->scratch, input, logits));
            break;
        }
        case OP_ADD:
            gn_add_ref(out, in, p->batch, p->out_c, p->out_h * p->out_w, p->out_image_stride,
                       p->in_image_stride);
            break;
        case OP_AVGPOOL:
            gn_global_avgpool_ref(in, p->batch, p->in_c, p->in_h * p->in_w, p->in_image_stride,
                                  out);
            break;
        case OP_LINEAR:
            (ref ? gn_linear_ref : gn_linear)(in, p->batch, p->in_c, p->out_c, w, b, p->act, out);
            break;
        }
    }
    return GN_OK;
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

size_t gn_session_arena_bytes(const gn_session *s) { return s ? s->arena_floats * sizeof(float) : 0; }
