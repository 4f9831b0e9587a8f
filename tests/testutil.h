/* Shared helpers of the C tests: CHECK and the pass/fail summary, a seeded RNG, ulp distances, guarded buffers
 * (detect writes just outside an output), and dtype-generic access to f32/f64 arrays.
 * Header-only (static functions); include it once per test program. */
#ifndef NLLK_TESTUTIL_H
#define NLLK_TESTUTIL_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nllk.h"

/* ---- checks and summary ------------------------------------------------------------------------------- */
static long tu_checks, tu_failures;
static int tu_max_reports = 60; /* failure lines printed in full; later ones are only counted */

#define CHECK(cond, ...)                                                                                       \
    do {                                                                                                        \
        tu_checks++;                                                                                            \
        if (!(cond)) {                                                                                          \
            tu_failures++;                                                                                      \
            if (tu_failures <= tu_max_reports) {                                                                \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                           \
                fprintf(stderr, __VA_ARGS__);                                                                   \
                fprintf(stderr, "\n");                                                                          \
            }                                                                                                   \
        }                                                                                                       \
    } while (0)

/* a call expected to succeed */
#define CHECK_OK(call)                                                                                         \
    do {                                                                                                        \
        const nllk_status st_ = (call);                                                                         \
        CHECK(st_ == NLLK_OK, "%s -> %s: %s", #call, nllk_status_name(st_), nllk_last_error());                 \
    } while (0)

/* prints "N passed, M failed" and returns the exit status */
static inline int tu_summary(void)
{
    if (tu_failures > tu_max_reports)
        fprintf(stderr, "(%ld more failures not shown)\n", tu_failures - tu_max_reports);
    printf("%ld passed, %ld failed\n", tu_checks - tu_failures, tu_failures);
    return tu_failures ? 1 : 0;
}

/* ---- the ISA under test ---------------------------------------------------------------------------------------
 * ctest runs every C test once per ISA of the registry with NLLK_ISA=<name>. The library takes NLLK_ISA only as a
 * ceiling (a CPU without the ISA silently runs a lower one), so every test's main starts with this: exit 77
 * (ctest's SKIP_RETURN_CODE) when the CPU lacks the ISA, fail (exit 1) when the active ISA is not the one asked
 * for. Without NLLK_ISA the test runs on the automatic choice. */
static inline void tu_require_isa(void)
{
    const char *want = getenv("NLLK_ISA");
    if (!want || !*want)
        return;
    if (!nllk_isa_supported(want)) {
        printf("SKIP: this CPU (or build) has no %s\n", want);
        exit(77);
    }
    if (strcmp(nllk_active_isa(), want) != 0) {
        fprintf(stderr, "FAIL: NLLK_ISA=%s, but the active ISA is %s\n", want, nllk_active_isa());
        exit(1);
    }
}

/* ---- seeded RNG (splitmix64) ------------------------------------------------------------------------------ */
static uint64_t tu_rng_state = 0x9E3779B97F4A7C15ull;
static inline void tu_seed(uint64_t s) { tu_rng_state = s * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull; }
static inline uint64_t tu_next(void)
{
    uint64_t z = (tu_rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* uniform in [0, 1) */
static inline double tu_unit(void) { return (double)(tu_next() >> 11) / 9007199254740992.0; }
static inline double tu_uniform(double a, double b) { return a + (b - a) * tu_unit(); }
/* uniform integer in [0, k) */
static inline uint64_t tu_below(uint64_t k) { return k ? tu_next() % k : 0; }

/* ---- ulps and bits ---------------------------------------------------------------------------------------- */
static inline uint64_t tu_ordered64(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 63) ? ~u : u | 0x8000000000000000ull;
}
static inline uint32_t tu_ordered32(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 31) ? ~u : u | 0x80000000u;
}
/* distance in representable values (0 for equal, +0 vs -0 is 1); NaNs give UINT64_MAX */
static inline uint64_t tu_ulp_f64(double a, double b)
{
    if (isnan(a) || isnan(b))
        return UINT64_MAX;
    const uint64_t x = tu_ordered64(a), y = tu_ordered64(b);
    return x > y ? x - y : y - x;
}
static inline uint64_t tu_ulp_f32(float a, float b)
{
    if (isnan(a) || isnan(b))
        return UINT64_MAX;
    const uint32_t x = tu_ordered32(a), y = tu_ordered32(b);
    return x > y ? x - y : y - x;
}

/* ---- guarded buffers ---------------------------------------------------------------------------------------
 * tu_galloc(bytes) returns memory with TU_GUARD bytes of a known pattern on each side; tu_gcheck() says whether
 * both guards are intact (nothing was written just before or after the buffer). */
#define TU_GUARD 256
#define TU_HDR 64
static inline unsigned char tu_guard_byte(size_t k) { return (unsigned char)(0xA5 ^ (k * 29)); }
static inline void *tu_galloc(size_t bytes)
{
    unsigned char *b = malloc(TU_HDR + TU_GUARD + bytes + TU_GUARD);
    if (!b) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    memcpy(b, &bytes, sizeof bytes);
    for (size_t k = 0; k < TU_GUARD; k++) {
        b[TU_HDR + k] = tu_guard_byte(k);
        b[TU_HDR + TU_GUARD + bytes + k] = tu_guard_byte(k + 7);
    }
    return b + TU_HDR + TU_GUARD;
}
static inline int tu_gcheck(const void *p)
{
    if (!p)
        return 1;
    const unsigned char *b = (const unsigned char *)p - TU_GUARD - TU_HDR;
    size_t bytes;
    memcpy(&bytes, b, sizeof bytes);
    for (size_t k = 0; k < TU_GUARD; k++)
        if (b[TU_HDR + k] != tu_guard_byte(k) || b[TU_HDR + TU_GUARD + bytes + k] != tu_guard_byte(k + 7))
            return 0;
    return 1;
}
static inline void tu_gfree(void *p)
{
    if (p)
        free((unsigned char *)p - TU_GUARD - TU_HDR);
}

/* ---- dtype-generic arrays (nllk_dtype: NLLK_F32 or NLLK_F64) ---------------------------------------------- */
static inline size_t tu_esz(nllk_dtype dt) { return dt == NLLK_F32 ? sizeof(float) : sizeof(double); }
static inline const char *tu_dtname(nllk_dtype dt) { return dt == NLLK_F32 ? "f32" : "f64"; }
static inline double tu_get(nllk_dtype dt, const void *p, size_t i)
{
    return dt == NLLK_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}
static inline void tu_set(nllk_dtype dt, void *p, size_t i, double v)
{
    if (dt == NLLK_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}
/* v rounded (once) to the dtype, widened back exactly */
static inline double tu_round(nllk_dtype dt, long double v) { return dt == NLLK_F32 ? (double)(float)v : (double)v; }
/* machine epsilon of the dtype */
static inline double tu_eps(nllk_dtype dt) { return dt == NLLK_F32 ? (double)FLT_EPSILON : DBL_EPSILON; }
/* bit equality in the dtype (NaN == NaN of any payload) */
static inline int tu_same(nllk_dtype dt, double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return dt == NLLK_F32 ? tu_ulp_f32((float)a, (float)b) == 0 : tu_ulp_f64(a, b) == 0;
}
/* one IEEE operation in the dtype (the tests are built with -ffp-contract=off) */
static inline double tu_mul(nllk_dtype dt, double a, double b)
{
    if (dt == NLLK_F32) {
        volatile float r = (float)a * (float)b;
        return r;
    }
    volatile double r = a * b;
    return r;
}
static inline double tu_div(nllk_dtype dt, double a, double b)
{
    if (dt == NLLK_F32) {
        volatile float r = (float)a / (float)b;
        return r;
    }
    volatile double r = a / b;
    return r;
}
/* an allocated copy of bytes (NULL stays NULL) */
static inline void *tu_dup(const void *p, size_t bytes)
{
    if (!p)
        return NULL;
    void *q = malloc(bytes ? bytes : 1);
    memcpy(q, p, bytes);
    return q;
}

/* FNV-1a of bytes: to check that large inputs came back unmodified without keeping a copy */
static inline uint64_t tu_hash(const void *p, size_t bytes)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < bytes; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* ---- target arrays ------------------------------------------------------------------------------------- */
static inline size_t tu_tsize(nllk_target_type tt)
{
    switch (tt) {
    case NLLK_TARGET_I64: return 8;
    case NLLK_TARGET_I32: return 4;
    case NLLK_TARGET_U8: return 1;
    }
    return 0;
}
static inline const char *tu_ttname(nllk_target_type tt)
{
    switch (tt) {
    case NLLK_TARGET_I64: return "i64";
    case NLLK_TARGET_I32: return "i32";
    case NLLK_TARGET_U8: return "u8";
    }
    return "?";
}
static inline int64_t tu_tget(nllk_target_type tt, const void *p, size_t i)
{
    switch (tt) {
    case NLLK_TARGET_I64: return ((const int64_t *)p)[i];
    case NLLK_TARGET_I32: return ((const int32_t *)p)[i];
    case NLLK_TARGET_U8: return ((const uint8_t *)p)[i];
    }
    return 0;
}
static inline void tu_tset(nllk_target_type tt, void *p, size_t i, int64_t v)
{
    switch (tt) {
    case NLLK_TARGET_I64: ((int64_t *)p)[i] = v; break;
    case NLLK_TARGET_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case NLLK_TARGET_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    }
}
/* whether v is a value of the target type */
static inline int tu_trepr(nllk_target_type tt, int64_t v)
{
    switch (tt) {
    case NLLK_TARGET_I64: return 1;
    case NLLK_TARGET_I32: return v >= INT32_MIN && v <= INT32_MAX;
    case NLLK_TARGET_U8: return v >= 0 && v <= 255;
    }
    return 0;
}

/* ---- dtype-generic calls ------------------------------------------------------------------------------ */
static inline nllk_status tu_poisson_fwd(nllk_dtype dt, const void *x, const void *t, size_t n, int li, int full,
                                         double eps, nllk_reduction red, void *out)
{
    return dt == NLLK_F32 ? nllk_poisson_nll_fwd_f32(x, t, n, li, full, eps, red, out)
                          : nllk_poisson_nll_fwd_f64(x, t, n, li, full, eps, red, out);
}
static inline nllk_status tu_poisson_bwd(nllk_dtype dt, const void *x, const void *t, size_t n, int li, int full,
                                         double eps, nllk_reduction red, const void *go, void *gx, void *gt)
{
    return dt == NLLK_F32 ? nllk_poisson_nll_bwd_f32(x, t, n, li, full, eps, red, go, gx, gt)
                          : nllk_poisson_nll_bwd_f64(x, t, n, li, full, eps, red, go, gx, gt);
}
static inline nllk_status tu_nll_fwd(nllk_dtype dt, const void *x, const void *tg, nllk_target_type tt, size_t n,
                                     size_t c, size_t d, const void *w, int64_t ig, nllk_reduction red, void *out,
                                     void *tw)
{
    return dt == NLLK_F32 ? nllk_nll_fwd_f32(x, tg, tt, n, c, d, w, ig, red, out, tw)
                          : nllk_nll_fwd_f64(x, tg, tt, n, c, d, w, ig, red, out, tw);
}
/* total_weight is passed as a value of the dtype */
static inline nllk_status tu_nll_bwd(nllk_dtype dt, const void *go, const void *tg, nllk_target_type tt, size_t n,
                                     size_t c, size_t d, const void *w, int64_t ig, nllk_reduction red, double tw,
                                     void *gx)
{
    return dt == NLLK_F32 ? nllk_nll_bwd_f32(go, tg, tt, n, c, d, w, ig, red, (float)tw, gx)
                          : nllk_nll_bwd_f64(go, tg, tt, n, c, d, w, ig, red, tw, gx);
}

/* ---- the canonical summation tree of nllk.h section 2, written from the header's words ------------------ */
static inline double tu_block_sum(const double *v, size_t len)
{
    double s[16];
    for (int k = 0; k < 16; k++)
        s[k] = 0.0;
    for (size_t k = 0; k < len; k++)
        s[k % 16] += v[k];
    for (int h = 8; h >= 1; h /= 2)
        for (int k = 0; k < h; k++)
            s[k] += s[k + h];
    return s[0];
}
static inline double tu_tree_node(const double *b, size_t nb, unsigned level, size_t m)
{
    if (level == 0)
        return b[m];
    const double left = tu_tree_node(b, nb, level - 1, 2 * m);
    if (((2 * m + 1) << (level - 1)) >= nb)
        return left;
    return left + tu_tree_node(b, nb, level - 1, 2 * m + 1);
}
static inline double tu_tree_sum(const double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    const size_t nb = (n + NLLK_BLOCK - 1) / NLLK_BLOCK;
    double *b = malloc(nb * sizeof *b);
    for (size_t i = 0; i < nb; i++)
        b[i] = tu_block_sum(v + i * NLLK_BLOCK, i + 1 < nb ? NLLK_BLOCK : n - i * NLLK_BLOCK);
    unsigned levels = 0;
    while (((size_t)1 << levels) < nb)
        levels++;
    const double r = tu_tree_node(b, nb, levels, 0);
    free(b);
    return r;
}

/* |a - b| <= tol, where a non-finite expected value must be matched exactly (NaN by NaN, Inf by the same Inf) */
static inline int tu_close(double got, double want, double tol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    if (!isfinite(got))
        return 0;
    return fabs(got - want) <= tol;
}

#endif
