/* AVX-512 kernels (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma): the common loops over
 * kernels/avx512/vec.h. */
#include "vec.h"

#define NLLK_TABLE nllk_kernels_avx512
#define NLLK_ISA_NAME "avx512"
#include "../common/kernels_impl.h"
