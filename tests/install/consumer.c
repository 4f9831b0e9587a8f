/* A program outside the source tree that links nllk (installed package, pkg-config, or nllk as a subproject).
 * Checks a known loss, that the header and the loaded library agree on the version, and, built with OpenMP
 * (-DWITH_OPENMP), that the program and nllk share one OpenMP runtime: its own team has the threads it asked for
 * while nllk runs 2-thread calls. */
#include <stdio.h>

#include <nllk.h>
#ifdef WITH_OPENMP
#  include <omp.h>
#endif

int main(void)
{
    const float x[3] = {-0.1f, -2.3f, -0.7f};
    const int64_t t[1] = {2};
    float loss;
    if (nllk_nll_fwd_f32(x, t, NLLK_TARGET_I64, 1, 3, 1, NULL, -100, NLLK_REDUCTION_MEAN, &loss, NULL) != NLLK_OK) {
        fprintf(stderr, "nllk: %s\n", nllk_last_error());
        return 1;
    }
    if (nllk_version_number() != NLLK_VERSION_NUMBER) {
        fprintf(stderr, "header version %d, library %u\n", NLLK_VERSION_NUMBER, nllk_version_number());
        return 1;
    }
#ifdef WITH_OPENMP
    enum { N = 1 << 20 };
    static float rate[N], count[N];
    float mean;
    nllk_set_num_threads(2);
    if (nllk_poisson_nll_fwd_f32(rate, count, N, 1, 0, 1e-8, NLLK_REDUCTION_MEAN, &mean) != NLLK_OK || mean != 1.0f)
        return 1;
    int team = 0;
#  pragma omp parallel num_threads(2)
    {
#  pragma omp single
        team = omp_get_num_threads();
    }
    if (team != 2) {
        fprintf(stderr, "the program's OpenMP team has %d threads, expected 2\n", team);
        return 1;
    }
#endif
    printf("nllk %s loss %.2f\n", nllk_version_string(), loss);
    return loss == 0.7f ? 0 : 1;
}
