#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/rng.h"
#include "model/model_internal.h"

gn_preprocess gn_preprocess_default(const gn_config *config) {
    gn_preprocess p;
    p.input_size = 224;
    p.resize_size = 256;
    static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
    static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
    for (int i = 0; i < 3; i++) {
        p.mean[i] = config->in_chans == 3 ? imagenet_mean[i] : 0.5f;
        p.std[i] = config->in_chans == 3 ? imagenet_std[i] : 0.5f;
    }
    return p;
}

/* BN weights and running variances start at one (PyTorch's defaults), all else at zero. */
static void reset_bn(gn_model *m) {
    const gn_arch *a = m->arch;
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *t = &a->tensors[i];
        size_t len = strlen(t->name);
        int ones = t->is_bn && ((len > 7 && strcmp(t->name + len - 7, ".weight") == 0) ||
                                (len > 12 && strcmp(t->name + len - 12, ".running_var") == 0));
        float *d = m->data + t->offset;
        for (size_t j = 0; j < t->numel; j++) d[j] = ones ? 1.0f : 0.0f;
    }
}

gn_status gn_model_create(const gn_config *config, gn_model **out, gn_error *err) {
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_model_create: out is NULL");
    *out = NULL;
    gn_model *m = calloc(1, sizeof *m);
    if (!m) return gn_fail(err, GN_ERR_NOMEM, "out of memory for the model");
    m->arch = malloc(sizeof *m->arch);
    if (!m->arch) {
        free(m);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for the model");
    }
    gn_status st = gn_arch_build(config, m->arch, err);
    if (st != GN_OK) {
        gn_model_free(m);
        return st;
    }
    m->data = gn_calloc(m->arch->total_floats, sizeof(float));
    if (!m->data) {
        size_t floats = m->arch->total_floats;
        gn_model_free(m);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for %zu parameters", floats);
    }
    reset_bn(m);
    m->pre = gn_preprocess_default(config);
    *out = m;
    return GN_OK;
}

void gn_model_free(gn_model *model) {
    if (!model) return;
    free(model->data);
    free(model->arch);
    free(model);
}

/* PyTorch's default for Conv2d and Linear: kaiming_uniform(a=sqrt(5)) gives
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights, and the same bound for biases. */
gn_status gn_model_init_random(gn_model *model, uint64_t seed) {
    if (!model) return GN_ERR_INVALID_ARG;
    gn_rng rng;
    gn_rng_seed(&rng, seed);
    reset_bn(model);
    const gn_arch *a = model->arch;
    float fan_in = 1.0f;
    for (int i = 0; i < a->num_tensors; i++) {
        const gn_tensor_desc *t = &a->tensors[i];
        if (t->is_bn) continue;
        if (t->ndim >= 2) {
            fan_in = 1.0f;
            for (int d = 1; d < t->ndim; d++) fan_in *= (float)t->shape[d];
        } /* a bias follows its weight and reuses its fan_in */
        float bound = 1.0f / sqrtf(fan_in);
        float *d = model->data + t->offset;
        for (size_t j = 0; j < t->numel; j++) d[j] = (2.0f * gn_rng_uniform(&rng) - 1.0f) * bound;
    }
    return GN_OK;
}

const gn_config *gn_model_config(const gn_model *model) { return &model->arch->config; }

size_t gn_model_param_count(const gn_model *model) {
    size_t n = 0;
    for (int i = 0; i < model->arch->num_tensors; i++)
        if (model->arch->tensors[i].is_param) n += model->arch->tensors[i].numel;
    return n;
}

size_t gn_model_tensor_count(const gn_model *model) { return (size_t)model->arch->num_tensors; }

gn_status gn_model_tensor(const gn_model *model, size_t index, gn_tensor_info *info) {
    if (!model || !info || index >= (size_t)model->arch->num_tensors) return GN_ERR_INVALID_ARG;
    const gn_tensor_desc *t = &model->arch->tensors[index];
    info->name = t->name;
    info->ndim = t->ndim;
    for (int i = 0; i < 4; i++) info->shape[i] = t->shape[i];
    info->data = model->data + t->offset;
    info->numel = t->numel;
    return GN_OK;
}

gn_status gn_model_find_tensor(const gn_model *model, const char *name, gn_tensor_info *info) {
    if (!model || !name) return GN_ERR_INVALID_ARG;
    for (int i = 0; i < model->arch->num_tensors; i++)
        if (strcmp(model->arch->tensors[i].name, name) == 0)
            return gn_model_tensor(model, (size_t)i, info);
    return GN_ERR_INVALID_ARG;
}

const gn_preprocess *gn_model_preprocess(const gn_model *model) { return &model->pre; }

void gn_model_set_preprocess(gn_model *model, const gn_preprocess *pre) {
    if (model && pre) model->pre = *pre;
}
