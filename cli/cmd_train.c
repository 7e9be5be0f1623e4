#define _POSIX_C_SOURCE 200809L /* clock_gettime, sigaction, isatty, fileno */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "core/common.h"
#include "data_util.h"
#include "io/plot.h"
#include "io/safetensors.h"
#include "model/model_internal.h"
#include "train/train.h"

static const char kHelp[] =
    "usage: ghostnet train --data PATH --out DIR [options]\n"
    "Trains a GhostNet on the train split of PATH and evaluates it on the test split after\n"
    "every epoch. PATH holds MNIST-style IDX files (train-/t10k-images-idx3-ubyte[.gz] and\n"
    "labels, e.g. /usr/share/datasets/fashion-mnist) or image folders PATH/train and PATH/val\n"
    "(or PATH/test) with one sub-folder per class.\n"
    "DIR receives, after every epoch (each file written atomically):\n"
    "  model.safetensors        the model (timm keys; metadata: architecture, input size, mean/std)\n"
    "  model_ema.safetensors    with --ema: the weight average, evaluated beside the model\n"
    "  train_state.safetensors  optimizer buffers, RNG position and progress, for --resume\n"
    "  log.csv, log.json        one row per epoch; plot.png: loss and accuracy per epoch\n"
    "Ctrl-C stops after the current step and saves a checkpoint that --resume continues from;\n"
    "with the same options and thread count the resumed run reproduces the uninterrupted one.\n\n"
    "options:\n"
    "  --data PATH           dataset (required)\n"
    "  --out DIR             output folder (required; created if missing)\n"
    "  --resume              continue from DIR's checkpoint\n"
    "  --init FILE           start from the weights of a model file (fine-tuning; the\n"
    "                        architecture comes from the file)\n"
    "  --epochs N            epochs (default 10)\n"
    "  --batch N             batch size (default 128)\n"
    "  --optimizer NAME      sgd or adamw (default sgd)\n"
    "  --lr X                base learning rate (default 0.1; scaled by nothing)\n"
    "  --momentum X          SGD momentum (default 0.9)\n"
    "  --no-nesterov         plain momentum instead of Nesterov\n"
    "  --weight-decay X      weight decay (default 5e-5)\n"
    "  --no-decay-bn-bias    no weight decay on BN parameters and biases\n"
    "  --schedule NAME       cosine (linear warm-up then cosine, default) or step\n"
    "  --warmup-epochs N     warm-up epochs for cosine (default 1)\n"
    "  --step-epochs N       step schedule: decay every N epochs (default 30)\n"
    "  --step-gamma X        step schedule: decay factor (default 0.1)\n"
    "  --label-smoothing X   (default 0.1)\n"
    "  --ema DECAY           also keep an exponential moving average of the weights and BN\n"
    "                        statistics, updated every step (e.g. 0.9998; default 0: off)\n"
    "  --crop-padding N      random crop with N pixels of zero padding (default 2; 0 disables)\n"
    "  --hflip P             horizontal flip probability (default 0.5)\n"
    "  --erase P             random erasing probability (default 0)\n"
    "  --rrc                 random-resized crop instead of the padded crop (ImageNet style)\n"
    "  --input-size S        network input size (default: the dataset's image size)\n"
    "  --seed N              seed for initialisation, shuffling, augmentation, dropout (default 0)\n"
    "  --threads N           worker threads, 0 = all cores (default 0)\n"
    "  --limit-train N       use only the first N training images (smoke tests)\n"
    "  --limit-test N        use only the first N test images\n"
    "  --stop-after N        act as if Ctrl-C came after N steps of this run (tests)\n" CLI_MODEL_OPTIONS_HELP
    "  --help                this text\n";

/* Set by SIGINT/SIGTERM; the loop checks it between steps. The only global in the tool: a
 * signal handler can reach nothing else. */
static volatile sig_atomic_t g_stop_requested;

static void on_signal(int sig) {
    (void)sig;
    g_stop_requested = 1;
}

typedef struct train_args {
    const char *data, *out, *init;
    int resume;
    long epochs, batch, warmup_epochs, step_epochs, crop_padding, seed, threads, input_size;
    long limit_train, limit_test, stop_after;
    double lr, momentum, weight_decay, step_gamma, label_smoothing, hflip, erase, ema;
    int nesterov, no_decay_bn_bias, adamw, step_schedule, rrc;
    cli_model mdl;
} train_args;

/* Progress of a run: what a checkpoint must restore besides weights and optimizer buffers. */
typedef struct progress {
    int64_t epoch;       /* current epoch (0-based) */
    int64_t batch_done;  /* batches of it already trained */
    double loss_sum;     /* over the epoch's samples so far */
    int64_t correct, seen;
    double seconds;      /* training time of the epoch so far */
    gn_epoch_record log[4096];
    int log_rows;
} progress;

static int parse_args(int argc, char **argv, train_args *a) {
    const char *cmd = "train";
    memset(a, 0, sizeof *a);
    a->mdl = cli_model_default();
    a->mdl.config.num_classes = 0; /* from the dataset unless given */
    a->epochs = 10;
    a->batch = 128;
    a->warmup_epochs = 1;
    a->step_epochs = 30;
    a->crop_padding = 2;
    a->lr = 0.1;
    a->momentum = 0.9;
    a->weight_decay = 5e-5;
    a->step_gamma = 0.1;
    a->label_smoothing = 0.1;
    a->hflip = 0.5;
    a->nesterov = 1;
    for (int i = 1; i < argc; i++) {
        int r = cli_model_option(cmd, argc, argv, &i, &a->mdl);
        if (r < 0) return -1;
        if (r > 0) continue;
        const char *o = argv[i], *v = NULL;
        if (strcmp(o, "--help") == 0) {
            fputs(kHelp, stdout);
            return 1;
        }
        static const char *const flags[] = {"--resume", "--no-nesterov", "--no-decay-bn-bias",
                                            "--rrc"};
        int *flag_targets[] = {&a->resume, &a->nesterov, &a->no_decay_bn_bias, &a->rrc};
        int matched = 0;
        for (int k = 0; k < 4; k++)
            if (strcmp(o, flags[k]) == 0) {
                *flag_targets[k] = k == 1 ? 0 : 1;
                matched = 1;
            }
        if (matched) continue;
        if (!(v = cli_value(cmd, argc, argv, &i))) return -1;
        struct {
            const char *name;
            long *l;
            double *d;
            double lo, hi;
        } const nums[] = {
            {"--epochs", &a->epochs, NULL, 1, 100000},
            {"--batch", &a->batch, NULL, 2, 65536},
            {"--warmup-epochs", &a->warmup_epochs, NULL, 0, 100000},
            {"--step-epochs", &a->step_epochs, NULL, 1, 100000},
            {"--crop-padding", &a->crop_padding, NULL, 0, 64},
            {"--seed", &a->seed, NULL, 0, 2147483647},
            {"--threads", &a->threads, NULL, 0, 1024},
            {"--input-size", &a->input_size, NULL, 1, 8192},
            {"--limit-train", &a->limit_train, NULL, 1, 2147483647},
            {"--limit-test", &a->limit_test, NULL, 1, 2147483647},
            {"--stop-after", &a->stop_after, NULL, 1, 2147483647},
            {"--lr", NULL, &a->lr, 0, 100},
            {"--momentum", NULL, &a->momentum, 0, 0.9999},
            {"--weight-decay", NULL, &a->weight_decay, 0, 1},
            {"--step-gamma", NULL, &a->step_gamma, 0, 1},
            {"--label-smoothing", NULL, &a->label_smoothing, 0, 0.999},
            {"--hflip", NULL, &a->hflip, 0, 1},
            {"--erase", NULL, &a->erase, 0, 1},
            {"--ema", NULL, &a->ema, 0, 0.9999999},
        };
        for (size_t k = 0; k < sizeof nums / sizeof nums[0] && !matched; k++) {
            if (strcmp(o, nums[k].name) != 0) continue;
            matched = 1;
            if (nums[k].l ? cli_parse_int(cmd, o, v, (long)nums[k].lo, (long)nums[k].hi, nums[k].l)
                          : cli_parse_float(cmd, o, v, nums[k].lo, nums[k].hi, nums[k].d))
                return -1;
        }
        if (matched) continue;
        if (strcmp(o, "--data") == 0) {
            a->data = v;
        } else if (strcmp(o, "--init") == 0) {
            a->init = v;
        } else if (strcmp(o, "--out") == 0) {
            a->out = v;
        } else if (strcmp(o, "--optimizer") == 0) {
            if (strcmp(v, "sgd") != 0 && strcmp(v, "adamw") != 0)
                return cli_error(cmd, "--optimizer must be sgd or adamw, got '%s'", v), -1;
            a->adamw = strcmp(v, "adamw") == 0;
        } else if (strcmp(o, "--schedule") == 0) {
            if (strcmp(v, "cosine") != 0 && strcmp(v, "step") != 0)
                return cli_error(cmd, "--schedule must be cosine or step, got '%s'", v), -1;
            a->step_schedule = strcmp(v, "step") == 0;
        } else {
            return cli_error(cmd, "unknown option '%s' (see --help)", o), -1;
        }
    }
    if (!a->data) return cli_error(cmd, "--data is required"), -1;
    if (!a->out) return cli_error(cmd, "--out is required"), -1;
    return 0;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void path_join(char *buf, size_t n, const char *dir, const char *name) {
    snprintf(buf, n, "%s/%s", dir, name);
}

/* ---- checkpoint ----------------------------------------------------------------------- */

static const char kStateFile[] = "train_state.safetensors";
static const char kModelFile[] = "model.safetensors";
static const char kEmaModelFile[] = "model_ema.safetensors";

/* The fields a resumed run must agree on; anything else may change between runs only at the
 * cost of reproducibility, so they are checked too. */
static void run_signature(const train_args *a, char *buf, size_t n) {
    int len = snprintf(buf, n,
             "epochs=%ld batch=%ld opt=%s lr=%.9g mom=%.9g nesterov=%d wd=%.9g nodecay=%d "
             "sched=%s warmup=%ld step=%ld gamma=%.9g ls=%.9g crop=%ld flip=%.9g erase=%.9g "
             "rrc=%d seed=%ld threads=%ld limit=%ld/%ld",
             a->epochs, a->batch, a->adamw ? "adamw" : "sgd", a->lr, a->momentum, a->nesterov,
             a->weight_decay, a->no_decay_bn_bias, a->step_schedule ? "step" : "cosine",
             a->warmup_epochs, a->step_epochs, a->step_gamma, a->label_smoothing, a->crop_padding,
             a->hflip, a->erase, a->rrc, a->seed, a->threads, a->limit_train, a->limit_test);
    /* Only when on, so that the checkpoints of runs without it keep their signature. */
    if (a->ema > 0 && len > 0 && (size_t)len < n) snprintf(buf + len, n - (size_t)len, " ema=%.9g", a->ema);
}

/* The float buffers a checkpoint carries besides the weights, all in the model's layout. */
typedef struct state_buffer {
    const char *name, *what;
    float *data;
} state_buffer;

static int state_buffers(gn_optimizer *opt, gn_ema *ema, state_buffer out[3]) {
    const state_buffer all[3] = {{"optimizer.buf1", "optimizer state", gn_optimizer_buffer(opt, 0)},
                                 {"optimizer.buf2", "optimizer state", gn_optimizer_buffer(opt, 1)},
                                 {"ema.data", "weight average", gn_ema_buffer(ema)}};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (all[i].data) out[n++] = all[i];
    return n;
}

static gn_status save_checkpoint(const train_args *a, gn_model *model, gn_optimizer *opt,
                                 gn_ema *ema, const gn_train_graph *graph, const progress *p,
                                 gn_error *err) {
    char path[1024];
    path_join(path, sizeof path, a->out, kModelFile);
    gn_status st = gn_model_save(model, path, err);
    if (st != GN_OK) return st;

    /* Optimizer and average buffers, the log, and progress as metadata. */
    state_buffer bufs[3];
    gn_st_write_tensor t[3];
    memset(t, 0, sizeof t);
    const size_t nt = (size_t)state_buffers(opt, ema, bufs);
    for (size_t i = 0; i < nt; i++) {
        t[i].name = bufs[i].name;
        t[i].dtype = GN_DTYPE_F32;
        t[i].ndim = 1;
        t[i].shape[0] = (int64_t)model->arch->total_floats;
        t[i].f32 = bufs[i].data;
    }
    /* The log as text with full double precision: a float tensor would round the rows of a
     * resumed run differently from the uninterrupted one. */
    const size_t log_cap = (size_t)p->log_rows * 10 * 26 + 1;
    char *log = gn_malloc(log_cap);
    if (!log) return gn_fail(err, GN_ERR_NOMEM, "out of memory");
    size_t len = 0;
    log[0] = '\0';
    for (int r = 0; r < p->log_rows; r++) {
        const gn_epoch_record *e = &p->log[r];
        const double v[10] = {e->epoch,     e->lr,        e->train_loss,    e->train_acc,
                              e->test_loss, e->test_acc,  e->images_per_s,  e->seconds,
                              e->ema_test_loss, e->ema_test_acc};
        for (int k = 0; k < 10; k++)
            len += (size_t)snprintf(log + len, log_cap - len, "%.17g%s", v[k],
                                    k < 9 ? "," : ";");
    }
    char sig[512], v[7][64];
    run_signature(a, sig, sizeof sig);
    snprintf(v[0], 64, "%lld", (long long)p->epoch);
    snprintf(v[1], 64, "%lld", (long long)p->batch_done);
    snprintf(v[2], 64, "%.17g", p->loss_sum);
    snprintf(v[3], 64, "%lld/%lld", (long long)p->correct, (long long)p->seen);
    snprintf(v[4], 64, "%lld", (long long)gn_optimizer_steps(opt));
    snprintf(v[5], 64, "%lld", (long long)gn_train_step_count(graph));
    snprintf(v[6], 64, "%.17g", p->seconds);
    const gn_st_meta meta[] = {{"run", sig},        {"epoch", v[0]},           {"batch_done", v[1]},
                               {"loss_sum", v[2]},  {"correct_seen", v[3]},    {"optimizer_steps", v[4]},
                               {"graph_steps", v[5]}, {"seconds", v[6]}, {"log", log}};
    path_join(path, sizeof path, a->out, kStateFile);
    st = gn_st_write(path, t, nt, meta, sizeof meta / sizeof meta[0], err);
    free(log);
    return st;
}

static gn_status meta_i64(const gn_st_file *f, const char *path, const char *key, long long *out,
                          gn_error *err) {
    const char *s = gn_st_meta_get(f, key);
    char *end;
    errno = 0;
    if (!s || (*out = strtoll(s, &end, 10), end == s || *end || errno))
        return gn_fail(err, GN_ERR_FORMAT, "%s: missing or bad metadata '%s'", path, key);
    return GN_OK;
}

static gn_status load_checkpoint(const train_args *a, gn_model *model, gn_optimizer *opt,
                                 gn_ema *ema, gn_train_graph *graph, progress *p,
                                 gn_error *err) {
    char path[1024], sig[512];
    path_join(path, sizeof path, a->out, kStateFile);
    gn_st_file f;
    gn_status st = gn_st_read(path, &f, err);
    if (st != GN_OK) return st;
    run_signature(a, sig, sizeof sig);
    const char *saved = gn_st_meta_get(&f, "run");
    long long epoch = 0, done = 0, opt_steps = 0, graph_steps = 0, correct = 0, seen = 0;
    if (!saved || strcmp(saved, sig) != 0) {
        st = gn_fail(err, GN_ERR_INVALID_ARG,
                     "%s: was made with other options (%s); resume with the same ones", path,
                     saved ? saved : "none recorded");
        goto done;
    }
    if ((st = meta_i64(&f, path, "epoch", &epoch, err)) != GN_OK ||
        (st = meta_i64(&f, path, "batch_done", &done, err)) != GN_OK ||
        (st = meta_i64(&f, path, "optimizer_steps", &opt_steps, err)) != GN_OK ||
        (st = meta_i64(&f, path, "graph_steps", &graph_steps, err)) != GN_OK)
        goto done;
    const char *cs = gn_st_meta_get(&f, "correct_seen"), *ls = gn_st_meta_get(&f, "loss_sum");
    const char *secs = gn_st_meta_get(&f, "seconds");
    if (!cs || sscanf(cs, "%lld/%lld", &correct, &seen) != 2 || !ls || !secs) {
        st = gn_fail(err, GN_ERR_FORMAT, "%s: missing progress metadata", path);
        goto done;
    }
    p->epoch = epoch;
    p->batch_done = done;
    p->loss_sum = strtod(ls, NULL);
    p->seconds = strtod(secs, NULL);
    p->correct = correct;
    p->seen = seen;
    state_buffer bufs[3];
    const int nbufs = state_buffers(opt, ema, bufs);
    for (int i = 0; i < nbufs; i++) {
        const gn_st_tensor *t = gn_st_find(&f, bufs[i].name);
        if (!t || t->numel != model->arch->total_floats) {
            st = gn_fail(err, GN_ERR_SHAPE, "%s: %s missing or of the wrong size", path, bufs[i].what);
            goto done;
        }
        if ((st = gn_st_to_f32(&f, t, bufs[i].data, err)) != GN_OK) goto done;
    }
    const char *log = gn_st_meta_get(&f, "log");
    p->log_rows = 0;
    for (const char *q = log; q && *q && p->log_rows < (int)(sizeof p->log / sizeof p->log[0]);) {
        /* Rows of 10 values; checkpoints written before the weight average have 8. */
        double v[10] = {0, 0, 0, 0, 0, 0, 0, 0, NAN, NAN};
        int used = 0, ema_used = 0;
        if (sscanf(q, "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf%n", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &used) != 8 ||
            (q[used] == ',' &&
             sscanf(q + used, ",%lf,%lf%n", &v[8], &v[9], &ema_used) != 2) ||
            q[used + ema_used] != ';') {
            st = gn_fail(err, GN_ERR_FORMAT, "%s: bad 'log' metadata", path);
            goto done;
        }
        p->log[p->log_rows++] =
            (gn_epoch_record){(int)v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9]};
        q += used + ema_used + 1;
    }
    gn_optimizer_set_steps(opt, opt_steps);
    gn_train_set_step_count(graph, graph_steps);
    gn_ema_set_updates(ema, opt_steps); /* both start with the run and step together */
done:
    gn_st_free(&f);
    return st;
}

/* ---- progress bar ---------------------------------------------------------------------- */

static void show_progress(int tty, const train_args *a, const progress *p, size_t batches,
                          double ips, int final) {
    const double frac = batches ? (double)p->batch_done / batches : 1.0;
    const double acc = p->seen ? 100.0 * p->correct / p->seen : 0.0;
    const double loss = p->seen ? p->loss_sum / p->seen : 0.0;
    const double eta = ips > 0 ? (double)(batches - p->batch_done) * a->batch / ips : 0.0;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "%sepoch %lld/%ld [%s] %lld/%zu loss %.4f acc %.2f%% %.0f img/s ETA %d:%02d%s",
            tty ? "\r" : "", (long long)p->epoch + 1, a->epochs, bar, (long long)p->batch_done,
            batches, loss, acc, ips, (int)eta / 60, (int)eta % 60, tty && !final ? "" : "\n");
    fflush(stderr);
}

/* ---- the run --------------------------------------------------------------------------- */

typedef struct run {
    train_args a;
    gn_dataset train, test;
    gn_model *model;
    gn_train_graph *graph;
    gn_optimizer *opt;
    gn_ema *ema; /* NULL without --ema */
    gn_loader *loader;
    progress *p;
    int64_t steps_per_epoch;
} run;

static float learning_rate(const run *r, int64_t step) {
    const train_args *a = &r->a;
    if (a->step_schedule)
        return gn_lr_step_decay(step, (float)a->lr, a->step_epochs * r->steps_per_epoch,
                                (float)a->step_gamma);
    return gn_lr_warmup_cosine(step, (float)a->lr, a->warmup_epochs * r->steps_per_epoch,
                               a->epochs * r->steps_per_epoch, 0.0f);
}

static gn_status setup(run *r, gn_error *err) {
    train_args *a = &r->a;
    gn_status st;
    char path[1024];
    path_join(path, sizeof path, a->out, kModelFile);
    /* A model read from a file (resume, fine-tuning) brings its architecture, so its input
     * channels decide how the images are read; --in-chans and friends are ignored then. */
    const char *model_file = a->resume ? path : a->init;
    if (model_file && (st = gn_model_load(model_file, NULL, &r->model, err)) != GN_OK) return st;
    const int channels = r->model ? gn_model_config(r->model)->in_chans : a->mdl.config.in_chans;
    if ((st = cli_load_split(a->data, "train", channels, (int)a->input_size, &r->train, err)) != GN_OK)
        return st;
    if ((st = cli_load_split(a->data, "test", channels, (int)a->input_size, &r->test, err)) != GN_OK)
        return st;
    if (a->limit_train && a->limit_train < r->train.count) r->train.count = (int)a->limit_train;
    if (a->limit_test && a->limit_test < r->test.count) r->test.count = (int)a->limit_test;
    if ((st = gn_dataset_compute_stats(&r->train, err)) != GN_OK) return st;
    const int size = a->input_size ? (int)a->input_size : r->train.height;

    if (r->model) {
        const int classes = gn_model_config(r->model)->num_classes;
        if (classes < r->train.num_classes)
            return gn_fail(err, GN_ERR_SHAPE, "%s: %d classes, the data has %d", model_file,
                           classes, r->train.num_classes);
    } else {
        if (a->mdl.config.num_classes == 0) a->mdl.config.num_classes = r->train.num_classes;
        if (r->train.num_classes > a->mdl.config.num_classes)
            return gn_fail(err, GN_ERR_INVALID_ARG, "the dataset has %d classes, --num-classes %d",
                           r->train.num_classes, a->mdl.config.num_classes);
        if ((st = cli_model_create(&a->mdl, &r->model, err)) == GN_OK)
            gn_model_init_random(r->model, (uint64_t)a->seed);
    }
    if (st != GN_OK) return st;
    gn_preprocess pre = *gn_model_preprocess(r->model);
    pre.input_size = size;
    pre.resize_size = r->train.height; /* images are stored at this size already */
    for (int i = 0; i < 3; i++) {
        pre.mean[i] = r->train.mean[i < r->train.channels ? i : 0];
        pre.std[i] = r->train.std[i < r->train.channels ? i : 0];
    }
    gn_model_set_preprocess(r->model, &pre);

    gn_train_options to = gn_train_options_default();
    to.label_smoothing = (float)a->label_smoothing;
    to.seed = (uint64_t)a->seed;
    to.num_threads = (int)a->threads;
    if ((st = gn_train_graph_create(r->model, (int)a->batch, size, size, &to, &r->graph, err)) != GN_OK)
        return st;
    gn_optim_options oo = gn_optim_options_default();
    oo.kind = a->adamw ? GN_OPTIM_ADAMW : GN_OPTIM_SGD;
    oo.momentum = (float)a->momentum;
    oo.nesterov = a->nesterov;
    oo.weight_decay = (float)a->weight_decay;
    oo.no_decay_bn_bias = a->no_decay_bn_bias;
    if ((st = gn_optimizer_create(r->model, &oo, &r->opt, err)) != GN_OK) return st;
    if (a->ema > 0 && (st = gn_ema_create(r->model, (float)a->ema, &r->ema, err)) != GN_OK)
        return st;

    gn_augment aug = a->rrc ? gn_augment_imagenet_default() : gn_augment_small_default();
    aug.crop_padding = (int)a->crop_padding;
    aug.hflip_prob = (float)a->hflip;
    aug.erase_prob = (float)a->erase;
    aug.random_resized_crop = a->rrc;
    if ((st = gn_augment_validate(&aug, err)) != GN_OK) return st;
    gn_loader_options lo = gn_loader_options_default();
    lo.batch = (int)a->batch;
    lo.shuffle = 1;
    lo.drop_last = 1;
    lo.seed = (uint64_t)a->seed;
    lo.out_height = lo.out_width = size;
    lo.augment = &aug; /* copied by the loader */
    for (int i = 0; i < 3; i++) {
        lo.mean[i] = pre.mean[i];
        lo.std[i] = pre.std[i];
    }
    if ((st = gn_loader_create(&r->train, &lo, &r->loader, err)) != GN_OK) return st;
    r->steps_per_epoch = (int64_t)gn_loader_num_batches(r->loader);
    if (r->steps_per_epoch == 0)
        return gn_fail(err, GN_ERR_INVALID_ARG, "%d training images make no batch of %ld",
                       r->train.count, a->batch);
    if (a->resume) return load_checkpoint(a, r->model, r->opt, r->ema, r->graph, r->p, err);
    return GN_OK;
}

static gn_status end_epoch(run *r, double train_seconds, gn_error *err) {
    const train_args *a = &r->a;
    progress *p = r->p;
    cli_eval_result ev;
    gn_status st = cli_evaluate(r->model, &r->test, (int)a->batch, (int)a->threads, &ev, err);
    if (st != GN_OK) return st;
    gn_epoch_record *e = &p->log[p->log_rows++];
    e->epoch = (int)p->epoch + 1;
    e->lr = learning_rate(r, gn_optimizer_steps(r->opt) - 1);
    e->train_loss = p->loss_sum / p->seen;
    e->train_acc = 100.0 * p->correct / p->seen;
    e->test_loss = ev.loss;
    e->test_acc = 100.0 * ev.correct / ev.count;
    e->images_per_s = p->seen / train_seconds;
    e->seconds = train_seconds;
    e->ema_test_loss = e->ema_test_acc = NAN;
    cli_eval_result_free(&ev);
    char path[1024];
    if (r->ema) {
        /* The average takes the model's place for its evaluation and file. */
        gn_ema_swap(r->ema, r->model);
        st = cli_evaluate(r->model, &r->test, (int)a->batch, (int)a->threads, &ev, err);
        if (st == GN_OK) {
            e->ema_test_loss = ev.loss;
            e->ema_test_acc = 100.0 * ev.correct / ev.count;
            cli_eval_result_free(&ev);
            path_join(path, sizeof path, a->out, kEmaModelFile);
            st = gn_model_save(r->model, path, err);
        }
        gn_ema_swap(r->ema, r->model);
        if (st != GN_OK) return st;
    }
    printf("epoch %d/%ld: lr %.5f train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%%",
           e->epoch, a->epochs, e->lr, e->train_loss, e->train_acc, e->test_loss, e->test_acc);
    if (r->ema) printf(" | EMA test loss %.4f acc %.2f%%", e->ema_test_loss, e->ema_test_acc);
    printf(" | %.0f img/s, %.0f s\n", e->images_per_s, e->seconds);
    fflush(stdout);
    p->epoch++;
    p->batch_done = 0;
    p->loss_sum = 0.0;
    p->correct = p->seen = 0;
    p->seconds = 0.0;
    if ((st = save_checkpoint(a, r->model, r->opt, r->ema, r->graph, p, err)) != GN_OK) return st;
    path_join(path, sizeof path, a->out, "log.csv");
    if ((st = gn_epoch_log_write_csv(path, p->log, p->log_rows, err)) != GN_OK) return st;
    path_join(path, sizeof path, a->out, "log.json");
    if ((st = gn_epoch_log_write_json(path, p->log, p->log_rows, err)) != GN_OK) return st;
    path_join(path, sizeof path, a->out, "plot.png");
    return gn_plot_training(path, p->log, p->log_rows, 960, 400, err);
}

static gn_status train_loop(run *r, gn_error *err) {
    const train_args *a = &r->a;
    progress *p = r->p;
    const int tty = isatty(fileno(stderr));
    gn_status st = GN_OK;
    long steps_this_run = 0;
    for (; p->epoch < a->epochs; ) {
        if ((st = gn_loader_start_epoch(r->loader, (uint64_t)p->epoch, err)) != GN_OK) return st;
        /* A resumed epoch skips the batches already trained: the order depends only on
         * (seed, epoch), so the remaining ones are exactly those of the uninterrupted run. */
        for (int64_t k = 0; k < p->batch_done; k++) {
            const float *x;
            const int *y;
            int count;
            if ((st = gn_loader_next(r->loader, &x, &y, &count, err)) != GN_OK) return st;
        }
        double t_epoch = now_seconds(), t_shown = 0.0;
        const double seconds_before = p->seconds;
        for (;;) {
            const float *x;
            const int *y;
            int count;
            if ((st = gn_loader_next(r->loader, &x, &y, &count, err)) != GN_OK) return st;
            if (count == 0) break;
            float loss;
            int correct;
            const float lr = learning_rate(r, gn_optimizer_steps(r->opt));
            if ((st = gn_train_forward_backward(r->graph, x, y, &loss, &correct, err)) != GN_OK)
                return st;
            if (!isfinite(loss))
                return gn_fail(err, GN_ERR_INVALID_ARG,
                               "the loss became %g at step %lld: lower --lr", (double)loss,
                               (long long)gn_optimizer_steps(r->opt));
            if ((st = gn_optimizer_step(r->opt, r->model, gn_train_grads(r->graph), lr, err)) != GN_OK ||
                (r->ema && (st = gn_ema_update(r->ema, r->model, err)) != GN_OK))
                return st;
            p->batch_done++;
            p->loss_sum += (double)loss * count;
            p->correct += correct;
            p->seen += count;
            const double now = now_seconds();
            p->seconds = seconds_before + (now - t_epoch);
            const double ips = p->seconds > 0 ? p->seen / p->seconds : 0.0;
            if (now - t_shown > (tty ? 0.25 : 30.0)) {
                show_progress(tty, a, p, (size_t)r->steps_per_epoch, ips, 0);
                t_shown = now;
            }
            if (a->stop_after && ++steps_this_run >= a->stop_after) g_stop_requested = 1;
            if (g_stop_requested) {
                if (tty) fputc('\n', stderr);
                st = save_checkpoint(a, r->model, r->opt, r->ema, r->graph, p, err);
                if (st != GN_OK) return st;
                fprintf(stderr, "ghostnet train: interrupted; checkpoint saved in %s "
                                "(continue with --resume)\n", a->out);
                return GN_ERR_INTERRUPTED;
            }
        }
        show_progress(tty, a, p, (size_t)r->steps_per_epoch,
                      p->seconds > 0 ? p->seen / p->seconds : 0.0, 1);
        if ((st = end_epoch(r, p->seconds, err)) != GN_OK) return st;
    }
    return GN_OK;
}

static void teardown(run *r) {
    gn_loader_free(r->loader);
    gn_ema_free(r->ema);
    gn_optimizer_free(r->opt);
    gn_train_graph_free(r->graph);
    gn_model_free(r->model);
    gn_dataset_free(&r->train);
    gn_dataset_free(&r->test);
    free(r->p);
}

int cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    run r;
    memset(&r, 0, sizeof r);
    int pr = parse_args(argc, argv, &r.a);
    if (pr != 0) return pr > 0 ? 0 : 1;
    if (mkdir(r.a.out, 0777) != 0 && errno != EEXIST)
        return cli_error(cmd, "%s: cannot create folder: %s", r.a.out, strerror(errno));
    r.p = calloc(1, sizeof *r.p);
    if (!r.p) return cli_error(cmd, "out of memory");
    gn_error err = {0};
    gn_status st = setup(&r, &err);
    if (st == GN_OK) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        printf("training %s %gx (s=%d, d=%d, %d ch, %d classes) on %d images, testing on "
               "%d; %lld steps per epoch\n",
               r.a.mdl.net ? r.a.mdl.net : "GhostNet", (double)gn_model_config(r.model)->width, gn_model_config(r.model)->ghost_ratio,
               gn_model_config(r.model)->ghost_dw_size, gn_model_config(r.model)->in_chans,
               gn_model_config(r.model)->num_classes, r.train.count, r.test.count,
               (long long)r.steps_per_epoch);
        fflush(stdout);
        st = train_loop(&r, &err);
    }
    teardown(&r);
    if (st == GN_ERR_INTERRUPTED) return 130;
    if (st != GN_OK) return cli_error(cmd, "%s", err.message);
    printf("done: %s/%s", r.a.out, kModelFile);
    if (r.a.ema > 0) printf(", weight average %s/%s", r.a.out, kEmaModelFile);
    printf("\n");
    return 0;
}
