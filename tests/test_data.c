/* Training data: IDX parsing (valid and hostile files), Fashion-MNIST when installed, image
 * folders, shuffling, augmentation properties and the batch loader. */
#define _XOPEN_SOURCE 700 /* mkdir, clock_gettime, nftw */

#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <zlib.h>

#include "core/common.h"
#include "data/dataset.h"
#include "io/plot.h"
#include "test_util.h"

#define WORK "data_work"

/* ---- building IDX files -------------------------------------------------------------------- */

typedef struct bytes {
    uint8_t *p;
    size_t n;
} bytes;

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Header for `ndim` dims of type `type`, then `payload` bytes (value i & 0xff, or `fill`). */
static bytes make_idx(uint8_t type, int ndim, const uint32_t *dims, size_t payload) {
    bytes b;
    b.n = 4 + 4 * (size_t)ndim + payload;
    b.p = malloc(b.n);
    b.p[0] = b.p[1] = 0;
    b.p[2] = type;
    b.p[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++) put_be32(b.p + 4 + 4 * i, dims[i]);
    for (size_t i = 0; i < payload; i++) b.p[4 + 4 * ndim + i] = (uint8_t)(i * 7 + 3);
    return b;
}

static void write_raw(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static void write_gz(const char *path, const uint8_t *p, size_t n) {
    gzFile g = gzopen(path, "wb");
    if (!g) {
        perror(path);
        exit(1);
    }
    if (n) gzwrite(g, p, (unsigned)n);
    gzclose(g);
}

/* gzip in memory (windowBits 31 writes a gzip wrapper). */
static bytes gzip_bytes(const uint8_t *p, size_t n) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    bytes out;
    out.p = malloc(deflateBound(&zs, (uLong)n) + 64);
    zs.next_in = (Bytef *)p;
    zs.avail_in = (uInt)n;
    zs.next_out = out.p;
    zs.avail_out = (uInt)(deflateBound(&zs, (uLong)n) + 64);
    deflate(&zs, Z_FINISH);
    out.n = zs.total_out;
    deflateEnd(&zs);
    return out;
}

static void expect_fail(const char *path, int ndim, gn_status code, const char *needle) {
    gn_idx idx;
    gn_error err = {0};
    gn_status st = gn_idx_read(path, ndim, &idx, &err);
    CHECK_MSG(st == code, "%s: status %d, expected %d (%s)", path, st, code, err.message);
    CHECK_MSG(strstr(err.message, path) != NULL, "message does not name the file: %s",
              err.message);
    CHECK_MSG(strstr(err.message, needle) != NULL, "'%s' not in: %s", needle, err.message);
    CHECK(idx.data == NULL && idx.size == 0);
}

static void expect_fail_bytes(const char *name, bytes b, int ndim, gn_status code,
                              const char *needle) {
    char path[256];
    snprintf(path, sizeof path, WORK "/%s", name);
    write_raw(path, b.p, b.n);
    expect_fail(path, ndim, code, needle);
    snprintf(path, sizeof path, WORK "/%s.gz", name);
    write_gz(path, b.p, b.n);
    expect_fail(path, ndim, code, needle);
    /* The in-memory parser agrees on the raw bytes. */
    gn_idx idx;
    gn_error err = {0};
    CHECK(gn_idx_parse_memory(b.p, b.n, name, ndim, &idx, &err) == code);
    CHECK_MSG(strstr(err.message, needle) != NULL, "memory: '%s' not in: %s", needle, err.message);
    free(b.p);
}

/* ---- IDX: valid files ---------------------------------------------------------------------- */

static void test_idx_valid(void) {
    uint32_t dims[3] = {2, 3, 4};
    bytes b = make_idx(0x08, 3, dims, 24);
    write_raw(WORK "/img.idx", b.p, b.n);
    write_gz(WORK "/img.idx.gz", b.p, b.n);
    const char *paths[2] = {WORK "/img.idx", WORK "/img.idx.gz"};
    for (int k = 0; k < 2; k++) {
        gn_idx idx;
        gn_error err = {0};
        gn_status st = gn_idx_read(paths[k], 3, &idx, &err);
        CHECK_MSG(st == GN_OK, "%s: %s", paths[k], err.message);
        CHECK(idx.ndim == 3 && idx.dims[0] == 2 && idx.dims[1] == 3 && idx.dims[2] == 4);
        CHECK(idx.size == 24 && memcmp(idx.data, b.p + 16, 24) == 0);
        gn_idx_free(&idx);
        CHECK(gn_idx_read(paths[k], 0, &idx, &err) == GN_OK && idx.ndim == 3); /* any rank */
        gn_idx_free(&idx);
    }
    /* Memory parse: raw, gzip, two concatenated gzip members, gzip + trailing garbage. */
    gn_idx idx;
    gn_error err = {0};
    CHECK(gn_idx_parse_memory(b.p, b.n, "mem", 3, &idx, &err) == GN_OK && idx.size == 24);
    gn_idx_free(&idx);
    bytes gz = gzip_bytes(b.p, b.n);
    CHECK(gn_idx_parse_memory(gz.p, gz.n, "gz", 3, &idx, &err) == GN_OK &&
          memcmp(idx.data, b.p + 16, 24) == 0);
    gn_idx_free(&idx);
    bytes head = gzip_bytes(b.p, 10), tail = gzip_bytes(b.p + 10, b.n - 10);
    uint8_t *two = malloc(head.n + tail.n + 3);
    memcpy(two, head.p, head.n);
    memcpy(two + head.n, tail.p, tail.n);
    CHECK_MSG(gn_idx_parse_memory(two, head.n + tail.n, "two", 3, &idx, &err) == GN_OK,
              "%s", err.message);
    CHECK(idx.size == 24 && memcmp(idx.data, b.p + 16, 24) == 0);
    gn_idx_free(&idx);
    memcpy(two + head.n + tail.n, "xyz", 3);
    CHECK(gn_idx_parse_memory(two, head.n + tail.n + 3, "junk", 3, &idx, &err) == GN_OK);
    gn_idx_free(&idx);
    /* Corrupt or cut gzip data is refused. */
    CHECK(gn_idx_parse_memory(gz.p, gz.n - 9, "cut", 3, &idx, &err) == GN_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "cut: truncated gzip") != NULL, "%s", err.message);
    gz.p[gz.n / 2] ^= 0x55;
    gz.p[gz.n / 2 + 1] ^= 0xaa;
    CHECK(gn_idx_parse_memory(gz.p, gz.n, "bad", 3, &idx, &err) != GN_OK);
    write_raw(WORK "/corrupt.gz", gz.p, gz.n);
    CHECK(gn_idx_read(WORK "/corrupt.gz", 3, &idx, &err) != GN_OK);
    CHECK_MSG(strstr(err.message, WORK "/corrupt.gz") != NULL, "%s", err.message);
    free(two);
    free(head.p);
    free(tail.p);
    free(gz.p);
    free(b.p);
}

static void test_idx_dataset(void) {
    uint32_t idims[3] = {5, 2, 3}, ldims[1] = {5};
    bytes im = make_idx(0x08, 3, idims, 30), lb = make_idx(0x08, 1, ldims, 5);
    const uint8_t labels[5] = {0, 3, 1, 3, 2};
    memcpy(lb.p + 8, labels, 5);
    write_gz(WORK "/ds-images.gz", im.p, im.n);
    write_raw(WORK "/ds-labels", lb.p, lb.n);
    gn_dataset ds;
    gn_error err = {0};
    gn_status st = gn_dataset_load_idx(WORK "/ds-images.gz", WORK "/ds-labels", 0, &ds, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    CHECK(ds.count == 5 && ds.channels == 1 && ds.height == 2 && ds.width == 3);
    CHECK(ds.num_classes == 4 && ds.labels[1] == 3 && ds.labels[4] == 2);
    CHECK(memcmp(ds.images, im.p + 16, 30) == 0);
    double s = 0, s2 = 0;
    for (int i = 0; i < 30; i++) {
        double v = im.p[16 + i] / 255.0;
        s += v;
        s2 += v * v;
    }
    double mean = s / 30, sd = sqrt(s2 / 30 - mean * mean);
    CHECK(ds.has_stats);
    CHECK_NEAR(ds.mean[0], mean, 1e-6);
    CHECK_NEAR(ds.std[0], sd, 1e-6);
    uint8_t sample[6];
    CHECK(gn_dataset_read(&ds, 4, sample, NULL, &err) == GN_OK &&
          memcmp(sample, im.p + 16 + 24, 6) == 0);
    CHECK(gn_dataset_read(&ds, 5, sample, NULL, &err) == GN_ERR_INVALID_ARG);
    gn_dataset_free(&ds);

    /* An explicit class count: 10 is fine, 3 is exceeded by label 1 (value 3). */
    CHECK(gn_dataset_load_idx(WORK "/ds-images.gz", WORK "/ds-labels", 10, &ds, &err) == GN_OK &&
          ds.num_classes == 10);
    gn_dataset_free(&ds);
    st = gn_dataset_load_idx(WORK "/ds-images.gz", WORK "/ds-labels", 3, &ds, &err);
    CHECK(st == GN_ERR_FORMAT && ds.images == NULL && ds.labels == NULL);
    CHECK_MSG(strstr(err.message, WORK "/ds-labels: label 1 is 3") != NULL, "%s", err.message);

    /* Count mismatch: 4 labels for 5 images. */
    ldims[0] = 4;
    bytes lb4 = make_idx(0x08, 1, ldims, 4);
    write_raw(WORK "/ds-labels4", lb4.p, lb4.n);
    st = gn_dataset_load_idx(WORK "/ds-images.gz", WORK "/ds-labels4", 0, &ds, &err);
    CHECK(st == GN_ERR_FORMAT);
    CHECK_MSG(strstr(err.message, "4 labels") && strstr(err.message, "5 images"), "%s",
              err.message);
    /* Labels and images swapped: the rank check names the file. */
    st = gn_dataset_load_idx(WORK "/ds-labels", WORK "/ds-images.gz", 0, &ds, &err);
    CHECK(st == GN_ERR_FORMAT && strstr(err.message, WORK "/ds-labels") != NULL);
    st = gn_dataset_load_idx(WORK "/nope-images", WORK "/ds-labels", 0, &ds, &err);
    CHECK(st == GN_ERR_IO && strstr(err.message, "nope-images: cannot open") != NULL);
    free(im.p);
    free(lb.p);
    free(lb4.p);
}

/* ---- IDX: hostile files -------------------------------------------------------------------- */

static void test_idx_malformed(void) {
    uint32_t dims[3] = {2, 3, 4};
    bytes b = make_idx(0x08, 3, dims, 24);
    b.p[0] = 0x01; /* bad magic */
    expect_fail_bytes("badmagic", b, 3, GN_ERR_FORMAT, "bad magic 0x01000803");
    b = make_idx(0x08, 3, dims, 24);
    b.p[3] = 9; /* rank 9 */
    expect_fail_bytes("badrank", b, 3, GN_ERR_FORMAT, "bad magic");
    b = make_idx(0x0D, 3, dims, 96); /* float32 elements */
    expect_fail_bytes("float", b, 3, GN_ERR_UNSUPPORTED, "element type 0x0d");
    b = make_idx(0x08, 3, dims, 24); /* images read as labels */
    expect_fail_bytes("rank", b, 1, GN_ERR_FORMAT, "has 3 dimensions, expected 1");
    b = make_idx(0x08, 3, dims, 23);
    expect_fail_bytes("short", b, 3, GN_ERR_FORMAT, "truncated: the header declares 24 data bytes, the file holds 23");
    b = make_idx(0x08, 3, dims, 25);
    expect_fail_bytes("long", b, 3, GN_ERR_FORMAT, "trailing data");
    b = make_idx(0x08, 3, dims, 0);
    b.n = 9; /* cut inside the dimensions */
    expect_fail_bytes("cuthead", b, 3, GN_ERR_FORMAT, "truncated IDX header");
    b = make_idx(0x08, 3, dims, 0);
    b.n = 2;
    expect_fail_bytes("tiny", b, 3, GN_ERR_FORMAT, "2 bytes is too short");
    b = make_idx(0x08, 3, dims, 0);
    b.n = 0;
    expect_fail_bytes("empty", b, 3, GN_ERR_FORMAT, "0 bytes is too short");
    uint32_t huge_side[3] = {2, 5000, 4};
    b = make_idx(0x08, 3, huge_side, 0);
    expect_fail_bytes("side", b, 3, GN_ERR_FORMAT, "dimension 1 is 5000; it must be 1..4096");
    uint32_t huge_count[3] = {0xffffffffu, 28, 28};
    b = make_idx(0x08, 3, huge_count, 0);
    expect_fail_bytes("count", b, 3, GN_ERR_FORMAT, "dimension 0 is 4294967295");
    uint32_t zero[3] = {2, 0, 4};
    b = make_idx(0x08, 3, zero, 0);
    expect_fail_bytes("zero", b, 3, GN_ERR_FORMAT, "dimension 1 is 0");
    /* The largest legal header (1.6e14 bytes) on a tiny file: refused as truncated without
     * trying to allocate the declared size. */
    uint32_t biggest[3] = {GN_IDX_MAX_COUNT, GN_IDX_MAX_SIDE, GN_IDX_MAX_SIDE};
    b = make_idx(0x08, 3, biggest, 100);
    expect_fail_bytes("biggest", b, 3, GN_ERR_FORMAT, "the file holds 100");
    expect_fail(WORK "/does-not-exist.gz", 1, GN_ERR_IO, "cannot open");
}

/* ---- Fashion-MNIST ------------------------------------------------------------------------- */

#define FMNIST "/usr/share/datasets/fashion-mnist/"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_fashion_mnist(void) {
    FILE *f = fopen(FMNIST "t10k-images-idx3-ubyte.gz", "rb");
    if (!f) {
        printf("Fashion-MNIST not installed: skipping that part\n");
        return;
    }
    fclose(f);
    gn_dataset ds;
    gn_error err = {0};
    gn_status st = gn_dataset_load_idx(FMNIST "t10k-images-idx3-ubyte.gz",
                                       FMNIST "t10k-labels-idx1-ubyte.gz", 10, &ds, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st != GN_OK) return;
    CHECK(ds.count == 10000 && ds.channels == 1 && ds.height == 28 && ds.width == 28);
    CHECK(ds.num_classes == 10);
    int per_class[10] = {0};
    for (int i = 0; i < ds.count; i++) per_class[ds.labels[i]]++;
    for (int c = 0; c < 10; c++) CHECK(per_class[c] == 1000);
    /* Known statistics of Fashion-MNIST (test split): mean 0.2868, std 0.3524. */
    CHECK_NEAR(ds.mean[0], 0.2868, 2e-3);
    CHECK_NEAR(ds.std[0], 0.3524, 2e-3);
    gn_dataset_free(&ds);

    double t0 = now_s();
    st = gn_dataset_load_idx(FMNIST "train-images-idx3-ubyte.gz",
                             FMNIST "train-labels-idx1-ubyte.gz", 0, &ds, &err);
    double t1 = now_s();
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st == GN_OK) {
        CHECK(ds.count == 60000 && ds.num_classes == 10);
        printf("Fashion-MNIST train: %d images loaded in %.3f s (mean %.4f, std %.4f)\n",
               ds.count, t1 - t0, ds.mean[0], ds.std[0]);
    }
    gn_dataset_free(&ds);
}

/* ---- shuffling and augmentation ------------------------------------------------------------ */

static int is_permutation(const int *order, int n) {
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        ok = order[i] >= 0 && order[i] < n && !seen[order[i]];
        if (ok) seen[order[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_shuffle(void) {
    enum { N = 1000 };
    static int a[N], b[N], c[N], d[N];
    gn_shuffle_order(a, N, 42, 3);
    gn_shuffle_order(b, N, 42, 3);
    gn_shuffle_order(c, N, 42, 4);
    gn_shuffle_order(d, N, 43, 3);
    CHECK(is_permutation(a, N) && is_permutation(c, N) && is_permutation(d, N));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(memcmp(a, d, sizeof a) != 0);
    int fixed = 0;
    for (int i = 0; i < N; i++) fixed += a[i] == i;
    CHECK(fixed < 20); /* a real shuffle: about one fixed point expected */
    gn_shuffle_order(a, 1, 1, 1);
    CHECK(a[0] == 0);
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)((i * 37 + seed * 101 + (i >> 3)) & 0xff);
}

static void test_crop_flip(void) {
    enum { C = 2, H = 7, W = 9 };
    uint8_t src[C * H * W], dst[C * H * W], back[C * H * W];
    fill_pattern(src, sizeof src, 1);
    gn_crop_u8(src, C, H, W, 0, 0, dst, H, W);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    memcpy(dst, src, sizeof src);
    gn_hflip_u8(dst, C, H, W);
    CHECK(dst[0] == src[W - 1] && dst[W * H + 2] == src[W * H + W - 3]);
    gn_hflip_u8(dst, C, H, W);
    CHECK(memcmp(src, dst, sizeof src) == 0);
    /* A shifted crop: zeros where it leaves the image. */
    gn_crop_u8(src, C, H, W, -2, 3, back, H, W);
    int ok = 1;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y - 2, sx = x + 3;
                uint8_t want = (sy >= 0 && sy < H && sx < W) ? src[(c * H + sy) * W + sx] : 0;
                ok &= back[(c * H + y) * W + x] == want;
            }
    CHECK(ok);

    /* The sample path: padding 0 and no flip is the identity (after normalisation). */
    gn_augment_ws *ws;
    gn_error err = {0};
    CHECK(gn_augment_ws_create(C, H, W, H, W, &ws, &err) == GN_OK);
    gn_augment aug = gn_augment_none();
    float mean[3] = {0, 0, 0}, sd[3] = {1, 1, 1}, out[C * H * W];
    gn_rng rng;
    gn_rng_for_sample(&rng, 1, 2, 3);
    gn_augment_sample(ws, &aug, &rng, src, mean, sd, out);
    ok = 1;
    for (int i = 0; i < C * H * W; i++) ok &= out[i] == (float)src[i] / 255.0f;
    CHECK(ok);
    /* Pad 2: every output is the source shifted by (dy, dx) in [-2, 2], zero filled. */
    aug.crop_padding = 2;
    aug.hflip_prob = 0.0f;
    int shifts_seen = 0;
    for (int t = 0; t < 50; t++) {
        gn_rng_for_sample(&rng, 7, 0, (uint64_t)t);
        gn_augment_sample(ws, &aug, &rng, src, mean, sd, out);
        int found = 0;
        for (int dy = -2; dy <= 2 && !found; dy++)
            for (int dx = -2; dx <= 2 && !found; dx++) {
                gn_crop_u8(src, C, H, W, dy, dx, back, H, W);
                int same = 1;
                for (int i = 0; i < C * H * W && same; i++) same = out[i] == (float)back[i] / 255.0f;
                if (same) {
                    found = 1;
                    shifts_seen |= 1 << ((dy + 2) * 5 + dx + 2);
                }
            }
        CHECK(found);
    }
    CHECK(__builtin_popcount((unsigned)shifts_seen) > 10); /* many of the 25 offsets occur */
    gn_augment_ws_free(ws);
}

static void test_erase(void) {
    const float area[2] = {0.02f, 1.0f / 3.0f};
    const float lr[2] = {logf(0.3f), logf(1.0f / 0.3f)};
    int ok = 1, fitted = 0;
    for (int t = 0; t < 2000; t++) {
        gn_rng rng;
        gn_rng_for_sample(&rng, 5, 0, (uint64_t)t);
        gn_box b;
        if (!gn_erase_box(&rng, 28, 28, area, lr, &b)) continue;
        fitted++;
        ok &= b.top >= 0 && b.left >= 0 && b.top + b.height <= 28 && b.left + b.width <= 28;
        ok &= b.height < 28 && b.width < 28;
        /* Area within the range up to rounding each side: (sqrt(Tr) +- 0.5)(sqrt(T/r) +- 0.5)
         * with sqrt(r) + 1/sqrt(r) <= 2.375 for r in [0.3, 3.34]. */
        double a = (double)b.height * b.width, A = 28.0 * 28.0;
        double t_hi = A / 3, t_lo = 0.02 * A;
        ok &= a <= t_hi + 0.5 * 2.375 * sqrt(t_hi) + 0.25;
        ok &= a >= t_lo - 0.5 * 2.375 * sqrt(t_lo) + 0.25;
    }
    CHECK(ok);
    CHECK(fitted > 1900);

    /* In a sample: p = 1, zero fill on a constant image -> one zero rectangle. */
    enum { S = 16 };
    uint8_t src[S * S];
    memset(src, 255, sizeof src);
    gn_augment_ws *ws;
    gn_error err = {0};
    CHECK(gn_augment_ws_create(1, S, S, S, S, &ws, &err) == GN_OK);
    gn_augment aug = gn_augment_none();
    aug.erase_prob = 1.0f;
    aug.erase_fill = GN_ERASE_ZERO;
    float mean[1] = {0}, sd[1] = {1}, out[S * S];
    int erased_samples = 0;
    for (int t = 0; t < 100; t++) {
        gn_rng rng;
        gn_rng_for_sample(&rng, 9, 1, (uint64_t)t);
        gn_augment_sample(ws, &aug, &rng, src, mean, sd, out);
        int x0 = S, y0 = S, x1 = -1, y1 = -1, zeros = 0;
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                if (out[y * S + x] == 0.0f) {
                    zeros++;
                    if (x < x0) x0 = x;
                    if (y < y0) y0 = y;
                    if (x > x1) x1 = x;
                    if (y > y1) y1 = y;
                } else {
                    ok &= out[y * S + x] == 1.0f;
                }
        if (zeros) {
            erased_samples++;
            ok &= zeros == (x1 - x0 + 1) * (y1 - y0 + 1); /* a filled rectangle */
            ok &= zeros <= S * S / 3 + 2 * S;
        }
    }
    CHECK(ok);
    CHECK(erased_samples > 90);
    /* Noise fill: the erased pixels are not all equal. */
    aug.erase_fill = GN_ERASE_NOISE;
    gn_rng rng;
    gn_rng_for_sample(&rng, 9, 1, 0);
    gn_augment_sample(ws, &aug, &rng, src, mean, sd, out);
    int noisy = 0;
    for (int i = 0; i < S * S; i++) noisy += out[i] != 1.0f;
    CHECK(noisy > 0);
    gn_augment_ws_free(ws);
}

static void test_rrc(void) {
    const float scale[2] = {0.08f, 1.0f}, ratio[2] = {3.0f / 4.0f, 4.0f / 3.0f};
    int ok = 1;
    for (int t = 0; t < 1000; t++) {
        gn_rng rng;
        gn_rng_for_sample(&rng, 11, 0, (uint64_t)t);
        gn_box b = gn_rrc_box(&rng, 48, 64, scale, ratio);
        ok &= b.top >= 0 && b.left >= 0 && b.height >= 1 && b.width >= 1;
        ok &= b.top + b.height <= 48 && b.left + b.width <= 64;
        double a = (double)b.height * b.width / (48.0 * 64.0), r = (double)b.width / b.height;
        ok &= a > 0.06 && a <= 1.0 && r > 0.6 && r < 1.6;
    }
    CHECK(ok);
    /* No try can fit a ratio of 10..20 in a square: the centre crop with ratio 10. */
    const float wide[2] = {10.0f, 20.0f};
    gn_rng rng;
    gn_rng_seed(&rng, 1);
    const float big[2] = {0.5f, 1.0f};
    gn_box b = gn_rrc_box(&rng, 40, 40, big, wide);
    CHECK(b.width == 40 && b.height == 4 && b.top == 18 && b.left == 0);

    /* Output size, constant images stay constant, the full box at the same size is exact. */
    enum { C = 3, H = 20, W = 30, O = 12 };
    static uint8_t src[C * H * W], same[C * H * W];
    fill_pattern(src, sizeof src, 3);
    static float scratch[1 << 16];
    CHECK(gn_resize_scratch_floats(H, W, H, W) <= sizeof scratch / sizeof scratch[0]);
    gn_box full = {0, 0, H, W};
    gn_resize_box_u8(src, C, H, W, full, same, H, W, scratch);
    CHECK(memcmp(src, same, sizeof src) == 0);
    uint8_t flat[C * H * W], small[C * O * O];
    memset(flat, 77, sizeof flat);
    gn_box part = {3, 5, 11, 17};
    gn_resize_box_u8(flat, C, H, W, part, small, O, O, scratch);
    ok = 1;
    for (int i = 0; i < C * O * O; i++) ok &= small[i] == 77;
    CHECK(ok);

    gn_augment_ws *ws;
    gn_error err = {0};
    CHECK(gn_augment_ws_create(C, H, W, O, O, &ws, &err) == GN_OK);
    gn_augment aug = gn_augment_imagenet_default();
    aug.erase_prob = 0.0f;
    float mean[3] = {0.5f, 0.5f, 0.5f}, sd[3] = {0.25f, 0.25f, 0.25f};
    static float out[C * O * O + 1];
    out[C * O * O] = 12345.0f; /* guard */
    gn_rng_for_sample(&rng, 1, 1, 1);
    gn_augment_sample(ws, &aug, &rng, flat, mean, sd, out);
    ok = 1;
    float want = (77.0f / 255.0f - 0.5f) / 0.25f;
    for (int i = 0; i < C * O * O; i++) ok &= fabsf(out[i] - want) < 1e-6f;
    CHECK(ok && out[C * O * O] == 12345.0f);
    gn_augment_ws_free(ws);

    /* Validation. */
    aug.scale[0] = 0.0f;
    CHECK(gn_augment_validate(&aug, &err) == GN_ERR_INVALID_ARG);
    aug = gn_augment_small_default();
    aug.hflip_prob = NAN;
    CHECK(gn_augment_validate(&aug, &err) == GN_ERR_INVALID_ARG);
    aug = gn_augment_imagenet_default();
    CHECK(gn_augment_validate(&aug, &err) == GN_OK);
}

/* ---- loader -------------------------------------------------------------------------------- */

/* N samples of 1 x 4 x 4; pixels 0 and 1 encode the index, label = index % 7. */
static void synthetic(gn_dataset *ds, int n) {
    memset(ds, 0, sizeof *ds);
    ds->count = n;
    ds->channels = 1;
    ds->height = ds->width = 4;
    ds->num_classes = 7;
    ds->images = calloc((size_t)n, 16);
    ds->labels = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        ds->images[i * 16] = (uint8_t)(i & 0xff);
        ds->images[i * 16 + 1] = (uint8_t)(i >> 8);
        for (int k = 2; k < 16; k++) ds->images[i * 16 + k] = (uint8_t)(k * 9);
        ds->labels[i] = i % 7;
    }
}

static int decode_index(const float *x) {
    return (int)lrintf(x[0] * 255.0f) | (int)lrintf(x[1] * 255.0f) << 8;
}

/* Runs one epoch; records the sample indices seen and the batch sizes. */
static int run_epoch(gn_loader *l, uint64_t epoch, int *seen, int *sizes, int *nb) {
    gn_error err = {0};
    if (gn_loader_start_epoch(l, epoch, &err) != GN_OK) return -1;
    int total = 0;
    *nb = 0;
    for (;;) {
        const float *x;
        const int *y;
        int count;
        if (gn_loader_next(l, &x, &y, &count, &err) != GN_OK) return -1;
        if (count == 0) break;
        sizes[(*nb)++] = count;
        for (int i = 0; i < count; i++) {
            int idx = decode_index(x + (size_t)i * 16);
            if (y[i] != idx % 7) return -1;
            seen[total++] = idx;
        }
    }
    return total;
}

static void test_loader(void) {
    enum { N = 103 };
    gn_dataset ds;
    synthetic(&ds, N);
    gn_loader_options o = gn_loader_options_default();
    o.batch = 10;
    o.shuffle = 1;
    o.seed = 1234;
    gn_loader *a, *b;
    gn_error err = {0};
    CHECK(gn_loader_create(&ds, &o, &a, &err) == GN_OK);
    o.background = 0;
    CHECK(gn_loader_create(&ds, &o, &b, &err) == GN_OK);
    CHECK(gn_loader_num_batches(a) == 11);

    const float *x;
    const int *y;
    int count;
    CHECK(gn_loader_next(a, &x, &y, &count, &err) == GN_ERR_INVALID_ARG); /* no epoch yet */

    static int s1[N], s2[N], s3[N], z1[16], z2[16];
    int n1, n2;
    CHECK(run_epoch(a, 0, s1, z1, &n1) == N && n1 == 11 && z1[10] == 3 && z1[0] == 10);
    CHECK(is_permutation(s1, N));
    for (int i = 0; i < N; i++) CHECK(s1[i] == gn_loader_order(a, (size_t)i));
    CHECK(run_epoch(b, 0, s2, z2, &n2) == N && memcmp(s1, s2, sizeof s1) == 0); /* no thread */
    CHECK(run_epoch(a, 1, s3, z1, &n1) == N && is_permutation(s3, N));
    CHECK(memcmp(s1, s3, sizeof s1) != 0);
    CHECK(run_epoch(a, 0, s3, z1, &n1) == N && memcmp(s1, s3, sizeof s1) == 0); /* again */
    gn_loader_free(a);
    gn_loader_free(b);

    /* No shuffle: dataset order; drop_last drops the 3 left over. */
    o.shuffle = 0;
    o.drop_last = 1;
    o.background = 1;
    CHECK(gn_loader_create(&ds, &o, &a, &err) == GN_OK);
    CHECK(run_epoch(a, 5, s1, z1, &n1) == 100 && n1 == 10);
    int ok = 1;
    for (int i = 0; i < 100; i++) ok &= s1[i] == i;
    CHECK(ok);
    gn_loader_free(a);
    o.batch = 200;
    CHECK(gn_loader_create(&ds, &o, &a, &err) == GN_ERR_INVALID_ARG);
    CHECK(a == NULL);
    o.batch = 0;
    CHECK(gn_loader_create(&ds, &o, &a, &err) == GN_ERR_INVALID_ARG);
    gn_dataset_free(&ds);
}

/* With augmentation: the thread and the synchronous path give identical batches, and an
 * epoch restarted half way (resume) equals a fresh run of that epoch. */
static void test_loader_augment(void) {
    enum { N = 57, S = 12, B = 8 };
    gn_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.count = N;
    ds.channels = 1;
    ds.height = ds.width = S;
    ds.num_classes = 3;
    ds.images = malloc((size_t)N * S * S);
    ds.labels = malloc(N * sizeof(int));
    fill_pattern(ds.images, (size_t)N * S * S, 4);
    for (int i = 0; i < N; i++) ds.labels[i] = i % 3;
    gn_augment aug = gn_augment_small_default();
    aug.erase_prob = 0.5f;
    gn_loader_options o = gn_loader_options_default();
    o.batch = B;
    o.shuffle = 1;
    o.seed = 99;
    o.augment = &aug;
    o.mean[0] = 0.3f;
    o.std[0] = 0.4f;
    gn_loader *thr, *syn;
    gn_error err = {0};
    CHECK(gn_loader_create(&ds, &o, &thr, &err) == GN_OK);
    o.background = 0;
    CHECK(gn_loader_create(&ds, &o, &syn, &err) == GN_OK);
    const float *xa, *xb;
    const int *ya, *yb;
    int ca, cb, same = 1, batches = 0;
    /* Interrupted epoch 2 on the threaded loader, then epoch 3 on both. */
    CHECK(gn_loader_start_epoch(thr, 2, &err) == GN_OK);
    CHECK(gn_loader_next(thr, &xa, &ya, &ca, &err) == GN_OK && ca == B);
    CHECK(gn_loader_next(thr, &xa, &ya, &ca, &err) == GN_OK && ca == B);
    CHECK(gn_loader_start_epoch(thr, 3, &err) == GN_OK);
    CHECK(gn_loader_start_epoch(syn, 3, &err) == GN_OK);
    for (;;) {
        CHECK(gn_loader_next(thr, &xa, &ya, &ca, &err) == GN_OK);
        CHECK(gn_loader_next(syn, &xb, &yb, &cb, &err) == GN_OK);
        if (ca != cb) same = 0;
        if (ca == 0 || cb == 0) break;
        batches++;
        same &= memcmp(xa, xb, (size_t)ca * S * S * sizeof(float)) == 0;
        same &= memcmp(ya, yb, (size_t)ca * sizeof(int)) == 0;
    }
    CHECK(same && batches == 8);
    /* Augmentation changes something, and differs between epochs. */
    static float e3[B * S * S], e4[B * S * S];
    o.shuffle = 0;
    gn_loader_free(syn);
    CHECK(gn_loader_create(&ds, &o, &syn, &err) == GN_OK);
    CHECK(gn_loader_start_epoch(syn, 3, &err) == GN_OK);
    CHECK(gn_loader_next(syn, &xb, &yb, &cb, &err) == GN_OK);
    memcpy(e3, xb, sizeof e3);
    CHECK(gn_loader_start_epoch(syn, 4, &err) == GN_OK);
    CHECK(gn_loader_next(syn, &xb, &yb, &cb, &err) == GN_OK);
    memcpy(e4, xb, sizeof e4);
    CHECK(memcmp(e3, e4, sizeof e3) != 0);
    /* Free while the thread may be filling: must not hang or leak. */
    CHECK(gn_loader_start_epoch(thr, 9, &err) == GN_OK);
    gn_loader_free(thr);
    gn_loader_free(syn);
    gn_dataset_free(&ds);
}

/* ---- image folders ------------------------------------------------------------------------- */

static void make_dir(const char *path) { mkdir(path, 0755); }

static void write_solid_png(const char *path, int w, int h, int c, const uint8_t *color) {
    uint8_t *px = malloc((size_t)w * h * c);
    for (int i = 0; i < w * h; i++) memcpy(px + (size_t)i * c, color, (size_t)c);
    gn_error err = {0};
    if (gn_png_write(path, w, h, c, px, &err) != GN_OK) {
        fprintf(stderr, "%s\n", err.message);
        exit(1);
    }
    free(px);
}

static void test_folder(void) {
    const char *root = WORK "/folder";
    make_dir(root);
    make_dir(WORK "/folder/dog");
    make_dir(WORK "/folder/cat");
    make_dir(WORK "/folder/.hidden");
    make_dir(WORK "/folder/dog/nested");
    const uint8_t red[3] = {200, 10, 20}, blue[3] = {5, 6, 250}, gray[1] = {90};
    write_solid_png(WORK "/folder/cat/b.png", 8, 6, 3, blue);
    write_solid_png(WORK "/folder/cat/a.PNG", 8, 6, 3, red);
    write_solid_png(WORK "/folder/dog/x.png", 5, 5, 1, gray);
    write_solid_png(WORK "/folder/.hidden/h.png", 5, 5, 1, gray);
    write_solid_png(WORK "/folder/cat/.ignored.png", 5, 5, 1, gray);
    write_raw(WORK "/folder/cat/notes.txt", (const uint8_t *)"hi", 2);
    write_raw(WORK "/folder/top.png", (const uint8_t *)"x", 1); /* not a class: a file */

    gn_folder_options fo = {3, 4, 0};
    gn_dataset ds;
    gn_error err = {0};
    gn_status st = gn_dataset_load_folder(root, &fo, &ds, &err);
    CHECK_MSG(st == GN_OK, "%s", err.message);
    if (st != GN_OK) return;
    CHECK(ds.count == 3 && ds.num_classes == 2 && ds.channels == 3 && ds.height == 4);
    CHECK(strcmp(ds.class_names[0], "cat") == 0 && strcmp(ds.class_names[1], "dog") == 0);
    CHECK(ds.labels[0] == 0 && ds.labels[1] == 0 && ds.labels[2] == 1);
    CHECK(ds.skipped == 2); /* notes.txt and dog/nested */
    /* Sample 0 is a.PNG (sorted by name; any case of the extension), planar red. */
    CHECK(ds.images[0] == 200 && ds.images[16] == 10 && ds.images[32] == 20);
    CHECK(ds.images[48] == 5 && ds.images[48 + 32] == 250);     /* b.png */
    CHECK(ds.images[96] == 90 && ds.images[96 + 47] == 90);     /* gray replicated */
    CHECK(ds.has_stats);
    CHECK_NEAR(ds.mean[0], (200 + 5 + 90) / 3.0 / 255.0, 1e-6);
    uint8_t eager[48];
    CHECK(gn_dataset_read(&ds, 1, eager, NULL, &err) == GN_OK);

    /* Lazy mode reads the same bytes; gray conversion follows PIL's luma. */
    gn_dataset lazy;
    fo.lazy = 1;
    CHECK(gn_dataset_load_folder(root, &fo, &lazy, &err) == GN_OK);
    CHECK(lazy.images == NULL && lazy.paths && !lazy.has_stats);
    uint8_t got[48], scratch[48];
    CHECK(gn_dataset_read(&lazy, 1, got, scratch, &err) == GN_OK && memcmp(got, eager, 48) == 0);
    CHECK(gn_dataset_compute_stats(&lazy, &err) == GN_OK);
    CHECK_NEAR(lazy.mean[2], ds.mean[2], 1e-7);
    gn_dataset_free(&lazy);
    gn_dataset_free(&ds);
    fo.channels = 1;
    fo.lazy = 0;
    CHECK(gn_dataset_load_folder(root, &fo, &ds, &err) == GN_OK);
    CHECK(ds.images[0] == (200 * 19595 + 10 * 38470 + 20 * 7471 + 0x8000) >> 16);
    gn_dataset_free(&ds);

    /* A corrupt image: eager loading names it; lazy loading fails in the loader. */
    write_raw(WORK "/folder/dog/y.jpg", (const uint8_t *)"\xff\xd8garbage", 9);
    st = gn_dataset_load_folder(root, &fo, &ds, &err);
    CHECK(st != GN_OK && strstr(err.message, WORK "/folder/dog/y.jpg") != NULL);
    fo.lazy = 1;
    CHECK(gn_dataset_load_folder(root, &fo, &ds, &err) == GN_OK && ds.count == 4);
    gn_loader_options o = gn_loader_options_default();
    o.batch = 2;
    gn_loader *l;
    CHECK(gn_loader_create(&ds, &o, &l, &err) == GN_OK);
    CHECK(gn_loader_start_epoch(l, 0, &err) == GN_OK);
    const float *x;
    const int *y;
    int count;
    CHECK(gn_loader_next(l, &x, &y, &count, &err) == GN_OK && count == 2);
    memset(&err, 0, sizeof err);
    st = gn_loader_next(l, &x, &y, &count, &err);
    CHECK(st == GN_ERR_FORMAT && count == 0);
    CHECK_MSG(strstr(err.message, "folder/dog/y.jpg") != NULL, "%s", err.message);
    CHECK(gn_loader_next(l, &x, &y, &count, &err) == GN_OK && count == 0);
    gn_loader_free(l);
    gn_dataset_free(&ds);
    remove(WORK "/folder/dog/y.jpg");

    /* An empty class folder, no classes, a missing root. */
    make_dir(WORK "/folder/empty");
    write_raw(WORK "/folder/empty/readme.md", (const uint8_t *)"x", 1);
    st = gn_dataset_load_folder(root, &fo, &ds, &err);
    CHECK(st == GN_ERR_FORMAT && strstr(err.message, WORK "/folder/empty: class folder holds no") != NULL);
    make_dir(WORK "/noclasses");
    st = gn_dataset_load_folder(WORK "/noclasses", &fo, &ds, &err);
    CHECK(st == GN_ERR_FORMAT && strstr(err.message, "no class sub-folders") != NULL);
    st = gn_dataset_load_folder(WORK "/missing", &fo, &ds, &err);
    CHECK(st == GN_ERR_IO && strstr(err.message, WORK "/missing: cannot open folder") != NULL);
    fo.channels = 2;
    CHECK(gn_dataset_load_folder(root, &fo, &ds, &err) == GN_ERR_INVALID_ARG);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    nftw(WORK, remove_entry, 16, FTW_DEPTH | FTW_PHYS); /* start from a clean tree */
    make_dir(WORK);
    test_idx_valid();
    test_idx_dataset();
    test_idx_malformed();
    test_fashion_mnist();
    test_shuffle();
    test_crop_flip();
    test_erase();
    test_rrc();
    test_loader();
    test_loader_augment();
    test_folder();
    TEST_MAIN_END();
}
