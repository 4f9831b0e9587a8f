/* nll_seg_minrun: the N-D NLL kernel and its limit in one process, each the minimum of N calls (BENCHMARKS.md,
 * "NLL on segmentation targets"): for a loaded machine, where medians measure the other processes.
 *
 *   build-bench/bench/bench_nllk --nllk_dump_labels=labels.bin     # the coherent (4, 512, 512) uint8 map
 *   gcc -O2 -mavx512f -fopenmp -I include -I build/include -o nll_seg_minrun bench/nll_seg_minrun.c -L build -lnllk
 *   LD_LIBRARY_PATH=build ./nll_seg_minrun COHERENT(0|1) INT64(0|1) THREADS BACKWARD(0|1) [labels.bin]
 *
 * Prints: kernel warm, limit warm, kernel cold, limit cold (ms), touched MB. Forward limit: a vectorized read of as
 * many contiguous bytes as the call touches (targets + input lines named), same cache state; backward: streaming
 * stores over grad_input's bytes. (4, 21, 512, 512) f32, weighted, ignore 255, mean. Random targets: 10% ignored. */
#include <immintrin.h>
#include <nllk.h>
#include <omp.h>
#include <stdint.h>
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
static volatile uint64_t sink;
static void readpass(const char *p, size_t bytes, int th)
{
    uint64_t tot = 0;
#pragma omp parallel num_threads(th) reduction(+ : tot)
    {
        int k = omp_get_thread_num(), n = omp_get_num_threads();
        size_t lines = bytes / 64, b = lines * k / n * 64, e = lines * (k + 1) / n * 64;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        size_t i = b;
        for (; i + 256 <= e; i += 256) {
            a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(p + i));
            a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(p + i + 64));
            a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(p + i + 128));
            a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(p + i + 192));
        }
        tot += _mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
    }
    sink = tot;
}
static void ntwrite(char *p, size_t bytes, int th)
{
#pragma omp parallel num_threads(th)
    {
        int k = omp_get_thread_num(), n = omp_get_num_threads();
        size_t lines = bytes / 64, b = lines * k / n * 64, e = lines * (k + 1) / n * 64;
        __m512i z = _mm512_setzero_si512();
        for (size_t i = b; i < e; i += 64)
            _mm512_stream_si512((void *)(p + i), z);
        _mm_sfence();
    }
}
int main(int argc, char **argv)
{
    size_t n = 4, c = 21, d = 262144;
    int coh = atoi(argv[1]), i64 = atoi(argv[2]), th = atoi(argv[3]), bwd = atoi(argv[4]);
    size_t xb = n * c * d * 4;
    float *x = aligned_alloc(1 << 21, xb);
    madvise(x, xb, MADV_HUGEPAGE);
    for (size_t i = 0; i < n * c * d; i++)
        x[i] = -(float)(i % 1000) * 0.01f;
    char *ev = aligned_alloc(1 << 21, 96 << 20);
    memset(ev, 1, 96 << 20);
    char *rb = aligned_alloc(1 << 21, xb);
    madvise(rb, xb, MADV_HUGEPAGE);
    memset(rb, 3, xb);
    unsigned char *t8 = malloc(n * d);
    int64_t *t64 = malloc(n * d * 8);
    float w[21];
    for (int i = 0; i < 21; i++)
        w[i] = 0.5f + i * 0.01f;
    if (coh) {
        FILE *f = fopen(argc > 5 ? argv[5] : "labels.bin", "rb");
        if (!f)
            return 1;
        if (fread(t8, 1, n * d, f) != n * d)
            return 1;
        fclose(f);
    } else {
        unsigned s = 1;
        for (size_t i = 0; i < n * d; i++) {
            s = s * 1103515245 + 12345;
            unsigned r = (s >> 16) % 100;
            t8[i] = r < 10 ? 255 : (s >> 8) % 21;
        }
    }
    for (size_t i = 0; i < n * d; i++)
        t64[i] = t8[i];
    const void *t = i64 ? (void *)t64 : (void *)t8;
    nllk_target_type tt = i64 ? NLLK_TARGET_I64 : NLLK_TARGET_U8;
    /* touched bytes */
    size_t lines = 0;
    {
        unsigned char *seen = calloc(xb / 64 + 1, 1);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++) {
                int v = t8[i * d + j];
                if (v == 255)
                    continue;
                size_t l = ((i * c + v) * d + j) * 4 / 64;
                if (!seen[l]) {
                    seen[l] = 1;
                    lines++;
                }
            }
        free(seen);
    }
    size_t tb = lines * 64 + n * d * (i64 ? 8 : 1);
    tb = tb / 256 * 256;
    float out, tw = 1, one = 1;
    nllk_set_num_threads(th);
    nllk_nll_fwd_f32(x, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, &out, &tw);
    double k_w = 1e9, k_c = 1e9, l_w = 1e9, l_c = 1e9;
    for (int r = 0; r < 40; r++) {
        double t0 = now();
        if (bwd)
            nllk_nll_bwd_f32(&one, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, tw, x);
        else
            nllk_nll_fwd_f32(x, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, &out, &tw);
        double e = now() - t0;
        if (e < k_w)
            k_w = e;
        t0 = now();
        if (bwd)
            ntwrite(rb, xb, th);
        else
            readpass(rb, tb, th);
        e = now() - t0;
        if (e < l_w)
            l_w = e;
    }
    if (!bwd)
        for (int r = 0; r < 15; r++) {
            memset(ev, r, 96 << 20);
            double t0 = now();
            nllk_nll_fwd_f32(x, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, &out, &tw);
            double e = now() - t0;
            if (e < k_c)
                k_c = e;
            memset(ev, r + 1, 96 << 20);
            t0 = now();
            readpass(rb, tb, th);
            e = now() - t0;
            if (e < l_c)
                l_c = e;
        }
    if (bwd)
        printf("%.3f %.3f - - %.2f\n", k_w * 1e3, l_w * 1e3, tb / 1e6);
    else
        printf("%.3f %.3f %.3f %.3f %.2f\n", k_w * 1e3, l_w * 1e3, k_c * 1e3, l_c * 1e3, tb / 1e6);
    return 0;
}
