/* ghostnet: the command-line tool. Each subcommand lives in its own cmd_*.c file. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ghostnet.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} kCommands[] = {
    {"summary", cmd_summary, "per-layer table of a network: shapes, params, MACs"},
    {"init", cmd_init, "write a randomly initialised model file"},
    {"classify", cmd_classify, "classify JPEG/PNG images with a model file"},
    {"bench", cmd_bench, "time inference: latency, throughput, memory"},
    {"train", cmd_train, "train a network on IDX files or image folders"},
    {"eval", cmd_eval, "accuracy, per-class accuracy and confusion matrix on a test set"},
    {"features", cmd_features, "draw a Ghost module's intrinsic and ghost feature maps"},
    {"experiment", cmd_experiment, "the paper's experiments in miniature: tables and charts"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: ghostnet <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof kCommands / sizeof kCommands[0]; i++)
        fprintf(out, "  %-10s %s\n", kCommands[i].name, kCommands[i].summary);
    fprintf(out, "\n'ghostnet <command> --help' describes each command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "ghostnet: no command given (try 'ghostnet --help')\n");
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("ghostnet %s\n", GN_VERSION_STRING);
        return 0;
    }
    for (size_t i = 0; i < sizeof kCommands / sizeof kCommands[0]; i++)
        if (strcmp(argv[1], kCommands[i].name) == 0) return kCommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ghostnet: unknown command '%s' (try 'ghostnet --help')\n", argv[1]);
    return 1;
}
