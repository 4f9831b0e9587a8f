/* Accumulator bytes from outside (another process, a file, a network): every corruption of the state — node count,
 * node levels, the range, kind, dtype, options, flipped bits anywhere, garbage, truncation — is refused with
 * NLLK_ERR_INVALID_ARGUMENT by update, merge (as either side), range and result, leaving the arguments unchanged;
 * no byte of the state can make a call crash, read or write out of bounds (run under ASan/UBSan) or return a
 * wrong value. Valid accumulators (fresh, updated, merged, copied with memcpy) still give the one-shot bits. */
#include <stddef.h>

#include "acc.h"
#include "tests/testutil.h"

enum { C = 5, D = 3, CHUNK = 999 };

/* ---- the data: element i of every dataset is a fixed function of i, so shards of it are consistent --------- */
static double x_at(uint64_t i) { return sin((double)i * 0.37) * 2.0; }
static double t_at(uint64_t i) { return (double)(i % 7) * 0.5; }
static double nll_x(uint64_t sample, uint64_t cls, uint64_t pos)
{
    return -0.05 * (double)((sample * 31 + cls * 7 + pos) % 97);
}
static int64_t nll_t(uint64_t flat) { return flat % 11 == 0 ? -100 : (int64_t)((flat * 7) % C); }

typedef struct spec {
    const char *name;
    int nll;
    nllk_dtype dtype;
} spec;

static const spec POISSON_F32 = {"Poisson f32", 0, NLLK_F32}, POISSON_F64 = {"Poisson f64", 0, NLLK_F64},
                  NLL_F32 = {"NLL f32", 1, NLLK_F32}, NLL_F64 = {"NLL f64", 1, NLLK_F64};

static nllk_status init(const spec *s, nllk_acc *a, uint64_t begin)
{
    return s->nll ? nllk_nll_acc_init(a, s->dtype, NLLK_TARGET_I64, C, D, -100, begin)
                  : nllk_poisson_acc_init(a, s->dtype, 1, 0, 1e-8, begin);
}

/* Folds elements [end, end + n) of the spec's dataset into a. */
static nllk_status update(const spec *s, nllk_acc *a, uint64_t end, size_t n)
{
    static float xf[(CHUNK / D + 2) * C * D], tf[CHUNK];
    static double xd[(CHUNK / D + 2) * C * D], td[CHUNK];
    static int64_t ti[CHUNK];
    if (n > CHUNK)
        abort();
    if (!s->nll) {
        for (size_t k = 0; k < n; k++) {
            xd[k] = xf[k] = (float)x_at(end + k);
            td[k] = tf[k] = (float)t_at(end + k);
        }
        return s->dtype == NLLK_F32 ? nllk_poisson_acc_update_f32(a, xf, tf, n)
                                    : nllk_poisson_acc_update_f64(a, xd, td, n);
    }
    const uint64_t s0 = end / D, s1 = (end + n + D - 1) / D;
    for (uint64_t smp = s0; smp < s1; smp++)
        for (uint64_t c = 0; c < C; c++)
            for (uint64_t j = 0; j < D; j++)
                xd[((smp - s0) * C + c) * D + j] = xf[((smp - s0) * C + c) * D + j] = (float)nll_x(smp, c, j);
    for (size_t k = 0; k < n; k++)
        ti[k] = nll_t(end + k);
    return s->dtype == NLLK_F32 ? nllk_nll_acc_update_f32(a, xf, ti, n, NULL)
                                : nllk_nll_acc_update_f64(a, xd, ti, n, NULL);
}

/* An accumulator of elements [begin, end), fed in chunks. */
static void build(const spec *s, nllk_acc *a, uint64_t begin, uint64_t end)
{
    CHECK_OK(init(s, a, begin));
    for (uint64_t e = begin; e < end; e += CHUNK)
        CHECK_OK(update(s, a, e, end - e < CHUNK ? end - e : CHUNK));
}

/* The one-shot SUM over elements [0, n), rounded to the dtype: the bits a valid accumulator from 0 must give. */
static double one_shot_sum(const spec *s, size_t n)
{
    float *xf = malloc(n * C * sizeof *xf), *tf = malloc(n * sizeof *tf);
    double *xd = malloc(n * C * sizeof *xd), *td = malloc(n * sizeof *td);
    int64_t *ti = malloc(n * sizeof *ti);
    double v = 0;
    if (!s->nll) {
        for (size_t i = 0; i < n; i++) {
            xd[i] = xf[i] = (float)x_at(i);
            td[i] = tf[i] = (float)t_at(i);
        }
        float vf;
        if (s->dtype == NLLK_F32) {
            CHECK_OK(nllk_poisson_nll_fwd_f32(xf, tf, n, 1, 0, 1e-8, NLLK_REDUCTION_SUM, &vf));
            v = vf;
        } else {
            CHECK_OK(nllk_poisson_nll_fwd_f64(xd, td, n, 1, 0, 1e-8, NLLK_REDUCTION_SUM, &v));
        }
    } else { /* n is a whole number of samples here */
        for (size_t smp = 0; smp < n / D; smp++)
            for (size_t c = 0; c < C; c++)
                for (size_t j = 0; j < D; j++)
                    xd[(smp * C + c) * D + j] = xf[(smp * C + c) * D + j] = (float)nll_x(smp, c, j);
        for (size_t i = 0; i < n; i++)
            ti[i] = nll_t(i);
        float vf, twf;
        double twd;
        if (s->dtype == NLLK_F32) {
            CHECK_OK(nllk_nll_fwd_f32(xf, ti, NLLK_TARGET_I64, n / D, C, D, NULL, -100, NLLK_REDUCTION_SUM, &vf,
                                      &twf));
            v = vf;
        } else {
            CHECK_OK(nllk_nll_fwd_f64(xd, ti, NLLK_TARGET_I64, n / D, C, D, NULL, -100, NLLK_REDUCTION_SUM, &v,
                                      &twd));
        }
    }
    free(xf), free(tf), free(xd), free(td), free(ti);
    return v;
}

static nllk_acc_impl *impl(nllk_acc *a) { return (nllk_acc_impl *)(void *)a; }

/* Whether byte k of valid state g is one it uses: every header and range byte, the lanes, the open nodes (not
 * their padding), the raw head's values. Such a byte changed must be refused. */
static int in_use(const nllk_acc_impl *g, size_t k, int with_head)
{
    const size_t sum = offsetof(nllk_acc_impl, sum), lanes = sum + offsetof(nllk_sum, lanes);
    const size_t nodes = sum + offsetof(nllk_sum, node), head = offsetof(nllk_acc_impl, head);
    const size_t node_bytes = sizeof(nllk_sum_node), channel = sizeof g->head.v[0];
    if (k < sum + offsetof(nllk_sum, nnodes) + sizeof g->sum.nnodes)
        return 1;
    if (k >= lanes && k < lanes + sizeof g->sum.lanes)
        return 1;
    if (k >= nodes && k < nodes + node_bytes * g->sum.nnodes) {
        const size_t in = (k - nodes) % node_bytes;
        return in < offsetof(nllk_sum_node, level) + sizeof(uint32_t) || in >= offsetof(nllk_sum_node, v);
    }
    const uint64_t b = g->sum.begin, e = g->sum.end;
    const uint64_t to_boundary = (NLLK_BLOCK - b % NLLK_BLOCK) % NLLK_BLOCK;
    const uint64_t head_len = to_boundary < e - b ? to_boundary : e - b; /* [begin, first boundary) */
    return with_head && k >= head && k < head + 2 * channel && (k - head) % channel < head_len * sizeof(double);
}

/* Whether a differs from valid state g in a byte g uses (with_head: counting the raw head's values). */
static int differs_in_use(const nllk_acc *a, const nllk_acc *g, int with_head)
{
    for (size_t k = 0; k < sizeof *a; k++)
        if (a->opaque.bytes[k] != g->opaque.bytes[k] && in_use((const nllk_acc_impl *)(const void *)g, k, with_head))
            return 1;
    return 0;
}

/* ---- the checks ---------------------------------------------------------------------------------------------- */

/* A state under test: `good` is valid; `left` ends where good begins and `right` begins where it ends (both
 * valid, same options), the partners of the merges. */
typedef struct subject {
    const spec *s;
    nllk_acc good, left, right;
} subject;

static subject *make_subject(const spec *s, uint64_t begin, uint64_t end)
{
    subject *u = malloc(sizeof *u);
    u->s = s;
    build(s, &u->good, begin, end);
    build(s, &u->left, begin / 2, begin);
    build(s, &u->right, end, end + 50);
    return u;
}

static nllk_acc scratch, scratch2;

/* Every entry point refuses `bad` with NLLK_ERR_INVALID_ARGUMENT (the message containing `says`, if given) and
 * leaves its arguments unchanged. */
static void expect_refused(const subject *u, const nllk_acc *bad, const char *what, const char *says)
{
    double v = 12345;
    uint64_t b = 77, e = 88;
    nllk_status st = nllk_acc_result(bad, NLLK_REDUCTION_SUM, &v, NULL, NULL);
    CHECK(st == NLLK_ERR_INVALID_ARGUMENT && v == 12345, "%s: %s: result -> %s", u->s->name, what,
          nllk_status_name(st));
    CHECK(!says || strstr(nllk_last_error(), says), "%s: %s: message \"%s\" lacks \"%s\"", u->s->name, what,
          nllk_last_error(), says);
    st = nllk_acc_range(bad, &b, &e);
    CHECK(st == NLLK_ERR_INVALID_ARGUMENT && b == 77 && e == 88, "%s: %s: range -> %s", u->s->name, what,
          nllk_status_name(st));
    scratch = *bad;
    st = nllk_acc_merge(&scratch, &u->right);
    CHECK(st == NLLK_ERR_INVALID_ARGUMENT, "%s: %s: merge as left -> %s", u->s->name, what, nllk_status_name(st));
    CHECK(memcmp(&scratch, bad, sizeof scratch) == 0, "%s: %s: a refused merge changed left", u->s->name, what);
    scratch2 = u->left;
    st = nllk_acc_merge(&scratch2, bad);
    CHECK(st == NLLK_ERR_INVALID_ARGUMENT, "%s: %s: merge as right -> %s", u->s->name, what, nllk_status_name(st));
    CHECK(memcmp(&scratch2, &u->left, sizeof scratch2) == 0, "%s: %s: a refused merge changed left", u->s->name,
          what);
    /* an update never reads the raw head's values: a change there only is refused by the next result */
    scratch = *bad;
    st = update(u->s, &scratch, impl((nllk_acc *)&u->good)->sum.end, 16);
    if (st == NLLK_OK && !differs_in_use(bad, &u->good, 0)) {
        st = nllk_acc_result(&scratch, NLLK_REDUCTION_SUM, &v, NULL, NULL);
        CHECK(st == NLLK_ERR_INVALID_ARGUMENT, "%s: %s: updated, then result -> %s", u->s->name, what,
              nllk_status_name(st));
    } else {
        CHECK(st == NLLK_ERR_INVALID_ARGUMENT, "%s: %s: update -> %s", u->s->name, what, nllk_status_name(st));
        CHECK(memcmp(&scratch, bad, sizeof scratch) == 0, "%s: %s: a refused update changed the state", u->s->name,
              what);
    }
}

/* The SUM of a (NAN if refused). */
static double sum_of(const nllk_acc *a, nllk_status *st)
{
    double v = NAN;
    *st = nllk_acc_result(a, NLLK_REDUCTION_SUM, &v, NULL, NULL);
    return v;
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

/* One field changed at a time: each is refused, most by the field check that names it, the rest by the checksum. */
static void field_corruptions(const subject *u)
{
    const nllk_acc_impl *g = (const nllk_acc_impl *)(const void *)&u->good;
    nllk_acc bad_storage;
    nllk_acc_impl *a = impl(&bad_storage);
#define CORRUPT(what, says, change)                                                                             \
    do {                                                                                                          \
        bad_storage = u->good;                                                                                  \
        change;                                                                                                   \
        expect_refused(u, &bad_storage, what, says);                                                             \
    } while (0)
    CORRUPT("magic", "not initialized", a->magic ^= 1);
    CORRUPT("kind 0", "kind 0", a->kind = 0);
    CORRUPT("kind 5", "kind 5", a->kind = 5); /* 3 and 4 are cross-entropy's */
    CORRUPT("kind swapped", NULL, a->kind = g->kind == NLLK_ACC_NLL ? NLLK_ACC_POISSON : NLLK_ACC_NLL);
    CORRUPT("dtype 4", "dtype 4", a->dtype = 4); /* 0 .. 3 are f32, f64, bf16, f16 */
    CORRUPT("dtype swapped", NULL, a->dtype ^= 1);
    CORRUPT("node count + 1", "open nodes", a->sum.nnodes++);
    CORRUPT("node count 131", "open nodes", a->sum.nnodes = NLLK_SUM_MAX_NODES + 1);
    CORRUPT("node count 2^32 - 1", "open nodes", a->sum.nnodes = UINT32_MAX);
    if (g->sum.begin < g->sum.end)
        CORRUPT("begin/end swapped", "end < begin", (a->sum.begin = g->sum.end, a->sum.end = g->sum.begin));
    CORRUPT("end = 2^64 - 1", "open nodes", a->sum.end = UINT64_MAX);
    CORRUPT("end + 1", NULL, a->sum.end++);
    CORRUPT("begin + 1", NULL, a->sum.begin++);
    CORRUPT("head checksum", "checksum", a->head_check.b[1]++);
    CORRUPT("checksum", "checksum", a->checksum ^= (uint64_t)1 << 40);
    CORRUPT("lane", NULL, a->sum.lanes[3] += 1.0); /* the checksum, or the lanes of no open block */
    if (g->sum.begin > 0)
        CORRUPT("end = begin - 1", "end < begin", a->sum.end = g->sum.begin - 1);
    if (g->sum.nnodes > 0) {
        CORRUPT("node count 0", "open nodes", a->sum.nnodes = 0);
        CORRUPT("node count - 1", "open nodes", a->sum.nnodes--);
        CORRUPT("node level", "open node", a->sum.node[0].level++);
        CORRUPT("node level 2^32 - 1", "open node", a->sum.node[0].level = UINT32_MAX);
        CORRUPT("node index", "open node", a->sum.node[0].index ^= 1);
        CORRUPT("node value", "checksum", a->sum.node[0].v[0] *= 2);
    }
    if (g->kind == NLLK_ACC_POISSON) {
        CORRUPT("log_input 2", "log_input", a->log_input = 2);
        CORRUPT("full -1", "full", a->full = -1);
        CORRUPT("full flipped", "checksum", a->full ^= 1);
        CORRUPT("eps", "checksum", a->eps = 0.5);
        CORRUPT("Poisson with d", "NLL options", a->d = 1);
        CORRUPT("Poisson with c", "NLL options", a->c = 1);
    } else {
        CORRUPT("d = 0", "d = 0", a->d = 0);
        CORRUPT("c = 0 with d", "checksum", a->c = 0);
        CORRUPT("d changed", "checksum", a->d = 4);
        CORRUPT("c * d overflows", "overflows", a->c = UINT64_MAX / 2);
        CORRUPT("d = 2^64 - 1", "overflows", a->d = UINT64_MAX);
        CORRUPT("target_type 3", "target_type 3", a->target_type = 3);
        CORRUPT("target_type swapped", "checksum", a->target_type = NLLK_TARGET_I32);
        CORRUPT("ignore_index", "checksum", a->ignore_index = 0);
        CORRUPT("NLL with eps", "Poisson options", a->eps = 1e-8);
        CORRUPT("NLL with log_input", "Poisson options", a->log_input = 1);
    }
    if (g->sum.begin % NLLK_BLOCK != 0 && g->sum.end - g->sum.begin >= 2)
        CORRUPT("raw head value", "checksum", a->head.v[0][1] += 1.0);
#undef CORRUPT
}

/* Every single bit flip anywhere in the block (bit k % 8 of byte k) is refused by result, or harmless: result and
 * range then give the pristine values (a byte the state does not use). An update of the flipped state is refused
 * or gives the pristine update's state, up to the bytes a later call would refuse. */
static void bit_flips(const subject *u)
{
    nllk_status st;
    uint64_t b0, e0;
    const double want = sum_of(&u->good, &st);
    CHECK(st == NLLK_OK && nllk_acc_range(&u->good, &b0, &e0) == NLLK_OK, "%s: pristine state", u->s->name);
    nllk_acc after = u->good;
    CHECK_OK(update(u->s, &after, e0, 16));
    const double want_after = sum_of(&after, &st);
    long refused = 0, harmless = 0;
    for (size_t k = 0; k < sizeof(nllk_acc); k++) {
        scratch = u->good;
        scratch.opaque.bytes[k] ^= (unsigned char)(1u << (k % 8));
        const double v = sum_of(&scratch, &st);
        uint64_t b = 0, e = 0;
        const nllk_status st_range = nllk_acc_range(&scratch, &b, &e);
        if (st == NLLK_ERR_INVALID_ARGUMENT) {
            refused++;
            CHECK(st_range == NLLK_ERR_INVALID_ARGUMENT, "%s: byte %zu: result refused, range %s", u->s->name, k,
                  nllk_status_name(st_range));
        } else {
            harmless++;
            CHECK(!in_use((const nllk_acc_impl *)(const void *)&u->good, k, 1), "%s: byte %zu is in use: not refused",
                  u->s->name, k);
            CHECK(st == NLLK_OK && same_bits(v, want) && st_range == NLLK_OK && b == b0 && e == e0,
                  "%s: byte %zu flipped: result %s %.17g (pristine %.17g)", u->s->name, k, nllk_status_name(st), v,
                  want);
        }
        st = update(u->s, &scratch, e0, 16);
        if (st == NLLK_OK) {
            const double va = sum_of(&scratch, &st);
            CHECK(st == NLLK_ERR_INVALID_ARGUMENT || (st == NLLK_OK && same_bits(va, want_after)),
                  "%s: byte %zu flipped, then updated: result %s %.17g (pristine %.17g)", u->s->name, k,
                  nllk_status_name(st), va, want_after);
        } else {
            CHECK(st == NLLK_ERR_INVALID_ARGUMENT, "%s: byte %zu: update -> %s", u->s->name, k, nllk_status_name(st));
        }
    }
    printf("%s [%llu, %llu): of %zu single-bit flips %ld refused, %ld harmless (unused bytes)\n", u->s->name,
           (unsigned long long)b0, (unsigned long long)e0, sizeof(nllk_acc), refused, harmless);
}

/* Garbage: random bytes, all zero, all ones, a valid state's beginning followed by garbage (a truncated copy),
 * the magic number followed by random bytes. */
static void garbage(const subject *u)
{
    static nllk_acc bad;
    const size_t cuts[] = {4, 8, 64, offsetof(nllk_acc_impl, sum), offsetof(nllk_acc_impl, sum.lanes),
                           offsetof(nllk_acc_impl, sum.node) + 16, offsetof(nllk_acc_impl, head) + 8};
    for (int fill = 0; fill < 3; fill++) {
        for (size_t ci = 0; ci < sizeof cuts / sizeof cuts[0]; ci++) {
            bad = u->good;
            for (size_t k = cuts[ci]; k < sizeof bad; k++)
                bad.opaque.bytes[k] = fill == 0 ? 0 : fill == 1 ? 0xff : (unsigned char)tu_next();
            char what[64];
            snprintf(what, sizeof what, "first %zu bytes kept, rest %s", cuts[ci],
                     fill == 0 ? "zero" : fill == 1 ? "0xff" : "random");
            if (differs_in_use(&bad, &u->good, 1)) {
                expect_refused(u, &bad, what, NULL);
            } else { /* only unused bytes changed: still the same state */
                nllk_status st;
                CHECK(same_bits(sum_of(&bad, &st), sum_of(&u->good, &st)) && st == NLLK_OK, "%s: %s: unused bytes",
                      u->s->name, what);
            }
        }
        for (size_t k = 0; k < sizeof bad; k++)
            bad.opaque.bytes[k] = fill == 0 ? 0 : fill == 1 ? 0xff : (unsigned char)tu_next();
        expect_refused(u, &bad, fill == 0 ? "all zero" : fill == 1 ? "all 0xff" : "all random", NULL);
        impl(&bad)->magic = NLLK_ACC_MAGIC;
        expect_refused(u, &bad, "the magic number, then garbage", NULL);
    }
}

/* ---- valid states ------------------------------------------------------------------------------------------ */

/* Fresh, updated, merged from shards cut anywhere (also inside blocks and samples), copied with memcpy: accepted,
 * and the same bits as the one-shot call. */
static void valid_states(const spec *s)
{
    enum { N = 6 * NLLK_BLOCK + 3 * D * 101 };
    const double want = one_shot_sum(s, N);
    static nllk_acc whole, copy, shard[4];
    nllk_status st;
    build(s, &whole, 0, N);
    CHECK(same_bits(sum_of(&whole, &st), want) && st == NLLK_OK, "%s: chunked = one-shot", s->name);
    memcpy(&copy, &whole, sizeof copy);
    CHECK(same_bits(sum_of(&copy, &st), want) && st == NLLK_OK, "%s: a memcpy copy", s->name);
    const uint64_t cuts[][5] = {{0, 1, 2, 3, N}, {0, NLLK_BLOCK, 2 * NLLK_BLOCK, 3 * NLLK_BLOCK, N},
                                {0, 5000, 5001, 12000, N}, {0, 7, 4099, 20000, N}, {0, 0, 0, N, N}};
    for (size_t ci = 0; ci < sizeof cuts / sizeof cuts[0]; ci++) {
        for (int k = 0; k < 4; k++)
            build(s, &shard[k], cuts[ci][k], cuts[ci][k + 1]);
        /* ((0 1) (2 3)) and (0 (1 (2 3))): any bracketing that keeps the order */
        nllk_acc *a = &shard[0], *b = &shard[1], *c = &shard[2], *d = &shard[3];
        if (ci % 2 == 0) {
            CHECK_OK(nllk_acc_merge(a, b));
            CHECK_OK(nllk_acc_merge(c, d));
            CHECK_OK(nllk_acc_merge(a, c));
        } else {
            CHECK_OK(nllk_acc_merge(c, d));
            CHECK_OK(nllk_acc_merge(b, c));
            CHECK_OK(nllk_acc_merge(a, b));
        }
        CHECK(same_bits(sum_of(a, &st), want) && st == NLLK_OK, "%s: merged shards (cut %zu) = one-shot", s->name,
              ci);
        CHECK_OK(update(s, a, N, 100)); /* and it goes on folding */
        copy = whole;
        CHECK_OK(update(s, &copy, N, 100));
        CHECK(same_bits(sum_of(a, &st), sum_of(&copy, &st)), "%s: merged, then updated (cut %zu)", s->name, ci);
    }
}

/* init refuses options whose state would be refused later (and leaves the block uninitialized). */
static void init_checks(void)
{
    nllk_acc a;
    double v;
    CHECK(nllk_nll_acc_init(&a, NLLK_F64, NLLK_TARGET_I64, SIZE_MAX / 4, 3, -100, 0) == NLLK_ERR_INVALID_ARGUMENT,
          "NLL init: c * d * 8 overflows");
    CHECK(nllk_acc_result(&a, NLLK_REDUCTION_SUM, &v, NULL, NULL) == NLLK_ERR_INVALID_ARGUMENT,
          "a refused init leaves the block uninitialized");
    CHECK_OK(nllk_nll_acc_init(&a, NLLK_F32, NLLK_TARGET_I64, SIZE_MAX / 8, 1, -100, 0)); /* 4-byte elements fit */
    CHECK_OK(nllk_nll_acc_init(&a, NLLK_F64, NLLK_TARGET_U8, 0, 1000, -100, 0));        /* c = 0 is valid */
    CHECK_OK(nllk_acc_result(&a, NLLK_REDUCTION_SUM, &v, NULL, NULL));
    CHECK_OK(nllk_poisson_acc_init(&a, NLLK_F32, 7, -3, NAN, UINT64_MAX)); /* flags normalized; any eps, begin */
    CHECK_OK(nllk_acc_result(&a, NLLK_REDUCTION_SUM, &v, NULL, NULL));
}

int main(void)
{
    tu_require_isa();
    tu_seed(16);
    init_checks();
    const spec *specs[] = {&POISSON_F32, &POISSON_F64, &NLL_F32, &NLL_F64};
    for (int i = 0; i < 4; i++)
        valid_states(specs[i]);
    /* states with open nodes and an open block, a raw head, a closed block, and empty ones */
    struct {
        const spec *s;
        uint64_t begin, end;
    } cases[] = {
        {&POISSON_F32, 0, 10000}, {&POISSON_F64, 5000, 17000}, {&NLL_F32, 0, 20001}, {&NLL_F64, 12289, 16289},
        {&POISSON_F32, 0, 2 * NLLK_BLOCK}, {&NLL_F64, 3 * NLLK_BLOCK, 9 * NLLK_BLOCK + 5}, {&POISSON_F64, 0, 0},
        {&NLL_F32, 4097, 4097},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        subject *u = make_subject(cases[i].s, cases[i].begin, cases[i].end);
        field_corruptions(u);
        garbage(u);
        if (i < 4)
            bit_flips(u);
        free(u);
    }
    return tu_summary();
}
