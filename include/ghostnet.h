/* ghostnet.h - GhostNet (Han et al., CVPR 2020) in C11: the one public header.
 *
 * Lifecycle (prepare once, run many):
 *   gn_model   : architecture + parameters in PyTorch/timm layout (create, init, load, save).
 *   gn_session : an inference plan for one model at a fixed batch and input size: BN folded,
 *                weights packed, one activation arena. gn_session_run allocates nothing.
 *
 * Every fallible call returns a gn_status; when `err` is not NULL it also receives a one-line
 * message naming the file, tensor or argument at fault. The library never prints or exits.
 */
#ifndef GHOSTNET_H
#define GHOSTNET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GN_VERSION_STRING "0.1.0"

/* ---- status codes ------------------------------------------------------------------------ */

typedef enum gn_status {
    GN_OK = 0,
    GN_ERR_INVALID_ARG,  /* a caller-supplied value is out of range */
    GN_ERR_NOMEM,        /* an allocation failed or a size overflowed */
    GN_ERR_IO,           /* open/read/write/rename failed */
    GN_ERR_FORMAT,       /* a file is malformed (weights, image, dataset) */
    GN_ERR_SHAPE,        /* tensor names/shapes do not match the architecture */
    GN_ERR_UNSUPPORTED,  /* well-formed but not supported (dtype, image kind, ...) */
    GN_ERR_INTERRUPTED   /* stopped on request (training) */
} gn_status;

typedef struct gn_error {
    gn_status code;
    char message[512];
} gn_error;

/* Static description of a status code ("invalid argument", ...). Never NULL. */
const char *gn_status_string(gn_status status);

/* ---- architecture -------------------------------------------------------------------------- */

typedef struct gn_config {
    float width;       /* width multiplier; channels go through make_divisible(v * width, 4) */
    int in_chans;      /* input channels (3 for RGB, 1 for grayscale) */
    int num_classes;   /* classifier outputs */
    float dropout;     /* dropout before the classifier (training only) */
    int stem_stride;   /* stride of conv_stem: 2 (ImageNet) or 1 (small images) */
    int ghost_ratio;   /* s: ghost modules make ceil(out/s) intrinsic maps */
    int ghost_dw_size; /* d: kernel of the cheap depthwise operation */
} gn_config;

/* width 1.0, 3 input channels, 1000 classes, dropout 0.2, stem stride 2, s 2, d 3. */
gn_config gn_config_default(void);

/* Checks ranges (width in (0, 8], in_chans 1..64, classes 1..1e6, dropout [0,1), stem stride
 * 1 or 2, s 2..16, d odd 1..15). */
gn_status gn_config_validate(const gn_config *config, gn_error *err);

/* ---- model: architecture + parameters ------------------------------------------------------ */

typedef struct gn_model gn_model;

/* Allocates a model whose parameters are zero, with BN weights and running variances one.
 * Fill it with gn_model_init_random, or use gn_model_load instead. */
gn_status gn_model_create(const gn_config *config, gn_model **out, gn_error *err);
void gn_model_free(gn_model *model);

/* A network from a text description (docs/netdesc.md: VGG, ResNet, MobileNet, GhostNet or any
 * stack of convs, Ghost modules, SE, pooling and residual blocks). `source` names the text in
 * messages; width > 0 overrides the file's width; from config: in_chans, num_classes,
 * stem_stride (for `s=stem`), and ghost_ratio / ghost_dw_size as the defaults of `ghost`
 * lines that state none. Such a model saves and loads (the file keeps the description),
 * trains, evaluates and runs sessions like the built-in GhostNet. */
gn_status gn_model_create_net(const char *text, size_t len, const char *source, float width,
                              const gn_config *config, gn_model **out, gn_error *err);

/* PyTorch-style default initialisation (kaiming-uniform a=sqrt(5) for convs and linear, BN
 * weight 1 / bias 0 / mean 0 / var 1) from a seeded generator: same seed, same model. */
gn_status gn_model_init_random(gn_model *model, uint64_t seed);

const gn_config *gn_model_config(const gn_model *model);

/* Learnable parameters (weights, biases, BN gamma/beta; no running statistics). */
size_t gn_model_param_count(const gn_model *model);

/* Every state-dict tensor in timm order: parameters and BN running statistics (the
 * num_batches_tracked counters are implied and written on save). */
size_t gn_model_tensor_count(const gn_model *model);
typedef struct gn_tensor_info {
    const char *name;   /* timm key, e.g. "blocks.3.0.se.conv_reduce.weight" */
    int ndim;
    int64_t shape[4];
    float *data;        /* owned by the model; writable */
    size_t numel;
} gn_tensor_info;
gn_status gn_model_tensor(const gn_model *model, size_t index, gn_tensor_info *info);
gn_status gn_model_find_tensor(const gn_model *model, const char *name, gn_tensor_info *info);

/* Safetensors with timm key names. Loading checks every tensor's name, dtype and shape against
 * the architecture; F32, F16 and BF16 are read. The architecture comes from the file's
 * __metadata__ when present; otherwise from `fallback` (or defaults when NULL) with in_chans
 * and num_classes taken from the tensor shapes. Saving writes F32 atomically (temp + rename). */
gn_status gn_model_load(const char *path, const gn_config *fallback, gn_model **out, gn_error *err);
gn_status gn_model_save(const gn_model *model, const char *path, gn_error *err);

/* Preprocessing recorded with a model (defaults: 224, ImageNet mean/std or 0.5/0.5 for 1 ch). */
typedef struct gn_preprocess {
    int input_size;   /* square crop fed to the network */
    int resize_size;  /* shorter side before the centre crop (256 for 224) */
    float mean[3];
    float std[3];
} gn_preprocess;
const gn_preprocess *gn_model_preprocess(const gn_model *model);
void gn_model_set_preprocess(gn_model *model, const gn_preprocess *pre);

/* ---- layer table (summary) ---------------------------------------------------------------- */

typedef struct gn_layer_info {
    char name[64];      /* timm-style module path, e.g. "blocks.1.0.conv_dw" */
    char type[32];      /* "Conv2d 3x3/2", "GhostModule", "SqueezeExcite", ... */
    int depth;          /* 0 for top-level, 1 for parts of a block */
    int out_c, out_h, out_w;
    int64_t params;
    int64_t macs;       /* conv + linear multiply-adds, per image */
} gn_layer_info;

/* Fills up to `cap` rows for an input of height x width; *count receives the number of rows
 * (call with cap 0 to size the array). Totals: gn_model_macs / gn_model_param_count. */
gn_status gn_model_layers(const gn_model *model, int height, int width, gn_layer_info *rows,
                          size_t cap, size_t *count, gn_error *err);
int64_t gn_model_macs(const gn_model *model, int height, int width);

/* ---- inference session -------------------------------------------------------------------- */

typedef struct gn_session gn_session;

typedef struct gn_session_options {
    int num_threads;     /* 0: all cores */
    int force_reference; /* 1: use the plain scalar reference kernels (tests, debugging) */
    int keep_taps;       /* 1: keep each bottleneck's output readable via gn_session_tap */
} gn_session_options;
gn_session_options gn_session_options_default(void);

/* Plans inference for `batch` images of in_chans x height x width. Folds BN and packs weights:
 * later changes to the model are not seen. A model made by gn_model_create_net is run by its
 * own graph instead, which reads the model's weights at each run: such a model must outlive
 * the session. */
gn_status gn_session_create(const gn_model *model, int batch, int height, int width,
                            const gn_session_options *options, gn_session **out, gn_error *err);
void gn_session_free(gn_session *session);

/* input: batch x in_chans x height x width floats (NCHW). logits: batch x num_classes. */
gn_status gn_session_run(gn_session *session, const float *input, float *logits, gn_error *err);

/* Output of a named tap after gn_session_run (keep_taps=1): "conv_stem" (after bn1 + ReLU),
 * "blocks.N.M" (each bottleneck, and "blocks.9.0" for the final 1x1 conv + BN + ReLU), and
 * "conv_head" (after global pooling, conv_head and ReLU: 1280 x 1 x 1). Batch-major NCHW,
 * pointing into the session's arena until the next run. */
gn_status gn_session_tap(const gn_session *session, const char *name, const float **data,
                         int *channels, int *height, int *width, gn_error *err);

/* Bytes of activation and scratch memory the plan holds. */
size_t gn_session_arena_bytes(const gn_session *session);

/* ---- building blocks on their own ---------------------------------------------------------- */

/* The paper's plug-and-play parts, usable outside GhostNet. Tensors are named as the PyTorch
 * module's state dict ("primary_conv.0.weight", "ghost1.cheap_operation.1.running_var", ...). */
typedef struct gn_block gn_block;

typedef struct gn_ghost_module_config {
    int in_chans, out_chans;
    int kernel;  /* primary conv kernel (odd) */
    int ratio;   /* s: ceil(out/s) intrinsic maps */
    int dw_size; /* d: cheap depthwise kernel (odd) */
    int stride;  /* primary conv stride */
    int relu;    /* ReLU after both branches */
} gn_ghost_module_config;

typedef struct gn_bottleneck_config {
    int in_chans, mid_chans, out_chans;
    int kernel;     /* depthwise kernel of the stride-2 conv and of the shortcut */
    int stride;     /* 1, or > 1 for a strided depthwise conv between the Ghost modules */
    float se_ratio; /* 0 for no squeeze-excite, else reduced = make_divisible(mid * ratio, 4) */
    int ratio, dw_size; /* the Ghost modules' s and d */
} gn_bottleneck_config;

gn_status gn_block_create_ghost_module(const gn_ghost_module_config *config, gn_block **out,
                                       gn_error *err);
gn_status gn_block_create_bottleneck(const gn_bottleneck_config *config, gn_block **out,
                                     gn_error *err);
void gn_block_free(gn_block *block);
gn_status gn_block_init_random(gn_block *block, uint64_t seed);
size_t gn_block_tensor_count(const gn_block *block);
gn_status gn_block_tensor(const gn_block *block, size_t index, gn_tensor_info *info);
gn_status gn_block_find_tensor(const gn_block *block, const char *name, gn_tensor_info *info);
size_t gn_block_param_count(const gn_block *block);
/* Output shape and multiply-adds for an in_h x in_w input. */
gn_status gn_block_output_shape(const gn_block *block, int in_h, int in_w, int *channels,
                                int *out_h, int *out_w);
int64_t gn_block_macs(const gn_block *block, int in_h, int in_w);

/* Inference (BN with running statistics) on batch x in_chans x h x w floats (NCHW). Plans and
 * frees its own scratch per call; for repeated runs at one size, a session is cheaper. */
gn_status gn_block_forward(const gn_block *block, int batch, int h, int w, const float *input,
                           float *output, gn_error *err);

/* ---- images ------------------------------------------------------------------------------- */

typedef struct gn_image {
    int width, height, channels; /* channels: 1 (gray) or 3 (RGB), interleaved rows */
    uint8_t *pixels;
} gn_image;

/* Decodes JPEG or PNG (sniffed from the magic bytes) to 8-bit gray or RGB. */
gn_status gn_image_load(const char *path, gn_image *out, gn_error *err);
gn_status gn_image_decode(const uint8_t *data, size_t size, gn_image *out, gn_error *err);
void gn_image_free(gn_image *image);

/* Official evaluation preprocessing, matching PIL + torchvision: shorter side to
 * pre->resize_size (PIL bilinear with antialias, 8-bit result), centre crop pre->input_size,
 * grayscale (PIL "L") when channels == 1, /255, (x - mean) / std. dst: channels x S x S. */
gn_status gn_image_preprocess(const gn_image *image, const gn_preprocess *pre, int channels,
                              float *dst, gn_error *err);

#ifdef __cplusplus
}
#endif
#endif /* GHOSTNET_H */
