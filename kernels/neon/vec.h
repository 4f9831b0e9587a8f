/* The AArch64 Advanced SIMD vector map: float x 4, double x 2; SLEEF's u10advsimd exp/log (FMA variants).
 * The operations: kernels/common/vec_ops.h. NEON has no gather or masked load: gathers and scatters are lane
 * loads/stores of the valid lanes only, and tails go through a small buffer (nothing outside the tail is read or
 * written). */
#ifndef NLLK_KERNELS_NEON_VEC_H
#define NLLK_KERNELS_NEON_VEC_H

#include <arm_neon.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/vec_ops.h"

static inline unsigned nv_bits64x2(uint64x2_t m) /* bit i = lane i's mask */
{
    return (unsigned)(vgetq_lane_u64(m, 0) & 1u) | (unsigned)(vgetq_lane_u64(m, 1) & 1u) << 1;
}
static inline unsigned nv_t2_bad(int64x2_t t, size_t c, int64_t ign)
{
    const uint64x2_t eq = vceqq_s64(t, vdupq_n_s64(ign));
    const uint64x2_t lt = vcltq_u64(vreinterpretq_u64_s64(t), vdupq_n_u64((uint64_t)c));
    return ~nv_bits64x2(vorrq_u64(eq, lt)) & 3u;
}
static inline unsigned nv_t2_valid(int64x2_t t, int64_t ign) { return ~nv_bits64x2(vceqq_s64(t, vdupq_n_s64(ign))) & 3u; }
static inline int64x2_t nv_t2_off(int64x2_t t, int64x2_t kofs, size_t cs)
{
    if (cs == 1)
        return vaddq_s64(kofs, t);
    const uint64_t a = (uint64_t)vgetq_lane_s64(t, 0) * cs, b = (uint64_t)vgetq_lane_s64(t, 1) * cs;
    return vaddq_s64(kofs, vreinterpretq_s64_u64(vcombine_u64(vcreate_u64(a), vcreate_u64(b))));
}
static inline int64x2_t nv_t2_kofs(size_t ks, size_t first)
{
    return vreinterpretq_s64_u64(vcombine_u64(vcreate_u64((uint64_t)(first * ks)), vcreate_u64((uint64_t)((first + 1) * ks))));
}

#if defined(NLLK_DTYPE_F32)
/* ---- float x 4 -------------------------------------------------------------------------------------------- */
#define VW 4
typedef float elem_t;
typedef uint32x4_t vmask_t;
typedef float32x4_t vec_t;
typedef struct { float64x2_t lo, hi; } vacc_t;
typedef struct { int64x2_t lo, hi; } vidx_t;

static inline float32x4_t v_add(float32x4_t a, float32x4_t b) { return vaddq_f32(a, b); }
static inline float32x4_t v_sub(float32x4_t a, float32x4_t b) { return vsubq_f32(a, b); }
static inline float32x4_t v_mul(float32x4_t a, float32x4_t b) { return vmulq_f32(a, b); }
static inline float32x4_t v_div(float32x4_t a, float32x4_t b) { return vdivq_f32(a, b); }
static inline float32x4_t v_neg(float32x4_t a) { return vnegq_f32(a); }
static inline float32x4_t v_exp(float32x4_t a) { return Sleef_expf4_u10advsimd(a); }
static inline float32x4_t v_log(float32x4_t a) { return Sleef_logf4_u10advsimd(a); }
static inline float32x4_t v_set1(double a) { return vdupq_n_f32((float)a); }
static inline uint32x4_t v_le(float32x4_t a, float32x4_t b) { return vcleq_f32(a, b); }
static inline float32x4_t v_select(uint32x4_t m, float32x4_t a, float32x4_t b) { return vbslq_f32(m, a, b); }
static inline float32x4_t v_load(const float *p) { return vld1q_f32(p); }
static inline float32x4_t v_load_n(const float *p, size_t m)
{
    float b[4] = {0, 0, 0, 0};
    memcpy(b, p, m * sizeof(float));
    return vld1q_f32(b);
}
static inline void v_store(float *p, float32x4_t v) { vst1q_f32(p, v); }
static inline void v_store_n(float *p, float32x4_t v, size_t m)
{
    float b[4];
    vst1q_f32(b, v);
    memcpy(p, b, m * sizeof(float));
}
static inline uint32x4_t nv_lanes_lt32(size_t m)
{
    const uint32_t iota[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(iota), vdupq_n_u32((uint32_t)m));
}
static inline uint32x4_t nv_bits32(unsigned m)
{
    const uint32_t b[4] = {1, 2, 4, 8};
    return vtstq_u32(vdupq_n_u32(m), vld1q_u32(b));
}
static inline vacc_t v_acc_zero(void) { return (vacc_t){vdupq_n_f64(0), vdupq_n_f64(0)}; }
static inline vacc_t v_acc_load(const double *p) { return (vacc_t){vld1q_f64(p), vld1q_f64(p + 2)}; }
static inline void v_acc_store(double *p, vacc_t a)
{
    vst1q_f64(p, a.lo);
    vst1q_f64(p + 2, a.hi);
}
static inline vacc_t v_acc_add(vacc_t a, float32x4_t v)
{
    a.lo = vaddq_f64(a.lo, vcvt_f64_f32(vget_low_f32(v)));
    a.hi = vaddq_f64(a.hi, vcvt_high_f64_f32(v));
    return a;
}
static inline vidx_t v_tload_i64(const int64_t *p) { return (vidx_t){vld1q_s64(p), vld1q_s64(p + 2)}; }
static inline vidx_t v_tload_i32(const int32_t *p)
{
    const int32x4_t v = vld1q_s32(p);
    return (vidx_t){vmovl_s32(vget_low_s32(v)), vmovl_high_s32(v)};
}
static inline vidx_t v_tload_u8(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4);
    const uint16x8_t h = vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(w)));
    const uint32x4_t s = vmovl_u16(vget_low_u16(h));
    return (vidx_t){vreinterpretq_s64_u64(vmovl_u32(vget_low_u32(s))), vreinterpretq_s64_u64(vmovl_high_u32(s))};
}
static inline vidx_t v_kofs(size_t ks) { return (vidx_t){nv_t2_kofs(ks, 0), nv_t2_kofs(ks, 2)}; }
static inline unsigned v_tbad(vidx_t t, size_t c, int64_t ign) { return nv_t2_bad(t.lo, c, ign) | nv_t2_bad(t.hi, c, ign) << 2; }
static inline unsigned v_tvalid(vidx_t t, int64_t ign) { return nv_t2_valid(t.lo, ign) | nv_t2_valid(t.hi, ign) << 2; }
static inline vidx_t v_toff(vidx_t t, vidx_t kofs, size_t cs)
{
    return (vidx_t){nv_t2_off(t.lo, kofs.lo, cs), nv_t2_off(t.hi, kofs.hi, cs)};
}
static inline float32x4_t v_gather(const float *base, vidx_t off, unsigned m)
{
    float32x4_t v = vdupq_n_f32(0);
    if (m & 1)
        v = vld1q_lane_f32(base + vgetq_lane_s64(off.lo, 0), v, 0);
    if (m & 2)
        v = vld1q_lane_f32(base + vgetq_lane_s64(off.lo, 1), v, 1);
    if (m & 4)
        v = vld1q_lane_f32(base + vgetq_lane_s64(off.hi, 0), v, 2);
    if (m & 8)
        v = vld1q_lane_f32(base + vgetq_lane_s64(off.hi, 1), v, 3);
    return v;
}
static inline void v_scatter(float *base, vidx_t off, unsigned m, float32x4_t v)
{
    if (m & 1)
        vst1q_lane_f32(base + vgetq_lane_s64(off.lo, 0), v, 0);
    if (m & 2)
        vst1q_lane_f32(base + vgetq_lane_s64(off.lo, 1), v, 1);
    if (m & 4)
        vst1q_lane_f32(base + vgetq_lane_s64(off.hi, 0), v, 2);
    if (m & 8)
        vst1q_lane_f32(base + vgetq_lane_s64(off.hi, 1), v, 3);
}
static inline float32x4_t v_mzero(unsigned m, float32x4_t v) { return vbslq_f32(nv_bits32(m), v, vdupq_n_f32(0)); }
static inline float32x4_t v_tsel(vidx_t t, int64_t cls, unsigned m, float32x4_t v)
{
    const int64x2_t c = vdupq_n_s64(cls);
    const uint32x4_t eq = vcombine_u32(vmovn_u64(vceqq_s64(t.lo, c)), vmovn_u64(vceqq_s64(t.hi, c)));
    return vbslq_f32(vandq_u32(eq, nv_bits32(m)), v, vdupq_n_f32(0));
}
typedef int32x4_t vtn_t;
static inline int32x4_t v_tnarrow(vidx_t t, unsigned m)
{
    return vbslq_s32(nv_bits32(m), vcombine_s32(vmovn_s64(t.lo), vmovn_s64(t.hi)), vdupq_n_s32(-1));
}
static inline float32x4_t v_tnsel(int32x4_t n, int32_t cls, float32x4_t v)
{
    return vbslq_f32(vceqq_s32(n, vdupq_n_s32(cls)), v, vdupq_n_f32(0));
}
static inline float32x4_t v_tnpick(int32x4_t n, int32_t cls, float32x4_t v, float32x4_t a)
{
    return vbslq_f32(vceqq_s32(n, vdupq_n_s32(cls)), v, a);
}
static inline void v_stream(float *p, float32x4_t v) /* STNP: a non-temporal store of the two halves */
{
    __asm__ volatile("stnp %d1, %d2, [%0]" : : "r"(p), "w"(vget_low_f32(v)), "w"(vget_high_f32(v)) : "memory");
}

#else
/* ---- double x 2 ------------------------------------------------------------------------------------------- */
#define VW 2
typedef double elem_t;
typedef uint64x2_t vmask_t;
typedef float64x2_t vec_t;
typedef float64x2_t vacc_t;
typedef int64x2_t vidx_t;

static inline float64x2_t v_add(float64x2_t a, float64x2_t b) { return vaddq_f64(a, b); }
static inline float64x2_t v_sub(float64x2_t a, float64x2_t b) { return vsubq_f64(a, b); }
static inline float64x2_t v_mul(float64x2_t a, float64x2_t b) { return vmulq_f64(a, b); }
static inline float64x2_t v_div(float64x2_t a, float64x2_t b) { return vdivq_f64(a, b); }
static inline float64x2_t v_neg(float64x2_t a) { return vnegq_f64(a); }
static inline float64x2_t v_exp(float64x2_t a) { return Sleef_expd2_u10advsimd(a); }
static inline float64x2_t v_log(float64x2_t a) { return Sleef_logd2_u10advsimd(a); }
static inline float64x2_t v_set1(double a) { return vdupq_n_f64(a); }
static inline uint64x2_t v_le(float64x2_t a, float64x2_t b) { return vcleq_f64(a, b); }
static inline float64x2_t v_select(uint64x2_t m, float64x2_t a, float64x2_t b) { return vbslq_f64(m, a, b); }
static inline float64x2_t v_load(const double *p) { return vld1q_f64(p); }
static inline float64x2_t v_load_n(const double *p, size_t m)
{
    double b[2] = {0, 0};
    memcpy(b, p, m * sizeof(double));
    return vld1q_f64(b);
}
static inline void v_store(double *p, float64x2_t v) { vst1q_f64(p, v); }
static inline void v_store_n(double *p, float64x2_t v, size_t m)
{
    double b[2];
    vst1q_f64(b, v);
    memcpy(p, b, m * sizeof(double));
}
static inline uint64x2_t nv_bits64(unsigned m)
{
    const uint64_t b[2] = {1, 2};
    return vtstq_u64(vdupq_n_u64(m), vld1q_u64(b));
}
static inline float64x2_t v_acc_zero(void) { return vdupq_n_f64(0); }
static inline float64x2_t v_acc_load(const double *p) { return vld1q_f64(p); }
static inline void v_acc_store(double *p, float64x2_t a) { vst1q_f64(p, a); }
static inline float64x2_t v_acc_add(float64x2_t a, float64x2_t v) { return vaddq_f64(a, v); }
static inline int64x2_t v_tload_i64(const int64_t *p) { return vld1q_s64(p); }
static inline int64x2_t v_tload_i32(const int32_t *p) { return vmovl_s32(vld1_s32(p)); }
static inline int64x2_t v_tload_u8(const uint8_t *p)
{
    return vreinterpretq_s64_u64(vcombine_u64(vcreate_u64(p[0]), vcreate_u64(p[1])));
}
static inline int64x2_t v_kofs(size_t ks) { return nv_t2_kofs(ks, 0); }
static inline unsigned v_tbad(int64x2_t t, size_t c, int64_t ign) { return nv_t2_bad(t, c, ign); }
static inline unsigned v_tvalid(int64x2_t t, int64_t ign) { return nv_t2_valid(t, ign); }
static inline int64x2_t v_toff(int64x2_t t, int64x2_t kofs, size_t cs) { return nv_t2_off(t, kofs, cs); }
static inline float64x2_t v_gather(const double *base, int64x2_t off, unsigned m)
{
    float64x2_t v = vdupq_n_f64(0);
    if (m & 1)
        v = vld1q_lane_f64(base + vgetq_lane_s64(off, 0), v, 0);
    if (m & 2)
        v = vld1q_lane_f64(base + vgetq_lane_s64(off, 1), v, 1);
    return v;
}
static inline void v_scatter(double *base, int64x2_t off, unsigned m, float64x2_t v)
{
    if (m & 1)
        vst1q_lane_f64(base + vgetq_lane_s64(off, 0), v, 0);
    if (m & 2)
        vst1q_lane_f64(base + vgetq_lane_s64(off, 1), v, 1);
}
static inline float64x2_t v_mzero(unsigned m, float64x2_t v) { return vbslq_f64(nv_bits64(m), v, vdupq_n_f64(0)); }
static inline float64x2_t v_tsel(int64x2_t t, int64_t cls, unsigned m, float64x2_t v)
{
    return vbslq_f64(vandq_u64(vceqq_s64(t, vdupq_n_s64(cls)), nv_bits64(m)), v, vdupq_n_f64(0));
}
typedef int32x2_t vtn_t;
static inline int32x2_t v_tnarrow(int64x2_t t, unsigned m)
{
    return vbsl_s32(vmovn_u64(nv_bits64(m)), vmovn_s64(t), vdup_n_s32(-1));
}
static inline float64x2_t v_tnsel(int32x2_t n, int32_t cls, float64x2_t v)
{
    const uint64x2_t eq = vreinterpretq_u64_s64(vmovl_s32(vreinterpret_s32_u32(vceq_s32(n, vdup_n_s32(cls)))));
    return vbslq_f64(eq, v, vdupq_n_f64(0));
}
static inline float64x2_t v_tnpick(int32x2_t n, int32_t cls, float64x2_t v, float64x2_t a)
{
    const uint64x2_t eq = vreinterpretq_u64_s64(vmovl_s32(vreinterpret_s32_u32(vceq_s32(n, vdup_n_s32(cls)))));
    return vbslq_f64(eq, v, a);
}
static inline void v_stream(double *p, float64x2_t v) /* STNP: a non-temporal store of the two lanes */
{
    __asm__ volatile("stnp %d1, %d2, [%0]" : : "r"(p), "w"(vget_low_f64(v)), "w"(vget_high_f64(v)) : "memory");
}

#endif

static inline void v_stream_fence(void) { __asm__ volatile("dmb ishst" : : : "memory"); }

/* memset on AArch64 zero-fills with DC ZVA (whole cache lines) for large sizes. */
static inline void v_zero_fill(void *p, size_t bytes)
{
    if (bytes)
        memset(p, 0, bytes);
}

/* 16-bit storage ------------------------------------------------------------------------------------------------
 * With -DNLLK_DTYPE_BF16 or -DNLLK_DTYPE_F16 (kernels/common/kernels.c selects the float section above for the
 * arithmetic): the storage operations of kernels/common/storage.h on uint16_t, lane by lane through
 * kernels/common/half.h (exact to float; rounded once, to nearest even, to 16 bits), the same bits as every map.
 * (NEON's fcvt/bfcvt were not used: this map runs under qemu only here, where their speed cannot be measured.) */
#if defined(NLLK_STORAGE_16)
#  include "../common/half.h"
static inline float32x4_t nv_h_widen(const uint16_t *h, size_t m) /* lanes >= m read +0 */
{
    float f[4];
    for (size_t i = 0; i < 4; i++)
        f[i] = i < m ? nllk_h_to_f32(h[i]) : 0.0f;
    return vld1q_f32(f);
}
static inline void nv_h_narrow(uint16_t *h, float32x4_t v, size_t m) /* lanes < m written */
{
    float f[4];
    vst1q_f32(f, v);
    for (size_t i = 0; i < m; i++)
        h[i] = nllk_f32_to_h(f[i]);
}
/* tab[p[i]] for 4 (m) stored elements: a float table indexed by their 16-bit patterns; padding lanes read +0 */
static inline float32x4_t v_h_lookup_n(const float *tab, const uint16_t *p, size_t m)
{
    float f[4];
    for (size_t i = 0; i < 4; i++)
        f[i] = i < m ? tab[p[i]] : 0.0f;
    return vld1q_f32(f);
}
static inline float32x4_t v_h_lookup(const float *tab, const uint16_t *p) { return v_h_lookup_n(tab, p, 4); }
static inline float32x4_t v_h_load(const uint16_t *p) { return nv_h_widen(p, 4); }
static inline float32x4_t v_h_load_n(const uint16_t *p, size_t m) { return nv_h_widen(p, m); }
static inline void v_h_store(uint16_t *p, float32x4_t v) { nv_h_narrow(p, v, 4); }
static inline void v_h_store_n(uint16_t *p, float32x4_t v, size_t m) { nv_h_narrow(p, v, m); }
static inline void v_h_stream(uint16_t *p, float32x4_t v) { nv_h_narrow(p, v, 4); }
static inline float32x4_t v_h_gather(const uint16_t *base, vidx_t off, unsigned m)
{
    const int64_t o[4] = {vgetq_lane_s64(off.lo, 0), vgetq_lane_s64(off.lo, 1), vgetq_lane_s64(off.hi, 0),
                          vgetq_lane_s64(off.hi, 1)};
    float f[4];
    for (int i = 0; i < 4; i++)
        f[i] = m >> i & 1 ? nllk_h_to_f32(base[o[i]]) : 0.0f;
    return vld1q_f32(f);
}
static inline void v_h_scatter(uint16_t *base, vidx_t off, unsigned m, float32x4_t v)
{
    const int64_t o[4] = {vgetq_lane_s64(off.lo, 0), vgetq_lane_s64(off.lo, 1), vgetq_lane_s64(off.hi, 0),
                          vgetq_lane_s64(off.hi, 1)};
    float f[4];
    vst1q_f32(f, v);
    for (int i = 0; i < 4; i++)
        if (m >> i & 1)
            base[o[i]] = nllk_f32_to_h(f[i]);
}
#endif

/* cross-entropy */
/* v_exp_ce(a): the cross-entropy's exp (nllk.h, "Cross-entropy"): f32 Cephes-style, every step one IEEE operation
 * with explicit FMAs, so every map gives the same bits (checked on all 2^32 inputs, AVX-512 against scalar);
 * within 1.02 ulp of exp for results >= 2^-126; f64 is v_exp. See kernels/scalar/vec.h for the definition. */
#if defined(NLLK_DTYPE_F32)
static inline float32x4_t nv_pow2i(int32x4_t k) /* 2^k for k in [-126, 127] */
{
    return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(k, vdupq_n_s32(127)), 23));
}
static inline float32x4_t v_exp_ce(float32x4_t a)
{
    /* the clamps as compare + select (vmaxq/vminq's NaN rule differs from the definition's) */
    float32x4_t x = vbslq_f32(vcltq_f32(a, vdupq_n_f32(-104.0f)), vdupq_n_f32(-104.0f), a);
    x = vbslq_f32(vcltq_f32(vdupq_n_f32(89.0f), x), vdupq_n_f32(89.0f), x);
    const float32x4_t n = vsubq_f32(vfmaq_f32(vdupq_n_f32(12582912.0f), x, vdupq_n_f32(1.44269504088896341f)),
                                    vdupq_n_f32(12582912.0f));
    float32x4_t r = vfmaq_f32(x, n, vdupq_n_f32(-0.693359375f));
    r = vfmaq_f32(r, n, vdupq_n_f32(2.12194440e-4f));
    float32x4_t q = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), vdupq_n_f32(1.9875691500e-4f), r);
    q = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), q, r);
    q = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), q, r);
    q = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), q, r);
    q = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), q, r);
    const float32x4_t y = vaddq_f32(vfmaq_f32(r, q, vmulq_f32(r, r)), vdupq_n_f32(1.0f));
    /* NaN lanes convert to 0 (as the scalar map) */
    const int32x4_t k = vcvtnq_s32_f32(n), k1 = vshrq_n_s32(k, 1);
    return vmulq_f32(vmulq_f32(y, nv_pow2i(k1)), nv_pow2i(vsubq_s32(k, k1)));
}
#else
static inline float64x2_t v_exp_ce(float64x2_t a) { return v_exp(a); }
#endif

/* N-D NLL */
/* v_mblend(bits, a, b): lane i of a where bit i is set, else of b */
#if defined(NLLK_DTYPE_F32)
static inline float32x4_t v_mblend(unsigned m, float32x4_t a, float32x4_t b) { return vbslq_f32(nv_bits32(m), a, b); }
#else
static inline float64x2_t v_mblend(unsigned m, float64x2_t a, float64x2_t b) { return vbslq_f64(nv_bits64(m), a, b); }
#endif

/* ce rows (stop 23) */
/* v_max_num(m, x): per lane x > m ? x : m (a NaN x leaves m; compare + select: vmaxnmq's NaN rule differs for
 * signalling NaNs). v_exp_ce_le0(a): v_exp_ce(a) for a <= 0 or NaN (other arguments: unspecified; here v_exp_ce).
 * v_h_max2(m, p): m with the 2*VW stored values from p folded in by v_max_num (lanes in any order). */
#if defined(NLLK_DTYPE_F32)
static inline float32x4_t v_max_num(float32x4_t m, float32x4_t x) { return vbslq_f32(vcgtq_f32(x, m), x, m); }
#else
static inline float64x2_t v_max_num(float64x2_t m, float64x2_t x) { return vbslq_f64(vcgtq_f64(x, m), x, m); }
#endif
static inline vec_t v_exp_ce_le0(vec_t a) { return v_exp_ce(a); }
#if defined(NLLK_STORAGE_16)
static inline vec_t v_h_max2(vec_t m, const uint16_t *p)
{
    return v_max_num(v_max_num(m, v_h_load(p)), v_h_load(p + VW));
}
#endif

/* ce planes (stop 23) */
/* v_acc_sum(a, b): lane i a[i] + b[i] (two sum lanes combined, as the fold of the canonical lanes) */
#if defined(NLLK_DTYPE_F32)
static inline vacc_t v_acc_sum(vacc_t a, vacc_t b) { return (vacc_t){vaddq_f64(a.lo, b.lo), vaddq_f64(a.hi, b.hi)}; }
#else
static inline float64x2_t v_acc_sum(float64x2_t a, float64x2_t b) { return vaddq_f64(a, b); }
#endif

/* ce logsums (stop 25) */
/* v_acc_split(a, &hi, &lo): a as elem_t, and its relative residual (+0 where exact): vec_ops.h */
#if defined(NLLK_DTYPE_F32)
static inline float32x2_t nv_split2(float64x2_t a, float32x2_t *lo)
{
    const float32x2_t hi = vcvt_f32_f64(a);
    const float64x2_t hd = vcvt_f64_f32(hi);
    const uint64x2_t eq = vceqq_f64(a, hd);
    *lo = vcvt_f32_f64(vbslq_f64(eq, vdupq_n_f64(0), vdivq_f64(vsubq_f64(a, hd), hd)));
    return hi;
}
static inline void v_acc_split(vacc_t a, float32x4_t *hi, float32x4_t *lo)
{
    float32x2_t l0, l1;
    const float32x2_t h0 = nv_split2(a.lo, &l0), h1 = nv_split2(a.hi, &l1);
    *hi = vcombine_f32(h0, h1);
    *lo = vcombine_f32(l0, l1);
}
#else
static inline void v_acc_split(float64x2_t a, float64x2_t *hi, float64x2_t *lo)
{
    *hi = a;
    *lo = vbslq_f64(vceqq_f64(a, a), vdupq_n_f64(0), vdivq_f64(vsubq_f64(a, a), a));
}
#endif

/* ce planes gradient (stop 26) */
/* v_acc_rdiv(a, s): (elem_t)((double)a / s), one division in double rounded once: vec_ops.h */
#if defined(NLLK_DTYPE_F32)
static inline float32x4_t v_acc_rdiv(float32x4_t a, vacc_t s)
{
    const float32x2_t lo = vcvt_f32_f64(vdivq_f64(vcvt_f64_f32(vget_low_f32(a)), s.lo));
    return vcombine_f32(lo, vcvt_f32_f64(vdivq_f64(vcvt_high_f64_f32(a), s.hi)));
}
#else
static inline float64x2_t v_acc_rdiv(float64x2_t a, float64x2_t s) { return vdivq_f64(a, s); }
#endif

#endif
