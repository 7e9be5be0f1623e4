#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "commands.h"

static const char kHelp[] =
    "usage: ghostnet classify --weights FILE [--labels FILE] [--topk K] [--threads N] IMAGE...\n"
    "Classifies JPEG and PNG images with the official evaluation preprocessing (shorter side\n"
    "to the model's resize size with bilinear resampling, centre crop, mean/std from the model\n"
    "file; grayscale for 1-channel models). All images go through one batched forward pass.\n"
    "Prints, per image, its path and the top K classes: probability, class index, label.\n\n"
    "options:\n"
    "  --weights FILE    model file (safetensors; required)\n"
    "  --labels FILE     class names, one per line, as many as the model has classes\n"
    "  --topk K          classes to print per image (default 5)\n"
    "  --threads N       worker threads (default: all cores)\n"
    "  --help            this text\n";

typedef struct labels {
    char **names;
    int count;
    char *text;
} labels;

static void labels_free(labels *l) {
    free(l->names);
    free(l->text);
}

static int labels_load(const char *cmd, const char *path, int expected, labels *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error(cmd, "%s: cannot open labels file", path);
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t got;
    while (text && (got = fread(text + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *bigger = cap < (64u << 20) ? realloc(text, cap * 2) : NULL;
            if (!bigger) {
                free(text);
                text = NULL;
                break;
            }
            text = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (!text) return cli_error(cmd, "%s: labels file too large", path);
    text[len] = '\0';
    out->text = text;
    out->names = calloc((size_t)expected, sizeof *out->names);
    if (!out->names) {
        labels_free(out);
        return cli_error(cmd, "out of memory");
    }
    for (char *line = text; *line && out->count <= expected;) {
        char *end = strchr(line, '\n');
        if (end) *end = '\0';
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[n - 1] = '\0';
        if (out->count < expected) out->names[out->count] = line;
        out->count++;
        if (!end) break;
        line = end + 1;
    }
    if (out->count != expected) {
        int got_count = out->count;
        labels_free(out);
        return cli_error(cmd, "%s: has %s%d labels, the model has %d classes", path,
                         got_count > expected ? "more than " : "", got_count > expected ? expected : got_count,
                         expected);
    }
    return 0;
}

/* Indices of the k largest probabilities, largest first (ties: lower index first). */
static void top_k(const double *prob, int n, int k, int *idx) {
    for (int j = 0; j < k; j++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int t = 0; t < j; t++) taken |= idx[t] == i;
            if (!taken && (best < 0 || prob[i] > prob[best])) best = i;
        }
        idx[j] = best;
    }
}

int cmd_classify(int argc, char **argv) {
    const char *cmd = "classify";
    const char *weights = NULL, *labels_path = NULL;
    long topk = 5, threads = 0;
    int first_image = argc;
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0) {
            fputs(kHelp, stdout);
            return 0;
        } else if (strcmp(argv[i], "--weights") == 0) {
            if (!(weights = cli_value(cmd, argc, argv, &i))) return 1;
        } else if (strcmp(argv[i], "--labels") == 0) {
            if (!(labels_path = cli_value(cmd, argc, argv, &i))) return 1;
        } else if (strcmp(argv[i], "--topk") == 0) {
            if (!(v = cli_value(cmd, argc, argv, &i)) ||
                cli_parse_int(cmd, "--topk", v, 1, 1000000, &topk))
                return 1;
        } else if (strcmp(argv[i], "--threads") == 0) {
            if (!(v = cli_value(cmd, argc, argv, &i)) ||
                cli_parse_int(cmd, "--threads", v, 0, 1024, &threads))
                return 1;
        } else if (strcmp(argv[i], "--") == 0) {
            first_image = i + 1;
            break;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_error(cmd, "unknown option '%s' (see --help)", argv[i]);
        } else {
            first_image = i;
            break;
        }
    }
    const int num_images = argc - first_image;
    if (!weights) return cli_error(cmd, "--weights is required");
    if (num_images < 1) return cli_error(cmd, "no images given");

    gn_error err = {0};
    gn_model *model = NULL;
    if (gn_model_load(weights, NULL, &model, &err) != GN_OK) return cli_error(cmd, "%s", err.message);
    const gn_config *c = gn_model_config(model);
    const gn_preprocess *pre = gn_model_preprocess(model);
    const int classes = c->num_classes, chans = c->in_chans, size = pre->input_size;
    if (topk > classes) topk = classes;
    if (chans != 1 && chans != 3) {
        gn_model_free(model);
        return cli_error(cmd, "%s: images need a 1- or 3-channel model, this one has %d", weights,
                         chans);
    }
    labels names = {0};
    if (labels_path && labels_load(cmd, labels_path, classes, &names)) {
        gn_model_free(model);
        return 1;
    }

    const size_t image_floats = (size_t)chans * size * size;
    float *input = malloc(image_floats * num_images * sizeof(float));
    float *logits = malloc((size_t)classes * num_images * sizeof(float));
    double *prob = malloc((size_t)classes * sizeof(double));
    int *idx = malloc((size_t)topk * sizeof(int));
    int rc = 1;
    gn_session *session = NULL;
    if (!input || !logits || !prob || !idx) {
        cli_error(cmd, "out of memory for %d images", num_images);
        goto done;
    }
    /* Decode everything first: a bad image stops the run before anything is printed. */
    for (int n = 0; n < num_images; n++) {
        gn_image img;
        if (gn_image_load(argv[first_image + n], &img, &err) != GN_OK) {
            cli_error(cmd, "%s", err.message);
            goto done;
        }
        gn_status st = gn_image_preprocess(&img, pre, chans, input + image_floats * n, &err);
        gn_image_free(&img);
        if (st != GN_OK) {
            cli_error(cmd, "%s: %s", argv[first_image + n], err.message);
            goto done;
        }
    }
    gn_session_options opts = gn_session_options_default();
    opts.num_threads = (int)threads;
    if (gn_session_create(model, num_images, size, size, &opts, &session, &err) != GN_OK ||
        gn_session_run(session, input, logits, &err) != GN_OK) {
        cli_error(cmd, "%s", err.message);
        goto done;
    }
    for (int n = 0; n < num_images; n++) {
        const float *z = logits + (size_t)classes * n;
        double zmax = z[0], sum = 0.0;
        for (int k = 1; k < classes; k++) zmax = z[k] > zmax ? z[k] : zmax;
        for (int k = 0; k < classes; k++) sum += prob[k] = exp(z[k] - zmax);
        for (int k = 0; k < classes; k++) prob[k] /= sum;
        top_k(prob, classes, (int)topk, idx);
        printf("%s\n", argv[first_image + n]);
        for (int j = 0; j < topk; j++)
            printf("  %.6f  %5d  %s\n", prob[idx[j]], idx[j], names.names ? names.names[idx[j]] : "");
    }
    rc = 0;
done:
    gn_session_free(session);
    free(input);
    free(logits);
    free(prob);
    free(idx);
    labels_free(&names);
    gn_model_free(model);
    return rc;
}
