/* libFuzzer target: network descriptions (docs/netdesc.md). Byte 0 picks the settings (input
 * channels, stem stride, Ghost ratio/dw defaults, input size), the rest is the text. Whatever
 * parses is sized and, when small, run once forward in eval mode and once in training mode.
 * Any crash, sanitizer report, leak or broken invariant is a bug.
 * Run: ./fuzz_netdesc -max_len=2048 <corpus dir> (the corpus starts from the nets folder) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "net/net.h"
#include "train/train.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const gn_error *err) {
    if (memchr(err->message, '\0', sizeof err->message) == NULL) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t sel = data[0];
    gn_config c = gn_config_default();
    c.in_chans = 1 + (sel & 3);
    c.num_classes = 10;
    c.stem_stride = 1 + ((sel >> 2) & 1);
    c.ghost_ratio = 2 + ((sel >> 3) & 1);
    c.ghost_dw_size = (sel >> 4) & 1 ? 5 : 3;
    const int hw = 4 + ((sel >> 5) & 7) * 2;
    gn_model *m = NULL;
    gn_error err = {0};
    gn_status st = gn_model_create_net((const char *)data + 1, size - 1, "fuzz.net", 0.0f, &c, &m,
                                       &err);
    if (st != GN_OK) {
        check_message(&err);
        if (m) abort();
        return 0;
    }
    const gn_net *net = m->arch->net;
    if (!net || net->values[net->output].channels != c.num_classes) abort();
    int *vh = malloc((size_t)net->num_values * 2 * sizeof *vh);
    if (vh && gn_net_spatial(net, hw, hw, vh, vh + net->num_values, &err) == GN_OK &&
        gn_net_macs(net, hw, hw) >= 0 && m->arch->total_floats < 200000 && net->num_nodes < 64) {
        gn_model_init_random(m, 1);
        float x[4 * 18 * 18 * 2], y[20];
        for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)(i % 7) - 3.0f;
        gn_net_graph *g = NULL;
        if (gn_net_graph_create(m, 1, hw, hw, 0, 1, 0, &g, &err) == GN_OK) {
            if (gn_net_graph_eval(g, x, 1, y, &err) != GN_OK) abort();
            gn_net_graph_free(g);
        }
        float *grads = calloc(m->arch->total_floats + 1, sizeof *grads);
        const int labels[2] = {3, 7};
        if (grads && gn_net_graph_create(m, 2, hw, hw, 1, 1, 0, &g, &err) == GN_OK) {
            double loss = 0;
            if (gn_net_graph_train(g, x, labels, 0.1f, 1, 1, grads, &loss, NULL, NULL, &err) != GN_OK)
                abort();
            gn_net_graph_free(g);
        }
        free(grads);
    }
    check_message(&err);
    free(vh);
    gn_model_free(m);
    return 0;
}
