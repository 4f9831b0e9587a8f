/* Bad input through the public API: every documented error returns its status and a non-empty message that says
 * what is wrong (naming the argument, or the lowest offending target's flat index and value); scalar outputs are
 * untouched on failure; inputs are never modified (compared with copies after every call); nothing is written
 * outside an output (guard zones), in particular not by an NLL backward with a bad target. NULL is accepted where
 * no data is needed (empty inputs). Also: nllk_status_name, the version, thread/ISA control and the streaming
 * accumulators' errors. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nllk.h"
#include "testutil.h"

/* a failed call: status, a message, and (if given) the message mentions `needle` */
static void expect_fail(nllk_status got, nllk_status want, const char *needle, const char *what)
{
    const char *m = nllk_last_error();
    CHECK(got == want, "%s: %s, want %s (message: %s)", what, nllk_status_name(got), nllk_status_name(want),
          m ? m : "(null)");
    CHECK(m && m[0] != '\0', "%s: empty error message", what);
    if (needle)
        CHECK(m && strstr(m, needle), "%s: message \"%s\" does not mention \"%s\"", what, m ? m : "", needle);
}
static void expect_ok(nllk_status got, const char *what)
{
    CHECK(got == NLLK_OK, "%s: %s (%s), want NLLK_OK", what, nllk_status_name(got), nllk_last_error());
}

static const nllk_reduction reductions[3] = {NLLK_REDUCTION_NONE, NLLK_REDUCTION_MEAN, NLLK_REDUCTION_SUM};
static const char *rname(int r) { return r == 0 ? "none" : r == 1 ? "mean" : r == 2 ? "sum" : "bad"; }

/* ---- inputs that must not change: up to 4 buffers and their copies ---------------------------------------- */
typedef struct {
    const void *p[4];
    void *copy[4];
    size_t bytes[4];
    int k;
} snap;
static void snap_add(snap *s, const void *p, size_t bytes)
{
    if (!p || !bytes)
        return;
    s->p[s->k] = p, s->bytes[s->k] = bytes, s->copy[s->k] = tu_dup(p, bytes);
    s->k++;
}
static void snap_check(snap *s, const char *what)
{
    for (int i = 0; i < s->k; i++) {
        CHECK(memcmp(s->p[i], s->copy[i], s->bytes[i]) == 0, "%s: input %d was modified", what, i);
        free(s->copy[i]);
    }
    s->k = 0;
}

/* ======================================================================================================== */
static void test_version_and_names(void)
{
    CHECK(nllk_last_error() != NULL && nllk_last_error()[0] == '\0', "last error before any failure: \"%s\"",
          nllk_last_error());
    const struct {
        nllk_status s;
        const char *name;
    } names[] = {{NLLK_OK, "NLLK_OK"},
                 {NLLK_ERR_NULL_POINTER, "NLLK_ERR_NULL_POINTER"},
                 {NLLK_ERR_INVALID_ARGUMENT, "NLLK_ERR_INVALID_ARGUMENT"},
                 {NLLK_ERR_SIZE_OVERFLOW, "NLLK_ERR_SIZE_OVERFLOW"},
                 {NLLK_ERR_TARGET_OUT_OF_RANGE, "NLLK_ERR_TARGET_OUT_OF_RANGE"},
                 {NLLK_ERR_UNSUPPORTED, "NLLK_ERR_UNSUPPORTED"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        CHECK(nllk_status_name(names[i].s) && strcmp(nllk_status_name(names[i].s), names[i].name) == 0,
              "status %d named %s", (int)names[i].s, nllk_status_name(names[i].s));
    CHECK(strcmp(nllk_status_name((nllk_status)99), "unknown") == 0, "status 99: %s",
          nllk_status_name((nllk_status)99));
    CHECK(strcmp(nllk_status_name((nllk_status)-1), "unknown") == 0, "status -1: %s",
          nllk_status_name((nllk_status)-1));
    char v[64];
    snprintf(v, sizeof v, "%d.%d.%d", NLLK_VERSION_MAJOR, NLLK_VERSION_MINOR, NLLK_VERSION_PATCH);
    CHECK(nllk_version_string() && strcmp(nllk_version_string(), v) == 0, "version string %s, header %s",
          nllk_version_string(), v);
    CHECK(nllk_version_number() == NLLK_VERSION_NUMBER, "version number %u, header %d", nllk_version_number(),
          NLLK_VERSION_NUMBER);
    CHECK(NLLK_VERSION_NUMBER == NLLK_VERSION_MAJOR * 10000 + NLLK_VERSION_MINOR * 100 + NLLK_VERSION_PATCH,
          "NLLK_VERSION_NUMBER");
}

/* ======================================================================================================== */
/* Poisson                                                                                                  */
/* ======================================================================================================== */
static void test_poisson_errors(nllk_dtype dt)
{
    const size_t es = tu_esz(dt), n = 8;
    char what[200];
    void *x = malloc(n * es), *t = malloc(n * es), *go = malloc(n * es);
    void *out = tu_galloc(n * es), *gx = tu_galloc(n * es), *gt = tu_galloc(n * es);
    for (size_t i = 0; i < n; i++) {
        tu_set(dt, x, i, 0.5 + (double)i);
        tu_set(dt, t, i, (double)(i % 3));
        tu_set(dt, go, i, 1.0);
    }
    const double sentinel = -31337.0;
    snap s = {0};
#define SNAP_P()                                                                                               \
    do {                                                                                                        \
        snap_add(&s, x, n * es), snap_add(&s, t, n * es), snap_add(&s, go, n * es);                             \
    } while (0)

    for (int ri = 0; ri < 3; ri++) {
        const nllk_reduction r = reductions[ri];
        const int scalar = r != NLLK_REDUCTION_NONE;
        /* NULL input / target / out */
        const struct {
            int null_x, null_t, null_out;
            const char *needle;
        } nulls[] = {{1, 0, 0, "input"}, {0, 1, 0, "target"}, {0, 0, 1, "out"}};
        for (int k = 0; k < 3; k++) {
            snprintf(what, sizeof what, "poisson fwd %s %s NULL %s", tu_dtname(dt), rname(r), nulls[k].needle);
            tu_set(dt, out, 0, sentinel);
            SNAP_P();
            expect_fail(tu_poisson_fwd(dt, nulls[k].null_x ? NULL : x, nulls[k].null_t ? NULL : t, n, 1, 1, 1e-8, r,
                                       nulls[k].null_out ? NULL : out),
                        NLLK_ERR_NULL_POINTER, nulls[k].needle, what);
            snap_check(&s, what);
            if (scalar)
                CHECK(tu_get(dt, out, 0) == sentinel, "%s: out was written", what);
            CHECK(tu_gcheck(out), "%s: wrote outside out", what);
        }
        /* mean and sum need out even when n = 0 */
        if (scalar) {
            snprintf(what, sizeof what, "poisson fwd %s %s n=0 NULL out", tu_dtname(dt), rname(r));
            expect_fail(tu_poisson_fwd(dt, NULL, NULL, 0, 0, 0, 1e-8, r, NULL), NLLK_ERR_NULL_POINTER, "out", what);
        }
        /* n = 0: NULL data is fine */
        snprintf(what, sizeof what, "poisson fwd %s %s n=0 NULL data", tu_dtname(dt), rname(r));
        tu_set(dt, out, 0, sentinel);
        expect_ok(tu_poisson_fwd(dt, NULL, NULL, 0, 0, 1, 0.0, r, scalar ? out : NULL), what);
        if (r == NLLK_REDUCTION_MEAN)
            CHECK(isnan(tu_get(dt, out, 0)), "%s: mean %g, not NaN", what, tu_get(dt, out, 0));
        if (r == NLLK_REDUCTION_SUM)
            CHECK(tu_get(dt, out, 0) == 0, "%s: sum %g, not 0", what, tu_get(dt, out, 0));
        if (r == NLLK_REDUCTION_NONE)
            CHECK(tu_get(dt, out, 0) == sentinel, "%s: none with n = 0 wrote out", what);
        snprintf(what, sizeof what, "poisson bwd %s %s n=0 NULL data", tu_dtname(dt), rname(r));
        expect_ok(tu_poisson_bwd(dt, NULL, NULL, 0, 1, 1, 1e-8, r, scalar ? go : NULL, NULL, NULL), what);

        /* backward: NULL input / target / grad_output / grad_input */
        const struct {
            int null_x, null_t, null_go, null_gx;
            const char *needle;
        } bnulls[] = {{1, 0, 0, 0, "input"}, {0, 1, 0, 0, "target"}, {0, 0, 1, 0, "grad_output"},
                      {0, 0, 0, 1, "grad_input"}};
        for (int k = 0; k < 4; k++) {
            snprintf(what, sizeof what, "poisson bwd %s %s NULL %s", tu_dtname(dt), rname(r), bnulls[k].needle);
            SNAP_P();
            expect_fail(tu_poisson_bwd(dt, bnulls[k].null_x ? NULL : x, bnulls[k].null_t ? NULL : t, n, 0, 1, 1e-8, r,
                                       bnulls[k].null_go ? NULL : go, bnulls[k].null_gx ? NULL : gx, gt),
                        NLLK_ERR_NULL_POINTER, bnulls[k].needle, what);
            snap_check(&s, what);
            CHECK(tu_gcheck(gx) && tu_gcheck(gt), "%s: wrote outside the gradients", what);
        }
        /* sizes whose byte count overflows size_t (the pointers are valid for 8 elements only: nothing may be
         * read) */
        const size_t huge[] = {SIZE_MAX / es + 1, SIZE_MAX, SIZE_MAX / 2 + 1};
        for (int k = 0; k < 3; k++) {
            snprintf(what, sizeof what, "poisson fwd %s %s n=%zu", tu_dtname(dt), rname(r), huge[k]);
            tu_set(dt, out, 0, sentinel);
            SNAP_P();
            expect_fail(tu_poisson_fwd(dt, x, t, huge[k], 1, 0, 1e-8, r, out), NLLK_ERR_SIZE_OVERFLOW, "overflow",
                        what);
            snap_check(&s, what);
            CHECK(tu_get(dt, out, 0) == sentinel && tu_gcheck(out), "%s: out was written", what);
            snprintf(what, sizeof what, "poisson bwd %s %s n=%zu", tu_dtname(dt), rname(r), huge[k]);
            SNAP_P();
            expect_fail(tu_poisson_bwd(dt, x, t, huge[k], 1, 0, 1e-8, r, go, gx, gt), NLLK_ERR_SIZE_OVERFLOW,
                        "overflow", what);
            snap_check(&s, what);
            CHECK(tu_gcheck(gx) && tu_gcheck(gt), "%s: wrote outside the gradients", what);
        }
    }
    /* invalid reductions */
    const int bad_red[] = {3, 7, -1, INT_MAX, INT_MIN};
    for (int k = 0; k < 5; k++) {
        snprintf(what, sizeof what, "poisson fwd %s reduction %d", tu_dtname(dt), bad_red[k]);
        tu_set(dt, out, 0, sentinel);
        SNAP_P();
        expect_fail(tu_poisson_fwd(dt, x, t, n, 1, 0, 1e-8, (nllk_reduction)bad_red[k], out),
                    NLLK_ERR_INVALID_ARGUMENT, "reduction", what);
        snap_check(&s, what);
        CHECK(tu_get(dt, out, 0) == sentinel && tu_gcheck(out), "%s: out was written", what);
        expect_fail(tu_poisson_fwd(dt, NULL, NULL, 0, 1, 0, 1e-8, (nllk_reduction)bad_red[k], out),
                    NLLK_ERR_INVALID_ARGUMENT, "reduction", what);
        snprintf(what, sizeof what, "poisson bwd %s reduction %d", tu_dtname(dt), bad_red[k]);
        SNAP_P();
        expect_fail(tu_poisson_bwd(dt, x, t, n, 1, 0, 1e-8, (nllk_reduction)bad_red[k], go, gx, gt),
                    NLLK_ERR_INVALID_ARGUMENT, "reduction", what);
        snap_check(&s, what);
    }
    /* a valid call after the failures works, and log_input/full flags other than 0/1 are just "nonzero" */
    {
        void *a = malloc(n * es), *b = malloc(n * es);
        expect_ok(tu_poisson_fwd(dt, x, t, n, 1, 1, 1e-8, NLLK_REDUCTION_NONE, a), "poisson fwd after failures");
        expect_ok(tu_poisson_fwd(dt, x, t, n, -5, 42, 1e-8, NLLK_REDUCTION_NONE, b), "poisson fwd flags -5, 42");
        CHECK(memcmp(a, b, n * es) == 0, "log_input=-5, full=42 differ from 1, 1");
        free(a), free(b);
    }
#undef SNAP_P
    free(x), free(t), free(go);
    tu_gfree(out), tu_gfree(gx), tu_gfree(gt);
}

/* ======================================================================================================== */
/* NLL                                                                                                      */
/* ======================================================================================================== */
static void test_nll_args(nllk_dtype dt, nllk_target_type tt)
{
    const size_t es = tu_esz(dt), ts = tu_tsize(tt), n = 4, c = 3, d = 2, nd = n * d, ncd = n * c * d;
    char what[240];
    void *x = malloc(ncd * es), *w = malloc(c * es), *go = malloc(nd * es), *tg = malloc(nd * ts);
    void *out = tu_galloc(nd * es), *tw = tu_galloc(es), *gx = tu_galloc(ncd * es);
    for (size_t i = 0; i < ncd; i++)
        tu_set(dt, x, i, -0.25 * (double)(i + 1));
    for (size_t j = 0; j < c; j++)
        tu_set(dt, w, j, 1.0 + (double)j);
    for (size_t f = 0; f < nd; f++) {
        tu_tset(tt, tg, f, (int64_t)(f % c));
        tu_set(dt, go, f, 1.0);
    }
    const double sentinel = -4242.0;
    snap s = {0};
#define SNAP_N()                                                                                               \
    do {                                                                                                        \
        snap_add(&s, x, ncd * es), snap_add(&s, w, c * es), snap_add(&s, go, nd * es), snap_add(&s, tg, nd * ts); \
    } while (0)
#define SENTINELS() (tu_set(dt, out, 0, sentinel), tu_set(dt, tw, 0, sentinel))
#define UNTOUCHED(scalar)                                                                                      \
    CHECK((!(scalar) || tu_get(dt, out, 0) == sentinel) && tu_get(dt, tw, 0) == sentinel && tu_gcheck(out) &&    \
              tu_gcheck(tw),                                                                                    \
          "%s: a scalar output was written", what)

    for (int ri = 0; ri < 3; ri++) {
        const nllk_reduction r = reductions[ri];
        const int scalar = r != NLLK_REDUCTION_NONE;
        const char *dn = tu_dtname(dt), *tn = tu_ttname(tt), *rn = rname(r);
        /* forward: NULL input / target / out */
        const struct {
            int null_x, null_t, null_out;
            const char *needle;
        } nulls[] = {{1, 0, 0, "input"}, {0, 1, 0, "target"}, {0, 0, 1, "out"}};
        for (int k = 0; k < 3; k++) {
            snprintf(what, sizeof what, "nll fwd %s %s %s NULL %s", dn, tn, rn, nulls[k].needle);
            SENTINELS();
            SNAP_N();
            expect_fail(tu_nll_fwd(dt, nulls[k].null_x ? NULL : x, nulls[k].null_t ? NULL : tg, tt, n, c, d, w, -100,
                                   r, nulls[k].null_out ? NULL : out, tw),
                        NLLK_ERR_NULL_POINTER, nulls[k].needle, what);
            snap_check(&s, what);
            UNTOUCHED(scalar);
        }
        /* backward: NULL grad_output / target / grad_input */
        const struct {
            int null_go, null_t, null_gx;
            const char *needle;
        } bnulls[] = {{1, 0, 0, "grad_output"}, {0, 1, 0, "target"}, {0, 0, 1, "grad_input"}};
        for (int k = 0; k < 3; k++) {
            snprintf(what, sizeof what, "nll bwd %s %s %s NULL %s", dn, tn, rn, bnulls[k].needle);
            SNAP_N();
            expect_fail(tu_nll_bwd(dt, bnulls[k].null_go ? NULL : go, bnulls[k].null_t ? NULL : tg, tt, n, c, d, w,
                                   -100, r, 8.0, bnulls[k].null_gx ? NULL : gx),
                        NLLK_ERR_NULL_POINTER, bnulls[k].needle, what);
            snap_check(&s, what);
            CHECK(tu_gcheck(gx), "%s: wrote outside grad_input", what);
        }
        /* mean and sum need out even for an empty input */
        if (scalar) {
            snprintf(what, sizeof what, "nll fwd %s %s %s n=0 NULL out", dn, tn, rn);
            expect_fail(tu_nll_fwd(dt, NULL, NULL, tt, 0, c, d, NULL, -100, r, NULL, tw), NLLK_ERR_NULL_POINTER, "out",
                        what);
        }
        /* NULL where there is no data: n = 0, d = 0, c = 0 (all targets ignored) */
        const size_t empty[][3] = {{0, 3, 2}, {4, 3, 0}, {0, 0, 0}, {5, 0, 1}, {2, 0, 3}};
        for (int k = 0; k < 5; k++) {
            const size_t en = empty[k][0], ec = empty[k][1], ed = empty[k][2], end = en * ed;
            snprintf(what, sizeof what, "nll %s %s %s empty (n=%zu c=%zu d=%zu)", dn, tn, rn, en, ec, ed);
            void *etg = malloc(end * ts + 1);
            for (size_t f = 0; f < end; f++)
                tu_tset(tt, etg, f, 7);
            void *o = tu_galloc(end * es);
            SENTINELS();
            /* c = 0: input NULL; targets all ignore_index (7) */
            expect_ok(tu_nll_fwd(dt, NULL, end ? etg : NULL, tt, en, ec, ed, NULL, 7, r,
                                 scalar ? out : (end ? o : NULL), tw),
                      what);
            if (r == NLLK_REDUCTION_MEAN)
                CHECK(isnan(tu_get(dt, out, 0)), "%s: mean %g, not NaN", what, tu_get(dt, out, 0));
            if (r == NLLK_REDUCTION_SUM)
                CHECK(tu_get(dt, out, 0) == 0, "%s: sum %g, not 0", what, tu_get(dt, out, 0));
            CHECK(tu_get(dt, tw, 0) == 0, "%s: total_weight %g, not 0", what, tu_get(dt, tw, 0));
            for (size_t f = 0; f < end && !scalar; f++)
                CHECK(tu_get(dt, o, f) == 0 && !signbit(tu_get(dt, o, f)), "%s: loss[%zu] = %g, not +0", what, f,
                      tu_get(dt, o, f));
            CHECK(tu_gcheck(o), "%s: wrote outside out", what);
            expect_ok(tu_nll_bwd(dt, scalar ? go : (end ? go : NULL), end ? etg : NULL, tt, en, ec, ed, NULL, 7, r,
                                 0.0, NULL),
                      what);
            tu_gfree(o);
            free(etg);
        }
        /* sizes that overflow size_t; the pointers are valid for the small shape only: nothing may be read */
        const struct {
            size_t n, c, d;
            int only_i64; /* overflows only in the target's byte count when the target is i64 */
            int only_u8;  /* chosen for u8, where only n*d*sizeof(element) overflows */
        } big[] = {
            {SIZE_MAX / 2 + 1, 3, 1, 0, 0},                         /* n*c                           */
            {(size_t)1 << 32, (size_t)1 << 16, (size_t)1 << 16, 0, 0}, /* n*c*d = 2^64 (n*d fits)      */
            {SIZE_MAX / 3, 1, 4, 0, 0},                             /* n*d                           */
            {3, SIZE_MAX / 2, 2, 0, 0},                             /* c*d                           */
            {SIZE_MAX / 4 + 1, 1, 1, 0, 0},                         /* n*c*d*sizeof                  */
            {SIZE_MAX / 8 + 1, 0, 1, 1, 0},                         /* c = 0: n*d*8 target bytes     */
            {SIZE_MAX / 2 + 1, 0, 1, 0, 1},                         /* c = 0, u8: n*d*sizeof(out)    */
        };
        for (size_t k = 0; k < sizeof big / sizeof big[0]; k++) {
            if ((big[k].only_i64 && tt != NLLK_TARGET_I64) || (big[k].only_u8 && tt != NLLK_TARGET_U8))
                continue;
            snprintf(what, sizeof what, "nll fwd %s %s %s (n=%zu c=%zu d=%zu)", dn, tn, rn, big[k].n, big[k].c,
                     big[k].d);
            SENTINELS();
            SNAP_N();
            expect_fail(tu_nll_fwd(dt, x, tg, tt, big[k].n, big[k].c, big[k].d, w, -100, r, out, tw),
                        NLLK_ERR_SIZE_OVERFLOW, "overflow", what);
            snap_check(&s, what);
            UNTOUCHED(1);
            snprintf(what, sizeof what, "nll bwd %s %s %s (n=%zu c=%zu d=%zu)", dn, tn, rn, big[k].n, big[k].c,
                     big[k].d);
            SNAP_N();
            expect_fail(tu_nll_bwd(dt, go, tg, tt, big[k].n, big[k].c, big[k].d, w, -100, r, 8.0, gx),
                        NLLK_ERR_SIZE_OVERFLOW, "overflow", what);
            snap_check(&s, what);
            CHECK(tu_gcheck(gx), "%s: wrote outside grad_input", what);
        }
    }
    /* invalid reduction, invalid target_type */
    const int bad_red[] = {3, 7, -1, INT_MAX};
    for (int k = 0; k < 4; k++) {
        snprintf(what, sizeof what, "nll %s %s reduction %d", tu_dtname(dt), tu_ttname(tt), bad_red[k]);
        SENTINELS();
        SNAP_N();
        expect_fail(tu_nll_fwd(dt, x, tg, tt, n, c, d, w, -100, (nllk_reduction)bad_red[k], out, tw),
                    NLLK_ERR_INVALID_ARGUMENT, "reduction", what);
        UNTOUCHED(1);
        expect_fail(tu_nll_bwd(dt, go, tg, tt, n, c, d, w, -100, (nllk_reduction)bad_red[k], 8.0, gx),
                    NLLK_ERR_INVALID_ARGUMENT, "reduction", what);
        snap_check(&s, what);
        CHECK(tu_gcheck(gx), "%s: wrote outside grad_input", what);
    }
    const int bad_tt[] = {3, -1, 100};
    for (int k = 0; k < 3; k++)
        for (int ri = 0; ri < 3; ri++) {
            snprintf(what, sizeof what, "nll %s target_type %d %s", tu_dtname(dt), bad_tt[k], rname(ri));
            SENTINELS();
            SNAP_N();
            expect_fail(tu_nll_fwd(dt, x, tg, (nllk_target_type)bad_tt[k], n, c, d, w, -100, reductions[ri], out, tw),
                        NLLK_ERR_INVALID_ARGUMENT, "target_type", what);
            UNTOUCHED(1);
            expect_fail(tu_nll_bwd(dt, go, tg, (nllk_target_type)bad_tt[k], n, c, d, w, -100, reductions[ri], 8.0, gx),
                        NLLK_ERR_INVALID_ARGUMENT, "target_type", what);
            snap_check(&s, what);
            CHECK(tu_gcheck(gx), "%s: wrote outside grad_input", what);
        }
#undef SNAP_N
#undef SENTINELS
#undef UNTOUCHED
    free(x), free(w), free(go), free(tg);
    tu_gfree(out), tu_gfree(tw), tu_gfree(gx);
}

/* ---- targets out of range ------------------------------------------------------------------------------- */
/* Targets in [0, c) or ignore_index except at the positions bad[0] < bad[1] < ...: each call must fail, name
 * bad[0] and its value, leave the scalars alone and write nothing outside the outputs. */
static void out_of_range_case(nllk_dtype dt, nllk_target_type tt, size_t n, size_t c, size_t d, int64_t ig,
                              const size_t *bad, const int64_t *badv, int nbad, const char *label)
{
    const size_t es = tu_esz(dt), ts = tu_tsize(tt), nd = n * d, ncd = n * c * d;
    void *x = malloc(ncd * es + 1), *w = malloc(c * es + 1), *go = malloc(nd * es + 1), *tg = malloc(nd * ts + 1);
    void *out = tu_galloc(nd * es), *tw = tu_galloc(es), *gx = tu_galloc(ncd * es);
    for (size_t i = 0; i < ncd; i++)
        tu_set(dt, x, i, -1.0 - (double)(i % 7));
    for (size_t j = 0; j < c; j++)
        tu_set(dt, w, j, 0.5 + (double)(j % 3));
    const int ig_ok = tu_trepr(tt, ig);
    for (size_t f = 0; f < nd; f++) {
        tu_tset(tt, tg, f, (ig_ok && f % 11 == 3) || c == 0 ? ig : (int64_t)((f * 7) % (c ? c : 1)));
        tu_set(dt, go, f, 0.5);
    }
    for (int b = 0; b < nbad; b++)
        tu_tset(tt, tg, bad[b], badv[b]);
    char idx[64], val[64], later[64], what[300];
    snprintf(idx, sizeof idx, "target[%zu]", bad[0]);
    snprintf(val, sizeof val, "= %lld", (long long)badv[0]);
    snprintf(later, sizeof later, "target[%zu]", nbad > 1 ? bad[1] : (size_t)-1);
    const double sentinel = 271828.0;
    snap s = {0};
    for (int th = 0; th < 2; th++) {
        nllk_set_num_threads(th ? 3 : 1);
        for (int ri = 0; ri < 3; ri++) {
            const nllk_reduction r = reductions[ri];
            for (int wi = 0; wi < 2; wi++) {
                snprintf(what, sizeof what, "%s: nll fwd %s %s (n=%zu c=%zu d=%zu) %s %s threads %d", label,
                         tu_dtname(dt), tu_ttname(tt), n, c, d, rname(r), wi ? "weighted" : "unweighted",
                         th ? 3 : 1);
                tu_set(dt, out, 0, sentinel), tu_set(dt, tw, 0, sentinel);
                snap_add(&s, x, ncd * es), snap_add(&s, w, c * es), snap_add(&s, tg, nd * ts);
                expect_fail(tu_nll_fwd(dt, x, tg, tt, n, c, d, wi ? w : NULL, ig, r, out, tw),
                            NLLK_ERR_TARGET_OUT_OF_RANGE, idx, what);
                const char *m = nllk_last_error();
                CHECK(strstr(m, val) != NULL, "%s: message \"%s\" does not give the value (%s)", what, m, val);
                CHECK(nbad < 2 || strstr(m, later) == NULL, "%s: message \"%s\" names a later index", what, m);
                snap_check(&s, what);
                CHECK((r == NLLK_REDUCTION_NONE || tu_get(dt, out, 0) == sentinel) && tu_get(dt, tw, 0) == sentinel,
                      "%s: a scalar output was written (out %g, total_weight %g)", what, tu_get(dt, out, 0),
                      tu_get(dt, tw, 0));
                CHECK(tu_gcheck(out) && tu_gcheck(tw), "%s: wrote outside out", what);

                snprintf(what, sizeof what, "%s: nll bwd %s %s (n=%zu c=%zu d=%zu) %s %s threads %d", label,
                         tu_dtname(dt), tu_ttname(tt), n, c, d, rname(r), wi ? "weighted" : "unweighted",
                         th ? 3 : 1);
                snap_add(&s, go, (r == NLLK_REDUCTION_NONE ? nd : 1) * es), snap_add(&s, w, c * es),
                    snap_add(&s, tg, nd * ts);
                expect_fail(tu_nll_bwd(dt, go, tg, tt, n, c, d, wi ? w : NULL, ig, r, 3.0, gx),
                            NLLK_ERR_TARGET_OUT_OF_RANGE, idx, what);
                m = nllk_last_error();
                CHECK(strstr(m, val) != NULL, "%s: message \"%s\" does not give the value (%s)", what, m, val);
                CHECK(nbad < 2 || strstr(m, later) == NULL, "%s: message \"%s\" names a later index", what, m);
                snap_check(&s, what);
                CHECK(tu_gcheck(gx), "%s: wrote outside grad_input", what);
            }
        }
    }
    nllk_set_num_threads(1);
    free(x), free(w), free(go), free(tg);
    tu_gfree(out), tu_gfree(tw), tu_gfree(gx);
}

static void test_out_of_range(void)
{
    for (int dti = 0; dti < 2; dti++) {
        const nllk_dtype dt = dti ? NLLK_F64 : NLLK_F32;
        for (int tti = 0; tti < 3; tti++) {
            const nllk_target_type tt = (nllk_target_type)tti;
            /* the out-of-range values of this target type, for c = 5 */
            int64_t vals[6];
            int nv = 0;
            vals[nv++] = 5; /* == c */
            vals[nv++] = 200;
            if (tt == NLLK_TARGET_U8) {
                vals[nv++] = 255;
            } else {
                vals[nv++] = -1;
                vals[nv++] = tt == NLLK_TARGET_I64 ? INT64_MAX : INT32_MAX;
                vals[nv++] = tt == NLLK_TARGET_I64 ? INT64_MIN : INT32_MIN;
                vals[nv++] = -99; /* next to the default ignore_index */
            }
            for (int v = 0; v < nv; v++) {
                /* one bad target; then several, lowest first reported */
                const size_t one[1] = {13};
                const int64_t onev[1] = {vals[v]};
                out_of_range_case(dt, tt, 6, 5, 3, -100, one, onev, 1, "single");
                const size_t three[3] = {4, 9, 17};
                const int64_t threev[3] = {vals[v], vals[(v + 1) % nv], vals[(v + 2) % nv]};
                out_of_range_case(dt, tt, 6, 5, 3, -100, three, threev, 3, "several");
                /* (N, C), the (C) form (n = d = 1), and index 0 */
                const size_t first[2] = {0, 1};
                const int64_t firstv[2] = {vals[v], vals[(v + 1) % nv]};
                out_of_range_case(dt, tt, 10, 5, 1, -100, first, firstv, 2, "first element");
                out_of_range_case(dt, tt, 1, 5, 1, -100, first, firstv, 1, "(C) form");
            }
            /* large: spread over threads; the lowest in the second half, or one in each half */
            const size_t hi[2] = {100001, 119999};
            const int64_t hiv[2] = {vals[0], vals[nv - 1]};
            out_of_range_case(dt, tt, 3, 5, 40000, -100, hi, hiv, 2, "large, second half");
            const size_t spread[3] = {4097, 70000, 110000};
            const int64_t spreadv[3] = {vals[nv - 1], vals[0], vals[1]};
            out_of_range_case(dt, tt, 3, 5, 40000, -100, spread, spreadv, 3, "large, both halves");
            const size_t rows[2] = {65539, 99998};
            out_of_range_case(dt, tt, 100000, 5, 1, -100, rows, hiv, 2, "large (N,C)");
            /* ignore_index is compared as int64, never truncated to the target type */
            if (tt == NLLK_TARGET_U8) {
                const size_t at[1] = {7};
                const int64_t v255[1] = {255};
                out_of_range_case(dt, tt, 6, 5, 3, -1, at, v255, 1, "u8 255 vs ignore_index -1");
                out_of_range_case(dt, tt, 6, 5, 3, 255 + 256, at, v255, 1, "u8 255 vs ignore_index 511");
            } else if (tt == NLLK_TARGET_I32) {
                const size_t at[1] = {7};
                const int64_t vm1[1] = {-1};
                out_of_range_case(dt, tt, 6, 5, 3, ((int64_t)1 << 32) - 1, at, vm1, 1, "i32 -1 vs 2^32-1");
            }
            /* c = 0: every target must be ignore_index */
            const size_t z[1] = {2};
            const int64_t zv[1] = {0};
            out_of_range_case(dt, tt, 4, 0, 1, 9, z, zv, 1, "c = 0");
            /* ignore_index inside [0, c) does not widen the range */
            const size_t at5[1] = {16};
            const int64_t c5[1] = {5};
            out_of_range_case(dt, tt, 6, 5, 3, 4, at5, c5, 1, "ignore_index inside");
        }
    }
}

/* ======================================================================================================== */
/* Threads, instruction sets, streaming accumulators                                                         */
/* ======================================================================================================== */
static void test_control_errors(void)
{
    expect_fail(nllk_set_num_threads(-1), NLLK_ERR_INVALID_ARGUMENT, "-1", "set_num_threads(-1)");
    expect_fail(nllk_set_num_threads(INT_MIN), NLLK_ERR_INVALID_ARGUMENT, NULL, "set_num_threads(INT_MIN)");
    CHECK(nllk_get_num_threads() >= 1, "get_num_threads %d", nllk_get_num_threads());

    const char *before = nllk_active_isa();
    CHECK(before && (!strcmp(before, "scalar") || !strcmp(before, "avx2") || !strcmp(before, "avx512") ||
                     !strcmp(before, "neon")),
          "active isa \"%s\"", before ? before : "(null)");
    expect_fail(nllk_set_isa("sse9"), NLLK_ERR_INVALID_ARGUMENT, "sse9", "set_isa(sse9)");
    CHECK(!nllk_isa_supported("sse9") && !nllk_isa_supported(NULL) && !nllk_isa_supported(""),
          "isa_supported of unknown names");
    CHECK(nllk_isa_supported("scalar"), "scalar is always supported");
    const char *other = nllk_isa_supported("neon") ? "avx2" : "neon"; /* an ISA of the other architecture */
    if (!nllk_isa_supported(other))
        expect_fail(nllk_set_isa(other), NLLK_ERR_UNSUPPORTED, other, "set_isa(other architecture)");
    CHECK(strcmp(nllk_active_isa(), before) == 0, "a failed set_isa changed the ISA: %s -> %s", before,
          nllk_active_isa());
}

static void test_acc_errors(void)
{
    static nllk_acc a, b, copy;
    char what[160];
    expect_fail(nllk_poisson_acc_init(NULL, NLLK_F32, 1, 0, 1e-8, 0), NLLK_ERR_NULL_POINTER, "acc",
                "poisson init NULL");
    expect_fail(nllk_poisson_acc_init(&a, (nllk_dtype)4, 1, 0, 1e-8, 0), NLLK_ERR_INVALID_ARGUMENT, "dtype",
                "poisson init dtype 4");
    expect_fail(nllk_nll_acc_init(NULL, NLLK_F32, NLLK_TARGET_I64, 3, 1, -100, 0), NLLK_ERR_NULL_POINTER, "acc",
                "nll init NULL");
    expect_fail(nllk_nll_acc_init(&a, (nllk_dtype)-1, NLLK_TARGET_I64, 3, 1, -100, 0), NLLK_ERR_INVALID_ARGUMENT,
                "dtype", "nll init dtype -1");
    expect_fail(nllk_nll_acc_init(&a, NLLK_F32, (nllk_target_type)3, 3, 1, -100, 0), NLLK_ERR_INVALID_ARGUMENT,
                "target_type", "nll init target_type 3");
    expect_fail(nllk_nll_acc_init(&a, NLLK_F32, NLLK_TARGET_I64, 3, 0, -100, 0), NLLK_ERR_INVALID_ARGUMENT, "d",
                "nll init d = 0");

    /* an accumulator that was never initialized */
    memset(&a, 0, sizeof a);
    const float xf[4] = {0.5f, 1.0f, 1.5f, 2.0f}, tf[4] = {1, 2, 3, 4};
    expect_fail(nllk_poisson_acc_update_f32(&a, xf, tf, 4), NLLK_ERR_INVALID_ARGUMENT, NULL, "update uninitialized");
    double v = -1.0;
    expect_fail(nllk_acc_result(&a, NLLK_REDUCTION_SUM, &v, NULL, NULL), NLLK_ERR_INVALID_ARGUMENT, NULL,
                "result uninitialized");
    CHECK(v == -1.0, "result uninitialized: value written");
    expect_fail(nllk_acc_result(NULL, NLLK_REDUCTION_SUM, &v, NULL, NULL), NLLK_ERR_NULL_POINTER, "acc", "result NULL");
    expect_fail(nllk_acc_range(NULL, NULL, NULL), NLLK_ERR_NULL_POINTER, "acc", "range NULL");

    /* wrong kind and dtype; NULL data; failed updates leave the accumulator as it was */
    expect_ok(nllk_poisson_acc_init(&a, NLLK_F32, 1, 0, 1e-8, 0), "poisson init");
    expect_ok(nllk_poisson_acc_update_f32(&a, xf, tf, 4), "poisson update");
    memcpy(&copy, &a, sizeof a);
    const double xd[4] = {0.5, 1.0, 1.5, 2.0}, td[4] = {1, 2, 3, 4};
    expect_fail(nllk_poisson_acc_update_f64(&a, xd, td, 4), NLLK_ERR_INVALID_ARGUMENT, "f32", "f64 update of f32 acc");
    const int64_t tg[4] = {0, 1, 2, 0};
    expect_fail(nllk_nll_acc_update_f32(&a, xf, tg, 1, NULL), NLLK_ERR_INVALID_ARGUMENT, "Poisson",
                "nll update of a Poisson acc");
    expect_fail(nllk_poisson_acc_update_f32(NULL, xf, tf, 4), NLLK_ERR_NULL_POINTER, "acc", "update NULL acc");
    expect_fail(nllk_poisson_acc_update_f32(&a, NULL, tf, 4), NLLK_ERR_NULL_POINTER, "input", "update NULL input");
    expect_fail(nllk_poisson_acc_update_f32(&a, xf, NULL, 4), NLLK_ERR_NULL_POINTER, "target", "update NULL target");
    expect_ok(nllk_poisson_acc_update_f32(&a, NULL, NULL, 0), "update n = 0 with NULL data");
    CHECK(memcmp(&a, &copy, sizeof a) == 0, "failed updates changed the accumulator");
    for (int r = -1; r <= 3; r += 1) {
        if (r == NLLK_REDUCTION_MEAN || r == NLLK_REDUCTION_SUM)
            continue;
        snprintf(what, sizeof what, "result reduction %d", r);
        v = -1.0;
        expect_fail(nllk_acc_result(&a, (nllk_reduction)r, &v, NULL, NULL), NLLK_ERR_INVALID_ARGUMENT, "reduction",
                    what);
        CHECK(v == -1.0, "%s: value written", what);
    }

    /* merge: different options, not adjacent */
    expect_ok(nllk_poisson_acc_init(&b, NLLK_F32, 1, 1, 1e-8, 4), "poisson init full");
    expect_fail(nllk_acc_merge(&a, &b), NLLK_ERR_INVALID_ARGUMENT, NULL, "merge different options");
    expect_ok(nllk_poisson_acc_init(&b, NLLK_F32, 1, 0, 1e-8, 5), "poisson init at 5");
    expect_fail(nllk_acc_merge(&a, &b), NLLK_ERR_INVALID_ARGUMENT, NULL, "merge non-adjacent");
    expect_ok(nllk_poisson_acc_init(&b, NLLK_F64, 1, 0, 1e-8, 4), "poisson init f64 at 4");
    expect_fail(nllk_acc_merge(&a, &b), NLLK_ERR_INVALID_ARGUMENT, NULL, "merge different dtypes");
    expect_fail(nllk_acc_merge(NULL, &b), NLLK_ERR_NULL_POINTER, "left", "merge NULL left");
    expect_fail(nllk_acc_merge(&a, NULL), NLLK_ERR_NULL_POINTER, "right", "merge NULL right");
    CHECK(memcmp(&a, &copy, sizeof a) == 0, "failed merges changed the accumulator");
    /* the element count may not pass 2^64 */
    expect_ok(nllk_poisson_acc_init(&b, NLLK_F32, 1, 0, 1e-8, UINT64_MAX - 2), "poisson init near 2^64");
    memcpy(&copy, &b, sizeof b);
    expect_fail(nllk_poisson_acc_update_f32(&b, xf, tf, 4), NLLK_ERR_INVALID_ARGUMENT, "2^64", "count past 2^64");
    CHECK(memcmp(&b, &copy, sizeof b) == 0, "a failed update changed the accumulator");
    memcpy(&copy, &a, sizeof a);

    /* NLL: a bad target names the global flat index, its sample and position; the accumulator is unchanged */
    expect_ok(nllk_nll_acc_init(&a, NLLK_F64, NLLK_TARGET_I64, 3, 4, -100, 1000), "nll init at 1000");
    const double x12[12] = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12};
    const int64_t t4[4] = {0, 2, 0, 1};
    expect_ok(nllk_nll_acc_update_f64(&a, x12, t4, 4, NULL), "nll update");
    memcpy(&copy, &a, sizeof a);
    const int64_t bad[4] = {1, -100, 3, 7}; /* element 1006 = sample 251, position 2 */
    expect_fail(nllk_nll_acc_update_f64(&a, x12, bad, 4, NULL), NLLK_ERR_TARGET_OUT_OF_RANGE, "target[1006]",
                "nll update bad target");
    CHECK(strstr(nllk_last_error(), "251") && strstr(nllk_last_error(), "= 3"),
          "nll update bad target: message \"%s\" lacks sample 251 or value 3", nllk_last_error());
    CHECK(strstr(nllk_last_error(), "target[1007]") == NULL, "nll update: a later index named");
    expect_fail(nllk_nll_acc_update_f64(&a, NULL, t4, 4, NULL), NLLK_ERR_NULL_POINTER, "input",
                "nll update NULL input");
    expect_fail(nllk_nll_acc_update_f64(&a, x12, NULL, 4, NULL), NLLK_ERR_NULL_POINTER, "target",
                "nll update NULL target");
    expect_fail(nllk_nll_acc_update_f64(&a, x12, t4, SIZE_MAX / 2, NULL), NLLK_ERR_SIZE_OVERFLOW, "overflow",
                "nll update of SIZE_MAX / 2 elements");
    CHECK(memcmp(&a, &copy, sizeof a) == 0, "failed nll updates changed the accumulator");
}

int main(void)
{
    tu_require_isa();
    test_version_and_names(); /* first: the last error is still empty */
    CHECK_OK(nllk_set_num_threads(1));
    for (int dti = 0; dti < 2; dti++) {
        const nllk_dtype dt = dti ? NLLK_F64 : NLLK_F32;
        test_poisson_errors(dt);
        for (int tti = 0; tti < 3; tti++)
            test_nll_args(dt, (nllk_target_type)tti);
    }
    test_out_of_range();
    test_control_errors();
    test_acc_errors();
    CHECK_OK(nllk_set_num_threads(0));
    return tu_summary();
}
