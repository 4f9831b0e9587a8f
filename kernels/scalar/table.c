/* The scalar kernel table. */
#include "../../dispatch/kernels.h"

#define NLLK_DECLARE_POISSON(T, DT)                                                                             \
    void nllk_poisson_fwd_##DT##__scalar(size_t, const T *, const T *, const nllk_poisson_params *, T *,        \
                                         double *);                                                             \
    void nllk_poisson_bwd_##DT##__scalar(size_t, const T *, const T *, const nllk_poisson_params *, const T *,  \
                                         size_t, T *, T *);
#define NLLK_DECLARE_NLL(T, DT, TN)                                                                             \
    size_t nllk_nll_fwd_##DT##_##TN##__scalar(const nllk_nll_run *, const T *, const void *, const T *, T *,    \
                                              double *);                                                        \
    void nllk_nll_bwd_##DT##_##TN##__scalar(const nllk_nll_run *, const void *, const T *, const T *, size_t,   \
                                            T *);
NLLK_DECLARE_POISSON(float, f32)
NLLK_DECLARE_POISSON(double, f64)
NLLK_DECLARE_NLL(float, f32, i64)
NLLK_DECLARE_NLL(float, f32, i32)
NLLK_DECLARE_NLL(float, f32, u8)
NLLK_DECLARE_NLL(double, f64, i64)
NLLK_DECLARE_NLL(double, f64, i32)
NLLK_DECLARE_NLL(double, f64, u8)
size_t nllk_nll_check_i64__scalar(size_t, const void *, size_t, int64_t);
size_t nllk_nll_check_i32__scalar(size_t, const void *, size_t, int64_t);
size_t nllk_nll_check_u8__scalar(size_t, const void *, size_t, int64_t);

const nllk_kernels nllk_kernels_scalar = {
    .isa = "scalar",
    .poisson_fwd_f32 = nllk_poisson_fwd_f32__scalar,
    .poisson_fwd_f64 = nllk_poisson_fwd_f64__scalar,
    .poisson_bwd_f32 = nllk_poisson_bwd_f32__scalar,
    .poisson_bwd_f64 = nllk_poisson_bwd_f64__scalar,
    .nll_fwd_f32 = {nllk_nll_fwd_f32_i64__scalar, nllk_nll_fwd_f32_i32__scalar, nllk_nll_fwd_f32_u8__scalar},
    .nll_fwd_f64 = {nllk_nll_fwd_f64_i64__scalar, nllk_nll_fwd_f64_i32__scalar, nllk_nll_fwd_f64_u8__scalar},
    .nll_bwd_f32 = {nllk_nll_bwd_f32_i64__scalar, nllk_nll_bwd_f32_i32__scalar, nllk_nll_bwd_f32_u8__scalar},
    .nll_bwd_f64 = {nllk_nll_bwd_f64_i64__scalar, nllk_nll_bwd_f64_i32__scalar, nllk_nll_bwd_f64_u8__scalar},
    .nll_check = {nllk_nll_check_i64__scalar, nllk_nll_check_i32__scalar, nllk_nll_check_u8__scalar},
};
