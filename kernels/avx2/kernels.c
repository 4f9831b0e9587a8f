/* AVX2+FMA kernels (compiled with -mavx2 -mfma): the common loops over kernels/avx2/vec.h. */
#include "vec.h"

#define NLLK_TABLE nllk_kernels_avx2
#define NLLK_ISA_NAME "avx2"
#include "../common/kernels_impl.h"
