/* Kernel table selection: which ISAs were compiled in, which the CPU runs. The answer is
 * recomputed on each call (cheap) and kept by the caller (a session), never in a global. */
#include <stdlib.h>
#include <string.h>

#include "ops/ukernels.h"

int gn_isa_available(gn_isa isa) {
    switch (isa) {
    case GN_ISA_SCALAR: return 1;
    case GN_ISA_AVX2:
#if defined(GN_HAVE_AVX2)
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
        return 0;
#endif
    case GN_ISA_NEON:
#if defined(GN_HAVE_NEON)
        return 1; /* Advanced SIMD is part of the aarch64 baseline */
#else
        return 0;
#endif
    }
    return 0;
}

gn_isa gn_isa_detect(int force_scalar) {
    const char *env = getenv("GN_FORCE_SCALAR");
    if (force_scalar || (env && strcmp(env, "0") != 0 && env[0] != '\0')) return GN_ISA_SCALAR;
    if (gn_isa_available(GN_ISA_AVX2)) return GN_ISA_AVX2;
    if (gn_isa_available(GN_ISA_NEON)) return GN_ISA_NEON;
    return GN_ISA_SCALAR;
}

int gn_kernels_get(gn_isa isa, gn_kernels *k) {
    gn_kernels_scalar(k);
    if (!gn_isa_available(isa)) return isa == GN_ISA_SCALAR;
#if defined(GN_HAVE_AVX2)
    if (isa == GN_ISA_AVX2) gn_kernels_avx2(k);
#endif
#if defined(GN_HAVE_NEON)
    if (isa == GN_ISA_NEON) gn_kernels_neon(k);
#endif
    return 1;
}
