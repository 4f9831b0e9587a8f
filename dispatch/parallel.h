/* The OpenMP driver: the only place threads exist. Work is split into contiguous ranges of elements (of
 * whole 4096-element blocks for sums), so results never depend on the thread count. */
#ifndef NLLK_DISPATCH_PARALLEL_H
#define NLLK_DISPATCH_PARALLEL_H

#include <stddef.h>

#include "sum.h"

/* Fewest elements worth a thread of their own: below this an OpenMP fork costs more than it saves. */
#define NLLK_GRAIN ((size_t)8 * NLLK_BLOCK)

/* Threads to use for n units of work of which `grain` are worth one thread (>= 1). */
int nllk_threads_for(size_t n, size_t grain);

/* Feeds n elements into s exactly as nllk_sum_feed does (same bits), with the block-aligned part split
 * across threads: each folds its own range of blocks, and the partial sums merge into s in order.
 * Returns n or the lowest offset at which run failed. run must only read ctx. */
size_t nllk_sum_feed_parallel(nllk_sum *s, nllk_sum_head *head, size_t n, nllk_sum_run_fn run, void *ctx);
/* The same with `grain` elements worth a thread (costly elements, e.g. cross-entropy's positions of c classes). */
size_t nllk_sum_feed_parallel_grain(nllk_sum *s, nllk_sum_head *head, size_t n, size_t grain, nllk_sum_run_fn run,
                                    void *ctx);

/* An element-wise job over [off, off + len): returns len, or the k of its first failing element. */
typedef size_t (*nllk_span_fn)(void *ctx, size_t off, size_t len);

/* Runs span over [0, n) in contiguous ranges, one per thread (one range when n < 2 * grain); returns n or the
 * lowest failing offset. span must only read ctx (and write disjoint outputs). */
size_t nllk_parallel_spans(size_t n, size_t grain, nllk_span_fn span, void *ctx);

#endif
