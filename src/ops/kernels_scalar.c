/* Portable micro-kernels: plain C in fixed tiles that compilers vectorise for the baseline ISA.
 * They define each family's contract (ukernels.h) and are the twins the SIMD kernels are
 * tested against; they are also the whole fast path on CPUs without AVX2/NEON. */
#include <string.h>

#include "ops/ukernels.h"

enum { kNR = 8 };

/* Rows of a 4 x 8 tile: fixed bounds so the compiler keeps acc in vector registers. */
static void gemm_tile(const gn_gemm_strip *s, const float *x, float *y, int n) {
    float acc[GN_GEMM_MR][kNR];
    for (int r = 0; r < GN_GEMM_MR; r++)
        for (int j = 0; j < kNR; j++) acc[r][j] = s->bias[r];
    const float *w = s->w;
    if (n == kNR) {
        for (int kk = 0; kk < s->k; kk++, w += GN_GEMM_MR) {
            const float *xk = x + (size_t)kk * s->ldx;
            for (int r = 0; r < GN_GEMM_MR; r++)
                for (int j = 0; j < kNR; j++) acc[r][j] += w[r] * xk[j];
        }
    } else {
        for (int kk = 0; kk < s->k; kk++, w += GN_GEMM_MR) {
            const float *xk = x + (size_t)kk * s->ldx;
            for (int r = 0; r < GN_GEMM_MR; r++)
                for (int j = 0; j < n; j++) acc[r][j] += w[r] * xk[j];
        }
    }
    for (int r = 0; r < s->m; r++) {
        float *yr = y + (size_t)r * s->ldy;
        for (int j = 0; j < n; j++) {
            const float v = gn_act_apply(s->act, s->from_y ? yr[j] + acc[r][j] : acc[r][j]);
            yr[j] = s->accumulate ? yr[j] + v : v;
        }
    }
}

void f32_gemm_4x8_scalar(const gn_gemm_strip *s) {
    int j = 0;
    for (; j + kNR <= s->n; j += kNR) gemm_tile(s, s->x + j, s->y + j, kNR);
    if (j < s->n) gemm_tile(s, s->x + j, s->y + j, s->n - j);
}

void f32_gemv_4x8_scalar(const gn_gemv_args *a) {
    for (int i = 0; i < a->m; i++) {
        const float *w = a->w + (size_t)i * a->ldw;
        float acc[kNR] = {0};
        int kk = 0;
        for (; kk + kNR <= a->k; kk += kNR)
            for (int j = 0; j < kNR; j++) acc[j] += w[kk + j] * a->x[kk + j];
        float s = a->bias ? a->bias[i] : 0.0f;
        for (; kk < a->k; kk++) s += w[kk] * a->x[kk];
        for (int j = 0; j < kNR; j++) s += acc[j];
        a->y[i] = gn_act_apply(a->act, s);
    }
}

void f32_dwconv_kxk_scalar(const gn_dw_args *a) {
    const int k = a->k, pad = k / 2, s = a->stride;
    float total = 0.0f;
    for (int oy = 0; oy < a->oh; oy++) {
        float *yrow = a->y + (size_t)oy * a->ow;
        const float *rrow = a->res ? a->res + (size_t)oy * a->ow : NULL;
        for (int ox = 0; ox < a->ow; ox++) {
            float acc = a->bias;
            for (int ky = 0; ky < k; ky++) {
                const int iy = oy * s - pad + ky;
                if (iy < 0 || iy >= a->ih) continue;
                const float *xr = a->x + (size_t)iy * a->iw;
                for (int kx = 0; kx < k; kx++) {
                    const int ix = ox * s - pad + kx;
                    if (ix >= 0 && ix < a->iw) acc += a->w[ky * k + kx] * xr[ix];
                }
            }
            float v = gn_act_apply(a->act, acc);
            if (rrow) v += rrow[ox];
            yrow[ox] = v;
            total += v;
        }
    }
    if (a->sum) *a->sum = total;
}

void f32_dwconv_kxk_c8_scalar(const gn_dw8_args *a) {
    const size_t taps = (size_t)a->k * a->k;
    for (int c = 0; c < 8; c++) {
        gn_dw_args d = {0};
        d.x = a->x + (size_t)c * a->ldx;
        d.w = a->w + (size_t)c * taps;
        d.bias = a->bias[c];
        d.y = a->y + (size_t)c * a->ldy;
        d.res = a->res ? a->res + (size_t)c * a->ldr : NULL;
        d.sum = a->sum ? a->sum + (size_t)c * a->lds : NULL;
        d.ih = a->ih;
        d.iw = a->iw;
        d.oh = a->oh;
        d.ow = a->ow;
        d.k = a->k;
        d.stride = a->stride;
        d.act = a->act;
        f32_dwconv_kxk_scalar(&d);
    }
}

void f32_dwconv_kxk_b1_scalar(const gn_dwb_args *a) {
    const int k = a->k, pad = k / 2, s = a->stride, nb = a->batch;
    if (a->sum)
        for (int b = 0; b < nb; b++) a->sum[b] = 0.0f;
    for (int oy = 0; oy < a->oh; oy++)
        for (int ox = 0; ox < a->ow; ox++) {
            const size_t o = ((size_t)oy * a->ow + ox) * nb;
            for (int b = 0; b < nb; b++) {
                float acc = a->bias;
                for (int ky = 0; ky < k; ky++) {
                    const int iy = oy * s - pad + ky;
                    if (iy < 0 || iy >= a->ih) continue;
                    for (int kx = 0; kx < k; kx++) {
                        const int ix = ox * s - pad + kx;
                        if (ix >= 0 && ix < a->iw)
                            acc += a->w[ky * k + kx] * a->x[((size_t)iy * a->iw + ix) * nb + b];
                    }
                }
                float v = gn_act_apply(a->act, acc);
                if (a->res) v += a->res[o + b];
                a->y[o + b] = v;
                if (a->sum) a->sum[b] += v;
            }
        }
}

void f32_sum_b1_scalar(const float *x, size_t hw, int batch, float *out) {
    for (int b = 0; b < batch; b++) out[b] = 0.0f;
    for (size_t p = 0; p < hw; p++)
        for (int b = 0; b < batch; b++) out[b] += x[p * batch + b];
}

void f32_scale_b1_scalar(float *x, size_t hw, int batch, const float *s) {
    for (size_t p = 0; p < hw; p++)
        for (int b = 0; b < batch; b++) x[p * batch + b] *= s[b];
}

void f32_transpose_1x1_scalar(const float *x, size_t ldx, float *y, size_t ldy, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) y[(size_t)j * ldy + i] = x[(size_t)i * ldx + j];
}

void f32_im2col_kx_scalar(const float *row, int iw, int ix0, int stride, int n, int k, float *dst,
                          size_t ldd) {
    for (int kx = 0; kx < k; kx++)
        for (int i = 0; i < n; i++) {
            const int ix = ix0 + kx + i * stride;
            dst[(size_t)kx * ldd + (size_t)i] = (row && ix >= 0 && ix < iw) ? row[ix] : 0.0f;
        }
}

float f32_sum_scalar(const float *x, size_t n) {
    float acc[kNR] = {0};
    size_t i = 0;
    for (; i + kNR <= n; i += kNR)
        for (int j = 0; j < kNR; j++) acc[j] += x[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < kNR; j++) s += acc[j];
    return s;
}

void f32_scale_scalar(float *x, size_t n, float s) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void f32_add_scalar(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void gn_kernels_scalar(gn_kernels *k) {
    k->name = "scalar";
    k->gemm_nr = kNR;
    k->gemm = f32_gemm_4x8_scalar;
    k->gemv = f32_gemv_4x8_scalar;
    k->dw3s1 = k->dw3s2 = k->dw5s1 = k->dw5s2 = k->dwks1 = k->dwks2 = f32_dwconv_kxk_scalar;
    k->dwb = f32_dwconv_kxk_b1_scalar;
    k->dw8 = f32_dwconv_kxk_c8_scalar;
    k->im2col = f32_im2col_kx_scalar;
    k->sum_b = f32_sum_b1_scalar;
    k->scale_b = f32_scale_b1_scalar;
    k->transpose = f32_transpose_1x1_scalar;
    k->sum = f32_sum_scalar;
    k->scale = f32_scale_scalar;
    k->add = f32_add_scalar;
}
