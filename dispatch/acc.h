/* The layout behind the public nllk_acc (a fixed-size byte block in nllk.h). */
#ifndef NLLK_DISPATCH_ACC_H
#define NLLK_DISPATCH_ACC_H

#include "nllk.h"
#include "sum.h"

#define NLLK_ACC_MAGIC 0x6e6c6c6bu /* "nllk": set by init, so that an uninitialized block is refused */

typedef enum { NLLK_ACC_POISSON = 1, NLLK_ACC_NLL = 2, NLLK_ACC_CE = 3, NLLK_ACC_CE_PROB = 4 } nllk_acc_kind;

/* Fletcher's checksum of words taken a pair at a time (acc.c). */
typedef struct nllk_fletcher {
    uint64_t a[2], b[2];
} nllk_fletcher;

typedef struct nllk_acc_impl {
    uint32_t magic;
    uint32_t kind;
    uint32_t dtype;
    uint32_t target_type;     /* NLL   */
    int32_t log_input, full;  /* Poisson */
    double eps;               /* Poisson */
    uint64_t c, d;            /* NLL   */
    int64_t ignore_index;     /* NLL   */
    double label_smoothing;   /* cross-entropy (NLL's fields c, d, and for class indices target_type, ignore_index) */
    nllk_fletcher head_check; /* of the raw head's values, in order (appending continues it) */
    uint64_t checksum;        /* of every field above and of the sum's range, lanes and node values */
    nllk_sum sum;
    nllk_sum_head head;
} nllk_acc_impl;

_Static_assert(sizeof(nllk_acc_impl) <= sizeof(nllk_acc), "NLLK_ACC_SIZE too small for nllk_acc_impl");

/* Starts acc as an empty `kind` accumulator of `dtype` at global element `begin` (options zeroed, for the
 * caller to fill in); NULL with the error set for a NULL acc or an invalid dtype. */
nllk_acc_impl *nllk_acc_start(nllk_acc *acc, nllk_acc_kind kind, nllk_dtype dtype, uint64_t begin, nllk_status *st);

/* Ends init once the options are filled in: checks them (NLLK_ERR_INVALID_ARGUMENT, and the block is left
 * uninitialized) and computes the checksum. */
nllk_status nllk_acc_seal(nllk_acc_impl *a);

/* The accumulator behind acc if it is a valid one (every field checked, nllk.h "Streaming") initialized as
 * `kind` with `dtype`, else NULL with the error set. The raw head's values are not checked here (an update
 * never reads them; a corruption there is reported by the next merge, range or result). */
nllk_acc_impl *nllk_acc_get(nllk_acc *acc, nllk_acc_kind kind, nllk_dtype dtype, nllk_status *st);

/* Folds the next n elements into a (nllk_sum_feed_parallel; run must not fail) and updates its checksum. */
void nllk_acc_feed(nllk_acc_impl *a, size_t n, nllk_sum_run_fn run, void *ctx);
/* The same with `grain` elements worth a thread (nllk_sum_feed_parallel_grain). */
void nllk_acc_feed_grain(nllk_acc_impl *a, size_t n, size_t grain, nllk_sum_run_fn run, void *ctx);

#endif
