/* Batch loader: per-epoch shuffling, batching, and a producer thread that fills one half of a
 * double buffer while the caller trains on the other. Every random choice is derived from
 * (seed, epoch, sample index), so batches do not depend on thread timing. */
#define _POSIX_C_SOURCE 200809L /* pthreads */

#include "data/dataset.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#define MAX_BATCH (1 << 20)

enum { SLOT_EMPTY, SLOT_READY, SLOT_HELD };

typedef struct slot {
    float *inputs;
    int *labels;
    int count;
    size_t batch_index;
    int state;
    gn_status status;
    gn_error err;
} slot;

struct gn_loader {
    const gn_dataset *ds;
    gn_loader_options opt;
    gn_augment aug; /* opt.augment points here when set */
    int c, oh, ow;
    size_t sample_floats, sample_bytes, num_batches;
    int *order;
    uint64_t epoch;
    /* Producer-only working memory. */
    uint8_t *raw, *scratch;
    gn_augment_ws *ws;
    slot slots[2];
    /* Shared state, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv_work;  /* producer waits: a slot to fill, or shutdown */
    pthread_cond_t cv_ready; /* consumer waits: a filled slot, or the producer going idle */
    int sync_ready;          /* mutex and condition variables initialised */
    int thread_started;
    pthread_t thread;
    int active;              /* an epoch has been started */
    int filling;             /* the producer is filling a slot outside the lock */
    int held;                /* slot the consumer is reading, or -1 */
    int shutdown;
    size_t next_fill, next_take;
    atomic_int cancel;       /* abandon the batch being filled (new epoch, shutdown) */
};

gn_loader_options gn_loader_options_default(void) {
    gn_loader_options o;
    memset(&o, 0, sizeof o);
    o.batch = 1;
    for (int c = 0; c < 3; c++) o.std[c] = 1.0f;
    o.background = 1;
    return o;
}

void gn_shuffle_order(int *order, int n, uint64_t seed, uint64_t epoch) {
    gn_rng rng;
    /* Index UINT64_MAX is never a sample, so this stream is distinct from every sample's. */
    gn_rng_for_sample(&rng, seed, epoch, UINT64_MAX);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)gn_rng_below(&rng, (uint32_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* ---- filling one batch (producer side) --------------------------------------------------- */

static void fill_batch(gn_loader *l, size_t b, slot *s) {
    const gn_dataset *ds = l->ds;
    size_t start = b * (size_t)l->opt.batch, left = (size_t)ds->count - start;
    int count = left < (size_t)l->opt.batch ? (int)left : l->opt.batch;
    s->status = GN_OK;
    s->batch_index = b;
    s->count = 0;
    for (int i = 0; i < count; i++) {
        if (atomic_load(&l->cancel)) return;
        int idx = l->order[start + (size_t)i];
        const uint8_t *src = ds->images ? ds->images + (size_t)idx * l->sample_bytes : l->raw;
        if (!ds->images) {
            s->status = gn_dataset_read(ds, idx, l->raw, l->scratch, &s->err);
            if (s->status != GN_OK) return;
        }
        gn_rng rng;
        gn_rng_for_sample(&rng, l->opt.seed, l->epoch, (uint64_t)idx);
        gn_augment_sample(l->ws, l->opt.augment, &rng, src, l->opt.mean, l->opt.std,
                          s->inputs + (size_t)i * l->sample_floats);
        s->labels[i] = ds->labels[idx];
    }
    s->count = count;
}

static int work_available(const gn_loader *l) {
    return l->active && l->next_fill < l->num_batches &&
           l->slots[l->next_fill % 2].state == SLOT_EMPTY;
}

static void *producer(void *arg) {
    gn_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->shutdown && !work_available(l)) pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->shutdown) break;
        size_t b = l->next_fill;
        slot *s = &l->slots[b % 2];
        l->filling = 1;
        pthread_mutex_unlock(&l->mu);
        fill_batch(l, b, s);
        pthread_mutex_lock(&l->mu);
        l->filling = 0;
        if (!atomic_load(&l->cancel)) {
            s->state = SLOT_READY;
            l->next_fill++;
        }
        pthread_cond_broadcast(&l->cv_ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* ---- creation ---------------------------------------------------------------------------- */

static gn_status check_options(const gn_dataset *ds, const gn_loader_options *o, gn_error *err) {
    if (!ds || !o) return gn_fail(err, GN_ERR_INVALID_ARG, "loader: NULL argument");
    if (ds->count < 1 || !ds->labels || ds->channels < 1 || ds->channels > 3 ||
        (!ds->images && !ds->paths))
        return gn_fail(err, GN_ERR_INVALID_ARG, "loader: the dataset is empty or invalid");
    if (o->batch < 1 || o->batch > MAX_BATCH)
        return gn_fail(err, GN_ERR_INVALID_ARG, "loader: batch %d is not 1..%d", o->batch,
                       MAX_BATCH);
    if (o->drop_last && o->batch > ds->count)
        return gn_fail(err, GN_ERR_INVALID_ARG,
                       "loader: %d samples make no full batch of %d (drop_last is set)",
                       ds->count, o->batch);
    if (o->out_height < 0 || o->out_width < 0 || o->out_height > (int)GN_IDX_MAX_SIDE ||
        o->out_width > (int)GN_IDX_MAX_SIDE)
        return gn_fail(err, GN_ERR_INVALID_ARG, "loader: output size %dx%d is out of range",
                       o->out_width, o->out_height);
    for (int c = 0; c < ds->channels; c++)
        if (!isfinite(o->mean[c]) || !isfinite(o->std[c]) || o->std[c] == 0.0f)
            return gn_fail(err, GN_ERR_INVALID_ARG,
                           "loader: channel %d needs a finite mean and a finite non-zero std", c);
    return gn_augment_validate(o->augment, err);
}

static gn_status alloc_buffers(gn_loader *l, gn_error *err) {
    const gn_dataset *ds = l->ds;
    size_t batch_floats;
    if (!gn_mul_size(l->sample_floats, (size_t)l->opt.batch, &batch_floats) ||
        !gn_mul_size(batch_floats, sizeof(float), &batch_floats))
        return gn_fail(err, GN_ERR_NOMEM, "loader: batch size overflows");
    l->order = malloc((size_t)ds->count * sizeof *l->order);
    int ok = l->order != NULL;
    for (int i = 0; i < 2 && ok; i++) {
        l->slots[i].inputs = malloc(batch_floats);
        l->slots[i].labels = malloc((size_t)l->opt.batch * sizeof(int));
        ok = l->slots[i].inputs && l->slots[i].labels;
    }
    if (ok && !ds->images) {
        l->raw = malloc(l->sample_bytes);
        l->scratch = malloc(l->sample_bytes);
        ok = l->raw && l->scratch;
    }
    if (!ok) return gn_fail(err, GN_ERR_NOMEM, "loader: out of memory");
    return gn_augment_ws_create(l->c, ds->height, ds->width, l->oh, l->ow, &l->ws, err);
}

static gn_status start_thread(gn_loader *l, gn_error *err) {
    if (pthread_mutex_init(&l->mu, NULL) != 0)
        return gn_fail(err, GN_ERR_NOMEM, "loader: cannot create a mutex");
    if (pthread_cond_init(&l->cv_work, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        return gn_fail(err, GN_ERR_NOMEM, "loader: cannot create a condition variable");
    }
    if (pthread_cond_init(&l->cv_ready, NULL) != 0) {
        pthread_cond_destroy(&l->cv_work);
        pthread_mutex_destroy(&l->mu);
        return gn_fail(err, GN_ERR_NOMEM, "loader: cannot create a condition variable");
    }
    l->sync_ready = 1;
    if (!l->opt.background) return GN_OK;
    if (pthread_create(&l->thread, NULL, producer, l) != 0)
        return gn_fail(err, GN_ERR_NOMEM, "loader: cannot start the loading thread");
    l->thread_started = 1;
    return GN_OK;
}

gn_status gn_loader_create(const gn_dataset *ds, const gn_loader_options *options,
                           gn_loader **out, gn_error *err) {
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "loader: NULL output");
    *out = NULL;
    gn_status st = check_options(ds, options, err);
    if (st != GN_OK) return st;
    gn_loader *l = calloc(1, sizeof *l);
    if (!l) return gn_fail(err, GN_ERR_NOMEM, "loader: out of memory");
    l->ds = ds;
    l->opt = *options;
    if (options->augment) {
        l->aug = *options->augment;
        l->opt.augment = &l->aug;
    }
    l->c = ds->channels;
    l->oh = options->out_height ? options->out_height : ds->height;
    l->ow = options->out_width ? options->out_width : ds->width;
    l->sample_floats = (size_t)l->c * l->oh * l->ow;
    l->sample_bytes = (size_t)l->c * ds->height * ds->width;
    size_t n = (size_t)ds->count, b = (size_t)options->batch;
    l->num_batches = options->drop_last ? n / b : (n + b - 1) / b;
    l->held = -1;
    atomic_init(&l->cancel, 0);
    st = alloc_buffers(l, err);
    if (st == GN_OK) st = start_thread(l, err);
    if (st != GN_OK) {
        gn_loader_free(l);
        return st;
    }
    *out = l;
    return GN_OK;
}

/* ---- epochs and batches ------------------------------------------------------------------ */

gn_status gn_loader_start_epoch(gn_loader *l, uint64_t epoch, gn_error *err) {
    if (!l) return gn_fail(err, GN_ERR_INVALID_ARG, "loader: NULL loader");
    pthread_mutex_lock(&l->mu);
    l->active = 0;
    atomic_store(&l->cancel, 1);
    while (l->filling) pthread_cond_wait(&l->cv_ready, &l->mu);
    atomic_store(&l->cancel, 0);
    l->epoch = epoch;
    if (l->opt.shuffle) gn_shuffle_order(l->order, l->ds->count, l->opt.seed, epoch);
    else
        for (int i = 0; i < l->ds->count; i++) l->order[i] = i;
    for (int i = 0; i < 2; i++) l->slots[i].state = SLOT_EMPTY;
    l->held = -1;
    l->next_fill = l->next_take = 0;
    l->active = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return GN_OK;
}

/* Waits for (or, without a thread, makes) the slot of batch next_take. Called under mu. */
static slot *take_slot(gn_loader *l) {
    slot *s = &l->slots[l->next_take % 2];
    if (!l->thread_started) {
        fill_batch(l, l->next_take, s);
        s->state = SLOT_READY;
        l->next_fill = l->next_take + 1;
    }
    while (s->state != SLOT_READY) pthread_cond_wait(&l->cv_ready, &l->mu);
    s->state = SLOT_HELD;
    l->held = (int)(l->next_take % 2);
    l->next_take++;
    return s;
}

gn_status gn_loader_next(gn_loader *l, const float **inputs, const int **labels, int *count,
                         gn_error *err) {
    if (count) *count = 0;
    if (!l || !inputs || !labels || !count)
        return gn_fail(err, GN_ERR_INVALID_ARG, "loader: NULL argument");
    pthread_mutex_lock(&l->mu);
    if (!l->active) {
        pthread_mutex_unlock(&l->mu);
        return gn_fail(err, GN_ERR_INVALID_ARG, "loader: call gn_loader_start_epoch first");
    }
    if (l->held >= 0) { /* the caller is done with the previous batch: refill its slot */
        l->slots[l->held].state = SLOT_EMPTY;
        l->held = -1;
        pthread_cond_broadcast(&l->cv_work);
    }
    if (l->next_take >= l->num_batches) {
        pthread_mutex_unlock(&l->mu);
        return GN_OK;
    }
    slot *s = take_slot(l);
    pthread_mutex_unlock(&l->mu);
    if (s->status != GN_OK) {
        if (err) *err = s->err;
        return s->status;
    }
    *inputs = s->inputs;
    *labels = s->labels;
    *count = s->count;
    return GN_OK;
}

size_t gn_loader_num_batches(const gn_loader *l) { return l ? l->num_batches : 0; }

int gn_loader_order(const gn_loader *l, size_t i) {
    return l && i < (size_t)l->ds->count ? l->order[i] : -1;
}

void gn_loader_free(gn_loader *l) {
    if (!l) return;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->shutdown = 1;
        atomic_store(&l->cancel, 1);
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    if (l->sync_ready) {
        pthread_cond_destroy(&l->cv_ready);
        pthread_cond_destroy(&l->cv_work);
        pthread_mutex_destroy(&l->mu);
    }
    for (int i = 0; i < 2; i++) {
        free(l->slots[i].inputs);
        free(l->slots[i].labels);
    }
    gn_augment_ws_free(l->ws);
    free(l->raw);
    free(l->scratch);
    free(l->order);
    free(l);
}
