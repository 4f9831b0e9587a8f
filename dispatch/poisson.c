/* Public Poisson NLL entry points: argument checks and the driver. */
#include <stddef.h>
#include <string.h>

#include "acc.h"
#include "error.h"
#include "kernels.h"
#include "nllk.h"
#include "parallel.h"

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

nllk_status nllk_poisson_acc_init(nllk_acc *acc, nllk_dtype dtype, int log_input, int full, double eps,
                                  uint64_t begin)
{
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_start(acc, NLLK_ACC_POISSON, dtype, begin, &st);
    if (!a)
        return st;
    a->log_input = log_input != 0;
    a->full = full != 0;
    a->eps = eps;
    return nllk_acc_seal(a);
}

#define T float
#define DT f32
#define DTYPE NLLK_F32
#include "poisson_impl.h"
#undef T
#undef DT
#undef DTYPE

#define T double
#define DT f64
#define DTYPE NLLK_F64
#include "poisson_impl.h"
#undef T
#undef DT
#undef DTYPE
