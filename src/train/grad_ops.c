/* Training kernels: products, convolutions forward and backward on strided (NCHW or
 * batch-inner) tensors, batch norm in training mode, squeeze-excite, dropout and the loss
 * (see train.h for the conventions: gradients accumulate, images may be strided views).
 *
 * Threading: every kernel taking a gn_tctx splits its work into tasks that each own a set of
 * output elements (a range of channels, a block of a product) and compute them completely, in
 * an order that depends only on the shapes. Reductions over the batch (weight gradients, BN
 * statistics) therefore never combine partial sums from different threads: the results are
 * the same for every thread count, and for any split of the work.
 *
 * ISA: the hot loops (product tiles, depthwise taps, BN passes) have an AVX2 + FMA twin,
 * compiled with a function target attribute (the build adds no -mavx2 for this file: the
 * sources list is not ours to split) and used only when the CPU has both and GN_FORCE_SCALAR
 * is off; the portable twins are plain C that compilers vectorise, and both are tested
 * against the references. */
#include <math.h>
#include <string.h>

#include "core/threadpool.h"
#include "ops/ukernels.h"
#include "train/train.h"

#if defined(GN_HAVE_AVX2) && (defined(__x86_64__) || defined(_M_X64)) && \
    (defined(__GNUC__) || defined(__clang__))
#define GN_TRAIN_AVX2 1
#include <immintrin.h>
#define GN_AVX2_FN __attribute__((target("avx2,fma")))
#endif

int gn_train_avx2_available(void) {
#if defined(GN_TRAIN_AVX2)
    return gn_isa_detect(0) == GN_ISA_AVX2;
#else
    return 0;
#endif
}

/* ---- small helpers ------------------------------------------------------------------------ */

/* Loop bodies written once and inlined into a portable and an AVX2 twin (see "twins"). */
#if defined(__GNUC__) || defined(__clang__)
#define GN_INLINE static inline __attribute__((always_inline))
#else
#define GN_INLINE static inline
#endif

/* Sum and dot product with 8 partial sums: the compiler vectorises these without having to
 * reorder a single float reduction. */
GN_INLINE float sum8(const float *x, size_t n) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += x[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

GN_INLINE float dot8(const float *a, const float *b, size_t n) {
    float acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += a[i + j] * b[i + j];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int j = 0; j < 8; j++) s += acc[j];
    return s;
}

/* Long runs are reduced in chunks of float partial sums gathered in double, so a channel of
 * 100k values keeps the precision of a plane. */
enum { kChunk = 1024 };

/* Output columns [*lo, *hi) whose input column ox * s + off lies in [0, in_w). */
static void col_range(int off, int s, int in_w, int out_w, int *lo, int *hi) {
    *lo = off < 0 ? (-off + s - 1) / s : 0;
    *hi = in_w - 1 - off < 0 ? 0 : (in_w - 1 - off) / s + 1;
    if (*hi > out_w) *hi = out_w;
    if (*lo > *hi) *lo = *hi;
}

/* ---- parallel loops ----------------------------------------------------------------------- */

static gn_threadpool *pool_of(const gn_tctx *ctx) { return ctx ? ctx->pool : NULL; }
static int avx2_of(const gn_tctx *ctx) { return ctx ? ctx->avx2 : gn_train_avx2_available(); }

/* Work is estimated in nanoseconds of one core: an element streamed through memory ~0.5 ns,
 * a depthwise multiply-add ~0.1 ns, a product's multiply-add ~0.04 ns. Below kSerialWork a
 * job runs on the calling thread alone: waking the pool and meeting at its barrier would cost
 * about as much, and every barrier is a point where one preempted thread (the cores are
 * shared) stalls the others. The split never changes results, so neither does this. */
enum { kSerialWork = 20000 };
#define GN_NS_ELEMENT 0.5
#define GN_NS_DW_MAC 0.1
#define GN_NS_GEMM_MAC 0.04

/* Tasks for `units` independent pieces of `work` in all: a few per thread so that a thread
 * slowed by a neighbour hands work to the others; one when serial or small. */
static int task_count(const gn_tctx *ctx, int units, double work) {
    const int threads = gn_threadpool_size(pool_of(ctx));
    const int split = threads > 1 && (work >= kSerialWork || (ctx && ctx->split_all));
    int n = split ? threads * 4 : 1;
    return n < units ? n : (units > 0 ? units : 1);
}

/* [*lo, *hi) of `units` for task t of n. */
static void task_range(int units, int t, int n, int *lo, int *hi) {
    *lo = (int)((int64_t)units * t / n);
    *hi = (int)((int64_t)units * (t + 1) / n);
}

/* A loop over channels [0, channels) split into tasks of whole channels. */
typedef gn_range_fn channel_fn;
typedef struct channel_job {
    channel_fn fn;
    const void *arg;
    int channels, ntasks;
} channel_job;

static void channel_task(void *ctx, int task, int thread) {
    (void)thread;
    const channel_job *j = ctx;
    int lo, hi;
    task_range(j->channels, task, j->ntasks, &lo, &hi);
    if (hi > lo) j->fn(j->arg, lo, hi);
}

/* fn over [0, units), each unit about `unit_work` multiply-adds or elements. */
static void for_units(const gn_tctx *ctx, int units, double unit_work, channel_fn fn,
                      const void *arg) {
    if (units <= 0) return;
    channel_job j = {fn, arg, units, task_count(ctx, units, units * unit_work)};
    gn_threadpool_run(pool_of(ctx), channel_task, &j, j.ntasks);
}

void gn_tctx_for(const gn_tctx *ctx, int units, gn_range_fn fn, const void *arg) {
    for_units(ctx, units, kSerialWork, fn, arg);
}

/* ---- activations -------------------------------------------------------------------------- */

void gn_act_forward(gn_act act, const float *x, size_t n, float *y) {
    for (size_t i = 0; i < n; i++) y[i] = gn_act_apply(act, x[i]);
}

void gn_act_backward(gn_act act, const float *x, const float *dy, size_t n, float *dx) {
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * gn_act_grad(act, x[i]);
}

/* ---- matrix product ----------------------------------------------------------------------- */

static float gemm_a(const gn_gemm *g, int i, int k) { return g->a[i * g->a_rs + k * g->a_ks]; }
static float gemm_b(const gn_gemm *g, int k, int j) {
    return g->b_trans ? g->b[j * g->ldb + k] : g->b[k * g->ldb + j];
}

void gn_gemm_ref(const gn_gemm *g) {
    for (int i = 0; i < g->m; i++)
        for (int j = 0; j < g->n; j++) {
            double acc = 0.0;
            for (int k = 0; k < g->k; k++) acc += (double)gemm_a(g, i, k) * gemm_b(g, k, j);
            float *c = g->c + i * g->ldc + j;
            *c = g->accumulate ? (float)(*c + acc) : (float)acc;
        }
}

enum { kMR = 4, kNR = 24, kKC = 256 };

/* One kMR x kNR tile: C(rows x cols) (+)= A(rows x kc) Bp(kc x kNR), Bp packed rows of kNR. */
typedef void (*tile_fn)(int kc, const float *a, size_t ars, size_t aks, const float *bp,
                        float *c, size_t ldc, int rows, int cols, int acc);

static void store_tile(float t[kMR][kNR], float *c, size_t ldc, int rows, int cols, int acc) {
    for (int r = 0; r < rows; r++) {
        float *cr = c + r * ldc;
        if (acc) {
            for (int j = 0; j < cols; j++) cr[j] += t[r][j];
        } else {
            for (int j = 0; j < cols; j++) cr[j] = t[r][j];
        }
    }
}

static void tile_generic(int kc, const float *a, size_t ars, size_t aks, const float *bp,
                         float *c, size_t ldc, int rows, int cols, int acc) {
    /* Rows past `rows` re-read row 0 and are never stored. */
    const float *a0 = a, *a1 = a + (rows > 1 ? ars : 0), *a2 = a + (rows > 2 ? 2 * ars : 0),
                *a3 = a + (rows > 3 ? 3 * ars : 0);
    float t[kMR][kNR] = {{0}};
    for (int k = 0; k < kc; k++) {
        const float *bk = bp + (size_t)k * kNR;
        const float v0 = a0[k * aks], v1 = a1[k * aks], v2 = a2[k * aks], v3 = a3[k * aks];
        for (int j = 0; j < kNR; j++) {
            t[0][j] += v0 * bk[j];
            t[1][j] += v1 * bk[j];
            t[2][j] += v2 * bk[j];
            t[3][j] += v3 * bk[j];
        }
    }
    store_tile(t, c, ldc, rows, cols, acc);
}

#if defined(GN_TRAIN_AVX2)
GN_AVX2_FN static void tile_avx2(int kc, const float *a, size_t ars, size_t aks, const float *bp,
                                 float *c, size_t ldc, int rows, int cols, int acc) {
    const float *a0 = a, *a1 = a + (rows > 1 ? ars : 0), *a2 = a + (rows > 2 ? 2 * ars : 0),
                *a3 = a + (rows > 3 ? 3 * ars : 0);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    for (int k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8),
                     b2 = _mm256_load_ps(bp + 16);
        bp += kNR;
        __m256 v = _mm256_broadcast_ss(a0);
        c00 = _mm256_fmadd_ps(v, b0, c00);
        c01 = _mm256_fmadd_ps(v, b1, c01);
        c02 = _mm256_fmadd_ps(v, b2, c02);
        v = _mm256_broadcast_ss(a1);
        c10 = _mm256_fmadd_ps(v, b0, c10);
        c11 = _mm256_fmadd_ps(v, b1, c11);
        c12 = _mm256_fmadd_ps(v, b2, c12);
        v = _mm256_broadcast_ss(a2);
        c20 = _mm256_fmadd_ps(v, b0, c20);
        c21 = _mm256_fmadd_ps(v, b1, c21);
        c22 = _mm256_fmadd_ps(v, b2, c22);
        v = _mm256_broadcast_ss(a3);
        c30 = _mm256_fmadd_ps(v, b0, c30);
        c31 = _mm256_fmadd_ps(v, b1, c31);
        c32 = _mm256_fmadd_ps(v, b2, c32);
        a0 += aks;
        a1 += aks;
        a2 += aks;
        a3 += aks;
    }
    if (rows == kMR && cols == kNR) {
        __m256 *const rowv[kMR][3] = {{&c00, &c01, &c02}, {&c10, &c11, &c12},
                                      {&c20, &c21, &c22}, {&c30, &c31, &c32}};
        for (int r = 0; r < kMR; r++) {
            float *cr = c + r * ldc;
            for (int q = 0; q < 3; q++) {
                __m256 v = *rowv[r][q];
                if (acc) v = _mm256_add_ps(_mm256_loadu_ps(cr + 8 * q), v);
                _mm256_storeu_ps(cr + 8 * q, v);
            }
        }
        return;
    }
    _Alignas(32) float t[kMR][kNR];
    _mm256_store_ps(t[0], c00);
    _mm256_store_ps(t[0] + 8, c01);
    _mm256_store_ps(t[0] + 16, c02);
    _mm256_store_ps(t[1], c10);
    _mm256_store_ps(t[1] + 8, c11);
    _mm256_store_ps(t[1] + 16, c12);
    _mm256_store_ps(t[2], c20);
    _mm256_store_ps(t[2] + 8, c21);
    _mm256_store_ps(t[2] + 16, c22);
    _mm256_store_ps(t[3], c30);
    _mm256_store_ps(t[3] + 8, c31);
    _mm256_store_ps(t[3] + 16, c32);
    store_tile(t, c, ldc, rows, cols, acc);
}
#endif

/* Products with a long inner dimension and rows of both A and B contiguous along it (weight
 * gradients: k = batch * pixels): C(i, j) += A(i, :) . B(j, :) on tiles of 4 rows of A by 3
 * rows of B, 8 lanes each, reduced once per block of kDotKC. No packing, so the early layers'
 * few channels with 100k-long rows stream once from cache instead of being transposed. */
enum { kDR = 4, kDC = 3, kDotKC = 4096 };

typedef void (*dot_tile_fn)(int kc, const float *const a[kDR], const float *const b[kDC],
                            float out[kDR][kDC]);

static void dot_tile_generic(int kc, const float *const a[kDR], const float *const b[kDC],
                             float out[kDR][kDC]) {
    float acc[kDR][kDC][8] = {{{0}}};
    int k = 0;
    for (; k + 8 <= kc; k += 8)
        for (int r = 0; r < kDR; r++)
            for (int c = 0; c < kDC; c++)
                for (int l = 0; l < 8; l++) acc[r][c][l] += a[r][k + l] * b[c][k + l];
    for (int r = 0; r < kDR; r++)
        for (int c = 0; c < kDC; c++) {
            float s = 0.0f;
            for (int kk = k; kk < kc; kk++) s += a[r][kk] * b[c][kk];
            for (int l = 0; l < 8; l++) s += acc[r][c][l];
            out[r][c] = s;
        }
}

#if defined(GN_TRAIN_AVX2)
GN_AVX2_FN static float hsum_avx2(__m256 v) {
    _Alignas(32) float l[8];
    _mm256_store_ps(l, v);
    float s = 0.0f;
    for (int i = 0; i < 8; i++) s += l[i];
    return s;
}

/* Lanes of v summed in order into a double. */
GN_AVX2_FN static double lanes_sum(__m256 v) {
    _Alignas(32) float l[8];
    _mm256_store_ps(l, v);
    double s = 0.0;
    for (int i = 0; i < 8; i++) s += l[i];
    return s;
}

GN_AVX2_FN static void dot_tile_avx2(int kc, const float *const a[kDR], const float *const b[kDC],
                                     float out[kDR][kDC]) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;
    __m256 c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *b0 = b[0], *b1 = b[1], *b2 = b[2];
    int k = 0;
    for (; k + 8 <= kc; k += 8) {
        const __m256 y0 = _mm256_loadu_ps(b0 + k), y1 = _mm256_loadu_ps(b1 + k),
                     y2 = _mm256_loadu_ps(b2 + k);
        __m256 x = _mm256_loadu_ps(a0 + k);
        c00 = _mm256_fmadd_ps(x, y0, c00);
        c01 = _mm256_fmadd_ps(x, y1, c01);
        c02 = _mm256_fmadd_ps(x, y2, c02);
        x = _mm256_loadu_ps(a1 + k);
        c10 = _mm256_fmadd_ps(x, y0, c10);
        c11 = _mm256_fmadd_ps(x, y1, c11);
        c12 = _mm256_fmadd_ps(x, y2, c12);
        x = _mm256_loadu_ps(a2 + k);
        c20 = _mm256_fmadd_ps(x, y0, c20);
        c21 = _mm256_fmadd_ps(x, y1, c21);
        c22 = _mm256_fmadd_ps(x, y2, c22);
        x = _mm256_loadu_ps(a3 + k);
        c30 = _mm256_fmadd_ps(x, y0, c30);
        c31 = _mm256_fmadd_ps(x, y1, c31);
        c32 = _mm256_fmadd_ps(x, y2, c32);
    }
    const __m256 v[kDR][kDC] = {{c00, c01, c02}, {c10, c11, c12}, {c20, c21, c22}, {c30, c31, c32}};
    for (int r = 0; r < kDR; r++)
        for (int c = 0; c < kDC; c++) {
            float s = 0.0f;
            for (int kk = k; kk < kc; kk++) s += a[r][kk] * b[c][kk];
            out[r][c] = s + hsum_avx2(v[r][c]);
        }
}
#endif

typedef struct dot_job {
    const gn_gemm *g;
    dot_tile_fn tile;
    int rtiles, ctiles, ntasks;
} dot_job;

/* Task = a range of (row tile, column tile) pairs; every block of k in order. */
static void dot_task(void *ctx, int task, int thread) {
    (void)thread;
    const dot_job *j = ctx;
    const gn_gemm *g = j->g;
    int t0, t1;
    task_range(j->rtiles * j->ctiles, task, j->ntasks, &t0, &t1);
    for (int kb = 0; kb < g->k; kb += kDotKC) {
        const int kc = g->k - kb < kDotKC ? g->k - kb : kDotKC;
        for (int t = t0; t < t1; t++) {
            const int i0 = (t / j->ctiles) * kDR, c0 = (t % j->ctiles) * kDC;
            const int rows = g->m - i0 < kDR ? g->m - i0 : kDR;
            const int cols = g->n - c0 < kDC ? g->n - c0 : kDC;
            const float *a[kDR], *b[kDC];
            for (int r = 0; r < kDR; r++) a[r] = g->a + (size_t)(i0 + (r < rows ? r : 0)) * g->a_rs + kb;
            for (int c = 0; c < kDC; c++) b[c] = g->b + (size_t)(c0 + (c < cols ? c : 0)) * g->ldb + kb;
            float out[kDR][kDC];
            j->tile(kc, a, b, out);
            for (int r = 0; r < rows; r++) {
                float *cr = g->c + (size_t)(i0 + r) * g->ldc + c0;
                for (int c = 0; c < cols; c++)
                    cr[c] = (g->accumulate || kb > 0) ? cr[c] + out[r][c] : out[r][c];
            }
        }
    }
}

/* Whether the dot-product tiles beat packing: long rows (the packed path would transpose
 * every element of B for few rows of A). */
static int use_dot(const gn_gemm *g) { return g->b_trans && g->a_ks == 1 && g->k >= 2048; }

static void dot_run(const gn_tctx *ctx, const gn_gemm *g) {
    dot_job j = {g, dot_tile_generic, (g->m + kDR - 1) / kDR, (g->n + kDC - 1) / kDC, 1};
#if defined(GN_TRAIN_AVX2)
    if (avx2_of(ctx)) j.tile = dot_tile_avx2;
#endif
    j.ntasks = task_count(ctx, j.rtiles * j.ctiles, GN_NS_GEMM_MAC * g->m * g->n * g->k);
    gn_threadpool_run(pool_of(ctx), dot_task, &j, j.ntasks);
}

/* B(kb .. kb+kc, j0 .. j0+cols) into kc rows of kNR floats, zero past cols. */
static void pack_b(const gn_gemm *g, int kb, int kc, int j0, int cols, float *bp) {
    if (g->b_trans) {
        if (cols < kNR)
            for (int k = 0; k < kc; k++)
                for (int j = cols; j < kNR; j++) bp[k * kNR + j] = 0.0f;
        for (int j = 0; j < cols; j++) {
            const float *src = g->b + (size_t)(j0 + j) * g->ldb + kb;
            for (int k = 0; k < kc; k++) bp[k * kNR + j] = src[k];
        }
        return;
    }
    for (int k = 0; k < kc; k++) {
        const float *src = g->b + (size_t)(kb + k) * g->ldb + j0;
        float *dst = bp + k * kNR;
        if (cols == kNR) {
            memcpy(dst, src, kNR * sizeof(float));
        } else {
            for (int j = 0; j < cols; j++) dst[j] = src[j];
            for (int j = cols; j < kNR; j++) dst[j] = 0.0f;
        }
    }
}

typedef struct gemm_job {
    const gn_gemm *g;
    tile_fn tile;
    int strips, tiles, n_split, m_split;
    float *scratch; /* GN_TCTX_SCRATCH_FLOATS per thread, or NULL */
} gemm_job;

/* Packed B per task: strips of one block of k, together at most the thread's scratch (an
 * L2's share), so a short inner size packs many strips at once; one strip when packing on the
 * stack (no scratch in the context). */

/* Task = (range of column strips) x (range of row tiles). The strips go in chunks: for each
 * block of k, a chunk's strips are packed, then every row tile sweeps the whole chunk, so C is
 * written in runs of chunk width (not 24 floats at a time across every row) and few memory
 * streams are live at once. */
static void gemm_task(void *ctx, int task, int thread) {
    const gemm_job *j = ctx;
    const gn_gemm *g = j->g;
    int s0, s1, t0, t1;
    task_range(j->strips, task % j->n_split, j->n_split, &s0, &s1);
    task_range(j->tiles, task / j->n_split, j->m_split, &t0, &t1);
    _Alignas(32) float local[kKC * kNR];
    float *bp = j->scratch ? j->scratch + (size_t)thread * GN_TCTX_SCRATCH_FLOATS : local;
    const int kc_max = g->k < kKC ? g->k : kKC;
    int per_chunk = j->scratch ? GN_TCTX_SCRATCH_FLOATS / (kc_max * kNR) : 1;
    if (per_chunk < 1) per_chunk = 1;
    for (int c0 = s0; c0 < s1; c0 += per_chunk) {
        const int c1 = s1 - c0 < per_chunk ? s1 : c0 + per_chunk;
        for (int kb = 0; kb < g->k; kb += kKC) {
            const int kc = g->k - kb < kKC ? g->k - kb : kKC;
            for (int s = c0; s < c1; s++) {
                const int j0 = s * kNR, cols = g->n - j0 < kNR ? g->n - j0 : kNR;
                pack_b(g, kb, kc, j0, cols, bp + (size_t)(s - c0) * kc * kNR);
            }
            const int acc = g->accumulate || kb > 0;
            for (int t = t0; t < t1; t++) {
                const int i0 = t * kMR, rows = g->m - i0 < kMR ? g->m - i0 : kMR;
                const float *a = g->a + (size_t)i0 * g->a_rs + (size_t)kb * g->a_ks;
                for (int s = c0; s < c1; s++) {
                    const int j0 = s * kNR, cols = g->n - j0 < kNR ? g->n - j0 : kNR;
                    j->tile(kc, a, g->a_rs, g->a_ks, bp + (size_t)(s - c0) * kc * kNR,
                            g->c + (size_t)i0 * g->ldc + j0, g->ldc, rows, cols, acc);
                }
            }
        }
    }
}

void gn_gemm_run(const gn_tctx *ctx, const gn_gemm *g) {
    if (g->m <= 0 || g->n <= 0) return;
    if (g->k <= 0) {
        if (!g->accumulate)
            for (int i = 0; i < g->m; i++) memset(g->c + (size_t)i * g->ldc, 0, g->n * sizeof(float));
        return;
    }
    if (use_dot(g)) {
        dot_run(ctx, g);
        return;
    }
    gemm_job j = {g, tile_generic, (g->n + kNR - 1) / kNR, (g->m + kMR - 1) / kMR, 1, 1,
                  ctx ? ctx->scratch : NULL};
#if defined(GN_TRAIN_AVX2)
    if (avx2_of(ctx)) j.tile = tile_avx2;
#endif
    const int want = task_count(ctx, j.strips * j.tiles, GN_NS_GEMM_MAC * g->m * g->n * g->k);
    j.n_split = want < j.strips ? want : j.strips;
    j.m_split = (want + j.n_split - 1) / j.n_split;
    if (j.m_split > j.tiles) j.m_split = j.tiles;
    gn_threadpool_run(pool_of(ctx), gemm_task, &j, j.n_split * j.m_split);
}

/* ---- convolution: shapes ------------------------------------------------------------------ */

typedef struct conv_geom {
    int ipg, opg, kh, kw, s, pad;
    size_t in_plane, out_plane;
    gn_tlayout in, out;
} conv_geom;

static conv_geom geom(const gn_tconv *c) {
    const gn_conv_params *p = &c->p;
    conv_geom q;
    q.ipg = p->in_c / p->groups;
    q.opg = p->out_per_group;
    q.kh = p->kernel_h;
    q.kw = p->kernel_w;
    q.s = p->stride;
    q.pad = p->pad;
    q.in_plane = (size_t)p->in_h * p->in_w;
    q.out_plane = (size_t)p->out_h * p->out_w;
    q.in = c->in;
    q.out = c->out;
    return q;
}

gn_tconv gn_tconv_nchw(const gn_conv_params *p) {
    gn_tconv c;
    c.p = *p;
    c.in.bs = p->in_image_stride;
    c.in.cs = (size_t)p->in_h * p->in_w;
    c.in.ps = 1;
    c.out.bs = p->out_image_stride;
    c.out.cs = (size_t)p->out_h * p->out_w;
    c.out.ps = 1;
    c.overwrite = 0;
    return c;
}

static size_t at(const gn_tlayout *l, int b, int c, size_t i) {
    return b * l->bs + c * l->cs + i * l->ps;
}

static int is_planar(const gn_tlayout *l) { return l->ps == 1; }
static int is_batch_inner(const gn_tlayout *l, int batch) { return l->bs == 1 && l->ps >= (size_t)batch; }

/* Image-major or batch-inner with no gaps: (b, i) -> one contiguous run of batch * plane. */
static int columns_contiguous(const gn_tlayout *l, int batch, size_t plane) {
    return (l->ps == 1 && (l->bs == plane || batch == 1)) ||
           (l->bs == 1 && (l->ps == (size_t)batch || plane == 1));
}

/* Output channels of group g that exist (a Ghost module may truncate the last groups). */
static int group_out_end(const gn_conv_params *p, int g) {
    int end = (g + 1) * p->out_per_group;
    return end < p->out_c ? end : p->out_c;
}

static int is_pointwise(const gn_conv_params *p) {
    return p->kernel_h == 1 && p->kernel_w == 1 && p->stride == 1 && p->pad == 0 &&
           p->groups == 1;
}

/* ---- convolution: reference --------------------------------------------------------------- */

void gn_tconv_forward_ref(const gn_tconv *c, const float *x, const float *weight, float *y) {
    const gn_conv_params *p = &c->p;
    const conv_geom q = geom(c);
    for (int b = 0; b < p->batch; b++)
        for (int oc = 0; oc < p->out_c; oc++) {
            const int g = oc / q.opg;
            for (int oy = 0; oy < p->out_h; oy++)
                for (int ox = 0; ox < p->out_w; ox++) {
                    double acc = 0.0;
                    for (int ic = 0; ic < q.ipg; ic++)
                        for (int ky = 0; ky < q.kh; ky++) {
                            const int iy = oy * q.s - q.pad + ky;
                            if (iy < 0 || iy >= p->in_h) continue;
                            for (int kx = 0; kx < q.kw; kx++) {
                                const int ix = ox * q.s - q.pad + kx;
                                if (ix < 0 || ix >= p->in_w) continue;
                                acc += (double)weight[(((size_t)oc * q.ipg + ic) * q.kh + ky) * q.kw + kx] *
                                       x[at(&q.in, b, g * q.ipg + ic, (size_t)iy * p->in_w + ix)];
                            }
                        }
                    y[at(&q.out, b, oc, (size_t)oy * p->out_w + ox)] = (float)acc;
                }
        }
}

/* Gather form: each input element sums the taps that read it, in double. */
void gn_tconv_backward_data_ref(const gn_tconv *c, const float *dy, const float *weight,
                                float *dx) {
    const gn_conv_params *p = &c->p;
    const conv_geom q = geom(c);
    for (int b = 0; b < p->batch; b++)
        for (int ch = 0; ch < p->in_c; ch++) {
            const int g = ch / q.ipg, ic = ch % q.ipg;
            for (int iy = 0; iy < p->in_h; iy++)
                for (int ix = 0; ix < p->in_w; ix++) {
                    double acc = 0.0;
                    for (int oc = g * q.opg; oc < group_out_end(p, g); oc++) {
                        const float *w = weight + ((size_t)oc * q.ipg + ic) * q.kh * q.kw;
                        for (int ky = 0; ky < q.kh; ky++) {
                            const int ny = iy + q.pad - ky;
                            if (ny < 0 || ny % q.s != 0 || ny / q.s >= p->out_h) continue;
                            for (int kx = 0; kx < q.kw; kx++) {
                                const int nx = ix + q.pad - kx;
                                if (nx < 0 || nx % q.s != 0 || nx / q.s >= p->out_w) continue;
                                acc += (double)w[ky * q.kw + kx] *
                                       dy[at(&q.out, b, oc, (size_t)(ny / q.s) * p->out_w + nx / q.s)];
                            }
                        }
                    }
                    float *d = dx + at(&q.in, b, ch, (size_t)iy * p->in_w + ix);
                    *d = c->overwrite ? (float)acc : *d + (float)acc;
                }
        }
}

void gn_tconv_backward_weight_ref(const gn_tconv *c, const float *x, const float *dy,
                                  float *dw) {
    const gn_conv_params *p = &c->p;
    const conv_geom q = geom(c);
    for (int oc = 0; oc < p->out_c; oc++) {
        const int g = oc / q.opg;
        for (int ic = 0; ic < q.ipg; ic++)
            for (int ky = 0; ky < q.kh; ky++)
                for (int kx = 0; kx < q.kw; kx++) {
                    double acc = 0.0;
                    for (int b = 0; b < p->batch; b++)
                        for (int oy = 0; oy < p->out_h; oy++) {
                            const int iy = oy * q.s - q.pad + ky;
                            if (iy < 0 || iy >= p->in_h) continue;
                            for (int ox = 0; ox < p->out_w; ox++) {
                                const int ix = ox * q.s - q.pad + kx;
                                if (ix < 0 || ix >= p->in_w) continue;
                                acc += (double)dy[at(&q.out, b, oc, (size_t)oy * p->out_w + ox)] *
                                       x[at(&q.in, b, g * q.ipg + ic, (size_t)iy * p->in_w + ix)];
                            }
                        }
                    dw[(((size_t)oc * q.ipg + ic) * q.kh + ky) * q.kw + kx] += (float)acc;
                }
    }
}

void gn_conv2d_backward_data_ref(const gn_conv_params *p, const float *dy, const float *weight,
                                 float *dx) {
    const gn_tconv c = gn_tconv_nchw(p);
    gn_tconv_backward_data_ref(&c, dy, weight, dx);
}

void gn_conv2d_backward_weight_ref(const gn_conv_params *p, const float *x, const float *dy,
                                   float *dw) {
    const gn_tconv c = gn_tconv_nchw(p);
    gn_tconv_backward_weight_ref(&c, x, dy, dw);
}

void gn_conv2d_backward_bias(const gn_conv_params *p, const float *dy, float *db) {
    const size_t out_plane = (size_t)p->out_h * p->out_w;
    for (int oc = 0; oc < p->out_c; oc++) {
        double acc = 0.0;
        for (int b = 0; b < p->batch; b++)
            acc += sum8(dy + b * p->out_image_stride + oc * out_plane, out_plane);
        db[oc] += (float)acc;
    }
}

/* ---- convolution: 1x1 as products ------------------------------------------------------- */

/* 0: not a product; 1: one product over batch * plane columns; 2: one per image (planar). */
static int pointwise_mode(const conv_geom *q, int batch) {
    if (columns_contiguous(&q->in, batch, q->in_plane) &&
        columns_contiguous(&q->out, batch, q->out_plane) &&
        (batch == 1 || q->in.ps == q->out.ps))
        return 1;
    if (is_planar(&q->in) && is_planar(&q->out)) return 2;
    return 0;
}

static void pointwise_forward(const gn_tctx *ctx, const gn_tconv *c, const conv_geom *q,
                              int mode, const float *x, const float *w, float *y) {
    const gn_conv_params *p = &c->p;
    const int n = mode == 1 ? (int)(p->batch * q->in_plane) : (int)q->in_plane;
    for (int b = 0; b < (mode == 1 ? 1 : p->batch); b++) {
        const gn_gemm g = {p->out_c, n, p->in_c, w, (size_t)p->in_c, 1, x + b * q->in.bs,
                           q->in.cs, 0, y + b * q->out.bs, q->out.cs, 0};
        gn_gemm_run(ctx, &g);
    }
}

/* dx (in_c x pixels) += W^T (in_c x out_c) dy (out_c x pixels) */
static void pointwise_backward_data(const gn_tctx *ctx, const gn_tconv *c, const conv_geom *q,
                                    int mode, const float *dy, const float *w, float *dx) {
    const gn_conv_params *p = &c->p;
    const int n = mode == 1 ? (int)(p->batch * q->in_plane) : (int)q->in_plane;
    for (int b = 0; b < (mode == 1 ? 1 : p->batch); b++) {
        const gn_gemm g = {p->in_c, n, p->out_c, w, 1, (size_t)p->in_c, dy + b * q->out.bs,
                           q->out.cs, 0, dx + b * q->in.bs, q->in.cs, !c->overwrite};
        gn_gemm_run(ctx, &g);
    }
}

/* dW (out_c x in_c) += dy (out_c x pixels) x^T (pixels x in_c) */
static void pointwise_backward_weight(const gn_tctx *ctx, const gn_tconv *c, const conv_geom *q,
                                      int mode, const float *x, const float *dy, float *dw) {
    const gn_conv_params *p = &c->p;
    const int k = mode == 1 ? (int)(p->batch * q->in_plane) : (int)q->in_plane;
    for (int b = 0; b < (mode == 1 ? 1 : p->batch); b++) {
        const gn_gemm g = {p->out_c, p->in_c, k, dy + b * q->out.bs, q->out.cs, 1,
                           x + b * q->in.bs, q->in.cs, 1, dw, (size_t)p->in_c, 1};
        gn_gemm_run(ctx, &g);
    }
}

/* ---- convolution: direct on planar tensors (NCHW views) ---------------------------------- */

typedef struct conv_job {
    const gn_tconv *c;
    conv_geom q;
    int avx2;
    const float *x, *w, *dy;
    float *y, *dx, *dw;
} conv_job;

/* y[oc] planes for oc in [c0, c1): each tap adds a shifted input row to the output row, so
 * inner loops run over contiguous pixels when the stride is 1. */
static void planar_forward(const void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    for (int oc = c0; oc < c1; oc++) {
        const int g = oc / q->opg;
        for (int b = 0; b < p->batch; b++) {
            float *yp = j->y + at(&q->out, b, oc, 0);
            memset(yp, 0, q->out_plane * sizeof(float));
            for (int ic = 0; ic < q->ipg; ic++) {
                const float *xp = j->x + at(&q->in, b, g * q->ipg + ic, 0);
                const float *w = j->w + ((size_t)oc * q->ipg + ic) * q->kh * q->kw;
                for (int ky = 0; ky < q->kh; ky++)
                    for (int kx = 0; kx < q->kw; kx++) {
                        const float wv = w[ky * q->kw + kx];
                        const int off = kx - q->pad;
                        int lo, hi;
                        col_range(off, q->s, p->in_w, p->out_w, &lo, &hi);
                        for (int oy = 0; oy < p->out_h; oy++) {
                            const int iy = oy * q->s - q->pad + ky;
                            if (iy < 0 || iy >= p->in_h) continue;
                            const float *xr = xp + (size_t)iy * p->in_w;
                            float *yr = yp + (size_t)oy * p->out_w;
                            if (q->s == 1) {
                                const float *src = xr + off;
                                for (int ox = lo; ox < hi; ox++) yr[ox] += wv * src[ox];
                            } else {
                                for (int ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * q->s + off];
                            }
                        }
                    }
            }
        }
    }
}

/* dx planes of input channels [c0, c1): each reads the outputs of its group, scattering every
 * tap's output row into the shifted input row. */
static void planar_backward_data(const void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    for (int ch = c0; ch < c1; ch++) {
        const int g = ch / q->ipg, ic = ch % q->ipg;
        for (int b = 0; b < p->batch; b++) {
            float *gx = j->dx + at(&q->in, b, ch, 0);
            if (j->c->overwrite) memset(gx, 0, q->in_plane * sizeof(float));
            for (int oc = g * q->opg; oc < group_out_end(p, g); oc++) {
                const float *gy = j->dy + at(&q->out, b, oc, 0);
                const float *w = j->w + ((size_t)oc * q->ipg + ic) * q->kh * q->kw;
                for (int ky = 0; ky < q->kh; ky++)
                    for (int kx = 0; kx < q->kw; kx++) {
                        const float wv = w[ky * q->kw + kx];
                        const int off = kx - q->pad;
                        int lo, hi;
                        col_range(off, q->s, p->in_w, p->out_w, &lo, &hi);
                        for (int oy = 0; oy < p->out_h; oy++) {
                            const int iy = oy * q->s - q->pad + ky;
                            if (iy < 0 || iy >= p->in_h) continue;
                            float *xr = gx + (size_t)iy * p->in_w;
                            const float *yr = gy + (size_t)oy * p->out_w;
                            if (q->s == 1) {
                                float *dst = xr + off;
                                for (int ox = lo; ox < hi; ox++) dst[ox] += wv * yr[ox];
                            } else {
                                for (int ox = lo; ox < hi; ox++) xr[ox * q->s + off] += wv * yr[ox];
                            }
                        }
                    }
            }
        }
    }
}

enum { kMaxRow = 4096 };

/* dw of output channels [c0, c1): per image and tap, products of an output-gradient row and
 * the shifted input row are summed elementwise into a row accumulator (vectorisable), which
 * is reduced once per tap and image. */
static void planar_backward_weight(const void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    float racc[kMaxRow];
    for (int oc = c0; oc < c1; oc++) {
        const int g = oc / q->opg;
        for (int ic = 0; ic < q->ipg; ic++) {
            float *w = j->dw + ((size_t)oc * q->ipg + ic) * q->kh * q->kw;
            for (int ky = 0; ky < q->kh; ky++)
                for (int kx = 0; kx < q->kw; kx++) {
                    const int off = kx - q->pad;
                    int lo, hi;
                    col_range(off, q->s, p->in_w, p->out_w, &lo, &hi);
                    if (hi <= lo) continue;
                    double tap = 0.0;
                    for (int b = 0; b < p->batch; b++) {
                        const float *xp = j->x + at(&q->in, b, g * q->ipg + ic, 0);
                        const float *gy = j->dy + at(&q->out, b, oc, 0);
                        for (int ox = lo; ox < hi; ox++) racc[ox] = 0.0f;
                        for (int oy = 0; oy < p->out_h; oy++) {
                            const int iy = oy * q->s - q->pad + ky;
                            if (iy < 0 || iy >= p->in_h) continue;
                            const float *xr = xp + (size_t)iy * p->in_w;
                            const float *yr = gy + (size_t)oy * p->out_w;
                            if (q->s == 1) {
                                const float *src = xr + off;
                                for (int ox = lo; ox < hi; ox++) racc[ox] += yr[ox] * src[ox];
                            } else {
                                for (int ox = lo; ox < hi; ox++) racc[ox] += yr[ox] * xr[ox * q->s + off];
                            }
                        }
                        tap += sum8(racc + lo, (size_t)(hi - lo));
                    }
                    w[ky * q->kw + kx] += (float)tap;
                }
        }
    }
}

/* ---- convolution: direct on batch-inner tensors ------------------------------------------ */

/* Every pixel is a vector over the batch, so each tap is a contiguous multiply-add of
 * `batch` floats whatever the plane size. Taps are gathered per pixel (pointer + weight) and
 * summed by one of two twins: portable loops or AVX2 with the partial sums in registers. */
enum { kTapBatch = 32 };

/* dst[0..n) (+)= sum over t of w[t] * src[t][0..n) */
static void taps_generic(const float *const *src, const float *w, int ntaps, float *dst, int n,
                         int acc) {
    for (int b0 = 0; b0 < n; b0 += 64) {
        const int m = n - b0 < 64 ? n - b0 : 64;
        float s[64];
        for (int q = 0; q < m; q++) s[q] = 0.0f;
        for (int t = 0; t < ntaps; t++) {
            const float wv = w[t], *x = src[t] + b0;
            for (int q = 0; q < m; q++) s[q] += wv * x[q];
        }
        float *d = dst + b0;
        if (acc) {
            for (int q = 0; q < m; q++) d[q] += s[q];
        } else {
            for (int q = 0; q < m; q++) d[q] = s[q];
        }
    }
}

/* sum over images and pixel pairs t of a[t][b] * x[t][b], as 8 lanes per chunk of images. */
static double dots_generic(const float *const *a, const float *const *x, int npairs, int n) {
    double total = 0.0;
    for (int b0 = 0; b0 < n; b0 += 64) {
        const int m = n - b0 < 64 ? n - b0 : 64;
        float s[64];
        for (int q = 0; q < m; q++) s[q] = 0.0f;
        for (int t = 0; t < npairs; t++) {
            const float *u = a[t] + b0, *v = x[t] + b0;
            for (int q = 0; q < m; q++) s[q] += u[q] * v[q];
        }
        total += sum8(s, (size_t)m);
    }
    return total;
}

#if defined(GN_TRAIN_AVX2)
GN_AVX2_FN static void taps_avx2(const float *const *src, const float *w, int ntaps,
                                 float *dst, int n, int acc) {
    int b0 = 0;
    for (; b0 + 32 <= n; b0 += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int t = 0; t < ntaps; t++) {
            const __m256 wv = _mm256_broadcast_ss(w + t);
            const float *x = src[t] + b0;
            s0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x), s0);
            s1 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 8), s1);
            s2 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 16), s2);
            s3 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 24), s3);
        }
        float *d = dst + b0;
        if (acc) {
            s0 = _mm256_add_ps(_mm256_loadu_ps(d), s0);
            s1 = _mm256_add_ps(_mm256_loadu_ps(d + 8), s1);
            s2 = _mm256_add_ps(_mm256_loadu_ps(d + 16), s2);
            s3 = _mm256_add_ps(_mm256_loadu_ps(d + 24), s3);
        }
        _mm256_storeu_ps(d, s0);
        _mm256_storeu_ps(d + 8, s1);
        _mm256_storeu_ps(d + 16, s2);
        _mm256_storeu_ps(d + 24, s3);
    }
    for (; b0 + 8 <= n; b0 += 8) {
        __m256 s0 = _mm256_setzero_ps();
        for (int t = 0; t < ntaps; t++)
            s0 = _mm256_fmadd_ps(_mm256_broadcast_ss(w + t), _mm256_loadu_ps(src[t] + b0), s0);
        if (acc) s0 = _mm256_add_ps(_mm256_loadu_ps(dst + b0), s0);
        _mm256_storeu_ps(dst + b0, s0);
    }
    if (b0 < n) {
        const float *rest[kTapBatch];
        for (int t = 0; t < ntaps; t++) rest[t] = src[t] + b0;
        taps_generic(rest, w, ntaps, dst + b0, n - b0, acc);
    }
}

GN_AVX2_FN static double dots_avx2(const float *const *a, const float *const *x, int npairs,
                                   int n) {
    double total = 0.0;
    int b0 = 0;
    for (; b0 + 32 <= n; b0 += 32) {
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int t = 0; t < npairs; t++) {
            const float *u = a[t] + b0, *v = x[t] + b0;
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(u), _mm256_loadu_ps(v), s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(u + 8), _mm256_loadu_ps(v + 8), s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(u + 16), _mm256_loadu_ps(v + 16), s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(u + 24), _mm256_loadu_ps(v + 24), s3);
        }
        _Alignas(32) float l[8];
        _mm256_store_ps(l, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
        total += sum8(l, 8);
    }
    if (b0 < n) {
        const float *ra[kTapBatch], *rx[kTapBatch];
        for (int t = 0; t < npairs; t++) {
            ra[t] = a[t] + b0;
            rx[t] = x[t] + b0;
        }
        total += dots_generic(ra, rx, npairs, n - b0);
    }
    return total;
}
#endif

typedef struct tap_list {
    const float *src[kTapBatch];
    float w[kTapBatch];
    int n, flushed;
} tap_list;

static void taps_run(const conv_job *j, const float *const *src, const float *w, int ntaps,
                     float *dst, int n, int acc) {
#if defined(GN_TRAIN_AVX2)
    if (j->avx2) {
        taps_avx2(src, w, ntaps, dst, n, acc);
        return;
    }
#endif
    (void)j;
    taps_generic(src, w, ntaps, dst, n, acc);
}

/* Adds one tap; a full list is summed into dst (the first batch stores unless acc). */
static void tap_push(const conv_job *j, tap_list *l, const float *src, float w, float *dst, int n,
                     int acc) {
    l->src[l->n] = src;
    l->w[l->n] = w;
    if (++l->n == kTapBatch) {
        taps_run(j, l->src, l->w, l->n, dst, n, acc || l->flushed);
        l->flushed = 1;
        l->n = 0;
    }
}

static void tap_flush(const conv_job *j, tap_list *l, float *dst, int n, int acc) {
    if (l->n > 0 || (!acc && !l->flushed)) taps_run(j, l->src, l->w, l->n, dst, n, acc || l->flushed);
    l->n = 0;
    l->flushed = 0;
}

/* Output pixels of output channels [c0, c1). */
static void bi_forward(const void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    tap_list l = {{0}, {0}, 0, 0};
    for (int oc = c0; oc < c1; oc++) {
        const int g = oc / q->opg;
        const float *w = j->w + (size_t)oc * q->ipg * q->kh * q->kw;
        for (int oy = 0; oy < p->out_h; oy++)
            for (int ox = 0; ox < p->out_w; ox++) {
                float *dst = j->y + at(&q->out, 0, oc, (size_t)oy * p->out_w + ox);
                for (int ic = 0; ic < q->ipg; ic++) {
                    const float *xc = j->x + at(&q->in, 0, g * q->ipg + ic, 0);
                    for (int ky = 0; ky < q->kh; ky++) {
                        const int iy = oy * q->s - q->pad + ky;
                        if (iy < 0 || iy >= p->in_h) continue;
                        for (int kx = 0; kx < q->kw; kx++) {
                            const int ix = ox * q->s - q->pad + kx;
                            if (ix < 0 || ix >= p->in_w) continue;
                            tap_push(j, &l, xc + ((size_t)iy * p->in_w + ix) * q->in.ps,
                                     w[(ic * q->kh + ky) * q->kw + kx], dst, p->batch, 0);
                        }
                    }
                }
                tap_flush(j, &l, dst, p->batch, 0);
            }
    }
}

/* Input pixels of input channels [c0, c1): the gather form (each input pixel sums the output
 * pixels that read it), so every task writes only its own channels. */
static void bi_backward_data(const void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    tap_list l = {{0}, {0}, 0, 0};
    const int acc = !j->c->overwrite;
    for (int ch = c0; ch < c1; ch++) {
        const int g = ch / q->ipg, ic = ch % q->ipg;
        for (int iy = 0; iy < p->in_h; iy++)
            for (int ix = 0; ix < p->in_w; ix++) {
                float *dst = j->dx + at(&q->in, 0, ch, (size_t)iy * p->in_w + ix);
                for (int oc = g * q->opg; oc < group_out_end(p, g); oc++) {
                    const float *w = j->w + ((size_t)oc * q->ipg + ic) * q->kh * q->kw;
                    const float *gy = j->dy + at(&q->out, 0, oc, 0);
                    for (int ky = 0; ky < q->kh; ky++) {
                        const int ny = iy + q->pad - ky;
                        if (ny < 0 || ny % q->s != 0 || ny / q->s >= p->out_h) continue;
                        for (int kx = 0; kx < q->kw; kx++) {
                            const int nx = ix + q->pad - kx;
                            if (nx < 0 || nx % q->s != 0 || nx / q->s >= p->out_w) continue;
                            tap_push(j, &l,
                                     gy + ((size_t)(ny / q->s) * p->out_w + nx / q->s) * q->out.ps,
                                     w[ky * q->kw + kx], dst, p->batch, acc);
                        }
                    }
                }
                tap_flush(j, &l, dst, p->batch, acc);
            }
    }
}

static double dots_run(const conv_job *j, const float *const *a, const float *const *x, int n,
                       int batch) {
#if defined(GN_TRAIN_AVX2)
    if (j->avx2) return dots_avx2(a, x, n, batch);
#endif
    (void)j;
    return dots_generic(a, x, n, batch);
}

/* Weight gradient of one (output, input) channel pair: per tap, the sum over images and
 * output pixels of dy times the input pixel under the tap, in pixel batches of fixed size
 * (a fixed order). (Keeping a 3x3's taps in registers to read dy once per pixel was tried: it
 * helps only on 28x28 planes, and the border handling costs more than it saves below that.) */
static void bi_wgrad_pair(const conv_job *j, const float *gy, const float *xc, float *w) {
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    const float *pa[kTapBatch], *px[kTapBatch];
    for (int ky = 0; ky < q->kh; ky++)
        for (int kx = 0; kx < q->kw; kx++) {
            double tap = 0.0;
            int n = 0;
            for (int oy = 0; oy < p->out_h; oy++) {
                const int iy = oy * q->s - q->pad + ky;
                if (iy < 0 || iy >= p->in_h) continue;
                for (int ox = 0; ox < p->out_w; ox++) {
                    const int ix = ox * q->s - q->pad + kx;
                    if (ix < 0 || ix >= p->in_w) continue;
                    pa[n] = gy + ((size_t)oy * p->out_w + ox) * q->out.ps;
                    px[n] = xc + ((size_t)iy * p->in_w + ix) * q->in.ps;
                    if (++n == kTapBatch) {
                        tap += dots_run(j, pa, px, n, p->batch);
                        n = 0;
                    }
                }
            }
            if (n > 0) tap += dots_run(j, pa, px, n, p->batch);
            w[ky * q->kw + kx] += (float)tap;
        }
}

#if defined(GN_TRAIN_AVX2)
/* One kernel row ky of taps (kw of them) for nv * 8 images (both constants after inlining):
 * every dy pixel is loaded once for the whole row, a tap outside the input reads zeros. A 3-wide
 * row takes 32 images so that 12 independent sums hide the FMA latency; a 5-wide one 16.
 * sums[kx] = the lanes of tap (ky, kx), in order. */
GN_AVX2_FN static inline __attribute__((always_inline)) void
wgrad_row_body(const int kw, const int nv, const conv_job *j, const float *gy, const float *xc,
               int ky, int b0, double *sums) {
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    const size_t ips = q->in.ps, ops = q->out.ps;
    _Alignas(32) const float zeros[32] = {0};
    __m256 acc[12], d[4];
    for (int t = 0; t < nv * kw; t++) acc[t] = _mm256_setzero_ps();
    for (int oy = 0; oy < p->out_h; oy++) {
        const int iy = oy * q->s - q->pad + ky;
        if (iy < 0 || iy >= p->in_h) continue;
        const float *xr = xc + (size_t)iy * p->in_w * ips + b0;
        const float *dyp = gy + (size_t)oy * p->out_w * ops + b0;
        for (int ox = 0; ox < p->out_w; ox++, dyp += ops) {
            for (int v = 0; v < nv; v++) d[v] = _mm256_loadu_ps(dyp + 8 * v);
            const int ix0 = ox * q->s - q->pad;
            for (int kx = 0; kx < kw; kx++) {
                const int ix = ix0 + kx;
                const float *src = ix >= 0 && ix < p->in_w ? xr + (size_t)ix * ips : zeros;
                for (int v = 0; v < nv; v++)
                    acc[nv * kx + v] =
                        _mm256_fmadd_ps(d[v], _mm256_loadu_ps(src + 8 * v), acc[nv * kx + v]);
            }
        }
    }
    for (int kx = 0; kx < kw; kx++) {
        double t = 0.0;
        for (int v = 0; v < nv; v++) t += lanes_sum(acc[nv * kx + v]);
        sums[kx] = t;
    }
}

GN_AVX2_FN static void wgrad_row3(const conv_job *j, const float *gy, const float *xc, int ky,
                                  int b0, double *sums) {
    wgrad_row_body(3, 4, j, gy, xc, ky, b0, sums);
}
GN_AVX2_FN static void wgrad_row5(const conv_job *j, const float *gy, const float *xc, int ky,
                                  int b0, double *sums) {
    wgrad_row_body(5, 2, j, gy, xc, ky, b0, sums);
}

/* Planes large enough that reading dy once per kernel row (rather than once per tap) pays for
 * the per-row setup: kernel widths 3 and 5, at least 8 x 8 outputs. */
static int wgrad_rows_fit(const conv_job *j) {
    return (j->q.kw == 3 || j->q.kw == 5) && j->c->p.out_h * j->c->p.out_w >= 64 &&
           j->c->p.batch >= 32;
}

/* Per tap: the image chunks in order, then the last images one by one. */
GN_AVX2_FN static void bi_wgrad_pair_rows(const conv_job *j, const float *gy, const float *xc,
                                          float *w) {
    const gn_conv_params *p = &j->c->p;
    const conv_geom *q = &j->q;
    const int chunk = q->kw == 3 ? 32 : 16, full = p->batch / chunk * chunk;
    for (int ky = 0; ky < q->kh; ky++) {
        double total[5] = {0}, sums[5];
        for (int b0 = 0; b0 < full; b0 += chunk) {
            (q->kw == 3 ? wgrad_row3 : wgrad_row5)(j, gy, xc, ky, b0, sums);
            for (int kx = 0; kx < q->kw; kx++) total[kx] += sums[kx];
        }
        for (int oy = 0; oy < p->out_h && full < p->batch; oy++) {
            const int iy = oy * q->s - q->pad + ky;
            if (iy < 0 || iy >= p->in_h) continue;
            for (int ox = 0; ox < p->out_w; ox++) {
                const float *d = gy + ((size_t)oy * p->out_w + ox) * q->out.ps;
                for (int kx = 0; kx < q->kw; kx++) {
                    const int ix = ox * q->s - q->pad + kx;
                    if (ix < 0 || ix >= p->in_w) continue;
                    const float *x = xc + ((size_t)iy * p->in_w + ix) * q->in.ps;
                    for (int b = full; b < p->batch; b++) total[kx] += (double)d[b] * x[b];
                }
            }
        }
        for (int kx = 0; kx < q->kw; kx++) w[ky * q->kw + kx] += (float)total[kx];
    }
}
#endif

/* dw of output channels [c0, c1), each (output, input) pair by one task. */
static void bi_backward_weight(const void *arg, int c0, int c1) {
    const conv_job *j = arg;
    const conv_geom *q = &j->q;
    for (int oc = c0; oc < c1; oc++) {
        const int g = oc / q->opg;
        const float *gy = j->dy + at(&q->out, 0, oc, 0);
        for (int ic = 0; ic < q->ipg; ic++) {
            const float *xc = j->x + at(&q->in, 0, g * q->ipg + ic, 0);
            float *w = j->dw + ((size_t)oc * q->ipg + ic) * q->kh * q->kw;
#if defined(GN_TRAIN_AVX2)
            if (j->avx2 && wgrad_rows_fit(j)) {
                bi_wgrad_pair_rows(j, gy, xc, w);
                continue;
            }
#endif
            bi_wgrad_pair(j, gy, xc, w);
        }
    }
}

/* ---- convolution: entry points ------------------------------------------------------------ */

static conv_job make_job(const gn_tctx *ctx, const gn_tconv *c) {
    conv_job j;
    memset(&j, 0, sizeof j);
    j.c = c;
    j.q = geom(c);
    j.avx2 = avx2_of(ctx);
    return j;
}

/* Work per output channel (about the same per input channel). */
static double direct_work(const conv_job *j) {
    return GN_NS_DW_MAC * j->c->p.batch * j->q.out_plane * j->q.ipg * j->q.kh * j->q.kw;
}

/* 1: planar direct kernels; 2: batch-inner; 0: neither (reference). */
static int direct_mode(const conv_geom *q, int batch) {
    if (is_planar(&q->in) && is_planar(&q->out)) return 1;
    if (is_batch_inner(&q->in, batch) && is_batch_inner(&q->out, batch)) return 2;
    return 0;
}

typedef void (*pointwise_fn)(const gn_tctx *ctx, const gn_tconv *c, const conv_geom *q, int mode,
                             const float *a, const float *b, float *out);
typedef void (*conv_ref_fn)(const gn_tconv *c, const float *a, const float *b, float *out);

/* The three passes of a convolution share one dispatch: a GEMM for 1x1 convs, else a direct
 * kernel for the layout, else the reference. Work is split over output channels, except for
 * the data gradient, whose units are the input channels it writes. */
typedef struct conv_pass {
    pointwise_fn pointwise;
    channel_fn planar, batch_inner;
    conv_ref_fn reference;
    int units_are_inputs;
    int planar_row_limited; /* the planar kernel keeps one output row on the stack */
} conv_pass;

static const conv_pass kForwardPass = {pointwise_forward, planar_forward, bi_forward,
                                       gn_tconv_forward_ref, 0, 0};
static const conv_pass kDataPass = {pointwise_backward_data, planar_backward_data,
                                    bi_backward_data, gn_tconv_backward_data_ref, 1, 0};
static const conv_pass kWeightPass = {pointwise_backward_weight, planar_backward_weight,
                                      bi_backward_weight, gn_tconv_backward_weight_ref, 0, 1};

static void run_conv_pass(const gn_tctx *ctx, const conv_job *j, const conv_pass *pass,
                          const float *a, const float *b, float *out) {
    const gn_tconv *c = j->c;
    if (is_pointwise(&c->p)) {
        const int mode = pointwise_mode(&j->q, c->p.batch);
        if (mode) {
            pass->pointwise(ctx, c, &j->q, mode, a, b, out);
            return;
        }
    }
    int mode = direct_mode(&j->q, c->p.batch);
    if (mode == 1 && pass->planar_row_limited && c->p.out_w > kMaxRow) mode = 0;
    const int units = pass->units_are_inputs ? c->p.in_c : c->p.out_c;
    switch (mode) {
    case 1: for_units(ctx, units, direct_work(j), pass->planar, j); break;
    case 2: for_units(ctx, units, direct_work(j), pass->batch_inner, j); break;
    default: pass->reference(c, a, b, out);
    }
}

void gn_tconv_forward(const gn_tctx *ctx, const gn_tconv *c, const float *x,
                      const float *weight, float *y) {
    conv_job j = make_job(ctx, c);
    j.x = x;
    j.w = weight;
    j.y = y;
    run_conv_pass(ctx, &j, &kForwardPass, x, weight, y);
}

void gn_tconv_backward_data(const gn_tctx *ctx, const gn_tconv *c, const float *dy,
                            const float *weight, float *dx) {
    conv_job j = make_job(ctx, c);
    j.dy = dy;
    j.w = weight;
    j.dx = dx;
    run_conv_pass(ctx, &j, &kDataPass, dy, weight, dx);
}

void gn_tconv_backward_weight(const gn_tctx *ctx, const gn_tconv *c, const float *x,
                              const float *dy, float *dw) {
    conv_job j = make_job(ctx, c);
    j.x = x;
    j.dy = dy;
    j.dw = dw;
    run_conv_pass(ctx, &j, &kWeightPass, x, dy, dw);
}

void gn_conv2d_backward_data(const gn_conv_params *p, const float *dy, const float *weight,
                             float *dx) {
    const gn_tconv c = gn_tconv_nchw(p);
    gn_tconv_backward_data(NULL, &c, dy, weight, dx);
}

void gn_conv2d_backward_weight(const gn_conv_params *p, const float *x, const float *dy,
                               float *dw) {
    const gn_tconv c = gn_tconv_nchw(p);
    gn_tconv_backward_weight(NULL, &c, x, dy, dw);
}

/* ---- batch normalisation ------------------------------------------------------------------ */

static size_t chan_stride(const gn_planes *t) { return t->cs ? t->cs : t->hw; }
/* Work per channel of an elementwise pass. */
static double plane_work(const gn_planes *t) { return GN_NS_ELEMENT * t->batch * t->hw; }
static size_t pix_stride(const gn_planes *t) { return t->ps ? t->ps : 1; }

/* The elements of one channel of a tensor as runs of contiguous floats, `step` apart: one run
 * of batch * hw when the images of a channel follow each other without gaps, else one per
 * image (planar) or one per pixel (batch-inner). Two tensors read together (x and y) are
 * split alike, so their runs pair up. */
typedef struct runs {
    int count;
    size_t len, step_a, step_b;
} runs;

static runs runs_of(const gn_planes *t, size_t stride_a, size_t stride_b) {
    runs r;
    const size_t ps = pix_stride(t);
    if (ps == 1) {
        if (t->batch == 1 || (stride_a == t->hw && stride_b == t->hw)) {
            r.count = 1;
            r.len = (size_t)t->batch * t->hw;
            r.step_a = r.step_b = 0;
        } else {
            r.count = t->batch;
            r.len = t->hw;
            r.step_a = stride_a;
            r.step_b = stride_b;
        }
    } else if (t->hw == 1 || ps == (size_t)t->batch) {
        r.count = 1;
        r.len = (size_t)t->batch * t->hw;
        r.step_a = r.step_b = 0;
    } else {
        r.count = (int)t->hw;
        r.len = (size_t)t->batch;
        r.step_a = r.step_b = ps;
    }
    return r;
}

typedef struct bn_job {
    const gn_planes *t;
    const float *x, *dy, *gamma, *beta, *mean, *invstd;
    float *y, *dx, *dgamma, *dbeta, *mean_out, *var_out;
    size_t y_stride;
    gn_act act;
    int training, avx2;
} bn_job;

/* Mean and M2 (sum of squared deviations) of one chunk: the chunk is summed, then read
 * again from L1 for the deviations about its own mean. */
GN_INLINE void chunk_moments_body(const float *x, size_t n, double *mean, double *m2) {
    const double mu = sum8(x, n) / (double)n;
    const float m = (float)mu;
    float acc[8] = {0};
    size_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int q = 0; q < 8; q++) {
            const float d = x[k + q] - m;
            acc[q] += d * d;
        }
    double part = 0.0;
    for (; k < n; k++) part += ((double)x[k] - m) * ((double)x[k] - m);
    for (int q = 0; q < 8; q++) part += acc[q];
    /* deviations were taken about m, not mu: M2 about mu is n (m - mu)^2 less */
    *mean = mu;
    *m2 = part - (double)n * ((double)m - mu) * ((double)m - mu);
}

void gn_bn_invstd(int channels, const float *var, float eps, float *invstd) {
    for (int c = 0; c < channels; c++) invstd[c] = (float)(1.0 / sqrt((double)var[c] + eps));
}

void gn_bn_update_running(int channels, const float *mean, const float *var, size_t count,
                          float momentum, float *running_mean, float *running_var) {
    const double unbias = count > 1 ? (double)count / (double)(count - 1) : 1.0;
    for (int c = 0; c < channels; c++) {
        running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[c];
        running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)(var[c] * unbias);
    }
}

/* y = x * scale + shift; the backward recomputes the same expression for act'. */
static void bn_affine(float gamma, float beta, float mean, float invstd, float *scale,
                      float *shift) {
    *scale = gamma * invstd;
    *shift = beta - mean * *scale;
}

GN_INLINE void bn_apply_run_body(const float *x, size_t n, float scale, float shift, gn_act act,
                                 float *y) {
    if (act == GN_ACT_RELU) {
        for (size_t i = 0; i < n; i++) {
            const float u = x[i] * scale + shift;
            y[i] = u > 0.0f ? u : 0.0f;
        }
    } else if (act == GN_ACT_NONE) {
        for (size_t i = 0; i < n; i++) y[i] = x[i] * scale + shift;
    } else {
        for (size_t i = 0; i < n; i++) y[i] = gn_act_apply(act, x[i] * scale + shift);
    }
}

/* Gradient at the BN output before the activation: dy * act'(x * scale + shift). */
static inline float bn_pre_act_grad(gn_act act, float x, float dy, float scale, float shift) {
    if (act == GN_ACT_NONE) return dy;
    const float u = x * scale + shift;
    if (act == GN_ACT_RELU) return u > 0.0f ? dy : 0.0f;
    return dy * gn_act_grad(act, u);
}

/* sum(g) and sum(g * (x - mean)) over one run, g = bn_pre_act_grad, in chunks of 8 partial
 * sums gathered in double (the act switch is hoisted out of the loop by specialisation). */
GN_INLINE void bn_run_sums_body(const float *xp, const float *dyp, size_t n, float scale,
                                float shift, float mu, gn_act act, double *sg, double *sgx) {
    for (size_t o = 0; o < n; o += kChunk) {
        const size_t len = n - o < kChunk ? n - o : kChunk;
        const float *x = xp + o, *dy = dyp + o;
        float acc[8] = {0}, accx[8] = {0};
        size_t i = 0;
#define GN_BN_SUMS(ACT)                                                          \
    for (; i + 8 <= len; i += 8)                                                 \
        for (int j = 0; j < 8; j++) {                                            \
            const float g = bn_pre_act_grad(ACT, x[i + j], dy[i + j], scale, shift); \
            acc[j] += g;                                                         \
            accx[j] += g * (x[i + j] - mu);                                      \
        }
        if (act == GN_ACT_NONE) {
            GN_BN_SUMS(GN_ACT_NONE)
        } else if (act == GN_ACT_RELU) {
            GN_BN_SUMS(GN_ACT_RELU)
        } else {
            GN_BN_SUMS(act)
        }
#undef GN_BN_SUMS
        double s = 0.0, sx = 0.0;
        for (; i < len; i++) {
            const float g = bn_pre_act_grad(act, x[i], dy[i], scale, shift);
            s += g;
            sx += (double)g * (x[i] - mu);
        }
        for (int j = 0; j < 8; j++) {
            s += acc[j];
            sx += accx[j];
        }
        *sg += s;
        *sgx += sx;
    }
}

/* dx = scale * (g - mg - (x - mean) * k) over one run (dx may alias x). */
GN_INLINE void bn_run_dx_body(const float *xp, const float *dyp, size_t hw, float scale,
                              float shift, float mu, float mg, float k, gn_act act, float *dxp) {
#define GN_BN_DX(ACT)                                                                     \
    for (size_t i = 0; i < hw; i++) {                                                     \
        const float g = bn_pre_act_grad(ACT, xp[i], dyp[i], scale, shift);                 \
        dxp[i] = scale * (g - mg - (xp[i] - mu) * k);                                     \
    }
    if (act == GN_ACT_NONE) {
        GN_BN_DX(GN_ACT_NONE)
    } else if (act == GN_ACT_RELU) {
        GN_BN_DX(GN_ACT_RELU)
    } else {
        GN_BN_DX(act)
    }
#undef GN_BN_DX
}

/* Twins of the BN loops: portable bodies (compilers vectorise them for the baseline ISA) and
 * AVX2 versions of the common cases (no activation, ReLU) with explicit 8-wide partial
 * sums; the other activations take the portable body. */
static void chunk_moments_generic(const float *x, size_t n, double *mean, double *m2) {
    chunk_moments_body(x, n, mean, m2);
}
static void bn_apply_run_generic(const float *x, size_t n, float scale, float shift, gn_act act,
                                 float *y) {
    bn_apply_run_body(x, n, scale, shift, act, y);
}
static void bn_run_sums_generic(const float *xp, const float *dyp, size_t n, float scale,
                                float shift, float mu, gn_act act, double *sg, double *sgx) {
    bn_run_sums_body(xp, dyp, n, scale, shift, mu, act, sg, sgx);
}
static void bn_run_dx_generic(const float *xp, const float *dyp, size_t n, float scale,
                              float shift, float mu, float mg, float k, gn_act act, float *dxp) {
    bn_run_dx_body(xp, dyp, n, scale, shift, mu, mg, k, act, dxp);
}
#if defined(GN_TRAIN_AVX2)
GN_AVX2_FN static void chunk_moments_avx2(const float *x, size_t n, double *mean, double *m2) {
    __m256 acc = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 8 <= n; k += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(x + k));
    double s = lanes_sum(acc);
    for (size_t i = k; i < n; i++) s += x[i];
    const double mu = s / (double)n;
    const float m = (float)mu;
    const __m256 vm = _mm256_set1_ps(m);
    acc = _mm256_setzero_ps();
    for (k = 0; k + 8 <= n; k += 8) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + k), vm);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
    }
    double part = lanes_sum(acc);
    for (; k < n; k++) part += ((double)x[k] - m) * ((double)x[k] - m);
    *mean = mu;
    *m2 = part - (double)n * ((double)m - mu) * ((double)m - mu);
}

GN_AVX2_FN static void bn_apply_run_avx2(const float *x, size_t n, float scale, float shift,
                                         gn_act act, float *y) {
    if (act != GN_ACT_NONE && act != GN_ACT_RELU) {
        bn_apply_run_generic(x, n, scale, shift, act, y);
        return;
    }
    const __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(shift), z = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 u = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), vb);
        if (act == GN_ACT_RELU) u = _mm256_max_ps(u, z);
        _mm256_storeu_ps(y + i, u);
    }
    bn_apply_run_generic(x + i, n - i, scale, shift, act, y + i);
}

GN_AVX2_FN static void bn_run_sums_avx2(const float *xp, const float *dyp, size_t n, float scale,
                                        float shift, float mu, gn_act act, double *sg,
                                        double *sgx) {
    if (act != GN_ACT_NONE && act != GN_ACT_RELU) {
        bn_run_sums_generic(xp, dyp, n, scale, shift, mu, act, sg, sgx);
        return;
    }
    const __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(shift), vm = _mm256_set1_ps(mu);
    const __m256 z = _mm256_setzero_ps();
    for (size_t o = 0; o < n; o += kChunk) {
        const size_t len = n - o < kChunk ? n - o : kChunk;
        const float *x = xp + o, *dy = dyp + o;
        __m256 acc = z, accx = z;
        size_t i = 0;
        for (; i + 8 <= len; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            __m256 g = _mm256_loadu_ps(dy + i);
            if (act == GN_ACT_RELU) {
                const __m256 u = _mm256_add_ps(_mm256_mul_ps(xv, vs), vb);
                g = _mm256_and_ps(g, _mm256_cmp_ps(u, z, _CMP_GT_OQ));
            }
            acc = _mm256_add_ps(acc, g);
            accx = _mm256_add_ps(accx, _mm256_mul_ps(g, _mm256_sub_ps(xv, vm)));
        }
        double s = lanes_sum(acc), sx = lanes_sum(accx);
        for (; i < len; i++) {
            const float g = bn_pre_act_grad(act, x[i], dy[i], scale, shift);
            s += g;
            sx += (double)g * (x[i] - mu);
        }
        *sg += s;
        *sgx += sx;
    }
}

GN_AVX2_FN static void bn_run_dx_avx2(const float *xp, const float *dyp, size_t n, float scale,
                                      float shift, float mu, float mg, float k, gn_act act,
                                      float *dxp) {
    if (act != GN_ACT_NONE && act != GN_ACT_RELU) {
        bn_run_dx_generic(xp, dyp, n, scale, shift, mu, mg, k, act, dxp);
        return;
    }
    const __m256 vs = _mm256_set1_ps(scale), vb = _mm256_set1_ps(shift), vm = _mm256_set1_ps(mu);
    const __m256 vg = _mm256_set1_ps(mg), vk = _mm256_set1_ps(k), z = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 xv = _mm256_loadu_ps(xp + i);
        __m256 g = _mm256_loadu_ps(dyp + i);
        if (act == GN_ACT_RELU) {
            const __m256 u = _mm256_add_ps(_mm256_mul_ps(xv, vs), vb);
            g = _mm256_and_ps(g, _mm256_cmp_ps(u, z, _CMP_GT_OQ));
        }
        const __m256 t = _mm256_sub_ps(_mm256_sub_ps(g, vg), _mm256_mul_ps(_mm256_sub_ps(xv, vm), vk));
        _mm256_storeu_ps(dxp + i, _mm256_mul_ps(vs, t));
    }
    bn_run_dx_generic(xp + i, dyp + i, n - i, scale, shift, mu, mg, k, act, dxp + i);
}
#define GN_BN_TWIN(avx2, name) ((avx2) ? name##_avx2 : name##_generic)
#else
#define GN_BN_TWIN(avx2, name) ((void)(avx2), name##_generic)
#endif

static void bn_forward_channels(const void *arg, int c0, int c1) {
    const bn_job *j = arg;
    const gn_planes *t = j->t;
    const size_t cs = chan_stride(t);
    const runs r = runs_of(t, t->stride, j->y_stride);
    void (*const apply)(const float *, size_t, float, float, gn_act, float *) =
        GN_BN_TWIN(j->avx2, bn_apply_run);
    for (int c = c0; c < c1; c++) {
        float scale, shift;
        bn_affine(j->gamma[c], j->beta[c], j->mean[c], j->invstd[c], &scale, &shift);
        for (int i = 0; i < r.count; i++)
            apply(j->x + c * cs + i * r.step_a, r.len, scale, shift, j->act,
                         j->y + c * cs + i * r.step_b);
    }
}

void gn_bn_forward(const gn_tctx *ctx, const gn_planes *t, const float *x, const float *gamma,
                   const float *beta, const float *mean, const float *invstd, gn_act act,
                   float *y, size_t y_stride) {
    bn_job j = {0};
    j.t = t;
    j.avx2 = avx2_of(ctx);
    j.x = x;
    j.gamma = gamma;
    j.beta = beta;
    j.mean = mean;
    j.invstd = invstd;
    j.act = act;
    j.y = y;
    j.y_stride = y_stride;
    for_units(ctx, t->channels, plane_work(t), bn_forward_channels, &j);
}

/* One pass over memory: chunk moments combined in order with Chan's formula, which has none
 * of the cancellation of sum(x^2) - n mean^2 for channels with a large offset. */
static void bn_stats_channels(const void *arg, int c0, int c1) {
    const bn_job *j = arg;
    const gn_planes *t = j->t;
    const runs r = runs_of(t, t->stride, t->stride);
    void (*const moments)(const float *, size_t, double *, double *) =
        GN_BN_TWIN(j->avx2, chunk_moments);
    for (int c = c0; c < c1; c++) {
        const float *xc = j->x + c * chan_stride(t);
        double n = 0.0, mean = 0.0, m2 = 0.0;
        for (int i = 0; i < r.count; i++)
            for (size_t o = 0; o < r.len; o += kChunk) {
                const size_t len = r.len - o < kChunk ? r.len - o : kChunk;
                double cm, cm2;
                moments(xc + i * r.step_a + o, len, &cm, &cm2);
                const double nb = (double)len, nn = n + nb, delta = cm - mean;
                mean += delta * nb / nn;
                m2 += cm2 + delta * delta * n * nb / nn;
                n = nn;
            }
        j->mean_out[c] = (float)mean;
        j->var_out[c] = (float)(m2 > 0.0 ? m2 / n : 0.0);
    }
}

void gn_bn_batch_stats(const gn_tctx *ctx, const gn_planes *t, const float *x, float *mean,
                       float *var) {
    bn_job j = {0};
    j.t = t;
    j.avx2 = avx2_of(ctx);
    j.x = x;
    j.mean_out = mean;
    j.var_out = var;
    for_units(ctx, t->channels, plane_work(t), bn_stats_channels, &j);
}

static void bn_backward_channels(const void *arg, int c0, int c1) {
    const bn_job *j = arg;
    const gn_planes *t = j->t;
    const size_t cs = chan_stride(t);
    const double n = (double)t->batch * t->hw;
    const runs r = runs_of(t, t->stride, j->y_stride);
    void (*const sums)(const float *, const float *, size_t, float, float, float, gn_act,
                       double *, double *) = GN_BN_TWIN(j->avx2, bn_run_sums);
    void (*const dxrun)(const float *, const float *, size_t, float, float, float, float, float,
                        gn_act, float *) = GN_BN_TWIN(j->avx2, bn_run_dx);
    for (int c = c0; c < c1; c++) {
        float scale, shift;
        bn_affine(j->gamma[c], j->beta[c], j->mean[c], j->invstd[c], &scale, &shift);
        const float mu = j->mean[c], is = j->invstd[c];
        const float *xc = j->x + c * cs, *dyc = j->dy + c * cs;
        float *dxc = j->dx + c * cs;
        /* Pass 1: sum(g) and sum(g * (x - mean)). */
        double sg = 0.0, sgx = 0.0;
        for (int i = 0; i < r.count; i++)
            sums(xc + i * r.step_a, dyc + i * r.step_b, r.len, scale, shift, mu, j->act,
                        &sg, &sgx);
        j->dbeta[c] += (float)sg;
        j->dgamma[c] += (float)(sgx * is);
        /* Pass 2: dx = scale * (g - mean(g) - xhat * mean(g * xhat)) (training) or scale * g. */
        const float mg = j->training ? (float)(sg / n) : 0.0f;
        const float k = j->training ? (float)(sgx * is * is / n) : 0.0f;
        for (int i = 0; i < r.count; i++)
            dxrun(xc + i * r.step_a, dyc + i * r.step_b, r.len, scale, shift, mu, mg, k,
                      j->act, dxc + i * r.step_a);
    }
}

void gn_bn_backward(const gn_tctx *ctx, const gn_planes *t, const float *x, const float *dy,
                    size_t dy_stride, const float *gamma, const float *beta, const float *mean,
                    const float *invstd, gn_act act, int training, float *dx, float *dgamma,
                    float *dbeta) {
    bn_job j = {0};
    j.t = t;
    j.avx2 = avx2_of(ctx);
    j.x = x;
    j.dy = dy;
    j.y_stride = dy_stride;
    j.gamma = gamma;
    j.beta = beta;
    j.mean = mean;
    j.invstd = invstd;
    j.act = act;
    j.training = training;
    j.dx = dx;
    j.dgamma = dgamma;
    j.dbeta = dbeta;
    for_units(ctx, t->channels, 2 * plane_work(t), bn_backward_channels, &j);
}

/* ---- pooling, linear ---------------------------------------------------------------------- */

void gn_avgpool_backward(const gn_planes *t, const float *dy, float *dx) {
    const float inv = 1.0f / (float)t->hw;
    const size_t cs = chan_stride(t);
    for (int b = 0; b < t->batch; b++)
        for (int c = 0; c < t->channels; c++) {
            const float v = dy[(size_t)b * t->channels + c] * inv;
            float *p = dx + (size_t)b * t->stride + (size_t)c * cs;
            for (size_t i = 0; i < t->hw; i++) p[i] += v;
        }
}

void gn_linear_backward(const float *x, const float *dy, int batch, int in_f, int out_f,
                        const float *w, float *dx, float *dw, float *db) {
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * in_f;
        const float *gb = dy + (size_t)b * out_f;
        for (int n = 0; n < out_f; n++) {
            const float gv = gb[n];
            if (gv == 0.0f) continue;
            float *dwn = dw + (size_t)n * in_f;
            for (int k = 0; k < in_f; k++) dwn[k] += gv * xb[k];
            if (dx) {
                const float *wn = w + (size_t)n * in_f;
                float *dxb = dx + (size_t)b * in_f;
                for (int k = 0; k < in_f; k++) dxb[k] += gv * wn[k];
            }
        }
    }
    if (db)
        for (int n = 0; n < out_f; n++) {
            double s = 0.0;
            for (int b = 0; b < batch; b++) s += dy[(size_t)b * out_f + n];
            db[n] += (float)s;
        }
}

/* ---- squeeze-excite ----------------------------------------------------------------------- */

typedef struct se_job {
    const gn_planes *t;
    const float *x, *dy;
    const gn_se_saved *s;
    size_t ld;
    float *y, *dx, *dgate, *dpooled;
    int overwrite;
} se_job;

static size_t se_ld(const gn_planes *t, const gn_se_saved *s) {
    return s->ld ? s->ld : (size_t)t->batch;
}

/* Planar tensors run plane by plane; batch-inner ones pixel by pixel with the batch as the
 * vector (the feature-major saved arrays then line up with the pixel rows). */
static int se_planar(const gn_planes *t) { return pix_stride(t) == 1; }

static void se_pool_channels(const void *arg, int c0, int c1) {
    const se_job *j = arg;
    const gn_planes *t = j->t;
    const size_t cs = chan_stride(t), ps = pix_stride(t);
    const float inv = 1.0f / (float)t->hw;
    for (int c = c0; c < c1; c++) {
        float *pooled = j->s->pooled + c * j->ld;
        if (se_planar(t)) {
            for (int b = 0; b < t->batch; b++)
                pooled[b] = sum8(j->x + b * t->stride + c * cs, t->hw) * inv;
            continue;
        }
        for (int b = 0; b < t->batch; b++) pooled[b] = 0.0f;
        for (size_t i = 0; i < t->hw; i++) {
            const float *x = j->x + c * cs + i * ps;
            for (int b = 0; b < t->batch; b++) pooled[b] += x[b];
        }
        for (int b = 0; b < t->batch; b++) pooled[b] *= inv;
    }
}

static void se_gate_channels(const void *arg, int c0, int c1) {
    const se_job *j = arg;
    const gn_planes *t = j->t;
    const size_t cs = chan_stride(t), ps = pix_stride(t);
    for (int c = c0; c < c1; c++) {
        const float *gate = j->s->gate + c * j->ld;
        if (se_planar(t)) {
            for (int b = 0; b < t->batch; b++) {
                const size_t o = b * t->stride + c * cs;
                for (size_t i = 0; i < t->hw; i++) j->y[o + i] = j->x[o + i] * gate[b];
            }
            continue;
        }
        for (size_t i = 0; i < t->hw; i++) {
            const size_t o = c * cs + i * ps;
            for (int b = 0; b < t->batch; b++) j->y[o + b] = j->x[o + b] * gate[b];
        }
    }
}

/* y[i][b] = bias[i] + y[i][b] over rows [0, rows) of nb columns, ld apart. */
static void add_bias(float *y, const float *bias, int rows, int nb, size_t ld) {
    for (int i = 0; i < rows; i++)
        for (int b = 0; b < nb; b++) y[i * ld + b] += bias[i];
}

void gn_se_forward_train(const gn_tctx *ctx, const gn_planes *t, const float *x,
                         const gn_se_weights *se, const gn_se_saved *s, float *y) {
    const int C = se->channels, R = se->reduced, nb = t->batch;
    const size_t ld = se_ld(t, s);
    se_job j = {t, x, NULL, s, ld, y, NULL, NULL, NULL, 0};
    for_units(ctx, C, plane_work(t), se_pool_channels, &j);
    /* hidden = relu(Wr pooled + br), gate_pre = We hidden + be: products over the batch */
    const gn_gemm reduce = {R, nb, C, se->reduce_w, (size_t)C, 1, s->pooled, ld, 0, s->hidden, ld, 0};
    gn_gemm_run(ctx, &reduce);
    add_bias(s->hidden, se->reduce_b, R, nb, ld);
    for (int r = 0; r < R; r++)
        for (int b = 0; b < nb; b++) {
            float *h = s->hidden + r * ld + b;
            *h = *h > 0.0f ? *h : 0.0f;
        }
    const gn_gemm expand = {C, nb, R, se->expand_w, (size_t)R, 1, s->hidden, ld, 0, s->gate_pre, ld, 0};
    gn_gemm_run(ctx, &expand);
    add_bias(s->gate_pre, se->expand_b, C, nb, ld);
    for (int c = 0; c < C; c++)
        for (int b = 0; b < nb; b++)
            s->gate[c * ld + b] = gn_act_apply(GN_ACT_HSIGMOID, s->gate_pre[c * ld + b]);
    for_units(ctx, C, plane_work(t), se_gate_channels, &j);
}

void gn_se_apply_gate(const gn_tctx *ctx, const gn_planes *t, const float *x,
                      const gn_se_saved *s, float *y) {
    se_job j = {t, x, NULL, s, se_ld(t, s), y, NULL, NULL, NULL, 0};
    for_units(ctx, t->channels, plane_work(t), se_gate_channels, &j);
}

/* d gate_pre[c][b] = sum over the plane of dy * x, through the hard-sigmoid. */
static void se_dgate_channels(const void *arg, int c0, int c1) {
    const se_job *j = arg;
    const gn_planes *t = j->t;
    const size_t cs = chan_stride(t), ps = pix_stride(t);
    for (int c = c0; c < c1; c++) {
        float *dgate = j->dgate + c * j->ld;
        if (se_planar(t)) {
            for (int b = 0; b < t->batch; b++) {
                const size_t o = b * t->stride + c * cs;
                dgate[b] = dot8(j->dy + o, j->x + o, t->hw);
            }
        } else {
            for (int b = 0; b < t->batch; b++) dgate[b] = 0.0f;
            for (size_t i = 0; i < t->hw; i++) {
                const size_t o = c * cs + i * ps;
                for (int b = 0; b < t->batch; b++) dgate[b] += j->dy[o + b] * j->x[o + b];
            }
        }
        for (int b = 0; b < t->batch; b++)
            dgate[b] *= gn_act_grad(GN_ACT_HSIGMOID, j->s->gate_pre[c * j->ld + b]);
    }
}

/* dx (+)= dy * gate + d pooled / hw (the mean spreads its gradient evenly over the plane). */
static void se_dx_channels(const void *arg, int c0, int c1) {
    const se_job *j = arg;
    const gn_planes *t = j->t;
    const size_t cs = chan_stride(t), ps = pix_stride(t);
    const float inv = 1.0f / (float)t->hw, keep = j->overwrite ? 0.0f : 1.0f;
    float pc[256];
    for (int c = c0; c < c1; c++) {
        const float *gate = j->s->gate + c * j->ld, *dp = j->dpooled + c * j->ld;
        if (se_planar(t)) {
            for (int b = 0; b < t->batch; b++) {
                const size_t o = b * t->stride + c * cs;
                const float gc = gate[b], pv = dp[b] * inv;
                for (size_t i = 0; i < t->hw; i++) j->dx[o + i] = keep * j->dx[o + i] + (j->dy[o + i] * gc + pv);
            }
            continue;
        }
        for (int b0 = 0; b0 < t->batch; b0 += 256) {
            const int m = t->batch - b0 < 256 ? t->batch - b0 : 256;
            for (int b = 0; b < m; b++) pc[b] = dp[b0 + b] * inv;
            for (size_t i = 0; i < t->hw; i++) {
                const size_t o = c * cs + i * ps + b0;
                if (j->overwrite) {
                    for (int b = 0; b < m; b++) j->dx[o + b] = j->dy[o + b] * gate[b0 + b] + pc[b];
                } else {
                    for (int b = 0; b < m; b++) j->dx[o + b] += j->dy[o + b] * gate[b0 + b] + pc[b];
                }
            }
        }
    }
}

/* sum over the batch of rows [0, rows) into out (+=). */
static void add_row_sums(const float *x, int rows, int nb, size_t ld, float *out) {
    for (int i = 0; i < rows; i++) {
        double s = 0.0;
        for (int b = 0; b < nb; b++) s += x[i * ld + b];
        out[i] += (float)s;
    }
}

void gn_se_backward(const gn_tctx *ctx, const gn_planes *t, const float *x, const float *dy,
                    const gn_se_weights *se, const gn_se_saved *s, float *dx, int overwrite,
                    const gn_se_grads *g, float *scratch) {
    const int C = se->channels, R = se->reduced, nb = t->batch;
    const size_t ld = se_ld(t, s);
    float *dgate = scratch, *dhidden = scratch + (size_t)C * ld;
    se_job j = {t, x, dy, s, ld, NULL, dx, dgate, dgate, overwrite};
    for_units(ctx, C, plane_work(t), se_dgate_channels, &j);
    /* expand: dWe += dgate hidden^T, dbe += sum dgate, dhidden = We^T dgate (then ReLU) */
    add_row_sums(dgate, C, nb, ld, g->expand_b);
    const gn_gemm dwe = {C, R, nb, dgate, ld, 1, s->hidden, ld, 1, g->expand_w, (size_t)R, 1};
    gn_gemm_run(ctx, &dwe);
    const gn_gemm dh = {R, nb, C, se->expand_w, 1, (size_t)R, dgate, ld, 0, dhidden, ld, 0};
    gn_gemm_run(ctx, &dh);
    for (int r = 0; r < R; r++)
        for (int b = 0; b < nb; b++)
            if (!(s->hidden[r * ld + b] > 0.0f)) dhidden[r * ld + b] = 0.0f;
    /* reduce: dWr += dhidden pooled^T, dbr += sum dhidden, d pooled = Wr^T dhidden (into
     * dgate's space, no longer needed) */
    add_row_sums(dhidden, R, nb, ld, g->reduce_b);
    const gn_gemm dwr = {R, C, nb, dhidden, ld, 1, s->pooled, ld, 1, g->reduce_w, (size_t)C, 1};
    gn_gemm_run(ctx, &dwr);
    const gn_gemm dp = {C, nb, R, se->reduce_w, 1, (size_t)C, dhidden, ld, 0, dgate, ld, 0};
    gn_gemm_run(ctx, &dp);
    for_units(ctx, C, plane_work(t), se_dx_channels, &j);
}

/* ---- dropout, loss ------------------------------------------------------------------------ */

void gn_dropout_mask(gn_rng *rng, float rate, size_t n, float *mask) {
    const float keep = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < n; i++) mask[i] = gn_rng_uniform(rng) < rate ? 0.0f : keep;
}

double gn_softmax_xent(const float *logits, int batch, int classes, const int *labels,
                       float smoothing, float *dlogits, int *correct) {
    double total = 0.0;
    int right = 0;
    for (int b = 0; b < batch; b++) {
        const float *l = logits + (size_t)b * classes;
        int arg = 0;
        for (int k = 1; k < classes; k++)
            if (l[k] > l[arg]) arg = k;
        right += arg == labels[b];
        double z = 0.0, sum_logp = 0.0;
        for (int k = 0; k < classes; k++) z += exp((double)l[k] - l[arg]);
        const double lse = l[arg] + log(z);
        for (int k = 0; k < classes; k++) sum_logp += l[k] - lse;
        const double nll = lse - l[labels[b]];
        total += (1.0 - smoothing) * nll - smoothing * sum_logp / classes;
        if (dlogits) {
            float *d = dlogits + (size_t)b * classes;
            for (int k = 0; k < classes; k++) {
                double target = smoothing / classes + (k == labels[b] ? 1.0 - smoothing : 0.0);
                d[k] = (float)((exp(l[k] - lse) - target) / batch);
            }
        }
    }
    if (correct) *correct = right;
    return total / batch;
}

/* ---- layout conversion --------------------------------------------------------------------- */

void gn_nchw_to_batch_inner(const float *src, int batch, int c, size_t hw, size_t ld, float *dst) {
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < hw; i++) {
            float *d = dst + ((size_t)ch * hw + i) * ld;
            for (int b = 0; b < batch; b++) d[b] = src[((size_t)b * c + ch) * hw + i];
        }
}

void gn_batch_inner_to_nchw(const float *src, int batch, int c, size_t hw, size_t ld, float *dst) {
    for (int ch = 0; ch < c; ch++)
        for (size_t i = 0; i < hw; i++) {
            const float *s = src + ((size_t)ch * hw + i) * ld;
            for (int b = 0; b < batch; b++) dst[((size_t)b * c + ch) * hw + i] = s[b];
        }
}
