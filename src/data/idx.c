/* IDX files (the MNIST format): a 4-byte magic (0, 0, type, rank), `rank` big-endian uint32
 * dimensions, then the elements. Every header byte is hostile: the header is validated before
 * any payload is read, and the payload buffer grows only with data actually present. */
#include "data/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "core/common.h"

#define IDX_TYPE_U8 0x08
/* First allocation for the payload; it doubles from here up to the declared size. */
#define IDX_INITIAL_CAP ((size_t)64 << 20)
/* gzread takes an unsigned and returns an int: read in chunks below INT_MAX. */
#define IDX_CHUNK ((size_t)1 << 30)

/* ---- byte sources: a (possibly gzipped) file, or a buffer -------------------------------- */

typedef struct idx_source {
    const char *what;
    gzFile gz; /* file source when not NULL */
    const uint8_t *mem;
    size_t mem_size, mem_pos;
    int gzip;     /* memory source holds gzip members */
    int z_ready;  /* zs initialised */
    int z_ended;  /* last member finished */
    z_stream zs;
} idx_source;

static gn_status read_file_chunk(idx_source *s, uint8_t *dst, size_t n, size_t *got,
                                 gn_error *err) {
    int r = gzread(s->gz, dst, (unsigned)n);
    int errnum = Z_OK;
    const char *msg = gzerror(s->gz, &errnum);
    if (r < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
        if (errnum == Z_ERRNO)
            return gn_fail(err, GN_ERR_IO, "%s: read error: %s", s->what, strerror(errno));
        return gn_fail(err, GN_ERR_FORMAT, "%s: corrupt or truncated gzip data (%s)", s->what,
                       msg ? msg : "zlib error");
    }
    *got = (size_t)r;
    return GN_OK;
}

/* A gzip member that ends with more input behind it: another member follows (inflate it) or
 * trailing garbage (ignored, as gzread does). */
static void next_member(idx_source *s) {
    size_t left = s->mem_size - s->mem_pos;
    if (left >= 2 && s->mem[s->mem_pos] == 0x1f && s->mem[s->mem_pos + 1] == 0x8b)
        inflateReset(&s->zs);
    else
        s->z_ended = 1;
}

static gn_status inflate_chunk(idx_source *s, uint8_t *dst, size_t n, size_t *got,
                               gn_error *err) {
    *got = 0;
    while (*got < n && !s->z_ended) {
        s->zs.next_in = (Bytef *)(s->mem + s->mem_pos);
        size_t left = s->mem_size - s->mem_pos;
        s->zs.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
        s->zs.next_out = dst + *got;
        s->zs.avail_out = (uInt)(n - *got);
        uInt in_before = s->zs.avail_in, out_before = s->zs.avail_out;
        int r = inflate(&s->zs, Z_NO_FLUSH);
        s->mem_pos += in_before - s->zs.avail_in;
        *got += out_before - s->zs.avail_out;
        if (r == Z_STREAM_END) {
            next_member(s);
        } else if (r == Z_MEM_ERROR) {
            return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory inflating", s->what);
        } else if (r == Z_BUF_ERROR || (r == Z_OK && s->mem_pos == s->mem_size &&
                                        s->zs.avail_out > 0)) {
            return gn_fail(err, GN_ERR_FORMAT, "%s: truncated gzip data", s->what);
        } else if (r != Z_OK) {
            return gn_fail(err, GN_ERR_FORMAT, "%s: corrupt gzip data (%s)", s->what,
                           s->zs.msg ? s->zs.msg : "inflate error");
        }
    }
    return GN_OK;
}

static gn_status read_memory_chunk(idx_source *s, uint8_t *dst, size_t n, size_t *got,
                                   gn_error *err) {
    if (s->gzip) return inflate_chunk(s, dst, n, got, err);
    size_t left = s->mem_size - s->mem_pos;
    *got = n < left ? n : left;
    if (*got) memcpy(dst, s->mem + s->mem_pos, *got);
    s->mem_pos += *got;
    return GN_OK;
}

/* Reads up to n bytes; *got < n only at the end of the data. */
static gn_status src_read(idx_source *s, uint8_t *dst, size_t n, size_t *got, gn_error *err) {
    *got = 0;
    while (*got < n) {
        size_t want = n - *got, step = 0;
        if (want > IDX_CHUNK) want = IDX_CHUNK;
        gn_status st = s->gz ? read_file_chunk(s, dst + *got, want, &step, err)
                             : read_memory_chunk(s, dst + *got, want, &step, err);
        if (st != GN_OK) return st;
        if (step == 0) break;
        *got += step;
    }
    return GN_OK;
}

/* ---- the format ---------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static gn_status parse_magic(idx_source *s, int want_ndim, gn_idx *out, gn_error *err) {
    uint8_t head[4];
    size_t got;
    gn_status st = src_read(s, head, 4, &got, err);
    if (st != GN_OK) return st;
    if (got < 4)
        return gn_fail(err, GN_ERR_FORMAT, "%s: %zu bytes is too short for an IDX header",
                       s->what, got);
    uint32_t magic = be32(head);
    if (head[0] != 0 || head[1] != 0 || head[3] < 1 || head[3] > GN_IDX_MAX_NDIM)
        return gn_fail(err, GN_ERR_FORMAT,
                       "%s: bad magic 0x%08x: not an IDX file (expected 0x000008%02x)", s->what,
                       (unsigned)magic, want_ndim ? (unsigned)want_ndim : 1u);
    if (head[2] != IDX_TYPE_U8)
        return gn_fail(err, GN_ERR_UNSUPPORTED,
                       "%s: IDX element type 0x%02x is not supported (only unsigned bytes, 0x08)",
                       s->what, head[2]);
    if (want_ndim && head[3] != want_ndim)
        return gn_fail(err, GN_ERR_FORMAT,
                       "%s: IDX array has %d dimensions, expected %d (magic 0x%08x)", s->what,
                       head[3], want_ndim, (unsigned)magic);
    out->ndim = head[3];
    return GN_OK;
}

static gn_status parse_dims(idx_source *s, gn_idx *out, size_t *payload, gn_error *err) {
    uint8_t raw[4 * GN_IDX_MAX_NDIM];
    size_t need = 4 * (size_t)out->ndim, got;
    gn_status st = src_read(s, raw, need, &got, err);
    if (st != GN_OK) return st;
    if (got < need)
        return gn_fail(err, GN_ERR_FORMAT, "%s: truncated IDX header (%zu of %zu dimension bytes)",
                       s->what, got, need);
    size_t total = 1;
    for (int i = 0; i < out->ndim; i++) {
        uint32_t d = be32(raw + 4 * i);
        uint32_t limit = i == 0 ? GN_IDX_MAX_COUNT : GN_IDX_MAX_SIDE;
        if (d == 0 || d > limit)
            return gn_fail(err, GN_ERR_FORMAT, "%s: IDX dimension %d is %u; it must be 1..%u",
                           s->what, i, (unsigned)d, (unsigned)limit);
        out->dims[i] = d;
        if (!gn_mul_size(total, d, &total))
            return gn_fail(err, GN_ERR_NOMEM, "%s: IDX payload size overflows", s->what);
    }
    *payload = total;
    return GN_OK;
}

/* Reads exactly `size` bytes, growing the buffer as data arrives. */
static gn_status read_payload(idx_source *s, size_t size, gn_idx *out, gn_error *err) {
    size_t cap = size < IDX_INITIAL_CAP ? size : IDX_INITIAL_CAP, len = 0;
    uint8_t *buf = gn_malloc(cap);
    if (!buf) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory (%zu bytes)", s->what, cap);
    for (;;) {
        size_t got;
        gn_status st = src_read(s, buf + len, cap - len, &got, err);
        if (st != GN_OK) {
            free(buf);
            return st;
        }
        len += got;
        if (len < cap || cap == size) break;
        size_t ncap = cap > size / 2 ? size : cap * 2;
        uint8_t *nb = realloc(buf, ncap);
        if (!nb) {
            free(buf);
            return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory (%zu bytes)", s->what, ncap);
        }
        buf = nb;
        cap = ncap;
    }
    if (len < size) {
        free(buf);
        return gn_fail(err, GN_ERR_FORMAT,
                       "%s: truncated: the header declares %zu data bytes, the file holds %zu",
                       s->what, size, len);
    }
    out->data = buf;
    out->size = size;
    return GN_OK;
}

static gn_status check_trailing(idx_source *s, gn_error *err) {
    uint8_t probe[64];
    size_t got;
    gn_status st = src_read(s, probe, sizeof probe, &got, err);
    if (st != GN_OK) return st;
    if (got)
        return gn_fail(err, GN_ERR_FORMAT, "%s: trailing data after the declared IDX payload",
                       s->what);
    return GN_OK;
}

static gn_status parse_source(idx_source *s, int ndim, gn_idx *out, gn_error *err) {
    if (ndim < 0 || ndim > GN_IDX_MAX_NDIM)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: expected rank %d is not 0..%d", s->what,
                       ndim, GN_IDX_MAX_NDIM);
    size_t payload = 0;
    gn_status st = parse_magic(s, ndim, out, err);
    if (st == GN_OK) st = parse_dims(s, out, &payload, err);
    if (st == GN_OK) st = read_payload(s, payload, out, err);
    if (st == GN_OK) st = check_trailing(s, err);
    if (st != GN_OK) gn_idx_free(out);
    return st;
}

gn_status gn_idx_read(const char *path, int ndim, gn_idx *out, gn_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!path || !out) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_idx_read: NULL argument");
    idx_source s;
    memset(&s, 0, sizeof s);
    s.what = path;
    errno = 0;
    s.gz = gzopen(path, "rb");
    if (!s.gz)
        return gn_fail(err, errno == 0 ? GN_ERR_NOMEM : GN_ERR_IO, "%s: cannot open: %s", path,
                       errno ? strerror(errno) : "out of memory");
    gzbuffer(s.gz, 1u << 17);
    gn_status st = parse_source(&s, ndim, out, err);
    gzclose(s.gz);
    return st;
}

gn_status gn_idx_parse_memory(const uint8_t *data, size_t size, const char *what, int ndim,
                              gn_idx *out, gn_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!what) what = "IDX buffer";
    if ((!data && size) || !out)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: NULL argument", what);
    idx_source s;
    memset(&s, 0, sizeof s);
    s.what = what;
    s.mem = data;
    s.mem_size = size;
    s.gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (s.gzip) {
        if (inflateInit2(&s.zs, 16 + MAX_WBITS) != Z_OK)
            return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory (zlib)", what);
        s.z_ready = 1;
    }
    gn_status st = parse_source(&s, ndim, out, err);
    if (s.z_ready) inflateEnd(&s.zs);
    return st;
}

void gn_idx_free(gn_idx *idx) {
    if (!idx) return;
    free(idx->data);
    memset(idx, 0, sizeof *idx);
}

/* ---- MNIST-style datasets ---------------------------------------------------------------- */

static gn_status check_pair(const gn_idx *images, const gn_idx *labels, const char *iname,
                            const char *lname, gn_error *err) {
    if (images->ndim != 3 || !images->data)
        return gn_fail(err, GN_ERR_FORMAT, "%s: images must be a 3-dimensional IDX array (N x H x W)",
                       iname);
    if (labels->ndim != 1 || !labels->data)
        return gn_fail(err, GN_ERR_FORMAT, "%s: labels must be a 1-dimensional IDX array", lname);
    if (images->dims[0] != labels->dims[0])
        return gn_fail(err, GN_ERR_FORMAT, "%s holds %u labels but %s holds %u images", lname,
                       (unsigned)labels->dims[0], iname, (unsigned)images->dims[0]);
    return GN_OK;
}

/* Converts the label bytes, checking them against num_classes (0: max + 1). */
static gn_status convert_labels(const gn_idx *labels, int num_classes, const char *lname,
                                gn_dataset *ds, gn_error *err) {
    size_t n = labels->dims[0];
    int max = 0;
    for (size_t i = 0; i < n; i++)
        if (labels->data[i] > max) max = labels->data[i];
    if (num_classes < 0 || num_classes > 1000000)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: num_classes %d is not 0..1000000", lname,
                       num_classes);
    if (num_classes > 0 && max >= num_classes) {
        size_t at = 0;
        while (labels->data[at] < num_classes) at++;
        return gn_fail(err, GN_ERR_FORMAT, "%s: label %zu is %d; the dataset has %d classes",
                       lname, at, labels->data[at], num_classes);
    }
    ds->num_classes = num_classes > 0 ? num_classes : max + 1;
    ds->labels = gn_malloc(n * sizeof *ds->labels);
    if (!ds->labels) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", lname);
    for (size_t i = 0; i < n; i++) ds->labels[i] = labels->data[i];
    return GN_OK;
}

gn_status gn_dataset_from_idx(gn_idx *images, gn_idx *labels, int num_classes,
                              const char *images_name, const char *labels_name,
                              gn_dataset *out, gn_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!images_name) images_name = "images";
    if (!labels_name) labels_name = "labels";
    gn_status st = GN_OK;
    if (!images || !labels || !out)
        st = gn_fail(err, GN_ERR_INVALID_ARG, "gn_dataset_from_idx: NULL argument");
    if (st == GN_OK) st = check_pair(images, labels, images_name, labels_name, err);
    if (st == GN_OK) st = convert_labels(labels, num_classes, labels_name, out, err);
    if (st == GN_OK) {
        out->count = (int)images->dims[0];
        out->channels = 1;
        out->height = (int)images->dims[1];
        out->width = (int)images->dims[2];
        out->images = images->data; /* N x H x W is N x 1 x H x W */
        images->data = NULL;
        st = gn_dataset_compute_stats(out, err);
    }
    if (st != GN_OK && out) gn_dataset_free(out);
    gn_idx_free(images);
    gn_idx_free(labels);
    return st;
}

gn_status gn_dataset_load_idx(const char *images_path, const char *labels_path,
                              int num_classes, gn_dataset *out, gn_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!images_path || !labels_path || !out)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_dataset_load_idx: NULL argument");
    gn_idx images, labels;
    memset(&labels, 0, sizeof labels);
    gn_status st = gn_idx_read(images_path, 3, &images, err);
    if (st == GN_OK) st = gn_idx_read(labels_path, 1, &labels, err);
    if (st != GN_OK) {
        gn_idx_free(&images);
        return st;
    }
    return gn_dataset_from_idx(&images, &labels, num_classes, images_path, labels_path, out, err);
}
