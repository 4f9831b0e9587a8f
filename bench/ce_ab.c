/* ce_ab: cross-entropy, several builds of the library side by side in one process (before/after on a loaded
 * machine; BENCHMARKS.md, "Cross-entropy rows (stop 23)", "stop 27"). Each round calls every library once per case
 * (interleaved); prints each library's median time, the median of the per-round ratios to the first library, and
 * whether its outputs (loss, and the gradient for fb/bwd) have the first library's bits.
 *
 *   gcc -O2 -fopenmp -I include -I build/include -o ce_ab bench/ce_ab.c -ldl
 *   ./ce_ab N C|CxD f32|bf16 fwd|fb|bwd THREADS ROUNDS LIB_A.so [LIB_B.so ..]
 *
 * C: (n, c) rows; CxD: (n, c, d) planes. fwd = nllk_cross_entropy_fwd_*, fb = nllk_cross_entropy_fwdbwd_* with
 * grad_output 1, bwd = nllk_cross_entropy_bwd_* (the forward's total weight from one call before the rounds).
 * "cpu": the process's CPU time per call (CLOCK_PROCESS_CPUTIME_ID; run with OMP_WAIT_POLICY=passive so idle
 * threads do not spin): on a shared machine it leaves out the time the call waits for a core.
 * Give the libraries as distinct files (copy each build's libnllk.so.0.1.0 to its own directory). Class-index
 * targets (int64, uniform), MEAN, no weight, lse written; label smoothing from NLLK_AB_LS (default 0).
 * Logits N(0, 3^2)-like (a sum of uniforms), fixed seed. Buffers allocated and touched once. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../include/nllk.h"
#include "../kernels/common/half.h" /* nllk_f32_to_bf16 */

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

/* The library's six cross-entropy entry points used here (nllk.h's signatures). */
typedef nllk_status (*fwd32_t)(const float *, const void *, nllk_target_type, size_t, size_t, size_t, const float *,
                               int64_t, double, nllk_reduction, float *, float *, float *);
typedef nllk_status (*fb32_t)(const float *, const void *, nllk_target_type, size_t, size_t, size_t, const float *,
                              int64_t, double, nllk_reduction, float *, float *, float *, const float *, float *);
typedef nllk_status (*bw32_t)(const float *, const float *, const void *, nllk_target_type, size_t, size_t, size_t,
                              const float *, int64_t, double, nllk_reduction, float, const float *, float *);
typedef nllk_status (*fwd16_t)(const uint16_t *, const void *, nllk_target_type, size_t, size_t, size_t,
                               const uint16_t *, int64_t, double, nllk_reduction, uint16_t *, uint16_t *, uint16_t *);
typedef nllk_status (*fb16_t)(const uint16_t *, const void *, nllk_target_type, size_t, size_t, size_t,
                              const uint16_t *, int64_t, double, nllk_reduction, uint16_t *, uint16_t *, uint16_t *,
                              const uint16_t *, uint16_t *);
typedef nllk_status (*bw16_t)(const uint16_t *, const uint16_t *, const void *, nllk_target_type, size_t, size_t,
                              size_t, const uint16_t *, int64_t, double, nllk_reduction, uint16_t, const uint16_t *,
                              uint16_t *);
typedef nllk_status (*setth_t)(int);

enum { FWD, FB, BWD };
static const char *const NAMES[2][3] = {
    {"nllk_cross_entropy_fwd_f32", "nllk_cross_entropy_fwdbwd_f32", "nllk_cross_entropy_bwd_f32"},
    {"nllk_cross_entropy_fwd_bf16", "nllk_cross_entropy_fwdbwd_bf16", "nllk_cross_entropy_bwd_bf16"}};

typedef struct ab_case {
    const void *x;
    const int64_t *t;
    size_t n, c, d;
    double ls;
    int bf;
    void *lse;
} ab_case;

/* The forward (FWD, FB: with the gradient to gx) or backward (BWD: of total weight tw, from a forward) of fn; the loss
 * (16-bit: its bits) and the total weight to out[0], out[1]. */
static nllk_status call(void *const fn[3], int mode, const ab_case *k, void *gx, uint32_t out[2])
{
    const float one = 1.0f;
    const uint16_t one16 = 0x3f80;
    float l32 = 0, w32 = 0;
    uint16_t l16 = 0, w16 = 0;
    nllk_status st;
    if (!k->bf) {
        memcpy(&w32, &out[1], 4);
        if (mode == FWD)
            st = ((fwd32_t)fn[FWD])(k->x, k->t, NLLK_TARGET_I64, k->n, k->c, k->d, NULL, -100, k->ls,
                                    NLLK_REDUCTION_MEAN, &l32, &w32, k->lse);
        else if (mode == FB)
            st = ((fb32_t)fn[FB])(k->x, k->t, NLLK_TARGET_I64, k->n, k->c, k->d, NULL, -100, k->ls,
                                  NLLK_REDUCTION_MEAN, &l32, &w32, k->lse, &one, gx);
        else
            st = ((bw32_t)fn[BWD])(&one, k->x, k->t, NLLK_TARGET_I64, k->n, k->c, k->d, NULL, -100, k->ls,
                                   NLLK_REDUCTION_MEAN, w32, k->lse, gx);
        if (mode != BWD)
            memcpy(&out[0], &l32, 4), memcpy(&out[1], &w32, 4);
    } else {
        w16 = (uint16_t)out[1];
        if (mode == FWD)
            st = ((fwd16_t)fn[FWD])(k->x, k->t, NLLK_TARGET_I64, k->n, k->c, k->d, NULL, -100, k->ls,
                                    NLLK_REDUCTION_MEAN, &l16, &w16, k->lse);
        else if (mode == FB)
            st = ((fb16_t)fn[FB])(k->x, k->t, NLLK_TARGET_I64, k->n, k->c, k->d, NULL, -100, k->ls,
                                  NLLK_REDUCTION_MEAN, &l16, &w16, k->lse, &one16, gx);
        else
            st = ((bw16_t)fn[BWD])(&one16, k->x, k->t, NLLK_TARGET_I64, k->n, k->c, k->d, NULL, -100, k->ls,
                                   NLLK_REDUCTION_MEAN, w16, k->lse, gx);
        if (mode != BWD)
            out[0] = l16, out[1] = w16;
    }
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: %s N C|CxD f32|bf16 fwd|fb|bwd THREADS ROUNDS LIB..\n", argv[0]);
        return 2;
    }
    char *end;
    const size_t n = strtoull(argv[1], 0, 10), c = strtoull(argv[2], &end, 10);
    const size_t d = *end == 'x' ? strtoull(end + 1, 0, 10) : 1;
    const int bf = !strcmp(argv[3], "bf16");
    const int mode = !strcmp(argv[4], "fb") ? FB : !strcmp(argv[4], "bwd") ? BWD : FWD;
    const int th = atoi(argv[5]), rounds = atoi(argv[6]), nl = argc - 7;
    if (nl > 8 || rounds < 1 || rounds > 4096 || !n || !c || !d) {
        fprintf(stderr, "ce_ab: 1..8 libraries, 1..4096 rounds, a non-empty shape\n");
        return 2;
    }
    void *fn[8][3];
    for (int l = 0; l < nl; l++) {
        void *h = dlopen(argv[7 + l], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        for (int m = 0; m < 3; m++)
            fn[l][m] = dlsym(h, NAMES[bf][m]);
        ((setth_t)dlsym(h, "nllk_set_num_threads"))(th);
    }
    const size_t es = bf ? 2 : 4, nc = n * c * d, bytes = (nc * es + 63) / 64 * 64;
    void *x = aligned_alloc(64, bytes);
    int64_t *t = malloc(n * d * sizeof *t);
    float *lse = malloc(n * d * 4);
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < nc; i++) {
        float v = 0;
        for (int j = 0; j < 4; j++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            v += (float)(s >> 40) / (float)(1 << 24) - 0.5f;
        }
        v *= 5.2f;
        if (bf)
            ((uint16_t *)x)[i] = nllk_f32_to_bf16(v);
        else
            ((float *)x)[i] = v;
    }
    for (size_t i = 0; i < n * d; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        t[i] = (int64_t)(s % c);
    }
    const char *lsv = getenv("NLLK_AB_LS");
    const ab_case k = {x, t, n, c, d, lsv ? atof(lsv) : 0.0, bf, lse};
    /* One gradient buffer for all (each library writes the same memory), checked against the first library's after
     * the last round; the libraries called in turn, in reverse order every other round (no first-or-second bias). */
    uint32_t out[8][2];
    int same[8];
    void *gx = aligned_alloc(64, bytes), *ref = mode == FWD ? NULL : aligned_alloc(64, bytes);
    memset(gx, 0, bytes);
    if (ref)
        memset(ref, 0, bytes);
    for (int l = 0; l < nl; l++) {
        memset(out[l], 0, sizeof out[l]);
        same[l] = 1;
        if (mode == BWD && call(fn[l], FWD, &k, NULL, out[l]) != NLLK_OK) { /* the total weight */
            fprintf(stderr, "ce_ab: the forward failed\n");
            return 1;
        }
    }
    double *tm = malloc(sizeof(double) * (size_t)rounds * nl), *rt = malloc(sizeof(double) * (size_t)rounds * nl);
    double *ct = malloc(sizeof(double) * (size_t)rounds * nl), *rc = malloc(sizeof(double) * (size_t)rounds * nl);
    for (int r = -2; r < rounds; r++) {
        for (int i = 0; i < nl; i++) {
            const int l = r % 2 ? nl - 1 - i : i;
            const double t0 = now(), c0 = cpu();
            const nllk_status st = call(fn[l], mode, &k, gx, out[l]);
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
    }
    if (ref) /* the gradients: each library once more, lib 0 first, each against lib 0's */
        for (int l = 0; l < nl; l++) {
            if (call(fn[l], mode, &k, gx, out[l]) != NLLK_OK)
                return 1;
            if (l == 0)
                memcpy(ref, gx, nc * es);
            else
                same[l] = !memcmp(ref, gx, nc * es);
        }
    for (int r = 0; r < rounds; r++)
        for (int l = 0; l < nl; l++)
            rt[l * rounds + r] = tm[l * rounds + r] / tm[r], rc[l * rounds + r] = ct[l * rounds + r] / ct[r];
    printf("(%zu, %zu, %zu) %s %s threads=%d rounds=%d\n", n, c, d, argv[3], argv[4], th, rounds);
    for (int l = 0; l < nl; l++) {
        double tmp[4096];
        memcpy(tmp, tm + l * rounds, sizeof(double) * (size_t)rounds);
        const double med = median(tmp, rounds);
        qsort(tmp, (size_t)rounds, sizeof *tmp, cmpd);
        const double mn = tmp[0];
        memcpy(tmp, ct + l * rounds, sizeof(double) * (size_t)rounds);
        const int eq = !memcmp(out[l], out[0], sizeof out[0]) && same[l] == 1;
        printf("  %-32s wall median %8.3f min %8.3f ms, ratio %.3f | cpu median %8.3f ms, ratio %.3f | %s\n",
               argv[7 + l], med * 1e3, mn * 1e3, median(rt + l * rounds, rounds), median(tmp, rounds) * 1e3,
               median(rc + l * rounds, rounds), eq ? "same bits" : "BITS DIFFER");
    }
    return 0;
}
