/* libFuzzer harness for the accumulator state (nllk.h "Streaming"): bytes from outside taken as accumulators.
 *
 * Build (clang only): cmake -DNLLK_FUZZ=ON -DNLLK_SANITIZE=ON -DCMAKE_C_COMPILER=clang-14 ...; run
 * fuzz_acc tests/fuzz/corpus_acc (scripts/test.sh runs it for a bounded time). The input is
 *   byte 0 even: raw bytes. The rest overlays, from offset 0, a valid accumulator's bytes (A); bytes past
 *                NLLK_ACC_SIZE overlay a second one (B, beginning where A ends).
 *   byte 0 odd:  a recipe. Loss, dtype, begin and chunk lengths build valid accumulators A and B through the API;
 *                then (offset, xor) patches flip bytes of A or B.
 * Then result, range, update and merge (both ways) run on A and B. Checked: no crash or out-of-bounds access
 * (ASan/UBSan), every status OK or NLLK_ERR_INVALID_ARGUMENT, a refused call changes nothing, and for unpatched
 * states merge(A, B) has exactly the bits of one accumulator fed A's and B's chunks in turn. The same function
 * runs over the committed corpus in ctest (acc_corpus, tests/fuzz/acc.cmake), so CI needs no clang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nllk.h"

#define CHECK(c)                                                                                                  \
    do {                                                                                                          \
        if (!(c))                                                                                                 \
            abort();                                                                                              \
    } while (0)

enum { C = 4, D = 3, MAX_CHUNK = 4096 + 17, MAX_CHUNKS = 4 };

/* The data loops need no coverage feedback (their comparisons would dominate the run time). */
#if defined(__clang__)
#  define NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#  define NO_COVERAGE
#endif

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static unsigned next_byte(reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t next_u64(reader *r, int bytes)
{
    uint64_t v = 0;
    for (int k = 0; k < bytes; k++)
        v = v << 8 | next_byte(r);
    return v;
}

typedef struct recipe {
    int nll;
    nllk_dtype dtype;
    uint64_t begin;
    size_t nchunks[2], chunk[2][MAX_CHUNKS];
} recipe;

/* Element i of the dataset: the same values for every accumulator, so shards agree. */
static float xf[(MAX_CHUNK / D + 2) * C * D], tf[MAX_CHUNK];
static double xd[(MAX_CHUNK / D + 2) * C * D], td[MAX_CHUNK];
static int64_t ti[MAX_CHUNK];

static nllk_status init(const recipe *rc, nllk_acc *a, uint64_t begin)
{
    return rc->nll ? nllk_nll_acc_init(a, rc->dtype, NLLK_TARGET_I64, C, D, -100, begin)
                   : nllk_poisson_acc_init(a, rc->dtype, 1, 0, 1e-8, begin);
}

/* Folds elements [end, end + n) (n <= MAX_CHUNK) into a, whose state may be anything. */
NO_COVERAGE static nllk_status update(const recipe *rc, nllk_acc *a, uint64_t end, size_t n)
{
    if (!rc->nll) {
        for (size_t k = 0; k < n; k++) {
            xd[k] = xf[k] = (float)((double)((end + k) % 61) * 0.1 - 3.0);
            td[k] = tf[k] = (float)((end + k) % 5);
        }
        return rc->dtype == NLLK_F32 ? nllk_poisson_acc_update_f32(a, xf, tf, n)
                                     : nllk_poisson_acc_update_f64(a, xd, td, n);
    }
    const uint64_t s0 = end / D;
    const size_t samples = (size_t)((end % D + n + D - 1) / D);
    for (size_t s = 0; s < samples; s++)
        for (size_t c = 0; c < C * D; c++)
            xd[s * C * D + c] = xf[s * C * D + c] = -(float)((s0 + s + c) % 13) * 0.25f;
    for (size_t k = 0; k < n; k++)
        ti[k] = (end + k) % 7 == 0 ? -100 : (int64_t)((end + k) % C);
    return rc->dtype == NLLK_F32 ? nllk_nll_acc_update_f32(a, xf, ti, n, NULL)
                                 : nllk_nll_acc_update_f64(a, xd, ti, n, NULL);
}

/* Feeds chunk list `which` of the recipe into a from element `begin`; returns the end. */
static uint64_t feed(const recipe *rc, nllk_acc *a, int which, uint64_t begin)
{
    uint64_t end = begin;
    for (size_t k = 0; k < rc->nchunks[which]; k++) {
        CHECK(update(rc, a, end, rc->chunk[which][k]) == NLLK_OK);
        end += rc->chunk[which][k];
    }
    return end;
}

static int refused(nllk_status st) { return st == NLLK_ERR_INVALID_ARGUMENT; }

/* Every entry point on a (and b as its merge partner, both ways); statuses OK or refused, refusals change
 * nothing, an accepted state's range and count agree. */
static void exercise(const recipe *rc, const nllk_acc *a, const nllk_acc *b)
{
    static nllk_acc x, y;
    uint64_t begin = 0, end = 0, count = 0;
    double v = 0, w = 0;
    const nllk_status sr = nllk_acc_range(a, &begin, &end);
    CHECK(sr == NLLK_OK || refused(sr));
    CHECK(sr != NLLK_OK || begin <= end);
    for (int red = NLLK_REDUCTION_MEAN; red <= NLLK_REDUCTION_SUM; red++) {
        const nllk_status st = nllk_acc_result(a, (nllk_reduction)red, &v, &w, &count);
        CHECK(st == sr); /* range and result check the same things */
        CHECK(st != NLLK_OK || count == end - begin);
    }
    x = *a;
    const nllk_status su = update(rc, &x, sr == NLLK_OK ? end : 0, 5);
    CHECK(su == NLLK_OK || refused(su));
    CHECK(su == NLLK_OK || memcmp(&x, a, sizeof x) == 0);
    x = *a;
    y = *b;
    const nllk_status sm = nllk_acc_merge(&x, &y);
    CHECK(sm == NLLK_OK || refused(sm));
    CHECK(sm == NLLK_OK || memcmp(&x, a, sizeof x) == 0);
    CHECK(memcmp(&y, b, sizeof y) == 0);
    x = *a;
    y = *b;
    const nllk_status sb = nllk_acc_merge(&y, &x);
    CHECK(sb == NLLK_OK || refused(sb));
    CHECK(sb == NLLK_OK || memcmp(&y, b, sizeof y) == 0);
}

static int same_result(const nllk_acc *a, const nllk_acc *b)
{
    double va, vb, wa, wb;
    uint64_t ca, cb;
    CHECK(nllk_acc_result(a, NLLK_REDUCTION_SUM, &va, &wa, &ca) == NLLK_OK);
    CHECK(nllk_acc_result(b, NLLK_REDUCTION_SUM, &vb, &wb, &cb) == NLLK_OK);
    return memcmp(&va, &vb, sizeof va) == 0 && memcmp(&wa, &wb, sizeof wa) == 0 && ca == cb;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static nllk_acc a, b, whole, templates[4][2];
    static int made[4];
    reader r = {data, size};
    const unsigned mode = next_byte(&r);
    recipe rc = {.nll = (mode >> 1) & 1, .dtype = (mode >> 2) & 1 ? NLLK_F64 : NLLK_F32};
    CHECK(nllk_set_num_threads(1) == NLLK_OK); /* the state is the same for any thread count; one runs faster */
    if (!(mode & 1)) { /* raw bytes over a valid state: a raw head, an open node and block; B after it */
        nllk_acc *t = templates[(mode >> 1) & 3];
        if (!made[(mode >> 1) & 3]) {
            CHECK(init(&rc, &t[0], 4096 + 5) == NLLK_OK);
            CHECK(update(&rc, &t[0], 4096 + 5, 4000) == NLLK_OK);
            CHECK(update(&rc, &t[0], 4096 + 4005, 1000) == NLLK_OK);
            CHECK(init(&rc, &t[1], 4096 + 5005) == NLLK_OK);
            CHECK(update(&rc, &t[1], 4096 + 5005, 100) == NLLK_OK);
            made[(mode >> 1) & 3] = 1;
        }
        a = t[0];
        b = t[1];
        const size_t na = r.n < sizeof a ? r.n : sizeof a;
        memcpy(&a, r.p, na);
        memcpy(&b, r.p + na, r.n - na < sizeof b ? r.n - na : sizeof b);
        exercise(&rc, &a, &b);
        exercise(&rc, &b, &a);
        return 0;
    }
    /* a recipe: begin, then up to MAX_CHUNKS chunk lengths for A and for B */
    rc.begin = next_u64(&r, 8);
    if (rc.begin > UINT64_MAX - 2 * MAX_CHUNKS * (uint64_t)MAX_CHUNK - 16)
        rc.begin %= (uint64_t)1 << 62;
    for (int which = 0; which < 2; which++) {
        rc.nchunks[which] = next_byte(&r) % (MAX_CHUNKS + 1);
        for (size_t k = 0; k < rc.nchunks[which]; k++)
            rc.chunk[which][k] = (size_t)(next_u64(&r, 2) % (MAX_CHUNK + 1));
    }
    CHECK(init(&rc, &a, rc.begin) == NLLK_OK);
    const uint64_t mid = feed(&rc, &a, 0, rc.begin);
    CHECK(init(&rc, &b, mid) == NLLK_OK);
    feed(&rc, &b, 1, mid);
    /* unpatched: merge(A, B) is one pass over both */
    CHECK(init(&rc, &whole, rc.begin) == NLLK_OK);
    feed(&rc, &whole, 0, rc.begin);
    feed(&rc, &whole, 1, mid);
    static nllk_acc merged;
    merged = a;
    CHECK(nllk_acc_merge(&merged, &b) == NLLK_OK);
    CHECK(same_result(&merged, &whole));
    /* patches: 3 bytes of offset into A then B, 1 byte xor */
    while (r.n >= 4) {
        const uint64_t off = next_u64(&r, 3) % (2 * sizeof a);
        const unsigned char x = (unsigned char)next_byte(&r);
        if (off < sizeof a)
            a.opaque.bytes[off] ^= x;
        else
            b.opaque.bytes[off - sizeof a] ^= x;
    }
    exercise(&rc, &a, &b);
    exercise(&rc, &b, &a);
    return 0;
}
