#include "reduce.h"

size_t nllk_reduce(size_t n, nllk_sum_run_fn run, void *ctx, double total[2])
{
    nllk_sum s;
    nllk_sum_init(&s, 0);
    const size_t done = nllk_sum_feed(&s, NULL, n, run, ctx);
    if (done != n)
        return done;
    nllk_sum_total(&s, NULL, total);
    return n;
}
