/* Persistent thread pool (see threadpool.h).
 *
 * Hand-out protocol: one 64-bit atomic `ticket` holds (generation << 32 | next task). A job is
 * published by writing its description into jobs[generation & 1] and then storing the new
 * ticket; a thread claims a task with a compare-and-swap that only succeeds while the ticket
 * still carries the generation it read the description for. A slow worker that wakes up after
 * its job has finished therefore can never run a task of the next job with the old function:
 * its CAS fails. Two job slots suffice because job g + 2 cannot start before job g + 1 ends. */
#define _POSIX_C_SOURCE 200809L
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "core/common.h"

typedef struct job {
    _Atomic(gn_task_fn) fn;
    _Atomic(void *) ctx;
    atomic_int ntasks;
} job;

typedef struct worker {
    gn_threadpool *pool;
    int id;
} worker;

struct gn_threadpool {
    int size;
    int started; /* workers running */
    uint32_t generation; /* last published; written by the caller only */
    pthread_t *threads;
    worker *workers;
    job jobs[2];
    _Atomic uint64_t ticket;
    atomic_int remaining; /* tasks of the current job not finished */
    atomic_int sleepers;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* How long an idle worker spins before sleeping: longer than the gap between two ops of a
 * forward pass, short enough not to burn a core between requests. */
#define GN_SPIN_NS 300000L

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int gn_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

/* Claims and runs tasks of job `gen` until none is left (or a newer job replaced it). */
static void work_on(gn_threadpool *p, uint32_t gen, int thread) {
    job *j = &p->jobs[gen & 1];
    for (;;) {
        uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) != gen) return;
        const gn_task_fn fn = atomic_load_explicit(&j->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&j->ctx, memory_order_relaxed);
        const int n = atomic_load_explicit(&j->ntasks, memory_order_relaxed);
        const uint32_t idx = (uint32_t)t;
        if (idx >= (uint32_t)n) return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        fn(ctx, (int)idx, thread);
        atomic_fetch_sub_explicit(&p->remaining, 1, memory_order_release);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    gn_threadpool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        long long spin_start = now_ns();
        unsigned spins = 0;
        uint64_t t;
        while ((uint32_t)((t = atomic_load_explicit(&p->ticket, memory_order_acquire)) >> 32) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            cpu_relax();
            if ((++spins & 255) != 0 || now_ns() - spin_start < GN_SPIN_NS) continue;
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while ((uint32_t)(atomic_load(&p->ticket) >> 32) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spin_start = now_ns();
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = (uint32_t)(t >> 32);
        work_on(p, seen, w->id);
    }
}

int gn_threadpool_size(const gn_threadpool *p) { return p ? p->size : 1; }

void gn_threadpool_free(gn_threadpool *p) {
    if (!p) return;
    if (p->started > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->stop, 1);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->workers);
    free(p);
}

gn_status gn_threadpool_create(int threads, gn_threadpool **out, gn_error *err) {
    *out = NULL;
    if (threads < 1 || threads > 1024)
        return gn_fail(err, GN_ERR_INVALID_ARG, "thread count %d out of range 1..1024", threads);
    gn_threadpool *p = calloc(1, sizeof *p);
    if (!p) return gn_fail(err, GN_ERR_NOMEM, "out of memory for a thread pool");
    p->size = threads;
    atomic_init(&p->ticket, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    for (int i = 0; i < 2; i++) {
        atomic_init(&p->jobs[i].fn, NULL);
        atomic_init(&p->jobs[i].ctx, NULL);
        atomic_init(&p->jobs[i].ntasks, 0);
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return gn_fail(err, GN_ERR_NOMEM, "cannot create a mutex");
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return gn_fail(err, GN_ERR_NOMEM, "cannot create a condition variable");
    }
    const int nworkers = threads - 1;
    p->threads = gn_calloc((size_t)nworkers, sizeof *p->threads);
    p->workers = gn_calloc((size_t)nworkers, sizeof *p->workers);
    if (!p->threads || !p->workers) {
        gn_threadpool_free(p);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for %d worker threads", nworkers);
    }
    for (int i = 0; i < nworkers; i++) {
        p->workers[i].pool = p;
        p->workers[i].id = i + 1; /* 0 is the caller */
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]) != 0) {
            gn_threadpool_free(p);
            return gn_fail(err, GN_ERR_NOMEM, "cannot start worker thread %d of %d", i + 1,
                           nworkers);
        }
        p->started++;
    }
    *out = p;
    return GN_OK;
}

void gn_threadpool_run(gn_threadpool *p, gn_task_fn fn, void *ctx, int ntasks) {
    if (ntasks <= 0) return;
    if (!p || p->size == 1 || ntasks == 1) {
        for (int t = 0; t < ntasks; t++) fn(ctx, t, 0);
        return;
    }
    const uint32_t gen = ++p->generation;
    job *j = &p->jobs[gen & 1];
    atomic_store_explicit(&j->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&j->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&j->ntasks, ntasks, memory_order_relaxed);
    atomic_store_explicit(&p->remaining, ntasks, memory_order_relaxed);
    /* seq_cst: ordered before the sleepers check, so a worker going to sleep either sees
     * this generation or is counted and woken */
    atomic_store(&p->ticket, (uint64_t)gen << 32);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    work_on(p, gen, 0);
    unsigned spins = 0;
    while (atomic_load_explicit(&p->remaining, memory_order_acquire) != 0) {
        cpu_relax();
        /* a worker holding the last task may share our core: give it the CPU */
        if (++spins > 4096) sched_yield();
    }
}
