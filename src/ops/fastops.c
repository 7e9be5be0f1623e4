/* Drivers of the fast operators: split work into tasks, walk tiles, call micro-kernels. The
 * ISA lives only in the kernel table; everything here is plain C. */
#include <string.h>

#include "ops/fastops.h"

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Part i of `units` split into `parts` near-equal contiguous ranges starts here. */
static size_t part_begin(size_t units, int parts, int i) { return units * (size_t)i / (size_t)parts; }

/* Input planes up to this size go 8 at a time through kt->dw8 (isolated, AVX2 on Zen 3: 2x
 * per plane at 7x7, 1.4-1.7x at 14x14, 1.2x at 28x28 stride 1; 56x56 no better). */
enum { kDw8MaxPixels = 28 * 28 };

static int want_tasks(int threads) { return threads > 1 ? threads * GN_TASKS_PER_THREAD : 1; }

/* ---- GEMM over panels -------------------------------------------------------------------- */

static const float kZeroBias[GN_GEMM_MR] = {0};
static const float kZeroBias8[8] = {0};

void gn_gemm_panels(const gn_kernels *kt, const gn_gemm_strip *s, const float *weight,
                    const float *bias, int m, int q0, int q1, int kc) {
    const int k = s->k;
    if (kc <= 0 || kc >= k || (s->accumulate && s->act != GN_ACT_NONE)) kc = k;
    for (int k0 = 0; k0 < k; k0 += kc) {
        const int kb = k - k0 < kc ? k - k0 : kc, last = k0 + kb == k;
        gn_gemm_strip b = *s;
        b.k = kb;
        b.x = s->x + (size_t)k0 * s->ldx;
        b.act = last ? s->act : GN_ACT_NONE;
        b.accumulate = k0 == 0 && s->accumulate;
        b.from_y = k0 > 0;
        for (int q = q0; q < q1; q++) {
            b.w = weight + ((size_t)q * k + k0) * GN_GEMM_MR;
            b.bias = k0 == 0 ? bias + (size_t)q * GN_GEMM_MR : kZeroBias;
            b.y = s->y + (size_t)q * GN_GEMM_MR * s->ldy;
            b.m = m - q * GN_GEMM_MR < GN_GEMM_MR ? m - q * GN_GEMM_MR : GN_GEMM_MR;
            kt->gemm(&b);
        }
    }
}

/* ---- convolutions ------------------------------------------------------------------------ */

void gn_fconv_plan(gn_fconv *c, const gn_kernels *kt, int threads) {
    const int want = want_tasks(threads);
    const size_t out_hw = (size_t)c->out_h * c->out_w, in_hw = (size_t)c->in_h * c->in_w;
    if (c->kind == GN_FCONV_DW) {
        const size_t planes = c->bv ? (size_t)c->in_c : (size_t)c->batch * c->in_c;
        c->ntasks = planes < (size_t)want ? (int)planes : want;
        c->pitch = gn_dw_pitch(c->in_w, c->out_w, c->kernel, c->stride);
        /* Small planes (the 7x7 to 28x28 stages at small batches) lose most of their time to
         * row edges and tails one plane at a time; 8 channels at once have none. */
        c->dw8 = !c->bv && kt->dw8 && c->mult == 1 && c->kernel <= 15 &&
                 (size_t)c->in_h * c->in_w <= kDw8MaxPixels &&
                 (c->in_c < c->out_c ? c->in_c : c->out_c) >= 8;
        return;
    }
    if (c->bv || (c->kind == GN_FCONV_GEMM &&
                  (c->batch == 1 || (c->in_bs == in_hw && c->out_bs == out_hw)))) {
        c->n_img = 1; /* one GEMM over every pixel of every image */
        c->npix = (size_t)c->batch * out_hw;
        c->img_in = c->img_out = 0;
    } else {
        c->n_img = c->batch;
        c->npix = out_hw;
        c->img_in = c->in_bs;
        c->img_out = c->out_bs;
    }
    /* work units: micro-tiles of pixels; bv im2col: output positions (batch pixels each) */
    const size_t nr = (size_t)kt->gemm_nr;
    const size_t tiles = c->bv && c->kind == GN_FCONV_IM2COL ? out_hw : (c->npix + nr - 1) / nr;
    const int panels = (c->out_c + GN_GEMM_MR - 1) / GN_GEMM_MR;
    c->n_parts = c->p_parts = 1;
    if (want > c->n_img) {
        const int need = (want + c->n_img - 1) / c->n_img;
        c->n_parts = (size_t)need < tiles ? need : (int)tiles;
        if (c->kind == GN_FCONV_GEMM && c->n_parts < need) {
            int p = (need + c->n_parts - 1) / c->n_parts;
            c->p_parts = p < panels ? p : panels;
        }
    }
    c->ntasks = c->n_img * c->n_parts * c->p_parts;
    /* Pixels per chunk: the chunk's k x chunk inputs stay in L1 while every panel reads them. */
    const size_t k = c->kind == GN_FCONV_GEMM ? (size_t)c->in_c
                                              : (size_t)c->in_c * c->kernel * c->kernel;
    const size_t budget = c->kind == GN_FCONV_GEMM ? 6144 : 8192;
    /* GEMM: k-blocks of 128 when K is large, so a chunk's inputs stay in L1 */
    c->kc = c->kind == GN_FCONV_GEMM && k > 192 ? 128 : (int)k;
    size_t chunk = budget / (size_t)c->kc / nr * nr;
    c->chunk = (int)(chunk < 2 * nr ? 2 * nr : chunk); /* at least two tiles (a 7x7 plane in one) */
    if (c->bv && c->kind == GN_FCONV_IM2COL) { /* in positions */
        chunk = budget / k / (size_t)c->batch;
        c->chunk = (int)(chunk < 1 ? 1 : chunk);
    }
}

size_t gn_fconv_scratch_floats(const gn_fconv *c) {
    switch (c->kind) {
    case GN_FCONV_GEMM: return 0;
    case GN_FCONV_IM2COL:
        return (size_t)c->in_c * c->kernel * c->kernel * (size_t)c->chunk * (c->bv ? c->batch : 1);
    case GN_FCONV_DW: {
        if (c->bv) return 0; /* ring slots + one zero slot */
        const size_t slot = gn_dw_slot_floats(c->pitch, c->stride);
        const size_t ring = ((size_t)gn_dw_ring_rows(c->in_h, c->kernel, c->stride, slot) + 1) * slot;
        return ring + (c->dw8 ? gn_dw8_scratch_floats(c->in_h, c->in_w, c->out_h, c->out_w, c->kernel) : 0);
    }
    }
    return 0;
}

/* Pixel range [*p0, *p1) of part np: whole micro-tiles, the last one clipped. */
static void pixel_range(const gn_fconv *c, const gn_kernels *kt, int np, size_t *p0, size_t *p1) {
    const size_t nr = (size_t)kt->gemm_nr, tiles = (c->npix + nr - 1) / nr;
    *p0 = part_begin(tiles, c->n_parts, np) * nr;
    *p1 = min_size(c->npix, part_begin(tiles, c->n_parts, np + 1) * nr);
}

static void gemm_task(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int task) {
    const int per_img = c->n_parts * c->p_parts;
    const int img = task / per_img, np = task % per_img / c->p_parts, pp = task % c->p_parts;
    size_t p0, p1;
    pixel_range(c, kt, np, &p0, &p1);
    const int panels = (c->out_c + GN_GEMM_MR - 1) / GN_GEMM_MR;
    const int q0 = (int)part_begin((size_t)panels, c->p_parts, pp);
    const int q1 = (int)part_begin((size_t)panels, c->p_parts, pp + 1);
    const float *x = io->in + img * c->img_in;
    float *y = io->out + img * c->img_out;
    gn_gemm_strip s = {0};
    s.ldx = c->in_cs;
    s.ldy = c->out_cs;
    s.k = c->in_c;
    s.act = c->act;
    s.accumulate = c->accumulate;
    for (size_t c0 = p0, len; c0 < p1; c0 += len) {
        /* the last chunk takes up to half a chunk more rather than leave a sliver */
        len = p1 - c0 < (size_t)c->chunk * 3 / 2 ? p1 - c0 : (size_t)c->chunk;
        s.n = (int)len;
        s.x = x + c0;
        s.y = y + c0;
        gn_gemm_panels(kt, &s, c->weight, c->bias, c->out_c, q0, q1, c->kc);
    }
}

/* Panels x one strip of n pixels from col (k rows of n). */
static void gemm_all_panels(const gn_kernels *kt, const gn_fconv *c, const float *col, int n,
                            int kk, float *y) {
    gn_gemm_strip st = {0};
    st.x = col;
    st.y = y;
    st.ldx = (size_t)n;
    st.ldy = c->out_cs;
    st.n = n;
    st.k = kk;
    st.act = c->act;
    st.accumulate = c->accumulate;
    gn_gemm_panels(kt, &st, c->weight, c->bias, c->out_c, 0, (c->out_c + GN_GEMM_MR - 1) / GN_GEMM_MR, kk);
}

/* Batch-innermost im2col: output positions [q0, q1) of every image; each (tap, position) is
 * `batch` contiguous floats of the input (or zeros). */
static void im2col_bv_task(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int task) {
    const size_t positions = (size_t)c->out_h * c->out_w, nb = (size_t)c->batch;
    const size_t p0 = part_begin(positions, c->n_parts, task), p1 = part_begin(positions, c->n_parts, task + 1);
    const int k = c->kernel, s = c->stride, kk = c->in_c * k * k;
    float *col = io->scratch;
    for (size_t c0 = p0; c0 < p1; c0 += (size_t)c->chunk) {
        const size_t np = min_size((size_t)c->chunk, p1 - c0), n = np * nb;
        for (int ic = 0; ic < c->in_c; ic++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    float *dst = col + (size_t)((ic * k + ky) * k + kx) * n;
                    for (size_t q = 0; q < np; q++) {
                        const int oy = (int)((c0 + q) / (size_t)c->out_w), ox = (int)((c0 + q) % (size_t)c->out_w);
                        const int iy = oy * s - c->pad + ky, ix = ox * s - c->pad + kx;
                        if (iy >= 0 && iy < c->in_h && ix >= 0 && ix < c->in_w)
                            memcpy(dst + q * nb,
                                   io->in + (size_t)ic * c->in_cs + ((size_t)iy * c->in_w + ix) * nb,
                                   nb * sizeof(float));
                        else
                            memset(dst + q * nb, 0, nb * sizeof(float));
                    }
                }
        gemm_all_panels(kt, c, col, (int)n, kk, io->out + c0 * nb);
    }
}

/* im2col of output pixels [c0, c0 + n) of one image into col (k rows of n), then the GEMM. */
static void im2col_task(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int task) {
    if (c->bv) {
        im2col_bv_task(kt, c, io, task);
        return;
    }
    const int img = task / c->n_parts, np = task % c->n_parts;
    size_t p0, p1;
    pixel_range(c, kt, np, &p0, &p1);
    const int k = c->kernel, s = c->stride, kk = c->in_c * k * k;
    const float *x = io->in + img * c->img_in;
    float *y = io->out + img * c->img_out, *col = io->scratch;
    for (size_t c0 = p0; c0 < p1; c0 += (size_t)c->chunk) {
        const int n = (int)min_size((size_t)c->chunk, p1 - c0);
        for (int p = 0; p < n;) { /* segments within one output row */
            const size_t pix = c0 + (size_t)p;
            const int oy = (int)(pix / (size_t)c->out_w), ox = (int)(pix % (size_t)c->out_w);
            const int seg = c->out_w - ox < n - p ? c->out_w - ox : n - p;
            for (int ic = 0; ic < c->in_c; ic++)
                for (int ky = 0; ky < k; ky++) {
                    const int iy = oy * s - c->pad + ky;
                    const float *row = (iy >= 0 && iy < c->in_h)
                                           ? x + (size_t)ic * c->in_cs + (size_t)iy * c->in_w
                                           : NULL;
                    /* rows (ic, ky, kx = 0 .. k-1) of the col matrix */
                    kt->im2col(row, c->in_w, ox * s - c->pad, s, seg, k,
                               col + (size_t)((ic * k + ky) * k) * n + p, (size_t)n);
                }
            p += seg;
        }
        gemm_all_panels(kt, c, col, n, kk, y + c0);
    }
}

static gn_dw_fn pick_dw(const gn_kernels *kt, int k, int s) {
    if (k == 3) return s == 1 ? kt->dw3s1 : kt->dw3s2;
    if (k == 5) return s == 1 ? kt->dw5s1 : kt->dw5s2;
    return s == 1 ? kt->dwks1 : kt->dwks2;
}

/* Batch-innermost depthwise: one task = a range of source channels, all images at once. */
static void dw_bv_task(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int task) {
    const size_t g0 = part_begin((size_t)c->in_c, c->ntasks, task);
    const size_t g1 = part_begin((size_t)c->in_c, c->ntasks, task + 1);
    const size_t in_n = (size_t)c->in_h * c->in_w * c->batch, taps = (size_t)c->kernel * c->kernel;
    gn_dwb_args a = {0};
    a.batch = c->batch;
    a.ih = c->in_h;
    a.iw = c->in_w;
    a.oh = c->out_h;
    a.ow = c->out_w;
    a.k = c->kernel;
    a.stride = c->stride;
    a.act = c->act;
    for (size_t g = g0; g < g1; g++) {
        float *src = io->in + g * c->in_cs;
        a.x = src;
        for (int j = 0; j < c->mult && (int)g * c->mult + j < c->out_c; j++) {
            const size_t oc = g * (size_t)c->mult + (size_t)j;
            a.w = c->weight + oc * taps;
            a.bias = c->bias ? c->bias[oc] : 0.0f;
            a.y = io->out + oc * c->out_cs;
            a.res = c->res_mode ? io->res + (c->res_out_c + oc) * c->res_cs : NULL;
            a.sum = c->sum_out_c >= 0 ? io->sums + (c->sum_out_c + oc) * c->sum_cs : NULL;
            kt->dwb(&a);
        }
        if (c->sum_src_c >= 0)
            kt->sum_b(src, (size_t)c->in_h * c->in_w, c->batch, io->sums + (c->sum_src_c + g) * c->sum_cs);
        if (c->res_mode) kt->add(src, io->res + (c->res_src_c + g) * c->res_cs, in_n);
    }
}

/* A task's first plane; with dw8, rounded down to a multiple of 8 channels in its image so
 * that runs of 8 are not split between tasks. */
static size_t dw_part_begin(const gn_fconv *c, size_t planes, int task) {
    const size_t pl = part_begin(planes, c->ntasks, task);
    if (!c->dw8 || pl >= planes) return pl;
    const size_t in_c = (size_t)c->in_c;
    return pl / in_c * in_c + (pl % in_c) / 8 * 8;
}

/* After a source plane's outputs are written: its squeeze-excite sum, its residual share. */
static void dw_source_done(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int b,
                           int g, size_t in_hw) {
    float *src = io->in + b * c->in_bs + g * c->in_cs;
    if (c->sum_src_c >= 0)
        io->sums[b * c->sum_bs + (size_t)(c->sum_src_c + g) * c->sum_cs] = kt->sum(src, in_hw);
    if (c->res_mode)
        kt->add(src, io->res + b * c->res_bs + (size_t)(c->res_src_c + g) * c->res_cs, in_hw);
}

static void dw_task(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int task) {
    if (c->bv) {
        dw_bv_task(kt, c, io, task);
        return;
    }
    const size_t planes = (size_t)c->batch * c->in_c;
    const size_t g0 = dw_part_begin(c, planes, task), g1 = dw_part_begin(c, planes, task + 1);
    const size_t in_hw = (size_t)c->in_h * c->in_w, taps = (size_t)c->kernel * c->kernel;
    const gn_dw_fn fn = pick_dw(kt, c->kernel, c->stride);
    /* the ring's padding columns and the zero slot stay zero: kernels write data columns only */
    const size_t slot = gn_dw_slot_floats(c->pitch, c->stride);
    const int ring_rows = gn_dw_ring_rows(c->in_h, c->kernel, c->stride, slot);
    memset(io->scratch, 0, ((size_t)ring_rows + 1) * slot * sizeof(float));
    gn_dw8_args a8 = {0};
    if (c->dw8) {
        a8.scratch = io->scratch + ((size_t)ring_rows + 1) * slot;
        memset(a8.scratch, 0, gn_dw8_pad_floats(c->in_h, c->in_w, c->kernel) * sizeof(float));
        a8.ldx = c->in_cs;
        a8.ldy = c->out_cs;
        a8.ldr = c->res_cs;
        a8.lds = c->sum_cs;
        a8.ih = c->in_h;
        a8.iw = c->in_w;
        a8.oh = c->out_h;
        a8.ow = c->out_w;
        a8.k = c->kernel;
        a8.stride = c->stride;
        a8.act = c->act;
    }
    /* channels with an output (mult == 1 on the dw8 path) */
    const int full = c->in_c < c->out_c ? c->in_c : c->out_c;
    gn_dw_args a = {0};
    a.ring = io->scratch;
    a.ring_rows = ring_rows;
    a.zero = io->scratch + (size_t)ring_rows * slot;
    a.pitch = c->pitch;
    a.ih = c->in_h;
    a.iw = c->in_w;
    a.oh = c->out_h;
    a.ow = c->out_w;
    a.k = c->kernel;
    a.stride = c->stride;
    a.act = c->act;
    for (size_t pl = g0; pl < g1; pl++) {
        const int b = (int)(pl / (size_t)c->in_c), g = (int)(pl % (size_t)c->in_c);
        if (c->dw8 && g % 8 == 0 && g + 8 <= full && pl + 8 <= g1) { /* 8 planes at once */
            a8.x = io->in + b * c->in_bs + g * c->in_cs;
            a8.y = io->out + b * c->out_bs + g * c->out_cs;
            a8.w = c->weight + (size_t)g * taps;
            a8.bias = c->bias ? c->bias + g : kZeroBias8;
            a8.res = c->res_mode ? io->res + b * c->res_bs + (size_t)(c->res_out_c + g) * c->res_cs : NULL;
            a8.sum = c->sum_out_c >= 0
                         ? io->sums + b * c->sum_bs + (size_t)(c->sum_out_c + g) * c->sum_cs
                         : NULL;
            kt->dw8(&a8);
            for (int j = 0; j < 8; j++) dw_source_done(kt, c, io, b, g + j, in_hw);
            pl += 7;
            continue;
        }
        float *src = io->in + b * c->in_bs + g * c->in_cs;
        const int first = g * c->mult;
        if (first < c->out_c) {
            a.x = src;
            for (int j = 0; j < c->mult && first + j < c->out_c; j++) {
                const int oc = first + j;
                a.w = c->weight + (size_t)oc * taps;
                a.bias = c->bias ? c->bias[oc] : 0.0f;
                a.y = io->out + b * c->out_bs + oc * c->out_cs;
                a.res = c->res_mode ? io->res + b * c->res_bs + (size_t)(c->res_out_c + oc) * c->res_cs
                                    : NULL;
                a.sum = c->sum_out_c >= 0
                            ? io->sums + b * c->sum_bs + (size_t)(c->sum_out_c + oc) * c->sum_cs
                            : NULL;
                fn(&a);
            }
        }
        dw_source_done(kt, c, io, b, g, in_hw);
    }
}

void gn_fconv_task(const gn_kernels *kt, const gn_fconv *c, const gn_fio *io, int task) {
    switch (c->kind) {
    case GN_FCONV_GEMM: gemm_task(kt, c, io, task); break;
    case GN_FCONV_IM2COL: im2col_task(kt, c, io, task); break;
    case GN_FCONV_DW: dw_task(kt, c, io, task); break;
    }
}

/* ---- linear ------------------------------------------------------------------------------ */

void gn_flinear_plan(gn_flinear *l, int threads) {
    /* Split rows only while each task keeps >= 16K multiply-adds: below that the hand-off
     * costs more than it saves. */
    int tasks = threads > 1 ? threads * 2 : 1;
    const size_t macs = (size_t)l->out_f * l->in_f * l->batch;
    while (tasks > 1 && macs / (size_t)tasks < 16384) tasks--;
    const int rows = (l->out_f + tasks - 1) / tasks;
    l->rows_per_task = (rows + GN_GEMM_MR - 1) / GN_GEMM_MR * GN_GEMM_MR;
    l->ntasks = (l->out_f + l->rows_per_task - 1) / l->rows_per_task;
}

size_t gn_flinear_scratch_floats(const gn_flinear *l) {
    return (size_t)l->rows_per_task * l->batch;
}

void gn_flinear_task(const gn_kernels *kt, const gn_flinear *l, const float *x, float *y,
                     float *target, float *scratch, int task) {
    const int r0 = task * l->rows_per_task;
    const int r1 = r0 + l->rows_per_task < l->out_f ? r0 + l->rows_per_task : l->out_f;
    const int batch = l->batch;
    if (l->packed) { /* scratch (r, b) at (r - r0) * batch + b */
        gn_gemm_strip s = {0};
        s.x = x;
        s.y = scratch;
        s.ldx = (size_t)batch;
        s.ldy = (size_t)batch;
        s.n = batch;
        s.k = l->in_f;
        s.act = l->act;
        /* rows from r0 (a multiple of MR): panels counted from there */
        gn_gemm_panels(kt, &s, l->weight + (size_t)r0 * l->in_f, l->bias + r0, r1 - r0, 0,
                       (r1 - r0 + GN_GEMM_MR - 1) / GN_GEMM_MR, l->in_f > 192 ? 128 : l->in_f);
    } else { /* scratch (r, b) at b * rows_per_task + (r - r0) */
        for (int b = 0; b < batch; b++) {
            gn_gemv_args g;
            g.w = l->weight + (size_t)r0 * l->in_f;
            g.ldw = (size_t)l->in_f;
            g.x = x + (size_t)b * l->in_f;
            g.bias = l->bias ? l->bias + r0 : NULL;
            g.y = scratch + (size_t)b * l->rows_per_task;
            g.m = r1 - r0;
            g.k = l->in_f;
            g.act = l->act;
            kt->gemv(&g);
        }
    }
    if (l->gate && l->bv) { /* packed: the gates of row r are batch contiguous floats */
        for (int r = r0; r < r1; r++)
            kt->scale_b(target + (size_t)r * l->t_cs, (size_t)l->hw, batch,
                        scratch + (size_t)(r - r0) * batch);
        return;
    }
    for (int b = 0; b < batch; b++)
        for (int r = r0; r < r1; r++) {
            const float v = l->packed ? scratch[(size_t)(r - r0) * batch + b]
                                      : scratch[(size_t)b * l->rows_per_task + (r - r0)];
            if (l->gate)
                kt->scale(target + b * l->t_bs + (size_t)r * l->t_cs, (size_t)l->hw, v);
            else
                y[(size_t)r * l->y_fs + b * l->y_bs] = v;
        }
}

/* ---- global average pooling -------------------------------------------------------------- */

void gn_fpool_plan(gn_fpool *p, int threads) {
    int tasks = threads > 1 ? threads * 2 : 1;
    const size_t n = (size_t)p->batch * p->channels * p->hw;
    while (tasks > 1 && n / (size_t)tasks < 16384) tasks--;
    p->ntasks = tasks < p->channels ? tasks : p->channels;
}

void gn_fpool_task(const gn_kernels *kt, const gn_fpool *p, const float *x, float *y, int task) {
    const int c0 = (int)part_begin((size_t)p->channels, p->ntasks, task);
    const int c1 = (int)part_begin((size_t)p->channels, p->ntasks, task + 1);
    if (p->bv) { /* y rows of batch floats */
        for (int c = c0; c < c1; c++) {
            float *yc = y + (size_t)c * p->y_cs;
            kt->sum_b(x + (size_t)c * p->x_cs, (size_t)p->hw, p->batch, yc);
            kt->scale(yc, (size_t)p->batch, 1.0f / (float)p->hw);
        }
        return;
    }
    for (int b = 0; b < p->batch; b++)
        for (int c = c0; c < c1; c++)
            y[(size_t)c * p->y_cs + b * p->y_bs] =
                kt->sum(x + b * p->x_bs + (size_t)c * p->x_cs, (size_t)p->hw) / (float)p->hw;
}

/* ---- transpose --------------------------------------------------------------------------- */

void gn_ftranspose_plan(gn_ftranspose *t, int threads) {
    const size_t n = (size_t)t->rows * t->cols;
    int tasks = want_tasks(threads);
    while (tasks > 1 && n / (size_t)tasks < 32768) tasks--;
    const int col_blocks = (t->cols + 7) / 8;
    t->ntasks = tasks < col_blocks ? tasks : col_blocks;
}

void gn_ftranspose_task(const gn_kernels *kt, const gn_ftranspose *t, const float *x, float *y,
                        int task) {
    const int blocks = (t->cols + 7) / 8;
    const int j0 = (int)part_begin((size_t)blocks, t->ntasks, task) * 8;
    int j1 = (int)part_begin((size_t)blocks, t->ntasks, task + 1) * 8;
    if (j1 > t->cols) j1 = t->cols;
    kt->transpose(x + j0, t->ldx, y + (size_t)j0 * t->ldy, t->ldy, t->rows, j1 - j0);
}
