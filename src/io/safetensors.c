/* Safetensors reading (every header byte treated as hostile) and atomic writing. */
#define _POSIX_C_SOURCE 200809L /* getpid, fileno, fsync */

#include "io/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "io/json.h"

/* The reference implementation refuses larger headers; so do we (bounds JSON memory too). */
#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
#define ST_NAME_CAP 96 /* bytes of a tensor name quoted in messages */

typedef struct dtype_info {
    const char *name;
    gn_dtype dtype;
    size_t size;
} dtype_info;

static const dtype_info k_dtypes[] = {
    {"F32", GN_DTYPE_F32, 4},
    {"F16", GN_DTYPE_F16, 2},
    {"BF16", GN_DTYPE_BF16, 2},
    {"I64", GN_DTYPE_I64, 8},
};
#define NUM_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

static const dtype_info *dtype_by_name(const char *s, size_t len) {
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (strlen(k_dtypes[i].name) == len && memcmp(k_dtypes[i].name, s, len) == 0)
            return &k_dtypes[i];
    return NULL;
}

static const dtype_info *dtype_info_of(gn_dtype dtype) {
    for (size_t i = 0; i < NUM_DTYPES; i++)
        if (k_dtypes[i].dtype == dtype) return &k_dtypes[i];
    return NULL;
}

/* ---- little-endian bytes, read and written one byte at a time (any alignment, any host) ---- */

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t le64(const uint8_t *p) { return le32(p) | ((uint64_t)le32(p + 4) << 32); }

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static float f32_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Exact: every binary16 value (subnormals, infinities, NaN payloads) is a binary32 value. */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* Subnormal: mant x 2^-24; shift the leading one into the implicit bit. */
        uint32_t e = 127 - 14;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
    }
    return f32_from_bits(bits);
}

/* ---- small helpers ---------------------------------------------------------------------- */

static char *dup_bytes(const char *s, size_t len) {
    char *d = gn_malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

static int u64_to_size(uint64_t v, size_t *out) {
    *out = (size_t)v;
    return (uint64_t)*out == v;
}

static int key_is(const gn_json_member *m, const char *s) {
    return m->key_len == strlen(s) && memcmp(m->key, s, m->key_len) == 0;
}

/* "an object", "a string", ...: a JSON type for "is %s" in messages. */
static const char *a_type(const gn_json *v) {
    switch (v->type) {
    case GN_JSON_NULL: return "null";
    case GN_JSON_BOOL: return "a boolean";
    case GN_JSON_NUMBER: return "a number";
    case GN_JSON_STRING: return "a string";
    case GN_JSON_ARRAY: return "an array";
    case GN_JSON_OBJECT: return "an object";
    }
    return "an unknown value";
}

static const char *shape_str(const int64_t *shape, int ndim, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* ---- parsing ---------------------------------------------------------------------------- */

typedef struct st_ctx {
    const char *what;
    gn_error *err;
    size_t data_size;
} st_ctx;

/* The tensor being parsed, as named in messages. */
typedef struct st_name {
    const char *s;
    size_t len;
} st_name;

static gn_status tensor_fail(const st_ctx *c, gn_status code, st_name name, const char *fmt, ...)
    GN_PRINTF(4, 5);
static gn_status tensor_fail(const st_ctx *c, gn_status code, st_name name, const char *fmt,
                             ...) {
    char detail[320], q[ST_NAME_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return gn_fail(c->err, code, "%s: tensor '%s': %s", c->what,
                   gn_json_quote(name.s, name.len, q, sizeof q), detail);
}

static gn_status nomem(const st_ctx *c) {
    return gn_fail(c->err, GN_ERR_NOMEM, "%s: out of memory", c->what);
}

/* Reads field[index] as an integer in [0, max]. */
static gn_status read_count(const st_ctx *c, st_name name, const char *field, size_t index,
                            const gn_json *v, uint64_t max, uint64_t *out) {
    if (v->type != GN_JSON_NUMBER)
        return tensor_fail(c, GN_ERR_FORMAT, name, "%s[%zu] is %s, expected an integer", field,
                           index, a_type(v));
    const gn_json_number *n = &v->u.number;
    if (!n->is_integer)
        return tensor_fail(c, GN_ERR_FORMAT, name, "%s[%zu] = %g is not an integer", field,
                           index, n->value);
    if (n->negative && (n->magnitude != 0 || n->overflow))
        return tensor_fail(c, GN_ERR_FORMAT, name, "%s[%zu] = %.17g is negative", field, index,
                           n->value);
    if (n->overflow || n->magnitude > max)
        return tensor_fail(c, GN_ERR_FORMAT, name, "%s[%zu] = %.17g is too large (max %" PRIu64
                           ")", field, index, n->value, max);
    *out = n->magnitude;
    return GN_OK;
}

static gn_status parse_dtype(const st_ctx *c, st_name name, const gn_json *v,
                             const dtype_info **out) {
    if (v->type != GN_JSON_STRING)
        return tensor_fail(c, GN_ERR_FORMAT, name, "dtype is %s, expected a string",
                           a_type(v));
    *out = dtype_by_name(v->u.string.ptr, v->u.string.len);
    if (!*out) {
        char q[32];
        return tensor_fail(c, GN_ERR_UNSUPPORTED, name,
                           "unsupported dtype '%s' (supported: F32, F16, BF16, I64)",
                           gn_json_quote(v->u.string.ptr, v->u.string.len, q, sizeof q));
    }
    return GN_OK;
}

static gn_status parse_shape(const st_ctx *c, st_name name, const gn_json *v, gn_st_tensor *t) {
    if (v->type != GN_JSON_ARRAY)
        return tensor_fail(c, GN_ERR_FORMAT, name, "shape is %s, expected an array",
                           a_type(v));
    if (v->u.array.count > GN_ST_MAX_DIMS)
        return tensor_fail(c, GN_ERR_UNSUPPORTED, name,
                           "shape has %zu dimensions (at most %d supported)", v->u.array.count,
                           GN_ST_MAX_DIMS);
    t->ndim = (int)v->u.array.count;
    int has_zero = 0;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t d;
        gn_status st = read_count(c, name, "shape", (size_t)i, &v->u.array.items[i],
                                  (uint64_t)INT64_MAX, &d);
        if (st) return st;
        t->shape[i] = (int64_t)d;
        has_zero |= d == 0;
    }
    /* A zero anywhere makes the tensor empty, even next to dimensions whose product overflows. */
    size_t numel = 1, dim;
    for (int i = 0; i < t->ndim && !has_zero; i++) {
        if (!u64_to_size((uint64_t)t->shape[i], &dim) || !gn_mul_size(numel, dim, &numel)) {
            char s[160];
            return tensor_fail(c, GN_ERR_FORMAT, name,
                               "huge dimensions: shape %s has more elements than fit in memory",
                               shape_str(t->shape, t->ndim, s, sizeof s));
        }
    }
    t->numel = has_zero ? 0 : numel;
    return GN_OK;
}

static gn_status parse_offsets(const st_ctx *c, st_name name, const gn_json *v,
                               const dtype_info *info, gn_st_tensor *t) {
    if (v->type != GN_JSON_ARRAY)
        return tensor_fail(c, GN_ERR_FORMAT, name,
                           "data_offsets is %s, expected an array [begin, end]",
                           a_type(v));
    if (v->u.array.count != 2)
        return tensor_fail(c, GN_ERR_FORMAT, name,
                           "data_offsets has %zu entries, expected [begin, end]",
                           v->u.array.count);
    uint64_t b, e;
    gn_status st = read_count(c, name, "data_offsets", 0, &v->u.array.items[0], UINT64_MAX, &b);
    if (!st) st = read_count(c, name, "data_offsets", 1, &v->u.array.items[1], UINT64_MAX, &e);
    if (st) return st;
    if (e < b)
        return tensor_fail(c, GN_ERR_FORMAT, name,
                           "data_offsets [%" PRIu64 ", %" PRIu64 "]: end is before begin", b, e);
    if (e > c->data_size || !u64_to_size(b, &t->begin) || !u64_to_size(e, &t->end))
        return tensor_fail(c, GN_ERR_FORMAT, name,
                           "data_offsets [%" PRIu64 ", %" PRIu64
                           "] past the end of the data section (%zu bytes)",
                           b, e, c->data_size);
    size_t bytes;
    char s[160];
    if (!gn_mul_size(t->numel, info->size, &bytes))
        return tensor_fail(c, GN_ERR_FORMAT, name,
                           "huge dimensions: shape %s of %s overflows the byte size",
                           shape_str(t->shape, t->ndim, s, sizeof s), info->name);
    if (t->end - t->begin != bytes)
        return tensor_fail(c, GN_ERR_FORMAT, name,
                           "data_offsets [%zu, %zu] span %zu bytes but shape %s of %s needs %zu",
                           t->begin, t->end, t->end - t->begin,
                           shape_str(t->shape, t->ndim, s, sizeof s), info->name, bytes);
    return GN_OK;
}

/* One header entry: {"dtype": ..., "shape": [...], "data_offsets": [b, e]} and nothing else. */
static gn_status parse_tensor(const st_ctx *c, const gn_json_member *m, gn_st_tensor *t) {
    st_name name = {m->key, m->key_len};
    if (memchr(m->key, '\0', m->key_len))
        return tensor_fail(c, GN_ERR_FORMAT, name, "name contains a NUL character");
    if (m->value.type != GN_JSON_OBJECT)
        return tensor_fail(c, GN_ERR_FORMAT, name,
                           "entry is %s, expected an object with dtype, shape and data_offsets",
                           a_type(&m->value));
    const gn_json *dtype = NULL, *shape = NULL, *offsets = NULL;
    for (size_t i = 0; i < m->value.u.object.count; i++) {
        const gn_json_member *f = &m->value.u.object.members[i];
        if (key_is(f, "dtype")) {
            dtype = &f->value;
        } else if (key_is(f, "shape")) {
            shape = &f->value;
        } else if (key_is(f, "data_offsets")) {
            offsets = &f->value;
        } else {
            char q[64];
            return tensor_fail(c, GN_ERR_FORMAT, name, "unknown field '%s'",
                               gn_json_quote(f->key, f->key_len, q, sizeof q));
        }
    }
    const char *missing = !dtype ? "dtype" : !shape ? "shape" : !offsets ? "data_offsets" : NULL;
    if (missing) return tensor_fail(c, GN_ERR_FORMAT, name, "missing field '%s'", missing);
    if (!(t->name = dup_bytes(m->key, m->key_len))) return nomem(c);
    const dtype_info *info;
    gn_status st = parse_dtype(c, name, dtype, &info);
    if (!st) st = parse_shape(c, name, shape, t);
    if (!st) st = parse_offsets(c, name, offsets, info, t);
    if (!st) t->dtype = info->dtype;
    return st;
}

/* "__metadata__": an object of string -> string (null is accepted as empty, as upstream). */
static gn_status parse_metadata(const st_ctx *c, const gn_json *v, gn_st_file *out) {
    if (v->type == GN_JSON_NULL) return GN_OK;
    if (v->type != GN_JSON_OBJECT)
        return gn_fail(c->err, GN_ERR_FORMAT, "%s: __metadata__ is %s, expected an object",
                       c->what, a_type(v));
    out->meta = gn_calloc(v->u.object.count, sizeof *out->meta);
    if (!out->meta) return nomem(c);
    for (size_t i = 0; i < v->u.object.count; i++) {
        const gn_json_member *m = &v->u.object.members[i];
        char q[ST_NAME_CAP];
        gn_json_quote(m->key, m->key_len, q, sizeof q);
        if (m->value.type != GN_JSON_STRING)
            return gn_fail(c->err, GN_ERR_FORMAT,
                           "%s: __metadata__ '%s' is %s, expected a string", c->what, q,
                           a_type(&m->value));
        if (memchr(m->key, '\0', m->key_len) ||
            memchr(m->value.u.string.ptr, '\0', m->value.u.string.len))
            return gn_fail(c->err, GN_ERR_FORMAT, "%s: __metadata__ '%s' contains a NUL character",
                           c->what, q);
        gn_st_meta *e = &out->meta[out->num_meta++];
        e->key = dup_bytes(m->key, m->key_len);
        e->value = dup_bytes(m->value.u.string.ptr, m->value.u.string.len);
        if (!e->key || !e->value) return nomem(c);
    }
    return GN_OK;
}

static gn_status build_file(const st_ctx *c, const gn_json *root, gn_st_file *out) {
    if (root->type != GN_JSON_OBJECT)
        return gn_fail(c->err, GN_ERR_FORMAT, "%s: header JSON is %s, expected an object",
                       c->what, a_type(root));
    out->tensors = gn_calloc(root->u.object.count, sizeof *out->tensors);
    if (!out->tensors) return nomem(c);
    for (size_t i = 0; i < root->u.object.count; i++) {
        const gn_json_member *m = &root->u.object.members[i];
        gn_status st = key_is(m, "__metadata__")
                           ? parse_metadata(c, &m->value, out)
                           : parse_tensor(c, m, &out->tensors[out->num_tensors++]);
        if (st) return st;
    }
    return GN_OK;
}

typedef struct span {
    size_t begin, end, index;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Sorted by begin, a range overlaps an earlier one iff it starts before the furthest end seen.
 * Empty tensors hold no bytes and overlap nothing. */
static gn_status check_overlaps(const st_ctx *c, const gn_st_file *f) {
    span *s = gn_calloc(f->num_tensors, sizeof *s);
    if (!s) return nomem(c);
    size_t n = 0;
    for (size_t i = 0; i < f->num_tensors; i++)
        if (f->tensors[i].end > f->tensors[i].begin)
            s[n++] = (span){f->tensors[i].begin, f->tensors[i].end, i};
    qsort(s, n, sizeof *s, span_cmp);
    gn_status st = GN_OK;
    size_t far = 0;
    for (size_t i = 1; i < n && !st; i++) {
        if (s[i].begin < s[far].end) {
            const gn_st_tensor *a = &f->tensors[s[far].index], *b = &f->tensors[s[i].index];
            char qa[ST_NAME_CAP], qb[ST_NAME_CAP];
            st = gn_fail(c->err, GN_ERR_FORMAT,
                         "%s: tensors '%s' and '%s' overlap: data_offsets [%zu, %zu] and "
                         "[%zu, %zu]",
                         c->what, gn_json_quote(a->name, strlen(a->name), qa, sizeof qa),
                         gn_json_quote(b->name, strlen(b->name), qb, sizeof qb), a->begin,
                         a->end, b->begin, b->end);
        }
        if (s[i].end > s[far].end) far = i;
    }
    free(s);
    return st;
}

static gn_status check_header_length(const st_ctx *c, const uint8_t *buf, size_t size,
                                     uint64_t *n) {
    if (size == 0)
        return gn_fail(c->err, GN_ERR_FORMAT, "%s: empty file (no safetensors header)", c->what);
    if (size < 8)
        return gn_fail(c->err, GN_ERR_FORMAT,
                       "%s: truncated: %zu bytes, but the header length field alone takes 8",
                       c->what, size);
    *n = le64(buf);
    if (*n > size - 8)
        return gn_fail(c->err, GN_ERR_FORMAT,
                       "%s: header length %" PRIu64 " past the end of the file (%zu bytes)",
                       c->what, *n, size);
    if (*n > ST_MAX_HEADER)
        return gn_fail(c->err, GN_ERR_FORMAT,
                       "%s: header length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes",
                       c->what, *n, ST_MAX_HEADER);
    return GN_OK;
}

gn_status gn_st_parse(const uint8_t *buf, size_t size, const char *what, gn_st_file *out,
                      gn_error *err) {
    if (!what) what = "buffer";
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "%s: gn_st_parse: out is NULL", what);
    memset(out, 0, sizeof *out);
    if (!buf && size) return gn_fail(err, GN_ERR_INVALID_ARG, "%s: buffer is NULL", what);
    st_ctx c = {what, err, 0};
    uint64_t n = 0;
    gn_status st = check_header_length(&c, buf, size, &n);
    if (st) return st;
    size_t hlen = (size_t)n; /* n <= size - 8, so it fits */
    c.data_size = size - 8 - hlen;
    gn_json_doc doc;
    st = gn_json_parse((const char *)buf + 8, hlen, NULL, &doc, err);
    if (st) {
        char prefix[sizeof err->message];
        snprintf(prefix, sizeof prefix, "%s: header JSON", what);
        return gn_fail_prefix(err, st, prefix);
    }
    st = build_file(&c, &doc.root, out);
    gn_json_doc_free(&doc);
    if (!st) st = check_overlaps(&c, out);
    if (st) {
        gn_st_free(out);
        return st;
    }
    out->data = buf + 8 + hlen;
    out->data_size = c.data_size;
    return GN_OK;
}

gn_status gn_st_read(const char *path, gn_st_file *out, gn_error *err) {
    if (!out || !path) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_st_read: NULL argument");
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t size;
    gn_status st = gn_read_file(path, SIZE_MAX / 2, &data, &size, err);
    if (st) return st;
    st = gn_st_parse(data, size, path, out, err);
    if (st) {
        free(data);
        return st;
    }
    out->owned = data;
    return GN_OK;
}

void gn_st_free(gn_st_file *file) {
    if (!file) return;
    for (size_t i = 0; i < file->num_tensors; i++) free(file->tensors[i].name);
    free(file->tensors);
    for (size_t i = 0; i < file->num_meta; i++) {
        free(file->meta[i].key);
        free(file->meta[i].value);
    }
    free(file->meta);
    free(file->owned);
    memset(file, 0, sizeof *file);
}

const gn_st_tensor *gn_st_find(const gn_st_file *file, const char *name) {
    if (!file || !name) return NULL;
    for (size_t i = 0; i < file->num_tensors; i++)
        if (strcmp(file->tensors[i].name, name) == 0) return &file->tensors[i];
    return NULL;
}

const char *gn_st_meta_get(const gn_st_file *file, const char *key) {
    if (!file || !key) return NULL;
    for (size_t i = 0; i < file->num_meta; i++)
        if (strcmp(file->meta[i].key, key) == 0) return file->meta[i].value;
    return NULL;
}

gn_status gn_st_to_f32(const gn_st_file *file, const gn_st_tensor *t, float *dst, gn_error *err) {
    if (!file || !t || !t->name || (!dst && t->numel))
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_st_to_f32: NULL argument");
    const dtype_info *info = dtype_info_of(t->dtype);
    if (!info) return gn_fail(err, GN_ERR_INVALID_ARG, "tensor '%s': bad dtype", t->name);
    if (t->dtype == GN_DTYPE_I64)
        return gn_fail(err, GN_ERR_UNSUPPORTED,
                       "tensor '%s': dtype I64 cannot be converted to float32", t->name);
    /* Re-check: the struct may not come from gn_st_parse. */
    size_t bytes;
    if (!gn_mul_size(t->numel, info->size, &bytes) || t->end < t->begin ||
        t->end > file->data_size || t->end - t->begin != bytes)
        return gn_fail(err, GN_ERR_INVALID_ARG, "tensor '%s': offsets do not match the file",
                       t->name);
    if (t->numel == 0) return GN_OK;
    const uint8_t *src = file->data + t->begin;
    switch (t->dtype) {
    case GN_DTYPE_F32:
        for (size_t i = 0; i < t->numel; i++) dst[i] = f32_from_bits(le32(src + 4 * i));
        break;
    case GN_DTYPE_F16:
        for (size_t i = 0; i < t->numel; i++) dst[i] = f16_to_f32(le16(src + 2 * i));
        break;
    case GN_DTYPE_BF16: /* the top half of a binary32 */
        for (size_t i = 0; i < t->numel; i++) dst[i] = f32_from_bits((uint32_t)le16(src + 2 * i) << 16);
        break;
    case GN_DTYPE_I64: break;
    }
    return GN_OK;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* Growable text; an allocation failure sticks in `oom` and is checked once at the end. */
typedef struct strbuf {
    char *p;
    size_t len, cap;
    int oom;
} strbuf;

static char *sb_reserve(strbuf *b, size_t extra) {
    size_t need;
    if (b->oom || !gn_add_size(b->len, extra, &need)) {
        b->oom = 1;
        return NULL;
    }
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->len;
}

static void sb_put(strbuf *b, const char *s, size_t n) {
    char *d = sb_reserve(b, n);
    if (!d) return;
    memcpy(d, s, n);
    b->len += n;
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_string(strbuf *b, const char *s) {
    size_t len = strlen(s), n = gn_json_escape(s, len, NULL), total;
    if (!gn_add_size(n, 2, &total)) {
        b->oom = 1;
        return;
    }
    char *d = sb_reserve(b, total);
    if (!d) return;
    d[0] = '"';
    gn_json_escape(s, len, d + 1);
    d[n + 1] = '"';
    b->len += total;
}

static void sb_u64(strbuf *b, uint64_t v) {
    char num[24];
    sb_put(b, num, (size_t)snprintf(num, sizeof num, "%" PRIu64, v));
}

static int str_ptr_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Returns a name that occurs twice among names[0..n), or NULL. */
static const char *find_duplicate(const char **names, size_t n) {
    qsort(names, n, sizeof *names, str_ptr_cmp);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static gn_status check_write_tensor(const char *path, size_t index, const gn_st_write_tensor *t,
                                    size_t *bytes, gn_error *err) {
    if (!t->name || !gn_json_utf8_valid(t->name, strlen(t->name)))
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: tensor %zu: name is NULL or not UTF-8", path,
                       index);
    if (strcmp(t->name, "__metadata__") == 0)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: tensor name '__metadata__' is reserved",
                       path);
    if (t->dtype != GN_DTYPE_F32 && t->dtype != GN_DTYPE_I64)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: tensor '%s': only F32 and I64 are written",
                       path, t->name);
    if (t->ndim < 0 || t->ndim > GN_ST_MAX_DIMS)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: tensor '%s': ndim %d out of range [0, %d]",
                       path, t->name, t->ndim, GN_ST_MAX_DIMS);
    size_t numel = 1, dim;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] < 0)
            return gn_fail(err, GN_ERR_INVALID_ARG, "%s: tensor '%s': negative dimension %" PRId64,
                           path, t->name, t->shape[i]);
        if (!u64_to_size((uint64_t)t->shape[i], &dim) || !gn_mul_size(numel, dim, &numel))
            numel = SIZE_MAX; /* only fatal if no later dimension is zero */
    }
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0) numel = 0;
    const void *data = t->dtype == GN_DTYPE_F32 ? (const void *)t->f32 : (const void *)t->i64;
    if (numel == SIZE_MAX || !gn_mul_size(numel, t->dtype == GN_DTYPE_F32 ? 4 : 8, bytes))
        return gn_fail(err, GN_ERR_NOMEM, "%s: tensor '%s': size overflows", path, t->name);
    if (numel && !data)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: tensor '%s': data is NULL", path, t->name);
    return GN_OK;
}

static gn_status check_unique(const char *path, const char **names, size_t n, const char *kind,
                              gn_error *err) {
    const char *dup = find_duplicate(names, n);
    if (dup) return gn_fail(err, GN_ERR_INVALID_ARG, "%s: duplicate %s '%s'", path, kind, dup);
    return GN_OK;
}

/* Validates every argument and computes each tensor's byte size (bytes[i]). */
static gn_status check_write_args(const char *path, const gn_st_write_tensor *tensors, size_t nt,
                                  const gn_st_meta *meta, size_t nm, size_t *bytes,
                                  gn_error *err) {
    const char **names = gn_calloc(nt > nm ? nt : nm, sizeof *names);
    if (!names) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path);
    gn_status st = GN_OK;
    for (size_t i = 0; i < nt && !st; i++) {
        st = check_write_tensor(path, i, &tensors[i], &bytes[i], err);
        names[i] = tensors[i].name;
    }
    if (!st) st = check_unique(path, names, nt, "tensor", err);
    for (size_t i = 0; i < nm && !st; i++) {
        const gn_st_meta *m = &meta[i];
        if (!m->key || !m->value || !gn_json_utf8_valid(m->key, strlen(m->key)) ||
            !gn_json_utf8_valid(m->value, strlen(m->value)))
            st = gn_fail(err, GN_ERR_INVALID_ARG,
                         "%s: metadata entry %zu: key or value is NULL or not UTF-8", path, i);
        names[i] = m->key;
    }
    if (!st) st = check_unique(path, names, nm, "metadata key", err);
    free(names);
    return st;
}

/* Header JSON: "__metadata__" first, then tensors in order with contiguous offsets, padded
 * with spaces so that the data section starts 8-byte aligned. */
static gn_status build_header(const char *path, const gn_st_write_tensor *tensors, size_t nt,
                              const gn_st_meta *meta, size_t nm, const size_t *bytes,
                              strbuf *b, gn_error *err) {
    sb_puts(b, "{");
    if (nm) {
        sb_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; i < nm; i++) {
            if (i) sb_puts(b, ",");
            sb_string(b, meta[i].key);
            sb_puts(b, ":");
            sb_string(b, meta[i].value);
        }
        sb_puts(b, "}");
    }
    size_t offset = 0;
    for (size_t i = 0; i < nt; i++) {
        const gn_st_write_tensor *t = &tensors[i];
        if (nm || i) sb_puts(b, ",");
        sb_string(b, t->name);
        sb_puts(b, t->dtype == GN_DTYPE_F32 ? ":{\"dtype\":\"F32\",\"shape\":["
                                            : ":{\"dtype\":\"I64\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_puts(b, ",");
            sb_u64(b, (uint64_t)t->shape[d]);
        }
        sb_puts(b, "],\"data_offsets\":[");
        sb_u64(b, offset);
        sb_puts(b, ",");
        if (!gn_add_size(offset, bytes[i], &offset))
            return gn_fail(err, GN_ERR_NOMEM, "%s: total data size overflows", path);
        sb_u64(b, offset);
        sb_puts(b, "]}");
    }
    sb_puts(b, "}");
    while (!b->oom && b->len % 8) sb_puts(b, " ");
    if (b->oom) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory building the header", path);
    return GN_OK;
}

/* Serialises one tensor little-endian through a small buffer. Returns 1 on success. */
static int write_tensor_data(FILE *f, const gn_st_write_tensor *t, size_t bytes) {
    uint8_t chunk[8192]; /* a multiple of both item sizes */
    size_t item = t->dtype == GN_DTYPE_I64 ? 8 : 4, numel = bytes / item, used = 0;
    for (size_t i = 0; i < numel; i++) {
        if (t->dtype == GN_DTYPE_I64) {
            put_le64(chunk + used, (uint64_t)t->i64[i]);
        } else {
            uint32_t bits;
            memcpy(&bits, &t->f32[i], sizeof bits);
            put_le32(chunk + used, bits);
        }
        used += item;
        if (used == sizeof chunk) {
            if (fwrite(chunk, 1, used, f) != used) return 0;
            used = 0;
        }
    }
    return used == 0 || fwrite(chunk, 1, used, f) == used;
}

static int write_contents(FILE *f, const strbuf *header, const gn_st_write_tensor *tensors,
                          size_t nt, const size_t *bytes) {
    uint8_t len[8];
    put_le64(len, (uint64_t)header->len);
    if (fwrite(len, 1, 8, f) != 8 || fwrite(header->p, 1, header->len, f) != header->len)
        return 0;
    for (size_t i = 0; i < nt; i++)
        if (!write_tensor_data(f, &tensors[i], bytes[i])) return 0;
    /* Flush to the disk before the rename makes the file visible. */
    return fflush(f) == 0 && fsync(fileno(f)) == 0;
}

static const char *errno_text(int e) { return e ? strerror(e) : "write error"; }

/* Writes to a temporary name and renames it over `path`; removes it on any failure. */
static gn_status write_atomically(const char *path, const strbuf *header,
                                  const gn_st_write_tensor *tensors, size_t nt,
                                  const size_t *bytes, gn_error *err) {
    size_t cap = strlen(path) + 32;
    char *tmp = gn_malloc(cap);
    if (!tmp) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    gn_status st = GN_OK;
    errno = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = gn_fail(err, GN_ERR_IO, "%s: cannot create '%s': %s", path, tmp, errno_text(errno));
        free(tmp);
        return st;
    }
    int ok = write_contents(f, header, tensors, nt, bytes), e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        st = gn_fail(err, GN_ERR_IO, "%s: writing '%s' failed: %s", path, tmp, errno_text(e));
    } else if (rename(tmp, path) != 0) {
        st = gn_fail(err, GN_ERR_IO, "%s: cannot rename '%s' into place: %s", path, tmp,
                     errno_text(errno));
    }
    if (st) remove(tmp);
    free(tmp);
    return st;
}

gn_status gn_st_write(const char *path, const gn_st_write_tensor *tensors, size_t num_tensors,
                      const gn_st_meta *meta, size_t num_meta, gn_error *err) {
    if (!path || !*path) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_st_write: path is empty");
    if ((num_tensors && !tensors) || (num_meta && !meta))
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: tensors or metadata array is NULL", path);
    size_t *bytes = gn_calloc(num_tensors, sizeof *bytes);
    if (!bytes) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path);
    strbuf header = {0};
    gn_status st = check_write_args(path, tensors, num_tensors, meta, num_meta, bytes, err);
    if (!st) st = build_header(path, tensors, num_tensors, meta, num_meta, bytes, &header, err);
    if (!st) st = write_atomically(path, &header, tensors, num_tensors, bytes, err);
    free(header.p);
    free(bytes);
    return st;
}
