/* Strict JSON (RFC 8259) parser into a read-only tree, built for hostile input such as
 * safetensors headers: bounded nesting and value counts, validated UTF-8, no trailing bytes.
 * The whole tree lives in an arena owned by gn_json_doc and freed in one call. */
#ifndef GN_JSON_H
#define GN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "ghostnet.h"

typedef enum gn_json_type {
    GN_JSON_NULL,
    GN_JSON_BOOL,
    GN_JSON_NUMBER,
    GN_JSON_STRING,
    GN_JSON_ARRAY,
    GN_JSON_OBJECT
} gn_json_type;

typedef struct gn_json_member gn_json_member;

typedef struct gn_json_number {
    double value;       /* nearest double (digits past the 19th only round) */
    uint64_t magnitude; /* |integer| when is_integer and !overflow */
    int is_integer;     /* written without fraction or exponent */
    int overflow;       /* is_integer, but |value| > UINT64_MAX */
    int negative;       /* written with a leading '-' (also "-0") */
} gn_json_number;

typedef struct gn_json {
    gn_json_type type;
    size_t offset; /* byte offset of the value in the input, for messages */
    union {
        int boolean;
        gn_json_number number;
        struct {
            const char *ptr; /* decoded UTF-8, NUL-terminated; may hold NUL via \u0000 */
            size_t len;
        } string;
        struct {
            const struct gn_json *items;
            size_t count;
        } array;
        struct {
            const gn_json_member *members; /* in input order */
            size_t count;
        } object;
    } u;
} gn_json;

struct gn_json_member {
    const char *key; /* decoded like a string value */
    size_t key_len;
    size_t key_offset;
    gn_json value;
};

typedef struct gn_json_options {
    int max_depth;             /* nesting of arrays/objects; the root counts as 1 */
    size_t max_values;         /* total values, a bound on memory for hostile input */
    int reject_duplicate_keys; /* duplicate keys in one object are an error */
} gn_json_options;

/* Depth 64, 1M values, duplicates rejected. */
gn_json_options gn_json_options_default(void);

typedef struct gn_json_doc {
    gn_json root;
    struct gn_json_block *blocks; /* arena; private */
} gn_json_doc;

/* Parses exactly one JSON value surrounded by optional whitespace. On failure returns
 * GN_ERR_FORMAT (or GN_ERR_NOMEM) with a message ending "at byte N"; doc is left empty.
 * options may be NULL for the defaults. */
gn_status gn_json_parse(const char *text, size_t len, const gn_json_options *options,
                        gn_json_doc *doc, gn_error *err);
void gn_json_doc_free(gn_json_doc *doc);

/* "null", "boolean", "number", "string", "array", "object". */
const char *gn_json_type_name(gn_json_type type);

/* First member named key in an object, else NULL (also NULL when obj is not an object). */
const gn_json *gn_json_object_get(const gn_json *obj, const char *key);

/* 1 when v is an integer (no fraction/exponent) that fits the type, else 0. */
int gn_json_get_u64(const gn_json *v, uint64_t *out);
int gn_json_get_i64(const gn_json *v, int64_t *out);

/* 1 when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
int gn_json_utf8_valid(const char *s, size_t len);

/* Writes s[0..len) as JSON string contents (no quotes) to dst, which may be NULL to only
 * measure; returns the number of bytes (at most 6 * len). */
size_t gn_json_escape(const char *s, size_t len, char *dst);

/* A printable copy of s[0..len) for error messages: control and invalid bytes become '?',
 * long strings are cut at a character boundary and end in "...". cap >= 4. Returns dst. */
char *gn_json_quote(const char *s, size_t len, char *dst, size_t cap);

#endif
