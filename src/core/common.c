#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *gn_status_string(gn_status status) {
    switch (status) {
    case GN_OK: return "ok";
    case GN_ERR_INVALID_ARG: return "invalid argument";
    case GN_ERR_NOMEM: return "out of memory";
    case GN_ERR_IO: return "input/output error";
    case GN_ERR_FORMAT: return "malformed file";
    case GN_ERR_SHAPE: return "shape mismatch";
    case GN_ERR_UNSUPPORTED: return "unsupported";
    case GN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown status";
}

gn_status gn_fail(gn_error *err, gn_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

gn_status gn_fail_prefix(gn_error *err, gn_status code, const char *prefix) {
    if (!err) return code;
    char old[sizeof err->message];
    memcpy(old, err->message, sizeof old);
    old[sizeof old - 1] = '\0';
    if (err->code == GN_OK) err->code = code;
    size_t n = strlen(prefix);
    if (n > sizeof err->message / 2) n = sizeof err->message / 2;
    /* Prefix first, then as much of the old message as fits. */
    memcpy(err->message, prefix, n);
    memcpy(err->message + n, ": ", 2);
    size_t room = sizeof err->message - n - 3, len = strlen(old);
    if (len > room) len = room;
    memcpy(err->message + n + 2, old, len);
    err->message[n + 2 + len] = '\0';
    return err->code;
}

int gn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int gn_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

void *gn_malloc(size_t size) { return malloc(size ? size : 1); }

void *gn_calloc(size_t count, size_t size) {
    if (count == 0 || size == 0) return calloc(1, 1);
    return calloc(count, size);
}

gn_status gn_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                       gn_error *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return gn_fail(err, GN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap >= max_bytes) {
                free(buf);
                fclose(f);
                return gn_fail(err, GN_ERR_FORMAT, "%s: file larger than %zu bytes", path,
                               max_bytes);
            }
            size_t ncap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                fclose(f);
                return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return gn_fail(err, GN_ERR_IO, "%s: read error", path);
    }
    *data = buf;
    *size = len;
    return GN_OK;
}
