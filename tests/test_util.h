/* Minimal test harness: CHECK records a failure and goes on; each test binary ends with
 * TEST_MAIN_END, which prints "N passed, N failed" and returns non-zero on any failure. */
#ifndef GN_TEST_UTIL_H
#define GN_TEST_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_checks_passed, test_checks_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (cond) {                                                                  \
            test_checks_passed++;                                                    \
        } else {                                                                     \
            test_checks_failed++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        if (cond) {                                                        \
            test_checks_passed++;                                          \
        } else {                                                           \
            test_checks_failed++;                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                          \
    do {                                                                               \
        double check_a_ = (a), check_b_ = (b);                                         \
        CHECK_MSG(fabs(check_a_ - check_b_) <= (tol), "%.9g vs %.9g (tol %g)", check_a_, \
                  check_b_, (double)(tol));                                            \
    } while (0)

#define TEST_MAIN_END()                                                          \
    do {                                                                         \
        printf("%d passed, %d failed\n", test_checks_passed, test_checks_failed); \
        return test_checks_failed ? 1 : 0;                                       \
    } while (0)

/* Exit code that ctest reports as "skipped" (SKIP_RETURN_CODE). */
#define TEST_SKIP_CODE 77

#endif
