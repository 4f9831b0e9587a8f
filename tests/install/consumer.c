/* A program outside the source tree that links the installed nllk (CMake package or pkg-config). */
#include <stdio.h>

#include <nllk.h>

int main(void)
{
    const float x[3] = {-0.1f, -2.3f, -0.7f};
    const int64_t t[1] = {2};
    float loss;
    if (nllk_nll_fwd_f32(x, t, NLLK_TARGET_I64, 1, 3, 1, NULL, -100, NLLK_REDUCTION_MEAN, &loss, NULL) != NLLK_OK) {
        fprintf(stderr, "nllk: %s\n", nllk_last_error());
        return 1;
    }
    printf("nllk %s loss %.2f\n", nllk_version_string(), loss);
    return loss == 0.7f ? 0 : 1;
}
