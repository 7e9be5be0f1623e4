/* Our side of bench/train_compare.py: training and evaluation throughput of GhostNet on random
 * data, one JSON line on stdout.
 *
 * usage: train_bench --mode train|eval|graph-eval [--width 1.0] [--in-chans 1]
 *                    [--stem-stride 1] [--classes 10] [--size 28] [--batch 128] [--threads T]
 *                    [--warmup N] [--iters N]
 *   train:      gn_train_forward_backward + SGD (momentum 0.9, Nesterov, wd 4e-5) per step
 *   eval:       the inference session (BN folded), what `ghostnet train` evaluates with
 *   graph-eval: the training graph's eval-mode forward (gn_train_eval)
 * Built by train_compare.py against build/<dir>/libghostnet.a (internal headers). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/rng.h"
#include "ghostnet.h"
#include "train/train.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int die(const char *what, const gn_error *e) {
    fprintf(stderr, "train_bench: %s: %s\n", what, e ? e->message : "failed");
    return 1;
}

int main(int argc, char **argv) {
    const char *mode = "train";
    gn_config cfg = gn_config_default();
    cfg.width = 1.0f;
    cfg.in_chans = 1;
    cfg.stem_stride = 1;
    cfg.num_classes = 10;
    int size = 28, batch = 128, threads = 1, warmup = 2, iters = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--mode")) mode = v;
        else if (!strcmp(k, "--width")) cfg.width = (float)atof(v);
        else if (!strcmp(k, "--in-chans")) cfg.in_chans = atoi(v);
        else if (!strcmp(k, "--stem-stride")) cfg.stem_stride = atoi(v);
        else if (!strcmp(k, "--classes")) cfg.num_classes = atoi(v);
        else if (!strcmp(k, "--size")) size = atoi(v);
        else if (!strcmp(k, "--batch")) batch = atoi(v);
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--warmup")) warmup = atoi(v);
        else if (!strcmp(k, "--iters")) iters = atoi(v);
        else {
            fprintf(stderr, "train_bench: unknown option %s\n", k);
            return 2;
        }
    }
    if (iters < 1 || batch < 1 || size < 1) return 2;
    gn_error e;
    gn_model *m = NULL;
    if (gn_model_create(&cfg, &m, &e) != GN_OK) return die("model", &e);
    if (gn_model_init_random(m, 1) != GN_OK) return die("init", NULL);

    const size_t xn = (size_t)batch * cfg.in_chans * size * size;
    float *x = malloc(xn * sizeof *x);
    int *labels = malloc((size_t)batch * sizeof *labels);
    float *logits = malloc((size_t)batch * cfg.num_classes * sizeof *logits);
    double *t = malloc((size_t)iters * sizeof *t);
    if (!x || !labels || !logits || !t) return die("out of memory", NULL);
    gn_rng rng;
    gn_rng_seed(&rng, 7);
    for (size_t i = 0; i < xn; i++) x[i] = 2.0f * gn_rng_uniform(&rng) - 1.0f;
    for (int b = 0; b < batch; b++) labels[b] = (int)gn_rng_below(&rng, (uint32_t)cfg.num_classes);

    gn_train_graph *g = NULL;
    gn_optimizer *opt = NULL;
    gn_session *s = NULL;
    size_t arena = 0;
    float loss = 0.0f;
    if (!strcmp(mode, "eval")) {
        gn_session_options so = gn_session_options_default();
        so.num_threads = threads;
        if (gn_session_create(m, batch, size, size, &so, &s, &e) != GN_OK) return die("session", &e);
    } else {
        gn_train_options to = gn_train_options_default();
        to.num_threads = threads;
        if (gn_train_graph_create(m, batch, size, size, &to, &g, &e) != GN_OK)
            return die("graph", &e);
        arena = gn_train_arena_bytes(g);
        if (gn_optimizer_create(m, NULL, &opt, &e) != GN_OK) return die("optimizer", &e);
    }
    for (int i = -warmup; i < iters; i++) {
        const double t0 = now_ms();
        gn_status st;
        if (s) {
            st = gn_session_run(s, x, logits, &e);
        } else if (!strcmp(mode, "graph-eval")) {
            st = gn_train_eval(g, x, batch, logits, &e);
        } else {
            st = gn_train_forward_backward(g, x, labels, &loss, NULL, &e);
            if (st == GN_OK) st = gn_optimizer_step(opt, m, gn_train_grads(g), 0.01f, &e);
        }
        if (st != GN_OK) return die("step", &e);
        if (i >= 0) t[i] = now_ms() - t0;
    }
    qsort(t, (size_t)iters, sizeof *t, cmp_double);
    const double med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    printf("{\"mode\": \"%s\", \"batch\": %d, \"threads\": %d, \"iters\": %d, \"median_ms\": %.3f, "
           "\"min_ms\": %.3f, \"images_per_s\": %.2f, \"arena_mib\": %.1f, \"loss\": %.5f}\n",
           mode, batch, threads, iters, med, t[0], batch * 1000.0 / med,
           arena / (1024.0 * 1024.0), (double)loss);
    gn_session_free(s);
    gn_optimizer_free(opt);
    gn_train_graph_free(g);
    gn_model_free(m);
    free(x);
    free(labels);
    free(logits);
    free(t);
    return 0;
}
