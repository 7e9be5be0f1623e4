/* libFuzzer target: any byte string must parse or fail cleanly; accepted tensors must convert.
 * Run: fuzz_safetensors WORK_DIR fuzz/corpus_safetensors (new inputs go to WORK_DIR). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

#define FUZZ_MAX_ELEMENTS ((size_t)1 << 20) /* keeps each run fast and small */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gn_st_file file;
    gn_error err = {0};
    if (gn_st_parse(data, size, "fuzz", &file, &err) != GN_OK) {
        if (err.message[0] == '\0') abort(); /* every failure must explain itself */
        return 0;
    }
    for (size_t i = 0; i < file.num_tensors; i++) {
        const gn_st_tensor *t = &file.tensors[i];
        if (t->end > file.data_size || t->begin > t->end) abort();
        if (gn_st_find(&file, t->name) == NULL) abort();
        if (t->dtype == GN_DTYPE_I64 || t->numel > FUZZ_MAX_ELEMENTS) continue;
        float *dst = malloc(t->numel ? t->numel * sizeof *dst : 1);
        if (!dst) continue;
        if (gn_st_to_f32(&file, t, dst, &err) != GN_OK) abort();
        free(dst);
    }
    for (size_t i = 0; i < file.num_meta; i++)
        if (gn_st_meta_get(&file, file.meta[i].key) == NULL) abort();
    gn_st_free(&file);
    return 0;
}
