/* NLL target classification, shared by every ISA's kernels and the driver. */
#ifndef NLLK_KERNELS_COMMON_NLL_TARGET_H
#define NLLK_KERNELS_COMMON_NLL_TARGET_H

#include <stddef.h>
#include <stdint.h>

/* Target values are compared as int64 whatever their storage type, so ignore_index may be any int64:
 * an ignore_index that a uint8 or int32 target cannot hold simply never matches. */
static inline int nllk_nll_is_ignored(int64_t t, int64_t ignore_index) { return t == ignore_index; }

/* In [0, c): the only targets whose input entry may be read. */
static inline int nllk_nll_in_range(int64_t t, size_t c) { return t >= 0 && (uint64_t)t < (uint64_t)c; }

#endif
