/* write_stretches: streaming (non-temporal) writes of a (4, 21, 262144) f32 array in stretches of 16 .. 16384 floats
 * per class plane, the planes in turn (the N-D NLL backward's write pattern), against one contiguous streaming write
 * and memset, and contiguous streams of non-zero data (every float 1.0f; one 1.0f per 64-byte line); best of 5,
 * 1 thread (BENCHMARKS.md, "NLL on segmentation targets", "N-D NLL backward (stop 23)").
 *
 *   gcc -O2 -mavx512f -o write_stretches bench/write_stretches.c && ./write_stretches */
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
static double now()
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(void)
{
    size_t n = 4, c = 21, d = 262144;
    size_t bytes = n * c * d * 4;
    float *p = aligned_alloc(1 << 21, bytes);
    madvise(p, bytes, MADV_HUGEPAGE);
    memset(p, 1, bytes);
    size_t chunks[] = {16, 64, 256, 1024, 4096, 16384};
    for (int rep = 0; rep < 3; rep++) {
        for (int ci = 0; ci < 6; ci++) {
            size_t ch = chunks[ci];
            double best = 1e9;
            for (int r = 0; r < 5; r++) {
                double t0 = now();
                __m512 z = _mm512_setzero_ps();
                for (size_t i = 0; i < n; i++)
                    for (size_t j = 0; j < d; j += ch)
                        for (size_t k = 0; k < c; k++) {
                            float *q = p + (i * c + k) * d + j;
                            for (size_t o = 0; o < ch; o += 16)
                                _mm512_stream_ps(q + o, z);
                        }
                _mm_sfence();
                double t = now() - t0;
                if (t < best)
                    best = t;
            }
            printf("chunk %5zu floats: %.3f ms  %.1f GB/s\n", ch, best * 1e3, bytes / best * 1e-9);
        }
        double best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t0 = now();
            __m512 z = _mm512_setzero_ps();
            for (size_t o = 0; o < bytes / 4; o += 16)
                _mm512_stream_ps(p + o, z);
            _mm_sfence();
            double t = now() - t0;
            if (t < best)
                best = t;
        }
        printf("contiguous: %.3f ms\n", best * 1e3);
        /* the data written matters on this machine: zeros stream faster than lines holding values */
        for (int kind = 0; kind < 2; kind++) {
            const __m512 v = kind ? _mm512_maskz_mov_ps(1, _mm512_set1_ps(1.0f)) : _mm512_set1_ps(1.0f);
            best = 1e9;
            for (int r = 0; r < 5; r++) {
                double t0 = now();
                for (size_t o = 0; o < bytes / 4; o += 16)
                    _mm512_stream_ps(p + o, v);
                _mm_sfence();
                double t = now() - t0;
                if (t < best)
                    best = t;
            }
            printf("contiguous, %s: %.3f ms\n", kind ? "1.0f in lane 0 of each line" : "every float 1.0f", best * 1e3);
        }
        best = 1e9;
        for (int r = 0; r < 5; r++) {
            double t0 = now();
            memset(p, 0, bytes);
            double t = now() - t0;
            if (t < best)
                best = t;
        }
        printf("memset: %.3f ms\n", best * 1e3);
    }
    return 0;
}
