/* JPEG/PNG decoding (libjpeg, libpng) and the evaluation preprocessing. Every input byte is
 * hostile: sizes are checked before allocating, decoder errors come back through setjmp as
 * statuses, truncated data is an error rather than a grey-filled image. The choices that make
 * the result equal PIL + torchvision are listed in image_internal.h. */
#include "io/image_internal.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GN_WITH_IMAGES=0 (CMake -DGN_WITH_IMAGES=OFF): built without libjpeg/libpng, e.g. for a
 * cross build; decoding then returns GN_ERR_UNSUPPORTED, preprocessing still works. */
#ifndef GN_WITH_IMAGES
#define GN_WITH_IMAGES 1
#endif
#if GN_WITH_IMAGES
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
#endif

#include "core/common.h"

#if defined(__clang__)
/* The resampling weights must be computed exactly as PIL's C code does: no fused multiply-add. */
#pragma STDC FP_CONTRACT OFF
#endif

#if GN_WITH_IMAGES
/* ---- shared ----------------------------------------------------------------------------- */

/* Validates decoded dimensions; writes a reason into msg on failure. */
static gn_status check_dimensions(uint64_t w, uint64_t h, char *msg, size_t cap) {
    if (w == 0 || h == 0) {
        snprintf(msg, cap, "image has zero width or height (%llux%llu)", (unsigned long long)w,
                 (unsigned long long)h);
        return GN_ERR_FORMAT;
    }
    if (w > GN_IMAGE_MAX_SIDE || h > GN_IMAGE_MAX_SIDE || w * h > GN_IMAGE_MAX_PIXELS) {
        snprintf(msg, cap,
                 "image is %llux%llu pixels; the limit is %d a side and %llu in all",
                 (unsigned long long)w, (unsigned long long)h, GN_IMAGE_MAX_SIDE,
                 (unsigned long long)GN_IMAGE_MAX_PIXELS);
        return GN_ERR_UNSUPPORTED;
    }
    return GN_OK;
}

/* Bytes of a w x h x c image; the caller has bounded w*h, so this cannot overflow. */
static size_t image_bytes(uint64_t w, uint64_t h, int c) { return (size_t)(w * h) * (size_t)c; }

/* ---- JPEG ------------------------------------------------------------------------------- */

/* Progressive files may carry any number of scans; real ones have a few dozen at most. */
#define GN_JPEG_MAX_SCANS 256
/* libjpeg's own allocations (whole-image coefficient buffers for progressive files). */
#define GN_JPEG_MAX_MEMORY (512L * 1024 * 1024)

typedef struct jpeg_ctx {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr jerr;
    struct jpeg_progress_mgr progress;
    jmp_buf jump;
    int created;
    gn_status fail_code; /* reported when a callback jumps out */
    char message[JMSG_LENGTH_MAX + 96];
    int cmyk;
    uint8_t *pixels;
    uint8_t *row; /* one CMYK scanline before conversion */
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_ctx *ctx = cinfo->client_data;
    int code = cinfo->err->msg_code;
    if (code == JERR_NO_BACKING_STORE) {
        snprintf(ctx->message, sizeof ctx->message,
                 "image needs more than %ld MiB of decoder memory", GN_JPEG_MAX_MEMORY >> 20);
        ctx->fail_code = GN_ERR_UNSUPPORTED;
    } else {
        cinfo->err->format_message(cinfo, ctx->message);
        ctx->fail_code = code == JERR_OUT_OF_MEMORY   ? GN_ERR_NOMEM
                       : code == JERR_BAD_PRECISION ? GN_ERR_UNSUPPORTED /* 12-bit */
                                                    : GN_ERR_FORMAT;
    }
    longjmp(ctx->jump, 1);
}

/* Warnings are tolerated (as PIL does) except running out of data: libjpeg would fill the
 * rest of the image with grey and call it a success. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return; /* trace output */
    int code = cinfo->err->msg_code;
    if (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER) {
        jpeg_ctx *ctx = cinfo->client_data;
        char text[JMSG_LENGTH_MAX];
        cinfo->err->format_message(cinfo, text);
        snprintf(ctx->message, sizeof ctx->message, "%s (file is truncated)", text);
        ctx->fail_code = GN_ERR_FORMAT;
        longjmp(ctx->jump, 1);
    }
    cinfo->err->num_warnings++;
}

static void jpeg_silent(j_common_ptr cinfo) { (void)cinfo; }

static void jpeg_on_progress(j_common_ptr cinfo) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > GN_JPEG_MAX_SCANS) {
        jpeg_ctx *ctx = cinfo->client_data;
        snprintf(ctx->message, sizeof ctx->message, "more than %d scans", GN_JPEG_MAX_SCANS);
        ctx->fail_code = GN_ERR_UNSUPPORTED;
        longjmp(ctx->jump, 1);
    }
}

/* PIL reads 4-component JPEGs as Adobe-inverted CMYK ("CMYK;I"), then cmyk2rgb:
 * R = k - k * c / 255 in its rounded integer form, with c, k the stored (inverted) bytes. */
static void cmyk_row_to_rgb(const uint8_t *in, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++, in += 4, out += 3) {
        int nk = in[3]; /* 255 - (255 - stored K) */
        for (int ch = 0; ch < 3; ch++) {
            int t = (255 - in[ch]) * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[ch] = (uint8_t)(v < 0 ? 0 : v);
        }
    }
}

/* The decoding proper; libjpeg errors longjmp out of here to jpeg_guarded. */
static gn_status jpeg_body(jpeg_ctx *ctx, const uint8_t *data, size_t size, gn_image *out) {
    j_decompress_ptr ci = &ctx->cinfo;
    ctx->created = 1; /* the zeroed struct is safe to destroy even if creation fails */
    jpeg_create_decompress(ci);
    ci->mem->max_memory_to_use = GN_JPEG_MAX_MEMORY;
    ci->progress = &ctx->progress;
    jpeg_mem_src(ci, data, (unsigned long)size);
    if (jpeg_read_header(ci, TRUE) != JPEG_HEADER_OK) {
        snprintf(ctx->message, sizeof ctx->message, "no image in file (tables only)");
        return GN_ERR_FORMAT;
    }
    gn_status st = check_dimensions(ci->image_width, ci->image_height, ctx->message,
                                    sizeof ctx->message);
    if (st != GN_OK) return st;

    int channels;
    switch (ci->num_components) {
    case 1: ci->out_color_space = JCS_GRAYSCALE; channels = 1; break;
    case 3: ci->out_color_space = JCS_RGB; channels = 3; break;
    case 4: ci->out_color_space = JCS_CMYK; channels = 3; ctx->cmyk = 1; break;
    default:
        snprintf(ctx->message, sizeof ctx->message, "%d colour components are not supported",
                 ci->num_components);
        return GN_ERR_UNSUPPORTED;
    }
    /* libjpeg's defaults, spelled out: PIL decodes with exactly these. */
    ci->dct_method = JDCT_ISLOW;
    ci->do_fancy_upsampling = TRUE;
    ci->scale_num = ci->scale_denom = 1;
    jpeg_start_decompress(ci);
    if (ci->output_width != ci->image_width || ci->output_height != ci->image_height ||
        ci->output_components != (ctx->cmyk ? 4 : channels)) {
        snprintf(ctx->message, sizeof ctx->message, "unexpected decoder output layout");
        return GN_ERR_FORMAT;
    }

    size_t width = ci->output_width, stride = width * (size_t)channels;
    ctx->pixels = malloc(image_bytes(ci->output_width, ci->output_height, channels));
    if (ctx->cmyk) ctx->row = malloc(width * 4);
    if (!ctx->pixels || (ctx->cmyk && !ctx->row)) {
        snprintf(ctx->message, sizeof ctx->message, "out of memory");
        return GN_ERR_NOMEM;
    }
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = ctx->pixels + (size_t)ci->output_scanline * stride;
        JSAMPROW row = ctx->cmyk ? ctx->row : dst;
        if (jpeg_read_scanlines(ci, &row, 1) != 1) {
            snprintf(ctx->message, sizeof ctx->message, "decoder stopped early");
            return GN_ERR_FORMAT;
        }
        if (ctx->cmyk) cmyk_row_to_rgb(ctx->row, dst, width);
    }
    jpeg_finish_decompress(ci); /* reads up to EOI: a missing end is reported as truncation */
    out->width = (int)ci->output_width;
    out->height = (int)ci->output_height;
    out->channels = channels;
    return GN_OK;
}

/* Holds the setjmp and nothing else, so no local can be clobbered by the longjmp. */
static gn_status jpeg_guarded(jpeg_ctx *ctx, const uint8_t *data, size_t size, gn_image *out) {
    if (setjmp(ctx->jump)) return ctx->fail_code;
    return jpeg_body(ctx, data, size, out);
}

static gn_status decode_jpeg(const uint8_t *data, size_t size, const char *what, gn_image *out,
                             gn_error *err) {
    jpeg_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cinfo.err = jpeg_std_error(&ctx.jerr);
    ctx.jerr.error_exit = jpeg_on_error;
    ctx.jerr.emit_message = jpeg_on_message;
    ctx.jerr.output_message = jpeg_silent;
    ctx.cinfo.client_data = &ctx;
    ctx.progress.progress_monitor = jpeg_on_progress;
    ctx.fail_code = GN_ERR_FORMAT;

    gn_status st = jpeg_guarded(&ctx, data, size, out);
    if (ctx.created) jpeg_destroy_decompress(&ctx.cinfo);
    free(ctx.row);
    if (st != GN_OK) {
        free(ctx.pixels);
        memset(out, 0, sizeof *out);
        return gn_fail(err, st, "%s: JPEG: %s", what, ctx.message);
    }
    out->pixels = ctx.pixels;
    return GN_OK;
}

/* ---- PNG -------------------------------------------------------------------------------- */

/* Largest ancillary chunk (after decompression) libpng may allocate. */
#define GN_PNG_MAX_CHUNK ((size_t)8 << 20)

static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

typedef struct png_ctx {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t size, pos;
    gn_status fail_code;
    char message[256];
    uint8_t *pixels;
    uint8_t *indices; /* palette images: one index per pixel before the lookup */
    png_bytep *rows;
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->message, sizeof ctx->message, "%s", msg);
    ctx->fail_code = strstr(msg, "memory") ? GN_ERR_NOMEM : GN_ERR_FORMAT;
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_memory(png_structp png, png_bytep dst, size_t n) {
    png_ctx *ctx = png_get_io_ptr(png);
    if (n > ctx->size - ctx->pos) png_error(png, "file is truncated");
    memcpy(dst, ctx->data + ctx->pos, n);
    ctx->pos += n;
}

static uint32_t read_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* IHDR must come first, so its size claim is checked here before libpng reads anything else:
 * a 100000x100000 header fails at once with a clear message. */
static gn_status png_check_header(const uint8_t *data, size_t size, char *msg, size_t cap) {
    if (size < 24 || memcmp(data + 12, "IHDR", 4) != 0) return GN_OK; /* libpng will refuse */
    return check_dimensions(read_be32(data + 16), read_be32(data + 20), msg, cap);
}

/* Sets libpng's transformations; returns the decoded channel count (palette images: 3). */
static int png_setup_transforms(png_ctx *ctx, int depth, int color) {
    png_structp png = ctx->png;
    if (depth == 16) png_set_strip_16(png); /* high byte, as PIL's ";16B" unpackers */
    if (color & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png); /* PIL drops alpha */
    if (color == PNG_COLOR_TYPE_PALETTE) {
        if (depth < 8) png_set_packing(png); /* one index per byte; we look them up */
        return 3;
    }
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    return (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
}

/* PIL starts from a grey ramp and overwrites the PLTE entries, so an index past the end of a
 * short palette reads as grey (i, i, i) rather than black. */
static void png_apply_palette(png_ctx *ctx, size_t count) {
    uint8_t lut[256][3];
    for (int i = 0; i < 256; i++) lut[i][0] = lut[i][1] = lut[i][2] = (uint8_t)i;
    png_colorp palette = NULL;
    int n = 0;
    if (png_get_PLTE(ctx->png, ctx->info, &palette, &n) == PNG_INFO_PLTE) {
        for (int i = 0; i < n && i < 256; i++) {
            lut[i][0] = palette[i].red;
            lut[i][1] = palette[i].green;
            lut[i][2] = palette[i].blue;
        }
    }
    for (size_t i = 0; i < count; i++) memcpy(ctx->pixels + 3 * i, lut[ctx->indices[i]], 3);
}

static gn_status png_body(png_ctx *ctx, gn_image *out) {
    png_structp png = ctx->png;
    png_set_user_limits(png, GN_IMAGE_MAX_SIDE, GN_IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(png, GN_PNG_MAX_CHUNK); /* bounds zTXt/iCCP inflation */
    png_read_info(png, ctx->info);
    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, ctx->info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    gn_status st = check_dimensions(w, h, ctx->message, sizeof ctx->message);
    if (st != GN_OK) return st;

    int channels = png_setup_transforms(ctx, depth, color);
    int palette = color == PNG_COLOR_TYPE_PALETTE;
    int stored = palette ? 1 : channels; /* bytes per pixel libpng hands us */
    png_set_interlace_handling(png);
    png_read_update_info(png, ctx->info);
    if (png_get_rowbytes(png, ctx->info) != (size_t)w * (size_t)stored) {
        snprintf(ctx->message, sizeof ctx->message, "unexpected decoder row size");
        return GN_ERR_FORMAT;
    }

    ctx->pixels = malloc(image_bytes(w, h, channels));
    ctx->indices = palette ? malloc(image_bytes(w, h, 1)) : NULL;
    ctx->rows = malloc((size_t)h * sizeof *ctx->rows);
    if (!ctx->pixels || (palette && !ctx->indices) || !ctx->rows) {
        snprintf(ctx->message, sizeof ctx->message, "out of memory");
        return GN_ERR_NOMEM;
    }
    uint8_t *base = palette ? ctx->indices : ctx->pixels;
    for (size_t y = 0; y < h; y++) ctx->rows[y] = base + y * (size_t)w * (size_t)stored;
    png_read_image(png, ctx->rows);
    png_read_end(png, NULL); /* a file cut anywhere, even in IEND, is refused */
    if (palette) png_apply_palette(ctx, (size_t)w * h);
    out->width = (int)w;
    out->height = (int)h;
    out->channels = channels;
    return GN_OK;
}

/* Holds the setjmp and nothing else, so no local can be clobbered by the longjmp. */
static gn_status png_guarded(png_ctx *ctx, gn_image *out) {
    if (setjmp(png_jmpbuf(ctx->png))) return ctx->fail_code;
    return png_body(ctx, out);
}

static gn_status decode_png(const uint8_t *data, size_t size, const char *what, gn_image *out,
                            gn_error *err) {
    png_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.data = data;
    ctx.size = size;
    ctx.fail_code = GN_ERR_FORMAT;
    gn_status st = png_check_header(data, size, ctx.message, sizeof ctx.message);
    if (st != GN_OK) return gn_fail(err, st, "%s: PNG: %s", what, ctx.message);

    ctx.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    if (ctx.png) ctx.info = png_create_info_struct(ctx.png);
    if (!ctx.png || !ctx.info) {
        png_destroy_read_struct(ctx.png ? &ctx.png : NULL, NULL, NULL);
        return gn_fail(err, GN_ERR_NOMEM, "%s: PNG: out of memory", what);
    }
    png_set_read_fn(ctx.png, &ctx, png_read_memory);
    st = png_guarded(&ctx, out);
    png_destroy_read_struct(&ctx.png, &ctx.info, NULL);
    free(ctx.rows);
    free(ctx.indices);
    if (st != GN_OK) {
        free(ctx.pixels);
        memset(out, 0, sizeof *out);
        return gn_fail(err, st, "%s: PNG: %s", what, ctx.message);
    }
    out->pixels = ctx.pixels;
    return GN_OK;
}

#endif /* GN_WITH_IMAGES */

/* ---- public decoding entry points --------------------------------------------------------- */

gn_status gn_image_decode_named(const uint8_t *data, size_t size, const char *what,
                                gn_image *out, gn_error *err) {
    if (!what) what = "image";
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "%s: output image is NULL", what);
    memset(out, 0, sizeof *out);
    if (!data && size) return gn_fail(err, GN_ERR_INVALID_ARG, "%s: data is NULL", what);
#if GN_WITH_IMAGES
    if (size >= sizeof png_signature && memcmp(data, png_signature, sizeof png_signature) == 0)
        return decode_png(data, size, what, out, err);
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, size, what, out, err);
    return gn_fail(err, GN_ERR_FORMAT, "%s: not a JPEG or PNG file%s", what,
                   size == 0 ? " (empty)" : "");
#else
    return gn_fail(err, GN_ERR_UNSUPPORTED, "%s: built without image decoding (GN_WITH_IMAGES=OFF)",
                   what);
#endif
}

gn_status gn_image_decode(const uint8_t *data, size_t size, gn_image *out, gn_error *err) {
    return gn_image_decode_named(data, size, "image", out, err);
}

gn_status gn_image_load(const char *path, gn_image *out, gn_error *err) {
    if (out) memset(out, 0, sizeof *out);
    if (!path) return gn_fail(err, GN_ERR_INVALID_ARG, "image path is NULL");
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "%s: output image is NULL", path);
    uint8_t *data;
    size_t size;
    gn_status st = gn_read_file(path, GN_IMAGE_MAX_FILE_BYTES, &data, &size, err);
    if (st != GN_OK) return st;
    st = gn_image_decode_named(data, size, path, out, err);
    free(data);
    return st;
}

void gn_image_free(gn_image *image) {
    if (!image) return;
    free(image->pixels);
    memset(image, 0, sizeof *image);
}

/* ---- preprocessing: geometry -------------------------------------------------------------- */

void gn_resize_shape(int width, int height, int size, int *out_width, int *out_height) {
    int w_short = width <= height; /* torchvision: the width counts as short on a tie */
    int s = w_short ? width : height, l = w_short ? height : width;
    /* Python's int(size * long / short): exact product, correctly rounded division, truncated */
    int new_long = (int)((double)((int64_t)size * l) / (double)s);
    *out_width = w_short ? size : new_long;
    *out_height = w_short ? new_long : size;
}

int gn_crop_start(int len, int crop) {
    if (crop > len) return -((crop - len) / 2); /* torchvision pads (crop - len) // 2 first */
    int d = len - crop, half = d / 2;
    if (d % 2 == 0) return half;
    return half % 2 == 0 ? half : half + 1; /* Python's round(): halves go to even */
}

void gn_rgb_to_luma(const uint8_t *rgb, size_t n, uint8_t *gray) {
    for (size_t i = 0; i < n; i++, rgb += 3)
        gray[i] = (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

/* ---- preprocessing: PIL's separable bilinear resampling ----------------------------------- */

/* PIL keeps weights in 22-bit fixed point so an 8-bit sum fits an int with headroom. */
#define GN_PREC_BITS 22

typedef struct axis_coeffs {
    int n;        /* output positions described */
    int ksize;    /* weight slots per position */
    int *first;   /* first input index used by each output position */
    int *count;   /* number of inputs used */
    int32_t *k;   /* n x ksize fixed-point weights */
} axis_coeffs;

static void axis_free(axis_coeffs *a) {
    free(a->first);
    free(a->count);
    free(a->k);
    memset(a, 0, sizeof *a);
}

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Fills one output position's weights exactly as PIL computes them (same operations in the
 * same order, since the fixed-point rounding makes every last bit visible). */
static void axis_position(int in_size, double scale, double filterscale, double support, int xx,
                          double *w, int ksize, int *first, int *count, int32_t *k) {
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    if (xmax > ksize) xmax = ksize; /* cannot happen; keeps the writes in bounds regardless */
    double ww = 0.0;
    for (int x = 0; x < xmax; x++) {
        w[x] = triangle((x + xmin - center + 0.5) * ss);
        ww += w[x];
    }
    for (int x = 0; x < xmax; x++)
        if (ww != 0.0) w[x] /= ww;
    for (int x = 0; x < ksize; x++) {
        double v = x < xmax ? w[x] * (1 << GN_PREC_BITS) : 0.0;
        k[x] = (int32_t)(v < 0 ? v - 0.5 : v + 0.5);
    }
    *first = xmin;
    *count = xmax;
}

/* Weights for output positions [o0, o0 + n) of an in_size -> out_size resampling. */
static gn_status axis_make(int in_size, int out_size, int o0, int n, axis_coeffs *a) {
    memset(a, 0, sizeof *a);
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale; /* downscaling widens the triangle */
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    size_t slots;
    if (!gn_mul_size((size_t)n, (size_t)ksize, &slots)) return GN_ERR_NOMEM;
    a->n = n;
    a->ksize = ksize;
    a->first = gn_malloc((size_t)n * sizeof *a->first);
    a->count = gn_malloc((size_t)n * sizeof *a->count);
    a->k = slots <= SIZE_MAX / sizeof *a->k ? gn_malloc(slots * sizeof *a->k) : NULL;
    double *w = gn_malloc((size_t)ksize * sizeof *w);
    if (!a->first || !a->count || !a->k || !w) {
        free(w);
        axis_free(a);
        return GN_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++)
        axis_position(in_size, scale, filterscale, support, o0 + i, w, ksize, &a->first[i],
                      &a->count[i], &a->k[(size_t)i * ksize]);
    free(w);
    return GN_OK;
}

static uint8_t clip8(int64_t acc) {
    int64_t v = acc >> GN_PREC_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Horizontal pass over `rows` rows: each output column mixes neighbouring input pixels. */
static void pass_horizontal(const uint8_t *src, size_t src_stride, int rows, int c,
                            const axis_coeffs *a, uint8_t *dst, size_t dst_stride) {
    for (int r = 0; r < rows; r++) {
        const uint8_t *in = src + (size_t)r * src_stride;
        uint8_t *o = dst + (size_t)r * dst_stride;
        for (int i = 0; i < a->n; i++) {
            const int32_t *k = a->k + (size_t)i * a->ksize;
            const uint8_t *p = in + (size_t)a->first[i] * c;
            for (int ch = 0; ch < c; ch++) {
                int64_t acc = 1 << (GN_PREC_BITS - 1);
                for (int t = 0; t < a->count[i]; t++) acc += (int64_t)p[(size_t)t * c + ch] * k[t];
                o[(size_t)i * c + ch] = clip8(acc);
            }
        }
    }
}

/* Vertical pass: each output row mixes input rows; src row index 0 is input row `row0`. */
static void pass_vertical(const uint8_t *src, size_t src_stride, int row0, size_t row_bytes,
                          const axis_coeffs *a, uint8_t *dst, size_t dst_stride) {
    for (int i = 0; i < a->n; i++) {
        const int32_t *k = a->k + (size_t)i * a->ksize;
        const uint8_t *in = src + (size_t)(a->first[i] - row0) * src_stride;
        uint8_t *o = dst + (size_t)i * dst_stride;
        for (size_t b = 0; b < row_bytes; b++) {
            int64_t acc = 1 << (GN_PREC_BITS - 1);
            for (int t = 0; t < a->count[i]; t++) acc += (int64_t)in[(size_t)t * src_stride + b] * k[t];
            o[b] = clip8(acc);
        }
    }
}

/* Input rows [*r0, *r1) that the vertical weights touch. */
static void axis_span(const axis_coeffs *a, int *r0, int *r1) {
    *r0 = INT_MAX;
    *r1 = 0;
    for (int i = 0; i < a->n; i++) {
        if (a->first[i] < *r0) *r0 = a->first[i];
        if (a->first[i] + a->count[i] > *r1) *r1 = a->first[i] + a->count[i];
    }
}

gn_status gn_resize_bilinear_window(const uint8_t *src, int w, int h, int c, int out_w,
                                    int out_h, int x0, int y0, int cw, int ch, uint8_t *dst,
                                    size_t dst_stride) {
    if (!src || !dst || w < 1 || h < 1 || c < 1 || out_w < 1 || out_h < 1 || cw < 1 || ch < 1 ||
        x0 < 0 || y0 < 0 || x0 > out_w - cw || y0 > out_h - ch)
        return GN_ERR_INVALID_ARG;
    /* As PIL: a pass runs only when that axis changes size. */
    int need_h = out_w != w, need_v = out_h != h;
    size_t src_stride = (size_t)w * c, row_bytes = (size_t)cw * c;
    axis_coeffs ax = {0}, ay = {0};
    uint8_t *tmp = NULL;
    gn_status st = GN_OK;
    if (need_h) st = axis_make(w, out_w, x0, cw, &ax);
    if (st == GN_OK && need_v) st = axis_make(h, out_h, y0, ch, &ay);
    if (st != GN_OK) goto done;

    int r0 = y0, r1 = y0 + ch; /* input rows the vertical pass reads */
    if (need_v) axis_span(&ay, &r0, &r1);
    const uint8_t *mid = src + (size_t)x0 * c; /* horizontally resampled rows, from row m0 */
    size_t mid_stride = src_stride;
    int m0 = 0;
    if (need_h) {
        size_t bytes;
        if (!gn_mul_size((size_t)(r1 - r0), row_bytes, &bytes) || !(tmp = gn_malloc(bytes))) {
            st = GN_ERR_NOMEM;
            goto done;
        }
        pass_horizontal(src + (size_t)r0 * src_stride, src_stride, r1 - r0, c, &ax, tmp, row_bytes);
        mid = tmp;
        mid_stride = row_bytes;
        m0 = r0;
    }
    if (need_v) {
        pass_vertical(mid, mid_stride, m0, row_bytes, &ay, dst, dst_stride);
    } else {
        for (int i = 0; i < ch; i++)
            memcpy(dst + (size_t)i * dst_stride, mid + (size_t)(y0 + i - m0) * mid_stride, row_bytes);
    }
done:
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    return st;
}

/* ---- preprocessing: the whole pipeline ---------------------------------------------------- */

static gn_status check_preprocess_args(const gn_image *image, const gn_preprocess *pre,
                                       int channels, const void *dst, gn_error *err) {
    if (!image || !pre || !dst)
        return gn_fail(err, GN_ERR_INVALID_ARG, "preprocess: image, parameters and output are required");
    if (!image->pixels || (image->channels != 1 && image->channels != 3) || image->width < 1 ||
        image->height < 1 || image->width > GN_IMAGE_MAX_SIDE ||
        image->height > GN_IMAGE_MAX_SIDE ||
        (uint64_t)image->width * (uint64_t)image->height > GN_IMAGE_MAX_PIXELS)
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "preprocess: invalid image (%dx%d, %d channels)", image->width,
                       image->height, image->channels);
    if (channels != 1 && channels != 3)
        return gn_fail(err, GN_ERR_INVALID_ARG, "preprocess: channels must be 1 or 3, not %d",
                       channels);
    if (pre->input_size < 1 || pre->input_size > GN_PREPROCESS_MAX_SIZE ||
        pre->resize_size < 1 || pre->resize_size > GN_PREPROCESS_MAX_SIZE)
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "preprocess: input_size %d and resize_size %d must be in 1..%d",
                       pre->input_size, pre->resize_size, GN_PREPROCESS_MAX_SIZE);
    for (int ch = 0; ch < channels; ch++) {
        if (!isfinite(pre->mean[ch]) || !isfinite(pre->std[ch]) || pre->std[ch] == 0.0f)
            return gn_fail(err, GN_ERR_INVALID_ARG,
                           "preprocess: channel %d needs a finite mean and a finite non-zero std",
                           ch);
    }
    return GN_OK;
}

/* Resize + centre crop of a c-channel image into an S x S x c buffer (zero where padded). */
static gn_status resize_and_crop(const uint8_t *src, int w, int h, int c, int resize, int crop,
                                 uint8_t *dst) {
    int nw, nh;
    gn_resize_shape(w, h, resize, &nw, &nh);
    int sx = gn_crop_start(nw, crop), sy = gn_crop_start(nh, crop);
    int x0 = sx > 0 ? sx : 0, y0 = sy > 0 ? sy : 0;
    int x1 = sx + crop < nw ? sx + crop : nw, y1 = sy + crop < nh ? sy + crop : nh;
    size_t stride = (size_t)crop * c;
    memset(dst, 0, stride * (size_t)crop); /* torchvision pads with 0 */
    uint8_t *at = dst + (size_t)(y0 - sy) * stride + (size_t)(x0 - sx) * c;
    return gn_resize_bilinear_window(src, w, h, c, nw, nh, x0, y0, x1 - x0, y1 - y0, at, stride);
}

gn_status gn_image_crop_u8(const gn_image *image, const gn_preprocess *pre, int channels,
                           uint8_t *dst, gn_error *err) {
    gn_status st = check_preprocess_args(image, pre, channels, dst, err);
    if (st != GN_OK) return st;
    int w = image->width, h = image->height, s = pre->input_size;
    size_t npix = (size_t)w * (size_t)h, crop_pix = (size_t)s * (size_t)s;
    const uint8_t *work = image->pixels;
    uint8_t *gray = NULL, *crop1 = NULL;
    int c = image->channels;
    if (channels == 1 && c == 3) { /* convert("L") happens before the resize */
        if (!(gray = malloc(npix))) return gn_fail(err, GN_ERR_NOMEM, "preprocess: out of memory");
        gn_rgb_to_luma(work, npix, gray);
        work = gray;
        c = 1;
    }
    uint8_t *target = dst;
    if (c != channels && !(target = crop1 = malloc(crop_pix))) { /* grey -> RGB: replicate after */
        free(gray);
        return gn_fail(err, GN_ERR_NOMEM, "preprocess: out of memory");
    }
    st = resize_and_crop(work, w, h, c, pre->resize_size, s, target);
    if (st == GN_OK && crop1) {
        for (size_t i = 0; i < crop_pix; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = crop1[i];
    }
    free(gray);
    free(crop1);
    if (st != GN_OK) return gn_fail(err, st, "preprocess: out of memory");
    return GN_OK;
}

gn_status gn_image_preprocess(const gn_image *image, const gn_preprocess *pre, int channels,
                              float *dst, gn_error *err) {
    gn_status st = check_preprocess_args(image, pre, channels, dst, err);
    if (st != GN_OK) return st;
    size_t plane = (size_t)pre->input_size * (size_t)pre->input_size;
    uint8_t *crop = malloc(plane * (size_t)channels);
    if (!crop) return gn_fail(err, GN_ERR_NOMEM, "preprocess: out of memory");
    st = gn_image_crop_u8(image, pre, channels, crop, err);
    if (st == GN_OK) {
        for (int ch = 0; ch < channels; ch++) {
            /* ToTensor then Normalize, in float32 like torch: (v / 255 - mean) / std */
            float table[256];
            for (int v = 0; v < 256; v++)
                table[v] = ((float)v / 255.0f - pre->mean[ch]) / pre->std[ch];
            float *o = dst + (size_t)ch * plane;
            for (size_t i = 0; i < plane; i++) o[i] = table[crop[i * channels + ch]];
        }
    }
    free(crop);
    return st;
}
