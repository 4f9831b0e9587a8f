/* Public NLL entry points: argument checks and the driver. */
#include <string.h>

#include "error.h"
#include "kernels.h"
#include "nllk.h"
#include "reduce.h"

/* The validated geometry of one call. */
typedef struct nllk_nll_shape {
    size_t n, c, d;
    const unsigned char *target;
    size_t target_size;
    nllk_target_type target_type;
    int64_t ignore_index;
} nllk_nll_shape;

static const size_t target_sizes[NLLK_NUM_TARGET_TYPES] = {sizeof(int64_t), sizeof(int32_t), sizeof(uint8_t)};

static nllk_status nll_check_args(nllk_nll_shape *s, const void *input, const void *target,
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
        return nllk_fail(NLLK_ERR_NULL_POINTER, "input is NULL");
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

static nllk_status nll_target_error(const nllk_nll_shape *s, size_t f)
{
    if (s->d == 1)
        return nllk_fail(NLLK_ERR_TARGET_OUT_OF_RANGE, "target[%zu] = %lld is out of range [0, %zu)", f,
                         (long long)target_at(s, f), s->c);
    return nllk_fail(NLLK_ERR_TARGET_OUT_OF_RANGE,
                     "target[%zu] (sample %zu, position %zu) = %lld is out of range [0, %zu)", f, f / s->d,
                     f % s->d, (long long)target_at(s, f), s->c);
}

static void nllk_zero_fill(void *p, size_t bytes)
{
    if (bytes)
        memset(p, 0, bytes);
}

#define T float
#define DT f32
#include "nll_impl.h"
#undef T
#undef DT

#define T double
#define DT f64
#include "nll_impl.h"
#undef T
#undef DT
