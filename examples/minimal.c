/* The smallest program against the installed library: build a GhostNet 0.5x (or load a file
 * given as argv[1]), run one 224x224 image of zeros, print the top class.
 *   cc minimal.c $(pkg-config --cflags --libs ghostnet) -o minimal */
#include <stdio.h>
#include <stdlib.h>

#include <ghostnet.h>

int main(int argc, char **argv) {
    gn_error err;
    gn_model *model = NULL;
    gn_config config = gn_config_default();
    config.width = 0.5f;
    gn_status st = argc > 1 ? gn_model_load(argv[1], NULL, &model, &err)
                            : gn_model_create(&config, &model, &err);
    if (st != GN_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    if (argc == 1) gn_model_init_random(model, 42);
    const gn_config *c = gn_model_config(model);
    float *input = calloc((size_t)c->in_chans * 224 * 224, sizeof(float));
    float *logits = malloc((size_t)c->num_classes * sizeof(float));
    gn_session *session = NULL;
    if (!input || !logits ||
        gn_session_create(model, 1, 224, 224, NULL, &session, &err) != GN_OK ||
        gn_session_run(session, input, logits, &err) != GN_OK) {
        fprintf(stderr, "%s\n", input && logits ? err.message : "out of memory");
        return 1;
    }
    int best = 0;
    for (int k = 1; k < c->num_classes; k++)
        if (logits[k] > logits[best]) best = k;
    printf("%zu parameters; top class %d (logit %.4f)\n", gn_model_param_count(model), best,
           logits[best]);
    gn_session_free(session);
    gn_model_free(model);
    free(input);
    free(logits);
    return 0;
}
