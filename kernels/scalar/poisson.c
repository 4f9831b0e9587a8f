/* Poisson NLL kernels, portable scalar code.
 *
 * exp/log come from SLEEF's scalar purecfma functions when the compiler may use FMA (the same bits as SLEEF's
 * vector FMA functions, so scalar equals AVX2/AVX-512/NEON), else from purec (may differ in the last bit). */
#include <sleef.h>

#include "../../dispatch/kernels.h"

#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(__aarch64__)
#  define NLLK_SLEEF1(fn) Sleef_##fn##_u10purecfma
#else
#  define NLLK_SLEEF1(fn) Sleef_##fn##_u10purec
#endif

/* The scalar vector map: one lane. */
static inline float s32_add(float a, float b) { return a + b; }
static inline float s32_sub(float a, float b) { return a - b; }
static inline float s32_mul(float a, float b) { return a * b; }
static inline float s32_div(float a, float b) { return a / b; }
static inline float s32_neg(float a) { return -a; }
static inline float s32_exp(float a) { return NLLK_SLEEF1(expf1)(a); }
static inline float s32_log(float a) { return NLLK_SLEEF1(logf1)(a); }
static inline float s32_set1(double a) { return (float)a; }
static inline int s32_le(float a, float b) { return a <= b; }
static inline int s32_gt(float a, float b) { return a > b; }
static inline float s32_select(int m, float a, float b) { return m ? a : b; }

static inline double s64_add(double a, double b) { return a + b; }
static inline double s64_sub(double a, double b) { return a - b; }
static inline double s64_mul(double a, double b) { return a * b; }
static inline double s64_div(double a, double b) { return a / b; }
static inline double s64_neg(double a) { return -a; }
static inline double s64_exp(double a) { return NLLK_SLEEF1(expd1)(a); }
static inline double s64_log(double a) { return NLLK_SLEEF1(logd1)(a); }
static inline double s64_set1(double a) { return a; }
static inline int s64_le(double a, double b) { return a <= b; }
static inline int s64_gt(double a, double b) { return a > b; }
static inline double s64_select(int m, double a, double b) { return m ? a : b; }

#define NLLK_V float
#define NLLK_OP(name) s32_##name
#define NLLK_FN(name) name##_f32
#include "../common/poisson_formula.h"
#undef NLLK_V
#undef NLLK_OP
#undef NLLK_FN

#define NLLK_V double
#define NLLK_OP(name) s64_##name
#define NLLK_FN(name) name##_f64
#include "../common/poisson_formula.h"
#undef NLLK_V
#undef NLLK_OP
#undef NLLK_FN

/* The loops, once per dtype. The flags are loop-invariant; the compiler unswitches them. */
#define NLLK_DEFINE_POISSON_SCALAR(T, DT)                                                                       \
    void nllk_poisson_fwd_##DT##__scalar(size_t n, const T *x, const T *t, const nllk_poisson_params *p,        \
                                         T *out, double *lanes)                                                 \
    {                                                                                                           \
        const T eps = (T)p->eps;                                                                                \
        for (size_t k = 0; k < n; k++) {                                                                        \
            const T loss = poisson_loss_##DT(x[k], t[k], eps, p->log_input, p->full);                           \
            if (out)                                                                                            \
                out[k] = loss;                                                                                  \
            if (lanes)                                                                                          \
                lanes[k % 16] += (double)loss;                                                                  \
        }                                                                                                       \
    }                                                                                                           \
    void nllk_poisson_bwd_##DT##__scalar(size_t n, const T *x, const T *t, const nllk_poisson_params *p,        \
                                         const T *g, size_t g_stride, T *gx, T *gt)                             \
    {                                                                                                           \
        const T eps = (T)p->eps;                                                                                \
        for (size_t k = 0; k < n; k++) {                                                                        \
            const T gk = g[k * g_stride];                                                                       \
            gx[k] = poisson_grad_input_##DT(x[k], t[k], eps, gk, p->log_input);                                 \
            if (gt)                                                                                             \
                gt[k] = poisson_grad_target_##DT(x[k], t[k], eps, gk, p->log_input, p->full);                   \
        }                                                                                                       \
    }

NLLK_DEFINE_POISSON_SCALAR(float, f32)
NLLK_DEFINE_POISSON_SCALAR(double, f64)
