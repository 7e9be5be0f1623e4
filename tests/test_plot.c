/* Charts and logs: the PNG decodes back at the right size with the curves where the frame says
 * they are; CSV/JSON logs hold the expected text; writes are atomic. */
#define _POSIX_C_SOURCE 200809L /* mkdir */

#include <stdint.h>
#include <sys/stat.h>

#include "core/common.h"
#include "io/plot.h"
#include "test_util.h"

#define WORK "plot_work"

static uint32_t pixel(const gn_image *im, int x, int y) {
    const uint8_t *p = im->pixels + ((size_t)y * im->width + x) * 3;
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static int map(double v, double lo, double hi, int a, int b) {
    return (int)lround(a + (v - lo) / (hi - lo) * (b - a));
}

/* Pixels of colour rgb inside [x0, x1] x [y0, y1]. */
static int count_color(const gn_image *im, int x0, int y0, int x1, int y1, uint32_t rgb) {
    int n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++) n += pixel(im, x, y) == rgb;
    return n;
}

static void test_chart(int width, int height) {
    enum { N = 12 };
    double up[N], down[N];
    for (int i = 0; i < N; i++) {
        up[i] = 0.5 + 0.1 * i;
        down[i] = 2.0 - 0.12 * i;
    }
    down[5] = NAN; /* a gap */
    gn_plot_series s[2] = {{"rising", NULL, up, N, 0x00a000u}, {"falling", NULL, down, N, 0x0000e0u}};
    double acc[N];
    for (int i = 0; i < N; i++) acc[i] = 50.0 + 4.0 * i;
    gn_plot_series s2[1] = {{"acc", NULL, acc, N, 0xe00000u}};
    gn_plot_panel panels[2] = {{"loss", s, 2, 0, 1.0, NULL}, {"accuracy", s2, 1, 1, 1.0, NULL}};
    const char *path = WORK "/chart.png";
    gn_error err = {0};
    gn_status st = gn_plot_write_png(path, panels, 2, width, height, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    gn_image im;
    st = gn_image_load(path, &im, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st != GN_OK) return;
    CHECK(im.width == width && im.height == height && im.channels == 3);

    for (int p = 0; p < 2; p++) {
        gn_plot_frame f;
        CHECK(gn_plot_frame_of(panels, 2, p, width, height, &f, &err) == GN_OK);
        CHECK(f.left > p * width / 2 && f.right < (p + 1) * width / 2 && f.top > 0 &&
              f.bottom < height - 1);
        /* Axis ranges cover the data. */
        CHECK(f.x_min < 1.0 && f.x_min > 0.5 && f.x_max > N && f.x_max < N + 0.5);
        for (int k = 0; k < panels[p].num_series; k++) {
            const gn_plot_series *sr = &panels[p].series[k];
            int hits = 0, finite = 0;
            for (int i = 0; i < N; i++) {
                if (!isfinite(sr->y[i])) continue;
                finite++;
                CHECK(sr->y[i] >= f.y_min && sr->y[i] <= f.y_max);
                int x = map(1.0 + i, f.x_min, f.x_max, f.left, f.right);
                int y = map(sr->y[i], f.y_min, f.y_max, f.bottom, f.top);
                hits += pixel(&im, x, y) == sr->rgb;
            }
            CHECK_MSG(hits == finite, "panel %d series %d: %d of %d points found", p, k, hits,
                      finite);
            /* The legend swatch sits in the header row above the plot area. */
            CHECK(count_color(&im, f.left, 0, f.right, f.top - 1, sr->rgb) > 0);
        }
        /* Tick labels: dark text left of the plot area and below it. */
        CHECK(count_color(&im, p * width / 2, f.top, f.left - 6, f.bottom, 0x202020u) > 20);
        CHECK(count_color(&im, f.left, f.bottom + 4, f.right, height - 1, 0x202020u) > 20);
        /* The frame is black. */
        CHECK(pixel(&im, f.left, (f.top + f.bottom) / 2) == 0);
        CHECK(pixel(&im, (f.left + f.right) / 2, f.bottom) == 0);
    }
    /* The gap: the falling curve draws nothing half way between points 4 and 6 (x = 5, 6). */
    gn_plot_frame f;
    gn_plot_frame_of(panels, 2, 0, width, height, &f, &err);
    int xa = map(5.0, f.x_min, f.x_max, f.left, f.right);
    int xb = map(6.0, f.x_min, f.x_max, f.left, f.right);
    int xa7 = map(7.0, f.x_min, f.x_max, f.left, f.right);
    CHECK(count_color(&im, xa + 4, f.top, xb - 4, f.bottom, 0x0000e0u) == 0);
    CHECK(count_color(&im, xb + 4, f.top, xa7 - 4, f.bottom, 0x0000e0u) == 0);
    CHECK(count_color(&im, xa + 4, f.top, xb - 4, f.bottom, 0x00a000u) > 0);
    gn_image_free(&im);
}

/* A legend too wide to sit beside the title goes on rows below it: every swatch is drawn
 * between the title and the plot area, none on the title's row, and the plot area starts lower
 * than with a legend that fits. */
static void test_wrapped_legend(void) {
    enum { N = 3 };
    const double x[N] = {3.0, 12.0, 20.0}, y[N] = {84.0, 85.5, 86.0};
    static const uint32_t colors[4] = {0x1f77b4u, 0xd62728u, 0x2ca02cu, 0x9467bdu};
    gn_plot_series wide[4] = {{"GHOSTNET", x, y, N, colors[0]},
                              {"MOBILENETV3-L", x, y, N, colors[1]},
                              {"MOBILENETV3-S", x, y, N, colors[2]},
                              {"MOBILENETV2", x, y, N, colors[3]}};
    gn_plot_panel panels[2] = {{"ACCURACY VS MACS", wide, 4, 1, 0, "MILLION MACS"},
                               {"ACCURACY VS MACS", wide, 1, 1, 0, "MILLION MACS"}};
    const char *path = WORK "/legend.png";
    gn_error err = {0};
    CHECK_MSG(gn_plot_write_png(path, panels, 2, 1000, 420, &err) == GN_OK, "%s", err.message);
    gn_plot_frame wrapped, single;
    CHECK(gn_plot_frame_of(panels, 2, 0, 1000, 420, &wrapped, &err) == GN_OK);
    CHECK(gn_plot_frame_of(panels, 2, 1, 1000, 420, &single, &err) == GN_OK);
    CHECK(wrapped.top > single.top);
    gn_image im;
    if (gn_image_load(path, &im, &err) != GN_OK) {
        CHECK_MSG(0, "%s", err.message);
        return;
    }
    int title_bottom = -1; /* the title is the only black drawn above the frame */
    for (int yy = 0; yy < wrapped.top - 2; yy++)
        if (count_color(&im, wrapped.left, yy, wrapped.right, yy, 0x000000u) > 0) title_bottom = yy;
    CHECK(title_bottom > 0);
    for (int k = 0; k < 4; k++) {
        int first = -1;
        for (int yy = 0; yy < wrapped.top && first < 0; yy++)
            if (count_color(&im, wrapped.left, yy, wrapped.right, yy, colors[k]) > 0) first = yy;
        CHECK_MSG(first > title_bottom, "swatch %d at row %d, title ends at row %d", k, first,
                  title_bottom);
    }
    gn_image_free(&im);
}

static char *slurp(const char *path) {
    uint8_t *data;
    size_t size;
    if (gn_read_file(path, 1 << 20, &data, &size, NULL) != GN_OK) return NULL;
    char *s = realloc(data, size + 1);
    if (!s) {
        free(data);
        return NULL;
    }
    s[size] = '\0';
    return s;
}

static void test_logs(void) {
    gn_epoch_record rows[3] = {
        {1, 0.1, 2.5, 40.0, 2.0, 45.5, 1000.0, 12.5, NAN, NAN},
        {2, 0.05, 1.5, 60.0, NAN, NAN, 1100.0, 12.0, NAN, NAN},
        {3, 0.025, 1.0, 70.0, 1.2, 68.25, 1200.0, 11.5, NAN, NAN},
    };
    gn_error err = {0};
    CHECK(gn_epoch_log_write_csv(WORK "/log.csv", rows, 3, &err) == GN_OK);
    char *csv = slurp(WORK "/log.csv");
    CHECK(csv != NULL);
    if (csv) {
        const char *head = "epoch,lr,train_loss,train_acc,test_loss,test_acc,images_per_s,seconds\n";
        CHECK(strncmp(csv, head, strlen(head)) == 0);
        CHECK(strstr(csv, "\n1,0.1,2.5,40,2,45.5,1000,12.5\n") != NULL);
        CHECK(strstr(csv, "\n2,0.05,1.5,60,,,1100,12\n") != NULL);
        CHECK(strstr(csv, "ema") == NULL); /* no weight average, no columns for it */
        free(csv);
    }
    CHECK(gn_epoch_log_write_json(WORK "/log.json", rows, 3, &err) == GN_OK);
    char *json = slurp(WORK "/log.json");
    CHECK(json != NULL);
    if (json) {
        CHECK(json[0] == '[');
        CHECK(strstr(json, "{\"epoch\": 2, \"lr\": 0.05, \"train_loss\": 1.5, \"train_acc\": 60, "
                           "\"test_loss\": null, \"test_acc\": null") != NULL);
        free(json);
    }
    CHECK(gn_plot_training(WORK "/training.png", rows, 3, 800, 300, &err) == GN_OK);
    gn_image im;
    CHECK(gn_image_load(WORK "/training.png", &im, &err) == GN_OK && im.width == 800);
    CHECK(count_color(&im, 0, 0, 799, 299, GN_PLOT_COLOR_EMA) == 0);
    gn_image_free(&im);
    /* With a weight average from epoch 2 on: two more columns and keys, empty before. */
    rows[1].ema_test_loss = 1.25;
    rows[1].ema_test_acc = 66.5;
    rows[2].ema_test_loss = 1.0;
    rows[2].ema_test_acc = 71.0;
    CHECK(gn_epoch_log_write_csv(WORK "/log_ema.csv", rows, 3, &err) == GN_OK);
    csv = slurp(WORK "/log_ema.csv");
    CHECK(csv != NULL);
    if (csv) {
        CHECK(strncmp(csv, "epoch,lr,train_loss,train_acc,test_loss,test_acc,images_per_s,"
                           "seconds,ema_test_loss,ema_test_acc\n", 90) == 0);
        CHECK(strstr(csv, "\n1,0.1,2.5,40,2,45.5,1000,12.5,,\n") != NULL);
        CHECK(strstr(csv, "\n3,0.025,1,70,1.2,68.25,1200,11.5,1,71\n") != NULL);
        free(csv);
    }
    CHECK(gn_epoch_log_write_json(WORK "/log_ema.json", rows, 3, &err) == GN_OK);
    json = slurp(WORK "/log_ema.json");
    CHECK(json != NULL);
    if (json) {
        CHECK(strstr(json, "\"seconds\": 12.5, \"ema_test_loss\": null, \"ema_test_acc\": null}") != NULL);
        CHECK(strstr(json, "\"ema_test_loss\": 1.25, \"ema_test_acc\": 66.5}") != NULL);
        free(json);
    }
    CHECK(gn_plot_training(WORK "/training_ema.png", rows, 3, 800, 300, &err) == GN_OK);
    CHECK(gn_image_load(WORK "/training_ema.png", &im, &err) == GN_OK && im.width == 800);
    CHECK(count_color(&im, 0, 0, 799, 299, GN_PLOT_COLOR_EMA) > 20); /* curve and swatch */
    gn_image_free(&im);
    /* A single epoch still plots; zero epochs give empty axes. */
    CHECK(gn_plot_training(WORK "/one.png", rows, 1, 640, 480, &err) == GN_OK);
    CHECK(gn_plot_training(WORK "/none.png", rows, 0, 640, 480, &err) == GN_OK);
}

static void test_errors(void) {
    gn_error err = {0};
    double y[2] = {1, 2};
    gn_plot_series s = {"a", NULL, y, 2, 0xff0000u};
    gn_plot_panel p = {"t", &s, 1, 0, 1.0, NULL};
    remove(WORK "/small.png");
    CHECK(gn_plot_write_png(WORK "/small.png", &p, 1, 50, 50, &err) == GN_ERR_INVALID_ARG);
    FILE *f = fopen(WORK "/small.png", "rb");
    CHECK(f == NULL);
    if (f) fclose(f);
    /* A directory that does not exist: IO error naming the path, no file left behind. */
    CHECK(gn_plot_write_png(WORK "/no/such/dir.png", &p, 1, 400, 300, &err) == GN_ERR_IO);
    CHECK(strstr(err.message, WORK "/no/such/dir.png") != NULL);
    double wide[2] = {-1e308, 1e308};
    s.y = wide;
    CHECK(gn_plot_write_png(WORK "/wide.png", &p, 1, 400, 300, &err) == GN_ERR_INVALID_ARG);
    /* Overwriting an existing chart works (rename over it). */
    s.y = y;
    CHECK(gn_plot_write_png(WORK "/again.png", &p, 1, 400, 300, &err) == GN_OK);
    CHECK(gn_plot_write_png(WORK "/again.png", &p, 1, 400, 300, &err) == GN_OK);
    uint8_t px[4] = {0, 1, 2, 3};
    CHECK(gn_png_write(WORK "/gray.png", 2, 2, 1, px, &err) == GN_OK);
    gn_image im;
    CHECK(gn_image_load(WORK "/gray.png", &im, &err) == GN_OK && im.channels == 1 &&
          memcmp(im.pixels, px, 4) == 0);
    gn_image_free(&im);
    CHECK(gn_png_write(WORK "/bad.png", 2, 2, 2, px, &err) == GN_ERR_INVALID_ARG);
}

int main(void) {
    mkdir(WORK, 0755);
    test_chart(1000, 400); /* scale 2 text */
    test_chart(640, 240);  /* scale 1 text */
    test_wrapped_legend();
    test_logs();
    test_errors();
    TEST_MAIN_END();
}
