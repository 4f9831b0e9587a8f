/* CPU feature detection: cpuid for what the CPU has, xgetbv for what the OS saves on a context switch (the
 * upper halves of ymm, the zmm registers and the opmasks). Built with the baseline flags. */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <stddef.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0)); /* xgetbv, XCR0 */
    return ((uint64_t)hi << 32) | lo;
}

unsigned nllk_cpu_features(void)
{
    unsigned a, b, c, d, f = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx)
        return 0;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* SSE and AVX state */
        return 0;
    if (fma)
        f |= NLLK_CPU_FMA;
    if (__get_cpuid_max(0, NULL) < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    const int avx2 = (b >> 5) & 1;
    if (avx2 && fma && f16c) /* F16C: the AVX2 map's float16 conversions (every AVX2 CPU has it) */
        f |= NLLK_CPU_AVX2;
    const unsigned need512 = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31); /* F, DQ, BW, VL */
    if ((f & NLLK_CPU_AVX2) && (b & need512) == need512 && (xcr0 & 0xe6) == 0xe6) /* opmask, ZMM_Hi256, Hi16_ZMM */
        f |= NLLK_CPU_AVX512;
    return f;
}

#elif defined(__aarch64__)

unsigned nllk_cpu_features(void) { return NLLK_CPU_FMA | NLLK_CPU_NEON; } /* Advanced SIMD is mandatory */

#else

unsigned nllk_cpu_features(void) { return 0; }

#endif
