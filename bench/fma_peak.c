/* The single-core AVX2 arithmetic peak, measured: 10 independent chains of 8-wide FMAs (enough
 * to cover the FMA latency on two ports), timed over about a second. Prints multiply-adds per
 * second and the clock that implies at 16 multiply-adds per cycle (2 FMA ports x 8 lanes),
 * the divisor behind README's "AVX2 peak used" correction.
 * Build: cc -O2 -mavx2 -mfma bench/fma_peak.c -o fma_peak && ./fma_peak */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    enum { kChains = 10 };
    __m256 acc[kChains];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < kChains; i++) acc[i] = _mm256_set1_ps((float)i);
    double best = 0;
    for (int round = 0; round < 5; round++) {
        const long iters = 20000000;
        const double t0 = now_s();
        /* named registers: an array indexed in a loop may be kept in memory */
        __m256 c0 = acc[0], c1 = acc[1], c2 = acc[2], c3 = acc[3], c4 = acc[4], c5 = acc[5],
               c6 = acc[6], c7 = acc[7], c8 = acc[8], c9 = acc[9];
        for (long it = 0; it < iters; it++) {
            c0 = _mm256_fmadd_ps(c0, a, b), c1 = _mm256_fmadd_ps(c1, a, b);
            c2 = _mm256_fmadd_ps(c2, a, b), c3 = _mm256_fmadd_ps(c3, a, b);
            c4 = _mm256_fmadd_ps(c4, a, b), c5 = _mm256_fmadd_ps(c5, a, b);
            c6 = _mm256_fmadd_ps(c6, a, b), c7 = _mm256_fmadd_ps(c7, a, b);
            c8 = _mm256_fmadd_ps(c8, a, b), c9 = _mm256_fmadd_ps(c9, a, b);
        }
        acc[0] = c0, acc[1] = c1, acc[2] = c2, acc[3] = c3, acc[4] = c4;
        acc[5] = c5, acc[6] = c6, acc[7] = c7, acc[8] = c8, acc[9] = c9;
        const double rate = (double)iters * kChains * 8 / (now_s() - t0);
        if (rate > best) best = rate;
    }
    float sink[8];
    __m256 s = acc[0];
    for (int i = 1; i < kChains; i++) s = _mm256_add_ps(s, acc[i]);
    _mm256_storeu_ps(sink, s);
    printf("%.1f GMAC/s on one core (best of 5 rounds) = %.2f GHz at 16 multiply-adds per cycle "
           "(checksum %g)\n", best / 1e9, best / 16e9, (double)sink[0]);
    return 0;
}
