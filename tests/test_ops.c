/* Operators: hand-computed small cases, and every fast kernel against its reference twin on
 * odd shapes (1, 3, 7, 13 channels; 1x1, 5x7, 13x11 images; each kernel/stride/group mode). */
#include "core/rng.h"
#include "ops/ops.h"
#include "test_util.h"

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as a failure */
    }
    return m;
}

static void test_hand_cases(void) {
    /* 3x3 all-ones kernel, pad 1, over a 3x3 image of ones: corners see 4, edges 6, centre 9. */
    float x[9], w[9], y[9];
    for (int i = 0; i < 9; i++) x[i] = w[i] = 1.0f;
    gn_conv_params p;
    gn_conv_params_dense(&p, 1, 1, 3, 3, 1, 3, 1, 1, GN_ACT_NONE);
    const float want[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
    gn_conv2d_ref(&p, x, w, NULL, y);
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], want[i], 0);
    gn_conv2d(&p, x, w, NULL, y);
    for (int i = 0; i < 9; i++) CHECK_NEAR(y[i], want[i], 0);

    /* Stride 2 over a 5x5 ramp with a 3x3 centre tap: picks pixels (0,0), (0,2), ... */
    float ramp[25], tap[9] = {0, 0, 0, 0, 2, 0, 0, 0, 0}, out[9];
    for (int i = 0; i < 25; i++) ramp[i] = (float)i;
    gn_conv_params_dense(&p, 1, 1, 5, 5, 1, 3, 2, 1, GN_ACT_NONE);
    CHECK(p.out_h == 3 && p.out_w == 3);
    gn_conv2d(&p, ramp, tap, NULL, out);
    const float picked[9] = {0, 4, 8, 20, 24, 28, 40, 44, 48};
    for (int i = 0; i < 9; i++) CHECK_NEAR(out[i], picked[i], 0);

    /* Depthwise with channel multiplier 2 (a Ghost module's cheap op, s = 3), keeping only the
     * first 3 of 4 outputs: output j reads input channel j / 2. */
    float in2[2] = {3.0f, -5.0f}, wk[4] = {1, 2, 3, 4}, bias[4] = {0.5f, 0, 0, 0}, o2[3];
    gn_conv_params_dense(&p, 1, 2, 1, 1, 4, 1, 1, 2, GN_ACT_NONE);
    p.out_c = 3;
    p.out_image_stride = 3;
    gn_conv2d_ref(&p, in2, wk, bias, o2);
    CHECK_NEAR(o2[0], 3.5, 0);
    CHECK_NEAR(o2[1], 6, 0);
    CHECK_NEAR(o2[2], -15, 0);

    /* Activations at their corners. */
    CHECK_NEAR(gn_act_apply(GN_ACT_HSIGMOID, -3.0f), 0.0, 0);
    CHECK_NEAR(gn_act_apply(GN_ACT_HSIGMOID, 0.0f), 0.5, 1e-7);
    CHECK_NEAR(gn_act_apply(GN_ACT_HSIGMOID, 3.0f), 1.0, 0);
    CHECK_NEAR(gn_act_apply(GN_ACT_HSWISH, 1.0f), 4.0 / 6.0, 1e-7);
    CHECK_NEAR(gn_act_apply(GN_ACT_HSWISH, -4.0f), 0.0, 0);
    CHECK_NEAR(gn_act_apply(GN_ACT_RELU6, 7.5f), 6.0, 0);
    CHECK_NEAR(gn_act_apply(GN_ACT_RELU, -0.5f), 0.0, 0);

    /* Squeeze-excite on a 2-channel image of constants 1 and 3 (mean 1 and 3), reduce to one
     * unit with weights (1, 1), bias -1 -> relu(3) = 3; expand weights (1, -2), bias 0 ->
     * hsigmoid(3) = 1, hsigmoid(-6) = 0. */
    float img[8] = {1, 1, 1, 1, 3, 3, 3, 3}, scratch[3];
    const float rw[2] = {1, 1}, rb[1] = {-1}, ew[2] = {1, -2}, eb[2] = {0, 0};
    gn_se_weights se = {2, 1, rw, rb, ew, eb};
    gn_squeeze_excite_ref(img, 1, 4, 8, &se, scratch);
    CHECK_NEAR(img[0], 1.0, 0);
    CHECK_NEAR(img[4], 0.0, 0);

    /* Linear: [1 2; 3 4] x (1, -1) + (0.5, 0) -> (-0.5, -1), relu -> (0, 0). */
    const float lw[4] = {1, 2, 3, 4}, lx[2] = {1, -1}, lb[2] = {0.5f, 0};
    float ly[2];
    gn_linear(lx, 1, 2, 2, lw, lb, GN_ACT_NONE, ly);
    CHECK_NEAR(ly[0], -0.5, 0);
    CHECK_NEAR(ly[1], -1.0, 0);
    gn_linear(lx, 1, 2, 2, lw, lb, GN_ACT_RELU, ly);
    CHECK_NEAR(ly[0] + ly[1], 0.0, 0);

    float pooled[2];
    const float planes[6] = {1, 2, 3, 10, 20, 30};
    gn_global_avgpool_ref(planes, 1, 2, 3, 6, pooled);
    CHECK_NEAR(pooled[0], 2.0, 1e-6);
    CHECK_NEAR(pooled[1], 20.0, 1e-6);
}

static void fill(gn_rng *rng, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = gn_rng_uniform(rng) * 2.0f - 1.0f;
}

/* One random conv through both kernels, with the output written into a channel view of a
 * wider tensor (as the Ghost concat does) and optionally accumulated. */
static void compare_conv(gn_rng *rng, int batch, int in_c, int h, int w, int full_out, int keep,
                         int kernel, int stride, int groups, gn_act act, int accumulate) {
    gn_conv_params p;
    gn_conv_params_dense(&p, batch, in_c, h, w, full_out, kernel, stride, groups, act);
    p.out_c = keep;
    const int extra = 2; /* channels of the wider output tensor before our view */
    const size_t plane = (size_t)p.out_h * p.out_w;
    p.out_image_stride = (size_t)(keep + extra) * plane;
    p.accumulate = accumulate;
    const size_t in_n = (size_t)batch * in_c * h * w;
    const size_t w_n = (size_t)full_out * (in_c / groups) * kernel * kernel;
    const size_t out_n = (size_t)batch * p.out_image_stride;
    float *x = malloc(in_n * sizeof *x), *wt = malloc(w_n * sizeof *wt);
    float *bias = malloc((size_t)full_out * sizeof *bias);
    float *a = malloc(out_n * sizeof *a), *b = malloc(out_n * sizeof *b);
    fill(rng, x, in_n);
    fill(rng, wt, w_n);
    fill(rng, bias, (size_t)full_out);
    fill(rng, a, out_n);
    memcpy(b, a, out_n * sizeof *a);
    gn_conv2d_ref(&p, x, wt, bias, a + extra * plane);
    gn_conv2d(&p, x, wt, bias, b + extra * plane);
    float d = max_abs_diff(a, b, out_n);
    CHECK_MSG(d <= 1e-5f * (float)(in_c / groups * kernel * kernel + 1),
              "conv b%d c%d %dx%d -> %d/%d k%d s%d g%d act%d acc%d: max diff %g", batch, in_c,
              h, w, keep, full_out, kernel, stride, groups, (int)act, accumulate, (double)d);
    free(x);
    free(wt);
    free(bias);
    free(a);
    free(b);
}

static void test_conv_fast_vs_ref(void) {
    gn_rng rng;
    gn_rng_seed(&rng, 42);
    static const int channels[] = {1, 3, 7, 13};
    static const int sizes[][2] = {{1, 1}, {5, 7}, {13, 11}, {2, 9}};
    static const int kernels[] = {1, 3, 5};
    const int nc = 4, ns = 4, nk = 3;
    for (int ci = 0; ci < nc; ci++)
        for (int si = 0; si < ns; si++)
            for (int ki = 0; ki < nk; ki++)
                for (int stride = 1; stride <= 2; stride++) {
                    const int c = channels[ci], h = sizes[si][0], w = sizes[si][1], k = kernels[ki];
                    const gn_act act = (gn_act)((ci + si + ki + stride) % 5);
                    /* dense, into channel views, several output widths */
                    compare_conv(&rng, 1, c, h, w, channels[(ci + 1) % nc], channels[(ci + 1) % nc],
                                 k, stride, 1, act, 0);
                    compare_conv(&rng, 2, c, h, w, 13, 13, k, stride, 1, GN_ACT_NONE, 1);
                    /* depthwise, and depthwise with multiplier 3 keeping a prefix */
                    compare_conv(&rng, 2, c, h, w, c, c, k, stride, c, act, 0);
                    compare_conv(&rng, 1, c, h, w, 3 * c, 3 * c - 1 > 0 ? 3 * c - 1 : 1, k, 1, c,
                                 act, 0);
                }
    /* grouped (not depthwise) */
    compare_conv(&rng, 1, 6, 5, 7, 9, 9, 3, 1, 3, GN_ACT_RELU, 0);
    /* a wide 1x1 like the network's, tile remainders in both directions */
    compare_conv(&rng, 3, 37, 7, 7, 61, 61, 1, 1, 1, GN_ACT_RELU, 0);
    compare_conv(&rng, 1, 16, 28, 28, 23, 23, 1, 1, 1, GN_ACT_NONE, 1);
}

static void test_linear_fast_vs_ref(void) {
    gn_rng rng;
    gn_rng_seed(&rng, 7);
    static const int dims[][3] = {{1, 1, 1}, {3, 13, 7}, {2, 1280, 10}, {5, 17, 33}};
    for (int t = 0; t < 4; t++) {
        const int b = dims[t][0], in_f = dims[t][1], out_f = dims[t][2];
        float *x = malloc(sizeof(float) * b * in_f), *w = malloc(sizeof(float) * in_f * out_f);
        float *bias = malloc(sizeof(float) * out_f), *y0 = malloc(sizeof(float) * b * out_f);
        float *y1 = malloc(sizeof(float) * b * out_f);
        fill(&rng, x, (size_t)b * in_f);
        fill(&rng, w, (size_t)in_f * out_f);
        fill(&rng, bias, (size_t)out_f);
        gn_linear_ref(x, b, in_f, out_f, w, bias, GN_ACT_HSWISH, y0);
        gn_linear(x, b, in_f, out_f, w, bias, GN_ACT_HSWISH, y1);
        CHECK_MSG(max_abs_diff(y0, y1, (size_t)b * out_f) <= 1e-5f * in_f, "linear %d %d %d", b,
                  in_f, out_f);
        free(x);
        free(w);
        free(bias);
        free(y0);
        free(y1);
    }
}

int main(void) {
    test_hand_cases();
    test_conv_fast_vs_ref();
    test_linear_fast_vs_ref();
    TEST_MAIN_END();
}
