/* nll_pick_probe: the N-D NLL forward's inner loop on random int64 targets, (4, 21, 262144) f32, weights, ignore 255,
 * four ways, with and without a software prefetch of every plane (BENCHMARKS.md, stop 28): sum21 (a read of every
 * plane, no targets), maskload (masked loads of each plane where the target names it), gatherdps (one 16-lane
 * gather), select (a load of each plane, blended where the target names it: the kernel's nll_pick_planes). A
 * throwaway prototype kept for the numbers: float sums, not nllk's bits. Medians over rounds, each call after a
 * 96 MiB write.
 *
 *   gcc -O2 -march=native -fopenmp -o nll_pick_probe bench/nll_pick_probe.c
 *   ./nll_pick_probe THREADS ROUNDS [PREFETCH_DISTANCE LOCALITY]   (LOCALITY -1: no prefetch; 3 T0, 2 T1, 0 NTA) */
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#define N 4
#define C 21
#define D 262144
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static float *x;
static int64_t *tg;
static float w[32];
static char *flush;
static int PFD = 256, LOC = 3;
static inline __m512d cvlo(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
static inline __m512d cvhi(__m512 v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }
#define PF(p)                                                                                                          \
    do {                                                                                                               \
        if (LOC == 3)                                                                                                  \
            _mm_prefetch((const char *)(p), _MM_HINT_T0);                                                              \
        else if (LOC == 2)                                                                                             \
            _mm_prefetch((const char *)(p), _MM_HINT_T1);                                                              \
        else if (LOC == 0)                                                                                             \
            _mm_prefetch((const char *)(p), _MM_HINT_NTA);                                                             \
    } while (0)
// variant 0: sum of all planes (read limit with 21 streams)
// variant 1: select over planes
// variant 2: gather dps
static double run(int var, int th)
{
    double tot = 0;
#pragma omp parallel num_threads(th) reduction(+ : tot)
    {
        int id = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t P = (size_t)N * D, b = P * id / nt / 16 * 16, e = P * (id + 1) / nt / 16 * 16;
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
        __m512 wlo = _mm512_loadu_ps(w), whi = _mm512_loadu_ps(w + 16);
        __m512i lane = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
        for (size_t p = b; p < e; p += 16) {
            size_t n = p / D, q = p % D;
            const float *xs = x + n * C * D + q;
            if (LOC >= 0 && q + PFD + 16 <= D)
                for (int k = 0; k < C; k++)
                    PF(xs + k * D + PFD);
            __m512i t0 = _mm512_loadu_si512(tg + p), t1 = _mm512_loadu_si512(tg + p + 8);
            __m512i t =
                _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(t0)), _mm512_cvtepi64_epi32(t1), 1);
            __mmask16 valid = _mm512_cmplt_epu32_mask(t, _mm512_set1_epi32(C));
            if (var == 0) {
                __m512 s = _mm512_setzero_ps();
                for (int k = 0; k < C; k++)
                    s = _mm512_add_ps(s, _mm512_loadu_ps(xs + (size_t)k * D));
                a0 = _mm512_add_pd(a0, cvlo(s));
                a1 = _mm512_add_pd(a1, cvhi(s));
                continue;
            }
            __m512 v;
            if (var == 1) {
                v = _mm512_setzero_ps();
                for (int k = 0; k < C; k++)
                    v = _mm512_mask_loadu_ps(v, _mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(k)), xs + (size_t)k * D);
            } else if (var == 3) {
                v = _mm512_setzero_ps();
                for (int k = 0; k < C; k++)
                    v = _mm512_mask_mov_ps(v, _mm512_cmpeq_epi32_mask(t, _mm512_set1_epi32(k)),
                                           _mm512_loadu_ps(xs + (size_t)k * D));
            } else {
                __m512i idx = _mm512_add_epi32(_mm512_mullo_epi32(t, _mm512_set1_epi32(D)), lane);
                v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, idx, xs, 4);
            }
            __m512 wv = _mm512_maskz_permutex2var_ps(valid, wlo, t, whi);
            __m512 l = _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), v), wv);
            l = _mm512_maskz_mov_ps(valid, l);
            a0 = _mm512_add_pd(a0, cvlo(l));
            a1 = _mm512_add_pd(a1, cvhi(l));
            b0 = _mm512_add_pd(b0, cvlo(wv));
            b1 = _mm512_add_pd(b1, cvhi(wv));
        }
        tot += _mm512_reduce_add_pd(_mm512_add_pd(a0, a1)) + 1e-30 * _mm512_reduce_add_pd(_mm512_add_pd(b0, b1));
    }
    return tot;
}
int main(int argc, char **argv)
{
    int th = argc > 1 ? atoi(argv[1]) : 2, rounds = argc > 2 ? atoi(argv[2]) : 9;
    if (argc > 3)
        PFD = atoi(argv[3]);
    if (argc > 4)
        LOC = atoi(argv[4]);
    size_t xb = (size_t)N * C * D * 4;
    x = aligned_alloc(2 << 20, xb);
    madvise(x, xb, MADV_HUGEPAGE);
    tg = aligned_alloc(64, (size_t)N * D * 8);
    flush = malloc(96 << 20);
    srand(1);
    for (size_t i = 0; i < (size_t)N * C * D; i++)
        x[i] = -(float)(rand() % 1000) / 100.f;
    for (size_t i = 0; i < (size_t)N * D; i++)
        tg[i] = rand() % 10 == 0 ? 255 : rand() % C;
    for (int k = 0; k < 32; k++)
        w[k] = 0.5f + k * 0.1f;
    const char *names[] = {"sum21", "maskload", "gatherdps", "select"};
    double med[4][64];
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < 4; v++) {
            memset(flush, r, 96 << 20);
            double t = now();
            volatile double s = run(v, th);
            t = now() - t;
            (void)s;
            med[v][r] = t;
        }
    for (int v = 0; v < 4; v++) {
        double *m = med[v];
        for (int i = 0; i < rounds; i++)
            for (int j = i + 1; j < rounds; j++)
                if (m[j] < m[i]) {
                    double z = m[i];
                    m[i] = m[j];
                    m[j] = z;
                }
        printf("%-10s min %.3f med %.3f ms\n", names[v], m[0] * 1e3, m[rounds / 2] * 1e3);
    }
}
