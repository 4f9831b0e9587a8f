/* The loss-independent part of the streaming accumulators: validation, checksum, merge, result. */
#include "acc.h"

#include <stddef.h>
#include <string.h>

#include "dtype.h"
#include "error.h"
#include "kernels.h"
#include "parallel.h"

static const char *kind_name(uint32_t kind)
{
    return kind == NLLK_ACC_POISSON ? "Poisson" : kind == NLLK_ACC_NLL ? "NLL" : kind == NLLK_ACC_CE ? "cross-entropy"
                                                                                                 : "cross-entropy (probabilities)";
}
static const char *dtype_name(uint32_t dtype)
{
    const nllk_dtype_desc *dt = nllk_dtype_of((nllk_dtype)dtype);
    return dt ? dt->name : "?";
}

/* ---- checksum ------------------------------------------------------------------------------------------------
 * Fletcher's checksum over 64-bit words, taken a pair at a time into two streams (the two channels of the sums,
 * or two fields): per stream a = the sum of its words, b = the sum of the running a's (mod 2^64). A change of any
 * one word changes its stream's a, the words' order enters b, and a stream continues from a saved state, so the
 * raw head's checksum grows with the head. Cheap (adds only) as it runs twice per update. A guard against
 * corruption, not against forgery: validation of every field, not the checksum, is what keeps any bytes from
 * reading or writing out of bounds. */

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* Both streams at once (a pair of 64-bit lanes: one vector add on x86-64 and AArch64). */
typedef uint64_t u64x2 __attribute__((vector_size(16)));

static void add_pair(nllk_fletcher *f, uint64_t x, uint64_t y)
{
    u64x2 a = {f->a[0], f->a[1]}, b = {f->b[0], f->b[1]};
    a += (u64x2){x, y};
    b += a;
    f->a[0] = a[0], f->a[1] = a[1], f->b[0] = b[0], f->b[1] = b[1];
}

/* The four sums in one word that still changes with any one input word: a's factors are odd, b's even. */
static uint64_t fold(const nllk_fletcher *f)
{
    return f->a[0] + 0x9e3779b97f4a7c15u * f->a[1] + 0xc2b2ae3d27d4eb4eu * f->b[0] + 0x165667b19e3779f8u * f->b[1];
}

/* Continues f over the raw head's values [from, to) (the head holds at most one block). */
static void add_head(nllk_fletcher *f, const nllk_acc_impl *a, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++)
        add_pair(f, bits_of(a->head.v[0][i]), bits_of(a->head.v[1][i]));
}

/* Over every header field, the head's checksum, the range and the values of the lanes and open nodes (the node
 * count and the nodes' places follow from the range, which validation checks first). */
static uint64_t state_checksum(const nllk_acc_impl *a)
{
    nllk_fletcher f = {{0, 0}, {0, 0}};
    add_pair(&f, a->magic | (uint64_t)a->kind << 32, a->dtype | (uint64_t)a->target_type << 32);
    add_pair(&f, (uint32_t)a->log_input | (uint64_t)(uint32_t)a->full << 32, bits_of(a->eps));
    add_pair(&f, a->c, a->d);
    add_pair(&f, (uint64_t)a->ignore_index, a->sum.begin);
    add_pair(&f, a->sum.end, bits_of(a->label_smoothing));
    add_pair(&f, a->head_check.a[0], a->head_check.a[1]);
    add_pair(&f, a->head_check.b[0], a->head_check.b[1]);
    for (size_t i = 0; i < 2 * NLLK_LANES; i += 2) /* neighbours: a vector load on some targets */
        add_pair(&f, bits_of(a->sum.lanes[i]), bits_of(a->sum.lanes[i + 1]));
    for (uint32_t k = 0; k < a->sum.nnodes; k++)
        add_pair(&f, bits_of(a->sum.node[k].v[0]), bits_of(a->sum.node[k].v[1]));
    return fold(&f);
}

/* ---- validation ---------------------------------------------------------------------------------------------- */

/* Every field but the checksum and the raw head's values: kind, dtype, the options of its loss (the other loss's
 * zero), the sum's structure. `name` is the argument's name for the message. */
static nllk_status check_fields(const nllk_acc_impl *a, const char *name)
{
    if (a->kind < NLLK_ACC_POISSON || a->kind > NLLK_ACC_CE_PROB)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT,
                         "%s: kind %u is not an accumulator's (Poisson = 1, NLL = 2, cross-entropy = 3, 4)", name,
                         a->kind);
    const double ls = a->label_smoothing;
    if (a->kind < NLLK_ACC_CE ? bits_of(ls) != 0 : !(ls >= 0.0 && ls <= 1.0))
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: label_smoothing %g is not valid for its kind", name, ls);
    if (a->kind == NLLK_ACC_CE_PROB && (a->target_type != 0 || a->ignore_index != 0))
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: a probability-target accumulator with class-index options",
                         name);
    if (a->dtype > NLLK_F16 || !nllk_dtype_of((nllk_dtype)a->dtype))
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: dtype %u is not valid (f32 = 0, f64 = 1, bf16 = 2, f16 = 3)",
                         name, a->dtype);
    if (a->kind == NLLK_ACC_POISSON) {
        if ((a->log_input != 0 && a->log_input != 1) || (a->full != 0 && a->full != 1))
            return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: Poisson options log_input = %d, full = %d are not 0 or 1",
                             name, (int)a->log_input, (int)a->full);
        if (a->target_type != 0 || a->c != 0 || a->d != 0 || a->ignore_index != 0)
            return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: a Poisson accumulator with NLL options set", name);
    } else {
        const size_t elem = nllk_dtype_of((nllk_dtype)a->dtype)->size;
        size_t bytes;
        if (a->log_input != 0 || a->full != 0 || bits_of(a->eps) != 0)
            return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: an %s accumulator with Poisson options set", name,
                             kind_name(a->kind));
        if (a->target_type >= NLLK_NUM_TARGET_TYPES)
            return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: target_type %u is not valid (i64 = 0, i32 = 1, u8 = 2)",
                             name, a->target_type);
        if (a->d == 0)
            return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s: d = 0 positions per sample", name);
        if (a->c > SIZE_MAX || a->d > SIZE_MAX || !nllk_mul_size((size_t)a->c, (size_t)a->d, &bytes) ||
            !nllk_mul_size(bytes, elem, &bytes))
            return nllk_fail(NLLK_ERR_INVALID_ARGUMENT,
                             "%s: a sample of c = %llu classes by d = %llu positions overflows size_t bytes", name,
                             (unsigned long long)a->c, (unsigned long long)a->d);
    }
    const char *why = nllk_sum_check(&a->sum);
    if (why)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT,
                         "%s: inconsistent sum state: %s (range [%llu, %llu), %u open nodes)", name, why,
                         (unsigned long long)a->sum.begin, (unsigned long long)a->sum.end, a->sum.nnodes);
    return NLLK_OK;
}

/* The accumulator behind acc if every field is valid and the checksum matches, else NULL with the error set.
 * with_head: also the raw head's values (merge, range and result; an update never reads them). */
static nllk_acc_impl *valid_acc(const nllk_acc *acc, const char *name, int with_head, nllk_status *st)
{
    nllk_acc_impl *a = (nllk_acc_impl *)(void *)acc;
    if (!acc) {
        *st = nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", name);
        return NULL;
    }
    if (a->magic != NLLK_ACC_MAGIC) {
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "%s was not initialized by nllk_*_acc_init", name);
        return NULL;
    }
    if ((*st = check_fields(a, name)) != NLLK_OK)
        return NULL;
    nllk_fletcher head = {{0, 0}, {0, 0}};
    if (with_head)
        add_head(&head, a, 0, nllk_sum_head_len(&a->sum));
    if (a->checksum != state_checksum(a) || (with_head && memcmp(&head, &a->head_check, sizeof head) != 0)) {
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT,
                        "%s: checksum mismatch: its bytes were changed outside nllk (corrupted in transit or storage?)",
                        name);
        return NULL;
    }
    *st = NLLK_OK;
    return a;
}

/* ---- init, update ---------------------------------------------------------------------------------------------- */

nllk_acc_impl *nllk_acc_start(nllk_acc *acc, nllk_acc_kind kind, nllk_dtype dtype, uint64_t begin, nllk_status *st)
{
    if (!acc) {
        *st = nllk_fail(NLLK_ERR_NULL_POINTER, "acc is NULL");
        return NULL;
    }
    if (!nllk_dtype_of(dtype)) {
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "dtype %d is not valid (f32 = 0, f64 = 1, bf16 = 2, f16 = 3)",
                        (int)dtype);
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

nllk_status nllk_acc_seal(nllk_acc_impl *a)
{
    const nllk_status st = check_fields(a, "acc");
    if (st != NLLK_OK) {
        a->magic = 0;
        return st;
    }
    a->head_check = (nllk_fletcher){{0, 0}, {0, 0}}; /* an empty head */
    a->checksum = state_checksum(a);
    return nllk_ok();
}

nllk_acc_impl *nllk_acc_get(nllk_acc *acc, nllk_acc_kind kind, nllk_dtype dtype, nllk_status *st)
{
    nllk_acc_impl *a = valid_acc(acc, "acc", 0, st);
    if (a && (a->kind != (uint32_t)kind || a->dtype != (uint32_t)dtype)) {
        *st = nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "acc is a %s %s accumulator, not %s %s", kind_name(a->kind),
                        dtype_name(a->dtype), kind_name(kind), dtype_name(dtype));
        return NULL;
    }
    return a;
}

/* After a's sum grew: the head values it gained (those past `had`) into the head's checksum, then the checksum. */
static void reseal(nllk_acc_impl *a, uint64_t had)
{
    add_head(&a->head_check, a, had, nllk_sum_head_len(&a->sum));
    a->checksum = state_checksum(a);
}

void nllk_acc_feed(nllk_acc_impl *a, size_t n, nllk_sum_run_fn run, void *ctx)
{
    nllk_acc_feed_grain(a, n, NLLK_GRAIN, run, ctx);
}

void nllk_acc_feed_grain(nllk_acc_impl *a, size_t n, size_t grain, nllk_sum_run_fn run, void *ctx)
{
    const uint64_t had = nllk_sum_head_len(&a->sum);
    nllk_sum_feed_parallel_grain(&a->sum, &a->head, n, grain, run, ctx);
    reseal(a, had);
}

/* ---- merge, range, result ------------------------------------------------------------------------------------ */

nllk_status nllk_acc_merge(nllk_acc *left, const nllk_acc *right)
{
    nllk_status st;
    nllk_acc_impl *l = valid_acc(left, "left", 1, &st);
    if (!l)
        return st;
    const nllk_acc_impl *r = valid_acc(right, "right", 1, &st);
    if (!r)
        return st;
    if (l->kind != r->kind || l->dtype != r->dtype || l->target_type != r->target_type ||
        l->log_input != r->log_input || l->full != r->full || memcmp(&l->eps, &r->eps, sizeof l->eps) != 0 ||
        l->c != r->c || l->d != r->d || l->ignore_index != r->ignore_index ||
        memcmp(&l->label_smoothing, &r->label_smoothing, sizeof l->label_smoothing) != 0)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "cannot merge accumulators of different losses or options");
    if (r->sum.begin != l->sum.end)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT,
                         "right begins at element %llu but left ends at %llu: only adjacent ranges merge",
                         (unsigned long long)r->sum.begin, (unsigned long long)l->sum.end);
    const uint64_t had = nllk_sum_head_len(&l->sum);
    nllk_sum_merge(&l->sum, &l->head, &r->sum, &r->head);
    reseal(l, had);
    return nllk_ok();
}

nllk_status nllk_acc_range(const nllk_acc *acc, uint64_t *begin, uint64_t *end)
{
    nllk_status st;
    const nllk_acc_impl *a = valid_acc(acc, "acc", 1, &st);
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
    nllk_status st;
    const nllk_acc_impl *a = valid_acc(acc, "acc", 1, &st);
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
    const int by_count = a->kind == NLLK_ACC_POISSON || a->kind == NLLK_ACC_CE_PROB;
    const double denom = by_count ? (double)n : total[1];
    const double v = reduction == NLLK_REDUCTION_MEAN ? total[0] / denom : total[0];
    /* f32, f64: the one-shot call's rounding; bf16, f16: the double value itself (nllk.h) */
    *value = a->dtype == NLLK_F32 ? (double)(float)v : v;
    if (total_weight) /* Poisson's is the exact count; NLL's is rounded like the one-shot total_weight (f32) */
        *total_weight = by_count                    ? (double)n
                        : a->dtype == NLLK_F32      ? (double)(float)total[1]
                                                    : total[1];
    if (count)
        *count = n;
    return nllk_ok();
}
