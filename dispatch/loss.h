/* The loss descriptor and the steps every loss's driver shares: the reduction check, the forward's final
 * rounding (mean's denominator) and the backward's gradient scale. The drivers (nll.c, poisson.c) own their
 * kernels' calls; what a reduction means is written here once. */
#ifndef NLLK_DISPATCH_LOSS_H
#define NLLK_DISPATCH_LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "acc.h"
#include "dtype.h"
#include "nllk.h"

typedef struct nllk_loss {
    const char *name;     /* "poisson", "nll"                                                                 */
    nllk_acc_kind acc;    /* its accumulator kind (acc.h)                                                      */
    int mean_over_weight; /* mean's denominator: 1 the total of the weight channel (NLL), 0 the element count */
} nllk_loss;

extern const nllk_loss nllk_loss_poisson;
extern const nllk_loss nllk_loss_nll;
extern const nllk_loss nllk_loss_ce;      /* class-index targets: mean over total_weight */
extern const nllk_loss nllk_loss_ce_prob; /* probability targets: mean over the n*d positions */

/* NLLK_OK, or INVALID_ARGUMENT with the message for a reduction that is none of none, mean, sum. */
nllk_status nllk_check_reduction(nllk_reduction reduction);

/* The forward's MEAN or SUM result from the canonical totals (channel 0 the losses, channel 1 the weights):
 * total[0] / denominator (mean) or total[0] (sum), in double, rounded once to the dtype. */
void nllk_reduce_store(const nllk_loss *loss, const nllk_dtype_desc *dt, nllk_reduction reduction,
                       const double total[2], uint64_t count, void *out);

/* The backward's per-element grad_output g_k = g[k * *g_stride]: NONE gives grad_output itself (stride 1); MEAN
 * grad_output[0] / denominator and SUM grad_output[0] (stride 0), computed into *scratch in the dtype (as
 * PyTorch's mean backward divides). No element (count 0) gives +0. */
const void *nllk_grad_scale(const nllk_dtype_desc *dt, nllk_reduction reduction, const void *grad_output,
                            double denominator, size_t count, nllk_scalar *scratch, size_t *g_stride);

#endif
