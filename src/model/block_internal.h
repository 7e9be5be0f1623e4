#ifndef GN_BLOCK_INTERNAL_H
#define GN_BLOCK_INTERNAL_H

#include "model/arch.h"

typedef enum gn_block_kind { GN_BLOCK_GHOST_MODULE, GN_BLOCK_BOTTLENECK } gn_block_kind;

struct gn_block {
    gn_block_kind kind;
    gn_arch arch; /* only the tensor table is used */
    gn_ghost_desc ghost;
    gn_bottleneck_desc bottleneck;
    float *data;
};

#endif
