/* Fast operators: descriptors planned once (shapes, strides, fusions, task split, packed
 * weights) and run task by task, on any thread, with a gn_kernels table. They never
 * allocate: each task gets the caller's per-thread scratch (size from *_scratch_floats).
 *
 * Tensors are described by strides: element (b, c, y, x) lives at base + b * bs + c * cs +
 * y * w + x. NCHW has cs = h*w, bs = C*h*w; a session running a batch uses channel-major
 * planes (cs = B*h*w, bs = h*w), which turns each 1x1 conv into one GEMM over B*h*w pixels.
 * With `bv` set (batch a multiple of 8) the batch is innermost instead: (b, c, y, x) at
 * base + c * cs + (y * w + x) * B + b, cs = h*w*B: the GEMM is the same, and depthwise convs,
 * pooling and squeeze-excite vectorise over images, whatever the plane size.
 * Each descriptor has a twin in ops_ref.c; tests/test_kernels.c compares them. */
#ifndef GN_FASTOPS_H
#define GN_FASTOPS_H

#include <stddef.h>

#include "ops/ukernels.h"

/* ---- weight packing (pack.c) ------------------------------------------------------------- */

/* Floats for the packed form of an m x k row-major matrix: ceil(m/MR) panels of k x MR, then
 * ceil(m/MR) * MR biases; rows past m are zero. */
size_t gn_pack_gemm_floats(int m, int k);
/* bias may be NULL (zeros); every weight is multiplied by `scale` (1 for none; squeeze-excite
 * folds its 1/(h*w) mean here). Returns the packed bias (inside dst). */
float *gn_pack_gemm(const float *w, const float *bias, int m, int k, float scale, float *dst);

/* Runs panels [q0, q1) of a packed GEMM over one strip (s->x, s->y, s->n, s->k set), in
 * k-blocks of kc: bias with the first block, activation with the last, partial sums
 * accumulated in y between. Needs !(s->accumulate && s->act != GN_ACT_NONE) when K > kc. */
void gn_gemm_panels(const gn_kernels *kt, const gn_gemm_strip *s, const float *weight,
                    const float *bias, int m, int q0, int q1, int kc);

/* ---- convolutions ------------------------------------------------------------------------ */

typedef enum gn_fconv_kind {
    GN_FCONV_GEMM,   /* 1x1, stride 1, groups 1: packed weights */
    GN_FCONV_IM2COL, /* any kernel/stride, groups 1 (the stem): packed [out][in*k*k] */
    GN_FCONV_DW      /* one input channel per group, channel multiplier `mult` */
} gn_fconv_kind;

typedef struct gn_fconv {
    gn_fconv_kind kind;
    int bv; /* batch-innermost layout for in, out, res (sums then [C][B]) */
    int batch, in_c, in_h, in_w, out_c, out_h, out_w, kernel, stride, pad;
    int mult; /* DW: output channel j reads input channel j / mult */
    size_t in_cs, in_bs, out_cs, out_bs;
    gn_act act;
    int accumulate; /* GEMM, IM2COL: out += act(conv) (the projection shortcut's add) */
    const float *weight, *bias;
    /* DW fusions. res_mode 1 (a Ghost module ending in an identity shortcut):
     * out[j] = act(conv) + res[res_out_c + j], and, once a source plane's outputs are
     * written, in[g] += res[res_src_c + g] (the primary maps get their share of the add). */
    int res_mode, res_out_c, res_src_c;
    size_t res_cs, res_bs;
    /* DW pooling for squeeze-excite: plane sums of the outputs (sum_out_c >= 0) and of the
     * source planes (sum_src_c >= 0, before any residual) into
     * sums[b * sum_bs + (c0 + channel) * sum_cs]. */
    int sum_out_c, sum_src_c;
    size_t sum_cs, sum_bs;
    /* task split (gn_fconv_plan) */
    int ntasks, n_img, n_parts, p_parts;
    size_t npix, img_in, img_out; /* GEMM/IM2COL: pixels per "image" and image strides */
    int chunk;                    /* pixels per L1-sized chunk */
    int kc;                       /* GEMM: input channels per k-block (the chunk's inputs in L1) */
    size_t pitch;                 /* DW: padded source row pitch */
    int dw8;                      /* DW: runs of 8 small planes through kt->dw8 */
} gn_fconv;

/* Run-time pointers. `in` is written only by DW with res_mode (in-place residual). */
typedef struct gn_fio {
    float *in, *out;
    const float *res;
    float *sums;
    float *scratch; /* this thread's */
} gn_fio;

/* Fills the task split for `threads` workers (1: one task). Shapes and strides must be set. */
void gn_fconv_plan(gn_fconv *c, const gn_kernels *kt, int threads);
size_t gn_fconv_scratch_floats(const gn_fconv *c);
void gn_fconv_task(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int task);

/* ---- linear layers (conv_head, classifier, squeeze-excite FCs) --------------------------- */

typedef struct gn_flinear {
    int batch, in_f, out_f;
    gn_act act;
    int packed; /* 1: panel weights, x feature-major [in_f][batch]; 0: row-major, x [batch][in_f] */
    const float *weight, *bias;
    size_t y_fs, y_bs; /* output (b, f) at y[f * y_fs + b * y_bs] */
    /* gate mode (squeeze-excite): instead of storing, multiply plane (b, f) of hw floats at
     * target + b * t_bs + f * t_cs by the output */
    int gate, hw, bv; /* bv: target batch-innermost (gates need packed) */
    size_t t_cs, t_bs;
    int ntasks, rows_per_task;
} gn_flinear;

void gn_flinear_plan(gn_flinear *l, int threads);
size_t gn_flinear_scratch_floats(const gn_flinear *l);
void gn_flinear_task(const gn_kernels *kt, const gn_flinear *l, const float *x, float *y,
                     float *target, float *scratch, int task);

/* ---- global average pooling: y(b, c) = mean of plane (b, c) ---------------------------- */

typedef struct gn_fpool {
    int batch, channels, hw;
    int bv; /* x batch-innermost; y then [C][B] (y_bs == 1) */
    size_t x_cs, x_bs, y_cs, y_bs;
    int ntasks;
} gn_fpool;

void gn_fpool_plan(gn_fpool *p, int threads);
void gn_fpool_task(const gn_kernels *kt, const gn_fpool *p, const float *x, float *y, int task);

/* ---- transpose: y[j][i] = x[i][j], rows x cols (the batch-innermost input copy) --------- */

typedef struct gn_ftranspose {
    int rows, cols;
    size_t ldx, ldy;
    int ntasks;
} gn_ftranspose;

void gn_ftranspose_plan(gn_ftranspose *t, int threads);
void gn_ftranspose_task(const gn_kernels *kt, const gn_ftranspose *t, const float *x, float *y,
                        int task);

/* Tasks per thread: several, so a thread slowed by a neighbour hands work to the others. */
enum { GN_TASKS_PER_THREAD = 4 };

#endif
