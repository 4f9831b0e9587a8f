/* Every kernel of one ISA and its table, from the one formula and the one set of loops.
 *
 * kernels/<isa>/kernels.c includes its vec.h (the map: nv32_* for float, nv64_* for double, NV32_W / NV64_W
 * lanes, and nv_zero_fill) and then this file; the build defines NLLK_BUILD (kernels/isas.h), which names the
 * table nllk_kernels__<build>. Every kernel is static: ISA code is reachable only through the table. */
#include <stddef.h>
#include <stdint.h>

#include "../../dispatch/kernels.h"

#define NLLK_E float
#define NLLK_V nv32_v
#define NLLK_W NV32_W
#define NLLK_OP(name) nv32_##name
#define NLLK_FN(name) name##_f32
#define NLLK_K(name) name##_f32
#include "poisson_formula.h"
#include "poisson_loop.h"
#include "nll_loop.h"
#undef NLLK_E
#undef NLLK_V
#undef NLLK_W
#undef NLLK_OP
#undef NLLK_FN
#undef NLLK_K

#define NLLK_E double
#define NLLK_V nv64_v
#define NLLK_W NV64_W
#define NLLK_OP(name) nv64_##name
#define NLLK_FN(name) name##_f64
#define NLLK_K(name) name##_f64
#include "poisson_formula.h"
#include "poisson_loop.h"
#include "nll_loop.h"
#undef NLLK_E
#undef NLLK_V
#undef NLLK_W
#undef NLLK_OP
#undef NLLK_FN
#undef NLLK_K

#define NLLK_CAT_(a, b) a##b
#define NLLK_CAT(a, b) NLLK_CAT_(a, b)
const nllk_kernels NLLK_CAT(nllk_kernels__, NLLK_BUILD) = {
    .poisson_fwd_f32 = poisson_fwd_f32,
    .poisson_fwd_f64 = poisson_fwd_f64,
    .poisson_bwd_f32 = poisson_bwd_f32,
    .poisson_bwd_f64 = poisson_bwd_f64,
    .nll_fwd_f32 = {nll_fwd_i64_f32, nll_fwd_i32_f32, nll_fwd_u8_f32},
    .nll_fwd_f64 = {nll_fwd_i64_f64, nll_fwd_i32_f64, nll_fwd_u8_f64},
    .nll_bwd_f32 = {nll_bwd_i64_f32, nll_bwd_i32_f32, nll_bwd_u8_f32},
    .nll_bwd_f64 = {nll_bwd_i64_f64, nll_bwd_i32_f64, nll_bwd_u8_f64},
    /* the check only reads targets: the map with the most lanes */
    .nll_check = {nll_check_i64_f32, nll_check_i32_f32, nll_check_u8_f32},
    .zero_fill = nv_zero_fill,
};
