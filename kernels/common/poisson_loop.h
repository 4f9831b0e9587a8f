/* The Poisson NLL kernel loops, written once over a vector map and instantiated by every ISA (scalar included).
 *
 * Before including (see kernels/common/kernels_impl.h, which does it once per dtype), define:
 *   NLLK_E          the element type (float, double)
 *   NLLK_W          lanes per vector (1 for scalar); 16 % NLLK_W == 0
 *   NLLK_OP(name)   the map (kernels/<isa>/vec.h). Besides the formula's operations (poisson_formula.h):
 *                     types v (vector of W elements), a (W doubles: the canonical lanes of W elements)
 *                     load(p), store(p, v)           W elements, unaligned
 *                     load_n(p, m), store_n(p, v, m) the first m < W lanes only (the rest read as +0 and not
 *                                                    written; nothing outside [p, p+m) is accessed)
 *                     zero_n(v, m)                   lanes >= m set to +0
 *                     acc_zero(), acc_load(d), acc_store(d, a), acc_add(a, v)   a[i] += (double)v[i]
 *   NLLK_FN(name)   the formula's names (poisson_formula.h must be included before this file)
 *   NLLK_K(name)    the name of a kernel of this dtype (static: reached through the table only)
 *
 * A 16-element group is 16/W vectors; vector j of each group adds into accumulator j, which holds the canonical
 * lanes j*W .. j*W+W-1 (kernels.h): every lane adds its elements in increasing order, as the scalar loop does.
 * A tail of m < W elements is one masked vector; its padding lanes add +0.0 to the lanes (bit-neutral). */
#define NLLK_G (16 / NLLK_W)

/* Chunks of NLLK_CHUNK elements: first the losses of the chunk (to out, or to a stack buffer), then their sum
 * into the lanes. Two passes keep the accumulators in registers: exp/log are calls, which clobber every vector
 * register, so accumulating across them would put a store/reload on each lane's add chain. */
#define NLLK_CHUNK 256

static inline __attribute__((always_inline)) void NLLK_K(poisson_fwd_body)(size_t n, const NLLK_E *x,
                                                                          const NLLK_E *t, NLLK_OP(v) eps,
                                                                          NLLK_E *out, double *lanes,
                                                                          const int log_input, const int full)
{
    NLLK_E buf[NLLK_CHUNK];
    NLLK_OP(a) acc[NLLK_G];
    for (int j = 0; j < NLLK_G; j++)
        acc[j] = lanes ? NLLK_OP(acc_load)(lanes + j * NLLK_W) : NLLK_OP(acc_zero)();
    for (size_t k0 = 0; k0 < n; k0 += NLLK_CHUNK) {
        const size_t len = n - k0 < NLLK_CHUNK ? n - k0 : NLLK_CHUNK;
        NLLK_E *dst = out ? out + k0 : buf;
        size_t o = 0;
        for (; o + NLLK_W <= len; o += NLLK_W)
            NLLK_OP(store)(dst + o, NLLK_FN(poisson_loss)(NLLK_OP(load)(x + k0 + o), NLLK_OP(load)(t + k0 + o), eps,
                                                          log_input, full));
        if (o < len) /* the tail: one masked vector */
            NLLK_OP(store_n)(dst + o,
                             NLLK_FN(poisson_loss)(NLLK_OP(load_n)(x + k0 + o, len - o),
                                                   NLLK_OP(load_n)(t + k0 + o, len - o), eps, log_input, full),
                             len - o);
        if (!lanes)
            continue;
        size_t g = 0;
        for (; g + 16 <= len; g += 16)
            for (int j = 0; j < NLLK_G; j++)
                acc[j] = NLLK_OP(acc_add)(acc[j], NLLK_OP(load)(dst + g + (size_t)j * NLLK_W));
        for (int j = 0; j < NLLK_G && g + (size_t)j * NLLK_W < len; j++) {
            const size_t v = g + (size_t)j * NLLK_W, m = len - v;
            /* padding lanes add +0.0: bit-neutral */
            acc[j] = NLLK_OP(acc_add)(acc[j], m >= NLLK_W ? NLLK_OP(load)(dst + v)
                                                          : NLLK_OP(zero_n)(NLLK_OP(load_n)(dst + v, m), m));
        }
    }
    if (lanes)
        for (int j = 0; j < NLLK_G; j++)
            NLLK_OP(acc_store)(lanes + j * NLLK_W, acc[j]);
}

static void NLLK_K(poisson_fwd)(size_t n, const NLLK_E *x, const NLLK_E *t, const nllk_poisson_params *p,
                                NLLK_E *out, double *lanes)
{
    const NLLK_OP(v) eps = NLLK_OP(set1)((double)(NLLK_E)p->eps);
    if (p->log_input) {
        if (p->full)
            NLLK_K(poisson_fwd_body)(n, x, t, eps, out, lanes, 1, 1);
        else
            NLLK_K(poisson_fwd_body)(n, x, t, eps, out, lanes, 1, 0);
    } else {
        if (p->full)
            NLLK_K(poisson_fwd_body)(n, x, t, eps, out, lanes, 0, 1);
        else
            NLLK_K(poisson_fwd_body)(n, x, t, eps, out, lanes, 0, 0);
    }
}

static inline __attribute__((always_inline)) void NLLK_K(poisson_bwd_step)(const NLLK_E *x, const NLLK_E *t,
                                                                          NLLK_OP(v) eps, const NLLK_E *g,
                                                                          size_t g_stride, NLLK_OP(v) gb,
                                                                          NLLK_E *gx, NLLK_E *gt, size_t m,
                                                                          const int log_input, const int full)
{
    if (m >= NLLK_W) {
        const NLLK_OP(v) xv = NLLK_OP(load)(x), tv = NLLK_OP(load)(t);
        const NLLK_OP(v) gv = g_stride ? NLLK_OP(load)(g) : gb;
        NLLK_OP(store)(gx, NLLK_FN(poisson_grad_input)(xv, tv, eps, gv, log_input));
        if (gt)
            NLLK_OP(store)(gt, NLLK_FN(poisson_grad_target)(xv, tv, eps, gv, log_input, full));
    } else {
        const NLLK_OP(v) xv = NLLK_OP(load_n)(x, m), tv = NLLK_OP(load_n)(t, m);
        const NLLK_OP(v) gv = g_stride ? NLLK_OP(load_n)(g, m) : gb;
        NLLK_OP(store_n)(gx, NLLK_FN(poisson_grad_input)(xv, tv, eps, gv, log_input), m);
        if (gt)
            NLLK_OP(store_n)(gt, NLLK_FN(poisson_grad_target)(xv, tv, eps, gv, log_input, full), m);
    }
}

static inline __attribute__((always_inline)) void NLLK_K(poisson_bwd_body)(size_t n, const NLLK_E *x,
                                                                          const NLLK_E *t, NLLK_OP(v) eps,
                                                                          const NLLK_E *g, size_t g_stride,
                                                                          NLLK_E *gx, NLLK_E *gt,
                                                                          const int log_input, const int full)
{
    const NLLK_OP(v) gb = NLLK_OP(set1)((double)g[0]);
    size_t k = 0;
    for (; k + NLLK_W <= n; k += NLLK_W)
        NLLK_K(poisson_bwd_step)(x + k, t + k, eps, g + k * g_stride, g_stride, gb, gx + k, gt ? gt + k : NULL,
                                 NLLK_W, log_input, full);
    if (k < n)
        NLLK_K(poisson_bwd_step)(x + k, t + k, eps, g + k * g_stride, g_stride, gb, gx + k, gt ? gt + k : NULL,
                                 n - k, log_input, full);
}

static void NLLK_K(poisson_bwd)(size_t n, const NLLK_E *x, const NLLK_E *t, const nllk_poisson_params *p,
                                const NLLK_E *g, size_t g_stride, NLLK_E *gx, NLLK_E *gt)
{
    if (n == 0)
        return;
    const NLLK_OP(v) eps = NLLK_OP(set1)((double)(NLLK_E)p->eps);
    if (p->log_input) {
        if (p->full)
            NLLK_K(poisson_bwd_body)(n, x, t, eps, g, g_stride, gx, gt, 1, 1);
        else
            NLLK_K(poisson_bwd_body)(n, x, t, eps, g, g_stride, gx, gt, 1, 0);
    } else {
        if (p->full)
            NLLK_K(poisson_bwd_body)(n, x, t, eps, g, g_stride, gx, gt, 0, 1);
        else
            NLLK_K(poisson_bwd_body)(n, x, t, eps, g, g_stride, gx, gt, 0, 0);
    }
}

#undef NLLK_G
#undef NLLK_CHUNK
