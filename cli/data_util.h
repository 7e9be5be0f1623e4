/* Dataset plumbing shared by `train` and `eval`: find a split of a dataset path, and evaluate
 * a model on a dataset with an inference session. */
#ifndef GN_CLI_DATA_UTIL_H
#define GN_CLI_DATA_UTIL_H

#include "data/dataset.h"
#include "ghostnet.h"

/* A split of PATH: MNIST-style IDX files in PATH ("train" -> train-images-idx3-ubyte[.gz] +
 * train-labels-idx1-ubyte[.gz]; "test" -> t10k-*), or an image folder PATH/train and
 * PATH/val (or PATH/test) with one sub-folder per class. `channels` and `load_size` apply to
 * image folders (load_size 0: 224 for RGB). */
gn_status cli_load_split(const char *path, const char *split, int channels, int load_size,
                         gn_dataset *out, gn_error *err);

typedef struct cli_eval_result {
    double loss;          /* mean cross-entropy without smoothing */
    int correct, count;
    int num_classes;
    int *confusion;       /* num_classes x num_classes (true row, predicted column); owned */
    double seconds;       /* forward time only */
} cli_eval_result;

/* Runs every sample of `ds` through `model` (eval mode, batch `batch`, `threads` threads),
 * normalising with the model's recorded mean/std. */
gn_status cli_evaluate(const gn_model *model, const gn_dataset *ds, int batch, int threads,
                       cli_eval_result *out, gn_error *err);
void cli_eval_result_free(cli_eval_result *r);

#endif
