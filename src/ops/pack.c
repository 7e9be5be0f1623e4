/* Weight packing, once per session: GEMM panels that the micro-kernels read sequentially. */
#include "ops/fastops.h"

size_t gn_pack_gemm_floats(int m, int k) {
    const size_t panels = (size_t)(m + GN_GEMM_MR - 1) / GN_GEMM_MR;
    return panels * GN_GEMM_MR * ((size_t)k + 1);
}

float *gn_pack_gemm(const float *w, const float *bias, int m, int k, float scale, float *dst) {
    const int panels = (m + GN_GEMM_MR - 1) / GN_GEMM_MR;
    float *pb = dst + (size_t)panels * GN_GEMM_MR * k;
    for (int p = 0; p < panels; p++) {
        float *panel = dst + (size_t)p * GN_GEMM_MR * k;
        for (int r = 0; r < GN_GEMM_MR; r++) {
            const int row = p * GN_GEMM_MR + r;
            for (int kk = 0; kk < k; kk++)
                panel[(size_t)kk * GN_GEMM_MR + r] = row < m ? w[(size_t)row * k + kk] * scale : 0.0f;
            pb[p * GN_GEMM_MR + r] = (row < m && bias) ? bias[row] : 0.0f;
        }
    }
    return pb;
}
