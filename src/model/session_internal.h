/* Session internals for benchmarks and tests (not part of the public API). */
#ifndef GN_SESSION_INTERNAL_H
#define GN_SESSION_INTERNAL_H

#include "ghostnet.h"

/* Ops in the plan, and a one-line description of op i ("gemm 16->8 112x112 t8"). */
int gn_session_op_count(const gn_session *s);
void gn_session_op_describe(const gn_session *s, int i, char *buf, size_t size);
/* Multiply-adds of op i for the whole batch (0 for ops without). */
long long gn_session_op_macs(const gn_session *s, int i);
/* Kernel table in use ("avx2", "scalar", "neon") and thread count. */
const char *gn_session_isa(const gn_session *s);
int gn_session_threads(const gn_session *s);
/* Images per pass (a large batch runs in groups of this many). */
int gn_session_group(const gn_session *s);
/* gn_session_run that also adds each op's wall time (seconds) to op_seconds[i]. */
gn_status gn_session_run_timed(gn_session *s, const float *input, float *logits,
                               double *op_seconds, gn_error *err);

#endif
