/* Model files: safetensors with timm's key names, and the architecture plus preprocessing in
 * __metadata__ so a file describes its own model. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "io/safetensors.h"
#include "model/model_internal.h"
#include "net/net.h"

static const char kBatchesSuffix[] = ".num_batches_tracked";

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- metadata parsing ------------------------------------------------------------------ */

static gn_status meta_double(const gn_st_file *f, const char *path, const char *key, double lo,
                             double hi, double *value, gn_error *err) {
    const char *text = gn_st_meta_get(f, key);
    if (!text) return GN_OK; /* absent: keep the default */
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !(v >= lo && v <= hi))
        return gn_fail(err, GN_ERR_FORMAT, "%s: metadata %s='%s' is not a number in [%g, %g]",
                       path, key, text, lo, hi);
    *value = v;
    return GN_OK;
}

static gn_status meta_int(const gn_st_file *f, const char *path, const char *key, int lo, int hi,
                          int *value, gn_error *err) {
    double v = *value;
    gn_status st = meta_double(f, path, key, lo, hi, &v, err);
    if (st != GN_OK) return st;
    if (v != floor(v))
        return gn_fail(err, GN_ERR_FORMAT, "%s: metadata %s='%s' is not an integer", path, key,
                       gn_st_meta_get(f, key));
    *value = (int)v;
    return GN_OK;
}

/* "a,b,c" (or one value for all) into out[3]. */
static gn_status meta_triple(const gn_st_file *f, const char *path, const char *key, float out[3],
                             gn_error *err) {
    const char *text = gn_st_meta_get(f, key);
    if (!text) return GN_OK;
    double v[3];
    int n = 0;
    const char *p = text;
    while (n < 3) {
        char *end;
        errno = 0;
        v[n] = strtod(p, &end);
        if (end == p || errno != 0 || !isfinite(v[n])) break;
        n++;
        p = end;
        if (*p != ',') break;
        p++;
    }
    if (*p != '\0' || (n != 1 && n != 3))
        return gn_fail(err, GN_ERR_FORMAT, "%s: metadata %s='%s' is not 1 or 3 numbers", path,
                       key, text);
    for (int i = 0; i < 3; i++) out[i] = (float)v[n == 1 ? 0 : i];
    return GN_OK;
}

static gn_status read_config(const gn_st_file *f, const char *path, gn_config *c,
                             gn_error *err) {
    double width = c->width, dropout = c->dropout;
    gn_status st;
    if ((st = meta_double(f, path, "width", 1e-3, 8.0, &width, err)) != GN_OK) return st;
    if ((st = meta_double(f, path, "dropout", 0.0, 0.999, &dropout, err)) != GN_OK) return st;
    if ((st = meta_int(f, path, "in_chans", 1, 64, &c->in_chans, err)) != GN_OK) return st;
    if ((st = meta_int(f, path, "num_classes", 1, 1000000, &c->num_classes, err)) != GN_OK)
        return st;
    if ((st = meta_int(f, path, "stem_stride", 1, 2, &c->stem_stride, err)) != GN_OK) return st;
    if ((st = meta_int(f, path, "ghost_ratio", 2, 16, &c->ghost_ratio, err)) != GN_OK) return st;
    if ((st = meta_int(f, path, "ghost_dw_size", 1, 15, &c->ghost_dw_size, err)) != GN_OK)
        return st;
    c->width = (float)width;
    c->dropout = (float)dropout;
    return GN_OK;
}

static gn_status read_preprocess(const gn_st_file *f, const char *path, gn_preprocess *p,
                                 gn_error *err) {
    gn_status st;
    if ((st = meta_int(f, path, "input_size", 1, 8192, &p->input_size, err)) != GN_OK) return st;
    p->resize_size = (p->input_size * 256 + 112) / 224; /* the 0.875 crop unless stated */
    if ((st = meta_int(f, path, "resize_size", 1, 8192, &p->resize_size, err)) != GN_OK) return st;
    if ((st = meta_triple(f, path, "mean", p->mean, err)) != GN_OK) return st;
    if ((st = meta_triple(f, path, "std", p->std, err)) != GN_OK) return st;
    for (int i = 0; i < 3; i++)
        if (!(p->std[i] > 0.0f))
            return gn_fail(err, GN_ERR_FORMAT, "%s: metadata std must be positive", path);
    if (p->resize_size < p->input_size)
        return gn_fail(err, GN_ERR_FORMAT, "%s: resize_size %d is smaller than input_size %d",
                       path, p->resize_size, p->input_size);
    return GN_OK;
}

/* Without metadata, in_chans and num_classes follow the tensors; the width is the first common
 * multiplier whose stem and final conv widths fit the file. */
static void infer_config(const gn_st_file *f, gn_config *c, int width_known) {
    const gn_st_tensor *stem = gn_st_find(f, "conv_stem.weight");
    const gn_st_tensor *cls = gn_st_find(f, "classifier.weight");
    const gn_st_tensor *last = gn_st_find(f, "blocks.9.0.conv.weight");
    if (!gn_st_meta_get(f, "in_chans") && stem && stem->ndim == 4 && stem->shape[1] >= 1 &&
        stem->shape[1] <= 64)
        c->in_chans = (int)stem->shape[1];
    if (!gn_st_meta_get(f, "num_classes") && cls && cls->ndim == 2 && cls->shape[0] >= 1 &&
        cls->shape[0] <= 1000000)
        c->num_classes = (int)cls->shape[0];
    if (width_known || !stem || !last || stem->ndim != 4 || last->ndim != 4) return;
    static const float candidates[] = {1.0f, 0.5f, 1.3f, 0.75f, 1.5f, 2.0f, 0.25f, 0.35f, 1.6f};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        double w = candidates[i];
        if (stem->shape[0] == gn_make_divisible(16 * w, 4) &&
            last->shape[0] == gn_make_divisible(960 * w, 4)) {
            c->width = candidates[i];
            return;
        }
    }
}

/* ---- key checking --------------------------------------------------------------------- */

typedef struct report {
    char text[400];
    size_t len;
    int missing, unexpected, mismatched;
} report;

static void report_add(report *r, const char *fmt, const char *a, const char *b, const char *c) {
    if (r->len >= sizeof r->text - 1) return;
    int n = snprintf(r->text + r->len, sizeof r->text - r->len, fmt, r->len ? "; " : "", a, b, c);
    if (n < 0) return;
    r->len += (size_t)n;
    if (r->len >= sizeof r->text - 1) {
        r->len = sizeof r->text - 1;
        memcpy(r->text + sizeof r->text - 4, "...", 4);
    }
}

static void shape_string(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (len < n) snprintf(buf + len, n - len, "]");
}

static const char *dtype_name(gn_dtype d) {
    switch (d) {
    case GN_DTYPE_F32: return "F32";
    case GN_DTYPE_F16: return "F16";
    case GN_DTYPE_BF16: return "BF16";
    case GN_DTYPE_I64: return "I64";
    }
    return "?";
}

static int shapes_equal(const gn_st_tensor *t, const gn_tensor_desc *d) {
    if (t->ndim != d->ndim) return 0;
    for (int i = 0; i < d->ndim; i++)
        if (t->shape[i] != d->shape[i]) return 0;
    return 1;
}

static int arch_has(const gn_arch *a, const char *name) {
    for (int i = 0; i < a->num_tensors; i++)
        if (strcmp(a->tensors[i].name, name) == 0) return 1;
    return 0;
}

/* A num_batches_tracked counter is fine when its BN exists and it is a one-element I64. */
static int valid_counter(const gn_arch *a, const gn_st_tensor *t) {
    char bn_weight[96];
    size_t stem = strlen(t->name) - (sizeof kBatchesSuffix - 1);
    if (stem >= sizeof bn_weight - 8) return 0;
    memcpy(bn_weight, t->name, stem);
    snprintf(bn_weight + stem, sizeof bn_weight - stem, ".running_var");
    return arch_has(a, bn_weight) && t->dtype == GN_DTYPE_I64 && t->numel == 1;
}

static void check_keys(const gn_arch *a, const gn_st_file *f, report *r) {
    char want[64], got[64];
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *d = &a->tensors[i];
        const gn_st_tensor *t = gn_st_find(f, d->name);
        shape_string(want, sizeof want, d->ndim, d->shape);
        if (!t) {
            r->missing++;
            report_add(r, "%smissing '%s' %s%s", d->name, want, "");
        } else if (!shapes_equal(t, d)) {
            r->mismatched++;
            shape_string(got, sizeof got, t->ndim, t->shape);
            report_add(r, "%s'%s' has shape %s in the file, %s expected", d->name, got, want);
        } else if (t->dtype == GN_DTYPE_I64) {
            r->mismatched++;
            report_add(r, "%s'%s' has dtype %s, expected F32, F16 or BF16", d->name,
                       dtype_name(t->dtype), "");
        }
    }
    for (size_t i = 0; i < f->num_tensors; i++) {
        const gn_st_tensor *t = &f->tensors[i];
        if (ends_with(t->name, kBatchesSuffix)) {
            if (!valid_counter(a, t)) {
                r->unexpected++;
                report_add(r, "%sunexpected '%s' (not a one-element I64 counter of a BN)%s%s",
                           t->name, "", "");
            }
        } else if (!arch_has(a, t->name)) {
            r->unexpected++;
            shape_string(got, sizeof got, t->ndim, t->shape);
            report_add(r, "%sunexpected '%s' %s%s", t->name, got, "");
        }
    }
}

/* ---- load / save ---------------------------------------------------------------------- */

gn_status gn_model_load(const char *path, const gn_config *fallback, gn_model **out,
                        gn_error *err) {
    if (!path || !out) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_model_load: NULL argument");
    *out = NULL;
    gn_st_file f;
    gn_status st = gn_st_read(path, &f, err);
    if (st != GN_OK) return st;

    gn_config config = fallback ? *fallback : gn_config_default();
    gn_model *m = NULL;
    const char *arch_name = gn_st_meta_get(&f, "arch");
    const int is_net = arch_name && strcmp(arch_name, "net") == 0;
    if (arch_name && strcmp(arch_name, "ghostnet") != 0 && !is_net) {
        st = gn_fail(err, GN_ERR_UNSUPPORTED, "%s: metadata arch='%s' is not 'ghostnet' or 'net'",
                     path, arch_name);
        goto done;
    }
    if ((st = read_config(&f, path, &config, err)) != GN_OK) goto done;
    if (is_net) {
        /* the description travels in the file; messages name the file */
        const char *text = gn_st_meta_get(&f, "net");
        if (!text) {
            st = gn_fail(err, GN_ERR_FORMAT, "%s: arch 'net' without a 'net' description", path);
            goto done;
        }
        st = gn_model_create_net(text, strlen(text), path, config.width, &config, &m, err);
        if (st != GN_OK) goto done;
    } else {
        infer_config(&f, &config, fallback != NULL || gn_st_meta_get(&f, "width") != NULL);
        if ((st = gn_config_validate(&config, err)) != GN_OK) {
            gn_fail_prefix(err, st, path);
            goto done;
        }
        if ((st = gn_model_create(&config, &m, err)) != GN_OK) goto done;
    }
    gn_preprocess pre = m->pre;
    if ((st = read_preprocess(&f, path, &pre, err)) != GN_OK) goto done;
    m->pre = pre;

    report r;
    memset(&r, 0, sizeof r);
    check_keys(m->arch, &f, &r);
    if (r.missing || r.unexpected || r.mismatched) {
        st = gn_fail(err, GN_ERR_SHAPE,
                     "%s: does not match %s width %g (%d missing, %d unexpected, %d "
                     "mismatched): %s",
                     path, is_net ? "its description at" : "GhostNet", (double)config.width, r.missing, r.unexpected, r.mismatched, r.text);
        goto done;
    }
    for (int i = 0; i < m->arch->num_tensors; i++) {
        const gn_tensor_desc *d = &m->arch->tensors[i];
        if ((st = gn_st_to_f32(&f, gn_st_find(&f, d->name), m->data + d->offset, err)) != GN_OK)
            goto done;
    }
done:
    gn_st_free(&f);
    if (st != GN_OK) {
        gn_model_free(m);
        return st;
    }
    *out = m;
    return GN_OK;
}

gn_status gn_model_save(const gn_model *model, const char *path, gn_error *err) {
    if (!model || !path) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_model_save: NULL argument");
    const gn_arch *a = model->arch;
    const gn_config *c = &a->config;
    const gn_preprocess *p = &model->pre;
    const size_t max_entries = (size_t)a->num_tensors * 2;
    gn_st_write_tensor *entries = gn_calloc(max_entries, sizeof *entries);
    char(*names)[96] = gn_calloc((size_t)a->num_tensors, sizeof *names);
    if (!entries || !names) {
        free(entries);
        free(names);
        return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path);
    }
    static const int64_t zero_count = 0;
    size_t n = 0;
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *d = &a->tensors[i];
        gn_st_write_tensor *e = &entries[n++];
        e->name = d->name;
        e->dtype = GN_DTYPE_F32;
        e->ndim = d->ndim;
        for (int k = 0; k < d->ndim; k++) e->shape[k] = d->shape[k];
        e->f32 = model->data + d->offset;
        if (d->is_bn && ends_with(d->name, ".running_var")) {
            /* timm's state dicts carry a scalar step counter after each BN's statistics. */
            size_t stem = strlen(d->name) - strlen(".running_var");
            snprintf(names[i], sizeof names[i], "%.*s%s", (int)stem, d->name, kBatchesSuffix);
            gn_st_write_tensor *cnt = &entries[n++];
            cnt->name = names[i];
            cnt->dtype = GN_DTYPE_I64;
            cnt->ndim = 0;
            cnt->i64 = &zero_count;
        }
    }
    char v[13][64];
    snprintf(v[0], 64, "%g", (double)c->width);
    snprintf(v[1], 64, "%d", c->in_chans);
    snprintf(v[2], 64, "%d", c->num_classes);
    snprintf(v[3], 64, "%d", c->stem_stride);
    snprintf(v[4], 64, "%d", c->ghost_ratio);
    snprintf(v[5], 64, "%d", c->ghost_dw_size);
    snprintf(v[6], 64, "%g", (double)c->dropout);
    snprintf(v[7], 64, "%d", p->input_size);
    snprintf(v[8], 64, "%d", p->resize_size);
    snprintf(v[9], 64, "%g,%g,%g", (double)p->mean[0], (double)p->mean[1], (double)p->mean[2]);
    snprintf(v[10], 64, "%g,%g,%g", (double)p->std[0], (double)p->std[1], (double)p->std[2]);
    const gn_st_meta meta[] = {
        {"format", "pt"},          {"arch", a->net ? "net" : "ghostnet"}, {"width", v[0]},
        {"in_chans", v[1]},        {"num_classes", v[2]},     {"stem_stride", v[3]},
        {"ghost_ratio", v[4]},     {"ghost_dw_size", v[5]},   {"dropout", v[6]},
        {"input_size", v[7]},      {"resize_size", v[8]},     {"mean", v[9]},
        {"std", v[10]},            {"net", a->net ? a->net->text : ""},
    };
    /* the description entry only for described networks */
    const size_t num_meta = sizeof meta / sizeof meta[0] - (a->net ? 0 : 1);
    gn_status st = gn_st_write(path, entries, n, meta, num_meta, err);
    free(entries);
    free(names);
    return st;
}
