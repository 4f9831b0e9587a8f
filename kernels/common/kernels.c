/* Every kernel of one (build, dtype): the loops, written once over the vector map, and the table.
 *
 * Compiled once per line of the ISA registry (kernels/isas.h) and dtype, SLEEF-style: -I kernels/<dir> (its
 * vec.h, the map: kernels/common/vec_ops.h), -DNLLK_BUILD=<build>, -DNLLK_DTYPE=f32 and -DNLLK_DTYPE_F32 (or
 * f64), with the build's flags. Every kernel is named dtype, op and build, XNNPACK style
 * (nllk_f32_nll_fwd_i64__avx512), hidden from the shared library's exports, and reached through the table
 * nllk_<dtype>_kernels__<build> (dispatch/kernels.h says what each kernel computes). */
#include <stddef.h>
#include <stdint.h>

#include "../../dispatch/kernels.h"
#include "../../include/nllk.h"
#include "vec.h"

#include "poisson_formula.h"

#define NLLK_NAME_(dtype, op, build) nllk_##dtype##_##op##__##build
#define NLLK_NAME(dtype, op, build) NLLK_NAME_(dtype, op, build)
#define KERNEL(op) NLLK_NAME(NLLK_DTYPE, op, NLLK_BUILD)

#define INLINE static inline __attribute__((always_inline))

/* A 16-element group is G vectors; vector j of each group adds into accumulator j, which holds the canonical lanes
 * j*VW .. j*VW+VW-1 (dispatch/kernels.h): every lane adds its elements in increasing order, as the scalar loop
 * does. A tail of m < VW elements is one masked vector; its padding lanes add +0.0 to the lanes (bit-neutral). */
#define G (16 / VW)

/* the first m < VW lanes */
static inline unsigned first_lanes(size_t m) { return (1u << m) - 1u; }

/* ---- Poisson -------------------------------------------------------------------------------------------------- */

/* Chunks of CHUNK elements: first the losses of the chunk (to out, or to a stack buffer), then their sum into the
 * lanes. Two passes keep the accumulators in registers: exp/log are calls, which clobber every vector register, so
 * accumulating across them would put a store/reload on each lane's add chain. */
#define CHUNK 256

INLINE void poisson_fwd_body(size_t n, const elem_t *x, const elem_t *t, vec_t eps, elem_t *out, double *lanes,
                             const int log_input, const int full)
{
    elem_t buf[CHUNK];
    vacc_t acc[G];
    for (int j = 0; j < G; j++)
        acc[j] = lanes ? v_acc_load(lanes + j * VW) : v_acc_zero();
    for (size_t k0 = 0; k0 < n; k0 += CHUNK) {
        const size_t len = n - k0 < CHUNK ? n - k0 : CHUNK;
        elem_t *dst = out ? out + k0 : buf;
        size_t o = 0;
        for (; o + VW <= len; o += VW)
            v_store(dst + o, poisson_loss(v_load(x + k0 + o), v_load(t + k0 + o), eps, log_input, full));
        if (o < len) /* the tail: one masked vector */
            v_store_n(dst + o,
                      poisson_loss(v_load_n(x + k0 + o, len - o), v_load_n(t + k0 + o, len - o), eps, log_input, full),
                      len - o);
        if (!lanes)
            continue;
        size_t g = 0;
        for (; g + 16 <= len; g += 16)
            for (int j = 0; j < G; j++)
                acc[j] = v_acc_add(acc[j], v_load(dst + g + (size_t)j * VW));
        for (int j = 0; j < G && g + (size_t)j * VW < len; j++) {
            const size_t v = g + (size_t)j * VW, m = len - v;
            /* padding lanes add +0.0: bit-neutral */
            acc[j] = v_acc_add(acc[j], m >= VW ? v_load(dst + v) : v_mzero(first_lanes(m), v_load_n(dst + v, m)));
        }
    }
    if (lanes)
        for (int j = 0; j < G; j++)
            v_acc_store(lanes + j * VW, acc[j]);
}

void KERNEL(poisson_fwd)(size_t n, const void *x, const void *t, const nllk_poisson_params *p, void *out, double *lanes)
{
    const vec_t eps = v_set1((double)(elem_t)p->eps);
    if (p->log_input) {
        if (p->full)
            poisson_fwd_body(n, x, t, eps, out, lanes, 1, 1);
        else
            poisson_fwd_body(n, x, t, eps, out, lanes, 1, 0);
    } else {
        if (p->full)
            poisson_fwd_body(n, x, t, eps, out, lanes, 0, 1);
        else
            poisson_fwd_body(n, x, t, eps, out, lanes, 0, 0);
    }
}

INLINE void poisson_bwd_step(const elem_t *x, const elem_t *t, vec_t eps, const elem_t *g, size_t g_stride, vec_t gb,
                             elem_t *gx, elem_t *gt, size_t m, const int log_input, const int full)
{
    if (m >= VW) {
        const vec_t xv = v_load(x), tv = v_load(t);
        const vec_t gv = g_stride ? v_load(g) : gb;
        v_store(gx, poisson_grad_input(xv, tv, eps, gv, log_input));
        if (gt)
            v_store(gt, poisson_grad_target(xv, tv, eps, gv, log_input, full));
    } else {
        const vec_t xv = v_load_n(x, m), tv = v_load_n(t, m);
        const vec_t gv = g_stride ? v_load_n(g, m) : gb;
        v_store_n(gx, poisson_grad_input(xv, tv, eps, gv, log_input), m);
        if (gt)
            v_store_n(gt, poisson_grad_target(xv, tv, eps, gv, log_input, full), m);
    }
}

INLINE void poisson_bwd_body(size_t n, const elem_t *x, const elem_t *t, vec_t eps, const elem_t *g, size_t g_stride,
                             elem_t *gx, elem_t *gt, const int log_input, const int full)
{
    const vec_t gb = v_set1((double)g[0]);
    size_t k = 0;
    for (; k + VW <= n; k += VW)
        poisson_bwd_step(x + k, t + k, eps, g + k * g_stride, g_stride, gb, gx + k, gt ? gt + k : NULL, VW, log_input,
                         full);
    if (k < n)
        poisson_bwd_step(x + k, t + k, eps, g + k * g_stride, g_stride, gb, gx + k, gt ? gt + k : NULL, n - k,
                         log_input, full);
}

void KERNEL(poisson_bwd)(size_t n, const void *x, const void *t, const nllk_poisson_params *p, const void *g,
                         size_t g_stride, void *gx, void *gt)
{
    if (n == 0)
        return;
    const vec_t eps = v_set1((double)(elem_t)p->eps);
    if (p->log_input) {
        if (p->full)
            poisson_bwd_body(n, x, t, eps, g, g_stride, gx, gt, 1, 1);
        else
            poisson_bwd_body(n, x, t, eps, g, g_stride, gx, gt, 1, 0);
    } else {
        if (p->full)
            poisson_bwd_body(n, x, t, eps, g, g_stride, gx, gt, 0, 1);
        else
            poisson_bwd_body(n, x, t, eps, g, g_stride, gx, gt, 0, 0);
    }
}

/* ---- NLL -----------------------------------------------------------------------------------------------------
 * Element k of a run is lane k % VW of vector k / VW; a vector's gather base is x + k0*k_stride (k0 its first
 * element), so the offsets are lane*k_stride + target*c_stride relative to it, in 64 bits (any run the driver can
 * describe is addressable). Each vector of targets is validated before it is gathered, and gathers are masked to
 * the valid, non-ignored lanes: nothing is read out of bounds. A tail of m < VW elements is one vector whose
 * padding targets are ignore_index (loss +0, weight +0: adds +0.0 to the lanes, bit-neutral; nothing gathered or
 * stored there). The target type tt (nllk_target_type) is a constant of each kernel. */

/* Narrow rows (NLLK_NARROW_ROW_BYTES, dispatch/kernels.h) are read almost whole, in order, yet gathers do not train
 * the hardware prefetcher on Zen 5: without a software prefetch this far ahead the vector kernels ran 2-3x slower
 * than the scalar one on a (1048576, 10) input. Wide rows and N-D planes measured no gain from it. */
#define PF_DIST 4096

INLINE vidx_t tload(const void *tg, size_t o, const nllk_target_type tt)
{
    switch (tt) {
    case NLLK_TARGET_I64: return v_tload_i64((const int64_t *)tg + o);
    case NLLK_TARGET_I32: return v_tload_i32((const int32_t *)tg + o);
    default: return v_tload_u8((const uint8_t *)tg + o);
    }
}

/* Target i of a run, widened to int64. */
INLINE int64_t target_at(const void *tg, size_t i, const nllk_target_type tt)
{
    switch (tt) {
    case NLLK_TARGET_I64: return ((const int64_t *)tg)[i];
    case NLLK_TARGET_I32: return ((const int32_t *)tg)[i];
    default: return ((const uint8_t *)tg)[i];
    }
}

/* The m < VW targets from o on, padded with ign. */
INLINE vidx_t tload_tail(const void *tg, size_t o, size_t m, int64_t ign, const nllk_target_type tt)
{
    int64_t buf[VW];
    for (size_t i = 0; i < VW; i++)
        buf[i] = i < m ? target_at(tg, o + i, tt) : ign;
    return v_tload_i64(buf);
}

/* The targets of the vector at o: a whole one, or the tail padded with ign. */
INLINE vidx_t tload_at(const void *tg, size_t o, size_t len, int64_t ign, const nllk_target_type tt)
{
    return len - o >= VW ? tload(tg, o, tt) : tload_tail(tg, o, len - o, ign, tt);
}

INLINE size_t nll_fwd_body(const nllk_nll_run *r, const elem_t *x, const void *tg, const elem_t *weight, elem_t *out,
                           double *lanes, const nllk_target_type tt)
{
    const size_t len = r->len, ks = r->k_stride, cs = r->c_stride, c = r->c;
    const int64_t ign = r->ignore_index;
    const vidx_t kofs = v_kofs(ks);
    const vec_t one = v_set1(1.0);
    vacc_t acc[G], accw[G];
    for (int j = 0; j < G; j++) {
        acc[j] = lanes ? v_acc_load(lanes + j * VW) : v_acc_zero();
        accw[j] = lanes ? v_acc_load(lanes + 16 + j * VW) : v_acc_zero();
    }
    const size_t row_bytes = ks * sizeof(elem_t);
    const int pf_dense = VW > 1 && cs == 1 && row_bytes <= NLLK_NARROW_ROW_BYTES; /* 2-D runs only */
    for (size_t k = 0; k < len; k += 16) {
        if (pf_dense) {
            /* may lie past the end of x: a prefetch is never dereferenced */
            const uintptr_t p = (uintptr_t)(x + k * ks) + PF_DIST;
            for (size_t b = 0; b < 16 * row_bytes; b += 64)
                __builtin_prefetch((const void *)(p + b));
        }
        for (int j = 0; j < G; j++) {
            const size_t o = k + (size_t)j * VW;
            if (o >= len)
                break;
            const size_t m = len - o;
            const vidx_t tv = tload_at(tg, o, len, ign, tt);
            const unsigned bad = v_tbad(tv, c, ign);
            if (bad)
                return o + (size_t)__builtin_ctz(bad);
            const unsigned valid = v_tvalid(tv, ign);
            const vec_t xv = v_gather(x + o * ks, v_toff(tv, kofs, cs), valid);
            const vec_t wv = weight ? v_gather(weight, tv, valid) : v_mzero(valid, one);
            const vec_t loss = v_mzero(valid, v_mul(v_neg(xv), wv));
            if (out) {
                if (m >= VW)
                    v_store(out + o, loss);
                else
                    v_store_n(out + o, loss, m);
            }
            acc[j] = v_acc_add(acc[j], loss);
            accw[j] = v_acc_add(accw[j], wv);
        }
    }
    if (lanes)
        for (int j = 0; j < G; j++) {
            v_acc_store(lanes + j * VW, acc[j]);
            v_acc_store(lanes + 16 + j * VW, accw[j]);
        }
    return len;
}

INLINE void nll_bwd_body(const nllk_nll_run *r, const void *tg, const elem_t *weight, const elem_t *g, size_t g_stride,
                         elem_t *gx, const nllk_target_type tt)
{
    const size_t len = r->len, ks = r->k_stride, cs = r->c_stride;
    const int64_t ign = r->ignore_index;
    if (len == 0)
        return;
    const vidx_t kofs = v_kofs(ks);
    const vec_t gb = v_set1((double)g[0]);
    for (size_t o = 0; o < len; o += VW) {
        const size_t m = len - o;
        const vidx_t tv = tload_at(tg, o, len, ign, tt);
        const unsigned valid = v_tvalid(tv, ign);
        if (!valid)
            continue;
        const vec_t gv = !g_stride ? gb : m >= VW ? v_load(g + o) : v_load_n(g + o, m);
        const vec_t gneg = v_neg(gv);
        const vec_t v = weight ? v_mul(v_gather(weight, tv, valid), gneg) : gneg;
        v_scatter(gx + o * ks, v_toff(tv, kofs, cs), valid, v);
    }
}

INLINE size_t nll_check_body(size_t len, const void *tg, size_t c, int64_t ign, const nllk_target_type tt)
{
    for (size_t o = 0; o < len; o += VW) {
        const unsigned bad = v_tbad(tload_at(tg, o, len, ign, tt), c, ign);
        if (bad)
            return o + (size_t)__builtin_ctz(bad);
    }
    return len;
}

/* one kernel per target type */
size_t KERNEL(nll_fwd_i64)(const nllk_nll_run *r, const void *x, const void *tg, const void *w, void *out,
                           double *lanes)
{
    return nll_fwd_body(r, x, tg, w, out, lanes, NLLK_TARGET_I64);
}
size_t KERNEL(nll_fwd_i32)(const nllk_nll_run *r, const void *x, const void *tg, const void *w, void *out,
                           double *lanes)
{
    return nll_fwd_body(r, x, tg, w, out, lanes, NLLK_TARGET_I32);
}
size_t KERNEL(nll_fwd_u8)(const nllk_nll_run *r, const void *x, const void *tg, const void *w, void *out, double *lanes)
{
    return nll_fwd_body(r, x, tg, w, out, lanes, NLLK_TARGET_U8);
}
void KERNEL(nll_bwd_i64)(const nllk_nll_run *r, const void *tg, const void *w, const void *g, size_t gs, void *gx)
{
    nll_bwd_body(r, tg, w, g, gs, gx, NLLK_TARGET_I64);
}
void KERNEL(nll_bwd_i32)(const nllk_nll_run *r, const void *tg, const void *w, const void *g, size_t gs, void *gx)
{
    nll_bwd_body(r, tg, w, g, gs, gx, NLLK_TARGET_I32);
}
void KERNEL(nll_bwd_u8)(const nllk_nll_run *r, const void *tg, const void *w, const void *g, size_t gs, void *gx)
{
    nll_bwd_body(r, tg, w, g, gs, gx, NLLK_TARGET_U8);
}
size_t KERNEL(nll_check_i64)(size_t len, const void *tg, size_t c, int64_t ign)
{
    return nll_check_body(len, tg, c, ign, NLLK_TARGET_I64);
}
size_t KERNEL(nll_check_i32)(size_t len, const void *tg, size_t c, int64_t ign)
{
    return nll_check_body(len, tg, c, ign, NLLK_TARGET_I32);
}
size_t KERNEL(nll_check_u8)(size_t len, const void *tg, size_t c, int64_t ign)
{
    return nll_check_body(len, tg, c, ign, NLLK_TARGET_U8);
}

/* ---- zero fill ------------------------------------------------------------------------------------------------ */
void KERNEL(zero_fill)(void *p, size_t bytes) { v_zero_fill(p, bytes); }

/* ---- cross-entropy (kept apart from the NLL kernels) ---------------------------------------------------------- */
#include "ce_kernels.h"

/* ---- the table ------------------------------------------------------------------------------------------------ */
const nllk_kernels KERNEL(kernels) = {
    .poisson_fwd = KERNEL(poisson_fwd),
    .poisson_bwd = KERNEL(poisson_bwd),
    .nll_fwd = {KERNEL(nll_fwd_i64), KERNEL(nll_fwd_i32), KERNEL(nll_fwd_u8)},
    .nll_bwd = {KERNEL(nll_bwd_i64), KERNEL(nll_bwd_i32), KERNEL(nll_bwd_u8)},
    .nll_check = {KERNEL(nll_check_i64), KERNEL(nll_check_i32), KERNEL(nll_check_u8)},
    .zero_fill = KERNEL(zero_fill),
    .ce_fwd = {KERNEL(ce_fwd_i64), KERNEL(ce_fwd_i32), KERNEL(ce_fwd_u8)},
    .ce_bwd = {KERNEL(ce_bwd_i64), KERNEL(ce_bwd_i32), KERNEL(ce_bwd_u8)},
    .ce_prob_fwd = KERNEL(ce_prob_fwd),
    .ce_prob_bwd = KERNEL(ce_prob_bwd),
};
