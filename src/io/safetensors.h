/* Safetensors: a little-endian u64 header length, a JSON header, then raw tensor bytes.
 * The parser treats every byte as hostile: it validates the JSON, dtypes, shapes, offsets
 * (in range, consistent with shape x dtype size, non-overlapping) and duplicate keys. */
#ifndef GN_SAFETENSORS_H
#define GN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "ghostnet.h"

typedef enum gn_dtype { GN_DTYPE_F32, GN_DTYPE_F16, GN_DTYPE_BF16, GN_DTYPE_I64 } gn_dtype;

#define GN_ST_MAX_DIMS 8

typedef struct gn_st_tensor {
    char *name;
    gn_dtype dtype;
    int ndim;
    int64_t shape[GN_ST_MAX_DIMS];
    size_t numel;
    size_t begin, end; /* byte offsets into the data section */
} gn_st_tensor;

typedef struct gn_st_meta {
    char *key;
    char *value;
} gn_st_meta;

typedef struct gn_st_file {
    gn_st_tensor *tensors; /* in file (header) order */
    size_t num_tensors;
    gn_st_meta *meta;      /* __metadata__ string pairs */
    size_t num_meta;
    uint8_t *owned;        /* whole file when read by gn_st_read, else NULL */
    const uint8_t *data;   /* start of the data section */
    size_t data_size;
} gn_st_file;

/* Parses a safetensors image held in memory (not copied: buf must outlive the result).
 * `what` names the source in error messages (a path, or "buffer"). */
gn_status gn_st_parse(const uint8_t *buf, size_t size, const char *what, gn_st_file *out,
                      gn_error *err);

/* Reads and parses a file (kept in memory by the result). */
gn_status gn_st_read(const char *path, gn_st_file *out, gn_error *err);

void gn_st_free(gn_st_file *file);

const gn_st_tensor *gn_st_find(const gn_st_file *file, const char *name);
const char *gn_st_meta_get(const gn_st_file *file, const char *key);

/* Converts a tensor (F32, F16 or BF16; I64 is refused) to float32: dst holds t->numel. */
gn_status gn_st_to_f32(const gn_st_file *file, const gn_st_tensor *t, float *dst, gn_error *err);

/* Writing: entries are written in the given order; F32 data as given, I64 from `i64`. */
typedef struct gn_st_write_tensor {
    const char *name;
    gn_dtype dtype;          /* GN_DTYPE_F32 or GN_DTYPE_I64 */
    int ndim;
    int64_t shape[GN_ST_MAX_DIMS];
    const float *f32;
    const int64_t *i64;
} gn_st_write_tensor;

/* Writes atomically: to "<path>.tmp.<pid>", then rename; nothing is left behind on failure. */
gn_status gn_st_write(const char *path, const gn_st_write_tensor *tensors, size_t num_tensors,
                      const gn_st_meta *meta, size_t num_meta, gn_error *err);

#endif
