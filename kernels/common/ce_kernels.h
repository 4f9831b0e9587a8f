/* The cross-entropy kernels (dispatch/kernels.h, nllk_ce_run), included by kernels.c once per (build, dtype).
 *
 * Two layouts. Rows (d == 1, c_stride == 1): one position at a time, vectorised along its classes; the 16 class
 * lanes are accumulators j = 0 .. G-1 of VW lanes (class k in lane k % 16, as the canonical in-block order).
 * Planes (d > 1, k_stride == 1): VW positions at a time, vectorised along positions; class k of every position
 * adds into accumulator k % 16. Both read a row (column) twice, a max pass then an exp pass (nllk.h), and finish
 * each position with the scalar formulas of ce_formula.h, so both layouts and every ISA give the same bits. */
#include "ce_formula.h"

/* Target i of a run widened to int64. */
INLINE int64_t ce_target(const void *tg, size_t i, const nllk_target_type tt)
{
    switch (tt) {
    case NLLK_TARGET_I64: return ((const int64_t *)tg)[i];
    case NLLK_TARGET_I32: return ((const int32_t *)tg)[i];
    default: return ((const uint8_t *)tg)[i];
    }
}

INLINE int ce_bad(int64_t t, const nllk_ce_run *r)
{
    return t != r->ignore_index && !(t >= 0 && (uint64_t)t < (uint64_t)r->c);
}

/* mm >= VW: a whole vector; else the first mm lanes (the rest +0). */
INLINE vec_t ce_ld(const elem_t *p, size_t mm) { return mm >= VW ? v_load(p) : v_load_n(p, mm); }
INLINE void ce_st(elem_t *p, vec_t v, size_t mm)
{
    if (mm >= VW)
        v_store(p, v);
    else
        v_store_n(p, v, mm);
}
INLINE vec_t ce_keep(vec_t v, size_t mm) { return mm >= VW ? v : v_mzero(first_lanes(mm), v); }

/* A probability target after smoothing, times the weight: (q * (1 - ls) + ls / c) * w. */
INLINE vec_t ce_qs(vec_t q, ce_factors f) { return f.smooth ? v_add(v_mul(q, v_set1(f.keep)), v_set1(f.spread)) : q; }

/* The fold (ce_fold16) of G accumulators holding the 16 class lanes. */
INLINE double ce_fold_acc(const vacc_t *a)
{
    double l[16];
    for (int j = 0; j < G; j++)
        v_acc_store(l + j * VW, a[j]);
    return ce_fold16(l);
}

/* What the exp pass sums besides the exp-sum s: */
enum { CE_S = 0, CE_SMOOTH = 1 /* D = sum w (x - m) */, CE_PROB = 2 /* A = sum qw (x - m), B = sum qw */ };

/* ---- rows ----------------------------------------------------------------------------------------------------- */

/* The exact max (order-free, so any vector walk gives the same value): four accumulators, the last partial vector as
 * the row's last whole one (overlapping, max is idempotent), one vector reduced in scalar. */
INLINE vec_t ce_vmax(vec_t a, vec_t b) { return v_select(v_le(a, b), b, a); }
INLINE elem_t ce_row_max(const elem_t *x, size_t c)
{
    vec_t mv[4];
    for (int u = 0; u < 4; u++)
        mv[u] = v_set1(-INFINITY);
    size_t k = 0;
    for (; k + 4 * VW <= c; k += 4 * VW)
        for (int u = 0; u < 4; u++)
            mv[u] = ce_vmax(mv[u], v_load(x + k + (size_t)u * VW));
    for (; k + VW <= c; k += VW)
        mv[0] = ce_vmax(mv[0], v_load(x + k));
    elem_t m = -INFINITY;
    if (k < c) {
        if (c >= VW)
            mv[1] = ce_vmax(mv[1], v_load(x + c - VW));
        else
            for (; k < c; k++)
                m = ce_max(m, x[k]);
    }
    elem_t buf[VW];
    v_store(buf, ce_vmax(ce_vmax(mv[0], mv[1]), ce_vmax(mv[2], mv[3])));
    for (size_t i = 0; i < VW; i++)
        m = ce_max(m, buf[i]);
    return m + (elem_t)0; /* -0 reads as +0 */
}

/* res[0] = s, res[1] = D (CE_SMOOTH) or A (CE_PROB), res[2] = B (CE_PROB).
 * The exps of a chunk of CE_CHUNK classes go to a stack buffer first, then into the lanes (as the Poisson kernels
 * do): exp is a call that clobbers every vector register, so adding across it would spill the lanes each time.
 * Chunks start at multiples of 16 and pad with +0.0 (bit-neutral), so every class still lands in lane k % 16 in
 * increasing k. */
#define CE_CHUNK 512
INLINE void ce_row_sums(const elem_t *x, const elem_t *q, const elem_t *w, size_t c, elem_t m, ce_factors f,
                        const int mode, const elem_t *next, double *res)
{
    elem_t buf[CE_CHUNK];
    vacc_t s[G], a[G], b[G];
    for (int j = 0; j < G; j++)
        s[j] = a[j] = b[j] = v_acc_zero();
    const vec_t mv = v_set1((double)m);
    for (size_t k0 = 0; k0 < c; k0 += CE_CHUNK) {
        const size_t len = c - k0 < CE_CHUNK ? c - k0 : CE_CHUNK, padded = (len + 15) / 16 * 16;
        const elem_t *xs = x + k0;
        size_t o = 0;
        for (; o + VW <= len; o += VW) {
            if (next) /* the next row, while this one computes: its max pass then finds it in cache */
                __builtin_prefetch(next + k0 + o);
            v_store(buf + o, v_exp(v_sub(v_load(xs + o), mv)));
        }
        if (o < len) {
            v_store(buf + o, ce_keep(v_exp(v_sub(v_load_n(xs + o, len - o), mv)), len - o));
            o += VW;
        }
        for (; o < padded; o += VW)
            v_store(buf + o, v_set1(0.0));
        for (size_t g = 0; g < padded; g += 16)
            for (int j = 0; j < G; j++)
                s[j] = v_acc_add(s[j], v_load(buf + g + (size_t)j * VW));
        if (mode == CE_S)
            continue;
        for (size_t g = 0; g < len; g += 16)
            for (int j = 0; j < G; j++) {
                const size_t oo = g + (size_t)j * VW;
                if (oo >= len)
                    break;
                const size_t mm = len - oo;
                const vec_t dv = v_sub(ce_ld(xs + oo, mm), mv);
                if (mode == CE_SMOOTH)
                    a[j] = v_acc_add(a[j], ce_keep(w ? v_mul(ce_ld(w + k0 + oo, mm), dv) : dv, mm));
                if (mode == CE_PROB) {
                    const vec_t qs = ce_qs(ce_ld(q + k0 + oo, mm), f);
                    const vec_t qw = w ? v_mul(qs, ce_ld(w + k0 + oo, mm)) : qs;
                    b[j] = v_acc_add(b[j], ce_keep(qw, mm));
                    a[j] = v_acc_add(a[j], ce_keep(v_mul(qw, dv), mm));
                }
            }
    }
    res[0] = ce_fold_acc(s);
    if (mode != CE_S)
        res[1] = ce_fold_acc(a);
    if (mode == CE_PROB)
        res[2] = ce_fold_acc(b);
}

/* B alone (the backward of probability targets when lse is given): the lanes of ce_row_sums' B. */
INLINE double ce_row_bsum(const elem_t *q, const elem_t *w, size_t c, ce_factors f)
{
    vacc_t b[G];
    for (int j = 0; j < G; j++)
        b[j] = v_acc_zero();
    for (size_t k = 0; k < c; k += 16)
        for (int j = 0; j < G; j++) {
            const size_t o = k + (size_t)j * VW;
            if (o >= c)
                break;
            const size_t mm = c - o;
            const vec_t qs = ce_qs(ce_ld(q + o, mm), f);
            b[j] = v_acc_add(b[j], ce_keep(w ? v_mul(qs, ce_ld(w + o, mm)) : qs, mm));
        }
    return ce_fold_acc(b);
}

/* One row's max, sums and logsum. */
INLINE void ce_row_stats(const elem_t *x, const elem_t *q, const elem_t *w, size_t c, ce_factors f, const int mode,
                         const elem_t *next, elem_t *m, elem_t *logsum, double *res)
{
    *m = ce_row_max(x, c);
    ce_row_sums(x, q, w, c, *m, f, mode, next, res);
    ce_logsums(res, 1, logsum);
}

INLINE size_t ce_fwd_rows(const nllk_ce_run *r, const elem_t *x, const void *tg, const elem_t *w, elem_t *out,
                          elem_t *lse, double *lanes, const nllk_target_type tt)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t k = 0; k < r->len; k++) {
        const int64_t t = ce_target(tg, k, tt);
        if (ce_bad(t, r))
            return k;
        const int ign = t == r->ignore_index;
        const elem_t *row = x + k * r->k_stride, *next = k + 1 < r->len && VW > 1 ? row + r->k_stride : NULL;
        elem_t loss = 0, wt = 0;
        if (!ign || lse) {
            elem_t m, logsum;
            double res[3] = {0, 0, 0};
            if (f.smooth && !ign)
                ce_row_stats(row, NULL, w, c, f, CE_SMOOTH, next, &m, &logsum, res);
            else
                ce_row_stats(row, NULL, w, c, f, CE_S, next, &m, &logsum, res);
            if (lse)
                lse[k] = m + logsum;
            if (!ign) {
                wt = w ? w[t] : (elem_t)1;
                loss = ce_index_loss(row[t], m, logsum, wt, res[1], r->wsum, f);
            }
        }
        if (out)
            out[k] = loss;
        if (lanes) {
            lanes[k % 16] += (double)loss;
            lanes[16 + k % 16] += (double)wt;
        }
    }
    return r->len;
}

INLINE void ce_bwd_rows(const nllk_ce_run *r, const elem_t *x, const void *tg, const elem_t *w, const elem_t *lse,
                        const elem_t *g, size_t g_stride, elem_t *gx, const nllk_target_type tt)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t k = 0; k < r->len; k++) {
        const int64_t t = ce_target(tg, k, tt);
        const int ign = t == r->ignore_index;
        const elem_t *row = x + k * r->k_stride;
        elem_t *grow = gx + k * r->k_stride;
        elem_t l;
        if (lse) {
            l = lse[k];
        } else {
            elem_t m, logsum;
            double res[3] = {0, 0, 0};
            ce_row_stats(row, NULL, w, c, f, CE_S, NULL, &m, &logsum, res);
            l = m + logsum;
        }
        const elem_t gk = g[k * g_stride];
        elem_t gt = 0, gs = 0, sum = 0;
        if (!ign) {
            const elem_t wt = w ? w[t] : (elem_t)1;
            gt = -(wt * (f.smooth ? f.keep * gk : gk));
            gs = f.smooth ? f.spread * gk : (elem_t)0;
            sum = ce_index_gsum(gt, gs, r->wsum, f.smooth);
        }
        const int sm = f.smooth && !ign;
        const vec_t lv = v_set1((double)l), sv = v_set1((double)sum), gsv = v_set1((double)gs);
        const elem_t *next = k + 1 < r->len && VW > 1 ? row + r->k_stride : NULL;
        for (size_t o = 0; o < c; o += VW) {
            const size_t mm = c - o;
            if (next)
                __builtin_prefetch(next + o);
            const vec_t p = v_exp(v_sub(ce_ld(row + o, mm), lv));
            vec_t gv = !ign && t >= (int64_t)o && t < (int64_t)(o + VW) ? v_mzero(1u << (t - (int64_t)o), v_set1(gt))
                                                                        : v_set1(0.0);
            if (sm)
                gv = v_sub(gv, v_mul(w ? ce_ld(w + o, mm) : v_set1(1.0), gsv));
            ce_st(grow + o, v_sub(gv, v_mul(p, sv)), mm);
        }
    }
}

INLINE void ce_prob_fwd_rows(const nllk_ce_run *r, const elem_t *x, const elem_t *q, const elem_t *w, elem_t *out,
                             elem_t *lse, double *lanes)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t k = 0; k < r->len; k++) {
        elem_t m, logsum;
        double res[3] = {0, 0, 0};
        ce_row_stats(x + k * r->k_stride, q + k * r->k_stride, w, c, f, CE_PROB, NULL, &m, &logsum, res);
        const elem_t loss = ce_prob_loss(logsum, res[2], res[1]);
        if (lse)
            lse[k] = m + logsum;
        if (out)
            out[k] = loss;
        if (lanes) {
            lanes[k % 16] += (double)loss;
            lanes[16 + k % 16] += 1.0;
        }
    }
}

/* The probability backward's per-class values: grad_input = G - p*S with G = ((-g) * q') * w, and
 * grad_target = ((-(g * w)) * (x - lse)) * (1 - ls). */
INLINE void ce_prob_grads(vec_t xv, vec_t qv, vec_t wv, vec_t lv, vec_t gv, vec_t sv, ce_factors f, vec_t *gx,
                          vec_t *gq)
{
    const vec_t dv = v_sub(xv, lv);
    *gx = v_sub(v_mul(v_mul(v_neg(gv), ce_qs(qv, f)), wv), v_mul(v_exp(dv), sv));
    const vec_t t = v_mul(v_neg(v_mul(gv, wv)), dv);
    *gq = f.smooth ? v_mul(t, v_set1(f.keep)) : t;
}

INLINE void ce_prob_bwd_rows(const nllk_ce_run *r, const elem_t *x, const elem_t *q, const elem_t *w, const elem_t *lse,
                             const elem_t *g, size_t g_stride, elem_t *gx, elem_t *gq)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t k = 0; k < r->len; k++) {
        const elem_t *row = x + k * r->k_stride, *qrow = q + k * r->k_stride;
        elem_t l;
        double bsum;
        if (lse) {
            l = lse[k];
            bsum = ce_row_bsum(qrow, w, c, f);
        } else {
            elem_t m, logsum;
            double res[3] = {0, 0, 0};
            ce_row_stats(row, qrow, w, c, f, CE_PROB, NULL, &m, &logsum, res);
            l = m + logsum;
            bsum = res[2];
        }
        const elem_t gk = g[k * g_stride];
        const vec_t lv = v_set1((double)l), gv = v_set1((double)gk), sv = v_set1((double)(elem_t)(-(double)gk * bsum));
        for (size_t o = 0; o < c; o += VW) {
            const size_t mm = c - o;
            vec_t a, b;
            ce_prob_grads(ce_ld(row + o, mm), ce_ld(qrow + o, mm), w ? ce_ld(w + o, mm) : v_set1(1.0), lv, gv, sv, f,
                          &a, &b);
            ce_st(gx + k * r->k_stride + o, a, mm);
            if (gq)
                ce_st(gq + k * r->k_stride + o, b, mm);
        }
    }
}

/* ---- planes: VW positions at a time, classes at stride cs ------------------------------------------------------ */

/* How far ahead (elements) the plane kernels prefetch each class's stream; may point past the array (a prefetch is
 * never dereferenced). */
#define CE_PLANE_PF (512 / sizeof(elem_t))
#define CE_PLANE_CHUNK 64 /* classes whose exps are buffered at once (a multiple of 16) */

typedef struct ce_plane {
    elem_t m[VW], logsum[VW];
    double res[3][VW];
} ce_plane;

INLINE void ce_plane_stats(const elem_t *x, const elem_t *q, const elem_t *w, size_t c, size_t cs, size_t mm,
                           ce_factors f, const int mode, ce_plane *st)
{
    vec_t mv = v_set1(-INFINITY);
    for (size_t k = 0; k < c; k++) {
        if (VW > 1) /* c strided streams outrun the hardware prefetcher: fetch each a few groups ahead */
            __builtin_prefetch(x + k * cs + CE_PLANE_PF);
        mv = ce_vmax(mv, ce_ld(x + k * cs, mm));
    }
    mv = v_add(mv, v_set1(0.0)); /* -0 reads as +0 */
    vacc_t s[16], a[16], b[16];
    for (int j = 0; j < 16; j++)
        s[j] = v_acc_zero();
    if (mode != CE_S)
        for (int j = 0; j < 16; j++)
            a[j] = b[j] = v_acc_zero();
    /* the exps of CE_PLANE_CHUNK classes first (back-to-back calls), then each lane's classes in increasing k: the
     * same order as adding each exp as it comes, without keeping the 16 lanes in memory across the calls */
    elem_t eb[CE_PLANE_CHUNK][VW];
    for (size_t k0 = 0; k0 < c; k0 += CE_PLANE_CHUNK) {
        const size_t len = c - k0 < CE_PLANE_CHUNK ? c - k0 : CE_PLANE_CHUNK;
        for (size_t k = 0; k < len; k++)
            v_store(eb[k], v_exp(v_sub(ce_ld(x + (k0 + k) * cs, mm), mv)));
        for (size_t lane = 0; lane < 16 && lane < len; lane++) {
            vacc_t acc = s[lane];
            for (size_t k = lane; k < len; k += 16)
                acc = v_acc_add(acc, v_load(eb[k]));
            s[lane] = acc;
        }
    }
    for (size_t k = 0; k < c && mode != CE_S; k++) {
        const vec_t dv = v_sub(ce_ld(x + k * cs, mm), mv);
        if (mode == CE_SMOOTH)
            a[k % 16] = v_acc_add(a[k % 16], w ? v_mul(v_set1((double)w[k]), dv) : dv);
        if (mode == CE_PROB) {
            const vec_t qs = ce_qs(ce_ld(q + k * cs, mm), f);
            const vec_t qw = w ? v_mul(qs, v_set1((double)w[k])) : qs;
            b[k % 16] = v_acc_add(b[k % 16], qw);
            a[k % 16] = v_acc_add(a[k % 16], v_mul(qw, dv));
        }
    }
    v_store(st->m, mv);
    double l[16][VW];
    for (int j = 0; j < 16; j++)
        v_acc_store(l[j], s[j]);
    ce_fold16_vw(l, st->res[0]);
    if (mode != CE_S) {
        for (int j = 0; j < 16; j++)
            v_acc_store(l[j], a[j]);
        ce_fold16_vw(l, st->res[1]);
    }
    if (mode == CE_PROB) {
        for (int j = 0; j < 16; j++)
            v_acc_store(l[j], b[j]);
        ce_fold16_vw(l, st->res[2]);
    }
    ce_logsums(st->res[0], mm < VW ? mm : VW, st->logsum);
}

INLINE size_t ce_fwd_planes(const nllk_ce_run *r, const elem_t *x, const void *tg, const elem_t *w, elem_t *out,
                            elem_t *lse, double *lanes, const nllk_target_type tt)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    /* without smoothing the finish is vectorised too: the NLL gather and the canonical lanes of 16 positions */
    vacc_t acc[G], accw[G];
    for (int j = 0; j < G; j++) {
        acc[j] = lanes && !f.smooth ? v_acc_load(lanes + j * VW) : v_acc_zero();
        accw[j] = lanes && !f.smooth ? v_acc_load(lanes + 16 + j * VW) : v_acc_zero();
    }
    const vidx_t kofs = v_kofs(1);
    for (size_t o = 0; o < r->len; o += VW) {
        const size_t mm = r->len - o, cnt = mm < VW ? mm : VW;
        int64_t tb[VW];
        for (size_t p = 0; p < VW; p++)
            tb[p] = p < cnt ? ce_target(tg, o + p, tt) : r->ignore_index;
        for (size_t p = 0; p < cnt; p++)
            if (ce_bad(tb[p], r))
                return o + p;
        ce_plane st;
        if (f.smooth) {
            ce_plane_stats(x + o, NULL, w, c, cs, mm, f, CE_SMOOTH, &st);
        } else {
            ce_plane_stats(x + o, NULL, w, c, cs, mm, f, CE_S, &st);
            const vidx_t tv = v_tload_i64(tb);
            const unsigned valid = v_tvalid(tv, r->ignore_index);
            const vec_t mv = v_load(st.m), lg = v_load(st.logsum);
            const vec_t wt = w ? v_gather(w, tv, valid) : v_mzero(valid, v_set1(1.0));
            const vec_t loss = v_mzero(valid, ce_nll(v_gather(x + o, v_toff(tv, kofs, cs), valid), mv, lg, wt));
            if (lse)
                ce_st(lse + o, v_add(mv, lg), mm);
            if (out)
                ce_st(out + o, loss, mm);
            const int j = (int)((o / VW) % G);
            acc[j] = v_acc_add(acc[j], loss);
            accw[j] = v_acc_add(accw[j], wt);
            continue;
        }
        for (size_t p = 0; p < cnt; p++) {
            const size_t k = o + p;
            const int64_t t = ce_target(tg, k, tt);
            elem_t loss = 0, wt = 0;
            if (t != r->ignore_index) {
                wt = w ? w[t] : (elem_t)1;
                loss = ce_index_loss(x[(size_t)t * cs + k], st.m[p], st.logsum[p], wt, st.res[1][p], r->wsum, f);
            }
            if (lse)
                lse[k] = st.m[p] + st.logsum[p];
            if (out)
                out[k] = loss;
            if (lanes) {
                lanes[k % 16] += (double)loss;
                lanes[16 + k % 16] += (double)wt;
            }
        }
    }
    if (lanes && !f.smooth)
        for (int j = 0; j < G; j++) {
            v_acc_store(lanes + j * VW, acc[j]);
            v_acc_store(lanes + 16 + j * VW, accw[j]);
        }
    return r->len;
}

/* The lse of VW positions: the forward's, or recomputed with the same bits. */
INLINE vec_t ce_plane_lse(const elem_t *x, const elem_t *q, const elem_t *w, const elem_t *lse, size_t c, size_t cs,
                          size_t mm, ce_factors f, const int mode, ce_plane *st)
{
    if (lse && mode != CE_PROB)
        return ce_ld(lse, mm);
    ce_plane_stats(x, q, w, c, cs, mm, f, mode, st);
    elem_t l[VW];
    for (size_t p = 0; p < VW; p++)
        l[p] = st->m[p] + st->logsum[p];
    return lse ? ce_ld(lse, mm) : v_load(l);
}

INLINE void ce_bwd_planes(const nllk_ce_run *r, const elem_t *x, const void *tg, const elem_t *w, const elem_t *lse,
                          const elem_t *g, size_t g_stride, elem_t *gx, const nllk_target_type tt)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t o = 0; o < r->len; o += VW) {
        const size_t mm = r->len - o, cnt = mm < VW ? mm : VW;
        ce_plane st;
        const vec_t lv = ce_plane_lse(x + o, NULL, w, lse ? lse + o : NULL, c, cs, mm, f, CE_S, &st);
        elem_t gt[VW], gs[VW], sum[VW];
        int64_t tb[VW];
        for (size_t p = 0; p < VW; p++) {
            gt[p] = gs[p] = sum[p] = 0;
            tb[p] = -1;
            if (p >= cnt)
                continue;
            const int64_t t = ce_target(tg, o + p, tt);
            if (t == r->ignore_index)
                continue;
            const elem_t gk = g[(o + p) * g_stride], wt = w ? w[t] : (elem_t)1;
            tb[p] = t;
            gt[p] = -(wt * (f.smooth ? f.keep * gk : gk));
            gs[p] = f.smooth ? f.spread * gk : (elem_t)0;
            sum[p] = ce_index_gsum(gt[p], gs[p], r->wsum, f.smooth);
        }
        const vidx_t tv = v_tload_i64(tb);
        const vec_t gtv = v_load(gt), gsv = v_load(gs), sv = v_load(sum);
        const unsigned all = (1u << VW) - 1u;
        for (size_t k = 0; k < c; k++) {
            if (VW > 1 && lse) /* without lse the stats pass just read these lines */
                __builtin_prefetch(x + k * cs + o + CE_PLANE_PF);
            const vec_t p = v_exp(v_sub(ce_ld(x + k * cs + o, mm), lv));
            vec_t gv = v_mzero(~v_tvalid(tv, (int64_t)k) & all, gtv);
            if (f.smooth)
                gv = v_sub(gv, v_mul(v_set1(w ? (double)w[k] : 1.0), gsv));
            ce_st(gx + k * cs + o, v_sub(gv, v_mul(p, sv)), mm);
        }
    }
}

INLINE void ce_prob_fwd_planes(const nllk_ce_run *r, const elem_t *x, const elem_t *q, const elem_t *w, elem_t *out,
                               elem_t *lse, double *lanes)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t o = 0; o < r->len; o += VW) {
        const size_t mm = r->len - o, cnt = mm < VW ? mm : VW;
        ce_plane st;
        ce_plane_stats(x + o, q + o, w, c, cs, mm, f, CE_PROB, &st);
        for (size_t p = 0; p < cnt; p++) {
            const size_t k = o + p;
            const elem_t loss = ce_prob_loss(st.logsum[p], st.res[2][p], st.res[1][p]);
            if (lse)
                lse[k] = st.m[p] + st.logsum[p];
            if (out)
                out[k] = loss;
            if (lanes) {
                lanes[k % 16] += (double)loss;
                lanes[16 + k % 16] += 1.0;
            }
        }
    }
}

INLINE void ce_prob_bwd_planes(const nllk_ce_run *r, const elem_t *x, const elem_t *q, const elem_t *w,
                               const elem_t *lse, const elem_t *g, size_t g_stride, elem_t *gx, elem_t *gq)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t o = 0; o < r->len; o += VW) {
        const size_t mm = r->len - o, cnt = mm < VW ? mm : VW;
        ce_plane st;
        /* B is needed either way: the full stats pass gives it (and the lse when none is given) */
        const vec_t lv = ce_plane_lse(x + o, q + o, w, lse ? lse + o : NULL, c, cs, mm, f, CE_PROB, &st);
        elem_t gk[VW], sum[VW];
        for (size_t p = 0; p < VW; p++) {
            gk[p] = p < cnt ? g[(o + p) * g_stride] : (elem_t)0;
            sum[p] = (elem_t)(-(double)gk[p] * st.res[2][p]);
        }
        const vec_t gv = v_load(gk), sv = v_load(sum);
        for (size_t k = 0; k < c; k++) {
            vec_t a, b;
            ce_prob_grads(ce_ld(x + k * cs + o, mm), ce_ld(q + k * cs + o, mm), v_set1(w ? (double)w[k] : 1.0), lv, gv,
                          sv, f, &a, &b);
            ce_st(gx + k * cs + o, a, mm);
            if (gq)
                ce_st(gq + k * cs + o, b, mm);
        }
    }
}

/* ---- the entries ---------------------------------------------------------------------------------------------- */

INLINE size_t ce_fwd_body(const nllk_ce_run *r, const void *x, const void *tg, const void *w, void *out, void *lse,
                          double *lanes, const nllk_target_type tt)
{
    return r->c_stride == 1 ? ce_fwd_rows(r, x, tg, w, out, lse, lanes, tt)
                            : ce_fwd_planes(r, x, tg, w, out, lse, lanes, tt);
}
INLINE void ce_bwd_body(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *lse,
                        const void *g, size_t gs, void *gx, const nllk_target_type tt)
{
    if (r->c_stride == 1)
        ce_bwd_rows(r, x, tg, w, lse, g, gs, gx, tt);
    else
        ce_bwd_planes(r, x, tg, w, lse, g, gs, gx, tt);
}

size_t KERNEL(ce_fwd_i64)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, void *out, void *lse,
                          double *lanes)
{
    return ce_fwd_body(r, x, tg, w, out, lse, lanes, NLLK_TARGET_I64);
}
size_t KERNEL(ce_fwd_i32)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, void *out, void *lse,
                          double *lanes)
{
    return ce_fwd_body(r, x, tg, w, out, lse, lanes, NLLK_TARGET_I32);
}
size_t KERNEL(ce_fwd_u8)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, void *out, void *lse,
                         double *lanes)
{
    return ce_fwd_body(r, x, tg, w, out, lse, lanes, NLLK_TARGET_U8);
}
void KERNEL(ce_bwd_i64)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *lse,
                        const void *g, size_t gs, void *gx)
{
    ce_bwd_body(r, x, tg, w, lse, g, gs, gx, NLLK_TARGET_I64);
}
void KERNEL(ce_bwd_i32)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *lse,
                        const void *g, size_t gs, void *gx)
{
    ce_bwd_body(r, x, tg, w, lse, g, gs, gx, NLLK_TARGET_I32);
}
void KERNEL(ce_bwd_u8)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *lse,
                       const void *g, size_t gs, void *gx)
{
    ce_bwd_body(r, x, tg, w, lse, g, gs, gx, NLLK_TARGET_U8);
}
void KERNEL(ce_prob_fwd)(const nllk_ce_run *r, const void *x, const void *q, const void *w, void *out, void *lse,
                         double *lanes)
{
    if (r->c_stride == 1)
        ce_prob_fwd_rows(r, x, q, w, out, lse, lanes);
    else
        ce_prob_fwd_planes(r, x, q, w, out, lse, lanes);
}
void KERNEL(ce_prob_bwd)(const nllk_ce_run *r, const void *x, const void *q, const void *w, const void *lse,
                         const void *g, size_t gs, void *gx, void *gq)
{
    if (r->c_stride == 1)
        ce_prob_bwd_rows(r, x, q, w, lse, g, gs, gx, gq);
    else
        ce_prob_bwd_planes(r, x, q, w, lse, g, gs, gx, gq);
}
