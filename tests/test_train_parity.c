/* Training parity with PyTorch: fixtures from tests/reference/make_train_fixtures.py (width
 * 0.5, in_chans 1, stem stride 1, 10 classes, 28x28, batch 4, label smoothing 0.1, dropout 0).
 * The same weights and batch must give the same logits and loss, every parameter's gradient
 * within 1e-4 of that tensor's max |grad|, the same BN running statistics, and the same
 * weights after one and two steps of SGD (momentum 0.9, Nesterov, weight decay on every
 * parameter, and a larger one with the BN/bias exemption) and of AdamW. Updates are compared as differences from the
 * weights before the step, so they are not hidden under the weights' own size.
 *
 * Some gradients are zero in theory: a BN bias followed by a conv and a training-mode BN (which
 * removes any per-channel constant) gets only rounding noise, ~1e-9 here against a largest
 * gradient of ~1. Such tensors (found from PyTorch's gradients) are judged against the largest
 * gradient, or update, of the whole network instead of their own.
 *
 * The second step starts from PyTorch's weights and statistics after the first (with our own
 * optimizer state): the second step's gradients are so sensitive to the weights here that the
 * 1e-5 relative differences of the first update would move some of them by percents (PyTorch
 * against itself shows the same), which would hide what step 2 checks: the momentum buffers
 * and AdamW moments carried over from step 1. */
#include <float.h>

#include "io/safetensors.h"
#include "model/model_internal.h"
#include "test_util.h"
#include "train/train.h"

static const double kGradTol = 1e-4;
static const double kStatTol = 1e-4;
static const double kStepTol = 1e-4;

typedef struct fixture {
    gn_st_file io;
    int batch, height, width;
    float smoothing, sgd_lr, sgd_wd, sgd_nd_wd, adamw_lr, adamw_eps, adamw_wd;
    float *x1, *x2;
    int *y1, *y2;
    double grad_max;           /* largest |gradient| of step 1 (PyTorch's) */
    char zero_grad[GN_MAX_TENSORS]; /* 1: gradient is rounding noise (see above) */
} fixture;

/* A fixture tensor as floats (malloc'd), or NULL with a failed check. */
static float *load(const fixture *fx, const char *name, size_t numel) {
    const gn_st_tensor *t = gn_st_find(&fx->io, name);
    CHECK_MSG(t && t->numel == numel, "fixture tensor %s missing or not %zu values", name, numel);
    if (!t || t->numel != numel) return NULL;
    float *p = malloc(numel * sizeof *p);
    if (p && gn_st_to_f32(&fx->io, t, p, NULL) != GN_OK) {
        free(p);
        p = NULL;
    }
    return p;
}

static int *load_labels(const fixture *fx, const char *name) {
    float *f = load(fx, name, (size_t)fx->batch);
    int *l = malloc((size_t)fx->batch * sizeof *l);
    if (!f || !l) {
        free(f);
        free(l);
        return NULL;
    }
    for (int i = 0; i < fx->batch; i++) l[i] = (int)f[i];
    free(f);
    return l;
}

/* max |got - want| / max(max |want|, floor). With bases, differences from them are compared,
 * less the rounding of the float values themselves (2 ulp of the larger operand). */
static double ratio(const float *got, const float *got_base, const float *want,
                    const float *want_base, size_t n, double floor) {
    double diff = 0.0, scale = floor;
    for (size_t i = 0; i < n; i++) {
        const double g = (double)got[i] - (got_base ? got_base[i] : 0.0);
        const double w = (double)want[i] - (want_base ? want_base[i] : 0.0);
        double d = fabs(g - w);
        if (want_base) d -= 2 * FLT_EPSILON * fmax(fabs(want[i]), fabs(want_base[i]));
        if (!(d <= diff)) diff = d;
        if (fabs(w) > scale) scale = fabs(w);
    }
    return scale > 0 ? diff / scale : (diff == 0 ? 0 : INFINITY);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (b ? b[i] : 0.0)));
    return m;
}

typedef struct tally {
    double worst;
    char worst_name[96];
    int tensors, mismatches;
} tally;

/* Tolerance for updates: AdamW's lr * m / (sqrt(v) + eps) magnifies gradient differences by
 * up to max|g| / (4 eps) relative to lr. */
static double step_tol;

static void record(tally *t, const char *what, const char *name, double r, double tol) {
    t->tensors++;
    if (r > t->worst) {
        t->worst = r;
        snprintf(t->worst_name, sizeof t->worst_name, "%s", name);
    }
    if (!(r <= tol)) {
        if (t->mismatches < 8) fprintf(stderr, "  %s mismatch: %s ratio %.3g\n", what, name, r);
        t->mismatches++;
    }
}

static void report(const char *what, const tally *t, double tol) {
    printf("  %-30s %3d tensors, max ratio %.2e (%s)\n", what, t->tensors, t->worst,
           t->worst_name[0] ? t->worst_name : "-");
    CHECK_MSG(t->mismatches == 0 && t->tensors > 0, "%s: %d of %d tensors beyond %g", what,
              t->mismatches, t->tensors, tol);
}

/* Every state tensor (params and running stats) of the model against "<prefix><name>", as
 * differences from `base` (ours) and "<base_prefix><name>" (theirs; NULL: the same base). */
static void compare_states(const fixture *fx, const gn_model *m, const float *base,
                           const char *prefix, const char *base_prefix, const char *what) {
    const gn_arch *a = m->arch;
    tally t = {0};
    /* The largest update of any learnable tensor: the scale for zero-gradient tensors. */
    double largest = 0.0;
    for (int i = 0; i < a->num_tensors; i++)
        if (a->tensors[i].is_param)
            largest = fmax(largest, max_abs_diff(m->data + a->tensors[i].offset,
                                                 base + a->tensors[i].offset, a->tensors[i].numel));
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *d = &a->tensors[i];
        char key[160];
        snprintf(key, sizeof key, "%s%s", prefix, d->name);
        float *want = load(fx, key, d->numel);
        float *want_base = NULL;
        if (base_prefix) {
            snprintf(key, sizeof key, "%s%s", base_prefix, d->name);
            want_base = load(fx, key, d->numel);
        }
        if (want && (!base_prefix || want_base)) {
            const float *b = base + d->offset;
            record(&t, what, d->name,
                   ratio(m->data + d->offset, b, want, want_base ? want_base : b, d->numel,
                         fx->zero_grad[i] ? largest : 0.0),
                   step_tol);
        }
        free(want);
        free(want_base);
    }
    report(what, &t, step_tol);
}

/* Finds PyTorch's largest gradient and the tensors whose gradient is only rounding noise. */
static void classify_gradients(fixture *fx, const gn_model *m) {
    const gn_arch *a = m->arch;
    double tmax[GN_MAX_TENSORS] = {0};
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *d = &a->tensors[i];
        char key[160];
        snprintf(key, sizeof key, "grad.%s", d->name);
        float *want = d->is_param ? load(fx, key, d->numel) : NULL;
        if (want) tmax[i] = max_abs_diff(want, NULL, d->numel);
        fx->grad_max = fmax(fx->grad_max, tmax[i]);
        free(want);
    }
    int zeros = 0;
    for (int i = 0; i < a->num_tensors; i++) {
        fx->zero_grad[i] = a->tensors[i].is_param && tmax[i] < 1e-6 * fx->grad_max;
        zeros += fx->zero_grad[i];
    }
    printf("  largest |gradient| %.3g; %d tensors with gradient ~0 in theory (max below %.1e)\n",
           fx->grad_max, zeros, 1e-6 * fx->grad_max);
}

static void check_gradients(const fixture *fx, gn_model *m, const float *init) {
    gn_error e = {0};
    gn_train_options o = gn_train_options_default();
    o.label_smoothing = fx->smoothing;
    gn_train_graph *g = NULL;
    gn_status st = gn_train_graph_create(m, fx->batch, fx->height, fx->width, &o, &g, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    if (st != GN_OK) return;
    const gn_arch *a = m->arch;
    const size_t nl = (size_t)fx->batch * a->config.num_classes;
    float *logits = malloc(nl * sizeof *logits), *want_logits = load(fx, "logits1", nl);
    float *want_loss = load(fx, "loss1", 1);
    if (logits && want_logits && want_loss) {
        CHECK(gn_train_loss(g, fx->x1, fx->y1, logits, NULL, NULL, &e) == GN_OK);
        const double r = ratio(logits, NULL, want_logits, NULL, nl, 0.0);
        printf("  %-30s max ratio %.2e\n", "logits (training mode)", r);
        CHECK_MSG(r <= 1e-4, "logits differ by %.3g of max|logit|", r);
        float loss = 0.0f;
        CHECK(gn_train_forward_backward(g, fx->x1, fx->y1, &loss, NULL, &e) == GN_OK);
        printf("  %-30s %.7f vs PyTorch %.7f\n", "loss", (double)loss, (double)want_loss[0]);
        CHECK_NEAR(loss, want_loss[0], 1e-5 * fabs(want_loss[0]));
    }
    free(logits);
    free(want_logits);
    free(want_loss);

    tally grads = {0}, stats = {0};
    const float *gr = gn_train_grads(g);
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *d = &a->tensors[i];
        char key[160];
        snprintf(key, sizeof key, "%s%s", d->is_param ? "grad." : "stats1.", d->name);
        float *want = load(fx, key, d->numel);
        if (!want) continue;
        if (d->is_param)
            record(&grads, "gradient", d->name,
                   ratio(gr + d->offset, NULL, want, NULL, d->numel,
                         fx->zero_grad[i] ? fx->grad_max : 0.0),
                   kGradTol);
        else
            record(&stats, "running stat", d->name,
                   ratio(m->data + d->offset, init + d->offset, want, init + d->offset, d->numel,
                         0.0),
                   kStatTol);
        free(want);
    }
    report("gradients", &grads, kGradTol);
    report("running stats (update)", &stats, kStatTol);
    gn_train_graph_free(g);
}

/* Overwrites every state tensor with the fixture's "<prefix><name>". */
static void start_from(const fixture *fx, gn_model *m, const char *prefix) {
    for (int i = 0; i < m->arch->num_tensors; i++) {
        const gn_tensor_desc *d = &m->arch->tensors[i];
        char key[160];
        snprintf(key, sizeof key, "%s%s", prefix, d->name);
        float *w = load(fx, key, d->numel);
        if (w) memcpy(m->data + d->offset, w, d->numel * sizeof(float));
        free(w);
    }
}

/* Two optimizer steps (batch 1, then batch 2) from the initial weights. */
static void check_optimizer(const fixture *fx, gn_model *m, const float *init, const char *name,
                            const gn_optim_options *oo, float lr) {
    gn_error e = {0};
    memcpy(m->data, init, m->arch->total_floats * sizeof(float));
    gn_train_options o = gn_train_options_default();
    o.label_smoothing = fx->smoothing;
    gn_train_graph *g = NULL;
    gn_optimizer *opt = NULL;
    gn_status st = gn_train_graph_create(m, fx->batch, fx->height, fx->width, &o, &g, &e);
    if (st == GN_OK) st = gn_optimizer_create(m, oo, &opt, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    float *before = malloc(m->arch->total_floats * sizeof(float));
    step_tol = kStepTol;
    if (oo->kind == GN_OPTIM_ADAMW) step_tol *= fmax(1.0, fx->grad_max / (4.0 * oo->eps));
    if (st == GN_OK && before) {
        printf("%s (update tolerance %.2g)\n", name, step_tol);
        char prefix[64], base[64], what[96];
        CHECK(gn_train_forward_backward(g, fx->x1, fx->y1, NULL, NULL, &e) == GN_OK);
        CHECK(gn_optimizer_step(opt, m, gn_train_grads(g), lr, &e) == GN_OK);
        snprintf(prefix, sizeof prefix, "%s.step1.", name);
        snprintf(what, sizeof what, "step 1 (update)");
        compare_states(fx, m, init, prefix, NULL, what);

        start_from(fx, m, prefix); /* PyTorch's state after step 1 (see the top) */
        memcpy(before, m->data, m->arch->total_floats * sizeof(float));
        float loss = 0.0f;
        CHECK(gn_train_forward_backward(g, fx->x2, fx->y2, &loss, NULL, &e) == GN_OK);
        snprintf(what, sizeof what, "%s.loss2", name);
        float *want = load(fx, what, 1);
        if (want) {
            printf("  %-30s %.7f vs PyTorch %.7f\n", "loss on batch 2", (double)loss,
                   (double)want[0]);
            CHECK_NEAR(loss, want[0], 1e-5 * fabs(want[0]));
        }
        free(want);
        CHECK(gn_optimizer_step(opt, m, gn_train_grads(g), lr, &e) == GN_OK);
        snprintf(prefix, sizeof prefix, "%s.step2.", name);
        snprintf(base, sizeof base, "%s.step1.", name);
        compare_states(fx, m, before, prefix, base, "step 2 (update)");
        CHECK(gn_optimizer_steps(opt) == 2);
    }
    free(before);
    gn_optimizer_free(opt);
    gn_train_graph_free(g);
}

static int read_manifest(const char *dir, fixture *fx) {
    char path[1024];
    snprintf(path, sizeof path, "%s/train.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    const int ok = fscanf(f, "%d %d %d %f %f %f %f %f %f %f", &fx->batch, &fx->height,
                          &fx->width, &fx->smoothing, &fx->sgd_lr, &fx->sgd_wd, &fx->sgd_nd_wd,
                          &fx->adamw_lr, &fx->adamw_eps, &fx->adamw_wd) == 10;
    fclose(f);
    return ok;
}

int main(int argc, char **argv) {
    const char *env = getenv("GN_FIXTURES");
    const char *dir = argc > 1 ? argv[1] : env ? env : "fixtures/train";
    static fixture fx;
    if (!read_manifest(dir, &fx)) {
        fprintf(stderr, "no training fixtures at %s (run tests/reference/make_train_fixtures.py)\n",
                dir);
        const char *req = getenv("GN_REQUIRE_REFERENCE");
        return req && strcmp(req, "1") == 0 ? 1 : TEST_SKIP_CODE;
    }
    char path[1024];
    gn_error e = {0};
    gn_model *m = NULL;
    snprintf(path, sizeof path, "%s/train.weights.safetensors", dir);
    gn_status st = gn_model_load(path, NULL, &m, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    snprintf(path, sizeof path, "%s/train.io.safetensors", dir);
    if (st == GN_OK) st = gn_st_read(path, &fx.io, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    if (st != GN_OK) {
        gn_model_free(m);
        TEST_MAIN_END();
    }
    const gn_config *c = gn_model_config(m);
    printf("width %g, in_chans %d, stem stride %d, %d classes, dropout %g; batch %d, %dx%d, "
           "label smoothing %g\n",
           (double)c->width, c->in_chans, c->stem_stride, c->num_classes, (double)c->dropout,
           fx.batch, fx.height, fx.width, (double)fx.smoothing);
    const size_t xn = (size_t)fx.batch * c->in_chans * fx.height * fx.width;
    fx.x1 = load(&fx, "input1", xn);
    fx.x2 = load(&fx, "input2", xn);
    fx.y1 = load_labels(&fx, "labels1");
    fx.y2 = load_labels(&fx, "labels2");
    float *init = malloc(m->arch->total_floats * sizeof(float));
    if (fx.x1 && fx.x2 && fx.y1 && fx.y2 && init) {
        memcpy(init, m->data, m->arch->total_floats * sizeof(float));
        printf("step 1: forward + backward\n");
        classify_gradients(&fx, m);
        check_gradients(&fx, m, init);

        gn_optim_options sgd = gn_optim_options_default();
        sgd.weight_decay = fx.sgd_wd;
        check_optimizer(&fx, m, init, "sgd", &sgd, fx.sgd_lr);
        sgd.weight_decay = fx.sgd_nd_wd;
        sgd.no_decay_bn_bias = 1;
        check_optimizer(&fx, m, init, "sgd_nd", &sgd, fx.sgd_lr);
        gn_optim_options adamw = gn_optim_options_default();
        adamw.kind = GN_OPTIM_ADAMW;
        adamw.weight_decay = fx.adamw_wd;
        adamw.eps = fx.adamw_eps;
        check_optimizer(&fx, m, init, "adamw", &adamw, fx.adamw_lr);
    }
    free(init);
    free(fx.x1);
    free(fx.x2);
    free(fx.y1);
    free(fx.y2);
    gn_st_free(&fx.io);
    gn_model_free(m);
    TEST_MAIN_END();
}
