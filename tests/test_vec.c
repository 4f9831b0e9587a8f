/* test_vec: every vector map (kernels/<dir>/vec.h), operation by operation, against the scalar map's semantics.
 *
 * Run once per ISA of the registry (NLLK_ISA=<name>, like every C test); it probes the build that serves that ISA
 * (tests/vec_probe.c, compiled with the build's flags over its vec.h) on random and edge inputs (+-0, +-inf, NaN,
 * denormals, values either side of 1, masked tails of every length) and checks each output bit for bit against
 * what plain C gives (the scalar map is plain C): IEEE add/sub/mul/div/neg in the dtype, comparisons, selects,
 * masked loads and stores, streaming stores, double accumulation, target widening and classification, gathers and
 * scatters, zero fills. exp and log (SLEEF) are checked bit for bit against the scalar map's probe (the build serving
 * "scalar"), NaNs as a class, and against libm within SLEEF's 1 ulp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels.h"
#include "nllk_builds.h"
#include "testutil.h"
#include "vec_probe.h"
#include "kernels/common/half.h"
#if defined(__x86_64__)
#    include <xmmintrin.h>
#endif

/* every build's probes, from the registry (the builds compiled here: nllk_builds.h) */
#define NLLK_ISA(name, build, dir, arch, need, flags)                                                                  \
    NLLK_BUILT_##build(                                                                                                \
        size_t vec_f32_probe__##build(const vec_probe *); size_t vec_f64_probe__##build(const vec_probe *);            \
        void vec_f32_zero_fill__##build(void *, size_t); void vec_f64_zero_fill__##build(void *, size_t);)
#include "kernels/isas.h"
#undef NLLK_ISA

typedef struct probe_set {
    const char *name, *build;
    unsigned need;         /* NLLK_CPU_* bits */
    vec_probe_fn probe[2]; /* f32, f64 */
    vec_zero_fill_fn zero_fill[2];
} probe_set;

static const probe_set probes[] = {
#define NLLK_ISA(name, build, dir, arch, need, flags)                                                                  \
    NLLK_BUILT_##build({#name,                                                                                         \
                        #build,                                                                                        \
                        need,                                                                                          \
                        {vec_f32_probe__##build, vec_f64_probe__##build},                                              \
                        {vec_f32_zero_fill__##build, vec_f64_zero_fill__##build}}, )
#include "kernels/isas.h"
#undef NLLK_ISA
};

/* every build's 16-bit storage probes (tests/vec_probe16.c) */
#define NLLK_ISA(name, build, dir, arch, need, flags)                                                                  \
    NLLK_BUILT_##build(size_t vec_bf16_probe16__##build(const vec_probe16 *);                                          \
                       size_t vec_f16_probe16__##build(const vec_probe16 *);)
#include "kernels/isas.h"
#undef NLLK_ISA
typedef struct probe16_set {
    const char *build;
    vec_probe16_fn probe[2]; /* bf16, f16 */
} probe16_set;
static const probe16_set probes16[] = {
#define NLLK_ISA(name, build, dir, arch, need, flags)                                                                  \
    NLLK_BUILT_##build({#build, {vec_bf16_probe16__##build, vec_f16_probe16__##build}}, )
#include "kernels/isas.h"
#undef NLLK_ISA
};

static const probe_set *probes_of(const char *build)
{
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        if (strcmp(probes[i].build, build) == 0)
            return &probes[i];
    return NULL;
}

static const char *const op_names[P_NUM_OUT] = {
    "add",  "sub",    "mul",     "div",    "neg",    "exp",  "log",   "set1",   "le",     "select",  "mzero",
    "load", "load_n", "store_n", "gather", "stream", "tsel", "tnsel", "exp_ce", "mblend", "max_num", "exp_ce_le0",
    "split_hi", "split_lo", "rdiv", "tnpick"};

enum { N = 512 };

/* An edge value or a random one of varied magnitude (denormals included). */
static double edge_or_random(nllk_dtype dt, size_t i)
{
    const double tiny = dt == NLLK_F32 ? 1e-40 : 1e-310; /* a denormal of the dtype */
    static const double fixed[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, -NAN, 1.0, -1.0, 0.5, 2.0, 1e-8, 100.0};
    const size_t nf = sizeof fixed / sizeof fixed[0];
    if (i < nf)
        return fixed[i];
    if (i < nf + 4)
        return (i % 2 ? -1 : 1) * tiny * (double)(i - nf + 1);
    switch (tu_below(5)) {
    case 0: return tu_uniform(-2.0, 2.0);
    case 1: return ldexp(tu_uniform(0.5, 1.0), (int)tu_below(60) - 30);
    case 2: return -ldexp(tu_uniform(0.5, 1.0), (int)tu_below(60) - 30);
    case 3: return tu_uniform(0.9, 1.1);
    default: return fixed[tu_below(nf)];
    }
}

/* one IEEE operation in the dtype (tests are built with -ffp-contract=off) */
static double op_in(nllk_dtype dt, int op, double a, double b)
{
    if (dt == NLLK_F32) {
        const float x = (float)a, y = (float)b;
        volatile float r = op == P_ADD ? x + y : op == P_SUB ? x - y : op == P_MUL ? x * y : x / y;
        return r;
    }
    volatile double r = op == P_ADD ? a + b : op == P_SUB ? a - b : op == P_MUL ? a * b : a / b;
    return r;
}

/* exp/log against libm: within 1 ulp (SLEEF u10), or both NaN, or the same infinity/zero */
static int near_libm(nllk_dtype dt, int op, double a, double got)
{
    const double want =
        dt == NLLK_F32 ? (double)(op == P_EXP ? expf((float)a) : logf((float)a)) : (op == P_EXP ? exp(a) : log(a));
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || isinf(got))
        return want == got || (dt == NLLK_F32 ? tu_ulp_f32((float)got, (float)want) : tu_ulp_f64(got, want)) <= 1;
    return (dt == NLLK_F32 ? tu_ulp_f32((float)got, (float)want) : tu_ulp_f64(got, want)) <= 1;
}

/* v_exp_ce against libm's double exp: f32 within 2 ulp of its float rounding (the definition is within 1.02 ulp of
 * the exact value), NaN for NaN; f64 as v_exp */
static int near_exp_ce(nllk_dtype dt, double a, double got)
{
    if (dt == NLLK_F64)
        return near_libm(dt, P_EXP, a, got);
    const float want = (float)exp((double)(float)a);
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    return tu_ulp_f32((float)got, want) <= 2;
}

/* cur's map on one dtype and layout (ks_2d: the 2-D row stride, or 0 for N-D planes); ref NULL: exp/log against
 * libm only */
static void check_dtype(const probe_set *cur, const probe_set *ref, nllk_dtype dt, size_t ks_2d)
{
    const int slot = dt == NLLK_F32 ? 0 : 1;
    const size_t es = tu_esz(dt), c = 7;
    /* two layouts: 2-D rows (ks = c-ish, cs = 1) and N-D planes (ks = 1, cs = N); positions never collide */
    const size_t ks = ks_2d ? ks_2d : 1, cs = ks_2d ? 1 : N;
    const size_t xn = (N - 1) * ks + c * cs + 1;
    void *a = calloc(N, es), *b = calloc(N, es), *x = calloc(xn, es);
    void *out = calloc((size_t)P_NUM_OUT * N, es), *ref_out = calloc((size_t)P_NUM_OUT * N, es);
    void *scat = calloc(xn, es), *ref_scat = calloc(xn, es);
    double d[N], acc[N], ref_acc[N], acc_sum[N];
    unsigned char keep[N], bad[3 * N], valid[3 * N], ref_bad[3 * N], ref_valid[3 * N];
    int64_t t64[N];
    int32_t t32[N];
    uint8_t t8[N];
    const int64_t ign = ks_2d ? 2 : -100;
    for (size_t i = 0; i < N; i++) {
        /* every third value in v_exp_ce's range of interest (cross-entropy: [-104, 0]), its ends and beyond */
        tu_set(dt, a, i, i >= 16 && i % 3 == 0 ? tu_uniform(-110.0, 90.0) : edge_or_random(dt, i));
        tu_set(dt, b, i, edge_or_random(dt, (i * 7 + 3) % N));
        d[i] = edge_or_random(NLLK_F64, (i * 5 + 1) % N);
        keep[i] = (unsigned char)tu_below(2);
        const int64_t r = (int64_t)tu_below(12) - 2; /* -2 .. 9 around [0, 7) */
        t64[i] = i % 13 == 0 ? ign : i % 29 == 0 ? INT64_MIN + (int64_t)i : r;
        t32[i] = i % 11 == 0 ? (int32_t)ign : (int32_t)r;
        t8[i] = (uint8_t)(i % 9 == 0 ? 255 : r < 0 ? 0 : r);
    }
    for (size_t i = 0; i < xn; i++)
        tu_set(dt, x, i, tu_uniform(-4.0, 4.0));
    const double sentinel = 12345.0;
    vec_probe p = {N, a, b, d, keep, t64, t32, t8, c, ks, cs, ign, x, out, acc, bad, valid, scat, acc_sum};
    vec_probe q = p;
    q.out = ref_out;
    q.acc = ref_acc;
    q.acc_sum = NULL; /* the reference map's is not needed: plain C above */
    q.bad = ref_bad;
    q.valid = ref_valid;
    q.scatter = ref_scat;
    for (size_t i = 0; i < N; i++) {
        tu_set(dt, out, (size_t)P_STORE_N * N + i, sentinel);
        tu_set(dt, ref_out, (size_t)P_STORE_N * N + i, sentinel);
    }
    const size_t vw = cur->probe[slot](&p);
    if (ref)
        ref->probe[slot](&q);
    CHECK(vw >= 1 && 16 % vw == 0, "%s %s: VW = %zu", cur->build, tu_dtname(dt), vw);

    for (size_t i = 0; i < N; i++) {
        const double ai = tu_get(dt, a, i), bi = tu_get(dt, b, i);
        const size_t lane = i % vw, m = (i / vw) % vw;
        const int le = ai <= bi;
        const int ok64 = t64[i] != ign && t64[i] >= 0 && t64[i] < (int64_t)c;
        double want[P_NUM_OUT];
        want[P_ADD] = op_in(dt, P_ADD, ai, bi);
        want[P_SUB] = op_in(dt, P_SUB, ai, bi);
        want[P_MUL] = op_in(dt, P_MUL, ai, bi);
        want[P_DIV] = op_in(dt, P_DIV, ai, bi);
        want[P_NEG] = -ai;
        want[P_EXP] = ref ? tu_get(dt, ref_out, (size_t)P_EXP * N + i) : NAN;
        want[P_LOG] = ref ? tu_get(dt, ref_out, (size_t)P_LOG * N + i) : NAN;
        want[P_SET1] = tu_round(dt, d[i]);
        want[P_LE] = le ? 1.0 : 0.0;
        want[P_SELECT] = le ? ai : bi;
        want[P_MZERO] = keep[i] ? ai : 0.0;
        want[P_MBLEND] = keep[i] ? ai : bi;
        want[P_LOAD] = ai;
        want[P_LOAD_N] = lane < m ? ai : 0.0;
        want[P_STORE_N] = lane < m ? ai : sentinel;
        want[P_GATHER] = ok64 ? tu_get(dt, x, i * ks + (size_t)t64[i] * cs) : 0.0;
        want[P_STREAM] = ai;
        want[P_TSEL] = keep[i] && t64[i] == 3 ? ai : 0.0;
        want[P_TNSEL] = keep[i] && (int32_t)(uint32_t)(uint64_t)t64[i] == 3 ? ai : 0.0;
        want[P_TNPICK] = keep[i] && (int32_t)(uint32_t)(uint64_t)t64[i] == 3 ? ai : bi;
        want[P_EXP_CE] = ref ? tu_get(dt, ref_out, (size_t)P_EXP_CE * N + i) : NAN;
        want[P_MAX_NUM] = bi > ai ? bi : ai; /* x > m ? x : m: NaN b keeps a; equal zeros keep a */
        /* v_exp_ce_le0 is v_exp_ce (the map's own, checked above) where a <= 0 or NaN */
        want[P_CE_EXP0] = ai <= 0 || ai != ai ? tu_get(dt, out, (size_t)P_EXP_CE * N + i) : 0.0;
        { /* v_acc_split: plain C in double, each step rounded to the dtype where elem_t is float */
            const double hi = tu_round(dt, d[i]);
            want[P_SPLIT_HI] = hi;
            want[P_SPLIT_LO] = d[i] == hi ? 0.0 : tu_round(dt, (d[i] - hi) / hi);
        }
        want[P_RDIV] = tu_round(dt, ai / d[i]); /* v_acc_rdiv: one division in double, rounded to the dtype */
        for (int op = 0; op < P_NUM_OUT; op++) {
            if (!ref && (op == P_EXP || op == P_LOG || op == P_EXP_CE || op == P_CE_EXP0))
                continue; /* no reference map: exp/log checked against libm only */
            const double got = tu_get(dt, out, (size_t)op * N + i);
            CHECK(tu_same(dt, got, want[op]), "%s %s %s [%zu]: a=%a b=%a: got %a, want %a", cur->build, tu_dtname(dt),
                  op_names[op], i, ai, bi, got, want[op]);
        }
        CHECK(near_libm(dt, P_EXP, ai, tu_get(dt, out, (size_t)P_EXP * N + i)), "%s %s exp(%a) vs libm", cur->build,
              tu_dtname(dt), ai);
        CHECK(near_libm(dt, P_LOG, ai, tu_get(dt, out, (size_t)P_LOG * N + i)), "%s %s log(%a) vs libm", cur->build,
              tu_dtname(dt), ai);
        CHECK(near_exp_ce(dt, ai, tu_get(dt, out, (size_t)P_EXP_CE * N + i)), "%s %s exp_ce(%a) vs libm", cur->build,
              tu_dtname(dt), ai);
        const double acc_want = d[i] + ai;
        CHECK(tu_same(NLLK_F64, acc[i], acc_want), "%s %s acc_add [%zu]: got %a, want %a", cur->build, tu_dtname(dt), i,
              acc[i], acc_want);
        const double sum_want = d[i] + acc[i];
        CHECK(tu_same(NLLK_F64, acc_sum[i], sum_want), "%s %s acc_sum [%zu]: got %a, want %a", cur->build,
              tu_dtname(dt), i, acc_sum[i], sum_want);
        const int64_t tv[3] = {t64[i], t32[i], t8[i]};
        for (int tt = 0; tt < 3; tt++) {
            const int is_ign = tv[tt] == ign, in_range = tv[tt] >= 0 && tv[tt] < (int64_t)c;
            CHECK(bad[tt * N + i] == (!is_ign && !in_range), "%s %s tbad(%s %lld) [%zu]", cur->build, tu_dtname(dt),
                  tt == 0   ? "i64"
                  : tt == 1 ? "i32"
                            : "u8",
                  (long long)tv[tt], i);
            CHECK(valid[tt * N + i] == !is_ign, "%s %s tvalid(%s %lld) [%zu]", cur->build, tu_dtname(dt),
                  tt == 0   ? "i64"
                  : tt == 1 ? "i32"
                            : "u8",
                  (long long)tv[tt], i);
        }
    }
    /* the scatter wrote a[i] at each valid, in-range target's position and nothing else */
    void *want_scat = calloc(xn, es);
    for (size_t i = 0; i < N; i++)
        if (t64[i] != ign && t64[i] >= 0 && t64[i] < (int64_t)c)
            tu_set(dt, want_scat, i * ks + (size_t)t64[i] * cs, tu_get(dt, a, i));
    size_t scat_bad = 0;
    for (size_t i = 0; i < xn; i++)
        scat_bad += !tu_same(dt, tu_get(dt, scat, i), tu_get(dt, want_scat, i));
    CHECK(scat_bad == 0, "%s %s scatter (ks=%zu, cs=%zu): %zu positions differ", cur->build, tu_dtname(dt), ks, cs,
          scat_bad);
    free(want_scat);
    free(a), free(b), free(x), free(out), free(ref_out), free(scat), free(ref_scat);
}

/* v_zero_fill zeroes exactly [p, p + bytes): small, unaligned, and large enough to stream. */
static void check_zero_fill(const probe_set *cur)
{
    static const size_t offs[] = {0, 1, 7, 33, 64};
    static const size_t lens[] = {0, 1, 31, 255, 256, 257, 4096 + 5, ((size_t)33 << 20) + 3};
    const size_t cap = ((size_t)33 << 20) + 256;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return;
    for (int slot = 0; slot < 2; slot++)
        for (size_t oi = 0; oi < sizeof offs / sizeof offs[0]; oi++)
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                const size_t off = offs[oi], len = lens[li];
                memset(buf, 0xAB, off + len + 64);
                cur->zero_fill[slot](buf + off, len);
                size_t wrong = 0;
                for (size_t i = 0; i < off + len + 64; i++)
                    wrong += buf[i] != (i >= off && i < off + len ? 0 : 0xAB);
                CHECK(wrong == 0, "%s zero_fill(+%zu, %zu): %zu bytes wrong", cur->build, off, len, wrong);
            }
    free(buf);
}

/* ---- 16-bit storage: every operation of the "16-bit storage" block against kernels/common/half.h, bit for bit, on
 * every stored value, the floats at and beside every midpoint between stored values, and random floats; f16 also
 * under MXCSR's FTZ and DAZ (x86), which the maps' integer conversions must ignore. */
enum { N16 = 65536 };
static void check_storage16(const char *build, int bf16, int ftz)
{
    const probe16_set *ps = NULL;
    for (size_t i = 0; i < sizeof probes16 / sizeof probes16[0]; i++)
        if (strcmp(probes16[i].build, build) == 0)
            ps = &probes16[i];
    CHECK(ps != NULL, "16-bit probes of %s", build);
    if (!ps)
        return;
    float (*to_f)(uint16_t) = bf16 ? nllk_bf16_to_f32 : nllk_f16_to_f32;
    uint16_t (*to_h)(float) = bf16 ? nllk_f32_to_bf16 : nllk_f32_to_f16;
    uint16_t *h = malloc(N16 * 2), *st = malloc(N16 * 2), *stn = malloc(N16 * 2), *sm = malloc(N16 * 2),
             *sc = malloc(N16 * 2);
    float *f = malloc(N16 * 4), *ld = malloc(N16 * 4), *ldn = malloc(N16 * 4), *ga = malloc(N16 * 4);
    int64_t *t = malloc(N16 * 8);
    size_t *perm = malloc(N16 * sizeof(size_t));
    uint16_t *hm = malloc(N16 * 2);
    float *mx = malloc(N16 / 32 * 4);
    float *pr = malloc(N16 * 4), *up = malloc(N16 * 4), *rp = malloc(N16 * 4);
    uint16_t *sp = malloc(N16 * 2), *ssp = malloc(N16 * 2);
    for (size_t i = 0; i < N16; i++)
        perm[i] = i;
    for (size_t i = N16 - 1; i > 0; i--) { /* distinct scatter offsets */
        const size_t j = tu_below(i + 1), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    for (int pass = 0; pass < 4; pass++) {
        for (size_t i = 0; i < N16; i++) {
            h[i] = (uint16_t)i;
            const float a = to_f((uint16_t)i), b = to_f((uint16_t)(i + 1));
            /* pass 0: the midpoints between neighbours (ties); 1, 2: the floats beside them; 3: random bits */
            float v = (float)(((double)a + (double)b) / 2);
            if (pass == 1)
                v = nextafterf(v, INFINITY);
            else if (pass == 2)
                v = nextafterf(v, -INFINITY);
            else if (pass == 3)
                v = nllk_f32_of_bits((uint32_t)tu_next());
            f[i] = v != v && pass < 3 ? a : v;
            t[i] = tu_below(5) ? (int64_t)perm[i] : -1;
            stn[i] = sc[i] = 0xa5a5;
        }
        f[0] = 0x1p-149f, f[1] = -0x1p-149f, f[2] = FLT_MAX, f[3] = INFINITY, f[4] = -INFINITY, f[5] = NAN;
        f[6] = 65520.0f, f[7] = 0x1.ffp127f, f[8] = 0x1p-25f, f[9] = 0x1.000002p-25f,
        f[10] = nllk_f32_of_bits(0x7f800001u);
        f[11] = nllk_f32_of_bits(0xffc12345u), f[12] = -0.0f, f[13] = 0x1p-24f, f[14] = 0x1.8p-24f, f[15] = 1e-40f;
        /* v_h_max2's input: shuffled stored values; pass 2: blocks of negatives only, blocks of positive NaNs (both
         * formats: 0x7fc0 | bits) among negatives, and mixed blocks */
        for (size_t i = 0; i < N16; i++) {
            const size_t b = i / 32, r = perm[(i * 7 + (size_t)pass) % N16];
            const unsigned neg = 0x8000u | (r & 0x7fffu), nan = 0x7fc0u | (r & 0x3fu);
            hm[i] = (uint16_t)(pass != 2 || b % 3 == 2 ? r : b % 3 == 0 ? neg : i % 4 ? nan : neg);
        }
        int pairs = 0;
        const vec_probe16 p = {N16, h, f, t, ld, ldn, ga, st, stn, sm, sc, hm, mx, &pairs, pr, up, rp, sp, ssp};
#if defined(__x86_64__)
        const unsigned csr = _mm_getcsr();
        if (ftz)
            _mm_setcsr(csr | 0x8040u); /* FTZ | DAZ */
#endif
        const size_t vw = ps->probe[bf16 ? 0 : 1](&p);
#if defined(__x86_64__)
        _mm_setcsr(csr);
#endif
        size_t bad[6] = {0};
        for (size_t i = 0; i < N16; i++) {
            const size_t m = (i / vw % vw), lane = i % vw;
            bad[0] += nllk_f32_bits(ld[i]) != nllk_f32_bits(to_f(h[i]));
            bad[1] += nllk_f32_bits(ldn[i]) != (lane < m ? nllk_f32_bits(to_f(h[i])) : 0u);
            bad[2] += st[i] != to_h(f[i]) || sm[i] != to_h(f[i]);
            bad[3] += stn[i] != (lane < m ? to_h(f[i]) : 0xa5a5);
            bad[4] += nllk_f32_bits(ga[i]) != (t[i] >= 0 ? nllk_f32_bits(to_f(h[t[i]])) : 0u);
        }
        for (size_t i = 0; i < N16; i++)
            if (t[i] >= 0)
                bad[5] += sc[t[i]] != to_h(f[i]);
            else
                bad[5] += sc[perm[i]] != 0xa5a5;
        if (!ftz) /* v_h_max2 (ce rows): the NaN-free maximum of each 32 values; the sign of a zero maximum is free */
            for (size_t b = 0; b < N16 / 32; b++) {
                float want = -INFINITY;
                for (size_t i = 32 * b; i < 32 * b + 32; i++) {
                    const float v = to_f(hm[i]);
                    want = v > want ? v : want;
                }
                CHECK(mx[b] == want, "%s %s pass %d: v_h_max2 of block %zu: got %a, want %a", build,
                      bf16 ? "bf16" : "f16", pass, b, (double)mx[b], (double)want);
            }
        if (pairs) { /* v_h_load_pair: even elements then odd; v_h_unpair, v_h_pair: its inverses; the pair stores */
            size_t pbad[4] = {0};
            for (size_t i = 0; i < N16; i++) {
                const size_t o = i - i % (2 * vw), j = i - o, e = j < vw ? o + 2 * j : o + 2 * (j - vw) + 1;
                pbad[0] += nllk_f32_bits(pr[i]) != nllk_f32_bits(to_f(h[e]));
                pbad[1] += nllk_f32_bits(up[i]) != nllk_f32_bits(to_f(h[i]));
                pbad[2] += nllk_f32_bits(rp[i]) != nllk_f32_bits(pr[i]);
                pbad[3] += sp[i] != to_h(f[i]) || ssp[i] != to_h(f[i]);
            }
            static const char *const pwhat[4] = {"load_pair", "unpair", "pair", "store_pair/stream_pair"};
            for (int k = 0; k < 4; k++)
                CHECK(pbad[k] == 0, "%s %s%s pass %d: v_h_%s: %zu of %d wrong", build, bf16 ? "bf16" : "f16",
                      ftz ? " (FTZ/DAZ)" : "", pass, pwhat[k], pbad[k], N16);
        }
        static const char *const what[6] = {"load", "load_n", "store/stream", "store_n", "gather", "scatter"};
        for (int k = 0; k < 6; k++)
            CHECK(bad[k] == 0, "%s %s%s pass %d: v_h_%s: %zu of %d wrong", build, bf16 ? "bf16" : "f16",
                  ftz ? " (FTZ/DAZ)" : "", pass, what[k], bad[k], N16);
    }
    free(h), free(st), free(stn), free(sm), free(sc), free(f), free(ld), free(ldn), free(ga), free(t), free(perm);
    free(hm), free(mx), free(pr), free(up), free(rp), free(sp), free(ssp);
}

int main(void)
{
    tu_require_isa();
    tu_seed(7);
    const char *build = nllk_active()->build;
    if (nllk_set_isa("scalar") != NLLK_OK) {
        fprintf(stderr, "cannot select scalar\n");
        return 1;
    }
    const char *ref_build = nllk_active()->build;
    nllk_set_isa(NULL);
    const probe_set *cur = probes_of(build), *ref = probes_of(ref_build);
    CHECK(cur && ref, "probes for %s and %s", build, ref_build);
    if (!cur || !ref)
        return tu_summary();
    printf("test_vec: %s (build %s) against the scalar map (build %s)\n", nllk_active_isa(), build, ref_build);
    for (int rep = 0; rep < 8; rep++)
        for (int dt = 0; dt < 2; dt++) {
            check_dtype(cur, ref, dt ? NLLK_F64 : NLLK_F32, 7);
            check_dtype(cur, ref, dt ? NLLK_F64 : NLLK_F32, 0);
        }
    check_zero_fill(cur);
    for (int bf = 0; bf < 2; bf++)
        for (int ftz = 0; ftz < 2; ftz++)
            check_storage16(build, bf, ftz);
    /* the lower builds of the same name this CPU runs (x86's baseline scalar, SLEEF purec, for CPUs without FMA):
     * every operation but exp/log bit for bit, exp/log within 1 ulp of libm */
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        const probe_set *low = &probes[i];
        if (low == cur || strcmp(low->name, cur->name) != 0 || (nllk_cpu_features() & low->need) != low->need)
            continue;
        printf("test_vec: also build %s\n", low->build);
        for (int dt = 0; dt < 2; dt++) {
            check_dtype(low, NULL, dt ? NLLK_F64 : NLLK_F32, 7);
            check_dtype(low, NULL, dt ? NLLK_F64 : NLLK_F32, 0);
        }
        check_zero_fill(low);
        for (int bf = 0; bf < 2; bf++)
            check_storage16(low->build, bf, 0);
    }
    return tu_summary();
}
