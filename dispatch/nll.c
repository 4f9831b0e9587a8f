/* Public NLL entry points: argument checks and the driver. */
#include <stddef.h>
#include <string.h>

#include "acc.h"
#include "error.h"
#include "kernels.h"
#include "nllk.h"
#include "parallel.h"

/* The validated geometry of one call. */
typedef struct nllk_nll_shape {
    size_t n, c, d;
    const unsigned char *target;
    size_t target_size;
    nllk_target_type target_type;
    int64_t ignore_index;
} nllk_nll_shape;

static const size_t target_sizes[NLLK_NUM_TARGET_TYPES] = {sizeof(int64_t), sizeof(int32_t), sizeof(uint8_t)};

/* input_name: what the (n, c, d) array is called in the caller ("input", or "grad_input" for the backward) */
static nllk_status nll_check_args(nllk_nll_shape *s, const void *input, const char *input_name, const void *target,
                                  nllk_target_type target_type, size_t n, size_t c, size_t d, size_t elem_size,
                                  int64_t ignore_index, nllk_reduction reduction)
{
    size_t nd, ncd, bytes;
    if (reduction != NLLK_REDUCTION_NONE && reduction != NLLK_REDUCTION_MEAN && reduction != NLLK_REDUCTION_SUM)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "reduction %d is not valid (none = 0, mean = 1, sum = 2)",
                         (int)reduction);
    if ((unsigned)target_type >= NLLK_NUM_TARGET_TYPES)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "target_type %d is not valid (i64 = 0, i32 = 1, u8 = 2)",
                         (int)target_type);
    if (!nllk_mul_size(n, d, &nd) || !nllk_mul_size(nd, c, &ncd) || !nllk_mul_size(ncd, elem_size, &bytes) ||
        !nllk_mul_size(nd, target_sizes[target_type], &bytes) || !nllk_mul_size(nd, elem_size, &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "shape (n=%zu, c=%zu, d=%zu) overflows size_t", n, c, d);
    if (ncd > 0 && !input)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", input_name);
    if (nd > 0 && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    *s = (nllk_nll_shape){n, c, d, target, target_sizes[target_type], target_type, ignore_index};
    return NLLK_OK;
}

static int64_t target_at(const nllk_nll_shape *s, size_t f)
{
    switch (s->target_type) {
    case NLLK_TARGET_I64: return ((const int64_t *)(const void *)s->target)[f];
    case NLLK_TARGET_I32: return ((const int32_t *)(const void *)s->target)[f];
    default: return s->target[f];
    }
}

/* The message names the global flat index: `base` is the flat index of the call's element 0. */
static nllk_status nll_target_error(const nllk_nll_shape *s, uint64_t base, size_t f)
{
    const uint64_t g = base + f;
    if (s->d == 1)
        return nllk_fail_at(NLLK_ERR_TARGET_OUT_OF_RANGE, g, "target[%llu] = %lld is out of range [0, %zu)",
                         (unsigned long long)g, (long long)target_at(s, f), s->c);
    return nllk_fail_at(NLLK_ERR_TARGET_OUT_OF_RANGE, g,
                        "target[%llu] (sample %llu, position %llu) = %lld is out of range [0, %zu)",
                     (unsigned long long)g, (unsigned long long)(g / s->d), (unsigned long long)(g % s->d),
                     (long long)target_at(s, f), s->c);
}

/* The active ISA's zero fill: wide stores, streaming stores for spans much larger than the caches. */
static void nllk_zero_fill(void *p, size_t bytes)
{
    if (bytes)
        nllk_active_kernels()->zero_fill(p, bytes);
}

typedef struct check_ctx {
    const nllk_nll_shape *s;
    nllk_nll_check_fn check;
} check_ctx;

static size_t check_span(void *vctx, size_t off, size_t len)
{
    const check_ctx *c = vctx;
    return c->check(len, c->s->target + off * c->s->target_size, c->s->c, c->s->ignore_index);
}

/* The lowest f in [0, nd) whose target is neither in [0, c) nor ignore_index, or nd. */
static size_t nll_check_targets(const nllk_nll_shape *s, size_t nd)
{
    check_ctx ctx = {s, nllk_active_kernels()->nll_check[s->target_type]};
    return nllk_parallel_spans(nd, 4 * NLLK_GRAIN, check_span, &ctx);
}

nllk_status nllk_nll_acc_init(nllk_acc *acc, nllk_dtype dtype, nllk_target_type target_type, size_t c, size_t d,
                              int64_t ignore_index, uint64_t begin)
{
    if ((unsigned)target_type >= NLLK_NUM_TARGET_TYPES)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "target_type %d is not valid (i64 = 0, i32 = 1, u8 = 2)",
                         (int)target_type);
    if (d == 0)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "d = 0: an accumulator needs at least one position per sample");
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_start(acc, NLLK_ACC_NLL, dtype, begin, &st);
    if (!a)
        return st;
    a->target_type = (uint32_t)target_type;
    a->c = c;
    a->d = d;
    a->ignore_index = ignore_index;
    return nllk_acc_seal(a);
}

#define T float
#define DT f32
#define DTYPE NLLK_F32
#include "nll_impl.h"
#undef T
#undef DT
#undef DTYPE

#define T double
#define DT f64
#define DTYPE NLLK_F64
#include "nll_impl.h"
#undef T
#undef DT
#undef DTYPE
