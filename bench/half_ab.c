/* half_ab: nllk's bfloat16 call against its float32 call on the same values (the bf16 values widened), for one or
 * more builds of libnllk loaded in one process, in interleaved rounds whose order reverses every other round.
 * Prints per build the median times and two medians of per-round ratios: bf16 speed over f32 speed, and bf16
 * speed over the first build's bf16 (an A/B of kernel changes). BENCHMARKS.md "Stop 29" has its results.
 *
 *   gcc -O2 -o half_ab bench/half_ab.c -ldl
 *   OMP_NUM_THREADS=2 ./half_ab poisson FULL LOG_INPUT ROUNDS LIB [LIB ...]       n = 2^24 (or $N), mean
 *   OMP_NUM_THREADS=2 ./half_ab ce N C D BACKWARD ROUNDS LIB [LIB ...]            int64 targets, mean
 *
 * Poisson inputs: log_input uniform in [-2, 2], else in [0.01, 4.01]; targets integers 0..7 (bench_half.py's kind).
 * Cross-entropy logits uniform in [-2, 2], targets uniform over the classes; BACKWARD 1 times the backward (the
 * forward's values not passed: it recomputes them). The C API's symbols are looked up in each build by name. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/common/half.h" /* nllk_f32_to_bf16, nllk_bf16_to_f32 */

enum { MAXLIB = 6, MAXROUNDS = 1000 };

typedef int (*pois_fn)(const void *, const void *, size_t, int, int, double, int, void *);
typedef int (*ce_fwd_fn)(const void *, const void *, int, size_t, size_t, size_t, const void *, int64_t, double, int,
                         void *, void *, void *);
typedef int (*ce_bwd_bf16_fn)(const void *, const void *, const void *, int, size_t, size_t, size_t, const void *,
                              int64_t, double, int, uint16_t, const void *, void *);
typedef int (*ce_bwd_f32_fn)(const void *, const void *, const void *, int, size_t, size_t, size_t, const void *,
                             int64_t, double, int, float, const void *, void *);

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float uniform(float lo, float hi) { return lo + (hi - lo) * (float)rand() / (float)RAND_MAX; }

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp);
    return v[n / 2];
}

static void *sym(void *h, const char *name)
{
    void *f = dlsym(h, name);
    if (!f) {
        fprintf(stderr, "half_ab: %s\n", dlerror());
        exit(1);
    }
    return f;
}

/* what one round calls: build i's bf16 (half = 1) or f32 call, its functions looked up once (fn[i][half]) */
typedef struct {
    int pois;
    void *fn[MAXLIB][2];
    size_t n, c, d;
    int full, log_input, backward;
    uint16_t *xb, *gb;
    float *xf, *gf;
    void *t;   /* Poisson: the bf16 targets; cross-entropy: int64 class indices, for both calls */
    float *tf; /* Poisson: the same targets widened, for the f32 call */
} job;

/* the function the job calls in build h's bf16 (half = 1) or f32 form */
static void *lookup(const job *j, void *h, int half)
{
    if (j->pois)
        return sym(h, half ? "nllk_poisson_nll_fwd_bf16" : "nllk_poisson_nll_fwd_f32");
    if (!j->backward)
        return sym(h, half ? "nllk_cross_entropy_fwd_bf16" : "nllk_cross_entropy_fwd_f32");
    return sym(h, half ? "nllk_cross_entropy_bwd_bf16" : "nllk_cross_entropy_bwd_f32");
}

static void call(const job *j, int i, int half)
{
    uint16_t ob[2];
    float of[2];
    const int mean = 1;
    void *fn = j->fn[i][half];
    if (j->pois) {
        ((pois_fn)fn)(half ? (void *)j->xb : (void *)j->xf, half ? j->t : (void *)j->tf, j->n, j->log_input, j->full,
                      1e-8, mean, half ? (void *)ob : (void *)of);
        return;
    }
    const double cnt = (double)(j->n * j->d); /* mean's total weight: no weights, nothing ignored */
    if (!j->backward) {
        ((ce_fwd_fn)fn)(half ? (void *)j->xb : (void *)j->xf, j->t, 0, j->n, j->c, j->d, NULL, -100, 0.0, mean,
                        half ? (void *)ob : (void *)of, half ? (void *)(ob + 1) : (void *)(of + 1), NULL);
    } else if (half) {
        const uint16_t g1 = 0x3f80; /* 1.0 */
        ((ce_bwd_bf16_fn)fn)(&g1, j->xb, j->t, 0, j->n, j->c, j->d, NULL, -100, 0.0, mean,
                             nllk_f32_to_bf16((float)cnt), NULL, j->gb);
    } else {
        const float g1 = 1.0f;
        ((ce_bwd_f32_fn)fn)(&g1, j->xf, j->t, 0, j->n, j->c, j->d, NULL, -100, 0.0, mean, (float)cnt, NULL, j->gf);
    }
}

int main(int argc, char **argv)
{
    job j = {0};
    int a = 1, rounds;
    if (argc < 2 || (strcmp(argv[1], "poisson") && strcmp(argv[1], "ce"))) {
        fprintf(stderr, "usage: half_ab poisson FULL LOG_INPUT ROUNDS LIB...\n"
                        "       half_ab ce N C D BACKWARD ROUNDS LIB...\n");
        return 2;
    }
    const int pois = j.pois = !strcmp(argv[a++], "poisson");
    if (argc < (pois ? 6 : 8)) {
        fprintf(stderr, "half_ab: too few arguments\n");
        return 2;
    }
    if (pois) {
        j.full = atoi(argv[a++]);
        j.log_input = atoi(argv[a++]);
        j.n = getenv("N") ? (size_t)atol(getenv("N")) : (size_t)1 << 24;
        j.c = j.d = 1;
    } else {
        j.n = (size_t)atol(argv[a++]);
        j.c = (size_t)atol(argv[a++]);
        j.d = (size_t)atol(argv[a++]);
        j.backward = atoi(argv[a++]);
    }
    rounds = atoi(argv[a++]);
    const int nl = argc - a;
    if (rounds < 1 || rounds > MAXROUNDS || nl < 1 || nl > MAXLIB) {
        fprintf(stderr, "half_ab: 1..%d rounds and 1..%d libraries\n", MAXROUNDS, MAXLIB);
        return 2;
    }
    for (int i = 0; i < nl; i++) {
        void *h = dlopen(argv[a + i], RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            fprintf(stderr, "half_ab: %s\n", dlerror());
            return 1;
        }
        for (int half = 0; half < 2; half++)
            j.fn[i][half] = lookup(&j, h, half);
    }

    const size_t len = j.n * j.c * j.d, npos = pois ? j.n : j.n * j.d;
    j.xb = malloc(len * 2);
    j.xf = malloc(len * 4);
    j.gb = pois ? NULL : malloc(len * 2);
    j.gf = pois ? NULL : malloc(len * 4);
    j.t = malloc(npos * (pois ? 2 : 8));
    j.tf = pois ? malloc(len * 4) : NULL;
    if (!j.xb || !j.xf || !j.t || (pois ? !j.tf : !j.gb || !j.gf)) {
        fprintf(stderr, "half_ab: out of memory\n");
        return 1;
    }
    srand(1);
    for (size_t k = 0; k < len; k++) { /* every page touched here, before any timing */
        j.xb[k] = nllk_f32_to_bf16(pois && !j.log_input ? uniform(0.01f, 4.01f) : uniform(-2, 2));
        j.xf[k] = nllk_bf16_to_f32(j.xb[k]);
    }
    if (!pois) {
        memset(j.gb, 0, len * 2);
        memset(j.gf, 0, len * 4);
    }
    for (size_t k = 0; k < npos; k++) {
        if (pois) { /* the f32 call reads the same targets, widened */
            ((uint16_t *)j.t)[k] = nllk_f32_to_bf16((float)(rand() % 8));
            j.tf[k] = nllk_bf16_to_f32(((uint16_t *)j.t)[k]);
        } else {
            ((int64_t *)j.t)[k] = rand() % (int)j.c;
        }
    }

    static double tb[MAXLIB][MAXROUNDS], tff[MAXLIB][MAXROUNDS];
    for (int r = 0; r < rounds; r++)
        for (int s = 0; s < nl; s++) {
            const int i = r % 2 ? nl - 1 - s : s;
            double t0 = now();
            call(&j, i, 1);
            const double t1 = now();
            call(&j, i, 0);
            tb[i][r] = t1 - t0;
            tff[i][r] = now() - t1;
        }

    if (pois)
        printf("poisson n=%zu full=%d log_input=%d, %d rounds\n", j.n, j.full, j.log_input, rounds);
    else
        printf("cross_entropy (%zu, %zu, %zu) %s, %d rounds\n", j.n, j.c, j.d, j.backward ? "bwd" : "fwd", rounds);
    for (int i = 0; i < nl; i++) {
        double rf[MAXROUNDS], rb[MAXROUNDS], mb[MAXROUNDS], mf[MAXROUNDS];
        for (int r = 0; r < rounds; r++) {
            rf[r] = tff[i][r] / tb[i][r];
            rb[r] = tb[0][r] / tb[i][r];
            mb[r] = tb[i][r];
            mf[r] = tff[i][r];
        }
        printf("  %-36s bf16 %8.3f ms  f32 %8.3f ms  bf16 speed / f32 %.3f  bf16 speed / first build's %.3f\n",
               argv[a + i], median(mb, rounds) * 1e3, median(mf, rounds) * 1e3, median(rf, rounds),
               median(rb, rounds));
    }
    return 0;
}
