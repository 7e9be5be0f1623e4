/* Shared command-line plumbing: strict number parsing, model options, error reporting. */
#ifndef GN_CLI_UTIL_H
#define GN_CLI_UTIL_H

#include "ghostnet.h"

/* Prints "ghostnet <cmd>: <message>" to stderr; returns 1 (the exit code for errors). */
int cli_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Whole-string integer / float parsing within [lo, hi]; 0 on success. */
int cli_parse_int(const char *cmd, const char *opt, const char *text, long lo, long hi, long *out);
int cli_parse_float(const char *cmd, const char *opt, const char *text, double lo, double hi,
                    double *out);

/* Model options shared by several commands. cli_model_option consumes argv[*i] (and its
 * value) when it is one of them: returns 1 if consumed, 0 if not a model option, -1 on error. */
#define CLI_MODEL_OPTIONS_HELP                                                              \
    "  --net FILE        a network described in FILE (docs/netdesc.md) instead of GhostNet\n"\
    "  --width W         width multiplier (default 1.0; with --net: the file's)\n"          \
    "  --in-chans N      input channels (default 3)\n"                                       \
    "  --num-classes N   classifier outputs (default 1000)\n"                                \
    "  --stem-stride N   stride of the first conv, 1 or 2 (default 2)\n"                     \
    "  --ratio S         Ghost module ratio s (default 2)\n"                                 \
    "  --dw-size D       Ghost module cheap kernel d, odd (default 3)\n"                     \
    "  --dropout P       dropout before the classifier (default 0.2)\n"
typedef struct cli_model {
    gn_config config;
    const char *net; /* --net FILE, or NULL for the built-in GhostNet */
    int width_set;   /* --width was given */
} cli_model;
cli_model cli_model_default(void);
int cli_model_option(const char *cmd, int argc, char **argv, int *i, cli_model *model);
/* The model the options describe (GhostNet, or the --net file), initialised from seed 0. */
gn_status cli_model_create(const cli_model *model, gn_model **out, gn_error *err);

/* Value of an option that takes one argument: argv[*i + 1], advancing *i; NULL on error. */
const char *cli_value(const char *cmd, int argc, char **argv, int *i);

#endif
