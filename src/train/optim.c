/* SGD (momentum, Nesterov, L2 weight decay) and AdamW with PyTorch's update rules, and the
 * learning-rate schedules. The state buffers use the model's tensor layout, so one index
 * serves parameters, gradients and state alike. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/model_internal.h"
#include "train/train.h"

struct gn_optimizer {
    gn_optim_options o;
    const gn_arch *arch; /* the model's; the optimizer must not outlive it */
    size_t floats;
    float *buf1; /* SGD momentum buffer / AdamW first moment */
    float *buf2; /* AdamW second moment */
    int64_t steps;
};

gn_optim_options gn_optim_options_default(void) {
    gn_optim_options o;
    o.kind = GN_OPTIM_SGD;
    o.momentum = 0.9f;
    o.nesterov = 1;
    o.beta1 = 0.9f;
    o.beta2 = 0.999f;
    o.eps = 1e-8f;
    o.weight_decay = 4e-5f;
    o.no_decay_bn_bias = 0;
    return o;
}

gn_status gn_optimizer_create(const gn_model *model, const gn_optim_options *options,
                              gn_optimizer **out, gn_error *err) {
    if (!out || !model) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_optimizer_create: NULL argument");
    *out = NULL;
    gn_optim_options o = options ? *options : gn_optim_options_default();
    if (o.kind != GN_OPTIM_SGD && o.kind != GN_OPTIM_ADAMW)
        return gn_fail(err, GN_ERR_INVALID_ARG, "unknown optimizer kind %d", (int)o.kind);
    if (!(o.momentum >= 0.0f && o.momentum < 1.0f) || !(o.weight_decay >= 0.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG, "momentum %g / weight decay %g out of range",
                       (double)o.momentum, (double)o.weight_decay);
    if (o.kind == GN_OPTIM_SGD && o.nesterov && o.momentum <= 0.0f)
        return gn_fail(err, GN_ERR_INVALID_ARG, "Nesterov momentum requires momentum > 0");
    if (o.kind == GN_OPTIM_ADAMW &&
        (!(o.beta1 >= 0.0f && o.beta1 < 1.0f) || !(o.beta2 >= 0.0f && o.beta2 < 1.0f) ||
         !(o.eps > 0.0f)))
        return gn_fail(err, GN_ERR_INVALID_ARG, "AdamW betas (%g, %g) / eps %g out of range",
                       (double)o.beta1, (double)o.beta2, (double)o.eps);
    gn_optimizer *opt = calloc(1, sizeof *opt);
    if (!opt) return gn_fail(err, GN_ERR_NOMEM, "out of memory for the optimizer");
    opt->o = o;
    opt->arch = model->arch;
    opt->floats = model->arch->total_floats;
    const int need1 = o.kind == GN_OPTIM_ADAMW || o.momentum > 0.0f;
    if (need1) opt->buf1 = gn_calloc(opt->floats, sizeof(float));
    if (o.kind == GN_OPTIM_ADAMW) opt->buf2 = gn_calloc(opt->floats, sizeof(float));
    if ((need1 && !opt->buf1) || (o.kind == GN_OPTIM_ADAMW && !opt->buf2)) {
        const size_t floats = opt->floats;
        gn_optimizer_free(opt);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for optimizer state (%zu floats)",
                       floats);
    }
    *out = opt;
    return GN_OK;
}

void gn_optimizer_free(gn_optimizer *opt) {
    if (!opt) return;
    free(opt->buf1);
    free(opt->buf2);
    free(opt);
}

int64_t gn_optimizer_steps(const gn_optimizer *opt) { return opt ? opt->steps : 0; }

void gn_optimizer_set_steps(gn_optimizer *opt, int64_t steps) {
    if (opt && steps >= 0) opt->steps = steps;
}

float *gn_optimizer_buffer(gn_optimizer *opt, int which) {
    if (!opt) return NULL;
    return which == 0 ? opt->buf1 : which == 1 ? opt->buf2 : NULL;
}

/* timm's "no weight decay" rule: 1-D tensors are BN gamma/beta or biases. */
static float tensor_decay(const gn_optimizer *opt, const gn_tensor_desc *t) {
    if (opt->o.no_decay_bn_bias && (t->is_bn || t->ndim <= 1)) return 0.0f;
    return opt->o.weight_decay;
}

static void sgd_tensor(const gn_optimizer *opt, float *p, const float *g, float *buf, size_t n,
                       float lr, float wd) {
    const float mom = opt->o.momentum;
    const int first = opt->steps == 0;
    for (size_t i = 0; i < n; i++) {
        float d = g[i] + wd * p[i];
        if (buf) {
            buf[i] = first ? d : mom * buf[i] + d;
            d = opt->o.nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

static void adamw_tensor(const gn_optimizer *opt, float *p, const float *g, float *m, float *v,
                         size_t n, float lr, float wd) {
    const float b1 = opt->o.beta1, b2 = opt->o.beta2, eps = opt->o.eps;
    const double t = (double)(opt->steps + 1);
    const float step_size = (float)(lr / (1.0 - pow(b1, t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow(b2, t));
    const float decay = 1.0f - lr * wd;
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= step_size * (m[i] / (sqrtf(v[i]) / bc2_sqrt + eps));
    }
}

gn_status gn_optimizer_step(gn_optimizer *opt, gn_model *model, const float *grads, float lr,
                            gn_error *err) {
    if (!opt || !model || !grads)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_optimizer_step: NULL argument");
    if (model->arch->total_floats != opt->floats)
        return gn_fail(err, GN_ERR_SHAPE, "optimizer was created for another architecture");
    if (!(lr >= 0.0f) || !isfinite(lr))
        return gn_fail(err, GN_ERR_INVALID_ARG, "learning rate %g out of range", (double)lr);
    const gn_arch *a = model->arch;
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *t = &a->tensors[i];
        if (!t->is_param) continue;
        float *p = model->data + t->offset;
        const float *g = grads + t->offset;
        const float wd = tensor_decay(opt, t);
        if (opt->o.kind == GN_OPTIM_SGD)
            sgd_tensor(opt, p, g, opt->buf1 ? opt->buf1 + t->offset : NULL, t->numel, lr, wd);
        else
            adamw_tensor(opt, p, g, opt->buf1 + t->offset, opt->buf2 + t->offset, t->numel, lr, wd);
    }
    opt->steps++;
    return GN_OK;
}

float gn_lr_warmup_cosine(int64_t step, float base_lr, int64_t warmup_steps, int64_t total_steps,
                          float min_lr) {
    if (step < 0) step = 0;
    if (step < warmup_steps) return (float)((double)base_lr * (double)(step + 1) / warmup_steps);
    if (step >= total_steps || total_steps <= warmup_steps) return min_lr;
    const double pi = 3.14159265358979323846;
    const double t = (double)(step - warmup_steps) / (double)(total_steps - warmup_steps);
    return (float)(min_lr + (base_lr - min_lr) * 0.5 * (1.0 + cos(pi * t)));
}

float gn_lr_step_decay(int64_t step, float base_lr, int64_t step_size, float gamma) {
    if (step < 0 || step_size <= 0) return base_lr;
    return (float)(base_lr * pow(gamma, (double)(step / step_size)));
}

/* ---- weight averaging -------------------------------------------------------------------- */

struct gn_ema {
    const gn_arch *arch; /* the model's; the average must not outlive it */
    float decay;
    float *data;         /* arch->total_floats floats, the model's layout */
    int64_t updates;
};

gn_status gn_ema_create(const gn_model *model, float decay, gn_ema **out, gn_error *err) {
    if (!out || !model) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_ema_create: NULL argument");
    *out = NULL;
    if (!(decay >= 0.0f && decay < 1.0f))
        return gn_fail(err, GN_ERR_INVALID_ARG, "EMA decay %g is not in [0, 1)", (double)decay);
    gn_ema *ema = calloc(1, sizeof *ema);
    const size_t floats = model->arch->total_floats;
    if (ema) ema->data = gn_malloc(floats * sizeof(float));
    if (!ema || !ema->data) {
        free(ema);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for the weight average (%zu floats)",
                       floats);
    }
    ema->arch = model->arch;
    ema->decay = decay;
    memcpy(ema->data, model->data, floats * sizeof(float));
    *out = ema;
    return GN_OK;
}

void gn_ema_free(gn_ema *ema) {
    if (!ema) return;
    free(ema->data);
    free(ema);
}

gn_status gn_ema_update(gn_ema *ema, const gn_model *model, gn_error *err) {
    if (!ema || !model) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_ema_update: NULL argument");
    if (model->arch != ema->arch)
        return gn_fail(err, GN_ERR_SHAPE, "weight average was made for another model");
    const double warm = (1.0 + (double)ema->updates) / (10.0 + (double)ema->updates);
    const float r = (float)(warm < ema->decay ? warm : ema->decay), q = 1.0f - r;
    const float *w = model->data;
    for (size_t i = 0; i < ema->arch->total_floats; i++) ema->data[i] = r * ema->data[i] + q * w[i];
    ema->updates++;
    return GN_OK;
}

void gn_ema_swap(gn_ema *ema, gn_model *model) {
    if (!ema || !model || model->arch != ema->arch) return;
    float *t = model->data;
    model->data = ema->data;
    ema->data = t;
}

float *gn_ema_buffer(gn_ema *ema) { return ema ? ema->data : NULL; }

int64_t gn_ema_updates(const gn_ema *ema) { return ema ? ema->updates : 0; }

void gn_ema_set_updates(gn_ema *ema, int64_t updates) {
    if (ema && updates >= 0) ema->updates = updates;
}
