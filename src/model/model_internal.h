/* The model object: an architecture description and one block holding every tensor. */
#ifndef GN_MODEL_INTERNAL_H
#define GN_MODEL_INTERNAL_H

#include "model/arch.h"

struct gn_model {
    gn_arch *arch;
    float *data; /* arch->total_floats floats; tensor i at data + arch->tensors[i].offset */
    gn_preprocess pre;
};

static inline float *gn_model_data(const gn_model *m, int tensor) {
    return m->data + m->arch->tensors[tensor].offset;
}

/* Default preprocessing for a config: 224 crop of a 256 resize, ImageNet mean/std for 3
 * channels, 0.5/0.5 otherwise. */
gn_preprocess gn_preprocess_default(const gn_config *config);

#endif
