/* Networks from a text description (docs/netdesc.md): the parser turns a .net file into a flat
 * program of nodes over numbered values (feature maps), with the parameter table in the
 * model's gn_arch, so that file I/O, the optimizer and the command line treat such a model like
 * the built-in GhostNet; net_graph.c runs the program forward (training or eval) and backward.
 *
 * A Ghost module is two conv nodes writing channel ranges of one value (the concat is free);
 * a residual is an ADD node over the body's and the shortcut's last values. Spatial sizes
 * depend on the input size and are worked out when a graph is planned. */
#ifndef GN_NET_H
#define GN_NET_H

#include <stddef.h>

#include "ghostnet.h"
#include "model/arch.h"
#include "ops/ops.h"

typedef enum gn_net_op {
    GN_NET_CONV,    /* conv (+ bias) (+ BN) (+ act) into a channel range of a value */
    GN_NET_SE,      /* squeeze-excite */
    GN_NET_BN,      /* BN (+ act) */
    GN_NET_ACT,     /* activation */
    GN_NET_MAXPOOL, /* k x k, stride s, no padding */
    GN_NET_AVGPOOL, /* global average pooling */
    GN_NET_LINEAR,  /* fully connected with bias (+ act) on a 1x1 map */
    GN_NET_DROPOUT,
    GN_NET_ADD      /* out = act(in + in2) */
} gn_net_op;

/* Channels [c0, c0 + channels) of value `value`. */
typedef struct gn_net_view {
    int value, c0, channels;
} gn_net_view;

typedef struct gn_net_node {
    gn_net_op op;
    char name[64]; /* the layer's parameter prefix, e.g. "layers.3.body.0.primary_conv" */
    int line;      /* line of the description that made it */
    gn_net_view in, in2, out;
    int full_out;  /* conv: output channels computed (a Ghost module's cheap conv keeps fewer) */
    int kernel, stride, groups;
    gn_act act;
    int weight, bias, bn; /* tensor indices or -1 (bn: the BN's .weight; 4 in a row) */
    int weight2, bias2;   /* SE: expand conv (weight/bias are the reduce conv) */
    int reduced;          /* SE hidden size */
    float rate;           /* dropout */
} gn_net_node;

typedef struct gn_net_value {
    int channels;
    char name[64]; /* the layer that makes it ("input" for value 0) */
    char kind[12]; /* "conv", "ghost", "se", "residual", ... */
    int ghost_init; /* a Ghost module's output: channels [0, ghost_init) are the intrinsic maps */
} gn_net_value;

typedef struct gn_net {
    char *text;         /* the description, kept so that a saved model describes itself */
    char source[128];   /* file name for messages */
    float width;        /* after the --width override */
    int divisor;
    int stem_stride, ratio, dw; /* the command-line settings it was built with (0: file's) */
    int num_nodes, num_values;
    gn_net_node *nodes;
    gn_net_value *values; /* value 0 is the input */
    int output;           /* the value holding the logits */
} gn_net;

/* Settings from outside the file; ratio/dw 0 keep the file's defaults, width <= 0 the
 * file's width. */
typedef struct gn_net_settings {
    float width;
    int in_chans, num_classes, stem_stride, ratio, dw;
} gn_net_settings;

/* Parses `text` (len bytes; need not be NUL-terminated) and builds the program and the
 * parameter table into arch (arch->config gets in_chans, num_classes, width, stem stride;
 * arch->net the program, owned by arch: free with gn_net_free). `source` names the text in
 * messages ("nets/resnet56.net:12: unknown layer 'cnv'"). */
gn_status gn_net_build(const char *text, size_t len, const char *source,
                       const gn_net_settings *settings, gn_arch *arch, gn_error *err);
void gn_net_free(gn_net *net);

/* Spatial size of every value for an input of h x w (arrays of net->num_values);
 * GN_ERR_SHAPE naming the layer when a map would vanish or a linear layer does not get 1x1. */
gn_status gn_net_spatial(const gn_net *net, int h, int w, int *value_h, int *value_w,
                         gn_error *err);

/* The value made by the layer called `name` ("layers.3.body.0"), or -1. */
int gn_net_find_value(const gn_net *net, const char *name);

/* Multiply-adds per image at h x w (docs/netdesc.md "Counting"); -1 on a shape error. */
int64_t gn_net_macs(const gn_net *net, int h, int w);

/* ---- execution (net_graph.c) ------------------------------------------------------------ */

struct gn_model;
typedef struct gn_net_graph gn_net_graph;

/* Plans a graph for `model` (whose arch->net is set) at a fixed batch and input size;
 * training = 1 also plans what the backward pass needs. threads: including the caller,
 * 0 = all cores. */
gn_status gn_net_graph_create(struct gn_model *model, int batch, int h, int w, int training,
                              int threads, uint64_t seed, gn_net_graph **out, gn_error *err);
void gn_net_graph_free(gn_net_graph *g);
/* Eval forward of n <= batch NCHW images; logits n x classes. */
gn_status gn_net_graph_eval(gn_net_graph *g, const float *input, int n, float *logits,
                            gn_error *err);
/* Training step's gradients (grads in the model's layout, zeroed here first); BN running
 * stats are updated in the model; loss/correct optional. update_running = 0 and
 * backward = 0 make it a side-effect-free loss evaluation (finite differences). */
gn_status gn_net_graph_train(gn_net_graph *g, const float *input, const int *labels,
                             float smoothing, int backward, int update_running, float *grads,
                             double *loss, int *correct, float *logits, gn_error *err);
int64_t gn_net_graph_steps(const gn_net_graph *g);
void gn_net_graph_set_steps(gn_net_graph *g, int64_t steps);
size_t gn_net_graph_bytes(const gn_net_graph *g);
/* A value's data after the last forward, batch-inner ([channel][pixel][image]) with its
 * size; for `ghostnet features`. */
gn_status gn_net_graph_value(const gn_net_graph *g, int value, const float **data, int *channels,
                             int *h, int *w);

#endif
