/* write_history: streaming writes of 88 MB (the (4, 21, 512, 512) f32 NLL gradient), 2 threads, timed back to back
 * and each after a 10 ms sleep, for zeros and for non-zero data (BENCHMARKS.md, stop 28: on this machine the
 * zeros' rate depends on what ran in the last milliseconds, so a backward timed between other calls does not meet
 * a limit timed back to back).
 *
 *   gcc -O2 -mavx512f -fopenmp -o write_history bench/write_history.c && ./write_history */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 7 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* every 32-bit word of p[0 .. bytes) set to val by streaming stores, half the buffer per thread */
static void stream_fill(char *p, size_t bytes, int val)
{
#pragma omp parallel num_threads(2)
    {
        const size_t half = bytes / 2, s = half * (size_t)omp_get_thread_num();
        const __m512i v = _mm512_set1_epi32(val);
        for (size_t i = s; i < s + half; i += 64)
            _mm512_stream_si512((__m512i *)(p + i), v);
        _mm_sfence();
    }
}

int main(void)
{
    const size_t bytes = (size_t)88 << 20;
    char *p = aligned_alloc(1 << 21, bytes);
    if (!p)
        return 1;
    memset(p, 1, bytes);
    for (int val = 0; val < 2; val++) {
        double hot[ROUNDS], idle[ROUNDS];
        for (int r = 0; r < ROUNDS; r++) {
            const double t = now();
            stream_fill(p, bytes, val);
            hot[r] = now() - t;
        }
        for (int r = 0; r < ROUNDS; r++) {
            usleep(10000);
            const double t = now();
            stream_fill(p, bytes, val);
            idle[r] = now() - t;
        }
        printf("%s, back to back (ms):", val ? "data (1)" : "zeros");
        for (int r = 0; r < ROUNDS; r++)
            printf(" %.3f", hot[r] * 1e3);
        printf("\n%s, each after a 10 ms sleep:", val ? "data (1)" : "zeros");
        for (int r = 0; r < ROUNDS; r++)
            printf(" %.3f", idle[r] * 1e3);
        printf("\n");
    }
    free(p);
    return 0;
}
