/* NEON micro-kernels (aarch64, where Advanced SIMD is baseline). Same contracts as the scalar
 * twins in kernels_scalar.c; 4 floats per vector, 32 registers. No masked loads on NEON: a
 * vector's tail goes through a small zero-padded buffer, so nothing reads past the data. */
#include <arm_neon.h>
#include <stddef.h>
#include <string.h>

#include "ops/ukernels.h"

#define GN_INLINE static inline __attribute__((always_inline))

/* ---- vocabulary ------------------------------------------------------------------------- */

GN_INLINE float32x4_t act4(float32x4_t v, gn_act act) {
    const float32x4_t zero = vdupq_n_f32(0.0f), six = vdupq_n_f32(6.0f);
    switch (act) {
    case GN_ACT_NONE: return v;
    case GN_ACT_RELU: return vmaxq_f32(v, zero);
    case GN_ACT_RELU6: return vminq_f32(vmaxq_f32(v, zero), six);
    case GN_ACT_HSIGMOID: {
        float32x4_t r = vminq_f32(vmaxq_f32(vaddq_f32(v, vdupq_n_f32(3.0f)), zero), six);
        return vdivq_f32(r, six); /* divide, as the reference does */
    }
    case GN_ACT_HSWISH: {
        float32x4_t r = vminq_f32(vmaxq_f32(vaddq_f32(v, vdupq_n_f32(3.0f)), zero), six);
        return vdivq_f32(vmulq_f32(v, r), six);
    }
    }
    return v;
}

/* The first n (1..4) floats at p, zeros after. */
GN_INLINE float32x4_t load_first(const float *p, int n) {
    if (n >= 4) return vld1q_f32(p);
    float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    memcpy(t, p, (size_t)n * sizeof(float));
    return vld1q_f32(t);
}

GN_INLINE void store_first(float *p, float32x4_t v, int n) {
    if (n >= 4) {
        vst1q_f32(p, v);
        return;
    }
    float t[4];
    vst1q_f32(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}

/* ---- 1x1 convolution: 4 output channels x 16 pixels ------------------------------------- */

/* 16 accumulators + 4 pixel vectors + the panel's 4 weights in one register (lane FMAs). NV
 * vectors (a constant at each call); the last one holds `tail` pixels. */
GN_INLINE void gemm_tile(const gn_gemm_strip *s, const float *x, float *y, const int NV, int tail) {
    float32x4_t c[4][4];
    for (int r = 0; r < 4; r++) {
        const float32x4_t b = vdupq_n_f32(s->bias[r]);
        for (int v = 0; v < NV; v++) c[r][v] = b;
    }
    const float *w = s->w;
    for (int kk = 0; kk < s->k; kk++, w += GN_GEMM_MR, x += s->ldx) {
        float32x4_t xv[4];
        for (int v = 0; v < NV; v++) xv[v] = v == NV - 1 ? load_first(x + 4 * v, tail) : vld1q_f32(x + 4 * v);
        const float32x4_t wv = vld1q_f32(w);
        for (int v = 0; v < NV; v++) {
            c[0][v] = vfmaq_laneq_f32(c[0][v], xv[v], wv, 0);
            c[1][v] = vfmaq_laneq_f32(c[1][v], xv[v], wv, 1);
            c[2][v] = vfmaq_laneq_f32(c[2][v], xv[v], wv, 2);
            c[3][v] = vfmaq_laneq_f32(c[3][v], xv[v], wv, 3);
        }
    }
    for (int r = 0; r < s->m; r++) {
        float *yr = y + (size_t)r * s->ldy;
        for (int v = 0; v < NV; v++) {
            const int n = v == NV - 1 ? tail : 4;
            float32x4_t o;
            if (s->from_y) {
                o = act4(vaddq_f32(c[r][v], load_first(yr + 4 * v, n)), s->act);
            } else {
                o = act4(c[r][v], s->act);
                if (s->accumulate) o = vaddq_f32(o, load_first(yr + 4 * v, n));
            }
            store_first(yr + 4 * v, o, n);
        }
    }
}

void f32_gemm_4x16_neon(const gn_gemm_strip *s) {
    int j = 0;
    for (; j + 16 <= s->n; j += 16) gemm_tile(s, s->x + j, s->y + j, 4, 4);
    const int r = s->n - j;
    if (r > 12) gemm_tile(s, s->x + j, s->y + j, 4, r - 12);
    else if (r > 8) gemm_tile(s, s->x + j, s->y + j, 3, r - 8);
    else if (r > 4) gemm_tile(s, s->x + j, s->y + j, 2, r - 4);
    else if (r > 0) gemm_tile(s, s->x + j, s->y + j, 1, r);
}

/* ---- matrix-vector ----------------------------------------------------------------------- */

void f32_gemv_4x4_neon(const gn_gemv_args *a) {
    const int kv = a->k & ~3;
    for (int i = 0; i < a->m; i++) {
        const float *w = a->w + (size_t)i * a->ldw;
        float32x4_t c0 = vdupq_n_f32(0.0f), c1 = c0;
        int kk = 0;
        for (; kk + 8 <= kv; kk += 8) {
            c0 = vfmaq_f32(c0, vld1q_f32(w + kk), vld1q_f32(a->x + kk));
            c1 = vfmaq_f32(c1, vld1q_f32(w + kk + 4), vld1q_f32(a->x + kk + 4));
        }
        for (; kk < kv; kk += 4) c0 = vfmaq_f32(c0, vld1q_f32(w + kk), vld1q_f32(a->x + kk));
        float sum = vaddvq_f32(vaddq_f32(c0, c1)) + (a->bias ? a->bias[i] : 0.0f);
        for (; kk < a->k; kk++) sum += w[kk] * a->x[kk];
        a->y[i] = gn_act_apply(a->act, sum);
    }
}

/* ---- depthwise through a ring of padded rows (the layout of gn_dw_args) ------------------ */

GN_INLINE void ring_fill_s1(const float *x, int iw, float *d) {
    int j = 0;
    for (; j + 4 <= iw; j += 4) vst1q_f32(d + j, vld1q_f32(x + j));
    for (; j < iw; j++) d[j] = x[j];
}

GN_INLINE void ring_fill_s2(const float *x, int iw, float *de, float *dodd) {
    int i = 0;
    for (; 2 * i + 8 <= iw; i += 4) { /* vld2q splits even and odd columns */
        const float32x4x2_t v = vld2q_f32(x + 2 * i);
        vst1q_f32(de + i, v.val[0]);
        vst1q_f32(dodd + i, v.val[1]);
    }
    for (int j = i; 2 * j < iw; j++) de[j] = x[2 * j];
    for (int j = i; 2 * j + 1 < iw; j++) dodd[j] = x[2 * j + 1];
}

GN_INLINE const float *dw_tap(const float *row, const int S, size_t pitch, int ox, int kx) {
    if (S == 1) return row + ox + kx;
    return row + (kx & 1) * pitch + ox + (kx >> 1);
}

GN_INLINE void dw_plane(const gn_dw_args *a, const int K, const int S) {
    const int k = K ? K : a->k, pad = k / 2, ow = a->ow, iw = a->iw, ih = a->ih;
    const int R = a->ring_rows, rows_total = ih + 2 * pad;
    const size_t pitch = a->pitch, slot = S == 2 ? 2 * pitch : pitch;
    const float32x4_t bias = vdupq_n_f32(a->bias), zero = vdupq_n_f32(0.0f);
    float *const ring = a->ring;
    const size_t even_at = (size_t)(pad & 1) * pitch + (size_t)pad / 2;
    const size_t odd_at = (size_t)((pad + 1) & 1) * pitch + (size_t)(pad + 1) / 2;
    float32x4_t vsum = zero;
    const float *rows[15];
    const int whole = R == rows_total; /* small plane: padded row r in slot r, no wrap */
    if (whole)
        for (int iy = 0; iy < ih; iy++) {
            float *d = ring + (size_t)(iy + pad) * slot;
            if (S == 1) ring_fill_s1(a->x + (size_t)iy * iw, iw, d + pad);
            else ring_fill_s2(a->x + (size_t)iy * iw, iw, d + even_at, d + odd_at);
        }
    int next = 0, next_slot = 0, base_slot = 0;
    for (int oy = 0; oy < a->oh; oy++) {
        const int r0 = oy * S;
        if (whole) {
            for (int ky = 0; ky < k; ky++) rows[ky] = ring + (size_t)(r0 + ky) * slot;
        } else {
            const int limit = r0 + R < rows_total ? r0 + R : rows_total;
            for (; next < limit; next++) {
                const int iy = next - pad;
                if (iy >= 0 && iy < ih) {
                    float *d = ring + (size_t)next_slot * slot;
                    if (S == 1) ring_fill_s1(a->x + (size_t)iy * iw, iw, d + pad);
                    else ring_fill_s2(a->x + (size_t)iy * iw, iw, d + even_at, d + odd_at);
                }
                if (++next_slot == R) next_slot = 0;
            }
            for (int ky = 0; ky < k; ky++) {
                const int iy = r0 + ky - pad;
                int sl = base_slot + ky;
                if (sl >= R) sl -= R;
                rows[ky] = (iy >= 0 && iy < ih) ? ring + (size_t)sl * slot : a->zero;
            }
            base_slot += S;
            if (base_slot >= R) base_slot -= R;
        }
        float *yr = a->y + (size_t)oy * ow;
        const float *rr = a->res ? a->res + (size_t)oy * ow : NULL;
        for (int ox = 0; ox < ow; ox += 8) {
            /* two vectors, each in two chains (even and odd taps) */
            float32x4_t c0 = bias, c1 = bias, d0 = zero, d1 = zero;
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    const int t = ky * k + kx;
                    const float32x4_t w = vdupq_n_f32(a->w[t]);
                    const float *p = dw_tap(rows[ky], S, pitch, ox, kx);
                    if (t & 1) {
                        d0 = vfmaq_f32(d0, w, vld1q_f32(p));
                        d1 = vfmaq_f32(d1, w, vld1q_f32(p + 4));
                    } else {
                        c0 = vfmaq_f32(c0, w, vld1q_f32(p));
                        c1 = vfmaq_f32(c1, w, vld1q_f32(p + 4));
                    }
                }
            c0 = act4(vaddq_f32(c0, d0), a->act);
            c1 = act4(vaddq_f32(c1, d1), a->act);
            const int n0 = ow - ox < 4 ? ow - ox : 4, n1 = ow - ox - 4 < 4 ? ow - ox - 4 : 4;
            if (rr) c0 = vaddq_f32(c0, load_first(rr + ox, n0));
            store_first(yr + ox, c0, n0);
            vsum = vaddq_f32(vsum, n0 == 4 ? c0 : load_first(yr + ox, n0));
            if (n1 > 0) {
                if (rr) c1 = vaddq_f32(c1, load_first(rr + ox + 4, n1));
                store_first(yr + ox + 4, c1, n1);
                vsum = vaddq_f32(vsum, n1 == 4 ? c1 : load_first(yr + ox + 4, n1));
            }
        }
    }
    if (a->sum) *a->sum = vaddvq_f32(vsum);
}

void f32_dwconv_3x3s1_neon(const gn_dw_args *a) { dw_plane(a, 3, 1); }
void f32_dwconv_3x3s2_neon(const gn_dw_args *a) { dw_plane(a, 3, 2); }
void f32_dwconv_5x5s1_neon(const gn_dw_args *a) { dw_plane(a, 5, 1); }
void f32_dwconv_5x5s2_neon(const gn_dw_args *a) { dw_plane(a, 5, 2); }
void f32_dwconv_kxks1_neon(const gn_dw_args *a) { dw_plane(a, 0, 1); }
void f32_dwconv_kxks2_neon(const gn_dw_args *a) { dw_plane(a, 0, 2); }

/* ---- depthwise in the batch-innermost layout: 8 images (two vectors) at a time ----------- */

void f32_dwconv_kxk_b4_neon(const gn_dwb_args *a) {
    const int nb = a->batch, k = a->k, pad = k / 2, s = a->stride;
    for (int b0 = 0; b0 < nb; b0 += 8) {
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = s0;
        for (int oy = 0; oy < a->oh; oy++) {
            const int ky0 = pad - oy * s > 0 ? pad - oy * s : 0;
            const int ky1 = a->ih + pad - oy * s < k ? a->ih + pad - oy * s : k;
            for (int ox = 0; ox < a->ow; ox++) {
                const int kx0 = pad - ox * s > 0 ? pad - ox * s : 0;
                const int kx1 = a->iw + pad - ox * s < k ? a->iw + pad - ox * s : k;
                float32x4_t c0 = vdupq_n_f32(a->bias), c1 = c0;
                for (int ky = ky0; ky < ky1; ky++) {
                    const ptrdiff_t row = ((ptrdiff_t)(oy * s - pad + ky) * a->iw + (ox * s - pad)) * nb + b0;
                    for (int kx = kx0; kx < kx1; kx++) {
                        const float32x4_t w = vdupq_n_f32(a->w[ky * k + kx]);
                        const float *p = a->x + (row + (ptrdiff_t)kx * nb);
                        c0 = vfmaq_f32(c0, w, vld1q_f32(p));
                        c1 = vfmaq_f32(c1, w, vld1q_f32(p + 4));
                    }
                }
                const size_t o = ((size_t)oy * a->ow + ox) * nb + b0;
                c0 = act4(c0, a->act);
                c1 = act4(c1, a->act);
                if (a->res) {
                    c0 = vaddq_f32(c0, vld1q_f32(a->res + o));
                    c1 = vaddq_f32(c1, vld1q_f32(a->res + o + 4));
                }
                vst1q_f32(a->y + o, c0);
                vst1q_f32(a->y + o + 4, c1);
                s0 = vaddq_f32(s0, c0);
                s1 = vaddq_f32(s1, c1);
            }
        }
        if (a->sum) {
            vst1q_f32(a->sum + b0, s0);
            vst1q_f32(a->sum + b0 + 4, s1);
        }
    }
}

/* ---- vectors ----------------------------------------------------------------------------- */

float f32_sum_neon(const float *x, size_t n) {
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = vaddq_f32(a0, vld1q_f32(x + i));
        a1 = vaddq_f32(a1, vld1q_f32(x + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) s += x[i];
    return s;
}

void f32_scale_neon(float *x, size_t n, float s) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), s));
    for (; i < n; i++) x[i] *= s;
}

void f32_add_neon(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += x[i];
}

void f32_sum_b4_neon(const float *x, size_t hw, int batch, float *out) {
    for (int b0 = 0; b0 < batch; b0 += 4) {
        float32x4_t s = vdupq_n_f32(0.0f);
        for (size_t p = 0; p < hw; p++) s = vaddq_f32(s, vld1q_f32(x + p * batch + b0));
        vst1q_f32(out + b0, s);
    }
}

void f32_scale_b4_neon(float *x, size_t hw, int batch, const float *s) {
    for (int b0 = 0; b0 < batch; b0 += 4) {
        const float32x4_t g = vld1q_f32(s + b0);
        for (size_t p = 0; p < hw; p++) {
            float *q = x + p * batch + b0;
            vst1q_f32(q, vmulq_f32(vld1q_f32(q), g));
        }
    }
}

void gn_kernels_neon(gn_kernels *k) {
    k->name = "neon";
    k->gemm_nr = 16;
    k->gemm = f32_gemm_4x16_neon;
    k->gemv = f32_gemv_4x4_neon;
    k->dw3s1 = f32_dwconv_3x3s1_neon;
    k->dw3s2 = f32_dwconv_3x3s2_neon;
    k->dw5s1 = f32_dwconv_5x5s1_neon;
    k->dw5s2 = f32_dwconv_5x5s2_neon;
    k->dwks1 = f32_dwconv_kxks1_neon;
    k->dwks2 = f32_dwconv_kxks2_neon;
    k->dwb = f32_dwconv_kxk_b4_neon;
    k->dw8 = NULL; /* small planes one by one through the NEON dw kernels */
    k->im2col = f32_im2col_kx_scalar;
    k->sum_b = f32_sum_b4_neon;
    k->scale_b = f32_scale_b4_neon;
    k->transpose = f32_transpose_1x1_scalar;
    k->sum = f32_sum_neon;
    k->scale = f32_scale_neon;
    k->add = f32_add_neon;
}
