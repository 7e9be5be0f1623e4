#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "data_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/common.h"
#include "train/train.h"

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "<dir>/<prefix>-<kind>" with or without ".gz", whichever exists. */
static int find_idx(const char *dir, const char *prefix, const char *kind, char *out, size_t n) {
    snprintf(out, n, "%s/%s-%s.gz", dir, prefix, kind);
    if (is_file(out)) return 1;
    snprintf(out, n, "%s/%s-%s", dir, prefix, kind);
    return is_file(out);
}

gn_status cli_load_split(const char *path, const char *split, int channels, int load_size,
                         gn_dataset *out, gn_error *err) {
    char images[1024], labels[1024], folder[1024];
    const int train = strcmp(split, "train") == 0;
    const char *prefix = train ? "train" : "t10k";
    if (find_idx(path, prefix, "images-idx3-ubyte", images, sizeof images)) {
        if (!find_idx(path, prefix, "labels-idx1-ubyte", labels, sizeof labels))
            return gn_fail(err, GN_ERR_IO, "%s: has %s but no %s-labels-idx1-ubyte[.gz]", path,
                           images, prefix);
        gn_status st = gn_dataset_load_idx(images, labels, 0, out, err);
        if (st == GN_OK && channels != 1) {
            gn_dataset_free(out);
            return gn_fail(err, GN_ERR_INVALID_ARG,
                           "%s: IDX images have 1 channel, the model expects %d", path, channels);
        }
        return st;
    }
    snprintf(folder, sizeof folder, "%s/%s", path, train ? "train" : "val");
    if (!train && !is_dir(folder)) snprintf(folder, sizeof folder, "%s/test", path);
    if (!is_dir(folder))
        return gn_fail(err, GN_ERR_IO,
                       "%s: no %s split (expected %s-images-idx3-ubyte[.gz] or a %s folder)",
                       path, split, prefix, train ? "train/" : "val/ or test/");
    gn_folder_options fo;
    memset(&fo, 0, sizeof fo);
    fo.channels = channels;
    fo.load_size = load_size > 0 ? load_size : 224;
    fo.lazy = 0;
    return gn_dataset_load_folder(folder, &fo, out, err);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_eval_result_free(cli_eval_result *r) {
    free(r->confusion);
    r->confusion = NULL;
}

gn_status cli_evaluate(const gn_model *model, const gn_dataset *ds, int batch, int threads,
                       cli_eval_result *out, gn_error *err) {
    const gn_config *c = gn_model_config(model);
    const gn_preprocess *pre = gn_model_preprocess(model);
    memset(out, 0, sizeof *out);
    if (ds->channels != c->in_chans)
        return gn_fail(err, GN_ERR_INVALID_ARG, "dataset has %d channel(s), the model %d",
                       ds->channels, c->in_chans);
    if (ds->num_classes > c->num_classes)
        return gn_fail(err, GN_ERR_INVALID_ARG, "dataset has %d classes, the model only %d",
                       ds->num_classes, c->num_classes);
    if (batch > ds->count) batch = ds->count;
    const int size = pre->input_size, classes = c->num_classes;
    gn_loader_options lo = gn_loader_options_default();
    lo.batch = batch;
    lo.out_height = lo.out_width = size;
    for (int i = 0; i < 3; i++) {
        lo.mean[i] = pre->mean[i];
        lo.std[i] = pre->std[i];
    }
    gn_loader *loader = NULL;
    gn_session *session = NULL;
    gn_session_options so = gn_session_options_default();
    so.num_threads = threads;
    const size_t image_floats = (size_t)c->in_chans * size * size;
    float *padded = gn_calloc((size_t)batch * image_floats, sizeof(float));
    float *logits = gn_calloc((size_t)batch * classes, sizeof(float));
    out->confusion = gn_calloc((size_t)classes * classes, sizeof(int));
    out->num_classes = classes;
    gn_status st = GN_OK;
    if (!padded || !logits || !out->confusion)
        st = gn_fail(err, GN_ERR_NOMEM, "out of memory for evaluation");
    if (st == GN_OK) st = gn_loader_create(ds, &lo, &loader, err);
    if (st == GN_OK) st = gn_session_create(model, batch, size, size, &so, &session, err);
    if (st == GN_OK) st = gn_loader_start_epoch(loader, 0, err);
    double loss_sum = 0.0;
    while (st == GN_OK) {
        const float *inputs;
        const int *labels;
        int count = 0;
        st = gn_loader_next(loader, &inputs, &labels, &count, err);
        if (st != GN_OK || count == 0) break;
        /* The session runs whole batches: pad the last one with zeros. */
        if (count < batch) {
            memcpy(padded, inputs, (size_t)count * image_floats * sizeof(float));
            inputs = padded;
        }
        double t0 = now_seconds();
        st = gn_session_run(session, inputs, logits, err);
        out->seconds += now_seconds() - t0;
        if (st != GN_OK) break;
        int correct = 0;
        loss_sum += gn_softmax_xent(logits, count, classes, labels, 0.0f, NULL, &correct) * count;
        out->correct += correct;
        out->count += count;
        for (int i = 0; i < count; i++) {
            const float *z = logits + (size_t)i * classes;
            int best = 0;
            for (int k = 1; k < classes; k++)
                if (z[k] > z[best]) best = k;
            out->confusion[(size_t)labels[i] * classes + best]++;
        }
    }
    out->loss = out->count ? loss_sum / out->count : 0.0;
    gn_session_free(session);
    gn_loader_free(loader);
    free(padded);
    free(logits);
    if (st != GN_OK) cli_eval_result_free(out);
    return st;
}
