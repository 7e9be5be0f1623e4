/* Safetensors and JSON: round trips, exact F16/BF16 conversion, and a long list of hostile
 * inputs, each of which must fail with a specific status and a message naming the problem. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkdir, rmdir, getpid, access */

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "test_util.h"

/* One tensor entry of a header, e.g. ENT("w", "F32", "[2]", "[0,8]"). */
#define ENT(name, dtype, shape, offs) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offs "}"

static char tmp_dir[256];

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmp_dir, name);
}

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* An image: 8-byte little-endian `declared`, hlen header bytes, data_len bytes 0, 1, 2, ... */
static uint8_t *image_raw(const char *header, size_t hlen, uint64_t declared, size_t data_len,
                          size_t *size) {
    *size = 8 + hlen + data_len;
    uint8_t *img = malloc(*size);
    if (!img) abort();
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)(declared >> (8 * i));
    memcpy(img + 8, header, hlen);
    for (size_t i = 0; i < data_len; i++) img[8 + hlen + i] = (uint8_t)i;
    return img;
}

static uint8_t *image(const char *header, size_t data_len, size_t *size) {
    return image_raw(header, strlen(header), strlen(header), data_len, size);
}

static int has(const gn_error *err, const char *needle) {
    return !needle || strstr(err->message, needle) != NULL;
}

/* Parses buf and checks the status, that the message names the source and both needles, and
 * that a failed parse leaves the result empty. */
static void expect_status(int line, const uint8_t *buf, size_t size, gn_status code,
                          const char *n1, const char *n2) {
    gn_st_file f;
    gn_error err = {0};
    gn_status st = gn_st_parse(buf, size, "mem.safetensors", &f, &err);
    CHECK_MSG(st == code, "line %d: status %d, want %d (%s)", line, (int)st, (int)code,
              err.message);
    if (st == GN_OK) {
        gn_st_free(&f);
        return;
    }
    CHECK_MSG(has(&err, "mem.safetensors") && has(&err, n1) && has(&err, n2),
              "line %d: message '%s' lacks '%s' / '%s'", line, err.message, n1 ? n1 : "",
              n2 ? n2 : "");
    CHECK_MSG(err.code == code, "line %d: err.code %d", line, (int)err.code);
    CHECK_MSG(f.tensors == NULL && f.num_tensors == 0 && f.meta == NULL,
              "line %d: result not empty", line);
}

static void expect_header(int line, const char *header, size_t data_len, gn_status code,
                          const char *n1, const char *n2) {
    size_t size;
    uint8_t *img = image(header, data_len, &size);
    expect_status(line, img, size, code, n1, n2);
    free(img);
}

#define BAD(h, dlen, code, n1, n2) expect_header(__LINE__, h, dlen, code, n1, n2)
#define GOOD(h, dlen) expect_header(__LINE__, h, dlen, GN_OK, NULL, NULL)

/* ---- round trip ------------------------------------------------------------------------- */

static void test_roundtrip(void) {
    char path[512];
    tmp_path(path, sizeof path, "roundtrip.safetensors");
    float w[6] = {1.0f, -2.0f, 3.5f, 0.0f, -0.0f, 1e-30f};
    int64_t nbt = 12345678901234LL;
    int64_t neg[3] = {-1, INT64_MIN, INT64_MAX};
    float scalar = 42.0f;
    gn_st_write_tensor ts[] = {
        {"conv.weight", GN_DTYPE_F32, 2, {2, 3}, w, NULL},
        {"bn.num_batches_tracked", GN_DTYPE_I64, 0, {0}, NULL, &nbt},
        {"empty", GN_DTYPE_F32, 2, {0, 4}, NULL, NULL},
        {"scalar", GN_DTYPE_F32, 0, {0}, &scalar, NULL},
        {"we\"ird\\name\n\xC3\xA9/\x01", GN_DTYPE_F32, 1, {1}, &scalar, NULL},
        {"ints", GN_DTYPE_I64, 1, {3}, NULL, neg},
    };
    gn_st_meta meta[] = {{"arch", "ghostnet_100"},
                         {"quote\"key", "line\nbreak \xF0\x9F\x98\x80 tab\t"}};
    gn_error err = {0};
    gn_status st = gn_st_write(path, ts, 6, meta, 2, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);

    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!file_exists(tmp));

    gn_st_file f;
    st = gn_st_read(path, &f, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st) return;
    CHECK(f.owned != NULL);
    CHECK(f.num_tensors == 6);
    CHECK(f.num_meta == 2);
    for (size_t i = 0; i < f.num_tensors && i < 6; i++) {
        CHECK(strcmp(f.tensors[i].name, ts[i].name) == 0);
        CHECK(f.tensors[i].ndim == ts[i].ndim);
        if (i) CHECK(f.tensors[i].begin == f.tensors[i - 1].end); /* contiguous */
    }
    CHECK(f.tensors[0].begin == 0);
    CHECK(f.tensors[5].end == f.data_size);
    CHECK(f.data_size == 24 + 8 + 0 + 4 + 4 + 24);

    /* The header length is a multiple of 8 and __metadata__ comes first. */
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)f.owned[i] << (8 * i);
    CHECK(hlen % 8 == 0);
    CHECK(memcmp(f.owned + 8, "{\"__metadata__\":", 16) == 0);
    CHECK(f.owned[8 + hlen - 1] == ' ' || f.owned[8 + hlen - 1] == '}');

    const gn_st_tensor *t = gn_st_find(&f, "conv.weight");
    CHECK(t && t->dtype == GN_DTYPE_F32 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6);
    float back[6] = {0};
    CHECK(t && gn_st_to_f32(&f, t, back, &err) == GN_OK);
    CHECK(memcmp(back, w, sizeof w) == 0); /* bit-exact, -0 and denormals included */

    t = gn_st_find(&f, "bn.num_batches_tracked");
    CHECK(t && t->dtype == GN_DTYPE_I64 && t->ndim == 0 && t->numel == 1 && t->end - t->begin == 8);
    if (t) {
        int64_t v = 0;
        for (int i = 0; i < 8; i++) v |= (int64_t)((uint64_t)f.data[t->begin + (size_t)i] << (8 * i));
        CHECK(v == nbt);
        CHECK(gn_st_to_f32(&f, t, back, &err) == GN_ERR_UNSUPPORTED);
        CHECK(strstr(err.message, "I64") != NULL);
    }
    t = gn_st_find(&f, "ints");
    if (t) {
        for (int k = 0; k < 3; k++) {
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u |= (uint64_t)f.data[t->begin + 8 * (size_t)k + (size_t)i] << (8 * i);
            CHECK((int64_t)u == neg[k]);
        }
    }
    t = gn_st_find(&f, "empty");
    CHECK(t && t->numel == 0 && t->begin == t->end && t->shape[0] == 0 && t->shape[1] == 4);
    CHECK(t && gn_st_to_f32(&f, t, NULL, &err) == GN_OK);

    t = gn_st_find(&f, "scalar");
    CHECK(t && t->ndim == 0 && t->numel == 1);
    float sv = 0;
    CHECK(t && gn_st_to_f32(&f, t, &sv, &err) == GN_OK && sv == 42.0f);
    CHECK(gn_st_find(&f, ts[4].name) != NULL);
    CHECK(gn_st_find(&f, "missing") == NULL);

    CHECK(gn_st_meta_get(&f, "arch") && strcmp(gn_st_meta_get(&f, "arch"), "ghostnet_100") == 0);
    const char *q = gn_st_meta_get(&f, "quote\"key");
    CHECK(q && strcmp(q, meta[1].value) == 0);
    CHECK(gn_st_meta_get(&f, "nope") == NULL);
    gn_st_free(&f);
    gn_st_free(&f); /* freeing twice is harmless: the struct is zeroed */

    /* Overwriting replaces the file; no metadata means no __metadata__ entry. */
    st = gn_st_write(path, ts, 1, NULL, 0, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    st = gn_st_read(path, &f, &err);
    CHECK(st == GN_OK && f.num_tensors == 1 && f.num_meta == 0);
    if (st == GN_OK) CHECK(memcmp(f.owned + 8, "{\"conv.weight\"", 14) == 0);
    gn_st_free(&f);

    /* No tensors at all is a valid (empty) file. */
    CHECK(gn_st_write(path, NULL, 0, NULL, 0, &err) == GN_OK);
    CHECK(gn_st_read(path, &f, &err) == GN_OK && f.num_tensors == 0);
    gn_st_free(&f);
    remove(path);
}

/* ---- F16 / BF16 --------------------------------------------------------------------------- */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void test_half_values(void) {
    /* Odd header length: the data section is not aligned, so reads must not assume it is. */
    const char *h = "{" ENT("h", "F16", "[8]", "[0,16]") "," ENT("b", "BF16", "[6]", "[16,28]") "}";
    CHECK(strlen(h) % 2 == 1);
    const uint16_t f16[8] = {0x3C00, 0xC100, 0x7BFF, 0x0001, 0x7C00, 0xFC00, 0x8000, 0x03FF};
    const uint16_t bf16[6] = {0x3F80, 0xC020, 0x7F7F, 0x0001, 0x7F80, 0x7FC0};
    size_t size;
    uint8_t *img = image(h, 28, &size);
    uint8_t *data = img + 8 + strlen(h);
    for (int i = 0; i < 8; i++) put16(data + 2 * i, f16[i]);
    for (int i = 0; i < 6; i++) put16(data + 16 + 2 * i, bf16[i]);
    gn_st_file f;
    gn_error err = {0};
    gn_status st = gn_st_parse(img, size, "half", &f, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st == GN_OK) {
        float v[8];
        CHECK(gn_st_to_f32(&f, &f.tensors[0], v, &err) == GN_OK);
        CHECK(v[0] == 1.0f);
        CHECK(v[1] == -2.5f);
        CHECK(v[2] == 65504.0f);
        CHECK(v[3] == ldexpf(1.0f, -24)); /* smallest subnormal */
        CHECK(isinf(v[4]) && v[4] > 0);
        CHECK(isinf(v[5]) && v[5] < 0);
        CHECK(v[6] == 0.0f && signbit(v[6]));
        CHECK(v[7] == ldexpf(1023.0f, -24)); /* largest subnormal */
        CHECK(gn_st_to_f32(&f, &f.tensors[1], v, &err) == GN_OK);
        CHECK(v[0] == 1.0f);
        CHECK(v[1] == -2.5f);
        CHECK(bits_of(v[2]) == 0x7F7F0000u);
        CHECK(bits_of(v[3]) == 0x00010000u); /* binary32 subnormal */
        CHECK(isinf(v[4]));
        CHECK(isnan(v[5]));
        gn_st_free(&f);
    }
    free(img);
}

/* Every one of the 65536 binary16 patterns against an independent ldexp formula. */
static void test_half_exhaustive(void) {
    const char *h = "{" ENT("h", "F16", "[65536]", "[0,131072]") "}";
    size_t size;
    uint8_t *img = image(h, 131072, &size);
    uint8_t *data = img + 8 + strlen(h);
    for (uint32_t i = 0; i < 65536; i++) put16(data + 2 * i, (uint16_t)i);
    float *v = malloc(65536 * sizeof *v);
    gn_st_file f;
    gn_error err = {0};
    int bad = 0;
    if (v && gn_st_parse(img, size, "exhaustive", &f, &err) == GN_OK &&
        gn_st_to_f32(&f, &f.tensors[0], v, &err) == GN_OK) {
        for (uint32_t i = 0; i < 65536; i++) {
            int sign = (int)(i >> 15), e = (int)((i >> 10) & 31), m = (int)(i & 1023);
            float want;
            if (e == 31)
                want = m ? NAN : INFINITY;
            else if (e == 0)
                want = ldexpf((float)m, -24);
            else
                want = ldexpf((float)(1024 + m), e - 25);
            if (sign) want = -want;
            if (isnan(want)) {
                /* NaN keeps sign and payload. */
                uint32_t expect = ((uint32_t)sign << 31) | 0x7F800000u | ((uint32_t)m << 13);
                bad += bits_of(v[i]) != expect;
            } else {
                bad += bits_of(v[i]) != bits_of(want);
            }
        }
        gn_st_free(&f);
    } else {
        bad = -1;
    }
    CHECK_MSG(bad == 0, "%d F16 values converted wrongly (%s)", bad, err.message);
    free(v);
    free(img);
}

/* ---- malformed inputs ------------------------------------------------------------------- */

static void test_header_length(void) {
    uint8_t five[5] = {1, 2, 3, 4, 5};
    expect_status(__LINE__, five, 0, GN_ERR_FORMAT, "empty", NULL);
    expect_status(__LINE__, NULL, 0, GN_ERR_FORMAT, "empty", NULL);
    expect_status(__LINE__, five, 5, GN_ERR_FORMAT, "truncated", "5 bytes");

    size_t size;
    uint8_t *img = image_raw("{}", 2, 100, 10, &size);
    expect_status(__LINE__, img, size, GN_ERR_FORMAT, "header length 100", "past the end");
    free(img);
    img = image_raw("{}", 2, (uint64_t)1 << 63, 0, &size);
    expect_status(__LINE__, img, size, GN_ERR_FORMAT, "9223372036854775808", "past the end");
    free(img);
    img = image_raw("{}", 2, UINT64_MAX, 0, &size);
    expect_status(__LINE__, img, size, GN_ERR_FORMAT, "18446744073709551615", "past the end");
    free(img);
    img = image_raw("{}", 2, 0, 0, &size);
    expect_status(__LINE__, img, size, GN_ERR_FORMAT, "header JSON", "end of input");
    free(img);
    img = image_raw("{}", 2, 3, 0, &size); /* length one past the end */
    expect_status(__LINE__, img, size, GN_ERR_FORMAT, "past the end", NULL);
    free(img);

    /* Over the 100 MB limit with enough bytes present (calloc: pages are never touched). */
    size_t limit = (size_t)100 * 1024 * 1024, big = 8 + limit + 16;
    uint8_t *huge = calloc(1, big);
    if (huge) {
        uint64_t n = limit + 1;
        for (int i = 0; i < 8; i++) huge[i] = (uint8_t)(n >> (8 * i));
        expect_status(__LINE__, huge, big, GN_ERR_FORMAT, "exceeds the limit", "104857601");
        free(huge);
    }
}

static void test_bad_json(void) {
    BAD("{\"a\":", 0, GN_ERR_FORMAT, "header JSON", "end of input");
    BAD("{\"a\" 1}", 0, GN_ERR_FORMAT, "expected ':'", "at byte 5");
    BAD("{'a':1}", 0, GN_ERR_FORMAT, "expected a string key", "at byte 1");
    BAD("{\"a\":1,}", 0, GN_ERR_FORMAT, "expected a string key", NULL);
    BAD("{\"a\":[1,]}", 0, GN_ERR_FORMAT, "expected a value", NULL);
    BAD("{\"a\":[1 2]}", 0, GN_ERR_FORMAT, "expected ',' or ']'", NULL);
    BAD("{\"a\":1 \"b\":2}", 0, GN_ERR_FORMAT, "expected ',' or '}'", NULL);
    BAD("{\"a\":01}", 0, GN_ERR_FORMAT, "leading zero", NULL);
    BAD("{} x", 0, GN_ERR_FORMAT, "expected end of input", "'x'");
    BAD("{}{}", 0, GN_ERR_FORMAT, "expected end of input", NULL);
    BAD("{\"a\":tru}", 0, GN_ERR_FORMAT, "invalid literal", "true");
    BAD("{\"a\":nul}", 0, GN_ERR_FORMAT, "invalid literal", "null");
    BAD("{\"a\":NaN}", 0, GN_ERR_FORMAT, "expected a value", "'N'");
    BAD("{\"a\":+1}", 0, GN_ERR_FORMAT, "expected a value", "'+'");
    BAD("{\"a\":.5}", 0, GN_ERR_FORMAT, "expected a value", NULL);
    BAD("{\"a\":1.}", 0, GN_ERR_FORMAT, "digit after '.'", NULL);
    BAD("{\"a\":-}", 0, GN_ERR_FORMAT, "digit after '-'", NULL);
    BAD("{\"a\":1e}", 0, GN_ERR_FORMAT, "exponent", NULL);
    BAD("{\"a\":1e+}", 0, GN_ERR_FORMAT, "exponent", NULL);
    BAD("{\"a\":1e999}", 0, GN_ERR_FORMAT, "out of range", NULL);
    BAD("{\"a\":\"x\x01y\"}", 0, GN_ERR_FORMAT, "control character 0x01", "at byte 7");
    BAD("{\"a\":\"tab\there\"}", 0, GN_ERR_FORMAT, "control character 0x09", NULL);
    BAD("{\"a\":\"\xff\"}", 0, GN_ERR_FORMAT, "invalid UTF-8", "0xFF");
    BAD("{\"a\":\"\xc0\x80\"}", 0, GN_ERR_FORMAT, "invalid UTF-8", NULL);       /* overlong */
    BAD("{\"a\":\"\xed\xa0\x80\"}", 0, GN_ERR_FORMAT, "invalid UTF-8", NULL);   /* surrogate */
    BAD("{\"a\":\"\xf4\x90\x80\x80\"}", 0, GN_ERR_FORMAT, "invalid UTF-8", NULL); /* > 10FFFF */
    BAD("{\"a\":\"\xe2\x82\"}", 0, GN_ERR_FORMAT, "invalid UTF-8", NULL);       /* cut short */
    BAD("{\"a\\q\":1}", 0, GN_ERR_FORMAT, "invalid escape '\\q'", NULL);
    BAD("{\"a\\x41\":1}", 0, GN_ERR_FORMAT, "invalid escape '\\x'", NULL);
    BAD("{\"\\u12G4\":1}", 0, GN_ERR_FORMAT, "invalid \\u escape", NULL);
    BAD("{\"\\u12\":1}", 0, GN_ERR_FORMAT, "invalid \\u escape", NULL);
    BAD("{\"\\uD800\":1}", 0, GN_ERR_FORMAT, "unpaired high surrogate", NULL);
    BAD("{\"\\uDC00\":1}", 0, GN_ERR_FORMAT, "unpaired low surrogate", NULL);
    BAD("{\"\\uD800\\u0041\":1}", 0, GN_ERR_FORMAT, "unpaired high surrogate", NULL);
    BAD("{\"\\uD800\\uD800\":1}", 0, GN_ERR_FORMAT, "unpaired high surrogate", NULL);
    BAD("{\"a\":\"unterminated", 0, GN_ERR_FORMAT, "unterminated string", NULL);
    BAD("{\"a\":\"ends in backslash\\", 0, GN_ERR_FORMAT, "unterminated string", NULL);

    /* NUL padding is not whitespace. */
    size_t size;
    uint8_t *img = image_raw("{}\0\0\0\0\0\0", 8, 8, 0, &size);
    expect_status(__LINE__, img, size, GN_ERR_FORMAT, "expected end of input", "0x00");
    free(img);
}

static void test_bad_structure(void) {
    BAD("[]", 0, GN_ERR_FORMAT, "header JSON is an array", "expected an object");
    BAD("\"str\"", 0, GN_ERR_FORMAT, "header JSON is a string", NULL);
    BAD("42", 0, GN_ERR_FORMAT, "header JSON is a number", NULL);
    BAD("null", 0, GN_ERR_FORMAT, "header JSON is null", NULL);
    BAD("{\"w\":5}", 0, GN_ERR_FORMAT, "tensor 'w'", "entry is a number");
    BAD("{\"w\":[]}", 0, GN_ERR_FORMAT, "tensor 'w'", "entry is an array");
    BAD("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, GN_ERR_FORMAT, "tensor 'w'",
        "missing field 'dtype'");
    BAD("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, GN_ERR_FORMAT, "tensor 'w'",
        "missing field 'shape'");
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, GN_ERR_FORMAT, "tensor 'w'",
        "missing field 'data_offsets'");
    BAD("{\"w\":{}}", 0, GN_ERR_FORMAT, "missing field 'dtype'", NULL);
    BAD("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
        GN_ERR_FORMAT, "tensor 'w'", "unknown field 'extra'");
    BAD("{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
        GN_ERR_FORMAT, "duplicate key 'dtype'", NULL);
    BAD("{" ENT("w", "F32", "[1]", "[0,4]") "," ENT("w", "F32", "[1]", "[4,8]") "}", 8,
        GN_ERR_FORMAT, "duplicate key 'w'", "header JSON");

    /* Wrong types. */
    BAD("{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, GN_ERR_FORMAT,
        "tensor 'w'", "dtype is a number");
    BAD("{" ENT("w", "F32", "\"x\"", "[0,4]") "}", 4, GN_ERR_FORMAT, "tensor 'w'",
        "shape is a string");
    BAD("{" ENT("w", "F32", "{}", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape is an object", NULL);
    BAD("{" ENT("w", "F32", "[1.5]", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape[0]", "not an integer");
    BAD("{" ENT("w", "F32", "[1e2]", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape[0]", "not an integer");
    BAD("{" ENT("w", "F32", "[1.0]", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape[0]", "not an integer");
    BAD("{" ENT("w", "F32", "[2,\"1\"]", "[0,8]") "}", 8, GN_ERR_FORMAT, "shape[1] is a string",
        NULL);
    BAD("{" ENT("w", "F32", "[null]", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape[0] is null", NULL);
    BAD("{" ENT("w", "F32", "[1]", "{\"a\":1}") "}", 4, GN_ERR_FORMAT, "tensor 'w'",
        "data_offsets is an object");
    BAD("{" ENT("w", "F32", "[1]", "[0]") "}", 4, GN_ERR_FORMAT, "data_offsets has 1 entries",
        NULL);
    BAD("{" ENT("w", "F32", "[1]", "[0,4,8]") "}", 8, GN_ERR_FORMAT, "data_offsets has 3 entries",
        NULL);
    BAD("{" ENT("w", "F32", "[1]", "[\"0\",\"4\"]") "}", 4, GN_ERR_FORMAT,
        "data_offsets[0] is a string", NULL);
    BAD("{" ENT("w", "F32", "[1]", "[0,4.0]") "}", 4, GN_ERR_FORMAT, "data_offsets[1]",
        "not an integer");
    BAD("{" ENT("w", "F32", "[1]", "[-4,4]") "}", 4, GN_ERR_FORMAT, "data_offsets[0]",
        "negative");
    BAD("{" ENT("w", "F32", "[1]", "[0,18446744073709551616]") "}", 4, GN_ERR_FORMAT,
        "data_offsets[1]", "too large");
}

static void test_bad_shapes_and_offsets(void) {
    BAD("{" ENT("w", "F32", "[-1]", "[0,4]") "}", 4, GN_ERR_FORMAT, "tensor 'w'", "negative");
    BAD("{" ENT("w", "F32", "[2,-3]", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape[1] = -3", "negative");
    BAD("{" ENT("w", "F32", "[-99999999999999999999]", "[0,4]") "}", 4, GN_ERR_FORMAT,
        "negative", NULL);
    BAD("{" ENT("w", "F32", "[9223372036854775808]", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape[0]",
        "too large");
    BAD("{" ENT("w", "F32", "[18446744073709551616]", "[0,4]") "}", 4, GN_ERR_FORMAT, "shape[0]",
        "too large");
    BAD("{" ENT("w", "F32", "[4294967296,4294967296]", "[0,4]") "}", 4, GN_ERR_FORMAT,
        "tensor 'w'", "huge dimensions");
    BAD("{" ENT("w", "F32", "[9223372036854775807,9223372036854775807,2]", "[0,4]") "}", 4,
        GN_ERR_FORMAT, "huge dimensions", NULL);
    /* 2^62 elements fit in size_t; 2^62 * 4 bytes does not. */
    BAD("{" ENT("w", "F32", "[4611686018427387904]", "[0,4]") "}", 4, GN_ERR_FORMAT,
        "huge dimensions", "F32");
    BAD("{" ENT("w", "F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]") "}", 4, GN_ERR_UNSUPPORTED,
        "tensor 'w'", "9 dimensions");
    BAD("{" ENT("conv_stem.weight", "F32", "[25]", "[0,100]") "}", 64, GN_ERR_FORMAT,
        "mem.safetensors: tensor 'conv_stem.weight': data_offsets [0, 100] past the end of the "
        "data section (64 bytes)",
        NULL);
    BAD("{" ENT("w", "F32", "[0]", "[5,5]") "}", 4, GN_ERR_FORMAT, "past the end", NULL);
    BAD("{" ENT("w", "F32", "[1]", "[18446744073709551611,18446744073709551615]") "}", 4,
        GN_ERR_FORMAT, "past the end", NULL);
    BAD("{" ENT("w", "F32", "[1]", "[8,4]") "}", 8, GN_ERR_FORMAT, "tensor 'w'",
        "end is before begin");
    BAD("{" ENT("w", "F32", "[3]", "[0,8]") "}", 8, GN_ERR_FORMAT, "tensor 'w'",
        "span 8 bytes but shape [3] of F32 needs 12");
    BAD("{" ENT("w", "I64", "[2]", "[0,8]") "}", 8, GN_ERR_FORMAT, "shape [2] of I64 needs 16",
        NULL);
    BAD("{" ENT("w", "F16", "[0]", "[0,2]") "}", 8, GN_ERR_FORMAT, "needs 0", NULL);
    BAD("{" ENT("a", "F32", "[2]", "[0,8]") "," ENT("b", "F32", "[2]", "[4,12]") "}", 12,
        GN_ERR_FORMAT, "tensors 'a' and 'b' overlap", "[0, 8] and [4, 12]");
    BAD("{" ENT("a", "F32", "[4]", "[0,16]") "," ENT("b", "F32", "[1]", "[4,8]") "," ENT(
            "c", "F32", "[1]", "[8,12]") "}",
        16, GN_ERR_FORMAT, "overlap", NULL);
    BAD("{" ENT("a", "F32", "[1]", "[0,4]") "," ENT("b", "F32", "[1]", "[0,4]") "}", 4,
        GN_ERR_FORMAT, "overlap", NULL);
    /* Containment seen only through the furthest end, not the previous range. */
    BAD("{" ENT("big", "F32", "[8]", "[0,32]") "," ENT("x", "F32", "[1]", "[4,8]") "," ENT(
            "y", "F32", "[1]", "[20,24]") "}",
        32, GN_ERR_FORMAT, "overlap", NULL);

    BAD("{" ENT("w", "F64", "[1]", "[0,8]") "}", 8, GN_ERR_UNSUPPORTED, "tensor 'w'",
        "unsupported dtype 'F64'");
    BAD("{" ENT("w", "U8", "[1]", "[0,1]") "}", 8, GN_ERR_UNSUPPORTED, "tensor 'w'", "'U8'");
    BAD("{" ENT("w", "f32", "[1]", "[0,4]") "}", 8, GN_ERR_UNSUPPORTED, "'f32'", NULL);
    BAD("{" ENT("w", "F32\\n", "[1]", "[0,4]") "}", 8, GN_ERR_UNSUPPORTED, "'F32?'", NULL);
    BAD("{" ENT("a\\u0000b", "F32", "[1]", "[0,4]") "}", 4, GN_ERR_FORMAT, "tensor 'a?b'", "NUL");
}

static void test_bad_metadata(void) {
    BAD("{\"__metadata__\":{\"k\":1}}", 0, GN_ERR_FORMAT, "__metadata__ 'k' is a number",
        "expected a string");
    BAD("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, GN_ERR_FORMAT, "'k' is an object", NULL);
    BAD("{\"__metadata__\":{\"a\":\"b\",\"k\":null}}", 0, GN_ERR_FORMAT, "'k' is null", NULL);
    BAD("{\"__metadata__\":[]}", 0, GN_ERR_FORMAT, "__metadata__ is an array", NULL);
    BAD("{\"__metadata__\":\"x\"}", 0, GN_ERR_FORMAT, "__metadata__ is a string", NULL);
    BAD("{\"__metadata__\":{},\"__metadata__\":{}}", 0, GN_ERR_FORMAT,
        "duplicate key '__metadata__'", NULL);
    BAD("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, GN_ERR_FORMAT, "duplicate key 'k'",
        NULL);
    BAD("{\"__metadata__\":{\"k\":\"a\\u0000b\"}}", 0, GN_ERR_FORMAT, "NUL", NULL);
}

static void test_bombs(void) {
    /* Nesting far past the depth limit must fail cleanly (not overflow the stack). */
    size_t depth = 100000, len = 5 + 2 * depth + 1;
    char *h = malloc(len + 1);
    if (!h) abort();
    memcpy(h, "{\"a\":", 5);
    memset(h + 5, '[', depth);
    memset(h + 5 + depth, ']', depth);
    h[len - 1] = '}';
    h[len] = '\0';
    BAD(h, 0, GN_ERR_FORMAT, "nesting deeper than 64", NULL);
    free(h);

    /* Over a million values. */
    size_t n = ((size_t)1 << 20) + 10;
    h = malloc(2 * n + 16);
    if (!h) abort();
    size_t k = 0;
    k += (size_t)sprintf(h, "{\"a\":[");
    for (size_t i = 0; i < n; i++) {
        h[k++] = '0';
        h[k++] = ',';
    }
    h[k - 1] = ']';
    h[k++] = '}';
    h[k] = '\0';
    BAD(h, 0, GN_ERR_FORMAT, "more than 1048576 values", NULL);
    free(h);

    /* Many tensors (duplicate detection by sorting, not pairwise). */
    size_t count = 2000, cap = count * 96 + 64;
    h = malloc(cap);
    if (!h) abort();
    k = (size_t)sprintf(h, "{");
    for (size_t i = 0; i < count; i++)
        k += (size_t)snprintf(h + k, cap - k,
                              "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}",
                              i ? "," : "", i, 4 * i, 4 * i + 4);
    snprintf(h + k, cap - k, "}");
    GOOD(h, 4 * count);
    /* Rename the last tensor to an earlier one's name. */
    char *last = strstr(h, "\"t1999\"");
    if (last) memcpy(last, "\"t1000\"", 7);
    BAD(h, 4 * count, GN_ERR_FORMAT, "duplicate key 't1000'", NULL);
    free(h);
}

static void test_valid_edges(void) {
    GOOD("{}", 0);
    GOOD("{}      ", 0);
    GOOD(" \t\r\n{ } ", 0);
    GOOD("{\"__metadata__\":null}", 0);
    GOOD("{\"__metadata__\":{}}", 0);
    GOOD("{" ENT("w", "F32", "[-0]", "[0,0]") "}", 0);
    GOOD("{" ENT("w", "F32", "[]", "[0,4]") "}", 4);
    GOOD("{" ENT("w", "F32", "[0,4611686018427387904,4611686018427387904]", "[0,0]") "}", 0);
    GOOD("{" ENT("w", "F32", "[1]", "[4,8]") "}", 12); /* gaps are allowed */
    /* An empty tensor sitting inside another tensor's range holds no bytes. */
    GOOD("{" ENT("a", "F32", "[4]", "[0,16]") "," ENT("e", "F32", "[0]", "[8,8]") "}", 16);
    GOOD("{" ENT("w", "BF16", "[1,1,1,1,1,1,1,1]", "[0,2]") "}", 2);

    /* Escapes decode to UTF-8 in names; key order and metadata position are kept. */
    const char *h = "{" ENT("a\\u00e9\\ud83d\\ude00\\/\\\"", "F32", "[1]", "[0,4]")
        ",\"__metadata__\":{\"format\":\"pt\",\"\\u00fc\":\"\\n\"},"
        ENT("b", "I64", "[1]", "[4,12]") "}";
    size_t size;
    uint8_t *img = image(h, 12, &size);
    gn_st_file f;
    gn_error err = {0};
    gn_status st = gn_st_parse(img, size, NULL, &f, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st == GN_OK) {
        CHECK(f.num_tensors == 2 && f.num_meta == 2);
        CHECK(strcmp(f.tensors[0].name, "a\xC3\xA9\xF0\x9F\x98\x80/\"") == 0);
        CHECK(strcmp(f.tensors[1].name, "b") == 0 && f.tensors[1].dtype == GN_DTYPE_I64);
        CHECK(gn_st_meta_get(&f, "format") && strcmp(gn_st_meta_get(&f, "format"), "pt") == 0);
        CHECK(gn_st_meta_get(&f, "\xC3\xBC") && strcmp(gn_st_meta_get(&f, "\xC3\xBC"), "\n") == 0);
        CHECK(f.data == img + 8 + strlen(h) && f.data_size == 12);
        gn_st_free(&f);
    }
    free(img);

    /* A NULL `what` falls back to "buffer" in messages. */
    st = gn_st_parse((const uint8_t *)"1234", 4, NULL, &f, &err);
    CHECK(st == GN_ERR_FORMAT && strstr(err.message, "buffer") != NULL);
    CHECK(gn_st_parse(NULL, 0, "x", NULL, &err) == GN_ERR_INVALID_ARG);
    /* err may be NULL: the status still tells what happened. */
    img = image("{\"w\":[]}", 0, &size);
    CHECK(gn_st_parse(img, size, "x", &f, NULL) == GN_ERR_FORMAT);
    free(img);
    img = image("{\"w\"", 0, &size);
    CHECK(gn_st_parse(img, size, "x", &f, NULL) == GN_ERR_FORMAT);
    free(img);
}

/* Parses a mutant; returns 1 if accepted. Accepted tensors must lie inside the data section
 * and convert; rejections must come with a message. *ok is cleared on any violation. */
static int parse_mutant(const uint8_t *buf, size_t size, int *ok) {
    uint8_t *m = malloc(size ? size : 1); /* exact size, so ASan sees any overread */
    if (!m) abort();
    if (size) memcpy(m, buf, size);
    gn_st_file f;
    gn_error err = {0};
    float out[8];
    int accepted = gn_st_parse(m, size, "mut", &f, &err) == GN_OK;
    if (accepted) {
        for (size_t i = 0; i < f.num_tensors; i++) {
            const gn_st_tensor *t = &f.tensors[i];
            *ok &= t->end <= f.data_size && t->begin <= t->end;
            if (t->dtype != GN_DTYPE_I64 && t->numel <= 8)
                *ok &= gn_st_to_f32(&f, t, out, &err) == GN_OK;
        }
        gn_st_free(&f);
    } else {
        *ok &= err.message[0] != '\0';
    }
    free(m);
    return accepted;
}

/* Every single-byte mutation and every truncation of a valid file must parse or fail cleanly
 * (the sanitizers watch). */
static void test_mutations(void) {
    const char *h = "{\"__metadata__\":{\"k\":\"v\"}," ENT("a", "F16", "[2,1]", "[0,4]") "," ENT(
        "b", "BF16", "[1]", "[4,6]") "," ENT("c", "F32", "[1]", "[8,12]") "}";
    size_t size;
    uint8_t *img = image(h, 12, &size);
    static const uint8_t values[] = {0x00, ' ', '"', '[', ']', '{', '}', ',', ':', '9', '-',
                                     '\\', 'e', '.', 0x7F, 0xC3, 0xFF};
    int accepted = 0, ok = 1;
    uint8_t *m = malloc(size);
    if (!m) abort();
    for (size_t pos = 0; pos < size; pos++) {
        for (size_t v = 0; v <= sizeof values; v++) {
            memcpy(m, img, size);
            m[pos] = v < sizeof values ? values[v] : (uint8_t)(m[pos] ^ 1);
            accepted += parse_mutant(m, size, &ok);
        }
    }
    for (size_t len = 0; len < size; len++) CHECK(!parse_mutant(img, len, &ok));
    CHECK(parse_mutant(img, size, &ok));
    CHECK(accepted > 0);
    CHECK(ok);
    free(m);
    free(img);
}

/* ---- files on disk ---------------------------------------------------------------------- */

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) abort();
    if (n) fwrite(data, 1, n, fp);
    fclose(fp);
}

static void test_disk_read(void) {
    char path[512];
    gn_st_file f;
    gn_error err = {0};
    tmp_path(path, sizeof path, "does_not_exist.safetensors");
    CHECK(gn_st_read(path, &f, &err) == GN_ERR_IO);
    CHECK(strstr(err.message, "does_not_exist.safetensors") != NULL);
    CHECK(f.owned == NULL && f.tensors == NULL);

    tmp_path(path, sizeof path, "empty.safetensors");
    write_bytes(path, "", 0);
    CHECK(gn_st_read(path, &f, &err) == GN_ERR_FORMAT);
    CHECK(strstr(err.message, "empty.safetensors") && strstr(err.message, "empty file"));
    remove(path);

    tmp_path(path, sizeof path, "short.safetensors");
    write_bytes(path, "\x10\0\0", 3);
    CHECK(gn_st_read(path, &f, &err) == GN_ERR_FORMAT);
    CHECK(strstr(err.message, "short.safetensors") && strstr(err.message, "truncated"));
    remove(path);

    /* A valid file cut inside its data section. */
    tmp_path(path, sizeof path, "cut.safetensors");
    const char *h = "{" ENT("conv_stem.weight", "F32", "[4]", "[0,16]") "}";
    size_t size;
    uint8_t *img = image(h, 16, &size);
    write_bytes(path, img, size - 4);
    CHECK(gn_st_read(path, &f, &err) == GN_ERR_FORMAT);
    CHECK(strstr(err.message, "cut.safetensors: tensor 'conv_stem.weight'") &&
          strstr(err.message, "past the end of the data section (12 bytes)"));
    write_bytes(path, img, size);
    CHECK(gn_st_read(path, &f, &err) == GN_OK && f.num_tensors == 1);
    gn_st_free(&f);
    free(img);
    remove(path);

    /* A directory is not a file. */
    CHECK(gn_st_read(tmp_dir, &f, &err) != GN_OK);
}

static void test_write_failures(void) {
    float w[2] = {1, 2};
    int64_t i = 7;
    gn_st_write_tensor good = {"w", GN_DTYPE_F32, 1, {2}, w, NULL};
    gn_error err = {0};
    char path[512], tmp[600];

    /* Into a directory that does not exist: an I/O error and no file anywhere. */
    tmp_path(path, sizeof path, "no_such_dir/out.safetensors");
    CHECK(gn_st_write(path, &good, 1, NULL, 0, &err) == GN_ERR_IO);
    CHECK(strstr(err.message, "out.safetensors") != NULL);
    CHECK(!file_exists(path));

    /* The rename fails (the target is a directory): the temp file must be removed. */
    tmp_path(path, sizeof path, "a_directory");
    CHECK(mkdir(path, 0700) == 0);
    CHECK(gn_st_write(path, &good, 1, NULL, 0, &err) == GN_ERR_IO);
    CHECK(strstr(err.message, "rename") != NULL);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK(!file_exists(tmp));
    rmdir(path);

    /* Invalid arguments are refused before anything is written: an existing file survives. */
    tmp_path(path, sizeof path, "keep.safetensors");
    CHECK(gn_st_write(path, &good, 1, NULL, 0, &err) == GN_OK);
    gn_st_write_tensor bad[2] = {good, good};
    struct {
        gn_st_write_tensor t;
        const char *needle;
    } cases[] = {
        {{"h", GN_DTYPE_F16, 1, {2}, w, NULL}, "only F32 and I64"},
        {{"n", GN_DTYPE_F32, 1, {2}, NULL, NULL}, "data is NULL"},
        {{"n", GN_DTYPE_I64, 1, {1}, w, NULL}, "data is NULL"},
        {{"d", GN_DTYPE_F32, 1, {-2}, w, NULL}, "negative dimension"},
        {{"d", GN_DTYPE_F32, 9, {1}, w, NULL}, "ndim 9"},
        {{"__metadata__", GN_DTYPE_F32, 1, {2}, w, NULL}, "reserved"},
        {{NULL, GN_DTYPE_F32, 1, {2}, w, NULL}, "name"},
        {{"\xff", GN_DTYPE_F32, 1, {2}, w, NULL}, "UTF-8"},
        {{"w", GN_DTYPE_F32, 1, {2}, w, NULL}, "duplicate tensor 'w'"},
        {{"big", GN_DTYPE_I64, 2, {INT64_MAX, INT64_MAX}, NULL, &i}, "overflows"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bad[1] = cases[c].t;
        gn_status st = gn_st_write(path, bad, 2, NULL, 0, &err);
        CHECK_MSG(st != GN_OK && strstr(err.message, cases[c].needle),
                  "case %zu: status %d, message '%s'", c, (int)st, err.message);
    }
    gn_st_meta dup[2] = {{"k", "1"}, {"k", "2"}};
    CHECK(gn_st_write(path, &good, 1, dup, 2, &err) == GN_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "duplicate metadata key 'k'") != NULL);
    gn_st_meta null_value = {"k", NULL};
    CHECK(gn_st_write(path, &good, 1, &null_value, 1, &err) == GN_ERR_INVALID_ARG);
    CHECK(gn_st_write(NULL, &good, 1, NULL, 0, &err) == GN_ERR_INVALID_ARG);
    CHECK(gn_st_write(path, NULL, 1, NULL, 0, &err) == GN_ERR_INVALID_ARG);

    gn_st_file f;
    CHECK(gn_st_read(path, &f, &err) == GN_OK && f.num_tensors == 1);
    gn_st_free(&f);
    remove(path);

    /* An empty tensor may have a NULL pointer. */
    gn_st_write_tensor empty = {"e", GN_DTYPE_I64, 2, {3, 0}, NULL, NULL};
    CHECK(gn_st_write(path, &empty, 1, NULL, 0, &err) == GN_OK);
    remove(path);
}

/* ---- the JSON layer directly ------------------------------------------------------------ */

static int parse_json(const char *text, gn_json_doc *doc, gn_error *err) {
    return gn_json_parse(text, strlen(text), NULL, doc, err) == GN_OK;
}

static void test_json(void) {
    gn_json_doc doc;
    gn_error err = {0};
    const char *text =
        "{\"n\":[0,-0,1.5e3,-0.25,1E+2,12345678901234567890,18446744073709551616,"
        "-9223372036854775808,9223372036854775807,1e-400,0.000001,true,false,null],"
        "\"s\":\"\\b\\f\\n\\r\\t\\u0041\\u00E9\\uFFFF\"}";
    CHECK(parse_json(text, &doc, &err));
    const gn_json *n = gn_json_object_get(&doc.root, "n");
    const gn_json *s = gn_json_object_get(&doc.root, "s");
    CHECK(n && n->type == GN_JSON_ARRAY && n->u.array.count == 14);
    CHECK(gn_json_object_get(&doc.root, "zz") == NULL);
    if (n && n->u.array.count == 14) {
        const gn_json *v = n->u.array.items;
        uint64_t u;
        int64_t i;
        CHECK(gn_json_get_u64(&v[0], &u) && u == 0);
        CHECK(gn_json_get_u64(&v[1], &u) && u == 0);
        CHECK(v[2].u.number.value == 1500.0 && !v[2].u.number.is_integer);
        CHECK(!gn_json_get_u64(&v[2], &u));
        CHECK(v[3].u.number.value == -0.25);
        CHECK(v[4].u.number.value == 100.0 && !gn_json_get_i64(&v[4], &i));
        CHECK(gn_json_get_u64(&v[5], &u) && u == 12345678901234567890ull);
        CHECK(!gn_json_get_i64(&v[5], &i));
        CHECK(!gn_json_get_u64(&v[6], &u) && v[6].u.number.overflow);
        CHECK(v[6].u.number.value == 18446744073709551616.0);
        CHECK(gn_json_get_i64(&v[7], &i) && i == INT64_MIN);
        CHECK(!gn_json_get_u64(&v[7], &u));
        CHECK(gn_json_get_i64(&v[8], &i) && i == INT64_MAX);
        CHECK(v[9].u.number.value == 0.0);
        CHECK(fabs(v[10].u.number.value - 1e-6) < 1e-21);
        CHECK(v[11].type == GN_JSON_BOOL && v[11].u.boolean == 1);
        CHECK(v[12].type == GN_JSON_BOOL && v[12].u.boolean == 0);
        CHECK(v[13].type == GN_JSON_NULL);
        CHECK(!gn_json_get_u64(&v[13], &u));
    }
    CHECK(s && s->type == GN_JSON_STRING &&
          s->u.string.len == 5 + 1 + 2 + 3 &&
          memcmp(s->u.string.ptr, "\b\f\n\r\tA\xC3\xA9\xEF\xBF\xBF", 11) == 0);
    gn_json_doc_free(&doc);
    gn_json_doc_free(&doc);

    /* Depth: 64 nested containers are fine, 65 are not. */
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = '\0';
    CHECK(parse_json(deep, &doc, &err));
    gn_json_doc_free(&doc);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    deep[130] = '\0';
    CHECK(!parse_json(deep, &doc, &err) && strstr(err.message, "nesting") != NULL);
    CHECK(doc.blocks == NULL);

    /* Options: duplicates allowed when asked, tighter limits honoured. */
    gn_json_options opt = gn_json_options_default();
    opt.reject_duplicate_keys = 0;
    CHECK(gn_json_parse("{\"a\":1,\"a\":2}", 13, &opt, &doc, &err) == GN_OK);
    CHECK(doc.root.u.object.count == 2);
    gn_json_doc_free(&doc);
    opt.max_values = 3;
    CHECK(gn_json_parse("[1,2,3]", 7, &opt, &doc, &err) == GN_ERR_FORMAT);
    CHECK(gn_json_parse("[1,2]", 5, &opt, &doc, &err) == GN_OK);
    gn_json_doc_free(&doc);
    CHECK(gn_json_parse("", 0, NULL, &doc, &err) == GN_ERR_FORMAT);
    CHECK(strstr(err.message, "end of input at byte 0") != NULL);
    /* Parsing is bounded by len, not by a terminator. */
    CHECK(gn_json_parse("[1]garbage", 3, NULL, &doc, &err) == GN_OK);
    gn_json_doc_free(&doc);

    /* A long string spanning several arena blocks. */
    size_t big = 200000;
    char *long_text = malloc(big + 3);
    if (long_text) {
        long_text[0] = '"';
        memset(long_text + 1, 'x', big);
        long_text[big + 1] = '"';
        CHECK(gn_json_parse(long_text, big + 2, NULL, &doc, &err) == GN_OK &&
              doc.root.u.string.len == big);
        gn_json_doc_free(&doc);
        free(long_text);
    }

    /* Escaping for the writer, and quoting for messages. */
    const char raw[] = "a\"b\\c\n\x01\x7f\xC3\xA9";
    char esc[64];
    size_t len = gn_json_escape(raw, sizeof raw - 1, esc);
    CHECK(len == gn_json_escape(raw, sizeof raw - 1, NULL));
    CHECK(len == 18 && memcmp(esc, "a\\\"b\\\\c\\n\\u0001\x7f\xC3\xA9", len) == 0);
    char q[16];
    CHECK(strcmp(gn_json_quote("a\nb", 3, q, sizeof q), "a?b") == 0);
    CHECK(strcmp(gn_json_quote("0123456789abcdefghij", 20, q, sizeof q), "0123456789ab...") == 0);
    /* The cut never splits a UTF-8 character. */
    CHECK(strcmp(gn_json_quote("0123456789a\xC3\xA9zzzz", 17, q, sizeof q), "0123456789a...") == 0);
    CHECK(strcmp(gn_json_quote("\xff", 1, q, sizeof q), "?") == 0);
    CHECK(gn_json_utf8_valid("\xF0\x9F\x98\x80", 4) && !gn_json_utf8_valid("\xF0\x9F\x98", 3));
    CHECK(strcmp(gn_json_type_name(GN_JSON_OBJECT), "object") == 0);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/gn_st_test_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_roundtrip();
    test_half_values();
    test_half_exhaustive();
    test_header_length();
    test_bad_json();
    test_bad_structure();
    test_bad_shapes_and_offsets();
    test_bad_metadata();
    test_bombs();
    test_valid_edges();
    test_mutations();
    test_disk_read();
    test_write_failures();
    test_json();
    rmdir(tmp_dir);
    TEST_MAIN_END();
}
