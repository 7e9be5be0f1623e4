/* The Ghost module and the Ghost bottleneck on their own, against PyTorch: fixtures from
 * tests/reference/make_fixtures.py hold each block's state dict (PyTorch's key names), an
 * input and the eval-mode output. Also: every key and shape of the block matches the state
 * dict, and argument checking. */
#include "io/safetensors.h"
#include "test_util.h"

static int create_block(const char *kind, const char *args, gn_block **b, gn_error *e) {
    double v[8];
    int n = sscanf(args, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7]);
    if (strcmp(kind, "ghost_module") == 0 && n == 7) {
        gn_ghost_module_config c = {(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4],
                                    (int)v[5], (int)v[6]};
        return gn_block_create_ghost_module(&c, b, e) == GN_OK;
    }
    if (strcmp(kind, "bottleneck") == 0 && n == 8) {
        gn_bottleneck_config c = {(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4],
                                  (float)v[5], (int)v[6], (int)v[7]};
        return gn_block_create_bottleneck(&c, b, e) == GN_OK;
    }
    return 0;
}

static void run_block(const char *dir, const char *name, const char *kind, const char *args,
                      int batch, int h, int w) {
    char path[1024];
    gn_error e = {0};
    gn_block *b = NULL;
    CHECK_MSG(create_block(kind, args, &b, &e), "%s: %s", name, e.message);
    if (!b) return;
    gn_st_file f;
    snprintf(path, sizeof path, "%s/%s.block.safetensors", dir, name);
    CHECK_MSG(gn_st_read(path, &f, &e) == GN_OK, "%s", e.message);
    /* Same keys and shapes as PyTorch's state dict (minus counters, plus input/output). */
    size_t matched = 0;
    for (size_t i = 0; i < gn_block_tensor_count(b); i++) {
        gn_tensor_info t;
        gn_block_tensor(b, i, &t);
        const gn_st_tensor *s = gn_st_find(&f, t.name);
        int same = s && s->ndim == t.ndim && s->numel == t.numel;
        for (int d = 0; same && d < t.ndim; d++) same = s->shape[d] == t.shape[d];
        CHECK_MSG(same, "%s: tensor %s missing or of another shape in PyTorch's state dict", name,
                  t.name);
        if (same && gn_st_to_f32(&f, s, t.data, NULL) == GN_OK) matched++;
    }
    CHECK_MSG(matched + 2 == f.num_tensors, "%s: %zu of %zu PyTorch tensors matched", name,
              matched, f.num_tensors - 2);
    int oc, oh, ow;
    CHECK(gn_block_output_shape(b, h, w, &oc, &oh, &ow) == GN_OK);
    const gn_st_tensor *in = gn_st_find(&f, "input"), *out = gn_st_find(&f, "output");
    CHECK(in && out && out->numel == (size_t)batch * oc * oh * ow);
    if (in && out && out->numel == (size_t)batch * oc * oh * ow) {
        float *x = malloc(in->numel * sizeof *x), *want = malloc(out->numel * sizeof *want);
        float *got = malloc(out->numel * sizeof *got);
        gn_st_to_f32(&f, in, x, NULL);
        gn_st_to_f32(&f, out, want, NULL);
        CHECK_MSG(gn_block_forward(b, batch, h, w, x, got, &e) == GN_OK, "%s", e.message);
        double diff = 0, scale = 0;
        for (size_t i = 0; i < out->numel; i++) {
            diff = fmax(diff, fabs((double)got[i] - want[i]));
            scale = fmax(scale, fabs(want[i]));
        }
        printf("%-20s %-12s out %dx%dx%d  max|diff| %.3g  max|ref| %.3g\n", name, kind, oc, oh,
               ow, diff, scale);
        CHECK_MSG(diff <= 1e-4 * scale, "%s: differs from PyTorch by %g (max %g)", name, diff,
                  scale);
        free(x);
        free(want);
        free(got);
    }
    gn_st_free(&f);
    gn_block_free(b);
}

static void test_arguments(void) {
    gn_error e;
    gn_block *b = (gn_block *)&e;
    gn_ghost_module_config g = {8, 16, 2, 2, 3, 1, 1}; /* even primary kernel */
    CHECK(gn_block_create_ghost_module(&g, &b, &e) == GN_ERR_INVALID_ARG && b == NULL);
    g.kernel = 1;
    g.ratio = 1;
    CHECK(gn_block_create_ghost_module(&g, &b, &e) == GN_ERR_INVALID_ARG);
    gn_bottleneck_config c = {16, 48, 16, 3, 1, 1.5f, 2, 3}; /* se ratio > 1 */
    CHECK(gn_block_create_bottleneck(&c, &b, &e) == GN_ERR_INVALID_ARG && strstr(e.message, "se_ratio"));
    c.se_ratio = 0.25f;
    CHECK(gn_block_create_bottleneck(&c, &b, &e) == GN_OK);
    /* 16 -> 48 -> 16, k3, SE: ghost1 (16->24 1x1 + 24 dw3x3 + 2 BNs), se, ghost2 (48->8 +
     * 8 dw3x3 + 2 BNs), identity shortcut. */
    const long long want = (16 * 24 + 24 * 9 + 4 * 24) + (48 * 12 + 12 + 12 * 48 + 48) +
                           (48 * 8 + 8 * 9 + 4 * 8);
    CHECK_MSG((long long)gn_block_param_count(b) == want, "%zu params, want %lld",
              gn_block_param_count(b), want);
    gn_tensor_info t;
    CHECK(gn_block_find_tensor(b, "se.conv_reduce.bias", &t) == GN_OK && t.numel == 12);
    CHECK(gn_block_find_tensor(b, "shortcut.0.weight", &t) == GN_ERR_INVALID_ARG);
    float x[4] = {0};
    CHECK(gn_block_forward(b, 0, 1, 1, x, x, &e) == GN_ERR_INVALID_ARG);
    gn_block_free(b);
}

int main(int argc, char **argv) {
    test_arguments();
    const char *dir = argc > 1 ? argv[1] : getenv("GN_FIXTURES");
    char path[1024];
    snprintf(path, sizeof path, "%s/blocks.txt", dir ? dir : ".");
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "no block fixtures at %s\n", path);
        const char *req = getenv("GN_REQUIRE_REFERENCE");
        if (req && strcmp(req, "1") == 0) return 1;
        TEST_MAIN_END();
    }
    char name[128], kind[32], args[128];
    int batch, h, w, blocks = 0;
    while (fscanf(f, "%127s %31s %127s %d %d %d", name, kind, args, &batch, &h, &w) == 6) {
        run_block(dir, name, kind, args, batch, h, w);
        blocks++;
    }
    fclose(f);
    CHECK(blocks >= 6);
    TEST_MAIN_END();
}
