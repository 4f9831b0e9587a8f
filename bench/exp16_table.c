/* exp16_table: is a 65536-entry table lookup faster than the inline exp for a 16-bit Poisson input (BENCHMARKS.md,
 * "bfloat16 Poisson: exp by table (stop 23)")? The bf16 Poisson forward's loop body (log_input, a sum in double),
 * single thread, on n bfloat16 inputs (uniform in [-2, 2], as bench_half.py's log-rates) and integer targets, with
 * exp(x) from:
 *   sleef      the inline Sleef_expf16_u10avx512f of main before stop 23 (cvtps2dq, two-step 2^q scaling)
 *   scalef     the AVX-512 map's v_exp now (vrndscaleps, vscalefps, min(d, 100)): the same bits
 *   gather16   a 16-lane vgatherdps from a 256 KiB float table indexed by the input's 16 bits (filled by v_exp)
 *   gather8x2  two 8-lane gathers;  scalar  16 scalar loads from the table
 * in interleaved rounds: minimum and median ns per element, and each variant's sum (they must agree).
 *
 *   gcc -O2 -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma -ffp-contract=off -I kernels/avx512 \
 *       -o exp16_table bench/exp16_table.c -lsleef -lm
 *   ./exp16_table [N=65536] [ROUNDS=200]          # N = 65536: the data in L2, the exp's own cost */
#define NLLK_DTYPE_F32 1
#include "vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static float table[65536] __attribute__((aligned(64)));

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* main's inline SLEEF expf before stop 23 (kernels/avx512/vec.h at 2a5e448) */
static inline __m512 sleef_expf_old(__m512 d)
{
    const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(d, _mm512_set1_ps(0x1.715476p+0f)));
    const __m512 qf = _mm512_cvtepi32_ps(q);
    __m512 s = _mm512_fmadd_ps(qf, _mm512_set1_ps(-0x1.62e4p-1f), d);
    s = _mm512_fmadd_ps(qf, _mm512_set1_ps(-0x1.7f7d1cp-20f), s);
    __m512 u = _mm512_fmadd_ps(_mm512_set1_ps(0x1.a057b4p-13f), s, _mm512_set1_ps(0x1.6d2d92p-10f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0x1.11114cp-7f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0x1.5554f4p-5f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0x1.555556p-3f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0.5f));
    u = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(s, s), u, s), _mm512_set1_ps(1.0f));
    const __m512i q1 = _mm512_srai_epi32(q, 1), one = _mm512_set1_epi32(0x3f800000);
    u = _mm512_mul_ps(u, _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(q1, 23), one)));
    const __m512 p2 = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_slli_epi32(_mm512_sub_epi32(q, q1), 23), one));
    u = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(d, _mm512_set1_ps(-104.0f), _CMP_NLT_US), u, p2);
    return _mm512_mask_mov_ps(u, _mm512_cmp_ps_mask(d, _mm512_set1_ps(100.0f), _CMP_GT_OQ),
                              _mm512_set1_ps(__builtin_inff()));
}

static inline __m512i bits(const uint16_t *p) { return _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)p)); }
static inline __m512 widen(__m512i b) { return _mm512_castsi512_ps(_mm512_slli_epi32(b, 16)); }

enum { SLEEF, SCALEF, GATHER16, GATHER8X2, SCALAR, NV };
static const char *const names[NV] = {"sleef", "scalef", "gather16", "gather8x2", "scalar"};

static inline __m512 exp_of(int v, __m512i xi, __m512 xv, const uint16_t *xp)
{
    switch (v) {
    case SLEEF: return sleef_expf_old(xv);
    case SCALEF: return v_exp(xv);
    case GATHER16: return _mm512_i32gather_ps(xi, table, 4);
    case GATHER8X2:
        return _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_i32gather_ps(table, _mm512_castsi512_si256(xi), 4)),
                                  _mm256_i32gather_ps(table, _mm512_extracti64x4_epi64(xi, 1), 4), 1);
    default: {
        float e[16] __attribute__((aligned(64)));
        for (int k = 0; k < 16; k++)
            e[k] = table[xp[k]];
        return _mm512_load_ps(e);
    }
    }
}

/* the Poisson forward's body: loss = exp(x) - t*x, summed in double (two 8-lane accumulators) */
static inline double run(int v, const uint16_t *x, const uint16_t *t, size_t n)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    for (size_t i = 0; i < n; i += 16) {
        const __m512i xi = bits(x + i);
        const __m512 xv = widen(xi), tv = widen(bits(t + i));
        const __m512 l = _mm512_sub_ps(exp_of(v, xi, xv, x + i), _mm512_mul_ps(tv, xv));
        a0 = _mm512_add_pd(a0, _mm512_cvtps_pd(_mm512_castps512_ps256(l)));
        a1 = _mm512_add_pd(a1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(l, 1)));
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}
__attribute__((noinline)) static double run_v(int v, const uint16_t *x, const uint16_t *t, size_t n)
{
    switch (v) {
    case SLEEF: return run(SLEEF, x, t, n);
    case SCALEF: return run(SCALEF, x, t, n);
    case GATHER16: return run(GATHER16, x, t, n);
    case GATHER8X2: return run(GATHER8X2, x, t, n);
    default: return run(SCALAR, x, t, n);
    }
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const size_t n = (argc > 1 ? strtoull(argv[1], 0, 0) : 65536) / 16 * 16;
    const int rounds = argc > 2 ? atoi(argv[2]) : 200;
    uint16_t *x = aligned_alloc(64, n * 2 + 64), *t = aligned_alloc(64, n * 2 + 64);
    double *tm = malloc(sizeof *tm * NV * (size_t)rounds);
    if (!x || !t || !tm || rounds < 1)
        return 1;
    srand(1);
    for (size_t i = 0; i < n; i++) { /* bfloat16 of uniform [-2, 2] (round to nearest even); targets 0..9 */
        float f = (float)rand() / (float)RAND_MAX * 4.0f - 2.0f, g = (float)(rand() % 10);
        uint32_t u, w;
        memcpy(&u, &f, 4);
        memcpy(&w, &g, 4);
        x[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        t[i] = (uint16_t)(w >> 16);
    }
    for (uint32_t i = 0; i < 65536; i += 16) { /* the table: v_exp of every bfloat16 value */
        uint16_t h[16];
        for (uint32_t k = 0; k < 16; k++)
            h[k] = (uint16_t)(i + k);
        _mm512_store_ps(table + i, v_exp(widen(bits(h))));
    }
    for (int v = 0; v < NV; v++)
        printf("%-10s sum %.17g\n", names[v], run_v(v, x, t, n));
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < NV; v++) {
            const double t0 = now();
            volatile double s = run_v(v, x, t, n);
            (void)s;
            tm[v * rounds + r] = (now() - t0) / (double)n * 1e9;
        }
    printf("n = %zu, %d rounds: ns per element, min / median\n", n, rounds);
    for (int v = 0; v < NV; v++) {
        qsort(tm + v * rounds, (size_t)rounds, sizeof *tm, cmp);
        printf("%-10s %.3f / %.3f\n", names[v], tm[v * rounds], tm[v * rounds + rounds / 2]);
    }
    free(x);
    free(t);
    free(tm);
    return 0;
}
