/* Limits through the kernels' own vector map (kernels/<isa>/vec.h): the exp the f32 kernels run. On AVX2 and AVX-512
 * the map inlines SLEEF's expf u10 (the same instructions, no call: kernels/<isa>/vec.h, nv_sleef_expf), which runs
 * about 1.6x the rate of a loop of calls into libsleef on this machine (BENCHMARKS.md, "stop 27"); the SLEEF exp
 * limit is the faster of the two, the one nllk's kernels see. Compiled as the f32 kernels of each build are
 * (bench/CMakeLists.txt, nllk_compile_for: that build's flags and vec.h, NLLK_BUILD, NLLK_DTYPE_F32). */
#include <stddef.h>

#include "vec.h"

#define NLLKB_NAME_(build) nllkb_map_expf_loop_##build
#define NLLKB_NAME(build) NLLKB_NAME_(build)

/* `reps` passes of y[i] = v_exp(x[i]) over len elements (a multiple of VW; x, y in cache). Returns a checksum. */
double NLLKB_NAME(NLLK_BUILD)(const float *x, float *y, size_t len, size_t reps);

double NLLKB_NAME(NLLK_BUILD)(const float *x, float *y, size_t len, size_t reps)
{
    for (size_t r = 0; r < reps; r++) {
        for (size_t i = 0; i + VW <= len; i += VW)
            v_store(y + i, v_exp(v_load(x + i)));
        __asm__ volatile("" : : "r"(y) : "memory"); /* every pass is computed */
    }
    return (double)y[0] + y[len - 1];
}
