/* Model files: save/load round trip, metadata, F16/BF16 weights, files without metadata (as
 * timm's), and clear reports of missing, unexpected and mismatched tensors. */
#include <unistd.h>

#include "io/safetensors.h"
#include "model/model_internal.h"
#include "test_util.h"

static const char *tmp_path(const char *name) {
    static char buf[512];
    snprintf(buf, sizeof buf, "model_io_%s_%ld.safetensors", name, (long)getpid());
    return buf;
}

/* Rewrites a model's tensors through a caller-chosen edit, then saves with given metadata. */
typedef void (*edit_fn)(gn_st_write_tensor *t, size_t *n, void *ctx);

static gn_status write_variant(const gn_model *m, const char *path, edit_fn edit, void *ctx,
                               const gn_st_meta *meta, size_t num_meta) {
    const gn_arch *a = m->arch;
    size_t n = (size_t)a->num_tensors;
    gn_st_write_tensor *t = calloc(n + 4, sizeof *t);
    for (size_t i = 0; i < n; i++) {
        const gn_tensor_desc *d = &a->tensors[i];
        t[i].name = d->name;
        t[i].dtype = GN_DTYPE_F32;
        t[i].ndim = d->ndim;
        for (int k = 0; k < d->ndim; k++) t[i].shape[k] = d->shape[k];
        t[i].f32 = m->data + d->offset;
    }
    if (edit) edit(t, &n, ctx);
    gn_status st = gn_st_write(path, t, n, meta, num_meta, NULL);
    free(t);
    return st;
}

static void test_round_trip(void) {
    gn_config c = gn_config_default();
    c.width = 0.5f;
    c.ghost_ratio = 3;
    c.ghost_dw_size = 5;
    c.in_chans = 1;
    c.num_classes = 10;
    c.stem_stride = 1;
    c.dropout = 0.1f;
    gn_model *m = NULL, *back = NULL;
    gn_error e;
    CHECK(gn_model_create(&c, &m, &e) == GN_OK);
    gn_model_init_random(m, 5);
    gn_preprocess pre = *gn_model_preprocess(m);
    pre.input_size = 28;
    pre.resize_size = 32;
    pre.mean[0] = pre.mean[1] = pre.mean[2] = 0.286f;
    pre.std[0] = pre.std[1] = pre.std[2] = 0.353f;
    gn_model_set_preprocess(m, &pre);
    const char *path = tmp_path("rt");
    CHECK(gn_model_save(m, path, &e) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_OK);
    if (back) {
        const gn_config *b = gn_model_config(back);
        CHECK(b->width == 0.5f && b->ghost_ratio == 3 && b->ghost_dw_size == 5 &&
              b->in_chans == 1 && b->num_classes == 10 && b->stem_stride == 1);
        CHECK_NEAR(b->dropout, 0.1, 1e-6);
        const gn_preprocess *p = gn_model_preprocess(back);
        CHECK(p->input_size == 28 && p->resize_size == 32);
        CHECK_NEAR(p->mean[1], 0.286, 1e-6);
        CHECK_NEAR(p->std[2], 0.353, 1e-6);
        CHECK(memcmp(m->data, back->data, m->arch->total_floats * sizeof(float)) == 0);
    }
    /* Every BN has its num_batches_tracked counter, as in timm's state dicts. */
    gn_st_file f;
    CHECK(gn_st_read(path, &f, &e) == GN_OK);
    const gn_st_tensor *cnt = gn_st_find(&f, "blocks.3.0.se.conv_reduce.weight");
    CHECK(cnt != NULL);
    cnt = gn_st_find(&f, "blocks.1.0.bn_dw.num_batches_tracked");
    CHECK(cnt && cnt->dtype == GN_DTYPE_I64 && cnt->ndim == 0);
    CHECK(gn_st_meta_get(&f, "arch") && strcmp(gn_st_meta_get(&f, "arch"), "ghostnet") == 0);
    gn_st_free(&f);
    remove(path);
    gn_model_free(back);
    gn_model_free(m);
}

static void drop_classifier_bias(gn_st_write_tensor *t, size_t *n, void *ctx) {
    (void)ctx;
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].name, "classifier.bias") == 0) {
            t[i] = t[--*n];
            return;
        }
}

static void add_stray(gn_st_write_tensor *t, size_t *n, void *ctx) {
    t[*n] = t[0];
    t[*n].name = "blocks.0.0.extra.weight";
    ++*n;
    (void)ctx;
}

static void reshape_stem(gn_st_write_tensor *t, size_t *n, void *ctx) {
    (void)n;
    (void)ctx;
    t[0].shape[1] = 1; /* conv_stem.weight [16,3,3,3] -> [16,1,3,3] (fewer bytes, still valid) */
    t[0].shape[0] = 48;
}

static void test_mismatch_reports(void) {
    gn_config c = gn_config_default();
    gn_model *m = NULL, *back = NULL;
    gn_error e;
    CHECK(gn_model_create(&c, &m, &e) == GN_OK);
    const gn_st_meta meta[] = {{"arch", "ghostnet"}, {"width", "1.0"}, {"in_chans", "3"}};
    const char *path = tmp_path("bad");

    CHECK(write_variant(m, path, drop_classifier_bias, NULL, meta, 3) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_ERR_SHAPE && back == NULL);
    CHECK_MSG(strstr(e.message, "missing 'classifier.bias' [1000]") &&
                  strstr(e.message, path) && strstr(e.message, "1 missing"),
              "%s", e.message);

    CHECK(write_variant(m, path, add_stray, NULL, meta, 3) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_ERR_SHAPE);
    CHECK_MSG(strstr(e.message, "unexpected 'blocks.0.0.extra.weight'"), "%s", e.message);

    CHECK(write_variant(m, path, reshape_stem, NULL, meta, 3) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_ERR_SHAPE);
    CHECK_MSG(strstr(e.message, "'conv_stem.weight' has shape [48,1,3,3] in the file, "
                                "[16,3,3,3] expected"),
              "%s", e.message);

    /* metadata that is not a number, or another architecture */
    const gn_st_meta bad_width[] = {{"width", "wide"}};
    CHECK(write_variant(m, path, NULL, NULL, bad_width, 1) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_ERR_FORMAT && strstr(e.message, "width"));
    const gn_st_meta other[] = {{"arch", "resnet50"}};
    CHECK(write_variant(m, path, NULL, NULL, other, 1) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_ERR_UNSUPPORTED);
    const gn_st_meta bad_std[] = {{"std", "0.2,0,0.2"}};
    CHECK(write_variant(m, path, NULL, NULL, bad_std, 1) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_ERR_FORMAT && strstr(e.message, "std"));

    remove(path);
    gn_model_free(m);
}

/* A timm-style file: no architecture metadata; width, in_chans and classes from shapes. */
static void test_no_metadata(void) {
    gn_config c = gn_config_default();
    c.width = 1.3f;
    c.in_chans = 1;
    c.num_classes = 37;
    gn_model *m = NULL, *back = NULL;
    gn_error e;
    CHECK(gn_model_create(&c, &m, &e) == GN_OK);
    gn_model_init_random(m, 9);
    const gn_st_meta meta[] = {{"format", "pt"}};
    const char *path = tmp_path("nometa");
    CHECK(write_variant(m, path, NULL, NULL, meta, 1) == GN_OK);
    CHECK(gn_model_load(path, NULL, &back, &e) == GN_OK);
    if (back) {
        const gn_config *b = gn_model_config(back);
        CHECK(b->width == 1.3f && b->in_chans == 1 && b->num_classes == 37);
        CHECK(memcmp(m->data, back->data, m->arch->total_floats * sizeof(float)) == 0);
    }
    gn_model_free(back);
    remove(path);
    gn_model_free(m);
}

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* BF16 weights (a hand-written file) load and widen exactly. */
static void test_bf16_file(void) {
    gn_config c = gn_config_default();
    c.width = 0.5f;
    c.num_classes = 4;
    gn_model *m = NULL, *back = NULL;
    gn_error e;
    CHECK(gn_model_create(&c, &m, &e) == GN_OK);
    gn_model_init_random(m, 2);
    /* Round every weight to bf16 first so the comparison can be exact. */
    for (size_t i = 0; i < m->arch->total_floats; i++) {
        uint32_t u = (uint32_t)to_bf16(m->data[i]) << 16;
        memcpy(&m->data[i], &u, 4);
    }
    const char *path = tmp_path("bf16");
    CHECK(gn_model_save(m, path, &e) == GN_OK);
    /* Re-encode the saved F32 file as BF16 by hand: header then data. */
    gn_st_file f;
    CHECK(gn_st_read(path, &f, &e) == GN_OK);
    FILE *out = fopen(path, "wb");
    size_t cap = 1 << 20, len = 0, off = 0;
    char *hdr = malloc(cap);
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"width\":\"0.5\"}");
    for (size_t i = 0; i < f.num_tensors; i++) {
        const gn_st_tensor *t = &f.tensors[i];
        int is_f = t->dtype == GN_DTYPE_F32;
        size_t bytes = t->numel * (is_f ? 2 : 8);
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                                t->name, is_f ? "BF16" : "I64");
        for (int d = 0; d < t->ndim; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%lld", d ? "," : "",
                                    (long long)t->shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off,
                                off + bytes);
        off += bytes;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    uint64_t hl = len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(hl >> (8 * i));
    fwrite(le, 1, 8, out);
    fwrite(hdr, 1, len, out);
    for (size_t i = 0; i < f.num_tensors; i++) {
        const gn_st_tensor *t = &f.tensors[i];
        if (t->dtype == GN_DTYPE_F32) {
            float *v = malloc(t->numel * sizeof *v);
            gn_st_to_f32(&f, t, v, NULL);
            for (size_t k = 0; k < t->numel; k++) {
                uint16_t h = to_bf16(v[k]);
                unsigned char b[2] = {(unsigned char)(h & 0xff), (unsigned char)(h >> 8)};
                fwrite(b, 1, 2, out);
            }
            free(v);
        } else {
            static const unsigned char zero[8] = {0};
            fwrite(zero, 1, 8, out);
        }
    }
    fclose(out);
    free(hdr);
    gn_st_free(&f);
    CHECK_MSG(gn_model_load(path, NULL, &back, &e) == GN_OK, "%s", e.message);
    if (back) {
        CHECK(gn_model_config(back)->num_classes == 4);
        CHECK(memcmp(m->data, back->data, m->arch->total_floats * sizeof(float)) == 0);
    }
    gn_model_free(back);
    gn_model_free(m);
    remove(path);
}

int main(void) {
    test_round_trip();
    test_mismatch_reports();
    test_no_metadata();
    test_bf16_file();
    TEST_MAIN_END();
}
