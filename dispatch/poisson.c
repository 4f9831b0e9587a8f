/* Public Poisson NLL entry points: argument checks and the driver, written once over the dtype descriptor
 * (dtype.h); each public function is one line at the end of the file. */
#include <stddef.h>
#include <string.h>

#include "acc.h"
#include "dtype.h"
#include "error.h"
#include "kernels.h"
#include "loss.h"
#include "nllk.h"
#include "parallel.h"

static nllk_status poisson_check_args(const void *input, const void *target, size_t n, size_t elem_size,
                                      nllk_reduction reduction)
{
    size_t bytes;
    const nllk_status st = nllk_check_reduction(reduction);
    if (st != NLLK_OK)
        return st;
    if (!nllk_mul_size(n, elem_size, &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "n = %zu elements overflow size_t bytes", n);
    if (n > 0 && !input)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "input is NULL");
    if (n > 0 && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    return NLLK_OK;
}

/* One call's arrays: element k of each is at byte k * dt->size. */
typedef struct poisson_ctx {
    const nllk_dtype_desc *dt;
    const nllk_kernels *k; /* the active ISA's kernels of dt, fetched once per call */
    nllk_poisson_params p;
    const void *x, *t;
    void *out;     /* forward: per-element losses (NONE, or the accumulators' out); else NULL */
    const void *g; /* backward: grad_output, g_stride 0 or 1                                  */
    size_t g_stride;
    void *gx, *gt;
} poisson_ctx;

static poisson_ctx poisson_ctx_for(const nllk_dtype_desc *dt, const void *x, const void *t, int log_input, int full,
                                   double eps)
{
    return (poisson_ctx){
        .dt = dt, .k = nllk_active()->kernels[dt->slot], .p = {eps, log_input != 0, full != 0}, .x = x, .t = t};
}

static size_t poisson_run(void *vctx, size_t off, size_t n, double *lanes)
{
    const poisson_ctx *c = vctx;
    const nllk_dtype_desc *dt = c->dt;
    c->k->poisson_fwd(n, nllk_elem(dt, c->x, off), nllk_elem(dt, c->t, off), &c->p,
                      c->out ? nllk_elem_mut(dt, c->out, off) : NULL, lanes);
    return n;
}

static size_t poisson_fwd_span(void *vctx, size_t off, size_t n) { return poisson_run(vctx, off, n, NULL); }

static size_t poisson_bwd_span(void *vctx, size_t off, size_t n)
{
    const poisson_ctx *c = vctx;
    const nllk_dtype_desc *dt = c->dt;
    c->k->poisson_bwd(n, nllk_elem(dt, c->x, off), nllk_elem(dt, c->t, off), &c->p,
                      nllk_elem(dt, c->g, off * c->g_stride), c->g_stride, nllk_elem_mut(dt, c->gx, off),
                      c->gt ? nllk_elem_mut(dt, c->gt, off) : NULL);
    return n;
}

static nllk_status poisson_fwd(const nllk_dtype_desc *dt, const void *input, const void *target, size_t n,
                               int log_input, int full, double eps, nllk_reduction reduction, void *out)
{
    const nllk_status st = poisson_check_args(input, target, n, dt->size, reduction);
    if (st != NLLK_OK)
        return st;
    if (!out && (reduction != NLLK_REDUCTION_NONE || n > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "out is NULL");
    poisson_ctx ctx = poisson_ctx_for(dt, input, target, log_input, full, eps);
    if (reduction == NLLK_REDUCTION_NONE) {
        ctx.out = out;
        if (n > 0)
            nllk_parallel_spans(n, NLLK_GRAIN, poisson_fwd_span, &ctx);
        return nllk_ok();
    }
    nllk_sum s;
    double total[2];
    nllk_sum_init(&s, 0);
    nllk_sum_feed_parallel(&s, NULL, n, poisson_run, &ctx);
    nllk_sum_total(&s, NULL, total);
    nllk_reduce_store(&nllk_loss_poisson, dt, reduction, total, n, out);
    return nllk_ok();
}

static nllk_status poisson_bwd(const nllk_dtype_desc *dt, const void *input, const void *target, size_t n,
                               int log_input, int full, double eps, nllk_reduction reduction, const void *grad_output,
                               void *grad_input, void *grad_target)
{
    const nllk_status st = poisson_check_args(input, target, n, dt->size, reduction);
    if (st != NLLK_OK)
        return st;
    if (!grad_output && (reduction != NLLK_REDUCTION_NONE || n > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_output is NULL");
    if (!grad_input && n > 0)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_input is NULL");
    if (n == 0)
        return nllk_ok();
    poisson_ctx ctx = poisson_ctx_for(dt, input, target, log_input, full, eps);
    nllk_scalar g;
    ctx.g = nllk_grad_scale(dt, reduction, grad_output, (double)n, n, &g, &ctx.g_stride);
    ctx.gx = grad_input;
    ctx.gt = grad_target;
    nllk_parallel_spans(n, NLLK_GRAIN, poisson_bwd_span, &ctx);
    return nllk_ok();
}

nllk_status nllk_poisson_acc_init(nllk_acc *acc, nllk_dtype dtype, int log_input, int full, double eps, uint64_t begin)
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

static nllk_status poisson_acc_update(const nllk_dtype_desc *dt, nllk_acc *acc, const void *input, const void *target,
                                      size_t n, void *out)
{
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_get(acc, nllk_loss_poisson.acc, dt->id, &st);
    if (!a)
        return st;
    if (n > 0 && (!input || !target))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", input ? "target" : "input");
    if (n > UINT64_MAX - a->sum.end)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "the element count would pass 2^64");
    poisson_ctx ctx = poisson_ctx_for(dt, input, target, a->log_input, a->full, a->eps);
    ctx.out = out;
    nllk_acc_feed(a, n, poisson_run, &ctx);
    return nllk_ok();
}

/* ---- the public functions ------------------------------------------------------------------------------------- */

nllk_status nllk_poisson_nll_fwd_f32(const float *input, const float *target, size_t n, int log_input, int full,
                                     double eps, nllk_reduction reduction, float *out)
{
    return poisson_fwd(&nllk_dtype_f32, input, target, n, log_input, full, eps, reduction, out);
}
nllk_status nllk_poisson_nll_fwd_f64(const double *input, const double *target, size_t n, int log_input, int full,
                                     double eps, nllk_reduction reduction, double *out)
{
    return poisson_fwd(&nllk_dtype_f64, input, target, n, log_input, full, eps, reduction, out);
}

nllk_status nllk_poisson_nll_bwd_f32(const float *input, const float *target, size_t n, int log_input, int full,
                                     double eps, nllk_reduction reduction, const float *grad_output, float *grad_input,
                                     float *grad_target)
{
    return poisson_bwd(&nllk_dtype_f32, input, target, n, log_input, full, eps, reduction, grad_output, grad_input,
                       grad_target);
}
nllk_status nllk_poisson_nll_bwd_f64(const double *input, const double *target, size_t n, int log_input, int full,
                                     double eps, nllk_reduction reduction, const double *grad_output,
                                     double *grad_input, double *grad_target)
{
    return poisson_bwd(&nllk_dtype_f64, input, target, n, log_input, full, eps, reduction, grad_output, grad_input,
                       grad_target);
}

nllk_status nllk_poisson_acc_update_f32(nllk_acc *acc, const float *input, const float *target, size_t n)
{
    return poisson_acc_update(&nllk_dtype_f32, acc, input, target, n, NULL);
}
nllk_status nllk_poisson_acc_update_f64(nllk_acc *acc, const double *input, const double *target, size_t n)
{
    return poisson_acc_update(&nllk_dtype_f64, acc, input, target, n, NULL);
}

nllk_status nllk_poisson_acc_update_out_f32(nllk_acc *acc, const float *input, const float *target, size_t n,
                                            float *out)
{
    return poisson_acc_update(&nllk_dtype_f32, acc, input, target, n, out);
}
nllk_status nllk_poisson_acc_update_out_f64(nllk_acc *acc, const double *input, const double *target, size_t n,
                                            double *out)
{
    return poisson_acc_update(&nllk_dtype_f64, acc, input, target, n, out);
}

/* ---- bfloat16 and float16 storage (nllk.h): the same driver over the 16-bit descriptors ----------------------- */

nllk_status nllk_poisson_nll_fwd_bf16(const nllk_bf16 *input, const nllk_bf16 *target, size_t n, int log_input,
                                      int full, double eps, nllk_reduction reduction, nllk_bf16 *out)
{
    return poisson_fwd(&nllk_dtype_bf16, input, target, n, log_input, full, eps, reduction, out);
}

nllk_status nllk_poisson_nll_fwd_f16(const nllk_f16 *input, const nllk_f16 *target, size_t n, int log_input, int full,
                                     double eps, nllk_reduction reduction, nllk_f16 *out)
{
    return poisson_fwd(&nllk_dtype_f16, input, target, n, log_input, full, eps, reduction, out);
}

nllk_status nllk_poisson_nll_bwd_bf16(const nllk_bf16 *input, const nllk_bf16 *target, size_t n, int log_input,
                                      int full, double eps, nllk_reduction reduction, const nllk_bf16 *grad_output,
                                      nllk_bf16 *grad_input, nllk_bf16 *grad_target)
{
    return poisson_bwd(&nllk_dtype_bf16, input, target, n, log_input, full, eps, reduction, grad_output, grad_input,
                       grad_target);
}

nllk_status nllk_poisson_nll_bwd_f16(const nllk_f16 *input, const nllk_f16 *target, size_t n, int log_input, int full,
                                     double eps, nllk_reduction reduction, const nllk_f16 *grad_output,
                                     nllk_f16 *grad_input, nllk_f16 *grad_target)
{
    return poisson_bwd(&nllk_dtype_f16, input, target, n, log_input, full, eps, reduction, grad_output, grad_input,
                       grad_target);
}

nllk_status nllk_poisson_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input, const nllk_bf16 *target, size_t n)
{
    return poisson_acc_update(&nllk_dtype_bf16, acc, input, target, n, NULL);
}

nllk_status nllk_poisson_acc_update_f16(nllk_acc *acc, const nllk_f16 *input, const nllk_f16 *target, size_t n)
{
    return poisson_acc_update(&nllk_dtype_f16, acc, input, target, n, NULL);
}

nllk_status nllk_poisson_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input, const nllk_bf16 *target, size_t n,
                                             nllk_bf16 *out)
{
    return poisson_acc_update(&nllk_dtype_bf16, acc, input, target, n, out);
}

nllk_status nllk_poisson_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input, const nllk_f16 *target, size_t n,
                                            nllk_f16 *out)
{
    return poisson_acc_update(&nllk_dtype_f16, acc, input, target, n, out);
}
