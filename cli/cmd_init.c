#include <stdio.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static const char kHelp[] =
    "usage: ghostnet init [model options] --seed N --out FILE\n"
    "Writes a randomly initialised GhostNet (PyTorch's default initialisation, seeded) as a\n"
    "timm-keyed safetensors file whose metadata records the architecture.\n\n"
    "options:\n"
    "  --seed N          random seed (required)\n"
    "  --out FILE        output file (required; written atomically)\n"
    "  --input-size S    input size recorded for preprocessing (default 224)\n" CLI_MODEL_OPTIONS_HELP
    "  --help            this text\n";

int cmd_init(int argc, char **argv) {
    const char *cmd = "init";
    cli_model mdl = cli_model_default();
    long seed = -1, input_size = 224;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(cmd, argc, argv, &i, &mdl);
        if (r < 0) return 1;
        if (r > 0) continue;
        const char *v;
        if (strcmp(argv[i], "--help") == 0) {
            fputs(kHelp, stdout);
            return 0;
        } else if (strcmp(argv[i], "--seed") == 0) {
            if (!(v = cli_value(cmd, argc, argv, &i)) ||
                cli_parse_int(cmd, "--seed", v, 0, 0x7fffffffL, &seed))
                return 1;
        } else if (strcmp(argv[i], "--input-size") == 0) {
            if (!(v = cli_value(cmd, argc, argv, &i)) ||
                cli_parse_int(cmd, "--input-size", v, 1, 8192, &input_size))
                return 1;
        } else if (strcmp(argv[i], "--out") == 0) {
            if (!(out = cli_value(cmd, argc, argv, &i))) return 1;
        } else {
            return cli_error(cmd, "unknown option '%s' (see --help)", argv[i]);
        }
    }
    if (seed < 0) return cli_error(cmd, "--seed is required");
    if (!out) return cli_error(cmd, "--out is required");
    gn_error err = {0};
    gn_model *model = NULL;
    if (cli_model_create(&mdl, &model, &err) != GN_OK) return cli_error(cmd, "%s", err.message);
    gn_model_init_random(model, (uint64_t)seed);
    gn_preprocess pre = *gn_model_preprocess(model);
    pre.input_size = (int)input_size;
    pre.resize_size = (int)((input_size * 256 + 112) / 224); /* the 0.875 crop ratio */
    gn_model_set_preprocess(model, &pre);
    gn_status st = gn_model_save(model, out, &err);
    gn_model_free(model);
    if (st != GN_OK) return cli_error(cmd, "%s", err.message);
    printf("wrote %s\n", out);
    return 0;
}
