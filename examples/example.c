/* Scores an embedded, seeded synthetic batch with both losses and prints the results and the active ISA. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nllk.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double uniform(void) /* xorshift64*, in [0, 1) */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int check(nllk_status st)
{
    if (st != NLLK_OK) {
        fprintf(stderr, "nllk error %s: %s\n", nllk_status_name(st), nllk_last_error());
        exit(1);
    }
    return 0;
}

int main(void)
{
    enum { N_POISSON = 1 << 20, N = 4, C = 21, H = 64, W = 64 };
    float *rate = malloc(N_POISSON * sizeof *rate), *count = malloc(N_POISSON * sizeof *count);
    float *logp = malloc((size_t)N * C * H * W * sizeof *logp), weight[C];
    uint8_t *label = malloc((size_t)N * H * W);
    if (!rate || !count || !logp || !label)
        return 1;

    /* Poisson: log-rates around log(3), counts drawn from the rates by inversion */
    for (int i = 0; i < N_POISSON; i++) {
        rate[i] = (float)(log(3.0) + 0.5 * (uniform() - 0.5));
        const double lambda = exp(rate[i]), u = uniform();
        double p = exp(-lambda), cdf = p;
        int k = 0;
        while (u > cdf && k < 100) {
            p *= lambda / ++k;
            cdf += p;
        }
        count[i] = (float)k;
    }
    /* NLL: a segmentation batch of log-softmax scores, class weights, 5% of pixels labelled 255 (ignored) */
    for (int c = 0; c < C; c++)
        weight[c] = (float)(0.5 + uniform());
    for (int n = 0; n < N; n++)
        for (int p = 0; p < H * W; p++) {
            double z[C], zmax = -1e30, s = 0;
            for (int c = 0; c < C; c++)
                z[c] = 2.0 * uniform(), zmax = z[c] > zmax ? z[c] : zmax;
            for (int c = 0; c < C; c++)
                s += exp(z[c] - zmax);
            for (int c = 0; c < C; c++)
                logp[((size_t)n * C + c) * H * W + p] = (float)(z[c] - zmax - log(s));
            label[n * H * W + p] = uniform() < 0.05 ? 255 : (uint8_t)(uniform() * C);
        }

    float mean, sum, full_mean, nll_mean, nll_sum, total_weight;
    check(nllk_poisson_nll_fwd_f32(rate, count, N_POISSON, 1, 0, 1e-8, NLLK_REDUCTION_MEAN, &mean));
    check(nllk_poisson_nll_fwd_f32(rate, count, N_POISSON, 1, 0, 1e-8, NLLK_REDUCTION_SUM, &sum));
    check(nllk_poisson_nll_fwd_f32(rate, count, N_POISSON, 1, 1, 1e-8, NLLK_REDUCTION_MEAN, &full_mean));
    check(nllk_nll_fwd_f32(logp, label, NLLK_TARGET_U8, N, C, H * W, weight, 255, NLLK_REDUCTION_MEAN, &nll_mean,
                           &total_weight));
    check(nllk_nll_fwd_f32(logp, label, NLLK_TARGET_U8, N, C, H * W, weight, 255, NLLK_REDUCTION_SUM, &nll_sum,
                           NULL));

    printf("nllk %s, active ISA: %s\n", nllk_version_string(), nllk_active_isa());
    printf("poisson_nll_loss  n=%d log_input=True             mean = %.9g  sum = %.9g\n", N_POISSON, mean, sum);
    printf("poisson_nll_loss  n=%d log_input=True full=True   mean = %.9g\n", N_POISSON, full_mean);
    printf("nll_loss          (%d, %d, %d, %d) uint8 targets, weights, ignore_index=255\n", N, C, H, W);
    printf("                  mean = %.9g  sum = %.9g  total_weight = %.9g\n", nll_mean, nll_sum, total_weight);
    free(rate);
    free(count);
    free(logp);
    free(label);
    return 0;
}
