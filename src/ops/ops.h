/* Operators on float32 NCHW tensors. Each image of a batch is `image_stride` floats after the
 * previous one, so an op can read or write a channel range of a larger tensor: that is how a
 * Ghost module's concat happens in place (primary maps, then ghost maps, in one buffer).
 *
 * gn_*_ref are the plain reference kernels, kept as the oracle; the unsuffixed entry points
 * pick a fast kernel for the shape and must agree with the reference (tests/test_ops.c).
 *
 * Inference sessions use a second, faster layer built on these definitions: micro-kernels per
 * instruction set (ukernels.h: kernels_scalar.c, kernels_avx2.c, kernels_neon.c, chosen by
 * dispatch.c) and operators over packed weights split into tasks for a thread pool
 * (fastops.h: pack.c, fastops.c), checked against the functions here by tests/test_kernels.c. */
#ifndef GN_OPS_H
#define GN_OPS_H

#include <stddef.h>

typedef enum gn_act {
    GN_ACT_NONE,
    GN_ACT_RELU,
    GN_ACT_RELU6,
    GN_ACT_HSIGMOID, /* relu6(x + 3) / 6 */
    GN_ACT_HSWISH    /* x * relu6(x + 3) / 6 */
} gn_act;

static inline float gn_act_apply(gn_act act, float v) {
    switch (act) {
    case GN_ACT_NONE: return v;
    case GN_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case GN_ACT_RELU6: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    case GN_ACT_HSIGMOID: {
        float r = v + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return r / 6.0f;
    }
    case GN_ACT_HSWISH: {
        float r = v + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return v * r / 6.0f;
    }
    }
    return v;
}

/* Conv2d with symmetric zero padding. Weights are PyTorch's [full_out][in_c/groups][kh][kw];
 * out_c may stop short of groups * out_per_group (a Ghost module keeps only the first
 * out - init ghost maps), and output channel j belongs to group j / out_per_group. */
typedef struct gn_conv_params {
    int batch;
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;
    int kernel_h, kernel_w, stride, pad;
    int groups, out_per_group;
    size_t in_image_stride, out_image_stride;
    gn_act act;
    int accumulate; /* 1: out += act(conv) (a fused residual add) */
} gn_conv_params;

/* Fills the derived fields (out_h, out_w, strides for dense tensors, out_per_group). */
void gn_conv_params_dense(gn_conv_params *p, int batch, int in_c, int in_h, int in_w, int out_c,
                          int kernel, int stride, int groups, gn_act act);

void gn_conv2d_ref(const gn_conv_params *p, const float *in, const float *weight,
                   const float *bias, float *out);
void gn_conv2d(const gn_conv_params *p, const float *in, const float *weight, const float *bias,
               float *out);

/* y[b][c] = mean over H*W of x[b][c]; x images are image_stride apart. */
void gn_global_avgpool_ref(const float *x, int batch, int channels, int hw, size_t image_stride,
                           float *y);

/* y[b][n] = act(bias[n] + sum_k w[n][k] x[b][k]). */
void gn_linear_ref(const float *x, int batch, int in_f, int out_f, const float *w,
                   const float *bias, gn_act act, float *y);
void gn_linear(const float *x, int batch, int in_f, int out_f, const float *w, const float *bias,
               gn_act act, float *y);

/* Squeeze-excite in place: x[b][c] *= hsigmoid(expand(relu(reduce(mean(x[b][c]))))).
 * scratch holds channels + reduced floats. */
typedef struct gn_se_weights {
    int channels, reduced;
    const float *reduce_w, *reduce_b; /* [reduced][channels], [reduced] */
    const float *expand_w, *expand_b; /* [channels][reduced], [channels] */
} gn_se_weights;
void gn_squeeze_excite_ref(float *x, int batch, int hw, size_t image_stride,
                           const gn_se_weights *se, float *scratch);

/* y += x over `channels` planes of hw floats per image (a residual add). */
void gn_add_ref(float *y, const float *x, int batch, int channels, int hw, size_t y_stride,
                size_t x_stride);

#endif
