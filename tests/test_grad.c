/* Gradient checks: every backward kernel and the training graph against central finite
 * differences of a scalar f (f = sum(out * R) for a fixed random R, or the real loss), and the
 * fast backward kernels against the plain references on odd shapes.
 *
 * Finite differences run on float kernels, so f is accumulated in double and the step is
 * h = 1e-3. An element whose estimate disagrees is re-measured with h/2: when the two
 * estimates differ as much, the step crossed an activation kink (ReLU, ReLU6, hard-sigmoid)
 * and the sample is counted as a kink, not a failure; kinks must stay rare. Otherwise the
 * Richardson extrapolation of the two estimates is what is compared.
 *
 * For Ghost modules, bottlenecks and the whole network the ReLU (and SE) pattern is frozen at
 * the base point (gn_train_freeze_relu): BN couples every unit of a channel, so a step would
 * otherwise cross some kink for almost every upstream parameter. The frozen network is smooth
 * and has the same gradient, so those checks use h = 1e-2 (less float noise). */
#include "core/rng.h"
#include "core/threadpool.h"
#include "model/model_internal.h"
#include "test_util.h"
#include "train/train.h"

static double kStep = 1e-3; /* 1e-2 once ReLUs are frozen (smooth, less float noise) */
static const double kTol = 1e-2;

/* ---- finite-difference harness ------------------------------------------------------------ */

typedef double (*loss_fn)(void *ctx);

typedef struct fd_stats {
    double max_err;
    int checked, kinks, failed;
} fd_stats;

static double central(loss_fn f, void *ctx, float *v, double h) {
    const float orig = *v;
    const float plus = (float)(orig + h), minus = (float)(orig - h);
    *v = plus;
    const double fp = f(ctx);
    *v = minus;
    const double fm = f(ctx);
    *v = orig;
    return (fp - fm) / ((double)plus - (double)minus);
}

/* Checks `samples` entries of v (all when samples >= n) against the analytic gradient `ana`.
 * Errors are relative to max(|ana|, 2% of the largest |ana| in the tensor, kFloor). */
static double kFloor = 0.0; /* absolute floor of the error denominator */

static void fd_check(const char *what, float *v, const float *ana, size_t n, int samples,
                     loss_fn f, void *ctx, gn_rng *rng, fd_stats *total) {
    double scale = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ana[i]) > scale) scale = fabs(ana[i]);
    fd_stats st = {0};
    const int all = (size_t)samples >= n;
    const int count = all ? (int)n : samples;
    for (int s = 0; s < count; s++) {
        const size_t i = all ? (size_t)s : gn_rng_below(rng, (uint32_t)n);
        const double num = central(f, ctx, v + i, kStep);
        const double denom = fmax(fmax(fabs(ana[i]), 0.02 * scale), kFloor) + 1e-12;
        double err = fabs(num - ana[i]) / denom;
        if (err > kTol) {
            /* Second opinion from h/2 and the Richardson extrapolation (4 f'(h/2) - f'(h)) / 3,
             * which cancels the h^2 curvature term of central differences. */
            const double num2 = central(f, ctx, v + i, kStep / 2);
            const double rich = (4.0 * num2 - num) / 3.0;
            err = fabs(rich - ana[i]) / denom;
            if (err > kTol && fabs(num2 - num) / denom > kTol / 2) {
                if (getenv("GN_SHOW_KINKS"))
                    fprintf(stderr, "  kink? %s[%zu]: analytic %.6g, numeric %.6g, h/2 %.6g\n",
                            what, i, (double)ana[i], num, num2);
                st.kinks++;
                continue;
            }
            if (err > kTol) {
                st.failed++;
                fprintf(stderr, "  %s[%zu]: analytic %.6g, numeric %.6g (h/2: %.6g)\n", what, i,
                        (double)ana[i], num, num2);
            }
        }
        if (err > st.max_err) st.max_err = err;
        st.checked++;
    }
    CHECK_MSG(st.failed == 0, "%s: %d of %d samples disagree", what, st.failed, count);
    CHECK_MSG(st.kinks <= 2 + count / 10, "%s: %d of %d samples hit kinks", what, st.kinks, count);
    if (total) {
        if (st.max_err > total->max_err) total->max_err = st.max_err;
        total->checked += st.checked;
        total->kinks += st.kinks;
        total->failed += st.failed;
    } else {
        printf("  %-40s max rel err %.2e (%d checked, %d kinks)\n", what, st.max_err, st.checked,
               st.kinks);
    }
}

static void fill(gn_rng *rng, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * gn_rng_uniform(rng);
}

static float *alloc_floats(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static double dot_d(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double max_abs(const float *a, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i]) > m) m = fabs(a[i]);
    return m;
}

/* max |a - b| / max |b|. */
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    return s > 0 ? d / s : d;
}

/* ---- convolution ---------------------------------------------------------------------------- */

typedef struct conv_case {
    gn_conv_params p;
    float *x, *w, *b, *y, *r;
    size_t xn, wn, yn;
} conv_case;

static double conv_loss(void *ctx) {
    conv_case *c = ctx;
    gn_conv2d_ref(&c->p, c->x, c->w, c->b, c->y);
    /* Only the written channels of each output image count (views leave gaps). */
    double s = 0.0;
    const size_t per = (size_t)c->p.out_c * c->p.out_h * c->p.out_w;
    for (int b = 0; b < c->p.batch; b++)
        s += dot_d(c->y + b * c->p.out_image_stride, c->r + b * c->p.out_image_stride, per);
    return s;
}

/* A conv of the given shape; in_slack / out_slack > 0 make strided channel views and
 * kept < out_c truncates the outputs as a Ghost module does. */
static void check_conv(const char *name, int batch, int in_c, int h, int w, int out_c, int kept,
                       int k, int stride, int groups, int with_bias, size_t in_slack,
                       size_t out_slack, gn_rng *rng) {
    conv_case c;
    gn_conv_params_dense(&c.p, batch, in_c, h, w, out_c, k, stride, groups, GN_ACT_NONE);
    c.p.out_c = kept;
    c.p.in_image_stride += in_slack;
    c.p.out_image_stride += out_slack;
    c.xn = batch * c.p.in_image_stride;
    c.wn = (size_t)out_c * (in_c / groups) * k * k;
    c.yn = batch * c.p.out_image_stride;
    c.x = alloc_floats(c.xn);
    c.w = alloc_floats(c.wn);
    c.b = with_bias ? alloc_floats((size_t)out_c) : NULL;
    c.y = alloc_floats(c.yn);
    c.r = alloc_floats(c.yn);
    fill(rng, c.x, c.xn, -1, 1);
    fill(rng, c.w, c.wn, -1, 1);
    if (c.b) fill(rng, c.b, (size_t)out_c, -1, 1);
    fill(rng, c.r, c.yn, -1, 1);

    float *dx = alloc_floats(c.xn), *dw = alloc_floats(c.wn), *db = alloc_floats((size_t)out_c);
    float *dx_fast = alloc_floats(c.xn), *dw_fast = alloc_floats(c.wn);
    gn_conv2d_backward_data_ref(&c.p, c.r, c.w, dx);
    gn_conv2d_backward_weight_ref(&c.p, c.x, c.r, dw);
    gn_conv2d_backward_bias(&c.p, c.r, db);
    gn_conv2d_backward_data(&c.p, c.r, c.w, dx_fast);
    gn_conv2d_backward_weight(&c.p, c.x, c.r, dw_fast);
    /* Truncated output channels get no weight gradient. */
    const size_t per_out = c.wn / out_c;
    int untouched = 1;
    for (size_t i = (size_t)kept * per_out; i < c.wn; i++) untouched &= dw[i] == 0.0f && dw_fast[i] == 0.0f;
    CHECK_MSG(untouched, "%s: dropped output channels received weight gradient", name);

    char what[96];
    snprintf(what, sizeof what, "conv %s dx", name);
    fd_check(what, c.x, dx, c.xn, 24, conv_loss, &c, rng, NULL);
    snprintf(what, sizeof what, "conv %s dw", name);
    fd_check(what, c.w, dw, (size_t)kept * per_out, 24, conv_loss, &c, rng, NULL);
    if (c.b) {
        snprintf(what, sizeof what, "conv %s db", name);
        fd_check(what, c.b, db, (size_t)kept, 8, conv_loss, &c, rng, NULL);
    }
    const double ed = rel_diff(dx_fast, dx, c.xn), ew = rel_diff(dw_fast, dw, c.wn);
    printf("  conv %-33s fast vs reference: dx %.2e, dw %.2e\n", name, ed, ew);
    CHECK_MSG(ed < 1e-5 && ew < 1e-5, "%s: fast backward differs (dx %.3g, dw %.3g)", name, ed, ew);
    free(c.x);
    free(c.w);
    free(c.b);
    free(c.y);
    free(c.r);
    free(dx);
    free(dw);
    free(db);
    free(dx_fast);
    free(dw_fast);
}

static void test_conv(gn_rng *rng) {
    printf("conv backward\n");
    check_conv("3x3/2 dense", 2, 3, 7, 9, 5, 5, 3, 2, 1, 1, 0, 0, rng);
    check_conv("3x3 groups=2", 2, 4, 6, 5, 6, 6, 3, 1, 2, 0, 0, 0, rng);
    check_conv("dw 3x3 x3 truncated views", 2, 4, 5, 7, 12, 10, 3, 1, 4, 0, 11, 17, rng);
    check_conv("dw 5x5/2 odd", 3, 5, 9, 7, 5, 5, 5, 2, 5, 0, 0, 0, rng);
    check_conv("dw 1x1 x2", 2, 3, 4, 5, 6, 5, 1, 1, 3, 0, 0, 0, rng);
    check_conv("1x1 gemm tails", 2, 7, 5, 3, 5, 5, 1, 1, 1, 1, 0, 0, rng);
    check_conv("1x1 gemm views", 2, 9, 6, 7, 6, 6, 1, 1, 1, 0, 13, 5, rng);
    check_conv("1x1/2", 2, 6, 7, 7, 4, 4, 1, 2, 1, 0, 0, 0, rng);
    check_conv("dw 5x5 on 1x1", 3, 4, 1, 1, 4, 4, 5, 1, 4, 0, 0, 0, rng);
    check_conv("dw 5x5/2 on 2x3", 3, 4, 2, 3, 4, 4, 5, 2, 4, 0, 0, 0, rng);
    check_conv("3x3 on 1x2", 2, 3, 1, 2, 4, 4, 3, 1, 1, 0, 0, 0, rng);

    /* Fast vs reference on larger odd shapes (no finite differences: too slow). */
    const struct { int b, ic, h, w, oc, kept, k, s, g; } big[] = {
        {3, 37, 13, 11, 19, 19, 1, 1, 1}, {2, 20, 17, 9, 33, 33, 1, 1, 1},
        {2, 24, 15, 13, 48, 45, 3, 1, 24}, {2, 30, 11, 14, 30, 30, 5, 2, 30},
        {2, 6, 19, 21, 16, 16, 3, 2, 1}, {2, 70, 9, 9, 12, 12, 1, 1, 1},
        {1, 130, 11, 13, 7, 7, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        gn_conv_params p;
        gn_conv_params_dense(&p, big[i].b, big[i].ic, big[i].h, big[i].w, big[i].oc, big[i].k,
                             big[i].s, big[i].g, GN_ACT_NONE);
        p.out_c = big[i].kept;
        const size_t xn = p.batch * p.in_image_stride, yn = p.batch * p.out_image_stride;
        const size_t wn = (size_t)big[i].oc * (big[i].ic / big[i].g) * big[i].k * big[i].k;
        float *x = alloc_floats(xn), *dy = alloc_floats(yn), *w = alloc_floats(wn);
        float *a = alloc_floats(xn), *b = alloc_floats(xn), *wa = alloc_floats(wn),
              *wb = alloc_floats(wn);
        fill(rng, x, xn, -1, 1);
        fill(rng, dy, yn, -1, 1);
        fill(rng, w, wn, -1, 1);
        gn_conv2d_backward_data_ref(&p, dy, w, a);
        gn_conv2d_backward_data(&p, dy, w, b);
        gn_conv2d_backward_weight_ref(&p, x, dy, wa);
        gn_conv2d_backward_weight(&p, x, dy, wb);
        const double ed = rel_diff(b, a, xn), ew = rel_diff(wb, wa, wn);
        printf("  conv %dx%d/%d g%d %d->%d %dx%d       fast vs reference: dx %.2e, dw %.2e\n",
               big[i].k, big[i].k, big[i].s, big[i].g, big[i].ic, big[i].kept, big[i].h,
               big[i].w, ed, ew);
        CHECK(ed < 1e-5 && ew < 1e-5);
        free(x);
        free(dy);
        free(w);
        free(a);
        free(b);
        free(wa);
        free(wb);
    }
}

/* ---- fast kernels against the references: products, batch-inner convolutions, threads ----- */

/* The contexts every fast kernel is checked under: portable and AVX2 (when this CPU has it),
 * serial and on a pool of 3 threads. */
typedef struct ctx_set {
    gn_tctx c[4];
    const char *name[4];
    int n;
    gn_threadpool *pool;
    float *scratch;
} ctx_set;

/* The threaded contexts also get per-thread scratch (products pack many strips at once), the
 * serial ones none (one strip at a time): the two must agree bit for bit. */
static void ctx_set_init(ctx_set *s) {
    memset(s, 0, sizeof *s);
    CHECK(gn_threadpool_create(3, &s->pool, NULL) == GN_OK);
    s->scratch = aligned_alloc(64, 3 * GN_TCTX_SCRATCH_FLOATS * sizeof(float));
    CHECK(s->scratch != NULL);
    const int isas = gn_train_avx2_available() ? 2 : 1;
    for (int isa = 0; isa < isas; isa++)
        for (int t = 0; t < 2; t++) {
            s->c[s->n].pool = t ? s->pool : NULL;
            s->c[s->n].avx2 = isa;
            s->c[s->n].scratch = t ? s->scratch : NULL;
            s->c[s->n].split_all = 1; /* these shapes are small: split them anyway */
            s->name[s->n] = isa ? (t ? "avx2 x3" : "avx2") : (t ? "portable x3" : "portable");
            s->n++;
        }
}

static int bitwise_equal(const float *a, const float *b, size_t n) {
    return memcmp(a, b, n * sizeof(float)) == 0;
}

/* One product shape: every context against gn_gemm_ref; the threaded runs must equal the
 * serial ones bit for bit. */
static void check_gemm(const ctx_set *cs, int m, int n, int k, int b_trans, int accumulate,
                       int a_trans, gn_rng *rng) {
    const size_t lda = (size_t)(a_trans ? m : k) + 3, ldb = (size_t)(b_trans ? k : n) + 5;
    const size_t ldc = (size_t)n + 2;
    const size_t an = lda * (a_trans ? k : m), bn = ldb * (b_trans ? n : k), cn = ldc * m;
    float *a = alloc_floats(an), *b = alloc_floats(bn), *c0 = alloc_floats(cn);
    float *want = alloc_floats(cn), *got[4];
    fill(rng, a, an, -1, 1);
    fill(rng, b, bn, -1, 1);
    fill(rng, c0, cn, -1, 1);
    gn_gemm g = {m, n, k, a, a_trans ? 1 : lda, a_trans ? lda : 1, b, ldb, b_trans, want, ldc,
                 accumulate};
    memcpy(want, c0, cn * sizeof(float));
    gn_gemm_ref(&g);
    double worst = 0.0;
    for (int i = 0; i < cs->n; i++) {
        got[i] = alloc_floats(cn);
        memcpy(got[i], c0, cn * sizeof(float));
        g.c = got[i];
        gn_gemm_run(&cs->c[i], &g);
        const double d = rel_diff(got[i], want, cn);
        if (d > worst) worst = d;
        CHECK_MSG(d < 1e-5, "gemm %dx%dx%d bt%d acc%d at%d (%s): %.3g", m, n, k, b_trans,
                  accumulate, a_trans, cs->name[i], d);
    }
    for (int i = 1; i < cs->n; i += 2)
        CHECK_MSG(bitwise_equal(got[i], got[i - 1], cn), "gemm %dx%dx%d: threads change bits", m,
                  n, k);
    printf("  gemm %4d x %5d x %5d%s%s%s  fast vs reference %.2e\n", m, n, k,
           b_trans ? " B^T" : "    ", a_trans ? " A^T" : "    ", accumulate ? " +=" : "   ", worst);
    for (int i = 0; i < cs->n; i++) free(got[i]);
    free(a);
    free(b);
    free(c0);
    free(want);
}

/* A conv between batch-inner tensors (the training graph's layout, with ld >= batch: gaps),
 * fast in every context against the reference, and the NCHW reference on the same data. */
static void check_bi_conv(const ctx_set *cs, int batch, int ld, int in_c, int h, int w,
                          int out_c, int kept, int k, int stride, int groups, gn_rng *rng) {
    gn_tconv c;
    memset(&c, 0, sizeof c);
    gn_conv_params_dense(&c.p, batch, in_c, h, w, out_c, k, stride, groups, GN_ACT_NONE);
    c.p.out_c = kept;
    const size_t ip = (size_t)h * w, op = (size_t)c.p.out_h * c.p.out_w;
    c.in = (gn_tlayout){1, ip * ld, (size_t)ld};
    c.out = (gn_tlayout){1, op * ld, (size_t)ld};
    const size_t xn = ip * ld * in_c, yn = op * ld * out_c;
    const size_t wn = (size_t)out_c * (in_c / groups) * k * k;
    float *x = alloc_floats(xn), *dy = alloc_floats(yn), *wt = alloc_floats(wn);
    float *y_ref = alloc_floats(yn), *dx_ref = alloc_floats(xn), *dw_ref = alloc_floats(wn);
    fill(rng, x, xn, -1, 1);
    fill(rng, dy, yn, -1, 1);
    fill(rng, wt, wn, -1, 1);
    fill(rng, dx_ref, xn, -1, 1); /* backward accumulates */
    fill(rng, dw_ref, wn, -1, 1);
    float *dx0 = alloc_floats(xn), *dw0 = alloc_floats(wn);
    memcpy(dx0, dx_ref, xn * sizeof(float));
    memcpy(dw0, dw_ref, wn * sizeof(float));
    gn_tconv_forward_ref(&c, x, wt, y_ref);
    gn_tconv_backward_data_ref(&c, dy, wt, dx_ref);
    gn_tconv_backward_weight_ref(&c, x, dy, dw_ref);
    /* overwrite mode: what the reference writes over garbage */
    float *dxo_ref = alloc_floats(xn), *garbage = alloc_floats(xn);
    fill(rng, garbage, xn, -5, 5);
    memcpy(dxo_ref, garbage, xn * sizeof(float));
    c.overwrite = 1;
    gn_tconv_backward_data_ref(&c, dy, wt, dxo_ref);
    c.overwrite = 0;

    /* The NCHW reference on the same numbers: the layouts agree. */
    {
        gn_tconv n = gn_tconv_nchw(&c.p);
        n.p.in_image_stride = (size_t)in_c * ip;
        n.p.out_image_stride = (size_t)out_c * op;
        n.in = (gn_tlayout){(size_t)in_c * ip, ip, 1};
        n.out = (gn_tlayout){(size_t)out_c * op, op, 1};
        float *xn_ = alloc_floats((size_t)batch * in_c * ip), *yn_ = alloc_floats((size_t)batch * out_c * op);
        for (int b = 0; b < batch; b++)
            for (int ch = 0; ch < in_c; ch++)
                for (size_t i = 0; i < ip; i++) xn_[(b * in_c + ch) * ip + i] = x[(ch * ip + i) * ld + b];
        gn_tconv_forward_ref(&n, xn_, wt, yn_);
        double d = 0.0;
        for (int b = 0; b < batch; b++)
            for (int ch = 0; ch < kept; ch++)
                for (size_t i = 0; i < op; i++)
                    d = fmax(d, fabs(yn_[(b * out_c + ch) * op + i] - y_ref[(ch * op + i) * ld + b]));
        CHECK_MSG(d == 0.0, "batch-inner and NCHW references differ by %.3g", d);
        free(xn_);
        free(yn_);
    }

    double worst = 0.0;
    float *prev[3] = {NULL, NULL, NULL};
    for (int i = 0; i < cs->n; i++) {
        float *y = alloc_floats(yn), *dx = alloc_floats(xn), *dw = alloc_floats(wn);
        memcpy(y, y_ref, yn * sizeof(float)); /* gaps and dropped channels keep their values */
        memcpy(dx, dx0, xn * sizeof(float));
        memcpy(dw, dw0, wn * sizeof(float));
        for (int ch = 0; ch < kept; ch++)
            for (size_t j = 0; j < op; j++)
                for (int b = 0; b < batch; b++) y[(ch * op + j) * ld + b] = 0.0f;
        gn_tconv_forward(&cs->c[i], &c, x, wt, y);
        gn_tconv_backward_data(&cs->c[i], &c, dy, wt, dx);
        gn_tconv_backward_weight(&cs->c[i], &c, x, dy, dw);
        float *dxo = alloc_floats(xn);
        memcpy(dxo, garbage, xn * sizeof(float));
        c.overwrite = 1;
        gn_tconv_backward_data(&cs->c[i], &c, dy, wt, dxo);
        c.overwrite = 0;
        double e = fmax(fmax(rel_diff(y, y_ref, yn), rel_diff(dx, dx_ref, xn)),
                        rel_diff(dw, dw_ref, wn));
        e = fmax(e, rel_diff(dxo, dxo_ref, xn));
        free(dxo);
        if (e > worst) worst = e;
        CHECK_MSG(e < 1e-5, "bi conv k%d s%d g%d %d->%d (%s): %.3g", k, stride, groups, in_c,
                  kept, cs->name[i], e);
        if (i % 2 == 1)
            CHECK_MSG(bitwise_equal(y, prev[0], yn) && bitwise_equal(dx, prev[1], xn) &&
                          bitwise_equal(dw, prev[2], wn),
                      "bi conv k%d s%d: threads change bits", k, stride);
        for (int q = 0; q < 3; q++) free(prev[q]);
        prev[0] = y;
        prev[1] = dx;
        prev[2] = dw;
    }
    printf("  conv %dx%d/%d g%-3d %3d->%-3d %2dx%-2d b%d/%d batch-inner  fast vs reference %.2e\n",
           k, k, stride, groups, in_c, kept, h, w, batch, ld, worst);
    for (int q = 0; q < 3; q++) free(prev[q]);
    free(dxo_ref);
    free(garbage);
    free(x);
    free(dy);
    free(wt);
    free(y_ref);
    free(dx_ref);
    free(dw_ref);
    free(dx0);
    free(dw0);
}

/* BN and squeeze-excite on batch-inner planes against the same kernels on NCHW planes. */
static void check_bi_bn_se(const ctx_set *cs, int B, int ld, gn_rng *rng) {
    const int C = 6, R = 3;
    const size_t hw = 9, n = (size_t)C * hw * ld, nn = (size_t)B * C * hw;
    const gn_planes bi = {B, C, hw, 1, hw * ld, (size_t)ld};
    const gn_planes pl = {B, C, hw, (size_t)C * hw, 0, 0};
    float *x = alloc_floats(n), *dy = alloc_floats(n), *xp = alloc_floats(nn), *dyp = alloc_floats(nn);
    fill(rng, x, n, -2, 3);
    fill(rng, dy, n, -1, 1);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (size_t i = 0; i < hw; i++) {
                xp[(b * C + c) * hw + i] = x[(c * hw + i) * ld + b];
                dyp[(b * C + c) * hw + i] = dy[(c * hw + i) * ld + b];
            }
    float gamma[6], beta[6], mean[6], var[6], invstd[6], mp[6], vp[6];
    fill(rng, gamma, C, 0.5f, 1.5f);
    fill(rng, beta, C, -0.5f, 0.5f);
    gn_bn_batch_stats(NULL, &pl, xp, mp, vp);
    float *y = alloc_floats(n), *yp = alloc_floats(nn), *dx = alloc_floats(n), *dxp = alloc_floats(nn);
    float dg[6] = {0}, db[6] = {0}, dgp[6] = {0}, dbp[6] = {0};
    gn_bn_invstd(C, vp, GN_BN_EPS, invstd);
    double worst = 0.0;
    /* the AVX2 twins cover no activation and ReLU; the others take the portable body */
    const gn_act acts[3] = {GN_ACT_NONE, GN_ACT_RELU, GN_ACT_HSWISH};
    for (int a = 0; a < 3; a++) {
        memset(dgp, 0, sizeof dgp);
        memset(dbp, 0, sizeof dbp);
        gn_bn_forward(NULL, &pl, xp, gamma, beta, mp, invstd, acts[a], yp, pl.stride);
        gn_bn_backward(NULL, &pl, xp, dyp, pl.stride, gamma, beta, mp, invstd, acts[a], 1, dxp,
                       dgp, dbp);
        for (int i = 0; i < cs->n; i++) {
            gn_bn_batch_stats(&cs->c[i], &bi, x, mean, var);
            for (int c = 0; c < C; c++)
                worst = fmax(worst, fabs(mean[c] - mp[c]) + fabs(var[c] - vp[c]));
            memset(dg, 0, sizeof dg);
            memset(db, 0, sizeof db);
            gn_bn_forward(&cs->c[i], &bi, x, gamma, beta, mp, invstd, acts[a], y, 1);
            gn_bn_backward(&cs->c[i], &bi, x, dy, 1, gamma, beta, mp, invstd, acts[a], 1, dx, dg,
                           db);
            for (int b = 0; b < B; b++)
                for (int c = 0; c < C; c++)
                    for (size_t j = 0; j < hw; j++) {
                        worst = fmax(worst, fabs(y[(c * hw + j) * ld + b] - yp[(b * C + c) * hw + j]));
                        worst = fmax(worst, fabs(dx[(c * hw + j) * ld + b] - dxp[(b * C + c) * hw + j]));
                    }
            for (int c = 0; c < C; c++)
                worst = fmax(worst, fabs(dg[c] - dgp[c]) + fabs(db[c] - dbp[c]));
        }
    }
    printf("  bn b%d/%d batch-inner vs NCHW (stats, forward, backward; 3 acts): max diff %.2e\n",
           B, ld, worst);
    CHECK(worst < 1e-5);

    /* squeeze-excite: saved arrays feature-major with ld columns in both layouts */
    float *rw = alloc_floats(R * C), *rb = alloc_floats(R), *ew = alloc_floats(C * R), *eb = alloc_floats(C);
    fill(rng, rw, R * C, -2, 2);
    fill(rng, rb, R, -0.5f, 0.5f);
    fill(rng, ew, C * R, -3, 3);
    fill(rng, eb, C, -1, 1);
    const gn_se_weights se = {C, R, rw, rb, ew, eb};
    float *sv[2][4], *gr[2][4], *scratch = alloc_floats((size_t)(C + R) * ld);
    for (int v = 0; v < 2; v++) {
        sv[v][0] = alloc_floats(C * ld);
        sv[v][1] = alloc_floats(R * ld);
        sv[v][2] = alloc_floats(C * ld);
        sv[v][3] = alloc_floats(C * ld);
        gr[v][0] = alloc_floats(R * C);
        gr[v][1] = alloc_floats(R);
        gr[v][2] = alloc_floats(C * R);
        gr[v][3] = alloc_floats(C);
    }
    const gn_se_saved s_pl = {sv[0][0], sv[0][1], sv[0][2], sv[0][3], (size_t)ld};
    const gn_se_saved s_bi = {sv[1][0], sv[1][1], sv[1][2], sv[1][3], (size_t)ld};
    const gn_se_grads g_pl = {gr[0][0], gr[0][1], gr[0][2], gr[0][3]};
    const gn_se_grads g_bi = {gr[1][0], gr[1][1], gr[1][2], gr[1][3]};
    memset(dxp, 0, nn * sizeof(float));
    gn_se_forward_train(NULL, &pl, xp, &se, &s_pl, yp);
    gn_se_backward(NULL, &pl, xp, dyp, &se, &s_pl, dxp, 0, &g_pl, scratch);
    fill(rng, dx, n, -1, 1); /* overwritten */
    gn_se_forward_train(&cs->c[cs->n - 1], &bi, x, &se, &s_bi, y);
    gn_se_backward(&cs->c[cs->n - 1], &bi, x, dy, &se, &s_bi, dx, 1, &g_bi, scratch);
    worst = 0.0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (size_t j = 0; j < hw; j++) {
                worst = fmax(worst, fabs(y[(c * hw + j) * ld + b] - yp[(b * C + c) * hw + j]));
                worst = fmax(worst, fabs(dx[(c * hw + j) * ld + b] - dxp[(b * C + c) * hw + j]));
            }
    const size_t gn_[4] = {(size_t)R * C, R, (size_t)C * R, C};
    for (int q = 0; q < 4; q++) worst = fmax(worst, rel_diff(gr[1][q], gr[0][q], gn_[q]));
    printf("  squeeze-excite b%d/%d batch-inner vs NCHW: max diff %.2e\n", B, ld, worst);
    CHECK(worst < 1e-5);
    for (int v = 0; v < 2; v++)
        for (int q = 0; q < 4; q++) {
            free(sv[v][q]);
            free(gr[v][q]);
        }
    free(rw);
    free(rb);
    free(ew);
    free(eb);
    free(scratch);
    free(x);
    free(dy);
    free(xp);
    free(dyp);
    free(y);
    free(yp);
    free(dx);
    free(dxp);
}

/* (Own random stream: the finite-difference tests keep the data they were tuned on.) */
static void test_fast_kernels(void) {
    printf("fast kernels (portable and AVX2, serial and 3 threads) vs reference\n");
    gn_rng own;
    gn_rng_seed(&own, 99);
    gn_rng *rng = &own;
    ctx_set cs;
    ctx_set_init(&cs);
    /* tails of the 4 x 24 tiles and of the 256 blocks; transposed operands as the graph uses
     * them; long inner sizes take the dot-product tiles */
    check_gemm(&cs, 7, 29, 5, 0, 0, 0, rng);
    check_gemm(&cs, 13, 50, 300, 0, 1, 0, rng);
    check_gemm(&cs, 9, 70, 33, 0, 1, 1, rng);
    check_gemm(&cs, 6, 17, 520, 1, 1, 0, rng);
    check_gemm(&cs, 11, 7, 2100, 1, 0, 0, rng);
    check_gemm(&cs, 5, 10, 9000, 1, 1, 0, rng);
    check_gemm(&cs, 1, 1, 1, 0, 0, 0, rng);
    check_gemm(&cs, 10, 3001, 17, 0, 1, 0, rng); /* short k: many strips per packed chunk */
    /* batch-inner convolutions: the graph's depthwise, cheap (multiplier 2, truncated),
     * stem-like dense and 1x1 shapes, odd sizes and a batch with gaps (ld > batch) */
    check_bi_conv(&cs, 5, 5, 6, 7, 9, 6, 6, 3, 1, 6, rng);
    check_bi_conv(&cs, 9, 11, 4, 9, 7, 4, 4, 5, 2, 4, rng);
    check_bi_conv(&cs, 3, 3, 5, 6, 6, 10, 9, 3, 1, 5, rng);
    check_bi_conv(&cs, 17, 17, 3, 2, 2, 3, 3, 5, 1, 3, rng);
    check_bi_conv(&cs, 4, 6, 3, 7, 8, 5, 5, 3, 2, 1, rng);
    check_bi_conv(&cs, 6, 6, 2, 5, 5, 7, 7, 3, 1, 1, rng);
    check_bi_conv(&cs, 8, 8, 11, 3, 5, 13, 13, 1, 1, 1, rng);
    check_bi_conv(&cs, 5, 7, 9, 4, 3, 6, 6, 1, 1, 1, rng);
    check_bi_conv(&cs, 33, 33, 2, 3, 3, 2, 2, 3, 2, 2, rng);
    /* planes of 8x8 and more with 32+ images: the weight gradient's row-of-taps kernels,
     * with image tails and gaps */
    check_bi_conv(&cs, 37, 40, 3, 10, 9, 3, 3, 3, 1, 3, rng);
    check_bi_conv(&cs, 35, 35, 2, 17, 19, 4, 4, 5, 2, 2, rng);
    check_bi_bn_se(&cs, 5, 7, rng);  /* gaps: one run per pixel */
    check_bi_bn_se(&cs, 6, 6, rng);  /* one run per channel: the vector loops */
    gn_threadpool_free(cs.pool);
    free(cs.scratch);
}

/* ---- batch norm ----------------------------------------------------------------------------- */

typedef struct bn_case {
    gn_planes t;
    int training;
    gn_act act;
    float *x, *gamma, *beta, *rmean, *rvar, *y, *r, *mean, *var, *invstd;
} bn_case;

static void bn_stats(bn_case *c) {
    if (c->training) {
        gn_bn_batch_stats(NULL, &c->t, c->x, c->mean, c->var);
    } else {
        memcpy(c->mean, c->rmean, c->t.channels * sizeof(float));
        memcpy(c->var, c->rvar, c->t.channels * sizeof(float));
    }
    gn_bn_invstd(c->t.channels, c->var, GN_BN_EPS, c->invstd);
}

static double bn_loss(void *ctx) {
    bn_case *c = ctx;
    bn_stats(c);
    gn_bn_forward(NULL, &c->t, c->x, c->gamma, c->beta, c->mean, c->invstd, c->act, c->y, c->t.stride);
    return dot_d(c->y, c->r, c->t.batch * c->t.stride);
}

static void check_bn(const char *name, int training, gn_act act, gn_rng *rng) {
    bn_case c;
    memset(&c, 0, sizeof c);
    c.t = (gn_planes){3, 4, 5 * 6, 4 * 5 * 6 + 3, 0, 0};
    c.training = training;
    c.act = act;
    const size_t n = c.t.batch * c.t.stride, C = (size_t)c.t.channels;
    c.x = alloc_floats(n);
    c.y = alloc_floats(n);
    c.r = alloc_floats(n);
    c.gamma = alloc_floats(C);
    c.beta = alloc_floats(C);
    c.rmean = alloc_floats(C);
    c.rvar = alloc_floats(C);
    c.mean = alloc_floats(C);
    c.var = alloc_floats(C);
    c.invstd = alloc_floats(C);
    fill(rng, c.x, n, -2, 3); /* offset means */
    for (int b = 0; b < c.t.batch; b++) /* the gaps between images stay zero */
        memset(c.x + b * c.t.stride + c.t.channels * c.t.hw, 0, 3 * sizeof(float));
    fill(rng, c.r, n, -1, 1);
    fill(rng, c.gamma, C, 0.5f, 1.5f);
    fill(rng, c.beta, C, -0.5f, 0.5f);
    fill(rng, c.rmean, C, -0.5f, 0.5f);
    fill(rng, c.rvar, C, 0.5f, 2.0f);

    float *dx = alloc_floats(n), *dg = alloc_floats(C), *dbeta = alloc_floats(C);
    /* BN's input gradients are small next to the float noise of f at h = 1e-3. */
    kStep = 1e-2;
    bn_loss(&c);
    gn_bn_backward(NULL, &c.t, c.x, c.r, c.t.stride, c.gamma, c.beta, c.mean, c.invstd, act, training,
                   dx, dg, dbeta);
    char what[80];
    snprintf(what, sizeof what, "bn %s dx", name);
    fd_check(what, c.x, dx, n, 40, bn_loss, &c, rng, NULL);
    kStep = 1e-3; /* gamma and beta move every unit of a channel: keep ReLU crossings rare */
    snprintf(what, sizeof what, "bn %s dgamma", name);
    fd_check(what, c.gamma, dg, C, 4, bn_loss, &c, rng, NULL);
    snprintf(what, sizeof what, "bn %s dbeta", name);
    fd_check(what, c.beta, dbeta, C, 4, bn_loss, &c, rng, NULL);

    /* In place (dx aliasing x), as the training graph uses it. */
    float *xcopy = alloc_floats(n);
    memcpy(xcopy, c.x, n * sizeof(float));
    bn_loss(&c);
    gn_bn_backward(NULL, &c.t, xcopy, c.r, c.t.stride, c.gamma, c.beta, c.mean, c.invstd, act,
                   training, xcopy, dg, dbeta);
    CHECK_MSG(rel_diff(xcopy, dx, n) == 0.0, "bn %s: in-place backward differs", name);

    if (training) {
        /* Running statistics: momentum 0.1, unbiased variance. */
        const size_t count = (size_t)c.t.batch * c.t.hw;
        float rm[4], rv[4];
        memcpy(rm, c.rmean, sizeof rm);
        memcpy(rv, c.rvar, sizeof rv);
        gn_bn_update_running(c.t.channels, c.mean, c.var, count, 0.1f, rm, rv);
        double m = 0, ss = 0;
        for (int b = 0; b < c.t.batch; b++)
            for (size_t i = 0; i < c.t.hw; i++) m += c.x[b * c.t.stride + i];
        m /= count;
        for (int b = 0; b < c.t.batch; b++)
            for (size_t i = 0; i < c.t.hw; i++) ss += pow(c.x[b * c.t.stride + i] - m, 2);
        CHECK_NEAR(rm[0], 0.9 * c.rmean[0] + 0.1 * m, 1e-6);
        CHECK_NEAR(rv[0], 0.9 * c.rvar[0] + 0.1 * ss / (count - 1), 1e-6);
    }
    free(xcopy);
    free(c.x);
    free(c.y);
    free(c.r);
    free(c.gamma);
    free(c.beta);
    free(c.rmean);
    free(c.rvar);
    free(c.mean);
    free(c.var);
    free(c.invstd);
    free(dx);
    free(dg);
    free(dbeta);
}

static void test_bn(gn_rng *rng) {
    printf("batch norm backward\n");
    check_bn("train", 1, GN_ACT_NONE, rng);
    check_bn("train+relu", 1, GN_ACT_RELU, rng);
    check_bn("train+hswish", 1, GN_ACT_HSWISH, rng);
    check_bn("eval", 0, GN_ACT_NONE, rng);
    check_bn("eval+relu6", 0, GN_ACT_RELU6, rng);
}

/* ---- activations, pooling, linear, SE, loss ------------------------------------------------- */

typedef struct act_case {
    gn_act act;
    float *x, *y, *r;
    size_t n;
} act_case;

static double act_loss(void *ctx) {
    act_case *c = ctx;
    gn_act_forward(c->act, c->x, c->n, c->y);
    return dot_d(c->y, c->r, c->n);
}

static void test_activations(gn_rng *rng) {
    printf("activations\n");
    const struct { gn_act act; const char *name; } acts[] = {
        {GN_ACT_RELU, "relu"}, {GN_ACT_RELU6, "relu6"},
        {GN_ACT_HSIGMOID, "hard-sigmoid"}, {GN_ACT_HSWISH, "hard-swish"}};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        act_case c = {acts[a].act, NULL, NULL, NULL, 200};
        c.x = alloc_floats(c.n);
        c.y = alloc_floats(c.n);
        c.r = alloc_floats(c.n);
        float *dx = alloc_floats(c.n);
        /* Points on both sides of every kink (-3, 0, 3, 6), none within 0.01 of one. */
        for (size_t i = 0; i < c.n; i++) {
            float v;
            do {
                v = -8.0f + 16.0f * gn_rng_uniform(rng);
            } while (fabsf(v + 3) < 0.01f || fabsf(v) < 0.01f || fabsf(v - 3) < 0.01f ||
                     fabsf(v - 6) < 0.01f);
            c.x[i] = v;
        }
        fill(rng, c.r, c.n, -1, 1);
        gn_act_backward(c.act, c.x, c.r, c.n, dx);
        char what[64];
        snprintf(what, sizeof what, "%s dx", acts[a].name);
        fd_check(what, c.x, dx, c.n, (int)c.n, act_loss, &c, rng, NULL);
        free(c.x);
        free(c.y);
        free(c.r);
        free(dx);
    }
}

typedef struct pool_case {
    gn_planes t;
    float *x, *y, *r;
} pool_case;

static double pool_loss(void *ctx) {
    pool_case *c = ctx;
    gn_global_avgpool_ref(c->x, c->t.batch, c->t.channels, (int)c->t.hw, c->t.stride, c->y);
    return dot_d(c->y, c->r, (size_t)c->t.batch * c->t.channels);
}

static void test_pool(gn_rng *rng) {
    printf("global average pooling\n");
    pool_case c = {{2, 3, 7, 3 * 7 + 4, 0, 0}, NULL, NULL, NULL};
    const size_t n = c.t.batch * c.t.stride;
    c.x = alloc_floats(n);
    c.y = alloc_floats(6);
    c.r = alloc_floats(6);
    float *dx = alloc_floats(n);
    fill(rng, c.x, n, -1, 1);
    fill(rng, c.r, 6, -1, 1);
    gn_avgpool_backward(&c.t, c.r, dx);
    fd_check("avgpool dx", c.x, dx, n, (int)n, pool_loss, &c, rng, NULL);
    free(c.x);
    free(c.y);
    free(c.r);
    free(dx);
}

typedef struct linear_case {
    int batch, in_f, out_f;
    float *x, *w, *b, *y, *r;
} linear_case;

static double linear_loss(void *ctx) {
    linear_case *c = ctx;
    gn_linear_ref(c->x, c->batch, c->in_f, c->out_f, c->w, c->b, GN_ACT_NONE, c->y);
    return dot_d(c->y, c->r, (size_t)c->batch * c->out_f);
}

static void test_linear(gn_rng *rng) {
    printf("linear\n");
    linear_case c = {3, 11, 7, NULL, NULL, NULL, NULL, NULL};
    const size_t xn = 33, wn = 77, yn = 21;
    c.x = alloc_floats(xn);
    c.w = alloc_floats(wn);
    c.b = alloc_floats(7);
    c.y = alloc_floats(yn);
    c.r = alloc_floats(yn);
    fill(rng, c.x, xn, -1, 1);
    fill(rng, c.w, wn, -1, 1);
    fill(rng, c.b, 7, -1, 1);
    fill(rng, c.r, yn, -1, 1);
    float *dx = alloc_floats(xn), *dw = alloc_floats(wn), *db = alloc_floats(7);
    gn_linear_backward(c.x, c.r, c.batch, c.in_f, c.out_f, c.w, dx, dw, db);
    fd_check("linear dx", c.x, dx, xn, (int)xn, linear_loss, &c, rng, NULL);
    fd_check("linear dw", c.w, dw, wn, (int)wn, linear_loss, &c, rng, NULL);
    fd_check("linear db", c.b, db, 7, 7, linear_loss, &c, rng, NULL);
    free(c.x);
    free(c.w);
    free(c.b);
    free(c.y);
    free(c.r);
    free(dx);
    free(dw);
    free(db);
}

typedef struct se_case {
    gn_planes t;
    gn_se_weights se;
    float *rw, *rb, *ew, *eb;
    gn_se_saved s;
    float *x, *y, *r;
} se_case;

static double se_loss(void *ctx) {
    se_case *c = ctx;
    gn_se_forward_train(NULL, &c->t, c->x, &c->se, &c->s, c->y);
    return dot_d(c->y, c->r, c->t.batch * c->t.stride);
}

static void test_se(gn_rng *rng) {
    printf("squeeze-excite\n");
    const int C = 8, R = 4;
    se_case c;
    memset(&c, 0, sizeof c);
    c.t = (gn_planes){2, C, 5 * 3, (size_t)C * 15, 0, 0};
    const size_t n = c.t.batch * c.t.stride;
    c.rw = alloc_floats((size_t)R * C);
    c.rb = alloc_floats(R);
    c.ew = alloc_floats((size_t)C * R);
    c.eb = alloc_floats(C);
    c.se = (gn_se_weights){C, R, c.rw, c.rb, c.ew, c.eb};
    c.s.pooled = alloc_floats(2 * C);
    c.s.hidden = alloc_floats(2 * R);
    c.s.gate_pre = alloc_floats(2 * C);
    c.s.gate = alloc_floats(2 * C);
    c.x = alloc_floats(n);
    c.y = alloc_floats(n);
    c.r = alloc_floats(n);
    fill(rng, c.x, n, -1, 2);
    fill(rng, c.r, n, -1, 1);
    /* Large enough weights that the hard-sigmoid is neither saturated nor linear everywhere. */
    fill(rng, c.rw, (size_t)R * C, -2, 2);
    fill(rng, c.rb, R, -0.5f, 0.5f);
    fill(rng, c.ew, (size_t)C * R, -3, 3);
    fill(rng, c.eb, C, -1, 1);

    float *dx = alloc_floats(n), *scratch = alloc_floats(2 * (C + R));
    gn_se_grads g = {alloc_floats((size_t)R * C), alloc_floats(R), alloc_floats((size_t)C * R),
                     alloc_floats(C)};
    se_loss(&c);
    gn_se_backward(NULL, &c.t, c.x, c.r, &c.se, &c.s, dx, 0, &g, scratch);
    fd_check("se dx", c.x, dx, n, 40, se_loss, &c, rng, NULL);
    fd_check("se reduce.weight", c.rw, g.reduce_w, (size_t)R * C, 32, se_loss, &c, rng, NULL);
    fd_check("se reduce.bias", c.rb, g.reduce_b, R, R, se_loss, &c, rng, NULL);
    fd_check("se expand.weight", c.ew, g.expand_w, (size_t)C * R, 32, se_loss, &c, rng, NULL);
    fd_check("se expand.bias", c.eb, g.expand_b, C, C, se_loss, &c, rng, NULL);
    free(c.rw);
    free(c.rb);
    free(c.ew);
    free(c.eb);
    free(c.s.pooled);
    free(c.s.hidden);
    free(c.s.gate_pre);
    free(c.s.gate);
    free(c.x);
    free(c.y);
    free(c.r);
    free(dx);
    free(scratch);
    free(g.reduce_w);
    free(g.reduce_b);
    free(g.expand_w);
    free(g.expand_b);
}

typedef struct xent_case {
    int batch, classes;
    float *logits;
    int *labels;
    float smoothing;
} xent_case;

static double xent_loss(void *ctx) {
    xent_case *c = ctx;
    return gn_softmax_xent(c->logits, c->batch, c->classes, c->labels, c->smoothing, NULL, NULL);
}

static void test_loss(gn_rng *rng) {
    printf("softmax cross-entropy\n");
    int labels[4] = {3, 0, 6, 2};
    xent_case c = {4, 7, alloc_floats(28), labels, 0.1f};
    fill(rng, c.logits, 28, -3, 3);
    float *d = alloc_floats(28);
    int correct = -1;
    const double loss = gn_softmax_xent(c.logits, 4, 7, labels, 0.1f, d, &correct);
    /* Direct evaluation of PyTorch's definition. */
    double want = 0.0;
    int right = 0;
    for (int b = 0; b < 4; b++) {
        const float *l = c.logits + b * 7;
        double z = 0.0, mean_nlp = 0.0;
        int arg = 0;
        for (int k = 0; k < 7; k++) {
            z += exp(l[k]);
            if (l[k] > l[arg]) arg = k;
        }
        for (int k = 0; k < 7; k++) mean_nlp += -(l[k] - log(z)) / 7;
        want += 0.9 * -(l[labels[b]] - log(z)) + 0.1 * mean_nlp;
        right += arg == labels[b];
    }
    CHECK_NEAR(loss, want / 4, 1e-6);
    CHECK(correct == right);
    fd_check("cross-entropy (smoothing 0.1) dlogits", c.logits, d, 28, 28, xent_loss, &c, rng,
             NULL);
    c.smoothing = 0.0f;
    gn_softmax_xent(c.logits, 4, 7, labels, 0.0f, d, NULL);
    fd_check("cross-entropy (no smoothing) dlogits", c.logits, d, 28, 28, xent_loss, &c, rng,
             NULL);
    free(c.logits);
    free(d);
}

static void test_dropout(void) {
    printf("dropout\n");
    enum { n = 20000 };
    float *a = alloc_floats(n), *b = alloc_floats(n);
    gn_rng r1, r2;
    gn_rng_seed(&r1, 42);
    gn_rng_seed(&r2, 42);
    gn_dropout_mask(&r1, 0.2f, n, a);
    gn_dropout_mask(&r2, 0.2f, n, b);
    int zeros = 0, same = 1, values_ok = 1;
    for (int i = 0; i < n; i++) {
        zeros += a[i] == 0.0f;
        same &= a[i] == b[i];
        values_ok &= a[i] == 0.0f || a[i] == 1.0f / 0.8f;
    }
    CHECK(same);
    CHECK(values_ok);
    CHECK_MSG(fabs(zeros / (double)n - 0.2) < 0.015, "dropped fraction %.4f", zeros / (double)n);
    free(a);
    free(b);
}

/* ---- training graph: parts and the whole network -------------------------------------------- */

static gn_model *tiny_model(int ratio, float dropout, uint64_t seed) {
    gn_config cfg = gn_config_default();
    cfg.width = 0.25f;
    cfg.in_chans = 1;
    cfg.num_classes = 10;
    cfg.stem_stride = 1;
    cfg.ghost_ratio = ratio;
    cfg.dropout = dropout;
    gn_model *m = NULL;
    gn_error e;
    if (gn_model_create(&cfg, &m, &e) != GN_OK || gn_model_init_random(m, seed) != GN_OK) {
        fprintf(stderr, "tiny model: %s\n", e.message);
        exit(1);
    }
    /* Non-identity BN affine parameters (gamma in [0.5, 1.5], beta in [-0.3, 0.3]). */
    gn_rng rng;
    gn_rng_seed(&rng, seed + 1);
    for (int i = 0; i < m->arch->num_tensors; i++) {
        const gn_tensor_desc *t = &m->arch->tensors[i];
        if (!t->is_bn || !t->is_param) continue;
        const int is_gamma = strstr(t->name, ".weight") != NULL;
        fill(&rng, m->data + t->offset, t->numel, is_gamma ? 0.5f : -0.3f, is_gamma ? 1.5f : 0.3f);
    }
    return m;
}

typedef struct part_case {
    gn_train_graph *g;
    int block;
    gn_train_part part;
    float *x, *y, *r;
    size_t yn;
} part_case;

static double part_loss(void *ctx) {
    part_case *c = ctx;
    gn_train_part_run(c->g, c->block, c->part, c->x, c->y, NULL, NULL, NULL);
    return dot_d(c->y, c->r, c->yn);
}

/* Finite differences over the part's input and a few entries of each of its parameters. */
static void check_part(gn_model *m, const char *label, int block, gn_train_part part,
                       gn_rng *rng) {
    gn_train_graph *g = NULL;
    gn_error e;
    gn_train_options o = gn_train_options_default();
    const int batch = 2, size = 16;
    gn_status st = gn_train_graph_create(m, batch, size, size, &o, &g, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    if (st != GN_OK) return;
    gn_part_shape s;
    CHECK(gn_train_part_shape(g, block, part, &s, NULL) == GN_OK);
    const size_t xn = (size_t)batch * s.in_c * s.in_h * s.in_w;
    const size_t yn = (size_t)batch * s.out_c * s.out_h * s.out_w;
    part_case c = {g, block, part, alloc_floats(xn), alloc_floats(yn), alloc_floats(yn), yn};
    fill(rng, c.x, xn, -1, 1.5f);
    fill(rng, c.r, yn, -1, 1);
    float *dx = alloc_floats(xn);
    float *grads = gn_train_grads(g);
    memset(grads, 0, m->arch->total_floats * sizeof(float));
    CHECK(gn_train_part_run(g, block, part, c.x, c.y, c.r, dx, &e) == GN_OK);
    CHECK(gn_train_freeze_relu(g, 1, &e) == GN_OK); /* see train.h: no kinks to cross */
    kStep = 1e-2;
    kFloor = 1e-3 * max_abs(grads, m->arch->total_floats);

    char what[128];
    snprintf(what, sizeof what, "%s dx", label);
    fd_check(what, c.x, dx, xn, 40, part_loss, &c, rng, NULL);
    const char *bname = m->arch->blocks[block].name;
    const char *sub = part == GN_PART_GHOST1 ? "ghost1." : part == GN_PART_GHOST2 ? "ghost2." : "";
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s.%s", bname, sub);
    fd_stats total = {0};
    int tensors = 0;
    for (int i = 0; i < m->arch->num_tensors; i++) {
        const gn_tensor_desc *t = &m->arch->tensors[i];
        if (!t->is_param || strncmp(t->name, prefix, strlen(prefix)) != 0) continue;
        fd_check(t->name, m->data + t->offset, grads + t->offset, t->numel, 6, part_loss, &c,
                 rng, &total);
        tensors++;
    }
    printf("  %-40s params: %d tensors, max rel err %.2e (%d checked, %d kinks)\n", label,
           tensors, total.max_err, total.checked, total.kinks);
    CHECK(tensors > 0);
    kStep = 1e-3;
    kFloor = 0.0;
    free(c.x);
    free(c.y);
    free(c.r);
    free(dx);
    gn_train_graph_free(g);
}

static void test_parts(gn_rng *rng) {
    printf("Ghost modules and bottlenecks (width 0.25, batch 2, 16x16)\n");
    gn_model *m = tiny_model(2, 0.0f, 7);
    const gn_arch *a = m->arch;
    /* blocks.3.0: stride 2, SE, projection; blocks.2.0 / blocks.4.0: identity (4.0 with SE). */
    CHECK(a->blocks[3].has_se && a->blocks[3].has_projection && a->blocks[3].has_dw);
    CHECK(!a->blocks[2].has_projection && !a->blocks[2].has_se);
    CHECK(!a->blocks[4].has_projection && a->blocks[4].has_se);
    check_part(m, "ghost module blocks.1.0.ghost1", 1, GN_PART_GHOST1, rng);
    check_part(m, "ghost module blocks.3.0.ghost2 (linear)", 3, GN_PART_GHOST2, rng);
    check_part(m, "bottleneck blocks.3.0 (s2, SE, proj)", 3, GN_PART_BLOCK, rng);
    check_part(m, "bottleneck blocks.2.0 (identity)", 2, GN_PART_BLOCK, rng);
    check_part(m, "bottleneck blocks.4.0 (identity, SE)", 4, GN_PART_BLOCK, rng);
    gn_model_free(m);

    /* s = 3: init = ceil(out/3) and the last ghost maps are dropped (truncated cheap conv). */
    m = tiny_model(3, 0.0f, 9);
    CHECK(m->arch->blocks[3].ghost1.kept_new < m->arch->blocks[3].ghost1.new_c);
    check_part(m, "ghost module s=3 blocks.3.0.ghost1", 3, GN_PART_GHOST1, rng);
    check_part(m, "bottleneck s=3 blocks.3.0", 3, GN_PART_BLOCK, rng);
    gn_model_free(m);
}

typedef struct net_case {
    gn_train_graph *g;
    const float *x;
    const int *labels;
} net_case;

static double net_loss(void *ctx) {
    net_case *c = ctx;
    double loss = 0.0;
    gn_train_loss(c->g, c->x, c->labels, NULL, &loss, NULL, NULL);
    return loss;
}

/* The whole network's loss (label smoothing 0.1, dropout 0.2 with a fixed mask) against the
 * gradient block, a few sampled entries of every learnable tensor. */
static void test_network(gn_rng *rng) {
    printf("whole network (width 0.25, in_chans 1, 10 classes, batch 4, 24x24, stem stride 1)\n");
    gn_model *m = tiny_model(2, 0.2f, 11);
    /* 24x24 ends at 2x2: every BN normalises at least 16 values (at 1x1 with 3 images the
     * last BNs are so curved that no finite-difference step is both smooth and noise-free). */
    const int batch = 4, size = 24;
    gn_train_options o = gn_train_options_default();
    o.label_smoothing = 0.1f;
    o.seed = 5;
    gn_train_graph *g = NULL, *g_fd = NULL;
    gn_error e;
    gn_status st = gn_train_graph_create(m, batch, size, size, &o, &g, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    if (st == GN_OK) st = gn_train_graph_create(m, batch, size, size, &o, &g_fd, &e);
    if (st != GN_OK) {
        gn_train_graph_free(g);
        gn_model_free(m);
        return;
    }
    const size_t xn = (size_t)batch * size * size;
    float *x = alloc_floats(xn);
    fill(rng, x, xn, -1.5f, 1.5f);
    int labels[4] = {4, 9, 0, 3};
    float loss = 0.0f;
    /* Running statistics do not enter a training-mode forward, so updating them is harmless;
     * the finite differences use a second graph still at step 0 (same dropout mask). */
    CHECK(gn_train_forward_backward(g, x, labels, &loss, NULL, &e) == GN_OK);
    double loss2 = 0.0;
    CHECK(gn_train_loss(g_fd, x, labels, NULL, &loss2, NULL, NULL) == GN_OK);
    CHECK_NEAR(loss, loss2, 1e-6);
    printf("  loss %.6f\n", (double)loss);

    CHECK(gn_train_freeze_relu(g_fd, 1, &e) == GN_OK); /* pattern of the forward above */
    kStep = 1e-2;
    net_case c = {g_fd, x, labels};
    const float *grads = gn_train_grads(g);
    /* Some gradients are exactly zero in theory (a BN bias followed by conv + training-mode
     * BN): judge those against the network's gradient scale, not their own rounding noise. */
    kFloor = 1e-3 * max_abs(grads, m->arch->total_floats);
    fd_stats total = {0};
    double worst = 0.0;
    const char *worst_name = "";
    int tensors = 0;
    for (int i = 0; i < m->arch->num_tensors; i++) {
        const gn_tensor_desc *t = &m->arch->tensors[i];
        if (!t->is_param) continue;
        fd_stats one = {0};
        fd_check(t->name, m->data + t->offset, grads + t->offset, t->numel, 3, net_loss, &c, rng,
                 &one);
        if (one.max_err > worst) {
            worst = one.max_err;
            worst_name = t->name;
        }
        if (one.max_err > total.max_err) total.max_err = one.max_err;
        total.checked += one.checked;
        total.kinks += one.kinks;
        tensors++;
    }
    printf("  %d tensors: max rel err %.2e (%s), %d checked, %d kinks\n", tensors, total.max_err,
           worst_name, total.checked, total.kinks);
    CHECK(total.kinks <= total.checked / 20 + 2);
    kStep = 1e-3;
    kFloor = 0.0;

    /* Eval mode differs from training mode (running statistics) and matches a session. */
    float *logits = alloc_floats((size_t)batch * 10), *want = alloc_floats((size_t)batch * 10);
    CHECK(gn_train_eval(g, x, batch, logits, &e) == GN_OK);
    gn_session *s = NULL;
    gn_session_options so = gn_session_options_default();
    so.num_threads = 1;
    so.force_reference = 1; /* the oracle path: this checks the graph, not the fast kernels */
    CHECK(gn_session_create(m, batch, size, size, &so, &s, &e) == GN_OK);
    if (s) {
        CHECK(gn_session_run(s, x, want, &e) == GN_OK);
        const double d = rel_diff(logits, want, (size_t)batch * 10);
        printf("  eval forward vs inference session: %.2e\n", d);
        CHECK(d < 1e-4);
        gn_session_free(s);
    }
    /* The graph on the reference kernels: same gradients as on the fast ones. */
    gn_train_options ro = o;
    ro.force_reference = 1;
    gn_train_graph *gr = NULL;
    CHECK(gn_train_graph_create(m, batch, size, size, &ro, &gr, &e) == GN_OK);
    if (gr) {
        /* g's gradients are still those of its first step: same step, same dropout mask. */
        CHECK(gn_train_forward_backward(gr, x, labels, NULL, NULL, &e) == GN_OK);
        /* Per tensor, max |diff| relative to its largest gradient, or to 1% of the network's
         * when smaller: both run float kernels (products summed in different orders), and a
         * gradient that is small by cancellation (a BN gamma) keeps only the absolute
         * precision of the larger terms it came from. */
        const double net_max = max_abs(gn_train_grads(gr), m->arch->total_floats);
        double worst = 0.0;
        const char *worst_t = "";
        for (int i = 0; i < m->arch->num_tensors; i++) {
            const gn_tensor_desc *t = &m->arch->tensors[i];
            if (!t->is_param) continue;
            const float *a = gn_train_grads(g) + t->offset, *b = gn_train_grads(gr) + t->offset;
            double dmax = 0.0;
            for (size_t j = 0; j < t->numel; j++) dmax = fmax(dmax, fabs((double)a[j] - b[j]));
            const double d = dmax / fmax(max_abs(b, t->numel), 1e-2 * net_max);
            if (d > worst) {
                worst = d;
                worst_t = t->name;
            }
        }
        printf("  fast vs reference kernels in the graph: gradients %.2e (%s)\n", worst, worst_t);
        CHECK(worst < 1e-4);
        gn_train_graph_free(gr);
    }
    /* Same seed and step: the same loss, bit for bit. */
    CHECK(gn_train_freeze_relu(g_fd, 0, &e) == GN_OK);
    double again = 0.0;
    gn_train_loss(g_fd, x, labels, NULL, &again, NULL, NULL);
    CHECK(again == loss2);
    int bad[4] = {0, 10, 1, 2};
    CHECK(gn_train_forward_backward(g, x, bad, NULL, NULL, &e) == GN_ERR_INVALID_ARG);
    free(logits);
    free(want);
    free(x);
    gn_train_graph_free(g);
    gn_train_graph_free(g_fd);
    gn_model_free(m);
}

/* Bit-for-bit the same step on 1, 2 and 3 threads, and again on 3: gradients, loss and the
 * updated running statistics (every reduction is owned by one task, in a fixed order). */
static void test_threads(void) {
    printf("thread count independence (width 0.25, batch 6, 20x20)\n");
    gn_rng own;
    gn_rng_seed(&own, 98);
    gn_rng *rng = &own;
    gn_model *m = tiny_model(2, 0.2f, 13);
    const size_t total = m->arch->total_floats;
    const int batch = 6, size = 20;
    float *x = alloc_floats((size_t)batch * size * size), *init = alloc_floats(total);
    float *grads0 = alloc_floats(total), *state0 = alloc_floats(total);
    fill(rng, x, (size_t)batch * size * size, -1.5f, 1.5f);
    memcpy(init, m->data, total * sizeof(float));
    int labels[6] = {1, 7, 3, 3, 0, 9};
    /* a small network: split every job anyway, except in the last run (the default policy) */
    const int threads[] = {1, 2, 3, 3, 2}, split[] = {1, 1, 1, 1, 0};
    float loss0 = 0.0f;
    for (int i = 0; i < 5; i++) {
        gn_train_options o = gn_train_options_default();
        o.num_threads = threads[i];
        o.split_all = split[i];
        o.seed = 3;
        gn_train_graph *g = NULL;
        gn_error e;
        memcpy(m->data, init, total * sizeof(float));
        CHECK(gn_train_graph_create(m, batch, size, size, &o, &g, &e) == GN_OK);
        if (!g) break;
        float loss = 0.0f;
        CHECK(gn_train_forward_backward(g, x, labels, &loss, NULL, &e) == GN_OK);
        if (i == 0) {
            memcpy(grads0, gn_train_grads(g), total * sizeof(float));
            memcpy(state0, m->data, total * sizeof(float));
            loss0 = loss;
        } else {
            const int same = bitwise_equal(gn_train_grads(g), grads0, total) &&
                             bitwise_equal(m->data, state0, total) && loss == loss0;
            printf("  %d threads%s: %s\n", threads[i],
                   i == 3 ? " (again)" : i == 4 ? " (small jobs serial)" : "",
                   same ? "identical" : "DIFFERENT");
            CHECK(same);
        }
        gn_train_graph_free(g);
    }
    free(x);
    free(init);
    free(grads0);
    free(state0);
    gn_model_free(m);
}

/* ---- optimizers and schedules -------------------------------------------------------------- */

/* PyTorch's update rules, written out in double for one tensor over two steps. */
static void expected_update(const gn_optim_options *o, float lr, double wd, const float *p0,
                            const float *g1, const float *g2, size_t n, double *out) {
    for (size_t i = 0; i < n; i++) {
        double p = p0[i], buf = 0.0, m = 0.0, v = 0.0;
        for (int t = 1; t <= 2; t++) {
            const double g = t == 1 ? g1[i] : g2[i];
            if (o->kind == GN_OPTIM_SGD) {
                double d = g + wd * p;
                if (o->momentum > 0) {
                    buf = t == 1 ? d : o->momentum * buf + d;
                    d = o->nesterov ? d + o->momentum * buf : buf;
                }
                p -= lr * d;
            } else {
                p *= 1.0 - lr * wd;
                m = o->beta1 * m + (1 - o->beta1) * g;
                v = o->beta2 * v + (1 - o->beta2) * g * g;
                const double bc1 = 1 - pow(o->beta1, t), bc2 = 1 - pow(o->beta2, t);
                p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + o->eps);
            }
        }
        out[i] = p;
    }
}

static void check_optimizer_rule(const char *name, const gn_optim_options *o, gn_rng *rng) {
    gn_model *m = tiny_model(2, 0.0f, 3);
    const gn_arch *a = m->arch;
    float *g1 = alloc_floats(a->total_floats), *g2 = alloc_floats(a->total_floats);
    float *p0 = alloc_floats(a->total_floats);
    fill(rng, g1, a->total_floats, -1, 1);
    fill(rng, g2, a->total_floats, -1, 1);
    memcpy(p0, m->data, a->total_floats * sizeof(float));
    gn_optimizer *opt = NULL;
    gn_error e;
    const float lr = 0.05f;
    CHECK(gn_optimizer_create(m, o, &opt, &e) == GN_OK);
    if (!opt) return;
    CHECK(gn_optimizer_step(opt, m, g1, lr, &e) == GN_OK);
    CHECK(gn_optimizer_step(opt, m, g2, lr, &e) == GN_OK);
    double worst = 0.0;
    int stats_untouched = 1;
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *t = &a->tensors[i];
        if (!t->is_param) {
            stats_untouched &= memcmp(m->data + t->offset, p0 + t->offset,
                                      t->numel * sizeof(float)) == 0;
            continue;
        }
        const double wd = o->no_decay_bn_bias && t->ndim <= 1 ? 0.0 : o->weight_decay;
        double *want = calloc(t->numel, sizeof(double));
        if (!want) continue;
        expected_update(o, lr, wd, p0 + t->offset, g1 + t->offset, g2 + t->offset, t->numel, want);
        for (size_t j = 0; j < t->numel; j++) {
            /* Relative to the update, less the float rounding of the weight itself. */
            const double d = (fabs(m->data[t->offset + j] - want[j]) - 4e-7 * fabs(want[j])) /
                             fmax(fabs(want[j] - p0[t->offset + j]), 1e-3);
            if (d > worst) worst = d;
        }
        free(want);
    }
    printf("  %-40s max rel err of the update %.2e\n", name, worst);
    CHECK_MSG(worst < 1e-4, "%s: update differs by %.3g", name, worst);
    CHECK(stats_untouched);
    CHECK(gn_optimizer_steps(opt) == 2);
    gn_optimizer_free(opt);
    free(g1);
    free(g2);
    free(p0);
    gn_model_free(m);
}

static void test_optimizers(gn_rng *rng) {
    printf("optimizers (two steps against PyTorch's rules in double)\n");
    gn_optim_options o = gn_optim_options_default();
    o.weight_decay = 0.01f;
    check_optimizer_rule("sgd nesterov", &o, rng);
    o.no_decay_bn_bias = 1;
    check_optimizer_rule("sgd nesterov, no decay on BN/bias", &o, rng);
    o.nesterov = 0;
    check_optimizer_rule("sgd momentum", &o, rng);
    o.momentum = 0.0f;
    check_optimizer_rule("sgd plain", &o, rng);
    o = gn_optim_options_default();
    o.kind = GN_OPTIM_ADAMW;
    o.weight_decay = 0.05f;
    check_optimizer_rule("adamw", &o, rng);

    printf("learning-rate schedules\n");
    CHECK_NEAR(gn_lr_warmup_cosine(0, 0.4f, 5, 105, 0.0f), 0.08, 1e-7);
    CHECK_NEAR(gn_lr_warmup_cosine(4, 0.4f, 5, 105, 0.0f), 0.4, 1e-7);
    CHECK_NEAR(gn_lr_warmup_cosine(5, 0.4f, 5, 105, 0.0f), 0.4, 1e-7);
    CHECK_NEAR(gn_lr_warmup_cosine(55, 0.4f, 5, 105, 0.1f), 0.25, 1e-7);
    CHECK_NEAR(gn_lr_warmup_cosine(105, 0.4f, 5, 105, 0.1f), 0.1, 1e-7);
    CHECK_NEAR(gn_lr_warmup_cosine(30, 0.4f, 0, 120, 0.0f), 0.2 * (1 + cos(3.14159265358979 / 4)), 1e-6);
    CHECK_NEAR(gn_lr_step_decay(0, 0.1f, 30, 0.1f), 0.1, 1e-8);
    CHECK_NEAR(gn_lr_step_decay(29, 0.1f, 30, 0.1f), 0.1, 1e-8);
    CHECK_NEAR(gn_lr_step_decay(30, 0.1f, 30, 0.1f), 0.01, 1e-8);
    CHECK_NEAR(gn_lr_step_decay(95, 0.1f, 30, 0.1f), 1e-4, 1e-9);
}

/* The weight average over a few steps against its definition in double: the warm-up rate
 * (1 + t) / (10 + t) while it is below the decay, then the decay; every tensor averaged, BN
 * running statistics included; swapping twice restores the training weights. */
static void test_ema(gn_rng *rng) {
    printf("weight average (EMA with warm-up, against the formula in double)\n");
    gn_model *m = tiny_model(2, 0.0f, 3);
    const size_t n = m->arch->total_floats;
    double *want = calloc(n, sizeof(double));
    float *trained = alloc_floats(n);
    gn_ema *ema = NULL;
    gn_error e;
    CHECK(gn_ema_create(m, 1.0f, &ema, &e) == GN_ERR_INVALID_ARG && ema == NULL);
    CHECK(gn_ema_create(m, 0.75f, &ema, &e) == GN_OK);
    if (!ema || !want) goto out;
    for (size_t i = 0; i < n; i++) want[i] = m->data[i];
    /* Rates 0.1, 2/11, 0.25, 4/13, then the decay 0.75 caps (1 + t) / (10 + t) from t = 26. */
    const int steps = 30;
    for (int t = 0; t < steps; t++) {
        fill(rng, m->data, n, -2, 2); /* stands in for an optimizer step, stats included */
        const double r = fmin(0.75, (1.0 + t) / (10.0 + t));
        for (size_t i = 0; i < n; i++) want[i] = r * want[i] + (1.0 - r) * m->data[i];
        CHECK(gn_ema_update(ema, m, &e) == GN_OK);
    }
    CHECK(gn_ema_updates(ema) == steps);
    memcpy(trained, m->data, n * sizeof(float));
    gn_ema_swap(ema, m);
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(m->data[i] - want[i]));
    printf("  max abs err after %d updates %.2e\n", steps, worst);
    CHECK(worst < 1e-5);
    CHECK(memcmp(gn_ema_buffer(ema), trained, n * sizeof(float)) == 0);
    gn_ema_swap(ema, m);
    CHECK(memcmp(m->data, trained, n * sizeof(float)) == 0);
    /* Decay 0: the average is the latest weights. */
    gn_ema_free(ema);
    ema = NULL;
    CHECK(gn_ema_create(m, 0.0f, &ema, &e) == GN_OK);
    if (!ema) goto out;
    fill(rng, m->data, n, -2, 2);
    CHECK(gn_ema_update(ema, m, &e) == GN_OK);
    CHECK(memcmp(gn_ema_buffer(ema), m->data, n * sizeof(float)) == 0);
out:
    gn_ema_free(ema);
    free(trained);
    free(want);
    gn_model_free(m);
}

static void test_errors(void) {
    printf("argument checks\n");
    gn_config cfg = gn_config_default();
    cfg.width = 0.25f;
    cfg.num_classes = 10;
    gn_model *m = NULL;
    CHECK(gn_model_create(&cfg, &m, NULL) == GN_OK);
    gn_train_graph *g = NULL;
    gn_error e;
    /* batch 1 at 32x32 with stem stride 2 ends at 1x1: BN would see a single value. */
    CHECK(gn_train_graph_create(m, 1, 32, 32, NULL, &g, &e) == GN_ERR_INVALID_ARG);
    CHECK(g == NULL);
    gn_train_options o = gn_train_options_default();
    o.freeze_bn = 1;
    CHECK(gn_train_graph_create(m, 1, 32, 32, &o, &g, &e) == GN_OK);
    gn_train_graph_free(g);
    CHECK(gn_train_graph_create(m, 0, 32, 32, NULL, &g, &e) == GN_ERR_INVALID_ARG);
    gn_model_free(m);
}

int main(void) {
    gn_rng rng;
    gn_rng_seed(&rng, 1234);
    test_conv(&rng);
    test_fast_kernels();
    test_bn(&rng);
    test_activations(&rng);
    test_pool(&rng);
    test_linear(&rng);
    test_se(&rng);
    test_loss(&rng);
    test_dropout();
    test_parts(&rng);
    test_network(&rng);
    test_threads();
    test_optimizers(&rng);
    test_ema(&rng);
    test_errors();
    TEST_MAIN_END();
}
