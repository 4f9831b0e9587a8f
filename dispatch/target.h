/* Class-index targets (NLL and cross-entropy): their element sizes, the type check, reading one, and the
 * out-of-range message. */
#ifndef NLLK_DISPATCH_TARGET_H
#define NLLK_DISPATCH_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "nllk.h"

/* Bytes of one target, indexed by nllk_target_type. */
extern const size_t nllk_target_sizes[NLLK_NUM_TARGET_TYPES];

/* NLLK_OK, or NLLK_ERR_INVALID_ARGUMENT (with the message) for a value outside nllk_target_type. */
nllk_status nllk_check_target_type(nllk_target_type type);

/* target[f] of the given type, widened to int64. */
int64_t nllk_target_at(const unsigned char *target, nllk_target_type type, size_t f);

/* Records NLLK_ERR_TARGET_OUT_OF_RANGE for the call's flat element f (global index base + f) of an input with
 * c classes and d positions per sample: the message names the global index, (for d > 1) its sample and
 * position, and the value. */
nllk_status nllk_target_error(const unsigned char *target, nllk_target_type type, size_t c, size_t d, uint64_t base,
                              size_t f);

#endif
