/* Image decoding and preprocessing: hand-computed resampling, crop and luma cases, PNG/JPEG
 * round trips through libpng/libjpeg encoders, and malformed inputs (which must fail with the
 * right status, leave the output empty and leak nothing - this runs under ASan). */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jpeglib.h>
#include <png.h>

#include "ghostnet.h"
#include "io/image_internal.h"
#include "test_util.h"

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct buffer {
    uint8_t *data;
    size_t size, cap;
} buffer;

static void buffer_append(buffer *b, const void *p, size_t n) {
    if (b->size + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->size + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) abort();
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->size, p, n);
    b->size += n;
}

/* CRC-32 as PNG uses it (so crafted chunks pass libpng's checks). */
static uint32_t crc32_png(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Offset of the first chunk of `type` in a PNG (its length field), or 0. */
static size_t png_find_chunk(const uint8_t *png, size_t size, const char *type) {
    size_t pos = 8;
    while (pos + 12 <= size) {
        uint32_t len = be32(png + pos);
        if (memcmp(png + pos + 4, type, 4) == 0) return pos;
        pos += 12 + (size_t)len;
    }
    return 0;
}

/* Recomputes the CRC of the chunk starting at `pos`. */
static void png_fix_crc(uint8_t *png, size_t pos) {
    uint32_t len = be32(png + pos);
    put_be32(png + pos + 8 + len, crc32_png(png + pos + 4, 4 + (size_t)len));
}

static void png_write_cb(png_structp png, png_bytep data, size_t n) {
    buffer_append(png_get_io_ptr(png), data, n);
}

static void png_flush_cb(png_structp png) { (void)png; }

typedef struct png_spec {
    int width, height, depth, color, interlace;
    const uint8_t *rows; /* packed rows as PNG stores them (16-bit big-endian) */
    const png_color *palette;
    int num_palette;
    const uint8_t *trans; /* palette alpha, or NULL */
    int num_trans;
    const png_color_16 *trans_color; /* grey/RGB tRNS, or NULL */
} png_spec;

static size_t png_row_bytes(const png_spec *s) {
    int samples = s->color == PNG_COLOR_TYPE_RGB ? 3 : s->color == PNG_COLOR_TYPE_RGBA ? 4
                : s->color == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
    return ((size_t)s->width * samples * s->depth + 7) / 8;
}

/* Encodes with libpng (its default error handler aborts the test on misuse). */
static buffer encode_png(const png_spec *s) {
    buffer out = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (!png || !info || setjmp(png_jmpbuf(png))) abort();
    png_set_write_fn(png, &out, png_write_cb, png_flush_cb);
    png_set_check_for_invalid_index(png, 1); /* allow out-of-palette indices (a test case) */
    png_set_IHDR(png, info, (png_uint_32)s->width, (png_uint_32)s->height, s->depth, s->color,
                 s->interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (s->palette) png_set_PLTE(png, info, s->palette, s->num_palette);
    if (s->trans || s->trans_color)
        png_set_tRNS(png, info, s->trans, s->num_trans, s->trans_color);
    png_write_info(png, info);
    png_bytep *rows = malloc((size_t)s->height * sizeof *rows);
    if (!rows) abort();
    for (int y = 0; y < s->height; y++) rows[y] = (png_bytep)s->rows + (size_t)y * png_row_bytes(s);
    png_write_image(png, rows);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(rows);
    return out;
}

/* Encodes 8-bit pixels (components 1, 3 or 4 = CMYK) with libjpeg. */
static buffer encode_jpeg(const uint8_t *pixels, int w, int h, int components, int quality,
                          int progressive) {
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char *mem = NULL;
    unsigned long mem_size = 0;
    jpeg_mem_dest(&cinfo, &mem, &mem_size);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = components;
    cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)pixels + (size_t)cinfo.next_scanline * w * components;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    buffer out = {0};
    buffer_append(&out, mem, mem_size);
    free(mem);
    return out;
}

static uint32_t rng_state = 12345;
static uint8_t rand8(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return (uint8_t)(rng_state >> 24);
}

static int is_empty(const gn_image *im) {
    return im->pixels == NULL && im->width == 0 && im->height == 0 && im->channels == 0;
}

/* Decodes and expects failure with `code`; checks the output is left empty. */
static void expect_decode_fail(const uint8_t *data, size_t size, gn_status code,
                               const char *needle, const char *what) {
    gn_image im;
    gn_error err = {0};
    gn_status st = gn_image_decode(data, size, &im, &err);
    CHECK_MSG(st == code, "%s: status %d (%s), want %d", what, (int)st, err.message, (int)code);
    CHECK_MSG(is_empty(&im), "%s: output not empty", what);
    if (st == GN_OK) gn_image_free(&im);
    if (needle) CHECK_MSG(strstr(err.message, needle) != NULL, "%s: message '%s'", what, err.message);
}

/* ---- resampling, crop, luma ----------------------------------------------------------------- */

static void test_resize_by_hand(void) {
    /* 4 -> 2: scale 2 widens the triangle to support 2. Output 0 centres at 1.0 and uses
     * inputs 0..2 with weights 0.75, 0.75, 0.25 (normalised 3/7, 3/7, 1/7):
     * (0*3 + 100*3 + 200) / 7 = 71.4 -> 71. Output 1 centres at 3.0, inputs 1..3 with 1/7,
     * 3/7, 3/7: (100 + 600 + 765) / 7 = 209.3 -> 209. */
    const uint8_t ramp[4] = {0, 100, 200, 255};
    uint8_t out[4] = {0};
    CHECK(gn_resize_bilinear_window(ramp, 4, 1, 1, 2, 1, 0, 0, 2, 1, out, 2) == GN_OK);
    CHECK(out[0] == 71 && out[1] == 209);
    /* The same along the vertical axis. */
    memset(out, 0, sizeof out);
    CHECK(gn_resize_bilinear_window(ramp, 1, 4, 1, 1, 2, 0, 0, 1, 2, out, 1) == GN_OK);
    CHECK(out[0] == 71 && out[1] == 209);
    /* 2 -> 4 upscaling: support stays 1; centres 0.25, 0.75, 1.25, 1.75 give 0, 0.25*255
     * = 63.75 -> 64, 0.75*255 = 191.25 -> 191, 255 (edge taps clipped away). */
    const uint8_t two[2] = {0, 255};
    CHECK(gn_resize_bilinear_window(two, 2, 1, 1, 4, 1, 0, 0, 4, 1, out, 4) == GN_OK);
    CHECK(out[0] == 0 && out[1] == 64 && out[2] == 191 && out[3] == 255);
    /* Only the requested window is computed, and it matches the full result. */
    uint8_t win[2] = {0};
    CHECK(gn_resize_bilinear_window(two, 2, 1, 1, 4, 1, 1, 0, 2, 1, win, 2) == GN_OK);
    CHECK(win[0] == 64 && win[1] == 191);
    /* Windows outside the output are refused. */
    CHECK(gn_resize_bilinear_window(two, 2, 1, 1, 4, 1, 3, 0, 2, 1, win, 2) == GN_ERR_INVALID_ARG);
}

static void test_resize_identity_and_windows(void) {
    enum { W = 37, H = 23, C = 3, OW = 16, OH = 11 };
    uint8_t src[W * H * C], same[W * H * C], full[OW * OH * C], part[OW * OH * C];
    for (size_t i = 0; i < sizeof src; i++) src[i] = rand8();
    CHECK(gn_resize_bilinear_window(src, W, H, C, W, H, 0, 0, W, H, same, W * C) == GN_OK);
    CHECK(memcmp(src, same, sizeof src) == 0);
    CHECK(gn_resize_bilinear_window(src, W, H, C, OW, OH, 0, 0, OW, OH, full, OW * C) == GN_OK);
    /* Every window agrees with the slice of the full resize (one axis resized, then both). */
    int ok = 1;
    for (int y0 = 0; y0 < OH; y0 += 3) {
        for (int x0 = 0; x0 < OW; x0 += 5) {
            int cw = OW - x0 < 4 ? OW - x0 : 4, ch = OH - y0 < 3 ? OH - y0 : 3;
            if (gn_resize_bilinear_window(src, W, H, C, OW, OH, x0, y0, cw, ch, part, cw * C) != GN_OK)
                ok = 0;
            for (int y = 0; y < ch; y++)
                if (memcmp(part + y * cw * C, full + ((y0 + y) * OW + x0) * C, (size_t)cw * C)) ok = 0;
        }
    }
    CHECK(ok);
    uint8_t wide[OW * H * C], wide_part[3 * 2 * C];
    CHECK(gn_resize_bilinear_window(src, W, H, C, OW, H, 0, 0, OW, H, wide, OW * C) == GN_OK);
    CHECK(gn_resize_bilinear_window(src, W, H, C, OW, H, 5, 7, 3, 2, wide_part, 3 * C) == GN_OK);
    CHECK(memcmp(wide_part, wide + (7 * OW + 5) * C, 3 * C) == 0);
    CHECK(memcmp(wide_part + 3 * C, wide + (8 * OW + 5) * C, 3 * C) == 0);
}

static void test_geometry(void) {
    int w, h;
    gn_resize_shape(500, 375, 256, &w, &h); /* int(256 * 500 / 375) = int(341.33) */
    CHECK(w == 341 && h == 256);
    gn_resize_shape(333, 500, 256, &w, &h); /* int(384.38) */
    CHECK(w == 256 && h == 384);
    gn_resize_shape(256, 256, 256, &w, &h);
    CHECK(w == 256 && h == 256);
    gn_resize_shape(100, 80, 256, &w, &h); /* upscaling: int(320.0) */
    CHECK(w == 320 && h == 256);
    gn_resize_shape(1, 3, 2, &w, &h);
    CHECK(w == 2 && h == 6);
    /* Offsets: int(round((len - crop) / 2.0)), Python rounding halves to even. */
    CHECK(gn_crop_start(256, 224) == 16);
    CHECK(gn_crop_start(341, 224) == 58);  /* 58.5 -> 58 */
    CHECK(gn_crop_start(384, 224) == 80);
    CHECK(gn_crop_start(3, 2) == 0);       /* 0.5 -> 0 */
    CHECK(gn_crop_start(5, 2) == 2);       /* 1.5 -> 2 */
    CHECK(gn_crop_start(7, 2) == 2);       /* 2.5 -> 2 */
    CHECK(gn_crop_start(9, 2) == 4);       /* 3.5 -> 4 */
    CHECK(gn_crop_start(224, 224) == 0);
    /* Crop larger than the image: torchvision pads (crop - len) // 2 on the left/top. */
    CHECK(gn_crop_start(2, 5) == -1);
    CHECK(gn_crop_start(200, 224) == -12);
}

static void test_luma(void) {
    const uint8_t rgb[] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 1, 1, 1, 100, 150, 200};
    uint8_t gray[6];
    gn_rgb_to_luma(rgb, 6, gray);
    /* (19595 R + 38470 G + 7471 B + 32768) >> 16, checked against PIL's convert("L") */
    CHECK(gray[0] == 76 && gray[1] == 150 && gray[2] == 29);
    CHECK(gray[3] == 255 && gray[4] == 1 && gray[5] == 141);
}

/* ---- preprocessing -------------------------------------------------------------------------- */

static float norm(int v, float mean, float std) { return ((float)v / 255.0f - mean) / std; }

static void test_preprocess_small(void) {
    gn_error err = {0};
    /* 3x2 grey, resize 2 (shape stays 3x2: no resampling), crop 2 at x offset round(0.5) = 0. */
    uint8_t g[6] = {10, 20, 30, 40, 50, 60};
    gn_image gray = {3, 2, 1, g};
    gn_preprocess p = {2, 2, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
    float out[3 * 4 * 4];
    CHECK(gn_image_preprocess(&gray, &p, 1, out, &err) == GN_OK);
    CHECK(out[0] == norm(10, 0.5f, 0.5f) && out[1] == norm(20, 0.5f, 0.5f));
    CHECK(out[2] == norm(40, 0.5f, 0.5f) && out[3] == norm(50, 0.5f, 0.5f));
    /* Grey image into a 3-channel model: replicated, each plane normalised with its own stats. */
    gn_preprocess imnet = {2, 2, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    CHECK(gn_image_preprocess(&gray, &imnet, 3, out, &err) == GN_OK);
    for (int c = 0; c < 3; c++)
        CHECK(out[c * 4 + 3] == norm(50, imnet.mean[c], imnet.std[c]));

    /* Crop 4 from a 2x2 image: torchvision pads one pixel each side with zeros. */
    uint8_t rgb[12];
    for (int i = 0; i < 4; i++) rgb[3 * i] = 200, rgb[3 * i + 1] = 100, rgb[3 * i + 2] = 50;
    gn_image color = {2, 2, 3, rgb};
    gn_preprocess pad = {4, 2, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    CHECK(gn_image_preprocess(&color, &pad, 3, out, &err) == GN_OK);
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) {
                int inside = x >= 1 && x <= 2 && y >= 1 && y <= 2;
                int v = inside ? (c == 0 ? 200 : c == 1 ? 100 : 50) : 0;
                if (out[c * 16 + y * 4 + x] != norm(v, pad.mean[c], pad.std[c])) ok = 0;
            }
    CHECK(ok);
    /* RGB into a 1-channel model: PIL luma of (200, 100, 50) = 124. */
    uint8_t crop[16];
    CHECK(gn_image_crop_u8(&color, &pad, 1, crop, &err) == GN_OK);
    CHECK(crop[5] == 124 && crop[0] == 0 && crop[15] == 0);
}

static void test_preprocess_args(void) {
    gn_error err = {0};
    uint8_t px[12] = {0};
    gn_image im = {2, 2, 3, px};
    gn_preprocess p = {2, 2, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
    float out[12];
    CHECK(gn_image_preprocess(NULL, &p, 3, out, &err) == GN_ERR_INVALID_ARG);
    CHECK(gn_image_preprocess(&im, NULL, 3, out, &err) == GN_ERR_INVALID_ARG);
    CHECK(gn_image_preprocess(&im, &p, 3, NULL, &err) == GN_ERR_INVALID_ARG);
    CHECK(gn_image_preprocess(&im, &p, 2, out, &err) == GN_ERR_INVALID_ARG);
    gn_preprocess bad = p;
    bad.std[1] = 0.0f;
    CHECK(gn_image_preprocess(&im, &bad, 3, out, &err) == GN_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "channel 1") != NULL);
    CHECK(gn_image_preprocess(&im, &bad, 1, out, &err) == GN_OK); /* only channel 0 is used */
    bad = p;
    bad.mean[0] = NAN;
    CHECK(gn_image_preprocess(&im, &bad, 1, out, &err) == GN_ERR_INVALID_ARG);
    bad = p;
    bad.input_size = 0;
    CHECK(gn_image_preprocess(&im, &bad, 3, out, &err) == GN_ERR_INVALID_ARG);
    bad = p;
    bad.resize_size = -3;
    CHECK(gn_image_preprocess(&im, &bad, 3, out, &err) == GN_ERR_INVALID_ARG);
    bad.resize_size = GN_PREPROCESS_MAX_SIZE + 1;
    CHECK(gn_image_preprocess(&im, &bad, 3, out, &err) == GN_ERR_INVALID_ARG);
    gn_image no_pixels = {2, 2, 3, NULL};
    CHECK(gn_image_preprocess(&no_pixels, &p, 3, out, &err) == GN_ERR_INVALID_ARG);
    gn_image two_channels = {2, 2, 2, px};
    CHECK(gn_image_preprocess(&two_channels, &p, 3, out, &err) == GN_ERR_INVALID_ARG);
    gn_image zero = {0, 2, 3, px};
    CHECK(gn_image_preprocess(&zero, &p, 3, out, &err) == GN_ERR_INVALID_ARG);
    /* Extreme aspect ratio: the nominal resize is huge, only the crop window is computed. */
    uint8_t line[3 * 3000];
    for (size_t i = 0; i < sizeof line; i++) line[i] = (uint8_t)i;
    gn_image tall = {1, 3000, 3, line};
    gn_preprocess big = {8, 16, {0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f}};
    float small_out[3 * 64];
    CHECK(gn_image_preprocess(&tall, &big, 3, small_out, &err) == GN_OK);
}

/* ---- PNG round trips ------------------------------------------------------------------------ */

static gn_status decode_buffer(const buffer *b, gn_image *im) {
    gn_error err = {0};
    gn_status st = gn_image_decode(b->data, b->size, im, &err);
    if (st != GN_OK) fprintf(stderr, "decode: %s\n", err.message);
    return st;
}

static void test_png_rgb(int interlace, int alpha) {
    enum { W = 7, H = 5 };
    int samples = alpha ? 4 : 3;
    uint8_t rows[W * H * 4], want[W * H * 3];
    for (int i = 0; i < W * H; i++)
        for (int c = 0; c < samples; c++) {
            rows[i * samples + c] = rand8();
            if (c < 3) want[i * 3 + c] = rows[i * samples + c];
        }
    png_spec s = {W, H, 8, alpha ? PNG_COLOR_TYPE_RGBA : PNG_COLOR_TYPE_RGB,
                  interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, rows, NULL, 0, NULL, 0, NULL};
    buffer b = encode_png(&s);
    gn_image im;
    CHECK(decode_buffer(&b, &im) == GN_OK);
    CHECK(im.width == W && im.height == H && im.channels == 3);
    CHECK(im.pixels && memcmp(im.pixels, want, sizeof want) == 0); /* alpha dropped, not blended */
    gn_image_free(&im);
    CHECK(is_empty(&im));
    free(b.data);
}

static void test_png_gray_depths(void) {
    /* 1, 2 and 4 bits scale to 8 bits as PIL does (0/255, x85, x17). */
    const uint8_t one[1] = {0xA0}; /* 1 0 1 0 */
    const uint8_t two[1] = {0x1B}; /* 0 1 2 3 */
    const uint8_t four[2] = {0x0F, 0x7A};
    const struct { int depth, width; const uint8_t *rows; uint8_t want[4]; } cases[] = {
        {1, 4, one, {255, 0, 255, 0}}, {2, 4, two, {0, 85, 170, 255}},
        {4, 4, four, {0, 255, 119, 170}}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        png_spec s = {cases[i].width, 1, cases[i].depth, PNG_COLOR_TYPE_GRAY, 0, cases[i].rows,
                      NULL, 0, NULL, 0, NULL};
        buffer b = encode_png(&s);
        gn_image im;
        CHECK(decode_buffer(&b, &im) == GN_OK);
        CHECK(im.channels == 1 && im.width == 4 && memcmp(im.pixels, cases[i].want, 4) == 0);
        gn_image_free(&im);
        free(b.data);
    }
    /* 8-bit grey with a tRNS colour: transparency is ignored, as PIL's convert() does. */
    const uint8_t g8[3] = {7, 1, 200};
    png_color_16 key = {0, 0, 0, 0, 7};
    png_spec s = {3, 1, 8, PNG_COLOR_TYPE_GRAY, 0, g8, NULL, 0, NULL, 0, &key};
    buffer b = encode_png(&s);
    gn_image im;
    CHECK(decode_buffer(&b, &im) == GN_OK);
    CHECK(im.channels == 1 && memcmp(im.pixels, g8, 3) == 0);
    gn_image_free(&im);
    free(b.data);
    /* Grey + alpha -> grey. */
    const uint8_t ga[4] = {33, 0, 99, 255};
    png_spec sa = {2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 0, ga, NULL, 0, NULL, 0, NULL};
    b = encode_png(&sa);
    CHECK(decode_buffer(&b, &im) == GN_OK);
    CHECK(im.channels == 1 && im.pixels[0] == 33 && im.pixels[1] == 99);
    gn_image_free(&im);
    free(b.data);
}

static void test_png_16bit(void) {
    /* 16-bit samples keep their high byte (PIL's RGB;16B unpacker; see image_internal.h for
     * PIL's clipping of 16-bit grey, which we do not copy). */
    const uint8_t rgb16[12] = {0x12, 0x34, 0xFF, 0x01, 0x00, 0xFF, 0x80, 0x80, 0x7F, 0xFF, 0x01, 0x00};
    png_spec s = {2, 1, 16, PNG_COLOR_TYPE_RGB, 0, rgb16, NULL, 0, NULL, 0, NULL};
    buffer b = encode_png(&s);
    gn_image im;
    CHECK(decode_buffer(&b, &im) == GN_OK);
    const uint8_t want[6] = {0x12, 0xFF, 0x00, 0x80, 0x7F, 0x01};
    CHECK(im.channels == 3 && memcmp(im.pixels, want, 6) == 0);
    gn_image_free(&im);
    free(b.data);
    const uint8_t g16[6] = {0x00, 0xFF, 0x01, 0x00, 0xFF, 0xFF};
    png_spec sg = {3, 1, 16, PNG_COLOR_TYPE_GRAY, 0, g16, NULL, 0, NULL, 0, NULL};
    b = encode_png(&sg);
    CHECK(decode_buffer(&b, &im) == GN_OK);
    CHECK(im.channels == 1 && im.pixels[0] == 0 && im.pixels[1] == 1 && im.pixels[2] == 255);
    gn_image_free(&im);
    free(b.data);
}

static void test_png_palette(void) {
    const png_color pal[3] = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}};
    const uint8_t alpha[2] = {0, 128};
    /* 8-bit indices, one past the palette (5): PIL reads it as grey (5, 5, 5). */
    const uint8_t idx[4] = {0, 1, 2, 5};
    png_spec s = {4, 1, 8, PNG_COLOR_TYPE_PALETTE, 0, idx, pal, 3, alpha, 2, NULL};
    buffer b = encode_png(&s);
    gn_image im;
    CHECK(decode_buffer(&b, &im) == GN_OK);
    const uint8_t want[12] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 5, 5, 5};
    CHECK(im.channels == 3 && memcmp(im.pixels, want, 12) == 0);
    gn_image_free(&im);
    free(b.data);
    /* 2-bit packed indices 2 1 0 2 1. */
    const uint8_t packed[2] = {0x92, 0x40};
    png_spec s2 = {5, 1, 2, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_ADAM7, packed, pal, 3, NULL, 0, NULL};
    b = encode_png(&s2);
    CHECK(decode_buffer(&b, &im) == GN_OK);
    const uint8_t want2[15] = {70, 80, 90, 40, 50, 60, 10, 20, 30, 70, 80, 90, 40, 50, 60};
    CHECK(im.width == 5 && im.channels == 3 && memcmp(im.pixels, want2, 15) == 0);
    gn_image_free(&im);
    free(b.data);
}

/* ---- JPEG round trips ----------------------------------------------------------------------- */

static int max_abs_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

static void test_jpeg_round_trip(int components, int progressive) {
    enum { W = 40, H = 24 };
    uint8_t px[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < components; c++)
                px[(y * W + x) * components + c] = (uint8_t)(40 + 3 * x + 2 * y + 20 * c);
    buffer b = encode_jpeg(px, W, H, components, 100, progressive);
    gn_image im;
    CHECK(decode_buffer(&b, &im) == GN_OK);
    CHECK(im.width == W && im.height == H && im.channels == components);
    int d = im.pixels ? max_abs_diff(im.pixels, px, (size_t)W * H * components) : 999;
    CHECK_MSG(d <= 6, "JPEG %d components, progressive %d: max diff %d", components, progressive, d);
    gn_image_free(&im);
    free(b.data);
}

static void test_jpeg_cmyk(void) {
    /* Stored (Adobe-inverted) CMYK bytes; PIL: R = k - k * (255 - c) / 255 with k stored. */
    enum { W = 16, H = 16 };
    uint8_t px[W * H * 4];
    for (int i = 0; i < W * H; i++) px[4 * i] = 255, px[4 * i + 1] = 0, px[4 * i + 2] = 255, px[4 * i + 3] = 200;
    buffer b = encode_jpeg(px, W, H, 4, 100, 0);
    gn_image im;
    CHECK(decode_buffer(&b, &im) == GN_OK);
    CHECK(im.channels == 3 && im.width == W);
    /* want about (200, 0, 200): 200 - 200 * 0 / 255 and 200 - 200 * 255 / 255 */
    if (im.pixels)
        CHECK_MSG(abs(im.pixels[0] - 200) <= 2 && im.pixels[1] <= 2 && abs(im.pixels[2] - 200) <= 2,
                  "got %d %d %d", im.pixels[0], im.pixels[1], im.pixels[2]);
    gn_image_free(&im);
    free(b.data);
}

/* ---- malformed input ------------------------------------------------------------------------ */

static buffer sample_png(void) {
    enum { W = 9, H = 6 };
    uint8_t rows[W * H * 3];
    for (size_t i = 0; i < sizeof rows; i++) rows[i] = rand8();
    png_spec s = {W, H, 8, PNG_COLOR_TYPE_RGB, 0, rows, NULL, 0, NULL, 0, NULL};
    return encode_png(&s);
}

static buffer sample_jpeg(int progressive) {
    enum { W = 24, H = 16 };
    uint8_t px[W * H * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = rand8();
    return encode_jpeg(px, W, H, 3, 90, progressive);
}

static void test_not_an_image(void) {
    expect_decode_fail(NULL, 0, GN_ERR_FORMAT, "not a JPEG or PNG", "NULL empty");
    const uint8_t gif[] = "GIF89a\x01\x00\x01\x00";
    expect_decode_fail(gif, 0, GN_ERR_FORMAT, "image: not a JPEG or PNG", "empty");
    expect_decode_fail(gif, sizeof gif - 1, GN_ERR_FORMAT, "not a JPEG or PNG", "GIF");
    const uint8_t almost_png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, 0};
    expect_decode_fail(almost_png, 8, GN_ERR_FORMAT, "not a JPEG or PNG", "bad PNG signature");
    const uint8_t ff[2] = {0xFF, 0xD8};
    expect_decode_fail(ff, 2, GN_ERR_FORMAT, "not a JPEG or PNG", "two bytes");
    gn_image im;
    gn_error err;
    CHECK(gn_image_decode(NULL, 5, &im, &err) == GN_ERR_INVALID_ARG);
    CHECK(gn_image_decode(gif, 5, NULL, &err) == GN_ERR_INVALID_ARG);
    CHECK(gn_image_decode(gif, 5, &im, NULL) == GN_ERR_FORMAT); /* err is optional */
    gn_image_free(NULL);
}

static void test_truncated(void) {
    buffer png = sample_png();
    int png_ok = 1;
    for (size_t cut = 0; cut < png.size; cut++) {
        gn_image im;
        gn_error err = {0};
        gn_status st = gn_image_decode(png.data, cut, &im, &err);
        if (st != GN_ERR_FORMAT || !is_empty(&im)) {
            png_ok = 0;
            fprintf(stderr, "PNG cut at %zu of %zu: status %d (%s)\n", cut, png.size, (int)st, err.message);
        }
        if (st == GN_OK) gn_image_free(&im);
    }
    CHECK(png_ok);
    for (int progressive = 0; progressive < 2; progressive++) {
        buffer jpg = sample_jpeg(progressive);
        int jpg_ok = 1;
        for (size_t cut = 0; cut < jpg.size; cut++) {
            gn_image im;
            gn_error err = {0};
            gn_status st = gn_image_decode(jpg.data, cut, &im, &err);
            if (st != GN_ERR_FORMAT || !is_empty(&im)) {
                jpg_ok = 0;
                fprintf(stderr, "JPEG (progressive %d) cut at %zu of %zu: status %d (%s)\n",
                        progressive, cut, jpg.size, (int)st, err.message);
            }
            if (st == GN_OK) gn_image_free(&im);
        }
        CHECK(jpg_ok);
        /* A cut inside the entropy data is named as truncation. */
        expect_decode_fail(jpg.data, jpg.size * 3 / 4, GN_ERR_FORMAT, "truncated", "JPEG cut");
        free(jpg.data);
    }
    expect_decode_fail(png.data, png.size / 2, GN_ERR_FORMAT, "PNG", "PNG cut");
    free(png.data);
}

static void test_png_bad_header(void) {
    buffer png = sample_png();
    uint8_t *copy = malloc(png.size);
    if (!copy) abort();
    const struct { uint32_t w, h; gn_status code; const char *needle; } cases[] = {
        {0, 0, GN_ERR_FORMAT, "zero width"},
        {0, 6, GN_ERR_FORMAT, "zero width"},
        {9, 0, GN_ERR_FORMAT, "zero width"},
        {100000, 100000, GN_ERR_UNSUPPORTED, "100000x100000"},
        {30000, 30000, GN_ERR_UNSUPPORTED, "limit"},
        {0x7FFFFFFF, 1, GN_ERR_UNSUPPORTED, "limit"},
        {0xFFFFFFFF, 0xFFFFFFFF, GN_ERR_UNSUPPORTED, "limit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(copy, png.data, png.size);
        put_be32(copy + 16, cases[i].w);
        put_be32(copy + 20, cases[i].h);
        png_fix_crc(copy, 8);
        clock_t t0 = clock();
        expect_decode_fail(copy, png.size, cases[i].code, cases[i].needle, "PNG IHDR size");
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK_MSG(secs < 0.5, "IHDR %ux%u took %.3f s", cases[i].w, cases[i].h, secs);
    }
    /* A wrong IHDR CRC, a flipped byte in the compressed data (CRC fixed so zlib sees it),
     * and a wrong IDAT CRC. */
    memcpy(copy, png.data, png.size);
    copy[29] ^= 1; /* the IHDR CRC itself */
    expect_decode_fail(copy, png.size, GN_ERR_FORMAT, "CRC", "IHDR CRC");
    size_t idat = png_find_chunk(png.data, png.size, "IDAT");
    CHECK(idat > 0);
    uint32_t len = be32(png.data + idat);
    int corrupt_failed = 0;
    for (uint32_t off = 0; off < len; off += 3) {
        memcpy(copy, png.data, png.size);
        copy[idat + 8 + off] ^= 0x5A;
        png_fix_crc(copy, idat);
        gn_image im;
        gn_error err;
        gn_status st = gn_image_decode(copy, png.size, &im, &err);
        if (st == GN_OK) gn_image_free(&im); /* a flip in literal bytes can still inflate */
        else if (st == GN_ERR_FORMAT && is_empty(&im)) corrupt_failed++;
    }
    CHECK(corrupt_failed > 0);
    memcpy(copy, png.data, png.size);
    copy[idat + 8] ^= 0x5A; /* zlib header byte: always fatal */
    png_fix_crc(copy, idat);
    expect_decode_fail(copy, png.size, GN_ERR_FORMAT, "PNG", "IDAT zlib header");
    memcpy(copy, png.data, png.size);
    copy[idat + 8 + len] ^= 1;
    expect_decode_fail(copy, png.size, GN_ERR_FORMAT, "CRC", "IDAT CRC");
    free(copy);
    free(png.data);
}

static void test_jpeg_bad_header(void) {
    buffer jpg = sample_jpeg(0);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < jpg.size; i++)
        if (jpg.data[i] == 0xFF && jpg.data[i + 1] == 0xC0) {
            sof = i;
            break;
        }
    CHECK(sof > 0);
    /* SOF0: FF C0, length (2), precision (1), height (2), width (2). */
    const struct { unsigned w, h; gn_status code; const char *needle; } cases[] = {
        {65000, 65000, GN_ERR_UNSUPPORTED, "65000x65000"},
        {40000, 16, GN_ERR_UNSUPPORTED, "limit"},
        {0, 16, GN_ERR_FORMAT, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *copy = malloc(jpg.size);
        if (!copy) abort();
        memcpy(copy, jpg.data, jpg.size);
        copy[sof + 5] = (uint8_t)(cases[i].h >> 8);
        copy[sof + 6] = (uint8_t)cases[i].h;
        copy[sof + 7] = (uint8_t)(cases[i].w >> 8);
        copy[sof + 8] = (uint8_t)cases[i].w;
        clock_t t0 = clock();
        expect_decode_fail(copy, jpg.size, cases[i].code, cases[i].needle, "JPEG SOF size");
        double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK_MSG(secs < 0.5, "SOF %ux%u took %.3f s", cases[i].w, cases[i].h, secs);
        free(copy);
    }
    /* 12-bit samples: well-formed, but this libjpeg build decodes 8-bit only. */
    uint8_t *deep = malloc(jpg.size);
    if (!deep) abort();
    memcpy(deep, jpg.data, jpg.size);
    deep[sof + 4] = 12;
    expect_decode_fail(deep, jpg.size, GN_ERR_UNSUPPORTED, "precision", "12-bit JPEG");
    free(deep);
    /* Garbage after the SOI marker. */
    uint8_t junk[64] = {0xFF, 0xD8, 0xFF};
    for (size_t i = 3; i < sizeof junk; i++) junk[i] = rand8();
    expect_decode_fail(junk, sizeof junk, GN_ERR_FORMAT, "JPEG", "JPEG junk");
    /* Corrupt entropy-coded bytes: libjpeg may decode them (with warnings, as PIL would) or
     * fail, but must do one of the two cleanly. */
    for (size_t off = jpg.size / 2; off + 2 < jpg.size; off += 7) {
        uint8_t *copy = malloc(jpg.size);
        if (!copy) abort();
        memcpy(copy, jpg.data, jpg.size);
        copy[off] ^= 0x33;
        gn_image im;
        gn_error err;
        gn_status st = gn_image_decode(copy, jpg.size, &im, &err);
        CHECK(st == GN_OK || (st == GN_ERR_FORMAT && is_empty(&im)));
        gn_image_free(&im);
        free(copy);
    }
    free(jpg.data);
}

static void test_load_files(void) {
    gn_image im;
    gn_error err = {0};
    CHECK(gn_image_load("no/such/dir/missing.png", &im, &err) == GN_ERR_IO);
    CHECK(strstr(err.message, "no/such/dir/missing.png") != NULL);
    CHECK(is_empty(&im));
    CHECK(gn_image_load(NULL, &im, &err) == GN_ERR_INVALID_ARG);

    char path[64];
    snprintf(path, sizeof path, "test_image_tmp_%ld.png", (long)time(NULL) % 100000);
    buffer png = sample_png();
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) {
        free(png.data);
        return;
    }
    fwrite(png.data, 1, png.size, f);
    fclose(f);
    CHECK(gn_image_load(path, &im, &err) == GN_OK);
    CHECK(im.width == 9 && im.height == 6 && im.channels == 3);
    gn_image_free(&im);
    f = fopen(path, "wb");
    if (f) {
        fwrite(png.data, 1, png.size - 20, f);
        fclose(f);
    }
    CHECK(gn_image_load(path, &im, &err) == GN_ERR_FORMAT);
    CHECK_MSG(strncmp(err.message, path, strlen(path)) == 0, "message '%s'", err.message);
    remove(path);
    free(png.data);
}

int main(void) {
    test_resize_by_hand();
    test_resize_identity_and_windows();
    test_geometry();
    test_luma();
    test_preprocess_small();
    test_preprocess_args();
    test_png_rgb(0, 0);
    test_png_rgb(1, 0);
    test_png_rgb(0, 1);
    test_png_rgb(1, 1);
    test_png_gray_depths();
    test_png_16bit();
    test_png_palette();
    test_jpeg_round_trip(3, 0);
    test_jpeg_round_trip(3, 1);
    test_jpeg_round_trip(1, 0);
    test_jpeg_cmyk();
    test_not_an_image();
    test_truncated();
    test_png_bad_header();
    test_jpeg_bad_header();
    test_load_files();
    TEST_MAIN_END();
}
