/* The loss descriptors and the reduction steps shared by every loss (loss.h). */
#include <string.h>

#include "error.h"
#include "loss.h"

const nllk_loss nllk_loss_poisson = {"poisson", NLLK_ACC_POISSON, 0};
const nllk_loss nllk_loss_nll = {"nll", NLLK_ACC_NLL, 1};
const nllk_loss nllk_loss_ce = {"cross_entropy", NLLK_ACC_CE, 1};
const nllk_loss nllk_loss_ce_prob = {"cross_entropy_prob", NLLK_ACC_CE_PROB, 0};

nllk_status nllk_check_reduction(nllk_reduction reduction)
{
    if (reduction != NLLK_REDUCTION_NONE && reduction != NLLK_REDUCTION_MEAN && reduction != NLLK_REDUCTION_SUM)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "reduction %d is not valid (none = 0, mean = 1, sum = 2)",
                         (int)reduction);
    return NLLK_OK;
}

void nllk_reduce_store(const nllk_loss *loss, const nllk_dtype_desc *dt, nllk_reduction reduction,
                       const double total[2], uint64_t count, void *out)
{
    const double denominator = loss->mean_over_weight ? total[1] : (double)count;
    dt->store(out, reduction == NLLK_REDUCTION_MEAN ? total[0] / denominator : total[0]);
}

const void *nllk_grad_scale(const nllk_dtype_desc *dt, nllk_reduction reduction, const void *grad_output,
                            double denominator, size_t count, nllk_scalar *scratch, size_t *g_stride)
{
    *g_stride = reduction == NLLK_REDUCTION_NONE;
    if (reduction == NLLK_REDUCTION_NONE)
        return grad_output;
    if (count == 0)
        dt->store(scratch, 0.0);
    else if (reduction == NLLK_REDUCTION_MEAN)
        dt->div(scratch, grad_output, denominator);
    else
        memcpy(scratch, grad_output, dt->size);
    return scratch;
}
