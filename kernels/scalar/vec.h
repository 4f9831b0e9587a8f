/* The scalar vector map: one lane (W = 1), plain C. See kernels/common/poisson_loop.h and nll_loop.h for the
 * operations a map provides.
 *
 * exp/log are SLEEF's scalar purecfma functions when the compiler may use FMA (the same bits as SLEEF's vector
 * FMA functions, so scalar equals AVX2/AVX-512/NEON); on an x86 CPU without FMA the baseline build uses purec,
 * which may differ in the last bit (nllk.h section 2). */
#ifndef NLLK_KERNELS_SCALAR_VEC_H
#define NLLK_KERNELS_SCALAR_VEC_H

/* sleef.h declares the purecfma functions only when FP_FAST_FMA is defined: glibc's math.h defines it under
 * gcc -mfma, but not under clang, so say it ourselves whenever the compiler may use FMA. */
#include <math.h>
#if defined(__FMA__) && !defined(FP_FAST_FMA)
#  define FP_FAST_FMA
#endif
#if defined(__FMA__) && !defined(FP_FAST_FMAF)
#  define FP_FAST_FMAF
#endif
#include <sleef.h>
#include <stdint.h>
#include <string.h>

#include "../common/nll_target.h"

#if defined(__FMA__) || defined(__aarch64__)
#  define NLLK_SLEEF1(fn) Sleef_##fn##_u10purecfma
#else
#  define NLLK_SLEEF1(fn) Sleef_##fn##_u10purec
#endif

#define NV32_W 1
#define NV64_W 1

#define NLLK_SCALAR_MAP(P, E, EXP, LOG)                                                                         \
    typedef E P##_v;                                                                                            \
    typedef double P##_a;                                                                                       \
    typedef int64_t P##_t;                                                                                      \
    static inline E P##_add(E a, E b) { return a + b; }                                                         \
    static inline E P##_sub(E a, E b) { return a - b; }                                                         \
    static inline E P##_mul(E a, E b) { return a * b; }                                                         \
    static inline E P##_div(E a, E b) { return a / b; }                                                         \
    static inline E P##_neg(E a) { return -a; }                                                                 \
    static inline E P##_exp(E a) { return EXP(a); }                                                             \
    static inline E P##_log(E a) { return LOG(a); }                                                             \
    static inline E P##_set1(double a) { return (E)a; }                                                         \
    static inline int P##_le(E a, E b) { return a <= b; }                                                       \
    static inline int P##_gt(E a, E b) { return a > b; }                                                        \
    static inline E P##_select(int m, E a, E b) { return m ? a : b; }                                           \
    static inline E P##_load(const E *p) { return *p; }                                                         \
    static inline E P##_load_n(const E *p, size_t m) { return m ? *p : (E)0; }                                 \
    static inline void P##_store(E *p, E v) { *p = v; }                                                         \
    static inline void P##_store_n(E *p, E v, size_t m)                                                         \
    {                                                                                                           \
        if (m)                                                                                                  \
            *p = v;                                                                                             \
    }                                                                                                           \
    static inline E P##_zero_n(E v, size_t m) { return m ? v : (E)0; }                                          \
    static inline double P##_acc_zero(void) { return 0.0; }                                                     \
    static inline double P##_acc_load(const double *p) { return *p; }                                           \
    static inline void P##_acc_store(double *p, double a) { *p = a; }                                           \
    static inline double P##_acc_add(double a, E v) { return a + (double)v; }                                   \
    static inline int64_t P##_tload_i64(const int64_t *p) { return *p; }                                        \
    static inline int64_t P##_tload_i32(const int32_t *p) { return *p; }                                        \
    static inline int64_t P##_tload_u8(const uint8_t *p) { return *p; }                                         \
    static inline int64_t P##_kofs(size_t ks)                                                                   \
    {                                                                                                           \
        (void)ks;                                                                                               \
        return 0;                                                                                               \
    }                                                                                                           \
    static inline unsigned P##_tbad(int64_t t, size_t c, int64_t ign)                                           \
    {                                                                                                           \
        return !nllk_nll_is_ignored(t, ign) && !nllk_nll_in_range(t, c);                                        \
    }                                                                                                           \
    static inline unsigned P##_tvalid(int64_t t, int64_t ign) { return !nllk_nll_is_ignored(t, ign); }          \
    static inline int64_t P##_toff(int64_t t, int64_t kofs, size_t cs)                                          \
    {                                                                                                           \
        return (int64_t)((uint64_t)kofs + (uint64_t)t * (uint64_t)cs);                                          \
    }                                                                                                           \
    static inline E P##_gather(const E *base, int64_t off, unsigned m) { return m ? base[off] : (E)0; }         \
    static inline void P##_scatter(E *base, int64_t off, unsigned m, E v)                                       \
    {                                                                                                           \
        if (m)                                                                                                  \
            base[off] = v;                                                                                      \
    }                                                                                                           \
    static inline E P##_mzero(unsigned m, E v) { return m ? v : (E)0; }

NLLK_SCALAR_MAP(nv32, float, NLLK_SLEEF1(expf1), NLLK_SLEEF1(logf1))
NLLK_SCALAR_MAP(nv64, double, NLLK_SLEEF1(expd1), NLLK_SLEEF1(logd1))

static void nv_zero_fill(void *p, size_t bytes)
{
    if (bytes)
        memset(p, 0, bytes);
}

#endif
