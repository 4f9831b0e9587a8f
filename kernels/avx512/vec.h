/* The AVX-512 vector map (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma): float x 16,
 * double x 8; SLEEF's u10avx512f exp/log. The operations: kernels/common/vec_ops.h. Targets are held as int64
 * lanes (__m512i x 2 for float, x 1 for double); gathers and scatters use 64-bit indices under an opmask, so
 * masked lanes are never touched. */
#ifndef NLLK_KERNELS_AVX512_VEC_H
#define NLLK_KERNELS_AVX512_VEC_H

#include <immintrin.h>
#include <sleef.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/vec_ops.h"

static inline __mmask16 nv_first16(size_t m) { return (__mmask16)((1u << m) - 1u); } /* m < 16 */
static inline __mmask8 nv_first8(size_t m) { return (__mmask8)((1u << m) - 1u); }    /* m < 8  */

static inline unsigned nv_t8_bad(__m512i t, size_t c, int64_t ign)
{
    const __mmask8 eq = _mm512_cmpeq_epi64_mask(t, _mm512_set1_epi64(ign));
    const __mmask8 lt = _mm512_cmplt_epu64_mask(t, _mm512_set1_epi64((long long)c));
    return ~(unsigned)(eq | lt) & 0xffu;
}
static inline unsigned nv_t8_valid(__m512i t, int64_t ign)
{
    return ~(unsigned)_mm512_cmpeq_epi64_mask(t, _mm512_set1_epi64(ign)) & 0xffu;
}
static inline __m512i nv_t8_off(__m512i t, __m512i kofs, size_t cs)
{
    return cs == 1 ? _mm512_add_epi64(kofs, t)
                   : _mm512_add_epi64(kofs, _mm512_mullo_epi64(t, _mm512_set1_epi64((long long)cs)));
}
static inline __m512i nv_t8_kofs(size_t ks, size_t first)
{
    return _mm512_mullo_epi64(_mm512_setr_epi64((long long)first, (long long)first + 1, (long long)first + 2,
                                                 (long long)first + 3, (long long)first + 4, (long long)first + 5,
                                                 (long long)first + 6, (long long)first + 7),
                              _mm512_set1_epi64((long long)ks));
}

#if defined(NLLK_DTYPE_F32)
/* ---- float x 16 ------------------------------------------------------------------------------------------- */
#define VW 16
typedef float elem_t;
typedef __mmask16 vmask_t;
typedef __m512 vec_t;
typedef struct { __m512d lo, hi; } vacc_t;
typedef struct { __m512i lo, hi; } vidx_t;

static inline __m512 v_add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
static inline __m512 v_sub(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
static inline __m512 v_mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
static inline __m512 v_div(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
static inline __m512 v_neg(__m512 a) { return _mm512_xor_ps(a, _mm512_set1_ps(-0.0f)); }
/* Sleef_expf16_u10avx512f inline (SLEEF 3.5's xexpf with FMA: its operations, constants and order), so the kernels'
 * loops need no call: the same bits for all 2^32 inputs (checked exhaustively against the library function, NaN
 * payloads included; test_vec checks it against the scalar map's Sleef_expf1_u10purecfma, test_exp16 every 16-bit
 * input). Three steps are AVX-512 instructions with the same results: q = rint(d / log 2) rounded in float
 * (vrndscaleps) rather than through int32; the final u * 2^(q >> 1) * 2^(q - (q >> 1)) as one vscalefps, u * 2^q
 * rounded once, as the two-step product is (its first step is exact); and SLEEF's Inf above 100 by evaluating at
 * min(d, 100) (its result is Inf; min keeps a NaN d). */
static inline __m512 nv_sleef_expf(__m512 d0)
{
    const __m512 d = _mm512_min_ps(_mm512_set1_ps(100.0f), d0); /* d0 when d0 is NaN */
    const __m512 qf = _mm512_roundscale_ps(_mm512_mul_ps(d, _mm512_set1_ps(0x1.715476p+0f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); /* rint(d / log 2) */
    __m512 s = _mm512_fmadd_ps(qf, _mm512_set1_ps(-0x1.62e4p-1f), d);
    s = _mm512_fmadd_ps(qf, _mm512_set1_ps(-0x1.7f7d1cp-20f), s);
    __m512 u = _mm512_fmadd_ps(_mm512_set1_ps(0x1.a057b4p-13f), s, _mm512_set1_ps(0x1.6d2d92p-10f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0x1.11114cp-7f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0x1.5554f4p-5f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0x1.555556p-3f));
    u = _mm512_fmadd_ps(u, s, _mm512_set1_ps(0.5f));
    u = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(s, s), u, s), _mm512_set1_ps(1.0f));
    /* u * 2^q; 0 below -104 (NaN kept) */
    return _mm512_maskz_scalef_ps(_mm512_cmp_ps_mask(d, _mm512_set1_ps(-104.0f), _CMP_NLT_US), u, qf);
}
/* Sleef_logf16_u10avx512f inline (SLEEF 3.5's xlogf_u1 for AVX-512F: its operations, constants and order, the
 * float-pair steps of its df.h written out), so the loops that take a log need no call either: the same bits for all
 * 2^32 inputs (checked exhaustively against the library function, NaN payloads included; test_vec checks it against
 * the scalar map, test_exp16 every 16-bit input against SLEEF's scalar log). log d = e log 2 + 2 atanh((m - 1) /
 * (m + 1)) with d = m 2^e, m in [0.75, 1.5). */
static inline __m512 nv_sleef_logf(__m512 d)
{
    const __m512 one = _mm512_set1_ps(1.0f), mone = _mm512_set1_ps(-1.0f), two = _mm512_set1_ps(2.0f);
    const __m512 e0 = _mm512_getexp_ps(_mm512_mul_ps(d, _mm512_set1_ps(1.0f / 0.75f)));
    const __m512 e = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(e0, _mm512_set1_ps(__builtin_inff()), _CMP_EQ_OQ), e0,
                                          _mm512_set1_ps(128.0f));
    const __m512 m = _mm512_getmant_ps(d, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_nan);
    /* (sx, sy) = e * log 2 as a float pair */
    const __m512 l2u = _mm512_set1_ps(0.69314718246459960938f), l2l = _mm512_set1_ps(-1.904654323148236017e-09f);
    const __m512 sx = _mm512_mul_ps(l2u, e);
    const __m512 sy = _mm512_fmadd_ps(l2l, e, _mm512_fmsub_ps(l2u, e, sx));
    /* (ax, ay) = m - 1 and (bx, by) = m + 1, exact pairs */
    const __m512 ax = _mm512_add_ps(mone, m), av = _mm512_sub_ps(ax, mone);
    const __m512 ay = _mm512_add_ps(_mm512_sub_ps(mone, _mm512_sub_ps(ax, av)), _mm512_sub_ps(m, av));
    const __m512 bx = _mm512_add_ps(one, m), bv = _mm512_sub_ps(bx, one);
    const __m512 by = _mm512_add_ps(_mm512_sub_ps(one, _mm512_sub_ps(bx, bv)), _mm512_sub_ps(m, bv));
    /* (xx, xy) = a / b */
    const __m512 rb = _mm512_div_ps(one, bx);
    const __m512 xx = _mm512_mul_ps(ax, rb);
    const __m512 xu = _mm512_fmsub_ps(rb, ax, xx);
    const __m512 xv = _mm512_fnmadd_ps(by, rb, _mm512_fnmadd_ps(bx, rb, one));
    const __m512 xy = _mm512_fmadd_ps(xx, xv, _mm512_fmadd_ps(ay, rb, xu));
    const __m512 x2 = _mm512_mul_ps(xx, xx);
    __m512 t = _mm512_fmadd_ps(_mm512_set1_ps(0.3027294874f), x2, _mm512_set1_ps(0.3996108174f));
    t = _mm512_fmadd_ps(t, x2, _mm512_set1_ps(0.6666694880f));
    /* s += 2x (pair + pair), then s += x^3 t (pair + float) */
    const __m512 x2x = _mm512_mul_ps(xx, two), x2y = _mm512_mul_ps(xy, two);
    const __m512 s1x = _mm512_add_ps(sx, x2x);
    const __m512 s1y = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(sx, s1x), x2x), sy), x2y);
    const __m512 q = _mm512_mul_ps(_mm512_mul_ps(x2, xx), t);
    const __m512 s2x = _mm512_add_ps(s1x, q);
    const __m512 s2y = _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(s1x, s2x), q), s1y);
    /* 0 -> -Inf, negative -> NaN, +Inf -> +Inf, NaN kept (SLEEF's fixupimm table) */
    return _mm512_fixupimm_ps(_mm512_add_ps(s2x, s2y), d,
                              _mm512_set1_epi32((4 << (2 * 4)) | (3 << (4 * 4)) | (5 << (5 * 4)) | (2 << (6 * 4))), 0);
}
static inline __m512 v_exp(__m512 a) { return nv_sleef_expf(a); }
static inline __m512 v_log(__m512 a) { return nv_sleef_logf(a); }
static inline __m512 v_set1(double a) { return _mm512_set1_ps((float)a); }
static inline __mmask16 v_le(__m512 a, __m512 b) { return _mm512_cmp_ps_mask(a, b, _CMP_LE_OQ); }
static inline __m512 v_select(__mmask16 m, __m512 a, __m512 b) { return _mm512_mask_blend_ps(m, b, a); }
static inline __m512 v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 v_load_n(const float *p, size_t m) { return _mm512_maskz_loadu_ps(nv_first16(m), p); }
static inline void v_store(float *p, __m512 v) { _mm512_storeu_ps(p, v); }
static inline void v_store_n(float *p, __m512 v, size_t m) { _mm512_mask_storeu_ps(p, nv_first16(m), v); }
static inline vacc_t v_acc_zero(void) { return (vacc_t){_mm512_setzero_pd(), _mm512_setzero_pd()}; }
static inline vacc_t v_acc_load(const double *p) { return (vacc_t){_mm512_loadu_pd(p), _mm512_loadu_pd(p + 8)}; }
static inline void v_acc_store(double *p, vacc_t a)
{
    _mm512_storeu_pd(p, a.lo);
    _mm512_storeu_pd(p + 8, a.hi);
}
static inline vacc_t v_acc_add(vacc_t a, __m512 v)
{
    a.lo = _mm512_add_pd(a.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    a.hi = _mm512_add_pd(a.hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)));
    return a;
}
static inline vidx_t v_tload_i64(const int64_t *p) { return (vidx_t){_mm512_loadu_si512(p), _mm512_loadu_si512(p + 8)}; }
static inline vidx_t v_tload_i32(const int32_t *p)
{
    const __m512i v = _mm512_loadu_si512(p);
    return (vidx_t){_mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)),
                    _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1))};
}
static inline vidx_t v_tload_u8(const uint8_t *p)
{
    const __m128i b = _mm_loadu_si128((const __m128i *)(const void *)p);
    return (vidx_t){_mm512_cvtepu8_epi64(b), _mm512_cvtepu8_epi64(_mm_srli_si128(b, 8))};
}
static inline vidx_t v_kofs(size_t ks) { return (vidx_t){nv_t8_kofs(ks, 0), nv_t8_kofs(ks, 8)}; }
static inline unsigned v_tbad(vidx_t t, size_t c, int64_t ign)
{
    return nv_t8_bad(t.lo, c, ign) | nv_t8_bad(t.hi, c, ign) << 8;
}
static inline unsigned v_tvalid(vidx_t t, int64_t ign)
{
    return nv_t8_valid(t.lo, ign) | nv_t8_valid(t.hi, ign) << 8;
}
static inline vidx_t v_toff(vidx_t t, vidx_t kofs, size_t cs)
{
    return (vidx_t){nv_t8_off(t.lo, kofs.lo, cs), nv_t8_off(t.hi, kofs.hi, cs)};
}
static inline __m512 v_gather(const float *base, vidx_t off, unsigned m)
{
    const __m256 lo = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)m, off.lo, base, 4);
    const __m256 hi = _mm512_mask_i64gather_ps(_mm256_setzero_ps(), (__mmask8)(m >> 8), off.hi, base, 4);
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}
static inline void v_scatter(float *base, vidx_t off, unsigned m, __m512 v)
{
    _mm512_mask_i64scatter_ps(base, (__mmask8)m, off.lo, _mm512_castps512_ps256(v), 4);
    _mm512_mask_i64scatter_ps(base, (__mmask8)(m >> 8), off.hi, _mm512_extractf32x8_ps(v, 1), 4);
}
static inline __m512 v_mzero(unsigned m, __m512 v) { return _mm512_maskz_mov_ps((__mmask16)m, v); }
static inline void v_stream(float *p, __m512 v) { _mm512_stream_ps(p, v); }
typedef __m512i vtn_t;
static inline __m512i v_tnarrow(vidx_t t, unsigned m)
{
    const __m512i n =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(t.lo)), _mm512_cvtepi64_epi32(t.hi), 1);
    return _mm512_mask_mov_epi32(_mm512_set1_epi32(-1), (__mmask16)m, n);
}
static inline __m512 v_tnsel(__m512i n, int32_t cls, __m512 v)
{
    return _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(n, _mm512_set1_epi32(cls)), v);
}
static inline __m512 v_tnpick(__m512i n, int32_t cls, __m512 v, __m512 a)
{
    return _mm512_mask_mov_ps(a, _mm512_cmpeq_epi32_mask(n, _mm512_set1_epi32(cls)), v);
}
static inline __m512 v_tsel(vidx_t t, int64_t cls, unsigned m, __m512 v)
{
    const __m512i c = _mm512_set1_epi64(cls);
    const __mmask8 lo = _mm512_mask_cmpeq_epi64_mask((__mmask8)m, t.lo, c);
    const __mmask8 hi = _mm512_mask_cmpeq_epi64_mask((__mmask8)(m >> 8), t.hi, c);
    return _mm512_maskz_mov_ps(_mm512_kunpackb(hi, lo), v);
}

#else
/* ---- double x 8 ------------------------------------------------------------------------------------------- */
#define VW 8
typedef double elem_t;
typedef __mmask8 vmask_t;
typedef __m512d vec_t;
typedef __m512d vacc_t;
typedef __m512i vidx_t;

static inline __m512d v_add(__m512d a, __m512d b) { return _mm512_add_pd(a, b); }
static inline __m512d v_sub(__m512d a, __m512d b) { return _mm512_sub_pd(a, b); }
static inline __m512d v_mul(__m512d a, __m512d b) { return _mm512_mul_pd(a, b); }
static inline __m512d v_div(__m512d a, __m512d b) { return _mm512_div_pd(a, b); }
static inline __m512d v_neg(__m512d a) { return _mm512_xor_pd(a, _mm512_set1_pd(-0.0)); }
static inline __m512d v_exp(__m512d a) { return Sleef_expd8_u10avx512f(a); }
static inline __m512d v_log(__m512d a) { return Sleef_logd8_u10avx512f(a); }
static inline __m512d v_set1(double a) { return _mm512_set1_pd(a); }
static inline __mmask8 v_le(__m512d a, __m512d b) { return _mm512_cmp_pd_mask(a, b, _CMP_LE_OQ); }
static inline __m512d v_select(__mmask8 m, __m512d a, __m512d b) { return _mm512_mask_blend_pd(m, b, a); }
static inline __m512d v_load(const double *p) { return _mm512_loadu_pd(p); }
static inline __m512d v_load_n(const double *p, size_t m) { return _mm512_maskz_loadu_pd(nv_first8(m), p); }
static inline void v_store(double *p, __m512d v) { _mm512_storeu_pd(p, v); }
static inline void v_store_n(double *p, __m512d v, size_t m) { _mm512_mask_storeu_pd(p, nv_first8(m), v); }
static inline __m512d v_acc_zero(void) { return _mm512_setzero_pd(); }
static inline __m512d v_acc_load(const double *p) { return _mm512_loadu_pd(p); }
static inline void v_acc_store(double *p, __m512d a) { _mm512_storeu_pd(p, a); }
static inline __m512d v_acc_add(__m512d a, __m512d v) { return _mm512_add_pd(a, v); }
static inline __m512i v_tload_i64(const int64_t *p) { return _mm512_loadu_si512(p); }
static inline __m512i v_tload_i32(const int32_t *p)
{
    return _mm512_cvtepi32_epi64(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
static inline __m512i v_tload_u8(const uint8_t *p)
{
    int64_t w;
    memcpy(&w, p, 8);
    return _mm512_cvtepu8_epi64(_mm_cvtsi64_si128(w));
}
static inline __m512i v_kofs(size_t ks) { return nv_t8_kofs(ks, 0); }
static inline unsigned v_tbad(__m512i t, size_t c, int64_t ign) { return nv_t8_bad(t, c, ign); }
static inline unsigned v_tvalid(__m512i t, int64_t ign) { return nv_t8_valid(t, ign); }
static inline __m512i v_toff(__m512i t, __m512i kofs, size_t cs) { return nv_t8_off(t, kofs, cs); }
static inline __m512d v_gather(const double *base, __m512i off, unsigned m)
{
    return _mm512_mask_i64gather_pd(_mm512_setzero_pd(), (__mmask8)m, off, base, 8);
}
static inline void v_scatter(double *base, __m512i off, unsigned m, __m512d v)
{
    _mm512_mask_i64scatter_pd(base, (__mmask8)m, off, v, 8);
}
static inline __m512d v_mzero(unsigned m, __m512d v) { return _mm512_maskz_mov_pd((__mmask8)m, v); }
static inline void v_stream(double *p, __m512d v) { _mm512_stream_pd(p, v); }
typedef __m256i vtn_t;
static inline __m256i v_tnarrow(__m512i t, unsigned m)
{
    return _mm256_mask_mov_epi32(_mm256_set1_epi32(-1), (__mmask8)m, _mm512_cvtepi64_epi32(t));
}
static inline __m512d v_tnsel(__m256i n, int32_t cls, __m512d v)
{
    return _mm512_maskz_mov_pd(_mm256_cmpeq_epi32_mask(n, _mm256_set1_epi32(cls)), v);
}
static inline __m512d v_tnpick(__m256i n, int32_t cls, __m512d v, __m512d a)
{
    return _mm512_mask_mov_pd(a, _mm256_cmpeq_epi32_mask(n, _mm256_set1_epi32(cls)), v);
}
static inline __m512d v_tsel(__m512i t, int64_t cls, unsigned m, __m512d v)
{
    return _mm512_maskz_mov_pd(_mm512_mask_cmpeq_epi64_mask((__mmask8)m, t, _mm512_set1_epi64(cls)), v);
}

#endif

static inline void v_stream_fence(void) { _mm_sfence(); }

/* ---- zero fill: 64-byte stores; streaming stores past NLLK_STREAM_BYTES ------------------------------------ */
#define NLLK_STREAM_BYTES ((size_t)32 << 20)
static inline void v_zero_fill(void *p, size_t bytes)
{
    unsigned char *b = p;
    const size_t head = (size_t)(-(uintptr_t)b & 63);
    if (bytes < 512 || head >= bytes) {
        memset(b, 0, bytes);
        return;
    }
    memset(b, 0, head);
    b += head;
    bytes -= head;
    const __m512i z = _mm512_setzero_si512();
    size_t i = 0;
    if (bytes >= NLLK_STREAM_BYTES) {
        for (; i + 256 <= bytes; i += 256) {
            _mm512_stream_si512((void *)(b + i), z);
            _mm512_stream_si512((void *)(b + i + 64), z);
            _mm512_stream_si512((void *)(b + i + 128), z);
            _mm512_stream_si512((void *)(b + i + 192), z);
        }
        _mm_sfence();
    } else {
        for (; i + 256 <= bytes; i += 256) {
            _mm512_store_si512((void *)(b + i), z);
            _mm512_store_si512((void *)(b + i + 64), z);
            _mm512_store_si512((void *)(b + i + 128), z);
            _mm512_store_si512((void *)(b + i + 192), z);
        }
    }
    memset(b + i, 0, bytes - i);
}

/* 16-bit storage ------------------------------------------------------------------------------------------------
 * With -DNLLK_DTYPE_BF16 or -DNLLK_DTYPE_F16 (kernels/common/kernels.c selects the float section above for the
 * arithmetic): the storage operations of kernels/common/storage.h on uint16_t. The conversions are
 * kernels/common/half.h's formulas lane by lane in integer operations (one exact float multiplication of normal
 * floats for float16 denormals; bfloat16's NaN test by vfpclassps, which DAZ does not affect: all 2^32 floats checked
 * once with and without FTZ/DAZ), so they give that file's bits whatever MXCSR's FTZ/DAZ say. vcvtneps2bf16 (AVX-512
 * BF16) is not used: it flushes denormals and keeps NaN payloads (tests/test_half.c shows it). float16 uses
 * AVX-512F's converters where they give half.h's bits: vcvtph2ps for every value but NaN (it quiets a signalling
 * NaN; DAZ does not apply to it), vcvtps2ph (round to nearest even, from the immediate; FTZ does not apply) for every
 * value but NaN (it keeps a truncated payload): NaN lanes are fixed up (the same bits as half.h on all 2^32 floats
 * and 2^16 values, with and without FTZ/DAZ, checked once; test_vec checks every stored value, ties, NaNs, under
 * FTZ/DAZ too). A gather reads the aligned 4 bytes holding each element (inside one 4-byte granule, so
 * never past a page): the arrays must be 2-byte aligned. */
#if defined(NLLK_STORAGE_16)
/* 16 stored values, zero-extended in 32-bit lanes -> 16 floats (nllk_h_to_f32), in integer operations */
static inline __m512 nv_h_widen32_sw(__m512i x)
{
#  if defined(NLLK_DTYPE_BF16)
    return _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
#  else
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(x, _mm512_set1_epi32(0x8000)), 16);
    const __m512i a = _mm512_and_si512(x, _mm512_set1_epi32(0x7fff));
    const __m512i sh = _mm512_slli_epi32(a, 13);
    const __m512i norm = _mm512_add_epi32(sh, _mm512_set1_epi32(112 << 23));
    const __m512i special = _mm512_or_si512(sh, _mm512_set1_epi32(0x7f800000));
    const __m512i den = _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_set1_ps(0x1p-24f)));
    __m512i r = _mm512_mask_blend_epi32(_mm512_cmpge_epi32_mask(a, _mm512_set1_epi32(0x400)), den, norm);
    r = _mm512_mask_blend_epi32(_mm512_cmpge_epi32_mask(a, _mm512_set1_epi32(0x7c00)), r, special);
    return _mm512_castsi512_ps(_mm512_or_si512(r, sign));
#  endif
}
/* 16 stored values (16-bit lanes) -> 16 floats (nllk_h_to_f32) */
static inline __m512 nv_h_widen16(__m256i h)
{
#  if defined(NLLK_DTYPE_BF16)
    /* value i to the high half of 32-bit lane i, zeros below: one vpermw (a zero-extension and a shift are two) */
    const __m512i hi = _mm512_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8, 7, 7, 6, 6, 5, 5,
                                        4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, hi, _mm512_castsi256_si512(h)));
#  else
    const __m512 r = _mm512_cvtph_ps(h);
    const __mmask16 nan = _mm256_cmpgt_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x7fff)),
                                                  _mm256_set1_epi16(0x7c00));
    return nan ? _mm512_mask_mov_ps(r, nan, nv_h_widen32_sw(_mm512_cvtepu16_epi32(h))) : r;
#  endif
}
/* 16 stored values, zero-extended in 32-bit lanes -> 16 floats */
static inline __m512 nv_h_widen32(__m512i x)
{
#  if defined(NLLK_DTYPE_BF16)
    return nv_h_widen32_sw(x);
#  else
    return nv_h_widen16(_mm512_cvtepi32_epi16(x));
#  endif
}
#  if defined(NLLK_DTYPE_BF16)
/* 16 floats -> their bfloat16 roundings (nllk_f32_to_bf16) in the high halves of the 32-bit lanes (low halves: not
 * zero) */
static inline __m512i nv_h_round_hi(__m512 v)
{
    /* u + 0x7fff + (bit 16 of u), its high half; NaN (vfpclassps: quiet or signalling) 0x7fc0 */
    const __m512i u = _mm512_castps_si512(v);
    const __mmask16 odd = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000));
    const __m512i r = _mm512_mask_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), odd, u,
                                            _mm512_set1_epi32(0x8000));
    return _mm512_mask_mov_epi32(r, _mm512_fpclass_ps_mask(v, 0x81), _mm512_set1_epi32(0x7fc00000));
}
/* 16 floats -> their bfloat16 roundings (nllk_f32_to_bf16) */
static inline __m256i nv_h_narrow(__m512 v)
{
    const __m512i r = nv_h_round_hi(v);
    /* the 16 high halves (odd 16-bit words) to the low 256 bits: one vpermw (a shift and vpmovdw are more) */
    const __m512i odd_words = _mm512_set_epi16(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1, 31, 29, 27,
                                               25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    return _mm512_castsi512_si256(_mm512_permutexvar_epi16(odd_words, r));
}
#  else
/* 16 floats -> their float16 roundings (nllk_f32_to_f16): vcvtps2ph, NaN lanes sign | 0x7E00 */
static inline __m256i nv_h_narrow(__m512 v)
{
    const __m256i r = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm256_mask_mov_epi16(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q),
                                 _mm256_or_si256(_mm256_and_si256(r, _mm256_set1_epi16((short)0x8000)),
                                                 _mm256_set1_epi16(0x7e00)));
}
#  endif
static inline __m512 v_h_load(const uint16_t *p)
{
    return nv_h_widen16(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
static inline __m512 v_h_load_n(const uint16_t *p, size_t m)
{
    return nv_h_widen16(_mm256_maskz_loadu_epi16(nv_first16(m), p));
}
static inline void v_h_store(uint16_t *p, __m512 v) { _mm256_storeu_si256((__m256i *)(void *)p, nv_h_narrow(v)); }
static inline void v_h_store_n(uint16_t *p, __m512 v, size_t m)
{
    _mm256_mask_storeu_epi16(p, nv_first16(m), nv_h_narrow(v));
}
static inline void v_h_stream(uint16_t *p, __m512 v) { _mm256_stream_si256((__m256i *)(void *)p, nv_h_narrow(v)); }
/* tab[p[i]] for 16 (m) stored elements: a float table indexed by their 16-bit patterns; padding lanes read +0 */
static inline __m512 v_h_lookup(const float *tab, const uint16_t *p)
{
    return _mm512_i32gather_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p)), tab, 4);
}
static inline __m512 v_h_lookup_n(const float *tab, const uint16_t *p, size_t m)
{
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), nv_first16(m),
                                    _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(nv_first16(m), p)), tab, 4);
}
/* Pairs (kernels/common/storage.h): bfloat16's pair order is the 16 even elements of 32, then the 16 odd: a shift
 * and a mask widen them and a shift and a word blend round them back (element order takes a vpermw each way). The
 * accumulator's pair arrangement: lo = the even canonical lanes, hi = the odd. float16 has no pairs (vcvtph2ps
 * widens in element order in one instruction). */
#  if defined(NLLK_DTYPE_BF16)
#    define V_H_PAIR_EVEN_ODD 1
static inline void v_h_load_pair(const uint16_t *p, __m512 *a, __m512 *b)
{
    const __m512i w = _mm512_loadu_si512(p);
    *a = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *b = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xffff0000u)));
}
/* a's and b's roundings interleaved back to element order: 32 stored values */
static inline __m512i nv_h_round_pair(__m512 a, __m512 b)
{
    return _mm512_mask_blend_epi16(0xAAAAAAAAu, _mm512_srli_epi32(nv_h_round_hi(a), 16), nv_h_round_hi(b));
}
static inline void v_h_store_pair(uint16_t *p, __m512 a, __m512 b) { _mm512_storeu_si512(p, nv_h_round_pair(a, b)); }
static inline void v_h_lookup_pair(const float *tab, const uint16_t *p, __m512 *a, __m512 *b)
{
    const __m512i w = _mm512_loadu_si512(p);
    *a = _mm512_i32gather_ps(_mm512_and_si512(w, _mm512_set1_epi32(0xffff)), tab, 4);
    *b = _mm512_i32gather_ps(_mm512_srli_epi32(w, 16), tab, 4);
}
static inline void v_h_acc_pair(vacc_t *acc)
{
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0), odd = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
    const __m512d e = _mm512_permutex2var_pd(acc[0].lo, even, acc[0].hi);
    acc[0].hi = _mm512_permutex2var_pd(acc[0].lo, odd, acc[0].hi);
    acc[0].lo = e;
}
static inline void v_h_acc_unpair(vacc_t *acc)
{
    const __m512i lo = _mm512_set_epi64(11, 3, 10, 2, 9, 1, 8, 0), hi = _mm512_set_epi64(15, 7, 14, 6, 13, 5, 12, 4);
    const __m512d l = _mm512_permutex2var_pd(acc[0].lo, lo, acc[0].hi);
    acc[0].hi = _mm512_permutex2var_pd(acc[0].lo, hi, acc[0].hi);
    acc[0].lo = l;
}
static inline void v_h_stream_pair(uint16_t *p, __m512 a, __m512 b)
{
    _mm512_stream_si512((void *)p, nv_h_round_pair(a, b));
}
/* 32 lanes in element order (x0: 0..15, x1: 16..31) to the pair order (a: the even ones, b: the odd), and back */
static inline void nv_pair32(__m512i x0, __m512i x1, __m512i *a, __m512i *b)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    *a = _mm512_permutex2var_epi32(x0, even, x1);
    *b = _mm512_permutex2var_epi32(x0, odd, x1);
}
static inline void v_h_pair(__m512 x0, __m512 x1, __m512 *a, __m512 *b)
{
    __m512i ia, ib;
    nv_pair32(_mm512_castps_si512(x0), _mm512_castps_si512(x1), &ia, &ib);
    *a = _mm512_castsi512_ps(ia);
    *b = _mm512_castsi512_ps(ib);
}
static inline void v_h_pair_tn(__m512i x0, __m512i x1, __m512i *a, __m512i *b) { nv_pair32(x0, x1, a, b); }
static inline void v_h_unpair(__m512 a, __m512 b, __m512 *x0, __m512 *x1)
{
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    *x0 = _mm512_permutex2var_ps(a, lo, b);
    *x1 = _mm512_permutex2var_ps(a, hi, b);
}
/* elements 2i and 2i + 16 (a's lanes i and i + 8) both add into canonical lane 2i, in that order */
static inline void v_h_acc_add_pair(vacc_t *acc, __m512 a, __m512 b)
{
    acc[0].lo = _mm512_add_pd(_mm512_add_pd(acc[0].lo, _mm512_cvtps_pd(_mm512_castps512_ps256(a))),
                              _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
    acc[0].hi = _mm512_add_pd(_mm512_add_pd(acc[0].hi, _mm512_cvtps_pd(_mm512_castps512_ps256(b))),
                              _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)));
}
#  endif
/* 8 elements base[off[i]] (lanes of m) zero-extended in 32-bit lanes: a dword gather of the aligned 4 bytes */
static inline __m256i nv_h_gather8(const uint16_t *base, __m512i off, __mmask8 m)
{
    const uintptr_t b = (uintptr_t)base;
    const __m512i byte = _mm512_add_epi64(_mm512_set1_epi64((long long)(b & 3u)), _mm512_slli_epi64(off, 1));
    const __m512i al = _mm512_and_si512(byte, _mm512_set1_epi64(~3LL));
    const __m256i w = _mm512_mask_i64gather_epi32(_mm256_setzero_si256(), m, al, (const void *)(b & ~(uintptr_t)3), 1);
    const __m256i sh = _mm512_cvtepi64_epi32(_mm512_slli_epi64(_mm512_and_si512(byte, _mm512_set1_epi64(2)), 3));
    return _mm256_and_si256(_mm256_srlv_epi32(w, sh), _mm256_set1_epi32(0xffff));
}
static inline __m512 v_h_gather(const uint16_t *base, vidx_t off, unsigned m)
{
    const __m256i lo = nv_h_gather8(base, off.lo, (__mmask8)m), hi = nv_h_gather8(base, off.hi, (__mmask8)(m >> 8));
    return nv_h_widen32(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
}
/* no 16-bit scatter: the lanes' stores one by one (a wider store would write the neighbours) */
static inline void v_h_scatter(uint16_t *base, vidx_t off, unsigned m, __m512 v)
{
    uint16_t h[16];
    int64_t o[16];
    _mm256_storeu_si256((__m256i *)(void *)h, nv_h_narrow(v));
    _mm512_storeu_si512(o, off.lo);
    _mm512_storeu_si512(o + 8, off.hi);
    for (m &= 0xffffu; m; m &= m - 1) {
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
/* v_exp_ce after the clamps (x in [-104, 89] or NaN) */
static inline __m512 nv_exp_ce_clamped(__m512 x)
{
    const __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), _mm512_set1_ps(12582912.0f)),
                                   _mm512_set1_ps(12582912.0f));
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(8.3334519073e-3f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(4.1665795894e-2f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(1.6666665459e-1f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(q, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(y, n); /* y * 2^n rounded once, as the two-step scaling */
}
static inline __m512 v_exp_ce(__m512 a)
{
    /* max(-104, a) and min(89, a) return a when it is NaN: the clamps of the definition */
    return nv_exp_ce_clamped(_mm512_min_ps(_mm512_set1_ps(89.0f), _mm512_max_ps(_mm512_set1_ps(-104.0f), a)));
}
#else
static inline __m512d v_exp_ce(__m512d a) { return v_exp(a); }
#endif

/* N-D NLL */
/* v_mblend(bits, a, b): lane i of a where bit i is set, else of b */
#if defined(NLLK_DTYPE_F32)
static inline __m512 v_mblend(unsigned m, __m512 a, __m512 b) { return _mm512_mask_blend_ps((__mmask16)m, b, a); }
#else
static inline __m512d v_mblend(unsigned m, __m512d a, __m512d b) { return _mm512_mask_blend_pd((__mmask8)m, b, a); }
#endif

/* ce rows (stop 23) */
/* v_max_num(m, x): per lane x > m ? x : m (a NaN x leaves m: the cross-entropy's max ignores NaN logits); one vmaxps,
 * which returns its second operand when either is NaN or both are zeros.
 * v_exp_ce_le0(a): v_exp_ce(a) for a <= 0 or NaN (the cross-entropy's x - m), without the upper clamp (a no-op
 * there); other arguments: unspecified. */
#if defined(NLLK_DTYPE_F32)
static inline __m512 v_max_num(__m512 m, __m512 x) { return _mm512_max_ps(x, m); }
static inline __m512 v_exp_ce_le0(__m512 a) { return nv_exp_ce_clamped(_mm512_max_ps(_mm512_set1_ps(-104.0f), a)); }
#else
static inline __m512d v_max_num(__m512d m, __m512d x) { return _mm512_max_pd(x, m); }
static inline __m512d v_exp_ce_le0(__m512d a) { return v_exp_ce(a); }
#endif
#if defined(NLLK_STORAGE_16)
/* v_h_max2(m, p): m with the 2*VW stored values p[0 .. 2*VW) folded in by v_max_num, in an unspecified lane order
 * (for order-free maxima only): their exact float values, except that a NaN may widen to any NaN (ignored anyway).
 * bfloat16: one 64-byte load, the even elements shifted up and the odd ones masked (both halves widened in 2 ops). */
static inline __m512 v_h_max2(__m512 m, const uint16_t *p)
{
#  if defined(NLLK_DTYPE_BF16)
    const __m512i x = _mm512_loadu_si512(p);
    m = _mm512_max_ps(_mm512_castsi512_ps(_mm512_slli_epi32(x, 16)), m);
    return _mm512_max_ps(_mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32((int)0xffff0000u))), m);
#  else
    m = _mm512_max_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p)), m);
    return _mm512_max_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(p + 16))), m);
#  endif
}
#endif

/* ce planes (stop 23) */
/* v_acc_sum(a, b): lane i a[i] + b[i] (two sum lanes combined, as the fold of the canonical lanes) */
#if defined(NLLK_DTYPE_F32)
static inline vacc_t v_acc_sum(vacc_t a, vacc_t b)
{
    return (vacc_t){_mm512_add_pd(a.lo, b.lo), _mm512_add_pd(a.hi, b.hi)};
}
#else
static inline __m512d v_acc_sum(__m512d a, __m512d b) { return _mm512_add_pd(a, b); }
#endif

/* ce logsums (stop 25) */
/* v_acc_split(a, &hi, &lo): a as elem_t, and its relative residual (+0 where exact): vec_ops.h */
#if defined(NLLK_DTYPE_F32)
static inline __m256 nv_split8(__m512d a, __m256 *lo)
{
    const __m256 hi = _mm512_cvtpd_ps(a);
    const __m512d hd = _mm512_cvtps_pd(hi);
    const __mmask8 eq = _mm512_cmp_pd_mask(a, hd, _CMP_EQ_OQ);
    *lo = _mm512_cvtpd_ps(_mm512_maskz_mov_pd((__mmask8)~eq, _mm512_div_pd(_mm512_sub_pd(a, hd), hd)));
    return hi;
}
static inline void v_acc_split(vacc_t a, __m512 *hi, __m512 *lo)
{
    __m256 l0, l1;
    const __m256 h0 = nv_split8(a.lo, &l0), h1 = nv_split8(a.hi, &l1);
    *hi = _mm512_insertf32x8(_mm512_castps256_ps512(h0), h1, 1);
    *lo = _mm512_insertf32x8(_mm512_castps256_ps512(l0), l1, 1);
}
#else
static inline void v_acc_split(__m512d a, __m512d *hi, __m512d *lo)
{
    const __mmask8 eq = _mm512_cmp_pd_mask(a, a, _CMP_EQ_OQ);
    *hi = a;
    *lo = _mm512_maskz_mov_pd((__mmask8)~eq, _mm512_div_pd(_mm512_sub_pd(a, a), a));
}
#endif

/* ce planes gradient (stop 26) */
/* v_acc_rdiv(a, s): (elem_t)((double)a / s), one division in double rounded once: vec_ops.h */
#if defined(NLLK_DTYPE_F32)
static inline __m512 v_acc_rdiv(__m512 a, vacc_t s)
{
    const __m256 lo = _mm512_cvtpd_ps(_mm512_div_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)), s.lo));
    const __m256 hi = _mm512_cvtpd_ps(_mm512_div_pd(_mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)), s.hi));
    return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
}
#else
static inline __m512d v_acc_rdiv(__m512d a, __m512d s) { return _mm512_div_pd(a, s); }
#endif

/* ce bf16 rows (stop 27): an optional op, only here (vec_ops.h) */
#if defined(NLLK_DTYPE_BF16)
#  define NLLK_HAVE_H_EXP_SUM32 1
/* v_h32_swap(a): the canonical lanes (lo: 0..7, hi: 8..15) regrouped as v_h_exp_sum32 holds them (lo: 0-3 and 8-11,
 * hi: 4-7 and 12-15), and back (the same 128-bit moves both ways). */
static inline vacc_t v_h32_swap(vacc_t a)
{
    return (vacc_t){_mm512_shuffle_f64x2(a.lo, a.hi, _MM_SHUFFLE(1, 0, 1, 0)),
                    _mm512_shuffle_f64x2(a.lo, a.hi, _MM_SHUFFLE(3, 2, 3, 2))};
}
/* v_h_exp_sum32(a, p, m): a (regrouped) plus v_exp_ce_le0(p[k] - m) of the 32 bfloat16 classes p[0 .. 32), class k
 * in canonical lane k % 16 and each lane in increasing k, as 2 whole vectors of v_acc_add would give. One 64-byte
 * load; the widening is an unpack with zero per 16 values (one op instead of a zero-extension and a shift), which
 * puts classes 0-3, 8-11, 16-19, 24-27 in one vector and 4-7, 12-15, 20-23, 28-31 in the other: hence the regrouped
 * lanes, whose halves take classes 0-3 and 8-11 first, then 16-19 and 24-27 (4-7 and 12-15, then 20-23 and 28-31). */
static inline vacc_t v_h_exp_sum32(vacc_t a, const uint16_t *p, __m512 m)
{
    const __m512i w = _mm512_loadu_si512(p), z = _mm512_setzero_si512();
    const __m512 e0 = v_exp_ce_le0(_mm512_sub_ps(_mm512_castsi512_ps(_mm512_unpacklo_epi16(z, w)), m));
    const __m512 e1 = v_exp_ce_le0(_mm512_sub_ps(_mm512_castsi512_ps(_mm512_unpackhi_epi16(z, w)), m));
    a.lo = _mm512_add_pd(a.lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e0)));
    a.hi = _mm512_add_pd(a.hi, _mm512_cvtps_pd(_mm512_castps512_ps256(e1)));
    a.lo = _mm512_add_pd(a.lo, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e0, 1)));
    a.hi = _mm512_add_pd(a.hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e1, 1)));
    return a;
}
#endif

#endif
