/* The scalar vector map: one lane (VW = 1), plain C. The operations: kernels/common/vec_ops.h.
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
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#  include <emmintrin.h>
#endif

#include "../common/nll_target.h"
#include "../common/vec_ops.h"

#if defined(__FMA__) || defined(__aarch64__)
#  define NV_SLEEF(fn) Sleef_##fn##_u10purecfma
#else
#  define NV_SLEEF(fn) Sleef_##fn##_u10purec
#endif

#define VW 1
#if defined(NLLK_DTYPE_F32)
typedef float elem_t;
static inline float v_exp(float a) { return NV_SLEEF(expf1)(a); }
static inline float v_log(float a) { return NV_SLEEF(logf1)(a); }
#else
typedef double elem_t;
static inline double v_exp(double a) { return NV_SLEEF(expd1)(a); }
static inline double v_log(double a) { return NV_SLEEF(logd1)(a); }
#endif
typedef elem_t vec_t;
typedef double vacc_t;
typedef int64_t vidx_t;
typedef int vmask_t;

static inline vec_t v_add(vec_t a, vec_t b) { return a + b; }
static inline vec_t v_sub(vec_t a, vec_t b) { return a - b; }
static inline vec_t v_mul(vec_t a, vec_t b) { return a * b; }
static inline vec_t v_div(vec_t a, vec_t b) { return a / b; }
static inline vec_t v_neg(vec_t a) { return -a; }
static inline vec_t v_set1(double a) { return (elem_t)a; }
static inline vmask_t v_le(vec_t a, vec_t b) { return a <= b; }
static inline vec_t v_select(vmask_t m, vec_t a, vec_t b) { return m ? a : b; }
static inline vec_t v_mzero(unsigned bits, vec_t v) { return bits & 1 ? v : (elem_t)0; }

static inline vec_t v_load(const elem_t *p) { return *p; }
static inline vec_t v_load_n(const elem_t *p, size_t m) { return m ? *p : (elem_t)0; }
static inline void v_store(elem_t *p, vec_t v) { *p = v; }
static inline void v_store_n(elem_t *p, vec_t v, size_t m)
{
    if (m)
        *p = v;
}

static inline vacc_t v_acc_zero(void) { return 0.0; }
static inline vacc_t v_acc_load(const double *p) { return *p; }
static inline void v_acc_store(double *p, vacc_t a) { *p = a; }
static inline vacc_t v_acc_add(vacc_t a, vec_t v) { return a + (double)v; }

static inline vidx_t v_tload_i64(const int64_t *p) { return *p; }
static inline vidx_t v_tload_i32(const int32_t *p) { return *p; }
static inline vidx_t v_tload_u8(const uint8_t *p) { return *p; }
static inline vidx_t v_kofs(size_t ks)
{
    (void)ks;
    return 0;
}
static inline unsigned v_tbad(vidx_t t, size_t c, int64_t ign)
{
    return !nllk_nll_is_ignored(t, ign) && !nllk_nll_in_range(t, c);
}
static inline unsigned v_tvalid(vidx_t t, int64_t ign) { return !nllk_nll_is_ignored(t, ign); }
static inline vidx_t v_toff(vidx_t t, vidx_t kofs, size_t cs)
{
    return (int64_t)((uint64_t)kofs + (uint64_t)t * (uint64_t)cs);
}
static inline vec_t v_gather(const elem_t *base, vidx_t off, unsigned bits) { return bits & 1 ? base[off] : (elem_t)0; }
static inline void v_scatter(elem_t *base, vidx_t off, unsigned bits, vec_t v)
{
    if (bits & 1)
        base[off] = v;
}

static inline vec_t v_tsel(vidx_t t, int64_t cls, unsigned bits, vec_t v)
{
    return (bits & 1) && t == cls ? v : (elem_t)0;
}

typedef int32_t vtn_t;
static inline vtn_t v_tnarrow(vidx_t t, unsigned bits) { return bits & 1 ? (int32_t)(uint32_t)(uint64_t)t : -1; }
static inline vec_t v_tnsel(vtn_t n, int32_t cls, vec_t v) { return n == cls ? v : (elem_t)0; }
static inline vec_t v_tnpick(vtn_t n, int32_t cls, vec_t v, vec_t a) { return n == cls ? v : a; }

/* x86-64 has MOVNTI (SSE2, every x86-64 CPU): 4- and 8-byte streaming stores; elsewhere an ordinary store. */
static inline void v_stream(elem_t *p, vec_t v)
{
#if defined(__x86_64__)
#  if defined(NLLK_DTYPE_F32)
    int b;
    memcpy(&b, &v, sizeof b);
    _mm_stream_si32((int *)(void *)p, b);
#  else
    long long b;
    memcpy(&b, &v, sizeof b);
    _mm_stream_si64((long long *)(void *)p, b);
#  endif
#else
    *p = v;
#endif
}
static inline void v_stream_fence(void)
{
#if defined(__x86_64__)
    _mm_sfence();
#endif
}

static inline void v_zero_fill(void *p, size_t bytes)
{
    if (bytes)
        memset(p, 0, bytes);
}

/* 16-bit storage ------------------------------------------------------------------------------------------------
 * With -DNLLK_DTYPE_BF16 or -DNLLK_DTYPE_F16 (kernels/common/kernels.c selects the float section above for the
 * arithmetic): the storage operations of kernels/common/storage.h on uint16_t, converting with
 * kernels/common/half.h (exact to float; rounded once, to nearest even, to 16 bits). */
#if defined(NLLK_STORAGE_16)
#  include "../common/half.h"
/* tab[*p]: a float table indexed by the 16-bit pattern (m = 0: +0) */
static inline vec_t v_h_lookup(const float *tab, const uint16_t *p) { return tab[*p]; }
static inline vec_t v_h_lookup_n(const float *tab, const uint16_t *p, size_t m) { return m ? tab[*p] : 0.0f; }
static inline vec_t v_h_load(const uint16_t *p) { return nllk_h_to_f32(*p); }
static inline vec_t v_h_load_n(const uint16_t *p, size_t m) { return m ? nllk_h_to_f32(*p) : 0.0f; }
static inline void v_h_store(uint16_t *p, vec_t v) { *p = nllk_f32_to_h(v); }
static inline void v_h_store_n(uint16_t *p, vec_t v, size_t m)
{
    if (m)
        *p = nllk_f32_to_h(v);
}
static inline vec_t v_h_gather(const uint16_t *base, vidx_t off, unsigned bits)
{
    return bits & 1 ? nllk_h_to_f32(base[off]) : 0.0f;
}
static inline void v_h_scatter(uint16_t *base, vidx_t off, unsigned bits, vec_t v)
{
    if (bits & 1)
        base[off] = nllk_f32_to_h(v);
}
static inline void v_h_stream(uint16_t *p, vec_t v) { *p = nllk_f32_to_h(v); } /* no 2-byte streaming store */
#endif

/* cross-entropy */
/* v_exp_ce(a): the cross-entropy's exp (nllk.h, "Cross-entropy"): f32 Cephes-style, every step one IEEE operation
 * with explicit FMAs, so every map gives the same bits (checked on all 2^32 inputs, AVX-512 against scalar);
 * within 1.02 ulp of exp for results >= 2^-126; f64 is v_exp. */
#if defined(NLLK_DTYPE_F32)
static inline float nv_pow2i(int32_t k) /* 2^k for k in [-126, 127] */
{
    const uint32_t b = (uint32_t)(k + 127) << 23;
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}
/* The definition (the other maps do the same per lane):
 *   a clamped to [-104, 89] (a < -104 gives -104, a > 89 gives 89; NaN stays NaN);
 *   n = fma(a, log2(e), 1.5*2^23) - 1.5*2^23 (round to nearest integer), r = fma(n, -C1, a), r = fma(n, -C2, r);
 *   q = Horner with fma of the five Cephes coefficients; y = fma(q, r*r, r) + 1;
 *   result = y * 2^n rounded once (y * 2^(n >> 1) is exact, then * 2^(n - (n >> 1)) rounds: denormals and
 *   overflow to +Inf correct). */
static inline float v_exp_ce(float a)
{
    float x = a < -104.0f ? -104.0f : a;
    x = 89.0f < x ? 89.0f : x;
    const float n = fmaf(x, 1.44269504088896341f, 12582912.0f) - 12582912.0f;
    float r = fmaf(n, -0.693359375f, x);
    r = fmaf(n, 2.12194440e-4f, r);
    float q = fmaf(1.9875691500e-4f, r, 1.3981999507e-3f);
    q = fmaf(q, r, 8.3334519073e-3f);
    q = fmaf(q, r, 4.1665795894e-2f);
    q = fmaf(q, r, 1.6666665459e-1f);
    q = fmaf(q, r, 5.0000001201e-1f);
    const float y = fmaf(q, r * r, r) + 1.0f;
    const int32_t k = n == n ? (int32_t)n : 0, k1 = k >> 1; /* NaN: y is NaN, the scale 1 */
    return y * nv_pow2i(k1) * nv_pow2i(k - k1);
}
#else
static inline double v_exp_ce(double a) { return v_exp(a); }
#endif

/* N-D NLL */
/* v_mblend(bits, a, b): lane i of a where bit i is set, else of b */
static inline vec_t v_mblend(unsigned m, vec_t a, vec_t b) { return m & 1 ? a : b; }

/* ce rows (stop 23) */
/* v_max_num(m, x): x > m ? x : m (a NaN x leaves m). v_exp_ce_le0(a): v_exp_ce(a) for a <= 0 or NaN (other arguments:
 * unspecified; here v_exp_ce itself). v_h_max2(m, p): m with the 2*VW stored values from p folded in by v_max_num. */
static inline vec_t v_max_num(vec_t m, vec_t x) { return x > m ? x : m; }
static inline vec_t v_exp_ce_le0(vec_t a) { return v_exp_ce(a); }
#if defined(NLLK_STORAGE_16)
static inline vec_t v_h_max2(vec_t m, const uint16_t *p)
{
    return v_max_num(v_max_num(m, v_h_load(p)), v_h_load(p + 1));
}
#endif

/* ce planes (stop 23) */
/* v_acc_sum(a, b): lane i a[i] + b[i] (two sum lanes combined, as the fold of the canonical lanes) */
static inline vacc_t v_acc_sum(vacc_t a, vacc_t b) { return a + b; }

/* ce logsums (stop 25) */
/* v_acc_split(a, &hi, &lo): a as elem_t, and its relative residual (+0 where exact): vec_ops.h */
static inline void v_acc_split(vacc_t a, vec_t *hi, vec_t *lo)
{
    const elem_t h = (elem_t)a;
    const double hd = (double)h;
    *hi = h;
    *lo = a == hd ? (elem_t)0 : (elem_t)((a - hd) / hd);
}

/* ce planes gradient (stop 26) */
/* v_acc_rdiv(a, s): (elem_t)((double)a / s), one division in double rounded once: vec_ops.h */
static inline vec_t v_acc_rdiv(vec_t a, vacc_t s) { return (elem_t)((double)a / s); }

#endif
