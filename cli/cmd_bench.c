#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "model/model_internal.h"
#include "model/session_internal.h"
#include "net/net.h"

static const char kHelp[] =
    "usage: ghostnet bench [model options] [--weights FILE] [--size S] [--batch B]\n"
    "                      [--threads T] [--warmup N] [--iters N] [--json] [--per-layer]\n"
    "Times inference: warm-up runs, then N timed forward passes of a batch. Prints latency\n"
    "(median, p10, p90), throughput, multiply-add rate and peak resident memory.\n\n"
    "options:\n"
    "  --weights FILE    model file (default: a seeded random model of the model options)\n"
    "  --size S          input height and width (default 224)\n"
    "  --batch B         images per forward pass (default 1)\n"
    "  --threads T       worker threads, 0 = all cores (default 0)\n"
    "  --warmup N        untimed runs first (default 5)\n"
    "  --iters N         timed runs (default 30)\n"
    "  --json            one JSON object instead of the table\n"
    "  --per-layer       time every op of the plan, and the share per op type\n"
    "  --input FILE      raw float32 NCHW input (batch x in_chans x size x size values)\n"
    "  --dump FILE       write the last run's logits as raw float32\n" CLI_MODEL_OPTIONS_HELP
    "  --help            this text\n";

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array. */
static double percentile(const double *sorted, int n, double q) {
    int i = (int)(q * (n - 1) + 0.5);
    return sorted[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

/* Exactly n floats, native byte order (the comparison script writes them with numpy). */
static int read_raw(const char *cmd, const char *path, float *dst, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error(cmd, "%s: cannot open", path);
    size_t got = fread(dst, sizeof(float), n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != n || extra)
        return cli_error(cmd, "%s: expected exactly %zu float32 values", path, n);
    return 0;
}

static int write_raw(const char *cmd, const char *path, const float *src, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return cli_error(cmd, "%s: cannot create", path);
    size_t put = fwrite(src, sizeof(float), n, f);
    if (fclose(f) != 0 || put != n) {
        remove(path);
        return cli_error(cmd, "%s: write failed", path);
    }
    return 0;
}

/* Per-op wall time summed over `iters` timed runs, then per-op and per-type tables. */
static int print_per_layer(gn_session *session, const float *input, float *logits, int iters,
                           double median) {
    const int n = gn_session_op_count(session);
    double *secs = calloc((size_t)n, sizeof *secs);
    if (!secs) return cli_error("bench", "out of memory");
    for (int i = 0; i < iters; i++) gn_session_run_timed(session, input, logits, secs, NULL);
    double total = 0.0;
    for (int i = 0; i < n; i++) total += secs[i];
    printf("\nper op (%s kernels, %d threads; timing each op adds a little overhead):\n",
           gn_session_isa(session), gn_session_threads(session));
    printf("  %4s %-48s %10s %7s %10s\n", "op", "what", "ms", "share", "GMAC/s");
    char what[96];
    struct {
        char name[16];
        double secs;
    } types[16];
    int ntypes = 0;
    for (int i = 0; i < n; i++) {
        gn_session_op_describe(session, i, what, sizeof what);
        const double ms = secs[i] / iters * 1e3;
        const long long macs = gn_session_op_macs(session, i);
        printf("  %4d %-48s %10.4f %6.1f%% %10.2f\n", i, what, ms, 100.0 * secs[i] / total,
               ms > 0 ? macs / (ms * 1e6) : 0.0);
        char kind[16];
        if (sscanf(what, "%15s", kind) != 1) continue;
        int t = 0;
        while (t < ntypes && strcmp(types[t].name, kind) != 0) t++;
        if (t == ntypes && ntypes < 16) {
            snprintf(types[ntypes].name, sizeof types[ntypes].name, "%s", kind);
            types[ntypes++].secs = 0.0;
        }
        if (t < ntypes) types[t].secs += secs[i];
    }
    printf("\nshare per op type (sum of op times %.3f ms per run; untimed median %.3f ms):\n",
           total / iters * 1e3, median * 1e3);
    for (int t = 0; t < ntypes; t++)
        printf("  %-10s %10.3f ms %6.1f%%\n", types[t].name, types[t].secs / iters * 1e3,
               100.0 * types[t].secs / total);
    free(secs);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    cli_model mdl = cli_model_default();
    long size = 224, batch = 1, threads = 0, warmup = 5, iters = 30;
    const char *weights = NULL, *input_path = NULL, *dump_path = NULL;
    int json = 0, per_layer = 0;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(cmd, argc, argv, &i, &mdl);
        if (r < 0) return 1;
        if (r > 0) continue;
        const char *v;
        long *target = NULL, lo = 0, hi = 0;
        if (strcmp(argv[i], "--help") == 0) {
            fputs(kHelp, stdout);
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        } else if (strcmp(argv[i], "--per-layer") == 0) {
            per_layer = 1;
            continue;
        } else if (strcmp(argv[i], "--weights") == 0) {
            if (!(weights = cli_value(cmd, argc, argv, &i))) return 1;
            continue;
        } else if (strcmp(argv[i], "--input") == 0) {
            if (!(input_path = cli_value(cmd, argc, argv, &i))) return 1;
            continue;
        } else if (strcmp(argv[i], "--dump") == 0) {
            if (!(dump_path = cli_value(cmd, argc, argv, &i))) return 1;
            continue;
        } else if (strcmp(argv[i], "--size") == 0) {
            target = &size, lo = 1, hi = 8192;
        } else if (strcmp(argv[i], "--batch") == 0) {
            target = &batch, lo = 1, hi = 65536;
        } else if (strcmp(argv[i], "--threads") == 0) {
            target = &threads, lo = 0, hi = 1024;
        } else if (strcmp(argv[i], "--warmup") == 0) {
            target = &warmup, lo = 0, hi = 100000;
        } else if (strcmp(argv[i], "--iters") == 0) {
            target = &iters, lo = 1, hi = 1000000;
        } else {
            return cli_error(cmd, "unknown option '%s' (see --help)", argv[i]);
        }
        if (!(v = cli_value(cmd, argc, argv, &i)) || cli_parse_int(cmd, argv[i - 1], v, lo, hi, target))
            return 1;
    }

    gn_error err = {0};
    gn_model *model = NULL;
    gn_status st = weights ? gn_model_load(weights, NULL, &model, &err)
                           : cli_model_create(&mdl, &model, &err);
    if (st != GN_OK) return cli_error(cmd, "%s", err.message);
    if (!weights) gn_model_init_random(model, 1);
    const gn_config *c = gn_model_config(model);
    const size_t in_floats = (size_t)batch * c->in_chans * size * size;
    float *input = malloc(in_floats * sizeof(float));
    float *logits = malloc((size_t)batch * c->num_classes * sizeof(float));
    double *times = malloc((size_t)iters * sizeof(double));
    gn_session *session = NULL;
    int rc = 1;
    if (!input || !logits || !times) {
        cli_error(cmd, "out of memory for batch %ld at %ldx%ld", batch, size, size);
        goto done;
    }
    /* A fixed pseudo-random input: timings must not depend on data, but zeros could hide
     * denormal or branch effects. */
    unsigned s = 12345u;
    for (size_t i = 0; i < in_floats; i++) {
        s = s * 1664525u + 1013904223u;
        input[i] = (float)(s >> 9) / 4194304.0f - 1.0f;
    }
    if (input_path && read_raw(cmd, input_path, input, in_floats)) goto done;
    gn_session_options opts = gn_session_options_default();
    opts.num_threads = (int)threads;
    if (gn_session_create(model, (int)batch, (int)size, (int)size, &opts, &session, &err) != GN_OK) {
        cli_error(cmd, "%s", err.message);
        goto done;
    }
    for (long i = 0; i < warmup; i++) gn_session_run(session, input, logits, &err);
    for (long i = 0; i < iters; i++) {
        double t0 = now_seconds();
        if (gn_session_run(session, input, logits, &err) != GN_OK) {
            cli_error(cmd, "%s", err.message);
            goto done;
        }
        times[i] = now_seconds() - t0;
    }
    if (dump_path && write_raw(cmd, dump_path, logits, (size_t)batch * c->num_classes)) goto done;
    qsort(times, (size_t)iters, sizeof *times, cmp_double);
    const double median = percentile(times, (int)iters, 0.5);
    const double p10 = percentile(times, (int)iters, 0.1), p90 = percentile(times, (int)iters, 0.9);
    const double macs = (double)gn_model_macs(model, (int)size, (int)size) * batch;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    const double peak_mb = ru.ru_maxrss / 1024.0; /* Linux reports KiB */
    const double arena_mb = gn_session_arena_bytes(session) / 1048576.0;
    if (json) {
        printf("{\"width\": %g, \"size\": %ld, \"batch\": %ld, \"threads\": %ld, \"iters\": %ld, "
               "\"median_ms\": %.4f, \"p10_ms\": %.4f, \"p90_ms\": %.4f, "
               "\"images_per_s\": %.2f, \"gmacs_per_s\": %.3f, \"peak_rss_mb\": %.1f, "
               "\"arena_mb\": %.2f}\n",
               (double)c->width, size, batch, threads, iters, median * 1e3, p10 * 1e3, p90 * 1e3,
               batch / median, macs / median / 1e9, peak_mb, arena_mb);
    } else {
        const gn_net *net = model->arch->net;
        printf("%s %gx, %d input channel(s), %ldx%ld, batch %ld, threads %ld (0 = all)\n",
               net ? net->source : "GhostNet", (double)c->width, c->in_chans, size, size, batch,
               threads);
        printf("latency    median %.3f ms   p10 %.3f ms   p90 %.3f ms   (%ld runs after %ld "
               "warm-up)\n",
               median * 1e3, p10 * 1e3, p90 * 1e3, iters, warmup);
        printf("throughput %.1f images/s   %.2f GMAC/s\n", batch / median, macs / median / 1e9);
        printf("memory     peak RSS %.1f MB   activation arena %.2f MB\n", peak_mb, arena_mb);
    }
    if (per_layer && !json && print_per_layer(session, input, logits, (int)iters, median) != 0)
        goto done;
    rc = 0;
done:
    gn_session_free(session);
    free(input);
    free(logits);
    free(times);
    gn_model_free(model);
    return rc;
}
