/* stream_halflines: streaming (non-temporal) stores over 21 class planes of 2^20 bfloat16 positions each (44 MB, the
 * (4, 21, 512, 512) bf16 gradient as the cross-entropy planes backward writes it: per step every plane in turn),
 * 2 threads, three ways: 32-byte stores (one 16-lane bf16 vector per plane and step, the kernel's pattern), 64-byte
 * stores (a whole line per plane and step), and two adjacent 32-byte stores (two steps' vectors of a plane written
 * back to back). BENCHMARKS.md "Stop 29": half lines interleaved over 21 planes cost about 3x whole ones here, but
 * writing whole lines in the kernel (branch ce16line) gained nothing: there the stores drain while it computes.
 *
 *   gcc -O2 -mavx512f -fopenmp -o stream_halflines bench/stream_halflines.c && ./stream_halflines */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { C = 21, ROUNDS = 9 };
static const size_t PLANE = (size_t)4 * 512 * 512 * 2; /* bytes of one class plane */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void)
{
    char *g = aligned_alloc(64, C * PLANE);
    if (!g)
        return 1;
    for (size_t i = 0; i < C * PLANE; i += 4096) /* every page touched before timing */
        g[i] = 1;
    for (int rep = 0; rep < ROUNDS; rep++) {
        const double t0 = now();
#pragma omp parallel for num_threads(2) schedule(static)
        for (size_t o = 0; o < PLANE; o += 32) {
            const __m256i v = _mm256_set1_epi32((int)o);
            for (size_t k = 0; k < C; k++)
                _mm256_stream_si256((__m256i *)(void *)(g + k * PLANE + o), v);
        }
        _mm_sfence();
        const double t1 = now();
#pragma omp parallel for num_threads(2) schedule(static)
        for (size_t o = 0; o < PLANE; o += 64) {
            const __m512i v = _mm512_set1_epi32((int)o);
            for (size_t k = 0; k < C; k++)
                _mm512_stream_si512((__m512i *)(void *)(g + k * PLANE + o), v);
        }
        _mm_sfence();
        const double t2 = now();
#pragma omp parallel for num_threads(2) schedule(static)
        for (size_t o = 0; o < PLANE; o += 64) {
            const __m256i v = _mm256_set1_epi32((int)o);
            for (size_t k = 0; k < C; k++) {
                _mm256_stream_si256((__m256i *)(void *)(g + k * PLANE + o), v);
                _mm256_stream_si256((__m256i *)(void *)(g + k * PLANE + o + 32), v);
            }
        }
        _mm_sfence();
        const double t3 = now();
        printf("32-byte stores, planes interleaved %.2f ms   64-byte stores %.2f ms   two adjacent 32-byte %.2f ms\n",
               (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3);
    }
    free(g);
    return 0;
}
