/* Parity with PyTorch: fixtures from tests/reference/make_fixtures.py (our PyTorch reference
 * with randomised BN statistics) give the same logits here within 1e-4 * max|logit|, for every
 * configuration in the manifest; configs with taps also match at every bottleneck. */
#include "io/safetensors.h"
#include "test_util.h"

static const char *fixtures_dir(int argc, char **argv) {
    if (argc > 1) return argv[1];
    const char *env = getenv("GN_FIXTURES");
    return env ? env : "fixtures/parity";
}

/* max|a - b| over max|b|; prints a one-line report. */
static double compare(const char *what, const float *got, const float *want, size_t n,
                      double *scale_out) {
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= diff)) diff = d;
        if (fabs(want[i]) > scale) scale = fabs(want[i]);
    }
    if (scale_out) *scale_out = scale;
    printf("  %-24s max|diff| %.3g  max|ref| %.3g  ratio %.3g\n", what, diff, scale,
           scale > 0 ? diff / scale : diff);
    return scale > 0 ? diff / scale : (diff == 0 ? 0 : INFINITY);
}

static const float *st_floats(const gn_st_file *f, const char *name, size_t numel, float **owned) {
    const gn_st_tensor *t = gn_st_find(f, name);
    *owned = NULL;
    if (!t || t->numel != numel) return NULL;
    *owned = malloc(numel * sizeof(float));
    if (*owned && gn_st_to_f32(f, t, *owned, NULL) != GN_OK) {
        free(*owned);
        *owned = NULL;
    }
    return *owned;
}

static void check_taps(const gn_session *s, const gn_st_file *io, int batch) {
    for (size_t i = 0; i < io->num_tensors; i++) {
        const gn_st_tensor *t = &io->tensors[i];
        if (strncmp(t->name, "tap.", 4) != 0) continue;
        const float *ours;
        int c, h, w;
        gn_error e;
        gn_status st = gn_session_tap(s, t->name + 4, &ours, &c, &h, &w, &e);
        CHECK_MSG(st == GN_OK, "tap %s: %s", t->name, e.message);
        if (st != GN_OK) continue;
        CHECK_MSG(t->numel == (size_t)batch * c * h * w, "tap %s: %zu elements in the fixture",
                  t->name, t->numel);
        if (t->numel != (size_t)batch * c * h * w) continue;
        float *want;
        st_floats(io, t->name, t->numel, &want);
        if (!want) continue;
        CHECK_MSG(compare(t->name + 4, ours, want, t->numel, NULL) <= 1e-4, "tap %s", t->name);
        free(want);
    }
}

static void run_config(const char *dir, const char *name, int batch, int height, int width,
                       int taps, int with_reference) {
    char path[1024];
    gn_error e = {0};
    gn_model *m = NULL;
    snprintf(path, sizeof path, "%s/%s.weights.safetensors", dir, name);
    gn_status st = gn_model_load(path, NULL, &m, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    if (st != GN_OK) return;
    const gn_config *c = gn_model_config(m);
    printf("%s: width %g s=%d d=%d in %d classes %d stem %d, batch %d, %dx%d\n", name,
           (double)c->width, c->ghost_ratio, c->ghost_dw_size, c->in_chans, c->num_classes,
           c->stem_stride, batch, height, width);
    gn_st_file io;
    snprintf(path, sizeof path, "%s/%s.io.safetensors", dir, name);
    st = gn_st_read(path, &io, &e);
    CHECK_MSG(st == GN_OK, "%s", e.message);
    if (st != GN_OK) {
        gn_model_free(m);
        return;
    }
    const size_t in_n = (size_t)batch * c->in_chans * height * width;
    const size_t out_n = (size_t)batch * c->num_classes;
    float *input, *want;
    st_floats(&io, "input", in_n, &input);
    st_floats(&io, "logits", out_n, &want);
    float *got = malloc(out_n * sizeof *got);
    CHECK_MSG(input && want && got, "%s: fixture tensors missing or of the wrong size", name);
    for (int ref = 0; input && want && got && ref <= with_reference; ref++) {
        gn_session_options o = gn_session_options_default();
        o.keep_taps = taps;
        o.force_reference = ref;
        gn_session *s = NULL;
        st = gn_session_create(m, batch, height, width, &o, &s, &e);
        CHECK_MSG(st == GN_OK, "%s", e.message);
        if (st != GN_OK) break;
        CHECK(gn_session_run(s, input, got, &e) == GN_OK);
        double ratio = compare(ref ? "logits (reference path)" : "logits", got, want, out_n, NULL);
        CHECK_MSG(ratio <= 1e-4, "%s: logits differ from PyTorch by %.3g of max|logit|", name,
                  ratio);
        if (taps && !ref) check_taps(s, &io, batch);
        gn_session_free(s);
    }
    free(input);
    free(want);
    free(got);
    gn_st_free(&io);
    gn_model_free(m);
}

/* sizes.txt: the reference's parameter and MAC counts for several configs. */
static void check_sizes(const char *dir) {
    char path[1024], name[64], width[32];
    snprintf(path, sizeof path, "%s/sizes.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "%s missing", path);
    if (!f) return;
    long long params, macs;
    int h, w, s, d, in, classes, stem, lines = 0;
    while (fscanf(f, "%63s %lld %lld %d %d %31s %d %d %d %d %d", name, &params, &macs, &h, &w,
                  width, &s, &d, &in, &classes, &stem) == 11) {
        gn_config c = gn_config_default();
        c.width = strtof(width, NULL);
        c.ghost_ratio = s;
        c.ghost_dw_size = d;
        c.in_chans = in;
        c.num_classes = classes;
        c.stem_stride = stem;
        gn_model *m = NULL;
        CHECK(gn_model_create(&c, &m, NULL) == GN_OK);
        if (!m) continue;
        CHECK_MSG((long long)gn_model_param_count(m) == params, "%s: %zu params, reference %lld",
                  name, gn_model_param_count(m), params);
        CHECK_MSG(gn_model_macs(m, h, w) == macs, "%s: %lld MACs, reference %lld", name,
                  (long long)gn_model_macs(m, h, w), macs);
        printf("size %-12s params %lld MACs %lld: match\n", name, params, macs);
        gn_model_free(m);
        lines++;
    }
    fclose(f);
    CHECK(lines >= 3);
}

int main(int argc, char **argv) {
    const char *dir = fixtures_dir(argc, argv);
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "no parity fixtures at %s (run tests/reference/make_fixtures.py)\n", dir);
        const char *req = getenv("GN_REQUIRE_REFERENCE");
        if (req && strcmp(req, "1") == 0) return 1;
        return TEST_SKIP_CODE;
    }
    char name[128];
    int batch, h, w, taps, configs = 0;
    while (fscanf(f, "%127s %d %d %d %d", name, &batch, &h, &w, &taps) == 5) {
        /* The reference kernels are slow: run them where the input is small. */
        run_config(dir, name, batch, h, w, taps, h * w <= 64 * 64);
        configs++;
    }
    fclose(f);
    CHECK_MSG(configs >= 10, "only %d configurations in the manifest", configs);
    check_sizes(dir);
    TEST_MAIN_END();
}
