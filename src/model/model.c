#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/model_internal.h"
#include "net/net.h"

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

/* Allocates and initialises the parameters of a model whose arch is built. */
static gn_status finish_model(gn_model *m, gn_model **out, gn_error *err) {
    m->data = gn_calloc(m->arch->total_floats, sizeof(float));
    if (!m->data) {
        size_t floats = m->arch->total_floats;
        gn_model_free(m);
        return gn_fail(err, GN_ERR_NOMEM, "out of memory for %zu parameters", floats);
    }
    gn_arch_init_tensors(m->arch, m->data, 0);
    m->pre = gn_preprocess_default(&m->arch->config);
    *out = m;
    return GN_OK;
}

static gn_model *new_model(void) {
    gn_model *m = calloc(1, sizeof *m);
    if (m && !(m->arch = calloc(1, sizeof *m->arch))) {
        free(m);
        m = NULL;
    }
    return m;
}

gn_status gn_model_create(const gn_config *config, gn_model **out, gn_error *err) {
    if (!out) return gn_fail(err, GN_ERR_INVALID_ARG, "gn_model_create: out is NULL");
    *out = NULL;
    gn_model *m = new_model();
    if (!m) return gn_fail(err, GN_ERR_NOMEM, "out of memory for the model");
    gn_status st = gn_arch_build(config, m->arch, err);
    if (st != GN_OK) {
        gn_model_free(m);
        return st;
    }
    return finish_model(m, out, err);
}

gn_status gn_model_create_net(const char *text, size_t len, const char *source, float width,
                              const gn_config *config, gn_model **out, gn_error *err) {
    if (!text || !config || !out)
        return gn_fail(err, GN_ERR_INVALID_ARG, "gn_model_create_net: NULL argument");
    *out = NULL;
    gn_model *m = new_model();
    if (!m) return gn_fail(err, GN_ERR_NOMEM, "out of memory for the model");
    const gn_net_settings settings = {width, config->in_chans, config->num_classes,
                                      config->stem_stride, config->ghost_ratio,
                                      config->ghost_dw_size};
    gn_status st = gn_net_build(text, len, source, &settings, m->arch, err);
    if (st != GN_OK) {
        gn_model_free(m);
        return st;
    }
    return finish_model(m, out, err);
}

void gn_model_free(gn_model *model) {
    if (!model) return;
    free(model->data);
    if (model->arch) gn_net_free(model->arch->net);
    free(model->arch);
    free(model);
}

gn_status gn_model_init_random(gn_model *model, uint64_t seed) {
    if (!model) return GN_ERR_INVALID_ARG;
    gn_arch_init_tensors(model->arch, model->data, seed);
    return GN_OK;
}

const gn_config *gn_model_config(const gn_model *model) { return &model->arch->config; }

size_t gn_model_param_count(const gn_model *model) { return gn_arch_param_count(model->arch); }

size_t gn_model_tensor_count(const gn_model *model) { return (size_t)model->arch->num_tensors; }

gn_status gn_model_tensor(const gn_model *model, size_t index, gn_tensor_info *info) {
    if (!model || !info || index >= (size_t)model->arch->num_tensors) return GN_ERR_INVALID_ARG;
    gn_arch_tensor_info(model->arch, model->data, (int)index, info);
    return GN_OK;
}

gn_status gn_model_find_tensor(const gn_model *model, const char *name, gn_tensor_info *info) {
    if (!model || !name || !info) return GN_ERR_INVALID_ARG;
    int i = gn_arch_find_tensor(model->arch, name);
    if (i < 0) return GN_ERR_INVALID_ARG;
    gn_arch_tensor_info(model->arch, model->data, i, info);
    return GN_OK;
}

const gn_preprocess *gn_model_preprocess(const gn_model *model) { return &model->pre; }

void gn_model_set_preprocess(gn_model *model, const gn_preprocess *pre) {
    if (model && pre) model->pre = *pre;
}
