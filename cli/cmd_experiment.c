#define _POSIX_C_SOURCE 200809L /* clock_gettime */
/* `ghostnet experiment`: the paper's experiments in miniature. Each variant is trained by the
 * train command itself (so it gets the same checkpoints, logs and resume), then measured:
 * parameters, MACs, single-image latency on one thread, and the last epoch's test accuracy.
 * The results go to a markdown table, a CSV and a PNG chart drawn by the tool. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli_util.h"
#include "commands.h"
#include "core/common.h"
#include "io/plot.h"

static const char kHelp[] =
    "usage: ghostnet experiment NAME --data PATH --out DIR [options]\n"
    "Trains every variant of experiment NAME with `ghostnet train` (into DIR/<variant>/), then\n"
    "measures each: parameters, MACs, batch-1 latency on one thread, test accuracy. Writes\n"
    "DIR/results.md (table), DIR/results.csv and DIR/<NAME>.png (chart). A variant whose log\n"
    "already has every epoch is not trained again; an interrupted one resumes.\n\n"
    "experiments:\n"
    "  ablation          GhostNet with d in {1,3,5,7} at s=2 and s in {2,3,4,5} at d=3\n"
    "  ghost-vs-vanilla  ResNet-56 vs Ghost-ResNet-56, VGG-16 vs Ghost-VGG-16 (VGG at width 0.5)\n"
    "  frontier          GhostNet 0.5x/1.0x/1.3x vs MobileNetV3-Large/-Small and MobileNetV2\n\n"
    "options:\n"
    "  --data PATH        dataset, as for train (IDX folder or image folders)\n"
    "  --out DIR          output folder (created if missing)\n"
    "  --nets DIR         folder of the .net files (default: nets)\n"
    "  --epochs N         epochs per variant (default 10)\n"
    "  --batch N          batch size (default 128)\n"
    "  --lr X             learning rate (default 0.1; warm-up 1 epoch then cosine)\n"
    "  --width W          extra width multiplier for ablation and ghost-vs-vanilla (default 1)\n"
    "  --stem-stride N    stride of the first conv (default 1: small images)\n"
    "  --limit-train N    only the first N training images (short budgets)\n"
    "  --limit-test N     only the first N test images\n"
    "  --threads N        training threads (default 0 = all cores)\n"
    "  --in-chans N       input channels (default: 1 for IDX data, 3 for image folders)\n"
    "  --seed N           seed (default 0)\n"
    "  --latency-runs N   timed batch-1 runs per variant, in 10 interleaved rounds (default 50)\n"
    "  --help             this text\n";

typedef struct variant {
    const char *label;
    const char *net; /* file under --nets, or NULL for the built-in GhostNet */
    double width;    /* times --width where `scaled` */
    int scaled;
    int ratio, dw;   /* 0: defaults */
    int series;      /* chart series (not used by the ablation, charted by s and d) */
} variant;

typedef struct experiment {
    const char *name;
    const char *title;
    const variant *variants;
    int count;
    const char *series[4];
} experiment;

static const variant kAblation[] = {
    {"ghostnet s2 d1", NULL, 1.0, 1, 2, 1, 0}, {"ghostnet s2 d3", NULL, 1.0, 1, 2, 3, 0},
    {"ghostnet s2 d5", NULL, 1.0, 1, 2, 5, 0}, {"ghostnet s2 d7", NULL, 1.0, 1, 2, 7, 0},
    {"ghostnet s3 d3", NULL, 1.0, 1, 3, 3, 0}, {"ghostnet s4 d3", NULL, 1.0, 1, 4, 3, 0},
    {"ghostnet s5 d3", NULL, 1.0, 1, 5, 3, 0},
};
static const variant kGhostVsVanilla[] = {
    {"resnet56", "resnet56.net", 1.0, 1, 0, 0, 0},
    {"ghost-resnet56", "ghost_resnet56.net", 1.0, 1, 0, 0, 0},
    {"vgg16 (0.5x)", "vgg16.net", 0.5, 1, 0, 0, 1},
    {"ghost-vgg16 (0.5x)", "ghost_vgg16.net", 0.5, 1, 0, 0, 1},
};
static const variant kFrontier[] = {
    {"ghostnet 0.5x", "ghostnet.net", 0.5, 0, 0, 0, 0},
    {"ghostnet 1.0x", "ghostnet.net", 1.0, 0, 0, 0, 0},
    {"ghostnet 1.3x", "ghostnet.net", 1.3, 0, 0, 0, 0},
    {"mobilenetv3-large", "mobilenetv3_large.net", 1.0, 0, 0, 0, 1},
    {"mobilenetv3-small", "mobilenetv3_small.net", 1.0, 0, 0, 0, 2},
    {"mobilenetv2", "mobilenetv2.net", 1.0, 0, 0, 0, 3},
};
#define COUNT(a) (int)(sizeof a / sizeof a[0])
static const experiment kExperiments[] = {
    {"ablation", "s and d of the Ghost module (GhostNet 1.0x)", kAblation, COUNT(kAblation),
     {"D (S 2)", "S (D 3)"}},
    {"ghost-vs-vanilla", "Ghost modules as drop-in replacements", kGhostVsVanilla,
     COUNT(kGhostVsVanilla), {"RESNET-56", "VGG-16 0.5X"}},
    {"frontier", "efficiency frontier", kFrontier, COUNT(kFrontier),
     {"GHOSTNET", "MOBILENETV3-L", "MOBILENETV3-S", "MOBILENETV2"}},
};

typedef struct options {
    const char *data, *out, *nets;
    long epochs, batch, stem_stride, limit_train, limit_test, threads, seed, latency_runs,
        in_chans;
    double lr, width;
} options;

typedef struct result {
    long long params, macs;
    double latency_ms, test_acc, train_seconds;
    int input_size, epochs_done;
} result;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* "ghost-vgg16 (0.5x)" -> "ghost-vgg16_0.5x": a folder name. */
static void folder_of(const char *label, char *buf, size_t n) {
    size_t o = 0;
    for (const char *s = label; *s && o + 1 < n; s++) {
        if (*s == ' ') buf[o++] = '_';
        else if (*s != '(' && *s != ')') buf[o++] = *s;
    }
    buf[o] = '\0';
}

/* Rows and last test accuracy / total seconds of a train log (0 rows when absent). */
static int read_log(const char *path, double *test_acc, double *seconds) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[1024];
    int rows = 0, acc_col = -1, sec_col = -1;
    *seconds = 0;
    if (fgets(line, sizeof line, f)) {
        int col = 0;
        for (char *tok = strtok(line, ",\n"); tok; tok = strtok(NULL, ",\n"), col++) {
            if (strcmp(tok, "test_acc") == 0) acc_col = col;
            if (strcmp(tok, "seconds") == 0) sec_col = col;
        }
    }
    while (acc_col >= 0 && sec_col >= 0 && fgets(line, sizeof line, f)) {
        int col = 0;
        /* strtok would merge empty fields; walk the commas by hand */
        char *p = line;
        for (; col <= acc_col || col <= sec_col; col++) {
            char *comma = strchr(p, ',');
            if (col == acc_col) *test_acc = strtod(p, NULL);
            if (col == sec_col) *seconds += strtod(p, NULL);
            if (!comma) break;
            p = comma + 1;
        }
        rows++;
    }
    fclose(f);
    return rows;
}

/* The command line of one `ghostnet train` run, built in place: values are formatted into
 * one buffer that the argument pointers refer to. */
typedef struct arg_list {
    const char *argv[48];
    int argc;
    int too_long; /* a value did not fit in text */
    char text[8192];
    size_t used;
} arg_list;

static void arg_add(arg_list *l, const char *name, const char *fmt, ...) GN_PRINTF(3, 4);
static void arg_add(arg_list *l, const char *name, const char *fmt, ...) {
    l->argv[l->argc++] = name;
    if (!fmt) return;
    char *value = l->text + l->used;
    const size_t room = sizeof l->text - l->used;
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(value, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        l->too_long = 1;
        return;
    }
    l->used += (size_t)n + 1;
    l->argv[l->argc++] = value;
}

static int train_variant(const options *o, const variant *v, const char *dir, int resume) {
    arg_list l;
    memset(&l, 0, sizeof l);
    arg_add(&l, "train", NULL);
    if (v->net) arg_add(&l, "--net", "%s/%s", o->nets, v->net);
    arg_add(&l, "--data", "%s", o->data);
    arg_add(&l, "--out", "%s", dir);
    arg_add(&l, "--width", "%g", v->scaled ? v->width * o->width : v->width);
    arg_add(&l, "--epochs", "%ld", o->epochs);
    arg_add(&l, "--batch", "%ld", o->batch);
    arg_add(&l, "--lr", "%g", o->lr);
    arg_add(&l, "--stem-stride", "%ld", o->stem_stride);
    arg_add(&l, "--threads", "%ld", o->threads);
    arg_add(&l, "--seed", "%ld", o->seed);
    arg_add(&l, "--weight-decay", "5e-5");
    arg_add(&l, "--label-smoothing", "0.1");
    arg_add(&l, "--in-chans", "%ld", o->in_chans);
    if (v->ratio) arg_add(&l, "--ratio", "%d", v->ratio);
    if (v->dw) arg_add(&l, "--dw-size", "%d", v->dw);
    if (o->limit_train) arg_add(&l, "--limit-train", "%ld", o->limit_train);
    if (o->limit_test) arg_add(&l, "--limit-test", "%ld", o->limit_test);
    if (resume) arg_add(&l, "--resume", NULL);
    if (l.too_long) return cli_error("experiment", "%s: path too long", dir);
    l.argv[l.argc] = NULL;
    return cmd_train(l.argc, (char **)l.argv);
}

/* A trained variant ready to time: its model, a batch-1 one-thread session and an input. */
typedef struct timer {
    gn_model *model;
    gn_session *session;
    float *x, *y;
} timer;

static void timer_close(timer *t) {
    gn_session_free(t->session);
    gn_model_free(t->model);
    free(t->x);
    free(t->y);
    memset(t, 0, sizeof *t);
}

/* Loads a trained model, fills in its size and cost, and plans it for timing. */
static int timer_open(const char *model_path, timer *t, result *res, gn_error *err) {
    memset(t, 0, sizeof *t);
    if (gn_model_load(model_path, NULL, &t->model, err) != GN_OK) return -1;
    const gn_config *c = gn_model_config(t->model);
    const int size = gn_model_preprocess(t->model)->input_size;
    res->input_size = size;
    res->params = (long long)gn_model_param_count(t->model);
    res->macs = (long long)gn_model_macs(t->model, size, size);
    gn_session_options so = gn_session_options_default();
    so.num_threads = 1;
    const size_t n_in = (size_t)c->in_chans * size * size;
    t->x = calloc(n_in, sizeof *t->x);
    t->y = calloc((size_t)c->num_classes, sizeof *t->y);
    if (!t->x || !t->y) {
        gn_fail(err, GN_ERR_NOMEM, "%s: out of memory", model_path);
        return -1;
    }
    if (gn_session_create(t->model, 1, size, size, &so, &t->session, err) != GN_OK) return -1;
    for (size_t i = 0; i < n_in; i++) t->x[i] = (float)((i * 7919) % 255) / 255.0f - 0.5f;
    return 0;
}

static int compare_doubles(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double min_of(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

enum { kLatencyRounds = 10 };

static long latency_runs_per_round(const options *o) {
    return (o->latency_runs + kLatencyRounds - 1) / kLatencyRounds;
}

/* Batch-1 one-thread latency of every variant. A shared machine's speed drifts over minutes and
 * other work comes in bursts, so the variants take turns: each round times every variant in a
 * row, and a variant's latency is its fastest round median, the round least disturbed. Timing
 * one variant after another would put the drift between them. */
static int measure_latencies(const options *o, timer *timers, result *res, int count,
                             gn_error *err) {
    const int per_round = (int)latency_runs_per_round(o);
    double *times = calloc((size_t)per_round, sizeof *times);
    double *rounds = calloc((size_t)count * kLatencyRounds, sizeof *rounds);
    int rc = times && rounds ? 0 : -1;
    if (rc) gn_fail(err, GN_ERR_NOMEM, "out of memory");
    for (int r = 0; r < kLatencyRounds && rc == 0; r++) {
        for (int i = 0; i < count && rc == 0; i++) {
            timer *t = &timers[i];
            for (int k = 0; k < 3 && rc == 0; k++) /* warm caches and the branch predictor */
                rc = gn_session_run(t->session, t->x, t->y, err) == GN_OK ? 0 : -1;
            for (int k = 0; k < per_round && rc == 0; k++) {
                const double t0 = now_seconds();
                rc = gn_session_run(t->session, t->x, t->y, err) == GN_OK ? 0 : -1;
                times[k] = now_seconds() - t0;
            }
            if (rc == 0) rounds[i * kLatencyRounds + r] = median(times, per_round);
        }
    }
    for (int i = 0; i < count && rc == 0; i++)
        res[i].latency_ms = min_of(&rounds[i * kLatencyRounds], kLatencyRounds) * 1e3;
    free(times);
    free(rounds);
    return rc;
}

static int write_outputs(const options *o, const experiment *ex, const result *res, double wall,
                         gn_error *err) {
    char path[1200];
    snprintf(path, sizeof path, "%s/results.md", o->out);
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return cli_error("experiment", "%s: %s", tmp, strerror(errno));
    double train_total = 0;
    for (int i = 0; i < ex->count; i++) train_total += res[i].train_seconds;
    fprintf(f, "# %s: %s\n\n", ex->name, ex->title);
    fprintf(f, "Data: `%s`%s; %ld epochs per variant, batch %ld, lr %g (SGD, Nesterov, warm-up + "
               "cosine, wd 5e-5, label smoothing 0.1), seed %ld; latency: batch 1, 1 thread, "
               "%d interleaved rounds of %ld runs per variant, fastest round median. "
               "Training time, all variants: %.0f s (this command: %.0f s).\n\n",
            o->data, o->limit_train ? " (training subset)" : "", o->epochs, o->batch, o->lr,
            o->seed, kLatencyRounds, latency_runs_per_round(o), train_total, wall);
    fprintf(f, "| variant | params | MACs | latency (ms) | test accuracy | train time (s) |\n");
    fprintf(f, "|---|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < ex->count; i++)
        fprintf(f, "| %s | %.3fM | %.2fM | %.3f | %.2f%% | %.0f |\n", ex->variants[i].label,
                res[i].params / 1e6, res[i].macs / 1e6, res[i].latency_ms, res[i].test_acc,
                res[i].train_seconds);
    fprintf(f, "\n![%s](%s.png)\n", ex->name, ex->name);
    int bad = fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return cli_error("experiment", "%s: cannot write", path);
    }
    snprintf(path, sizeof path, "%s/results.csv", o->out);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!(f = fopen(tmp, "w"))) return cli_error("experiment", "%s: %s", tmp, strerror(errno));
    fprintf(f, "variant,params,macs,latency_ms,test_acc,train_seconds\n");
    for (int i = 0; i < ex->count; i++)
        fprintf(f, "%s,%lld,%lld,%.4f,%.2f,%.1f\n", ex->variants[i].label, res[i].params,
                res[i].macs, res[i].latency_ms, res[i].test_acc, res[i].train_seconds);
    bad = fflush(f) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        remove(tmp);
        return cli_error("experiment", "%s: cannot write", path);
    }

    /* the chart: accuracy against d and s (ablation), else against MACs and latency */
    static const uint32_t kColors[] = {0x1f77b4u, 0xd62728u, 0x2ca02cu, 0x9467bdu};
    double px[2][4][16], py[4][16];
    gn_plot_series series[2][4];
    gn_plot_panel panels[2];
    if (strcmp(ex->name, "ablation") == 0) {
        /* two curves through the shared s = 2, d = 3 variant: d at s = 2, and s at d = 3 */
        int n[2] = {0, 0};
        for (int i = 0; i < ex->count && i < 16; i++) {
            const variant *v = &ex->variants[i];
            const int on_curve[2] = {v->ratio == 2, v->dw == 3};
            const double at[2] = {v->dw, v->ratio};
            for (int c = 0; c < 2; c++) {
                if (!on_curve[c]) continue;
                px[0][c][n[c]] = at[c];
                py[c][n[c]++] = res[i].test_acc;
            }
        }
        for (int c = 0; c < 2; c++)
            series[0][c] = (gn_plot_series){ex->series[c], px[0][c], py[c], n[c], kColors[c]};
        panels[0] = (gn_plot_panel){"ACCURACY VS D (S 2)", series[0], 1, 1, 0, "D"};
        panels[1] = (gn_plot_panel){"ACCURACY VS S (D 3)", series[0] + 1, 1, 1, 0, "S"};
    } else {
        int idx[4][16], counts[4] = {0}, nseries = 0;
        for (int i = 0; i < ex->count && i < 16; i++)
            idx[ex->variants[i].series][counts[ex->variants[i].series]++] = i;
        for (int s = 0; s < 4; s++) {
            if (!counts[s]) continue;
            for (int p = 0; p < 2; p++) {
                for (int k = 0; k < counts[s]; k++) {
                    const result *r = &res[idx[s][k]];
                    px[p][nseries][k] = p == 0 ? r->macs / 1e6 : r->latency_ms;
                    py[nseries][k] = r->test_acc;
                }
                series[p][nseries] = (gn_plot_series){ex->series[s], px[p][nseries], py[nseries],
                                                      counts[s], kColors[s]};
            }
            nseries++;
        }
        panels[0] = (gn_plot_panel){"ACCURACY VS MACS", series[0], nseries, 1, 0, "MILLION MACS"};
        panels[1] = (gn_plot_panel){"ACCURACY VS LATENCY", series[1], nseries, 1, 0,
                                    "MS (BATCH 1 / 1 THREAD)"};
    }
    snprintf(path, sizeof path, "%s/%s.png", o->out, ex->name);
    if (gn_plot_write_png(path, panels, 2, 1000, 420, err) != GN_OK)
        return cli_error("experiment", "%s", err->message);
    return 0;
}

int cmd_experiment(int argc, char **argv) {
    const char *cmd = "experiment";
    options o = {NULL, NULL, "nets", 10, 128, 1, 0, 0, 0, 0, 50, 0, 0.1, 1.0};
    const experiment *ex = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            fputs(kHelp, stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (ex) return cli_error(cmd, "one experiment at a time (got '%s' too)", a);
            for (int k = 0; k < COUNT(kExperiments); k++)
                if (strcmp(a, kExperiments[k].name) == 0) ex = &kExperiments[k];
            if (!ex)
                return cli_error(cmd, "unknown experiment '%s' (ablation, ghost-vs-vanilla, "
                                 "frontier)", a);
            continue;
        }
        const char *v = cli_value(cmd, argc, argv, &i);
        if (!v) return 1;
        static const struct {
            const char *name;
            long lo, hi;
            size_t offset;
        } kInts[] = {
            {"--epochs", 1, 10000, offsetof(options, epochs)},
            {"--batch", 2, 4096, offsetof(options, batch)},
            {"--stem-stride", 1, 2, offsetof(options, stem_stride)},
            {"--limit-train", 1, 100000000, offsetof(options, limit_train)},
            {"--limit-test", 1, 100000000, offsetof(options, limit_test)},
            {"--threads", 0, 1024, offsetof(options, threads)},
            {"--seed", 0, 2147483647L, offsetof(options, seed)},
            {"--latency-runs", 1, 100000, offsetof(options, latency_runs)},
            {"--in-chans", 1, 64, offsetof(options, in_chans)},
        };
        int done = 0;
        for (int k = 0; k < COUNT(kInts) && !done; k++)
            if (strcmp(a, kInts[k].name) == 0) {
                if (cli_parse_int(cmd, a, v, kInts[k].lo, kInts[k].hi,
                                  (long *)((char *)&o + kInts[k].offset)))
                    return 1;
                done = 1;
            }
        if (done) continue;
        if (strcmp(a, "--data") == 0) o.data = v;
        else if (strcmp(a, "--out") == 0) o.out = v;
        else if (strcmp(a, "--nets") == 0) o.nets = v;
        else if (strcmp(a, "--lr") == 0) {
            if (cli_parse_float(cmd, a, v, 1e-6, 10, &o.lr)) return 1;
        } else if (strcmp(a, "--width") == 0) {
            if (cli_parse_float(cmd, a, v, 0.05, 4, &o.width)) return 1;
        } else {
            return cli_error(cmd, "unknown option '%s' (see --help)", a);
        }
    }
    if (!ex) return cli_error(cmd, "which experiment? (ablation, ghost-vs-vanilla, frontier)");
    if (!o.data || !o.out) return cli_error(cmd, "--data and --out are required");
    if (!o.in_chans) { /* MNIST-style IDX files are gray */
        char path[1200];
        struct stat sb;
        snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", o.data);
        int idx = stat(path, &sb) == 0;
        snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", o.data);
        idx |= stat(path, &sb) == 0;
        o.in_chans = idx ? 1 : 3;
    }
    for (int i = 0; i < ex->count; i++) {
        const variant *v = &ex->variants[i];
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", o.nets, v->net ? v->net : "");
        struct stat sb;
        if (v->net && stat(path, &sb) != 0)
            return cli_error(cmd, "%s: %s (use --nets DIR)", path, strerror(errno));
    }
    if (mkdir(o.out, 0777) != 0 && errno != EEXIST)
        return cli_error(cmd, "%s: cannot create folder: %s", o.out, strerror(errno));
    result res[16];
    memset(res, 0, sizeof res);
    const double t0 = now_seconds();
    for (int i = 0; i < ex->count; i++) {
        const variant *v = &ex->variants[i];
        char folder[128], dir[1200], path[1300];
        folder_of(v->label, folder, sizeof folder);
        snprintf(dir, sizeof dir, "%s/%s", o.out, folder);
        snprintf(path, sizeof path, "%s/log.csv", dir);
        int rows = read_log(path, &res[i].test_acc, &res[i].train_seconds);
        printf("== %s [%d/%d] %s\n", ex->name, i + 1, ex->count, v->label);
        fflush(stdout);
        if (rows < o.epochs) {
            snprintf(path, sizeof path, "%s/train_state.safetensors", dir);
            struct stat sb;
            int rc = train_variant(&o, v, dir, rows > 0 && stat(path, &sb) == 0);
            if (rc == 130) return 130;
            if (rc != 0) return cli_error(cmd, "training %s failed", v->label);
            snprintf(path, sizeof path, "%s/log.csv", dir);
            rows = read_log(path, &res[i].test_acc, &res[i].train_seconds);
        }
        res[i].epochs_done = rows;
    }
    /* measured after all training, so that the variants are timed side by side */
    printf("timing %d variants: batch 1, 1 thread, %d interleaved rounds\n", ex->count,
           kLatencyRounds);
    fflush(stdout);
    timer timers[16];
    memset(timers, 0, sizeof timers);
    gn_error err = {0};
    int rc = 0;
    for (int i = 0; i < ex->count && rc == 0; i++) {
        char folder[128], path[1300];
        folder_of(ex->variants[i].label, folder, sizeof folder);
        snprintf(path, sizeof path, "%s/%s/model.safetensors", o.out, folder);
        rc = timer_open(path, &timers[i], &res[i], &err);
    }
    if (rc == 0) rc = measure_latencies(&o, timers, res, ex->count, &err);
    for (int i = 0; i < ex->count; i++) timer_close(&timers[i]);
    if (rc != 0) return cli_error(cmd, "%s", err.message);
    for (int i = 0; i < ex->count; i++)
        printf("   %s: %.3fM params, %.2fM MACs, %.3f ms, test accuracy %.2f%%\n",
               ex->variants[i].label, res[i].params / 1e6, res[i].macs / 1e6, res[i].latency_ms,
               res[i].test_acc);
    rc = write_outputs(&o, ex, res, now_seconds() - t0, &err);
    if (rc == 0) printf("wrote %s/results.md, %s/results.csv, %s/%s.png\n", o.out, o.out, o.out,
                        ex->name);
    return rc;
}
