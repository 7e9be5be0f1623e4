/* The .net description (docs/netdesc.md): lines -> a small syntax tree -> a flat program of
 * nodes and the parameter table. Every value read from the text is range-checked here, so
 * the graph code can trust the program; errors name the source and the line. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "net/net.h"

enum {
    kMaxWords = 24,
    kMaxWord = 48,
    kMaxDepth = 16,
    kMaxNodes = 8192,
    kMaxChannels = 65536,
    kMaxRepeat = 1000,
    kMaxText = 1 << 20
};

/* ---- syntax tree -------------------------------------------------------------------------- */

typedef enum layer_kind {
    L_CONV, L_DWCONV, L_GHOST, L_SE, L_BN, L_ACT, L_MAXPOOL, L_AVGPOOL, L_LINEAR, L_DROPOUT,
    L_RESIDUAL, L_REPEAT
} layer_kind;

typedef struct layer layer;
typedef struct layer_list {
    layer *items;
    int n, cap;
} layer_list;

struct layer {
    layer_kind kind;
    int line;
    int channels;    /* as written */
    int fixed;       /* "C!": not scaled */
    int classes;     /* "classes" */
    int k, s;        /* s = -1: the stem stride */
    int groups, mult, ratio, dw, bias, bn;
    gn_act act;
    double ratio_f;  /* se */
    int divisor;     /* se */
    double rate;     /* dropout */
    int count;       /* repeat */
    layer_list body, shortcut;
    int has_shortcut;
};

typedef struct parser {
    const char *text;
    size_t len, pos;
    int line;       /* of the current line */
    int depth;
    char words[kMaxWords][kMaxWord];
    int num_words;
    int have_line;  /* words hold a line not consumed yet */
    double width;
    int divisor, have_width, have_layer;
    const char *source;
    gn_error *err;
    gn_status status;
} parser;

static gn_status fail_at(parser *p, int line, gn_status code, const char *fmt, const char *a,
                         const char *b) {
    char what[256];
    snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
    p->status = gn_fail(p->err, code, "%s:%d: %s", p->source, line, what);
    return p->status;
}

static void list_free(layer_list *l) {
    for (int i = 0; i < l->n; i++) {
        list_free(&l->items[i].body);
        list_free(&l->items[i].shortcut);
    }
    free(l->items);
    l->items = NULL;
    l->n = l->cap = 0;
}

static layer *list_push(layer_list *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 8;
        layer *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return NULL;
        l->items = items;
        l->cap = cap;
    }
    layer *it = &l->items[l->n++];
    memset(it, 0, sizeof *it);
    return it;
}

/* Reads the next non-empty line into words; 0 at the end of the text. */
static int next_line(parser *p) {
    if (p->have_line) return 1;
    while (p->pos < p->len && p->status == GN_OK) {
        size_t start = p->pos, end = start;
        while (end < p->len && p->text[end] != '\n') end++;
        p->pos = end < p->len ? end + 1 : end;
        p->line++;
        p->num_words = 0;
        size_t i = start;
        while (i < end) {
            char c = p->text[i];
            if (c == '#') break;
            if (c == ' ' || c == '\t' || c == '\r') {
                i++;
                continue;
            }
            size_t w0 = i;
            while (i < end && p->text[i] != ' ' && p->text[i] != '\t' && p->text[i] != '\r' &&
                   p->text[i] != '#')
                i++;
            size_t n = i - w0;
            if (p->num_words == kMaxWords) {
                fail_at(p, p->line, GN_ERR_FORMAT, "too many words on one line", NULL, NULL);
                return 0;
            }
            if (n >= kMaxWord) {
                fail_at(p, p->line, GN_ERR_FORMAT, "word too long", NULL, NULL);
                return 0;
            }
            for (size_t j = 0; j < n; j++) {
                unsigned char ch = (unsigned char)p->text[w0 + j];
                if (ch < 0x20 || ch > 0x7e) {
                    fail_at(p, p->line, GN_ERR_FORMAT, "unexpected byte (not printable ASCII)",
                            NULL, NULL);
                    return 0;
                }
            }
            memcpy(p->words[p->num_words], p->text + w0, n);
            p->words[p->num_words][n] = '\0';
            p->num_words++;
        }
        if (p->num_words > 0) {
            p->have_line = 1;
            return 1;
        }
    }
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    if (!*s || !(isdigit((unsigned char)*s) || *s == '-')) return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int parse_real(const char *s, double lo, double hi, int open_hi, double *out) {
    if (!*s) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < lo || v > hi || (open_hi && v >= hi)) return 0;
    *out = v;
    return 1;
}

static int act_of(const char *w, gn_act *act) {
    static const struct {
        const char *name;
        gn_act act;
    } kActs[] = {{"relu", GN_ACT_RELU},
                 {"relu6", GN_ACT_RELU6},
                 {"hswish", GN_ACT_HSWISH},
                 {"hsigmoid", GN_ACT_HSIGMOID}};
    for (size_t i = 0; i < sizeof kActs / sizeof kActs[0]; i++)
        if (strcmp(w, kActs[i].name) == 0) {
            *act = kActs[i].act;
            return 1;
        }
    return 0;
}

/* "C", "C!" or "classes". */
static int parse_channels(parser *p, const char *w, layer *l) {
    if (strcmp(w, "classes") == 0) {
        l->classes = 1;
        return 1;
    }
    char buf[kMaxWord];
    snprintf(buf, sizeof buf, "%s", w);
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '!') {
        l->fixed = 1;
        buf[n - 1] = '\0';
    }
    long v;
    if (!parse_int(buf, 1, kMaxChannels, &v)) {
        fail_at(p, l->line, GN_ERR_FORMAT, "bad channel count '%s' (want 1..65536, C! or classes)",
                w, NULL);
        return 0;
    }
    l->channels = (int)v;
    return 1;
}

/* Options after the layer word (and its argument). `allowed` lists the keys and flags this
 * layer takes, e.g. "k s groups bias bn act". */
static int parse_options(parser *p, layer *l, int first, const char *allowed) {
    for (int i = first; i < p->num_words; i++) {
        const char *w = p->words[i];
        const char *eq = strchr(w, '=');
        char key[kMaxWord];
        size_t kn = eq ? (size_t)(eq - w) : strlen(w);
        if (kn == 0) { /* "=3": no name to look up */
            fail_at(p, l->line, GN_ERR_FORMAT, "option '%s' has no name", w, NULL);
            return 0;
        }
        memcpy(key, w, kn);
        key[kn] = '\0';
        const char *val = eq ? eq + 1 : NULL;
        gn_act act = GN_ACT_NONE;
        /* is the key one this layer takes? */
        char want[kMaxWord];
        snprintf(want, sizeof want, "%s", act_of(key, &act) && !val ? "act" : key);
        const char *hit = strstr(allowed, want);
        size_t wl = strlen(want);
        int ok = 0;
        while (hit) {
            if ((hit == allowed || hit[-1] == ' ') && (hit[wl] == ' ' || hit[wl] == '\0')) {
                ok = 1;
                break;
            }
            hit = strstr(hit + 1, want);
        }
        if (!ok) {
            fail_at(p, l->line, GN_ERR_FORMAT, "unknown option '%s' for %s", w, p->words[0]);
            return 0;
        }
        long v = 0;
        double d = 0;
        int good = 1;
        if (strcmp(want, "act") == 0) {
            l->act = act;
        } else if (strcmp(key, "bias") == 0 || strcmp(key, "bn") == 0) {
            good = !val;
            if (key[1] == 'i') l->bias = 1;
            else l->bn = 1;
        } else if (!val) {
            good = 0;
        } else if (strcmp(key, "k") == 0) {
            good = parse_int(val, 1, 15, &v) && (v % 2 == 1 || l->kind == L_MAXPOOL);
            if (!good) {
                fail_at(p, l->line, GN_ERR_FORMAT,
                        l->kind == L_MAXPOOL ? "pooling window '%s' must be 1..15"
                                             : "kernel '%s' must be odd, 1..15",
                        val, NULL);
                return 0;
            }
            l->k = (int)v;
        } else if (strcmp(key, "s") == 0) {
            if (strcmp(val, "stem") == 0) {
                l->s = -1;
            } else {
                good = parse_int(val, 1, 8, &v);
                l->s = (int)v;
            }
        } else if (strcmp(key, "groups") == 0) {
            good = parse_int(val, 1, kMaxChannels, &v);
            l->groups = (int)v;
        } else if (strcmp(key, "mult") == 0) {
            good = parse_int(val, 1, 64, &v);
            l->mult = (int)v;
        } else if (strcmp(key, "ratio") == 0 && l->kind == L_GHOST) {
            good = parse_int(val, 2, 16, &v);
            if (!good) {
                fail_at(p, l->line, GN_ERR_FORMAT, "ghost ratio '%s' must be 2..16", val, NULL);
                return 0;
            }
            l->ratio = (int)v;
        } else if (strcmp(key, "ratio") == 0) {
            good = parse_real(val, 1e-6, 1.0, 0, &d);
            l->ratio_f = d;
        } else if (strcmp(key, "dw") == 0) {
            good = parse_int(val, 1, 15, &v) && v % 2 == 1;
            if (!good) {
                fail_at(p, l->line, GN_ERR_FORMAT, "dw kernel '%s' must be odd, 1..15", val,
                        NULL);
                return 0;
            }
            l->dw = (int)v;
        } else if (strcmp(key, "divisor") == 0) {
            good = parse_int(val, 1, 64, &v);
            l->divisor = (int)v;
        } else {
            good = 0;
        }
        if (!good) {
            fail_at(p, l->line, GN_ERR_FORMAT, "bad value in '%s'%s", w,
                    val ? "" : " (a value is needed: key=value)");
            return 0;
        }
    }
    return 1;
}

static int parse_list(parser *p, layer_list *out, int in_block);

/* One line that starts a layer (the words are loaded). */
static int parse_layer(parser *p, layer_list *out) {
    const char *w0 = p->words[0];
    layer *l = list_push(out);
    if (!l) {
        p->status = gn_fail(p->err, GN_ERR_NOMEM, "%s: out of memory", p->source);
        return 0;
    }
    l->line = p->line;
    l->k = 1;
    l->s = 1;
    l->groups = 1;
    l->mult = 1;
    l->ratio_f = 0.25;
    l->divisor = 4;
    p->have_line = 0;
    p->have_layer = 1;
    gn_act act;
    int need_arg = 0;
    const char *opts = "";
    if (strcmp(w0, "conv") == 0) {
        l->kind = L_CONV, need_arg = 1, opts = "k s groups bias bn act";
    } else if (strcmp(w0, "dwconv") == 0) {
        l->kind = L_DWCONV, opts = "k s mult bn act";
    } else if (strcmp(w0, "ghost") == 0) {
        l->kind = L_GHOST, need_arg = 1, opts = "k s ratio dw act";
    } else if (strcmp(w0, "se") == 0) {
        l->kind = L_SE, opts = "ratio divisor";
    } else if (strcmp(w0, "bn") == 0) {
        l->kind = L_BN, opts = "act";
    } else if (act_of(w0, &act)) {
        l->kind = L_ACT, l->act = act;
    } else if (strcmp(w0, "maxpool") == 0) {
        l->kind = L_MAXPOOL, opts = "k s";
        l->k = 2;
        l->s = 0;
    } else if (strcmp(w0, "avgpool") == 0) {
        l->kind = L_AVGPOOL;
    } else if (strcmp(w0, "linear") == 0) {
        l->kind = L_LINEAR, need_arg = 1, opts = "act";
    } else if (strcmp(w0, "dropout") == 0) {
        l->kind = L_DROPOUT;
        if (p->num_words != 2 || !parse_real(p->words[1], 0.0, 1.0, 1, &l->rate)) {
            fail_at(p, l->line, GN_ERR_FORMAT, "dropout wants one rate in [0, 1)", NULL, NULL);
            return 0;
        }
        return 1;
    } else if (strcmp(w0, "residual") == 0 || strcmp(w0, "repeat") == 0) {
        int is_repeat = strcmp(w0, "repeat") == 0;
        l->kind = is_repeat ? L_REPEAT : L_RESIDUAL;
        long n = 1;
        if (p->num_words != (is_repeat ? 2 : 1) ||
            (is_repeat && !parse_int(p->words[1], 1, kMaxRepeat, &n))) {
            fail_at(p, l->line, GN_ERR_FORMAT,
                    is_repeat ? "repeat wants one count, 1..1000" : "residual takes no options",
                    NULL, NULL);
            return 0;
        }
        l->count = (int)n;
        if (p->depth >= kMaxDepth) {
            fail_at(p, l->line, GN_ERR_FORMAT, "blocks nested too deeply", NULL, NULL);
            return 0;
        }
        p->depth++;
        int line = l->line;
        layer_list body = {0}, shortcut = {0};
        int ok = parse_list(p, &body, 1);
        /* `out` may have moved while the body was parsed: find the layer again */
        l = &out->items[out->n - 1];
        l->body = body;
        if (!ok) return 0;
        if (body.n == 0) {
            fail_at(p, line, GN_ERR_FORMAT, "%s has an empty body", w0, NULL);
            return 0;
        }
        if (strcmp(p->words[0], "shortcut") == 0) {
            if (is_repeat) {
                fail_at(p, p->line, GN_ERR_FORMAT, "shortcut outside a residual", NULL, NULL);
                return 0;
            }
            if (p->num_words != 1) {
                fail_at(p, p->line, GN_ERR_FORMAT, "shortcut takes no options", NULL, NULL);
                return 0;
            }
            p->have_line = 0;
            ok = parse_list(p, &shortcut, 1);
            l = &out->items[out->n - 1];
            l->shortcut = shortcut;
            l->has_shortcut = 1;
            if (!ok) return 0;
            if (strcmp(p->words[0], "end") != 0) {
                fail_at(p, p->line, GN_ERR_FORMAT, "a second shortcut section", NULL, NULL);
                return 0;
            }
        }
        /* words hold the `end` line */
        if (p->num_words > 2 || (p->num_words == 2 && (is_repeat || !act_of(p->words[1], &act)))) {
            fail_at(p, p->line, GN_ERR_FORMAT, "bad 'end' line (end, or end ACT after a residual)",
                    NULL, NULL);
            return 0;
        }
        if (p->num_words == 2) l->act = act;
        p->have_line = 0;
        p->depth--;
        return 1;
    } else {
        fail_at(p, l->line, GN_ERR_FORMAT, "unknown layer '%s'", w0, NULL);
        return 0;
    }
    if (need_arg) {
        if (p->num_words < 2 || strchr(p->words[1], '=')) {
            fail_at(p, l->line, GN_ERR_FORMAT, "%s needs a channel count", w0, NULL);
            return 0;
        }
        if (!parse_channels(p, p->words[1], l)) return 0;
    }
    if (!parse_options(p, l, need_arg ? 2 : 1, opts)) return 0;
    if (l->kind == L_MAXPOOL && l->s == 0) l->s = l->k;
    if (l->kind == L_MAXPOOL && l->s < 0) {
        fail_at(p, l->line, GN_ERR_FORMAT, "maxpool stride must be a number", NULL, NULL);
        return 0;
    }
    return 1;
}

/* Layers until the end of the text (in_block 0) or an `end` / `shortcut` line, which is left
 * loaded for the caller. */
static int parse_list(parser *p, layer_list *out, int in_block) {
    while (next_line(p)) {
        const char *w0 = p->words[0];
        if (strcmp(w0, "end") == 0 || strcmp(w0, "shortcut") == 0) {
            if (!in_block) {
                fail_at(p, p->line, GN_ERR_FORMAT,
                        w0[0] == 'e' ? "'end' without a block" : "shortcut outside a residual",
                        NULL, NULL);
                return 0;
            }
            return 1;
        }
        if (strcmp(w0, "width") == 0) {
            long d = 1;
            if (p->have_width || p->have_layer) {
                fail_at(p, p->line, GN_ERR_FORMAT, "width must come once, before the layers",
                        NULL, NULL);
                return 0;
            }
            if (!((p->num_words == 2 || (p->num_words == 4 && strcmp(p->words[2], "divisor") == 0 &&
                                         parse_int(p->words[3], 1, 64, &d))) &&
                  parse_real(p->words[1], 1e-3, 8.0, 0, &p->width))) {
                fail_at(p, p->line, GN_ERR_FORMAT,
                        "bad width line (width W [divisor D], W in (0, 8], D 1..64)", NULL, NULL);
                return 0;
            }
            p->divisor = (int)d;
            p->have_width = 1;
            p->have_line = 0;
            continue;
        }
        if (!parse_layer(p, out)) return 0;
    }
    if (p->status != GN_OK) return 0;
    if (in_block) {
        fail_at(p, p->line, GN_ERR_FORMAT, "missing 'end' at the end of the file", NULL, NULL);
        return 0;
    }
    return 1;
}

/* ---- building the program ------------------------------------------------------------------ */

typedef struct builder {
    parser *p;
    gn_arch *arch;
    gn_net *net;
    const gn_net_settings *set;
    int cap_nodes, cap_values;
} builder;

static int fail_build(builder *b, int line, gn_status code, const char *fmt, const char *x,
                      const char *y) {
    fail_at(b->p, line, code, fmt, x, y);
    return -1;
}

static int new_value(builder *b, int channels, const char *name, const char *kind, int ghost_init) {
    gn_net *n = b->net;
    if (n->num_values == b->cap_values) {
        int cap = b->cap_values ? 2 * b->cap_values : 64;
        gn_net_value *v = realloc(n->values, (size_t)cap * sizeof *v);
        if (!v) return -1;
        n->values = v;
        b->cap_values = cap;
    }
    gn_net_value *v = &n->values[n->num_values];
    memset(v, 0, sizeof *v);
    v->channels = channels;
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->kind, sizeof v->kind, "%s", kind);
    v->ghost_init = ghost_init;
    return n->num_values++;
}

static gn_net_node *new_node(builder *b, gn_net_op op, int line, const char *name) {
    gn_net *n = b->net;
    if (n->num_nodes >= kMaxNodes) {
        fail_build(b, line, GN_ERR_FORMAT, "more than 8192 operations", NULL, NULL);
        return NULL;
    }
    if (n->num_nodes == b->cap_nodes) {
        int cap = b->cap_nodes ? 2 * b->cap_nodes : 64;
        gn_net_node *v = realloc(n->nodes, (size_t)cap * sizeof *v);
        if (!v) {
            b->p->status = gn_fail(b->p->err, GN_ERR_NOMEM, "out of memory");
            return NULL;
        }
        n->nodes = v;
        b->cap_nodes = cap;
    }
    gn_net_node *d = &n->nodes[n->num_nodes++];
    memset(d, 0, sizeof *d);
    d->op = op;
    d->line = line;
    d->weight = d->bias = d->bn = d->weight2 = d->bias2 = -1;
    d->groups = 1;
    d->kernel = d->stride = 1;
    snprintf(d->name, sizeof d->name, "%s", name);
    return d;
}

static int tensor(builder *b, int line, const char *prefix, const char *suffix, int ndim,
                  int64_t d0, int64_t d1, int64_t d2, int64_t d3, int is_param, int is_bn) {
    char name[160];
    snprintf(name, sizeof name, "%s%s%s", prefix, suffix[0] ? "." : "", suffix);
    const int64_t shape[4] = {d0, d1, d2, d3};
    int index = gn_arch_add_tensor(b->arch, name, ndim, shape, is_param, is_bn);
    if (index < 0)
        fail_build(b, line, GN_ERR_FORMAT, "too many parameter tensors (at most 1024) or name '%s' "
                   "too long", name, NULL);
    return index;
}

static int bn_tensors(builder *b, int line, const char *prefix, int channels) {
    int first = tensor(b, line, prefix, "weight", 1, channels, 1, 1, 1, 1, 1);
    if (first < 0 || tensor(b, line, prefix, "bias", 1, channels, 1, 1, 1, 1, 1) < 0 ||
        tensor(b, line, prefix, "running_mean", 1, channels, 1, 1, 1, 0, 1) < 0 ||
        tensor(b, line, prefix, "running_var", 1, channels, 1, 1, 1, 0, 1) < 0)
        return -1;
    return first;
}

/* A conv node from `in` into out (value, c0, kept), computing full_out channels. */
static gn_net_node *conv_node(builder *b, int line, const char *name, const char *wname,
                              const char *bname, gn_net_view in, gn_net_view out, int full_out,
                              int k, int s, int groups, int bias, int bn, gn_act act) {
    gn_net_node *d = new_node(b, GN_NET_CONV, line, name);
    if (!d) return NULL;
    d->in = in;
    d->out = out;
    d->full_out = full_out;
    d->kernel = k;
    d->stride = s;
    d->groups = groups;
    d->act = act;
    d->weight = tensor(b, line, wname, "weight", 4, full_out, in.channels / groups, k, k, 1, 0);
    if (d->weight < 0) return NULL;
    if (bias && (d->bias = tensor(b, line, wname, "bias", 1, full_out, 1, 1, 1, 1, 0)) < 0)
        return NULL;
    if (bn && (d->bn = bn_tensors(b, line, bname, full_out)) < 0) return NULL;
    return d;
}

static int scaled(builder *b, const layer *l) {
    if (l->classes) return b->set->num_classes;
    if (l->fixed) return l->channels;
    return gn_make_divisible((double)l->channels * b->net->width, b->net->divisor);
}

static gn_net_view whole(builder *b, int value) {
    gn_net_view v = {value, 0, b->net->values[value].channels};
    return v;
}

static int build_list(builder *b, const layer_list *list, const char *prefix, int *index, int in);

static int build_layer(builder *b, const layer *l, const char *name, int in) {
    const int cin = b->net->values[in].channels;
    const int line = l->line;
    const int stride = l->s < 0 ? b->set->stem_stride : l->s;
    char wname[96], bname[96];
    gn_net_node *d;
    int out;
    switch (l->kind) {
    case L_CONV:
    case L_DWCONV: {
        int c = l->kind == L_CONV ? scaled(b, l) : cin * l->mult;
        int groups = l->kind == L_CONV ? l->groups : cin;
        if (c > kMaxChannels)
            return fail_build(b, line, GN_ERR_FORMAT, "too many channels", NULL, NULL);
        if (cin % groups || c % groups) {
            char msg[64];
            snprintf(msg, sizeof msg, "%d in, %d out, %d groups", cin, c, groups);
            return fail_build(b, line, GN_ERR_SHAPE, "groups must divide both channel counts (%s)",
                              msg, NULL);
        }
        if ((out = new_value(b, c, name, "conv", 0)) < 0) break;
        snprintf(wname, sizeof wname, "%s.conv", name);
        snprintf(bname, sizeof bname, "%s.bn", name);
        d = conv_node(b, line, name, wname, bname, whole(b, in), whole(b, out), c, l->k, stride,
                      groups, l->bias, l->bn, l->act);
        return d ? out : -1;
    }
    case L_GHOST: {
        int c = scaled(b, l);
        int ratio = l->ratio ? l->ratio : (b->set->ratio ? b->set->ratio : 2);
        int dw = l->dw ? l->dw : (b->set->dw ? b->set->dw : 3);
        int init = (c + ratio - 1) / ratio;
        if (c - init < 1)
            return fail_build(b, line, GN_ERR_SHAPE,
                              "a ghost module needs more output channels than intrinsic ones",
                              NULL, NULL);
        if ((out = new_value(b, c, name, "ghost", init)) < 0) break;
        gn_net_view prim = {out, 0, init}, cheap = {out, init, c - init};
        snprintf(wname, sizeof wname, "%s.primary_conv.0", name);
        snprintf(bname, sizeof bname, "%s.primary_conv.1", name);
        char node_name[96];
        snprintf(node_name, sizeof node_name, "%s.primary_conv", name);
        if (!conv_node(b, line, node_name, wname, bname, whole(b, in), prim, init, l->k, stride, 1,
                       0, 1, l->act))
            return -1;
        snprintf(wname, sizeof wname, "%s.cheap_operation.0", name);
        snprintf(bname, sizeof bname, "%s.cheap_operation.1", name);
        snprintf(node_name, sizeof node_name, "%s.cheap_operation", name);
        d = conv_node(b, line, node_name, wname, bname, prim, cheap, init * (ratio - 1), dw, 1,
                      init, 0, 1, l->act);
        return d ? out : -1;
    }
    case L_SE: {
        int reduced = gn_make_divisible(cin * l->ratio_f, l->divisor);
        if ((out = new_value(b, cin, name, "se", 0)) < 0 ||
            !(d = new_node(b, GN_NET_SE, line, name)))
            break;
        d->in = whole(b, in);
        d->out = whole(b, out);
        d->reduced = reduced;
        snprintf(wname, sizeof wname, "%s.conv_reduce", name);
        snprintf(bname, sizeof bname, "%s.conv_expand", name);
        if ((d->weight = tensor(b, line, wname, "weight", 4, reduced, cin, 1, 1, 1, 0)) < 0 ||
            (d->bias = tensor(b, line, wname, "bias", 1, reduced, 1, 1, 1, 1, 0)) < 0 ||
            (d->weight2 = tensor(b, line, bname, "weight", 4, cin, reduced, 1, 1, 1, 0)) < 0 ||
            (d->bias2 = tensor(b, line, bname, "bias", 1, cin, 1, 1, 1, 1, 0)) < 0)
            return -1;
        return out;
    }
    case L_BN:
    case L_ACT:
    case L_MAXPOOL:
    case L_AVGPOOL:
    case L_DROPOUT: {
        static const gn_net_op kOps[] = {[L_BN] = GN_NET_BN, [L_ACT] = GN_NET_ACT,
                                         [L_MAXPOOL] = GN_NET_MAXPOOL,
                                         [L_AVGPOOL] = GN_NET_AVGPOOL,
                                         [L_DROPOUT] = GN_NET_DROPOUT};
        static const char *const kKinds[] = {[L_BN] = "bn", [L_ACT] = "act",
                                             [L_MAXPOOL] = "maxpool", [L_AVGPOOL] = "avgpool",
                                             [L_DROPOUT] = "dropout"};
        if ((out = new_value(b, cin, name, kKinds[l->kind], 0)) < 0 ||
            !(d = new_node(b, kOps[l->kind], line, name)))
            break;
        d->in = whole(b, in);
        d->out = whole(b, out);
        d->act = l->act;
        d->kernel = l->k;
        d->stride = l->s;
        d->rate = (float)l->rate;
        if (l->kind == L_BN && (d->bn = bn_tensors(b, line, name, cin)) < 0) return -1;
        return out;
    }
    case L_LINEAR: {
        int c = scaled(b, l);
        if ((out = new_value(b, c, name, "linear", 0)) < 0 ||
            !(d = new_node(b, GN_NET_LINEAR, line, name)))
            break;
        d->in = whole(b, in);
        d->out = whole(b, out);
        d->act = l->act;
        if ((d->weight = tensor(b, line, name, "weight", 2, c, cin, 1, 1, 1, 0)) < 0 ||
            (d->bias = tensor(b, line, name, "bias", 1, c, 1, 1, 1, 1, 0)) < 0)
            return -1;
        return out;
    }
    case L_RESIDUAL: {
        char prefix[96];
        int j = 0;
        snprintf(prefix, sizeof prefix, "%s.body", name);
        int body = build_list(b, &l->body, prefix, &j, in);
        if (body < 0) return -1;
        int shortcut = in;
        if (l->has_shortcut) {
            j = 0;
            snprintf(prefix, sizeof prefix, "%s.shortcut", name);
            if ((shortcut = build_list(b, &l->shortcut, prefix, &j, in)) < 0) return -1;
        }
        const int cb = b->net->values[body].channels, cs = b->net->values[shortcut].channels;
        if (cb != cs) {
            char msg[96];
            snprintf(msg, sizeof msg, "body gives %d channels, shortcut %d", cb, cs);
            return fail_build(b, line, GN_ERR_SHAPE, "residual shapes differ: %s", msg, NULL);
        }
        if ((out = new_value(b, cb, name, "residual", 0)) < 0 ||
            !(d = new_node(b, GN_NET_ADD, line, name)))
            break;
        d->in = whole(b, body);
        d->in2 = whole(b, shortcut);
        d->out = whole(b, out);
        d->act = l->act;
        return out;
    }
    case L_REPEAT:
        break; /* expanded by build_list */
    }
    if (b->p->status == GN_OK) b->p->status = gn_fail(b->p->err, GN_ERR_NOMEM, "out of memory");
    return -1;
}

static int build_list(builder *b, const layer_list *list, const char *prefix, int *index, int in) {
    for (int i = 0; i < list->n && in >= 0; i++) {
        const layer *l = &list->items[i];
        if (l->kind == L_REPEAT) {
            for (int r = 0; r < l->count && in >= 0; r++)
                in = build_list(b, &l->body, prefix, index, in);
            continue;
        }
        char name[96];
        snprintf(name, sizeof name, "%s.%d", prefix, (*index)++);
        if (strlen(name) >= sizeof b->net->nodes[0].name - 24)
            return fail_build(b, l->line, GN_ERR_FORMAT, "layer name '%s' too long (nested "
                              "too deeply)", name, NULL);
        in = build_layer(b, l, name, in);
    }
    return in;
}

void gn_net_free(gn_net *net) {
    if (!net) return;
    free(net->text);
    free(net->nodes);
    free(net->values);
    free(net);
}

gn_status gn_net_build(const char *text, size_t len, const char *source,
                       const gn_net_settings *settings, gn_arch *arch, gn_error *err) {
    if (!text || !settings || !arch) return gn_fail(err, GN_ERR_INVALID_ARG, "NULL argument");
    if (!source) source = "<net>";
    const gn_net_settings *s = settings;
    if (s->in_chans < 1 || s->in_chans > 64 || s->num_classes < 1 || s->num_classes > 1000000 ||
        (s->stem_stride != 1 && s->stem_stride != 2) || (s->ratio && (s->ratio < 2 || s->ratio > 16)) ||
        (s->dw && (s->dw < 1 || s->dw > 15 || s->dw % 2 == 0)) || !(s->width <= 8.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "%s: bad settings (in_chans 1..64, classes 1..1e6, stem stride 1|2, ratio "
                       "2..16, dw odd 1..15, width <= 8)", source);
    if (len > kMaxText) return gn_fail(err, GN_ERR_FORMAT, "%s: description over 1 MiB", source);

    parser p;
    memset(&p, 0, sizeof p);
    p.text = text;
    p.len = len;
    p.width = 1.0;
    p.divisor = 1;
    p.source = source;
    p.err = err;
    layer_list top = {0};
    parse_list(&p, &top, 0);
    if (p.status == GN_OK && top.n == 0)
        fail_at(&p, p.line, GN_ERR_FORMAT, "empty description (no layers)", NULL, NULL);

    gn_net *net = NULL;
    if (p.status == GN_OK) {
        net = calloc(1, sizeof *net);
        if (!net || !(net->text = malloc(len + 1))) {
            p.status = gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", source);
        } else {
            memcpy(net->text, text, len);
            net->text[len] = '\0';
        }
    }
    if (p.status == GN_OK) {
        snprintf(net->source, sizeof net->source, "%s", source);
        net->width = s->width > 0.0f ? s->width : (float)p.width;
        net->divisor = p.divisor;
        net->stem_stride = s->stem_stride;
        net->ratio = s->ratio;
        net->dw = s->dw;
        memset(arch, 0, sizeof *arch);
        builder b = {&p, arch, net, s, 0, 0};
        int in = new_value(&b, s->in_chans, "input", "input", 0);
        int index = 0;
        int out = in < 0 ? -1 : build_list(&b, &top, "layers", &index, in);
        if (out >= 0 && net->values[out].channels != s->num_classes) {
            char msg[96];
            snprintf(msg, sizeof msg, "%d outputs but %d classes", net->values[out].channels,
                     s->num_classes);
            fail_at(&p, net->nodes[net->num_nodes - 1].line, GN_ERR_SHAPE,
                    "the last layer gives %s (end with 'linear classes')", msg, NULL);
        } else if (out >= 0 && out == in) {
            fail_at(&p, p.line, GN_ERR_FORMAT, "the description has no operations", NULL, NULL);
        } else if (out < 0 && p.status == GN_OK) {
            p.status = gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", source);
        }
        net->output = out;
    }
    list_free(&top);
    if (p.status != GN_OK) {
        gn_net_free(net);
        memset(arch, 0, sizeof *arch);
        return p.status;
    }
    arch->config = gn_config_default();
    arch->config.width = net->width;
    arch->config.in_chans = s->in_chans;
    arch->config.num_classes = s->num_classes;
    arch->config.stem_stride = s->stem_stride;
    arch->config.dropout = 0.0f;
    if (s->ratio) arch->config.ghost_ratio = s->ratio;
    if (s->dw) arch->config.ghost_dw_size = s->dw;
    arch->net = net;
    return GN_OK;
}

/* ---- sizes ---------------------------------------------------------------------------------- */

gn_status gn_net_spatial(const gn_net *net, int h, int w, int *vh, int *vw, gn_error *err) {
    if (h < 1 || w < 1 || h > 16384 || w > 16384)
        return gn_fail(err, GN_ERR_INVALID_ARG, "input size %dx%d out of range", h, w);
    for (int i = 0; i < net->num_values; i++) vh[i] = vw[i] = 0;
    vh[0] = h;
    vw[0] = w;
    for (int i = 0; i < net->num_nodes; i++) {
        const gn_net_node *d = &net->nodes[i];
        int ih = vh[d->in.value], iw = vw[d->in.value], oh = ih, ow = iw;
        const char *problem = NULL;
        switch (d->op) {
        case GN_NET_CONV:
            oh = gn_conv_out_size(ih, d->kernel, d->stride);
            ow = gn_conv_out_size(iw, d->kernel, d->stride);
            break;
        case GN_NET_MAXPOOL:
            oh = ih >= d->kernel ? (ih - d->kernel) / d->stride + 1 : 0;
            ow = iw >= d->kernel ? (iw - d->kernel) / d->stride + 1 : 0;
            if (!oh || !ow) problem = "the map is smaller than the pooling window";
            break;
        case GN_NET_AVGPOOL: oh = ow = 1; break;
        case GN_NET_LINEAR:
            if (ih != 1 || iw != 1) problem = "a linear layer needs a 1x1 map (add avgpool)";
            break;
        case GN_NET_ADD:
            if (vh[d->in2.value] != ih || vw[d->in2.value] != iw)
                problem = "residual shapes differ: body and shortcut give maps of different sizes";
            break;
        default: break;
        }
        if (problem) {
            return gn_fail(err, GN_ERR_SHAPE, "%s:%d (%s): %s at input %dx%d", net->source, d->line,
                           d->name, problem, h, w);
        }
        /* a Ghost module's two nodes share their output value: the first sets its size */
        if (!vh[d->out.value]) {
            vh[d->out.value] = oh;
            vw[d->out.value] = ow;
        }
    }
    if (vh[net->output] != 1 || vw[net->output] != 1)
        return gn_fail(err, GN_ERR_SHAPE, "%s: the output is %dx%d at input %dx%d, not 1x1",
                       net->source, vh[net->output], vw[net->output], h, w);
    return GN_OK;
}

int64_t gn_net_macs(const gn_net *net, int h, int w) {
    int *vh = malloc((size_t)net->num_values * 2 * sizeof *vh);
    if (!vh) return -1;
    int *vw = vh + net->num_values;
    int64_t macs = -1;
    if (gn_net_spatial(net, h, w, vh, vw, NULL) == GN_OK) {
        macs = 0;
        for (int i = 0; i < net->num_nodes; i++) {
            const gn_net_node *d = &net->nodes[i];
            const int64_t in_c = d->in.channels;
            if (d->op == GN_NET_CONV) {
                const int64_t plane = (int64_t)vh[d->out.value] * vw[d->out.value];
                macs += plane * d->full_out * (in_c / d->groups) * d->kernel * d->kernel;
            } else if (d->op == GN_NET_SE) {
                macs += 2 * in_c * d->reduced;
            } else if (d->op == GN_NET_LINEAR) {
                macs += in_c * d->out.channels;
            }
        }
    }
    free(vh);
    return macs;
}

int gn_net_find_value(const gn_net *net, const char *name) {
    for (int i = 0; net && name && i < net->num_values; i++)
        if (strcmp(net->values[i].name, name) == 0) return i;
    return -1;
}
