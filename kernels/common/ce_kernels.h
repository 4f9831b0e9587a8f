/* The cross-entropy kernels (dispatch/kernels.h, nllk_ce_run), included by kernels.c once per (build, dtype).
 *
 * Two layouts. Rows (d == 1, c_stride == 1): one position at a time, vectorised along its classes; the 16 class
 * lanes are accumulators j = 0 .. G-1 of VW lanes (class k in lane k % 16, as the canonical in-block order).
 * Planes (d > 1, k_stride == 1): VW positions at a time, vectorised along positions; class k of every position
 * adds into accumulator k % 16. Both read a row (column) twice, a max pass then an exp pass (nllk.h), and finish
 * each position with the scalar formulas of ce_formula.h, so both layouts and every ISA give the same bits.
 * Storage-generic (kernels/common/storage.h): the caller's arrays are stor_t, read and written through the s_*
 * operations (16-bit storage: converted exactly to float on load, rounded once on store); scratch buffers of computed
 * values (exps) are elem_t. So a 16-bit result is the f32 kernel's on the converted inputs, rounded once. */
#include "ce_formula.h"

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
/* The same on the caller's arrays (stor_t). */
INLINE vec_t ce_sld(const stor_t *p, size_t mm) { return mm >= VW ? s_load(p) : s_load_n(p, mm); }
INLINE void ce_sst(stor_t *p, vec_t v, size_t mm)
{
    if (mm >= VW)
        s_store(p, v);
    else
        s_store_n(p, v, mm);
}
INLINE vec_t ce_keep(vec_t v, size_t mm) { return mm >= VW ? v : v_mzero(first_lanes(mm), v); }
/* half < 0: ce_sld (element order); half 0 or 1 (S_PAIRS): the even or odd elements of the 2*VW at p (s_load_pair) */
INLINE vec_t ce_pld(const stor_t *p, size_t mm, const int half)
{
#if S_PAIRS
    if (half >= 0) {
        vec_t a, b;
        s_load_pair(p, &a, &b);
        return half ? b : a;
    }
#endif
    (void)half;
    return ce_sld(p, mm);
}

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

/* The exact max (order-free, so any vector walk gives the same value): four accumulators of v_max_num (a NaN logit
 * never enters; one vmaxps on x86), 2*VW elements each per step (16-bit storage: v_h_max2, which widens them in any
 * lane order), the last partial vector as the row's last whole one (overlapping, max is idempotent), one vector
 * reduced in scalar. Ties of -0 and +0 may keep either zero: the sign is fixed at the end (-0 reads as +0). */
INLINE vec_t ce_row_max2(vec_t m, const stor_t *p)
{
#if defined(NLLK_STORAGE_16)
    return v_h_max2(m, p);
#else
    return v_max_num(v_max_num(m, s_load(p)), s_load(p + VW));
#endif
}
INLINE elem_t ce_row_max(const stor_t *x, size_t c)
{
    vec_t mv[4];
    for (int u = 0; u < 4; u++)
        mv[u] = v_set1(-INFINITY);
    size_t k = 0;
    for (; k + 8 * VW <= c; k += 8 * VW)
        for (int u = 0; u < 4; u++)
            mv[u] = ce_row_max2(mv[u], x + k + (size_t)u * 2 * VW);
    for (; k + VW <= c; k += VW)
        mv[0] = v_max_num(mv[0], s_load(x + k));
    elem_t m = -INFINITY;
    if (k < c) {
        if (c >= VW)
            mv[1] = v_max_num(mv[1], s_load(x + c - VW));
        else
            for (; k < c; k++)
                m = ce_max(m, (elem_t)s_get(x + k));
    }
    elem_t buf[VW];
    v_store(buf, v_max_num(v_max_num(mv[0], mv[1]), v_max_num(mv[2], mv[3])));
    for (size_t i = 0; i < VW; i++)
        m = ce_max(m, buf[i]);
    return m + (elem_t)0; /* -0 reads as +0 */
}

/* One vector of the exp pass at class o (mm classes left; full: mm >= VW): e = exp(x - m) into s (and to e_out when
 * set), and the mode's other lanes. */
INLINE void ce_row_step(const stor_t *x, const stor_t *q, const stor_t *w, size_t o, size_t mm, vec_t mv, ce_factors f,
                        const int mode, const int full, elem_t *e_out, vacc_t *s, vacc_t *a, vacc_t *b)
{
    const vec_t dv = v_sub(full ? s_load(x + o) : ce_sld(x + o, mm), mv);
    const vec_t ev = full ? v_exp_ce_le0(dv) : ce_keep(v_exp_ce_le0(dv), mm); /* dv <= 0 or NaN */
    if (e_out)
        ce_st(e_out + o, ev, full ? VW : mm);
    *s = v_acc_add(*s, ev);
    if (mode == CE_SMOOTH)
        *a = v_acc_add(*a,
                       full ? (w ? v_mul(s_load(w + o), dv) : dv) : ce_keep(w ? v_mul(ce_sld(w + o, mm), dv) : dv, mm));
    if (mode == CE_PROB) {
        const vec_t qs = ce_qs(full ? s_load(q + o) : ce_sld(q + o, mm), f);
        const vec_t qw = w ? v_mul(qs, full ? s_load(w + o) : ce_sld(w + o, mm)) : qs;
        *b = v_acc_add(*b, full ? qw : ce_keep(qw, mm));
        *a = v_acc_add(*a, full ? v_mul(qw, dv) : ce_keep(v_mul(qw, dv), mm));
    }
}

/* The exp pass of a row (its max pass just brought it to cache): res[0] = s, res[1] = D (CE_SMOOTH) or A (CE_PROB),
 * res[2] = B (CE_PROB), each in the class-lane order (class k in lane k % 16, in increasing k; the tail's padding
 * lanes add +0.0, bit-neutral). e_out, when set, receives the c exps (the backward's). v_exp_ce is inline, so the
 * lanes stay in registers across it. next: the next row, prefetched a line per 16 classes while this one
 * computes, so that its max pass finds it in cache. pw (with e_out; else NULL): the row's gradient, prefetched for
 * writing the same way, so that its read for ownership overlaps the exps (ce_bwd_rows). */
INLINE void ce_row_sums(const stor_t *x, const stor_t *q, const stor_t *w, size_t c, elem_t m, ce_factors f,
                        const int mode, const stor_t *next, elem_t *e_out, stor_t *pw, double *res)
{
    vacc_t s[G], a[G], b[G];
    for (int j = 0; j < G; j++)
        s[j] = a[j] = b[j] = v_acc_zero();
    const vec_t mv = v_set1((double)m);
    size_t k = 0;
#if defined(NLLK_HAVE_H_EXP_SUM32)
    _Static_assert(G == 1, "v_h_exp_sum32: one accumulator of 16 lanes");
    if (mode == CE_S && !e_out) { /* the exp-sum alone, 32 classes a step (one widening op per 16; vec_ops.h) */
        vacc_t h = v_h32_swap(s[0]);
        for (; k + 32 <= c; k += 32) {
            if (next)
                __builtin_prefetch(next + k);
            h = v_h_exp_sum32(h, x + k, mv);
        }
        s[0] = v_h32_swap(h);
    }
#endif
    for (; k + 16 <= c; k += 16) {
        if (pw)
            __builtin_prefetch(pw + k, 1);
        if (next) {
            __builtin_prefetch(next + k);
            if (sizeof(stor_t) == 8)
                __builtin_prefetch(next + k + 8);
        }
        for (int j = 0; j < G; j++)
            ce_row_step(x, q, w, k + (size_t)j * VW, VW, mv, f, mode, 1, e_out, &s[j], &a[j], &b[j]);
    }
    for (int j = 0; j < G && k + (size_t)j * VW < c; j++) {
        const size_t o = k + (size_t)j * VW;
        ce_row_step(x, q, w, o, c - o, mv, f, mode, 0, e_out, &s[j], &a[j], &b[j]);
    }
    res[0] = ce_fold_acc(s);
    if (mode != CE_S)
        res[1] = ce_fold_acc(a);
    if (mode == CE_PROB)
        res[2] = ce_fold_acc(b);
}

/* One row's max, sums and logsum (e_out as ce_row_sums). */
INLINE void ce_row_stats(const stor_t *x, const stor_t *q, const stor_t *w, size_t c, ce_factors f, const int mode,
                         const stor_t *next, elem_t *e_out, elem_t *m, elem_t *logsum, double *res)
{
    *m = ce_row_max(x, c);
    ce_row_sums(x, q, w, c, *m, f, mode, next, e_out, NULL, res);
    ce_logsums(res, 1, logsum);
}

/* VW rows at a time: each row's max and exp pass, then one ce_logsums for all of them (one vector log instead of one
 * per row; the same bits per row), then the losses in row order. */
INLINE size_t ce_fwd_rows(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, stor_t *out,
                          stor_t *lse, double *lanes, const nllk_target_type tt)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t k0 = 0; k0 < r->len; k0 += VW) {
        const size_t cnt = r->len - k0 < VW ? r->len - k0 : VW;
        int64_t tb[VW];
        size_t good = cnt; /* rows before the first bad target */
        for (size_t p = 0; p < cnt; p++) {
            tb[p] = target_at(tg, k0 + p, tt);
            if (ce_bad(tb[p], r)) {
                good = p;
                break;
            }
        }
        elem_t m[VW], logsum[VW];
        double s[VW], dsum[VW];
        for (size_t p = 0; p < good; p++) {
            const size_t k = k0 + p;
            const int ign = tb[p] == r->ignore_index;
            const stor_t *row = x + k * r->k_stride, *next = k + 1 < r->len && VW > 1 ? row + r->k_stride : NULL;
            double res[3] = {1.0, 0, 0}; /* an ignored row without lse: nothing to compute */
            m[p] = 0;
            if (!ign || lse) {
                m[p] = ce_row_max(row, c);
                if (f.smooth && !ign)
                    ce_row_sums(row, NULL, w, c, m[p], f, CE_SMOOTH, next, NULL, NULL, res);
                else
                    ce_row_sums(row, NULL, w, c, m[p], f, CE_S, next, NULL, NULL, res);
            }
            s[p] = res[0];
            dsum[p] = res[1];
        }
        ce_logsums(s, good, logsum);
        for (size_t p = 0; p < good; p++) {
            const size_t k = k0 + p;
            const int64_t t = tb[p];
            elem_t loss = 0, wt = 0;
            if (lse)
                s_set(lse + k, m[p] + logsum[p]);
            if (t != r->ignore_index) {
                wt = w ? (elem_t)s_get(w + t) : (elem_t)1;
                loss = ce_index_loss((elem_t)s_get(x + k * r->k_stride + (size_t)t), m[p], logsum[p], wt, dsum[p],
                                     r->wsum, f);
            }
            if (out)
                s_set(out + k, loss);
            if (lanes) {
                lanes[k % 16] += (double)loss;
                lanes[16 + k % 16] += (double)wt;
            }
        }
        if (good < cnt)
            return k0 + good;
    }
    return r->len;
}

/* The backward keeps a row's exps here up to this many classes (else in the row's gradient, rewritten in place). With
 * 16-bit storage, whose gradient cannot hold them, a larger buffer (128 KiB: vocabularies up to 32768 classes), and
 * beyond it the exps computed again, CE_EBUF at a time, by ce_row_exps. */
#define CE_EBUF (S_SAME ? 4096 : 32768)
/* From this many classes, a 16-bit row's backward prefetches its gradient for writing (ce_bwd_rows). */
#define CE_PREFETCH_W 8192

/* e[i] = exp(x[i] - m), i < n: the exp pass's values (ce_row_step), the same bits. */
INLINE void ce_row_exps(const stor_t *x, size_t n, vec_t mv, elem_t *e)
{
    for (size_t o = 0; o < n; o += VW)
        ce_st(e + o, v_exp_ce_le0(v_sub(ce_sld(x + o, n - o), mv)), n - o);
}

/* The backward's per-position factors of g_k (nllk.h): gt = -(w_t * gn), gs = (ls / c) * g_k and the returned
 * fac = S / s (ce_pfac), all +0 at an ignored position (t < 0). */
INLINE elem_t ce_fb_factors(elem_t gk, elem_t wt, int64_t t, ce_factors f, double wsum, double s, elem_t *gt,
                            elem_t *gs)
{
    elem_t sum = 0;
    *gt = *gs = 0;
    if (t >= 0) {
        *gt = -(wt * (f.smooth ? f.keep * gk : gk));
        *gs = f.smooth ? f.spread * gk : (elem_t)0;
        sum = ce_index_gsum(*gt, *gs, wsum, f.smooth);
    }
    return ce_pfac(sum, s);
}

/* The class-index gradient of the classes [o, o + mm) (mm <= VW lanes used): G_k - e_k * fac, G_k = gt at k == t
 * (t < 0: none) minus w_k * gs with smoothing. Elementwise, so any cut of the row gives the same bits. */
INLINE vec_t ce_index_grad(const elem_t *e, const stor_t *w, size_t o, size_t mm, int64_t t, vec_t gtv, vec_t gsv,
                           vec_t fv, const int sm)
{
    vec_t gv = t >= (int64_t)o && t < (int64_t)(o + VW) ? v_mzero(1u << (t - (int64_t)o), gtv) : v_set1(0.0);
    if (sm)
        gv = v_sub(gv, v_mul(w ? ce_sld(w + o, mm) : v_set1(1.0), gsv));
    return v_sub(gv, v_mul(ce_ld(e + o, mm), fv));
}

/* The gradient of the len classes whose exps are e[0 .. len) (ce_index_grad; w and t relative to the span) to gp. */
INLINE void ce_fb_grad_span(stor_t *gp, const elem_t *e, const stor_t *w, size_t len, int64_t t, vec_t gtv, vec_t gsv,
                            vec_t fv, const int sm)
{
    for (size_t o = 0; o < len; o += VW)
        ce_sst(gp + o, ce_index_grad(e, w, o, len - o, t, gtv, gsv, fv, sm), len - o);
}

/* One row's gradient (t < 0: ignored). e: the row's exps, or NULL to recompute them (as ce_row_step: exp(x - m)). */
INLINE void ce_fb_grad_row(stor_t *grow, const stor_t *row, const elem_t *e, elem_t *ebuf, const stor_t *w, size_t c,
                           elem_t m, int64_t t, elem_t gt, elem_t gs, elem_t fac, const int sm)
{
    const vec_t gtv = v_set1((double)gt), gsv = v_set1((double)gs), fv = v_set1((double)fac);
    if (e) {
        ce_fb_grad_span(grow, e, w, c, t, gtv, gsv, fv, sm);
        return;
    }
    const vec_t mv = v_set1((double)m);
    for (size_t o0 = 0; o0 < c; o0 += CE_EBUF) {
        const size_t len = c - o0 < CE_EBUF ? c - o0 : CE_EBUF;
        ce_row_exps(row + o0, len, mv, ebuf);
        ce_fb_grad_span(grow + o0, ebuf, w ? w + o0 : NULL, len, t < 0 ? -1 : t - (int64_t)o0, gtv, gsv, fv, sm);
    }
}

/* Streaming stores need the VW-element grid: the elements from p to it (< VW), or VW when p is off the element grid
 * (then no streaming). */
INLINE size_t ce_stream_head(const stor_t *p)
{
    const uintptr_t a = (uintptr_t)p, al = VW * sizeof(stor_t);
    return a % sizeof(stor_t) != 0 ? VW : (size_t)((-a) % al) / sizeof(stor_t);
}

/* A row's gradient streams whole 64-byte lines only: a line written partly by streaming stores and partly by
 * ordinary ones (where two rows meet) costs a partial flush of its write-combining buffer. The elements from p to the
 * line grid (< CE_LINE), or CE_LINE when p is off the element grid (then no streaming). */
#define CE_LINE (64 / sizeof(stor_t))
INLINE size_t ce_line_head(const stor_t *p)
{
    const uintptr_t a = (uintptr_t)p;
    return a % sizeof(stor_t) != 0 ? CE_LINE : (size_t)((-a) % 64) / sizeof(stor_t);
}

/* The gradient of the classes [a, b) with ordinary stores (ce_index_grad). */
INLINE void ce_grad_piece(stor_t *grow, const elem_t *e, const stor_t *w, size_t a, size_t b, int64_t t, vec_t gtv,
                          vec_t gsv, vec_t fv, const int sm)
{
    for (size_t o = a; o < b; o += VW)
        ce_sst(grow + o, ce_index_grad(e, w, o, b - o, t, gtv, gsv, fv, sm), b - o);
}

/* m with nx[a .. b) folded in (v_max_num), by whole vectors of nx[0 .. c), c >= VW: the last one may overlap. */
INLINE vec_t ce_max_piece(vec_t m, const stor_t *nx, size_t a, size_t b)
{
    size_t o = a;
    for (; o + VW <= b; o += VW)
        m = v_max_num(m, s_load(nx + o));
    return o < b ? v_max_num(m, s_load(nx + (b >= VW ? b - VW : 0))) : m;
}

/* A whole vector to p: a streaming store (nt) or an ordinary one. */
INLINE void ce_put(stor_t *p, vec_t v, const int nt)
{
    if (nt)
        s_stream(p, v);
    else
        s_store(p, v);
}

/* One row's gradient (c >= CE_LINE classes): the classes [0, h) to the line grid and the last partial line with
 * ordinary stores, the whole lines between with streaming ones (nt; else ordinary ones too); in the same loop, the
 * max of the next row nx (c classes too; NULL: none), returned as ce_row_max gives it (the max is exact: its order of
 * folding does not change it). The next row's loads and max run beside this row's rounding and stores, which
 * otherwise run alone after its exp pass. */
INLINE elem_t ce_bwd_row_lines(stor_t *grow, const elem_t *e, const stor_t *w, size_t c, size_t h, int64_t t, vec_t gtv,
                               vec_t gsv, vec_t fv, const int sm, const stor_t *nx, const int nt)
{
    const size_t ob = h + (c - h) / CE_LINE * CE_LINE; /* the whole lines: [h, ob) */
    vec_t m0 = v_set1(-INFINITY), m1 = m0;
    ce_grad_piece(grow, e, w, 0, h, t, gtv, gsv, fv, sm);
    size_t o = h;
    for (; o + 2 * VW <= ob; o += 2 * VW) {
        ce_put(grow + o, ce_index_grad(e, w, o, VW, t, gtv, gsv, fv, sm), nt);
        ce_put(grow + o + VW, ce_index_grad(e, w, o + VW, VW, t, gtv, gsv, fv, sm), nt);
        if (nx)
            m0 = ce_row_max2(m0, nx + o);
    }
    if (o < ob) { /* one vector (a line holds a whole number of them) */
        ce_put(grow + o, ce_index_grad(e, w, o, VW, t, gtv, gsv, fv, sm), nt);
        if (nx)
            m1 = v_max_num(m1, s_load(nx + o));
    }
    ce_grad_piece(grow, e, w, ob, c, t, gtv, gsv, fv, sm);
    if (!nx)
        return 0;
    m1 = ce_max_piece(ce_max_piece(m1, nx, 0, h), nx, ob, c);
    elem_t buf[VW], m = -INFINITY;
    v_store(buf, v_max_num(m0, m1));
    for (size_t i = 0; i < VW; i++)
        m = ce_max(m, buf[i]);
    return m + (elem_t)0; /* -0 reads as +0 */
}

INLINE void ce_bwd_rows(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, const stor_t *g,
                        size_t g_stride, stor_t *gx, const nllk_target_type tt)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    elem_t ebuf[CE_EBUF];
    /* 16-bit storage, rows of CE_PREFETCH_W classes or more: the exp pass prefetches the gradient for writing and
     * the gradient takes ordinary stores (its read for ownership overlaps the compute-bound exps, where a stream of
     * the gradient's lines would run alone after them); else, with r->stream, the gradient streams. */
    const int pw = !S_SAME && c >= CE_PREFETCH_W && c <= CE_EBUF;
    const int stream = r->stream && c <= CE_EBUF && c >= CE_LINE && !pw;
    elem_t m_next = 0; /* the next row's max when the last gradient folded it in (fused) */
    int fused = 0;
    for (size_t k = 0; k < r->len; k++) {
        const int64_t t = target_at(tg, k, tt);
        const int ign = t == r->ignore_index;
        const stor_t *row = x + k * r->k_stride, *next = k + 1 < r->len && VW > 1 ? row + r->k_stride : NULL;
        stor_t *grow = gx + k * r->k_stride;
        elem_t *e = c <= CE_EBUF ? ebuf : S_SAME ? (elem_t *)(void *)grow : NULL; /* NULL: exps again */
        const elem_t m = fused ? m_next : ce_row_max(row, c);
        double res[3] = {0, 0, 0};
        ce_row_sums(row, NULL, w, c, m, f, CE_S, next, e, pw ? grow : NULL, res);
        const int sm = f.smooth && !ign;
        const int64_t tk = ign ? -1 : t;
        const elem_t wt = ign ? (elem_t)0 : w ? (elem_t)s_get(w + t) : (elem_t)1;
        elem_t gt, gs;
        const elem_t fac = ce_fb_factors((elem_t)s_get(g + k * g_stride), wt, tk, f, r->wsum, res[0], &gt, &gs);
        const size_t h = stream || pw ? ce_line_head(grow) : CE_LINE;
        fused = h < CE_LINE && next;
        const vec_t gtv = v_set1((double)gt), gsv = v_set1((double)gs), fv = v_set1((double)fac);
        if (h < CE_LINE && stream) /* (nt a constant in each call: no test per store) */
            m_next = ce_bwd_row_lines(grow, e, w, c, h, tk, gtv, gsv, fv, sm, fused ? next : NULL, 1);
        else if (h < CE_LINE)
            m_next = ce_bwd_row_lines(grow, e, w, c, h, tk, gtv, gsv, fv, sm, fused ? next : NULL, 0);
        else
            ce_fb_grad_row(grow, row, e, ebuf, w, c, m, tk, gt, gs, fac, sm);
    }
    if (stream)
        v_stream_fence();
}

INLINE void ce_prob_fwd_rows(const nllk_ce_run *r, const stor_t *x, const stor_t *q, const stor_t *w, stor_t *out,
                             stor_t *lse, double *lanes)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t k = 0; k < r->len; k++) {
        elem_t m, logsum;
        double res[3] = {0, 0, 0};
        ce_row_stats(x + k * r->k_stride, q + k * r->k_stride, w, c, f, CE_PROB, NULL, NULL, &m, &logsum, res);
        const elem_t loss = ce_prob_loss(logsum, res[2], res[1]);
        if (lse)
            s_set(lse + k, m + logsum);
        if (out)
            s_set(out + k, loss);
        if (lanes) {
            lanes[k % 16] += (double)loss;
            lanes[16 + k % 16] += 1.0;
        }
    }
}

/* The probability backward's per-class values: grad_input = G - e*fac (= G - p*S) with G = ((-g) * q') * w, and
 * grad_target = ((-(g * w)) * log_softmax) * (1 - ls), log_softmax = (x - m) - logsum (PyTorch's). */
INLINE void ce_prob_grads(vec_t xv, vec_t qv, vec_t wv, vec_t ev, vec_t mv, vec_t lv, vec_t gv, vec_t fv, ce_factors f,
                          vec_t *gx, vec_t *gq)
{
    *gx = v_sub(v_mul(v_mul(v_neg(gv), ce_qs(qv, f)), wv), v_mul(ev, fv));
    const vec_t t = v_mul(v_neg(v_mul(gv, wv)), v_sub(v_sub(xv, mv), lv));
    *gq = f.smooth ? v_mul(t, v_set1(f.keep)) : t;
}

INLINE void ce_prob_bwd_rows(const nllk_ce_run *r, const stor_t *x, const stor_t *q, const stor_t *w, const stor_t *g,
                             size_t g_stride, stor_t *gx, stor_t *gq)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    elem_t ebuf[CE_EBUF];
    for (size_t k = 0; k < r->len; k++) {
        const stor_t *row = x + k * r->k_stride, *qrow = q + k * r->k_stride;
        stor_t *grow = gx + k * r->k_stride;
        elem_t *e = c <= CE_EBUF ? ebuf : S_SAME ? (elem_t *)(void *)grow : NULL; /* NULL: exps again */
        elem_t m, logsum;
        double res[3] = {0, 0, 0};
        ce_row_stats(row, qrow, w, c, f, CE_PROB, NULL, e, &m, &logsum, res);
        const elem_t gk = (elem_t)s_get(g + k * g_stride);
        const vec_t mv = v_set1((double)m), lv = v_set1((double)logsum), gv = v_set1((double)gk);
        const vec_t fv = v_set1((double)ce_pfac((elem_t)(-(double)gk * res[2]), res[0]));
        for (size_t o = 0; o < c; o += VW) {
            const size_t mm = c - o;
            if (!S_SAME && !e && o % CE_EBUF == 0) /* the exps of the next CE_EBUF classes */
                ce_row_exps(row + o, mm < CE_EBUF ? mm : CE_EBUF, mv, ebuf);
            vec_t a, b;
            ce_prob_grads(ce_sld(row + o, mm), ce_sld(qrow + o, mm), w ? ce_sld(w + o, mm) : v_set1(1.0),
                          !S_SAME && !e ? ce_ld(ebuf + o % CE_EBUF, mm) : ce_ld(e + o, mm), mv, lv, gv, fv, f, &a, &b);
            ce_sst(grow + o, a, mm);
            if (gq)
                ce_sst(gq + k * r->k_stride + o, b, mm);
        }
    }
}

/* ---- planes: VW positions at a time, classes at stride cs ------------------------------------------------------ */

/* How far ahead (elements) the plane kernels prefetch each class's stream; may point past the array (a prefetch is
 * never dereferenced). */
#define CE_PLANE_PF (512 / sizeof(stor_t))

typedef struct ce_plane {
    elem_t m[VW], logsum[VW];
    double res[3][VW];
} ce_plane;

/* What a planes lane sums (ce_plane_lane): */
enum { CE_L_EXP = 0 /* s = sum e_k (e_k = exp(x_k - m)) */, CE_L_D = 1 /* D = sum w_k (x_k - m) */,
       CE_L_A = 2 /* A = sum qw_k (x_k - m) */, CE_L_B = 3 /* B = sum qw_k */,
       CE_L_BUF = 4 /* s from the exps already at e + k * es */ };

/* Columns of at least this many classes exp in class order into a buffer first, then sum the buffer in lane order
 * (reading ~c/16 planes a power of two apart per lane misses the caches more than the stores cost); shorter ones exp
 * each lane's classes inline. */
#define CE_PLANE_INLINE 64
#define CE_PLANE_SBUF 256 /* the buffer on the stack, when the caller keeps no exps: up to this many classes */

typedef struct ce_plane_in {
    const stor_t *x, *q, *w;
    size_t c, cs, mm;
    vec_t mv;
    ce_factors f;
    elem_t *e; /* CE_L_EXP: the exps to e + k * es as well, when set */
    size_t es;
    int half;         /* the positions: element order (-1), or the even (0) or odd (1) of 2*VW (ce_pld) */
    const elem_t *xw; /* when set, the logits already widened: class k's VW lanes at xw + k * xws (pairs) */
    size_t xws;
} ce_plane_in;

/* Class k's logits of the VW positions (ce_keep's lanes past mm aside) */
INLINE vec_t ce_plane_x(const ce_plane_in *in, size_t k)
{
    return in->xw ? ce_ld(in->xw + k * in->xws, in->mm) : ce_pld(in->x + k * in->cs, in->mm, in->half);
}

/* Lane l (0 .. 15) of VW positions' sum `what`: +0.0 + term_l + term_{l+16} + ... in increasing class (the canonical
 * lane, nllk.h), each class read from its plane and computed in the loop. Lanes >= mm are +0 (as a masked load). */
INLINE vacc_t ce_plane_lane(const ce_plane_in *in, const int what, const size_t l)
{
    const size_t cs = in->cs, mm = in->mm;
    vacc_t acc = v_acc_zero();
    for (size_t k = l; k < in->c; k += 16) {
        vec_t v;
        if (what == CE_L_BUF) {
            v = ce_ld(in->e + k * in->es, mm);
        } else if (what == CE_L_EXP) {
            v = ce_keep(v_exp_ce_le0(v_sub(ce_plane_x(in, k), in->mv)), mm);
            if (in->e)
                ce_st(in->e + k * in->es, v, mm);
        } else if (what == CE_L_D) {
            const vec_t dv = v_sub(ce_plane_x(in, k), in->mv);
            v = ce_keep(in->w ? v_mul(v_set1(s_get(in->w + k)), dv) : dv, mm);
        } else {
            const vec_t qs = ce_qs(ce_pld(in->q + k * cs, mm, in->half), in->f);
            const vec_t qw = in->w ? v_mul(qs, v_set1(s_get(in->w + k))) : qs;
            v = ce_keep(what == CE_L_B ? qw : v_mul(qw, v_sub(ce_plane_x(in, k), in->mv)), mm);
        }
        acc = v_acc_add(acc, v);
    }
    return acc;
}

/* The sum `what` of VW positions to res: the 16 lanes folded as ce_fold16 (s[q] += s[q+8], +4, +2, +1), each lane
 * computed when the fold consumes it (q = 0, 8, 4, 12, 2, 10, ...), so that at most five lane vectors are live: the
 * whole sum in registers, the same bits as folding 16 stored lanes. */
INLINE void ce_plane_sum(const ce_plane_in *in, const int what, double *res)
{
#define CE_T2(q) v_acc_sum(ce_plane_lane(in, what, q), ce_plane_lane(in, what, (q) + 8))
#define CE_T4(q) v_acc_sum(CE_T2(q), CE_T2((q) + 4))
#define CE_T8(q) v_acc_sum(CE_T4(q), CE_T4((q) + 2))
    v_acc_store(res, v_acc_sum(CE_T8(0), CE_T8(1)));
#undef CE_T2
#undef CE_T4
#undef CE_T8
}

/* The max of four max chains of v_max_num (classes k % 4; a NaN logit never enters; the exact max is order-free up to
 * the sign of zero, which the + 0 fixes), so x - m <= 0 or NaN below (v_exp_ce_le0) */
INLINE vec_t ce_max4(const vec_t *mq)
{
    return v_add(v_max_num(v_max_num(mq[0], mq[1]), v_max_num(mq[2], mq[3])), v_set1(0.0)); /* -0: +0 */
}

/* The max of VW positions' logits x (mm < VW: the first mm; half: ce_pld) */
INLINE vec_t ce_plane_max(const stor_t *x, size_t c, size_t cs, size_t mm, const int half)
{
    vec_t mq[4];
    for (int u = 0; u < 4; u++)
        mq[u] = v_set1(-INFINITY);
    size_t k = 0;
    for (; k + 4 <= c; k += 4)
        for (int u = 0; u < 4; u++) {
            /* c strided streams outrun the hardware prefetcher: fetch each a few groups ahead (a pair's odd half
             * reads what its even half fetched) */
            if (VW > 1 && half < 1)
                __builtin_prefetch(x + (k + (size_t)u) * cs + CE_PLANE_PF);
            mq[u] = v_max_num(mq[u], ce_pld(x + (k + (size_t)u) * cs, mm, half));
        }
    for (; k < c; k++)
        mq[0] = v_max_num(mq[0], ce_pld(x + k * cs, mm, half));
    return ce_max4(mq);
}

/* The sums and logsums (when lg) of VW positions from their max in->mv: st (in->e, when set, receives the exps: class
 * k's VW lanes at e + k * es, masked to mm lanes). */
INLINE void ce_plane_sums(const ce_plane_in *in, const int mode, const int lg, ce_plane *st)
{
    const size_t c = in->c, mm = in->mm;
    elem_t eb[CE_PLANE_SBUF * VW];
    if (c >= CE_PLANE_INLINE && (in->e || c <= CE_PLANE_SBUF)) {
        ce_plane_in b = *in;
        b.e = in->e ? in->e : eb;
        b.es = in->e ? in->es : VW;
        for (size_t kk = 0; kk < c; kk++)
            ce_st(b.e + kk * b.es, v_exp_ce_le0(v_sub(ce_plane_x(in, kk), in->mv)), mm);
        ce_plane_sum(&b, CE_L_BUF, st->res[0]);
    } else {
        ce_plane_sum(in, CE_L_EXP, st->res[0]);
    }
    if (mode == CE_SMOOTH)
        ce_plane_sum(in, CE_L_D, st->res[1]);
    if (mode == CE_S) /* unused: defined all the same */
        v_acc_store(st->res[1], v_acc_zero());
    if (mode == CE_PROB) {
        ce_plane_sum(in, CE_L_A, st->res[1]);
        ce_plane_sum(in, CE_L_B, st->res[2]);
    }
    v_store(st->m, in->mv);
    if (lg)
        ce_logsums(st->res[0], mm < VW ? mm : VW, st->logsum);
}

/* VW positions' max, sums and logsums (mm < VW: the first mm; logsums when lg). e, when set, receives the exps:
 * class k's VW lanes at e + k * es (masked to mm lanes). half: the positions (ce_plane_in; pairs: mm = VW). */
INLINE void ce_plane_stats_at(const stor_t *x, const stor_t *q, const stor_t *w, size_t c, size_t cs, size_t mm,
                              ce_factors f, const int mode, elem_t *e, size_t es, const int lg, const int half,
                              ce_plane *st)
{
    const ce_plane_in in = {x, q, w, c, cs, mm, ce_plane_max(x, c, cs, mm, half), f, e, es, half, NULL, 0};
    ce_plane_sums(&in, mode, lg, st);
}
/* VW positions in element order */
INLINE void ce_plane_stats(const stor_t *x, const stor_t *q, const stor_t *w, size_t c, size_t cs, size_t mm,
                           ce_factors f, const int mode, elem_t *e, size_t es, const int lg, ce_plane *st)
{
    ce_plane_stats_at(x, q, w, c, cs, mm, f, mode, e, es, lg, -1, st);
}

/* The forward's outputs of the mm positions [o, o + mm) of a run from their stats st: losses, lse and the lanes of
 * the canonical sum (tv: their targets, none bad; mm < VW: the first mm, the rest ignore_index; tb: the same as
 * scalars, read with smoothing only). Without smoothing
 * vectorised: the NLL gather, and the canonical lanes of 16 positions in acc, accw (o on the VW grid of the run). */
INLINE void ce_fwd_plane_out(const nllk_ce_run *r, const stor_t *x, vidx_t tv, const int64_t *tb, const stor_t *w,
                             stor_t *out, stor_t *lse, double *lanes, vacc_t *acc, vacc_t *accw, size_t o, size_t mm,
                             ce_factors f, const ce_plane *st)
{
    const size_t cs = r->c_stride, cnt = mm < VW ? mm : VW;
    if (!f.smooth) {
        const unsigned valid = v_tvalid(tv, r->ignore_index);
        const vec_t mv = v_load(st->m), lg = v_load(st->logsum);
        const vec_t wt = w ? s_gather(w, tv, valid) : v_mzero(valid, v_set1(1.0));
        const vec_t loss = v_mzero(valid, ce_nll(s_gather(x + o, v_toff(tv, v_kofs(1), cs), valid), mv, lg, wt));
        if (lse)
            ce_sst(lse + o, v_add(mv, lg), mm);
        if (out)
            ce_sst(out + o, loss, mm);
        const int j = (int)((o / VW) % G);
        acc[j] = v_acc_add(acc[j], loss);
        accw[j] = v_acc_add(accw[j], wt);
        return;
    }
    for (size_t p = 0; p < cnt; p++) {
        const size_t k = o + p;
        const int64_t t = tb[p];
        elem_t loss = 0, wt = 0;
        if (t != r->ignore_index) {
            wt = w ? (elem_t)s_get(w + t) : (elem_t)1;
            loss = ce_index_loss((elem_t)s_get(x + (size_t)t * cs + k), st->m[p], st->logsum[p], wt, st->res[1][p],
                                 r->wsum, f);
        }
        if (lse)
            s_set(lse + k, st->m[p] + st->logsum[p]);
        if (out)
            s_set(out + k, loss);
        if (lanes) {
            lanes[k % 16] += (double)loss;
            lanes[16 + k % 16] += (double)wt;
        }
    }
}

/* The targets of the VW positions from o as a vector (past the run's end ignore_index), checked in it; tb, when set,
 * receives them as scalars too (read from the targets, not from the vector: no store-to-load stall). Returns the first
 * bad one's offset from o, or the run's len - o when none is. */
INLINE size_t ce_plane_targets(const nllk_ce_run *r, const void *tg, size_t o, vidx_t *tv, int64_t *tb,
                               const nllk_target_type tt)
{
    const size_t mm = r->len - o;
    *tv = tload_at(tg, o, r->len, r->ignore_index, tt);
    if (tb)
        for (size_t p = 0; p < VW; p++)
            tb[p] = p < mm ? target_at(tg, o + p, tt) : r->ignore_index;
    const unsigned bad = v_tbad(*tv, r->c, r->ignore_index);
    return bad ? (size_t)__builtin_ctz(bad) : mm;
}

/* The vector lanes of ce_fwd_plane_out: loaded from lanes (no smoothing), stored back by ce_plane_lanes_put. */
INLINE void ce_plane_lanes_get(const double *lanes, ce_factors f, vacc_t *acc, vacc_t *accw)
{
    for (int j = 0; j < G; j++) {
        acc[j] = lanes && !f.smooth ? v_acc_load(lanes + j * VW) : v_acc_zero();
        accw[j] = lanes && !f.smooth ? v_acc_load(lanes + 16 + j * VW) : v_acc_zero();
    }
}
INLINE void ce_plane_lanes_put(double *lanes, ce_factors f, const vacc_t *acc, const vacc_t *accw)
{
    if (lanes && !f.smooth)
        for (int j = 0; j < G; j++) {
            v_acc_store(lanes + j * VW, acc[j]);
            v_acc_store(lanes + 16 + j * VW, accw[j]);
        }
}

/* ---- planes in pairs (S_PAIRS: bfloat16 on AVX-512 and AVX2) -------------------------------------------------
 * 2*VW positions at once: each class plane's 2*VW elements load as one vector, whose even positions widen by a shift
 * and odd ones by a mask (s_load_pair), where element order takes a permute per VW. Each half is VW positions whose
 * stats are computed as in element order (each position's classes in the same lanes and folds), so every position
 * gets the same bits. The forward's outputs take the stats back to element order (s_unpair: ce_fwd_plane_out as for
 * single groups); the gradient takes its per-position factors to the pair order (s_pair) and writes each plane's
 * 2*VW elements with one s_store_pair. Class-index targets without smoothing (smoothing's forward reads the stats
 * lane by lane; probability targets keep single groups). */
#if S_PAIRS
/* Columns of up to this many classes keep a pair's logits widened on the stack (xb: one widening per element, in
 * the max pass); longer ones widen them again in the exp pass. */
#    define CE_PAIR_XBUF 64

/* One class of a pair's max pass: its 2*VW logits at p widened to xk (the even positions, then the odd) and into
 * the halves' max chains m0, m1 */
INLINE void ce_pair_max_step(const stor_t *p, elem_t *xk, vec_t *m0, vec_t *m1)
{
    vec_t a, b;
    if (VW > 1)
        __builtin_prefetch(p + CE_PLANE_PF);
    s_load_pair(p, &a, &b);
    v_store(xk, a);
    v_store(xk + VW, b);
    *m0 = v_max_num(*m0, a);
    *m1 = v_max_num(*m1, b);
}

/* The stats of the 2*VW positions at x (sp[h]: half h, in the pair order); e, when set, receives half h's exps at
 * e + h * VW + k * es (es >= 2 * VW). */
INLINE void ce_plane_stats_pair(const stor_t *x, const stor_t *w, size_t c, size_t cs, ce_factors f, elem_t *e,
                                size_t es, const int lg, ce_plane *sp)
{
    if (c > CE_PAIR_XBUF) {
        for (int h = 0; h < 2; h++)
            ce_plane_stats_at(x, NULL, w, c, cs, VW, f, CE_S, e ? e + h * VW : NULL, es, lg, h, &sp[h]);
        return;
    }
    elem_t xb[CE_PAIR_XBUF * 2 * VW]; /* class k's half h at xb + k * 2 * VW + h * VW */
    vec_t mq[2][4];
    for (int u = 0; u < 4; u++)
        mq[0][u] = mq[1][u] = v_set1(-INFINITY);
    size_t k = 0; /* ce_plane_max's chains, both halves from one load */
    for (; k + 4 <= c; k += 4)
        for (int u = 0; u < 4; u++)
            ce_pair_max_step(x + (k + (size_t)u) * cs, xb + (k + (size_t)u) * 2 * VW, &mq[0][u], &mq[1][u]);
    for (; k < c; k++)
        ce_pair_max_step(x + k * cs, xb + k * 2 * VW, &mq[0][0], &mq[1][0]);
    for (int h = 0; h < 2; h++) {
        const ce_plane_in in = {x, NULL, w, c, cs, VW, ce_max4(mq[h]), f, e ? e + h * VW : NULL, es, h,
                                xb + h * VW, 2 * VW};
        ce_plane_sums(&in, CE_S, lg, &sp[h]);
    }
}

/* ce_fwd_plane_out of the 2*VW positions [o, o + 2*VW) from their stats sp (tv[h]: the targets of [o + h * VW, ...)) */
INLINE void ce_fwd_plane_pair_out(const nllk_ce_run *r, const stor_t *x, const vidx_t *tv, const stor_t *w, stor_t *out,
                                  stor_t *lse, double *lanes, vacc_t *acc, vacc_t *accw, size_t o, ce_factors f,
                                  const ce_plane *sp)
{
    ce_plane st[2]; /* element order: their m and logsum (all that ce_fwd_plane_out reads without smoothing) */
    vec_t a0, a1;
    s_unpair(v_load(sp[0].m), v_load(sp[1].m), &a0, &a1);
    v_store(st[0].m, a0);
    v_store(st[1].m, a1);
    s_unpair(v_load(sp[0].logsum), v_load(sp[1].logsum), &a0, &a1);
    v_store(st[0].logsum, a0);
    v_store(st[1].logsum, a1);
    for (int h = 0; h < 2; h++)
        ce_fwd_plane_out(r, x, tv[h], NULL, w, out, lse, lanes, acc, accw, o + (size_t)h * VW, VW, f, &st[h]);
}
#endif

/* Whether the positions from o go as a pair (S_PAIRS): 2*VW of them left, and with streaming stores (stream) gx + o
 * and every class's plane on the 2*VW-element grid (else a single group, which may bring gx + o to it). */
INLINE int ce_plane_pair_at(const nllk_ce_run *r, ce_factors f, const stor_t *gx, size_t o, const int stream)
{
#if S_PAIRS
    const size_t al = 2 * VW;
    return !f.smooth && r->c <= INT32_MAX && r->len - o >= al &&
           (!stream || (r->c_stride % al == 0 && (uintptr_t)(gx + o) % (al * sizeof(stor_t)) == 0));
#else
    (void)r, (void)f, (void)gx, (void)o, (void)stream;
    return 0;
#endif
}

/* The targets of the VW positions from o, as ce_plane_targets, and (pair) those of the next VW: 0, or 1 + the offset
 * from o of the first bad one. */
INLINE size_t ce_plane_targets2(const nllk_ce_run *r, const void *tg, size_t o, vidx_t *tv, int64_t *tb, const int pair,
                                const nllk_target_type tt)
{
    const size_t mm = r->len - o;
    size_t bad = ce_plane_targets(r, tg, o, &tv[0], tb, tt);
    tv[1] = tv[0]; /* (defined when not a pair: gcc 12 saw a read) */
    if (bad >= mm && pair)
        bad = VW + ce_plane_targets(r, tg, o + VW, &tv[1], NULL, tt);
    return bad < mm ? 1 + bad : 0;
}

INLINE size_t ce_fwd_planes(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, stor_t *out,
                            stor_t *lse, double *lanes, const nllk_target_type tt)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    vacc_t acc[G], accw[G];
    ce_plane_lanes_get(lanes, f, acc, accw);
    int64_t tb[VW] = {0}; /* filled and read with smoothing only (initialised: gcc 12 saw a read without) */
    for (size_t o = 0; o < r->len;) {
        const size_t mm = r->len - o;
        const int pair = ce_plane_pair_at(r, f, NULL, o, 0);
        vidx_t tv[2];
        const size_t bad = ce_plane_targets2(r, tg, o, tv, f.smooth ? tb : NULL, pair, tt);
        if (bad)
            return o + bad - 1; /* (the lanes are not needed: the call fails) */
#if S_PAIRS
        if (pair) {
            ce_plane sp[2];
            ce_plane_stats_pair(x + o, w, c, cs, f, NULL, 0, 1, sp);
            ce_fwd_plane_pair_out(r, x, tv, w, out, lse, lanes, acc, accw, o, f, sp);
            o += 2 * VW;
            continue;
        }
#endif
        ce_plane st;
        ce_plane_stats(x + o, NULL, w, c, cs, mm, f, f.smooth ? CE_SMOOTH : CE_S, NULL, 0, 1, &st);
        ce_fwd_plane_out(r, x, tv[0], tb, w, out, lse, lanes, acc, accw, o, mm, f, &st);
        o += VW;
    }
    ce_plane_lanes_put(lanes, f, acc, accw);
    return r->len;
}

/* The backward keeps VW positions' exps on the stack up to this many classes (else in their gradient, rewritten). */
#define CE_PLANE_EBUF 256

/* The per-position factors of the class-index gradient of the mm <= VW positions at o (tv: their targets, the rest
 * ignore_index): ce_fb_factors' in vector operations, gt and gs +0 where ignored (so that a lane whose ignore_index
 * is class k adds +0), sum = ce_index_gsum (fac = sum / s by v_acc_rdiv, ce_pfac). */
typedef struct ce_gfac {
    vec_t gt, gs, sum;
    unsigned valid; /* the valid targets among the first mm */
} ce_gfac;

INLINE ce_gfac ce_plane_gfac(const nllk_ce_run *r, vidx_t tv, const stor_t *w, const stor_t *g, size_t g_stride,
                             size_t o, size_t mm, ce_factors f)
{
    ce_gfac q;
    q.valid = v_tvalid(tv, r->ignore_index) & first_lanes(mm < VW ? mm : VW);
    const vec_t gk = g_stride ? ce_sld(g + o, mm) : v_set1(s_get(g)); /* g_stride: 0 or 1 */
    const vec_t wt = w ? s_gather(w, tv, q.valid) : v_set1(1.0);
    q.gt = v_mzero(q.valid, v_neg(v_mul(wt, f.smooth ? v_mul(v_set1(f.keep), gk) : gk)));
    q.gs = f.smooth ? v_mzero(q.valid, v_mul(v_set1(f.spread), gk)) : v_set1(0.0);
    q.sum = q.gt; /* ce_index_gsum: gt without smoothing */
    if (f.smooth) {
        elem_t a[VW], b[VW], sv[VW];
        v_store(a, q.gt);
        v_store(b, q.gs);
        for (size_t p = 0; p < VW; p++)
            sv[p] = (q.valid >> p) & 1u ? ce_index_gsum(a[p], b[p], r->wsum, 1) : (elem_t)0;
        q.sum = v_load(sv);
    }
    return q;
}

/* Class k's gradient of VW positions: gv (gt where the target is k, else +0), minus w_k * gs with smoothing, minus
 * e_k * fac. */
INLINE vec_t ce_plane_grad_k(vec_t gv, size_t k, const stor_t *w, vec_t gs, vec_t ev, vec_t fv, ce_factors f)
{
    if (f.smooth)
        gv = v_sub(gv, v_mul(v_set1(w ? s_get(w + k) : 1.0), gs));
    return v_sub(gv, v_mul(ev, fv));
}

/* The class-index gradient of the mm <= VW positions [o, o + mm) of a run from their stats st (res[0], m) and exps e
 * (class k at e + k * es; NULL: computed again); tv: their targets (the rest ignore_index); nt: streaming stores
 * (then gx + o is on the VW-element grid, and so is every class's plane). fac's lanes past mm +0. */
INLINE void ce_bwd_plane_grad(const nllk_ce_run *r, const stor_t *x, vidx_t tv, const stor_t *w, const stor_t *g,
                              size_t g_stride, stor_t *gx, size_t o, size_t mm, ce_factors f, const elem_t *e,
                              size_t es, const ce_plane *st, const int nt)
{
    const size_t c = r->c, cs = r->c_stride, cnt = mm < VW ? mm : VW;
    const ce_gfac q = ce_plane_gfac(r, tv, w, g, g_stride, o, mm, f);
    const vec_t fv = v_mzero(first_lanes(cnt), v_acc_rdiv(q.sum, v_acc_load(st->res[0]))), mv = v_load(st->m);
    const int narrow = c <= INT32_MAX; /* then the valid targets' low 32 bits name them: v_tnsel */
    const vtn_t tn = v_tnarrow(tv, q.valid);
    for (size_t k = 0; k < c; k++) {
        const vec_t gv = narrow ? v_tnsel(tn, (int32_t)k, q.gt) : v_mzero(~v_tvalid(tv, (int64_t)k) & q.valid, q.gt);
        const vec_t ev = !S_SAME && !e ? v_exp_ce_le0(v_sub(ce_sld(x + o + k * cs, mm), mv)) : ce_ld(e + k * es, mm);
        const vec_t v = ce_plane_grad_k(gv, k, w, q.gs, ev, fv, f);
        if (nt)
            s_stream(gx + k * cs + o, v);
        else
            ce_sst(gx + k * cs + o, v, mm);
    }
}

#if S_PAIRS
/* ce_bwd_plane_grad of the 2*VW positions [o, o + 2*VW) from their stats sp and exps e (half h's class k at
 * e + h * VW + k * es; NULL: computed again); nt: streaming stores (then gx + o and every class's plane are on the
 * 2*VW-element grid). The factors are computed in element order, then taken to the pair order. */
INLINE void ce_bwd_plane_grad_pair(const nllk_ce_run *r, const stor_t *x, const vidx_t *tv, const stor_t *w,
                                   const stor_t *g, size_t g_stride, stor_t *gx, size_t o, ce_factors f,
                                   const elem_t *e, size_t es, const ce_plane *sp, const int nt)
{
    const size_t c = r->c, cs = r->c_stride;
    ce_gfac q[2]; /* element order, then the pair order (valid: element order) */
    vtn_t tn[2];
    for (int h = 0; h < 2; h++) {
        q[h] = ce_plane_gfac(r, tv[h], w, g, g_stride, o + (size_t)h * VW, VW, f);
        tn[h] = v_tnarrow(tv[h], q[h].valid);
    }
    s_pair(q[0].gt, q[1].gt, &q[0].gt, &q[1].gt);
    s_pair(q[0].gs, q[1].gs, &q[0].gs, &q[1].gs);
    s_pair(q[0].sum, q[1].sum, &q[0].sum, &q[1].sum);
    s_pair_tn(tn[0], tn[1], &tn[0], &tn[1]);
    vec_t fv[2], v[2];
    for (int h = 0; h < 2; h++)
        fv[h] = v_acc_rdiv(q[h].sum, v_acc_load(sp[h].res[0]));
    for (size_t k = 0; k < c; k++) {
        for (int h = 0; h < 2; h++) {
            const vec_t ev = e ? v_load(e + (size_t)h * VW + k * es)
                               : v_exp_ce_le0(v_sub(ce_pld(x + o + k * cs, VW, h), v_load(sp[h].m)));
            v[h] = ce_plane_grad_k(v_tnsel(tn[h], (int32_t)k, q[h].gt), k, w, q[h].gs, ev, fv[h], f);
        }
        if (nt)
            s_stream_pair(gx + k * cs + o, v[0], v[1]);
        else
            s_store_pair(gx + k * cs + o, v[0], v[1]);
    }
}
#endif

/* Where a planes group keeps its exps (ce_bwd_plane_grad): the stack buffer ebuf for up to CE_PLANE_EBUF classes, else
 * the group's gradient (rewritten in place), else (16-bit storage) nowhere: computed again. */
INLINE elem_t *ce_plane_ekeep(size_t c, stor_t *gx, size_t o, elem_t *ebuf, size_t *es, size_t cs)
{
    *es = c <= CE_PLANE_EBUF ? VW : cs;
    return c <= CE_PLANE_EBUF ? ebuf : S_SAME ? (elem_t *)(void *)(gx + o) : NULL;
}

/* The class-index backward of the mm <= VW positions [o, o + mm) of a run; nt as ce_bwd_plane_grad. */
INLINE void ce_bwd_plane_group(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, const stor_t *g,
                               size_t g_stride, stor_t *gx, size_t o, size_t mm, ce_factors f, elem_t *ebuf,
                               const int nt, const nllk_target_type tt)
{
    size_t es;
    elem_t *e = ce_plane_ekeep(r->c, gx, o, ebuf, &es, r->c_stride);
    vidx_t tv;
    ce_plane_targets(r, tg, o, &tv, NULL, tt); /* (the driver checked them) */
    ce_plane st;
    ce_plane_stats(x + o, NULL, w, r->c, r->c_stride, mm, f, CE_S, e, es, 0, &st);
    ce_bwd_plane_grad(r, x, tv, w, g, g_stride, gx, o, mm, f, e, es, &st, nt);
}

/* The class-index backward of the positions from o: a pair (ce_plane_pair_at), else a group of up to VW (nt: a whole
 * one, streaming stores); returns how many. A pair keeps its exps on the stack up to CE_PLANE_EBUF / 2 classes. */
INLINE size_t ce_bwd_plane_step(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, const stor_t *g,
                                size_t g_stride, stor_t *gx, size_t o, ce_factors f, elem_t *ebuf, const int nt,
                                const nllk_target_type tt)
{
#if S_PAIRS
    if (ce_plane_pair_at(r, f, gx, o, nt)) {
        elem_t *e = r->c <= CE_PLANE_EBUF / 2 ? ebuf : NULL;
        vidx_t tv[2];
        ce_plane_targets2(r, tg, o, tv, NULL, 1, tt); /* (the driver checked them) */
        ce_plane sp[2];
        ce_plane_stats_pair(x + o, w, r->c, r->c_stride, f, e, 2 * VW, 0, sp);
        ce_bwd_plane_grad_pair(r, x, tv, w, g, g_stride, gx, o, f, e, 2 * VW, sp, nt);
        return 2 * VW;
    }
#endif
    const size_t mm = r->len - o < VW ? r->len - o : VW;
    ce_bwd_plane_group(r, x, tg, w, g, g_stride, gx, o, mm, f, ebuf, nt, tt);
    return mm;
}

INLINE void ce_bwd_planes(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, const stor_t *g,
                          size_t g_stride, stor_t *gx, const nllk_target_type tt)
{
    const size_t c = r->c, cs = r->c_stride, len = r->len;
    const ce_factors f = ce_factors_of(r->ls, c);
    elem_t ebuf[CE_PLANE_EBUF * VW];
    /* streaming stores need every class's plane on the grid: gx + o and cs * size on it */
    const int stream = r->stream && c <= CE_PLANE_EBUF && cs % VW == 0;
    size_t o = 0;
    const size_t h = stream ? ce_stream_head(gx) : VW;
    if (h < VW && h < len) {
        if (h) /* up to the grid */
            ce_bwd_plane_group(r, x, tg, w, g, g_stride, gx, 0, h, f, ebuf, 0, tt);
        for (o = h; o + VW <= len;)
            o += ce_bwd_plane_step(r, x, tg, w, g, g_stride, gx, o, f, ebuf, 1, tt);
    }
    while (o < len)
        o += ce_bwd_plane_step(r, x, tg, w, g, g_stride, gx, o, f, ebuf, 0, tt);
    if (stream)
        v_stream_fence();
}

INLINE void ce_prob_fwd_planes(const nllk_ce_run *r, const stor_t *x, const stor_t *q, const stor_t *w, stor_t *out,
                               stor_t *lse, double *lanes)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    for (size_t o = 0; o < r->len; o += VW) {
        const size_t mm = r->len - o, cnt = mm < VW ? mm : VW;
        ce_plane st;
        ce_plane_stats(x + o, q + o, w, c, cs, mm, f, CE_PROB, NULL, 0, 1, &st);
        for (size_t p = 0; p < cnt; p++) {
            const size_t k = o + p;
            const elem_t loss = ce_prob_loss(st.logsum[p], st.res[2][p], st.res[1][p]);
            if (lse)
                s_set(lse + k, st.m[p] + st.logsum[p]);
            if (out)
                s_set(out + k, loss);
            if (lanes) {
                lanes[k % 16] += (double)loss;
                lanes[16 + k % 16] += 1.0;
            }
        }
    }
}

INLINE void ce_prob_bwd_planes(const nllk_ce_run *r, const stor_t *x, const stor_t *q, const stor_t *w, const stor_t *g,
                               size_t g_stride, stor_t *gx, stor_t *gq)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    elem_t ebuf[CE_PLANE_EBUF * VW];
    for (size_t o = 0; o < r->len; o += VW) {
        const size_t mm = r->len - o, cnt = mm < VW ? mm : VW;
        elem_t *e = c <= CE_PLANE_EBUF ? ebuf : S_SAME ? (elem_t *)(void *)(gx + o) : NULL; /* NULL: exps again */
        const size_t es = c <= CE_PLANE_EBUF ? VW : cs;
        ce_plane st;
        ce_plane_stats(x + o, q + o, w, c, cs, mm, f, CE_PROB, e, es, 1, &st);
        elem_t gk[VW], fac[VW];
        for (size_t p = 0; p < VW; p++) {
            gk[p] = p < cnt ? (elem_t)s_get(g + (o + p) * g_stride) : (elem_t)0;
            fac[p] = p < cnt ? ce_pfac((elem_t)(-(double)gk[p] * st.res[2][p]), st.res[0][p]) : (elem_t)0;
        }
        const vec_t gv = v_load(gk), fv = v_load(fac), mv = v_load(st.m), lv = v_load(st.logsum);
        for (size_t k = 0; k < c; k++) {
            vec_t a, b;
            const vec_t xv = ce_sld(x + k * cs + o, mm);
            ce_prob_grads(xv, ce_sld(q + k * cs + o, mm), v_set1(w ? s_get(w + k) : 1.0),
                          !S_SAME && !e ? v_exp_ce_le0(v_sub(xv, mv)) : ce_ld(e + k * es, mm), mv, lv, gv, fv, f, &a, &b);
            ce_sst(gx + k * cs + o, a, mm);
            if (gq)
                ce_sst(gq + k * cs + o, b, mm);
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
INLINE void ce_bwd_body(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g, size_t gs,
                        void *gx, const nllk_target_type tt)
{
    if (r->c_stride == 1)
        ce_bwd_rows(r, x, tg, w, g, gs, gx, tt);
    else
        ce_bwd_planes(r, x, tg, w, g, gs, gx, tt);
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
void KERNEL(ce_bwd_i64)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g, size_t gs,
                        void *gx)
{
    ce_bwd_body(r, x, tg, w, g, gs, gx, NLLK_TARGET_I64);
}
void KERNEL(ce_bwd_i32)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g, size_t gs,
                        void *gx)
{
    ce_bwd_body(r, x, tg, w, g, gs, gx, NLLK_TARGET_I32);
}
void KERNEL(ce_bwd_u8)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g, size_t gs,
                       void *gx)
{
    ce_bwd_body(r, x, tg, w, g, gs, gx, NLLK_TARGET_U8);
}
void KERNEL(ce_prob_fwd)(const nllk_ce_run *r, const void *x, const void *q, const void *w, void *out, void *lse,
                         double *lanes)
{
    if (r->c_stride == 1)
        ce_prob_fwd_rows(r, x, q, w, out, lse, lanes);
    else
        ce_prob_fwd_planes(r, x, q, w, out, lse, lanes);
}
void KERNEL(ce_prob_bwd)(const nllk_ce_run *r, const void *x, const void *q, const void *w, const void *g, size_t gs,
                         void *gx, void *gq)
{
    if (r->c_stride == 1)
        ce_prob_bwd_rows(r, x, q, w, g, gs, gx, gq);
    else
        ce_prob_bwd_planes(r, x, q, w, g, gs, gx, gq);
}

/* ---- fused: class-index forward and backward in one pass (nllk_cross_entropy_fwdbwd_*) -------------------------
 * Bit-identical to the forward kernel then the backward kernel on the same run: the same max, exp pass and fold
 * (ce_row_max, ce_row_sums), the same loss (ce_index_loss over VW rows' ce_logsums) and the same gradient
 * (ce_index_grad of the same e_k and fac); only the passes over memory are shared. Rows (d == 1): a max pass (the
 * row from memory), one exp pass (from cache, its exps kept in a stack buffer for rows of up to CE_EBUF classes),
 * then the gradient, written once with plain stores: streaming ones measured slower here (0.72-0.98x the time of
 * plain ones on (n, 100 .. 32000) rows at 2 threads, BENCHMARKS.md "stop 26"), though the backward alone gains from
 * them. Longer rows (LLM vocabularies) keep their exps in the gradient's row (from cache; rewritten in place):
 * measured faster than a third pass that recomputes them (BENCHMARKS.md), which remains for storage that cannot hold
 * them (16-bit).
 * Planes (d > 1): per VW positions the forward's max and exp pass, its outputs, then the gradient (ce_fb_planes). */

/* Rows, VW at a time as ce_fwd_rows: each row's max, exp pass and gradient, then one ce_logsums and the losses. */
INLINE size_t ce_fb_rows(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, const stor_t *g,
                         size_t g_stride, stor_t *out, stor_t *lse, double *lanes, stor_t *gx,
                         const nllk_target_type tt)
{
    const size_t c = r->c;
    const ce_factors f = ce_factors_of(r->ls, c);
    elem_t ebuf[CE_EBUF];
    size_t k0 = 0;
    for (; k0 < r->len; k0 += VW) {
        const size_t cnt = r->len - k0 < VW ? r->len - k0 : VW;
        int64_t tb[VW];
        size_t good = cnt; /* rows before the first bad target (the driver checked them: none) */
        for (size_t p = 0; p < cnt; p++) {
            tb[p] = target_at(tg, k0 + p, tt);
            if (ce_bad(tb[p], r)) {
                good = p;
                break;
            }
        }
        elem_t m[VW], logsum[VW], xt[VW], wt[VW];
        double s[VW], dsum[VW];
        for (size_t p = 0; p < good; p++) {
            const size_t k = k0 + p;
            const int64_t t = tb[p];
            const int ign = t == r->ignore_index;
            const stor_t *row = x + k * r->k_stride, *next = k + 1 < r->len && VW > 1 ? row + r->k_stride : NULL;
            stor_t *grow = gx + k * r->k_stride;
            /* where the exp pass leaves the exps: the stack buffer, else the gradient's row, else nowhere */
#if S_SAME
            elem_t *const keep = c <= CE_EBUF ? ebuf : grow;
#else
            elem_t *const keep = c <= CE_EBUF ? ebuf : NULL;
#endif
            double res[3] = {0, 0, 0};
            m[p] = ce_row_max(row, c);
            if (f.smooth && !ign)
                ce_row_sums(row, NULL, w, c, m[p], f, CE_SMOOTH, next, keep, NULL, res);
            else
                ce_row_sums(row, NULL, w, c, m[p], f, CE_S, next, keep, NULL, res);
            s[p] = res[0];
            dsum[p] = res[1];
            xt[p] = ign ? (elem_t)0 : (elem_t)s_get(row + t);
            wt[p] = ign ? (elem_t)0 : w ? (elem_t)s_get(w + t) : (elem_t)1;
            elem_t gt, gs;
            const elem_t fac =
                ce_fb_factors((elem_t)s_get(g + k * g_stride), wt[p], ign ? -1 : t, f, r->wsum, res[0], &gt, &gs);
            ce_fb_grad_row(grow, row, keep, ebuf, w, c, m[p], ign ? -1 : t, gt, gs, fac, f.smooth && !ign);
        }
        ce_logsums(s, good, logsum);
        for (size_t p = 0; p < good; p++) {
            const size_t k = k0 + p;
            elem_t loss = 0;
            if (lse)
                s_set(lse + k, m[p] + logsum[p]);
            if (tb[p] != r->ignore_index)
                loss = ce_index_loss(xt[p], m[p], logsum[p], wt[p], dsum[p], r->wsum, f);
            if (out)
                s_set(out + k, loss);
            if (lanes) {
                lanes[k % 16] += (double)loss;
                lanes[16 + k % 16] += (double)wt[p];
            }
        }
        if (good < cnt) {
            k0 += good;
            break;
        }
    }
    return k0 < r->len ? k0 : r->len;
}

/* Planes, VW positions at a time: the max pass and one exp pass (ce_plane_stats, its exps kept as the backward keeps
 * them: ce_plane_ekeep), the forward's outputs (ce_fwd_plane_out), then the gradient plane by plane (ce_bwd_plane_grad;
 * streaming stores where the backward uses them and the run's gradient starts on the VW-element grid, so that the
 * groups stay on the forward's grid of lanes). */
INLINE size_t ce_fb_planes(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *w, const stor_t *g,
                           size_t g_stride, stor_t *out, stor_t *lse, double *lanes, stor_t *gx,
                           const nllk_target_type tt)
{
    const size_t c = r->c, cs = r->c_stride;
    const ce_factors f = ce_factors_of(r->ls, c);
    elem_t ebuf[CE_PLANE_EBUF * VW];
    const int stream = r->stream && c <= CE_PLANE_EBUF && cs % VW == 0 && ce_stream_head(gx) == 0;
    vacc_t acc[G], accw[G];
    ce_plane_lanes_get(lanes, f, acc, accw);
    int64_t tb[VW] = {0}; /* filled and read with smoothing only (initialised: gcc 12 saw a read without) */
    for (size_t o = 0; o < r->len;) {
        const size_t mm = r->len - o;
        const int pair = ce_plane_pair_at(r, f, gx, o, stream);
        vidx_t tv[2];
        const size_t bad = ce_plane_targets2(r, tg, o, tv, f.smooth ? tb : NULL, pair, tt);
        if (bad) {
            if (stream)
                v_stream_fence();
            return o + bad - 1;
        }
#if S_PAIRS
        if (pair) { /* as ce_bwd_plane_step's */
            elem_t *e = c <= CE_PLANE_EBUF / 2 ? ebuf : NULL;
            ce_plane sp[2];
            ce_plane_stats_pair(x + o, w, c, cs, f, e, 2 * VW, 1, sp);
            ce_fwd_plane_pair_out(r, x, tv, w, out, lse, lanes, acc, accw, o, f, sp);
            ce_bwd_plane_grad_pair(r, x, tv, w, g, g_stride, gx, o, f, e, 2 * VW, sp, stream);
            o += 2 * VW;
            continue;
        }
#endif
        size_t es;
        elem_t *e = ce_plane_ekeep(c, gx, o, ebuf, &es, cs);
        ce_plane st;
        ce_plane_stats(x + o, NULL, w, c, cs, mm, f, f.smooth ? CE_SMOOTH : CE_S, e, es, 1, &st);
        ce_fwd_plane_out(r, x, tv[0], tb, w, out, lse, lanes, acc, accw, o, mm, f, &st);
        ce_bwd_plane_grad(r, x, tv[0], w, g, g_stride, gx, o, mm, f, e, es, &st, stream && mm >= VW);
        o += VW;
    }
    ce_plane_lanes_put(lanes, f, acc, accw);
    if (stream)
        v_stream_fence();
    return r->len;
}

/* Any run: rows or planes, fused. */
INLINE size_t ce_fb_body(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g, size_t gs,
                         void *out, void *lse, double *lanes, void *gx, const nllk_target_type tt)
{
    if (r->c_stride == 1)
        return ce_fb_rows(r, x, tg, w, g, gs, out, lse, lanes, gx, tt);
    return ce_fb_planes(r, x, tg, w, g, gs, out, lse, lanes, gx, tt);
}

size_t KERNEL(ce_fwdbwd_i64)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g,
                             size_t gs, void *out, void *lse, double *lanes, void *gx)
{
    return ce_fb_body(r, x, tg, w, g, gs, out, lse, lanes, gx, NLLK_TARGET_I64);
}
size_t KERNEL(ce_fwdbwd_i32)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g,
                             size_t gs, void *out, void *lse, double *lanes, void *gx)
{
    return ce_fb_body(r, x, tg, w, g, gs, out, lse, lanes, gx, NLLK_TARGET_I32);
}
size_t KERNEL(ce_fwdbwd_u8)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *g,
                            size_t gs, void *out, void *lse, double *lanes, void *gx)
{
    return ce_fb_body(r, x, tg, w, g, gs, out, lse, lanes, gx, NLLK_TARGET_U8);
}
