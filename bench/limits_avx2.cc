// Limits, AVX2+FMA build (-mavx2 -mfma): SLEEF's AVX2 u10 functions, the ones nllk's AVX2 kernels use.
#include <immintrin.h>
#include <sleef.h>

#include "limits.h"

namespace nllkb {

// SLEEF functions are declared const: without this the compiler may compute a pass once for all reps.
static inline void barrier(void *p) { asm volatile("" : : "r"(p) : "memory"); }

double sleef_loop_avx2(bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps)
{
    if (f64) {
        const double *xs = static_cast<const double *>(x);
        double *ys = static_cast<double *>(y);
        for (size_t r = 0; r < reps; r++, barrier(ys))
            for (size_t i = 0; i + 4 <= len; i += 4) {
                const __m256d v = _mm256_loadu_pd(xs + i);
                _mm256_storeu_pd(ys + i, fn == FN_EXP ? Sleef_expd4_u10avx2(v) : Sleef_logd4_u10avx2(v));
            }
        return ys[0] + ys[len - 1];
    }
    const float *xs = static_cast<const float *>(x);
    float *ys = static_cast<float *>(y);
    if (fn == FN_EXP) // inlined, as the kernels run it (limits.h); the log is a call, as in the kernels
        return nllkb_map_expf_loop_avx2(xs, ys, len, reps);
    for (size_t r = 0; r < reps; r++, barrier(ys))
        for (size_t i = 0; i + 8 <= len; i += 8) {
            const __m256 v = _mm256_loadu_ps(xs + i);
            _mm256_storeu_ps(ys + i, Sleef_logf8_u10avx2(v));
        }
    return (double)ys[0] + ys[len - 1];
}

uint64_t read_sum_avx2(const void *p, size_t bytes)
{
    const char *c = static_cast<const char *>(p);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + i)));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(reinterpret_cast<const __m256i *>(c + i + 96)));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    alignas(32) uint64_t w[4];
    _mm256_store_si256(reinterpret_cast<__m256i *>(w), a0);
    uint64_t s = w[0] + w[1] + w[2] + w[3];
    for (; i < bytes; i++)
        s += static_cast<unsigned char>(c[i]);
    return s;
}

void write_nt_avx2(void *p, size_t bytes)
{
    char *c = static_cast<char *>(p);
    const __m256i z = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= bytes; i += 32)
        _mm256_stream_si256(reinterpret_cast<__m256i *>(c + i), z);
    for (; i < bytes; i++)
        c[i] = 0;
    _mm_sfence();
}

void write_data_avx2(void *p, size_t bytes, bool nt)
{
    char *c = static_cast<char *>(p);
    const __m256i lo = _mm256_setr_epi32(data_word(0, 0), data_word(0, 1), data_word(0, 2), data_word(0, 3),
                                         data_word(0, 4), data_word(0, 5), data_word(0, 6), data_word(0, 7));
    const __m256i hi = _mm256_setr_epi32(data_word(0, 8), data_word(0, 9), data_word(0, 10), data_word(0, 11),
                                         data_word(0, 12), data_word(0, 13), data_word(0, 14), data_word(0, 15));
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        const __m256i l = _mm256_set1_epi32((int)((i >> 6) & 0xffff));
        __m256i *q = reinterpret_cast<__m256i *>(c + i);
        if (nt) {
            _mm256_stream_si256(q, _mm256_xor_si256(lo, l));
            _mm256_stream_si256(q + 1, _mm256_xor_si256(hi, l));
        } else {
            _mm256_store_si256(q, _mm256_xor_si256(lo, l));
            _mm256_store_si256(q + 1, _mm256_xor_si256(hi, l));
        }
    }
    if (i < bytes)
        write_data_scalar(c + i, bytes - i, false);
    _mm_sfence();
}

}  // namespace nllkb
