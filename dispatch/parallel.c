#include "parallel.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#  include <omp.h>
#  include <pthread.h>
#endif

#include "error.h"

/* ---- thread count --------------------------------------------------------------------------------------- */

static atomic_int forced_threads;      /* nllk_set_num_threads; 0 = default              */
static atomic_int env_threads = -1;    /* NLLK_NUM_THREADS: -1 not read yet, 0 unset     */

static int read_env_threads(void)
{
    int v = atomic_load_explicit(&env_threads, memory_order_relaxed);
    if (v < 0) {  /* racing first calls all read the same environment and store the same value */
        const char *s = getenv("NLLK_NUM_THREADS");
        char *end;
        const long k = s ? strtol(s, &end, 10) : 0;
        v = (s && *s && *end == '\0' && k > 0 && k <= 4096) ? (int)k : 0;
        atomic_store_explicit(&env_threads, v, memory_order_relaxed);
    }
    return v;
}

nllk_status nllk_set_num_threads(int k)
{
    if (k < 0)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "thread count %d is negative (0 restores the default)", k);
    atomic_store(&forced_threads, k);
    return nllk_ok();
}

/* ---- fork ------------------------------------------------------------------------------------------------ */

/* libgomp's thread pool does not survive fork(): in the child, the next parallel region of more than one thread
 * waits forever for pool threads that exist only in the parent (whether nllk's call or another library, such as
 * PyTorch, started them). So a forked child runs nllk on one thread, with the same bits (results do not depend on
 * the thread count); exec or a spawned process starts afresh. */
#ifdef _OPENMP
static atomic_int in_forked_child;

static void on_fork_child(void) { atomic_store(&in_forked_child, 1); }

__attribute__((constructor)) static void register_fork_handler(void) { pthread_atfork(NULL, NULL, on_fork_child); }
#endif

int nllk_get_num_threads(void)
{
#ifdef _OPENMP
    if (atomic_load_explicit(&in_forked_child, memory_order_relaxed))
        return 1;
#endif
    const int forced = atomic_load(&forced_threads);
    if (forced > 0)
        return forced;
    const int env = read_env_threads();
    if (env > 0)
        return env;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int nllk_threads_for(size_t n, size_t grain)
{
#ifdef _OPENMP
    const size_t by_size = grain ? n / grain : n;
    const int k = nllk_get_num_threads();
    if (by_size < 2 || k < 2)
        return 1;
    return by_size < (size_t)k ? (int)by_size : k;
#else
    (void)n;
    (void)grain;
    return 1;
#endif
}

/* The OpenMP team of a region that splits its work nt ways: never smaller than the calling thread's team setting
 * (omp_get_max_threads(): OMP_NUM_THREADS, omp_set_num_threads, PyTorch's torch.set_num_threads). libgomp keeps one
 * pool of threads per calling thread, shared with every other OpenMP user of that thread (PyTorch's ops); a region
 * with fewer threads than the previous one ends the surplus pool threads, and the caller's next, larger region
 * creates them again (issue 14: torch.add at 4 threads after an nllk call forced to 2). So a call that uses fewer
 * threads (nllk_set_num_threads, NLLK_NUM_THREADS, or a small n) runs in the caller's team and gives work to nt of
 * them: the others pass the region's barrier. The split, and so the bits, depend on nt only. */
static int team_size(int nt)
{
#ifdef _OPENMP
    const int caller = omp_get_max_threads();
    return caller > nt ? caller : nt;
#else
    return nt;
#endif
}

/* ---- sums ------------------------------------------------------------------------------------------------ */

typedef struct shifted_run {
    nllk_sum_run_fn run;
    void *ctx;
    size_t base;
} shifted_run;

static size_t run_shifted(void *vctx, size_t off, size_t n, double *lanes)
{
    const shifted_run *r = vctx;
    return r->run(r->ctx, r->base + off, n, lanes);
}

size_t nllk_sum_feed_parallel(nllk_sum *s, nllk_sum_head *head, size_t n, nllk_sum_run_fn run, void *ctx)
{
    return nllk_sum_feed_parallel_grain(s, head, n, NLLK_GRAIN, run, ctx);
}

size_t nllk_sum_feed_parallel_grain(nllk_sum *s, nllk_sum_head *head, size_t n, size_t grain, nllk_sum_run_fn run,
                                    void *ctx)
{
    /* the part up to the first block boundary goes in serially, so the threads' ranges are block-aligned */
    const size_t to_boundary = (size_t)((NLLK_BLOCK - s->end % NLLK_BLOCK) % NLLK_BLOCK);
    const size_t lead = n < to_boundary ? n : to_boundary;
    const int nt = nllk_threads_for(n - lead, grain);
    if (nt <= 1)
        return nllk_sum_feed(s, head, n, run, ctx);
    const size_t done = nllk_sum_feed(s, head, lead, run, ctx);
    if (done != lead)
        return done;

    const size_t rest = n - lead, nblocks = (rest + NLLK_BLOCK - 1) / NLLK_BLOCK;
    const uint64_t start = s->end;
    size_t failed = SIZE_MAX;
#ifdef _OPENMP
#  pragma omp parallel for ordered schedule(static, 1) num_threads(team_size(nt))
#endif
    for (int t = 0; t < nt; t++) {
        const size_t b0 = nblocks * (size_t)t / (size_t)nt, b1 = nblocks * (size_t)(t + 1) / (size_t)nt;
        const size_t e0 = b0 * NLLK_BLOCK, e1 = b1 * NLLK_BLOCK < rest ? b1 * NLLK_BLOCK : rest;
        shifted_run sr = {run, ctx, lead + e0};
        nllk_sum local;
        nllk_sum_init(&local, start + e0);
        const size_t got = nllk_sum_feed(&local, NULL, e1 - e0, run_shifted, &sr);
#ifdef _OPENMP
#  pragma omp ordered
#endif
        {   /* in thread order: the first failure seen is the lowest */
            if (failed == SIZE_MAX) {
                if (got != e1 - e0)
                    failed = lead + e0 + got;
                else
                    nllk_sum_merge(s, head, &local, NULL);
            }
        }
    }
    return failed == SIZE_MAX ? n : failed;
}

/* ---- element-wise jobs ------------------------------------------------------------------------------------ */

size_t nllk_parallel_spans(size_t n, size_t grain, nllk_span_fn span, void *ctx)
{
    const int nt = nllk_threads_for(n, grain);
    if (nt <= 1)
        return span(ctx, 0, n);
    size_t failed = SIZE_MAX;
#ifdef _OPENMP
#  pragma omp parallel for schedule(static, 1) num_threads(team_size(nt)) reduction(min : failed)
#endif
    for (int t = 0; t < nt; t++) {
        const size_t a = n * (size_t)t / (size_t)nt, b = n * (size_t)(t + 1) / (size_t)nt;
        const size_t got = span(ctx, a, b - a);
        if (got != b - a && a + got < failed)
            failed = a + got;
    }
    return failed == SIZE_MAX ? n : failed;
}
