/* bfloat16 and float16 conversions, the one definition (nllk.h, "bfloat16 and float16 storage").
 *
 * Plain C on the bits, integer operations only except one exact float multiplication whose operands and result are
 * normal floats (so the FPU's flush-to-zero and denormals-are-zero modes cannot change a result). The SIMD maps
 * (kernels/<dir>/vec.h, "16-bit storage") evaluate the same formulas lane by lane, branch-free; tests/test_vec.c
 * checks them against these functions, and tests/test_half.c these functions against an independent reference.
 *
 *   to float      exact (every 16-bit value is a float); NaN keeps its sign and payload (shifted), a signalling
 *                 NaN stays signalling (the first arithmetic operation quiets it).
 *   from float    round to nearest, ties to even; overflow to +-Inf; denormals produced, never flushed;
 *                 NaN -> 0x7FC0 (bfloat16, c10::BFloat16's round_to_nearest_even) or sign | 0x7E00 (float16,
 *                 c10::Half's fp16_ieee_from_fp32_value).
 *   from double   rounded once (no double rounding through float): round to odd to float, then to nearest even
 *                 (float keeps at least 16 more bits than either 16-bit type, also in bfloat16's denormal range,
 *                 so the second rounding sees every bit it needs). For the driver's reductions only. */
#ifndef NLLK_KERNELS_COMMON_HALF_H
#define NLLK_KERNELS_COMMON_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t nllk_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float nllk_f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- bfloat16: the upper half of a float ---------------------------------------------------------------------- */
static inline float nllk_bf16_to_f32(uint16_t h) { return nllk_f32_of_bits((uint32_t)h << 16); }

static inline uint16_t nllk_f32_to_bf16(float f)
{
    const uint32_t u = nllk_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return 0x7fc0;
    /* + 0x7fff + the kept lsb: carries exactly when the dropped half is above a tie, or a tie with an odd lsb */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* ---- float16 (IEEE binary16) ---------------------------------------------------------------------------------- */
static inline float nllk_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, a = h & 0x7fffu;
    uint32_t r;
    if (a >= 0x7c00u) /* Inf, NaN: the exponent all ones, the fraction shifted */
        r = (a << 13) | 0x7f800000u;
    else if (a >= 0x0400u) /* normal: rebias the exponent (127 - 15 = 112) */
        r = (a << 13) + (112u << 23);
    else /* zero, denormal: a * 2^-24, exact (a < 2^10 converts exactly; the product is 0 or a normal float) */
        r = nllk_f32_bits((float)(int32_t)a * 0x1p-24f);
    return nllk_f32_of_bits(r | sign);
}

static inline uint16_t nllk_f32_to_f16(float f)
{
    const uint32_t u = nllk_f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    uint32_t r;
    if (a > 0x7f800000u) /* NaN */
        r = 0x7e00u;
    else if (a >= 0x477ff000u) /* >= 65520 = 65504 + half an ulp (a tie, and 65504's fraction is odd): Inf */
        r = 0x7c00u;
    else if (a >= 0x38800000u) /* >= 2^-14: a normal float16; round at bit 13, then rebias (a carry is exact) */
        r = ((a + 0x0fffu + ((a >> 13) & 1u)) >> 13) - (112u << 10);
    else { /* below 2^-14: a denormal (or 0) in units of 2^-24: the significand shifted right by s >= 14 */
        const uint32_t s = 126u - (a >> 23), m = (a & 0x7fffffu) | 0x800000u;
        r = s > 31u ? 0u : (m + (1u << (s - 1u)) - 1u + ((m >> s) & 1u)) >> s;
    }
    return (uint16_t)(sign | r);
}

/* ---- from double, one rounding (the driver's reductions) ------------------------------------------------------ */

/* v rounded to float, to odd: an inexact result gets an odd fraction (the neighbour of v with the odd lsb). */
static inline float nllk_f64_to_f32_odd(double v)
{
    const float f = (float)v;
    if (f != f || (double)f == v)
        return f;
    uint32_t u = nllk_f32_bits(f);
    if ((u & 0x7fffffffu) == 0x7f800000u) /* a finite v rounded to Inf: the largest float, whose lsb is odd */
        u -= 1u;
    else if (!(u & 1u)) /* the other neighbour of v: one step towards v in magnitude */
        u = (f < 0 ? -(double)f : (double)f) < (v < 0 ? -v : v) ? u + 1u : u - 1u;
    return nllk_f32_of_bits(u);
}
static inline uint16_t nllk_f64_to_bf16(double v) { return nllk_f32_to_bf16(nllk_f64_to_f32_odd(v)); }
static inline uint16_t nllk_f64_to_f16(double v) { return nllk_f32_to_f16(nllk_f64_to_f32_odd(v)); }

/* The kernels' 16-bit dtype (compiled with -DNLLK_DTYPE_BF16 or -DNLLK_DTYPE_F16): its pair, as nllk_h_*. */
#if defined(NLLK_DTYPE_BF16)
#    define nllk_h_to_f32 nllk_bf16_to_f32
#    define nllk_f32_to_h nllk_f32_to_bf16
#elif defined(NLLK_DTYPE_F16)
#    define nllk_h_to_f32 nllk_f16_to_f32
#    define nllk_f32_to_h nllk_f32_to_f16
#endif

#endif
