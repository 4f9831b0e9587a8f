/* nll_seg_minrun: the N-D NLL kernel and its limits in one process (BENCHMARKS.md, "NLL on segmentation targets"),
 * for a loaded machine: one to four builds of the library (dlopen'ed side by side: before/after in one process),
 * called in interleaved rounds with the limit loops between them; minimum and median of each, and the median of the
 * per-round ratios.
 *
 *   /usr/bin/python3 -c "import sys; sys.path.insert(0, 'bench'); import labelmaps, numpy as np; \
 *       labelmaps.labelmaps(4, 512, 512, 21).astype(np.uint8).tofile('labels.bin')"   # = bench_nllk --nllk_dump_labels
 *   gcc -O2 -mavx512f -fopenmp -I build/include -o nll_seg_minrun bench/nll_seg_minrun.c -ldl
 *   ./nll_seg_minrun COHERENT(0|1) INT64(0|1) THREADS BACKWARD(0|1) labels.bin [ROUNDS]  LIB_A.so [LIB_B.so ..]
 *
 * (Give the libraries as distinct files: copy one build's libnllk.so.0.1.0 elsewhere first.) Forward limits:
 * "touched" -- a vectorized read of as many contiguous bytes as the call touches (targets + every 64-byte input line
 * a non-ignored target names) in the same cache state (warm: repeated; cold: after writing 96 MiB); "dram" -- the
 * touched bytes at the streaming read bandwidth from memory measured in the same run (a 256 MiB read, cold). Backward
 * limits: streaming stores of zeros over grad_input's bytes ("limit"), and "same bytes": streaming stores of exactly
 * the bytes the backward writes, in address order (on this machine streaming stores of zeros run faster than of other
 * data, so the zeros flatter a kernel whose lines hold values: random targets put one in about half of grad_input's
 * lines, the coherent maps in a few percent). (4, 21, 512, 512) f32, weighted, ignore 255, mean. Random
 * targets: 10% ignored. SEG_D=65536 in the environment takes the first d positions of each map instead (the touched
 * bytes then fit L2: the kernel's own cost, little disturbed by other processes' use of L3 and memory). */
#include <dlfcn.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../include/nllk.h"

static double now(void)
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

/* the same bytes as the backward writes, contiguously: line i of grad_input (16 floats) is plane pl[i]'s value in the
 * lanes of mask[i] and +0 elsewhere (this machine's streaming writes are faster for zero lines: a write limit of zeros
 * flatters every kernel whose output is not all zeros) */
static void ntwrite_same(char *p, size_t bytes, int th, const uint16_t *mask, const float *val, size_t lines_per_plane,
                         size_t c)
{
#pragma omp parallel num_threads(th)
    {
        int k = omp_get_thread_num(), n = omp_get_num_threads();
        size_t lines = bytes / 64, b = lines * k / n, e = lines * (k + 1) / n;
        for (size_t i = b; i < e;) { /* plane by plane (no division per line) */
            const size_t pe = (i / lines_per_plane + 1) * lines_per_plane, stop = pe < e ? pe : e;
            const __m512 v = _mm512_set1_ps(val[i / lines_per_plane % c]);
            for (; i < stop; i++)
                _mm512_stream_ps((float *)(void *)(p + i * 64), _mm512_maskz_mov_ps(mask[i], v));
        }
        _mm_sfence();
    }
}

typedef nllk_status (*fwd_fn)(const float *, const void *, nllk_target_type, size_t, size_t, size_t, const float *,
                              int64_t, nllk_reduction, float *, float *);
typedef nllk_status (*bwd_fn)(const float *, const void *, nllk_target_type, size_t, size_t, size_t, const float *,
                              int64_t, nllk_reduction, float, float *);
typedef struct lib {
    fwd_fn fwd;
    bwd_fn bwd;
    nllk_status (*threads)(int);
    double w[400], c[400];
} lib;

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(const double *v, int n)
{
    double s[400];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmpd);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}
static double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s COHERENT INT64 THREADS BACKWARD labels.bin [ROUNDS] LIB_A [LIB_B ..]\n", argv[0]);
        return 2;
    }
    const size_t n = 4, c = 21, d = getenv("SEG_D") ? (size_t)atol(getenv("SEG_D")) : 262144; /* d <= 262144 */
    const int coh = atoi(argv[1]), i64 = atoi(argv[2]), th = atoi(argv[3]), bwd = atoi(argv[4]);
    int a = 6, rounds = 40;
    if (argv[a][0] >= '0' && argv[a][0] <= '9')
        rounds = atoi(argv[a++]);
    rounds = rounds > 400 ? 400 : rounds;
    const int nl = argc - a > 4 ? 4 : argc - a;
    static lib L[4];
    for (int i = 0; i < nl; i++) {
        void *h = dlopen(argv[a + i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "%s\n", dlerror());
            return 1;
        }
        L[i].fwd = (fwd_fn)dlsym(h, "nllk_nll_fwd_f32");
        L[i].bwd = (bwd_fn)dlsym(h, "nllk_nll_bwd_f32");
        L[i].threads = (nllk_status(*)(int))dlsym(h, "nllk_set_num_threads");
        L[i].threads(th);
    }
    const size_t xb = n * c * d * 4, dram = (size_t)256 << 20;
    float *x = aligned_alloc(1 << 21, xb);
    madvise(x, xb, MADV_HUGEPAGE);
    for (size_t i = 0; i < n * c * d; i++)
        x[i] = -(float)(i % 1000) * 0.01f;
    char *ev = aligned_alloc(1 << 21, 96 << 20);
    memset(ev, 1, 96 << 20);
    char *rb = aligned_alloc(1 << 21, dram);
    madvise(rb, dram, MADV_HUGEPAGE);
    memset(rb, 3, dram);
    unsigned char *t8 = malloc(n * d);
    int64_t *t64 = malloc(n * d * 8);
    float w[21];
    for (int i = 0; i < 21; i++)
        w[i] = 0.5f + i * 0.01f;
    if (coh) {
        FILE *f = fopen(argv[5], "rb");
        unsigned char *full = malloc(n * 262144);
        if (!f || fread(full, 1, n * 262144, f) != n * 262144)
            return 1;
        fclose(f);
        for (size_t i = 0; i < n; i++) /* the first d positions of each map */
            memcpy(t8 + i * d, full + i * 262144, d);
        free(full);
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
    size_t lines = 0; /* touched bytes */
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
    const size_t lb = bwd ? xb : tb;
    float out[4] = {0, 0, 0, 0}, tw = 1, one = 1;
    for (int i = 0; i < nl; i++)
        L[i].fwd(x, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, &out[i], &tw);
    for (int i = 1; i < nl; i++)
        if (memcmp(&out[0], &out[i], sizeof(float)))
            printf("RESULTS DIFFER: lib A %.9g, lib %c %.9g\n", out[0], 'A' + i, out[i]);
    /* backward: the masks of grad_input's lines that hold a value, and each plane's value (as the kernel computes
     * it: mean's g = 1 / total_weight, then w[k] * -g), for the same-bytes limit */
    uint16_t *mask = NULL;
    float val[21];
    if (bwd) {
        const size_t lpp = d / 16;
        mask = calloc(n * c * lpp, sizeof *mask);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++) {
                const int v = t8[i * d + j];
                if (v != 255)
                    mask[(i * c + v) * lpp + j / 16] |= (uint16_t)(1u << (j % 16));
            }
        volatile float g = one / tw;
        for (int k = 0; k < 21; k++)
            val[k] = w[k] * -g;
    }
    double lw[400], lc[400], bw[400], ls[400];
    /* the libraries, the limit, the DRAM read (forward: the cold limit), the same-bytes limit (backward) */
    const int nk = nl + 2 + bwd;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < nk; i++) {
            const int k = (i + r) % nk; /* rotate the order each round */
            double t0;
            if (k < nl) {
                for (int rep = 0; rep < 2; rep++) { /* warm: the second of two calls */
                    t0 = now();
                    if (bwd)
                        L[k].bwd(&one, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, tw, x);
                    else
                        L[k].fwd(x, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, &out[k], &tw);
                }
                L[k].w[r] = now() - t0;
                if (bwd)
                    continue;
                memset(ev, r + i, 96 << 20);
                t0 = now();
                L[k].fwd(x, t, tt, n, c, d, w, 255, NLLK_REDUCTION_MEAN, &out[k], &tw);
                L[k].c[r] = now() - t0;
            } else if (k == nl) {
                for (int rep = 0; rep < 2; rep++) {
                    t0 = now();
                    if (bwd)
                        ntwrite(rb, lb, th);
                    else
                        readpass(rb, lb, th);
                }
                lw[r] = now() - t0;
                if (bwd)
                    continue;
                memset(ev, r + i, 96 << 20);
                t0 = now();
                readpass(rb, lb, th);
                lc[r] = now() - t0;
            } else if (k == nl + 1) {
                memset(ev, r + i, 96 << 20);
                t0 = now();
                readpass(rb, dram, th);
                bw[r] = dram / (now() - t0); /* bytes/s from memory */
            } else {
                for (int rep = 0; rep < 2; rep++) {
                    t0 = now();
                    ntwrite_same(rb, lb, th, mask, val, d / 16, c);
                }
                ls[r] = now() - t0;
            }
        }
    const double bwm = median(bw, rounds), dl = lb / bwm;
    double bwx = bw[0];
    for (int r = 1; r < rounds; r++)
        bwx = bw[r] > bwx ? bw[r] : bwx;
    printf("%s %s %d thr, %s, %.2f MB touched, %d rounds; DRAM read %.1f GB/s (median; max %.1f)\n",
           coh ? "coherent" : "random", i64 ? "int64" : "uint8", th, bwd ? "backward" : "forward", lb / 1e6, rounds,
           bwm / 1e9, bwx / 1e9);
    printf("limit warm (%s): min %.3f med %.3f ms", bwd ? "streaming write" : "touched", minimum(lw, rounds) * 1e3,
           median(lw, rounds) * 1e3);
    if (!bwd)
        printf(" | cold: min %.3f med %.3f ms | dram: %.3f ms", minimum(lc, rounds) * 1e3, median(lc, rounds) * 1e3,
               dl * 1e3);
    else
        printf(" | same bytes: min %.3f med %.3f ms", minimum(ls, rounds) * 1e3, median(ls, rounds) * 1e3);
    printf("\n");
    for (int i = 0; i < nl; i++) {
        double rw[400], rc[400], rd[400];
        for (int r = 0; r < rounds; r++) {
            rw[r] = lw[r] / L[i].w[r];
            rc[r] = bwd ? 0 : lc[r] / L[i].c[r];
            rd[r] = bwd ? 0 : lb / bw[r] / L[i].c[r];
        }
        printf("lib %c warm: min %.3f med %.3f ms, of limit %.0f%% (median of rounds)", 'A' + i,
               minimum(L[i].w, rounds) * 1e3, median(L[i].w, rounds) * 1e3, 100 * median(rw, rounds));
        if (bwd) {
            for (int r = 0; r < rounds; r++)
                rc[r] = ls[r] / L[i].w[r];
            printf(", of same bytes %.0f%%", 100 * median(rc, rounds));
        }
        if (!bwd)
            printf(" | cold: min %.3f med %.3f ms, of touched-cold %.0f%%, of dram %.0f%%",
                   minimum(L[i].c, rounds) * 1e3, median(L[i].c, rounds) * 1e3, 100 * median(rc, rounds),
                   100 * median(rd, rounds));
        printf("\n");
    }
    for (int i = 1; i < nl; i++) {
        double rw[400], rc[400];
        for (int r = 0; r < rounds; r++) {
            rw[r] = L[0].w[r] / L[i].w[r];
            rc[r] = bwd ? 0 : L[0].c[r] / L[i].c[r];
        }
        printf("A/%c (%c faster when > 1), median of rounds: warm %.2fx", 'A' + i, 'A' + i, median(rw, rounds));
        if (!bwd)
            printf(", cold %.2fx", median(rc, rounds));
        printf("\n");
    }
    return 0;
}
