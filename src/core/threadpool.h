/* A persistent pool of worker threads owned by one session (no global state).
 *
 * gn_threadpool_run(pool, fn, ctx, n) runs fn(ctx, task, thread) for task = 0..n-1 on the
 * workers and the calling thread together, and returns when every task is done. Tasks are
 * handed out one at a time from a shared counter, so a thread that falls behind (a busy
 * neighbour on the same core) simply takes fewer. `thread` is in [0, size) and is stable
 * within one call: use it to pick per-thread scratch.
 *
 * Workers spin for a short while after each job (the next op of a forward pass follows within
 * microseconds) and then sleep on a condition variable. Nothing is allocated after create. */
#ifndef GN_THREADPOOL_H
#define GN_THREADPOOL_H

#include "ghostnet.h"

typedef struct gn_threadpool gn_threadpool;
typedef void (*gn_task_fn)(void *ctx, int task, int thread);

/* threads: total including the caller (>= 1; 1 creates no worker). */
gn_status gn_threadpool_create(int threads, gn_threadpool **out, gn_error *err);
void gn_threadpool_free(gn_threadpool *pool);
int gn_threadpool_size(const gn_threadpool *pool);
void gn_threadpool_run(gn_threadpool *pool, gn_task_fn fn, void *ctx, int ntasks);

/* Online cores (sysconf), at least 1. */
int gn_cpu_count(void);

#endif
