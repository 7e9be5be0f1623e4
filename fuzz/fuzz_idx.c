/* libFuzzer target: IDX parsing of arbitrary bytes (raw or gzip), then, for inputs that hold
 * an image array and a label array, the dataset built from them and one loader epoch with
 * augmentation. Any crash, sanitizer report, leak or broken invariant is a bug.
 *
 * Input layout: byte 0 selects the mode; mode & 1 == 0 parses the rest as one IDX array of any
 * rank. Otherwise bytes 1-2 (little endian) split the rest into images | labels, byte 3 gives
 * num_classes (0 = max label + 1). Run: ./fuzz_idx -max_len=4096 <corpus dir> */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const gn_error *err) {
    if (memchr(err->message, '\0', sizeof err->message) == NULL) abort();
}

static void check_array(const gn_idx *idx) {
    size_t n = 1;
    for (int i = 0; i < idx->ndim; i++) n *= idx->dims[i];
    if (!idx->data || idx->size != n || idx->ndim < 1 || idx->ndim > GN_IDX_MAX_NDIM) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += idx->data[i]; /* reads every byte */
    (void)sum;
}

static void one_epoch(const gn_dataset *ds) {
    gn_augment aug = gn_augment_small_default();
    aug.erase_prob = 0.5f;
    gn_loader_options o = gn_loader_options_default();
    o.batch = 3;
    o.shuffle = 1;
    o.augment = &aug;
    o.background = 0;
    gn_loader *l;
    gn_error err;
    if (gn_loader_create(ds, &o, &l, &err) != GN_OK) abort();
    if (gn_loader_start_epoch(l, 1, &err) != GN_OK) abort();
    int seen = 0;
    for (;;) {
        const float *x;
        const int *y;
        int count;
        if (gn_loader_next(l, &x, &y, &count, &err) != GN_OK) abort();
        if (count == 0) break;
        for (int i = 0; i < count; i++)
            if (y[i] < 0 || y[i] >= ds->num_classes) abort();
        seen += count;
    }
    if (seen != ds->count) abort();
    gn_loader_free(l);
}

static void pair(const uint8_t *data, size_t size) {
    if (size < 4) return;
    size_t split = (size_t)(data[1] | data[2] << 8);
    int classes = data[3];
    data += 4;
    size -= 4;
    if (split > size) split = size;
    gn_idx images, labels;
    gn_error err;
    memset(&err, 0, sizeof err);
    gn_status a = gn_idx_parse_memory(data, split, "images", 3, &images, &err);
    check_message(&err);
    gn_status b = gn_idx_parse_memory(data + split, size - split, "labels", 1, &labels, &err);
    check_message(&err);
    if (a != GN_OK || b != GN_OK) {
        gn_idx_free(&images);
        gn_idx_free(&labels);
        return;
    }
    gn_dataset ds;
    gn_status st = gn_dataset_from_idx(&images, &labels, classes, "images", "labels", &ds, &err);
    check_message(&err);
    if (images.data || labels.data) abort(); /* ownership taken in every case */
    if (st != GN_OK) {
        if (ds.images || ds.labels) abort();
        return;
    }
    for (int i = 0; i < ds.count; i++)
        if (ds.labels[i] < 0 || ds.labels[i] >= ds.num_classes) abort();
    if (!ds.has_stats || !isfinite(ds.mean[0]) || !isfinite(ds.std[0])) abort();
    if ((size_t)ds.count * ds.height * ds.width <= 65536) one_epoch(&ds);
    gn_dataset_free(&ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        pair(data, size);
        return 0;
    }
    gn_idx idx;
    gn_error err;
    memset(&err, 0, sizeof err);
    gn_status st = gn_idx_parse_memory(data + 1, size - 1, "fuzz", 0, &idx, &err);
    check_message(&err);
    if (st != GN_OK) {
        if (idx.data || idx.size || idx.ndim) abort();
        return 0;
    }
    check_array(&idx);
    gn_idx_free(&idx);
    return 0;
}
