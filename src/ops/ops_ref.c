/* Reference kernels: straightforward loops, written for clarity, not speed. */
#include "ops/ops.h"

void gn_conv_params_dense(gn_conv_params *p, int batch, int in_c, int in_h, int in_w, int out_c,
                          int kernel, int stride, int groups, gn_act act) {
    p->batch = batch;
    p->in_c = in_c;
    p->in_h = in_h;
    p->in_w = in_w;
    p->out_c = out_c;
    p->kernel_h = p->kernel_w = kernel;
    p->stride = stride;
    p->pad = kernel / 2;
    p->out_h = (in_h + 2 * p->pad - kernel) / stride + 1;
    p->out_w = (in_w + 2 * p->pad - kernel) / stride + 1;
    p->groups = groups;
    p->out_per_group = out_c / groups;
    p->in_image_stride = (size_t)in_c * in_h * in_w;
    p->out_image_stride = (size_t)out_c * p->out_h * p->out_w;
    p->act = act;
    p->accumulate = 0;
}

void gn_conv2d_ref(const gn_conv_params *p, const float *in, const float *weight,
                   const float *bias, float *out) {
    const int in_per_group = p->in_c / p->groups;
    const int kh = p->kernel_h, kw = p->kernel_w;
    for (int b = 0; b < p->batch; b++) {
        const float *x = in + (size_t)b * p->in_image_stride;
        float *y = out + (size_t)b * p->out_image_stride;
        for (int oc = 0; oc < p->out_c; oc++) {
            const int g = oc / p->out_per_group;
            const float *w = weight + (size_t)oc * in_per_group * kh * kw;
            for (int oy = 0; oy < p->out_h; oy++) {
                for (int ox = 0; ox < p->out_w; ox++) {
                    double acc = bias ? bias[oc] : 0.0;
                    for (int ic = 0; ic < in_per_group; ic++) {
                        const float *plane = x + (size_t)(g * in_per_group + ic) * p->in_h * p->in_w;
                        for (int ky = 0; ky < kh; ky++) {
                            int iy = oy * p->stride - p->pad + ky;
                            if (iy < 0 || iy >= p->in_h) continue;
                            for (int kx = 0; kx < kw; kx++) {
                                int ix = ox * p->stride - p->pad + kx;
                                if (ix < 0 || ix >= p->in_w) continue;
                                acc += (double)w[(ic * kh + ky) * kw + kx] * plane[iy * p->in_w + ix];
                            }
                        }
                    }
                    float v = gn_act_apply(p->act, (float)acc);
                    float *dst = y + ((size_t)oc * p->out_h + oy) * p->out_w + ox;
                    *dst = p->accumulate ? *dst + v : v;
                }
            }
        }
    }
}

void gn_global_avgpool_ref(const float *x, int batch, int channels, int hw, size_t image_stride,
                           float *y) {
    for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++) {
            const float *plane = x + b * image_stride + (size_t)c * hw;
            double s = 0.0;
            for (int i = 0; i < hw; i++) s += plane[i];
            y[(size_t)b * channels + c] = (float)(s / hw);
        }
}

void gn_linear_ref(const float *x, int batch, int in_f, int out_f, const float *w,
                   const float *bias, gn_act act, float *y) {
    for (int b = 0; b < batch; b++)
        for (int n = 0; n < out_f; n++) {
            double acc = bias ? bias[n] : 0.0;
            for (int k = 0; k < in_f; k++) acc += (double)w[(size_t)n * in_f + k] * x[(size_t)b * in_f + k];
            y[(size_t)b * out_f + n] = gn_act_apply(act, (float)acc);
        }
}

void gn_squeeze_excite_ref(float *x, int batch, int hw, size_t image_stride,
                           const gn_se_weights *se, float *scratch) {
    float *pooled = scratch, *hidden = scratch + se->channels;
    for (int b = 0; b < batch; b++) {
        float *img = x + b * image_stride;
        gn_global_avgpool_ref(img, 1, se->channels, hw, 0, pooled);
        gn_linear_ref(pooled, 1, se->channels, se->reduced, se->reduce_w, se->reduce_b,
                      GN_ACT_RELU, hidden);
        gn_linear_ref(hidden, 1, se->reduced, se->channels, se->expand_w, se->expand_b,
                      GN_ACT_HSIGMOID, pooled);
        for (int c = 0; c < se->channels; c++)
            for (int i = 0; i < hw; i++) img[(size_t)c * hw + i] *= pooled[c];
    }
}

void gn_add_ref(float *y, const float *x, int batch, int channels, int hw, size_t y_stride,
                size_t x_stride) {
    const size_t n = (size_t)channels * hw;
    for (int b = 0; b < batch; b++)
        for (size_t i = 0; i < n; i++) y[b * y_stride + i] += x[b * x_stride + i];
}
