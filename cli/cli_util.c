#include "cli_util.h"

#include "core/common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "ghostnet %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_parse_int(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < lo || v > hi) {
        cli_error(cmd, "%s expects an integer in %ld..%ld, got '%s'", opt, lo, hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *cmd, const char *opt, const char *text, double lo, double hi,
                    double *out) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !isfinite(v) || v < lo || v > hi) {
        cli_error(cmd, "%s expects a number in [%g, %g], got '%s'", opt, lo, hi, text);
        return -1;
    }
    *out = v;
    return 0;
}

const char *cli_value(const char *cmd, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) {
        cli_error(cmd, "%s needs a value", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

cli_model cli_model_default(void) {
    cli_model m;
    m.config = gn_config_default();
    m.net = NULL;
    m.width_set = 0;
    return m;
}

gn_status cli_model_create(const cli_model *m, gn_model **out, gn_error *err) {
    if (!m->net) return gn_model_create(&m->config, out, err);
    uint8_t *text = NULL;
    size_t len = 0;
    gn_status st = gn_read_file(m->net, (size_t)1 << 20, &text, &len, err);
    if (st != GN_OK) return st;
    st = gn_model_create_net((const char *)text, len, m->net, m->width_set ? m->config.width : 0.0f,
                             &m->config, out, err);
    free(text);
    return st;
}

int cli_model_option(const char *cmd, int argc, char **argv, int *i, cli_model *m) {
    gn_config *c = &m->config;
    const char *opt = argv[*i];
    if (strcmp(opt, "--net") == 0) {
        if (!(m->net = cli_value(cmd, argc, argv, i))) return -1;
        return 1;
    }
    static const struct {
        const char *name;
        int is_float;
        double lo, hi;
    } kOptions[] = {
        {"--width", 1, 0.01, 8},       {"--in-chans", 0, 1, 64},   {"--num-classes", 0, 1, 1000000},
        {"--stem-stride", 0, 1, 2},    {"--ratio", 0, 2, 16},      {"--dw-size", 0, 1, 15},
        {"--dropout", 1, 0, 0.999},
    };
    for (size_t k = 0; k < sizeof kOptions / sizeof kOptions[0]; k++) {
        if (strcmp(opt, kOptions[k].name) != 0) continue;
        const char *text = cli_value(cmd, argc, argv, i);
        if (!text) return -1;
        double f = 0;
        long n = 0;
        int bad = kOptions[k].is_float
                      ? cli_parse_float(cmd, opt, text, kOptions[k].lo, kOptions[k].hi, &f)
                      : cli_parse_int(cmd, opt, text, (long)kOptions[k].lo, (long)kOptions[k].hi, &n);
        if (bad) return -1;
        switch (k) {
        case 0:
            c->width = (float)f;
            m->width_set = 1;
            break;
        case 1: c->in_chans = (int)n; break;
        case 2: c->num_classes = (int)n; break;
        case 3: c->stem_stride = (int)n; break;
        case 4: c->ghost_ratio = (int)n; break;
        case 5:
            if (n % 2 == 0) {
                cli_error(cmd, "--dw-size must be odd, got %ld", n);
                return -1;
            }
            c->ghost_dw_size = (int)n;
            break;
        default: c->dropout = (float)f; break;
        }
        return 1;
    }
    return 0;
}
