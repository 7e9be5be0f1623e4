/* Networks from .net descriptions: parser errors name file and line, sizes, finite-difference
 * gradients of every operation through the training graph, eval forward against PyTorch
 * (fixtures from tests/reference/make_net_fixtures.py, when GN_NET_FIXTURES is set), save and
 * load round trip. Run from the repository root or with GN_SOURCE_DIR set. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "ghostnet.h"
#include "io/safetensors.h"
#include "model/model_internal.h"
#include "net/net.h"
#include "test_util.h"
#include "train/train.h"

static const char *source_dir(void) {
    const char *s = getenv("GN_SOURCE_DIR");
    return s ? s : ".";
}

static gn_config small_config(int in_chans, int classes) {
    gn_config c = gn_config_default();
    c.in_chans = in_chans;
    c.num_classes = classes;
    c.stem_stride = 1;
    return c;
}

static gn_status build_text(const char *text, const gn_config *c, float width, gn_model **m,
                            gn_error *err) {
    return gn_model_create_net(text, strlen(text), "test.net", width, c, m, err);
}

/* ---- parsing -------------------------------------------------------------------------------- */

static void expect_error(const char *text, const char *line_tag, const char *needle) {
    gn_config c = small_config(3, 10);
    gn_model *m = NULL;
    gn_error err = {0};
    gn_status st = build_text(text, &c, 0.0f, &m, &err);
    CHECK_MSG(st != GN_OK && m == NULL, "accepted: %s", text);
    CHECK_MSG(strstr(err.message, line_tag) != NULL, "'%s' lacks '%s'", err.message, line_tag);
    CHECK_MSG(strstr(err.message, needle) != NULL, "'%s' lacks '%s'", err.message, needle);
    gn_model_free(m);
}

static void test_parse_errors(void) {
    expect_error("conv 8 k=3\ncnv 8\n", "test.net:2", "unknown layer");
    expect_error("conv 8 k=4\n", "test.net:1", "odd");
    expect_error("conv 8 q=4\n", "test.net:1", "unknown option");
    expect_error("conv x\n", "test.net:1", "channel");
    expect_error("conv 0\n", "test.net:1", "channel");
    expect_error("residual\n conv 3 k=3\n", "test.net:", "missing 'end'");
    expect_error("conv 8\nend\n", "test.net:2", "without a block");
    expect_error("conv 8\nshortcut\n", "test.net:2", "shortcut");
    expect_error("repeat 0\nconv 8\nend\n", "test.net:1", "repeat");
    expect_error("ghost 8 ratio=1\n", "test.net:1", "ratio");
    expect_error("dropout 1.0\n", "test.net:1", "dropout");
    expect_error("", "test.net", "empty");
    expect_error("# only a comment\n\n", "test.net", "empty");
    expect_error("width 1\nwidth 2\nlinear classes\n", "test.net:2", "width");
    expect_error("conv 8\nwidth 2\n", "test.net:2", "width");
    expect_error("residual\n conv 8 k=3\nend\nlinear classes\n", "test.net:1", "residual shapes");
    expect_error("conv 8\nlinear 7\n", "test.net:2", "classes");
    expect_error("conv 6 groups=4\nlinear classes\n", "test.net:1", "groups");
    expect_error("conv 8 relu=1\n", "test.net:1", "unknown option");
    expect_error("conv 16 =k3 bn\n", "test.net:1", "no name"); /* found by fuzz_netdesc */
    expect_error("conv 8 bn=1\n", "test.net:1", "bad value");
    expect_error("conv 8\x01\n", "test.net:1", "printable");
    /* the spatial problems appear when sizes are known */
    gn_config c = small_config(1, 10);
    gn_model *m = NULL;
    gn_error err = {0};
    CHECK(build_text("conv 8 k=3\nlinear classes\n", &c, 0.0f, &m, &err) == GN_OK);
    int vh[8], vw[8];
    CHECK(m && gn_net_spatial(m->arch->net, 5, 5, vh, vw, &err) == GN_ERR_SHAPE);
    CHECK_MSG(strstr(err.message, "1x1") != NULL, "%s", err.message);
    gn_model_free(m);
    m = NULL;
    CHECK(build_text("maxpool k=3\navgpool\nlinear classes\n", &c, 0.0f, &m, &err) == GN_OK);
    CHECK(m && gn_net_spatial(m->arch->net, 2, 2, vh, vw, &err) == GN_ERR_SHAPE);
    gn_model_free(m);

    /* the files of tests/nets_bad/ each say what their error must mention */
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/nets_bad", source_dir());
    DIR *d = opendir(dir);
    int files = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".net") != 0) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        uint8_t *text = NULL;
        size_t len = 0;
        if (gn_read_file(path, 1 << 20, &text, &len, &err) != GN_OK) continue;
        char expect[128] = "";
        const char *tag = strstr((const char *)text, "# expect:");
        if (tag && len > 0) sscanf(tag + 9, " %127[^\n]", expect);
        gn_model *bad = NULL;
        gn_status st = gn_model_create_net((const char *)text, len, path, 0.0f, &c, &bad, &err);
        if (st == GN_OK) { /* some problems only show at a size */
            int hs[4096], ws[4096];
            st = bad->arch->net->num_values <= 4096
                     ? gn_net_spatial(bad->arch->net, 28, 28, hs, ws, &err)
                     : GN_OK;
        }
        CHECK_MSG(st != GN_OK, "%s was accepted", path);
        for (char *p = err.message; *p; p++) *p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
        CHECK_MSG(expect[0] && strstr(err.message, expect) != NULL, "%s: '%s' lacks '%s'", path,
                  err.message, expect);
        CHECK_MSG(strstr(err.message, e->d_name) != NULL, "%s: message '%s' lacks the file",
                  path, err.message);
        gn_model_free(bad);
        free(text);
        files++;
    }
    if (d) closedir(d);
    CHECK_MSG(files >= 8, "only %d files in %s", files, dir);
}

/* ---- sizes by hand ----------------------------------------------------------------------- */

static void test_sizes(void) {
    /* conv 3->8 k3 (216 + BN 16), ghost 8 k1 ratio 2 (primary 8->4: 32 + 8, cheap 4->4 dw3:
     * 36 + 8), se (8 -> make_divisible(2, 4) = 4: 32+4+32+8), avgpool, linear 8->10 (80+10) */
    const char *text = "conv 8 k=3 bn relu\nghost 8 relu\nse\navgpool\nlinear classes\n";
    gn_config c = small_config(3, 10);
    gn_model *m = NULL;
    gn_error err = {0};
    CHECK(build_text(text, &c, 0.0f, &m, &err) == GN_OK);
    if (!m) return;
    CHECK(gn_model_param_count(m) == 232 + 40 + 44 + 76 + 90);
    /* at 6x6: conv 36*8*27, primary 36*4*8, cheap 36*4*9, se 2*8*4, linear 80 */
    CHECK(gn_model_macs(m, 6, 6) == 36 * 8 * 27 + 36 * 4 * 8 + 36 * 4 * 9 + 64 + 80);
    gn_tensor_info info;
    CHECK(gn_model_find_tensor(m, "layers.1.cheap_operation.0.weight", &info) == GN_OK &&
          info.shape[0] == 4 && info.shape[1] == 1 && info.shape[2] == 3);
    CHECK(gn_model_find_tensor(m, "layers.2.conv_reduce.weight", &info) == GN_OK &&
          info.shape[0] == 4 && info.shape[1] == 8);
    gn_model_free(m);

    /* width scaling: make_divisible(16 * 0.5, 4) = 8; 16! stays; repeat numbers on */
    const char *w = "width 1.0 divisor 4\nrepeat 2\nconv 16 k=1\nend\nconv 16! k=1\navgpool\n"
                    "linear classes\n";
    CHECK(build_text(w, &c, 0.5f, &m, &err) == GN_OK);
    if (!m) return;
    CHECK(gn_model_find_tensor(m, "layers.1.conv.weight", &info) == GN_OK &&
          info.shape[0] == 8 && info.shape[1] == 8);
    CHECK(gn_model_find_tensor(m, "layers.2.conv.weight", &info) == GN_OK &&
          info.shape[0] == 16 && info.shape[1] == 8);
    gn_model_free(m);
}

/* ---- finite differences ------------------------------------------------------------------ */

/* Every operation once: conv with bias and no BN, ghost (with truncation: 7 channels at s=3),
 * SE, standalone BN and activation, dwconv with a multiplier, maxpool, a residual with a
 * projection and an activation after the add, avgpool, linear with and without activation.
 * Hard-swish and hard-sigmoid rather than ReLU: their kinks sit at +-3, where few
 * BN-normalised values fall (ReLU's derivative is tested in test_grad and test_train_parity). */
static const char kGradNet[] =
    "conv 6 k=3 bias hswish\n"
    "residual\n"
    "  ghost 7 k=3 ratio=3 dw=3 hswish\n"
    "  se ratio=0.5 divisor=2\n"
    "  ghost 6 k=1\n"
    "end hsigmoid\n"
    "bn hswish\n"
    "residual\n"
    "  dwconv k=3 s=2 mult=2 bn\n"
    "  conv 12 k=1 bn\n"
    "shortcut\n"
    "  conv 12 k=1 s=2 bn\n"
    "end\n"
    "hsigmoid\n"
    "maxpool k=2\n"
    "avgpool\n"
    "linear 9 hswish\n"
    "linear classes\n";

static double loss_at(gn_train_graph *g, const float *x, const int *labels) {
    double l = 0;
    gn_train_loss(g, x, labels, NULL, &l, NULL, NULL);
    return l;
}

static void test_gradients(void) {
    gn_config c = small_config(2, 5);
    gn_model *m = NULL;
    gn_error err = {0};
    CHECK(build_text(kGradNet, &c, 0.0f, &m, &err) == GN_OK);
    if (!m) {
        fprintf(stderr, "%s\n", err.message);
        return;
    }
    gn_model_init_random(m, 7);
    /* non-trivial BN affine parameters */
    gn_rng rng;
    gn_rng_seed(&rng, 3);
    for (size_t i = 0; i < gn_model_tensor_count(m); i++) {
        gn_tensor_info t;
        gn_model_tensor(m, i, &t);
        size_t n = strlen(t.name);
        if (m->arch->tensors[i].is_bn && n > 7 && strcmp(t.name + n - 7, ".weight") == 0)
            for (size_t j = 0; j < t.numel; j++) t.data[j] = 0.5f + gn_rng_uniform(&rng);
        if (m->arch->tensors[i].is_bn && n > 5 && strcmp(t.name + n - 5, ".bias") == 0)
            for (size_t j = 0; j < t.numel; j++) t.data[j] = gn_rng_uniform(&rng) - 0.5f;
    }
    const int B = 3, H = 9, W = 8;
    gn_train_options o = gn_train_options_default();
    o.num_threads = 2;
    o.label_smoothing = 0.1f;
    gn_train_graph *g = NULL;
    CHECK(gn_train_graph_create(m, B, H, W, &o, &g, &err) == GN_OK);
    if (!g) {
        fprintf(stderr, "%s\n", err.message);
        gn_model_free(m);
        return;
    }
    float x[3 * 2 * 9 * 8];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = 2.0f * gn_rng_normal(&rng);
    const int labels[3] = {1, 4, 0};
    float loss = 0;
    CHECK(gn_train_forward_backward(g, x, labels, &loss, NULL, &err) == GN_OK);
    const float *grads = gn_train_grads(g);
    /* the step moved the running statistics: FD uses training-mode batch statistics only */
    int tensors_checked = 0, worst_tensor = -1;
    double worst = 0;
    for (int ti = 0; ti < m->arch->num_tensors; ti++) {
        const gn_tensor_desc *t = &m->arch->tensors[ti];
        if (!t->is_param) continue;
        /* a random direction within this tensor: (L(p+hv) - L(p-hv)) / 2h against g.v */
        float *p = m->data + t->offset;
        float *v = malloc(t->numel * sizeof *v), *saved = malloc(t->numel * sizeof *saved);
        if (!v || !saved) {
            free(v);
            free(saved);
            continue;
        }
        memcpy(saved, p, t->numel * sizeof *p);
        double gv = 0, vv = 0;
        for (size_t j = 0; j < t->numel; j++) {
            v[j] = gn_rng_normal(&rng);
            gv += (double)v[j] * grads[t->offset + j];
            vv += (double)v[j] * v[j];
        }
        /* Two step sizes: a kink of some hswish/maxpool crossed by one step is rarely crossed
         * by the other, and float rounding is small at both; the better agreement counts. */
        double rel = INFINITY, fd = 0;
        for (int k = 0; k < 2; k++) {
            const double h = (k ? 3e-4 : 1e-3) / sqrt(vv / t->numel);
            for (size_t j = 0; j < t->numel; j++) p[j] = saved[j] + (float)h * v[j];
            double lp = loss_at(g, x, labels);
            for (size_t j = 0; j < t->numel; j++) p[j] = saved[j] - (float)h * v[j];
            double lm = loss_at(g, x, labels);
            memcpy(p, saved, t->numel * sizeof *p);
            const double f = (lp - lm) / (2 * h);
            const double r = fabs(f - gv) / fmax(fmax(fabs(f), fabs(gv)), 3e-3);
            if (r < rel) {
                rel = r;
                fd = f;
            }
        }
        if (rel > worst) {
            worst = rel;
            worst_tensor = ti;
        }
        CHECK_MSG(rel < 3e-2, "%s: finite difference %.6g, backward %.6g", t->name, fd, gv);
        tensors_checked++;
        free(v);
        free(saved);
    }
    printf("finite differences: %d tensors, worst relative error %.2e (%s)\n", tensors_checked,
           worst, worst_tensor >= 0 ? m->arch->tensors[worst_tensor].name : "-");
    CHECK(tensors_checked > 30);
    /* gradients do not depend on the thread count */
    gn_train_graph *g1 = NULL;
    o.num_threads = 1;
    CHECK(gn_train_graph_create(m, B, H, W, &o, &g1, &err) == GN_OK);
    if (g1) {
        float *copy = malloc(m->arch->total_floats * sizeof *copy);
        gn_train_forward_backward(g, x, labels, NULL, NULL, &err);
        if (copy) memcpy(copy, gn_train_grads(g), m->arch->total_floats * sizeof *copy);
        gn_train_forward_backward(g1, x, labels, NULL, NULL, &err);
        CHECK(copy && memcmp(copy, gn_train_grads(g1), m->arch->total_floats * sizeof *copy) == 0);
        free(copy);
        gn_train_graph_free(g1);
    }
    gn_train_graph_free(g);
    gn_model_free(m);
}

/* ---- save and load -------------------------------------------------------------------------- */

static void test_round_trip(void) {
    gn_config c = small_config(1, 4);
    gn_model *m = NULL, *back = NULL;
    gn_error err = {0};
    CHECK(build_text(kGradNet, &c, 0.0f, &m, &err) == GN_OK);
    if (!m) return;
    gn_model_init_random(m, 11);
    const char *path = "test_net_roundtrip.safetensors";
    CHECK(gn_model_save(m, path, &err) == GN_OK);
    CHECK_MSG(gn_model_load(path, NULL, &back, &err) == GN_OK, "%s", err.message);
    if (back) {
        CHECK(back->arch->net != NULL);
        CHECK(back->arch->total_floats == m->arch->total_floats);
        CHECK(memcmp(back->data, m->data, m->arch->total_floats * sizeof(float)) == 0);
        /* the same outputs through a session */
        gn_session *s1 = NULL, *s2 = NULL;
        float x[2 * 10 * 10], y1[8], y2[8];
        gn_rng rng;
        gn_rng_seed(&rng, 5);
        for (int i = 0; i < 200; i++) x[i] = gn_rng_normal(&rng);
        CHECK(gn_session_create(m, 2, 10, 10, NULL, &s1, &err) == GN_OK);
        CHECK(gn_session_create(back, 2, 10, 10, NULL, &s2, &err) == GN_OK);
        if (s1 && s2) {
            CHECK(gn_session_run(s1, x, y1, &err) == GN_OK);
            CHECK(gn_session_run(s2, x, y2, &err) == GN_OK);
            CHECK(memcmp(y1, y2, sizeof y1) == 0);
        }
        gn_session_free(s1);
        gn_session_free(s2);
    }
    remove(path);
    gn_model_free(back);
    gn_model_free(m);
}

/* ---- PyTorch parity --------------------------------------------------------------------- */

static void test_parity(const char *dir) {
    char path[1200];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "no %s", path);
    if (!f) return;
    char name[128], net[512];
    double width;
    int in_chans, classes, stem, ratio, dw, batch, h, w;
    long long params, macs;
    int configs = 0;
    while (fscanf(f, "%127s %511s %lf %d %d %d %d %d %d %d %d %lld %lld", name, net, &width,
                  &in_chans, &classes, &stem, &ratio, &dw, &batch, &h, &w, &params, &macs) == 13) {
        configs++;
        char npath[1200];
        snprintf(npath, sizeof npath, "%s/%s", source_dir(), net);
        uint8_t *text = NULL;
        size_t len = 0;
        gn_error err = {0};
        CHECK_MSG(gn_read_file(npath, 1 << 20, &text, &len, &err) == GN_OK, "%s", err.message);
        if (!text) continue;
        gn_config c = small_config(in_chans, classes);
        c.stem_stride = stem;
        c.ghost_ratio = ratio ? ratio : 2;
        c.ghost_dw_size = dw ? dw : 3;
        gn_model *m = NULL;
        gn_status st = gn_model_create_net((const char *)text, len, npath, (float)width, &c, &m,
                                           &err);
        free(text);
        CHECK_MSG(st == GN_OK, "%s: %s", name, err.message);
        if (st != GN_OK) continue;
        CHECK_MSG((long long)gn_model_param_count(m) == params, "%s: params %zu vs PyTorch %lld",
                  name, gn_model_param_count(m), params);
        CHECK_MSG(gn_model_macs(m, h, w) == macs, "%s: MACs %lld vs PyTorch %lld", name,
                  (long long)gn_model_macs(m, h, w), macs);
        gn_st_file fx;
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
        if (gn_st_read(path, &fx, &err) != GN_OK) {
            CHECK_MSG(0, "%s", err.message);
            gn_model_free(m);
            continue;
        }
        /* every model tensor comes from the fixture, and nothing else is there */
        int missing = 0, extra = 0;
        for (int i = 0; i < m->arch->num_tensors; i++) {
            const gn_tensor_desc *t = &m->arch->tensors[i];
            const gn_st_tensor *ft = gn_st_find(&fx, t->name);
            if (!ft || ft->numel != t->numel) {
                if (missing++ < 3) fprintf(stderr, "%s: tensor %s missing or resized\n", name, t->name);
                continue;
            }
            gn_st_to_f32(&fx, ft, m->data + t->offset, &err);
        }
        for (size_t i = 0; i < fx.num_tensors; i++)
            if (fx.tensors[i].name[0] != '_' && gn_arch_find_tensor(m->arch, fx.tensors[i].name) < 0 &&
                extra++ < 3)
                fprintf(stderr, "%s: unexpected tensor %s\n", name, fx.tensors[i].name);
        CHECK_MSG(missing == 0 && extra == 0, "%s: %d missing, %d unexpected", name, missing, extra);
        const gn_st_tensor *xi = gn_st_find(&fx, "__input"), *yo = gn_st_find(&fx, "__logits");
        const size_t nin = (size_t)batch * in_chans * h * w, nout = (size_t)batch * classes;
        float *x = malloc(nin * sizeof *x), *ref = malloc(nout * sizeof *ref),
              *y = malloc(nout * sizeof *y);
        gn_session *s = NULL;
        if (xi && yo && x && ref && y && xi->numel == nin && yo->numel == nout &&
            gn_st_to_f32(&fx, xi, x, &err) == GN_OK && gn_st_to_f32(&fx, yo, ref, &err) == GN_OK &&
            gn_session_create(m, batch, h, w, NULL, &s, &err) == GN_OK &&
            gn_session_run(s, x, y, &err) == GN_OK) {
            double maxdiff = 0, maxref = 0;
            for (size_t i = 0; i < nout; i++) {
                maxdiff = fmax(maxdiff, fabs((double)y[i] - ref[i]));
                maxref = fmax(maxref, fabs((double)ref[i]));
            }
            const double ratio_err = maxdiff / fmax(maxref, 1e-6);
            printf("%-22s params %10zu MACs %12lld max|diff|/max|logit| %.2e\n", name,
                   gn_model_param_count(m), (long long)gn_model_macs(m, h, w), ratio_err);
            CHECK_MSG(ratio_err < 1e-4, "%s: logits differ by %.3g of their range", name, ratio_err);
        } else {
            CHECK_MSG(0, "%s: could not run (%s)", name, err.message);
        }
        gn_session_free(s);
        free(x);
        free(ref);
        free(y);
        gn_st_free(&fx);
        gn_model_free(m);
    }
    fclose(f);
    CHECK_MSG(configs >= 8, "only %d configurations in %s", configs, path);
}

int main(void) {
    test_parse_errors();
    test_sizes();
    test_gradients();
    test_round_trip();
    const char *fixtures = getenv("GN_NET_FIXTURES");
    if (fixtures) test_parity(fixtures);
    TEST_MAIN_END();
}
