/* Image-folder datasets (torchvision ImageFolder layout) and the dataset helpers shared by every
 * kind: reading one sample, statistics, freeing. */
#define _POSIX_C_SOURCE 200809L /* opendir, stat */

#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "io/image_internal.h"

/* ---- sorted name lists ------------------------------------------------------------------- */

typedef struct strlist {
    char **items;
    size_t n, cap;
} strlist;

static void strlist_free(strlist *l) {
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* Appends a copy of s (or takes s itself when `own`); returns 0 when out of memory. */
static int strlist_add(strlist *l, char *s, int own) {
    if (!s) return 0;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 16;
        char **ni = realloc(l->items, ncap * sizeof *ni);
        if (!ni) {
            if (own) free(s);
            return 0;
        }
        l->items = ni;
        l->cap = ncap;
    }
    char *copy = own ? s : malloc(strlen(s) + 1);
    if (!copy) return 0;
    if (!own) strcpy(copy, s);
    l->items[l->n++] = copy;
    return 1;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b); /* byte order, as Python's sorted */
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* Every entry of dir whose name does not start with '.', sorted. */
static gn_status list_dir(const char *dir, strlist *names, gn_error *err) {
    errno = 0;
    DIR *d = opendir(dir);
    if (!d) return gn_fail(err, GN_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    gn_status st = GN_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) st = gn_fail(err, GN_ERR_IO, "%s: cannot read folder: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.') continue; /* hidden files, "." and ".." */
        if (!strlist_add(names, e->d_name, 0)) {
            st = gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
    }
    closedir(d);
    if (st == GN_OK && names->n) qsort(names->items, names->n, sizeof *names->items, cmp_names);
    if (st != GN_OK) strlist_free(names);
    return st;
}

static int is_kind(const char *path, int want_dir) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0; /* follows symbolic links, as ImageFolder does */
    return want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode);
}

static int has_image_extension(const char *name) {
    static const char *const exts[] = {".jpg", ".jpeg", ".png"};
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t m = strlen(exts[i]);
        if (n <= m) continue;
        const char *tail = name + n - m;
        size_t k = 0;
        while (k < m && (tail[k] | 0x20) == exts[i][k]) k++; /* ASCII case-insensitive */
        if (k == m) return 1;
    }
    return 0;
}

/* ---- scanning the tree ------------------------------------------------------------------- */

typedef struct scan {
    strlist classes; /* class folder names */
    strlist paths;   /* image paths, class by class */
    int *labels;
    size_t labels_cap;
    int skipped;
} scan;

static void scan_free(scan *s) {
    strlist_free(&s->classes);
    strlist_free(&s->paths);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

static gn_status find_classes(const char *root, scan *s, gn_error *err) {
    strlist all = {0};
    gn_status st = list_dir(root, &all, err);
    for (size_t i = 0; st == GN_OK && i < all.n; i++) {
        char *p = join_path(root, all.items[i]);
        if (!p) st = gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", root);
        else if (is_kind(p, 1) && !strlist_add(&s->classes, all.items[i], 0))
            st = gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", root);
        free(p);
    }
    strlist_free(&all);
    if (st == GN_OK && s->classes.n == 0)
        st = gn_fail(err, GN_ERR_FORMAT, "%s: no class sub-folders (expected root/<class>/<image>)",
                     root);
    if (st == GN_OK && s->classes.n > 1000000)
        st = gn_fail(err, GN_ERR_UNSUPPORTED, "%s: %zu classes is more than 1000000", root,
                     s->classes.n);
    return st;
}

static gn_status add_sample(scan *s, char *path, int label, const char *dir, gn_error *err) {
    if (s->paths.n >= GN_IDX_MAX_COUNT) {
        free(path);
        return gn_fail(err, GN_ERR_UNSUPPORTED, "%s: more than %u images", dir,
                       (unsigned)GN_IDX_MAX_COUNT);
    }
    if (s->paths.n == s->labels_cap) {
        size_t ncap = s->labels_cap ? s->labels_cap * 2 : 256;
        int *nl = realloc(s->labels, ncap * sizeof *nl);
        if (!nl) {
            free(path);
            return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", dir);
        }
        s->labels = nl;
        s->labels_cap = ncap;
    }
    if (!strlist_add(&s->paths, path, 1)) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", dir);
    s->labels[s->paths.n - 1] = label;
    return GN_OK;
}

static gn_status scan_class(const char *root, scan *s, int label, gn_error *err) {
    char *dir = join_path(root, s->classes.items[label]);
    if (!dir) return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", root);
    strlist names = {0};
    size_t before = s->paths.n;
    gn_status st = list_dir(dir, &names, err);
    for (size_t i = 0; st == GN_OK && i < names.n; i++) {
        char *p = join_path(dir, names.items[i]);
        if (!p) {
            st = gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", dir);
        } else if (has_image_extension(names.items[i]) && is_kind(p, 0)) {
            st = add_sample(s, p, label, dir, err);
        } else {
            s->skipped++;
            free(p);
        }
    }
    if (st == GN_OK && s->paths.n == before)
        st = gn_fail(err, GN_ERR_FORMAT, "%s: class folder holds no .jpg, .jpeg or .png images",
                     dir);
    strlist_free(&names);
    free(dir);
    return st;
}

/* ---- decoding one file ------------------------------------------------------------------- */

/* Decodes `path` into C x S x S bytes: shorter side to S, centre crop, as evaluation does.
 * scratch: S x S x C bytes (the interleaved crop). */
static gn_status decode_into(const char *path, int channels, int size, uint8_t *dst,
                             uint8_t *scratch, gn_error *err) {
    gn_image img;
    gn_status st = gn_image_load(path, &img, err);
    if (st != GN_OK) return st;
    gn_preprocess pre = {size, size, {0.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 1.0f}};
    st = gn_image_crop_u8(&img, &pre, channels, scratch, err);
    gn_image_free(&img);
    if (st != GN_OK) return gn_fail_prefix(err, st, path);
    size_t plane = (size_t)size * (size_t)size;
    for (int c = 0; c < channels; c++) {
        uint8_t *o = dst + (size_t)c * plane;
        for (size_t i = 0; i < plane; i++) o[i] = scratch[i * (size_t)channels + (size_t)c];
    }
    return GN_OK;
}

static size_t sample_bytes(const gn_dataset *ds) {
    return (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
}

gn_status gn_dataset_read(const gn_dataset *ds, int index, uint8_t *dst, uint8_t *scratch,
                          gn_error *err) {
    if (!ds || !dst || index < 0 || index >= ds->count)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_dataset_read: sample %d out of range", index);
    size_t bytes = sample_bytes(ds);
    if (ds->images) {
        memcpy(dst, ds->images + (size_t)index * bytes, bytes);
        return GN_OK;
    }
    if (!ds->paths) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_dataset_read: dataset is empty");
    uint8_t *own = NULL;
    if (!scratch && !(scratch = own = malloc(bytes)))
        return gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", ds->paths[index]);
    gn_status st = decode_into(ds->paths[index], ds->channels, ds->height, dst, scratch, err);
    free(own);
    return st;
}

/* ---- statistics -------------------------------------------------------------------------- */

static void finish_stats(gn_dataset *ds, uint64_t (*hist)[256]) {
    for (int c = 0; c < ds->channels; c++) {
        double n = 0.0, s = 0.0, s2 = 0.0;
        for (int v = 0; v < 256; v++) {
            double h = (double)hist[c][v], x = v / 255.0;
            n += h;
            s += h * x;
            s2 += h * x * x;
        }
        double mean = n > 0 ? s / n : 0.0, var = n > 0 ? s2 / n - mean * mean : 0.0;
        ds->mean[c] = (float)mean;
        ds->std[c] = (float)sqrt(var > 0 ? var : 0.0);
    }
    ds->has_stats = 1;
}

gn_status gn_dataset_compute_stats(gn_dataset *ds, gn_error *err) {
    if (!ds || ds->channels < 1 || ds->channels > 3 || ds->count < 1)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_dataset_compute_stats: invalid dataset");
    uint64_t hist[3][256];
    memset(hist, 0, sizeof hist);
    size_t bytes = sample_bytes(ds), plane = (size_t)ds->height * (size_t)ds->width;
    uint8_t *buf = NULL, *scratch = NULL;
    if (!ds->images && (!(buf = malloc(bytes)) || !(scratch = malloc(bytes)))) {
        free(buf);
        return gn_fail(err, GN_ERR_NOMEM, "dataset statistics: out of memory");
    }
    gn_status st = GN_OK;
    for (int i = 0; st == GN_OK && i < ds->count; i++) {
        const uint8_t *img = ds->images ? ds->images + (size_t)i * bytes : buf;
        if (!ds->images) st = gn_dataset_read(ds, i, buf, scratch, err);
        for (int c = 0; st == GN_OK && c < ds->channels; c++) {
            const uint8_t *p = img + (size_t)c * plane;
            for (size_t k = 0; k < plane; k++) hist[c][p[k]]++;
        }
    }
    free(buf);
    free(scratch);
    if (st == GN_OK) finish_stats(ds, hist);
    return st;
}

/* ---- the folder dataset ------------------------------------------------------------------ */

static gn_status check_folder_options(const char *root, const gn_folder_options *o,
                                      gn_error *err) {
    if (!root || !o) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_dataset_load_folder: NULL argument");
    if (o->channels != 1 && o->channels != 3)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: channels must be 1 or 3, not %d", root,
                       o->channels);
    if (o->load_size < 1 || o->load_size > (int)GN_IDX_MAX_SIDE)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%s: load size %d is not 1..%u", root,
                       o->load_size, (unsigned)GN_IDX_MAX_SIDE);
    return GN_OK;
}

/* Moves the scan's results into the dataset. */
static void adopt_scan(gn_dataset *ds, scan *s, const gn_folder_options *o) {
    ds->count = (int)s->paths.n;
    ds->channels = o->channels;
    ds->height = ds->width = o->load_size;
    ds->num_classes = (int)s->classes.n;
    ds->labels = s->labels;
    ds->class_names = s->classes.items;
    ds->paths = s->paths.items;
    ds->skipped = s->skipped;
    memset(s, 0, sizeof *s);
}

static gn_status decode_all(gn_dataset *ds, gn_error *err) {
    size_t bytes = sample_bytes(ds), total;
    if (!gn_mul_size(bytes, (size_t)ds->count, &total))
        return gn_fail(err, GN_ERR_NOMEM, "image folder: %d images of %zu bytes overflow",
                       ds->count, bytes);
    uint8_t *images = malloc(total), *scratch = malloc(bytes);
    gn_status st = GN_OK;
    if (!images || !scratch)
        st = gn_fail(err, GN_ERR_NOMEM, "image folder: out of memory (%zu bytes for %d images)",
                     total, ds->count);
    for (int i = 0; st == GN_OK && i < ds->count; i++)
        st = decode_into(ds->paths[i], ds->channels, ds->height, images + (size_t)i * bytes,
                         scratch, err);
    free(scratch);
    if (st != GN_OK) {
        free(images);
        return st;
    }
    ds->images = images;
    for (int i = 0; i < ds->count; i++) free(ds->paths[i]);
    free(ds->paths);
    ds->paths = NULL;
    return GN_OK;
}

gn_status gn_dataset_load_folder(const char *root, const gn_folder_options *options,
                                 gn_dataset *out, gn_error *err) {
    if (out) memset(out, 0, sizeof *out);
    gn_status st = check_folder_options(root, options, err);
    if (st == GN_OK && !out) st = gn_fail(err, GN_ERR_INVALID_ARG, "%s: output is NULL", root);
    if (st != GN_OK) return st;
    scan s;
    memset(&s, 0, sizeof s);
    st = find_classes(root, &s, err);
    for (size_t c = 0; st == GN_OK && c < s.classes.n; c++) st = scan_class(root, &s, (int)c, err);
    if (st != GN_OK) {
        scan_free(&s);
        return st;
    }
    adopt_scan(out, &s, options);
    if (!options->lazy) {
        st = decode_all(out, err);
        if (st == GN_OK) st = gn_dataset_compute_stats(out, err);
    }
    if (st != GN_OK) gn_dataset_free(out);
    return st;
}

void gn_dataset_free(gn_dataset *ds) {
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    if (ds->class_names)
        for (int i = 0; i < ds->num_classes; i++) free(ds->class_names[i]);
    free(ds->class_names);
    if (ds->paths)
        for (int i = 0; i < ds->count; i++) free(ds->paths[i]);
    free(ds->paths);
    memset(ds, 0, sizeof *ds);
}
