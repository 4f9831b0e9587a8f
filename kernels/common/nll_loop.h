/* The NLL kernel loops, written once over a vector map and instantiated by every ISA (scalar included).
 *
 * Before including, define NLLK_E, NLLK_W, NLLK_OP, NLLK_K as for poisson_loop.h. The map provides, besides
 * set1, neg, mul, load, load_n, store, store_n and the accumulator operations:
 *   type t                   W targets as int64 lanes (a vector, or a pair of them, or a plain int64_t)
 *   tload_i64/_i32/_u8(p)    W targets, widened to int64 (sign- or zero-extended)
 *   kofs(ks)                 lane i holds i*ks (wrapping)
 *   tbad(t, c, ign)          bit i set when target i is neither ign nor in [0, c) (compared in 64 bits)
 *   tvalid(t, ign)           bit i set when target i is not ign
 *   toff(t, kofs, cs)        lane i: kofs[i] + t[i]*cs (wrapping; only meaningful for valid lanes)
 *   gather(base, off, m)     lane i: base[off[i]] where bit i of m is set, else +0; nothing else is read
 *   scatter(base, off, m, v) base[off[i]] = v[i] where bit i of m is set; nothing else is written
 *   mzero(m, v)              lanes whose bit of m is clear set to +0
 *
 * Element k of a run is lane k % W of vector k / W; a vector's gather base is x + k0*k_stride (k0 its first
 * element), so the offsets are lane*k_stride + target*c_stride relative to it, in 64 bits (64-bit indices
 * throughout: any run the driver can describe is addressable). Each vector of targets is validated before it
 * is gathered, and gathers are masked to the valid, non-ignored lanes: nothing is read out of bounds.
 * A tail of m < W elements is one vector whose padding targets are ignore_index (loss +0, weight +0: adds +0.0
 * to the lanes, bit-neutral; nothing gathered or stored there). */
#define NLLK_G (16 / NLLK_W)
/* Narrow rows (NLLK_NARROW_ROW_BYTES, dispatch/kernels.h) are read almost whole, in order, yet gathers do not
 * train the hardware prefetcher on Zen 5: without a software prefetch this far ahead the vector kernels ran 2-3x
 * slower than the scalar one on a (1048576, 10) input. Wide rows and N-D planes measured no gain from it. */
#define NLLK_PF_DIST 4096

static inline __attribute__((always_inline)) NLLK_OP(t) NLLK_K(tload)(const void *tg, size_t o, const int tt)
{
    switch (tt) {
    case 0: return NLLK_OP(tload_i64)((const int64_t *)tg + o);
    case 1: return NLLK_OP(tload_i32)((const int32_t *)tg + o);
    default: return NLLK_OP(tload_u8)((const uint8_t *)tg + o);
    }
}

/* The m < W targets from o on, padded with ign. */
static inline __attribute__((always_inline)) NLLK_OP(t) NLLK_K(tload_tail)(const void *tg, size_t o, size_t m,
                                                                          int64_t ign, const int tt)
{
    int64_t buf[NLLK_W];
    for (size_t i = 0; i < NLLK_W; i++)
        buf[i] = i >= m ? ign
                 : tt == 0 ? ((const int64_t *)tg)[o + i]
                 : tt == 1 ? (int64_t)((const int32_t *)tg)[o + i]
                           : (int64_t)((const uint8_t *)tg)[o + i];
    return NLLK_OP(tload_i64)(buf);
}

static inline __attribute__((always_inline)) size_t NLLK_K(nll_fwd_body)(const nllk_nll_run *r, const NLLK_E *x,
                                                                        const void *tg, const NLLK_E *weight,
                                                                        NLLK_E *out, double *lanes, const int tt)
{
    const size_t len = r->len, ks = r->k_stride, cs = r->c_stride, c = r->c;
    const int64_t ign = r->ignore_index;
    const NLLK_OP(t) kofs = NLLK_OP(kofs)(ks);
    const NLLK_OP(v) one = NLLK_OP(set1)(1.0);
    NLLK_OP(a) acc[NLLK_G], accw[NLLK_G];
    for (int j = 0; j < NLLK_G; j++) {
        acc[j] = lanes ? NLLK_OP(acc_load)(lanes + j * NLLK_W) : NLLK_OP(acc_zero)();
        accw[j] = lanes ? NLLK_OP(acc_load)(lanes + 16 + j * NLLK_W) : NLLK_OP(acc_zero)();
    }
    const size_t row_bytes = ks * sizeof(NLLK_E);
    const int pf_dense = NLLK_W > 1 && cs == 1 && row_bytes <= NLLK_NARROW_ROW_BYTES; /* 2-D runs only */
    for (size_t k = 0; k < len; k += 16) {
        if (pf_dense) {
            /* may lie past the end of x: a prefetch is never dereferenced */
            const uintptr_t p = (uintptr_t)(x + k * ks) + NLLK_PF_DIST;
            for (size_t b = 0; b < 16 * row_bytes; b += 64)
                __builtin_prefetch((const void *)(p + b));
        }
        for (int j = 0; j < NLLK_G; j++) {
            const size_t o = k + (size_t)j * NLLK_W;
            if (o >= len)
                break;
            const size_t m = len - o;
            const NLLK_OP(t) tv = m >= NLLK_W ? NLLK_K(tload)(tg, o, tt) : NLLK_K(tload_tail)(tg, o, m, ign, tt);
            const unsigned bad = NLLK_OP(tbad)(tv, c, ign);
            if (bad)
                return o + (size_t)__builtin_ctz(bad);
            const unsigned valid = NLLK_OP(tvalid)(tv, ign);
            const NLLK_OP(v) xv = NLLK_OP(gather)(x + o * ks, NLLK_OP(toff)(tv, kofs, cs), valid);
            const NLLK_OP(v) wv = weight ? NLLK_OP(gather)(weight, tv, valid) : NLLK_OP(mzero)(valid, one);
            const NLLK_OP(v) loss = NLLK_OP(mzero)(valid, NLLK_OP(mul)(NLLK_OP(neg)(xv), wv));
            if (out) {
                if (m >= NLLK_W)
                    NLLK_OP(store)(out + o, loss);
                else
                    NLLK_OP(store_n)(out + o, loss, m);
            }
            acc[j] = NLLK_OP(acc_add)(acc[j], loss);
            accw[j] = NLLK_OP(acc_add)(accw[j], wv);
        }
    }
    if (lanes)
        for (int j = 0; j < NLLK_G; j++) {
            NLLK_OP(acc_store)(lanes + j * NLLK_W, acc[j]);
            NLLK_OP(acc_store)(lanes + 16 + j * NLLK_W, accw[j]);
        }
    return len;
}

static inline __attribute__((always_inline)) void NLLK_K(nll_bwd_body)(const nllk_nll_run *r, const void *tg,
                                                                      const NLLK_E *weight, const NLLK_E *g,
                                                                      size_t g_stride, NLLK_E *gx, const int tt)
{
    const size_t len = r->len, ks = r->k_stride, cs = r->c_stride;
    const int64_t ign = r->ignore_index;
    if (len == 0)
        return;
    const NLLK_OP(t) kofs = NLLK_OP(kofs)(ks);
    const NLLK_OP(v) gb = NLLK_OP(set1)((double)g[0]);
    for (size_t o = 0; o < len; o += NLLK_W) {
        const size_t m = len - o;
        const NLLK_OP(t) tv = m >= NLLK_W ? NLLK_K(tload)(tg, o, tt) : NLLK_K(tload_tail)(tg, o, m, ign, tt);
        const unsigned valid = NLLK_OP(tvalid)(tv, ign);
        if (!valid)
            continue;
        const NLLK_OP(v) gv = !g_stride ? gb : m >= NLLK_W ? NLLK_OP(load)(g + o) : NLLK_OP(load_n)(g + o, m);
        const NLLK_OP(v) gneg = NLLK_OP(neg)(gv);
        const NLLK_OP(v) v = weight ? NLLK_OP(mul)(NLLK_OP(gather)(weight, tv, valid), gneg) : gneg;
        NLLK_OP(scatter)(gx + o * ks, NLLK_OP(toff)(tv, kofs, cs), valid, v);
    }
}

static inline __attribute__((always_inline)) size_t NLLK_K(nll_check_body)(size_t len, const void *tg, size_t c,
                                                                          int64_t ign, const int tt)
{
    for (size_t o = 0; o < len; o += NLLK_W) {
        const size_t m = len - o;
        const NLLK_OP(t) tv = m >= NLLK_W ? NLLK_K(tload)(tg, o, tt) : NLLK_K(tload_tail)(tg, o, m, ign, tt);
        const unsigned bad = NLLK_OP(tbad)(tv, c, ign);
        if (bad)
            return o + (size_t)__builtin_ctz(bad);
    }
    return len;
}

#define NLLK_NLL_DEFINE_(TN, TT)                                                                                \
    static size_t NLLK_K(nll_fwd_##TN)(const nllk_nll_run *r, const NLLK_E *x, const void *tg,                 \
                                       const NLLK_E *weight, NLLK_E *out, double *lanes)                        \
    {                                                                                                           \
        return NLLK_K(nll_fwd_body)(r, x, tg, weight, out, lanes, TT);                                          \
    }                                                                                                           \
    static void NLLK_K(nll_bwd_##TN)(const nllk_nll_run *r, const void *tg, const NLLK_E *weight,              \
                                     const NLLK_E *g, size_t g_stride, NLLK_E *gx)                              \
    {                                                                                                           \
        NLLK_K(nll_bwd_body)(r, tg, weight, g, g_stride, gx, TT);                                               \
    }                                                                                                           \
    __attribute__((unused)) static size_t NLLK_K(nll_check_##TN)(size_t len, const void *tg, size_t c, int64_t ign)                    \
    {                                                                                                           \
        return NLLK_K(nll_check_body)(len, tg, c, ign, TT);                                                     \
    }
NLLK_NLL_DEFINE_(i64, 0)
NLLK_NLL_DEFINE_(i32, 1)
NLLK_NLL_DEFINE_(u8, 2)
#undef NLLK_NLL_DEFINE_
#undef NLLK_G
#undef NLLK_PF_DIST
