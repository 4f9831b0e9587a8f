/* The accumulators' per-element output (nllk_*_acc_update_out_*) and the error index (nllk_last_error_index):
 * chunks of every length, starting and ending inside samples, give the bits of the one-shot NONE call (whose
 * values test_reference checks against an independent long double reference), and a bad target's global flat
 * index is reported without a re-scan. */
#include "tests/testutil.h"

enum { N = 7, C = 5, D = 333, ND = N * D };

static int same_f32(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }
static int same_f64(const double *a, const double *b, size_t n) { return memcmp(a, b, n * sizeof *a) == 0; }

static void nll_chunks(void)
{
    static float x32[N * C * D], w32[C], ref32[ND], out32[ND + 1];
    static double x64[N * C * D], w64[C], ref64[ND], out64[ND + 1];
    static int64_t t[ND];
    for (size_t i = 0; i < N * C * D; i++)
        x64[i] = x32[i] = (float)tu_uniform(-9, 0);
    for (size_t i = 0; i < C; i++)
        w64[i] = w32[i] = (float)tu_uniform(0, 2);
    for (size_t i = 0; i < ND; i++)
        t[i] = tu_below(7) == 0 ? -100 : (int64_t)tu_below(C);
    float tw32;
    double tw64;
    CHECK_OK(nllk_nll_fwd_f32(x32, t, NLLK_TARGET_I64, N, C, D, w32, -100, NLLK_REDUCTION_NONE, ref32, &tw32));
    CHECK_OK(nllk_nll_fwd_f64(x64, t, NLLK_TARGET_I64, N, C, D, w64, -100, NLLK_REDUCTION_NONE, ref64, &tw64));
    float sum32;
    double sum64;
    CHECK_OK(nllk_nll_fwd_f32(x32, t, NLLK_TARGET_I64, N, C, D, w32, -100, NLLK_REDUCTION_SUM, &sum32, &tw32));
    CHECK_OK(nllk_nll_fwd_f64(x64, t, NLLK_TARGET_I64, N, C, D, w64, -100, NLLK_REDUCTION_SUM, &sum64, &tw64));
    const size_t steps[] = {1, 7, 16, 100, 333, 334, 1000, ND};
    for (size_t si = 0; si < sizeof steps / sizeof steps[0]; si++) {
        nllk_acc a32, a64;
        CHECK_OK(nllk_nll_acc_init(&a32, NLLK_F32, NLLK_TARGET_I64, C, D, -100, 0));
        CHECK_OK(nllk_nll_acc_init(&a64, NLLK_F64, NLLK_TARGET_I64, C, D, -100, 0));
        memset(out32, 0xff, sizeof out32);
        memset(out64, 0xff, sizeof out64);
        for (size_t f = 0; f < ND; f += steps[si]) {
            const size_t m = ND - f < steps[si] ? ND - f : steps[si];
            const size_t sample = f / D;
            CHECK_OK(nllk_nll_acc_update_out_f32(&a32, x32 + sample * C * D, t + f, m, w32, out32 + f));
            CHECK_OK(nllk_nll_acc_update_out_f64(&a64, x64 + sample * C * D, t + f, m, w64, out64 + f));
        }
        CHECK(same_f32(out32, ref32, ND), "nll f32 per-element out, chunks of %zu", steps[si]);
        CHECK(same_f64(out64, ref64, ND), "nll f64 per-element out, chunks of %zu", steps[si]);
        CHECK(out32[ND] != out32[ND], "nll f32: nothing written past the chunk (chunks of %zu)", steps[si]);
        double v;
        CHECK_OK(nllk_acc_result(&a32, NLLK_REDUCTION_SUM, &v, NULL, NULL));
        CHECK(v == (double)sum32, "nll f32 sum with out = one-shot sum (chunks of %zu)", steps[si]);
        CHECK_OK(nllk_acc_result(&a64, NLLK_REDUCTION_SUM, &v, NULL, NULL));
        CHECK(v == sum64, "nll f64 sum with out = one-shot sum (chunks of %zu)", steps[si]);
    }
}

static void poisson_chunks(void)
{
    enum { M = 10007 };
    static float x[M], t[M], ref[M], out[M];
    for (size_t i = 0; i < M; i++) {
        x[i] = (float)tu_uniform(-3, 3);
        t[i] = (float)tu_below(9);
    }
    CHECK_OK(nllk_poisson_nll_fwd_f32(x, t, M, 1, 1, 1e-8, NLLK_REDUCTION_NONE, ref));
    nllk_acc a;
    CHECK_OK(nllk_poisson_acc_init(&a, NLLK_F32, 1, 1, 1e-8, 0));
    for (size_t f = 0; f < M; f += 999)
        CHECK_OK(nllk_poisson_acc_update_out_f32(&a, x + f, t + f, M - f < 999 ? M - f : 999, out + f));
    CHECK(same_f32(out, ref, M), "poisson per-element out");
    float sum;
    double v;
    CHECK_OK(nllk_poisson_nll_fwd_f32(x, t, M, 1, 1, 1e-8, NLLK_REDUCTION_SUM, &sum));
    CHECK_OK(nllk_acc_result(&a, NLLK_REDUCTION_SUM, &v, NULL, NULL));
    CHECK(v == (double)sum, "poisson sum with out = one-shot sum");
}

static void error_index(void)
{
    static float x[4 * 3 * 50];
    static int32_t t[4 * 50];
    for (size_t i = 0; i < 4 * 50; i++)
        t[i] = (int32_t)(i % 3);
    t[117] = 3;
    t[150] = -1;
    float out;
    CHECK(nllk_nll_fwd_f32(x, t, NLLK_TARGET_I32, 4, 3, 50, NULL, -100, NLLK_REDUCTION_SUM, &out, NULL) ==
              NLLK_ERR_TARGET_OUT_OF_RANGE, "bad target rejected");
    CHECK(nllk_last_error_index() == 117, "one-shot: index %llu", (unsigned long long)nllk_last_error_index());
    CHECK_OK(nllk_nll_fwd_f32(x, t, NLLK_TARGET_I32, 1, 3, 50, NULL, -100, NLLK_REDUCTION_SUM, &out, NULL));
    CHECK(nllk_last_error_index() == NLLK_NO_INDEX, "cleared by a successful call");
    nllk_acc a;
    CHECK_OK(nllk_nll_acc_init(&a, NLLK_F32, NLLK_TARGET_I32, 3, 50, -100, 1000));
    CHECK_OK(nllk_nll_acc_update_f32(&a, x, t, 100, NULL));
    /* the next chunk starts at global element 1100, i.e. the call's element 17 is t[117] */
    CHECK(nllk_nll_acc_update_out_f32(&a, x + 2 * 3 * 50, t + 100, 100, NULL, &out) ==
              NLLK_ERR_TARGET_OUT_OF_RANGE, "acc: bad target rejected");
    CHECK(nllk_last_error_index() == 1117, "acc: global index %llu", (unsigned long long)nllk_last_error_index());
    CHECK(nllk_nll_acc_update_f32(NULL, x, t, 1, NULL) == NLLK_ERR_NULL_POINTER, "null acc");
    CHECK(nllk_last_error_index() == NLLK_NO_INDEX, "no index for an error about no element");
}

static void isa_list(void)
{
    CHECK(nllk_isa_name(0) && strcmp(nllk_isa_name(0), "scalar") == 0, "ISA 0 is scalar");
    CHECK(nllk_isa_name(-1) == NULL, "no ISA -1");
    int i = 0, active_listed = 0;
    for (; nllk_isa_name(i); i++)
        active_listed |= strcmp(nllk_isa_name(i), nllk_active_isa()) == 0;
    CHECK(i >= 1 && i <= 3, "%d ISAs in this build", i);
    CHECK(active_listed, "the active ISA %s is in the list", nllk_active_isa());
}

int main(void)
{
    tu_require_isa();
    tu_seed(11);
    isa_list();
    nll_chunks();
    poisson_chunks();
    error_index();
    return tu_summary();
}
