/* The public API against a reference written separately from the library: plain loops in long double, from the
 * semantics of nllk.h section 1 and design.md (PyTorch's), never from the library's code.
 *
 *   Poisson fwd/bwd, f32/f64: log_input, full, eps (1e-8, 0, 0.5), every reduction, sizes around the 16-lane and
 *   4096-element block edges up to ~100000 (threaded), targets <=1, ==1, >1, 0, negative; NaN/Inf inputs, exp
 *   overflow, x = 0 with log_input = 0; grad_target NULL or not.
 *   NLL fwd/bwd, f32/f64, i64/i32/u8 targets: (C), (N,C), (N,C,d) with d crossing block edges, C = 1, N = 0,
 *   d = 0, c = 0, weights NULL/positive/with zeros/negative/all zero, ignore_index inside and outside [0, C),
 *   all ignored; total_weight; backward at the target positions and exact zeros elsewhere.
 *
 * Tolerances:
 *   per element  Poisson within TOL_ULP machine epsilons of the magnitude of the terms involved (|exp(x)| +
 *                |t*x|, ...), since the difference can cancel; NLL exact (one multiply and a sign change).
 *   reductions   within 1e-6 (f32) / 1e-12 (f64) relative of the long-double sum of the library's own
 *                per-element values, bit-for-bit equal to the canonical tree of nllk.h section 2 over those
 *                values, and within a looser bound of the fully independent long-double reference.
 * Every call also checks: inputs unchanged, nothing written just outside an output, the same bits when called
 * again. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nllk.h"
#include "testutil.h"

#define TOL_ULP 4.0 /* per-element Poisson tolerance, in machine epsilons of the terms' magnitude */
static const long double PI_L = 3.141592653589793238462643383279502884L;

static double rel_tol(nllk_dtype dt) { return dt == NLLK_F32 ? 1e-6 : 1e-12; }
/* absolute floor for results that underflow to subnormals */
static double tiny_tol(nllk_dtype dt)
{
    return dt == NLLK_F32 ? 4.0 * FLT_MIN * FLT_EPSILON : 4.0 * DBL_MIN * DBL_EPSILON;
}

/* worst per-element errors seen, in machine epsilons of the magnitude (printed at the end) */
static double worst_fwd, worst_gx, worst_gt;

static void note_err(double *worst, double err, double mag, nllk_dtype dt)
{
    if (mag >= (dt == NLLK_F32 ? FLT_MIN : DBL_MIN) && isfinite(err)) {
        const double r = err / (mag * tu_eps(dt));
        if (r > *worst)
            *worst = r;
    }
}

/* the value v would have after being computed in the dtype, as far as its range goes: Inf if it overflows */
static long double ovf(nllk_dtype dt, long double v)
{
    const double r = tu_round(dt, v);
    return isinf(r) ? (long double)r : v;
}

/* ======================================================================================================== */
/* Poisson reference                                                                                        */
/* ======================================================================================================== */

typedef struct {
    int li, full;
    double eps;       /* as passed                           */
    long double epsT; /* eps rounded to the dtype (nllk.h)    */
} popts;

static long double p_loss(nllk_dtype dt, long double x, long double t, const popts *o, long double *mag)
{
    long double v, m;
    if (o->li) {
        const long double e = ovf(dt, expl(x)), tx = ovf(dt, t * x);
        v = ovf(dt, e - tx);
        m = fabsl(e) + fabsl(tx);
    } else {
        const long double s = ovf(dt, x + o->epsT), tl = ovf(dt, t * logl(s));
        v = ovf(dt, x - tl);
        m = fabsl(x) + fabsl(tl) + fabsl(t); /* |t|: x + eps is rounded in the dtype before the log */
    }
    if (o->full && !(t <= 1)) { /* PyTorch's mask: t <= 1 gives 0 (a NaN target stays NaN) */
        const long double a = ovf(dt, t * logl(t)), h = 0.5L * logl(2 * PI_L * t);
        v = ovf(dt, v + (a - t + h));
        m += fabsl(a) + fabsl(t) + fabsl(h);
    }
    *mag = m;
    return v;
}

static long double p_grad_x(nllk_dtype dt, long double x, long double t, const popts *o, long double g,
                            long double *mag)
{
    if (o->li) {
        const long double a = ovf(dt, g * ovf(dt, expl(x))), b = ovf(dt, g * t);
        *mag = fabsl(a) + fabsl(b);
        return ovf(dt, a - b);
    }
    const long double s = ovf(dt, x + o->epsT), q = ovf(dt, ovf(dt, g * t) / s);
    *mag = fabsl(g) + fabsl(q);
    return ovf(dt, g - q);
}

static long double p_grad_t(nllk_dtype dt, long double x, long double t, const popts *o, long double g,
                            long double *mag)
{
    long double v, m;
    if (o->li) {
        v = ovf(dt, -(g * x));
        m = fabsl(g * x);
    } else {
        const long double s = ovf(dt, x + o->epsT), gl = ovf(dt, g * logl(s));
        v = -gl;
        m = fabsl(gl) + fabsl(g);
    }
    /* full's term is constant 0 where t <= 1, so it adds nothing there (nllk's documented choice: no NaN);
     * a NaN target is not <= 1 and propagates, as in PyTorch */
    if (o->full && !(t <= 1)) {
        const long double a = ovf(dt, g * (logl(t) + 0.5L / t));
        v = ovf(dt, v + a);
        m += fabsl(g) * (fabsl(logl(t)) + 0.5L / t) + fabsl(a);
    }
    *mag = m;
    return v;
}

/* ---- data ---------------------------------------------------------------------------------------------- */
static double p_target(void)
{
    switch (tu_below(8)) {
    case 0: return 0.0;
    case 1: return 1.0;
    case 2: return tu_uniform(0.0, 1.0);
    case 3: return tu_uniform(1.0, 2.0);
    case 4:
    case 5: return (double)(2 + tu_below(29));
    case 6: return tu_uniform(1.0, 100.0);
    default: return tu_uniform(-5.0, 0.0);
    }
}
/* finite data whose losses are finite (x > 0 for log_input = 0 unless eps > 0) */
static double p_input(nllk_dtype dt, const popts *o)
{
    if (o->li) {
        switch (tu_below(16)) {
        case 0: return 0.0;
        case 1: return tu_uniform(-80.0, -20.0);
        case 2: return dt == NLLK_F32 ? tu_uniform(-104.0, -86.0) : tu_uniform(-745.0, -700.0); /* subnormal exp */
        case 3: return tu_uniform(20.0, 80.0);
        default: return tu_uniform(-6.0, 6.0);
        }
    }
    switch (tu_below(16)) {
    case 0: return o->eps > 0 ? 0.0 : 1e-30;
    case 1: return tu_uniform(1e-7, 1e-5);
    case 2: return tu_uniform(100.0, 1e4);
    case 3: return 1.0;
    default: return tu_uniform(1e-3, 8.0);
    }
}

/* special (x, t) values: NaN, Inf, exp overflow, x = 0 and x < 0 for log_input = 0 */
static size_t p_specials(nllk_dtype dt, const popts *o, void *x, void *t)
{
    const double big = dt == NLLK_F32 ? 89.0 : 710.0, huge = dt == NLLK_F32 ? 1e30 : 1e200;
    const double xs_li[] = {NAN, INFINITY, -INFINITY, big, 2 * big, 1000.0, 0.0, -1000.0, -big, 1.5};
    const double xs_r[] = {NAN, INFINITY, -INFINITY, 0.0, -1.0, -(double)o->epsT, huge, 1e-30, 2.0, -0.0};
    const double ts[] = {NAN, INFINITY, -INFINITY, 0.0, 1.0, -2.0, 0.5, 3.0, huge, 1.0000001};
    const double *xs = o->li ? xs_li : xs_r;
    const size_t nx = 10, nt = sizeof ts / sizeof ts[0];
    size_t k = 0;
    for (size_t a = 0; a < nx; a++)
        for (size_t b = 0; b < nt; b++, k++) {
            tu_set(dt, x, k, xs[a]);
            tu_set(dt, t, k, ts[b]);
        }
    return k;
}

/* ---- one Poisson configuration over given data ---------------------------------------------------------- */
static void poisson_case(nllk_dtype dt, size_t n, const popts *o, const void *x, const void *t, const char *what)
{
    const size_t es = tu_esz(dt);
    void *xs = tu_dup(x, n * es), *ts = tu_dup(t, n * es); /* inputs, to check they stay unmodified */
#define INPUTS_INTACT(call)                                                                                    \
    CHECK((n == 0 || (memcmp(x, xs, n * es) == 0 && memcmp(t, ts, n * es) == 0)),                               \
          "%s: %s modified its inputs", what, call)
    long double *ref = malloc((n + 1) * sizeof *ref), *mag = malloc((n + 1) * sizeof *mag);
    double *own = malloc((n + 1) * sizeof *own);
    void *out = tu_galloc(n * es);
    char ctx[256];

    /* ---- forward, none ---- */
    CHECK_OK(tu_poisson_fwd(dt, n ? x : NULL, n ? t : NULL, n, o->li, o->full, o->eps, NLLK_REDUCTION_NONE,
                            n ? out : NULL));
    INPUTS_INTACT("fwd none");
    CHECK(tu_gcheck(out), "%s: fwd none wrote outside out", what);
    long double sum_ref = 0, sum_mag = 0, sum_own = 0, sum_own_abs = 0;
    long fails = 0;
    for (size_t i = 0; i < n; i++) {
        const long double xi = tu_get(dt, x, i), ti = tu_get(dt, t, i);
        ref[i] = p_loss(dt, xi, ti, o, &mag[i]);
        own[i] = tu_get(dt, out, i);
        const double want = tu_round(dt, ref[i]), err = fabs(own[i] - (double)ref[i]);
        if (isfinite(want))
            note_err(&worst_fwd, err, (double)mag[i], dt);
        if (!tu_close(own[i], want, TOL_ULP * tu_eps(dt) * (double)mag[i] + tiny_tol(dt)) && fails++ < 5)
            CHECK(0, "%s: loss[%zu] x=%.9g t=%.9g: got %.17g want %.17Lg (mag %.3Lg)", what, i, tu_get(dt, x, i),
                  tu_get(dt, t, i), own[i], ref[i], mag[i]);
        sum_ref += ref[i], sum_mag += mag[i];
        sum_own += own[i], sum_own_abs += fabsl((long double)own[i]);
    }
    CHECK(fails == 0, "%s: %ld per-element losses out of tolerance", what, fails);
    /* again: the same bits */
    void *out2 = tu_galloc(n * es);
    CHECK_OK(tu_poisson_fwd(dt, x, t, n, o->li, o->full, o->eps, NLLK_REDUCTION_NONE, n ? out2 : NULL));
    INPUTS_INTACT("fwd none again");
    CHECK(n == 0 || memcmp(out, out2, n * es) == 0, "%s: fwd none not reproducible", what);
    tu_gfree(out2);

    /* ---- forward, mean and sum ---- */
    const double tree = tu_tree_sum(own, n);
    for (int r = NLLK_REDUCTION_MEAN; r <= NLLK_REDUCTION_SUM; r++) {
        const int mean = r == NLLK_REDUCTION_MEAN;
        snprintf(ctx, sizeof ctx, "%s %s", what, mean ? "mean" : "sum");
        double got = NAN, again = NAN;
        void *o1 = tu_galloc(es), *o2 = tu_galloc(es);
        tu_set(dt, o1, 0, -12345.0);
        CHECK_OK(tu_poisson_fwd(dt, n ? x : NULL, n ? t : NULL, n, o->li, o->full, o->eps, r, o1));
        INPUTS_INTACT(ctx);
        CHECK(tu_gcheck(o1), "%s: wrote outside out", ctx);
        got = tu_get(dt, o1, 0);
        CHECK_OK(tu_poisson_fwd(dt, x, t, n, o->li, o->full, o->eps, r, o2));
        INPUTS_INTACT(ctx);
        again = tu_get(dt, o2, 0);
        CHECK(memcmp(o1, o2, es) == 0, "%s: not reproducible: %.17g then %.17g", ctx, got, again);
        tu_gfree(o1), tu_gfree(o2);
        if (n == 0) {
            if (mean)
                CHECK(isnan(got), "%s: n=0 mean is %.17g, not NaN", ctx, got);
            else
                CHECK(got == 0 && !signbit(got), "%s: n=0 sum is %.17g, not +0", ctx, got);
            continue;
        }
        const long double div = mean ? (long double)n : 1.0L;
        /* bit-for-bit: the canonical tree over the library's own per-element values */
        const double want_tree = tu_round(dt, mean ? tree / (double)n : tree);
        CHECK(tu_same(dt, got, want_tree), "%s: %.17g != canonical tree %.17g", ctx, got, want_tree);
        /* tight: the long-double sum of the library's own values */
        const long double own_v = sum_own / div;
        const double tol_own = rel_tol(dt) * fabs((double)own_v) + 1e-15 * (double)(sum_own_abs / div);
        CHECK(tu_close(got, tu_round(dt, own_v), tol_own), "%s: %.17g vs own-values sum %.17Lg (tol %.3g)", ctx,
              got, own_v, tol_own);
        /* loose: the independent reference */
        const long double ref_v = sum_ref / div;
        const double tol_ref = rel_tol(dt) * fabs((double)ref_v) + TOL_ULP * tu_eps(dt) * (double)(sum_mag / div);
        CHECK(tu_close(got, tu_round(dt, ref_v), tol_ref), "%s: %.17g vs reference %.17Lg (tol %.3g)", ctx, got,
              ref_v, tol_ref);
    }

    /* ---- backward ---- */
    void *go = malloc((n + 1) * es), *gx = tu_galloc(n * es), *gt = tu_galloc(n * es), *gx2 = tu_galloc(n * es);
    for (int r = NLLK_REDUCTION_NONE; r <= NLLK_REDUCTION_SUM; r++) {
        snprintf(ctx, sizeof ctx, "%s bwd %s", what, r == 0 ? "none" : r == 1 ? "mean" : "sum");
        const size_t ng = r == NLLK_REDUCTION_NONE ? n : 1;
        for (size_t i = 0; i < ng; i++)
            tu_set(dt, go, i, tu_below(10) == 0 ? 0.0 : tu_uniform(-2.0, 2.0));
        if (r != NLLK_REDUCTION_NONE && tu_get(dt, go, 0) == 0)
            tu_set(dt, go, 0, 0.75);
        void *gos = tu_dup(go, ng * es);
        CHECK_OK(tu_poisson_bwd(dt, n ? x : NULL, n ? t : NULL, n, o->li, o->full, o->eps, r,
                                (r == NLLK_REDUCTION_NONE && n == 0) ? NULL : go, n ? gx : NULL, n ? gt : NULL));
        INPUTS_INTACT(ctx);
        CHECK(ng == 0 || memcmp(go, gos, ng * es) == 0, "%s: grad_output modified", ctx);
        CHECK(tu_gcheck(gx) && tu_gcheck(gt), "%s: wrote outside grad_input/grad_target", ctx);
        /* grad_target NULL: the same grad_input bits */
        CHECK_OK(tu_poisson_bwd(dt, x, t, n, o->li, o->full, o->eps, r, go, n ? gx2 : NULL, NULL));
        INPUTS_INTACT(ctx);
        CHECK(ng == 0 || memcmp(go, gos, ng * es) == 0, "%s: grad_output modified", ctx);
        CHECK(n == 0 || memcmp(gx, gx2, n * es) == 0, "%s: grad_input differs with grad_target NULL", ctx);
        CHECK(tu_gcheck(gx2), "%s: wrote outside grad_input", ctx);
        /* g: grad_output[i], grad_output, or grad_output / n in the dtype */
        const double gscalar = r == NLLK_REDUCTION_MEAN ? tu_div(dt, tu_get(dt, go, 0), (double)n)
                               : r == NLLK_REDUCTION_SUM ? tu_get(dt, go, 0) : 0.0;
        long fx = 0, ft = 0;
        for (size_t i = 0; i < n; i++) {
            /* large n, mean and sum (the same formula as none with a constant g): every 5th element, and all
             * near the block edges and the end */
            if (n > 5000 && r != NLLK_REDUCTION_NONE && i % 5 != 0 && (i + 24) % NLLK_BLOCK > 48 && i + 40 < n)
                continue;
            const long double xi = tu_get(dt, x, i), ti = tu_get(dt, t, i);
            const long double g = r == NLLK_REDUCTION_NONE ? (long double)tu_get(dt, go, i) : (long double)gscalar;
            long double mx, mt;
            const long double rx = p_grad_x(dt, xi, ti, o, g, &mx), rt = p_grad_t(dt, xi, ti, o, g, &mt);
            const double vx = tu_get(dt, gx, i), vt = tu_get(dt, gt, i);
            const double wx = tu_round(dt, rx), wt = tu_round(dt, rt);
            if (isfinite(wx))
                note_err(&worst_gx, fabs(vx - (double)rx), (double)mx, dt);
            if (isfinite(wt))
                note_err(&worst_gt, fabs(vt - (double)rt), (double)mt, dt);
            if (!tu_close(vx, wx, TOL_ULP * tu_eps(dt) * (double)mx + tiny_tol(dt)) && fx++ < 5)
                CHECK(0, "%s: grad_input[%zu] x=%.9g t=%.9g g=%.9Lg: got %.17g want %.17Lg (mag %.3Lg)", ctx, i,
                      (double)xi, (double)ti, g, vx, rx, mx);
            if (!tu_close(vt, wt, TOL_ULP * tu_eps(dt) * (double)mt + tiny_tol(dt)) && ft++ < 5)
                CHECK(0, "%s: grad_target[%zu] x=%.9g t=%.9g g=%.9Lg: got %.17g want %.17Lg (mag %.3Lg)", ctx, i,
                      (double)xi, (double)ti, g, vt, rt, mt);
        }
        CHECK(fx == 0 && ft == 0, "%s: %ld grad_input, %ld grad_target values out of tolerance", ctx, fx, ft);
        free(gos);
    }
    free(go);
    tu_gfree(gx), tu_gfree(gt), tu_gfree(gx2);
    tu_gfree(out);
    free(ref), free(mag), free(own), free(xs), free(ts);
#undef INPUTS_INTACT
}

static void test_poisson(void)
{
    const size_t sizes[] = {0, 1, 15, 16, 17, 4095, 4096, 4097, 3 * 4096 + 5, 100003};
    const double epss[] = {1e-8, 0.0, 0.5};
    const size_t nmax = 100003;
    for (int dti = 0; dti < 2; dti++) {
        const nllk_dtype dt = dti ? NLLK_F64 : NLLK_F32;
        void *x = malloc(nmax * tu_esz(dt)), *t = malloc(nmax * tu_esz(dt));
        int cyc = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const size_t n = sizes[si];
            for (int li = 1; li >= 0; li--)
                for (int full = 0; full <= 1; full++)
                    for (int ei = 0; ei < 3; ei++) {
                        /* eps is ignored with log_input: one value per configuration, cycling */
                        if (li && ei != (cyc++ % 3))
                            continue;
                        /* the larger sizes: a subset of the options (n = 12293: four; n = 100003: two,
                         * different ones per dtype) */
                        if (n > 5000 && !li && ei != (full ? 0 : 1 + (int)(si & 1)))
                            continue;
                        if (n > 50000 && full != (li ? dti : !dti))
                            continue;
                        popts o = {li, full, epss[ei], (long double)tu_round(dt, epss[ei])};
                        tu_seed(1000 * si + 100 * dti + 10 * li + 2 * full + ei);
                        for (size_t i = 0; i < n; i++) {
                            tu_set(dt, x, i, p_input(dt, &o));
                            tu_set(dt, t, i, p_target());
                        }
                        char what[160];
                        snprintf(what, sizeof what, "poisson %s n=%zu log_input=%d full=%d eps=%g", tu_dtname(dt), n,
                                 li, full, o.eps);
                        poisson_case(dt, n, &o, x, t, what);
                    }
        }
        /* the special values, alone and inside a long array (so that they hit vector lanes and tails) */
        for (int li = 1; li >= 0; li--)
            for (int full = 0; full <= 1; full++)
                for (int ei = 0; ei < 3; ei++) {
                    popts o = {li, full, epss[ei], (long double)tu_round(dt, epss[ei])};
                    const size_t k = p_specials(dt, &o, x, t);
                    char what[160];
                    snprintf(what, sizeof what, "poisson specials %s log_input=%d full=%d eps=%g", tu_dtname(dt), li,
                             full, o.eps);
                    poisson_case(dt, k, &o, x, t, what);
                    /* scattered among clean data: 4097 elements */
                    tu_seed(777 + li * 10 + full * 3 + ei);
                    const size_t n = 4097;
                    void *xx = malloc(n * tu_esz(dt)), *tt = malloc(n * tu_esz(dt));
                    for (size_t i = 0; i < n; i++) {
                        tu_set(dt, xx, i, p_input(dt, &o));
                        tu_set(dt, tt, i, p_target());
                    }
                    for (size_t j = 0; j < k; j++) {
                        const size_t at = (j * 37 + 11) % n;
                        tu_set(dt, xx, at, tu_get(dt, x, j));
                        tu_set(dt, tt, at, tu_get(dt, t, j));
                    }
                    snprintf(what, sizeof what, "poisson specials scattered %s log_input=%d full=%d eps=%g",
                             tu_dtname(dt), li, full, o.eps);
                    poisson_case(dt, n, &o, xx, tt, what);
                    free(xx), free(tt);
                }
        /* exp overflow only: sum and mean are +Inf, not NaN */
        {
            popts o = {1, 0, 1e-8, (long double)tu_round(dt, 1e-8)};
            const size_t n = 33;
            for (size_t i = 0; i < n; i++) {
                tu_set(dt, x, i, i == 20 ? (dt == NLLK_F32 ? 100.0 : 1000.0) : 0.5);
                tu_set(dt, t, i, 2.0);
            }
            poisson_case(dt, n, &o, x, t, "poisson exp overflow");
            for (int r = NLLK_REDUCTION_MEAN; r <= NLLK_REDUCTION_SUM; r++) {
                double v[2];
                void *o1 = v;
                CHECK_OK(tu_poisson_fwd(dt, x, t, n, 1, 0, 1e-8, r, o1));
                CHECK(isinf(tu_get(dt, o1, 0)) && tu_get(dt, o1, 0) > 0, "exp overflow: %s is %g, not +Inf",
                      r == 1 ? "mean" : "sum", tu_get(dt, o1, 0));
            }
        }
        free(x), free(t);
    }
    /* eps is rounded to the dtype: 1e-8 and its f32 rounding give the same f32 result; 0.1 and (double)0.1f
     * differ in f64 only */
    {
        const float x32[3] = {0.0f, 0.25f, 2.0f}, t32[3] = {2.0f, 3.0f, 0.5f};
        float a[3], b[3];
        CHECK_OK(nllk_poisson_nll_fwd_f32(x32, t32, 3, 0, 0, 1e-8, NLLK_REDUCTION_NONE, a));
        CHECK_OK(nllk_poisson_nll_fwd_f32(x32, t32, 3, 0, 0, (double)1e-8f, NLLK_REDUCTION_NONE, b));
        CHECK(memcmp(a, b, sizeof a) == 0, "f32 eps not rounded to f32 first");
        /* eps ignored with log_input */
        CHECK_OK(nllk_poisson_nll_fwd_f32(x32, t32, 3, 1, 0, 0.0, NLLK_REDUCTION_NONE, a));
        CHECK_OK(nllk_poisson_nll_fwd_f32(x32, t32, 3, 1, 0, 123.0, NLLK_REDUCTION_NONE, b));
        CHECK(memcmp(a, b, sizeof a) == 0, "eps changed a log_input result");
        /* x = 0, eps = 0, log_input = 0: t > 0 gives +Inf, t = 0 NaN (0 * -Inf), t < 0 -Inf */
        const float z[3] = {0, 0, 0}, tz[3] = {2.0f, 0.0f, -1.0f};
        CHECK_OK(nllk_poisson_nll_fwd_f32(z, tz, 3, 0, 0, 0.0, NLLK_REDUCTION_NONE, a));
        CHECK(isinf(a[0]) && a[0] > 0 && isnan(a[1]) && isinf(a[2]) && a[2] < 0, "x=0 eps=0: %g %g %g", a[0], a[1],
              a[2]);
        /* full: nothing added at t = 1 exactly (the Stirling term there would be -0.0810614...) */
        const double x1[1] = {0.5}, t1[1] = {1.0};
        double l0, l1;
        CHECK_OK(nllk_poisson_nll_fwd_f64(x1, t1, 1, 1, 0, 1e-8, NLLK_REDUCTION_SUM, &l0));
        CHECK_OK(nllk_poisson_nll_fwd_f64(x1, t1, 1, 1, 1, 1e-8, NLLK_REDUCTION_SUM, &l1));
        CHECK(l0 == l1, "full changed the loss at t = 1: %.17g vs %.17g", l0, l1);
        /* full's grad_target where t <= 0 is the finite -g*x, not PyTorch's NaN */
        const double xg[3] = {0.5, -1.5, 2.0}, tg[3] = {0.0, -3.0, 0.5}, g1[1] = {1.0};
        double gx[3], gt[3];
        CHECK_OK(nllk_poisson_nll_bwd_f64(xg, tg, 3, 1, 1, 1e-8, NLLK_REDUCTION_SUM, g1, gx, gt));
        CHECK(gt[0] == -0.5 && gt[1] == 1.5 && gt[2] == -2.0, "full grad_target at t<=1: %g %g %g", gt[0], gt[1],
              gt[2]);
    }
}

/* ======================================================================================================== */
/* NLL reference                                                                                            */
/* ======================================================================================================== */

enum { W_NULL, W_POS, W_ZEROS, W_NEG, W_ALLZERO, W_KINDS };
static const char *wname[W_KINDS] = {"NULL", "positive", "with zeros", "negative", "all zero"};

typedef struct {
    nllk_dtype dt;
    nllk_target_type tt;
    size_t n, c, d;
    int wkind;
    int64_t ig;
    int all_ignored;
} ncase;

/* per element (flat f = i*d + j): the class, or -1 when ignored */
static int64_t class_of(const ncase *k, const void *tg, size_t f)
{
    const int64_t v = tu_tget(k->tt, tg, f);
    return v == k->ig ? -1 : v;
}

static void nll_case(const ncase *k)
{
    const nllk_dtype dt = k->dt;
    const size_t es = tu_esz(dt), ts = tu_tsize(k->tt), n = k->n, c = k->c, d = k->d;
    const size_t nd = n * d, ncd = n * c * d;
    char what[256];
    snprintf(what, sizeof what, "nll %s %s (n=%zu c=%zu d=%zu) weight %s ignore %lld%s", tu_dtname(dt),
             tu_ttname(k->tt), n, c, d, wname[k->wkind], (long long)k->ig, k->all_ignored ? " all ignored" : "");
    const int ig_repr = tu_trepr(k->tt, k->ig);
    if ((c == 0 || k->all_ignored) && !ig_repr && nd > 0)
        return; /* no valid target exists */

    /* ---- data ---- */
    void *x = malloc(ncd * es + 1), *tg = malloc(nd * ts + 1), *w = NULL;
    for (size_t i = 0; i < ncd; i++)
        tu_set(dt, x, i, tu_below(20) == 0 ? tu_uniform(0.0, 3.0) : tu_uniform(-12.0, 0.0));
    if (k->wkind != W_NULL) {
        w = malloc(c * es + 1);
        for (size_t j = 0; j < c; j++) {
            double v = tu_uniform(0.25, 2.0);
            if (k->wkind == W_ZEROS && j % 3 == 1)
                v = 0.0;
            if (k->wkind == W_NEG)
                v = tu_below(5) == 0 ? 0.0 : tu_uniform(-2.0, 2.0);
            if (k->wkind == W_ALLZERO)
                v = 0.0;
            tu_set(dt, w, j, v);
        }
    }
    for (size_t f = 0; f < nd; f++) {
        int64_t v;
        if (c == 0 || k->all_ignored || (ig_repr && tu_below(8) == 0))
            v = k->ig;
        else
            v = (int64_t)tu_below(c);
        tu_tset(k->tt, tg, f, v);
    }
    void *xs = tu_dup(x, ncd * es), *tgs = tu_dup(tg, nd * ts), *wss = tu_dup(w, c * es);
#define INPUTS_INTACT(call)                                                                                    \
    CHECK(memcmp(x, xs, ncd * es) == 0 && memcmp(tg, tgs, nd * ts) == 0 && (!w || memcmp(w, wss, c * es) == 0), \
          "%s: %s modified its inputs", what, call)
    const void *xp = ncd ? x : NULL, *tp = nd ? tg : NULL;

    /* ---- the reference, per element ---- */
    double *own = malloc((nd + 1) * sizeof *own), *wt = malloc((nd + 1) * sizeof *wt);
    long double s_ind = 0, s_ind_abs = 0, tw_ref = 0, tw_abs = 0;
    for (size_t f = 0; f < nd; f++) {
        const int64_t cl = class_of(k, tg, f);
        const size_t i = f / d, j = f % d;
        if (cl < 0) {
            wt[f] = 0;
            continue;
        }
        const double xv = tu_get(dt, x, (i * c + (size_t)cl) * d + j), wv = w ? tu_get(dt, w, (size_t)cl) : 1.0;
        wt[f] = wv;
        tw_ref += wv, tw_abs += fabs(wv);
        s_ind += -(long double)xv * wv, s_ind_abs += fabsl((long double)xv * wv);
    }

    /* ---- forward, none: exact per element ---- */
    void *out = tu_galloc(nd * es), *tw = tu_galloc(es);
    tu_set(dt, tw, 0, -777.0);
    CHECK_OK(tu_nll_fwd(dt, xp, tp, k->tt, n, c, d, w, k->ig, NLLK_REDUCTION_NONE, nd ? out : NULL, tw));
    INPUTS_INTACT("fwd none");
    CHECK(tu_gcheck(out) && tu_gcheck(tw), "%s: fwd none wrote outside its outputs", what);
    CHECK(tu_get(dt, tw, 0) == 0, "%s: fwd none total_weight %g, not 0", what, tu_get(dt, tw, 0));
    long fails = 0;
    long double s_own = 0, s_own_abs = 0;
    for (size_t f = 0; f < nd; f++) {
        const int64_t cl = class_of(k, tg, f);
        const size_t i = f / d, j = f % d;
        double want = 0.0; /* +0 at ignored elements */
        if (cl >= 0)
            want = -tu_mul(dt, tu_get(dt, x, (i * c + (size_t)cl) * d + j), w ? tu_get(dt, w, (size_t)cl) : 1.0);
        own[f] = tu_get(dt, out, f);
        if (!tu_same(dt, own[f], want) && fails++ < 5)
            CHECK(0, "%s: loss[%zu] (target %lld) = %.17g, want %.17g", what, f, (long long)cl, own[f], want);
        s_own += own[f], s_own_abs += fabs(own[f]);
    }
    CHECK(fails == 0, "%s: %ld per-element losses differ", what, fails);
    {
        void *out2 = tu_galloc(nd * es);
        CHECK_OK(tu_nll_fwd(dt, xp, tp, k->tt, n, c, d, w, k->ig, NLLK_REDUCTION_NONE, nd ? out2 : NULL, NULL));
        INPUTS_INTACT("fwd none again");
        CHECK(nd == 0 || memcmp(out, out2, nd * es) == 0, "%s: fwd none not reproducible", what);
        tu_gfree(out2);
    }

    /* ---- forward, mean and sum ---- */
    const double tree_s = tu_tree_sum(own, nd), tree_w = tu_tree_sum(wt, nd);
    double tw_lib = 0; /* the forward's total_weight, for the backward */
    for (int r = NLLK_REDUCTION_MEAN; r <= NLLK_REDUCTION_SUM; r++) {
        const int mean = r == NLLK_REDUCTION_MEAN;
        char ctx[300];
        snprintf(ctx, sizeof ctx, "%s %s", what, mean ? "mean" : "sum");
        void *o1 = tu_galloc(es), *o2 = tu_galloc(es), *tw2 = tu_galloc(es);
        tu_set(dt, o1, 0, -555.0), tu_set(dt, tw, 0, -777.0);
        CHECK_OK(tu_nll_fwd(dt, xp, tp, k->tt, n, c, d, w, k->ig, r, o1, tw));
        INPUTS_INTACT(ctx);
        CHECK(tu_gcheck(o1) && tu_gcheck(tw), "%s: wrote outside out/total_weight", ctx);
        CHECK_OK(tu_nll_fwd(dt, xp, tp, k->tt, n, c, d, w, k->ig, r, o2, NULL)); /* total_weight NULL */
        CHECK(memcmp(o1, o2, es) == 0, "%s: differs when called again (total_weight NULL)", ctx);
        CHECK_OK(tu_nll_fwd(dt, xp, tp, k->tt, n, c, d, w, k->ig, r, o2, tw2));
        INPUTS_INTACT(ctx);
        CHECK(memcmp(o1, o2, es) == 0 && memcmp(tw, tw2, es) == 0, "%s: not reproducible", ctx);
        const double got = tu_get(dt, o1, 0), gtw = tu_get(dt, tw, 0);
        tw_lib = gtw;
        tu_gfree(o1), tu_gfree(o2), tu_gfree(tw2);

        /* total_weight: the count when unweighted (exact), else the weights' sum */
        CHECK(tu_same(dt, gtw, tu_round(dt, tree_w)), "%s: total_weight %.17g != canonical tree %.17g", ctx, gtw,
              tu_round(dt, tree_w));
        if (!w) {
            size_t cnt = 0;
            for (size_t f = 0; f < nd; f++)
                cnt += class_of(k, tg, f) >= 0;
            CHECK(gtw == tu_round(dt, (long double)cnt), "%s: total_weight %.17g, count %zu", ctx, gtw, cnt);
        }
        CHECK(tu_close(gtw, tu_round(dt, tw_ref), rel_tol(dt) * fabs((double)tw_ref) + 1e-15 * (double)tw_abs),
              "%s: total_weight %.17g vs reference %.17Lg", ctx, gtw, tw_ref);

        if (nd == 0 || tw_ref == 0) {
            /* empty, all ignored, or all weights 0: mean NaN, sum 0 */
            if (mean)
                CHECK(isnan(got) || (w && k->wkind == W_NEG), "%s: mean %.17g, not NaN", ctx, got);
            else if (k->wkind != W_NEG)
                CHECK(got == 0, "%s: sum %.17g, not 0", ctx, got);
        }
        /* bit-for-bit: the canonical tree of the library's own values */
        const double want_tree = tu_round(dt, mean ? tree_s / tree_w : tree_s);
        CHECK(tu_same(dt, got, want_tree), "%s: %.17g != canonical tree %.17g", ctx, got, want_tree);
        /* tight: long-double sum of the own values; loose: the independent reference */
        const long double div = mean ? tw_ref : 1.0L;
        const double adiv = mean ? fabs((double)tw_ref) : 1.0;
        if (div != 0) {
            const long double ov = s_own / div, rv = s_ind / div;
            const double tol_o = rel_tol(dt) * fabs((double)ov) + 1e-15 * (double)s_own_abs / adiv;
            const double tol_r = rel_tol(dt) * fabs((double)rv) + 2 * tu_eps(dt) * (double)s_ind_abs / adiv;
            CHECK(tu_close(got, tu_round(dt, ov), tol_o), "%s: %.17g vs own-values sum %.17Lg", ctx, got, ov);
            CHECK(tu_close(got, tu_round(dt, rv), tol_r), "%s: %.17g vs reference %.17Lg", ctx, got, rv);
        }
    }

    /* ---- backward: exact at the targets, +0 elsewhere ---- */
    void *go = malloc((nd + 1) * es), *gx = tu_galloc(ncd * es), *gx2 = tu_galloc(ncd * es);
    double *want = malloc((ncd + 1) * sizeof *want);
    for (int r = NLLK_REDUCTION_NONE; r <= NLLK_REDUCTION_SUM; r++) {
        char ctx[300];
        snprintf(ctx, sizeof ctx, "%s bwd %s", what, r == 0 ? "none" : r == 1 ? "mean" : "sum");
        const size_t ng = r == NLLK_REDUCTION_NONE ? nd : 1;
        for (size_t f = 0; f < ng; f++)
            tu_set(dt, go, f, tu_below(10) == 0 ? 0.0 : tu_uniform(-3.0, 3.0));
        if (r != NLLK_REDUCTION_NONE)
            tu_set(dt, go, 0, tu_uniform(0.5, 2.0));
        void *gos = tu_dup(go, ng * es);
        /* NONE ignores total_weight: pass garbage */
        const double twp = r == NLLK_REDUCTION_NONE ? 12345.0 : tw_lib;
        for (size_t e = 0; e < ncd; e++) /* the library must overwrite everything */
            tu_set(dt, gx, e, NAN);
        CHECK_OK(tu_nll_bwd(dt, (r == NLLK_REDUCTION_NONE && nd == 0) ? NULL : go, tp, k->tt, n, c, d, w, k->ig, r,
                            twp, ncd ? gx : NULL));
        INPUTS_INTACT(ctx);
        CHECK(ng == 0 || memcmp(go, gos, ng * es) == 0, "%s: grad_output modified", ctx);
        CHECK(tu_gcheck(gx), "%s: wrote outside grad_input", ctx);
        for (size_t e = 0; e < ncd; e++)
            want[e] = 0.0;
        const double q = r == NLLK_REDUCTION_MEAN ? tu_div(dt, tu_get(dt, go, 0), twp) : 0.0;
        for (size_t f = 0; f < nd; f++) {
            const int64_t cl = class_of(k, tg, f);
            if (cl < 0)
                continue;
            const size_t i = f / d, j = f % d;
            const double wv = w ? tu_get(dt, w, (size_t)cl) : 1.0;
            double v;
            if (r == NLLK_REDUCTION_NONE)
                v = -tu_mul(dt, wv, tu_get(dt, go, f));
            else if (r == NLLK_REDUCTION_SUM)
                v = -tu_mul(dt, wv, tu_get(dt, go, 0));
            else
                v = tu_mul(dt, wv, -q);
            want[(i * c + (size_t)cl) * d + j] = v;
        }
        long bad = 0;
        for (size_t e = 0; e < ncd; e++) {
            const double v = tu_get(dt, gx, e);
            if (!tu_same(dt, v, want[e]) && bad++ < 5)
                CHECK(0, "%s: grad_input[%zu] = %.17g, want %.17g", ctx, e, v, want[e]);
        }
        CHECK(bad == 0, "%s: %ld grad_input values differ", ctx, bad);
        CHECK_OK(tu_nll_bwd(dt, (r == NLLK_REDUCTION_NONE && nd == 0) ? NULL : go, tp, k->tt, n, c, d, w,
                                       k->ig, r, twp, ncd ? gx2 : NULL));
        INPUTS_INTACT(ctx);
        CHECK(ng == 0 || memcmp(go, gos, ng * es) == 0, "%s: grad_output modified", ctx);
        CHECK(ncd == 0 || memcmp(gx, gx2, ncd * es) == 0, "%s: not reproducible", ctx);
        free(gos);
    }
    free(go), free(want);
    tu_gfree(gx), tu_gfree(gx2), tu_gfree(out), tu_gfree(tw);
    free(own), free(wt), free(x), free(tg), free(w), free(xs), free(tgs), free(wss);
#undef INPUTS_INTACT
}

static void test_nll(void)
{
    static const size_t shapes[][3] = {
        {1, 5, 1},  {1, 1, 1},  {7, 5, 1},    {33, 10, 1}, {9, 1, 1},    {0, 5, 1},     {4, 5, 0},    {0, 0, 3},
        {3, 0, 2},  {3, 4, 2},  {2, 3, 17},   {5, 300, 3}, {300, 7, 1},  {3, 6, 5000},  {20, 3, 4000}, {70001, 3, 1},
    };
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    const int64_t igs_base[] = {-100, 0, -1 /* = c-1 */, 255, INT64_MAX, ((int64_t)1 << 32) + 1};
    const int nig = 6;
    for (size_t s = 0; s < nshapes; s++) {
        const size_t n = shapes[s][0], c = shapes[s][1], d = shapes[s][2];
        const size_t ncd = n * c * d;
        for (int dti = 0; dti < 2; dti++)
            for (int tti = 0; tti < 3; tti++)
                for (int wk = 0; wk < W_KINDS; wk++)
                    for (int ii = 0; ii < nig; ii++)
                        for (int ai = 0; ai < 2; ai++) {
                            if (ai && (wk != W_POS || ii > 1)) /* all ignored: a few variants */
                                continue;
                            /* larger shapes: a subset of the (weight, ignore_index) combinations for each dtype
                             * and target type; the largest: one, varying from one (dtype, type) to the next */
                            const int combo = wk * nig + ii;
                            if (ncd > 20000 && (ai || combo != (int)(s * 7 + (size_t)dti * 13 + (size_t)tti * 5 + 3) %
                                                                  (W_KINDS * nig)))
                                continue;
                            if (ncd > 200 && !ai && (combo + dti + tti + (int)s) % 3 != 0)
                                continue;
                            ncase k = {dti ? NLLK_F64 : NLLK_F32, (nllk_target_type)tti, n, c, d, wk, igs_base[ii],
                                       ai};
                            if (ii == 2)
                                k.ig = c ? (int64_t)c - 1 : -1;
                            tu_seed(s * 100000 + (size_t)dti * 10000 + (size_t)tti * 1000 + (size_t)wk * 100 +
                                    (size_t)ii * 10 + (size_t)ai);
                            nll_case(&k);
                        }
    }
    /* hand-picked: values whose reference is obvious */
    {
        /* (C) form: input (3), target 2: loss = -x[2] */
        const float x[3] = {-1.0f, -2.0f, -0.25f}, w[3] = {1.0f, 2.0f, 4.0f};
        const int64_t t = 2;
        float out = 0, tw = 0;
        CHECK_OK(nllk_nll_fwd_f32(x, &t, NLLK_TARGET_I64, 1, 3, 1, NULL, -100, NLLK_REDUCTION_NONE, &out, &tw));
        CHECK(out == 0.25f && tw == 0, "(C) none: %g %g", out, tw);
        CHECK_OK(nllk_nll_fwd_f32(x, &t, NLLK_TARGET_I64, 1, 3, 1, w, -100, NLLK_REDUCTION_MEAN, &out, &tw));
        CHECK(out == 0.25f && tw == 4.0f, "(C) weighted mean: %g %g", out, tw);
        CHECK_OK(nllk_nll_fwd_f32(x, &t, NLLK_TARGET_I64, 1, 3, 1, w, -100, NLLK_REDUCTION_SUM, &out, &tw));
        CHECK(out == 1.0f && tw == 4.0f, "(C) weighted sum: %g %g", out, tw);
        /* w = 0: -x*0 keeps the sign rule: x < 0 gives +0, x > 0 gives -0 */
        const double x2[2] = {-3.0, 3.0}, wz[2] = {0.0, 0.0};
        const int32_t t2[2] = {0, 1};
        double o2[2];
        (void)x2;
        const double x3[4] = {-3.0, 5.0, 7.0, 3.0};
        CHECK_OK(nllk_nll_fwd_f64(x3, t2, NLLK_TARGET_I32, 2, 2, 1, wz, -100, NLLK_REDUCTION_NONE, o2, NULL));
        CHECK(o2[0] == 0 && !signbit(o2[0]) && o2[1] == 0 && signbit(o2[1]), "w=0 signs: %g %g", o2[0], o2[1]);
        /* i32 targets are compared with ignore_index as int64: 2^32 + 1 does not ignore class 1 */
        double s;
        CHECK_OK(nllk_nll_fwd_f64(x3, t2, NLLK_TARGET_I32, 2, 2, 1, NULL, ((int64_t)1 << 32) + 1, NLLK_REDUCTION_SUM,
                                  &s, NULL));
        CHECK(s == 3.0 + -3.0, "i32 ignore_index widening: sum %g", s);
        /* u8 target 255 is a valid class when c > 255 */
        const uint8_t t8[1] = {255};
        double xs[300], o1, tw1;
        for (int j = 0; j < 300; j++)
            xs[j] = -(double)j;
        CHECK_OK(nllk_nll_fwd_f64(xs, t8, NLLK_TARGET_U8, 1, 300, 1, NULL, -100, NLLK_REDUCTION_MEAN, &o1, &tw1));
        CHECK(o1 == 255.0 && tw1 == 1.0, "u8 target 255 with c=300: %g %g", o1, tw1);
        /* all weights zero on the used classes: mean NaN, sum 0, bwd mean NaN at the targets */
        const double wz3[3] = {0.0, 5.0, 0.0};
        const int64_t t3[2] = {0, 2};
        const double x6[6] = {-1, -2, -3, -4, -5, -6};
        double m, tw3, gi[6];
        CHECK_OK(nllk_nll_fwd_f64(x6, t3, NLLK_TARGET_I64, 2, 3, 1, wz3, -100, NLLK_REDUCTION_MEAN, &m, &tw3));
        CHECK(isnan(m) && tw3 == 0, "all-zero used weights: mean %g tw %g", m, tw3);
        const double one = 1.0;
        CHECK_OK(nllk_nll_bwd_f64(&one, t3, NLLK_TARGET_I64, 2, 3, 1, wz3, -100, NLLK_REDUCTION_MEAN, tw3, gi));
        CHECK(isnan(gi[0]) && gi[1] == 0 && gi[2] == 0 && gi[3] == 0 && gi[4] == 0 && isnan(gi[5]),
              "bwd mean with total_weight 0: %g %g %g %g %g %g", gi[0], gi[1], gi[2], gi[3], gi[4], gi[5]);
    }
}

/* ======================================================================================================== */
/* Determinism: the same data in a different layout with the same element numbering gives the same bits      */
/* ======================================================================================================== */
static void test_layouts(void)
{
    CHECK_OK(nllk_set_num_threads(2)); /* large enough to be split */
    for (int dti = 0; dti < 2; dti++) {
        const nllk_dtype dt = dti ? NLLK_F64 : NLLK_F32;
        const size_t es = tu_esz(dt);
        tu_seed(4242 + dti);
        /* (N, C) vs the same data as (1, C, d = N): element i is (sample 0, position i) in both */
        {
            const size_t N = 70001, C = 5;
            void *x2 = malloc(N * C * es), *xt = malloc(N * C * es), *w = malloc(C * es);
            int64_t *tg = malloc(N * sizeof *tg);
            for (size_t i = 0; i < N; i++) {
                tg[i] = tu_below(9) == 0 ? -100 : (int64_t)tu_below(C);
                for (size_t k = 0; k < C; k++) {
                    const double v = tu_uniform(-9.0, 0.0);
                    tu_set(dt, x2, i * C + k, v);
                    tu_set(dt, xt, k * N + i, v);
                }
            }
            for (size_t k = 0; k < C; k++)
                tu_set(dt, w, k, tu_uniform(0.1, 3.0));
            const uint64_t h = tu_hash(x2, N * C * es) ^ tu_hash(xt, N * C * es) ^ tu_hash(w, C * es) ^
                               tu_hash(tg, N * sizeof *tg);
            for (int r = NLLK_REDUCTION_MEAN; r <= NLLK_REDUCTION_SUM; r++)
                for (int wi = 0; wi < 2; wi++) {
                    double a[2], b[2], ta[2], tb[2], a2[2], ta2[2];
                    CHECK_OK(tu_nll_fwd(dt, x2, tg, NLLK_TARGET_I64, N, C, 1, wi ? w : NULL, -100, r, a, ta));
                    CHECK_OK(tu_nll_fwd(dt, x2, tg, NLLK_TARGET_I64, N, C, 1, wi ? w : NULL, -100, r, a2, ta2));
                    CHECK_OK(tu_nll_fwd(dt, xt, tg, NLLK_TARGET_I64, 1, C, N, wi ? w : NULL, -100, r, b, tb));
                    CHECK(memcmp(a, a2, es) == 0 && memcmp(ta, ta2, es) == 0, "%s (N,C) twice differs",
                          tu_dtname(dt));
                    CHECK(memcmp(a, b, es) == 0 && memcmp(ta, tb, es) == 0,
                          "%s (N,C) vs (1,C,N) r=%d w=%d: %.17g/%.17g vs %.17g/%.17g", tu_dtname(dt), r, wi,
                          tu_get(dt, a, 0), tu_get(dt, ta, 0), tu_get(dt, b, 0), tu_get(dt, tb, 0));
                }
            CHECK(h == (tu_hash(x2, N * C * es) ^ tu_hash(xt, N * C * es) ^ tu_hash(w, C * es) ^
                        tu_hash(tg, N * sizeof *tg)),
                  "layouts: inputs modified");
            free(x2), free(xt), free(w), free(tg);
        }
        /* (N, C, d) vs the same data as (N*d, C) */
        {
            const size_t N = 7, C = 4, D = 5003;
            void *x3 = malloc(N * C * D * es), *x2 = malloc(N * C * D * es);
            uint8_t *tg = malloc(N * D);
            for (size_t i = 0; i < N; i++)
                for (size_t j = 0; j < D; j++) {
                    tg[i * D + j] = tu_below(7) == 0 ? 255 : (uint8_t)tu_below(C);
                    for (size_t k = 0; k < C; k++) {
                        const double v = tu_uniform(-9.0, 0.5);
                        tu_set(dt, x3, (i * C + k) * D + j, v);
                        tu_set(dt, x2, (i * D + j) * C + k, v);
                    }
                }
            const uint64_t h = tu_hash(x3, N * C * D * es) ^ tu_hash(x2, N * C * D * es) ^ tu_hash(tg, N * D);
            for (int r = NLLK_REDUCTION_MEAN; r <= NLLK_REDUCTION_SUM; r++) {
                double a[2], b[2], ta[2], tb[2];
                CHECK_OK(tu_nll_fwd(dt, x3, tg, NLLK_TARGET_U8, N, C, D, NULL, 255, r, a, ta));
                CHECK_OK(tu_nll_fwd(dt, x2, tg, NLLK_TARGET_U8, N * D, C, 1, NULL, 255, r, b, tb));
                CHECK(memcmp(a, b, es) == 0 && memcmp(ta, tb, es) == 0, "%s (N,C,d) vs (N*d,C) r=%d: %.17g vs %.17g",
                      tu_dtname(dt), r, tu_get(dt, a, 0), tu_get(dt, b, 0));
            }
            CHECK(h == (tu_hash(x3, N * C * D * es) ^ tu_hash(x2, N * C * D * es) ^ tu_hash(tg, N * D)),
                  "layouts (N,C,d): inputs modified");
            free(x3), free(x2), free(tg);
        }
    }
}

/* ======================================================================================================== */
/* Threads: the reference comparisons above run on one thread (spinning OpenMP workers would only slow the     */
/* long-double loops down); here the large inputs run again on 2 threads and must give the same bits.          */
/* ======================================================================================================== */
static void test_threaded(void)
{
    for (int dti = 0; dti < 2; dti++) {
        const nllk_dtype dt = dti ? NLLK_F64 : NLLK_F32;
        const size_t es = tu_esz(dt);
        tu_seed(99 + dti);
        /* Poisson, n = 100003 */
        const size_t n = 100003;
        void *x = malloc(n * es), *t = malloc(n * es), *go = malloc(n * es);
        void *a = tu_galloc(n * es), *b = tu_galloc(n * es), *ga = tu_galloc(n * es), *gb = tu_galloc(n * es);
        {
            const int li = !dti; /* f32: log_input, f64: rates */
            const popts o = {li, 1, 1e-8, (long double)tu_round(dt, 1e-8)};
            for (size_t i = 0; i < n; i++) {
                tu_set(dt, x, i, p_input(dt, &o));
                tu_set(dt, t, i, p_target());
                tu_set(dt, go, i, tu_uniform(-1.0, 1.0));
            }
            const uint64_t h = tu_hash(x, n * es) ^ tu_hash(t, n * es) ^ tu_hash(go, n * es);
            for (int r = NLLK_REDUCTION_NONE; r <= NLLK_REDUCTION_SUM; r++) {
                nllk_set_num_threads(1);
                CHECK_OK(tu_poisson_fwd(dt, x, t, n, li, 1, 1e-8, r, a));
                CHECK_OK(tu_poisson_bwd(dt, x, t, n, li, 1, 1e-8, r, go, ga, gb));
                nllk_set_num_threads(2);
                CHECK_OK(tu_poisson_fwd(dt, x, t, n, li, 1, 1e-8, r, b));
                const size_t no = r == NLLK_REDUCTION_NONE ? n : 1;
                CHECK(memcmp(a, b, no * es) == 0, "poisson %s li=%d r=%d: 1 vs 2 threads differ", tu_dtname(dt), li, r);
                CHECK_OK(tu_poisson_bwd(dt, x, t, n, li, 1, 1e-8, r, go, a, b));
                CHECK(memcmp(a, ga, n * es) == 0 && memcmp(b, gb, n * es) == 0,
                      "poisson bwd %s li=%d r=%d: 1 vs 2 threads differ", tu_dtname(dt), li, r);
                CHECK(tu_gcheck(a) && tu_gcheck(b) && tu_gcheck(ga) && tu_gcheck(gb), "wrote outside outputs");
            }
            CHECK(h == (tu_hash(x, n * es) ^ tu_hash(t, n * es) ^ tu_hash(go, n * es)), "threaded: inputs modified");
        }
        free(x), free(t), free(go), tu_gfree(a), tu_gfree(b), tu_gfree(ga), tu_gfree(gb);
        /* NLL: (N, C) and (N, C, d) with rows crossing blocks */
        static const size_t shapes[2][3] = {{70001, 3, 1}, {20, 3, 4000}};
        for (int si = 0; si < 2; si++) {
            const size_t N = shapes[si][0], C = shapes[si][1], D = shapes[si][2], nd = N * D, ncd = N * C * D;
            void *xx = malloc(ncd * es), *w = malloc(C * es), *g = malloc(nd * es);
            void *o1 = tu_galloc(ncd * es), *o2 = tu_galloc(ncd * es);
            int64_t *tg = malloc(nd * sizeof *tg);
            for (size_t i = 0; i < ncd; i++)
                tu_set(dt, xx, i, tu_uniform(-9.0, 0.0));
            for (size_t i = 0; i < nd; i++) {
                tg[i] = tu_below(6) == 0 ? -100 : (int64_t)tu_below(C);
                tu_set(dt, g, i, tu_uniform(-1.0, 1.0));
            }
            for (size_t k = 0; k < C; k++)
                tu_set(dt, w, k, tu_uniform(-1.0, 2.0));
            const uint64_t h = tu_hash(xx, ncd * es) ^ tu_hash(w, C * es) ^ tu_hash(g, nd * es) ^
                               tu_hash(tg, nd * sizeof *tg);
            for (int r = NLLK_REDUCTION_NONE; r <= NLLK_REDUCTION_SUM; r++) {
                double tw1[2] = {0, 0}, tw2[2] = {0, 0};
                nllk_set_num_threads(1);
                CHECK_OK(tu_nll_fwd(dt, xx, tg, NLLK_TARGET_I64, N, C, D, w, -100, r, o1, tw1));
                nllk_set_num_threads(2);
                CHECK_OK(tu_nll_fwd(dt, xx, tg, NLLK_TARGET_I64, N, C, D, w, -100, r, o2, tw2));
                const size_t no = r == NLLK_REDUCTION_NONE ? nd : 1;
                CHECK(memcmp(o1, o2, no * es) == 0 && memcmp(tw1, tw2, es) == 0,
                      "nll %s shape %d r=%d: 1 vs 2 threads differ", tu_dtname(dt), si, r);
                const double twv = r == NLLK_REDUCTION_NONE ? 1.0 : tu_get(dt, tw1, 0);
                nllk_set_num_threads(1);
                CHECK_OK(tu_nll_bwd(dt, g, tg, NLLK_TARGET_I64, N, C, D, w, -100, r, twv, o1));
                nllk_set_num_threads(2);
                CHECK_OK(tu_nll_bwd(dt, g, tg, NLLK_TARGET_I64, N, C, D, w, -100, r, twv, o2));
                CHECK(memcmp(o1, o2, ncd * es) == 0, "nll bwd %s shape %d r=%d: 1 vs 2 threads differ", tu_dtname(dt),
                      si, r);
                CHECK(tu_gcheck(o1) && tu_gcheck(o2), "wrote outside outputs");
            }
            CHECK(h == (tu_hash(xx, ncd * es) ^ tu_hash(w, C * es) ^ tu_hash(g, nd * es) ^
                        tu_hash(tg, nd * sizeof *tg)),
                  "threaded nll: inputs modified");
            free(xx), free(w), free(g), free(tg), tu_gfree(o1), tu_gfree(o2);
        }
    }
    nllk_set_num_threads(1);
}

int main(void)
{
    tu_require_isa();
    CHECK_OK(nllk_set_num_threads(1));
    test_poisson();
    test_nll();
    test_layouts();
    test_threaded();
    printf("isa %s; worst Poisson error in eps of the terms' magnitude: loss %.2f, grad_input %.2f, grad_target "
           "%.2f\n",
           nllk_active_isa(), worst_fwd, worst_gx, worst_gt);
    return tu_summary();
}
