#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"
#include "data_util.h"

static const char kHelp[] =
    "usage: ghostnet eval --weights FILE [--batch N] [--threads N] DATASET\n"
    "Evaluates a model on the test split of DATASET: MNIST-style IDX files (t10k-images-idx3-\n"
    "ubyte[.gz] and t10k-labels-idx1-ubyte[.gz], e.g. /usr/share/datasets/fashion-mnist) or an\n"
    "image folder DATASET/val (or DATASET/test) with one sub-folder per class. Prints the\n"
    "accuracy, the loss, per-class accuracy, the confusion matrix and the speed. The input size\n"
    "and mean/std come from the model file.\n\n"
    "options:\n"
    "  --weights FILE    model file (required)\n"
    "  --batch N         images per forward pass (default 256)\n"
    "  --threads N       worker threads, 0 = all cores (default 0)\n"
    "  --help            this text\n";

static void print_report(const gn_dataset *ds, const cli_eval_result *r) {
    const int n = ds->num_classes;
    printf("test accuracy %.2f%% (%d/%d), loss %.4f, %.0f images/s (forward passes only)\n",
           100.0 * r->correct / r->count, r->correct, r->count, r->loss,
           r->seconds > 0 ? r->count / r->seconds : 0.0);
    printf("\nper-class accuracy:\n");
    for (int k = 0; k < n; k++) {
        int total = 0;
        for (int j = 0; j < r->num_classes; j++) total += r->confusion[(size_t)k * r->num_classes + j];
        const char *name = ds->class_names ? ds->class_names[k] : "";
        printf("  %3d %-20s %6.2f%% (%d)\n", k, name,
               total ? 100.0 * r->confusion[(size_t)k * r->num_classes + k] / total : 0.0, total);
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted):\n     ");
    for (int j = 0; j < n; j++) printf(" %5d", j);
    printf("\n");
    for (int k = 0; k < n; k++) {
        printf("  %2d ", k);
        for (int j = 0; j < n; j++) printf(" %5d", r->confusion[(size_t)k * r->num_classes + j]);
        printf("\n");
    }
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    const char *weights = NULL, *dataset = NULL;
    long batch = 256, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0) {
            fputs(kHelp, stdout);
            return 0;
        } else if (strcmp(argv[i], "--weights") == 0) {
            if (!(weights = cli_value(cmd, argc, argv, &i))) return 1;
        } else if (strcmp(argv[i], "--batch") == 0) {
            if (!(v = cli_value(cmd, argc, argv, &i)) || cli_parse_int(cmd, "--batch", v, 1, 65536, &batch))
                return 1;
        } else if (strcmp(argv[i], "--threads") == 0) {
            if (!(v = cli_value(cmd, argc, argv, &i)) || cli_parse_int(cmd, "--threads", v, 0, 1024, &threads))
                return 1;
        } else if (argv[i][0] == '-') {
            return cli_error(cmd, "unknown option '%s' (see --help)", argv[i]);
        } else if (!dataset) {
            dataset = argv[i];
        } else {
            return cli_error(cmd, "more than one dataset given ('%s')", argv[i]);
        }
    }
    if (!weights) return cli_error(cmd, "--weights is required");
    if (!dataset) return cli_error(cmd, "no dataset given");
    gn_error err = {0};
    gn_model *model = NULL;
    if (gn_model_load(weights, NULL, &model, &err) != GN_OK) return cli_error(cmd, "%s", err.message);
    const gn_config *c = gn_model_config(model);
    gn_dataset ds;
    if (cli_load_split(dataset, "test", c->in_chans, gn_model_preprocess(model)->resize_size, &ds,
                       &err) != GN_OK) {
        gn_model_free(model);
        return cli_error(cmd, "%s", err.message);
    }
    cli_eval_result r;
    gn_status st = cli_evaluate(model, &ds, (int)batch, (int)threads, &r, &err);
    if (st == GN_OK) {
        printf("%s on %s: %d images, %d classes\n", weights, dataset, ds.count, ds.num_classes);
        print_report(&ds, &r);
        cli_eval_result_free(&r);
    }
    gn_dataset_free(&ds);
    gn_model_free(model);
    return st == GN_OK ? 0 : cli_error(cmd, "%s", err.message);
}
