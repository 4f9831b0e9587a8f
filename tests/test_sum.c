/* The canonical sum (dispatch/sum.c) against a separately written recursive definition of the tree, and the
 * property the threads and the streaming API rely on: a range cut anywhere into pieces, each summed on its
 * own (starting mid-block included) and merged left to right, gives the bits of one pass. */
#include "sum.h"
#include "testutil.h"

/* values spanning many magnitudes and signs, so that any change of summation order changes the bits */
static double value(void)
{
    const double m = tu_unit();
    const int e = (int)tu_below(40) - 20;
    return ((tu_next() & 1) ? -1.0 : 1.0) * ldexp(m, e);
}

/* the reference is tu_tree_sum (testutil.h): nllk.h section 2 written directly, recursively */
#define ref_sum tu_tree_sum

/* --- the run function under test: channel 0 the value, channel 1 its square --------------------------------- */
typedef struct {
    const double *v;
    size_t base;
} ctx_t;
static size_t run(void *vctx, size_t off, size_t n, double *lanes)
{
    const ctx_t *c = vctx;
    for (size_t k = 0; k < n; k++) {
        const double x = c->v[c->base + off + k];
        lanes[k % 16] += x;
        lanes[16 + k % 16] += x * x;
    }
    return n;
}

static nllk_sum sums[8];
static nllk_sum_head heads[8];

static void one_pass(const double *v, size_t n, double total[2])
{
    ctx_t c = {v, 0};
    nllk_sum_init(&sums[0], 0);
    CHECK(nllk_sum_feed(&sums[0], NULL, n, run, &c) == n, "feed");
    nllk_sum_total(&sums[0], NULL, total);
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

int main(void)
{
    tu_require_isa();
    const size_t sizes[] = {0, 1, 15, 16, 17, 4095, 4096, 4097, 8191, 8192, 12289, 3 * 4096 + 5, 65536 + 4096 * 3 + 7,
                            1000003};
    const size_t nmax = 1000003;
    double *v = malloc(nmax * sizeof *v), *sq = malloc(nmax * sizeof *sq);
    for (size_t i = 0; i < nmax; i++) {
        v[i] = value();
        sq[i] = v[i] * v[i];
    }
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const size_t n = sizes[si];
        double total[2];
        one_pass(v, n, total);
        CHECK(same_bits(total[0], ref_sum(v, n)), "n=%zu one pass %.17g != reference %.17g", n, total[0],
              ref_sum(v, n));
        CHECK(same_bits(total[1], ref_sum(sq, n)), "n=%zu channel 1", n);

        /* one sum fed in random chunks */
        for (int trial = 0; trial < 20; trial++) {
            ctx_t c = {v, 0};
            nllk_sum_init(&sums[1], 0);
            size_t off = 0;
            while (off < n) {
                const size_t len = 1 + tu_next() % (trial % 2 ? 50 : 9000);
                const size_t m = len < n - off ? len : n - off;
                c.base = off;
                nllk_sum_feed(&sums[1], NULL, m, run, &c);
                off += m;
            }
            double t[2];
            nllk_sum_total(&sums[1], NULL, t);
            CHECK(same_bits(t[0], total[0]) && same_bits(t[1], total[1]), "n=%zu chunked trial %d", n, trial);
        }

        /* cut into up to 8 pieces at random points, each its own sum, merged left to right */
        for (int trial = 0; trial < 40; trial++) {
            const int pieces = 1 + (int)(tu_next() % 8);
            size_t cut[9];
            cut[0] = 0;
            cut[pieces] = n;
            for (int p = 1; p < pieces; p++)
                cut[p] = n ? (trial % 3 == 0 ? (tu_next() % (n / 64 + 1)) * 64 : tu_next() % (n + 1)) : 0;
            for (int p = 1; p < pieces; p++) /* sort */
                for (int q = p + 1; q < pieces; q++)
                    if (cut[q] < cut[p]) {
                        const size_t tmp = cut[p];
                        cut[p] = cut[q];
                        cut[q] = tmp;
                    }
            for (int p = 0; p < pieces; p++) {
                ctx_t c = {v, cut[p]};
                nllk_sum_init(&sums[p], cut[p]);
                nllk_sum_feed(&sums[p], &heads[p], cut[p + 1] - cut[p], run, &c);
            }
            for (int p = 1; p < pieces; p++)
                nllk_sum_merge(&sums[0], &heads[0], &sums[p], &heads[p]);
            double t[2];
            nllk_sum_total(&sums[0], &heads[0], t);
            CHECK(same_bits(t[0], total[0]) && same_bits(t[1], total[1]),
                  "n=%zu split into %d pieces (trial %d): %.17g != %.17g", n, pieces, trial, t[0], total[0]);
            /* merging in a different grouping: ((p0 p1) (p2 p3)) -- merge is associative on states */
        }
    }
    /* merging partial sums pairwise (tree of merges) instead of left to right gives the same bits */
    {
        const size_t n = 65536 * 3 + 1234;
        double total[2];
        one_pass(v, n, total);
        size_t cut[9];
        for (int p = 0; p <= 8; p++)
            cut[p] = n * (size_t)p / 8 + (p > 0 && p < 8 ? 777 : 0);
        for (int p = 0; p < 8; p++) {
            ctx_t c = {v, cut[p]};
            nllk_sum_init(&sums[p], cut[p]);
            nllk_sum_feed(&sums[p], &heads[p], cut[p + 1] - cut[p], run, &c);
        }
        for (int step = 1; step < 8; step *= 2)
            for (int p = 0; p + step < 8; p += 2 * step)
                nllk_sum_merge(&sums[p], &heads[p], &sums[p + step], &heads[p + step]);
        double t[2];
        nllk_sum_total(&sums[0], &heads[0], t);
        CHECK(same_bits(t[0], total[0]) && same_bits(t[1], total[1]), "pairwise merge order");
    }
    free(v);
    free(sq);
    printf("test_sum: ");
    return tu_summary();
}
