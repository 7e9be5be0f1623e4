/* Training charts and logs: a PNG line-chart writer (axes, numeric ticks, legend, drawn with a
 * built-in 5x7 bitmap font), an 8-bit PNG writer, and CSV/JSON epoch logs. Every file is
 * written atomically: to "<path>.tmp.<pid>", flushed, then renamed over `path`. */
#ifndef GN_PLOT_H
#define GN_PLOT_H

#include <stddef.h>
#include <stdint.h>

#include "ghostnet.h"

/* Canvas sides accepted by the chart writer. */
#define GN_PLOT_MIN_SIDE 160
#define GN_PLOT_MAX_SIDE 8192

typedef struct gn_plot_series {
    const char *label;  /* legend text: digits, letters (drawn upper case), space . % - : / ( ) */
    const double *x;    /* n x values, or NULL for x0, x0 + 1, ... */
    const double *y;    /* n y values; a non-finite value leaves a gap */
    int n;
    uint32_t rgb;       /* 0xRRGGBB */
} gn_plot_series;

typedef struct gn_plot_panel {
    const char *title;
    const gn_plot_series *series;
    int num_series;
    int percent;        /* 1: y tick labels end in '%' */
    double x0;          /* first x when a series has no x array */
    const char *x_label; /* under the x axis; NULL: "EPOCH" */
} gn_plot_panel;

/* Where a panel's data lands: plot area in pixels (inclusive bounds) and the axis ranges, so
 * (x, y) is drawn at left + (x - x_min) / (x_max - x_min) * (right - left), and likewise
 * from the bottom for y (rounded to the nearest pixel). */
typedef struct gn_plot_frame {
    int left, top, right, bottom;
    double x_min, x_max, y_min, y_max;
    double x_step, y_step; /* tick spacing */
} gn_plot_frame;

/* Panels sit side by side on a width x height white canvas. Each has its title above the plot
 * and the legend right-aligned beside it, or, when it does not fit there, on rows of its own
 * under the title (the plot area shrinks to make room). */
gn_status gn_plot_frame_of(const gn_plot_panel *panels, int num_panels, int index, int width,
                           int height, gn_plot_frame *out, gn_error *err);
gn_status gn_plot_write_png(const char *path, const gn_plot_panel *panels, int num_panels,
                            int width, int height, gn_error *err);

/* 8-bit gray (channels 1) or RGB (3) interleaved rows, written atomically. */
gn_status gn_png_write(const char *path, int width, int height, int channels,
                       const uint8_t *pixels, gn_error *err);

/* One row of a training log. Accuracies are in percent; NaN marks a missing value (written as
 * an empty CSV field or a JSON null, and skipped in charts). The ema_ fields are the test
 * results of the weight average (train --ema); a log whose rows all have NaN there has no
 * such columns or series. */
typedef struct gn_epoch_record {
    int epoch;
    double lr;
    double train_loss, train_acc;
    double test_loss, test_acc;
    double images_per_s;
    double seconds;
    double ema_test_loss, ema_test_acc;
} gn_epoch_record;

/* The whole log so far, rewritten each time (one header line + one line per epoch). */
gn_status gn_epoch_log_write_csv(const char *path, const gn_epoch_record *rows, int n,
                                 gn_error *err);
/* A JSON array of objects with the same keys as the CSV columns. */
gn_status gn_epoch_log_write_json(const char *path, const gn_epoch_record *rows, int n,
                                  gn_error *err);
/* Two panels: LOSS (train, test) and ACCURACY (train, test, in percent) against epoch, each
 * with a third series for the weight average when the log has one. */
gn_status gn_plot_training(const char *path, const gn_epoch_record *rows, int n, int width,
                           int height, gn_error *err);

/* Series colours used by gn_plot_training. */
#define GN_PLOT_COLOR_TRAIN 0x1f77b4u
#define GN_PLOT_COLOR_TEST 0xd62728u
#define GN_PLOT_COLOR_EMA 0x2ca02cu

#endif
