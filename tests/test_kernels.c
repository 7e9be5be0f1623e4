/* Fast kernels against their twins, for every kernel table this machine runs (scalar always,
 * AVX2+FMA or NEON when present):
 *   1. each SIMD micro-kernel against its scalar twin (ukernels.h), on odd tiles and tails;
 *   2. each fast operator (fastops.h: packing, task split, fusions) against the reference ops
 *      of ops_ref.c on odd shapes (1, 3, 7, 13 channels; 1x1, 5x7 images; every kernel and
 *      stride the network uses; channel views; accumulate; NCHW and channel-major batches),
 *      with the tasks run one by one in a scrambled order, as a thread pool might. */
#include "core/rng.h"
#include "core/threadpool.h"
#include "ghostnet.h"
#include "model/session_internal.h"
#include "ops/fastops.h"
#include "ops/ops.h"
#include "test_util.h"

static gn_rng rng;

static float *randv(size_t n) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = gn_rng_uniform(&rng) * 2.0f - 1.0f;
    return x;
}

static float *copyv(const float *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static float max_diff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN counts as a failure */
    }
    return m;
}

/* ---- 1. micro-kernels vs scalar twins ---------------------------------------------------- */

static void test_gemm_ukernel(const gn_kernels *kt) {
    static const int ns[] = {1, 2, 7, 8, 9, 10, 13, 16, 17, 24, 25, 40, 47, 49, 50, 98, 100};
    static const int ks[] = {1, 3, 16, 37};
    for (int ni = 0; ni < 17; ni++)
        for (int ki = 0; ki < 4; ki++)
            for (int m = 1; m <= GN_GEMM_MR; m++) {
                const int n = ns[ni], k = ks[ki], ldx = n + 3, ldy = n + 5;
                float *w = randv((size_t)k * GN_GEMM_MR), *b = randv(GN_GEMM_MR);
                float *x = randv((size_t)k * ldx), *y0 = randv((size_t)GN_GEMM_MR * ldy);
                float *y1 = copyv(y0, (size_t)GN_GEMM_MR * ldy);
                const int mode = (ni + m + ki) % 3; /* plain, accumulate, from_y */
                gn_gemm_strip s = {w, b, x, y0, (size_t)ldx, (size_t)ldy, m, n, k,
                                   (gn_act)((ni + ki + m) % 5), mode == 1, mode == 2};
                f32_gemm_4x8_scalar(&s);
                s.y = y1;
                kt->gemm(&s);
                /* also checks nothing past n or past row m was written */
                CHECK_MSG(max_diff(y0, y1, (size_t)GN_GEMM_MR * ldy) <= 1e-5f * (k + 1),
                          "%s gemm m%d n%d k%d", kt->name, m, n, k);
                free(w);
                free(b);
                free(x);
                free(y0);
                free(y1);
            }
}

static void test_gemv_ukernel(const gn_kernels *kt) {
    static const int dims[][2] = {{1, 1}, {3, 7}, {4, 8}, {5, 13}, {13, 33}, {20, 72}, {9, 1280},
                                  {6, 47}, {2, 100}};
    for (int t = 0; t < 9; t++) {
        const int m = dims[t][0], k = dims[t][1];
        float *w = randv((size_t)m * (k + 2)), *x = randv((size_t)k), *b = randv((size_t)m);
        float y0[20], y1[20];
        gn_gemv_args a = {w, (size_t)k + 2, x, t & 1 ? b : NULL, y0, m, k, (gn_act)(t % 5)};
        f32_gemv_4x8_scalar(&a);
        a.y = y1;
        kt->gemv(&a);
        CHECK_MSG(max_diff(y0, y1, (size_t)m) <= 1e-5f * k, "%s gemv %dx%d", kt->name, m, k);
        free(w);
        free(x);
        free(b);
    }
}

static void test_dw_ukernels(const gn_kernels *kt) {
    static const int sizes[][2] = {{1, 1}, {5, 7}, {2, 9}, {13, 11}, {8, 16}, {17, 17},
                                   {3, 31}, {7, 7}, {14, 14}, {100, 120}};
    for (int si = 0; si < 10; si++)
        for (int k = 1; k <= 7; k += 2)
            for (int s = 1; s <= 2; s++) {
                const int ih = sizes[si][0], iw = sizes[si][1], pad = k / 2;
                const int oh = (ih + 2 * pad - k) / s + 1, ow = (iw + 2 * pad - k) / s + 1;
                const size_t pitch = gn_dw_pitch(iw, ow, k, s), slot = gn_dw_slot_floats(pitch, s);
                const int rr = gn_dw_ring_rows(ih, k, s, slot);
                float *ring = calloc((size_t)(rr + 1) * slot, sizeof *ring);
                gn_dw_fn fn = k == 3 ? (s == 1 ? kt->dw3s1 : kt->dw3s2)
                            : k == 5 ? (s == 1 ? kt->dw5s1 : kt->dw5s2)
                                     : (s == 1 ? kt->dwks1 : kt->dwks2);
                const size_t on = (size_t)oh * ow;
                float *w = randv((size_t)k * k), *res = randv(on);
                float *y0 = randv(on + 8), *y1 = copyv(y0, on + 8);
                float sum0 = 0, sum1 = 0;
                for (int variant = 0; variant < 3; variant++) {
                    /* two planes through the same ring: the second must not see the first */
                    float *x = randv((size_t)ih * iw);
                    gn_dw_args a = {x, ring, ring + (size_t)rr * slot, pitch, rr, w, 0.25f, y0,
                                    variant ? res : NULL, variant ? &sum0 : NULL, ih, iw, oh, ow,
                                    k, s, (gn_act)((si + k + variant) % 5)};
                    f32_dwconv_kxk_scalar(&a);
                    a.y = y1;
                    a.sum = variant ? &sum1 : NULL;
                    fn(&a);
                    CHECK_MSG(max_diff(y0, y1, on + 8) <= 1e-5f * (k * k + 1),
                              "%s dw %dx%d k%d s%d variant %d", kt->name, ih, iw, k, s, variant);
                    if (variant)
                        CHECK_MSG(fabsf(sum0 - sum1) <= 1e-5f * (float)(on + 1) * (k * k + 1),
                                  "%s dw sum %g vs %g", kt->name, (double)sum0, (double)sum1);
                    free(x);
                }
                free(ring);
                free(w);
                free(res);
                free(y0);
                free(y1);
            }
}

/* 8 planes at once (kt->dw8, when the table has one) against the scalar twin: strided
 * planes, residual, sums, every activation; the guard floats past each plane stay as they
 * were. The same scratch serves several calls (only its padded block is zeroed, once). */
static void test_dw8_ukernel(const gn_kernels *kt) {
    if (!kt->dw8) return;
    static const int sizes[][2] = {{1, 1}, {2, 3}, {5, 7}, {7, 7}, {9, 4}, {14, 14}, {13, 11}, {28, 28}};
    for (int si = 0; si < 8; si++)
        for (int k = 1; k <= 7; k += 2)
            for (int s = 1; s <= 2; s++) {
                const int ih = sizes[si][0], iw = sizes[si][1], pad = k / 2;
                const int oh = (ih + 2 * pad - k) / s + 1, ow = (iw + 2 * pad - k) / s + 1;
                const size_t on = (size_t)oh * ow, ldx = (size_t)ih * iw + 3, ldy = on + 5, ldr = on + 2;
                const size_t sf = gn_dw8_scratch_floats(ih, iw, oh, ow, k);
                float *scratch = calloc(sf, sizeof *scratch);
                float *w = randv((size_t)8 * k * k), *bias = randv(8), *res = randv(8 * ldr);
                float *y0 = randv(8 * ldy), *y1 = copyv(y0, 8 * ldy);
                float s0[16], s1[16];
                for (int variant = 0; variant < 3; variant++) {
                    float *x = randv(8 * ldx);
                    gn_dw8_args a = {x, ldx, y0, ldy, variant ? res : NULL, ldr,
                                     variant == 2 ? s0 : NULL, 2, w, bias, scratch,
                                     ih, iw, oh, ow, k, s, (gn_act)((si + k + s + variant) % 5)};
                    f32_dwconv_kxk_c8_scalar(&a);
                    a.y = y1;
                    a.sum = variant == 2 ? s1 : NULL;
                    kt->dw8(&a);
                    CHECK_MSG(max_diff(y0, y1, 8 * ldy) <= 1e-5f * (k * k + 1),
                              "%s dw8 %dx%d k%d s%d variant %d", kt->name, ih, iw, k, s, variant);
                    if (variant == 2)
                        for (int c = 0; c < 8; c++)
                            CHECK_MSG(fabsf(s0[2 * c] - s1[2 * c]) <= 1e-5f * (float)(on + 1) * (k * k + 1),
                                      "%s dw8 sum %g vs %g", kt->name, (double)s0[2 * c], (double)s1[2 * c]);
                    free(x);
                }
                free(scratch);
                free(w);
                free(bias);
                free(res);
                free(y0);
                free(y1);
            }
}

static void test_batch_ukernels(const gn_kernels *kt) {
    static const int sizes[][2] = {{1, 1}, {2, 2}, {4, 4}, {5, 7}, {7, 7}, {3, 10}};
    static const int batches[] = {8, 16, 24, 40, 64};
    for (int si = 0; si < 6; si++)
        for (int bi = 0; bi < 5; bi++)
            for (int k = 1; k <= 5; k += 2)
                for (int s = 1; s <= 2; s++) {
                    const int ih = sizes[si][0], iw = sizes[si][1], nb = batches[bi], pad = k / 2;
                    const int oh = (ih + 2 * pad - k) / s + 1, ow = (iw + 2 * pad - k) / s + 1;
                    const size_t on = (size_t)oh * ow * nb;
                    float *x = randv((size_t)ih * iw * nb), *w = randv((size_t)k * k);
                    float *res = randv(on), *y0 = randv(on), *y1 = copyv(y0, on);
                    float s0[64], s1[64];
                    const int variant = (si + bi + k + s) % 2;
                    gn_dwb_args a = {x, w, -0.125f, y0, variant ? res : NULL, variant ? s0 : NULL,
                                     nb, ih, iw, oh, ow, k, s, (gn_act)((si + bi + k) % 5)};
                    f32_dwconv_kxk_b1_scalar(&a);
                    a.y = y1;
                    a.sum = variant ? s1 : NULL;
                    kt->dwb(&a);
                    CHECK_MSG(max_diff(y0, y1, on) <= 1e-5f * (k * k + 1), "%s dwb %dx%d b%d k%d s%d",
                              kt->name, ih, iw, nb, k, s);
                    if (variant)
                        CHECK_MSG(max_diff(s0, s1, (size_t)nb) <= 1e-5f * (float)(oh * ow) * (k * k + 1),
                                  "%s dwb sums %dx%d b%d", kt->name, ih, iw, nb);
                    /* pixel sums and per-image scaling */
                    f32_sum_b1_scalar(x, (size_t)ih * iw, nb, s0);
                    kt->sum_b(x, (size_t)ih * iw, nb, s1);
                    CHECK_MSG(max_diff(s0, s1, (size_t)nb) <= 1e-5f * (float)(ih * iw), "%s sum_b", kt->name);
                    float *x2 = copyv(x, (size_t)ih * iw * nb);
                    f32_scale_b1_scalar(x, (size_t)ih * iw, nb, s0);
                    kt->scale_b(x2, (size_t)ih * iw, nb, s0);
                    CHECK_MSG(max_diff(x, x2, (size_t)ih * iw * nb) == 0.0f, "%s scale_b", kt->name);
                    free(x2);
                    free(x);
                    free(w);
                    free(res);
                    free(y0);
                    free(y1);
                }
    /* transposes of ragged shapes, into a strided destination */
    for (int rows = 1; rows <= 19; rows += 6)
        for (int cols = 1; cols <= 27; cols += 13) {
            float *x = randv((size_t)rows * (cols + 3)), *y0 = randv((size_t)cols * (rows + 2));
            float *y1 = copyv(y0, (size_t)cols * (rows + 2));
            f32_transpose_1x1_scalar(x, (size_t)cols + 3, y0, (size_t)rows + 2, rows, cols);
            kt->transpose(x, (size_t)cols + 3, y1, (size_t)rows + 2, rows, cols);
            CHECK_MSG(max_diff(y0, y1, (size_t)cols * (rows + 2)) == 0.0f, "%s transpose %dx%d",
                      kt->name, rows, cols);
            free(x);
            free(y0);
            free(y1);
        }
}

static void test_small_ukernels(const gn_kernels *kt) {
    /* im2col rows (k taps at once) over every start, stride, length and k around the row */
    float row[37];
    for (int i = 0; i < 37; i++) row[i] = (float)i + 1.0f;
    for (int s = 1; s <= 3; s++)
        for (int k = 1; k <= 7; k += 2)
            for (int ix0 = -4; ix0 <= 40; ix0 += 1)
                for (int n = 1; n <= 30; n += 7) {
                    float a[7 * 33], b[7 * 33];
                    const size_t ldd = (size_t)n + 2;
                    memset(a, 0x7f, sizeof a);
                    memset(b, 0x7f, sizeof b);
                    f32_im2col_kx_scalar(ix0 & 4 ? NULL : row, 37, ix0, s, n, k, a, ldd);
                    kt->im2col(ix0 & 4 ? NULL : row, 37, ix0, s, n, k, b, ldd);
                    CHECK_MSG(memcmp(a, b, sizeof a) == 0, "%s im2col s%d k%d ix0 %d n %d", kt->name,
                              s, k, ix0, n);
                }
    { /* a long row: the kernels' blocks of columns */
        const int iw = 777, n = 389;
        float *r = randv((size_t)iw), *a = randv((size_t)5 * n), *b = copyv(a, (size_t)5 * n);
        for (int ix0 = -2; ix0 <= 1; ix0++) {
            f32_im2col_kx_scalar(r, iw, ix0, 2, n, 5, a, (size_t)n);
            kt->im2col(r, iw, ix0, 2, n, 5, b, (size_t)n);
            CHECK_MSG(memcmp(a, b, (size_t)5 * n * sizeof(float)) == 0, "%s im2col long ix0 %d",
                      kt->name, ix0);
        }
        free(r);
        free(a);
        free(b);
    }
    for (size_t n = 0; n < 70; n += 3) {
        float *x = randv(n), *y0 = randv(n + 1), *y1 = copyv(y0, n + 1);
        CHECK_NEAR(kt->sum(x, n), f32_sum_scalar(x, n), 1e-5 * (n + 1));
        f32_scale_scalar(y0, n, 0.75f);
        kt->scale(y1, n, 0.75f);
        f32_add_scalar(y0, x, n);
        kt->add(y1, x, n);
        CHECK_MSG(max_diff(y0, y1, n + 1) <= 1e-6f, "%s scale/add n %zu", kt->name, n);
        free(x);
        free(y0);
        free(y1);
    }
}

/* ---- 2. operators vs the reference ------------------------------------------------------- */

/* Runs every task of an op, in a scrambled order, each with its own scratch. */
typedef struct task_runner {
    const gn_kernels *kt;
    const gn_fconv *c;
    gn_fio io;
} task_runner;

static void run_all_tasks(const gn_kernels *kt, const gn_fconv *c, gn_fio io) {
    const size_t scratch_n = gn_fconv_scratch_floats(c);
    float *scratch = malloc((scratch_n ? scratch_n : 1) * sizeof *scratch);
    io.scratch = scratch;
    for (int i = 0; i < c->ntasks; i++) {
        int t = (int)(((long)i * 7 + 3) % c->ntasks);
        if (c->ntasks % 7 == 0) t = c->ntasks - 1 - i;
        gn_fconv_task(kt, c, &io, t);
    }
    free(scratch);
}

/* Copies image-major (NCHW, images `ibs` apart) to channel-major (channel c of image b at
 * c * B * hw + b * hw), or back. */
static void to_cm(const float *x, int batch, int c, size_t hw, size_t ibs, float *y) {
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < c; ch++)
            memcpy(y + ((size_t)ch * batch + b) * hw, x + b * ibs + ch * hw, hw * sizeof *x);
}

/* NCHW -> batch-innermost ((c * hw + p) * B + b), and back. */
static void to_bv(const float *x, int batch, int c, size_t hw, size_t ibs, float *y) {
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++) y[((size_t)ch * hw + p) * batch + b] = x[b * ibs + ch * hw + p];
}

static void from_bv(const float *y, int batch, int c, size_t hw, size_t ibs, float *x) {
    for (int b = 0; b < batch; b++)
        for (int ch = 0; ch < c; ch++)
            for (size_t p = 0; p < hw; p++) x[b * ibs + ch * hw + p] = y[((size_t)ch * hw + p) * batch + b];
}

typedef struct conv_case {
    int batch, in_c, h, w, full_out, keep, kernel, stride, groups;
    gn_act act;
    int accumulate, cm, threads;
} conv_case;

/* One conv through gn_conv2d_ref and through the fast op, into a channel view (two channels
 * before it in a wider tensor), NCHW or channel-major. */
static void compare_fconv(const gn_kernels *kt, conv_case cc) {
    gn_conv_params p;
    gn_conv_params_dense(&p, cc.batch, cc.in_c, cc.h, cc.w, cc.full_out, cc.kernel, cc.stride,
                         cc.groups, cc.act);
    p.out_c = cc.keep;
    p.accumulate = cc.accumulate;
    const int extra = 2, wide = cc.keep + extra;
    const size_t in_hw = (size_t)cc.h * cc.w, hw = (size_t)p.out_h * p.out_w;
    p.out_image_stride = (size_t)wide * hw;
    const int in_per_group = cc.in_c / cc.groups;
    const size_t per_out = (size_t)in_per_group * cc.kernel * cc.kernel;
    float *x = randv((size_t)cc.batch * cc.in_c * in_hw), *w = randv(cc.full_out * per_out);
    float *bias = randv((size_t)cc.full_out);
    const size_t out_n = (size_t)cc.batch * wide * hw;
    float *want = randv(out_n), *got = malloc(out_n * sizeof *got);
    if (cc.cm == 2) to_bv(want, cc.batch, wide, hw, (size_t)wide * hw, got);
    else if (cc.cm) to_cm(want, cc.batch, wide, hw, (size_t)wide * hw, got);
    else memcpy(got, want, out_n * sizeof *got);
    gn_conv2d_ref(&p, x, w, bias, want + extra * hw);

    gn_fconv c;
    memset(&c, 0, sizeof c);
    c.batch = cc.batch;
    c.in_c = cc.in_c;
    c.in_h = cc.h;
    c.in_w = cc.w;
    c.out_c = cc.keep;
    c.out_h = p.out_h;
    c.out_w = p.out_w;
    c.kernel = cc.kernel;
    c.stride = cc.stride;
    c.pad = cc.kernel / 2;
    c.act = cc.act;
    c.accumulate = cc.accumulate;
    c.sum_out_c = c.sum_src_c = -1;
    float *xin = x, *packed = NULL;
    if (cc.cm) {
        xin = malloc((size_t)cc.batch * cc.in_c * in_hw * sizeof *xin);
        (cc.cm == 2 ? to_bv : to_cm)(x, cc.batch, cc.in_c, in_hw, cc.in_c * in_hw, xin);
    }
    c.bv = cc.cm == 2;
    c.in_cs = cc.cm ? cc.batch * in_hw : in_hw;
    c.in_bs = cc.cm == 2 ? 1 : cc.cm ? in_hw : cc.in_c * in_hw;
    c.out_cs = cc.cm ? cc.batch * hw : hw;
    c.out_bs = cc.cm == 2 ? 1 : cc.cm ? hw : wide * hw;
    if (cc.groups == 1) {
        c.kind = cc.kernel == 1 && cc.stride == 1 ? GN_FCONV_GEMM : GN_FCONV_IM2COL;
        packed = malloc(gn_pack_gemm_floats(cc.keep, (int)per_out) * sizeof *packed);
        c.weight = packed;
        c.bias = gn_pack_gemm(w, bias, cc.keep, (int)per_out, 1.0f, packed);
    } else {
        c.kind = GN_FCONV_DW;
        c.in_c = cc.groups;
        c.mult = cc.full_out / cc.groups;
        c.weight = w;
        c.bias = bias;
    }
    gn_fconv_plan(&c, kt, cc.threads);
    gn_fio io = {xin, got + extra * c.out_cs, NULL, NULL, NULL};
    run_all_tasks(kt, &c, io);
    float *back = got;
    if (cc.cm == 2) {
        back = malloc(out_n * sizeof *back);
        from_bv(got, cc.batch, wide, hw, (size_t)wide * hw, back);
    } else if (cc.cm) { /* channel-major -> NCHW for the comparison */
        back = malloc(out_n * sizeof *back);
        for (int b = 0; b < cc.batch; b++)
            for (int ch = 0; ch < wide; ch++)
                memcpy(back + ((size_t)b * wide + ch) * hw, got + ((size_t)ch * cc.batch + b) * hw,
                       hw * sizeof *back);
    }
    const float d = max_diff(want, back, out_n);
    CHECK_MSG(d <= 1e-5f * (float)(per_out + 1), "%s conv b%d c%d %dx%d -> %d/%d k%d s%d g%d act%d acc%d cm%d t%d: %g",
              kt->name, cc.batch, cc.in_c, cc.h, cc.w, cc.keep, cc.full_out, cc.kernel, cc.stride,
              cc.groups, (int)cc.act, cc.accumulate, cc.cm, cc.threads, (double)d);
    if (back != got) free(back);
    if (xin != x) free(xin);
    free(packed);
    free(x);
    free(w);
    free(bias);
    free(want);
    free(got);
}

static void test_conv_ops(const gn_kernels *kt) {
    static const int channels[] = {1, 3, 7, 13};
    static const int sizes[][2] = {{1, 1}, {5, 7}, {13, 11}, {2, 9}};
    int n = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int si = 0; si < 4; si++)
            for (int k = 1; k <= 5; k += 2)
                for (int s = 1; s <= 2; s++, n++) {
                    const int c = channels[ci], h = sizes[si][0], w = sizes[si][1];
                    const gn_act act = (gn_act)(n % 5);
                    const int th = 1 + n % 3, cm = n & 1, b = 1 + (n >> 1) % 3;
                    /* dense (GEMM for 1x1/1, im2col otherwise) */
                    compare_fconv(kt, (conv_case){b, c, h, w, channels[(ci + 1) % 4],
                                                  channels[(ci + 1) % 4], k, s, 1, act, 0, cm, th});
                    compare_fconv(kt, (conv_case){2, c, h, w, 13, 13, k, s, 1, GN_ACT_NONE, 1, !cm, th});
                    /* depthwise, and multiplier 3 keeping a prefix (a Ghost cheap op, s = 4) */
                    compare_fconv(kt, (conv_case){b, c, h, w, c, c, k, s, c, act, 0, cm, th});
                    compare_fconv(kt, (conv_case){b, c, h, w, 3 * c, 3 * c - 1, k, 1, c, act, 0, !cm, th});
                }
    /* the network's shapes: wide 1x1 with tile tails both ways, the 3-channel stem, 7x7 planes */
    compare_fconv(kt, (conv_case){1, 37, 7, 7, 61, 61, 1, 1, 1, GN_ACT_RELU, 0, 0, 2});
    compare_fconv(kt, (conv_case){3, 160, 7, 7, 480, 480, 1, 1, 1, GN_ACT_RELU, 0, 1, 2});
    /* K > 192: k-blocks, the activation on the total, accumulate into the output */
    compare_fconv(kt, (conv_case){1, 481, 7, 7, 57, 57, 1, 1, 1, GN_ACT_HSWISH, 0, 0, 2});
    compare_fconv(kt, (conv_case){2, 300, 5, 7, 13, 13, 1, 1, 1, GN_ACT_NONE, 1, 1, 3});
    compare_fconv(kt, (conv_case){8, 672, 4, 4, 56, 56, 1, 1, 1, GN_ACT_RELU, 0, 2, 2});
    compare_fconv(kt, (conv_case){1, 16, 28, 28, 23, 23, 1, 1, 1, GN_ACT_NONE, 1, 0, 4});
    compare_fconv(kt, (conv_case){2, 3, 33, 31, 16, 16, 3, 2, 1, GN_ACT_RELU, 0, 1, 2});
    compare_fconv(kt, (conv_case){1, 3, 64, 64, 16, 16, 3, 2, 1, GN_ACT_RELU, 0, 0, 3});
    compare_fconv(kt, (conv_case){3, 1, 28, 28, 16, 16, 3, 1, 1, GN_ACT_RELU, 0, 1, 2});
    compare_fconv(kt, (conv_case){1, 72, 56, 56, 72, 72, 5, 2, 72, GN_ACT_NONE, 0, 0, 2});
    compare_fconv(kt, (conv_case){2, 48, 29, 31, 48, 48, 3, 2, 48, GN_ACT_NONE, 0, 1, 2});
    /* batch-innermost: every op kind, odd channels and planes, batches 8..32 */
    n = 0;
    for (int ci = 0; ci < 4; ci++)
        for (int si = 0; si < 4; si++)
            for (int k = 1; k <= 5; k += 2)
                for (int s = 1; s <= 2; s++, n++) {
                    const int c = channels[ci], h = sizes[si][0], w = sizes[si][1];
                    const int b = 8 * (1 + n % 3), th = 1 + n % 3;
                    compare_fconv(kt, (conv_case){b, c, h, w, 7, 7, k, s, 1, (gn_act)(n % 5), n & 1, 2, th});
                    compare_fconv(kt, (conv_case){b, c, h, w, c, c, k, s, c, (gn_act)(n % 5), 0, 2, th});
                    compare_fconv(kt, (conv_case){b, c, h, w, 2 * c, 2 * c - 1, k, 1, c, GN_ACT_RELU, 0, 2, th});
                }
    compare_fconv(kt, (conv_case){16, 3, 33, 31, 16, 16, 3, 2, 1, GN_ACT_RELU, 0, 2, 2});
    compare_fconv(kt, (conv_case){8, 160, 4, 4, 480, 480, 1, 1, 1, GN_ACT_RELU, 0, 2, 2});
}

/* Depthwise fusions: squeeze-excite sums, and the identity residual of a Ghost module. */
static void test_dw_fusions(const gn_kernels *kt) {
    for (int t = 0; t < 9; t++) {
        const int bv = t >= 6; /* batch-innermost: pixel stride = batch */
        const int batch = bv ? 8 * (t - 5) : 1 + t % 3, init = 5 + t, mult = 1 + t % 2;
        const int keep = init * mult - (t & 1);
        const int h = 3 + t % 6 * 2, w = 9 - t % 6, k = t % 6 < 3 ? 3 : 5, cm = t & 1;
        const int outc = init + keep; /* the module's output tensor */
        const size_t hw = (size_t)h * w, cs = cm || bv ? batch * hw : hw;
        const size_t bs = bv ? 1 : cm ? hw : outc * hw, ps = bv ? (size_t)batch : 1;
        float *y = randv((size_t)batch * outc * hw), *res = randv((size_t)batch * outc * hw);
        float *wt = randv((size_t)keep * k * k), *bias = randv((size_t)keep);
        float *want = copyv(y, (size_t)batch * outc * hw);
        float *sums = malloc(sizeof(float) * batch * outc), *want_sums = malloc(sizeof(float) * batch * outc);
        float *plane = malloc(hw * sizeof *plane), *oplane = malloc(hw * sizeof *oplane);
        /* reference channel by channel, planes gathered from the layout */
#define AT(b, c, i) ((b) * bs + (size_t)(c) * cs + (i) * ps)
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < keep; j++) {
                gn_conv_params p;
                gn_conv_params_dense(&p, 1, 1, h, w, 1, k, 1, 1, GN_ACT_RELU);
                for (size_t i = 0; i < hw; i++) plane[i] = y[AT(b, j / mult, i)];
                gn_conv2d_ref(&p, plane, wt + (size_t)j * k * k, bias + j, oplane);
                for (size_t i = 0; i < hw; i++) want[AT(b, init + j, i)] = oplane[i] + res[AT(b, init + j, i)];
            }
        for (int b = 0; b < batch; b++)
            for (int g = 0; g < init; g++)
                for (size_t i = 0; i < hw; i++) want[AT(b, g, i)] += res[AT(b, g, i)];
        /* sums [B][C] for the planar layouts, [C][B] for batch-innermost */
        const size_t sum_cs = bv ? (size_t)batch : 1, sum_bs = bv ? 1 : (size_t)outc;
        for (int b = 0; b < batch; b++)
            for (int ch = 0; ch < outc; ch++) {
                double s = 0;
                for (size_t i = 0; i < hw; i++) s += want[AT(b, ch, i)];
                want_sums[b * sum_bs + ch * sum_cs] = (float)s;
            }
#undef AT
        gn_fconv c;
        memset(&c, 0, sizeof c);
        c.kind = GN_FCONV_DW;
        c.bv = bv;
        c.batch = batch;
        c.in_c = init;
        c.in_h = c.out_h = h;
        c.in_w = c.out_w = w;
        c.out_c = keep;
        c.kernel = k;
        c.stride = 1;
        c.pad = k / 2;
        c.mult = mult;
        c.in_cs = c.out_cs = c.res_cs = cs;
        c.in_bs = c.out_bs = c.res_bs = bs;
        c.act = GN_ACT_RELU;
        c.weight = wt;
        c.bias = bias;
        c.res_mode = 1;
        c.res_out_c = init;
        c.res_src_c = 0;
        /* sums of the source planes are taken before the residual: check the outputs only */
        c.sum_out_c = init;
        c.sum_src_c = -1;
        c.sum_cs = sum_cs;
        c.sum_bs = sum_bs;
        gn_fconv_plan(&c, kt, 1 + t % 3);
        gn_fio io = {y, y + (size_t)init * cs, res, sums, NULL};
        run_all_tasks(kt, &c, io);
        CHECK_MSG(max_diff(want, y, (size_t)batch * outc * hw) <= 1e-5f * (k * k + 2),
                  "%s dw residual t%d", kt->name, t);
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < keep; j++) {
                const size_t at = b * sum_bs + (init + j) * sum_cs;
                CHECK_NEAR(sums[at], want_sums[at], 1e-4 * hw);
            }
        free(sums);
        free(want_sums);
        free(plane);
        free(oplane);
        free(y);
        free(res);
        free(wt);
        free(bias);
        free(want);
    }
}

static void test_linear_and_pool(const gn_kernels *kt) {
    static const int dims[][3] = {{1, 1, 1}, {3, 13, 7}, {2, 1280, 10}, {5, 17, 33}, {16, 96, 130},
                                  {8, 20, 72}};
    for (int t = 0; t < 6; t++)
        for (int packed = 0; packed <= 1; packed++) {
            const int batch = dims[t][0], in_f = dims[t][1], out_f = dims[t][2];
            float *x = randv((size_t)batch * in_f), *w = randv((size_t)in_f * out_f);
            float *bias = randv((size_t)out_f), *want = malloc(sizeof(float) * batch * out_f);
            float *got = malloc(sizeof(float) * batch * out_f);
            gn_linear_ref(x, batch, in_f, out_f, w, bias, GN_ACT_HSIGMOID, want);
            gn_flinear l;
            memset(&l, 0, sizeof l);
            l.batch = batch;
            l.in_f = in_f;
            l.out_f = out_f;
            l.act = GN_ACT_HSIGMOID;
            l.packed = packed;
            l.y_fs = 1;
            l.y_bs = (size_t)out_f;
            float *pw = NULL, *xin = x;
            if (packed) {
                pw = malloc(gn_pack_gemm_floats(out_f, in_f) * sizeof *pw);
                l.weight = pw;
                l.bias = gn_pack_gemm(w, bias, out_f, in_f, 1.0f, pw);
                xin = malloc(sizeof(float) * batch * in_f); /* feature-major */
                for (int b = 0; b < batch; b++)
                    for (int k = 0; k < in_f; k++) xin[(size_t)k * batch + b] = x[(size_t)b * in_f + k];
            } else {
                l.weight = w;
                l.bias = bias;
            }
            gn_flinear_plan(&l, 1 + t % 3);
            float *scratch = malloc(gn_flinear_scratch_floats(&l) * sizeof *scratch);
            for (int i = l.ntasks - 1; i >= 0; i--) gn_flinear_task(kt, &l, xin, got, NULL, scratch, i);
            CHECK_MSG(max_diff(want, got, (size_t)batch * out_f) <= 1e-5f * in_f,
                      "%s linear b%d %d->%d packed %d", kt->name, batch, in_f, out_f, packed);
            /* gate mode: planes of 3 floats scaled by the outputs */
            float *planes = malloc(sizeof(float) * batch * out_f * 3);
            for (size_t i = 0; i < (size_t)batch * out_f * 3; i++) planes[i] = 2.0f;
            l.gate = 1;
            l.hw = 3;
            l.t_cs = 3;
            l.t_bs = (size_t)out_f * 3;
            for (int i = 0; i < l.ntasks; i++) gn_flinear_task(kt, &l, xin, NULL, planes, scratch, i);
            float worst = 0;
            for (int b = 0; b < batch; b++)
                for (int f = 0; f < out_f; f++)
                    for (int i = 0; i < 3; i++)
                        worst = fmaxf(worst, fabsf(planes[((size_t)b * out_f + f) * 3 + i] -
                                                   2.0f * want[(size_t)b * out_f + f]));
            CHECK_MSG(worst <= 2e-5f * in_f, "%s gate b%d %d->%d", kt->name, batch, in_f, out_f);
            if (packed && batch % 8 == 0) { /* batch-innermost planes: (f, p, b) */
                for (size_t i = 0; i < (size_t)batch * out_f * 3; i++) planes[i] = 2.0f;
                l.bv = 1;
                l.t_cs = (size_t)3 * batch;
                l.t_bs = 1;
                for (int i = 0; i < l.ntasks; i++) gn_flinear_task(kt, &l, xin, NULL, planes, scratch, i);
                worst = 0;
                for (int b = 0; b < batch; b++)
                    for (int f = 0; f < out_f; f++)
                        for (int i = 0; i < 3; i++)
                            worst = fmaxf(worst, fabsf(planes[((size_t)f * 3 + i) * batch + b] -
                                                       2.0f * want[(size_t)b * out_f + f]));
                CHECK_MSG(worst <= 2e-5f * in_f, "%s gate bv b%d %d->%d", kt->name, batch, in_f, out_f);
            }
            free(planes);
            free(scratch);
            if (xin != x) free(xin);
            free(pw);
            free(x);
            free(w);
            free(bias);
            free(want);
            free(got);
        }
    /* pooling, NCHW into [B][C], channel-major and batch-innermost into [C][B] */
    for (int cm = 0; cm <= 2; cm++) {
        const int batch = cm == 2 ? 16 : 3, ch = 13, hw = 49;
        float *x = randv((size_t)batch * ch * hw), want[16 * 13], got[16 * 13];
        gn_global_avgpool_ref(x, batch, ch, hw, (size_t)ch * hw, want);
        float *xl = x;
        if (cm) {
            xl = malloc(sizeof(float) * batch * ch * hw);
            (cm == 2 ? to_bv : to_cm)(x, batch, ch, hw, (size_t)ch * hw, xl);
        }
        gn_fpool p = {.batch = batch, .channels = ch, .hw = hw, .bv = cm == 2,
                      .x_cs = cm ? (size_t)batch * hw : (size_t)hw,
                      .x_bs = cm == 2 ? 1 : cm ? (size_t)hw : (size_t)ch * hw,
                      .y_cs = cm ? (size_t)batch : 1, .y_bs = cm ? 1 : (size_t)ch};
        gn_fpool_plan(&p, 3);
        for (int t = 0; t < p.ntasks; t++) gn_fpool_task(kt, &p, xl, got, t);
        for (int b = 0; b < batch; b++)
            for (int c = 0; c < ch; c++)
                CHECK_NEAR(got[cm ? c * batch + b : b * ch + c], want[b * ch + c], 1e-5);
        if (xl != x) free(xl);
        free(x);
    }
}

/* ---- thread pool ------------------------------------------------------------------------- */

typedef struct pool_ctx {
    int *hits;
    int threads;
    int bad_thread;
} pool_ctx;

static void count_task(void *arg, int task, int thread) {
    pool_ctx *c = arg;
    if (thread < 0 || thread >= c->threads) c->bad_thread = 1;
    c->hits[task]++; /* each task index is handed out once: no two threads write one slot */
}

static void test_threadpool(void) {
    for (int threads = 1; threads <= 4; threads++) {
        gn_threadpool *p = NULL;
        gn_error e;
        CHECK(gn_threadpool_create(threads, &p, &e) == GN_OK);
        if (!p) continue;
        CHECK(gn_threadpool_size(p) == threads);
        int hits[97];
        for (int round = 0; round < 200; round++) {
            const int n = 1 + (round * 13) % 97;
            memset(hits, 0, sizeof hits);
            pool_ctx c = {hits, threads, 0};
            gn_threadpool_run(p, count_task, &c, n);
            int ok = !c.bad_thread;
            for (int i = 0; i < n; i++) ok &= hits[i] == 1;
            CHECK_MSG(ok, "pool of %d, round %d: a task ran twice or never", threads, round);
        }
        gn_threadpool_free(p);
    }
    CHECK(gn_cpu_count() >= 1);
}

/* ---- whole network: every layout and thread count against the reference plan ------------ */

static void compare_sessions(const gn_model *m, int batch, int size, int threads, int taps,
                             int want_group) {
    const gn_config *c = gn_model_config(m);
    const size_t in_n = (size_t)batch * c->in_chans * size * size, out_n = (size_t)batch * c->num_classes;
    float *x = randv(in_n), *want = malloc(out_n * sizeof *want), *got = malloc(out_n * sizeof *got);
    gn_session_options o = gn_session_options_default();
    o.force_reference = 1;
    gn_session *s = NULL;
    gn_error e;
    CHECK(gn_session_create(m, batch, size, size, &o, &s, &e) == GN_OK);
    CHECK(s && gn_session_run(s, x, want, &e) == GN_OK);
    gn_session_free(s);
    o.force_reference = 0;
    o.num_threads = threads;
    o.keep_taps = taps;
    CHECK(gn_session_create(m, batch, size, size, &o, &s, &e) == GN_OK);
    if (s && want_group) /* the case meant to run in several groups does */
        CHECK_MSG(gn_session_group(s) == want_group, "group of %d, expected %d", gn_session_group(s),
                  want_group);
    for (int run = 0; run < 2; run++) { /* a second run must not see the first one's state */
        CHECK(s && gn_session_run(s, x, got, &e) == GN_OK);
        float scale = 0;
        for (size_t i = 0; i < out_n; i++) scale = fmaxf(scale, fabsf(want[i]));
        const float d = max_diff(want, got, out_n);
        CHECK_MSG(d <= 1e-4f * scale && scale > 0, "session in%d %dx%d batch %d threads %d taps %d: diff %g of %g",
                  c->in_chans, size, size, batch, threads, taps, (double)d, (double)scale);
    }
    gn_session_free(s);
    free(x);
    free(want);
    free(got);
}

static void test_sessions(void) {
    gn_config c = gn_config_default();
    c.width = 0.5f;
    c.num_classes = 10;
    gn_model *m = NULL;
    CHECK(gn_model_create(&c, &m, NULL) == GN_OK);
    if (!m) return;
    gn_model_init_random(m, 5);
    compare_sessions(m, 1, 33, 1, 0, 0);  /* NCHW */
    compare_sessions(m, 1, 33, 2, 0, 0);
    compare_sessions(m, 3, 33, 3, 0, 0);  /* channel-major */
    compare_sessions(m, 8, 33, 2, 0, 0);  /* batch-innermost */
    compare_sessions(m, 16, 17, 1, 0, 0);
    compare_sessions(m, 8, 17, 2, 1, 0);  /* taps keep NCHW */
    /* activations too big for one pass: groups run by 2 threads in their own arenas
     * (batch-innermost groups of 16; an odd count of 8; channel-major groups of 6), and by
     * more threads than groups (then each op is split instead) */
    compare_sessions(m, 32, 112, 2, 0, 16);
    compare_sessions(m, 24, 128, 2, 0, 8);
    compare_sessions(m, 12, 160, 2, 0, 6);
    compare_sessions(m, 32, 112, 3, 0, 16);
    gn_model_free(m);
    /* the Fashion-MNIST shape: one gray channel, stem stride 1 */
    c = gn_config_default();
    c.in_chans = 1;
    c.stem_stride = 1;
    c.num_classes = 10;
    c.ghost_ratio = 3; /* channel multiplier 2 in every cheap op */
    CHECK(gn_model_create(&c, &m, NULL) == GN_OK);
    if (!m) return;
    gn_model_init_random(m, 9);
    compare_sessions(m, 16, 28, 2, 0, 0);
    compare_sessions(m, 5, 28, 2, 0, 0);
    gn_model_free(m);
}

int main(void) {
    gn_rng_seed(&rng, 2024);
    static const gn_isa isas[] = {GN_ISA_SCALAR, GN_ISA_AVX2, GN_ISA_NEON};
    int tested = 0;
    for (int i = 0; i < 3; i++) {
        if (!gn_isa_available(isas[i])) continue;
        gn_kernels kt;
        CHECK(gn_kernels_get(isas[i], &kt));
        printf("kernel table: %s\n", kt.name);
        test_gemm_ukernel(&kt);
        test_gemv_ukernel(&kt);
        test_dw_ukernels(&kt);
        test_dw8_ukernel(&kt);
        test_small_ukernels(&kt);
        test_batch_ukernels(&kt);
        test_conv_ops(&kt);
        test_dw_fusions(&kt);
        test_linear_and_pool(&kt);
        tested++;
    }
    CHECK(tested >= 1);
    test_threadpool();
    test_sessions(); /* with the table this machine picks (GN_FORCE_SCALAR=1: scalar) */
    TEST_MAIN_END();
}
