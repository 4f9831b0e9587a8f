/* AArch64 Advanced SIMD kernels: the common loops over kernels/neon/vec.h. */
#include "vec.h"

#include "../common/kernels_impl.h"
