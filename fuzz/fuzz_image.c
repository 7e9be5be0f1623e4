/* libFuzzer target: JPEG/PNG decoding of arbitrary bytes, then preprocessing of whatever
 * decodes. Any crash, sanitizer report, leak or malformed result is a bug.
 * Seeds: fuzz/corpus_image/. Run: ./fuzz_image -max_len=4096 fuzz/corpus_image */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ghostnet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gn_image image;
    gn_error err;
    memset(&err, 0, sizeof err);
    gn_status st = gn_image_decode(data, size, &image, &err);
    if (memchr(err.message, '\0', sizeof err.message) == NULL) abort();
    if (st != GN_OK) {
        if (image.pixels || image.width || image.height || image.channels) abort();
        return 0;
    }
    if (!image.pixels || image.width < 1 || image.height < 1 ||
        (image.channels != 1 && image.channels != 3))
        abort();
    /* Touch every decoded byte so uninitialised or short buffers show up. */
    size_t n = (size_t)image.width * (size_t)image.height * (size_t)image.channels;
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++) sum += image.pixels[i];
    (void)sum;

    gn_preprocess pre = {56, 64, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    float *dst = malloc(3 * 56 * 56 * sizeof *dst);
    if (dst) {
        if (gn_image_preprocess(&image, &pre, 3, dst, &err) != GN_OK) abort();
        if (gn_image_preprocess(&image, &pre, 1, dst, &err) != GN_OK) abort();
        free(dst);
    }
    gn_image_free(&image);
    return 0;
}
