#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static const char kHelp[] =
    "usage: ghostnet summary [model options] [--size S | --weights FILE]\n"
    "Prints every layer of a GhostNet, or of the network of --net FILE (name, type, output\n"
    "shape, params, MACs) and totals.\n"
    "MACs count convolution and linear multiply-adds per image.\n\n"
    "options:\n"
    "  --size S          input height and width (default 224)\n"
    "  --weights FILE    take the architecture from a model file instead\n" CLI_MODEL_OPTIONS_HELP
    "  --help            this text\n";

/* 12345678 -> "12,345,678" */
static void with_commas(char *buf, size_t n, long long v) {
    char digits[32];
    int len = snprintf(digits, sizeof digits, "%lld", v < 0 ? -v : v);
    size_t o = 0;
    if (v < 0 && o + 1 < n) buf[o++] = '-';
    for (int i = 0; i < len && o + 2 < n; i++) {
        buf[o++] = digits[i];
        if ((len - i - 1) % 3 == 0 && i != len - 1) buf[o++] = ',';
    }
    buf[o] = '\0';
}

int cmd_summary(int argc, char **argv) {
    const char *cmd = "summary";
    cli_model mdl = cli_model_default();
    long size = 224;
    const char *weights = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(cmd, argc, argv, &i, &mdl);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (strcmp(argv[i], "--help") == 0) {
            fputs(kHelp, stdout);
            return 0;
        } else if (strcmp(argv[i], "--size") == 0) {
            const char *v = cli_value(cmd, argc, argv, &i);
            if (!v || cli_parse_int(cmd, "--size", v, 1, 8192, &size)) return 1;
        } else if (strcmp(argv[i], "--weights") == 0) {
            if (!(weights = cli_value(cmd, argc, argv, &i))) return 1;
        } else {
            return cli_error(cmd, "unknown option '%s' (see --help)", argv[i]);
        }
    }
    gn_error err = {0};
    gn_model *model = NULL;
    gn_status st = weights ? gn_model_load(weights, NULL, &model, &err)
                           : cli_model_create(&mdl, &model, &err);
    if (st != GN_OK) return cli_error(cmd, "%s", err.message);
    const gn_config *c = gn_model_config(model);
    size_t count = 0;
    gn_layer_info *rows = NULL;
    st = gn_model_layers(model, (int)size, (int)size, NULL, 0, &count, &err);
    if (st == GN_OK && !(rows = calloc(count, sizeof *rows))) st = GN_ERR_NOMEM;
    if (st == GN_OK) st = gn_model_layers(model, (int)size, (int)size, rows, count, &count, &err);
    if (st != GN_OK) {
        free(rows);
        gn_model_free(model);
        return cli_error(cmd, "%s", st == GN_ERR_NOMEM ? "out of memory" : err.message);
    }
    if (mdl.net && !weights) {
        printf("%s (width %g), %d input channel%s, %d classes, stem stride %d, input %ldx%ld\n\n",
               mdl.net, (double)c->width, c->in_chans, c->in_chans == 1 ? "" : "s",
               c->num_classes, c->stem_stride, size, size);
    } else {
        printf("GhostNet %.*fx (s=%d, d=%d), %d input channel%s, %d classes, stem stride %d, "
               "input %ldx%ld\n\n",
               c->width * 10 == (float)(int)(c->width * 10) ? 1 : 2, (double)c->width,
               c->ghost_ratio, c->ghost_dw_size, c->in_chans, c->in_chans == 1 ? "" : "s",
               c->num_classes, c->stem_stride, size, size);
    }
    printf("%-28s %-28s %16s %12s %14s\n", "layer", "type", "output", "params", "MACs");
    char shape[48], params[32], macs[32];
    for (size_t i = 0; i < count; i++) {
        const gn_layer_info *r = &rows[i];
        char name[80];
        snprintf(name, sizeof name, "%s%s", r->depth ? "  " : "", r->name);
        snprintf(shape, sizeof shape, "%dx%dx%d", r->out_c, r->out_h, r->out_w);
        with_commas(params, sizeof params, r->params);
        with_commas(macs, sizeof macs, r->macs);
        printf("%-28s %-28s %16s %12s %14s\n", name, r->type, shape, params, macs);
    }
    long long total_macs = gn_model_macs(model, (int)size, (int)size);
    with_commas(params, sizeof params, (long long)gn_model_param_count(model));
    with_commas(macs, sizeof macs, total_macs);
    printf("\nTotal params: %s\n", params);
    printf("Total MACs:   %.2fM (%s)\n", total_macs / 1e6, macs);
    free(rows);
    gn_model_free(model);
    return 0;
}
