/* AVX2+FMA kernels (compiled with -mavx2 -mfma): the common loops over kernels/avx2/vec.h. */
#include "vec.h"

#include "../common/kernels_impl.h"
