/* Image decoding and evaluation preprocessing: internal steps, exposed for the tests.
 *
 * The pipeline reproduces what a PyTorch evaluation script does with torchvision 0.14 on a PIL
 * (9.x) image, bit for bit:
 *
 *   img = Image.open(f).convert("RGB")          # 3-channel models
 *   img = Image.open(f).convert("L")            # 1-channel models: luma BEFORE resizing
 *   Resize(resize_size)      shorter side -> S, longer -> int(S * long / short), PIL BILINEAR
 *   CenterCrop(input_size)   offsets int(round((len - crop) / 2.0)), zero padding if too small
 *   ToTensor, Normalize      float32 (v / 255 - mean) / std
 *
 * Decoding follows PIL: JPEG through libjpeg with its defaults (ISLOW DCT, fancy upsampling),
 * CMYK/YCCK JPEGs inverted as Adobe writes them and converted with PIL's cmyk2rgb; PNG palettes
 * looked up like PIL (indices past the palette read as grey i), alpha and tRNS dropped without
 * compositing, 16-bit samples reduced to their high byte. One deliberate difference: PIL opens
 * 16-bit greyscale PNGs as 32-bit integers and clips them to 255 on convert("RGB"/"L"); we take
 * the high byte like every other 16-bit PNG.
 */
#ifndef GN_IMAGE_INTERNAL_H
#define GN_IMAGE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ghostnet.h"

/* Decoded images larger than this are refused before any pixel buffer is allocated. */
#define GN_IMAGE_MAX_SIDE 32768
#define GN_IMAGE_MAX_PIXELS ((uint64_t)1 << 28)
/* gn_image_load refuses files larger than this. */
#define GN_IMAGE_MAX_FILE_BYTES ((size_t)1 << 30)
/* Largest resize_size / input_size accepted by the preprocessing. */
#define GN_PREPROCESS_MAX_SIZE 16384

/* gn_image_decode with `what` naming the source in error messages. */
gn_status gn_image_decode_named(const uint8_t *data, size_t size, const char *what,
                                gn_image *out, gn_error *err);

/* torchvision Resize(size) with an int: the shorter side becomes `size`. */
void gn_resize_shape(int width, int height, int size, int *out_width, int *out_height);

/* torchvision CenterCrop start along one axis of length `len`: round-half-even of
 * (len - crop) / 2, or minus the left/top padding when crop > len. */
int gn_crop_start(int len, int crop);

/* PIL convert("L"): (19595 R + 38470 G + 7471 B + 0x8000) >> 16, for n pixels. */
void gn_rgb_to_luma(const uint8_t *rgb, size_t n, uint8_t *gray);

/* PIL Image.resize((out_w, out_h), BILINEAR) of an interleaved 8-bit image with c channels,
 * computing only the output window [x0, x0 + cw) x [y0, y0 + ch) (which must lie inside the
 * output) into dst rows of dst_stride bytes. Returns GN_OK, GN_ERR_NOMEM or
 * GN_ERR_INVALID_ARG. */
gn_status gn_resize_bilinear_window(const uint8_t *src, int w, int h, int c, int out_w,
                                    int out_h, int x0, int y0, int cw, int ch, uint8_t *dst,
                                    size_t dst_stride);

/* The preprocessed crop before ToTensor: input_size x input_size x channels bytes (HWC). */
gn_status gn_image_crop_u8(const gn_image *image, const gn_preprocess *pre, int channels,
                           uint8_t *dst, gn_error *err);

#endif
