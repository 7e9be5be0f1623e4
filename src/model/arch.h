/* The GhostNet architecture as plain data: channel sizes, kernels, strides, and the index of
 * every parameter tensor in the model's state-dict table. Summary, inference planning, file I/O
 * (and training) all walk this one description, so the network is defined in one place. */
#ifndef GN_ARCH_H
#define GN_ARCH_H

#include <stddef.h>
#include <stdint.h>

#include "ghostnet.h"

#define GN_MAX_TENSORS 1024
#define GN_MAX_BLOCKS 17
#define GN_HEAD_CHANNELS 1280
#define GN_BN_EPS 1e-5f

/* A BN layer's four tensors sit at consecutive indices: weight, bias, running_mean,
 * running_var. */
typedef struct gn_bn_ref {
    int first; /* index of .weight */
    int channels;
} gn_bn_ref;

/* Conv2d(in -> out, kernel, stride, pad kernel/2, groups) followed by a BN (or a bias). */
typedef struct gn_conv_desc {
    int in_c, out_c, kernel, stride, groups;
    int weight;   /* tensor index of [out_c, in_c/groups, k, k] */
    int bias;     /* tensor index, or -1 */
    gn_bn_ref bn; /* bn.first = -1 when there is no BN */
} gn_conv_desc;

/* GhostModule: primary conv (in -> init) and cheap depthwise conv (init -> init*(s-1));
 * output = concat(primary, cheap)[:, :out]. */
typedef struct gn_ghost_desc {
    int in_c, out_c, init_c, new_c, kept_new; /* kept_new = out_c - init_c ghost maps kept */
    int relu;
    gn_conv_desc primary, cheap;
} gn_ghost_desc;

typedef struct gn_se_desc {
    int channels, reduced;
    int reduce_w, reduce_b, expand_w, expand_b;
} gn_se_desc;

typedef struct gn_bottleneck_desc {
    char name[16]; /* "blocks.N.M" */
    int in_c, mid_c, out_c, kernel, stride;
    gn_ghost_desc ghost1, ghost2;
    int has_dw;     /* stride > 1 */
    gn_conv_desc conv_dw;
    int has_se;
    gn_se_desc se;
    int has_projection; /* shortcut = dw conv + BN + 1x1 conv + BN, else identity */
    gn_conv_desc shortcut_dw, shortcut_pw;
} gn_bottleneck_desc;

typedef struct gn_tensor_desc {
    char name[64];
    int ndim;
    int64_t shape[4];
    size_t numel;
    size_t offset;   /* floats from the start of the model's parameter block */
    int is_param;    /* learnable (not a BN running statistic) */
    int is_bn;       /* BN weight/bias/statistic */
} gn_tensor_desc;

struct gn_net;
typedef struct gn_arch {
    gn_config config;
    /* A network from a .net description (src/net/net.h), owned; NULL for the built-in
     * GhostNet, which the fields below describe. Only the tensor table is shared. */
    struct gn_net *net;
    gn_conv_desc stem; /* conv_stem + bn1 + ReLU */
    int num_blocks;
    gn_bottleneck_desc blocks[GN_MAX_BLOCKS - 1];
    gn_conv_desc final_conv; /* blocks.9.0: 1x1 conv + bn1 + ReLU */
    gn_conv_desc head;       /* conv_head 1x1 with bias, ReLU (after global pooling) */
    int classifier_w, classifier_b;
    int num_tensors;
    gn_tensor_desc tensors[GN_MAX_TENSORS];
    size_t total_floats;
} gn_arch;

/* make_divisible(v, 4) as the reference code defines it. */
int gn_make_divisible(double v, int divisor);

/* Builds the description for a validated config. */
gn_status gn_arch_build(const gn_config *config, gn_arch *arch, gn_error *err);

/* A standalone Ghost module or bottleneck: tensors named relative to the block
 * ("primary_conv.0.weight", "ghost1.cheap_operation.1.running_var", ...). */
gn_status gn_arch_build_ghost_module(const gn_ghost_module_config *config, gn_arch *arch,
                                     gn_ghost_desc *out, gn_error *err);
gn_status gn_arch_build_bottleneck(const gn_bottleneck_config *config, gn_arch *arch,
                                   gn_bottleneck_desc *out, gn_error *err);

/* Output size of a conv with padding kernel/2. */
static inline int gn_conv_out_size(int in, int kernel, int stride) {
    return (in + 2 * (kernel / 2) - kernel) / stride + 1;
}

/* Multiply-adds of a conv for an out_h x out_w output. */
int64_t gn_conv_desc_macs(const gn_conv_desc *c, int out_h, int out_w);
/* Learnable parameters of a conv with its BN (weight, bias, gamma, beta). */
int64_t gn_conv_desc_params(const gn_conv_desc *c);

/* PyTorch-default initialisation of every tensor in a table, from a seeded generator. */
void gn_arch_init_tensors(const gn_arch *a, float *data, uint64_t seed);
void gn_arch_tensor_info(const gn_arch *a, float *data, int index, gn_tensor_info *info);
int gn_arch_find_tensor(const gn_arch *a, const char *name); /* -1 when absent */
/* Appends a tensor to the table (offset = the floats so far); -1 when the table is full or
 * the name too long. */
int gn_arch_add_tensor(gn_arch *a, const char *name, int ndim, const int64_t *shape,
                       int is_param, int is_bn);
size_t gn_arch_param_count(const gn_arch *a);

/* Sizes of the parts (multiply-adds per image). A Ghost module's out_h x out_w is that of its
 * primary conv; a bottleneck takes its input size. */
int64_t gn_ghost_macs(const gn_ghost_desc *g, int out_h, int out_w);
int64_t gn_ghost_params(const gn_ghost_desc *g);
int64_t gn_se_macs(const gn_se_desc *s);
int64_t gn_se_params(const gn_se_desc *s);
int64_t gn_bottleneck_macs(const gn_bottleneck_desc *b, int h, int w);

/* A conv's first out_c output channels with its BN folded in (or its bias copied):
 * w_out [out_c][in_c/groups][k][k], b_out [out_c]. */
void gn_conv_fold_bn(const gn_arch *a, const float *data, const gn_conv_desc *c, int out_c,
                     float *w_out, float *b_out);

#endif
