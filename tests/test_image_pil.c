/* Parity with PIL + torchvision: decodes the images written by reference/preprocess_ref.py,
 * preprocesses them and compares with the reference crops (uint8) and network inputs (float32).
 * Passing needs every value within one grey level (|diff| <= 1 / 255 / std); it reports the
 * largest difference and how many values differ at all (expected: none).
 *
 * Fixture folder: argv[1], else $GN_IMAGE_FIXTURES, else $GN_BUILD_DIR/fixtures/images.
 * No folder (no PIL on this machine): exit 77 (skipped), or failure with GN_REQUIRE_REFERENCE=1. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "ghostnet.h"
#include "io/image_internal.h"
#include "test_util.h"

typedef struct entry {
    char image[256], config[64];
    int channels, resize, crop;
    double mean[3], std[3];
} entry;

/* Reads dir/name whole and checks it holds exactly `size` bytes. */
static void *read_exact(const char *dir, const char *name, const char *suffix, size_t size) {
    char path[1536];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, suffix);
    uint8_t *data;
    size_t got;
    gn_error err = {0};
    if (gn_read_file(path, (size_t)1 << 30, &data, &got, &err) != GN_OK) {
        fprintf(stderr, "%s\n", err.message);
        return NULL;
    }
    if (got != size) {
        fprintf(stderr, "%s: %zu bytes, expected %zu\n", path, got, size);
        free(data);
        return NULL;
    }
    return data;
}

static float read_f32_le(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void compare_entry(const char *dir, const entry *e) {
    char path[1536];
    snprintf(path, sizeof path, "%s/%s", dir, e->image);
    gn_image im;
    gn_error err = {0};
    gn_status st = gn_image_load(path, &im, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st != GN_OK) return;

    gn_preprocess pre = {e->crop, e->resize, {0}, {0}};
    for (int c = 0; c < 3; c++) {
        pre.mean[c] = (float)e->mean[c]; /* torch turns the Python floats into float32 */
        pre.std[c] = (float)e->std[c];
    }
    size_t plane = (size_t)e->crop * (size_t)e->crop, n = plane * (size_t)e->channels;
    char suffix[96];
    snprintf(suffix, sizeof suffix, ".%s.u8", e->config);
    uint8_t *want_u8 = read_exact(dir, e->image, suffix, n);
    snprintf(suffix, sizeof suffix, ".%s.f32", e->config);
    uint8_t *want_f32 = read_exact(dir, e->image, suffix, n * 4);
    uint8_t *got_u8 = malloc(n);
    float *got_f32 = malloc(n * sizeof *got_f32);
    CHECK(want_u8 && want_f32 && got_u8 && got_f32);
    if (!want_u8 || !want_f32 || !got_u8 || !got_f32) goto done;

    CHECK_MSG(gn_image_crop_u8(&im, &pre, e->channels, got_u8, &err) == GN_OK, "%s", err.message);
    CHECK_MSG(gn_image_preprocess(&im, &pre, e->channels, got_f32, &err) == GN_OK, "%s", err.message);
    int max_u8 = 0;
    size_t diff_u8 = 0, diff_f32 = 0, over = 0;
    double max_f32 = 0.0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)got_u8[i] - (int)want_u8[i]);
        if (d) diff_u8++;
        if (d > max_u8) max_u8 = d;
    }
    for (int c = 0; c < e->channels; c++) {
        double tol = 1.0 / 255.0 / pre.std[c] + 1e-6; /* one grey level */
        for (size_t i = 0; i < plane; i++) {
            size_t k = (size_t)c * plane + i;
            double d = fabs((double)got_f32[k] - (double)read_f32_le(want_f32 + 4 * k));
            if (d != 0.0) diff_f32++;
            if (d > max_f32) max_f32 = d;
            if (!(d <= tol)) over++;
        }
    }
    printf("%-28s %-8s %dx%dx%d  u8 max diff %d (%zu of %zu differ)  f32 max diff %.3g (%zu differ)\n",
           e->image, e->config, im.width, im.height, im.channels, max_u8, diff_u8, n, max_f32,
           diff_f32);
    CHECK_MSG(max_u8 <= 1, "%s %s: uint8 crop differs by %d", e->image, e->config, max_u8);
    CHECK_MSG(over == 0, "%s %s: %zu values beyond one grey level", e->image, e->config, over);
done:
    free(want_u8);
    free(want_f32);
    free(got_u8);
    free(got_f32);
    gn_image_free(&im);
}

static int parse_line(const char *line, entry *e) {
    return sscanf(line, "%255s %63s %d %d %d %lf %lf %lf %lf %lf %lf", e->image, e->config,
                  &e->channels, &e->resize, &e->crop, &e->mean[0], &e->mean[1], &e->mean[2],
                  &e->std[0], &e->std[1], &e->std[2]) == 11 &&
           (e->channels == 1 || e->channels == 3) && e->crop > 0 && e->crop <= 4096;
}

int main(int argc, char **argv) {
    char dir[1024];
    const char *env = getenv("GN_IMAGE_FIXTURES"), *build = getenv("GN_BUILD_DIR");
    if (argc > 1) snprintf(dir, sizeof dir, "%s", argv[1]);
    else if (env) snprintf(dir, sizeof dir, "%s", env);
    else if (build) snprintf(dir, sizeof dir, "%s/fixtures/images", build);
    else snprintf(dir, sizeof dir, "fixtures/images");
    int required = getenv("GN_REQUIRE_REFERENCE") && strcmp(getenv("GN_REQUIRE_REFERENCE"), "1") == 0;

    char path[1536];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: no reference fixtures (run tests/reference/preprocess_ref.py)%s\n",
                path, required ? "" : "; skipping");
        return required ? 1 : TEST_SKIP_CODE;
    }
    char line[1024];
    int entries = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') {
            if (line[0] == '#') printf("reference: %s", line + 2);
            continue;
        }
        entry e;
        int ok = parse_line(line, &e);
        CHECK_MSG(ok, "bad manifest line: %s", line);
        if (!ok) continue;
        compare_entry(dir, &e);
        entries++;
    }
    fclose(f);
    CHECK_MSG(entries > 0, "%s lists no images", path);
    TEST_MAIN_END();
}
