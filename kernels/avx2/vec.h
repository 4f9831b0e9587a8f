/* The AVX2+FMA vector map (compiled with -mavx2 -mfma -mf16c): float x 8, double x 4; SLEEF's u10avx2 exp/log.
 * The operations: kernels/common/vec_ops.h. Targets are held as int64 lanes (__m256i x 2 for float, x 1 for
 * double); gathers use 64-bit indices with a lane mask, so masked lanes are never read. */
#ifndef NLLK_KERNELS_AVX2_VEC_H
#define NLLK_KERNELS_AVX2_VEC_H

#include <immintrin.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/vec_ops.h"

/* ---- helpers ---------------------------------------------------------------------------------------------- */
static inline __m256i nv_lanes_lt32(size_t m) /* 32-bit lanes i < m */
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)m), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline __m256i nv_lanes_lt64(size_t m) /* 64-bit lanes i < m */
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)m), _mm256_setr_epi64x(0, 1, 2, 3));
}
static inline __m256i nv_bits32(unsigned m) /* 32-bit lane i all-ones iff bit i of m */
{
    const __m256i b = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), b), b);
}
static inline __m256i nv_bits64(unsigned m) /* 64-bit lane i all-ones iff bit i of m */
{
    const __m256i b = _mm256_setr_epi64x(1, 2, 4, 8);
    return _mm256_cmpeq_epi64(_mm256_and_si256(_mm256_set1_epi64x((long long)m), b), b);
}
static inline __m128i nv_bits32x4(unsigned m)
{
    const __m128i b = _mm_setr_epi32(1, 2, 4, 8);
    return _mm_cmpeq_epi32(_mm_and_si128(_mm_set1_epi32((int)m), b), b);
}
static inline unsigned nv_movemask64(__m256i m) { return (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(m)); }

/* 64-bit target helpers on 4 lanes */
static inline __m256i nv_t4_sext32(__m128i v) { return _mm256_cvtepi32_epi64(v); }
static inline unsigned nv_t4_bad(__m256i t, size_t c, int64_t ign)
{
    const __m256i sign = _mm256_set1_epi64x(INT64_MIN);
    const __m256i eq = _mm256_cmpeq_epi64(t, _mm256_set1_epi64x(ign));
    /* unsigned t < c  <=>  (t ^ 2^63) < (c ^ 2^63) signed */
    const __m256i lt = _mm256_cmpgt_epi64(_mm256_xor_si256(_mm256_set1_epi64x((long long)c), sign),
                                          _mm256_xor_si256(t, sign));
    return ~nv_movemask64(_mm256_or_si256(eq, lt)) & 0xfu;
}
static inline unsigned nv_t4_valid(__m256i t, int64_t ign)
{
    return ~nv_movemask64(_mm256_cmpeq_epi64(t, _mm256_set1_epi64x(ign))) & 0xfu;
}
static inline __m256i nv_t4_off(__m256i t, __m256i kofs, size_t cs)
{
    if (cs == 1)
        return _mm256_add_epi64(kofs, t);
    /* 64 x 64 -> low 64 bits: lo*lo + ((hi*lo + lo*hi) << 32) */
    const __m256i b = _mm256_set1_epi64x((long long)cs);
    const __m256i lolo = _mm256_mul_epu32(t, b);
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(t, 32), b),
                                           _mm256_mul_epu32(t, _mm256_srli_epi64(b, 32)));
    return _mm256_add_epi64(kofs, _mm256_add_epi64(lolo, _mm256_slli_epi64(cross, 32)));
}
static inline __m256i nv_t4_kofs(size_t ks, size_t first)
{
    return _mm256_setr_epi64x((long long)(first * ks), (long long)((first + 1) * ks), (long long)((first + 2) * ks),
                              (long long)((first + 3) * ks));
}

#if defined(NLLK_DTYPE_F32)
/* ---- float x 8 -------------------------------------------------------------------------------------------- */
#define VW 8
typedef float elem_t;
typedef __m256 vmask_t;
typedef __m256 vec_t;
typedef struct { __m256d lo, hi; } vacc_t;
typedef struct { __m256i lo, hi; } vidx_t;

static inline __m256 v_add(__m256 a, __m256 b) { return _mm256_add_ps(a, b); }
static inline __m256 v_sub(__m256 a, __m256 b) { return _mm256_sub_ps(a, b); }
static inline __m256 v_mul(__m256 a, __m256 b) { return _mm256_mul_ps(a, b); }
static inline __m256 v_div(__m256 a, __m256 b) { return _mm256_div_ps(a, b); }
static inline __m256 v_neg(__m256 a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
/* Sleef_expf8_u10avx2 inline (SLEEF 3.5's xexpf with FMA: its operations, constants and order), so the kernels'
 * loops need no call: the same bits for all 2^32 inputs (checked exhaustively against the library function, NaN
 * payloads included; test_vec checks it against the scalar map's Sleef_expf1_u10purecfma). */
static inline __m256 nv_sleef_expf(__m256 d)
{
    const __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(d, _mm256_set1_ps(0x1.715476p+0f))); /* rint(d / log 2) */
    const __m256 qf = _mm256_cvtepi32_ps(q);
    __m256 s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-0x1.62e4p-1f), d);
    s = _mm256_fmadd_ps(qf, _mm256_set1_ps(-0x1.7f7d1cp-20f), s);
    __m256 u = _mm256_fmadd_ps(_mm256_set1_ps(0x1.a057b4p-13f), s, _mm256_set1_ps(0x1.6d2d92p-10f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0x1.11114cp-7f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0x1.5554f4p-5f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0x1.555556p-3f));
    u = _mm256_fmadd_ps(u, s, _mm256_set1_ps(0.5f));
    u = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(s, s), u, s), _mm256_set1_ps(1.0f));
    /* u * 2^q as u * 2^(q >> 1) * 2^(q - (q >> 1)); 0 below -104 (NaN kept), Inf above 100 */
    const __m256i q1 = _mm256_srai_epi32(q, 1), one = _mm256_set1_epi32(0x3f800000);
    u = _mm256_mul_ps(u, _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(q1, 23), one)));
    u = _mm256_mul_ps(u, _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(_mm256_sub_epi32(q, q1), 23), one)));
    u = _mm256_andnot_ps(_mm256_cmp_ps(d, _mm256_set1_ps(-104.0f), _CMP_LT_OS), u);
    return _mm256_blendv_ps(u, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(_mm256_set1_ps(100.0f), d, _CMP_LT_OS));
}
static inline __m256 v_exp(__m256 a) { return nv_sleef_expf(a); }
static inline __m256 v_log(__m256 a) { return Sleef_logf8_u10avx2(a); }
static inline __m256 v_set1(double a) { return _mm256_set1_ps((float)a); }
static inline __m256 v_le(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_LE_OQ); }
static inline __m256 v_select(__m256 m, __m256 a, __m256 b) { return _mm256_blendv_ps(b, a, m); }
static inline __m256 v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline __m256 v_load_n(const float *p, size_t m) { return _mm256_maskload_ps(p, nv_lanes_lt32(m)); }
static inline void v_store(float *p, __m256 v) { _mm256_storeu_ps(p, v); }
static inline void v_store_n(float *p, __m256 v, size_t m) { _mm256_maskstore_ps(p, nv_lanes_lt32(m), v); }
static inline vacc_t v_acc_zero(void) { return (vacc_t){_mm256_setzero_pd(), _mm256_setzero_pd()}; }
static inline vacc_t v_acc_load(const double *p) { return (vacc_t){_mm256_loadu_pd(p), _mm256_loadu_pd(p + 4)}; }
static inline void v_acc_store(double *p, vacc_t a)
{
    _mm256_storeu_pd(p, a.lo);
    _mm256_storeu_pd(p + 4, a.hi);
}
static inline vacc_t v_acc_add(vacc_t a, __m256 v)
{
    a.lo = _mm256_add_pd(a.lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    a.hi = _mm256_add_pd(a.hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    return a;
}
static inline vidx_t v_tload_i64(const int64_t *p)
{
    return (vidx_t){_mm256_loadu_si256((const __m256i *)(const void *)p),
                    _mm256_loadu_si256((const __m256i *)(const void *)(p + 4))};
}
static inline vidx_t v_tload_i32(const int32_t *p)
{
    const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    return (vidx_t){nv_t4_sext32(_mm256_castsi256_si128(v)), nv_t4_sext32(_mm256_extracti128_si256(v, 1))};
}
static inline vidx_t v_tload_u8(const uint8_t *p)
{
    int64_t w;
    memcpy(&w, p, 8);
    const __m128i b = _mm_cvtsi64_si128(w);
    return (vidx_t){_mm256_cvtepu8_epi64(b), _mm256_cvtepu8_epi64(_mm_srli_si128(b, 4))};
}
static inline vidx_t v_kofs(size_t ks) { return (vidx_t){nv_t4_kofs(ks, 0), nv_t4_kofs(ks, 4)}; }
static inline unsigned v_tbad(vidx_t t, size_t c, int64_t ign)
{
    return nv_t4_bad(t.lo, c, ign) | nv_t4_bad(t.hi, c, ign) << 4;
}
static inline unsigned v_tvalid(vidx_t t, int64_t ign)
{
    return nv_t4_valid(t.lo, ign) | nv_t4_valid(t.hi, ign) << 4;
}
static inline vidx_t v_toff(vidx_t t, vidx_t kofs, size_t cs)
{
    return (vidx_t){nv_t4_off(t.lo, kofs.lo, cs), nv_t4_off(t.hi, kofs.hi, cs)};
}
static inline __m256 v_gather(const float *base, vidx_t off, unsigned m)
{
    const __m128 lo = _mm256_mask_i64gather_ps(_mm_setzero_ps(), base, off.lo, _mm_castsi128_ps(nv_bits32x4(m)), 4);
    const __m128 hi =
        _mm256_mask_i64gather_ps(_mm_setzero_ps(), base, off.hi, _mm_castsi128_ps(nv_bits32x4(m >> 4)), 4);
    return _mm256_set_m128(hi, lo);
}
static inline void v_scatter(float *base, vidx_t off, unsigned m, __m256 v)
{
    float val[8];
    int64_t o[8];
    _mm256_storeu_ps(val, v);
    _mm256_storeu_si256((__m256i *)(void *)o, off.lo);
    _mm256_storeu_si256((__m256i *)(void *)(o + 4), off.hi);
    for (; m; m &= m - 1) {
        const int i = __builtin_ctz(m);
        base[o[i]] = val[i];
    }
}
static inline __m256 v_mzero(unsigned m, __m256 v) { return _mm256_and_ps(v, _mm256_castsi256_ps(nv_bits32(m))); }
static inline void v_stream(float *p, __m256 v) { _mm256_stream_ps(p, v); }
typedef __m256i vtn_t;
static inline __m256i v_tnarrow(vidx_t t, unsigned m)
{
    /* low halves: lo's at even 32-bit lanes, hi's (shifted up) at odd ones, then gathered in order */
    const __m256i ab = _mm256_blend_epi32(t.lo, _mm256_slli_epi64(t.hi, 32), 0xAA);
    const __m256i n = _mm256_permutevar8x32_epi32(ab, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    return _mm256_blendv_epi8(_mm256_set1_epi32(-1), n, nv_bits32(m));
}
static inline __m256 v_tnsel(__m256i n, int32_t cls, __m256 v)
{
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(n, _mm256_set1_epi32(cls))));
}
static inline __m256 v_tnpick(__m256i n, int32_t cls, __m256 v, __m256 a)
{
    return _mm256_blendv_ps(a, v, _mm256_castsi256_ps(_mm256_cmpeq_epi32(n, _mm256_set1_epi32(cls))));
}
static inline __m256 v_tsel(vidx_t t, int64_t cls, unsigned m, __m256 v)
{
    const __m256i c = _mm256_set1_epi64x(cls);
    /* 64-bit lane masks [a0 a0 a1 a1 ..], [b0 b0 ..] -> 32-bit lanes [a0 a1 a2 a3 b0 b1 b2 b3] */
    const __m256i ab = _mm256_blend_epi32(_mm256_cmpeq_epi64(t.lo, c), _mm256_cmpeq_epi64(t.hi, c), 0xAA);
    const __m256i eq = _mm256_permutevar8x32_epi32(ab, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7));
    return _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_and_si256(eq, nv_bits32(m))));
}

#else
/* ---- double x 4 ------------------------------------------------------------------------------------------- */
#define VW 4
typedef double elem_t;
typedef __m256d vmask_t;
typedef __m256d vec_t;
typedef __m256d vacc_t;
typedef __m256i vidx_t;

static inline __m256d v_add(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
static inline __m256d v_sub(__m256d a, __m256d b) { return _mm256_sub_pd(a, b); }
static inline __m256d v_mul(__m256d a, __m256d b) { return _mm256_mul_pd(a, b); }
static inline __m256d v_div(__m256d a, __m256d b) { return _mm256_div_pd(a, b); }
static inline __m256d v_neg(__m256d a) { return _mm256_xor_pd(a, _mm256_set1_pd(-0.0)); }
static inline __m256d v_exp(__m256d a) { return Sleef_expd4_u10avx2(a); }
static inline __m256d v_log(__m256d a) { return Sleef_logd4_u10avx2(a); }
static inline __m256d v_set1(double a) { return _mm256_set1_pd(a); }
static inline __m256d v_le(__m256d a, __m256d b) { return _mm256_cmp_pd(a, b, _CMP_LE_OQ); }
static inline __m256d v_select(__m256d m, __m256d a, __m256d b) { return _mm256_blendv_pd(b, a, m); }
static inline __m256d v_load(const double *p) { return _mm256_loadu_pd(p); }
static inline __m256d v_load_n(const double *p, size_t m) { return _mm256_maskload_pd(p, nv_lanes_lt64(m)); }
static inline void v_store(double *p, __m256d v) { _mm256_storeu_pd(p, v); }
static inline void v_store_n(double *p, __m256d v, size_t m) { _mm256_maskstore_pd(p, nv_lanes_lt64(m), v); }
static inline __m256d v_acc_zero(void) { return _mm256_setzero_pd(); }
static inline __m256d v_acc_load(const double *p) { return _mm256_loadu_pd(p); }
static inline void v_acc_store(double *p, __m256d a) { _mm256_storeu_pd(p, a); }
static inline __m256d v_acc_add(__m256d a, __m256d v) { return _mm256_add_pd(a, v); }
static inline __m256i v_tload_i64(const int64_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
static inline __m256i v_tload_i32(const int32_t *p)
{
    return nv_t4_sext32(_mm_loadu_si128((const __m128i *)(const void *)p));
}
static inline __m256i v_tload_u8(const uint8_t *p)
{
    int32_t w;
    memcpy(&w, p, 4);
    return _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(w));
}
static inline __m256i v_kofs(size_t ks) { return nv_t4_kofs(ks, 0); }
static inline unsigned v_tbad(__m256i t, size_t c, int64_t ign) { return nv_t4_bad(t, c, ign); }
static inline unsigned v_tvalid(__m256i t, int64_t ign) { return nv_t4_valid(t, ign); }
static inline __m256i v_toff(__m256i t, __m256i kofs, size_t cs) { return nv_t4_off(t, kofs, cs); }
static inline __m256d v_gather(const double *base, __m256i off, unsigned m)
{
    return _mm256_mask_i64gather_pd(_mm256_setzero_pd(), base, off, _mm256_castsi256_pd(nv_bits64(m)), 8);
}
static inline void v_scatter(double *base, __m256i off, unsigned m, __m256d v)
{
    double val[4];
    int64_t o[4];
    _mm256_storeu_pd(val, v);
    _mm256_storeu_si256((__m256i *)(void *)o, off);
    for (; m; m &= m - 1) {
        const int i = __builtin_ctz(m);
        base[o[i]] = val[i];
    }
}
static inline __m256d v_mzero(unsigned m, __m256d v) { return _mm256_and_pd(v, _mm256_castsi256_pd(nv_bits64(m))); }
static inline void v_stream(double *p, __m256d v) { _mm256_stream_pd(p, v); }
typedef __m128i vtn_t;
static inline __m128i v_tnarrow(__m256i t, unsigned m)
{
    const __m128i n =
        _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(t, _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)));
    return _mm_blendv_epi8(_mm_set1_epi32(-1), n, nv_bits32x4(m));
}
static inline __m256d v_tnsel(__m128i n, int32_t cls, __m256d v)
{
    const __m256i eq = _mm256_cvtepi32_epi64(_mm_cmpeq_epi32(n, _mm_set1_epi32(cls)));
    return _mm256_and_pd(v, _mm256_castsi256_pd(eq));
}
static inline __m256d v_tnpick(__m128i n, int32_t cls, __m256d v, __m256d a)
{
    const __m256i eq = _mm256_cvtepi32_epi64(_mm_cmpeq_epi32(n, _mm_set1_epi32(cls)));
    return _mm256_blendv_pd(a, v, _mm256_castsi256_pd(eq));
}
static inline __m256d v_tsel(__m256i t, int64_t cls, unsigned m, __m256d v)
{
    const __m256i eq = _mm256_cmpeq_epi64(t, _mm256_set1_epi64x(cls));
    return _mm256_and_pd(v, _mm256_castsi256_pd(_mm256_and_si256(eq, nv_bits64(m))));
}

#endif

static inline void v_stream_fence(void) { _mm_sfence(); }

/* ---- zero fill: 32-byte stores; streaming stores past NLLK_STREAM_BYTES ------------------------------------ */
#define NLLK_STREAM_BYTES ((size_t)32 << 20)
static inline void v_zero_fill(void *p, size_t bytes)
{
    unsigned char *b = p;
    const size_t head = (size_t)(-(uintptr_t)b & 31);
    if (bytes < 256 || head >= bytes) {
        memset(b, 0, bytes);
        return;
    }
    memset(b, 0, head);
    b += head;
    bytes -= head;
    const __m256i z = _mm256_setzero_si256();
    size_t i = 0;
    if (bytes >= NLLK_STREAM_BYTES) {
        for (; i + 128 <= bytes; i += 128) {
            _mm256_stream_si256((__m256i *)(void *)(b + i), z);
            _mm256_stream_si256((__m256i *)(void *)(b + i + 32), z);
            _mm256_stream_si256((__m256i *)(void *)(b + i + 64), z);
            _mm256_stream_si256((__m256i *)(void *)(b + i + 96), z);
        }
        _mm_sfence();
    } else {
        for (; i + 128 <= bytes; i += 128) {
            _mm256_store_si256((__m256i *)(void *)(b + i), z);
            _mm256_store_si256((__m256i *)(void *)(b + i + 32), z);
            _mm256_store_si256((__m256i *)(void *)(b + i + 64), z);
            _mm256_store_si256((__m256i *)(void *)(b + i + 96), z);
        }
    }
    memset(b + i, 0, bytes - i);
}

/* 16-bit storage ------------------------------------------------------------------------------------------------
 * With -DNLLK_DTYPE_BF16 or -DNLLK_DTYPE_F16 (kernels/common/kernels.c selects the float section above for the
 * arithmetic): the storage operations of kernels/common/storage.h on uint16_t, kernels/common/half.h's bits.
 * bfloat16: half.h's formulas lane by lane in integer operations. float16: F16C's converters (this build's -mf16c;
 * the AVX2 level requires F16C) where they give half.h's bits: vcvtph2ps for every value but NaN (it quiets a
 * signalling NaN; DAZ does not apply to it), vcvtps2ph (round to nearest even, from the immediate; FTZ does not
 * apply) for every value but NaN (it keeps a truncated payload); lanes holding a NaN take the integer formulas (one
 * exact float multiplication of normal floats for denormals) or sign | 0x7E00 (the same bits as half.h on all 2^32
 * floats and 2^16 values, with and without FTZ/DAZ, checked once; test_vec checks every stored value, ties, NaNs,
 * under FTZ/DAZ too). A gather reads the aligned 4 bytes holding each element (inside one 4-byte granule, so never
 * past a page): the arrays must be 2-byte aligned. */
#if defined(NLLK_STORAGE_16)
/* 8 stored values, zero-extended in 32-bit lanes -> 8 floats (nllk_h_to_f32), in integer operations */
static inline __m256 nv_h_widen32_sw(__m256i x)
{
#  if defined(NLLK_DTYPE_BF16)
    return _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
#  else
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(x, _mm256_set1_epi32(0x8000)), 16);
    const __m256i a = _mm256_and_si256(x, _mm256_set1_epi32(0x7fff));
    const __m256i sh = _mm256_slli_epi32(a, 13);
    const __m256i norm = _mm256_add_epi32(sh, _mm256_set1_epi32(112 << 23));
    const __m256i special = _mm256_or_si256(sh, _mm256_set1_epi32(0x7f800000));
    const __m256i den = _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(a), _mm256_set1_ps(0x1p-24f)));
    __m256i r = _mm256_blendv_epi8(den, norm, _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x3ff)));
    r = _mm256_blendv_epi8(r, special, _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7bff)));
    return _mm256_castsi256_ps(_mm256_or_si256(r, sign));
#  endif
}
/* 8 stored values (16-bit lanes) -> 8 floats (nllk_h_to_f32) */
static inline __m256 nv_h_widen16(__m128i h)
{
#  if defined(NLLK_DTYPE_BF16)
    return nv_h_widen32_sw(_mm256_cvtepu16_epi32(h));
#  else
    const __m256 r = _mm256_cvtph_ps(h);
    const __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
    if (!_mm_movemask_epi8(nan))
        return r;
    return _mm256_blendv_ps(r, nv_h_widen32_sw(_mm256_cvtepu16_epi32(h)),
                            _mm256_castsi256_ps(_mm256_cvtepi16_epi32(nan)));
#  endif
}
/* 8 stored values, zero-extended in 32-bit lanes -> 8 floats */
static inline __m256 nv_h_widen32(__m256i x)
{
#  if defined(NLLK_DTYPE_BF16)
    return nv_h_widen32_sw(x);
#  else
    return nv_h_widen16(_mm_packus_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1)));
#  endif
}
#  if defined(NLLK_DTYPE_BF16)
/* 8 floats -> their bfloat16 roundings (nllk_f32_to_bf16) in the high halves of the 32-bit lanes (low halves: not
 * zero); a is non-negative, so signed compares */
static inline __m256i nv_h_round_hi(__m256 v)
{
    const __m256i u = _mm256_castps_si256(v), one = _mm256_set1_epi32(1);
    const __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    const __m256i nan = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x7f800000));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
    const __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
    return _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7fc00000), nan);
}
/* 8 floats -> their bfloat16 roundings (nllk_f32_to_bf16) */
static inline __m128i nv_h_narrow(__m256 v)
{
    const __m256i b = _mm256_srli_epi32(nv_h_round_hi(v), 16);
    return _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
}
#  else
/* 8 floats -> their float16 roundings (nllk_f32_to_f16): vcvtps2ph, NaN lanes sign | 0x7E00 */
static inline __m128i nv_h_narrow(__m256 v)
{
    const __m128i r = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    if (!_mm256_movemask_epi8(nan))
        return r;
    const __m128i m = _mm_packs_epi32(_mm256_castsi256_si128(nan), _mm256_extracti128_si256(nan, 1));
    return _mm_blendv_epi8(r, _mm_or_si128(_mm_and_si128(r, _mm_set1_epi16((short)0x8000)), _mm_set1_epi16(0x7e00)),
                           m);
}
#  endif
static inline __m256 v_h_load(const uint16_t *p)
{
    return nv_h_widen16(_mm_loadu_si128((const __m128i *)(const void *)p));
}
static inline __m256 v_h_load_n(const uint16_t *p, size_t m)
{
    uint16_t h[8] = {0};
    memcpy(h, p, m * sizeof h[0]);
    return v_h_load(h);
}
static inline void v_h_store(uint16_t *p, __m256 v) { _mm_storeu_si128((__m128i *)(void *)p, nv_h_narrow(v)); }
static inline void v_h_store_n(uint16_t *p, __m256 v, size_t m)
{
    uint16_t h[8];
    v_h_store(h, v);
    memcpy(p, h, m * sizeof h[0]);
}
static inline void v_h_stream(uint16_t *p, __m256 v) { _mm_stream_si128((__m128i *)(void *)p, nv_h_narrow(v)); }
/* tab[p[i]] for 8 (m) stored elements: a float table indexed by their 16-bit patterns; padding lanes read tab[0] */
static inline __m256 v_h_lookup(const float *tab, const uint16_t *p)
{
    return _mm256_i32gather_ps(tab, _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)), 4);
}
static inline __m256 v_h_lookup_n(const float *tab, const uint16_t *p, size_t m)
{
    uint16_t h[8] = {0};
    memcpy(h, p, m * sizeof h[0]);
    return v_h_lookup(tab, h);
}
/* Pairs (kernels/common/storage.h): bfloat16's pair order is the 8 even elements of 16, then the 8 odd: a shift and
 * a mask widen them and a shift and a word blend round them back (element order takes a zero-extension and a shift,
 * and a pack). The accumulators' pair arrangement: acc[0] = the even canonical lanes, acc[1] = the odd. float16 has
 * no pairs (vcvtph2ps widens in element order). */
#  if defined(NLLK_DTYPE_BF16)
#    define V_H_PAIR_EVEN_ODD 1
static inline void v_h_load_pair(const uint16_t *p, __m256 *a, __m256 *b)
{
    const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)p);
    *a = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    *b = _mm256_castsi256_ps(_mm256_and_si256(w, _mm256_set1_epi32((int)0xffff0000u)));
}
/* a's and b's roundings interleaved back to element order: 16 stored values */
static inline __m256i nv_h_round_pair(__m256 a, __m256 b)
{
    return _mm256_blend_epi16(_mm256_srli_epi32(nv_h_round_hi(a), 16), nv_h_round_hi(b), 0xAA);
}
static inline void v_h_store_pair(uint16_t *p, __m256 a, __m256 b)
{
    _mm256_storeu_si256((__m256i *)(void *)p, nv_h_round_pair(a, b));
}
static inline void v_h_lookup_pair(const float *tab, const uint16_t *p, __m256 *a, __m256 *b)
{
    const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)p);
    *a = _mm256_i32gather_ps(tab, _mm256_and_si256(w, _mm256_set1_epi32(0xffff)), 4);
    *b = _mm256_i32gather_ps(tab, _mm256_srli_epi32(w, 16), 4);
}
static inline void v_h_stream_pair(uint16_t *p, __m256 a, __m256 b)
{
    _mm256_stream_si256((__m256i *)(void *)p, nv_h_round_pair(a, b));
}
/* 16 lanes in element order (x0: 0..7, x1: 8..15) to the pair order (a: the even ones, b: the odd), and back */
static inline void v_h_pair(__m256 x0, __m256 x1, __m256 *a, __m256 *b)
{
    /* per 128 bits (x0 0 2, x1 0 2 | x0 4 6, x1 4 6), then the 64-bit pieces in order 0 2 1 3 */
    *a = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x0, x1, 0x88)), 0xD8));
    *b = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x0, x1, 0xDD)), 0xD8));
}
static inline void v_h_pair_tn(__m256i x0, __m256i x1, __m256i *a, __m256i *b)
{
    __m256 fa, fb;
    v_h_pair(_mm256_castsi256_ps(x0), _mm256_castsi256_ps(x1), &fa, &fb);
    *a = _mm256_castps_si256(fa);
    *b = _mm256_castps_si256(fb);
}
static inline void v_h_unpair(__m256 a, __m256 b, __m256 *x0, __m256 *x1)
{
    /* (a 0 1 4 5 | a 2 3 6 7) and the same of b, interleaved per 128 bits */
    const __m256 a2 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(a), 0xD8));
    const __m256 b2 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(b), 0xD8));
    *x0 = _mm256_unpacklo_ps(a2, b2);
    *x1 = _mm256_unpackhi_ps(a2, b2);
}
/* (x0 x1 x2 x3), (y0 y1 y2 y3) -> (x0 x2 y0 y2), (x1 x3 y1 y3) */
static inline void nv_deal4(__m256d *x, __m256d *y)
{
    const __m256d e = _mm256_permute4x64_pd(_mm256_unpacklo_pd(*x, *y), 0xD8);
    *y = _mm256_permute4x64_pd(_mm256_unpackhi_pd(*x, *y), 0xD8);
    *x = e;
}
/* the inverse of nv_deal4 */
static inline void nv_undeal4(__m256d *x, __m256d *y)
{
    const __m256d a = _mm256_permute4x64_pd(*x, 0xD8), b = _mm256_permute4x64_pd(*y, 0xD8);
    *x = _mm256_unpacklo_pd(a, b);
    *y = _mm256_unpackhi_pd(a, b);
}
static inline void v_h_acc_pair(vacc_t *acc)
{
    nv_deal4(&acc[0].lo, &acc[0].hi); /* lanes 0..7 -> (0 2 4 6), (1 3 5 7) */
    nv_deal4(&acc[1].lo, &acc[1].hi); /* lanes 8..15 -> (8 .. 14), (9 .. 15) */
    const __m256d odd_lo = acc[0].hi;
    acc[0].hi = acc[1].lo;
    acc[1].lo = odd_lo;
}
static inline void v_h_acc_unpair(vacc_t *acc)
{
    const __m256d odd_lo = acc[1].lo;
    acc[1].lo = acc[0].hi;
    acc[0].hi = odd_lo;
    nv_undeal4(&acc[0].lo, &acc[0].hi);
    nv_undeal4(&acc[1].lo, &acc[1].hi);
}
static inline void v_h_acc_add_pair(vacc_t *acc, __m256 a, __m256 b)
{
    acc[0] = v_acc_add(acc[0], a);
    acc[1] = v_acc_add(acc[1], b);
}
#  endif
/* 4 elements base[off[i]] (lanes of m) zero-extended in 32-bit lanes: a dword gather of the aligned 4 bytes */
static inline __m128i nv_h_gather4(const uint16_t *base, __m256i off, unsigned m)
{
    const uintptr_t b = (uintptr_t)base;
    const __m256i byte = _mm256_add_epi64(_mm256_set1_epi64x((long long)(b & 3u)), _mm256_slli_epi64(off, 1));
    const __m256i al = _mm256_and_si256(byte, _mm256_set1_epi64x(~3LL));
    const __m128i w =
        _mm256_mask_i64gather_epi32(_mm_setzero_si128(), (const int *)(b & ~(uintptr_t)3), al, nv_bits32x4(m), 1);
    const __m256i sh = _mm256_slli_epi64(_mm256_and_si256(byte, _mm256_set1_epi64x(2)), 3);
    const __m256i r = _mm256_and_si256(_mm256_srlv_epi64(_mm256_cvtepu32_epi64(w), sh), _mm256_set1_epi64x(0xffff));
    return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
}
static inline __m256 v_h_gather(const uint16_t *base, vidx_t off, unsigned m)
{
    const __m128i lo = nv_h_gather4(base, off.lo, m & 15u), hi = nv_h_gather4(base, off.hi, m >> 4 & 15u);
    return nv_h_widen32(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1));
}
/* no 16-bit scatter: the lanes' stores one by one (a wider store would write the neighbours) */
static inline void v_h_scatter(uint16_t *base, vidx_t off, unsigned m, __m256 v)
{
    uint16_t h[8];
    int64_t o[8];
    v_h_store(h, v);
    _mm256_storeu_si256((__m256i *)(void *)o, off.lo);
    _mm256_storeu_si256((__m256i *)(void *)(o + 4), off.hi);
    for (m &= 0xffu; m; m &= m - 1) {
        const int i = __builtin_ctz(m);
        base[o[i]] = h[i];
    }
}
#endif

/* cross-entropy */
/* v_exp_ce(a): the cross-entropy's exp (nllk.h, "Cross-entropy"): f32 Cephes-style, every step one IEEE operation
 * with explicit FMAs, so every map gives the same bits (checked on all 2^32 inputs, AVX-512 against scalar);
 * within 1.02 ulp of exp for results >= 2^-126; f64 is v_exp. See kernels/scalar/vec.h for the definition. */
#if defined(NLLK_DTYPE_F32)
static inline __m256 nv_pow2i(__m256i k) /* 2^k for k in [-126, 127] */
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23));
}
/* v_exp_ce after the clamps (x in [-104, 89] or NaN) */
static inline __m256 nv_exp_ce_clamped(__m256 x)
{
    const __m256 n = _mm256_sub_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(12582912.0f)),
                                   _mm256_set1_ps(12582912.0f));
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-0.693359375f), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(2.12194440e-4f), r);
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r, _mm256_set1_ps(1.3981999507e-3f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(8.3334519073e-3f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(4.1665795894e-2f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(1.6666665459e-1f));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(5.0000001201e-1f));
    const __m256 y = _mm256_add_ps(_mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    /* NaN lanes convert to INT_MIN, whose two scales are 1 (the scalar map's 0) */
    const __m256i k = _mm256_cvtps_epi32(n), k1 = _mm256_srai_epi32(k, 1);
    return _mm256_mul_ps(_mm256_mul_ps(y, nv_pow2i(k1)), nv_pow2i(_mm256_sub_epi32(k, k1)));
}
static inline __m256 v_exp_ce(__m256 a)
{
    /* max(-104, a) and min(89, a) return a when it is NaN: the clamps of the definition */
    return nv_exp_ce_clamped(_mm256_min_ps(_mm256_set1_ps(89.0f), _mm256_max_ps(_mm256_set1_ps(-104.0f), a)));
}
#else
static inline __m256d v_exp_ce(__m256d a) { return v_exp(a); }
#endif

/* N-D NLL */
/* v_mblend(bits, a, b): lane i of a where bit i is set, else of b */
#if defined(NLLK_DTYPE_F32)
static inline __m256 v_mblend(unsigned m, __m256 a, __m256 b)
{
    return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(nv_bits32(m)));
}
#else
static inline __m256d v_mblend(unsigned m, __m256d a, __m256d b)
{
    return _mm256_blendv_pd(b, a, _mm256_castsi256_pd(nv_bits64(m)));
}
#endif

/* ce rows (stop 23) */
/* v_max_num(m, x): per lane x > m ? x : m (a NaN x leaves m); one vmaxps. v_exp_ce_le0(a): v_exp_ce(a) for a <= 0 or
 * NaN, without the upper clamp (a no-op there); other arguments: unspecified. */
#if defined(NLLK_DTYPE_F32)
static inline __m256 v_max_num(__m256 m, __m256 x) { return _mm256_max_ps(x, m); }
static inline __m256 v_exp_ce_le0(__m256 a) { return nv_exp_ce_clamped(_mm256_max_ps(_mm256_set1_ps(-104.0f), a)); }
#else
static inline __m256d v_max_num(__m256d m, __m256d x) { return _mm256_max_pd(x, m); }
static inline __m256d v_exp_ce_le0(__m256d a) { return v_exp_ce(a); }
#endif
#if defined(NLLK_STORAGE_16)
/* v_h_max2(m, p): m with the 2*VW stored values p[0 .. 2*VW) folded in by v_max_num (lanes in any order) */
static inline __m256 v_h_max2(__m256 m, const uint16_t *p)
{
    return v_max_num(v_max_num(m, v_h_load(p)), v_h_load(p + VW));
}
#endif

/* ce planes (stop 23) */
/* v_acc_sum(a, b): lane i a[i] + b[i] (two sum lanes combined, as the fold of the canonical lanes) */
#if defined(NLLK_DTYPE_F32)
static inline vacc_t v_acc_sum(vacc_t a, vacc_t b)
{
    return (vacc_t){_mm256_add_pd(a.lo, b.lo), _mm256_add_pd(a.hi, b.hi)};
}
#else
static inline __m256d v_acc_sum(__m256d a, __m256d b) { return _mm256_add_pd(a, b); }
#endif

/* ce logsums (stop 25) */
/* v_acc_split(a, &hi, &lo): a as elem_t, and its relative residual (+0 where exact): vec_ops.h */
#if defined(NLLK_DTYPE_F32)
static inline __m128 nv_split4(__m256d a, __m128 *lo)
{
    const __m128 hi = _mm256_cvtpd_ps(a);
    const __m256d hd = _mm256_cvtps_pd(hi);
    const __m256d eq = _mm256_cmp_pd(a, hd, _CMP_EQ_OQ);
    *lo = _mm256_cvtpd_ps(_mm256_andnot_pd(eq, _mm256_div_pd(_mm256_sub_pd(a, hd), hd)));
    return hi;
}
static inline void v_acc_split(vacc_t a, __m256 *hi, __m256 *lo)
{
    __m128 l0, l1;
    const __m128 h0 = nv_split4(a.lo, &l0), h1 = nv_split4(a.hi, &l1);
    *hi = _mm256_set_m128(h1, h0);
    *lo = _mm256_set_m128(l1, l0);
}
#else
static inline void v_acc_split(__m256d a, __m256d *hi, __m256d *lo)
{
    const __m256d eq = _mm256_cmp_pd(a, a, _CMP_EQ_OQ);
    *hi = a;
    *lo = _mm256_andnot_pd(eq, _mm256_div_pd(_mm256_sub_pd(a, a), a));
}
#endif

/* ce planes gradient (stop 26) */
/* v_acc_rdiv(a, s): (elem_t)((double)a / s), one division in double rounded once: vec_ops.h */
#if defined(NLLK_DTYPE_F32)
static inline __m256 v_acc_rdiv(__m256 a, vacc_t s)
{
    const __m128 lo = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)), s.lo));
    const __m128 hi = _mm256_cvtpd_ps(_mm256_div_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)), s.hi));
    return _mm256_set_m128(hi, lo);
}
#else
static inline __m256d v_acc_rdiv(__m256d a, __m256d s) { return _mm256_div_pd(a, s); }
#endif

#endif
