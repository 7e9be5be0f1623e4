/* Line charts rendered on an RGB canvas and written as PNG, plus CSV/JSON epoch logs. Text uses
 * a built-in 5x7 bitmap font so no font library is needed. */
#define _POSIX_C_SOURCE 200809L /* getpid, fileno, fsync */

#include "io/plot.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <png.h>

#include "core/common.h"

/* ---- atomic files ------------------------------------------------------------------------ */

/* Writes the whole content to f; returns 0 on failure with a reason in msg (or errno). */
typedef int (*writer_fn)(FILE *f, const void *ctx, char *msg, size_t cap);

static gn_status write_atomic(const char *path, writer_fn fn, const void *ctx, gn_error *err) {
    if (!path || !*path) return gn_fail(err, GN_ERR_INVALID_ARG, "output path is empty");
    size_t cap = strlen(path) + 32;
    char *tmp = gn_malloc(cap);
    if (!tmp) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    errno = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        gn_status st = gn_fail(err, GN_ERR_IO, "%s: cannot create '%s': %s", path, tmp,
                               strerror(errno));
        free(tmp);
        return st;
    }
    char msg[256] = "";
    errno = 0;
    /* Flushed to the disk before the rename makes the file visible. */
    int ok = fn(f, ctx, msg, sizeof msg) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    gn_status st = GN_OK;
    if (!ok)
        st = gn_fail(err, GN_ERR_IO, "%s: writing '%s' failed: %s", path, tmp,
                     msg[0] ? msg : (e ? strerror(e) : "write error"));
    else if (rename(tmp, path) != 0)
        st = gn_fail(err, GN_ERR_IO, "%s: cannot rename '%s' into place: %s", path, tmp,
                     strerror(errno));
    if (st != GN_OK) remove(tmp);
    free(tmp);
    return st;
}

/* ---- PNG --------------------------------------------------------------------------------- */

typedef struct png_job {
    int width, height, channels;
    const uint8_t *pixels;
    char *msg;
    size_t cap;
} png_job;

static void png_on_error(png_structp png, png_const_charp text) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->msg, job->cap, "PNG: %s", text);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void png_body(png_structp png, png_infop info, FILE *f, const png_job *job) {
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)job->width, (png_uint_32)job->height, 8,
                 job->channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)job->width * (size_t)job->channels;
    for (int y = 0; y < job->height; y++)
        png_write_row(png, (png_const_bytep)(job->pixels + (size_t)y * stride));
    png_write_end(png, NULL);
}

/* Holds the setjmp and nothing else, so no local can be clobbered by the longjmp. */
static int png_guarded(png_structp png, png_infop info, FILE *f, const png_job *job) {
    if (setjmp(png_jmpbuf(png))) return 0;
    png_body(png, info, f, job);
    return 1;
}

static int write_png_file(FILE *f, const void *ctx, char *msg, size_t cap) {
    png_job job = *(const png_job *)ctx;
    job.msg = msg;
    job.cap = cap;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job, png_on_error,
                                              png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        snprintf(msg, cap, "PNG: out of memory");
        return 0;
    }
    int ok = png_guarded(png, info, f, &job);
    png_destroy_write_struct(&png, &info);
    return ok;
}

gn_status gn_png_write(const char *path, int width, int height, int channels,
                       const uint8_t *pixels, gn_error *err) {
    if (!pixels || width < 1 || height < 1 || width > 1 << 16 || height > 1 << 16 ||
        (channels != 1 && channels != 3))
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: PNG of %dx%d with %d channels is invalid",
                       path ? path : "(null)", width, height, channels);
    png_job job = {width, height, channels, pixels, NULL, 0};
    return write_atomic(path, write_png_file, &job, err);
}

/* ---- the 5x7 font ------------------------------------------------------------------------ */

typedef struct glyph {
    char c;
    uint8_t rows[7]; /* bit 4 is the leftmost column */
} glyph;

static const glyph k_font[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'.', {0, 0, 0, 0, 0, 0x0C, 0x0C}},
    {',', {0, 0, 0, 0, 0x0C, 0x04, 0x08}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'-', {0, 0, 0, 0x1F, 0, 0, 0}},
    {'+', {0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0}},
    {':', {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0}},
    {'/', {0, 0x01, 0x02, 0x04, 0x08, 0x10, 0}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'_', {0, 0, 0, 0, 0, 0, 0x1F}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04}},
};

static const glyph *find_glyph(char c) {
    if (c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A'); /* one case keeps the table small */
    size_t n = sizeof k_font / sizeof k_font[0];
    for (size_t i = 0; i < n; i++)
        if (k_font[i].c == c) return &k_font[i];
    return &k_font[n - 1]; /* '?' */
}

/* ---- canvas ------------------------------------------------------------------------------ */

typedef struct canvas {
    int w, h;
    uint8_t *rgb;
    int clip_x0, clip_y0, clip_x1, clip_y1; /* inclusive */
} canvas;

#define COLOR_BLACK 0x000000u
#define COLOR_GRID 0xe4e4e4u
#define COLOR_TEXT 0x202020u

static void clip_all(canvas *cv) {
    cv->clip_x0 = cv->clip_y0 = 0;
    cv->clip_x1 = cv->w - 1;
    cv->clip_y1 = cv->h - 1;
}

static void put(canvas *cv, int x, int y, uint32_t rgb) {
    if (x < cv->clip_x0 || x > cv->clip_x1 || y < cv->clip_y0 || y > cv->clip_y1) return;
    uint8_t *p = cv->rgb + ((size_t)y * cv->w + x) * 3;
    p[0] = (uint8_t)(rgb >> 16);
    p[1] = (uint8_t)(rgb >> 8);
    p[2] = (uint8_t)rgb;
}

static void fill_rect(canvas *cv, int x0, int y0, int x1, int y1, uint32_t rgb) {
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) put(cv, x, y, rgb);
}

/* A t x t brush covering offsets -(t-1)/2 .. t/2, so the centre pixel is always drawn. */
static void dot(canvas *cv, int x, int y, int t, uint32_t rgb) {
    fill_rect(cv, x - (t - 1) / 2, y - (t - 1) / 2, x + t / 2, y + t / 2, rgb);
}

static void line(canvas *cv, int x0, int y0, int x1, int y1, int t, uint32_t rgb) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    for (;;) { /* Bresenham */
        dot(cv, x0, y0, t, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

static void text(canvas *cv, int x, int y, const char *s, int scale, uint32_t rgb) {
    for (; *s; s++, x += 6 * scale) {
        const glyph *g = find_glyph(*s);
        for (int r = 0; r < 7; r++)
            for (int c = 0; c < 5; c++)
                if (g->rows[r] & (0x10 >> c))
                    fill_rect(cv, x + c * scale, y + r * scale, x + c * scale + scale - 1,
                              y + r * scale + scale - 1, rgb);
    }
}

static int text_width(const char *s, int scale) {
    size_t n = strlen(s);
    return n ? (int)n * 6 * scale - scale : 0;
}

/* ---- layout ------------------------------------------------------------------------------ */

static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10.0, floor(log10(raw))), norm = raw / mag;
    double f = norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0;
    return f * mag;
}

static int step_decimals(double step) {
    if (step >= 1.0) return 0;
    int d = (int)ceil(-log10(step) - 1e-9);
    return d > 9 ? 9 : d;
}

static void tick_label(double v, double step, int percent, char *buf, size_t cap) {
    if (fabs(v) < step * 1e-6) v = 0.0; /* no "-0" */
    snprintf(buf, cap, "%.*f%s", step_decimals(step), v, percent ? "%" : "");
}

static double series_x(const gn_plot_panel *p, const gn_plot_series *s, int i) {
    return s->x ? s->x[i] : p->x0 + i;
}

typedef struct data_range {
    double x_lo, x_hi, y_lo, y_hi;
    int any, x_integral;
} data_range;

static data_range panel_range(const gn_plot_panel *p) {
    data_range r = {INFINITY, -INFINITY, INFINITY, -INFINITY, 0, 1};
    for (int k = 0; k < p->num_series; k++) {
        const gn_plot_series *s = &p->series[k];
        for (int i = 0; s->y && i < s->n; i++) {
            double x = series_x(p, s, i), y = s->y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            r.any = 1;
            r.x_integral &= x == floor(x);
            if (x < r.x_lo) r.x_lo = x;
            if (x > r.x_hi) r.x_hi = x;
            if (y < r.y_lo) r.y_lo = y;
            if (y > r.y_hi) r.y_hi = y;
        }
    }
    if (!r.any) {
        r.x_lo = p->x0;
        r.x_hi = p->x0 + 1;
        r.y_lo = 0;
        r.y_hi = 1;
    }
    if (r.x_hi - r.x_lo <= 0) {
        r.x_lo -= 1;
        r.x_hi += 1;
    }
    if (r.y_hi - r.y_lo <= 1e-12 * fmax(1.0, fabs(r.y_hi))) {
        double pad = r.y_hi != 0 ? fabs(r.y_hi) * 0.1 : 1.0;
        r.y_lo -= pad;
        r.y_hi += pad;
    }
    /* A margin so markers at the extremes are not cut by the frame. */
    double px = 0.03 * (r.x_hi - r.x_lo), py = 0.04 * (r.y_hi - r.y_lo);
    r.x_lo -= px;
    r.x_hi += px;
    r.y_lo -= py;
    r.y_hi += py;
    return r;
}

static int plot_scale(int width, int height, int num_panels) {
    return height >= 360 && width / num_panels >= 360 ? 2 : 1;
}

/* Longest y tick label, in characters. */
static int y_label_chars(const gn_plot_frame *f, int percent) {
    int most = 1;
    for (int i = 0; i <= 100; i++) {
        double v = f->y_min + i * f->y_step;
        if (v > f->y_max + f->y_step * 1e-6) break;
        char buf[64];
        tick_label(v, f->y_step, percent, buf, sizeof buf);
        int n = (int)strlen(buf);
        if (n > most) most = n;
    }
    return most;
}

/* ---- legend ------------------------------------------------------------------------------ */

enum { kLegendRow = 11, kLegendGap = 10, kSwatch = 12 }; /* in font-scale units */

static int legend_entry_width(const gn_plot_series *sr, int s) {
    return (kSwatch + 4) * s + text_width(sr->label ? sr->label : "", s);
}

static void legend_entry(canvas *cv, const gn_plot_series *sr, int s, int x, int y) {
    fill_rect(cv, x, y + 2 * s, x + kSwatch * s - 1, y + 4 * s, sr->rgb);
    text(cv, x + (kSwatch + 4) * s, y, sr->label ? sr->label : "", s, COLOR_TEXT);
}

/* Lays the legend out for a title row at y (drawing when cv is not NULL) and returns how many
 * rows it needs below the title row: 0 when it fits beside the title. */
static int legend_layout(canvas *cv, const gn_plot_panel *p, int s, int left, int right, int y) {
    int total = 0;
    for (int k = 0; k < p->num_series; k++)
        total += legend_entry_width(&p->series[k], s) + (k ? kLegendGap * s : 0);
    const int title = p->title ? text_width(p->title, s) + 2 * kLegendGap * s : 0;
    if (left + title + total <= right) {
        int x = right - total;
        for (int k = 0; k < p->num_series; k++) {
            if (cv) legend_entry(cv, &p->series[k], s, x, y);
            x += legend_entry_width(&p->series[k], s) + kLegendGap * s;
        }
        return 0;
    }
    int rows = 1, x = left;
    for (int k = 0; k < p->num_series; k++) {
        const int w = legend_entry_width(&p->series[k], s);
        if (x > left && x + w > right) {
            rows++;
            x = left;
        }
        if (cv) legend_entry(cv, &p->series[k], s, x, y + rows * kLegendRow * s);
        x += w + kLegendGap * s;
    }
    return rows;
}

static int legend_rows(const gn_plot_panel *p, int s, int left, int right) {
    return legend_layout(NULL, p, s, left, right, 0);
}

gn_status gn_plot_frame_of(const gn_plot_panel *panels, int num_panels, int index, int width,
                           int height, gn_plot_frame *out, gn_error *err) {
    if (!panels || !out || num_panels < 1 || index < 0 || index >= num_panels)
        return gn_fail(err, GN_ERR_INVALID_ARG, "plot: bad panel arguments");
    if (width < GN_PLOT_MIN_SIDE * num_panels || height < GN_PLOT_MIN_SIDE ||
        width > GN_PLOT_MAX_SIDE || height > GN_PLOT_MAX_SIDE)
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "plot: %dx%d is not a valid canvas for %d panels (%d..%d per side)",
                       width, height, num_panels, GN_PLOT_MIN_SIDE, GN_PLOT_MAX_SIDE);
    const gn_plot_panel *p = &panels[index];
    data_range r = panel_range(p);
    if (!isfinite(r.x_hi - r.x_lo) || !isfinite(r.y_hi - r.y_lo))
        return gn_fail(err, GN_ERR_INVALID_ARG, "plot: panel %d spans too wide a range", index);
    gn_plot_frame f;
    f.y_step = nice_step(r.y_hi - r.y_lo, 5);
    f.y_min = floor(r.y_lo / f.y_step) * f.y_step;
    f.y_max = ceil(r.y_hi / f.y_step) * f.y_step;
    f.x_min = r.x_lo;
    f.x_max = r.x_hi;
    f.x_step = nice_step(r.x_hi - r.x_lo, 6);
    if (r.x_integral && f.x_step < 1.0) f.x_step = 1.0; /* epochs: whole numbers only */
    if (!(f.x_step > 0.0) || !(f.y_step > 0.0) || !isfinite(f.y_min) || !isfinite(f.y_max) ||
        !(f.y_max > f.y_min))
        return gn_fail(err, GN_ERR_INVALID_ARG, "plot: panel %d has no usable value range", index);

    int s = plot_scale(width, height, num_panels), cw = 6 * s, ch = 8 * s;
    int x0 = index * width / num_panels, x1 = (index + 1) * width / num_panels - 1;
    int chars = y_label_chars(&f, p->percent);
    if (chars > 12) chars = 12;
    f.left = x0 + chars * cw + 8 * s;
    f.right = x1 - 4 * cw;
    f.top = 3 * ch + legend_rows(p, s, f.left, f.right) * kLegendRow * s;
    f.bottom = height - 1 - 3 * ch;
    if (f.right - f.left < 20 || f.bottom - f.top < 20)
        return gn_fail(err, GN_ERR_INVALID_ARG, "plot: %dx%d is too small for %d panels", width,
                       height, num_panels);
    *out = f;
    return GN_OK;
}

/* ---- drawing ----------------------------------------------------------------------------- */

static int map_x(const gn_plot_frame *f, double x) {
    return (int)lround(f->left + (x - f->x_min) / (f->x_max - f->x_min) * (f->right - f->left));
}

static int map_y(const gn_plot_frame *f, double y) {
    return (int)lround(f->bottom - (y - f->y_min) / (f->y_max - f->y_min) * (f->bottom - f->top));
}

static void draw_axes(canvas *cv, const gn_plot_panel *p, const gn_plot_frame *f, int s) {
    int tick = 4 * s;
    char buf[64];
    for (int i = 0; i <= 100; i++) { /* y ticks */
        double v = f->y_min + i * f->y_step;
        if (v > f->y_max + f->y_step * 1e-6) break;
        int y = map_y(f, v);
        line(cv, f->left, y, f->right, y, 1, COLOR_GRID);
        line(cv, f->left - tick, y, f->left, y, s, COLOR_BLACK);
        tick_label(v, f->y_step, p->percent, buf, sizeof buf);
        buf[12] = '\0';
        text(cv, f->left - tick - 2 * s - text_width(buf, s), y - 3 * s, buf, s, COLOR_TEXT);
    }
    double k0 = ceil(f->x_min / f->x_step - 1e-9);
    for (int i = 0; i <= 100; i++) { /* x ticks */
        double v = (k0 + i) * f->x_step;
        if (v > f->x_max + f->x_step * 1e-6) break;
        int x = map_x(f, v);
        line(cv, x, f->top, x, f->bottom, 1, COLOR_GRID);
        line(cv, x, f->bottom, x, f->bottom + tick, s, COLOR_BLACK);
        tick_label(v, f->x_step, 0, buf, sizeof buf);
        text(cv, x - text_width(buf, s) / 2, f->bottom + tick + 3 * s, buf, s, COLOR_TEXT);
    }
    /* Frame drawn last so the grid does not cover it. */
    line(cv, f->left, f->top, f->right, f->top, s, COLOR_BLACK);
    line(cv, f->left, f->bottom, f->right, f->bottom, s, COLOR_BLACK);
    line(cv, f->left, f->top, f->left, f->bottom, s, COLOR_BLACK);
    line(cv, f->right, f->top, f->right, f->bottom, s, COLOR_BLACK);
    const char *xl = p->x_label ? p->x_label : "EPOCH";
    int mid = (f->left + f->right) / 2;
    text(cv, mid - text_width(xl, s) / 2, f->bottom + tick + 14 * s, xl, s, COLOR_TEXT);
}

/* Title on the left of the row above the plot; the legend right-aligned on that row, or left-
 * aligned on rows below it when it does not fit (see legend_layout). */
static void draw_header(canvas *cv, const gn_plot_panel *p, const gn_plot_frame *f, int s) {
    const int rows = legend_rows(p, s, f->left, f->right);
    const int y = f->top - 12 * s - rows * kLegendRow * s;
    if (p->title) text(cv, f->left, y, p->title, s, COLOR_BLACK);
    legend_layout(cv, p, s, f->left, f->right, y);
}

static void draw_series(canvas *cv, const gn_plot_panel *p, const gn_plot_series *sr,
                        const gn_plot_frame *f, int s) {
    int have = 0, px = 0, py = 0;
    for (int i = 0; sr->y && i < sr->n; i++) {
        double x = series_x(p, sr, i), y = sr->y[i];
        if (!isfinite(x) || !isfinite(y)) {
            have = 0; /* a gap */
            continue;
        }
        int cx = map_x(f, x), cy = map_y(f, y);
        if (have) line(cv, px, py, cx, cy, s, sr->rgb);
        dot(cv, cx, cy, 2 * s + 1, sr->rgb);
        px = cx;
        py = cy;
        have = 1;
    }
}

static gn_status render(canvas *cv, const gn_plot_panel *panels, int num_panels, gn_error *err) {
    int s = plot_scale(cv->w, cv->h, num_panels);
    memset(cv->rgb, 0xff, (size_t)cv->w * cv->h * 3);
    for (int i = 0; i < num_panels; i++) {
        gn_plot_frame f;
        gn_status st = gn_plot_frame_of(panels, num_panels, i, cv->w, cv->h, &f, err);
        if (st != GN_OK) return st;
        clip_all(cv);
        draw_axes(cv, &panels[i], &f, s);
        draw_header(cv, &panels[i], &f, s);
        cv->clip_x0 = f.left;
        cv->clip_x1 = f.right;
        cv->clip_y0 = f.top;
        cv->clip_y1 = f.bottom;
        for (int k = 0; k < panels[i].num_series; k++)
            draw_series(cv, &panels[i], &panels[i].series[k], &f, s);
    }
    return GN_OK;
}

gn_status gn_plot_write_png(const char *path, const gn_plot_panel *panels, int num_panels,
                            int width, int height, gn_error *err) {
    if (!panels || num_panels < 1 || num_panels > 16)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: 1..16 panels are required",
                       path ? path : "plot");
    for (int i = 0; i < num_panels; i++)
        if (panels[i].num_series < 0 || (panels[i].num_series && !panels[i].series))
            return gn_fail(err, GN_ERR_INVALID_ARG, "%s: panel %d has no series array",
                           path ? path : "plot", i);
    gn_plot_frame probe;
    gn_status st = gn_plot_frame_of(panels, num_panels, 0, width, height, &probe, err);
    if (st != GN_OK) return st;
    canvas cv = {width, height, malloc((size_t)width * height * 3), 0, 0, 0, 0};
    if (!cv.rgb) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path ? path : "plot");
    st = render(&cv, panels, num_panels, err);
    if (st == GN_OK) st = gn_png_write(path, width, height, 3, cv.rgb, err);
    free(cv.rgb);
    return st;
}

/* ---- epoch logs -------------------------------------------------------------------------- */

typedef struct log_job {
    const gn_epoch_record *rows;
    int n;
} log_job;

static void csv_value(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, ",%.8g", v);
    else fputc(',', f);
}

static int log_has_ema(const log_job *job) {
    for (int i = 0; i < job->n; i++)
        if (isfinite(job->rows[i].ema_test_acc)) return 1;
    return 0;
}

static int write_csv(FILE *f, const void *ctx, char *msg, size_t cap) {
    (void)msg;
    (void)cap;
    const log_job *job = ctx;
    const int ema = log_has_ema(job);
    fprintf(f, "epoch,lr,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds%s\n",
            ema ? ",ema_test_loss,ema_test_acc" : "");
    for (int i = 0; i < job->n; i++) {
        const gn_epoch_record *r = &job->rows[i];
        fprintf(f, "%d", r->epoch);
        const double v[9] = {r->lr, r->train_loss, r->train_acc, r->test_loss, r->test_acc,
                             r->images_per_s, r->seconds, r->ema_test_loss, r->ema_test_acc};
        for (int k = 0; k < (ema ? 9 : 7); k++) csv_value(f, v[k]);
        fputc('\n', f);
    }
    return !ferror(f);
}

static void json_value(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.9g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

static int write_json(FILE *f, const void *ctx, char *msg, size_t cap) {
    (void)msg;
    (void)cap;
    const log_job *job = ctx;
    const int ema = log_has_ema(job);
    fputs("[", f);
    for (int i = 0; i < job->n; i++) {
        const gn_epoch_record *r = &job->rows[i];
        fprintf(f, "%s\n  {\"epoch\": %d", i ? "," : "", r->epoch);
        json_value(f, "lr", r->lr);
        json_value(f, "train_loss", r->train_loss);
        json_value(f, "train_acc", r->train_acc);
        json_value(f, "test_loss", r->test_loss);
        json_value(f, "test_acc", r->test_acc);
        json_value(f, "images_per_s", r->images_per_s);
        json_value(f, "seconds", r->seconds);
        if (ema) {
            json_value(f, "ema_test_loss", r->ema_test_loss);
            json_value(f, "ema_test_acc", r->ema_test_acc);
        }
        fputs("}", f);
    }
    fputs("\n]\n", f);
    return !ferror(f);
}

static gn_status check_log_args(const char *path, const gn_epoch_record *rows, int n,
                                gn_error *err) {
    if (n < 0 || (n > 0 && !rows))
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: bad epoch log arguments",
                       path ? path : "epoch log");
    return GN_OK;
}

gn_status gn_epoch_log_write_csv(const char *path, const gn_epoch_record *rows, int n,
                                 gn_error *err) {
    gn_status st = check_log_args(path, rows, n, err);
    log_job job = {rows, n};
    return st != GN_OK ? st : write_atomic(path, write_csv, &job, err);
}

gn_status gn_epoch_log_write_json(const char *path, const gn_epoch_record *rows, int n,
                                  gn_error *err) {
    gn_status st = check_log_args(path, rows, n, err);
    log_job job = {rows, n};
    return st != GN_OK ? st : write_atomic(path, write_json, &job, err);
}

gn_status gn_plot_training(const char *path, const gn_epoch_record *rows, int n, int width,
                           int height, gn_error *err) {
    gn_status st = check_log_args(path, rows, n, err);
    if (st != GN_OK) return st;
    double *buf = gn_calloc((size_t)n ? (size_t)n * 7 : 1, sizeof *buf);
    if (!buf) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", path ? path : "plot");
    double *x = buf, *trl = buf + n, *tel = buf + 2 * n, *tra = buf + 3 * n, *tea = buf + 4 * n;
    double *eml = buf + 5 * n, *ema = buf + 6 * n;
    for (int i = 0; i < n; i++) {
        x[i] = rows[i].epoch;
        trl[i] = rows[i].train_loss;
        tel[i] = rows[i].test_loss;
        tra[i] = rows[i].train_acc;
        tea[i] = rows[i].test_acc;
        eml[i] = rows[i].ema_test_loss;
        ema[i] = rows[i].ema_test_acc;
    }
    const log_job job = {rows, n};
    const int series = log_has_ema(&job) ? 3 : 2;
    gn_plot_series loss[3] = {{"train", x, trl, n, GN_PLOT_COLOR_TRAIN},
                              {"test", x, tel, n, GN_PLOT_COLOR_TEST},
                              {"test (EMA)", x, eml, n, GN_PLOT_COLOR_EMA}};
    gn_plot_series acc[3] = {{"train", x, tra, n, GN_PLOT_COLOR_TRAIN},
                             {"test", x, tea, n, GN_PLOT_COLOR_TEST},
                             {"test (EMA)", x, ema, n, GN_PLOT_COLOR_EMA}};
    gn_plot_panel panels[2] = {{"loss", loss, series, 0, 1.0, "EPOCH"},
                               {"accuracy", acc, series, 1, 1.0, "EPOCH"}};
    st = gn_plot_write_png(path, panels, 2, width, height, err);
    free(buf);
    return st;
}
