/* ce_floor: what the cross-entropy's defined arithmetic costs per logit on this machine, next to the limit
 * (SLEEF's exp), with the kernels' own vector operations (the map's vec.h, no copies): bare loops over cached data,
 * no memory traffic, no per-row or per-group work (BENCHMARKS.md, "stop 27").
 *
 *   sleef_exp   y = SLEEF exp(x)                       the limit of issue 12 (as bench_nllk's limit/sleef_exp_f32)
 *   exp_ce      y = v_exp_ce_le0(x - m)                the cross-entropy's own exp (nllk.h, "Cross-entropy")
 *   exp_sum     v_exp_ce_le0(x - m) summed into the canonical lanes in double (v_acc_add): the forward's exp pass
 *   fwd         a max pass (v_max_num) and exp_sum: the forward's per-logit work, the floor of any kernel that keeps
 *               nllk's bits
 *   fwd_grad    fwd, the exps kept in a buffer, then the gradient pass g = -(e * fac): the fused forward+backward's
 *   fwd_bf16    fwd on bfloat16 logits: the max pass by v_h_max2 and the exp pass widening each vector (v_h_load),
 *               as the 16-bit kernels do (the same floats: the bf16 roundings of the f32 row)
 *
 *   build/bench/ce_floor [THREADS]     (built with the benchmarks: compiled as the AVX-512 bf16 kernels are; by hand
 *       gcc -O2 -ffp-contract=off -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma -fopenmp -DNLLK_DTYPE_BF16 \
 *       -I kernels/avx512 -o ce_floor bench/ce_floor.c -lsleef -lm, or -mavx2 -mfma -I kernels/avx2 for AVX2)
 *
 * Rates are logits per second over all threads (each thread its own 16 KiB row, in L1); medians of 15 runs. The
 * ratio column is the loop's rate over sleef_exp's: 1.0 = as fast as the limit. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(NLLK_DTYPE_BF16) /* as kernels/common/kernels.c: float math, 16-bit storage */
#    define NLLK_DTYPE_F32 1
#    define NLLK_STORAGE_16 1
#endif
#include "../common/half.h" /* nllk_f32_to_bf16 */
#include "vec.h"            /* the f32 map and its 16-bit storage block */

#define LEN 4096 /* one row: 16 KiB of f32 */
#define REPS 1000

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void barrier(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

enum { SLEEF_EXP, EXP_CE, EXP_SUM, FWD, FWD_GRAD, FWD_BF16, LOOPS };
static const char *const NAMES[LOOPS] = {"sleef_exp", "exp_ce", "exp_sum", "fwd", "fwd_grad", "fwd_bf16"};

/* The largest lane of v (the end of a row's max pass). */
static float lane_max(vec_t v)
{
    float b[VW], m;
    v_store(b, v);
    m = b[0];
    for (int i = 1; i < VW; i++)
        m = b[i] > m ? b[i] : m;
    return m;
}

/* The forward's arithmetic on bfloat16 logits h (len LEN); returns the row's exp-sum. */
static double fwd_bf16(const uint16_t *h)
{
    vec_t m0 = v_set1(-INFINITY), m1 = m0;
    for (size_t i = 0; i < LEN; i += 4 * VW) {
        m0 = v_h_max2(m0, h + i);
        m1 = v_h_max2(m1, h + i + 2 * VW);
    }
    const vec_t mv = v_set1(lane_max(v_max_num(m0, m1)));
    vacc_t acc = v_acc_zero();
    for (size_t i = 0; i < LEN; i += VW)
        acc = v_acc_add(acc, v_exp_ce_le0(v_sub(v_h_load(h + i), mv)));
    double lanes[VW], s = 0;
    v_acc_store(lanes, acc);
    for (int q = 0; q < VW; q++)
        s += lanes[q];
    return s;
}

/* REPS passes of one loop over x (len LEN; h: its bfloat16 roundings); e, y: buffers of LEN. Returns a checksum. */
static double run(int loop, const float *x, const uint16_t *h, float *e, float *y)
{
    double check = 0;
    for (int r = 0; r < REPS; r++, barrier(y)) {
        vec_t mv = v_set1(0.0);
        if (loop == FWD_BF16) {
            y[r % LEN] = (float)fwd_bf16(h);
            continue;
        }
        if (loop >= FWD) { /* the max pass: four chains, as the kernels' row max */
            vec_t m0 = v_set1(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
            for (size_t i = 0; i < LEN; i += 4 * VW) {
                m0 = v_max_num(m0, v_load(x + i));
                m1 = v_max_num(m1, v_load(x + i + VW));
                m2 = v_max_num(m2, v_load(x + i + 2 * VW));
                m3 = v_max_num(m3, v_load(x + i + 3 * VW));
            }
            mv = v_set1(lane_max(v_max_num(v_max_num(m0, m1), v_max_num(m2, m3))));
        }
        if (loop == SLEEF_EXP || loop == EXP_CE) {
            for (size_t i = 0; i < LEN; i += VW)
                v_store(y + i, loop == SLEEF_EXP ? v_exp(v_load(x + i)) : v_exp_ce_le0(v_sub(v_load(x + i), mv)));
            continue;
        }
        vacc_t acc[16 / VW];
        for (int j = 0; j < 16 / VW; j++)
            acc[j] = v_acc_zero();
        for (size_t i = 0; i < LEN; i += 16)
            for (int j = 0; j < 16 / VW; j++) {
                const vec_t v = v_exp_ce_le0(v_sub(v_load(x + i + j * VW), mv));
                if (loop == FWD_GRAD)
                    v_store(e + i + j * VW, v);
                acc[j] = v_acc_add(acc[j], v);
            }
        double lanes[16];
        for (int j = 0; j < 16 / VW; j++)
            v_acc_store(lanes + j * VW, acc[j]);
        double s = 0;
        for (int q = 0; q < 16; q++)
            s += lanes[q];
        check += s;
        if (loop == FWD_GRAD) {
            const vec_t fac = v_set1(-1.0 / s);
            for (size_t i = 0; i < LEN; i += VW)
                v_store(y + i, v_mul(v_load(e + i), fac));
        }
    }
    return check + y[0];
}

static int cmpd(const void *a, const void *b)
{
    const double u = *(const double *)a, v = *(const double *)b;
    return u < v ? -1 : u > v;
}

int main(int argc, char **argv)
{
    const int th = argc > 1 ? atoi(argv[1]) : 1;
    double rate[LOOPS];
    printf("ce_floor: VW=%d, %d thread(s), logits/s (median of 15), ratio to sleef_exp\n", VW, th);
    for (int loop = 0; loop < LOOPS; loop++) {
        double ts[15], sink = 0;
        for (int k = 0; k < 15; k++) {
            const double t0 = now();
#pragma omp parallel num_threads(th) reduction(+ : sink)
            {
                static _Thread_local float x[LEN] __attribute__((aligned(64))), e[LEN] __attribute__((aligned(64))),
                    y[LEN] __attribute__((aligned(64)));
                static _Thread_local uint16_t h[LEN] __attribute__((aligned(64)));
                for (int i = 0; i < LEN; i++) { /* logits in [-10, 10] */
                    x[i] = -10.0f + 20.0f * (float)((i * 37) % LEN) / LEN;
                    h[i] = nllk_f32_to_bf16(x[i]);
                }
                sink += run(loop, x, h, e, y);
            }
            ts[k] = now() - t0;
        }
        qsort(ts, 15, sizeof *ts, cmpd);
        rate[loop] = (double)LEN * REPS * th / ts[7];
        printf("  %-10s %8.3g /s   %.2f   (checksum %g)\n", NAMES[loop], rate[loop], rate[loop] / rate[0], sink);
    }
    return 0;
}
