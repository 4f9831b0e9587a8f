/* Cross-ISA bit identity: a fixed, seeded corpus through every public entry point (and every kernel of every
 * table, directly) under every ISA this CPU has; every output must have the same bits as under the first
 * ("scalar"), NaNs compared as a class (their sign/payload bits follow SLEEF and the hardware). A hash of all
 * outputs must equal
 * tests/cross_isa.hash, so the AArch64 build (run under qemu) is checked against the same numbers as x86.
 *
 *   test_cross_isa [expected-hash-file]     prints "hash <16 hex digits>" per ISA
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/common/half.h"
#include "kernels.h"
#include "nllk.h"

/* ---- output sink: exact bytes (compared across ISAs) + canonical hash -------------------------------------- */
typedef struct sink {
    unsigned char *buf;
    size_t len, cap;
    uint64_t hash;
} sink;

/* Where the first difference is: the corpus is rerun with g_stop set, and the call that writes byte g_stop
 * prints its label. */
static size_t g_stop = (size_t)-1;
static char g_label[160];
#define LABEL(...) snprintf(g_label, sizeof g_label, __VA_ARGS__)

static void sink_raw(sink *s, const void *p, size_t n, int canon_hash)
{
    (void)canon_hash;
    if (g_stop >= s->len && g_stop < s->len + n)
        printf("  first difference in: %s (element byte %zu)\n", g_label, g_stop - s->len);
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 4096;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            abort();
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}
static void hash_bytes(sink *s, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        s->hash = (s->hash ^ b[i]) * 0x100000001b3ull;
}
/* NaNs are compared as a class: their sign and payload bits are not part of the promise (SLEEF's vector and
 * scalar functions build different NaNs for log(-1); x86 and AArch64 differ in the default NaN). Every other
 * value is compared bit for bit. */
static void sink_f32(sink *s, const float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, p + i, 4);
        if (isnan(p[i]))
            u = 0x7fc00000u;
        sink_raw(s, &u, 4, 1);
        hash_bytes(s, &u, 4);
    }
}
static void sink_f64(sink *s, const double *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t u;
        memcpy(&u, p + i, 8);
        if (isnan(p[i]))
            u = 0x7ff8000000000000ull;
        sink_raw(s, &u, 8, 1);
        hash_bytes(s, &u, 8);
    }
}
static void sink_int(sink *s, int64_t v)
{
    sink_raw(s, &v, sizeof v, 0);
    hash_bytes(s, &v, sizeof v);
}
/* 16-bit values (f16: float16 bits, else bfloat16); NaNs as a class, as above (a float16 NaN keeps the sign of
 * the float NaN rounded, which follows the hardware) */
static void sink_h16(sink *s, const uint16_t *p, size_t n, int f16)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t u = p[i];
        if ((u & 0x7fffu) > (f16 ? 0x7c00u : 0x7f80u))
            u = f16 ? 0x7e00u : 0x7fc0u;
        sink_raw(s, &u, 2, 1);
        hash_bytes(s, &u, 2);
    }
}
/* Returns whether the outputs are defined (a failed call's arrays hold unspecified values: not compared). */
static int sink_status(sink *s, nllk_status st)
{
    sink_int(s, st);
    if (st != NLLK_OK) { /* the message names the offending index: same on every ISA (not hashed: wording) */
        const char *m = nllk_last_error();
        sink_raw(s, m, strlen(m) + 1, 0);
    }
    return st == NLLK_OK;
}

/* ---- the corpus --------------------------------------------------------------------------------------------- */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double uniform(double a, double b) { return a + (b - a) * (double)(next() >> 11) / 9007199254740992.0; }

#define BIG 20000
static float xf[BIG], tf[BIG], gf[BIG], wf[64];
static double xd[BIG], td[BIG], gd[BIG], wd[64];
static int64_t t64[BIG];
static int32_t t32[BIG];
static uint8_t t8[BIG];
static float of[BIG * 20], of2[BIG * 20];
static double od[BIG * 20], od2[BIG * 20];

static void make_corpus(void)
{
    static const double special_x[] = {NAN, INFINITY, -INFINITY, 1e-40, -1e-40, 5e-324, 0.0, -0.0, 100.0, 800.0,
                                       -800.0, 89.0, 709.0, 710.0, -104.0, -746.0, 1e-30, 3.4e38, 1.0, -1.0};
    static const double special_t[] = {1.0, 0.9999999, 1.0000001, 0.0, -0.0, -1.0, 0.5, 2.0, NAN, INFINITY,
                                       1e-40, 1e30, 1.0000000000000002, 0.9999999999999999, 1e-320, 3.0};
    for (size_t i = 0; i < BIG; i++) {
        double x, t;
        const uint64_t r = next() % 16;
        x = r < 2 ? special_x[next() % (sizeof special_x / sizeof *special_x)]
            : r < 4 ? uniform(0.0, 3.0)   /* rates for log_input = 0 */
                    : uniform(-12.0, 12.0);
        t = next() % 4 == 0 ? special_t[next() % (sizeof special_t / sizeof *special_t)] : uniform(0.0, 20.0);
        if (next() % 8 == 0)
            t = floor(t);
        xf[i] = (float)x;
        xd[i] = x;
        tf[i] = (float)t;
        td[i] = t;
        gd[i] = next() % 32 == 0 ? special_x[next() % 8] : uniform(-2.0, 2.0);
        gf[i] = (float)gd[i];
    }
    for (int i = 0; i < 64; i++) {
        wd[i] = i % 7 == 0 ? 0.0 : i % 11 == 0 ? -1.5 : uniform(0.0, 3.0);
        wf[i] = (float)wd[i];
    }
}

/* targets for c classes: mostly valid, some ignore_index */
static void make_targets(size_t n, size_t c, int64_t ign)
{
    for (size_t i = 0; i < n; i++) {
        int64_t v = c ? (int64_t)(next() % c) : ign;
        if (next() % 7 == 0)
            v = ign;
        t64[i] = v;
        t32[i] = (int32_t)v;
        t8[i] = (uint8_t)v;
    }
}

static const size_t poisson_sizes[] = {71, 72, 95, 127, 128, 129, 255, 4095, 4096, 4097, 8191, 8192, 8193, 12300,
                                       BIG};

static void run_poisson(sink *s, size_t n, size_t off)
{
    const float *x = xf + off, *t = tf + off;
    const double *x8 = xd + off, *t8d = td + off;
    for (int li = 0; li < 2; li++)
        for (int full = 0; full < 2; full++)
            for (int red = 0; red < 3; red++) {
                const size_t no = red == NLLK_REDUCTION_NONE ? n : 1;
                LABEL("poisson n=%zu off=%zu log_input=%d full=%d reduction=%d", n, off, li, full, red);
                memset(of, 0, (no + 1) * sizeof *of);
                sink_status(s, nllk_poisson_nll_fwd_f32(x, t, n, li, full, 1e-8, (nllk_reduction)red, of));
                sink_f32(s, of, no);
                memset(od, 0, (no + 1) * sizeof *od);
                sink_status(s, nllk_poisson_nll_fwd_f64(x8, t8d, n, li, full, 1e-8, (nllk_reduction)red, od));
                sink_f64(s, od, no);
                for (int with_gt = 0; with_gt < 2; with_gt++) {
                    memset(of, 0, n * sizeof *of);
                    memset(of2, 0, n * sizeof *of2);
                    sink_status(s, nllk_poisson_nll_bwd_f32(x, t, n, li, full, 1e-8, (nllk_reduction)red,
                                                            red ? gf + 3 : gf + off, of, with_gt ? of2 : NULL));
                    sink_f32(s, of, n);
                    sink_f32(s, of2, n);
                    memset(od, 0, n * sizeof *od);
                    memset(od2, 0, n * sizeof *od2);
                    sink_status(s, nllk_poisson_nll_bwd_f64(x8, t8d, n, li, full, 1e-8, (nllk_reduction)red,
                                                            red ? gd + 3 : gd + off, od, with_gt ? od2 : NULL));
                    sink_f64(s, od, n);
                    sink_f64(s, od2, n);
                }
            }
}

static void run_nll(sink *s, size_t n, size_t c, size_t d, int64_t ign, int bad_at)
{
    const size_t nd = n * d, ncd = n * c * d;
    if (nd > BIG || ncd > BIG * 20)
        return;
    make_targets(nd, c, ign);
    if (bad_at >= 0 && (size_t)bad_at < nd) {
        t64[bad_at] = (int64_t)c + 3;
        t32[bad_at] = (int32_t)c + 3;
        t8[bad_at] = (uint8_t)(c + 3);
    }
    static float xin[BIG * 20];
    static double xin8[BIG * 20];
    for (size_t i = 0; i < ncd; i++) {
        xin[i] = xf[i % BIG] - 13.0f;
        xin8[i] = xd[i % BIG] - 13.0;
    }
    const void *tg[3] = {t64, t32, t8};
    for (int tt = 0; tt < 3; tt++) {
        if (tt == 2 && (ign < 0 || ign > 255))
            continue; /* a uint8 target cannot hold it: covered by i64/i32 */
        for (int wt = 0; wt < 2; wt++)
            for (int red = 0; red < 3; red++) {
                const size_t no = red == NLLK_REDUCTION_NONE ? nd : 1;
                LABEL("nll n=%zu c=%zu d=%zu ign=%lld tt=%d weight=%d reduction=%d", n, c, d, (long long)ign, tt, wt,
                      red);
                float tw = -7;
                double tw8 = -7;
                memset(of, 0, (no + 1) * sizeof *of);
                if (sink_status(s, nllk_nll_fwd_f32(xin, tg[tt], (nllk_target_type)tt, n, c, d, wt ? wf : NULL,
                                                    ign, (nllk_reduction)red, of, &tw)))
                    sink_f32(s, of, no);
                sink_f32(s, &tw, 1);
                memset(od, 0, (no + 1) * sizeof *od);
                if (sink_status(s, nllk_nll_fwd_f64(xin8, tg[tt], (nllk_target_type)tt, n, c, d, wt ? wd : NULL,
                                                    ign, (nllk_reduction)red, od, &tw8)))
                    sink_f64(s, od, no);
                sink_f64(s, &tw8, 1);
                for (size_t i = 0; i < ncd; i++) {
                    of[i] = 42.0f;
                    od[i] = 42.0;
                }
                if (sink_status(s, nllk_nll_bwd_f32(red ? gf + 5 : gf, tg[tt], (nllk_target_type)tt, n, c, d,
                                                    wt ? wf : NULL, ign, (nllk_reduction)red, 2.5f, of)))
                    sink_f32(s, of, ncd);
                if (sink_status(s, nllk_nll_bwd_f64(red ? gd + 5 : gd, tg[tt], (nllk_target_type)tt, n, c, d,
                                                    wt ? wd : NULL, ign, (nllk_reduction)red, 2.5, od)))
                    sink_f64(s, od, ncd);
            }
    }
}

/* Cross-entropy: logits mostly moderate (a special value of the corpus every 53rd: NaN, Inf, 800, ... rows), both
 * target kinds, fwd (lse too) and bwd (with and without lse), label smoothing 0 and 0.3. */
/* Cross-entropy inputs (run_ce, and the 16-bit ones of run_half): logit i one in 53 from the corpus, the rest finite
 * in [-27, 27] (a row of the corpus alone holds a NaN or an infinity from about 20 classes on, which would hide the
 * exp-sum); probability i in [0, 1]. */
static float ce_logit(size_t i)
{
    return i % 53 == 0 ? xf[i % BIG] : (float)((int)((i * 2654435761u) % 2001u) - 1000) / 37.0f;
}
static float ce_prob(size_t i) { return (float)((i * 40503u) % 1000u) / 999.0f; }

static void run_ce(sink *s, size_t n, size_t c, size_t d, int64_t ign)
{
    const size_t nd = n * d, ncd = n * c * d;
    if (nd > BIG || ncd > BIG * 20)
        return;
    make_targets(nd, c, ign);
    static float xin[BIG * 20], qin[BIG * 20], lse[BIG];
    static double xin8[BIG * 20], qin8[BIG * 20], lse8[BIG];
    for (size_t i = 0; i < ncd; i++) {
        xin[i] = ce_logit(i);
        xin8[i] = i % 53 == 0 ? xd[i % BIG] : (double)((int)((i * 2654435761u) % 2001u) - 1000) / 37.0;
        qin[i] = ce_prob(i);
        qin8[i] = (double)((i * 40503u) % 1000u) / 999.0;
    }
    const float *wf_ = c <= 64 ? wf : NULL;
    const double *wd_ = c <= 64 ? wd : NULL;
    for (int prob = 0; prob < 2; prob++)
        for (int ls10 = 0; ls10 <= 3; ls10 += 3)
            for (int wt = 0; wt < 2; wt++)
                for (int red = 0; red < 3; red++) {
                    const double ls = ls10 / 10.0;
                    const size_t no = red == NLLK_REDUCTION_NONE ? nd : 1;
                    const int tt = (int)((n + c + d) % 3) == 2 && (ign < 0 || ign > 255) ? 0 : (int)((n + c + d) % 3);
                    const void *tg = tt == 0 ? (const void *)t64 : tt == 1 ? (const void *)t32 : (const void *)t8;
                    LABEL("ce prob=%d n=%zu c=%zu d=%zu ign=%lld tt=%d ls=%g weight=%d reduction=%d", prob, n, c, d,
                          (long long)ign, tt, ls, wt, red);
                    float tw = -7;
                    double tw8 = -7;
                    const float *w = wt ? wf_ : NULL;
                    const double *w8 = wt ? wd_ : NULL;
                    nllk_status st = prob ? nllk_cross_entropy_prob_fwd_f32(xin, qin, n, c, d, w, ls, (nllk_reduction)red,
                                                                           of, lse)
                                          : nllk_cross_entropy_fwd_f32(xin, tg, (nllk_target_type)tt, n, c, d, w, ign, ls,
                                                                       (nllk_reduction)red, of, &tw, lse);
                    if (sink_status(s, st)) {
                        sink_f32(s, of, no);
                        sink_f32(s, lse, nd);
                    }
                    sink_f32(s, &tw, 1);
                    st = prob ? nllk_cross_entropy_prob_fwd_f64(xin8, qin8, n, c, d, w8, ls, (nllk_reduction)red, od, lse8)
                              : nllk_cross_entropy_fwd_f64(xin8, tg, (nllk_target_type)tt, n, c, d, w8, ign, ls,
                                                           (nllk_reduction)red, od, &tw8, lse8);
                    if (sink_status(s, st)) {
                        sink_f64(s, od, no);
                        sink_f64(s, lse8, nd);
                    }
                    sink_f64(s, &tw8, 1);
                    for (int given = 0; given < 2; given++) {
                        st = prob ? nllk_cross_entropy_prob_bwd_f32(red ? gf + 5 : gf, xin, qin, n, c, d, w, ls,
                                                                   (nllk_reduction)red, given ? lse : NULL, of, of2)
                                  : nllk_cross_entropy_bwd_f32(red ? gf + 5 : gf, xin, tg, (nllk_target_type)tt, n, c, d,
                                                               w, ign, ls, (nllk_reduction)red, 2.5f, given ? lse : NULL,
                                                               of);
                        if (sink_status(s, st)) {
                            sink_f32(s, of, ncd);
                            if (prob)
                                sink_f32(s, of2, ncd);
                        }
                        st = prob ? nllk_cross_entropy_prob_bwd_f64(red ? gd + 5 : gd, xin8, qin8, n, c, d, w8, ls,
                                                                   (nllk_reduction)red, given ? lse8 : NULL, od, od2)
                                  : nllk_cross_entropy_bwd_f64(red ? gd + 5 : gd, xin8, tg, (nllk_target_type)tt, n, c,
                                                               d, w8, ign, ls, (nllk_reduction)red, 2.5,
                                                               given ? lse8 : NULL, od);
                        if (sink_status(s, st)) {
                            sink_f64(s, od, ncd);
                            if (prob)
                                sink_f64(s, od2, ncd);
                        }
                    }
                }
}

/* The kernels of a table, called directly: both outputs at once, lanes starting from non-zero values. */
static void run_table(sink *s, const nllk_isa *isa)
{
    const nllk_kernels *kf = isa->kernels[NLLK_SLOT_F32], *kd = isa->kernels[NLLK_SLOT_F64];
    for (size_t n = 0; n <= 70; n++) {
        for (int li = 0; li < 2; li++)
            for (int full = 0; full < 2; full++) {
                LABEL("table poisson n=%zu log_input=%d full=%d", n, li, full);
                const nllk_poisson_params p = {1e-8, li, full};
                double lanes[32];
                for (int i = 0; i < 32; i++)
                    lanes[i] = i * 0.25;
                kf->poisson_fwd(n, xf + 1, tf + 1, &p, of, lanes);
                sink_f32(s, of, n);
                sink_f64(s, lanes, 16);
                kd->poisson_fwd(n, xd + 1, td + 1, &p, od, lanes);
                sink_f64(s, od, n);
                sink_f64(s, lanes, 16);
                kf->poisson_bwd(n, xf, tf, &p, gf, 0, of, of2);
                sink_f32(s, of, n);
                sink_f32(s, of2, n);
            }
        for (size_t ks = 1; ks <= 5; ks += 4) {
            const size_t c = 7, cs = ks == 1 ? 3 : 1;
            const nllk_nll_run r = {n, ks, cs, c, 2};
            LABEL("table nll n=%zu ks=%zu", n, ks);
            make_targets(n, c, 2);
            if (n > 9 && n % 5 == 0)
                t64[n - 9] = -1; /* out of range: same k from every ISA */
            double lanes[32];
            for (int i = 0; i < 32; i++)
                lanes[i] = i * 0.5;
            size_t done = kf->nll_fwd[0](&r, xf, t64, wf, of, lanes);
            sink_int(s, (int64_t)done);
            if (done == n) { /* else out and lanes are unspecified */
                sink_f32(s, of, n);
                sink_f64(s, lanes, 32);
            }
            done = kd->nll_fwd[0](&r, xd, t64, NULL, od, lanes);
            sink_int(s, (int64_t)done);
            if (done == n) {
                sink_f64(s, od, n);
                sink_f64(s, lanes, 32);
            }
            sink_int(s, (int64_t)kf->nll_check[0](n, t64, c, 2));
            sink_int(s, (int64_t)kf->nll_check[1](n, t32, c, (int64_t)1 << 40)); /* an ign no int32 holds */
        }
    }
}

/* ---- 16-bit storage: the corpus rounded to bfloat16 / float16, through the public functions ---------------- */
static uint16_t hx[BIG], ht[BIG], hg[BIG], hw[64];
static uint16_t ho[BIG * 20], ho2[BIG * 20];

static void run_half(sink *s, int f16)
{
    uint16_t (*to_h)(float) = f16 ? nllk_f32_to_f16 : nllk_f32_to_bf16;
    for (size_t i = 0; i < BIG; i++) {
        hx[i] = to_h(xf[i]);
        ht[i] = to_h(tf[i]);
        hg[i] = to_h(gf[i]);
    }
    for (int i = 0; i < 64; i++)
        hw[i] = to_h(wf[i]);
#define H16(fn, ...) (f16 ? fn##_f16(__VA_ARGS__) : fn##_bf16(__VA_ARGS__))
    static const size_t sizes[] = {0, 1, 15, 16, 17, 33, 95, 4097, 12300, BIG};
    for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
        const size_t n = sizes[si];
        for (int li = 0; li < 2; li++)
            for (int full = 0; full < 2; full++)
                for (int red = 0; red < 3; red++) {
                    const size_t no = red == NLLK_REDUCTION_NONE ? n : 1;
                    LABEL("%s poisson n=%zu log_input=%d full=%d reduction=%d", f16 ? "f16" : "bf16", n, li, full, red);
                    memset(ho, 0, (no + 1) * 2);
                    sink_status(s, H16(nllk_poisson_nll_fwd, hx, ht, n, li, full, 1e-8, (nllk_reduction)red, ho));
                    sink_h16(s, ho, no, f16);
                    memset(ho, 0, n * 2);
                    memset(ho2, 0, n * 2);
                    sink_status(s, H16(nllk_poisson_nll_bwd, hx, ht, n, li, full, 1e-8, (nllk_reduction)red,
                                       red ? hg + 3 : hg, ho, ho2));
                    sink_h16(s, ho, n, f16);
                    sink_h16(s, ho2, n, f16);
                }
    }
    /* NLL: 2-D rows (narrow and wide), N-D planes; the input shifted as run_nll's */
    static const size_t shapes[][3] = {{70, 3, 1}, {4097, 5, 1}, {300, 40, 1}, {3, 4, 1500}, {2, 21, 17}, {1, 40, 1}};
    static uint16_t hin[BIG * 20];
    for (size_t i = 0; i < BIG * 20; i++)
        hin[i] = to_h(xf[i % BIG] - 13.0f);
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const size_t n = shapes[k][0], c = shapes[k][1], d = shapes[k][2], nd = n * d, ncd = n * c * d;
        make_targets(nd, c, -100);
        for (int wt = 0; wt < 2; wt++)
            for (int red = 0; red < 3; red++) {
                const size_t no = red == NLLK_REDUCTION_NONE ? nd : 1;
                LABEL("%s nll n=%zu c=%zu d=%zu weight=%d reduction=%d", f16 ? "f16" : "bf16", n, c, d, wt, red);
                uint16_t tw = 0x1234;
                memset(ho, 0, (no + 1) * 2);
                if (sink_status(s, H16(nllk_nll_fwd, hin, t64, NLLK_TARGET_I64, n, c, d, wt ? hw : NULL, -100,
                                       (nllk_reduction)red, ho, &tw)))
                    sink_h16(s, ho, no, f16);
                sink_h16(s, &tw, 1, f16);
                memset(ho, 0x42, ncd * 2);
                if (sink_status(s, H16(nllk_nll_bwd, red ? hg + 5 : hg, t64, NLLK_TARGET_I64, n, c, d, wt ? hw : NULL,
                                       -100, (nllk_reduction)red, to_h(2.5f), ho)))
                    sink_h16(s, ho, ncd, f16);
            }
    }
    /* cross-entropy: rows and planes, class-index (weighted, smoothed) and probability targets, on run_ce's inputs */
    static uint16_t hq[BIG * 20];
    for (size_t i = 0; i < BIG * 20; i++) {
        hin[i] = to_h(ce_logit(i));
        hq[i] = to_h(ce_prob(i));
    }
    static const size_t ce_shapes[][3] = {{40, 17, 1}, {3, 100, 1}, {2, 5, 33}, {7, 333, 1}};
    for (size_t k = 0; k < sizeof ce_shapes / sizeof *ce_shapes; k++) {
        const size_t n = ce_shapes[k][0], c = ce_shapes[k][1], d = ce_shapes[k][2], nd = n * d, ncd = n * c * d;
        make_targets(nd, c, -100);
        const uint16_t *w = c <= 64 ? hw : NULL; /* 64 weights */
        for (int prob = 0; prob < 2; prob++)
            for (int red = 0; red < 3; red++) {
                const size_t no = red == NLLK_REDUCTION_NONE ? nd : 1;
                const double ls = red == 1 ? 0.1 : 0.0;
                LABEL("%s ce n=%zu c=%zu d=%zu prob=%d reduction=%d", f16 ? "f16" : "bf16", n, c, d, prob, red);
                uint16_t tw = 0x1234;
                memset(ho, 0, (no + 1) * 2);
                memset(ho2, 0, nd * 2);
                if (sink_status(s, prob ? H16(nllk_cross_entropy_prob_fwd, hin, hq, n, c, d, w, ls,
                                              (nllk_reduction)red, ho, ho2)
                                        : H16(nllk_cross_entropy_fwd, hin, t64, NLLK_TARGET_I64, n, c, d, w, -100,
                                              ls, (nllk_reduction)red, ho, &tw, ho2))) {
                    sink_h16(s, ho, no, f16);
                    sink_h16(s, ho2, nd, f16);
                }
                sink_h16(s, &tw, 1, f16);
                memset(ho, 0, ncd * 2);
                memset(ho2, 0, ncd * 2);
                if (sink_status(s, prob ? H16(nllk_cross_entropy_prob_bwd, red ? hg + 5 : hg, hin, hq, n, c, d,
                                              NULL, ls, (nllk_reduction)red, NULL, ho, ho2)
                                        : H16(nllk_cross_entropy_bwd, red ? hg + 5 : hg, hin, t64, NLLK_TARGET_I64, n,
                                              c, d, NULL, -100, ls, (nllk_reduction)red, to_h(2.5f), NULL, ho))) {
                    sink_h16(s, ho, ncd, f16);
                    sink_h16(s, ho2, prob ? ncd : 0, f16);
                }
            }
    }
    /* every stored value through NLL's product -x*w (the conversions both ways) */
    for (uint32_t i = 0; i < 65536; i++) {
        hin[i] = (uint16_t)i;
        t64[i % BIG] = 0;
    }
    for (int k = 0; k < 3; k++) {
        const uint16_t w = k == 0 ? to_h(1.0f) : k == 1 ? to_h(1.5f) : to_h(-0.375f);
        for (size_t o = 0; o < 65536; o += BIG) {
            const size_t n = 65536 - o < BIG ? 65536 - o : BIG;
            LABEL("%s every value w=%d from %zu", f16 ? "f16" : "bf16", k, o);
            sink_status(
                s, H16(nllk_nll_fwd, hin + o, t64, NLLK_TARGET_I64, n, 1, 1, &w, -100, NLLK_REDUCTION_NONE, ho, NULL));
            sink_h16(s, ho, n, f16);
        }
    }
#undef H16
}

static void run_corpus(sink *s)
{
    rng = 0x9e3779b97f4a7c15ull;
    make_corpus();
    for (size_t n = 0; n <= 70; n++)
        for (size_t off = 0; off < 2; off++)
            run_poisson(s, n, off);
    for (size_t i = 0; i < sizeof poisson_sizes / sizeof *poisson_sizes; i++)
        run_poisson(s, poisson_sizes[i] - (poisson_sizes[i] == BIG), poisson_sizes[i] == BIG ? 1 : 0);
    /* NLL: 2-D, N-D, 1-D; ignore_index inside and outside [0, c) */
    static const size_t cs[] = {1, 3, 17, 40};
    for (size_t n = 0; n <= 70; n++)
        for (size_t ci = 0; ci < 4; ci++)
            run_nll(s, n, cs[ci], 1, n % 2 ? -100 : 1, -1);
    static const size_t big_n[] = {127, 4095, 4096, 4097, 8200};
    for (size_t i = 0; i < 5; i++)
        run_nll(s, big_n[i], 5, 1, -100, -1);
    static const size_t ds[] = {2, 5, 16, 17, 67, 4097};
    for (size_t di = 0; di < 6; di++)
        for (size_t n = 0; n <= 3; n++)
            run_nll(s, n, 3, ds[di], di % 2 ? -100 : 0, -1);
    run_nll(s, 1, 40, 1, -100, -1);          /* (C) with one target */
    run_nll(s, 5000, 3, 1, -100, 4321);      /* an out-of-range target */
    run_nll(s, 3, 4, 1500, 255, 2 * 1500 + 7);
    run_nll(s, 4, 0, 3, -100, -1);           /* c = 0: every target ignored */
    /* cross-entropy: rows (along classes) across the vector and 16-lane edges, planes (along positions), a wide row */
    static const size_t ce_c[] = {1, 3, 8, 16, 17, 33, 64, 100};
    for (size_t n = 0; n <= 5; n++)
        for (size_t ci = 0; ci < 8; ci++)
            run_ce(s, n, ce_c[ci], 1, n % 2 ? -100 : 1);
    static const size_t ce_d[] = {2, 15, 17, 40};
    for (size_t di = 0; di < 4; di++)
        for (size_t n = 1; n <= 2; n++) {
            run_ce(s, n, 3, ce_d[di], -100);
            run_ce(s, n, 21, ce_d[di], 0);
        }
    run_ce(s, 2, 5000, 1, -100);
    run_ce(s, 3000, 5, 1, 2);
    run_half(s, 0);
    run_half(s, 1);
}

int main(int argc, char **argv)
{
    sink ref = {0}, cur = {0};
    int failures = 0, ran = 0;
    nllk_set_num_threads(1);
    char expected[64] = "";
    if (argc > 1) {
        FILE *f = fopen(argv[1], "r");
        if (!f || fscanf(f, "%63s", expected) != 1) {
            fprintf(stderr, "cannot read %s\n", argv[1]);
            return 1;
        }
        fclose(f);
    }
    for (int i = 0; nllk_isa_name(i); i++) { /* the build's ISAs, the first ("scalar") the reference */
        const char *isa = nllk_isa_name(i);
        if (!nllk_isa_supported(isa))
            continue;
        if (nllk_set_isa(isa) != NLLK_OK || strcmp(nllk_active_isa(), isa) != 0) {
            fprintf(stderr, "cannot select %s\n", isa);
            return 1;
        }
        sink *s = ran ? &cur : &ref;
        s->len = 0;
        s->hash = 0xcbf29ce484222325ull;
        run_corpus(s);
        run_table(s, nllk_active());
        char h[32];
        snprintf(h, sizeof h, "%016" PRIx64, s->hash);
        printf("%s: hash %s (%zu bytes of output)\n", isa, h, s->len);
        if (expected[0] && strcmp(h, expected) != 0) {
            printf("FAIL %s: hash differs from the expected %s\n", isa, expected);
            failures++;
        }
        if (ran) {
            if (cur.len != ref.len) {
                printf("FAIL %s: %zu output bytes, scalar %zu\n", isa, cur.len, ref.len);
                failures++;
            } else if (memcmp(cur.buf, ref.buf, ref.len) != 0) {
                size_t at = 0;
                while (cur.buf[at] == ref.buf[at])
                    at++;
                printf("FAIL %s: output differs from scalar's at byte %zu\n", isa, at);
                failures++;
                g_stop = at;
                sink tmp = {0};
                run_corpus(&tmp);
                run_table(&tmp, nllk_active());
                free(tmp.buf);
                g_stop = (size_t)-1;
            }
        }
        ran++;
    }
    /* unknown and unsupported names are refused and leave the active ISA alone */
    const char *before = nllk_active_isa();
    if (nllk_set_isa("sse9") != NLLK_ERR_INVALID_ARGUMENT || nllk_active_isa() != before) {
        printf("FAIL: unknown ISA name accepted\n");
        failures++;
    }
    static const char *const every[] = {"scalar", "avx2", "avx512", "neon"}; /* also other architectures' */
    for (int i = 0; i < 4; i++)
        if (!nllk_isa_supported(every[i]) && nllk_set_isa(every[i]) != NLLK_ERR_UNSUPPORTED) {
            printf("FAIL: unsupported %s not refused\n", every[i]);
            failures++;
        }
    nllk_set_isa(NULL);
    printf("test_cross_isa: %d ISAs, %d failures (automatic ISA %s)\n", ran, failures, nllk_active_isa());
    free(ref.buf);
    free(cur.buf);
    return failures != 0;
}
