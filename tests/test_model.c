/* Architecture, sizes and sessions: the spec's exact parameter and MAC counts, config checks,
 * and whole-network agreement between the fast kernels and the reference kernels. */
#include "ghostnet.h"
#include "model/arch.h"
#include "test_util.h"

static void test_make_divisible(void) {
    /* max(4, int(v + 2) // 4 * 4), plus 4 if that drops below 0.9 v */
    CHECK(gn_make_divisible(16 * 0.5, 4) == 8);
    CHECK(gn_make_divisible(16 * 1.3, 4) == 20);
    CHECK(gn_make_divisible(1.0, 4) == 4);
    CHECK(gn_make_divisible(72 * 0.25, 4) == 20); /* 18 -> int(20)//4*4 = 20 */
    CHECK(gn_make_divisible(184 * 1.3, 4) == 240); /* 239.2 -> 240 */
    CHECK(gn_make_divisible(10.0, 4) == 12);       /* 12 >= 9 */
    CHECK(gn_make_divisible(9.9, 4) == 12);        /* int(11.9)=11 -> 8 < 8.91 -> 12 */
}

static void test_sizes(void) {
    static const struct {
        float width;
        long long params, macs;
    } want[] = {{0.5f, 2587292, 42328152}, {1.0f, 5182508, 141150512}, {1.3f, 7358820, 227003256}};
    for (int i = 0; i < 3; i++) {
        gn_config c = gn_config_default();
        c.width = want[i].width;
        gn_model *m = NULL;
        gn_error e;
        CHECK(gn_model_create(&c, &m, &e) == GN_OK);
        if (!m) continue;
        CHECK_MSG((long long)gn_model_param_count(m) == want[i].params, "width %g: %zu params",
                  (double)c.width, gn_model_param_count(m));
        /* The spec gives 42.33M / 141.15M / 227.0M; the exact counts are fixed here so that any
         * change to the counting shows up. */
        long long macs = gn_model_macs(m, 224, 224);
        CHECK_MSG(macs == want[i].macs, "width %g: %lld MACs", (double)c.width, macs);
        /* timm's state dict: 512 entries at 1.0x = our tensors + one counter per BN. */
        size_t bn = 0;
        for (size_t t = 0; t < gn_model_tensor_count(m); t++) {
            gn_tensor_info info;
            gn_model_tensor(m, t, &info);
            size_t n = strlen(info.name);
            bn += n > 12 && strcmp(info.name + n - 12, "running_mean") == 0;
        }
        if (c.width == 1.0f) CHECK(gn_model_tensor_count(m) + bn == 512);

        /* The layer table's top-level rows add up to the totals. */
        size_t count = 0;
        CHECK(gn_model_layers(m, 224, 224, NULL, 0, &count, &e) == GN_OK);
        gn_layer_info *rows = calloc(count, sizeof *rows);
        CHECK(gn_model_layers(m, 224, 224, rows, count, &count, &e) == GN_OK);
        long long sp = 0, sm = 0;
        for (size_t r = 0; r < count; r++)
            if (rows[r].depth == 0) {
                sp += rows[r].params;
                sm += rows[r].macs;
            }
        CHECK(sp == want[i].params);
        CHECK(sm == want[i].macs);
        /* Spatial sizes at 224: 112 after the stem, 7 at the end. */
        CHECK(rows[0].out_h == 112 && rows[0].out_c == gn_make_divisible(16 * c.width, 4));
        CHECK(rows[count - 1].out_c == 1000);
        free(rows);
        gn_model_free(m);
    }
}

static void test_config_validation(void) {
    gn_error e;
    gn_config c = gn_config_default();
    CHECK(gn_config_validate(&c, &e) == GN_OK);
    c.ghost_dw_size = 4;
    CHECK(gn_config_validate(&c, &e) == GN_ERR_INVALID_ARG && strstr(e.message, "odd"));
    c = gn_config_default();
    c.width = 0.0f;
    CHECK(gn_config_validate(&c, &e) == GN_ERR_INVALID_ARG && strstr(e.message, "width"));
    c = gn_config_default();
    c.stem_stride = 3;
    CHECK(gn_config_validate(&c, &e) == GN_ERR_INVALID_ARG);
    c = gn_config_default();
    c.ghost_ratio = 1;
    CHECK(gn_config_validate(&c, &e) == GN_ERR_INVALID_ARG);
    gn_model *m = (gn_model *)&c; /* must be reset to NULL on failure */
    CHECK(gn_model_create(&c, &m, &e) == GN_ERR_INVALID_ARG && m == NULL);
}

static void fill_input(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* Fast kernels vs reference kernels on a whole ablation network, and batch consistency. */
static void test_session_paths(void) {
    gn_config c = gn_config_default();
    c.width = 0.5f;
    c.ghost_ratio = 3;
    c.ghost_dw_size = 5;
    c.num_classes = 10;
    gn_model *m = NULL;
    gn_error e;
    CHECK(gn_model_create(&c, &m, &e) == GN_OK);
    if (!m) return;
    gn_model_init_random(m, 3);
    const int batch = 3, size = 33;
    const size_t per = (size_t)3 * size * size;
    float *x = malloc(per * batch * sizeof *x);
    fill_input(x, per * batch, 11);
    float fast[30], ref[30], single[10];
    gn_session_options o = gn_session_options_default();
    gn_session *s = NULL;
    CHECK(gn_session_create(m, batch, size, size, &o, &s, &e) == GN_OK);
    CHECK(gn_session_run(s, x, fast, &e) == GN_OK);
    gn_session_free(s);
    o.force_reference = 1;
    CHECK(gn_session_create(m, batch, size, size, &o, &s, &e) == GN_OK);
    CHECK(gn_session_run(s, x, ref, &e) == GN_OK);
    gn_session_free(s);
    float scale = 0.0f, diff = 0.0f;
    for (int i = 0; i < 30; i++) {
        scale = fmaxf(scale, fabsf(ref[i]));
        diff = fmaxf(diff, fabsf(ref[i] - fast[i]));
    }
    CHECK_MSG(diff <= 1e-4f * scale && scale > 0.0f, "fast vs ref diff %g, scale %g",
              (double)diff, (double)scale);
    /* image 2 alone gives the same logits as inside the batch */
    o.force_reference = 0;
    CHECK(gn_session_create(m, 1, size, size, &o, &s, &e) == GN_OK);
    CHECK(gn_session_run(s, x + 2 * per, single, &e) == GN_OK);
    gn_session_free(s);
    for (int i = 0; i < 10; i++) CHECK_NEAR(single[i], fast[20 + i], 1e-5 * scale);

    /* taps: present only when asked for, shapes as the architecture says */
    const float *tap;
    int tc, th, tw;
    o.keep_taps = 1;
    CHECK(gn_session_create(m, 1, 64, 64, &o, &s, &e) == GN_OK);
    CHECK(gn_session_tap(s, "blocks.7.0", &tap, &tc, &th, &tw, &e) == GN_OK);
    CHECK(tc == gn_make_divisible(160 * 0.5, 4) && th == 2 && tw == 2);
    CHECK(gn_session_tap(s, "blocks.6.4", &tap, &tc, &th, &tw, &e) == GN_OK && th == 4);
    CHECK(gn_session_tap(s, "nope", &tap, &tc, &th, &tw, &e) == GN_ERR_INVALID_ARG);
    gn_session_free(s);

    CHECK(gn_session_create(m, 0, 64, 64, NULL, &s, &e) == GN_ERR_INVALID_ARG && s == NULL);
    CHECK(gn_session_create(m, 1, 0, 64, NULL, &s, &e) == GN_ERR_INVALID_ARG);
    free(x);
    gn_model_free(m);
}

int main(void) {
    test_make_divisible();
    test_sizes();
    test_config_validation();
    test_session_paths();
    TEST_MAIN_END();
}
