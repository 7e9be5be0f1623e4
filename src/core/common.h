/* Internal helpers shared by every part of the library: error reporting, checked sizes. */
#ifndef GN_COMMON_H
#define GN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "ghostnet.h"

#if defined(__GNUC__)
#define GN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define GN_PRINTF(f, a)
#endif

/* Records `code` and a printf-style message in err (if not NULL); returns code. */
gn_status gn_fail(gn_error *err, gn_status code, const char *fmt, ...) GN_PRINTF(3, 4);

/* Prefixes an existing message: "<prefix>: <old message>". Returns err->code (or `code`). */
gn_status gn_fail_prefix(gn_error *err, gn_status code, const char *prefix);

/* Overflow-checked size arithmetic: return 0 on overflow, else 1. */
int gn_mul_size(size_t a, size_t b, size_t *out);
int gn_add_size(size_t a, size_t b, size_t *out);

/* malloc/calloc that treat a zero size as one byte, so NULL always means failure. */
void *gn_malloc(size_t size);
void *gn_calloc(size_t count, size_t size);

/* Reads a whole file (at most max_bytes). *data must be freed with free(). */
gn_status gn_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *size,
                       gn_error *err);

#endif
