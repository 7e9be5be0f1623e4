/* Training: backward kernels, a training graph over the gn_arch description, optimizers and
 * learning-rate schedules. Internal API (not in ghostnet.h yet).
 *
 * Conventions shared by every backward kernel:
 *   - Gradients w.r.t. inputs and parameters are ACCUMULATED (+=) into the caller's buffers,
 *     so residual adds, the Ghost concat (channel views) and several consumers of one tensor
 *     need no extra buffers: the caller zeroes a gradient buffer before its first writer (or,
 *     for convolutions and squeeze-excite, asks that writer to overwrite instead).
 *   - Tensors are float32, NCHW with images `stride` floats apart (channel views, as in
 *     ops/ops.h) or, for the kernels taking a gn_tlayout / a gn_planes with ps, any strides;
 *     the training graph keeps activations batch-innermost. Reductions over the batch gather
 *     float partial sums over short runs in double.
 *   - gn_*_ref are plain loops kept as the oracle; the unsuffixed entry points pick a faster
 *     kernel for the shape (AVX2 + FMA where the CPU has it, else portable C) and are tested
 *     against the reference on odd shapes (tests/test_grad.c).
 *   - Kernels taking a gn_tctx run on its thread pool with results independent of the thread
 *     count (see gn_tctx).
 *
 * Semantics follow PyTorch: BN training mode normalises with the biased batch variance and
 * updates running_var with the unbiased one (momentum 0.1); activation derivatives at kinks
 * are those of PyTorch's backward functions; cross-entropy label smoothing is
 * (1 - eps) * nll + eps * mean over classes of -log p, averaged over the batch. */
#ifndef GN_TRAIN_H
#define GN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "ghostnet.h"
#include "ops/ops.h"

#define GN_BN_MOMENTUM 0.1f

/* ---- execution context ------------------------------------------------------------------ */

/* Where the fast kernels run: a thread pool (NULL: the calling thread only) and whether the
 * AVX2 + FMA variants may be used. Every kernel taking a context splits its work so that each
 * output element (and each reduction over the batch) is computed by one task in a fixed order:
 * results do not depend on the number of threads, and repeat bit for bit. A NULL context
 * means serial with the best ISA. */
struct gn_threadpool;
typedef struct gn_tctx {
    struct gn_threadpool *pool;
    int avx2;
    /* optional: GN_TCTX_SCRATCH_FLOATS floats per pool thread (thread t's at
     * scratch + t * GN_TCTX_SCRATCH_FLOATS, 32-byte aligned); without it kernels use small
     * stack buffers and pack less at a time */
    float *scratch;
    /* 1: split every job across the pool however small (tests); 0: jobs worth less than the
     * cost of a barrier run on the calling thread */
    int split_all;
} gn_tctx;
#define GN_TCTX_SCRATCH_FLOATS 32768
/* 1 when the AVX2 kernels are compiled in and this CPU runs them (GN_FORCE_SCALAR honoured). */
int gn_train_avx2_available(void);
/* fn(arg, lo, hi) over [0, units) in a few contiguous ranges per thread (each unit in exactly
 * one range); serial when ctx or its pool is NULL. */
typedef void (*gn_range_fn)(const void *arg, int lo, int hi);
void gn_tctx_for(const gn_tctx *ctx, int units, gn_range_fn fn, const void *arg);

/* ---- backward kernels (grad_ops.c) ------------------------------------------------------- */

/* Derivative of an activation at its input u (PyTorch's choice at kinks: ReLU 0 at 0, ReLU6
 * and hard-sigmoid 0 at both ends, hard-swish x/3 + 0.5 on [-3, 3]). */
static inline float gn_act_grad(gn_act act, float u) {
    switch (act) {
    case GN_ACT_NONE: return 1.0f;
    case GN_ACT_RELU: return u > 0.0f ? 1.0f : 0.0f;
    case GN_ACT_RELU6: return (u > 0.0f && u < 6.0f) ? 1.0f : 0.0f;
    case GN_ACT_HSIGMOID: return (u > -3.0f && u < 3.0f) ? 1.0f / 6.0f : 0.0f;
    case GN_ACT_HSWISH: return u < -3.0f ? 0.0f : (u <= 3.0f ? u / 3.0f + 0.5f : 1.0f);
    }
    return 1.0f;
}

/* Elementwise activation on n floats: y = act(x); dx = dy * act'(x) (dx may alias dy). */
void gn_act_forward(gn_act act, const float *x, size_t n, float *y);
void gn_act_backward(gn_act act, const float *x, const float *dy, size_t n, float *dx);

/* Matrix product C (+)= A B, m x n, inner size k:
 *   A(i, kk) = a[i * a_rs + kk * a_ks]      (so A^T is a_rs = 1, a_ks = row length)
 *   B(kk, j) = b[kk * ldb + j], or b[j * ldb + kk] when b_trans
 *   C(i, j)  = c[i * ldc + j]; accumulate: C += A B, else C = A B.
 * The fast version packs B in strips of 24 columns and runs 4 x 24 register tiles; the inner
 * size is summed in blocks of a fixed length, so the result depends only on the shapes. */
typedef struct gn_gemm {
    int m, n, k;
    const float *a;
    size_t a_rs, a_ks;
    const float *b;
    size_t ldb;
    int b_trans;
    float *c;
    size_t ldc;
    int accumulate;
} gn_gemm;
void gn_gemm_ref(const gn_gemm *g); /* double accumulators */
void gn_gemm_run(const gn_tctx *ctx, const gn_gemm *g);

/* Where element (image b, channel c, pixel i) of a tensor lives: b * bs + c * cs + i * ps.
 * NCHW is (C * plane, plane, 1); the training graph keeps activations batch-innermost,
 * [channel][pixel][image] = (1, plane * batch, batch): a 1x1 convolution is then one product
 * over plane * batch columns, a channel's BN statistics are one contiguous run, and every tap
 * of a depthwise convolution is a contiguous vector over the batch, whatever the plane size.
 * The fast kernels handle planar (ps = 1) and batch-inner (bs = 1, ps >= batch) layouts; any
 * other falls back to the reference. */
typedef struct gn_tlayout {
    size_t bs, cs, ps;
} gn_tlayout;

/* NCHW tensors of `batch` images <-> batch-inner ([channel][pixel][image], ld columns per
 * pixel, ld >= batch), c channels of hw pixels; columns >= batch are left as they are. */
void gn_nchw_to_batch_inner(const float *src, int batch, int c, size_t hw, size_t ld, float *dst);
void gn_batch_inner_to_nchw(const float *src, int batch, int c, size_t hw, size_t ld, float *dst);

/* A convolution (shapes, groups, stride from p; p's image strides, act and accumulate are
 * ignored) between tensors laid out as `in` and `out`. out_c may stop short of
 * groups * out_per_group (see below). */
typedef struct gn_tconv {
    gn_conv_params p;
    gn_tlayout in, out;
    int overwrite; /* backward data: dx = conv^T(dy) (the first writer) instead of dx += */
} gn_tconv;
/* The NCHW layouts described by p's image strides. */
gn_tconv gn_tconv_nchw(const gn_conv_params *p);

/* Forward y = conv(x) (overwrites p.out_c channels; no bias, no activation). */
void gn_tconv_forward_ref(const gn_tconv *c, const float *x, const float *weight, float *y);
void gn_tconv_forward(const gn_tctx *ctx, const gn_tconv *c, const float *x,
                      const float *weight, float *y);
/* Backward, for the forward conv described by c, including truncated outputs (p.out_c below
 * groups * out_per_group: the missing channels simply receive no gradient):
 *   data:   dx += conv^T(dy)       dx laid out like the input (= when c->overwrite)
 *   weight: dw += x (*) dy         dw: [full_out][in_c/groups][kh][kw]; rows >= out_c untouched */
void gn_tconv_backward_data_ref(const gn_tconv *c, const float *dy, const float *weight,
                                float *dx);
void gn_tconv_backward_data(const gn_tctx *ctx, const gn_tconv *c, const float *dy,
                            const float *weight, float *dx);
void gn_tconv_backward_weight_ref(const gn_tconv *c, const float *x, const float *dy,
                                  float *dw);
void gn_tconv_backward_weight(const gn_tctx *ctx, const gn_tconv *c, const float *x,
                              const float *dy, float *dw);

/* The same on NCHW tensors described by ops.h's params alone (serial). */
void gn_conv2d_backward_data_ref(const gn_conv_params *p, const float *dy, const float *weight,
                                 float *dx);
void gn_conv2d_backward_data(const gn_conv_params *p, const float *dy, const float *weight,
                             float *dx);
void gn_conv2d_backward_weight_ref(const gn_conv_params *p, const float *x, const float *dy,
                                   float *dw);
void gn_conv2d_backward_weight(const gn_conv_params *p, const float *x, const float *dy,
                               float *dw);
/* db += sum of dy over batch and pixels. */
void gn_conv2d_backward_bias(const gn_conv_params *p, const float *dy, float *db);

/* `batch` images of `channels` planes of hw floats: element i of plane (b, c) at
 * b * stride + c * cs + i * ps (cs 0 = hw, ps 0 = 1: NCHW with images `stride` apart;
 * batch-inner: stride 1, ps = batch, cs = hw * batch). Kernels taking a y_stride or
 * dy_stride read that tensor with t's cs and ps and that image stride. */
typedef struct gn_planes {
    int batch, channels;
    size_t hw, stride, cs, ps;
} gn_planes;

/* Batch normalisation over t (per channel, over batch and pixels).
 * batch_stats: mean and biased variance of x (double accumulation).
 * update_running: running = (1 - m) * running + m * stat, with the unbiased variance
 *   (var * count / (count - 1), count = batch * hw > 1) as PyTorch does.
 * forward: y = act(gamma * (x - mean) * invstd + beta); y planes are at b * y_stride +
 *   c * cs (t's channel stride; y may be x when the strides agree). Training uses the batch
 *   mean and invstd = 1/sqrt(var+eps), eval mode the running ones; the kernel does not care.
 * backward: dy is the gradient of y (planes at b * dy_stride + c * cs, read only); act' is
 *   recomputed from x. training = 1 differentiates through the batch statistics, 0 treats
 *   mean/invstd as constants (eval mode). dgamma/dbeta += ..., dx = ... (overwritten, not
 *   accumulated; laid out like x and may alias x).
 * All split over channels: a channel's sums are taken by one task, in a fixed order. */
void gn_bn_batch_stats(const gn_tctx *ctx, const gn_planes *t, const float *x, float *mean,
                       float *var);
void gn_bn_invstd(int channels, const float *var, float eps, float *invstd);
void gn_bn_update_running(int channels, const float *mean, const float *var, size_t count,
                          float momentum, float *running_mean, float *running_var);
void gn_bn_forward(const gn_tctx *ctx, const gn_planes *t, const float *x, const float *gamma,
                   const float *beta, const float *mean, const float *invstd, gn_act act,
                   float *y, size_t y_stride);
void gn_bn_backward(const gn_tctx *ctx, const gn_planes *t, const float *x, const float *dy,
                    size_t dy_stride, const float *gamma, const float *beta, const float *mean,
                    const float *invstd, gn_act act, int training, float *dx, float *dgamma,
                    float *dbeta);

/* Global average pooling backward: dx[b][c][i] += dy[b][c] / hw (NCHW, dy: batch x C). */
void gn_avgpool_backward(const gn_planes *t, const float *dy, float *dx);

/* Linear layer y = x w^T + b (w: [out_f][in_f]) backward: dx += dy w (skipped when dx is
 * NULL), dw += dy^T x, db += sum_b dy (skipped when NULL). */
void gn_linear_backward(const float *x, const float *dy, int batch, int in_f, int out_f,
                        const float *w, float *dx, float *dw, float *db);

/* Squeeze-excite in training mode (see ops.h for the forward): y = x * gate, gate =
 * hsigmoid(expand(relu(reduce(mean(x))))). x, y, dy, dx all use t's layout. The forward
 * saves, feature-major (feature f of image b at [f * ld + b], ld >= t->batch; 0 = batch):
 * pooled [C], hidden (after ReLU) [R], gate_pre [C], gate [C]. */
typedef struct gn_se_saved {
    float *pooled, *hidden, *gate_pre, *gate;
    size_t ld;
} gn_se_saved;
typedef struct gn_se_grads {
    float *reduce_w, *reduce_b, *expand_w, *expand_b;
} gn_se_grads;
void gn_se_forward_train(const gn_tctx *ctx, const gn_planes *t, const float *x,
                         const gn_se_weights *se, const gn_se_saved *s, float *y);
/* y = x * gate with the gate saved by the forward (recomputing the output). */
void gn_se_apply_gate(const gn_tctx *ctx, const gn_planes *t, const float *x,
                      const gn_se_saved *s, float *y);
/* dx += d/dx (dx = d/dx when overwrite); parameter grads +=; scratch holds
 * (channels + reduced) * ld floats. */
void gn_se_backward(const gn_tctx *ctx, const gn_planes *t, const float *x, const float *dy,
                    const gn_se_weights *se, const gn_se_saved *s, float *dx, int overwrite,
                    const gn_se_grads *g, float *scratch);

/* Inverted dropout: mask[i] = 0 with probability rate, else 1 / (1 - rate). Forward and
 * backward are both an elementwise product with the mask. */
void gn_dropout_mask(gn_rng *rng, float rate, size_t n, float *mask);

/* Softmax cross-entropy with label smoothing eps, averaged over the batch. Returns the loss;
 * dlogits (optional) receives d loss / d logits; *correct (optional) counts argmax == label.
 * Labels must lie in [0, classes). */
double gn_softmax_xent(const float *logits, int batch, int classes, const int *labels,
                       float smoothing, float *dlogits, int *correct);

/* ---- training graph (train_graph.c) ------------------------------------------------------ */

typedef struct gn_train_options {
    float label_smoothing; /* 0.1 for the ImageNet recipe */
    float dropout;         /* < 0: the model config's rate */
    uint64_t seed;         /* dropout masks: step t uses a stream derived from (seed, t) */
    int freeze_bn;         /* 1: BN in eval mode (running stats, no update) while training */
    int force_reference;   /* 1: plain reference kernels (tests) */
    int num_threads;       /* threads including the caller (the graph owns a pool);
                            * 0: gn_cpu_count(). Results are the same for every count. */
    int split_all;         /* 1: split even the smallest jobs across the threads (tests) */
} gn_train_options;
gn_train_options gn_train_options_default(void);

typedef struct gn_train_graph gn_train_graph;

/* Plans training of `model` at a fixed batch and input size: every saved activation,
 * gradient buffer and the parameter-gradient block are allocated here, once. The model is
 * borrowed (it must outlive the graph); its parameters are read live at every step, so an
 * optimizer may update them in place between steps. Fails when a BN would normalise a single
 * value (batch * plane == 1 in training mode), as PyTorch does. */
gn_status gn_train_graph_create(gn_model *model, int batch, int height, int width,
                                const gn_train_options *options, gn_train_graph **out,
                                gn_error *err);
void gn_train_graph_free(gn_train_graph *g);

/* One training step's gradients: zeroes the gradient block, forward in training mode (batch
 * statistics, dropout), loss, backward; then writes the BN running statistics into the
 * model and advances the step counter (next dropout mask). input: batch x in_chans x H x W,
 * labels: batch ints in [0, classes). loss (mean over the batch) and correct are optional. */
gn_status gn_train_forward_backward(gn_train_graph *g, const float *input, const int *labels,
                                    float *loss, int *correct, gn_error *err);

/* The same training-mode forward and loss without side effects (no backward, no running
 * statistics update, step counter unchanged): for finite differences. logits (optional)
 * receives batch x classes; labels may be NULL when only logits are wanted. */
gn_status gn_train_loss(gn_train_graph *g, const float *input, const int *labels,
                        float *logits, double *loss, int *correct, gn_error *err);

/* Evaluation forward (BN eval mode, no dropout) for `batch` <= the planned batch images. */
gn_status gn_train_eval(gn_train_graph *g, const float *input, int batch, float *logits,
                        gn_error *err);

/* Gradient block with the model's layout: grad of tensor i at grads + tensors[i].offset;
 * zero for BN running statistics. Valid after gn_train_forward_backward. */
float *gn_train_grads(gn_train_graph *g);
gn_model *gn_train_model(gn_train_graph *g);
int64_t gn_train_step_count(const gn_train_graph *g);
/* Resuming: the step counter selects dropout masks, so a checkpoint restores it. */
void gn_train_set_step_count(gn_train_graph *g, int64_t step);
/* Bytes of saved activations + gradient scratch (excluding the parameter-gradient block). */
size_t gn_train_arena_bytes(const gn_train_graph *g);

/* Part of the network run in isolation (gradient checks): one bottleneck, or one of its Ghost
 * modules, at the shapes planned for that block. forward: x -> y (training-mode BN, no
 * running-stat update). backward (dy not NULL): after the forward, dx = d/dx (overwritten)
 * and the part's parameter gradients are ACCUMULATED into gn_train_grads (caller zeroes). */
typedef enum gn_train_part { GN_PART_BLOCK, GN_PART_GHOST1, GN_PART_GHOST2 } gn_train_part;
typedef struct gn_part_shape {
    int in_c, in_h, in_w, out_c, out_h, out_w;
} gn_part_shape;
gn_status gn_train_part_shape(const gn_train_graph *g, int block, gn_train_part part,
                              gn_part_shape *shape, gn_error *err);
gn_status gn_train_part_run(gn_train_graph *g, int block, gn_train_part part, const float *x,
                            float *y, const float *dy, float *dx, gn_error *err);

/* Test hook for finite differences: on = 1 records the ReLU on/off pattern of the last
 * training-mode forward (conv + BN + ReLU nodes, conv_head, and SE's ReLU and hard-sigmoid
 * pieces) and makes later forwards apply that fixed pattern instead; on = 0 restores them. Around the recorded point the
 * frozen network equals the real one wherever no pre-activation changes sign, and it has the
 * same gradient there, but it has no kinks: with BN coupling every unit of a channel, a 1e-3
 * step would otherwise cross some ReLU kink for almost every upstream parameter. Affects the
 * forward only; do not train with it. */
gn_status gn_train_freeze_relu(gn_train_graph *g, int on, gn_error *err);

/* ---- optimizers and schedules (optim.c) -------------------------------------------------- */

typedef enum gn_optim_kind { GN_OPTIM_SGD, GN_OPTIM_ADAMW } gn_optim_kind;

typedef struct gn_optim_options {
    gn_optim_kind kind;
    float momentum;       /* SGD */
    int nesterov;         /* SGD */
    float beta1, beta2;   /* AdamW (0.9, 0.999) */
    float eps;            /* AdamW (1e-8) */
    float weight_decay;   /* SGD: L2 added to the gradient; AdamW: decoupled */
    int no_decay_bn_bias; /* 1: no weight decay on BN gamma/beta and biases (1-D tensors) */
} gn_optim_options;
/* SGD, momentum 0.9, Nesterov, weight decay 4e-5 applied to every parameter. */
gn_optim_options gn_optim_options_default(void);

typedef struct gn_optimizer gn_optimizer;

/* State (momentum / moment buffers) for every learnable tensor of the model. */
gn_status gn_optimizer_create(const gn_model *model, const gn_optim_options *options,
                              gn_optimizer **out, gn_error *err);
void gn_optimizer_free(gn_optimizer *opt);

/* One update of the model's learnable parameters from `grads` (gn_train_grads layout) at
 * learning rate lr, with PyTorch's semantics:
 *   SGD:   d = g + wd * p; buf = momentum * buf + d (buf = d on the first step);
 *          d = nesterov ? d + momentum * buf : buf; p -= lr * d
 *   AdamW: p *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *          p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * BN running statistics are never touched. */
gn_status gn_optimizer_step(gn_optimizer *opt, gn_model *model, const float *grads, float lr,
                            gn_error *err);
int64_t gn_optimizer_steps(const gn_optimizer *opt);
/* Checkpoints: the state buffers (0: SGD momentum / AdamW first moment, 1: AdamW second
 * moment; NULL when the optimizer has none) in the model's layout, and the step count (AdamW's
 * bias correction and SGD's first-step rule depend on it). */
float *gn_optimizer_buffer(gn_optimizer *opt, int which);
void gn_optimizer_set_steps(gn_optimizer *opt, int64_t steps);

/* Learning rate at 0-based `step`:
 * warm-up + cosine: base * (step + 1) / warmup for step < warmup, then
 *   min + (base - min) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2, and min from
 *   step >= total on.
 * step decay: base * gamma^floor(step / step_size). */
float gn_lr_warmup_cosine(int64_t step, float base_lr, int64_t warmup_steps, int64_t total_steps,
                          float min_lr);
float gn_lr_step_decay(int64_t step, float base_lr, int64_t step_size, float gamma);

/* ---- weight averaging (optim.c) ---------------------------------------------------------- */

/* An exponential moving average of every tensor of a model, learnable parameters and BN
 * running statistics alike (as timm's ModelEma), updated after each optimizer step:
 *   avg = r * avg + (1 - r) * model,  r = min(decay, (1 + t) / (10 + t))
 * where t counts earlier updates; the second term keeps a short run from being dominated by
 * the initial weights. Evaluating the average instead of the last weights smooths the
 * step-to-step noise of the final epochs, BN statistics included. */
typedef struct gn_ema gn_ema;

/* decay in [0, 1); the average starts as a copy of the model. */
gn_status gn_ema_create(const gn_model *model, float decay, gn_ema **out, gn_error *err);
void gn_ema_free(gn_ema *ema);
gn_status gn_ema_update(gn_ema *ema, const gn_model *model, gn_error *err);
/* Exchanges the model's tensors with the average (O(1), no copy): call it, evaluate or save
 * the model, and call it again to get the training weights back. */
void gn_ema_swap(gn_ema *ema, gn_model *model);
/* Checkpoints: the averaged tensors in the model's layout, and the update count. */
float *gn_ema_buffer(gn_ema *ema);
int64_t gn_ema_updates(const gn_ema *ema);
void gn_ema_set_updates(gn_ema *ema, int64_t updates);

#endif
