/* ce_rows_ab: cross-entropy on (n, c) rows, several builds of the library side by side in one process (before/after
 * on a loaded machine; BENCHMARKS.md, "Cross-entropy rows (stop 23)"). Each round calls every library once per case
 * (interleaved); prints each library's median time and the median of the per-round ratios to the first library.
 *
 *   gcc -O2 -fopenmp -I include -o ce_rows_ab bench/ce_rows_ab.c -ldl
 *   ./ce_rows_ab N C DTYPE(f32|bf16) MODE(fwd|fb) THREADS ROUNDS LIB_A.so [LIB_B.so ..]
 *
 * "cpu": the process's CPU time per call (CLOCK_PROCESS_CPUTIME_ID; run with OMP_WAIT_POLICY=passive so idle
 * threads do not spin): on a shared machine it leaves out the time the call waits for a core.
 * Give the libraries as distinct files (copy each build's libnllk.so.0.1.0 to its own directory). Class-index
 * targets (int64, uniform), MEAN, no weight, lse written; fb = nllk_cross_entropy_fwdbwd_* with grad_output 1.
 * Logits N(0, 3^2)-like (a sum of uniforms), fixed seed. Buffers allocated and touched once. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../include/nllk.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static double cpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int cmpd(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmpd);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

typedef nllk_status (*fwd32_t)(const float *, const void *, nllk_target_type, size_t, size_t, size_t, const float *,
                               int64_t, double, nllk_reduction, float *, float *, float *);
typedef nllk_status (*fb32_t)(const float *, const void *, nllk_target_type, size_t, size_t, size_t, const float *,
                              int64_t, double, nllk_reduction, float *, float *, float *, const float *, float *);
typedef nllk_status (*fwd16_t)(const uint16_t *, const void *, nllk_target_type, size_t, size_t, size_t,
                               const uint16_t *, int64_t, double, nllk_reduction, uint16_t *, uint16_t *, uint16_t *);
typedef nllk_status (*fb16_t)(const uint16_t *, const void *, nllk_target_type, size_t, size_t, size_t,
                              const uint16_t *, int64_t, double, nllk_reduction, uint16_t *, uint16_t *, uint16_t *,
                              const uint16_t *, uint16_t *);
typedef nllk_status (*setth_t)(int);

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: %s N C f32|bf16 fwd|fb THREADS ROUNDS LIB..\n", argv[0]);
        return 2;
    }
    const size_t n = strtoull(argv[1], 0, 10), c = strtoull(argv[2], 0, 10);
    const int bf = !strcmp(argv[3], "bf16"), fb = !strcmp(argv[4], "fb");
    const int th = atoi(argv[5]), rounds = atoi(argv[6]), nl = argc - 7;
    void *fn[8];
    for (int l = 0; l < nl; l++) {
        void *h = dlopen(argv[7 + l], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        const char *name = bf ? (fb ? "nllk_cross_entropy_fwdbwd_bf16" : "nllk_cross_entropy_fwd_bf16")
                              : (fb ? "nllk_cross_entropy_fwdbwd_f32" : "nllk_cross_entropy_fwd_f32");
        fn[l] = dlsym(h, name);
        ((setth_t)dlsym(h, "nllk_set_num_threads"))(th);
    }
    const size_t es = bf ? 2 : 4, nc = n * c;
    void *x = aligned_alloc(64, (nc * es + 63) / 64 * 64), *gx = aligned_alloc(64, (nc * es + 63) / 64 * 64);
    int64_t *t = malloc(n * sizeof *t);
    float *lse = malloc(n * 4);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < nc; i++) {
        float v = 0;
        for (int j = 0; j < 4; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            v += (float)(s >> 40) / (float)(1 << 24) - 0.5f;
        }
        v *= 5.2f;
        if (bf)
            ((uint16_t *)x)[i] = f32_to_bf16(v);
        else
            ((float *)x)[i] = v;
    }
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        t[i] = (int64_t)(s % c);
    }
    memset(gx, 0, nc * es);
    float out, tw, one = 1.0f;
    uint16_t out16, tw16, one16 = 0x3f80;
    double *tm = malloc(sizeof(double) * (size_t)rounds * nl), *rt = malloc(sizeof(double) * (size_t)rounds * nl);
    double *ct = malloc(sizeof(double) * (size_t)rounds * nl), *rc = malloc(sizeof(double) * (size_t)rounds * nl);
    for (int r = -2; r < rounds; r++) {
        for (int l = 0; l < nl; l++) {
            const double t0 = now(), c0 = cpu();
            nllk_status st;
            if (!bf && !fb)
                st = ((fwd32_t)fn[l])(x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100, 0.0, NLLK_REDUCTION_MEAN, &out, &tw,
                                      lse);
            else if (!bf)
                st = ((fb32_t)fn[l])(x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100, 0.0, NLLK_REDUCTION_MEAN, &out, &tw,
                                     lse, &one, gx);
            else if (!fb)
                st = ((fwd16_t)fn[l])(x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100, 0.0, NLLK_REDUCTION_MEAN, &out16,
                                      &tw16, (uint16_t *)lse);
            else
                st = ((fb16_t)fn[l])(x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100, 0.0, NLLK_REDUCTION_MEAN, &out16,
                                     &tw16, (uint16_t *)lse, &one16, gx);
            const double dt = now() - t0, dc = cpu() - c0;
            if (st != NLLK_OK) {
                fprintf(stderr, "status %d\n", (int)st);
                return 1;
            }
            if (r >= 0) {
                tm[l * rounds + r] = dt;
                ct[l * rounds + r] = dc;
            }
        }
        if (r >= 0)
            for (int l = 0; l < nl; l++)
                rt[l * rounds + r] = tm[l * rounds + r] / tm[r], rc[l * rounds + r] = ct[l * rounds + r] / ct[r];
    }
    printf("(%zu, %zu) %s %s threads=%d rounds=%d\n", n, c, argv[3], argv[4], th, rounds);
    for (int l = 0; l < nl; l++) {
        double tmp[4096];
        memcpy(tmp, tm + l * rounds, sizeof(double) * (size_t)rounds);
        const double med = median(tmp, rounds);
        qsort(tmp, (size_t)rounds, sizeof *tmp, cmpd);
        const double mn = tmp[0];
        memcpy(tmp, ct + l * rounds, sizeof(double) * (size_t)rounds);
        printf("  %-32s wall median %8.3f min %8.3f ms, ratio %.3f | cpu median %8.3f ms, ratio %.3f\n", argv[7 + l],
               med * 1e3, mn * 1e3, median(rt + l * rounds, rounds), median(tmp, rounds) * 1e3,
               median(rc + l * rounds, rounds));
    }
    return 0;
}
