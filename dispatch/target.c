/* Class-index targets shared by the NLL and cross-entropy drivers (target.h). */
#include "target.h"

#include "error.h"

const size_t nllk_target_sizes[NLLK_NUM_TARGET_TYPES] = {sizeof(int64_t), sizeof(int32_t), sizeof(uint8_t)};

nllk_status nllk_check_target_type(nllk_target_type type)
{
    if ((unsigned)type >= NLLK_NUM_TARGET_TYPES)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "target_type %d is not valid (i64 = 0, i32 = 1, u8 = 2)",
                         (int)type);
    return NLLK_OK;
}

int64_t nllk_target_at(const unsigned char *target, nllk_target_type type, size_t f)
{
    switch (type) {
    case NLLK_TARGET_I64: return ((const int64_t *)(const void *)target)[f];
    case NLLK_TARGET_I32: return ((const int32_t *)(const void *)target)[f];
    default: return target[f];
    }
}

nllk_status nllk_target_error(const unsigned char *target, nllk_target_type type, size_t c, size_t d, uint64_t base,
                              size_t f)
{
    const uint64_t g = base + f;
    const long long value = (long long)nllk_target_at(target, type, f);
    if (d == 1)
        return nllk_fail_at(NLLK_ERR_TARGET_OUT_OF_RANGE, g, "target[%llu] = %lld is out of range [0, %zu)",
                            (unsigned long long)g, value, c);
    return nllk_fail_at(NLLK_ERR_TARGET_OUT_OF_RANGE, g,
                        "target[%llu] (sample %llu, position %llu) = %lld is out of range [0, %zu)",
                        (unsigned long long)g, (unsigned long long)(g / d), (unsigned long long)(g % d), value, c);
}
