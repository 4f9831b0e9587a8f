// Limits, portable build: SLEEF's scalar purecfma functions (the ones nllk's scalar kernels use) and a plain
// 64-bit read loop.
#include <math.h>  // FP_FAST_FMA, which sleef.h tests to declare the purecfma functions
#include <sleef.h>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "limits.h"
#include "nllk.h"

#if defined(__FMA__)
#  define NLLKB_S1(fn) Sleef_##fn##_u10purecfma
#else
#  define NLLKB_S1(fn) Sleef_##fn##_u10purec
#endif

namespace nllkb {

// SLEEF functions are declared const: without this the compiler may compute a pass once for all reps.
static inline void barrier(void *p) { asm volatile("" : : "r"(p) : "memory"); }

double sleef_loop_scalar(bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps)
{
    if (f64) {
        const double *xs = static_cast<const double *>(x);
        double *ys = static_cast<double *>(y);
        for (size_t r = 0; r < reps; r++, barrier(ys))
            for (size_t i = 0; i < len; i++)
                ys[i] = fn == FN_EXP ? NLLKB_S1(expd1)(xs[i]) : NLLKB_S1(logd1)(xs[i]);
        return ys[0] + ys[len - 1];
    }
    const float *xs = static_cast<const float *>(x);
    float *ys = static_cast<float *>(y);
    for (size_t r = 0; r < reps; r++, barrier(ys))
        for (size_t i = 0; i < len; i++)
            ys[i] = fn == FN_EXP ? NLLKB_S1(expf1)(xs[i]) : NLLKB_S1(logf1)(xs[i]);
    return (double)ys[0] + ys[len - 1];
}

uint64_t read_sum_scalar(const void *p, size_t bytes)
{
    const unsigned char *c = static_cast<const unsigned char *>(p);
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 32 <= bytes; i += 32) {
        uint64_t w[4];
        std::memcpy(w, c + i, 32);
        a0 += w[0];
        a1 += w[1];
        a2 += w[2];
        a3 += w[3];
    }
    for (; i < bytes; i++)
        a0 += c[i];
    return a0 + a1 + a2 + a3;
}

void write_data_scalar(void *p, size_t bytes, bool)  // (no streaming stores in portable C++)
{
    unsigned char *c = static_cast<unsigned char *>(p);
    size_t i = 0;
    for (; i + 64 <= bytes; i += 64) {
        uint32_t w[16];
        for (unsigned j = 0; j < 16; j++)
            w[j] = data_word(i >> 6, j);
        std::memcpy(c + i, w, 64);
    }
    for (; i < bytes; i++)
        c[i] = static_cast<unsigned char>(data_word(i >> 6, (unsigned)(i & 63) / 4) >> (8 * (i & 3)));
}

void write_data(LimitIsa isa, void *p, size_t bytes, bool nt)
{
#if defined(__x86_64__)
    if (isa == ISA_AVX512)
        return write_data_avx512(p, bytes, nt);
    if (isa == ISA_AVX2)
        return write_data_avx2(p, bytes, nt);
#endif
    (void)isa;
    write_data_scalar(p, bytes, nt);
}

double sleef_loop(LimitIsa isa, bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps)
{
#if defined(__x86_64__)
    if (isa == ISA_AVX512)
        return sleef_loop_avx512(f64, fn, x, y, len, reps);
    if (isa == ISA_AVX2)
        return sleef_loop_avx2(f64, fn, x, y, len, reps);
#endif
    (void)isa;
    return sleef_loop_scalar(f64, fn, x, y, len, reps);
}

static double now_s()
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static volatile double g_rate_sink;

double sleef_rate(LimitIsa isa, bool f64, SleefFn fn, int threads)
{
    const size_t len = 2048, reps = 1024;  // ~2M calls a sample: the parallel region's start and end stay < 1%
    auto sample = [&] {
        const double t0 = now_s();
        double sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
        {
            alignas(64) double xb[len], yb[len];
            for (size_t i = 0; i < len; i++) {
                const double v = fn == FN_EXP ? -10.0 + 20.0 * (double)i / len : 0.01 + 100.0 * (double)i / len;
                if (f64)
                    xb[i] = v;
                else
                    reinterpret_cast<float *>(xb)[i] = (float)v;
            }
            sum += sleef_loop(isa, f64, fn, xb, yb, len, reps);
        }
        g_rate_sink = sum;
        return now_s() - t0;
    };
    sample();  // warm
    std::vector<double> ts;
    const double start = now_s();
    while (ts.size() < 5 || (ts.size() < 101 && now_s() - start < 0.05))
        ts.push_back(sample());
    std::sort(ts.begin(), ts.end());
    return (double)(len * reps) * threads / ts[ts.size() / 2];
}

uint64_t read_sum(LimitIsa isa, const void *p, size_t bytes)
{
#if defined(__x86_64__)
    if (isa == ISA_AVX512)
        return read_sum_avx512(p, bytes);
    if (isa == ISA_AVX2)
        return read_sum_avx2(p, bytes);
#endif
    (void)isa;
    return read_sum_scalar(p, bytes);
}

LimitIsa limit_isa(const char *nllk_isa)
{
#if defined(__x86_64__)
    if (std::strcmp(nllk_isa, "avx512") == 0)
        return ISA_AVX512;
    if (std::strcmp(nllk_isa, "avx2") == 0)
        return ISA_AVX2;
#endif
    (void)nllk_isa;
    return ISA_SCALAR;
}

static LimitIsa best_isa_detect()
{
    LimitIsa best = ISA_SCALAR;
    for (int i = 0; nllk_isa_name(i); i++)
        if (nllk_isa_supported(nllk_isa_name(i)))
            best = std::max(best, limit_isa(nllk_isa_name(i)));
    return best;
}

LimitIsa best_isa()
{
    static const LimitIsa isa = best_isa_detect();
    return isa;
}

}  // namespace nllkb
