/* The cross-entropy per-position formulas (nllk.h, "Cross-entropy"), written once: the fold of the 16 class lanes,
 * the log of the exp-sum, and the class-index and probability losses. Scalar elem_t code (IEEE operations, each
 * rounded once; the build has -ffp-contract=off) and the map's v_log, so every build gives the same bits; the
 * vector loops (ce_kernels.h) produce the lanes these finish. */
#ifndef NLLK_KERNELS_COMMON_CE_FORMULA_H
#define NLLK_KERNELS_COMMON_CE_FORMULA_H

#include <math.h>

/* The max step: b replaces a when a <= b (so a NaN b never enters, as v_select(v_le(a, b), b, a)). */
static inline elem_t ce_max(elem_t a, elem_t b) { return a <= b ? b : a; }

/* Folds 16 lanes (s[q] += s[q+8], +4, +2, +1) into s[0]. */
static inline double ce_fold16(double *s)
{
    for (int h = 8; h >= 1; h /= 2)
        for (int q = 0; q < h; q++)
            s[q] += s[q + h];
    return s[0];
}

/* logsum of each of the cnt <= VW exp-sums s: f64 the log of s; f32 log((float)s) plus the rounding's residual,
 * so that the result keeps the double sum's accuracy. One v_log for all of them. */
static inline void ce_logsums(const double *s, size_t cnt, elem_t *logsum)
{
    vec_t hi, lo;
    if (cnt >= VW) { /* straight from s to logsum: no copies lane by lane (a store-to-load stall each way) */
        v_acc_split(v_acc_load(s), &hi, &lo);
        v_store(logsum, v_add(v_log(hi), lo));
        return;
    }
    double v[VW];
    for (size_t p = 0; p < VW; p++)
        v[p] = p < cnt ? s[p] : 1.0;
    v_acc_split(v_acc_load(v), &hi, &lo); /* per lane: hi = (elem_t)v, lo = (v - hi) / hi, or +0 when v == hi */
    elem_t r[VW];
    v_store(r, v_add(v_log(hi), lo));
    for (size_t p = 0; p < cnt; p++)
        logsum[p] = r[p];
}

/* The label-smoothing factors (1 - ls) and ls / c, rounded to the dtype as PyTorch's scalar multiplications. */
typedef struct ce_factors {
    elem_t keep, spread;
    int smooth; /* ls > 0 */
} ce_factors;

static inline ce_factors ce_factors_of(double ls, size_t c)
{
    return (ce_factors){(elem_t)(1.0 - ls), (elem_t)(ls / (double)c), ls > 0};
}

/* nll = -log_softmax_t * w_t with log_softmax_t = (x_t - m) - logsum: VW positions at once. */
static inline vec_t ce_nll(vec_t xt, vec_t m, vec_t logsum, vec_t wt)
{
    return v_mul(v_neg(v_sub(v_sub(xt, m), logsum)), wt);
}

/* Class-index loss of one non-ignored position: nll; with smoothing (1 - ls) * nll + (ls / c) * -(D - logsum * W). */
static inline elem_t ce_index_loss(elem_t xt, elem_t m, elem_t logsum, elem_t wt, double dsum, double wsum,
                                   ce_factors f)
{
    elem_t nll[VW];
    v_store(nll, ce_nll(v_set1((double)xt), v_set1((double)m), v_set1((double)logsum), v_set1((double)wt)));
    if (!f.smooth)
        return nll[0];
    const elem_t smooth = (elem_t) - (dsum - (double)logsum * wsum); /* -(...) as PyTorch's -sum: -0 for c = 1 */
    return f.keep * nll[0] + f.spread * smooth;
}

/* Probability-target loss: -(A - logsum * B) (B = sum q_k w_k, A = sum q_k w_k (x_k - m)). */
static inline elem_t ce_prob_loss(elem_t logsum, double bsum, double asum)
{
    return (elem_t) - (asum - (double)logsum * bsum);
}

/* The backward's S = sum_k G_k: class index -(w_t * gn) - gs * W (only the first term without smoothing). */
static inline elem_t ce_index_gsum(elem_t gt, elem_t gs, double wsum, int smooth)
{
    return smooth ? (elem_t)((double)gt - (double)gs * wsum) : gt;
}

/* The backward's softmax times S: p_k * S = e_k * fac with fac = S / s in double, rounded once to the dtype
 * (e_k = exp(x_k - m) of the exp pass, s their sum): no rounded lse in the exponent. */
static inline elem_t ce_pfac(elem_t sum, double s) { return (elem_t)((double)sum / s); }

#endif
