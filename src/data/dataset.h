/* Training data: datasets (MNIST-style IDX files, image folders), augmentation with explicit
 * random state, and a batch loader that prepares the next batch on a background thread.
 * Internal API (not in ghostnet.h). Every fallible call returns a gn_status and, when `err` is
 * not NULL, a one-line message naming the file at fault. Nothing here prints or exits.
 *
 * Determinism: every random choice comes from a gn_rng seeded from (seed, epoch, sample index)
 * or (seed, epoch) for the shuffle, never from thread timing or global state, so a run resumed
 * at epoch e reproduces the uninterrupted run exactly.
 *
 * Images are stored as uint8 N x C x H x W (planar per image); batches come out as float32
 * NCHW, normalised with (v / 255 - mean) / std per channel. Labels are int (as the training
 * loss takes them). */
#ifndef GN_DATASET_H
#define GN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "ghostnet.h"

/* ---- IDX files (idx.c) ------------------------------------------------------------------- */

/* Limits on what an IDX header may declare: the first dimension (sample count) and every
 * other dimension. Larger values are refused before anything is allocated. */
#define GN_IDX_MAX_COUNT 10000000u
#define GN_IDX_MAX_SIDE 4096u
#define GN_IDX_MAX_NDIM 3

/* One parsed IDX array. Only unsigned bytes (type code 0x08) are accepted: MNIST, Fashion-MNIST
 * and EMNIST all use it. */
typedef struct gn_idx {
    int ndim;                       /* 1 (labels) .. GN_IDX_MAX_NDIM (images: N x H x W) */
    uint32_t dims[GN_IDX_MAX_NDIM];
    uint8_t *data;                  /* dims[0] * ... * dims[ndim-1] bytes; free with gn_idx_free */
    size_t size;
} gn_idx;

/* Reads an IDX file, gzip-compressed or raw (zlib detects which). `ndim` is the rank the
 * caller expects (1 for labels, 3 for images) or 0 for any. The header is checked before the
 * payload is read: magic (two zero bytes, type, rank), type 0x08, rank, every dimension
 * against the limits above, and the payload must be exactly the declared size (truncated or
 * trailing data is an error naming the file). Memory grows with the data actually read, so a
 * header that claims more than the file holds costs nothing. */
gn_status gn_idx_read(const char *path, int ndim, gn_idx *out, gn_error *err);

/* The same parse on an in-memory buffer (raw IDX, or gzip members, which are inflated). `what`
 * names the buffer in messages. Used by the fuzzer and the tests. */
gn_status gn_idx_parse_memory(const uint8_t *data, size_t size, const char *what, int ndim,
                              gn_idx *out, gn_error *err);

void gn_idx_free(gn_idx *idx);

/* ---- datasets ---------------------------------------------------------------------------- */

typedef struct gn_dataset {
    int count;           /* N samples */
    int channels;        /* C: 1 (gray) or 3 (RGB) */
    int height, width;   /* every stored image has this size */
    int num_classes;
    uint8_t *images;     /* N x C x H x W, or NULL for a lazy folder dataset */
    int *labels;         /* N, each in [0, num_classes) */
    /* Per-channel mean and standard deviation of v / 255 over every stored pixel (population
     * std), for the model file's metadata. Computed at load for in-memory datasets;
     * has_stats is 0 for lazy ones (see gn_dataset_compute_stats). */
    int has_stats;
    float mean[3], std[3];
    char **class_names;  /* num_classes folder names (folder datasets), else NULL */
    char **paths;        /* N file paths (lazy folder datasets), else NULL */
    int skipped;         /* folder datasets: entries ignored (not .jpg/.jpeg/.png, subfolders) */
} gn_dataset;

/* MNIST-format pair: images idx3 (N x H x W bytes) and labels idx1 (N bytes). num_classes 0
 * takes max label + 1; otherwise every label must be below it. Fails on a count mismatch. */
gn_status gn_dataset_load_idx(const char *images_path, const char *labels_path,
                              int num_classes, gn_dataset *out, gn_error *err);

/* Builds a dataset from parsed arrays, taking ownership of both (they are emptied, also on
 * failure). The names are used in messages. */
gn_status gn_dataset_from_idx(gn_idx *images, gn_idx *labels, int num_classes,
                              const char *images_name, const char *labels_name,
                              gn_dataset *out, gn_error *err);

typedef struct gn_folder_options {
    int channels;  /* 1: PIL convert("L"); 3: RGB (gray files replicated) */
    int load_size; /* stored size S: shorter side resized to S (PIL bilinear), centre crop
                      S x S, exactly as the evaluation preprocessing does */
    int lazy;      /* 0: decode every file at load (small datasets: N*C*S*S bytes);
                      1: keep the paths and decode when a sample is read */
} gn_folder_options;

/* ImageFolder layout: root/<class>/<file>. Classes are the sub-folders of root, sorted by
 * byte order (as Python's sorted); label i is the i-th class. Inside a class folder, files
 * named *.jpg, *.jpeg or *.png (any case) are taken, sorted by name; names starting with '.'
 * are ignored; any other entry (other files, nested folders) is skipped and counted in
 * `skipped`, as torchvision's ImageFolder skips files with other extensions; files directly in
 * root are ignored. Symbolic links are followed. No class folder,
 * a class folder without images, or an image that does not decode (eager mode) is an error
 * naming the folder or file. */
gn_status gn_dataset_load_folder(const char *root, const gn_folder_options *options,
                                 gn_dataset *out, gn_error *err);

/* Copies sample i as C x H x W bytes into dst. Lazy datasets decode the file (this allocates
 * inside the decoder, so a loader over a lazy dataset allocates per sample) using `scratch`
 * (C * H * W bytes; NULL allocates one for the call). */
gn_status gn_dataset_read(const gn_dataset *ds, int index, uint8_t *dst, uint8_t *scratch,
                          gn_error *err);

/* (Re)computes mean/std over every sample (decoding each file for lazy datasets). */
gn_status gn_dataset_compute_stats(gn_dataset *ds, gn_error *err);

void gn_dataset_free(gn_dataset *ds);

/* ---- augmentation (augment.c) ------------------------------------------------------------ */

typedef enum gn_erase_fill {
    GN_ERASE_NOISE = 0, /* per-pixel standard normal noise (timm mode "pixel") */
    GN_ERASE_ZERO = 1   /* zeros (timm mode "const"): the mean colour after normalisation */
} gn_erase_fill;

/* Training-time augmentation, applied in torchvision order: geometry on the uint8 image
 * (random-resized-crop, or random crop with zero padding), horizontal flip, normalisation to
 * float, then random erasing on the normalised tensor (timm RandomErasing, one box). */
typedef struct gn_augment {
    int crop_padding;       /* RandomCrop(size, padding=p): zero pad p, crop the stored size */
    int random_resized_crop;/* 1: RandomResizedCrop(out size, scale, ratio), replaces the crop */
    float scale[2];         /* area fraction range (0.08, 1) */
    float ratio[2];         /* aspect ratio (w / h) range, log-uniform (3/4, 4/3) */
    float hflip_prob;       /* 0.5 */
    float erase_prob;       /* timm re_prob; 0 disables */
    float erase_area[2];    /* area fraction range (0.02, 1/3) */
    float erase_log_ratio[2]; /* log of the aspect ratio range: log(0.3), log(1/0.3) */
    gn_erase_fill erase_fill;
} gn_augment;

/* No augmentation at all; set the fields wanted. */
gn_augment gn_augment_none(void);
/* Small images (Fashion-MNIST): pad-2 crop, flip 0.5, no erasing. */
gn_augment gn_augment_small_default(void);
/* ImageNet-style: random-resized-crop (0.08, 1) x (3/4, 4/3), flip 0.5, erasing p = 0.25. */
gn_augment gn_augment_imagenet_default(void);

/* Range checks (probabilities in [0, 1], 0 < scale <= 1, ratios positive and ordered, ...). */
gn_status gn_augment_validate(const gn_augment *aug, gn_error *err);

/* The generator for one sample: a stream derived from (seed, epoch, index) only. */
void gn_rng_for_sample(gn_rng *rng, uint64_t seed, uint64_t epoch, uint64_t index);

typedef struct gn_box {
    int top, left, height, width;
} gn_box;

/* torchvision RandomResizedCrop.get_params for an H x W image: up to 10 tries of a random area
 * and log-uniform aspect ratio; then the centre crop clamped to the ratio range. */
gn_box gn_rrc_box(gn_rng *rng, int height, int width, const float scale[2],
                  const float ratio[2]);

/* timm RandomErasing's box (one box, 10 tries); returns 0 when no try fitted. */
int gn_erase_box(gn_rng *rng, int height, int width, const float area[2],
                 const float log_ratio[2], gn_box *box);

/* Bilinear resize of the box of a C x H x W uint8 image to C x oh x ow, PIL-style: a triangle
 * filter widened by the scale when shrinking (antialias), weights in float, rounded to uint8.
 * Close to but not bit-exact with PIL. `scratch` holds gn_resize_scratch_floats(...) floats;
 * nothing is allocated. */
size_t gn_resize_scratch_floats(int max_in_h, int max_in_w, int oh, int ow);
void gn_resize_box_u8(const uint8_t *src, int c, int h, int w, gn_box box, uint8_t *dst, int oh,
                      int ow, float *scratch);

/* Zero-padded crop: dst (C x oh x ow) = src shifted so that dst(0, 0) is src(top, left);
 * pixels outside src are 0 (top/left may be negative). */
void gn_crop_u8(const uint8_t *src, int c, int h, int w, int top, int left, uint8_t *dst,
                int oh, int ow);
/* In-place horizontal flip of a C x H x W image. */
void gn_hflip_u8(uint8_t *img, int c, int h, int w);

/* (v / 255 - mean[c]) / std[c] into float CHW. */
void gn_normalize_u8(const uint8_t *src, int c, size_t plane, const float *mean,
                     const float *std, float *dst);

/* Working memory for gn_augment_sample, sized once for one input and output geometry. */
typedef struct gn_augment_ws gn_augment_ws;
gn_status gn_augment_ws_create(int channels, int in_h, int in_w, int out_h, int out_w,
                               gn_augment_ws **out, gn_error *err);
void gn_augment_ws_free(gn_augment_ws *ws);

/* One sample: src (C x in_h x in_w bytes) -> dst (C x out_h x out_w floats, normalised).
 * aug NULL is evaluation: centre crop (zero padded when larger) with no randomness. The rng is
 * consumed only when aug is not NULL. Allocates nothing. */
void gn_augment_sample(gn_augment_ws *ws, const gn_augment *aug, gn_rng *rng,
                       const uint8_t *src, const float *mean, const float *std, float *dst);

/* ---- loader (loader.c) ------------------------------------------------------------------- */

typedef struct gn_loader_options {
    int batch;              /* samples per batch */
    int shuffle;            /* 1: epoch e visits a permutation depending only on (seed, e) */
    int drop_last;          /* 1: drop the last partial batch (training) */
    uint64_t seed;
    int out_height, out_width; /* 0: the dataset's size */
    const gn_augment *augment; /* NULL: evaluation (centre crop, no randomness); copied */
    float mean[3], std[3];  /* normalisation per channel */
    int background;         /* 1: prepare the next batch on a thread; 0: in gn_loader_next */
} gn_loader_options;

/* batch 1, no shuffle, keep last, seed 0, dataset size, no augmentation, mean 0 std 1,
 * background thread on. */
gn_loader_options gn_loader_options_default(void);

typedef struct gn_loader gn_loader;

/* Borrows `ds` (it must outlive the loader). Allocates everything here: the per-epoch order, a
 * double buffer of batches and the augmentation workspace; starts the thread. */
gn_status gn_loader_create(const gn_dataset *ds, const gn_loader_options *options,
                           gn_loader **out, gn_error *err);

/* Begins epoch `epoch` (any order; restarting an unfinished epoch abandons it). The thread
 * starts preparing the first batches at once. */
gn_status gn_loader_start_epoch(gn_loader *loader, uint64_t epoch, gn_error *err);

/* The next batch of the epoch: *inputs (count x C x H x W floats) and *labels (count ints)
 * stay valid until the next call to gn_loader_next / gn_loader_start_epoch / gn_loader_free.
 * At the end of the epoch returns GN_OK with *count = 0. A sample that fails to load (lazy
 * datasets) fails the call with the message naming the file. */
gn_status gn_loader_next(gn_loader *loader, const float **inputs, const int **labels,
                         int *count, gn_error *err);

/* Batches per epoch with these options. */
size_t gn_loader_num_batches(const gn_loader *loader);
/* Dataset index of the i-th sample of the current epoch (the shuffled order). */
int gn_loader_order(const gn_loader *loader, size_t i);

/* Stops the thread (finishing the sample in progress) and frees everything. */
void gn_loader_free(gn_loader *loader);

/* Fisher-Yates permutation of 0..n-1 for epoch `epoch`: depends only on (seed, epoch). */
void gn_shuffle_order(int *order, int n, uint64_t seed, uint64_t epoch);

#endif
