/* Micro-kernels: small fixed-tile functions, one signature per family, one implementation per
 * instruction set (kernels_scalar.c, kernels_avx2.c, kernels_neon.c), named
 * dtype-op-tile-isa (f32_gemm_4x24_avx2). A session picks one table (gn_kernels) once, from
 * the CPU's features; the drivers in fastops.c loop over tiles and never look at the ISA.
 *
 * Every kernel has a scalar twin with the same contract (tests/test_kernels.c compares them),
 * and the whole drivers are compared with the reference ops of ops_ref.c. */
#ifndef GN_UKERNELS_H
#define GN_UKERNELS_H

#include <stddef.h>

#include "ops/ops.h"

/* Rows of output channels per packed weight panel; the same for every ISA so packing does not
 * depend on the kernel table. */
#define GN_GEMM_MR 4

/* One strip of a 1x1 convolution (a GEMM in NCHW): m <= MR output channels x n pixels,
 *   y[r][j] (+)= act(bias[r] + sum_kk w[kk*MR + r] * x[kk][j]),
 * or, with from_y (continuing a previous k-block), y[r][j] = act(y[r][j] + bias[r] + sum),
 * x rows (input channels) ldx floats apart, y rows (output channels) ldy apart. The kernel
 * tiles n itself (NR pixels at a time) and handles the tail inside. Panel rows >= m are zero
 * padding: computed, never stored. */
typedef struct gn_gemm_strip {
    const float *w;    /* packed panel: k x GN_GEMM_MR */
    const float *bias; /* GN_GEMM_MR floats */
    const float *x;
    float *y;
    size_t ldx, ldy;
    int m, n, k;
    gn_act act;
    int accumulate; /* y += act(...) (fused residual add) */
    int from_y;     /* y = act(y + ...): sums continued from an earlier k-block */
} gn_gemm_strip;
typedef void (*gn_gemm_fn)(const gn_gemm_strip *s);

/* Matrix-vector for batch-1 linear layers: y[i] = act(bias[i] + w[i][:] . x), i < m,
 * w row-major with rows ldw apart. bias may be NULL. */
typedef struct gn_gemv_args {
    const float *w;
    size_t ldw;
    const float *x, *bias;
    float *y;
    int m, k;
    gn_act act;
} gn_gemv_args;
typedef void (*gn_gemv_fn)(const gn_gemv_args *a);

/* Depthwise k x k conv (padding k/2, stride 1 or 2) of one ih x iw plane into oh x ow:
 *   y = act(bias + conv) [+ res], rows ow apart; *sum (optional) receives the sum of y.
 * SIMD kernels stream input rows through `ring`: ring_rows (gn_dw_ring_rows) slots of
 * gn_dw_slot_floats(pitch, stride) floats, each slot one zero-padded input row (stride 2:
 * split into even and odd columns, two rows of `pitch`), so every tap is a plain contiguous
 * load. Rows are filled a little ahead of use, so loads never wait on the stores that filled
 * them; when ring_rows covers the whole padded plane, padded row r simply lives in slot r. The
 * caller zeroes the ring once (kernels only write data columns of data rows, so the padding
 * stays zero) and gives `zero`, a zeroed slot for the padding rows above and below. Scalar
 * kernels ignore all three. */
typedef struct gn_dw_args {
    const float *x;
    float *ring;
    const float *zero;
    size_t pitch;
    int ring_rows;
    const float *w; /* k * k taps */
    float bias;
    float *y;
    const float *res; /* NULL or a plane shaped like y */
    float *sum;       /* NULL or where the plane's sum goes */
    int ih, iw, oh, ow, k, stride;
    gn_act act;
} gn_dw_args;
typedef void (*gn_dw_fn)(const gn_dw_args *a);

/* Ring slots: the whole padded plane when small (no wrap-around), else k + two output rows. */
static inline int gn_dw_ring_rows(int ih, int k, int stride, size_t slot_floats) {
    const int rows = ih + 2 * (k / 2), ahead = k + 2 * stride;
    if ((size_t)rows * slot_floats <= 8192 || rows <= ahead) return rows;
    return ahead;
}

/* Floats per ring slot; pitch for an output row of ow and an input row of iw. */
static inline size_t gn_dw_slot_floats(size_t pitch, int stride) { return stride == 2 ? 2 * pitch : pitch; }
static inline size_t gn_dw_pitch(int iw, int ow, int k, int stride) {
    const size_t ow8 = ((size_t)ow + 7) / 8 * 8, pad = (size_t)k / 2;
    size_t need = stride == 1 ? ow8 + (size_t)k - 1 : ow8 + pad + 1;
    /* fills store whole vectors: room for up to 7 floats past the data */
    const size_t data = stride == 1 ? pad + ((size_t)iw + 7) / 8 * 8
                                    : (pad + 1) / 2 + ((size_t)iw + 1) / 2 + 8;
    if (data > need) need = data;
    return (need + 7) / 8 * 8;
}

/* Depthwise k x k conv (padding k/2, stride 1 or 2) in the batch-innermost layout: x is one
 * channel as [ih][iw][batch], y as [oh][ow][batch], so a vector holds one pixel of 8 images
 * and every tap is a contiguous load, whatever the plane size. batch % 8 == 0.
 *   y = act(bias + conv) [+ res]; sum (optional): batch floats, the per-image sums of y. */
typedef struct gn_dwb_args {
    const float *x;
    const float *w; /* k * k taps */
    float bias;
    float *y;
    const float *res;
    float *sum;
    int batch, ih, iw, oh, ow, k, stride;
    gn_act act;
} gn_dwb_args;
typedef void (*gn_dwb_fn)(const gn_dwb_args *a);

/* Depthwise k x k conv (padding k/2, stride 1 or 2) of 8 planes at once (8 consecutive
 * channels, one input plane each): plane c of x (ldx floats apart) into plane c of y (ldy
 * apart), y = act(bias[c] + conv) [+ res plane c]; sum (optional): sum[c * lds] = the sum of
 * y's plane c. SIMD kernels copy the planes channel-innermost into `scratch` (a zero-padded
 * (ih + 2p) x (iw + 2p) x 8 block, then oh x ow x 8 outputs: gn_dw8_scratch_floats), so a
 * vector holds one pixel of the 8 channels: no row edges, tails or masks in the taps, which
 * pays on small planes. The caller zeroes the padded block once (kernels write only its
 * interior). Scalar kernels ignore scratch. */
typedef struct gn_dw8_args {
    const float *x;
    size_t ldx;
    float *y;
    size_t ldy;
    const float *res; /* NULL or 8 planes shaped like y, ldr apart */
    size_t ldr;
    float *sum; /* NULL or 8 sums, lds apart */
    size_t lds;
    const float *w;    /* 8 x k * k taps, channel by channel */
    const float *bias; /* 8 */
    float *scratch;
    int ih, iw, oh, ow, k, stride;
    gn_act act;
} gn_dw8_args;
typedef void (*gn_dw8_fn)(const gn_dw8_args *a);

/* Scratch floats for gn_dw8_fn, and how many of them (from the start) the caller zeroes. */
static inline size_t gn_dw8_pad_floats(int ih, int iw, int k) {
    return (size_t)(ih + 2 * (k / 2)) * (size_t)(iw + 2 * (k / 2)) * 8;
}
static inline size_t gn_dw8_scratch_floats(int ih, int iw, int oh, int ow, int k) {
    return gn_dw8_pad_floats(ih, iw, k) + (size_t)oh * ow * 8;
}

/* Batch-innermost helpers over `hw` pixels of `batch` floats (batch % 8 == 0):
 * sum_b: out[b] = sum over pixels; scale_b: x[p][b] *= s[b]. */
typedef void (*gn_sum_b_fn)(const float *x, size_t hw, int batch, float *out);
typedef void (*gn_scale_b_fn)(float *x, size_t hw, int batch, const float *s);

/* y[j * ldy + i] = x[i * ldx + j] for i < rows, j < cols. */
typedef void (*gn_transpose_fn)(const float *x, size_t ldx, float *y, size_t ldy, int rows,
                                int cols);

/* The k rows of an im2col matrix that one input row feeds (taps kx = 0 .. k-1, k <= 15):
 * dst[kx * ldd + i] = row[ix0 + kx + i * stride] where that column lies in [0, iw), else 0;
 * row NULL means a padding row (all zeros). SIMD kernels split a stride-2 row into even and
 * odd columns once for all k taps. */
typedef void (*gn_im2col_fn)(const float *row, int iw, int ix0, int stride, int n, int k,
                             float *dst, size_t ldd);

typedef struct gn_kernels {
    const char *name; /* "scalar", "avx2", "neon" */
    int gemm_nr;      /* pixels per micro-tile of gemm: drivers split work in multiples */
    gn_gemm_fn gemm;
    gn_gemv_fn gemv;
    gn_dw_fn dw3s1, dw3s2, dw5s1, dw5s2, dwks1, dwks2; /* dwk*: any odd k */
    gn_dwb_fn dwb;
    gn_dw8_fn dw8;    /* NULL: drivers run small planes one by one through dw* */
    gn_im2col_fn im2col;
    gn_sum_b_fn sum_b;
    gn_scale_b_fn scale_b;
    gn_transpose_fn transpose;
    float (*sum)(const float *x, size_t n);
    void (*scale)(float *x, size_t n, float s);
    void (*add)(float *y, const float *x, size_t n);
} gn_kernels;

typedef enum gn_isa { GN_ISA_SCALAR, GN_ISA_AVX2, GN_ISA_NEON } gn_isa;

/* 1 when `isa` was compiled in and this CPU runs it. */
int gn_isa_available(gn_isa isa);
/* The best available ISA; GN_ISA_SCALAR when force_scalar, when the environment variable
 * GN_FORCE_SCALAR=1 is set, or when the library was built with -DGN_FORCE_SCALAR=ON. */
gn_isa gn_isa_detect(int force_scalar);
/* Fills the table for an available ISA; returns 0 (and the scalar table) otherwise. */
int gn_kernels_get(gn_isa isa, gn_kernels *k);

/* Per-ISA tables (dispatch.c calls only those compiled in). */
void gn_kernels_scalar(gn_kernels *k);
#if defined(GN_HAVE_AVX2)
void gn_kernels_avx2(gn_kernels *k);
#endif
#if defined(GN_HAVE_NEON)
void gn_kernels_neon(gn_kernels *k);
#endif

/* The scalar micro-kernels by name: the twins every SIMD kernel is tested against. */
void f32_gemm_4x8_scalar(const gn_gemm_strip *s);
void f32_gemv_4x8_scalar(const gn_gemv_args *a);
void f32_dwconv_kxk_scalar(const gn_dw_args *a);
void f32_dwconv_kxk_b1_scalar(const gn_dwb_args *a);
void f32_dwconv_kxk_c8_scalar(const gn_dw8_args *a);
void f32_sum_b1_scalar(const float *x, size_t hw, int batch, float *out);
void f32_scale_b1_scalar(float *x, size_t hw, int batch, const float *s);
void f32_transpose_1x1_scalar(const float *x, size_t ldx, float *y, size_t ldy, int rows, int cols);
void f32_im2col_kx_scalar(const float *row, int iw, int ix0, int stride, int n, int k, float *dst,
                          size_t ldd);
float f32_sum_scalar(const float *x, size_t n);
void f32_scale_scalar(float *x, size_t n, float s);
void f32_add_scalar(float *y, const float *x, size_t n);

#endif
