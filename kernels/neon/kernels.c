/* AArch64 Advanced SIMD kernels: the common loops over kernels/neon/vec.h. */
#include "vec.h"

#define NLLK_TABLE nllk_kernels_neon
#define NLLK_ISA_NAME "neon"
#include "../common/kernels_impl.h"
