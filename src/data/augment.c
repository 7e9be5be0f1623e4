/* Training augmentation with explicit random state: the torchvision/timm transforms re-stated
 * on planar uint8 images (geometry, flip) and on the normalised float tensor (erasing). */
#include "data/dataset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "io/image_internal.h"

/* ---- parameters -------------------------------------------------------------------------- */

gn_augment gn_augment_none(void) {
    gn_augment a;
    memset(&a, 0, sizeof a);
    a.scale[0] = 0.08f;
    a.scale[1] = 1.0f;
    a.ratio[0] = 3.0f / 4.0f;
    a.ratio[1] = 4.0f / 3.0f;
    a.erase_area[0] = 0.02f;
    a.erase_area[1] = 1.0f / 3.0f;
    a.erase_log_ratio[0] = logf(0.3f);
    a.erase_log_ratio[1] = logf(1.0f / 0.3f);
    a.erase_fill = GN_ERASE_NOISE;
    return a;
}

gn_augment gn_augment_small_default(void) {
    gn_augment a = gn_augment_none();
    a.crop_padding = 2;
    a.hflip_prob = 0.5f;
    return a;
}

gn_augment gn_augment_imagenet_default(void) {
    gn_augment a = gn_augment_none();
    a.random_resized_crop = 1;
    a.hflip_prob = 0.5f;
    a.erase_prob = 0.25f;
    return a;
}

static int is_prob(float p) { return p >= 0.0f && p <= 1.0f; } /* false for NaN */

gn_status gn_augment_validate(const gn_augment *a, gn_error *err) {
    if (!a) return GN_OK;
    if (a->crop_padding < 0 || a->crop_padding > (int)GN_IDX_MAX_SIDE)
        return gn_fail(err, GN_ERR_INVALID_ARG, "augment: crop padding %d is not 0..%u",
                       a->crop_padding, (unsigned)GN_IDX_MAX_SIDE);
    if (a->random_resized_crop != 0 && a->random_resized_crop != 1)
        return gn_fail(err, GN_ERR_INVALID_ARG, "augment: random_resized_crop must be 0 or 1");
    if (!is_prob(a->hflip_prob) || !is_prob(a->erase_prob))
        return gn_fail(err, GN_ERR_INVALID_ARG, "augment: probabilities must lie in [0, 1]");
    if (a->random_resized_crop &&
        !(a->scale[0] > 0.0f && a->scale[0] <= a->scale[1] && a->scale[1] <= 1.0f &&
          a->ratio[0] > 0.0f && a->ratio[0] <= a->ratio[1] && isfinite(a->ratio[1])))
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "augment: random-resized-crop needs 0 < scale0 <= scale1 <= 1 and "
                       "0 < ratio0 <= ratio1");
    if (a->erase_prob > 0.0f &&
        !(a->erase_area[0] > 0.0f && a->erase_area[0] <= a->erase_area[1] &&
          a->erase_area[1] <= 1.0f && isfinite(a->erase_log_ratio[0]) &&
          isfinite(a->erase_log_ratio[1]) && a->erase_log_ratio[0] <= a->erase_log_ratio[1]))
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "augment: erasing needs 0 < area0 <= area1 <= 1 and finite ordered "
                       "log ratios");
    if (a->erase_fill != GN_ERASE_NOISE && a->erase_fill != GN_ERASE_ZERO)
        return gn_fail(err, GN_ERR_INVALID_ARG, "augment: unknown erase fill %d",
                       (int)a->erase_fill);
    return GN_OK;
}

/* ---- random streams ---------------------------------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void gn_rng_for_sample(gn_rng *rng, uint64_t seed, uint64_t epoch, uint64_t index) {
    /* Chained hashing: nearby (epoch, index) pairs get unrelated streams. */
    uint64_t k = mix64(seed ^ 0x6a09e667f3bcc908ULL);
    k = mix64(k ^ epoch);
    k = mix64(k ^ index);
    gn_rng_seed(rng, k);
}

static double uniform_in(gn_rng *rng, double lo, double hi) {
    return lo + (hi - lo) * (double)gn_rng_uniform(rng);
}

/* Python's round(): halves to even (the default rounding mode). */
static int round_even(double x) { return (int)nearbyint(x); }

/* ---- boxes ------------------------------------------------------------------------------- */

gn_box gn_rrc_box(gn_rng *rng, int height, int width, const float scale[2],
                  const float ratio[2]) {
    double area = (double)height * width;
    double lr0 = log(ratio[0]), lr1 = log(ratio[1]);
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = area * uniform_in(rng, scale[0], scale[1]);
        double aspect = exp(uniform_in(rng, lr0, lr1));
        int w = round_even(sqrt(target * aspect)), h = round_even(sqrt(target / aspect));
        if (w > 0 && w <= width && h > 0 && h <= height) {
            gn_box b = {0, 0, h, w};
            b.top = (int)gn_rng_below(rng, (uint32_t)(height - h + 1));
            b.left = (int)gn_rng_below(rng, (uint32_t)(width - w + 1));
            return b;
        }
    }
    /* Fallback: the centre crop with the aspect ratio clamped to the range. */
    double in_ratio = (double)width / height;
    int w = width, h = height;
    if (in_ratio < ratio[0]) h = round_even(w / (double)ratio[0]);
    else if (in_ratio > ratio[1]) w = round_even(h * (double)ratio[1]);
    if (h < 1) h = 1;
    if (w < 1) w = 1;
    gn_box b = {(height - h) / 2, (width - w) / 2, h, w};
    return b;
}

int gn_erase_box(gn_rng *rng, int height, int width, const float area[2],
                 const float log_ratio[2], gn_box *box) {
    double total = (double)height * width;
    for (int attempt = 0; attempt < 10; attempt++) {
        double target = uniform_in(rng, area[0], area[1]) * total;
        double aspect = exp(uniform_in(rng, log_ratio[0], log_ratio[1]));
        int h = round_even(sqrt(target * aspect)), w = round_even(sqrt(target / aspect));
        if (w < width && h < height) { /* timm: strictly smaller than the image */
            box->height = h;
            box->width = w;
            box->top = (int)gn_rng_below(rng, (uint32_t)(height - h + 1));
            box->left = (int)gn_rng_below(rng, (uint32_t)(width - w + 1));
            return 1;
        }
    }
    return 0;
}

/* ---- pixel operations -------------------------------------------------------------------- */

void gn_crop_u8(const uint8_t *src, int c, int h, int w, int top, int left, uint8_t *dst,
                int oh, int ow) {
    /* Output columns [x0, x1) read source columns inside [0, w). */
    int x0 = left < 0 ? -left : 0, x1 = w - left < ow ? w - left : ow;
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *sp = src + (size_t)ch * h * w;
        uint8_t *dp = dst + (size_t)ch * oh * ow;
        for (int y = 0; y < oh; y++) {
            uint8_t *row = dp + (size_t)y * ow;
            int sy = top + y;
            if (sy < 0 || sy >= h || x1 <= x0) {
                memset(row, 0, (size_t)ow);
                continue;
            }
            memset(row, 0, (size_t)x0);
            memcpy(row + x0, sp + (size_t)sy * w + (left + x0), (size_t)(x1 - x0));
            memset(row + x1, 0, (size_t)(ow - x1));
        }
    }
}

void gn_hflip_u8(uint8_t *img, int c, int h, int w) {
    for (size_t r = 0; r < (size_t)c * h; r++) {
        uint8_t *row = img + r * w;
        for (int a = 0, b = w - 1; a < b; a++, b--) {
            uint8_t t = row[a];
            row[a] = row[b];
            row[b] = t;
        }
    }
}

void gn_normalize_u8(const uint8_t *src, int c, size_t plane, const float *mean,
                     const float *std, float *dst) {
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *s = src + (size_t)ch * plane;
        float *d = dst + (size_t)ch * plane;
        float m = mean[ch], sd = std[ch];
        for (size_t i = 0; i < plane; i++) d[i] = ((float)s[i] / 255.0f - m) / sd; /* as torch */
    }
}

/* ---- PIL-style bilinear resize ----------------------------------------------------------- */

/* Taps per output position for a given scale: PIL's support is the filter scale. */
static int taps(int in, int out) {
    double fs = (double)in / out;
    if (fs < 1.0) fs = 1.0;
    return (int)ceil(fs) * 2 + 1;
}

size_t gn_resize_scratch_floats(int max_in_h, int max_in_w, int oh, int ow) {
    size_t kh = (size_t)taps(max_in_h, oh), kw = (size_t)taps(max_in_w, ow);
    return (size_t)max_in_h * ow + (size_t)ow * (2 + kw) + (size_t)oh * (2 + kh);
}

/* Coefficients for `out` positions over `in` inputs: per position [first, count, weights...]
 * with `stride` floats (stride = 2 + max taps). */
static void make_coeffs(int in, int out, float *tab, int stride) {
    double scale = (double)in / out, fs = scale < 1.0 ? 1.0 : scale, support = fs;
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        if (hi - lo > stride - 2) hi = lo + stride - 2;
        float *t = tab + (size_t)i * stride;
        double sum = 0.0;
        for (int k = 0; k < hi - lo; k++) {
            double x = fabs((k + lo - center + 0.5) / fs);
            double wgt = x < 1.0 ? 1.0 - x : 0.0;
            t[2 + k] = (float)wgt;
            sum += wgt;
        }
        for (int k = 0; k < hi - lo; k++) t[2 + k] = sum != 0.0 ? (float)(t[2 + k] / sum) : 0.0f;
        t[0] = (float)lo;
        t[1] = (float)(hi - lo);
    }
}

static uint8_t to_u8(float v) {
    if (!(v > 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)(v + 0.5f);
}

void gn_resize_box_u8(const uint8_t *src, int c, int h, int w, gn_box box, uint8_t *dst, int oh,
                      int ow, float *scratch) {
    int sw = taps(box.width, ow) + 2, sh = taps(box.height, oh) + 2;
    float *mid = scratch;                            /* box.height x ow */
    float *cx = mid + (size_t)box.height * ow;       /* ow x sw */
    float *cy = cx + (size_t)ow * sw;                /* oh x sh */
    make_coeffs(box.width, ow, cx, sw);
    make_coeffs(box.height, oh, cy, sh);
    for (int ch = 0; ch < c; ch++) {
        const uint8_t *plane = src + (size_t)ch * h * w;
        for (int y = 0; y < box.height; y++) {
            const uint8_t *row = plane + (size_t)(box.top + y) * w + box.left;
            for (int x = 0; x < ow; x++) {
                const float *t = cx + (size_t)x * sw;
                int first = (int)t[0], n = (int)t[1];
                float acc = 0.0f;
                for (int k = 0; k < n; k++) acc += t[2 + k] * row[first + k];
                mid[(size_t)y * ow + x] = acc;
            }
        }
        uint8_t *out = dst + (size_t)ch * oh * ow;
        for (int y = 0; y < oh; y++) {
            const float *t = cy + (size_t)y * sh;
            int first = (int)t[0], n = (int)t[1];
            for (int x = 0; x < ow; x++) {
                float acc = 0.0f;
                for (int k = 0; k < n; k++) acc += t[2 + k] * mid[(size_t)(first + k) * ow + x];
                out[(size_t)y * ow + x] = to_u8(acc);
            }
        }
    }
}

/* ---- one sample -------------------------------------------------------------------------- */

struct gn_augment_ws {
    int c, in_h, in_w, out_h, out_w;
    uint8_t *geo;  /* C x out_h x out_w after the geometric step */
    float *resize; /* gn_resize_box_u8 scratch */
};

gn_status gn_augment_ws_create(int channels, int in_h, int in_w, int out_h, int out_w,
                               gn_augment_ws **out, gn_error *err) {
    *out = NULL;
    int max = (int)GN_IDX_MAX_SIDE;
    if (channels < 1 || channels > 3 || in_h < 1 || in_w < 1 || out_h < 1 || out_w < 1 ||
        in_h > max || in_w > max || out_h > max || out_w > max)
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "augment: %d channels, %dx%d -> %dx%d is out of range", channels, in_w,
                       in_h, out_w, out_h);
    gn_augment_ws *ws = calloc(1, sizeof *ws);
    size_t geo = (size_t)channels * out_h * out_w;
    size_t floats = gn_resize_scratch_floats(in_h, in_w, out_h, out_w);
    if (ws) {
        ws->geo = malloc(geo);
        ws->resize = malloc(floats * sizeof *ws->resize);
    }
    if (!ws || !ws->geo || !ws->resize) {
        gn_augment_ws_free(ws);
        return gn_fail(err, GN_ERR_NOMEM, "augment: out of memory");
    }
    ws->c = channels;
    ws->in_h = in_h;
    ws->in_w = in_w;
    ws->out_h = out_h;
    ws->out_w = out_w;
    *out = ws;
    return GN_OK;
}

void gn_augment_ws_free(gn_augment_ws *ws) {
    if (!ws) return;
    free(ws->geo);
    free(ws->resize);
    free(ws);
}

/* Random offset of a crop of `out` from the source zero-padded by `pad` (torchvision RandomCrop
 * draws in [0, len + 2 pad - out]); centred when the crop does not fit. */
static int crop_offset(gn_rng *rng, int len, int pad, int out) {
    int range = len + 2 * pad - out;
    if (range < 0) return gn_crop_start(len, out);
    return (int)gn_rng_below(rng, (uint32_t)range + 1) - pad;
}

static void geometry(gn_augment_ws *ws, const gn_augment *aug, gn_rng *rng, const uint8_t *src) {
    int c = ws->c, h = ws->in_h, w = ws->in_w, oh = ws->out_h, ow = ws->out_w;
    if (aug && aug->random_resized_crop) {
        gn_box b = gn_rrc_box(rng, h, w, aug->scale, aug->ratio);
        gn_resize_box_u8(src, c, h, w, b, ws->geo, oh, ow, ws->resize);
    } else if (aug && aug->crop_padding > 0) {
        int top = crop_offset(rng, h, aug->crop_padding, oh);
        int left = crop_offset(rng, w, aug->crop_padding, ow);
        gn_crop_u8(src, c, h, w, top, left, ws->geo, oh, ow);
    } else {
        gn_crop_u8(src, c, h, w, gn_crop_start(h, oh), gn_crop_start(w, ow), ws->geo, oh, ow);
    }
}

static void erase(const gn_augment *aug, gn_rng *rng, int c, int h, int w, float *dst) {
    gn_box b;
    if (!gn_erase_box(rng, h, w, aug->erase_area, aug->erase_log_ratio, &b)) return;
    for (int ch = 0; ch < c; ch++) {
        for (int y = b.top; y < b.top + b.height; y++) {
            float *row = dst + ((size_t)ch * h + y) * w;
            for (int x = b.left; x < b.left + b.width; x++)
                row[x] = aug->erase_fill == GN_ERASE_NOISE ? gn_rng_normal(rng) : 0.0f;
        }
    }
}

void gn_augment_sample(gn_augment_ws *ws, const gn_augment *aug, gn_rng *rng,
                       const uint8_t *src, const float *mean, const float *std, float *dst) {
    geometry(ws, aug, rng, src);
    if (aug && aug->hflip_prob > 0.0f && gn_rng_uniform(rng) < aug->hflip_prob)
        gn_hflip_u8(ws->geo, ws->c, ws->out_h, ws->out_w);
    gn_normalize_u8(ws->geo, ws->c, (size_t)ws->out_h * ws->out_w, mean, std, dst);
    if (aug && aug->erase_prob > 0.0f && gn_rng_uniform(rng) < aug->erase_prob)
        erase(aug, rng, ws->c, ws->out_h, ws->out_w, dst);
}
