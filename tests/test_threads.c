/* Thread-count invariance, streaming (chunked and sharded) equality with the one-shot call, and concurrent
 * calls from many user threads: all compared bit for bit. */
#include <pthread.h>

#include "testutil.h"

static int same(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

static const int thread_counts[] = {1, 2, 3, 4, 7, 8, 16};
#define NTC (int)(sizeof thread_counts / sizeof thread_counts[0])

/* ---- data ------------------------------------------------------------------------------------------------ */
enum { NP = 1000003, PN = 1001, PC = 5, PD = 1499 }; /* Poisson n; NLL (n, c, d) with rows crossing blocks */
static float *px32, *pt32, *lx32, *w32;
static double *px64, *pt64, *lx64, *w64;
static uint8_t *tgt8;
static int64_t *tgt64;

static void make_data(void)
{
    px32 = malloc(NP * sizeof *px32), pt32 = malloc(NP * sizeof *pt32);
    px64 = malloc(NP * sizeof *px64), pt64 = malloc(NP * sizeof *pt64);
    for (size_t i = 0; i < NP; i++) {
        px64[i] = 4.0 * tu_unit(); /* rates >= 0, so log_input=0 sums are finite */
        pt64[i] = floor(6.0 * tu_unit());
        px32[i] = (float)px64[i], pt32[i] = (float)pt64[i];
    }
    const size_t ncd = (size_t)PN * PC * PD, nd = (size_t)PN * PD;
    lx32 = malloc(ncd * sizeof *lx32), lx64 = malloc(ncd * sizeof *lx64);
    for (size_t i = 0; i < ncd; i++)
        lx64[i] = -5.0 * tu_unit(), lx32[i] = (float)lx64[i];
    tgt8 = malloc(nd), tgt64 = malloc(nd * sizeof *tgt64);
    for (size_t i = 0; i < nd; i++) {
        tgt8[i] = tu_unit() < 0.1 ? 255 : (uint8_t)(tu_next() % PC);
        tgt64[i] = tgt8[i];
    }
    w32 = malloc(PC * sizeof *w32), w64 = malloc(PC * sizeof *w64);
    for (int c = 0; c < PC; c++)
        w64[c] = 0.25 + tu_unit(), w32[c] = (float)w64[c];
    w64[2] = w32[2] = 0; /* a zero weight */
}

/* ---- 1. thread counts ------------------------------------------------------------------------------------ */
static void test_thread_counts(void)
{
    float ref32[2][2][2][2], r32;
    double ref64[2][2][2][2], r64;
    float nll32[2][2], nll_tw32[2][2], t32, tw32;
    double nll64[2][2], nll_tw64[2][2], t64, tw64;
    float *gx = malloc((size_t)PN * PC * PD * sizeof *gx), *gx_ref = malloc((size_t)PN * PC * PD * sizeof *gx);
    char msg_ref[512] = "";
    for (int ti = 0; ti < NTC; ti++) {
        CHECK_OK(nllk_set_num_threads(thread_counts[ti]));
        CHECK(nllk_get_num_threads() == thread_counts[ti], "get_num_threads");
        for (int li = 0; li < 2; li++)
            for (int fu = 0; fu < 2; fu++)
                for (int red = 0; red < 2; red++) {
                    const nllk_reduction r = red ? NLLK_REDUCTION_SUM : NLLK_REDUCTION_MEAN;
                    CHECK_OK(nllk_poisson_nll_fwd_f32(px32, pt32, NP, li, fu, 1e-8, r, &r32));
                    CHECK_OK(nllk_poisson_nll_fwd_f64(px64, pt64, NP, li, fu, 1e-8, r, &r64));
                    if (ti == 0) {
                        ref32[li][fu][red][0] = r32;
                        ref64[li][fu][red][0] = r64;
                    }
                    CHECK(same(&r32, &ref32[li][fu][red][0], 4) && same(&r64, &ref64[li][fu][red][0], 8),
                          "poisson log_input=%d full=%d red=%d threads=%d", li, fu, red, thread_counts[ti]);
                }
        for (int wi = 0; wi < 2; wi++)
            for (int red = 0; red < 2; red++) {
                const nllk_reduction r = red ? NLLK_REDUCTION_SUM : NLLK_REDUCTION_MEAN;
                CHECK_OK(nllk_nll_fwd_f32(lx32, tgt8, NLLK_TARGET_U8, PN, PC, PD, wi ? w32 : NULL, 255, r, &t32, &tw32));
                CHECK_OK(nllk_nll_fwd_f64(lx64, tgt64, NLLK_TARGET_I64, PN, PC, PD, wi ? w64 : NULL, 255, r, &t64,
                                    &tw64));
                if (ti == 0) {
                    nll32[wi][red] = t32, nll_tw32[wi][red] = tw32;
                    nll64[wi][red] = t64, nll_tw64[wi][red] = tw64;
                }
                CHECK(same(&t32, &nll32[wi][red], 4) && same(&tw32, &nll_tw32[wi][red], 4) &&
                          same(&t64, &nll64[wi][red], 8) && same(&tw64, &nll_tw64[wi][red], 8),
                      "nll weighted=%d red=%d threads=%d", wi, red, thread_counts[ti]);
            }
        /* backward (zero-fill and scatter split too) */
        const float go = 1.5f;
        CHECK_OK(nllk_nll_bwd_f32(&go, tgt8, NLLK_TARGET_U8, PN, PC, PD, w32, 255, NLLK_REDUCTION_MEAN, 1234.5f, gx));
        if (ti == 0)
            memcpy(gx_ref, gx, (size_t)PN * PC * PD * sizeof *gx);
        CHECK(same(gx, gx_ref, (size_t)PN * PC * PD * sizeof *gx), "nll bwd threads=%d", thread_counts[ti]);
        /* the error names the lowest offending index whatever the thread count */
        uint8_t saved[2] = {tgt8[900000], tgt8[1400000]};
        tgt8[900000] = 7, tgt8[1400000] = 9;
        CHECK(nllk_nll_fwd_f32(lx32, tgt8, NLLK_TARGET_U8, PN, PC, PD, NULL, 255, NLLK_REDUCTION_SUM, &t32, NULL) ==
                  NLLK_ERR_TARGET_OUT_OF_RANGE,
              "bad target not reported");
        CHECK(strstr(nllk_last_error(), "target[900000]") != NULL, "message %s", nllk_last_error());
        if (ti == 0)
            snprintf(msg_ref, sizeof msg_ref, "%s", nllk_last_error());
        CHECK(strcmp(msg_ref, nllk_last_error()) == 0, "message differs with %d threads", thread_counts[ti]);
        tgt8[900000] = saved[0], tgt8[1400000] = saved[1];
    }
    CHECK_OK(nllk_set_num_threads(0));
    CHECK(nllk_set_num_threads(-1) == NLLK_ERR_INVALID_ARGUMENT, "negative thread count accepted");
    free(gx);
    free(gx_ref);
}

/* ---- 2. streaming ---------------------------------------------------------------------------------------- */
static size_t random_cut(size_t n) { return (tu_next() & 3) == 0 ? (size_t)(tu_next() % 70) : (size_t)(tu_next() % (n / 3 + 1)); }

static void test_streaming(void)
{
    static nllk_acc acc, part;
    const nllk_reduction reds[2] = {NLLK_REDUCTION_MEAN, NLLK_REDUCTION_SUM};
    for (int trial = 0; trial < 12; trial++) {
        const int li = trial & 1, fu = (trial >> 1) & 1, red = (trial >> 2) & 1, threads = 1 + trial % 3;
        nllk_set_num_threads(threads);
        const size_t n = trial < 4 ? NP : 1 + tu_next() % 20000;
        float one32;
        double one64, v, tw;
        uint64_t cnt;
        CHECK_OK(nllk_poisson_nll_fwd_f32(px32, pt32, n, li, fu, 1e-8, reds[red], &one32));
        CHECK_OK(nllk_poisson_nll_fwd_f64(px64, pt64, n, li, fu, 1e-8, reds[red], &one64));
        /* (a) one accumulator, random chunks */
        CHECK_OK(nllk_poisson_acc_init(&acc, NLLK_F32, li, fu, 1e-8, 0));
        for (size_t off = 0; off < n;) {
            size_t m = random_cut(n);
            m = m < n - off ? m : n - off;
            CHECK_OK(nllk_poisson_acc_update_f32(&acc, px32 + off, pt32 + off, m));
            off += m;
        }
        CHECK_OK(nllk_acc_result(&acc, reds[red], &v, &tw, &cnt));
        CHECK(same(&(float){(float)v}, &one32, 4) && cnt == n,
              "poisson f32 chunked trial %d: %.9g vs %.9g", trial, v, (double)one32);
        /* (b) shards at random offsets, each its own accumulator, merged left to right */
        CHECK_OK(nllk_poisson_acc_init(&acc, NLLK_F64, li, fu, 1e-8, 0));
        for (size_t off = 0; off < n;) {
            size_t m = random_cut(n);
            m = m < n - off ? m : n - off;
            CHECK_OK(nllk_poisson_acc_init(&part, NLLK_F64, li, fu, 1e-8, off));
            const size_t half = m / 2;
            CHECK_OK(nllk_poisson_acc_update_f64(&part, px64 + off, pt64 + off, half));
            CHECK_OK(nllk_poisson_acc_update_f64(&part, px64 + off + half, pt64 + off + half, m - half));
            CHECK_OK(nllk_acc_merge(&acc, &part));
            off += m;
        }
        CHECK_OK(nllk_acc_result(&acc, reds[red], &v, NULL, &cnt));
        CHECK(same(&v, &one64, 8) && cnt == n, "poisson f64 sharded trial %d: %.17g vs %.17g", trial, v, one64);
    }
    /* NLL, chunks and shards that start and end inside samples */
    for (int trial = 0; trial < 12; trial++) {
        const int wi = trial & 1, red = (trial >> 1) & 1;
        nllk_set_num_threads(1 + trial % 4);
        const size_t nd = (size_t)PN * PD;
        float one32, tw32;
        double one64, tw64, v, tw;
        CHECK_OK(nllk_nll_fwd_f32(lx32, tgt8, NLLK_TARGET_U8, PN, PC, PD, wi ? w32 : NULL, 255, reds[red], &one32, &tw32));
        CHECK_OK(nllk_nll_fwd_f64(lx64, tgt64, NLLK_TARGET_I64, PN, PC, PD, wi ? w64 : NULL, 255, reds[red], &one64,
                            &tw64));
        CHECK_OK(nllk_nll_acc_init(&acc, NLLK_F32, NLLK_TARGET_U8, PC, PD, 255, 0));
        for (size_t off = 0; off < nd;) {
            size_t m = random_cut(nd) + (trial & 4 ? PD : 0);
            m = m < nd - off ? m : nd - off;
            CHECK_OK(nllk_nll_acc_update_f32(&acc, lx32 + off / PD * PC * PD, tgt8 + off, m, wi ? w32 : NULL));
            off += m;
        }
        CHECK_OK(nllk_acc_result(&acc, reds[red], &v, &tw, NULL));
        CHECK(same(&(float){(float)v}, &one32, 4) && same(&(float){(float)tw}, &tw32, 4), "nll f32 chunked trial %d: %.9g vs %.9g", trial, v,
              (double)one32);
        CHECK_OK(nllk_nll_acc_init(&acc, NLLK_F64, NLLK_TARGET_I64, PC, PD, 255, 0));
        for (size_t off = 0; off < nd;) {
            size_t m = random_cut(nd);
            m = m < nd - off ? m : nd - off;
            CHECK_OK(nllk_nll_acc_init(&part, NLLK_F64, NLLK_TARGET_I64, PC, PD, 255, off));
            CHECK_OK(nllk_nll_acc_update_f64(&part, lx64 + off / PD * PC * PD, tgt64 + off, m, wi ? w64 : NULL));
            CHECK_OK(nllk_acc_merge(&acc, &part));
            off += m;
        }
        CHECK_OK(nllk_acc_result(&acc, reds[red], &v, &tw, NULL));
        CHECK(same(&v, &one64, 8) && same(&tw, &tw64, 8), "nll f64 sharded trial %d: %.17g vs %.17g", trial, v,
              one64);
    }
    /* a failed update leaves the accumulator unchanged, and names the global index */
    {
        double before, after;
        CHECK_OK(nllk_nll_acc_init(&acc, NLLK_F32, NLLK_TARGET_U8, PC, PD, 255, 0));
        CHECK_OK(nllk_nll_acc_update_f32(&acc, lx32, tgt8, 2 * PD + 5, NULL));
        CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_SUM, &before, NULL, NULL));
        const uint8_t saved = tgt8[2 * PD + 5 + 17];
        tgt8[2 * PD + 5 + 17] = 6;
        CHECK(nllk_nll_acc_update_f32(&acc, lx32 + 2 * PC * PD, tgt8 + 2 * PD + 5, 100, NULL) ==
                  NLLK_ERR_TARGET_OUT_OF_RANGE,
              "bad target in update");
        char want[64];
        snprintf(want, sizeof want, "target[%d] (sample 2, position 22)", 2 * PD + 22);
        CHECK(strstr(nllk_last_error(), want) != NULL, "message %s", nllk_last_error());
        tgt8[2 * PD + 5 + 17] = saved;
        CHECK_OK(nllk_acc_result(&acc, NLLK_REDUCTION_SUM, &after, NULL, NULL));
        CHECK(same(&before, &after, 8), "failed update changed the accumulator");
        /* misuse */
        CHECK_OK(nllk_poisson_acc_init(&part, NLLK_F32, 1, 0, 1e-8, 0));
        CHECK(nllk_acc_merge(&acc, &part) == NLLK_ERR_INVALID_ARGUMENT, "merge of different losses");
        CHECK(nllk_poisson_acc_update_f64(&part, px64, pt64, 3) == NLLK_ERR_INVALID_ARGUMENT, "dtype mismatch");
        CHECK_OK(nllk_poisson_acc_init(&acc, NLLK_F32, 1, 0, 1e-8, 0));
        CHECK_OK(nllk_poisson_acc_init(&part, NLLK_F32, 1, 0, 1e-8, 5));
        CHECK(nllk_acc_merge(&acc, &part) == NLLK_ERR_INVALID_ARGUMENT, "merge of non-adjacent ranges");
        CHECK(nllk_acc_result(&acc, NLLK_REDUCTION_NONE, &after, NULL, NULL) == NLLK_ERR_INVALID_ARGUMENT,
              "NONE result");
        memset(&part, 0, sizeof part);
        CHECK(nllk_poisson_acc_update_f32(&part, px32, pt32, 3) == NLLK_ERR_INVALID_ARGUMENT, "uninitialized acc");
    }
    nllk_set_num_threads(0);
}

/* ---- 3. concurrent callers ------------------------------------------------------------------------------- */
typedef struct {
    int id;
    float poisson[4];
    float nll[4];
} worker_t;

static void *worker(void *arg)
{
    worker_t *w = arg;
    for (int rep = 0; rep < 4; rep++) {
        const size_t n = NP - (size_t)w->id * 1000;  /* each thread its own data */
        nllk_poisson_nll_fwd_f32(px32 + w->id * 1000, pt32, n, w->id & 1, rep & 1, 1e-8, NLLK_REDUCTION_MEAN,
                                 &w->poisson[rep]);
        nllk_nll_fwd_f32(lx32, tgt8 + w->id, NLLK_TARGET_U8, PN - 1, PC, PD, rep & 1 ? w32 : NULL, 255,
                         NLLK_REDUCTION_SUM, &w->nll[rep], NULL);
    }
    return NULL;
}

static void test_concurrency(void)
{
    enum { NW = 6 };
    worker_t w[NW];
    pthread_t th[NW];
    nllk_set_num_threads(2);
    for (int i = 0; i < NW; i++) {
        w[i].id = i;
        CHECK(pthread_create(&th[i], NULL, worker, &w[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < NW; i++)
        pthread_join(th[i], NULL);
    nllk_set_num_threads(1);
    for (int i = 0; i < NW; i++)
        for (int rep = 0; rep < 4; rep++) {
            float p, q;
            CHECK_OK(nllk_poisson_nll_fwd_f32(px32 + i * 1000, pt32, NP - (size_t)i * 1000, i & 1, rep & 1, 1e-8,
                                        NLLK_REDUCTION_MEAN, &p));
            CHECK_OK(nllk_nll_fwd_f32(lx32, tgt8 + i, NLLK_TARGET_U8, PN - 1, PC, PD, rep & 1 ? w32 : NULL, 255,
                                NLLK_REDUCTION_SUM, &q, NULL));
            CHECK(same(&p, &w[i].poisson[rep], 4) && same(&q, &w[i].nll[rep], 4),
                  "concurrent call %d/%d differs from the single-threaded one", i, rep);
        }
    nllk_set_num_threads(0);
}

int main(void)
{
    tu_require_isa();
    make_data();
    test_thread_counts();
    test_streaming();
    test_concurrency();
    printf("test_threads (isa %s): ", nllk_active_isa());
    return tu_summary();
}
