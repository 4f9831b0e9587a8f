/* bfloat16 and float16 storage (nllk.h, "bfloat16 and float16 storage"), against an independent reference:
 *
 *   - ref_decode / ref_round below: the 16-bit formats described by their precision and exponent range, decoded
 *     with ldexp and rounded with nearbyint (round to nearest even) in double, no bit tricks: the reference for
 *     the conversions of kernels/common/half.h (every 16-bit value; every midpoint between neighbours and the floats
 *     next to it; random floats and doubles) and for every 16-bit output of the library;
 *   - per element: each output equals the f32 function's value on the exactly converted inputs (or, for NLL, the
 *     float product computed here in double and rounded to float), rounded once by ref_round;
 *   - reductions: within 1 ulp (16-bit) of a long double sum of the per-element float values, and equal to the
 *     accumulators' double value rounded once by ref_round;
 *   - edge values: the smallest denormal, the largest finite, +-Inf, NaN, ties, float16 overflow of a sum whose
 *     mean is finite.
 * Run once per ISA (NLLK_ISA), like every C test. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/common/half.h"
#include "testutil.h"

typedef struct fmt {
    const char *name;
    nllk_dtype dt;
    int p;     /* significand bits, the implicit one included */
    int ebits; /* exponent bits                               */
} fmt;
static const fmt BF16 = {"bf16", NLLK_BF16, 8, 8}, F16 = {"f16", NLLK_F16, 11, 5};

static int f_bias(const fmt *f) { return (1 << (f->ebits - 1)) - 1; }
static int f_emin(const fmt *f) { return 1 - f_bias(f); }

/* the value of bits h */
static double ref_decode(const fmt *f, uint16_t h)
{
    const int mb = f->p - 1, emax_field = (1 << f->ebits) - 1;
    const int e = (h >> mb) & emax_field, m = h & ((1 << mb) - 1);
    double v;
    if (e == emax_field)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, f_emin(f) - mb);
    else
        v = ldexp(m + (1 << mb), e - f_bias(f) - mb);
    return h >> 15 ? -v : v;
}

/* v rounded to the format: to nearest, ties to even; overflow to +-Inf */
static double ref_round(const fmt *f, double v)
{
    if (isnan(v) || isinf(v) || v == 0)
        return v;
    int e;
    frexp(fabs(v), &e);
    int lead = e - 1; /* |v| in [2^lead, 2^(lead+1)) */
    if (lead < f_emin(f))
        lead = f_emin(f);
    const double q = ldexp(1.0, lead - (f->p - 1));
    const double r = nearbyint(v / q) * q;
    if (fabs(r) >= ldexp(1.0, f_bias(f) + 1))
        return copysign(INFINITY, v);
    return r;
}
static double ref_ulp(const fmt *f, double v) /* the spacing of the format at |v| (finite v) */
{
    int e;
    frexp(fabs(v), &e);
    int lead = e - 1;
    if (v == 0 || lead < f_emin(f))
        lead = f_emin(f);
    return ldexp(1.0, lead - (f->p - 1));
}

/* got holds want (a value of the format): the same value and sign; NaN as documented (bf16 0x7FC0, f16 s|0x7E00) */
static int same16(const fmt *f, uint16_t got, double want)
{
    if (isnan(want))
        return f->dt == NLLK_BF16 ? got == 0x7fc0 : (got & 0x7fff) == 0x7e00;
    const double g = ref_decode(f, got);
    return g == want && !signbit(g) == !signbit(want);
}

static uint16_t to16(const fmt *f, double v) { return f->dt == NLLK_BF16 ? nllk_f64_to_bf16(v) : nllk_f64_to_f16(v); }
static float from16(const fmt *f, uint16_t h) { return f->dt == NLLK_BF16 ? nllk_bf16_to_f32(h) : nllk_f16_to_f32(h); }

/* ---- 1. the conversions (kernels/common/half.h) against the reference ---------------------------------------- */
static void check_f32_to16(const fmt *f, float x)
{
    const uint16_t got = f->dt == NLLK_BF16 ? nllk_f32_to_bf16(x) : nllk_f32_to_f16(x);
    const double want = ref_round(f, x);
    CHECK(same16(f, got, want), "%s: %a -> 0x%04x, want %a", f->name, x, got, want);
    if (isnan(x) && f->dt == NLLK_F16)
        CHECK((got & 0x8000) == (nllk_f32_bits(x) >> 16 & 0x8000), "f16: NaN %a keeps its sign", x);
}

static void test_conversions(const fmt *f)
{
    for (uint32_t h = 0; h < 65536; h++) { /* every value to float: exact */
        const float x = from16(f, (uint16_t)h);
        const double want = ref_decode(f, (uint16_t)h);
        if (isnan(want)) {
            const uint32_t mb = (uint32_t)f->p - 1, frac = h & ((1u << mb) - 1);
            CHECK(isnan(x) && nllk_f32_bits(x) == ((h & 0x8000u) << 16 | 0x7f800000u | frac << (23 - mb)),
                  "%s: NaN 0x%04x -> %a keeps sign and payload", f->name, h, x);
            check_f32_to16(f, x);
            continue;
        }
        CHECK(x == want && !signbit(x) == !signbit(want), "%s: 0x%04x -> %a, want %a", f->name, h, x, want);
        check_f32_to16(f, x); /* and back */
        /* the midpoint to the next value up (in magnitude), and the floats next to it: ties and near-ties */
        if ((h & 0x7fff) < 0x7fff && !isinf(want)) {
            const double up = ref_decode(f, (uint16_t)(h + 1));
            if (isinf(up) || isnan(up))
                continue;
            const float mid = (float)((want + up) / 2); /* exact: p + 1 bits */
            CHECK((double)mid == (want + up) / 2, "%s: midpoint of 0x%04x exact in float", f->name, h);
            check_f32_to16(f, mid);
            check_f32_to16(f, nextafterf(mid, INFINITY));
            check_f32_to16(f, nextafterf(mid, -INFINITY));
            /* from double: just beside the midpoint (a float rounding would make a tie of it) */
            const double eps = fabs(mid) * 0x1p-40;
            for (int s = -1; s <= 1; s += 2) {
                const double v = (double)mid + s * eps;
                const uint16_t got = to16(f, v);
                CHECK(same16(f, got, ref_round(f, v)), "%s: double %a -> 0x%04x, want %a", f->name, v, got,
                      ref_round(f, v));
            }
        }
    }
    /* the largest finite and beyond: the overflow threshold is max + half an ulp (a tie, rounded to Inf) */
    const double maxf = ldexp(2.0 - ldexp(1.0, 1 - f->p), f_bias(f));
    const double thr = maxf + ldexp(1.0, f_bias(f) - f->p);
    check_f32_to16(f, (float)maxf);
    if ((double)(float)thr == thr) {
        check_f32_to16(f, (float)thr);
        check_f32_to16(f, nextafterf((float)thr, 0));
        check_f32_to16(f, -(float)thr);
    }
    const float specials[] = {0.0f,       -0.0f,    INFINITY,  -INFINITY,   NAN,        -NAN,     FLT_MAX,
                              -FLT_MAX,   FLT_MIN,  0x1p-149f, -0x1p-149f,  0x1p-24f,   0x1p-25f, 0x1.000002p-25f,
                              0x1.8p-24f, 65504.0f, 65520.0f,  0x1.fep127f, 0x1.ffp127f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        check_f32_to16(f, specials[i]);
    check_f32_to16(f, nllk_f32_of_bits(0x7f800001u)); /* a signalling NaN */
    check_f32_to16(f, nllk_f32_of_bits(0xffc12345u));
    tu_seed(13);
    for (int i = 0; i < (1 << 21); i++) {
        const uint32_t u = (uint32_t)tu_next();
        check_f32_to16(f, nllk_f32_of_bits(u));
        /* from double: a random double, and one in the 16-bit range */
        const double v = f->dt == NLLK_BF16 ? ldexp(tu_uniform(-1, 1), (int)tu_below(280) - 145)
                                            : ldexp(tu_uniform(-1, 1), (int)tu_below(50) - 30);
        CHECK(same16(f, to16(f, v), ref_round(f, v)), "%s: double %a", f->name, v);
    }
    const double dspecial[] = {0.0,  -0.0, INFINITY,          -INFINITY,          NAN, 1e300, -1e300, 1e-300, -1e-300,
                               maxf, thr,  nextafter(thr, 0), (double)FLT_MAX * 2};
    for (size_t i = 0; i < sizeof dspecial / sizeof dspecial[0]; i++)
        CHECK(same16(f, to16(f, dspecial[i]), ref_round(f, dspecial[i])), "%s: double %a", f->name, dspecial[i]);
}

/* ---- generic calls ------------------------------------------------------------------------------------------- */
static nllk_status nll_fwd16(const fmt *f, const uint16_t *x, const int64_t *t, size_t n, size_t c, size_t d,
                             const uint16_t *w, nllk_reduction r, uint16_t *out, uint16_t *tw)
{
    return f->dt == NLLK_BF16 ? nllk_nll_fwd_bf16(x, t, NLLK_TARGET_I64, n, c, d, w, -100, r, out, tw)
                              : nllk_nll_fwd_f16(x, t, NLLK_TARGET_I64, n, c, d, w, -100, r, out, tw);
}
static nllk_status nll_bwd16(const fmt *f, const uint16_t *go, const int64_t *t, size_t n, size_t c, size_t d,
                             const uint16_t *w, nllk_reduction r, uint16_t tw, uint16_t *gx)
{
    return f->dt == NLLK_BF16 ? nllk_nll_bwd_bf16(go, t, NLLK_TARGET_I64, n, c, d, w, -100, r, tw, gx)
                              : nllk_nll_bwd_f16(go, t, NLLK_TARGET_I64, n, c, d, w, -100, r, tw, gx);
}
static nllk_status poi_fwd16(const fmt *f, const uint16_t *x, const uint16_t *t, size_t n, int li, int full,
                             nllk_reduction r, uint16_t *out)
{
    return f->dt == NLLK_BF16 ? nllk_poisson_nll_fwd_bf16(x, t, n, li, full, 1e-8, r, out)
                              : nllk_poisson_nll_fwd_f16(x, t, n, li, full, 1e-8, r, out);
}
static nllk_status poi_bwd16(const fmt *f, const uint16_t *x, const uint16_t *t, size_t n, int li, int full,
                             nllk_reduction r, const uint16_t *go, uint16_t *gx, uint16_t *gt)
{
    return f->dt == NLLK_BF16 ? nllk_poisson_nll_bwd_bf16(x, t, n, li, full, 1e-8, r, go, gx, gt)
                              : nllk_poisson_nll_bwd_f16(x, t, n, li, full, 1e-8, r, go, gx, gt);
}

/* a random stored value: any bit pattern (NaN, Inf and denormals included) 1 time in 8, else a value of moderate
 * size (so that products stay in range and ties are frequent) */
static uint16_t rand16(const fmt *f, double lo, double hi)
{
    if (tu_below(8) == 0)
        return (uint16_t)tu_next();
    return to16(f, tu_uniform(lo, hi));
}

/* ---- 2. NLL per element, backward, reductions ------------------------------------------------------------------ */
static void test_nll(const fmt *f, size_t n, size_t c, size_t d, int weighted)
{
    const size_t nd = n * d, ncd = n * c * d;
    uint16_t *x = malloc(ncd * 2), *w = malloc(c * 2), *out = malloc(nd * 2), *gx = malloc(ncd * 2),
             *go = malloc(nd * 2);
    int64_t *t = malloc(nd * 8);
    float *lossf = malloc(nd * sizeof(float)), *wf = malloc(nd * sizeof(float));
    for (size_t i = 0; i < ncd; i++)
        x[i] = rand16(f, -20, 0);
    for (size_t k = 0; k < c; k++)
        w[k] = tu_below(16) ? to16(f, tu_uniform(0, 3)) : (uint16_t)tu_next();
    for (size_t i = 0; i < nd; i++) {
        t[i] = tu_below(10) == 0 ? -100 : (int64_t)tu_below(c);
        go[i] = rand16(f, -2, 2);
    }
    /* the f32 path's per-element values, computed here: -x * w in float (the double product is exact) */
    long double sum = 0, wsum = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const size_t e = i * d + j;
            if (t[e] == -100) {
                lossf[e] = 0.0f;
                wf[e] = 0.0f;
                continue;
            }
            const double xv = from16(f, x[(i * c + (size_t)t[e]) * d + j]);
            wf[e] = weighted ? from16(f, w[t[e]]) : 1.0f;
            lossf[e] = (float)(-xv * wf[e]);
            sum += lossf[e];
            wsum += wf[e];
        }
    const uint16_t *wp = weighted ? w : NULL;
    CHECK_OK(nll_fwd16(f, x, t, n, c, d, wp, NLLK_REDUCTION_NONE, out, NULL));
    for (size_t e = 0; e < nd; e++)
        CHECK(same16(f, out[e], ref_round(f, lossf[e])), "%s nll (%zu,%zu,%zu) w%d: out[%zu] = 0x%04x, want %a",
              f->name, n, c, d, weighted, e, out[e], ref_round(f, lossf[e]));
    /* reductions: within 1 ulp of the long double sum; the accumulator's double rounded once gives the same bits */
    uint16_t rs, rm, tws;
    CHECK_OK(nll_fwd16(f, x, t, n, c, d, wp, NLLK_REDUCTION_SUM, &rs, &tws));
    CHECK_OK(nll_fwd16(f, x, t, n, c, d, wp, NLLK_REDUCTION_MEAN, &rm, NULL));
    const int finite = isfinite((double)sum) && isfinite((double)wsum);
    if (finite) {
        const double s = ref_decode(f, rs), m = ref_decode(f, rm), ws = ref_decode(f, tws);
        CHECK(fabsl(s - sum) <= ref_ulp(f, (double)sum) || (isinf(s) && isinf(ref_round(f, (double)sum))),
              "%s nll sum %a vs %La", f->name, s, sum);
        CHECK(fabsl(ws - wsum) <= ref_ulp(f, (double)wsum), "%s nll total_weight %a vs %La", f->name, ws, wsum);
        if (wsum != 0)
            CHECK(fabsl(m - sum / wsum) <= ref_ulp(f, (double)(sum / wsum)), "%s nll mean %a vs %La", f->name, m,
                  sum / wsum);
    }
    nllk_acc acc;
    CHECK_OK(nllk_nll_acc_init(&acc, f->dt, NLLK_TARGET_I64, c, d, -100, 0));
    uint16_t *out2 = malloc(nd * 2);
    for (size_t e0 = 0; e0 < nd;) { /* chunks that start and end anywhere */
        const size_t want = 1000 + tu_below(5000), len = want < nd - e0 ? want : nd - e0;
        const uint16_t *xs = x + (e0 / d) * c * d;
        CHECK_OK(f->dt == NLLK_BF16 ? nllk_nll_acc_update_out_bf16(&acc, xs, t + e0, len, wp, out2 + e0)
                                    : nllk_nll_acc_update_out_f16(&acc, xs, t + e0, len, wp, out2 + e0));
        e0 += len;
    }
    CHECK(memcmp(out, out2, nd * 2) == 0, "%s nll: accumulator's out = one-shot none", f->name);
    double av, atw;
    CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_SUM, &av, &atw, NULL));
    CHECK(same16(f, rs, ref_round(f, av)), "%s nll: one-shot sum = the accumulator's double %a rounded once", f->name,
          av);
    CHECK(same16(f, tws, ref_round(f, atw)), "%s nll: total_weight = the accumulator's %a rounded once", f->name, atw);
    CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_MEAN, &av, NULL, NULL));
    CHECK(same16(f, rm, ref_round(f, av)), "%s nll: one-shot mean = the accumulator's double %a rounded once", f->name,
          av);

    /* backward: NONE, SUM, MEAN; at targets w * -g in float, rounded once (MEAN: g = go / total_weight in float,
     * rounded to the storage type first) */
    for (int r = 0; r < 3; r++) {
        const nllk_reduction red = r == 0 ? NLLK_REDUCTION_NONE : r == 1 ? NLLK_REDUCTION_SUM : NLLK_REDUCTION_MEAN;
        CHECK_OK(nll_bwd16(f, go, t, n, c, d, wp, red, tws, gx));
        float g1 = from16(f, go[0]);
        if (red == NLLK_REDUCTION_MEAN)
            g1 = (float)ref_round(f, (double)(g1 / from16(f, tws)));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < c; k++)
                for (size_t j = 0; j < d; j++) {
                    const size_t e = i * d + j;
                    const float g = red == NLLK_REDUCTION_NONE ? from16(f, go[e]) : g1;
                    double want = 0.0;
                    if (t[e] == (int64_t)k)
                        want = ref_round(f, (double)(weighted ? from16(f, w[k]) * -g : -g));
                    bad += !same16(f, gx[(i * c + k) * d + j], want);
                }
        CHECK(bad == 0, "%s nll bwd (%zu,%zu,%zu) w%d red %d: %zu wrong", f->name, n, c, d, weighted, r, bad);
    }
    free(x), free(w), free(out), free(out2), free(gx), free(go), free(t), free(lossf), free(wf);
}

/* ---- 3. Poisson: per element = the f32 function on the converted inputs, rounded once ------------------------ */
static void test_poisson(const fmt *f, size_t n, int li, int full)
{
    uint16_t *x = malloc(n * 2), *t = malloc(n * 2), *out = malloc(n * 2), *gx = malloc(n * 2), *gt = malloc(n * 2),
             *go = malloc(n * 2);
    float *xf = malloc(n * 4), *tf = malloc(n * 4), *of = malloc(n * 4), *gxf = malloc(n * 4), *gtf = malloc(n * 4),
          *gof = malloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        x[i] = li ? rand16(f, -6, 6) : rand16(f, 0, 8);
        t[i] = rand16(f, 0, 12);
        go[i] = rand16(f, -2, 2);
        xf[i] = from16(f, x[i]);
        tf[i] = from16(f, t[i]);
        gof[i] = from16(f, go[i]);
    }
    CHECK_OK(poi_fwd16(f, x, t, n, li, full, NLLK_REDUCTION_NONE, out));
    CHECK_OK(nllk_poisson_nll_fwd_f32(xf, tf, n, li, full, 1e-8, NLLK_REDUCTION_NONE, of));
    size_t bad = 0;
    long double sum = 0;
    for (size_t i = 0; i < n; i++) {
        bad += !same16(f, out[i], ref_round(f, of[i]));
        sum += of[i];
    }
    CHECK(bad == 0, "%s poisson li%d full%d fwd: %zu of %zu wrong", f->name, li, full, bad, n);
    uint16_t rs, rm;
    CHECK_OK(poi_fwd16(f, x, t, n, li, full, NLLK_REDUCTION_SUM, &rs));
    CHECK_OK(poi_fwd16(f, x, t, n, li, full, NLLK_REDUCTION_MEAN, &rm));
    if (isfinite((double)sum)) {
        CHECK(fabsl(ref_decode(f, rs) - sum) <= ref_ulp(f, (double)sum) || isinf(ref_round(f, (double)sum)),
              "%s poisson sum %a vs %La", f->name, ref_decode(f, rs), sum);
        CHECK(fabsl(ref_decode(f, rm) - sum / n) <= ref_ulp(f, (double)(sum / n)), "%s poisson mean %a vs %La", f->name,
              ref_decode(f, rm), sum / n);
    }
    nllk_acc acc;
    CHECK_OK(nllk_poisson_acc_init(&acc, f->dt, li, full, 1e-8, 0));
    uint16_t *out2 = malloc(n * 2);
    for (size_t e0 = 0; e0 < n;) {
        const size_t want = 777 + tu_below(9000), len = want < n - e0 ? want : n - e0;
        CHECK_OK(f->dt == NLLK_BF16 ? nllk_poisson_acc_update_out_bf16(&acc, x + e0, t + e0, len, out2 + e0)
                                    : nllk_poisson_acc_update_out_f16(&acc, x + e0, t + e0, len, out2 + e0));
        e0 += len;
    }
    CHECK(memcmp(out, out2, n * 2) == 0, "%s poisson: accumulator's out = one-shot none", f->name);
    double av;
    CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_MEAN, &av, NULL, NULL));
    CHECK(same16(f, rm, ref_round(f, av)), "%s poisson: one-shot mean = the accumulator's double rounded once",
          f->name);
    CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_SUM, &av, NULL, NULL));
    CHECK(same16(f, rs, ref_round(f, av)), "%s poisson: one-shot sum = the accumulator's double rounded once", f->name);

    for (int r = 0; r < 3; r++) {
        const nllk_reduction red = r == 0 ? NLLK_REDUCTION_NONE : r == 1 ? NLLK_REDUCTION_SUM : NLLK_REDUCTION_MEAN;
        CHECK_OK(poi_bwd16(f, x, t, n, li, full, red, go, gx, gt));
        /* the f32 function with the same (16-bit) factor: NONE the converted grad_output, SUM go[0], MEAN
         * go[0] / n in float rounded to the storage type */
        float g1 = gof[0];
        if (red == NLLK_REDUCTION_MEAN)
            g1 = (float)ref_round(f, (double)(g1 / (float)n));
        CHECK_OK(nllk_poisson_nll_bwd_f32(xf, tf, n, li, full, 1e-8,
                                          red == NLLK_REDUCTION_NONE ? NLLK_REDUCTION_NONE : NLLK_REDUCTION_SUM,
                                          red == NLLK_REDUCTION_NONE ? gof : &g1, gxf, gtf));
        bad = 0;
        for (size_t i = 0; i < n; i++)
            bad += !same16(f, gx[i], ref_round(f, gxf[i])) + !same16(f, gt[i], ref_round(f, gtf[i]));
        CHECK(bad == 0, "%s poisson li%d full%d bwd red %d: %zu wrong", f->name, li, full, r, bad);
    }
    free(x), free(t), free(out), free(out2), free(gx), free(gt), free(go);
    free(xf), free(tf), free(of), free(gxf), free(gtf), free(gof);
}

/* The 16-bit sum adds the f32 function's per-element values in double on the canonical tree (nllk.h section 2): its
 * double value is the tree sum (tests/testutil.h, written from the header) of nllk_poisson_nll_fwd_f32's values on the
 * converted inputs, bit for bit, one-shot and chunked. Targets spanning 2^-20 .. 2^lim make the losses span more than
 * a double's 53 bits, so the double sum depends on which elements each lane adds and in what order: a kernel that
 * loads 16-bit pairs in another order and misplaces them in the lanes fails here. */
/* noipa: with n a constant, gcc 12 follows tu_tree_node's recursion into a false -Warray-bounds; without it, it warns
 * that the inputs may be read uninitialized (n = 0), hence calloc */
static __attribute__((noipa)) void test_poisson_sum_order(const fmt *f, size_t n, int li, int full)
{
    uint16_t *x = malloc(n * 2), *t = malloc(n * 2);
    float *xf = calloc(n, 4), *tf = calloc(n, 4), *of = malloc(n * 4); /* calloc: n is not a constant here, see above */
    double *od = malloc(n * 8);
    const int lim = f->dt == NLLK_BF16 ? 60 : 14;
    for (size_t i = 0; i < n; i++) {
        x[i] = to16(f, li ? tu_uniform(-2, 2) : tu_uniform(0.5, 2));
        t[i] = to16(f, ldexp(tu_uniform(1, 2), (int)tu_below((unsigned)(lim + 21)) - 20));
        xf[i] = from16(f, x[i]);
        tf[i] = from16(f, t[i]);
    }
    CHECK_OK(nllk_poisson_nll_fwd_f32(xf, tf, n, li, full, 1e-8, NLLK_REDUCTION_NONE, of));
    for (size_t i = 0; i < n; i++)
        od[i] = of[i];
    const double want = tu_tree_sum(od, n);
    for (int chunked = 0; chunked < 2; chunked++) {
        nllk_acc acc;
        double v;
        CHECK_OK(nllk_poisson_acc_init(&acc, f->dt, li, full, 1e-8, 0));
        for (size_t e0 = 0; e0 < n;) {
            const size_t ask = chunked ? 1 + tu_below(300) : n, len = ask < n - e0 ? ask : n - e0;
            CHECK_OK(f->dt == NLLK_BF16 ? nllk_poisson_acc_update_bf16(&acc, x + e0, t + e0, len)
                                        : nllk_poisson_acc_update_f16(&acc, x + e0, t + e0, len));
            e0 += len;
        }
        CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_SUM, &v, NULL, NULL));
        CHECK(memcmp(&v, &want, sizeof v) == 0, "%s poisson li%d full%d n=%zu chunked %d: sum %a, the tree's %a",
              f->name, li, full, n, chunked, v, want);
    }
    free(x), free(t), free(xf), free(tf), free(of), free(od);
}

/* ---- 4. edge values through the public functions --------------------------------------------------------------- */
static void test_edges(const fmt *f)
{
    /* NLL (1, c) unweighted over every stored value: the loss -x is exact (NaN: the canonical NaN) */
    enum { C = 65536 };
    uint16_t *x = malloc(C * 2), *out = malloc(C * 2);
    int64_t *t = malloc(C * 8);
    for (size_t i = 0; i < C; i++) { /* n = C samples of one class each: sample i's input is x[i] */
        x[i] = (uint16_t)i;
        t[i] = 0;
    }
    CHECK_OK(nll_fwd16(f, x, t, C, 1, 1, NULL, NLLK_REDUCTION_NONE, out, NULL));
    size_t bad = 0;
    for (size_t i = 0; i < C; i++)
        bad += !same16(f, out[i], -ref_decode(f, (uint16_t)i));
    CHECK(bad == 0, "%s: -x over every stored value: %zu wrong", f->name, bad);
    /* weighted by one stored value w: -x*w, the float product rounded once (ties, overflow, denormals) */
    const uint16_t ws[] = {to16(f, 3.0),   to16(f, 0.5), to16(f, 1.5), to16(f, 7.0),
                           to16(f, -1.25), 0x0001,       0x8001,       f->dt == NLLK_BF16 ? 0x7f7f : 0x7bff};
    for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++) {
        CHECK_OK(nll_fwd16(f, x, t, C, 1, 1, &ws[k], NLLK_REDUCTION_NONE, out, NULL));
        bad = 0;
        for (size_t i = 0; i < C; i++)
            bad +=
                !same16(f, out[i], ref_round(f, (double)(float)(-ref_decode(f, (uint16_t)i) * ref_decode(f, ws[k]))));
        CHECK(bad == 0, "%s: -x*w, w = 0x%04x: %zu wrong", f->name, ws[k], bad);
    }
    /* a sum that overflows the format while the mean does not: double accumulation */
    const double big = f->dt == NLLK_BF16 ? 3e38 : 60000.0;
    for (size_t i = 0; i < 100; i++)
        x[i] = to16(f, -big);
    uint16_t s, m;
    CHECK_OK(nll_fwd16(f, x, t, 100, 1, 1, NULL, NLLK_REDUCTION_SUM, &s, NULL));
    CHECK_OK(nll_fwd16(f, x, t, 100, 1, 1, NULL, NLLK_REDUCTION_MEAN, &m, NULL));
    CHECK(isinf(ref_decode(f, s)) && ref_decode(f, s) > 0, "%s: sum of 100 x %g overflows to +Inf", f->name, big);
    CHECK(ref_decode(f, m) == ref_round(f, big), "%s: their mean is %g", f->name, ref_round(f, big));
    /* empty and all-ignored batches: mean NaN (the canonical NaN), sum +0 */
    t[0] = -100;
    CHECK_OK(nll_fwd16(f, x, t, 1, 1, 1, NULL, NLLK_REDUCTION_MEAN, &m, &s));
    CHECK(same16(f, m, NAN) && same16(f, s, 0.0), "%s: all ignored: mean NaN, total_weight 0", f->name);
    free(x), free(out), free(t);
}

/* ---- 4b. cross-entropy: every output = the f32 function's on the converted inputs, rounded once ---------------- */
static size_t count_bad(const fmt *f, const uint16_t *got, const float *want, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !same16(f, got[i], ref_round(f, want[i]));
    return bad;
}
static int ce_special = 1; /* test_ce's logits: 1 in 500 random bits (NaN, Inf, huge), else none */
static void test_ce(const fmt *f, size_t n, size_t c, size_t d, int weighted, double ls, int prob)
{
    const size_t nd = n * d, ncd = n * c * d;
    uint16_t *x = malloc(ncd * 2), *q = malloc(ncd * 2), *w = malloc(c * 2), *out = malloc(nd * 2),
             *lse = malloc(nd * 2), *gx = malloc(ncd * 2), *gq = malloc(ncd * 2), *go = malloc(nd * 2);
    float *xf = malloc(ncd * 4), *qf = malloc(ncd * 4), *wf = malloc(c * 4), *of = malloc(nd * 4), *lf = malloc(nd * 4),
          *gxf = malloc(ncd * 4), *gqf = malloc(ncd * 4), *gof = malloc(nd * 4);
    int64_t *t = malloc(nd * 8);
    for (size_t i = 0; i < ncd; i++) {
        x[i] = !ce_special || tu_below(500) ? to16(f, tu_uniform(-8, 8)) : (uint16_t)tu_next();
        q[i] = to16(f, tu_unit());
        xf[i] = from16(f, x[i]);
        qf[i] = from16(f, q[i]);
    }
    for (size_t k = 0; k < c; k++) {
        w[k] = to16(f, tu_uniform(0.25, 2));
        wf[k] = from16(f, w[k]);
    }
    for (size_t i = 0; i < nd; i++) {
        t[i] = tu_below(9) == 0 ? -100 : (int64_t)tu_below(c);
        go[i] = to16(f, tu_uniform(-2, 2));
        gof[i] = from16(f, go[i]);
    }
    const uint16_t *wp = weighted ? w : NULL;
    const float *wpf = weighted ? wf : NULL;
#define CE16(fn, ...) (f->dt == NLLK_BF16 ? fn##_bf16(__VA_ARGS__) : fn##_f16(__VA_ARGS__))
    for (int r = 0; r < 3; r++) {
        const nllk_reduction red = r == 0 ? NLLK_REDUCTION_NONE : r == 1 ? NLLK_REDUCTION_SUM : NLLK_REDUCTION_MEAN;
        uint16_t tw = 0;
        float twf = 0;
        if (prob) {
            CHECK_OK(CE16(nllk_cross_entropy_prob_fwd, x, q, n, c, d, wp, ls, red, out, lse));
            CHECK_OK(nllk_cross_entropy_prob_fwd_f32(xf, qf, n, c, d, wpf, ls, red, of, lf));
        } else {
            CHECK_OK(CE16(nllk_cross_entropy_fwd, x, t, NLLK_TARGET_I64, n, c, d, wp, -100, ls, red, out, &tw, lse));
            CHECK_OK(nllk_cross_entropy_fwd_f32(xf, t, NLLK_TARGET_I64, n, c, d, wpf, -100, ls, red, of, &twf, lf));
        }
        size_t bad = count_bad(f, lse, lf, nd);
        if (r == 0)
            bad += count_bad(f, out, of, nd);
        else /* the reduction: the same double total, rounded once to 16 bits (f32: to float) */
            CHECK(fabs(ref_decode(f, out[0]) - of[0]) <= ref_ulp(f, of[0]) + fabs(of[0]) * 0x1p-23 || isnan(of[0]) ||
                      (isinf(ref_decode(f, out[0])) && isinf(ref_round(f, of[0]))),
                  "%s ce reduction %d: %a vs f32 %a", f->name, r, ref_decode(f, out[0]), of[0]);
        CHECK(bad == 0, "%s ce (%zu,%zu,%zu) w%d ls %g prob %d red %d fwd: %zu wrong", f->name, n, c, d, weighted, ls,
              prob, r, bad);
        /* backward: with MEAN the factor go / count is rounded to the storage type first */
        float g1 = gof[0];
        const uint16_t *gop = go;
        if (r == 2) {
            const float den = prob ? (float)nd : from16(f, tw);
            g1 = (float)ref_round(f, (double)(g1 / den));
        }
        const float *gfp = r == 0 ? gof : &g1;
        const nllk_reduction fred = r == 0 ? NLLK_REDUCTION_NONE : NLLK_REDUCTION_SUM;
        if (prob) {
            CHECK_OK(CE16(nllk_cross_entropy_prob_bwd, gop, x, q, n, c, d, wp, ls, red, lse, gx, gq));
            CHECK_OK(nllk_cross_entropy_prob_bwd_f32(gfp, xf, qf, n, c, d, wpf, ls, fred, NULL, gxf, gqf));
            bad = count_bad(f, gx, gxf, ncd) + count_bad(f, gq, gqf, ncd);
        } else {
            CHECK_OK(CE16(nllk_cross_entropy_bwd, gop, x, t, NLLK_TARGET_I64, n, c, d, wp, -100, ls, red, tw, lse, gx));
            CHECK_OK(
                nllk_cross_entropy_bwd_f32(gfp, xf, t, NLLK_TARGET_I64, n, c, d, wpf, -100, ls, fred, 1.0f, NULL, gxf));
            bad = count_bad(f, gx, gxf, ncd);
        }
        CHECK(bad == 0, "%s ce (%zu,%zu,%zu) w%d ls %g prob %d red %d bwd: %zu wrong", f->name, n, c, d, weighted, ls,
              prob, r, bad);
    }
    /* the accumulator: chunked out = one-shot none; its double result rounded once = the one-shot mean */
    if (!prob) {
        nllk_acc acc;
        CHECK_OK(nllk_cross_entropy_acc_init(&acc, f->dt, NLLK_TARGET_I64, c, d, -100, ls, 0));
        uint16_t *out2 = malloc(nd * 2), m;
        CHECK_OK(CE16(nllk_cross_entropy_fwd, x, t, NLLK_TARGET_I64, n, c, d, wp, -100, ls, NLLK_REDUCTION_NONE, out,
                      NULL, NULL));
        for (size_t e0 = 0; e0 < nd;) {
            const size_t want = 1 + tu_below(700), len = want < nd - e0 ? want : nd - e0;
            CHECK_OK(CE16(nllk_cross_entropy_acc_update_out, &acc, x + (e0 / d) * c * d, t + e0, len, wp, out2 + e0));
            e0 += len;
        }
        CHECK(memcmp(out, out2, nd * 2) == 0, "%s ce: accumulator's out = one-shot none", f->name);
        double av;
        CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_MEAN, &av, NULL, NULL));
        CHECK_OK(CE16(nllk_cross_entropy_fwd, x, t, NLLK_TARGET_I64, n, c, d, wp, -100, ls, NLLK_REDUCTION_MEAN, &m,
                      NULL, NULL));
        CHECK(same16(f, m, ref_round(f, av)), "%s ce: one-shot mean = the accumulator's double rounded once", f->name);
        /* each position's loss before rounding (the accumulator's double, unrounded, over that position alone) = the
         * float32 path's on the same (widened) logits: every exp-sum and loss the f32 path's bits, whatever way the
         * 16-bit kernel walks a row */
        CHECK_OK(nllk_cross_entropy_fwd_f32(xf, t, NLLK_TARGET_I64, n, c, d, wpf, -100, ls, NLLK_REDUCTION_NONE, of,
                                            NULL, NULL));
        size_t differ = 0;
        for (size_t i = 0; i < nd; i++) {
            nllk_acc a1;
            double v;
            CHECK_OK(nllk_cross_entropy_acc_init(&a1, f->dt, NLLK_TARGET_I64, c, d, -100, ls, i));
            CHECK_OK(CE16(nllk_cross_entropy_acc_update, &a1, x + (i / d) * c * d, t + i, 1, wp));
            CHECK_OK(nllk_acc_result(&a1, NLLK_REDUCTION_SUM, &v, NULL, NULL));
            differ += !(v == (double)of[i] || (isnan(v) && isnan(of[i])));
        }
        CHECK(differ == 0, "%s ce (%zu,%zu,%zu) w%d ls %g: %zu losses differ from f32's before rounding", f->name, n, c,
              d, weighted, ls, differ);
        free(out2);
    }
#undef CE16
    free(x), free(q), free(w), free(out), free(lse), free(gx), free(gq), free(go), free(t);
    free(xf), free(qf), free(wf), free(of), free(lf), free(gxf), free(gqf), free(gof);
}

/* N-D class-index runs large enough for streaming stores (>= 32 MiB of logits), the gradient at offsets that put it
 * on and off the 2*VW-, VW- and element grids (bfloat16 on AVX-512 and AVX2 takes its planes in pairs of VW-position
 * groups, streaming where a pair is on the 2*VW grid): the backward = the f32 backward rounded once, element by
 * element; the fused call = the forward and the backward, bit for bit. Then bad targets in either half of a pair:
 * each call reports the lowest. */
static void test_ce_planes_big(const fmt *f)
{
    const size_t n = 1, c = 33, d = (size_t)1 << 19, nd = n * d, ncd = nd * c;
    uint16_t *x = malloc(ncd * 2), *gx = aligned_alloc(64, (ncd + 64) * 2), *g1 = malloc(ncd * 2), *w = malloc(c * 2);
    float *xf = malloc(ncd * 4), *gxf = malloc(ncd * 4);
    int64_t *t = malloc(nd * 8);
    for (size_t i = 0; i < ncd; i++) {
        x[i] = tu_below(1000) ? to16(f, tu_uniform(-8, 8)) : (uint16_t)tu_next();
        xf[i] = from16(f, x[i]);
    }
    for (size_t k = 0; k < c; k++)
        w[k] = to16(f, tu_uniform(0.25, 2));
    for (size_t i = 0; i < nd; i++)
        t[i] = tu_below(9) == 0 ? -100 : (int64_t)tu_below(c);
    const uint16_t go = to16(f, 0.75);
    const float gof = from16(f, go);
#define CE16(fn, ...) (f->dt == NLLK_BF16 ? fn##_bf16(__VA_ARGS__) : fn##_f16(__VA_ARGS__))
    CHECK_OK(nllk_cross_entropy_bwd_f32(&gof, xf, t, NLLK_TARGET_I64, n, c, d, NULL, -100, 0.0, NLLK_REDUCTION_SUM,
                                        1.0f, NULL, gxf));
    static const size_t shifts[] = {0, 1, 8, 16, 24};
    for (size_t si = 0; si < sizeof shifts / sizeof shifts[0]; si++) {
        uint16_t *g = gx + shifts[si];
        CHECK_OK(CE16(nllk_cross_entropy_bwd, &go, x, t, NLLK_TARGET_I64, n, c, d, NULL, -100, 0.0, NLLK_REDUCTION_SUM,
                      0, NULL, g));
        const size_t bad = count_bad(f, g, gxf, ncd);
        CHECK(bad == 0, "%s ce planes (%zu,%zu,%zu) gradient at +%zu: %zu wrong", f->name, n, c, d, shifts[si], bad);
    }
    for (int weighted = 0; weighted < 2; weighted++) {
        const uint16_t *wp = weighted ? w : NULL;
        uint16_t o0, o1, tw0, tw1;
        CHECK_OK(CE16(nllk_cross_entropy_fwd, x, t, NLLK_TARGET_I64, n, c, d, wp, -100, 0.0, NLLK_REDUCTION_MEAN, &o0,
                      &tw0, NULL));
        CHECK_OK(CE16(nllk_cross_entropy_bwd, &go, x, t, NLLK_TARGET_I64, n, c, d, wp, -100, 0.0, NLLK_REDUCTION_MEAN,
                      tw0, NULL, g1));
        for (size_t si = 0; si < 2; si++) {
            uint16_t *g = gx + shifts[si * 3]; /* +0, +16 */
            CHECK_OK(CE16(nllk_cross_entropy_fwdbwd, x, t, NLLK_TARGET_I64, n, c, d, wp, -100, 0.0, NLLK_REDUCTION_MEAN,
                          &o1, &tw1, NULL, &go, g));
            CHECK(o0 == o1 && tw0 == tw1 && memcmp(g, g1, ncd * 2) == 0,
                  "%s ce planes fused w%d at +%zu: differs from forward+backward", f->name, weighted, shifts[si * 3]);
        }
    }
    /* a bad target (c) alone at each of these positions of a (2, c, 100) input */
    static const size_t at[] = {3, 9, 19, 37, 63, 131, 199};
    for (size_t ai = 0; ai < sizeof at / sizeof at[0]; ai++) {
        int64_t tb[200];
        uint16_t out[200], m;
        for (size_t i = 0; i < 200; i++)
            tb[i] = i == at[ai] ? (int64_t)c : t[i];
        const nllk_status s0 = CE16(nllk_cross_entropy_fwd, x, tb, NLLK_TARGET_I64, 2, c, 100, NULL, -100, 0.0,
                                    NLLK_REDUCTION_NONE, out, NULL, NULL);
        const size_t i0 = nllk_last_error_index();
        const nllk_status s1 = CE16(nllk_cross_entropy_fwd, x, tb, NLLK_TARGET_I64, 2, c, 100, NULL, -100, 0.0,
                                    NLLK_REDUCTION_MEAN, &m, NULL, NULL);
        const size_t i1 = nllk_last_error_index();
        const nllk_status s2 = CE16(nllk_cross_entropy_bwd, &go, x, tb, NLLK_TARGET_I64, 2, c, 100, NULL, -100, 0.0,
                                    NLLK_REDUCTION_SUM, 0, NULL, g1);
        const size_t i2 = nllk_last_error_index();
        CHECK(s0 == NLLK_ERR_TARGET_OUT_OF_RANGE && s1 == s0 && s2 == s0 && i0 == at[ai] && i1 == at[ai] &&
                  i2 == at[ai],
              "%s ce planes bad target at %zu: %s %s %s, index %zu %zu %zu", f->name, at[ai], nllk_status_name(s0),
              nllk_status_name(s1), nllk_status_name(s2), i0, i1, i2);
    }
#undef CE16
    free(x), free(gx), free(g1), free(w), free(xf), free(gxf), free(t);
}

/* Class-index rows of c classes (odd, so the rows start at every offset from the vector and 64-byte line grids):
 * (16300, 1031) is large enough for streaming stores (>= 32 MiB of logits); from CE_PREFETCH_W classes the gradient
 * is prefetched for writing and takes ordinary stores instead. Either way the backward keeps the exps of a row and,
 * while it writes that row's gradient, folds the next row's max. Each row's largest logit sits at a position that
 * walks over the row, or over its first or last 64 classes (its partial lines); a few rows hold NaN or Inf. The
 * reference is the f32 backward of each row alone (no next row to fold), rounded once; the gradient at offsets on
 * and off the grids. */
static void test_ce_rows_big(const fmt *f, size_t n, size_t c)
{
    const size_t ncd = n * c;
    uint16_t *x = malloc(ncd * 2),
             *gx = aligned_alloc(64, ((ncd + 64) * 2 + 63) / 64 * 64) /* a multiple of the alignment */;
    float *xf = malloc(ncd * 4), *gxf = malloc(ncd * 4);
    int64_t *t = malloc(n * 8);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < c; k++)
            x[i * c + k] = tu_below(2000) ? to16(f, tu_uniform(-8, 8)) : (uint16_t)tu_next();
        const size_t top = i % 3 == 0 ? (i * 7) % c : i % 3 == 1 ? (i / 3) % 64 : c - 1 - (i / 3) % 64;
        x[i * c + top] = to16(f, 9.0); /* anywhere; in the first 64 classes; in the last 64 */
        t[i] = tu_below(9) == 0 ? -100 : (int64_t)tu_below(c);
    }
    for (size_t i = 0; i < ncd; i++)
        xf[i] = from16(f, x[i]);
    const uint16_t go = to16(f, 0.75);
    const float gof = from16(f, go);
    for (size_t i = 0; i < n; i++)
        CHECK_OK(nllk_cross_entropy_bwd_f32(&gof, xf + i * c, t + i, NLLK_TARGET_I64, 1, c, 1, NULL, -100, 0.0,
                                            NLLK_REDUCTION_SUM, 1.0f, NULL, gxf + i * c));
    static const size_t shifts[] = {0, 1, 8, 16, 24};
    for (size_t si = 0; si < sizeof shifts / sizeof shifts[0]; si++) {
        uint16_t *g = gx + shifts[si];
        CHECK_OK(f->dt == NLLK_BF16 ? nllk_cross_entropy_bwd_bf16(&go, x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100, 0.0,
                                                                  NLLK_REDUCTION_SUM, 0, NULL, g)
                                    : nllk_cross_entropy_bwd_f16(&go, x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100, 0.0,
                                                                 NLLK_REDUCTION_SUM, 0, NULL, g));
        const size_t bad = count_bad(f, g, gxf, ncd);
        CHECK(bad == 0, "%s ce rows (%zu,%zu) gradient at +%zu: %zu wrong", f->name, n, c, shifts[si], bad);
    }
    free(x), free(gx), free(xf), free(gxf), free(t);
}

/* The sum and mean of a one-block batch of costly rows (the threads share the block: the driver keeps each loss as
 * computed, not rounded) have the same bits on 1, 2 and 3 threads, and equal the accumulator's double rounded once. */
static void test_ce_threads(const fmt *f, size_t n, size_t c, int prob)
{
    const int had = nllk_get_num_threads();
    uint16_t *x = malloc(n * c * 2), *q = malloc(n * c * 2);
    int64_t *t = malloc(n * 8);
    for (size_t i = 0; i < n * c; i++) {
        x[i] = to16(f, tu_uniform(-8, 8));
        q[i] = to16(f, tu_unit() / (double)c);
    }
    for (size_t i = 0; i < n; i++)
        t[i] = tu_below(9) == 0 ? -100 : (int64_t)tu_below(c);
    uint16_t got[3][2];
    for (int th = 1; th <= 3; th++)
        for (int r = 0; r < 2; r++) {
            const nllk_reduction red = r ? NLLK_REDUCTION_MEAN : NLLK_REDUCTION_SUM;
            CHECK_OK(nllk_set_num_threads(th));
            if (prob)
                CHECK_OK(f->dt == NLLK_BF16
                             ? nllk_cross_entropy_prob_fwd_bf16(x, q, n, c, 1, NULL, 0.0, red, &got[th - 1][r], NULL)
                             : nllk_cross_entropy_prob_fwd_f16(x, q, n, c, 1, NULL, 0.0, red, &got[th - 1][r], NULL));
            else
                CHECK_OK(f->dt == NLLK_BF16 ? nllk_cross_entropy_fwd_bf16(x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100,
                                                                          0.0, red, &got[th - 1][r], NULL, NULL)
                                            : nllk_cross_entropy_fwd_f16(x, t, NLLK_TARGET_I64, n, c, 1, NULL, -100,
                                                                         0.0, red, &got[th - 1][r], NULL, NULL));
        }
    CHECK_OK(nllk_set_num_threads(had));
    nllk_acc acc;
    if (prob) {
        CHECK_OK(nllk_cross_entropy_prob_acc_init(&acc, f->dt, c, 1, 0.0, 0));
        CHECK_OK(f->dt == NLLK_BF16 ? nllk_cross_entropy_prob_acc_update_bf16(&acc, x, q, n, NULL)
                                    : nllk_cross_entropy_prob_acc_update_f16(&acc, x, q, n, NULL));
    } else {
        CHECK_OK(nllk_cross_entropy_acc_init(&acc, f->dt, NLLK_TARGET_I64, c, 1, -100, 0.0, 0));
        CHECK_OK(f->dt == NLLK_BF16 ? nllk_cross_entropy_acc_update_bf16(&acc, x, t, n, NULL)
                                    : nllk_cross_entropy_acc_update_f16(&acc, x, t, n, NULL));
    }
    double sum, mean;
    CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_SUM, &sum, NULL, NULL));
    CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_MEAN, &mean, NULL, NULL));
    for (int th = 0; th < 3; th++)
        CHECK(same16(f, got[th][0], ref_round(f, sum)) && same16(f, got[th][1], ref_round(f, mean)),
              "%s ce (%zu, %zu) prob %d on %d threads: sum 0x%04x mean 0x%04x, the accumulator's %a %a", f->name, n, c,
              prob, th + 1, got[th][0], got[th][1], sum, mean);
    free(x), free(q), free(t);
}

/* The case that tells the two apart: a batch of rows whose float losses all round down to 16 bits, so that the mean
 * of the rounded losses rounds to other bits than the mean of the losses (checked here: the witness). The one-shot
 * mean on 2 threads (one shared block) must be the latter. */
static void test_ce_block_witness(const fmt *f)
{
    enum { C = 1000, N = 96, POOL = 400 };
    float *xf = malloc((size_t)POOL * C * 4), *lf = malloc(POOL * 4);
    uint16_t *x = malloc((size_t)POOL * C * 2), *xs = malloc((size_t)N * C * 2);
    int64_t t[POOL], ts[N];
    int found = 0;
    for (int tries = 0; tries < 40 && !found; tries++) {
        for (size_t i = 0; i < (size_t)POOL * C; i++) {
            x[i] = to16(f, tu_uniform(-4, 4));
            xf[i] = from16(f, x[i]);
        }
        for (int k = 0; k < POOL; k++)
            t[k] = (int64_t)tu_below(C);
        CHECK_OK(nllk_cross_entropy_fwd_f32(xf, t, NLLK_TARGET_I64, POOL, C, 1, NULL, -100, 0.0, NLLK_REDUCTION_NONE,
                                            lf, NULL, NULL));
        size_t n = 0;
        long double exact = 0, rounded = 0;
        for (int k = 0; k < POOL && n < N; k++)
            if (ref_round(f, lf[k]) < lf[k]) { /* this row's loss rounds down */
                memcpy(xs + n * C, x + (size_t)k * C, C * 2);
                ts[n++] = t[k];
                exact += lf[k];
                rounded += ref_round(f, lf[k]);
            }
        found = n == N && ref_round(f, (double)(exact / N)) != ref_round(f, (double)(rounded / N));
    }
    CHECK(found, "%s: a batch whose mean of rounded losses rounds otherwise", f->name);
    if (found) {
        const int had = nllk_get_num_threads();
        double mean;
        nllk_acc acc;
        CHECK_OK(nllk_cross_entropy_acc_init(&acc, f->dt, NLLK_TARGET_I64, C, 1, -100, 0.0, 0));
        CHECK_OK(f->dt == NLLK_BF16 ? nllk_cross_entropy_acc_update_bf16(&acc, xs, ts, N, NULL)
                                    : nllk_cross_entropy_acc_update_f16(&acc, xs, ts, N, NULL));
        CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_MEAN, &mean, NULL, NULL));
        for (int th = 1; th <= 2; th++) {
            uint16_t m;
            CHECK_OK(nllk_set_num_threads(th));
            CHECK_OK(f->dt == NLLK_BF16 ? nllk_cross_entropy_fwd_bf16(xs, ts, NLLK_TARGET_I64, N, C, 1, NULL, -100, 0.0,
                                                                      NLLK_REDUCTION_MEAN, &m, NULL, NULL)
                                        : nllk_cross_entropy_fwd_f16(xs, ts, NLLK_TARGET_I64, N, C, 1, NULL, -100, 0.0,
                                                                     NLLK_REDUCTION_MEAN, &m, NULL, NULL));
            CHECK(same16(f, m, ref_round(f, mean)), "%s: witness batch mean on %d threads 0x%04x, want %a rounded",
                  f->name, th, m, mean);
        }
        CHECK_OK(nllk_set_num_threads(had));
    }
    free(xf), free(lf), free(x), free(xs);
}

/* ---- 5. the hardware converters, against the software rounding: where the maps may use them -------------------
 * vcvtneps2bf16 (AVX-512 BF16) and vcvtps2ph (F16C) round to nearest even like kernels/common/half.h on every finite
 * input except (bf16) float denormals, which it flushes to +-0; NaNs keep their payload (truncated, quieted)
 * where nllk (as c10) gives the canonical NaN. This test checks that claim (nllk.h, kernels/avx512/vec.h) on the
 * CPUs that have the instructions: every difference is in those classes, and the classes do differ. So the AVX-512
 * map converts float16 with vcvtps2ph / vcvtph2ps and fixes up only NaN lanes; bfloat16 stays in software. */
#if defined(__x86_64__) && defined(__GNUC__)
#    include <immintrin.h>
__attribute__((target("avx512f,avx512bf16,avx512vl"))) static void hw_bf16(const float *f, uint16_t *h)
{
    const __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(f));
    memcpy(h, &r, 32);
}
__attribute__((target("f16c,avx"))) static void hw_f16(const float *f, uint16_t *h)
{
    const __m128i r = _mm256_cvtps_ph(_mm256_loadu_ps(f), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    memcpy(h, &r, 16);
}
static void test_hardware(void)
{
    __builtin_cpu_init();
    const int has_bf16 = __builtin_cpu_supports("avx512bf16"), has_f16c = __builtin_cpu_supports("f16c");
    size_t diff[2][3] = {{0}}; /* [bf16, f16][denormal input, NaN, other] */
    float f[16];
    uint16_t h[16];
    tu_seed(77);
    for (int it = 0; it < (1 << 18); it++) {
        for (int i = 0; i < 16; i++) { /* random bits, biased to denormals and NaNs */
            uint32_t u = (uint32_t)tu_next();
            const int k = (int)tu_below(4);
            if (k == 0)
                u &= 0x807fffffu; /* a denormal */
            else if (k == 1)
                u |= 0x7f800000u; /* Inf or NaN */
            f[i] = nllk_f32_of_bits(u);
        }
        for (int fm = 0; fm < 2; fm++) {
            if (fm == 0 ? !has_bf16 : !has_f16c)
                continue;
            for (int half = 0; half < (fm ? 2 : 1); half++) {
                if (fm == 0)
                    hw_bf16(f, h);
                else
                    hw_f16(f + 8 * half, h + 8 * half);
            }
            for (int i = 0; i < 16; i++) {
                const uint16_t sw = fm == 0 ? nllk_f32_to_bf16(f[i]) : nllk_f32_to_f16(f[i]);
                if (sw == h[i])
                    continue;
                const uint32_t a = nllk_f32_bits(f[i]) & 0x7fffffffu;
                diff[fm][a > 0x7f800000u ? 1 : a < 0x00800000u ? 0 : 2]++;
            }
        }
    }
    if (has_bf16) {
        printf("vcvtneps2bf16 vs software: %zu denormal inputs, %zu NaNs, %zu others differ\n", diff[0][0], diff[0][1],
               diff[0][2]);
        CHECK(diff[0][2] == 0 && diff[0][0] > 0 && diff[0][1] > 0, "vcvtneps2bf16 differs only on denormals, NaNs");
    }
    if (has_f16c) {
        printf("vcvtps2ph vs software: %zu denormal inputs, %zu NaNs, %zu others differ\n", diff[1][0], diff[1][1],
               diff[1][2]);
        CHECK(diff[1][2] == 0 && diff[1][0] == 0 && diff[1][1] > 0, "vcvtps2ph differs only on NaNs");
    }
}
#else
static void test_hardware(void) {}
#endif

int main(void)
{
    tu_require_isa();
    printf("ISA %s\n", nllk_active_isa());
    test_hardware();
    const fmt *fs[] = {&BF16, &F16};
    for (int k = 0; k < 2; k++) {
        const fmt *f = fs[k];
        tu_seed(1000 + (uint64_t)k);
        test_conversions(f);
        test_edges(f);
        test_nll(f, 3000, 17, 1, 1);
        test_nll(f, 3000, 17, 1, 0);
        test_nll(f, 3, 5, 4099, 1);
        test_nll(f, 2, 21, 20000, 0);
        test_nll(f, 40000, 3, 1, 1); /* narrow rows: the prefetching forward, the pieces backward */
        for (int li = 0; li < 2; li++)
            for (int full = 0; full < 2; full++)
                test_poisson(f, 100003, li, full);
        for (int li = 0; li < 2; li++)
            for (int full = 0; full < 2; full++) {
                test_poisson_sum_order(f, 4099, li, full);
                test_poisson_sum_order(f, 70001, li, full);
            }
        for (int prob = 0; prob < 2; prob++) {
            test_ce(f, 300, 37, 1, 1, 0.0, prob);
            test_ce(f, 200, 5, 1, 0, 0.1, prob);
            test_ce(f, 2, 21, 300, 1, 0.2, prob);
            test_ce(f, 3, 1000, 1, 0, 0.0, prob);
            /* LLM vocabularies (rows beyond the backward's stack buffer of exps, which it computes again), and N-D
             * runs beyond the planes' one */
            test_ce(f, 40, 32000, 1, 1, 0.1, prob);
            ce_special = 0;
            test_ce(f, 24, 32000, 1, 0, 0.0, prob);
            test_ce(f, 3, (size_t)1 << 18, 1, 1, 0.0, prob);
            test_ce(f, 2, (size_t)1 << 18, 1, 0, 0.05, prob);
            test_ce(f, 2, 300, 40, 1, 0.0, prob);
            ce_special = 1;
            /* N-D without smoothing: bfloat16 on AVX-512 and AVX2 takes these planes in pairs (exps kept, computed
             * again beyond 128 classes), with tails */
            test_ce(f, 2, 21, 300, 1, 0.0, prob);
            test_ce(f, 3, 150, 70, 0, 0.0, prob);
            test_ce(f, 1, 64, 70, 1, 0.0, prob);
            test_ce(f, 2, 300, 37, 0, 0.1, prob);
            test_ce_threads(f, 100, 1000, prob);
            test_ce_threads(f, 40, 32000, prob);
        }
        test_ce_block_witness(f);
        test_ce_planes_big(f);
        test_ce_rows_big(f, 16300, 1031); /* streamed gradient */
        test_ce_rows_big(f, 600, 8219);  /* CE_PREFETCH_W classes or more: prefetched, ordinary stores */
    }
    return tu_summary();
}
