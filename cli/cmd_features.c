/* ghostnet features: Figure 1 of the GhostNet paper for a model made from a .net description.
 * One image goes through the network; a Ghost module's intrinsic maps are drawn beside the
 * ghost maps its cheap depthwise operation made from them, with the Pearson correlation of
 * each pair, and a vanilla conv layer's maps below for comparison. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "io/plot.h"
#include "model/model_internal.h"
#include "net/net.h"

static const char kHelp[] =
    "usage: ghostnet features --weights FILE [--layer NAME] [--compare NAME|none] [--out FILE]\n"
    "                         [--max-maps N] IMAGE\n"
    "Figure 1 of the GhostNet paper: runs IMAGE (JPEG or PNG, with the model's evaluation\n"
    "preprocessing) through a network made from a .net description and shows a Ghost module's\n"
    "intrinsic feature maps beside the ghost maps its cheap depthwise operation makes from\n"
    "them, and a vanilla conv layer's maps for comparison.\n\n"
    "Prints the Pearson correlation (over pixels) of each intrinsic map with each of its ghost\n"
    "maps, then: the mean |corr| of all intrinsic-ghost pairs; as a baseline, the mean over\n"
    "intrinsic maps of the largest |corr| with another intrinsic map; and for the compared\n"
    "layer, the mean over its maps of the largest |corr| with another of its maps (the paper's\n"
    "observation: many maps of a vanilla conv have a near-duplicate). A constant map (e.g. dead\n"
    "after ReLU) has corr 0 with everything; the summaries say how many there are.\n\n"
    "Writes an 8-bit gray PNG: one row per intrinsic map j: map j, a gap, then its ghost maps;\n"
    "below, after a wider gap, the compared layer's first maps in rows of the same width. Each\n"
    "map is min-max scaled to 0..255 on its own (a constant map is mid gray) and enlarged by\n"
    "an integer factor, ceil(48 / its larger side), to at least 48 pixels.\n\n"
    "options:\n"
    "  --weights FILE    model file of a .net network (required)\n"
    "  --layer NAME      Ghost module to show, e.g. layers.3.body.0 (default: the first one\n"
    "                    whose maps are at least 7x7, else the first one)\n"
    "  --compare NAME    layer to compare with, or 'none' (default: the first conv layer)\n"
    "  --out FILE        PNG to write (default features.png; written atomically)\n"
    "  --max-maps N      intrinsic maps to show and tabulate, and maps of the compared layer\n"
    "                    to draw, 1..256 (default 16); the summaries cover every map\n"
    "  --help            this text\n";

/* Picture layout, in pixels. */
enum {
    kBorder = 2,      /* white margin around everything */
    kGap = 2,         /* between maps */
    kSeparator = 8,   /* between an intrinsic map and its ghost maps */
    kBlockGap = 16,   /* between the Ghost module's rows and the compared layer's block */
    kMinSide = 48,    /* maps are enlarged to at least this */
    kMaxMaps = 256,
    kMaxPngSide = 1 << 16,
};
#define kMaxPixels ((size_t)1 << 28)

/* The maps of one layer, centred and scaled to unit norm (all zero when constant), so that
 * the Pearson correlation of maps i and j is the dot product of rows i and j. */
typedef struct layer_maps {
    int value, channels, h, w;
    const float *data; /* CHW, in the graph */
    double *unit;      /* channels x h*w */
    int constant;      /* how many maps are constant */
    unsigned char *is_constant;
} layer_maps;

static void layer_maps_free(layer_maps *m) {
    free(m->unit);
    free(m->is_constant);
}

static int layer_maps_fill(const gn_net_graph *g, int value, layer_maps *m) {
    memset(m, 0, sizeof *m);
    m->value = value;
    if (gn_net_graph_value(g, value, &m->data, &m->channels, &m->h, &m->w) != GN_OK) return -1;
    const size_t n = (size_t)m->h * m->w;
    m->unit = malloc((size_t)m->channels * n * sizeof *m->unit);
    m->is_constant = calloc((size_t)m->channels, 1);
    if (!m->unit || !m->is_constant) return -1;
    for (int c = 0; c < m->channels; c++) {
        const float *x = m->data + (size_t)c * n;
        double *u = m->unit + (size_t)c * n;
        float lo = x[0], hi = x[0];
        double sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
            sum += x[i];
        }
        const double mean = sum / (double)n;
        double ss = 0.0;
        for (size_t i = 0; i < n; i++) {
            u[i] = (double)x[i] - mean;
            ss += u[i] * u[i];
        }
        if (!(lo < hi) || !(ss > 0.0) || !isfinite(ss)) {
            m->is_constant[c] = 1;
            m->constant++;
            for (size_t i = 0; i < n; i++) u[i] = 0.0;
        } else {
            const double inv = 1.0 / sqrt(ss);
            for (size_t i = 0; i < n; i++) u[i] *= inv;
        }
    }
    return 0;
}

static double corr(const layer_maps *m, int i, int j) {
    const size_t n = (size_t)m->h * m->w;
    const double *a = m->unit + (size_t)i * n, *b = m->unit + (size_t)j * n;
    double s = 0.0;
    for (size_t k = 0; k < n; k++) s += a[k] * b[k];
    return s > 1.0 ? 1.0 : (s < -1.0 ? -1.0 : s);
}

/* Largest |corr| of map i with any other map among [0, count); *arg the other map. */
static double max_abs_corr(const layer_maps *m, int i, int count, int *arg) {
    double best = 0.0;
    *arg = -1;
    for (int j = 0; j < count; j++) {
        if (j == i) continue;
        double r = fabs(corr(m, i, j));
        if (*arg < 0 || r > best) {
            best = r;
            *arg = j;
        }
    }
    return best;
}

/* Map c of m, min-max scaled and enlarged `scale` times, into the picture at (x0, y0). */
static void draw_map(const layer_maps *m, int c, int scale, uint8_t *pix, int stride, int x0,
                     int y0) {
    const size_t n = (size_t)m->h * m->w;
    const float *x = m->data + (size_t)c * n;
    float lo = x[0], hi = x[0];
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    const double range = (double)hi - (double)lo;
    for (int y = 0; y < m->h * scale; y++) {
        uint8_t *row = pix + (size_t)(y0 + y) * stride + x0;
        for (int xx = 0; xx < m->w * scale; xx++) {
            double v = x[(size_t)(y / scale) * m->w + xx / scale];
            int g = 128;
            if (m->is_constant[c] || !(range > 0.0) || !isfinite(range)) g = 128;
            else g = (int)lrint((v - lo) / range * 255.0);
            row[xx] = (uint8_t)(g < 0 ? 0 : (g > 255 ? 255 : g));
        }
    }
}

static int scale_for(int h, int w) {
    int side = h > w ? h : w;
    return side >= kMinSide ? 1 : (kMinSide + side - 1) / side;
}

/* "a, b, c, ... (N in all)" of the ghost layers, for messages. */
static void ghost_names(const gn_net *net, char *buf, size_t cap) {
    int count = 0;
    size_t used = 0;
    buf[0] = '\0';
    for (int v = 0; v < net->num_values; v++) {
        if (strcmp(net->values[v].kind, "ghost") != 0) continue;
        if (count < 5 && used < cap) {
            int k = snprintf(buf + used, cap - used, "%s%s", count ? ", " : "", net->values[v].name);
            if (k > 0) used += (size_t)k;
        }
        count++;
    }
    if (count > 5 && used < cap) snprintf(buf + used, cap - used, ", ... (%d in all)", count);
}

/* The cheap operation of Ghost module `value`: its ghost maps per intrinsic map (ratio - 1),
 * its kernel, or -1. */
static int cheap_per_intrinsic(const gn_net *net, int value, int init, int *kernel) {
    for (int i = 0; i < net->num_nodes; i++) {
        const gn_net_node *d = &net->nodes[i];
        if (d->op == GN_NET_CONV && d->in.value == value && d->in.c0 == 0 &&
            d->out.value == value && d->out.c0 == init && init > 0 && d->full_out % init == 0 &&
            d->full_out / init >= 1) {
            *kernel = d->kernel;
            return d->full_out / init;
        }
    }
    return -1;
}

/* Groups of the node that writes value v (1 for a plain conv), or 0. */
static int groups_of(const gn_net *net, int v) {
    for (int i = 0; i < net->num_nodes; i++)
        if (net->nodes[i].op == GN_NET_CONV && net->nodes[i].out.value == v)
            return net->nodes[i].groups;
    return 0;
}

int cmd_features(int argc, char **argv) {
    const char *cmd = "features";
    const char *weights = NULL, *layer = NULL, *compare = NULL, *out = "features.png";
    const char *image_path = NULL;
    long max_maps = 16;
    int i = 1;
    for (; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0) {
            fputs(kHelp, stdout);
            return 0;
        } else if (strcmp(argv[i], "--weights") == 0) {
            if (!(weights = cli_value(cmd, argc, argv, &i))) return 1;
        } else if (strcmp(argv[i], "--layer") == 0) {
            if (!(layer = cli_value(cmd, argc, argv, &i))) return 1;
        } else if (strcmp(argv[i], "--compare") == 0) {
            if (!(compare = cli_value(cmd, argc, argv, &i))) return 1;
        } else if (strcmp(argv[i], "--out") == 0) {
            if (!(out = cli_value(cmd, argc, argv, &i))) return 1;
            if (!*out) return cli_error(cmd, "--out needs a file name");
        } else if (strcmp(argv[i], "--max-maps") == 0) {
            if (!(v = cli_value(cmd, argc, argv, &i)) ||
                cli_parse_int(cmd, "--max-maps", v, 1, kMaxMaps, &max_maps))
                return 1;
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_error(cmd, "unknown option '%s' (see --help)", argv[i]);
        } else {
            break;
        }
    }
    if (i < argc) image_path = argv[i++];
    if (i < argc) return cli_error(cmd, "one IMAGE expected, got also '%s'", argv[i]);
    if (!weights) return cli_error(cmd, "--weights is required");
    if (!image_path) return cli_error(cmd, "no IMAGE given");

    gn_error err = {0};
    gn_model *model = NULL;
    gn_image img = {0};
    gn_net_graph *graph = NULL;
    float *input = NULL, *logits = NULL;
    int *vh = NULL, *vw = NULL;
    uint8_t *pix = NULL;
    layer_maps gm = {0}, cm = {0};
    int rc = 1;

    if (gn_model_load(weights, NULL, &model, &err) != GN_OK) {
        cli_error(cmd, "%s", err.message);
        goto done;
    }
    const gn_net *net = model->arch->net;
    if (!net) {
        cli_error(cmd, "%s: not a .net model (features needs a network made from a .net "
                  "description, e.g. 'ghostnet init --net FILE')", weights);
        goto done;
    }
    const gn_config *config = gn_model_config(model);
    const gn_preprocess *pre = gn_model_preprocess(model);
    const int chans = config->in_chans, size = pre->input_size;
    if (chans != 1 && chans != 3) {
        cli_error(cmd, "%s: images need a 1- or 3-channel model, this one has %d", weights, chans);
        goto done;
    }
    char names[384];
    ghost_names(net, names, sizeof names);
    if (!names[0]) {
        cli_error(cmd, "%s: the network has no Ghost module", weights);
        goto done;
    }
    vh = malloc((size_t)net->num_values * sizeof *vh);
    vw = malloc((size_t)net->num_values * sizeof *vw);
    if (!vh || !vw) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    if (gn_net_spatial(net, size, size, vh, vw, &err) != GN_OK) {
        cli_error(cmd, "%s: %s", weights, err.message);
        goto done;
    }

    /* The Ghost module. */
    int gv = -1;
    if (layer) {
        gv = gn_net_find_value(net, layer);
        if (gv < 0) {
            cli_error(cmd, "%s: no layer '%s'; Ghost modules: %s", weights, layer, names);
            goto done;
        }
        if (strcmp(net->values[gv].kind, "ghost") != 0) {
            cli_error(cmd, "%s: layer '%s' is a %s layer, not a Ghost module; Ghost modules: %s",
                      weights, layer, net->values[gv].kind, names);
            goto done;
        }
    } else {
        for (int v = 0; v < net->num_values && gv < 0; v++)
            if (strcmp(net->values[v].kind, "ghost") == 0 && vh[v] >= 7 && vw[v] >= 7) gv = v;
        for (int v = 0; v < net->num_values && gv < 0; v++)
            if (strcmp(net->values[v].kind, "ghost") == 0) gv = v;
    }
    const int channels = net->values[gv].channels, init = net->values[gv].ghost_init;
    int cheap_kernel = 0;
    const int per = cheap_per_intrinsic(net, gv, init, &cheap_kernel);
    if (init < 1 || init >= channels || per < 1) {
        cli_error(cmd, "%s: layer '%s' has no cheap operation this command understands", weights,
                  net->values[gv].name);
        goto done;
    }

    /* The compared layer: the first plain conv (groups 1), else the first conv of any kind. */
    int cv = -1;
    if (compare && strcmp(compare, "none") != 0) {
        cv = gn_net_find_value(net, compare);
        if (cv < 0) {
            cli_error(cmd, "%s: no layer '%s' to compare with", weights, compare);
            goto done;
        }
    } else if (!compare) {
        for (int v = 1; v < net->num_values && cv < 0; v++)
            if (strcmp(net->values[v].kind, "conv") == 0 && groups_of(net, v) == 1) cv = v;
        for (int v = 1; v < net->num_values && cv < 0; v++)
            if (strcmp(net->values[v].kind, "conv") == 0) cv = v;
    }

    /* The image, then one forward pass. */
    if (gn_image_load(image_path, &img, &err) != GN_OK) {
        cli_error(cmd, "%s", err.message);
        goto done;
    }
    input = malloc((size_t)chans * size * size * sizeof *input);
    logits = malloc((size_t)config->num_classes * sizeof *logits);
    if (!input || !logits) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    if (gn_image_preprocess(&img, pre, chans, input, &err) != GN_OK) {
        cli_error(cmd, "%s: %s", image_path, err.message);
        goto done;
    }
    if (gn_net_graph_create(model, 1, size, size, 0, 1, 0, &graph, &err) != GN_OK ||
        gn_net_graph_eval(graph, input, 1, logits, &err) != GN_OK) {
        cli_error(cmd, "%s", err.message);
        goto done;
    }
    if (layer_maps_fill(graph, gv, &gm) || (cv >= 0 && layer_maps_fill(graph, cv, &cm))) {
        cli_error(cmd, "out of memory for the feature maps");
        goto done;
    }

    /* Layout. */
    const int rows = init < max_maps ? init : (int)max_maps;
    const int gs = scale_for(gm.h, gm.w), gw = gm.w * gs, gh = gm.h * gs;
    const int cs = cv >= 0 ? scale_for(cm.h, cm.w) : 1;
    const int cw = cv >= 0 ? cm.w * cs : 0, ch = cv >= 0 ? cm.h * cs : 0;
    const int shown = cv >= 0 ? (cm.channels < max_maps ? cm.channels : (int)max_maps) : 0;
    int64_t width = 2 * kBorder + gw + kSeparator + (int64_t)per * gw + (int64_t)(per - 1) * kGap;
    if (cv >= 0 && 2 * kBorder + cw > width) width = 2 * kBorder + cw;
    const int per_row =
        cv >= 0 ? (int)((width - 2 * kBorder + kGap) / (cw + kGap)) : 1;
    const int crows = cv >= 0 ? (shown + per_row - 1) / per_row : 0;
    int64_t height = 2 * kBorder + (int64_t)rows * gh + (int64_t)(rows - 1) * kGap;
    if (cv >= 0) height += kBlockGap + (int64_t)crows * ch + (int64_t)(crows - 1) * kGap;
    if (width > kMaxPngSide || height > kMaxPngSide || (size_t)width * (size_t)height > kMaxPixels) {
        cli_error(cmd, "the picture would be %lldx%lld pixels, too large; lower --max-maps",
                  (long long)width, (long long)height);
        goto done;
    }
    pix = malloc((size_t)width * (size_t)height);
    if (!pix) {
        cli_error(cmd, "out of memory for a %lldx%lld picture", (long long)width, (long long)height);
        goto done;
    }
    memset(pix, 255, (size_t)width * (size_t)height);
    const int stride = (int)width;
    for (int j = 0; j < rows; j++) {
        const int y0 = kBorder + j * (gh + kGap);
        draw_map(&gm, j, gs, pix, stride, kBorder, y0);
        for (int k = 0; k < per; k++) {
            const int c = init + j * per + k;
            if (c >= channels) break;
            draw_map(&gm, c, gs, pix, stride, kBorder + gw + kSeparator + k * (gw + kGap), y0);
        }
    }
    if (cv >= 0) {
        const int top = kBorder + rows * gh + (rows - 1) * kGap + kBlockGap;
        for (int c = 0; c < shown; c++)
            draw_map(&cm, c, cs, pix, stride, kBorder + (c % per_row) * (cw + kGap),
                     top + (c / per_row) * (ch + kGap));
    }
    if (gn_png_write(out, (int)width, (int)height, 1, pix, &err) != GN_OK) {
        cli_error(cmd, "%s", err.message);
        goto done;
    }

    /* Report (only once the picture is written). */
    const gn_net_value *gval = &net->values[gv];
    printf("ghost layer %s: %d maps of %dx%d: %d intrinsic, %d ghost maps (%d per intrinsic map, "
           "cheap %dx%d depthwise conv)\n",
           gval->name, channels, gm.h, gm.w, init, channels - init, per, cheap_kernel,
           cheap_kernel);
    printf("  intrinsic  ghost   corr\n");
    for (int j = 0; j < rows; j++) {
        if (init + j * per >= channels) printf("  %9d      -  (its ghost maps are cut off)\n", j);
        for (int k = 0; k < per; k++) {
            const int c = init + j * per + k;
            if (c >= channels) break;
            printf("  %9d  %5d  %+.3f%s%s\n", j, c, corr(&gm, j, c),
                   gm.is_constant[j] ? "  (intrinsic constant)" : "",
                   gm.is_constant[c] ? "  (ghost constant)" : "");
        }
    }
    if (rows < init) printf("  ... (%d more intrinsic maps, in the summary below)\n", init - rows);
    double pair_sum = 0.0, base_sum = 0.0;
    int pairs = 0, arg;
    for (int c = init; c < channels; c++, pairs++) pair_sum += fabs(corr(&gm, (c - init) / per, c));
    for (int j = 0; j < init && init > 1; j++) base_sum += max_abs_corr(&gm, j, init, &arg);
    printf("intrinsic-ghost pairs: mean |corr| %.3f over %d pairs\n", pair_sum / pairs, pairs);
    if (init > 1)
        printf("baseline, intrinsic maps: mean max |corr| with another intrinsic map %.3f\n",
               base_sum / init);
    else
        printf("baseline, intrinsic maps: n/a (one intrinsic map)\n");
    int ghost_const = 0;
    for (int j = 0; j < init; j++) ghost_const += gm.is_constant[j];
    printf("constant maps: %d of %d intrinsic, %d of %d ghost\n", ghost_const, init,
           gm.constant - ghost_const, channels - init);
    if (cv >= 0) {
        const gn_net_value *cval = &net->values[cv];
        printf("\ncompared layer %s (%s): %d maps of %dx%d\n", cval->name, cval->kind,
               cm.channels, cm.h, cm.w);
        if (cm.channels > 1) {
            printf("  map  most similar  |corr|\n");
            double sum = 0.0;
            for (int c = 0; c < cm.channels; c++) {
                double r = max_abs_corr(&cm, c, cm.channels, &arg);
                sum += r;
                if (c < max_maps) printf("  %3d  %12d  %.3f%s\n", c, arg, r,
                                         cm.is_constant[c] ? "  (constant)" : "");
            }
            if (cm.channels > max_maps)
                printf("  ... (%d more maps, in the summary below)\n", cm.channels - (int)max_maps);
            printf("%s: mean over maps of max |corr| with another map %.3f\n", cval->name,
                   sum / cm.channels);
        } else {
            printf("%s: one map, nothing to compare\n", cval->name);
        }
        printf("constant maps: %d of %d\n", cm.constant, cm.channels);
    }
    printf("\nwrote %s (%lldx%lld): rows: intrinsic map j | its ghost maps, j = 0..%d",
           out, (long long)width, (long long)height, rows - 1);
    if (cv >= 0)
        printf("; bottom block: %s maps 0..%d, %d per row", net->values[cv].name, shown - 1,
               per_row);
    printf("\n  maps %dx%d shown x%d", gm.h, gm.w, gs);
    if (cv >= 0) printf(" (%s: %dx%d x%d)", net->values[cv].name, cm.h, cm.w, cs);
    printf("; each min-max scaled on its own, constant maps mid gray\n");
    rc = 0;
done:
    layer_maps_free(&gm);
    layer_maps_free(&cm);
    free(pix);
    gn_net_graph_free(graph);
    free(input);
    free(logits);
    free(vh);
    free(vw);
    gn_image_free(&img);
    gn_model_free(model);
    return rc;
}
