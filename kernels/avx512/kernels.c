/* AVX-512 kernels (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma): the common loops over
 * kernels/avx512/vec.h. */
#include "vec.h"

#include "../common/kernels_impl.h"
