/* Public Poisson NLL entry points: argument checks and the driver. */
#include "error.h"
#include "kernels.h"
#include "nllk.h"
#include "reduce.h"

static nllk_status poisson_check_args(const void *input, const void *target, size_t n, size_t elem_size,
                                      nllk_reduction reduction)
{
    size_t bytes;
    if (reduction != NLLK_REDUCTION_NONE && reduction != NLLK_REDUCTION_MEAN && reduction != NLLK_REDUCTION_SUM)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "reduction %d is not valid (none = 0, mean = 1, sum = 2)",
                         (int)reduction);
    if (!nllk_mul_size(n, elem_size, &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "n = %zu elements overflow size_t bytes", n);
    if (n > 0 && !input)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "input is NULL");
    if (n > 0 && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    return NLLK_OK;
}

#define T float
#define DT f32
#include "poisson_impl.h"
#undef T
#undef DT

#define T double
#define DT f64
#include "poisson_impl.h"
#undef T
#undef DT
