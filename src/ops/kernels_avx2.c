/* AVX2 + FMA micro-kernels (x86_64). This file alone is compiled with -mavx2 -mfma; nothing
 * here runs unless dispatch.c saw both features on the CPU. Twins: kernels_scalar.c. */
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ops/ukernels.h"

#define GN_INLINE static inline __attribute__((always_inline))

/* ---- vocabulary ------------------------------------------------------------------------- */

/* Lanes [0, n) on: a sliding window over this constant table (read-only, not state). */
static const int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
GN_INLINE __m256i mask_first(int n) {
    return _mm256_loadu_si256((const __m256i *)(kMaskTable + 8 - n));
}

/* Stores lanes [0, n) of v, n in 1..8. Not vmaskmovps: masked stores are microcoded and slow
 * on AMD Zen; three plain stores at most. */
GN_INLINE void store_first(float *p, __m256 v, int n) {
    if (n == 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 h = _mm256_castps256_ps128(v);
    if (n & 4) {
        _mm_storeu_ps(p, h);
        h = _mm256_extractf128_ps(v, 1);
        p += 4;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)(void *)p, h);
        h = _mm_movehl_ps(h, h);
        p += 2;
    }
    if (n & 1) _mm_store_ss(p, h);
}

GN_INLINE __m256 act8(__m256 v, gn_act act) {
    const __m256 zero = _mm256_setzero_ps(), six = _mm256_set1_ps(6.0f);
    switch (act) {
    case GN_ACT_NONE: return v;
    case GN_ACT_RELU: return _mm256_max_ps(v, zero);
    case GN_ACT_RELU6: return _mm256_min_ps(_mm256_max_ps(v, zero), six);
    case GN_ACT_HSIGMOID: {
        __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, _mm256_set1_ps(3.0f)), zero), six);
        return _mm256_div_ps(r, six); /* divide, as the reference does, not * (1/6) */
    }
    case GN_ACT_HSWISH: {
        __m256 r = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, _mm256_set1_ps(3.0f)), zero), six);
        return _mm256_div_ps(_mm256_mul_ps(v, r), six);
    }
    }
    return v;
}

GN_INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Even and odd lanes of the 16 floats at p: (p[0], p[2], ..., p[14]) and (p[1], ..., p[15]). */
GN_INLINE void deinterleave16(const float *p, __m256 *even, __m256 *odd) {
    const __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    /* shuffle_ps works per 128-bit lane: (a0 a2 b0 b2 | a4 a6 b4 b6); permute fixes the order */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

/* ---- 1x1 convolution: 4 output channels x 24 pixels ------------------------------------- */

/* 12 accumulators + 3 pixel vectors + 1 broadcast weight = the 16 ymm registers. Named
 * variables, not arrays: gcc keeps an array of __m256 in memory (a spill per FMA). NV (1..3)
 * is a constant at each call; MASKED loads and stores the last vector through `tm`. */
#define GEMM_ROW_FMA(w, a0, a1, a2)                                                  \
    do {                                                                             \
        a0 = _mm256_fmadd_ps(w, x0, a0);                                             \
        if (NV > 1) a1 = _mm256_fmadd_ps(w, x1, a1);                                 \
        if (NV > 2) a2 = _mm256_fmadd_ps(w, x2, a2);                                 \
    } while (0)

GN_INLINE __m256 gemm_load(const float *p, int last, int masked, __m256i tm) {
    return (last && masked) ? _mm256_maskload_ps(p, tm) : _mm256_loadu_ps(p);
}

/* add_y: 0 y = act(v); 1 y += act(v) (accumulate); 2 y = act(y + v) (from_y) */
GN_INLINE void gemm_store(float *p, __m256 v, gn_act act, int add_y, int last, int masked,
                          __m256i tm, int tail) {
    const int part = last && masked;
    if (add_y) {
        const __m256 old = part ? _mm256_maskload_ps(p, tm) : _mm256_loadu_ps(p);
        v = add_y == 2 ? act8(_mm256_add_ps(v, old), act) : _mm256_add_ps(act8(v, act), old);
    } else {
        v = act8(v, act);
    }
    if (part) store_first(p, v, tail);
    else _mm256_storeu_ps(p, v);
}

GN_INLINE void gemm_tile(const gn_gemm_strip *s, const float *x, float *y, const int NV,
                         const int MASKED, const int tail) {
    const __m256i tm = mask_first(MASKED ? tail : 8);
    const size_t ldx = s->ldx;
    const int k = s->k;
    const float *w = s->w;
    __m256 c00, c01 = _mm256_setzero_ps(), c02 = c01, c10, c11 = c01, c12 = c01;
    __m256 c20, c21 = c01, c22 = c01, c30, c31 = c01, c32 = c01;
    c00 = _mm256_broadcast_ss(s->bias + 0);
    c10 = _mm256_broadcast_ss(s->bias + 1);
    c20 = _mm256_broadcast_ss(s->bias + 2);
    c30 = _mm256_broadcast_ss(s->bias + 3);
    if (NV > 1) c01 = c00, c11 = c10, c21 = c20, c31 = c30;
    if (NV > 2) c02 = c00, c12 = c10, c22 = c20, c32 = c30;
    for (int kk = 0; kk < k; kk++) {
        const __m256 x0 = gemm_load(x, NV == 1, MASKED, tm);
        const __m256 x1 = NV > 1 ? gemm_load(x + 8, NV == 2, MASKED, tm) : x0;
        const __m256 x2 = NV > 2 ? gemm_load(x + 16, 1, MASKED, tm) : x0;
        __m256 wv = _mm256_broadcast_ss(w + 0);
        GEMM_ROW_FMA(wv, c00, c01, c02);
        wv = _mm256_broadcast_ss(w + 1);
        GEMM_ROW_FMA(wv, c10, c11, c12);
        wv = _mm256_broadcast_ss(w + 2);
        GEMM_ROW_FMA(wv, c20, c21, c22);
        wv = _mm256_broadcast_ss(w + 3);
        GEMM_ROW_FMA(wv, c30, c31, c32);
        x += ldx;
        w += GN_GEMM_MR;
    }
    const gn_act act = s->act;
    const int acc = s->from_y ? 2 : s->accumulate ? 1 : 0, m = s->m;
    const size_t ldy = s->ldy;
    float *y1 = y + ldy, *y2 = y1 + ldy, *y3 = y2 + ldy;
    gemm_store(y, c00, act, acc, NV == 1, MASKED, tm, tail);
    if (NV > 1) gemm_store(y + 8, c01, act, acc, NV == 2, MASKED, tm, tail);
    if (NV > 2) gemm_store(y + 16, c02, act, acc, 1, MASKED, tm, tail);
    if (m > 1) {
        gemm_store(y1, c10, act, acc, NV == 1, MASKED, tm, tail);
        if (NV > 1) gemm_store(y1 + 8, c11, act, acc, NV == 2, MASKED, tm, tail);
        if (NV > 2) gemm_store(y1 + 16, c12, act, acc, 1, MASKED, tm, tail);
    }
    if (m > 2) {
        gemm_store(y2, c20, act, acc, NV == 1, MASKED, tm, tail);
        if (NV > 1) gemm_store(y2 + 8, c21, act, acc, NV == 2, MASKED, tm, tail);
        if (NV > 2) gemm_store(y2 + 16, c22, act, acc, 1, MASKED, tm, tail);
    }
    if (m > 3) {
        gemm_store(y3, c30, act, acc, NV == 1, MASKED, tm, tail);
        if (NV > 1) gemm_store(y3 + 8, c31, act, acc, NV == 2, MASKED, tm, tail);
        if (NV > 2) gemm_store(y3 + 16, c32, act, acc, 1, MASKED, tm, tail);
    }
}

/* The last T (1 or 2) pixels, from column j: the 4 rows in one xmm (a packed panel row is
 * exactly that), four k-phases in flight. 2 loads per k and FMA, against a whole masked vector
 * tile for a pixel or two (a 7x7 plane's 49th). */
GN_INLINE void gemm_cols(const gn_gemm_strip *s, int j, const int T) {
    const float *x = s->x + j, *w = s->w;
    const size_t ldx = s->ldx;
    const int k = s->k;
    __m128 a0 = _mm_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int kk = 0;
    for (; kk + 4 <= k; kk += 4) {
        const __m128 w0 = _mm_loadu_ps(w), w1 = _mm_loadu_ps(w + 4), w2 = _mm_loadu_ps(w + 8),
                     w3 = _mm_loadu_ps(w + 12);
        a0 = _mm_fmadd_ps(w0, _mm_broadcast_ss(x), a0);
        a1 = _mm_fmadd_ps(w1, _mm_broadcast_ss(x + ldx), a1);
        a2 = _mm_fmadd_ps(w2, _mm_broadcast_ss(x + 2 * ldx), a2);
        a3 = _mm_fmadd_ps(w3, _mm_broadcast_ss(x + 3 * ldx), a3);
        if (T > 1) {
            b0 = _mm_fmadd_ps(w0, _mm_broadcast_ss(x + 1), b0);
            b1 = _mm_fmadd_ps(w1, _mm_broadcast_ss(x + ldx + 1), b1);
            b2 = _mm_fmadd_ps(w2, _mm_broadcast_ss(x + 2 * ldx + 1), b2);
            b3 = _mm_fmadd_ps(w3, _mm_broadcast_ss(x + 3 * ldx + 1), b3);
        }
        x += 4 * ldx;
        w += 4 * GN_GEMM_MR;
    }
    for (; kk < k; kk++) {
        const __m128 w0 = _mm_loadu_ps(w);
        a0 = _mm_fmadd_ps(w0, _mm_broadcast_ss(x), a0);
        if (T > 1) b0 = _mm_fmadd_ps(w0, _mm_broadcast_ss(x + 1), b0);
        x += ldx;
        w += GN_GEMM_MR;
    }
    const __m128 bias = _mm_loadu_ps(s->bias);
    float v[2][4];
    _mm_storeu_ps(v[0], _mm_add_ps(_mm_add_ps(_mm_add_ps(a0, a1), _mm_add_ps(a2, a3)), bias));
    _mm_storeu_ps(v[1], _mm_add_ps(_mm_add_ps(_mm_add_ps(b0, b1), _mm_add_ps(b2, b3)), bias));
    for (int r = 0; r < s->m; r++)
        for (int c = 0; c < T; c++) {
            float *p = s->y + (size_t)r * s->ldy + j + c;
            if (s->from_y) *p = gn_act_apply(s->act, *p + v[c][r]);
            else if (s->accumulate) *p += gn_act_apply(s->act, v[c][r]);
            else *p = gn_act_apply(s->act, v[c][r]);
        }
}

/* Full tiles, then the last 25..32 pixels as 16 + the rest: a lone 8-pixel tile would run K
 * iterations of 4 dependent FMA chains, latency-bound. A last 1 or 2 pixels past whole vectors
 * go through gemm_cols (a 49-pixel 7x7 plane: 24 + 24 + 1). */
void f32_gemm_4x24_avx2(const gn_gemm_strip *s) {
    const int t = s->n & 7, cols = t == 1 || t == 2 ? t : 0, n = s->n - cols;
    int j = 0;
    for (; n - j > 32; j += 24) gemm_tile(s, s->x + j, s->y + j, 3, 0, 8);
    int r = n - j;
    if (r > 24) {
        gemm_tile(s, s->x + j, s->y + j, 2, 0, 8);
        j += 16;
        r -= 16;
    }
    if (r == 24) gemm_tile(s, s->x + j, s->y + j, 3, 0, 8);
    else if (r > 16) gemm_tile(s, s->x + j, s->y + j, 3, 1, r - 16);
    else if (r > 8) gemm_tile(s, s->x + j, s->y + j, 2, 1, r - 8);
    else if (r > 0) gemm_tile(s, s->x + j, s->y + j, 1, 1, r);
    if (cols == 1) gemm_cols(s, n, 1);
    else if (cols == 2) gemm_cols(s, n, 2);
}

/* ---- matrix-vector --------------------------------------------------------------------- */

/* The weights come from memory once per pass (batch 1). Rows up to a few hundred floats: one
 * row at a time, so the weights are read as one sequential stream (rows are contiguous when
 * ldw == k), which the prefetchers follow better than four interleaved short ones (1.2-1.3x
 * on the squeeze-excite expansions, rows of 120-240); four accumulators over k keep the FMAs
 * independent, and x stays in L1. */
static void f32_gemv_1x32_avx2(const gn_gemv_args *a) {
    const int k = a->k, k32 = k & ~31, kv = k & ~7, tail = k - kv;
    const __m256i tm = mask_first(tail);
    const float *x = a->x;
    for (int i = 0; i < a->m; i++) {
        const float *w = a->w + (size_t)i * a->ldw;
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        int kk = 0;
        for (; kk < k32; kk += 32) {
            c0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + kk), _mm256_loadu_ps(x + kk), c0);
            c1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + kk + 8), _mm256_loadu_ps(x + kk + 8), c1);
            c2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + kk + 16), _mm256_loadu_ps(x + kk + 16), c2);
            c3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + kk + 24), _mm256_loadu_ps(x + kk + 24), c3);
        }
        for (; kk < kv; kk += 8)
            c0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + kk), _mm256_loadu_ps(x + kk), c0);
        if (tail)
            c1 = _mm256_fmadd_ps(_mm256_maskload_ps(w + kv, tm), _mm256_maskload_ps(x + kv, tm), c1);
        const float v = hsum8(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)));
        a->y[i] = gn_act_apply(a->act, v + (a->bias ? a->bias[i] : 0.0f));
    }
}

/* Long rows (conv_head, the classifier, squeeze-excite reductions): 4 rows at a time, 8
 * inputs per step, each x load shared by 4 FMAs (a little faster there than one row). */
static void f32_gemv_4x8_avx2(const gn_gemv_args *a) {
    const int k = a->k, kv = k & ~7, tail = k - kv;
    const __m256i tm = mask_first(tail);
    int i = 0;
    for (; i + 4 <= a->m; i += 4) {
        const float *w0 = a->w + (size_t)i * a->ldw, *w1 = w0 + a->ldw, *w2 = w1 + a->ldw,
                    *w3 = w2 + a->ldw;
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (int kk = 0; kk < kv; kk += 8) {
            const __m256 xv = _mm256_loadu_ps(a->x + kk);
            c0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + kk), xv, c0);
            c1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + kk), xv, c1);
            c2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + kk), xv, c2);
            c3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + kk), xv, c3);
        }
        if (tail) {
            const __m256 xv = _mm256_maskload_ps(a->x + kv, tm);
            c0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + kv, tm), xv, c0);
            c1 = _mm256_fmadd_ps(_mm256_maskload_ps(w1 + kv, tm), xv, c1);
            c2 = _mm256_fmadd_ps(_mm256_maskload_ps(w2 + kv, tm), xv, c2);
            c3 = _mm256_fmadd_ps(_mm256_maskload_ps(w3 + kv, tm), xv, c3);
        }
        const float s[4] = {hsum8(c0), hsum8(c1), hsum8(c2), hsum8(c3)};
        for (int r = 0; r < 4; r++)
            a->y[i + r] = gn_act_apply(a->act, s[r] + (a->bias ? a->bias[i + r] : 0.0f));
    }
    for (; i < a->m; i++) {
        const float *w0 = a->w + (size_t)i * a->ldw;
        __m256 c0 = _mm256_setzero_ps();
        for (int kk = 0; kk < kv; kk += 8)
            c0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + kk), _mm256_loadu_ps(a->x + kk), c0);
        if (tail)
            c0 = _mm256_fmadd_ps(_mm256_maskload_ps(w0 + kv, tm), _mm256_maskload_ps(a->x + kv, tm), c0);
        a->y[i] = gn_act_apply(a->act, hsum8(c0) + (a->bias ? a->bias[i] : 0.0f));
    }
}

void f32_gemv_avx2(const gn_gemv_args *a) {
    if (a->k < 768) f32_gemv_1x32_avx2(a);
    else f32_gemv_4x8_avx2(a);
}

/* ---- depthwise k x k through a ring of padded rows --------------------------------------- */

/* Stride 1: input row -> slot columns [pad, pad + iw). */
GN_INLINE void ring_fill_s1(const float *x, int iw, float *d) {
    int j = 0;
    for (; j + 8 <= iw; j += 8) _mm256_storeu_ps(d + j, _mm256_loadu_ps(x + j));
    if (j < iw) /* a full store: the lanes past the data are zeros, into the slot's padding */
        _mm256_storeu_ps(d + j, _mm256_maskload_ps(x + j, mask_first(iw - j)));
}

/* Stride 2: x[2i] -> de[i], x[2i + 1] -> dodd[i] (de/dodd: the even or odd half-row, at the
 * offset the padding parity gives). */
GN_INLINE void ring_fill_s2(const float *x, int iw, float *de, float *dodd) {
    int i = 0;
    for (; 2 * i + 16 <= iw; i += 8) {
        __m256 e, o;
        deinterleave16(x + 2 * i, &e, &o);
        _mm256_storeu_ps(de + i, e);
        _mm256_storeu_ps(dodd + i, o);
    }
    const int rem = iw - 2 * i;
    if (rem > 0) {
        const __m256 a = _mm256_maskload_ps(x + 2 * i, mask_first(rem < 8 ? rem : 8));
        const __m256 b = rem > 8 ? _mm256_maskload_ps(x + 2 * i + 8, mask_first(rem - 8))
                                 : _mm256_setzero_ps();
        const __m256 e = _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
        const __m256 o = _mm256_castpd_ps(
            _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
        _mm256_storeu_ps(de + i, e); /* zeros past the data, into the padding */
        _mm256_storeu_ps(dodd + i, o);
    }
}

/* Tap (ky, kx) of output column ox: rows[ky] is the padded row (stride 2: its even half, the
 * odd half `pitch` floats later). */
GN_INLINE const float *dw_tap(const float *row, const int S, size_t pitch, int ox, int kx) {
    if (S == 1) return row + ox + kx;
    return row + (kx & 1) * pitch + ox + (kx >> 1);
}

/* K and S are constants at each call site (K = 0: runtime a->k), so the tap loops unroll and
 * the 3x3 weights stay in registers; ACT too (the entry points specialise the common ones).
 * Each output vector sums its taps in two chains (even and odd taps) and two vectors go per
 * step: four independent FMA chains. A row's last, partial vector is stored whole while the
 * lanes past the row stay inside the plane: they land on the next row's first pixels, which
 * that row rewrites (rows go in order); only the plane's very end needs the partial store. */
GN_INLINE void dw_plane(const gn_dw_args *a, const int K, const int S, const gn_act ACT) {
    const int k = K ? K : a->k, pad = k / 2, ow = a->ow, iw = a->iw, ih = a->ih;
    const int R = a->ring_rows, rows_total = ih + 2 * pad;
    const size_t pitch = a->pitch, slot = S == 2 ? 2 * pitch : pitch;
    const size_t plane_end = (size_t)a->oh * ow;
    const __m256 bias = _mm256_set1_ps(a->bias), zero = _mm256_setzero_ps();
    __m256 wv[25];
    if (K) {
#pragma GCC unroll 25
        for (int t = 0; t < K * K; t++) wv[t] = _mm256_broadcast_ss(a->w + t);
    }
    /* where a row's data lands inside its slot */
    float *const ring = a->ring;
    const size_t even_at = (size_t)(pad & 1) * pitch + (size_t)pad / 2;
    const size_t odd_at = (size_t)((pad + 1) & 1) * pitch + (size_t)(pad + 1) / 2;
    const int tail = ow & 7;
    const __m256i tm = mask_first(tail);
    __m256 vsum = zero;
    const float *rows[15];
    const int whole = R == rows_total; /* small plane: padded row r in slot r, no wrap */
    if (whole)
        for (int iy = 0; iy < ih; iy++) {
            float *d = ring + (size_t)(iy + pad) * slot;
            if (S == 1) ring_fill_s1(a->x + (size_t)iy * iw, iw, d + pad);
            else ring_fill_s2(a->x + (size_t)iy * iw, iw, d + even_at, d + odd_at);
        }
    int next = 0, next_slot = 0; /* next padded row to bring in, and its slot */
    int base_slot = 0;           /* slot of padded row oy * S */
    for (int oy = 0; oy < a->oh; oy++) {
        const int r0 = oy * S;
        if (whole) { /* the padding rows of the slots were zeroed by the caller */
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
        int ox = 0;
        /* pairs of vectors; the second may be the row's partial one (ow - ox in 9..15) */
        for (; ox + 8 < ow; ox += 16) {
            __m256 c0 = bias, c1 = bias, d0 = zero, d1 = zero;
            /* unrolled even at -O2 so wv[] stays in registers */
#pragma GCC unroll 5
            for (int ky = 0; ky < k; ky++)
#pragma GCC unroll 5
                for (int kx = 0; kx < k; kx++) {
                    const int t = ky * k + kx;
                    const __m256 w = K ? wv[t] : _mm256_broadcast_ss(a->w + t);
                    const float *p = dw_tap(rows[ky], S, pitch, ox, kx);
                    if (t & 1) {
                        d0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p), d0);
                        d1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 8), d1);
                    } else {
                        c0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p), c0);
                        c1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 8), c1);
                    }
                }
            c0 = act8(_mm256_add_ps(c0, d0), ACT);
            c1 = act8(_mm256_add_ps(c1, d1), ACT);
            if (ox + 16 <= ow) {
                if (rr) {
                    c0 = _mm256_add_ps(c0, _mm256_loadu_ps(rr + ox));
                    c1 = _mm256_add_ps(c1, _mm256_loadu_ps(rr + ox + 8));
                }
                _mm256_storeu_ps(yr + ox, c0);
                _mm256_storeu_ps(yr + ox + 8, c1);
                vsum = _mm256_add_ps(vsum, _mm256_add_ps(c0, c1));
            } else {
                const int inside = (size_t)oy * ow + ox + 16 <= plane_end;
                if (rr) {
                    c0 = _mm256_add_ps(c0, _mm256_loadu_ps(rr + ox));
                    c1 = _mm256_add_ps(c1, inside ? _mm256_loadu_ps(rr + ox + 8)
                                                  : _mm256_maskload_ps(rr + ox + 8, tm));
                }
                _mm256_storeu_ps(yr + ox, c0);
                if (inside) _mm256_storeu_ps(yr + ox + 8, c1);
                else store_first(yr + ox + 8, c1, tail);
                vsum = _mm256_add_ps(vsum, _mm256_add_ps(c0, _mm256_and_ps(c1, _mm256_castsi256_ps(tm))));
            }
        }
        if (ox < ow) { /* one vector left, full or partial */
            __m256 c0 = bias, d0 = zero;
#pragma GCC unroll 5
            for (int ky = 0; ky < k; ky++)
#pragma GCC unroll 5
                for (int kx = 0; kx < k; kx++) {
                    const int t = ky * k + kx;
                    const __m256 w = K ? wv[t] : _mm256_broadcast_ss(a->w + t);
                    const __m256 v = _mm256_loadu_ps(dw_tap(rows[ky], S, pitch, ox, kx));
                    if (t & 1) d0 = _mm256_fmadd_ps(w, v, d0);
                    else c0 = _mm256_fmadd_ps(w, v, c0);
                }
            c0 = act8(_mm256_add_ps(c0, d0), ACT);
            if (ox + 8 <= ow) {
                if (rr) c0 = _mm256_add_ps(c0, _mm256_loadu_ps(rr + ox));
                _mm256_storeu_ps(yr + ox, c0);
                vsum = _mm256_add_ps(vsum, c0);
            } else { /* the row's tail: lanes past ow are not summed */
                const int inside = (size_t)oy * ow + ox + 8 <= plane_end;
                if (rr) c0 = _mm256_add_ps(c0, inside ? _mm256_loadu_ps(rr + ox)
                                                      : _mm256_maskload_ps(rr + ox, tm));
                if (inside) _mm256_storeu_ps(yr + ox, c0);
                else store_first(yr + ox, c0, tail);
                vsum = _mm256_add_ps(vsum, _mm256_and_ps(c0, _mm256_castsi256_ps(tm)));
            }
        }
    }
    if (a->sum) *a->sum = hsum8(vsum);
}

/* The activations the network's depthwise convs use, specialised; others at run time. */
#define GN_DW_ENTRY(name, K, S)                                                       \
    void name(const gn_dw_args *a) {                                                  \
        switch (a->act) {                                                             \
        case GN_ACT_NONE: dw_plane(a, K, S, GN_ACT_NONE); break;                      \
        case GN_ACT_RELU: dw_plane(a, K, S, GN_ACT_RELU); break;                      \
        default: dw_plane(a, K, S, a->act); break;                                    \
        }                                                                             \
    }
GN_DW_ENTRY(f32_dwconv_3x3s1_avx2, 3, 1)
GN_DW_ENTRY(f32_dwconv_3x3s2_avx2, 3, 2)
GN_DW_ENTRY(f32_dwconv_5x5s1_avx2, 5, 1)
GN_DW_ENTRY(f32_dwconv_5x5s2_avx2, 5, 2)
GN_DW_ENTRY(f32_dwconv_kxks1_avx2, 0, 1)
GN_DW_ENTRY(f32_dwconv_kxks2_avx2, 0, 2)
#undef GN_DW_ENTRY

float f32_sum_avx2(const float *x, size_t n);

/* ---- depthwise, 8 planes at once through a channel-innermost copy ---------------------- */

/* 8 x 8 transpose in registers: r0..r7 rows in, columns out (in place). */
#define GN_TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7)                                          \
    do {                                                                                       \
        const __m256 t0_ = _mm256_unpacklo_ps(r0, r1), t1_ = _mm256_unpackhi_ps(r0, r1);       \
        const __m256 t2_ = _mm256_unpacklo_ps(r2, r3), t3_ = _mm256_unpackhi_ps(r2, r3);       \
        const __m256 t4_ = _mm256_unpacklo_ps(r4, r5), t5_ = _mm256_unpackhi_ps(r4, r5);       \
        const __m256 t6_ = _mm256_unpacklo_ps(r6, r7), t7_ = _mm256_unpackhi_ps(r6, r7);       \
        const __m256 u0_ = _mm256_shuffle_ps(t0_, t2_, 0x44), u1_ = _mm256_shuffle_ps(t0_, t2_, 0xEE); \
        const __m256 u2_ = _mm256_shuffle_ps(t1_, t3_, 0x44), u3_ = _mm256_shuffle_ps(t1_, t3_, 0xEE); \
        const __m256 u4_ = _mm256_shuffle_ps(t4_, t6_, 0x44), u5_ = _mm256_shuffle_ps(t4_, t6_, 0xEE); \
        const __m256 u6_ = _mm256_shuffle_ps(t5_, t7_, 0x44), u7_ = _mm256_shuffle_ps(t5_, t7_, 0xEE); \
        r0 = _mm256_permute2f128_ps(u0_, u4_, 0x20);                                           \
        r1 = _mm256_permute2f128_ps(u1_, u5_, 0x20);                                           \
        r2 = _mm256_permute2f128_ps(u2_, u6_, 0x20);                                           \
        r3 = _mm256_permute2f128_ps(u3_, u7_, 0x20);                                           \
        r4 = _mm256_permute2f128_ps(u0_, u4_, 0x31);                                           \
        r5 = _mm256_permute2f128_ps(u1_, u5_, 0x31);                                           \
        r6 = _mm256_permute2f128_ps(u2_, u6_, 0x31);                                           \
        r7 = _mm256_permute2f128_ps(u3_, u7_, 0x31);                                           \
    } while (0)

/* NP (1..4) output pixels of one row from the padded channel-innermost block: each sums its
 * taps in two chains (even, odd), so 4 pixels keep 8 FMA chains in flight. */
GN_INLINE void dw8_pixels(const float *src, float *dst, const float *wt, __m256 bias, int k,
                          const int K, const int S, const int NP, size_t pw8, gn_act act,
                          __m256 *vsum) {
    const __m256 zero = _mm256_setzero_ps();
    __m256 c0 = bias, c1 = bias, c2 = bias, c3 = bias, d0 = zero, d1 = zero, d2 = zero, d3 = zero;
    const int kk = K ? K : k;
#pragma GCC unroll 5
    for (int ky = 0; ky < kk; ky++)
#pragma GCC unroll 5
        for (int kx = 0; kx < kk; kx++) {
            const int t = ky * kk + kx;
            const __m256 w = _mm256_loadu_ps(wt + (size_t)t * 8);
            const float *p = src + (size_t)ky * pw8 + (size_t)kx * 8;
            if (t & 1) {
                d0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p), d0);
                if (NP > 1) d1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 8 * S), d1);
                if (NP > 2) d2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 16 * S), d2);
                if (NP > 3) d3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 24 * S), d3);
            } else {
                c0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p), c0);
                if (NP > 1) c1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 8 * S), c1);
                if (NP > 2) c2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 16 * S), c2);
                if (NP > 3) c3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(p + 24 * S), c3);
            }
        }
    c0 = act8(_mm256_add_ps(c0, d0), act);
    _mm256_storeu_ps(dst, c0);
    __m256 s = c0;
    if (NP > 1) {
        c1 = act8(_mm256_add_ps(c1, d1), act);
        _mm256_storeu_ps(dst + 8, c1);
        s = _mm256_add_ps(s, c1);
    }
    if (NP > 2) {
        c2 = act8(_mm256_add_ps(c2, d2), act);
        _mm256_storeu_ps(dst + 16, c2);
        s = _mm256_add_ps(s, c2);
    }
    if (NP > 3) {
        c3 = act8(_mm256_add_ps(c3, d3), act);
        _mm256_storeu_ps(dst + 24, c3);
        s = _mm256_add_ps(s, c3);
    }
    *vsum = _mm256_add_ps(*vsum, s);
}

GN_INLINE void dw8_planes(const gn_dw8_args *a, const int K, const int S, const gn_act ACT) {
    const int k = K ? K : a->k, pad = k / 2, ih = a->ih, iw = a->iw, oh = a->oh, ow = a->ow;
    const int pw = iw + 2 * pad, hw = ih * iw, ohw = oh * ow;
    const size_t pw8 = (size_t)pw * 8;
    float *const xp = a->scratch, *const yt = a->scratch + gn_dw8_pad_floats(ih, iw, k);
    /* 1. the 8 planes, 8 pixels at a time, into the interior of the padded block */
    {
        int row = 0, col = 0;
        float *dst = xp + (size_t)pad * pw8 + (size_t)pad * 8;
        const float *x = a->x;
        const size_t ldx = a->ldx;
#define GN_DW8_PUT(v)                                                                          \
    do {                                                                                       \
        _mm256_storeu_ps(dst + (size_t)col * 8, v);                                            \
        if (++col == iw) {                                                                     \
            col = 0;                                                                           \
            dst += pw8;                                                                        \
            row++;                                                                             \
        }                                                                                      \
    } while (0)
        int p0 = 0;
        for (; p0 + 8 <= hw; p0 += 8) {
            __m256 r0 = _mm256_loadu_ps(x + p0), r1 = _mm256_loadu_ps(x + ldx + p0);
            __m256 r2 = _mm256_loadu_ps(x + 2 * ldx + p0), r3 = _mm256_loadu_ps(x + 3 * ldx + p0);
            __m256 r4 = _mm256_loadu_ps(x + 4 * ldx + p0), r5 = _mm256_loadu_ps(x + 5 * ldx + p0);
            __m256 r6 = _mm256_loadu_ps(x + 6 * ldx + p0), r7 = _mm256_loadu_ps(x + 7 * ldx + p0);
            GN_TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
            GN_DW8_PUT(r0);
            GN_DW8_PUT(r1);
            GN_DW8_PUT(r2);
            GN_DW8_PUT(r3);
            GN_DW8_PUT(r4);
            GN_DW8_PUT(r5);
            GN_DW8_PUT(r6);
            GN_DW8_PUT(r7);
        }
        if (p0 < hw) {
            const int n = hw - p0;
            const __m256i m = mask_first(n);
            __m256 r0 = _mm256_maskload_ps(x + p0, m), r1 = _mm256_maskload_ps(x + ldx + p0, m);
            __m256 r2 = _mm256_maskload_ps(x + 2 * ldx + p0, m);
            __m256 r3 = _mm256_maskload_ps(x + 3 * ldx + p0, m);
            __m256 r4 = _mm256_maskload_ps(x + 4 * ldx + p0, m);
            __m256 r5 = _mm256_maskload_ps(x + 5 * ldx + p0, m);
            __m256 r6 = _mm256_maskload_ps(x + 6 * ldx + p0, m);
            __m256 r7 = _mm256_maskload_ps(x + 7 * ldx + p0, m);
            GN_TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
            GN_DW8_PUT(r0);
            if (n > 1) GN_DW8_PUT(r1);
            if (n > 2) GN_DW8_PUT(r2);
            if (n > 3) GN_DW8_PUT(r3);
            if (n > 4) GN_DW8_PUT(r4);
            if (n > 5) GN_DW8_PUT(r5);
            if (n > 6) GN_DW8_PUT(r6);
        }
#undef GN_DW8_PUT
        (void)row;
    }
    /* 2. taps channel-innermost: wt[t * 8 + c] */
    float wt[15 * 15 * 8];
    const int taps = k * k;
    for (int c = 0; c < 8; c++)
        for (int t = 0; t < taps; t++) wt[t * 8 + c] = a->w[(size_t)c * taps + t];
    const __m256 bias = _mm256_loadu_ps(a->bias);
    __m256 vsum = _mm256_setzero_ps();
    for (int oy = 0; oy < oh; oy++) {
        const float *src = xp + (size_t)(oy * S) * pw8;
        float *dst = yt + (size_t)oy * ow * 8;
        int ox = 0;
        for (; ox + 4 <= ow; ox += 4)
            dw8_pixels(src + (size_t)ox * S * 8, dst + (size_t)ox * 8, wt, bias, k, K, S, 4, pw8, ACT, &vsum);
        switch (ow - ox) {
        case 3: dw8_pixels(src + (size_t)ox * S * 8, dst + (size_t)ox * 8, wt, bias, k, K, S, 3, pw8, ACT, &vsum); break;
        case 2: dw8_pixels(src + (size_t)ox * S * 8, dst + (size_t)ox * 8, wt, bias, k, K, S, 2, pw8, ACT, &vsum); break;
        case 1: dw8_pixels(src + (size_t)ox * S * 8, dst + (size_t)ox * 8, wt, bias, k, K, S, 1, pw8, ACT, &vsum); break;
        default: break;
        }
    }
    /* 3. back to 8 planes, 8 pixels at a time, adding the residual */
    float *const y = a->y;
    const size_t ldy = a->ldy, ldr = a->ldr;
    const float *res = a->res;
    for (int p0 = 0; p0 < ohw; p0 += 8) {
        const int n = ohw - p0 < 8 ? ohw - p0 : 8;
        const float *q = yt + (size_t)p0 * 8;
        const __m256 zero = _mm256_setzero_ps();
        __m256 r0 = _mm256_loadu_ps(q), r1 = n > 1 ? _mm256_loadu_ps(q + 8) : zero;
        __m256 r2 = n > 2 ? _mm256_loadu_ps(q + 16) : zero, r3 = n > 3 ? _mm256_loadu_ps(q + 24) : zero;
        __m256 r4 = n > 4 ? _mm256_loadu_ps(q + 32) : zero, r5 = n > 5 ? _mm256_loadu_ps(q + 40) : zero;
        __m256 r6 = n > 6 ? _mm256_loadu_ps(q + 48) : zero, r7 = n > 7 ? _mm256_loadu_ps(q + 56) : zero;
        GN_TRANSPOSE8(r0, r1, r2, r3, r4, r5, r6, r7);
        const __m256i m = mask_first(n);
#define GN_DW8_OUT(c, r)                                                                       \
    do {                                                                                       \
        if (res) r = _mm256_add_ps(r, gemm_load(res + (c) * ldr + p0, 1, n < 8, m));           \
        store_first(y + (c) * ldy + p0, r, n);                                                 \
    } while (0)
        GN_DW8_OUT(0, r0);
        GN_DW8_OUT(1, r1);
        GN_DW8_OUT(2, r2);
        GN_DW8_OUT(3, r3);
        GN_DW8_OUT(4, r4);
        GN_DW8_OUT(5, r5);
        GN_DW8_OUT(6, r6);
        GN_DW8_OUT(7, r7);
#undef GN_DW8_OUT
    }
    if (a->sum) {
        float lanes[8];
        _mm256_storeu_ps(lanes, vsum);
        for (int c = 0; c < 8; c++) /* the sums are of y: residual included */
            a->sum[(size_t)c * a->lds] = lanes[c] + (res ? f32_sum_avx2(res + (size_t)c * ldr, (size_t)ohw) : 0.0f);
    }
}

/* K = 0: any odd k up to 15. */
#define GN_DW8_ENTRY(K, S)                                                                     \
    switch (a->act) {                                                                          \
    case GN_ACT_NONE: dw8_planes(a, K, S, GN_ACT_NONE); break;                                 \
    case GN_ACT_RELU: dw8_planes(a, K, S, GN_ACT_RELU); break;                                 \
    default: dw8_planes(a, K, S, a->act); break;                                               \
    }

void f32_dwconv_kxk_c8_avx2(const gn_dw8_args *a) {
    if (a->k == 3 && a->stride == 1) GN_DW8_ENTRY(3, 1)
    else if (a->k == 3 && a->stride == 2) GN_DW8_ENTRY(3, 2)
    else if (a->k == 5 && a->stride == 1) GN_DW8_ENTRY(5, 1)
    else if (a->k == 5 && a->stride == 2) GN_DW8_ENTRY(5, 2)
    else if (a->stride == 1) GN_DW8_ENTRY(0, 1)
    else GN_DW8_ENTRY(0, 2)
}
#undef GN_DW8_ENTRY

/* ---- depthwise in the batch-innermost layout: a vector is one pixel of 8 images ----------- */

/* NV (1..4) vectors of images from b0; taps split into even and odd chains: 2 * NV
 * independent FMA chains, per-image sums kept in registers across the whole plane. */
GN_INLINE void dwb_block(const gn_dwb_args *a, int b0, const int NV) {
    const int nb = a->batch, k = a->k, pad = k / 2, s = a->stride, ih = a->ih, iw = a->iw;
    const __m256 bias = _mm256_set1_ps(a->bias), zero = _mm256_setzero_ps();
    __m256 s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    for (int oy = 0; oy < a->oh; oy++) {
        const int ky0 = pad - oy * s > 0 ? pad - oy * s : 0;
        const int ky1 = ih + pad - oy * s < k ? ih + pad - oy * s : k;
        for (int ox = 0; ox < a->ow; ox++) {
            const int kx0 = pad - ox * s > 0 ? pad - ox * s : 0;
            const int kx1 = iw + pad - ox * s < k ? iw + pad - ox * s : k;
            __m256 c0 = bias, c1 = bias, c2 = bias, c3 = bias;
            __m256 d0 = zero, d1 = zero, d2 = zero, d3 = zero;
            for (int ky = ky0; ky < ky1; ky++) {
                /* signed: the row's first column may be left of the image; taps start at kx0 */
                const ptrdiff_t row = ((ptrdiff_t)(oy * s - pad + ky) * iw + (ox * s - pad)) * nb + b0;
                const float *wr = a->w + ky * k;
                int kx = kx0;
                for (; kx + 1 < kx1; kx += 2) {
                    const __m256 w0 = _mm256_broadcast_ss(wr + kx), w1 = _mm256_broadcast_ss(wr + kx + 1);
                    const float *p0 = a->x + (row + (ptrdiff_t)kx * nb), *p1 = p0 + nb;
                    c0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0), c0);
                    d0 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(p1), d0);
                    if (NV > 1) c1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0 + 8), c1);
                    if (NV > 1) d1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(p1 + 8), d1);
                    if (NV > 2) c2 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0 + 16), c2);
                    if (NV > 2) d2 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(p1 + 16), d2);
                    if (NV > 3) c3 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0 + 24), c3);
                    if (NV > 3) d3 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(p1 + 24), d3);
                }
                if (kx < kx1) {
                    const __m256 w0 = _mm256_broadcast_ss(wr + kx);
                    const float *p0 = a->x + (row + (ptrdiff_t)kx * nb);
                    c0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0), c0);
                    if (NV > 1) c1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0 + 8), c1);
                    if (NV > 2) c2 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0 + 16), c2);
                    if (NV > 3) c3 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(p0 + 24), c3);
                }
            }
            const size_t o = ((size_t)oy * a->ow + ox) * nb + b0;
            float *y = a->y + o;
            const float *r = a->res ? a->res + o : NULL;
#define GN_DWB_OUT(v, c, d, sv)                                                       \
    do {                                                                              \
        __m256 t = act8(_mm256_add_ps(c, d), a->act);                                 \
        if (r) t = _mm256_add_ps(t, _mm256_loadu_ps(r + 8 * (v)));                    \
        _mm256_storeu_ps(y + 8 * (v), t);                                             \
        sv = _mm256_add_ps(sv, t);                                                    \
    } while (0)
            GN_DWB_OUT(0, c0, d0, s0);
            if (NV > 1) GN_DWB_OUT(1, c1, d1, s1);
            if (NV > 2) GN_DWB_OUT(2, c2, d2, s2);
            if (NV > 3) GN_DWB_OUT(3, c3, d3, s3);
#undef GN_DWB_OUT
        }
    }
    if (a->sum) {
        _mm256_storeu_ps(a->sum + b0, s0);
        if (NV > 1) _mm256_storeu_ps(a->sum + b0 + 8, s1);
        if (NV > 2) _mm256_storeu_ps(a->sum + b0 + 16, s2);
        if (NV > 3) _mm256_storeu_ps(a->sum + b0 + 24, s3);
    }
}

void f32_dwconv_kxk_b8_avx2(const gn_dwb_args *a) {
    int b0 = 0;
    for (; b0 + 32 <= a->batch; b0 += 32) dwb_block(a, b0, 4);
    switch ((a->batch - b0) / 8) {
    case 3: dwb_block(a, b0, 3); break;
    case 2: dwb_block(a, b0, 2); break;
    case 1: dwb_block(a, b0, 1); break;
    default: break;
    }
}

void f32_sum_b8_avx2(const float *x, size_t hw, int batch, float *out) {
    int b0 = 0;
    for (; b0 + 32 <= batch; b0 += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t p = 0; p < hw; p++) {
            const float *q = x + p * batch + b0;
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(q));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(q + 8));
            s2 = _mm256_add_ps(s2, _mm256_loadu_ps(q + 16));
            s3 = _mm256_add_ps(s3, _mm256_loadu_ps(q + 24));
        }
        _mm256_storeu_ps(out + b0, s0);
        _mm256_storeu_ps(out + b0 + 8, s1);
        _mm256_storeu_ps(out + b0 + 16, s2);
        _mm256_storeu_ps(out + b0 + 24, s3);
    }
    for (; b0 + 8 <= batch; b0 += 8) {
        __m256 s0 = _mm256_setzero_ps();
        for (size_t p = 0; p < hw; p++) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + p * batch + b0));
        _mm256_storeu_ps(out + b0, s0);
    }
}

void f32_scale_b8_avx2(float *x, size_t hw, int batch, const float *s) {
    int b0 = 0;
    for (; b0 + 32 <= batch; b0 += 32) {
        const __m256 g0 = _mm256_loadu_ps(s + b0), g1 = _mm256_loadu_ps(s + b0 + 8);
        const __m256 g2 = _mm256_loadu_ps(s + b0 + 16), g3 = _mm256_loadu_ps(s + b0 + 24);
        for (size_t p = 0; p < hw; p++) {
            float *q = x + p * batch + b0;
            _mm256_storeu_ps(q, _mm256_mul_ps(_mm256_loadu_ps(q), g0));
            _mm256_storeu_ps(q + 8, _mm256_mul_ps(_mm256_loadu_ps(q + 8), g1));
            _mm256_storeu_ps(q + 16, _mm256_mul_ps(_mm256_loadu_ps(q + 16), g2));
            _mm256_storeu_ps(q + 24, _mm256_mul_ps(_mm256_loadu_ps(q + 24), g3));
        }
    }
    for (; b0 + 8 <= batch; b0 += 8) {
        const __m256 g0 = _mm256_loadu_ps(s + b0);
        for (size_t p = 0; p < hw; p++) {
            float *q = x + p * batch + b0;
            _mm256_storeu_ps(q, _mm256_mul_ps(_mm256_loadu_ps(q), g0));
        }
    }
}

/* 8 x 8 blocks through registers; the ragged edges element by element. */
void f32_transpose_8x8_avx2(const float *x, size_t ldx, float *y, size_t ldy, int rows, int cols) {
    int i = 0;
    for (; i + 8 <= rows; i += 8) {
        int j = 0;
        for (; j + 8 <= cols; j += 8) {
            const float *p = x + (size_t)i * ldx + j;
            const __m256 r0 = _mm256_loadu_ps(p), r1 = _mm256_loadu_ps(p + ldx);
            const __m256 r2 = _mm256_loadu_ps(p + 2 * ldx), r3 = _mm256_loadu_ps(p + 3 * ldx);
            const __m256 r4 = _mm256_loadu_ps(p + 4 * ldx), r5 = _mm256_loadu_ps(p + 5 * ldx);
            const __m256 r6 = _mm256_loadu_ps(p + 6 * ldx), r7 = _mm256_loadu_ps(p + 7 * ldx);
            const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *q = y + (size_t)j * ldy + i;
            _mm256_storeu_ps(q, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(q + ldy, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(q + 2 * ldy, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(q + 3 * ldy, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(q + 4 * ldy, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(q + 5 * ldy, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(q + 6 * ldy, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(q + 7 * ldy, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        if (j < cols) f32_transpose_1x1_scalar(x + (size_t)i * ldx + j, ldx, y + (size_t)j * ldy + i, ldy, 8, cols - j);
    }
    if (i < rows) f32_transpose_1x1_scalar(x + (size_t)i * ldx, ldx, y + i, ldy, rows - i, cols);
}

/* ---- im2col ------------------------------------------------------------------------------ */

/* One tap's row: dst[i] = row[ix0 + i * stride] inside [0, iw), else 0. */
static void im2col_row(const float *row, int iw, int ix0, int stride, int n, float *dst) {
    if (!row || (stride != 1 && stride != 2)) {
        for (int i = 0; i < n; i++) {
            const int ix = ix0 + i * stride;
            dst[i] = (row && ix >= 0 && ix < iw) ? row[ix] : 0.0f;
        }
        return;
    }
    /* columns i with 0 <= ix0 + i * stride < iw: [lo, hi) */
    int lo = ix0 >= 0 ? 0 : (-ix0 + stride - 1) / stride;
    int hi = ix0 >= iw ? 0 : (iw - 1 - ix0) / stride + 1;
    if (lo > n) lo = n;
    if (hi > n) hi = n;
    if (hi < lo) hi = lo;
    for (int i = 0; i < lo; i++) dst[i] = 0.0f;
    int i = lo;
    if (stride == 1) {
        memcpy(dst + lo, row + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
        i = hi;
    } else {
        /* 16 input floats per 8 outputs; stay inside the row */
        for (; i + 8 <= hi && ix0 + 2 * i + 16 <= iw; i += 8) {
            __m256 e, o;
            deinterleave16(row + ix0 + 2 * i, &e, &o);
            _mm256_storeu_ps(dst + i, e);
        }
        for (; i < hi; i++) dst[i] = row[ix0 + 2 * i];
    }
    for (; i < n; i++) dst[i] = 0.0f;
}

/* Stride 2, any number of taps: each tap's row straight from the input row (16 floats per 8
 * outputs: loads and shuffles, no stores to reload), the row's start and end in the same
 * call, masked, rather than element by element. */
void f32_im2col_kx_avx2(const float *row, int iw, int ix0, int stride, int n, int k, float *dst,
                        size_t ldd) {
    if (!row || stride != 2) {
        for (int kx = 0; kx < k; kx++) im2col_row(row, iw, ix0 + kx, stride, n, dst + (size_t)kx * ldd);
        return;
    }
    for (int kx = 0; kx < k; kx++) {
        float *d = dst + (size_t)kx * ldd;
        const int x0 = ix0 + kx; /* d[i] = row[x0 + 2i] */
        int i = 0;
        for (; i < n && x0 + 2 * i < 0; i++) d[i] = 0.0f;
        for (; i + 8 <= n && x0 + 2 * i + 16 <= iw; i += 8) {
            __m256 e, o;
            deinterleave16(row + x0 + 2 * i, &e, &o);
            _mm256_storeu_ps(d + i, e);
        }
        for (; i < n; i += 8) { /* the row's end: masked loads, zeros past it */
            const int rem = iw - (x0 + 2 * i);
            __m256 a = _mm256_setzero_ps(), b = a;
            if (rem > 0) a = _mm256_maskload_ps(row + x0 + 2 * i, mask_first(rem < 8 ? rem : 8));
            if (rem > 8) b = _mm256_maskload_ps(row + x0 + 2 * i + 8, mask_first(rem < 16 ? rem - 8 : 8));
            const __m256 e = _mm256_castpd_ps(
                _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
            store_first(d + i, e, n - i < 8 ? n - i : 8);
        }
    }
}

/* ---- vectors ----------------------------------------------------------------------------- */

float f32_sum_avx2(const float *x, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
    }
    if (i + 8 <= n) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        i += 8;
    }
    if (i < n) a1 = _mm256_add_ps(a1, _mm256_maskload_ps(x + i, mask_first((int)(n - i))));
    return hsum8(_mm256_add_ps(a0, a1));
}

void f32_scale_avx2(float *x, size_t n, float s) {
    const __m256 sv = _mm256_set1_ps(s);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), sv));
    if (i < n) {
        const __m256i m = mask_first((int)(n - i));
        store_first(x + i, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), sv), (int)(n - i));
    }
}

void f32_add_avx2(float *y, const float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    if (i < n) {
        const __m256i m = mask_first((int)(n - i));
        store_first(y + i, _mm256_add_ps(_mm256_maskload_ps(y + i, m), _mm256_maskload_ps(x + i, m)),
                    (int)(n - i));
    }
}

void gn_kernels_avx2(gn_kernels *k) {
    k->name = "avx2";
    k->gemm_nr = 24;
    k->gemm = f32_gemm_4x24_avx2;
    k->gemv = f32_gemv_avx2;
    k->dw3s1 = f32_dwconv_3x3s1_avx2;
    k->dw3s2 = f32_dwconv_3x3s2_avx2;
    k->dw5s1 = f32_dwconv_5x5s1_avx2;
    k->dw5s2 = f32_dwconv_5x5s2_avx2;
    k->dwks1 = f32_dwconv_kxks1_avx2;
    k->dwks2 = f32_dwconv_kxks2_avx2;
    k->dwb = f32_dwconv_kxk_b8_avx2;
    k->dw8 = f32_dwconv_kxk_c8_avx2;
    k->im2col = f32_im2col_kx_avx2;
    k->sum_b = f32_sum_b8_avx2;
    k->scale_b = f32_scale_b8_avx2;
    k->transpose = f32_transpose_8x8_avx2;
    k->sum = f32_sum_avx2;
    k->scale = f32_scale_avx2;
    k->add = f32_add_avx2;
}
