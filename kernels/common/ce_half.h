/* Cross-entropy on 16-bit storage (bf16, f16), included by kernels/common/kernels.c in those builds only.
 *
 * The float kernels of ce_kernels.h (compiled in the same object, named *_f32core) do the work on float copies on
 * the stack (kernels/common/storage.h: converted exactly): 2-D runs one position at a time (its c logits, and
 * probability targets, as a one-position row; the weights once per run), N-D runs in blocks of positions (float
 * planes); every float result is rounded once to the storage type. One-position rows add their losses (float) and
 * weights into the canonical lanes in increasing k themselves, as the float kernels do; plane blocks start at
 * multiples of 16 and pass the lanes on. Both layouts give the same bits (nllk.h). So every
 * 16-bit result is the f32 function's on the converted inputs, rounded once, and ce_kernels.h needs no 16-bit code.
 * The backward always recomputes lse in float (a 16-bit lse passed in is not used: it is too coarse for exp(x - lse);
 * nllk.h). Rows of at most NLLK_CE_HALF_MAX_C classes (dispatch/kernels.h; the driver refuses more). */

#define CE16_C NLLK_CE_HALF_MAX_C

/* the c values of one position (class q at p[q * cs]) as floats */
INLINE void ce16_widen(float *dst, const stor_t *p, size_t c, size_t cs)
{
    if (cs != 1) {
        for (size_t q = 0; q < c; q++)
            dst[q] = (float)s_get(p + q * cs);
        return;
    }
    size_t q = 0;
    for (; q + VW <= c; q += VW)
        v_store(dst + q, s_load(p + q));
    if (q < c)
        v_store_n(dst + q, s_load_n(p + q, c - q), c - q);
}
/* floats rounded once to the storage type */
INLINE void ce16_narrow(stor_t *p, const float *src, size_t c, size_t cs)
{
    if (cs != 1) {
        for (size_t q = 0; q < c; q++)
            s_set(p + q * cs, src[q]);
        return;
    }
    size_t q = 0;
    for (; q + VW <= c; q += VW)
        s_store(p + q, v_load(src + q));
    if (q < c)
        s_store_n(p + q, v_load_n(src + q, c - q), c - q);
}

INLINE nllk_ce_run ce16_row(const nllk_ce_run *r)
{
    nllk_ce_run one = *r;
    one.len = 1;
    one.k_stride = r->c;
    one.c_stride = 1;
    return one;
}

/* An N-D run of at most CE16_C / 16 classes goes through the float kernels in blocks of positions (float planes of
 * L positions on the stack, L a multiple of 16); other runs one position at a time. */
INLINE int ce16_planes(const nllk_ce_run *r) { return r->k_stride == 1 && r->c_stride != 1 && r->c * 16 <= CE16_C; }

/* class-index (prob == 0, core_i) or probability targets (core_p); returns len or the first bad target's k */
INLINE size_t ce16_fwd(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *q, const stor_t *w,
                       stor_t *out, stor_t *lse, double *lanes, nllk_ce_fwd_fn core_i, nllk_ce_prob_fwd_fn core_p,
                       const nllk_target_type tt)
{
    float xr[CE16_C], qr[CE16_C], wf[CE16_C];
    const size_t c = r->c, tsz = tt == NLLK_TARGET_I64 ? 8 : tt == NLLK_TARGET_I32 ? 4 : 1;
    if (w)
        ce16_widen(wf, w, c, 1);
    if (ce16_planes(r)) { /* blocks of L positions (a multiple of 16: the lanes stay the run's) */
        float ob[CE16_C], lb[CE16_C];
        const size_t L = CE16_C / c / 16 * 16, cs = r->c_stride;
        for (size_t k0 = 0; k0 < r->len; k0 += L) {
            const size_t m = r->len - k0 < L ? r->len - k0 : L;
            for (size_t cl = 0; cl < c; cl++) {
                ce16_widen(xr + cl * m, x + cl * cs + k0, m, 1);
                if (core_p)
                    ce16_widen(qr + cl * m, q + cl * cs + k0, m, 1);
            }
            nllk_ce_run pr = *r;
            pr.len = m;
            pr.c_stride = m;
            if (core_p) {
                core_p(&pr, xr, qr, w ? wf : NULL, out ? ob : NULL, lse ? lb : NULL, lanes);
            } else {
                const size_t done = core_i(&pr, xr, (const char *)tg + k0 * tsz, w ? wf : NULL, out ? ob : NULL,
                                           lse ? lb : NULL, lanes);
                if (done != m)
                    return k0 + done;
            }
            if (out)
                ce16_narrow(out + k0, ob, m, 1);
            if (lse)
                ce16_narrow(lse + k0, lb, m, 1);
        }
        return r->len;
    }
    const nllk_ce_run one = ce16_row(r);
    for (size_t k = 0; k < r->len; k++) {
        ce16_widen(xr, x + k * r->k_stride, c, r->c_stride);
        float loss = 0, l = 0, wt = 1;
        if (core_p) {
            ce16_widen(qr, q + k * r->k_stride, c, r->c_stride);
            core_p(&one, xr, qr, w ? wf : NULL, &loss, &l, NULL);
        } else {
            if (core_i(&one, xr, (const char *)tg + k * tsz, w ? wf : NULL, &loss, &l, NULL) != 1)
                return k;
            const int64_t t = target_at(tg, k, tt);
            wt = t == r->ignore_index ? 0.0f : w ? wf[t] : 1.0f;
        }
        if (out)
            s_set(out + k, loss);
        if (lse)
            s_set(lse + k, l);
        if (lanes) {
            lanes[k % 16] += (double)loss;
            lanes[16 + k % 16] += (double)wt;
        }
    }
    return r->len;
}

INLINE void ce16_bwd(const nllk_ce_run *r, const stor_t *x, const void *tg, const stor_t *q, const stor_t *w,
                     const stor_t *g, size_t gs, stor_t *gx, stor_t *gq, nllk_ce_bwd_fn core_i,
                     nllk_ce_prob_bwd_fn core_p, const nllk_target_type tt)
{
    float xr[CE16_C], qr[CE16_C], wf[CE16_C], gr[CE16_C], gqr[CE16_C];
    const size_t c = r->c, tsz = tt == NLLK_TARGET_I64 ? 8 : tt == NLLK_TARGET_I32 ? 4 : 1;
    if (w)
        ce16_widen(wf, w, c, 1);
    if (ce16_planes(r)) { /* blocks of L positions */
        float gb[CE16_C];
        const size_t L = CE16_C / c / 16 * 16, cs = r->c_stride;
        for (size_t k0 = 0; k0 < r->len; k0 += L) {
            const size_t m = r->len - k0 < L ? r->len - k0 : L;
            for (size_t cl = 0; cl < c; cl++) {
                ce16_widen(xr + cl * m, x + cl * cs + k0, m, 1);
                if (core_p)
                    ce16_widen(qr + cl * m, q + cl * cs + k0, m, 1);
            }
            if (gs)
                ce16_widen(gb, g + k0, m, 1);
            else
                gb[0] = (float)s_get(g);
            nllk_ce_run pr = *r;
            pr.len = m;
            pr.c_stride = m;
            if (core_p)
                core_p(&pr, xr, qr, w ? wf : NULL, NULL, gb, gs ? 1 : 0, gr, gq ? gqr : NULL);
            else
                core_i(&pr, xr, (const char *)tg + k0 * tsz, w ? wf : NULL, NULL, gb, gs ? 1 : 0, gr);
            for (size_t cl = 0; cl < c; cl++) {
                ce16_narrow(gx + cl * cs + k0, gr + cl * m, m, 1);
                if (core_p && gq)
                    ce16_narrow(gq + cl * cs + k0, gqr + cl * m, m, 1);
            }
        }
        return;
    }
    const nllk_ce_run one = ce16_row(r);
    for (size_t k = 0; k < r->len; k++) {
        ce16_widen(xr, x + k * r->k_stride, c, r->c_stride);
        const float gk = (float)s_get(g + k * gs);
        if (core_p) {
            ce16_widen(qr, q + k * r->k_stride, c, r->c_stride);
            core_p(&one, xr, qr, w ? wf : NULL, NULL, &gk, 0, gr, gq ? gqr : NULL);
            if (gq)
                ce16_narrow(gq + k * r->k_stride, gqr, c, r->c_stride);
        } else {
            core_i(&one, xr, (const char *)tg + k * tsz, w ? wf : NULL, NULL, &gk, 0, gr);
        }
        ce16_narrow(gx + k * r->k_stride, gr, c, r->c_stride);
    }
}

#define CE16_FWD(tn, TT)                                                                                               \
    size_t KERNEL(ce_fwd_##tn)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, void *out,          \
                               void *lse, double *lanes)                                                               \
    {                                                                                                                  \
        return ce16_fwd(r, x, tg, NULL, w, out, lse, lanes, KERNEL(ce_fwd_##tn##_f32core), NULL, TT);                  \
    }                                                                                                                  \
    void KERNEL(ce_bwd_##tn)(const nllk_ce_run *r, const void *x, const void *tg, const void *w, const void *lse,      \
                             const void *g, size_t gs, void *gx)                                                       \
    {                                                                                                                  \
        (void)lse;                                                                                                     \
        ce16_bwd(r, x, tg, NULL, w, g, gs, gx, NULL, KERNEL(ce_bwd_##tn##_f32core), NULL, TT);                         \
    }
CE16_FWD(i64, NLLK_TARGET_I64)
CE16_FWD(i32, NLLK_TARGET_I32)
CE16_FWD(u8, NLLK_TARGET_U8)
#undef CE16_FWD

void KERNEL(ce_prob_fwd)(const nllk_ce_run *r, const void *x, const void *q, const void *w, void *out, void *lse,
                         double *lanes)
{
    ce16_fwd(r, x, NULL, q, w, out, lse, lanes, NULL, KERNEL(ce_prob_fwd_f32core), NLLK_TARGET_I64);
}
void KERNEL(ce_prob_bwd)(const nllk_ce_run *r, const void *x, const void *q, const void *w, const void *lse,
                         const void *g, size_t gs, void *gx, void *gq)
{
    (void)lse;
    ce16_bwd(r, x, NULL, q, w, g, gs, gx, gq, NULL, KERNEL(ce_prob_bwd_f32core), NLLK_TARGET_I64);
}
