/* exp and log of every 16-bit input, on the active ISA, bit for bit against SLEEF's scalar library functions.
 *
 * The Poisson kernels' exp (the vector maps' v_exp: on AVX-512 an inline form of Sleef_expf16_u10avx512f with
 * vrndscaleps and vscalefps for two of its steps) must give SLEEF's bits. Here every bfloat16 and every float16
 * value (2 x 65536 inputs, the whole domain of a 16-bit Poisson input), plus 2^20 random floats over exp's range,
 * go through nllk_poisson_nll_fwd_f32 (log_input, reduction none, target 0: loss = exp(x) - 0*x, which is exp(x)
 * for finite x and NaN for +-Inf and NaN) and nllk_poisson_nll_bwd_f32 (sum, grad_output 1: g*exp(x) - g*0 =
 * exp(x), also at +-Inf), and are compared with Sleef_expf1_u10purecfma (tests/exp_ref.c), run under NLLK_ISA=scalar|avx2|avx512
 * by ctest. The same for log (v_log: on AVX-512 an inline form of Sleef_logf16_u10avx512f) through the backward's
 * target gradient, against Sleef_logf1_u10purecfma, on the 16-bit values and 2^20 random bit patterns. NaN results
 * compare as NaN (their sign follows the hardware, nllk.h section 2). The 16-bit values are built from their fields
 * with ldexp (no bit tricks), as tests/test_half.c does. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

float exp_ref(float x);
float log_ref(float x);

/* bfloat16 bits h as a float: sign, 8 exponent bits (bias 127), 7 fraction bits */
static float bf16_value(unsigned h)
{
    const unsigned e = (h >> 7) & 0xffu, f = h & 0x7fu;
    double v = e == 0xffu ? (f ? NAN : INFINITY) : e ? ldexp(1.0 + f / 128.0, (int)e - 127) : ldexp(f / 128.0, -126);
    return (float)(h & 0x8000u ? -v : v);
}

/* float16 bits h as a float: sign, 5 exponent bits (bias 15), 10 fraction bits */
static float f16_value(unsigned h)
{
    const unsigned e = (h >> 10) & 0x1fu, f = h & 0x3ffu;
    double v = e == 0x1fu ? (f ? NAN : INFINITY) : e ? ldexp(1.0 + f / 1024.0, (int)e - 15) : ldexp(f / 1024.0, -14);
    return (float)(h & 0x8000u ? -v : v);
}

static int same(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0; }

static void check(const char *what, const float *x, size_t n, float *t, float *out, float *gx)
{
    memset(t, 0, n * sizeof *t);
    const float one = 1.0f;
    CHECK_OK(nllk_poisson_nll_fwd_f32(x, t, n, 1, 0, 1e-8, NLLK_REDUCTION_NONE, out));
    CHECK_OK(nllk_poisson_nll_bwd_f32(x, t, n, 1, 0, 1e-8, NLLK_REDUCTION_SUM, &one, gx, NULL));
    for (size_t i = 0; i < n; i++) {
        const float e = exp_ref(x[i]), want = isfinite(x[i]) ? e : NAN; /* the backward: e itself (exp(-Inf) = 0) */
        CHECK(same(out[i], want), "%s: %s fwd exp(%a) = %a, SLEEF %a", nllk_active_isa(), what, x[i], out[i], want);
        CHECK(same(gx[i], e), "%s: %s bwd exp(%a) = %a, SLEEF %a", nllk_active_isa(), what, x[i], gx[i], e);
    }
}

/* log through the Poisson backward's target gradient: log_input 0, eps 0, sum with grad_output 1 gives
 * -(1 * log(x + 0)) = -log(x) (x + 0 is x, and -0 + 0 = +0 has the same log, -Inf) */
static void check_log(const char *what, const float *x, size_t n, float *t, float *gx, float *gt)
{
    memset(t, 0, n * sizeof *t);
    const float one = 1.0f;
    CHECK_OK(nllk_poisson_nll_bwd_f32(x, t, n, 0, 0, 0.0, NLLK_REDUCTION_SUM, &one, gx, gt));
    for (size_t i = 0; i < n; i++)
        CHECK(same(-gt[i], log_ref(x[i])), "%s: %s log(%a) = %a, SLEEF %a", nllk_active_isa(), what, x[i], -gt[i],
              log_ref(x[i]));
}

int main(void)
{
    tu_require_isa();
    if (!__builtin_cpu_supports("fma")) {
        printf("SKIP: the reference Sleef_expf1_u10purecfma needs FMA\n");
        return 77;
    }
    const size_t n16 = 65536, nr = (size_t)1 << 20;
    float *x = malloc(nr * sizeof *x), *t = malloc(nr * sizeof *t), *out = malloc(nr * sizeof *out),
          *gx = malloc(nr * sizeof *gx), *gt = malloc(nr * sizeof *gt);
    if (!x || !t || !out || !gx || !gt)
        return 1;
    for (unsigned h = 0; h < n16; h++)
        x[h] = bf16_value(h);
    check("bf16", x, n16, t, out, gx);
    check_log("bf16", x, n16, t, gx, gt);
    for (unsigned h = 0; h < n16; h++)
        x[h] = f16_value(h);
    check("f16", x, n16, t, out, gx);
    check_log("f16", x, n16, t, gx, gt);
    /* random floats: exp's whole range and past both ends (underflow to 0 below about -104, Inf above 88.7) */
    tu_seed(16);
    for (size_t i = 0; i < nr; i++)
        x[i] = (float)tu_uniform(-110.0, 95.0);
    check("random", x, nr, t, out, gx);
    /* random floats for log: every exponent, denormals included, and their negatives */
    for (size_t i = 0; i < nr; i++) {
        const uint32_t bits = (uint32_t)tu_next() & (i % 8 ? 0x7fffffffu : 0xffffffffu);
        memcpy(&x[i], &bits, sizeof bits);
    }
    check_log("random", x, nr, t, gx, gt);
    free(gt);
    free(x);
    free(t);
    free(out);
    free(gx);
    return tu_summary();
}
