/* test_nll_nd: the N-D NLL paths for coherent targets (runs of one class, as in segmentation masks) and the one-pass
 * backward, against plain C.
 *
 * Forward (reduction none): every position's loss is -x[i, t, j] * w[t] in the dtype (+0 where ignored), whether the
 * targets come in long runs (vectors of equal targets read one class plane contiguously), short runs, runs of the
 * ignore_index, or at random; ignore_index both outside [0, c) and a class inside it.
 * Backward: every element of grad_input is written (it starts as NaN garbage), w[t] * -g at each target's plane and
 * +0 elsewhere, nothing outside it (guard bytes), for grad_input small (ordinary stores) and larger than the
 * streaming threshold (32 MiB), with plane strides whose cache lines line up (d a multiple of 16) or not, and with
 * grad_input not aligned to 64 bytes; for mean and sum (a scalar grad_output) also the sign of every zero, NaN, and
 * 2 threads. Run once per ISA like every C test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

enum { KIND_LONG, KIND_SHORT, KIND_RANDOM, KIND_NUM };

/* targets of n samples x d positions: runs of one class (lengths 1..max_run), some of them ignore_index */
static void make_targets(nllk_target_type tt, void *tg, size_t nd, size_t c, int64_t ign, int kind)
{
    const size_t max_run = kind == KIND_LONG ? 300 : kind == KIND_SHORT ? 20 : 1;
    for (size_t f = 0; f < nd;) {
        const size_t len = 1 + tu_below(max_run);
        const int64_t t = tu_below(8) == 0 ? ign : (int64_t)tu_below(c);
        for (size_t k = 0; k < len && f < nd; k++, f++)
            tu_tset(tt, tg, f, t);
    }
}

/* zero_x: every input +0, so every loss is -0.0 and the sums' signs depend on how ignored positions add (+0.0) */
static void check_fwd_x(nllk_dtype dt, nllk_target_type tt, size_t n, size_t c, size_t d, int64_t ign, int kind,
                        int weighted, int zero_x)
{
    const size_t es = tu_esz(dt), nd = n * d;
    void *x = malloc(n * c * d * es), *w = malloc(c * es), *out = malloc(nd * es + 1);
    void *tg = malloc(nd * tu_tsize(tt) + 1);
    for (size_t i = 0; i < n * c * d; i++)
        tu_set(dt, x, i, zero_x ? 0.0 : tu_uniform(-8.0, 0.0));
    for (size_t k = 0; k < c; k++)
        tu_set(dt, w, k, tu_uniform(0.25, 2.0));
    make_targets(tt, tg, nd, c, ign, kind);
    double tw = 0, *lv = malloc(nd * sizeof *lv), *wv = malloc(nd * sizeof *wv);
    CHECK_OK(tu_nll_fwd(dt, x, tg, tt, n, c, d, weighted ? w : NULL, ign, NLLK_REDUCTION_NONE, out, NULL));
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const int64_t t = tu_tget(tt, tg, i * d + j);
            double want = 0.0;
            if (t != ign) {
                const double wt = weighted ? tu_get(dt, w, (size_t)t) : 1.0;
                want = tu_mul(dt, -tu_get(dt, x, (i * c + (size_t)t) * d + j), wt);
                tw += wt;
            }
            lv[i * d + j] = want;
            wv[i * d + j] = t != ign ? (weighted ? tu_get(dt, w, (size_t)t) : 1.0) : 0.0;
            wrong += !tu_same(dt, tu_get(dt, out, i * d + j), want);
        }
    CHECK(wrong == 0, "fwd %s %s (%zu, %zu, %zu) ign %lld kind %d w %d: %zu of %zu losses differ", tu_dtname(dt),
          tu_ttname(tt), n, c, d, (long long)ign, kind, weighted, wrong, nd);
    /* total_weight (the lanes' path of the same kernels): the sum of the weights, within rounding */
    double tw_buf = 0; /* room for either dtype */
    CHECK_OK(tu_nll_fwd(dt, x, tg, tt, n, c, d, weighted ? w : NULL, ign, NLLK_REDUCTION_MEAN, out, &tw_buf));
    const double got_tw = tu_get(dt, &tw_buf, 0);
    CHECK(fabs(got_tw - tw) <= 1e-6 * tw + 1e-9, "fwd %s total_weight %.17g, want %.17g", tu_dtname(dt), got_tw, tw);
    /* sum and total_weight bit for bit: the canonical tree (nllk.h section 2, tu_tree_sum) over the per-element losses
     * and weights, rounded once to the dtype -- whichever path (runs of one class, gathers) each position took */
    double sum_buf = 0, want_buf[2] = {0, 0};
    CHECK_OK(tu_nll_fwd(dt, x, tg, tt, n, c, d, weighted ? w : NULL, ign, NLLK_REDUCTION_SUM, &sum_buf, &tw_buf));
    tu_set(dt, want_buf, 0, tu_tree_sum(lv, nd));
    tu_set(dt, want_buf, 1, tu_tree_sum(wv, nd));
    CHECK(tu_same(dt, tu_get(dt, &sum_buf, 0), tu_get(dt, want_buf, 0)) &&
              !signbit(tu_get(dt, &sum_buf, 0)) == !signbit(tu_get(dt, want_buf, 0)) &&
              tu_same(dt, tu_get(dt, &tw_buf, 0), tu_get(dt, want_buf, 1)),
          "fwd %s %s (%zu, %zu, %zu) ign %lld kind %d w %d: sum %.17g total_weight %.17g, tree %.17g %.17g",
          tu_dtname(dt), tu_ttname(tt), n, c, d, (long long)ign, kind, weighted, tu_get(dt, &sum_buf, 0),
          tu_get(dt, &tw_buf, 0), tu_get(dt, want_buf, 0), tu_get(dt, want_buf, 1));
    free(x), free(w), free(out), free(tg), free(lv), free(wv);
}

static void check_fwd(nllk_dtype dt, nllk_target_type tt, size_t n, size_t c, size_t d, int64_t ign, int kind,
                      int weighted)
{
    check_fwd_x(dt, tt, n, c, d, ign, kind, weighted, 0);
}

/* misalign: grad_input starts this many elements past a 64-byte boundary */
static void check_bwd(nllk_dtype dt, nllk_target_type tt, size_t n, size_t c, size_t d, int64_t ign, int kind,
                      int weighted, nllk_reduction red, size_t misalign)
{
    const size_t es = tu_esz(dt), nd = n * d, total = n * c * d;
    void *w = malloc(c * es), *go = malloc((nd ? nd : 1) * es), *tg = malloc(nd * tu_tsize(tt) + 1);
    unsigned char *raw = tu_galloc((total + misalign) * es);
    void *gx = raw + misalign * es;
    for (size_t k = 0; k < c; k++)
        tu_set(dt, w, k, tu_uniform(0.25, 2.0));
    for (size_t f = 0; f < nd; f++)
        tu_set(dt, go, f, tu_uniform(-3.0, 3.0));
    make_targets(tt, tg, nd, c, ign, kind);
    memset(gx, 0xff, total * es); /* NaN garbage: every element must be written */
    CHECK_OK(tu_nll_bwd(dt, go, tg, tt, n, c, d, weighted ? w : NULL, ign, red, 1.0, gx));
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const int64_t t = tu_tget(tt, tg, i * d + j);
            const double g = tu_get(dt, go, red == NLLK_REDUCTION_NONE ? i * d + j : 0);
            for (size_t k = 0; k < c; k++) {
                double want = 0.0;
                if (t != ign && (size_t)t == k)
                    want = weighted ? tu_mul(dt, tu_get(dt, w, k), -g) : -g;
                wrong += !tu_same(dt, tu_get(dt, gx, (i * c + k) * d + j), want);
            }
        }
    CHECK(wrong == 0, "bwd %s %s (%zu, %zu, %zu) ign %lld kind %d w %d red %d misalign %zu: %zu of %zu differ",
          tu_dtname(dt), tu_ttname(tt), n, c, d, (long long)ign, kind, weighted, (int)red, misalign, wrong, total);
    CHECK(tu_gcheck(raw), "bwd %s (%zu, %zu, %zu): a write outside grad_input", tu_dtname(dt), n, c, d);
    tu_gfree(raw);
    free(w), free(go), free(tg);
}

/* Mean and sum (a scalar grad_output: each plane a masked broadcast of w[k] * -g), bit for bit including the sign of
 * zero: class 1's weight is +0, so its target positions hold -0.0 (+0 * -g with g > 0) and every other element +0.0;
 * mean's g is grad_output / total_weight in the dtype (ATen's order). d spans several chunks of positions with a
 * partial one at the end, grad_input is off the 64-byte grid by `misalign` elements; 1 and 2 threads; a NaN
 * grad_output puts NaN at the target positions only. */
static void check_bwd_scalar(nllk_dtype dt, nllk_target_type tt, size_t n, size_t c, size_t d, int64_t ign, int kind,
                             nllk_reduction red, size_t misalign, int threads, int nan_g)
{
    const size_t es = tu_esz(dt), nd = n * d, total = n * c * d;
    void *w = malloc(c * es), *go = malloc(es), *tg = malloc(nd * tu_tsize(tt) + 1);
    unsigned char *raw = tu_galloc((total + misalign) * es);
    void *gx = raw + misalign * es;
    for (size_t k = 0; k < c; k++)
        tu_set(dt, w, k, k == 1 ? 0.0 : tu_uniform(0.25, 2.0));
    const double tw = 3.0 + (double)tu_below(1000);
    tu_set(dt, go, 0, nan_g ? NAN : tu_uniform(0.5, 3.0));
    make_targets(tt, tg, nd, c, ign, kind);
    double g = tu_get(dt, go, 0);
    if (red == NLLK_REDUCTION_MEAN) { /* one division in the dtype */
        if (dt == NLLK_F32) {
            volatile float q = (float)g / (float)tw;
            g = q;
        } else {
            volatile double q = g / tw;
            g = q;
        }
    }
    memset(gx, 0xff, total * es); /* NaN garbage: every element must be written */
    CHECK_OK(nllk_set_num_threads(threads));
    CHECK_OK(tu_nll_bwd(dt, go, tg, tt, n, c, d, w, ign, red, tw, gx));
    CHECK_OK(nllk_set_num_threads(0));
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const int64_t t = tu_tget(tt, tg, i * d + j);
            for (size_t k = 0; k < c; k++) {
                const int hit = t != ign && (size_t)t == k;
                const double want = hit ? tu_mul(dt, tu_get(dt, w, k), -g) : 0.0;
                const double got = tu_get(dt, gx, (i * c + k) * d + j);
                wrong += !tu_same(dt, got, want) || (!isnan(want) && signbit(got) != signbit(want));
            }
        }
    CHECK(wrong == 0,
          "bwd scalar %s %s (%zu, %zu, %zu) ign %lld kind %d red %d misalign %zu thr %d nan %d: %zu of %zu differ",
          tu_dtname(dt), tu_ttname(tt), n, c, d, (long long)ign, kind, (int)red, misalign, threads, nan_g, wrong,
          total);
    CHECK(tu_gcheck(raw), "bwd scalar %s (%zu, %zu, %zu): a write outside grad_input", tu_dtname(dt), n, c, d);
    tu_gfree(raw);
    free(w), free(go), free(tg);
}

/* a run of one out-of-range class inside coherent targets: the error names its first position (forward, with the
 * contiguous path, and backward) */
static void check_bad_run(nllk_dtype dt, nllk_target_type tt, size_t first, size_t run)
{
    const size_t n = 2, c = 5, d = 1000, es = tu_esz(dt);
    void *x = calloc(n * c * d, es), *gx = calloc(n * c * d, es), *tg = calloc(n * d, tu_tsize(tt));
    double out[2] = {0, 0}, one = 1.0;
    for (size_t f = 0; f < n * d; f++)
        tu_tset(tt, tg, f, (int64_t)(f / 100 % c));
    for (size_t f = first; f < first + run && f < n * d; f++)
        tu_tset(tt, tg, f, 7);
    nllk_status st = tu_nll_fwd(dt, x, tg, tt, n, c, d, NULL, -100, NLLK_REDUCTION_SUM, out, NULL);
    CHECK(st == NLLK_ERR_TARGET_OUT_OF_RANGE && nllk_last_error_index() == first,
          "fwd %s %s bad run at %zu: status %d, index %llu", tu_dtname(dt), tu_ttname(tt), first, (int)st,
          (unsigned long long)nllk_last_error_index());
    st = tu_nll_bwd(dt, &one, tg, tt, n, c, d, NULL, -100, NLLK_REDUCTION_SUM, 1.0, gx);
    CHECK(st == NLLK_ERR_TARGET_OUT_OF_RANGE && nllk_last_error_index() == first,
          "bwd %s %s bad run at %zu: status %d, index %llu", tu_dtname(dt), tu_ttname(tt), first, (int)st,
          (unsigned long long)nllk_last_error_index());
    free(x), free(gx), free(tg);
}

int main(void)
{
    tu_require_isa();
    tu_seed(18);
    static const nllk_target_type tts[] = {NLLK_TARGET_I64, NLLK_TARGET_I32, NLLK_TARGET_U8};
    for (int dti = 0; dti < 2; dti++) {
        const nllk_dtype dt = dti ? NLLK_F64 : NLLK_F32;
        for (int ti = 0; ti < 3; ti++) {
            const nllk_target_type tt = tts[ti];
            const int64_t igns[2] = {tt == NLLK_TARGET_U8 ? 255 : -100, 2}; /* outside [0, c), and class 2 */
            for (int ii = 0; ii < 2; ii++)
                for (int kind = 0; kind < KIND_NUM; kind++)
                    for (int weighted = 0; weighted < 2; weighted++) {
                        check_fwd(dt, tt, 3, 5, 4099, igns[ii], kind, weighted);
                        check_fwd(dt, tt, 2, 21, 1024, igns[ii], kind, weighted);
                        /* the most classes whose mixed vectors are picked from every plane (nll_pick_ok), one past
                         * them (gathered), and a partial last vector */
                        check_fwd(dt, tt, 2, 32, 1000, igns[ii], kind, weighted);
                        check_fwd(dt, tt, 2, 33, 1000, igns[ii], kind, weighted);
                        check_fwd(dt, tt, 5, 3, 37, igns[ii], kind, weighted);
                        check_fwd_x(dt, tt, 2, 3, 700, igns[ii], kind, weighted, 1);
                        check_bwd(dt, tt, 3, 5, 1029, igns[ii], kind, weighted, NLLK_REDUCTION_SUM, 0);
                        check_bwd(dt, tt, 2, 7, 1024, igns[ii], kind, weighted, NLLK_REDUCTION_NONE, 1);
                        check_bwd(dt, tt, 4, 3, 37, igns[ii], kind, weighted, NLLK_REDUCTION_SUM, 0);
                    }
        }
        for (int ti = 0; ti < 3; ti++) {
            const int64_t ign = tts[ti] == NLLK_TARGET_U8 ? 255 : -100;
            for (int kind = 0; kind < KIND_NUM; kind++) {
                check_bwd_scalar(dt, tts[ti], 2, 21, 3 * 2048 + 2048 - 5, ign, kind, NLLK_REDUCTION_MEAN, 0, 1, 0);
                check_bwd_scalar(dt, tts[ti], 3, 6, 24576 + 77, 3, kind, NLLK_REDUCTION_SUM, 5, 2, 0);
                check_bwd_scalar(dt, tts[ti], 2, 4, 2048 + 16, ign, kind, NLLK_REDUCTION_MEAN, 1, 2, 1);
            }
        }
        for (int ti = 0; ti < 3; ti++)
            for (size_t first = 0; first < 70; first += 13) {
                check_bad_run(dt, tts[ti], 1003 + first, 40);
                check_bad_run(dt, tts[ti], first, 1);
            }
        /* beyond the streaming threshold: aligned planes (d a multiple of 16 positions), unaligned planes, and a
         * grad_input off the 64-byte grid */
        const size_t big_d = dt == NLLK_F64 ? ((size_t)1 << 19) : ((size_t)1 << 20);
        check_bwd(dt, NLLK_TARGET_U8, 2, 5, big_d, 255, KIND_LONG, 1, NLLK_REDUCTION_SUM, 0);
        check_bwd(dt, NLLK_TARGET_I64, 2, 5, big_d + 3, -100, KIND_SHORT, 1, NLLK_REDUCTION_NONE, 0);
        check_bwd(dt, NLLK_TARGET_I32, 2, 5, big_d, -100, KIND_RANDOM, 0, NLLK_REDUCTION_SUM, 3);
    }
    return tu_summary();
}
