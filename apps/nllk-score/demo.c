/* demo.c — `nllk-score demo`: a deterministic synthetic workload scored in memory.
 *
 * Poisson: 4 Mi counts drawn from a seeded generator around log-normal rates, scored against noisy log-rate
 * predictions (log_input, and full). NLL: a segmentation-like batch (4, 21, 256, 256) of log-softmax scores over
 * a map of 32x32 cells with one class each, ignore label 255 on the cell borders, and class weights. It prints
 * the losses (the same bits on every machine, thread count and ISA), checks that chunked streaming gives the
 * one-shot bits, and times both losses. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nllk.h>

#define SEED 20241123u
#define P_N (1u << 22)
#define S_N 4
#define S_C 21
#define S_H 256
#define S_W 256
#define S_D (S_H * S_W)
#define IGNORE 255

static uint64_t rng;

static uint64_t splitmix(void)
{
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double urand(void) { return (double)(splitmix() >> 11) * 0x1.0p-53; }

/* a sum of four uniforms: a cheap bell-shaped noise with variance 1/3 */
static double noise(void) { return urand() + urand() + urand() + urand() - 2.0; }

static uint32_t poisson_sample(double lambda)
{
    if (lambda > 60) /* normal approximation for the (rare) large rates */
        return (uint32_t)fmax(0.0, floor(lambda + sqrt(lambda) * noise() * 1.7320508 + 0.5));
    const double l = exp(-lambda);
    uint32_t k = 0;
    double p = urand();
    while (p > l) {
        k++;
        p *= urand();
    }
    return k;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

static void check(nllk_status st, const char *what)
{
    if (st != NLLK_OK) {
        fprintf(stderr, "nllk-score: error: demo: %s: %s\n", what, nllk_last_error());
        exit(1);
    }
}

/* median-free quick timing: repeat for at least `budget` seconds, return seconds per call (best of runs) */
#define TIME_CALLS(budget, call, out_sec)                                                                          \
    do {                                                                                                           \
        double best_ = 1e30, start_ = now_s();                                                                     \
        int reps_ = 0;                                                                                             \
        do {                                                                                                       \
            const double t_ = now_s();                                                                             \
            call;                                                                                                  \
            const double e_ = now_s() - t_;                                                                        \
            if (e_ < best_)                                                                                        \
                best_ = e_;                                                                                        \
            reps_++;                                                                                               \
        } while (now_s() - start_ < (budget) || reps_ < 3);                                                       \
        (out_sec) = best_;                                                                                         \
    } while (0)

int nllk_score_demo(int json, int quiet)
{
    const double t_start = now_s();
    rng = SEED;
    /* ---- Poisson: counts around log-normal rates; predictions are noisy log-rates ---- */
    float *px = malloc(sizeof(float) * P_N), *pt = malloc(sizeof(float) * P_N);
    /* ---- NLL: (N, C, H, W) log-probabilities, (N, H, W) uint8 labels, ignore 255 on cell borders ---- */
    float *sx = malloc(sizeof(float) * (size_t)S_N * S_C * S_D);
    uint8_t *st = malloc((size_t)S_N * S_D);
    float sw[S_C];
    if (!px || !pt || !sx || !st) {
        fprintf(stderr, "nllk-score: error: demo: out of memory\n");
        return 3;
    }
    for (uint32_t i = 0; i < P_N; i++) {
        const double log_rate = 1.0 + 0.8 * noise() * 1.7320508;
        pt[i] = (float)poisson_sample(exp(log_rate));
        px[i] = (float)(log_rate + 0.25 * noise());
    }
    for (int k = 0; k < S_C; k++)
        sw[k] = (float)(0.5 + 0.25 * (k % 4)); /* class weights */
    uint64_t ignored = 0;
    for (int n = 0; n < S_N; n++)
        for (int y = 0; y < S_H; y++)
            for (int x = 0; x < S_W; x++) {
                const size_t j = (size_t)y * S_W + x;
                /* the cell's class: a hash of (n, cell) */
                uint64_t h = (uint64_t)n * 1000003u + (uint64_t)(y / 32) * 131u + (uint64_t)(x / 32);
                h = (h ^ (h >> 16)) * 0x45d9f3bu;
                const int label = (int)((h ^ (h >> 13)) % S_C);
                const int border = y % 32 < 2 || x % 32 < 2;
                st[(size_t)n * S_D + j] = border ? IGNORE : (uint8_t)label;
                ignored += border;
                float logit[S_C], mx = -1e30f;
                for (int k = 0; k < S_C; k++) {
                    logit[k] = (float)(noise() + (k == label ? 2.5 : 0.0));
                    mx = logit[k] > mx ? logit[k] : mx;
                }
                double se = 0;
                for (int k = 0; k < S_C; k++)
                    se += exp((double)(logit[k] - mx));
                const float lse = mx + (float)log(se);
                for (int k = 0; k < S_C; k++)
                    sx[((size_t)n * S_C + k) * S_D + j] = logit[k] - lse;
            }
    const double t_gen = now_s() - t_start;

    /* ---- score (one-shot) ---- */
    float p_mean, p_full_mean, p_sum, s_mean, s_sum, s_tw;
    check(nllk_poisson_nll_fwd_f32(px, pt, P_N, 1, 0, 1e-8, NLLK_REDUCTION_MEAN, &p_mean), "poisson mean");
    check(nllk_poisson_nll_fwd_f32(px, pt, P_N, 1, 1, 1e-8, NLLK_REDUCTION_MEAN, &p_full_mean), "poisson full");
    check(nllk_poisson_nll_fwd_f32(px, pt, P_N, 1, 0, 1e-8, NLLK_REDUCTION_SUM, &p_sum), "poisson sum");
    check(nllk_nll_fwd_f32(sx, st, NLLK_TARGET_U8, S_N, S_C, S_D, sw, IGNORE, NLLK_REDUCTION_MEAN, &s_mean, &s_tw),
          "nll mean");
    check(nllk_nll_fwd_f32(sx, st, NLLK_TARGET_U8, S_N, S_C, S_D, sw, IGNORE, NLLK_REDUCTION_SUM, &s_sum, NULL),
          "nll sum");

    /* ---- the same data streamed in uneven chunks gives the same bits ---- */
    static nllk_acc acc;
    double v;
    check(nllk_poisson_acc_init(&acc, NLLK_F32, 1, 0, 1e-8, 0), "acc init");
    for (size_t i = 0, len = 777; i < P_N; i += len, len = len * 3 % 100003 + 1)
        check(nllk_poisson_acc_update_f32(&acc, px + i, pt + i, i + len > P_N ? P_N - i : len), "acc update");
    check(nllk_acc_result(&acc, NLLK_REDUCTION_MEAN, &v, NULL, NULL), "acc result");
    const int p_stream_ok = same_bits(v, (double)p_mean);
    check(nllk_nll_acc_init(&acc, NLLK_F32, NLLK_TARGET_U8, S_C, S_D, IGNORE, 0), "acc init");
    const size_t s_total = (size_t)S_N * S_D;
    for (size_t e = 0, len = 1000; e < s_total; e += len, len = len * 7 % 50021 + 1) {
        const size_t m = e + len > s_total ? s_total - e : len;
        check(nllk_nll_acc_update_f32(&acc, sx + (e / S_D) * S_C * S_D, st + e, m, sw), "acc update");
    }
    check(nllk_acc_result(&acc, NLLK_REDUCTION_MEAN, &v, NULL, NULL), "acc result");
    const int s_stream_ok = same_bits(v, (double)s_mean);

    /* ---- throughput (best of repeated one-shot calls, ~0.25 s each) ---- */
    float sink;
    double p_sec, s_sec;
    TIME_CALLS(0.25, nllk_poisson_nll_fwd_f32(px, pt, P_N, 1, 0, 1e-8, NLLK_REDUCTION_MEAN, &sink), p_sec);
    TIME_CALLS(0.25,
               nllk_nll_fwd_f32(sx, st, NLLK_TARGET_U8, S_N, S_C, S_D, sw, IGNORE, NLLK_REDUCTION_MEAN, &sink, NULL),
               s_sec);
    const double p_eps = P_N / p_sec, s_eps = (double)s_total / s_sec;
    /* bytes a call must read: Poisson both arrays; NLL the targets and one input value per target */
    const double p_bps = p_eps * 8.0, s_bps = s_eps * (1.0 + 4.0);
    const double total = now_s() - t_start;

    if (json) {
        printf("{\"command\": \"demo\", \"seed\": %u, \"isa\": \"%s\", \"threads\": %d, "
               "\"poisson\": {\"elements\": %u, \"dtype\": \"float32\", \"log_input\": true, \"mean\": %.17g, "
               "\"sum\": %.17g, \"full_mean\": %.17g, \"streamed_bits_equal\": %s, \"elements_per_s\": %.6g}, "
               "\"nll\": {\"shape\": [%d, %d, %d, %d], \"dtype\": \"float32\", \"target\": \"uint8\", "
               "\"ignore_index\": %d, \"ignored\": %llu, \"mean\": %.17g, \"sum\": %.17g, \"total_weight\": %.17g, "
               "\"streamed_bits_equal\": %s, \"elements_per_s\": %.6g}, \"seconds\": %.3f}\n",
               SEED, nllk_active_isa(), nllk_get_num_threads(), P_N, (double)p_mean, (double)p_sum,
               (double)p_full_mean, p_stream_ok ? "true" : "false", p_eps, S_N, S_C, S_H, S_W, IGNORE,
               (unsigned long long)ignored, (double)s_mean, (double)s_sum, (double)s_tw,
               s_stream_ok ? "true" : "false", s_eps, total);
    } else if (quiet) {
        printf("%.9g %.9g\n", (double)p_mean, (double)s_mean);
    } else {
        printf("nllk-score demo: synthetic workload (seed %u), libnllk %s, isa %s, %d threads\n", SEED,
               nllk_version_string(), nllk_active_isa(), nllk_get_num_threads());
        printf("\nPoisson NLL   %u counts (float32), predictions are log-rates (log_input)\n", P_N);
        printf("  mean loss          %.9g\n", (double)p_mean);
        printf("  sum                %.9g\n", (double)p_sum);
        printf("  mean, full=True    %.9g   (with the Stirling term)\n", (double)p_full_mean);
        printf("\nNLL           segmentation batch (%d, %d, %d, %d) log-probabilities (float32), uint8 labels,\n",
               S_N, S_C, S_H, S_W);
        printf("              %d class weights, ignore_index %d (%.1f%% of pixels on cell borders)\n", S_C, IGNORE,
               100.0 * (double)ignored / (double)s_total);
        printf("  mean loss          %.9g   (weighted mean)\n", (double)s_mean);
        printf("  sum                %.9g\n", (double)s_sum);
        printf("  total_weight       %.9g\n", (double)s_tw);
        printf("\nstreaming in uneven chunks gives the one-shot bits: Poisson %s, NLL %s\n",
               p_stream_ok ? "yes" : "NO", s_stream_ok ? "yes" : "NO");
        printf("throughput (%s, %d threads): Poisson %.0f M elements/s (%.1f GB/s), NLL %.0f M elements/s "
               "(%.1f GB/s gathered)\n",
               nllk_active_isa(), nllk_get_num_threads(), p_eps * 1e-6, p_bps * 1e-9, s_eps * 1e-6, s_bps * 1e-9);
        printf("(data generated in %.2f s; demo ran in %.2f s)\n", t_gen, total);
    }
    free(px);
    free(pt);
    free(sx);
    free(st);
    return p_stream_ok && s_stream_ok ? 0 : 1;
}
