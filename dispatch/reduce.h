/* The driver's reduction: the canonical sum of a run function over elements [0, n). */
#ifndef NLLK_DISPATCH_REDUCE_H
#define NLLK_DISPATCH_REDUCE_H

#include "sum.h"

/* Sums run(ctx, off, len, lanes) over [0, n) in the canonical tree; total receives both channels. Returns n,
 * or the lowest offset at which run failed (then total is untouched). run must only read ctx: parallel
 * workers share it. */
size_t nllk_reduce(size_t n, nllk_sum_run_fn run, void *ctx, double total[2]);

#endif
