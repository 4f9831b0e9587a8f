/* The loss-independent part of the streaming accumulators: checks, merge, result. */
#include "acc.h"

#include <stddef.h>
#include <string.h>

#include "error.h"

static const char *kind_name(uint32_t kind) { return kind == NLLK_ACC_POISSON ? "Poisson" : "NLL"; }
static const char *dtype_name(uint32_t dtype) { return dtype == NLLK_F32 ? "f32" : "f64"; }

nllk_acc_impl *nllk_acc_start(nllk_acc *acc, nllk_acc_kind kind, nllk_dtype dtype, uint64_t begin, nllk_status *st)
{
    if (!acc) {
        *st = nllk_fail(NLLK_ERR_NULL_POINTER, "acc is NULL");
        return NULL;
    }
    if (dtype != NLLK_F32 && dtype != NLLK_F64) {
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "dtype %d is not valid (f32 = 0, f64 = 1)", (int)dtype);
        return NULL;
    }
    nllk_acc_impl *a = (nllk_acc_impl *)(void *)acc;
    memset(a, 0, offsetof(nllk_acc_impl, sum));
    a->magic = NLLK_ACC_MAGIC;
    a->kind = (uint32_t)kind;
    a->dtype = (uint32_t)dtype;
    nllk_sum_init(&a->sum, begin);
    *st = NLLK_OK;
    return a;
}

nllk_acc_impl *nllk_acc_get(nllk_acc *acc, nllk_acc_kind kind, nllk_dtype dtype, nllk_status *st)
{
    if (!acc) {
        *st = nllk_fail(NLLK_ERR_NULL_POINTER, "acc is NULL");
        return NULL;
    }
    nllk_acc_impl *a = (nllk_acc_impl *)(void *)acc;
    if (a->magic != NLLK_ACC_MAGIC) {
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "acc was not initialized by nllk_*_acc_init");
        return NULL;
    }
    if (a->kind != (uint32_t)kind || a->dtype != (uint32_t)dtype) {
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "acc is a %s %s accumulator, not %s %s", kind_name(a->kind),
                        dtype_name(a->dtype), kind_name(kind), dtype_name(dtype));
        return NULL;
    }
    *st = NLLK_OK;
    return a;
}

static const nllk_acc_impl *any_acc(const nllk_acc *acc, const char *name, nllk_status *st)
{
    const nllk_acc_impl *a = (const nllk_acc_impl *)(const void *)acc;
    if (!acc)
        *st = nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", name);
    else if (a->magic != NLLK_ACC_MAGIC)
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s was not initialized by nllk_*_acc_init", name);
    else
        return a;
    return NULL;
}

nllk_status nllk_acc_merge(nllk_acc *left, const nllk_acc *right)
{
    nllk_status st = NLLK_OK;
    const nllk_acc_impl *l = any_acc(left, "left", &st), *r = any_acc(right, "right", &st);
    if (!l || !r)
        return st;
    if (l->kind != r->kind || l->dtype != r->dtype || l->target_type != r->target_type ||
        l->log_input != r->log_input || l->full != r->full || memcmp(&l->eps, &r->eps, sizeof l->eps) != 0 ||
        l->c != r->c || l->d != r->d || l->ignore_index != r->ignore_index)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "cannot merge accumulators of different losses or options");
    if (r->sum.begin != l->sum.end)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT,
                         "right begins at element %llu but left ends at %llu: only adjacent ranges merge",
                         (unsigned long long)r->sum.begin, (unsigned long long)l->sum.end);
    nllk_acc_impl *lw = (nllk_acc_impl *)(void *)left;
    nllk_sum_merge(&lw->sum, &lw->head, &r->sum, &r->head);
    return nllk_ok();
}

nllk_status nllk_acc_range(const nllk_acc *acc, uint64_t *begin, uint64_t *end)
{
    nllk_status st = NLLK_OK;
    const nllk_acc_impl *a = any_acc(acc, "acc", &st);
    if (!a)
        return st;
    if (begin)
        *begin = a->sum.begin;
    if (end)
        *end = a->sum.end;
    return nllk_ok();
}

nllk_status nllk_acc_result(const nllk_acc *acc, nllk_reduction reduction, double *value, double *total_weight,
                            uint64_t *count)
{
    nllk_status st = NLLK_OK;
    const nllk_acc_impl *a = any_acc(acc, "acc", &st);
    if (!a)
        return st;
    if (reduction != NLLK_REDUCTION_MEAN && reduction != NLLK_REDUCTION_SUM)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "reduction %d: an accumulator gives mean (1) or sum (2)",
                         (int)reduction);
    if (!value)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "value is NULL");
    double total[2];
    nllk_sum_total(&a->sum, &a->head, total);
    const uint64_t n = a->sum.end - a->sum.begin;
    /* exactly the one-shot calls' arithmetic: Poisson divides by the count, NLL by the total weight */
    const double denom = a->kind == NLLK_ACC_POISSON ? (double)n : total[1];
    const double v = reduction == NLLK_REDUCTION_MEAN ? total[0] / denom : total[0];
    *value = a->dtype == NLLK_F32 ? (double)(float)v : v;
    if (total_weight) /* Poisson's is the exact count; NLL's is rounded like the one-shot total_weight */
        *total_weight = a->kind == NLLK_ACC_POISSON ? (double)n
                        : a->dtype == NLLK_F32      ? (double)(float)total[1]
                                                    : total[1];
    if (count)
        *count = n;
    return nllk_ok();
}
