/* End-to-end timing: median of N runs after warm-up, for one config / batch / thread count.
 * usage: bench_session [width in_chans size stem_stride classes batch threads reps]
 * Build: cc -O2 -Iinclude bench/bench_session.c build/kern/libghostnet.a -lpng -ljpeg -lpthread -lm */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "ghostnet.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}
static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    gn_config c = gn_config_default();
    int size = 224, batch = 1, threads = 1, reps = 30;
    if (argc > 1) c.width = strtof(argv[1], NULL);
    if (argc > 2) c.in_chans = atoi(argv[2]);
    if (argc > 3) size = atoi(argv[3]);
    if (argc > 4) c.stem_stride = atoi(argv[4]);
    if (argc > 5) c.num_classes = atoi(argv[5]);
    if (argc > 6) batch = atoi(argv[6]);
    if (argc > 7) threads = atoi(argv[7]);
    if (argc > 8) reps = atoi(argv[8]);
    gn_model *m;
    gn_error e;
    if (gn_model_create(&c, &m, &e) != GN_OK) return fprintf(stderr, "%s\n", e.message), 1;
    gn_model_init_random(m, 1);
    gn_session_options o = gn_session_options_default();
    o.num_threads = threads;
    gn_session *s;
    if (gn_session_create(m, batch, size, size, &o, &s, &e) != GN_OK)
        return fprintf(stderr, "%s\n", e.message), 1;
    size_t n = (size_t)batch * c.in_chans * size * size;
    float *x = malloc(n * sizeof *x), *y = malloc((size_t)batch * c.num_classes * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int i = 0; i < 3; i++) gn_session_run(s, x, y, &e);
    double *t = malloc(reps * sizeof *t);
    for (int i = 0; i < reps; i++) {
        double t0 = now_ms();
        gn_session_run(s, x, y, &e);
        t[i] = now_ms() - t0;
    }
    qsort(t, reps, sizeof *t, cmp);
    double med = t[reps / 2];
    double gmac = (double)gn_model_macs(m, size, size) * batch / 1e9;
    printf("w%.1f in%d %dx%d ss%d batch %d threads %d: median %.3f ms (min %.3f, p90 %.3f)  "
           "%.1f img/s  %.1f GFLOP/s  y0=%g\n",
           (double)c.width, c.in_chans, size, size, c.stem_stride, batch, threads, med, t[0],
           t[reps * 9 / 10], batch * 1e3 / med, 2 * gmac / (med * 1e-3), (double)y[0]);
    gn_session_free(s);
    gn_model_free(m);
    free(x);
    free(y);
    free(t);
    return 0;
}
