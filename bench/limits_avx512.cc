// Limits, AVX-512 build (-mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma): SLEEF's AVX-512 u10 functions,
// the ones nllk's AVX-512 kernels use.
#include <immintrin.h>
#include <sleef.h>

#include "limits.h"

namespace nllkb {

// SLEEF functions are declared const: without this the compiler may compute a pass once for all reps.
static inline void barrier(void *p) { asm volatile("" : : "r"(p) : "memory"); }

double sleef_loop_avx512(bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps)
{
    if (f64) {
        const double *xs = static_cast<const double *>(x);
        double *ys = static_cast<double *>(y);
        for (size_t r = 0; r < reps; r++, barrier(ys))
            for (size_t i = 0; i + 8 <= len; i += 8) {
                const __m512d v = _mm512_loadu_pd(xs + i);
                _mm512_storeu_pd(ys + i, fn == FN_EXP ? Sleef_expd8_u10avx512f(v) : Sleef_logd8_u10avx512f(v));
            }
        return ys[0] + ys[len - 1];
    }
    const float *xs = static_cast<const float *>(x);
    float *ys = static_cast<float *>(y);
    if (fn == FN_EXP) // inlined, as the kernels run it (limits.h); the log is a call, as in the kernels
        return nllkb_map_expf_loop_avx512(xs, ys, len, reps);
    for (size_t r = 0; r < reps; r++, barrier(ys))
        for (size_t i = 0; i + 16 <= len; i += 16) {
            const __m512 v = _mm512_loadu_ps(xs + i);
            _mm512_storeu_ps(ys + i, Sleef_logf16_u10avx512f(v));
        }
    return (double)ys[0] + ys[len - 1];
}

uint64_t read_sum_avx512(const void *p, size_t bytes)
{
    const char *c = static_cast<const char *>(p);
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(c + i));
        a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(c + i + 64));
        a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(c + i + 128));
        a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(c + i + 192));
    }
    alignas(64) uint64_t w[8];
    _mm512_store_si512(w, _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
    uint64_t s = w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7];
    for (; i < bytes; i++)
        s += static_cast<unsigned char>(c[i]);
    return s;
}

void write_nt_avx512(void *p, size_t bytes)
{
    char *c = static_cast<char *>(p);
    const __m512i z = _mm512_setzero_si512();
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64)
        _mm512_stream_si512(reinterpret_cast<__m512i *>(c + i), z);
    for (; i < bytes; i++)
        c[i] = 0;
    _mm_sfence();
}

void write_data_avx512(void *p, size_t bytes, bool nt)
{
    char *c = static_cast<char *>(p);
    const __m512i base = _mm512_setr_epi32(data_word(0, 0), data_word(0, 1), data_word(0, 2), data_word(0, 3),
                                           data_word(0, 4), data_word(0, 5), data_word(0, 6), data_word(0, 7),
                                           data_word(0, 8), data_word(0, 9), data_word(0, 10), data_word(0, 11),
                                           data_word(0, 12), data_word(0, 13), data_word(0, 14), data_word(0, 15));
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        const __m512i v = _mm512_xor_si512(base, _mm512_set1_epi32((int)((i >> 6) & 0xffff)));
        if (nt)
            _mm512_stream_si512(reinterpret_cast<__m512i *>(c + i), v);
        else
            _mm512_store_si512(reinterpret_cast<__m512i *>(c + i), v);
    }
    if (i < bytes)
        write_data_scalar(c + i, bytes - i, false); /* (its lines count from 0: the tail's pattern differs) */
    _mm_sfence();
}

}  // namespace nllkb
