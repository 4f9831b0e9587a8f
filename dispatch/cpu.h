/* CPU feature detection (cpuid + xgetbv on x86). */
#ifndef NLLK_DISPATCH_CPU_H
#define NLLK_DISPATCH_CPU_H

#include <stdint.h>

enum {
    NLLK_CPU_FMA = 1,     /* FMA3 usable (x86: with OS support of the AVX state); always on AArch64 */
    NLLK_CPU_AVX2 = 2,    /* AVX2 + FMA + F16C + OS ymm state                                        */
    NLLK_CPU_AVX512 = 4,  /* AVX2 bits + AVX-512 F, DQ, BW, VL + OS opmask/zmm state                   */
    NLLK_CPU_NEON = 8     /* AArch64 Advanced SIMD                                                    */
};

/* The features this CPU and OS provide (a set of NLLK_CPU_* bits). */
unsigned nllk_cpu_features(void);

#endif
