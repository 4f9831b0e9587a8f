/* NLL kernels, portable scalar code: one loop per (dtype, target type). */
#include "../../dispatch/kernels.h"
#include "../common/nll_target.h"

#define NLLK_DEFINE_NLL_SCALAR(T, DT, TT, TN)                                                                   \
    size_t nllk_nll_fwd_##DT##_##TN##__scalar(const nllk_nll_run *r, const T *x, const void *target,            \
                                              const T *weight, T *out, double *lanes)                           \
    {                                                                                                           \
        const TT *tg = (const TT *)target;                                                                      \
        for (size_t k = 0; k < r->len; k++) {                                                                   \
            const int64_t c = (int64_t)tg[k];                                                                   \
            T loss = 0, w = 0;                                                                                  \
            if (!nllk_nll_is_ignored(c, r->ignore_index)) {                                                     \
                if (!nllk_nll_in_range(c, r->c))                                                                \
                    return k;                                                                                   \
                w = weight ? weight[c] : (T)1;                                                                  \
                loss = -x[k * r->k_stride + (size_t)c * r->c_stride] * w;                                       \
            }                                                                                                   \
            if (out)                                                                                            \
                out[k] = loss;                                                                                  \
            if (lanes) {                                                                                        \
                lanes[k % 16] += (double)loss;                                                                  \
                lanes[16 + k % 16] += (double)w;                                                                \
            }                                                                                                   \
        }                                                                                                       \
        return r->len;                                                                                          \
    }                                                                                                           \
    void nllk_nll_bwd_##DT##_##TN##__scalar(const nllk_nll_run *r, const void *target, const T *weight,         \
                                            const T *g, size_t g_stride, T *gx)                                 \
    {                                                                                                           \
        const TT *tg = (const TT *)target;                                                                      \
        for (size_t k = 0; k < r->len; k++) {                                                                   \
            const int64_t c = (int64_t)tg[k];                                                                   \
            if (nllk_nll_is_ignored(c, r->ignore_index))                                                        \
                continue;                                                                                       \
            const T gneg = -g[k * g_stride];                                                                    \
            gx[k * r->k_stride + (size_t)c * r->c_stride] = weight ? weight[c] * gneg : gneg;                   \
        }                                                                                                       \
    }

#define NLLK_DEFINE_NLL_CHECK_SCALAR(TT, TN)                                                                    \
    size_t nllk_nll_check_##TN##__scalar(size_t len, const void *target, size_t c, int64_t ignore_index)        \
    {                                                                                                           \
        const TT *tg = (const TT *)target;                                                                      \
        for (size_t k = 0; k < len; k++) {                                                                      \
            const int64_t v = (int64_t)tg[k];                                                                   \
            if (!nllk_nll_is_ignored(v, ignore_index) && !nllk_nll_in_range(v, c))                              \
                return k;                                                                                       \
        }                                                                                                       \
        return len;                                                                                             \
    }

NLLK_DEFINE_NLL_SCALAR(float, f32, int64_t, i64)
NLLK_DEFINE_NLL_SCALAR(float, f32, int32_t, i32)
NLLK_DEFINE_NLL_SCALAR(float, f32, uint8_t, u8)
NLLK_DEFINE_NLL_SCALAR(double, f64, int64_t, i64)
NLLK_DEFINE_NLL_SCALAR(double, f64, int32_t, i32)
NLLK_DEFINE_NLL_SCALAR(double, f64, uint8_t, u8)
NLLK_DEFINE_NLL_CHECK_SCALAR(int64_t, i64)
NLLK_DEFINE_NLL_CHECK_SCALAR(int32_t, i32)
NLLK_DEFINE_NLL_CHECK_SCALAR(uint8_t, u8)
