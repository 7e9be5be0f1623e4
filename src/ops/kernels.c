/* Fast portable kernels: loop orders and fixed-size tiles that compilers vectorise. Each one
 * has a twin in ops_ref.c and tests/test_ops.c checks them against each other. */
#include <string.h>

#include "ops/ops.h"

enum { kTileCols = 8, kTileRows = 4 };

static void store_row(float *dst, const float *acc, int n, gn_act act, int accumulate) {
    if (accumulate) {
        for (int j = 0; j < n; j++) dst[j] += gn_act_apply(act, acc[j]);
    } else {
        for (int j = 0; j < n; j++) dst[j] = gn_act_apply(act, acc[j]);
    }
}

/* A 4 x 8 output tile of a 1x1 convolution: rows are output channels, columns pixels. */
static void conv1x1_tile(const float *x, size_t hw, int k_count, const float *const w[kTileRows],
                         const float bias[kTileRows], int cols, float acc[kTileRows][kTileCols]) {
    for (int r = 0; r < kTileRows; r++)
        for (int j = 0; j < kTileCols; j++) acc[r][j] = bias[r];
    if (cols == kTileCols) {
        for (int k = 0; k < k_count; k++) {
            const float *xk = x + (size_t)k * hw;
            const float w0 = w[0][k], w1 = w[1][k], w2 = w[2][k], w3 = w[3][k];
            for (int j = 0; j < kTileCols; j++) {
                const float v = xk[j];
                acc[0][j] += w0 * v;
                acc[1][j] += w1 * v;
                acc[2][j] += w2 * v;
                acc[3][j] += w3 * v;
            }
        }
    } else {
        for (int k = 0; k < k_count; k++) {
            const float *xk = x + (size_t)k * hw;
            for (int r = 0; r < kTileRows; r++)
                for (int j = 0; j < cols; j++) acc[r][j] += w[r][k] * xk[j];
        }
    }
}

static void conv1x1(const gn_conv_params *p, const float *in, const float *weight,
                    const float *bias, float *out) {
    const size_t hw = (size_t)p->out_h * p->out_w;
    const int k_count = p->in_c;
    for (int b = 0; b < p->batch; b++) {
        const float *x = in + (size_t)b * p->in_image_stride;
        float *y = out + (size_t)b * p->out_image_stride;
        for (size_t p0 = 0; p0 < hw; p0 += kTileCols) {
            const int cols = hw - p0 < kTileCols ? (int)(hw - p0) : kTileCols;
            for (int oc = 0; oc < p->out_c; oc += kTileRows) {
                const int rows = p->out_c - oc < kTileRows ? p->out_c - oc : kTileRows;
                const float *w[kTileRows];
                float bias_tile[kTileRows];
                float acc[kTileRows][kTileCols];
                for (int r = 0; r < kTileRows; r++) {
                    /* Rows past out_c recompute row 0 and are never stored. */
                    w[r] = weight + (size_t)(oc + (r < rows ? r : 0)) * k_count;
                    bias_tile[r] = (r < rows && bias) ? bias[oc + r] : 0.0f;
                }
                conv1x1_tile(x + p0, hw, k_count, w, bias_tile, cols, acc);
                for (int r = 0; r < rows; r++)
                    store_row(y + (size_t)(oc + r) * hw + p0, acc[r], cols, p->act, p->accumulate);
            }
        }
    }
}

/* Direct convolution for any kernel, stride and groups (depthwise included): each weight tap
 * adds a shifted input row into the output row, so inner loops run over contiguous pixels. */
static void conv_direct(const gn_conv_params *p, const float *in, const float *weight,
                        const float *bias, float *out, float *row) {
    const int in_per_group = p->in_c / p->groups;
    const int kh = p->kernel_h, kw = p->kernel_w, s = p->stride;
    const size_t in_plane = (size_t)p->in_h * p->in_w;
    for (int b = 0; b < p->batch; b++) {
        const float *x = in + (size_t)b * p->in_image_stride;
        float *y = out + (size_t)b * p->out_image_stride;
        for (int oc = 0; oc < p->out_c; oc++) {
            const int g = oc / p->out_per_group;
            const float *w = weight + (size_t)oc * in_per_group * kh * kw;
            float *yplane = y + (size_t)oc * p->out_h * p->out_w;
            for (int oy = 0; oy < p->out_h; oy++) {
                const float b0 = bias ? bias[oc] : 0.0f;
                for (int ox = 0; ox < p->out_w; ox++) row[ox] = b0;
                for (int ic = 0; ic < in_per_group; ic++) {
                    const float *plane = x + (size_t)(g * in_per_group + ic) * in_plane;
                    for (int ky = 0; ky < kh; ky++) {
                        const int iy = oy * s - p->pad + ky;
                        if (iy < 0 || iy >= p->in_h) continue;
                        const float *irow = plane + (size_t)iy * p->in_w;
                        for (int kx = 0; kx < kw; kx++) {
                            const float wv = w[(ic * kh + ky) * kw + kx];
                            /* Output columns whose input column ox*s - pad + kx is in range. */
                            const int off = kx - p->pad;
                            int lo = off < 0 ? (-off + s - 1) / s : 0;
                            int hi = (p->in_w - 1 - off) / s + 1;
                            if (p->in_w - 1 - off < 0) hi = 0;
                            if (hi > p->out_w) hi = p->out_w;
                            if (s == 1) {
                                const float *src = irow + off;
                                for (int ox = lo; ox < hi; ox++) row[ox] += wv * src[ox];
                            } else {
                                for (int ox = lo; ox < hi; ox++) row[ox] += wv * irow[ox * s + off];
                            }
                        }
                    }
                }
                store_row(yplane + (size_t)oy * p->out_w, row, p->out_w, p->act, p->accumulate);
            }
        }
    }
}

enum { kMaxRow = 4096 };

void gn_conv2d(const gn_conv_params *p, const float *in, const float *weight, const float *bias,
               float *out) {
    if (p->kernel_h == 1 && p->kernel_w == 1 && p->stride == 1 && p->pad == 0 && p->groups == 1) {
        conv1x1(p, in, weight, bias, out);
        return;
    }
    if (p->out_w <= kMaxRow) {
        float row[kMaxRow];
        conv_direct(p, in, weight, bias, out, row);
        return;
    }
    gn_conv2d_ref(p, in, weight, bias, out);
}

void gn_linear(const float *x, int batch, int in_f, int out_f, const float *w, const float *bias,
               gn_act act, float *y) {
    /* A linear layer is a 1x1 convolution over `batch` pixels once x is transposed; at these
     * sizes (<= 1280 inputs) a dot product per output is simplest and fast enough. */
    for (int b = 0; b < batch; b++) {
        const float *xb = x + (size_t)b * in_f;
        for (int n = 0; n < out_f; n++) {
            const float *wn = w + (size_t)n * in_f;
            float acc[8] = {0};
            int k = 0;
            for (; k + 8 <= in_f; k += 8)
                for (int j = 0; j < 8; j++) acc[j] += wn[k + j] * xb[k + j];
            float s = bias ? bias[n] : 0.0f;
            for (; k < in_f; k++) s += wn[k] * xb[k];
            for (int j = 0; j < 8; j++) s += acc[j];
            y[(size_t)b * out_f + n] = gn_act_apply(act, s);
        }
    }
}
