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
#if defined(NLLK_DTYPE_BF16) || defined(NLLK_DTYPE_F16)
#  define NLLK_DTYPE_F32 1   /* 16-bit storage computes in float: the map's float section ... */
#  define NLLK_STORAGE_16 1  /* ... and its "16-bit storage" block                            */
#endif
#include "vec.h"

#include "storage.h"

#include "nll_target.h"
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
 * lanes. Two passes keep the accumulators in registers: on most maps exp or log is a call (SLEEF's), which clobbers
 * every vector register, so accumulating across it would put a store/reload on each lane's add chain. */
#define CHUNK 256

#if defined(NLLK_STORAGE_16)
/* Stirling's term is a function of the target alone, and a 16-bit target has 65536 patterns: this build tabulates
 * poisson_stirling over all of them once per process (on its first full=True call), and every element's term then
 * comes from the table, tails included, so a lookup gives the formula's bits (a NaN term: this build's NaN, the same
 * for every element). 256 KiB per 16-bit kernel build, in BSS: touched only by the build that runs. */
#    include <pthread.h>
static float stirling16[65536];
static pthread_once_t stirling16_once = PTHREAD_ONCE_INIT;
static void stirling16_build(void)
{
    for (uint32_t h = 0; h < 65536; h += VW) {
        uint16_t v[VW];
        for (uint32_t i = 0; i < VW; i++)
            v[i] = (uint16_t)(h + i);
        v_store(stirling16 + h, poisson_stirling(s_load(v)));
    }
}
#endif

/* The loss of the VW (m < VW: m) elements at x, t: poisson_loss, Stirling's term from the table on 16-bit storage */
INLINE vec_t poisson_loss_at(const stor_t *x, const stor_t *t, size_t m, vec_t eps, const int log_input,
                             const int full)
{
    const vec_t xv = m >= VW ? s_load(x) : s_load_n(x, m), tv = m >= VW ? s_load(t) : s_load_n(t, m);
#if defined(NLLK_STORAGE_16)
    if (full)
        return poisson_loss_full(poisson_loss(xv, tv, eps, log_input, 0),
                                 m >= VW ? s_lookup(stirling16, t) : s_lookup_n(stirling16, t, m));
#endif
    return poisson_loss(xv, tv, eps, log_input, full);
}

/* The losses of one vector (m lanes): to out (rounded to the storage type) and, when the lanes need them, to the
 * chunk's scratch buffer of computed values. Where storage is the compute type the scratch buffer is out itself. */
INLINE void poisson_put(elem_t *dst, stor_t *out, vec_t loss, size_t m, int to_dst)
{
    if (S_SAME ? 0 : out != NULL) {
        if (m >= VW)
            s_store(out, loss);
        else
            s_store_n(out, loss, m);
    }
    if (to_dst) {
        if (m >= VW)
            v_store(dst, loss);
        else
            v_store_n(dst, loss, m);
    }
}

INLINE void poisson_fwd_body(size_t n, const stor_t *x, const stor_t *t, vec_t eps, stor_t *out, double *lanes,
                             const int log_input, const int full)
{
    elem_t buf[CHUNK];
    vacc_t acc[G];
    for (int j = 0; j < G; j++)
        acc[j] = lanes ? v_acc_load(lanes + j * VW) : v_acc_zero();
    for (size_t k0 = 0; k0 < n; k0 += CHUNK) {
        const size_t len = n - k0 < CHUNK ? n - k0 : CHUNK;
        /* the computed values: out itself when it holds them exactly, else the scratch buffer (when summed) */
        elem_t *dst = S_SAME && out ? (elem_t *)(void *)(out + k0) : buf;
        const int to_dst = S_SAME ? 1 : lanes != NULL;
        stor_t *o16 = S_SAME || !out ? NULL : out + k0;
        size_t o = 0;
#if S_PAIRS /* pairs of vectors in the storage's pair order (kernels/common/storage.h), then the rest */
        for (; o + 2 * VW <= len; o += 2 * VW) {
            vec_t xa, xb, ta, tb;
            s_load_pair(x + k0 + o, &xa, &xb);
            s_load_pair(t + k0 + o, &ta, &tb);
            vec_t la = poisson_loss(xa, ta, eps, log_input, 0), lb = poisson_loss(xb, tb, eps, log_input, 0);
            if (full) {
                vec_t sa, sb;
                s_lookup_pair(stirling16, t + k0 + o, &sa, &sb);
                la = poisson_loss_full(la, sa);
                lb = poisson_loss_full(lb, sb);
            }
            if (o16)
                s_store_pair(o16 + o, la, lb);
            if (to_dst) {
                v_store(dst + o, la);
                v_store(dst + o + VW, lb);
            }
        }
#endif
        for (; o + VW <= len; o += VW)
            poisson_put(dst + o, o16 ? o16 + o : NULL,
                        poisson_loss_at(x + k0 + o, t + k0 + o, VW, eps, log_input, full), VW, to_dst);
        if (o < len) /* the tail: one masked vector */
            poisson_put(dst + o, o16 ? o16 + o : NULL,
                        poisson_loss_at(x + k0 + o, t + k0 + o, len - o, eps, log_input, full), len - o, to_dst);
        if (!lanes)
            continue;
        size_t g = 0;
#if S_PAIRS /* 2*VW is a multiple of 16, so the groups below start where the pairs end */
        s_acc_pair(acc);
        for (; g + 2 * VW <= len; g += 2 * VW)
            s_acc_add_pair(acc, v_load(dst + g), v_load(dst + g + VW));
        s_acc_unpair(acc);
#endif
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
#if defined(NLLK_STORAGE_16)
    if (p->full)
        pthread_once(&stirling16_once, stirling16_build);
#endif
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

INLINE void poisson_bwd_step(const stor_t *x, const stor_t *t, vec_t eps, const stor_t *g, size_t g_stride, vec_t gb,
                             stor_t *gx, stor_t *gt, size_t m, const int log_input, const int full)
{
    if (m >= VW) {
        const vec_t xv = s_load(x), tv = s_load(t);
        const vec_t gv = g_stride ? s_load(g) : gb;
        s_store(gx, poisson_grad_input(xv, tv, eps, gv, log_input));
        if (gt)
            s_store(gt, poisson_grad_target(xv, tv, eps, gv, log_input, full));
    } else {
        const vec_t xv = s_load_n(x, m), tv = s_load_n(t, m);
        const vec_t gv = g_stride ? s_load_n(g, m) : gb;
        s_store_n(gx, poisson_grad_input(xv, tv, eps, gv, log_input), m);
        if (gt)
            s_store_n(gt, poisson_grad_target(xv, tv, eps, gv, log_input, full), m);
    }
}

INLINE void poisson_bwd_body(size_t n, const stor_t *x, const stor_t *t, vec_t eps, const stor_t *g, size_t g_stride,
                             stor_t *gx, stor_t *gt, const int log_input, const int full)
{
    const vec_t gb = v_set1(s_get(g));
    size_t k = 0;
#if S_PAIRS /* pairs of vectors in the storage's pair order, then single vectors */
    for (; k + 2 * VW <= n; k += 2 * VW) {
        vec_t xa, xb, ta, tb, ga = gb, gb2 = gb;
        s_load_pair(x + k, &xa, &xb);
        s_load_pair(t + k, &ta, &tb);
        if (g_stride)
            s_load_pair(g + k, &ga, &gb2);
        s_store_pair(gx + k, poisson_grad_input(xa, ta, eps, ga, log_input),
                     poisson_grad_input(xb, tb, eps, gb2, log_input));
        if (gt)
            s_store_pair(gt + k, poisson_grad_target(xa, ta, eps, ga, log_input, full),
                         poisson_grad_target(xb, tb, eps, gb2, log_input, full));
    }
#endif
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

/* Coherent targets (segmentation masks: long runs of one class along a row). In an N-D run (k_stride 1) a vector
 * whose VW targets are all equal reads VW consecutive elements of one class plane: one contiguous load instead of a
 * gather (the same elements, so the same bits), and only that plane's cache lines are touched. The test is
 * v_tvalid(targets, lane 0's target) == 0: no lane differs from lane 0. */

/* N-D runs prefetch, for each 64-byte stretch of positions PF_PLANE positions ahead, the input line that its first
 * target names: within runs of one class the planes are read in short stretches at scattered moments, which the
 * hardware prefetcher does not follow. (With mixed targets this covers one lane's plane; a prefetch per lane cost
 * more than it saved with random targets. Mixed targets over few classes prefetch every plane instead:
 * prefetch_all_planes.) A prefetch is never dereferenced; only targets in [0, c) are used. */
#define PF_PLANE 1024
#define PF_STEP (64 / (VW * sizeof(stor_t)) > 0 ? 64 / (VW * sizeof(stor_t)) : 1) /* vectors per 64 bytes */

INLINE void prefetch_planes(const stor_t *x, const void *tg, size_t p, size_t cs, size_t c, const nllk_target_type tt)
{
    for (size_t j = 0; j < (size_t)G; j += PF_STEP) {
        const size_t o = p + j * VW;
        const int64_t t0 = target_at(tg, o, tt);
        if (nllk_nll_in_range(t0, c))
            __builtin_prefetch(x + o + (size_t)t0 * cs);
    }
}

/* Mixed (random) targets in an N-D run of few classes: a vector names about min(VW, c) planes, each line its own miss
 * (the planes lie far apart, and more of them than the hardware prefetcher follows), so every plane's line is
 * prefetched PF_ALL positions ahead: c streams, read whole, instead of scattered misses. Only for c <= PF_ALL_MAXC
 * (more classes: more lines than the gathers touch), and where the vectors are gathered, not picked (nll_pick_ok).
 * A prefetch is never dereferenced. */
#ifndef PF_ALL
#define PF_ALL 256
#endif
#ifndef PF_ALL_MAXC
#define PF_ALL_MAXC 32
#endif
#ifndef PF_ALL_LOC
#define PF_ALL_LOC 3
#endif

INLINE void prefetch_all_planes(const stor_t *x, size_t p, size_t cs, size_t c)
{
    const size_t gb = 16 * sizeof(stor_t); /* a group's bytes in one plane */
    if (gb < 64 && ((uintptr_t)(x + p) & 63) >= gb)
        return; /* its line was prefetched with an earlier group's */
    for (size_t t = 0; t < c; t++)
        for (size_t b = 0; b < gb; b += 64)
            __builtin_prefetch((const char *)(x + p + t * cs) + b, 0, PF_ALL_LOC);
}

/* Wide 2-D rows (k_stride > NLLK_NARROW_ROW_BYTES, c_stride 1): each row is touched in one cache line, the one its
 * target names, usually in a page of its own; PF_ROWS rows ahead each such line is prefetched (the targets are
 * known), so the page walks and misses overlap instead of waiting in the gather. Only targets in [0, c) are used. */
#define PF_ROWS 64

INLINE void prefetch_rows(const stor_t *x, const void *tg, size_t p, size_t ks, size_t c, const nllk_target_type tt)
{
    for (size_t i = 0; i < 16; i++) {
        const int64_t t = target_at(tg, p + i, tt);
        if (nllk_nll_in_range(t, c))
            __builtin_prefetch(x + (p + i) * ks + (size_t)t);
    }
}

/* A vector of VW whole lanes of an N-D run (validated targets tv, from position o) made of at most NLL_SEGS runs of
 * equal targets (a class boundary, or one with an ignored ring in between): each run's lanes from one contiguous
 * load of its class plane and one weight, blended -- the gather's values (+0 loss and weight in ignored lanes).
 * Returns 0 for more runs than that (random targets: then the caller gathers, and skips the attempt for its next
 * NLL_SEG_SKIP mixed vectors, so random targets pay it on one vector in 17). */
#define NLL_SEGS 4
#define NLL_SEG_SKIP 16

INLINE int nll_fwd_segments(const stor_t *x, const void *tg, size_t o, vidx_t tv, const stor_t *weight, size_t cs,
                            int64_t ign, vec_t *loss, vec_t *wv, const nllk_target_type tt)
{
    unsigned left = VW >= 32 ? ~0u : (1u << VW) - 1u, eq[NLL_SEGS];
    int64_t t[NLL_SEGS];
    int ns = 0;
    for (; ns < NLL_SEGS && left; ns++) {
        t[ns] = target_at(tg, o + (size_t)__builtin_ctz(left), tt);
        eq[ns] = ~v_tvalid(tv, t[ns]) & left;
        left &= ~eq[ns];
    }
    if (left)
        return 0;
    vec_t l = v_set1(0.0), w = l;
    for (int i = 0; i < ns; i++) {
        if (nllk_nll_is_ignored(t[i], ign))
            continue;
        const vec_t ws = weight ? v_set1(s_get(weight + t[i])) : v_set1(1.0);
        l = v_mblend(eq[i], v_mul(v_neg(s_load(x + (size_t)t[i] * cs)), ws), l);
        w = v_mblend(eq[i], ws, w);
    }
    *loss = l;
    *wv = w;
    return 1;
}

/* Mixed (random) targets in an N-D run of few classes, f32 on a map of 16 lanes: a vector's values are picked from
 * one contiguous load of every class plane (c loads and picks instead of a gather), lane i from plane t[i] -- the
 * gather's elements, +0 in ignored lanes (v_tnarrow's -1 names no plane), so the same bits. Every plane's lines are
 * then read in order, c streams that the hardware prefetcher follows (a software prefetch of every plane as well
 * cost more than it saved); the gather touched about half of them, in an order it does not. Whole vectors only (the
 * loads are VW wide); targets already validated, and c <= NLL_PICK_MAXC fits the narrowed lanes. Elsewhere the
 * gather measured faster (8 lanes: f64, AVX2; 16-bit storage, with a conversion per load; BENCHMARKS.md, stop 28). */
#ifndef NLL_PICK_MAXC
#    define NLL_PICK_MAXC 32
#endif

INLINE int nll_pick_ok(size_t c) { return VW >= 16 && sizeof(stor_t) == 4 && c <= NLL_PICK_MAXC; }

INLINE vec_t nll_pick_planes(const stor_t *x, vidx_t tv, unsigned valid, size_t cs, size_t c, const stor_t *weight,
                             vec_t *wv)
{
    const vtn_t tn = v_tnarrow(tv, valid);
    vec_t v = v_set1(0.0), w = v;
    for (size_t k = 0; k < c; k++) {
        v = v_tnpick(tn, (int32_t)k, s_load(x + k * cs), v);
        if (weight)
            w = v_tnpick(tn, (int32_t)k, v_set1(s_get(weight + k)), w);
    }
    *wv = weight ? w : v_mzero(valid, v_set1(1.0));
    return v;
}

/* One group of 16 positions from k (or the run's last, shorter one): losses to out, lanes to acc / accw. Returns 0,
 * or 1 + the offset of the first bad target. A vector of VW equal targets in an N-D run (planes) reads its class plane
 * with one contiguous load, one of a few runs (nll_fwd_segments) one load per run; other vectors gather. */
INLINE size_t nll_fwd_group(size_t k, size_t len, const stor_t *x, const void *tg, const stor_t *weight, stor_t *out,
                            vacc_t *acc, vacc_t *accw, size_t ks, size_t cs, size_t c, int64_t ign, vidx_t kofs,
                            unsigned *seg_skip, const int planes, const nllk_target_type tt)
{
    const vec_t one = v_set1(1.0), zero = v_set1(0.0);
    for (int j = 0; j < G; j++) {
        const size_t o = k + (size_t)j * VW;
        if (o >= len)
            break;
        const size_t m = len - o;
        const vidx_t tv = tload_at(tg, o, len, ign, tt);
        vec_t loss, wv;
        const int64_t t0 = planes && m >= VW ? target_at(tg, o, tt) : 0;
        if (planes && m >= VW && !v_tvalid(tv, t0)) { /* VW equal targets: one plane, contiguous */
            if (!nllk_nll_is_ignored(t0, ign) && !nllk_nll_in_range(t0, c))
                return 1 + o; /* every lane is t0: lane 0 is the first bad one */
            if (nllk_nll_is_ignored(t0, ign)) {
                loss = zero;
                wv = zero;
            } else {
                wv = weight ? v_set1(s_get(weight + t0)) : one;
                loss = v_mul(v_neg(s_load(x + o + (size_t)t0 * cs)), wv);
            }
        } else {
            const unsigned bad = v_tbad(tv, c, ign);
            if (bad)
                return 1 + o + (size_t)__builtin_ctz(bad);
            if (planes && m >= VW) { /* after a vector of too many runs, the next NLL_SEG_SKIP mixed ones gather */
                if (!*seg_skip) {
                    if (nll_fwd_segments(x + o, tg, o, tv, weight, cs, ign, &loss, &wv, tt))
                        goto done;
                    *seg_skip = NLL_SEG_SKIP;
                } else
                    --*seg_skip;
            }
            const unsigned valid = v_tvalid(tv, ign);
            vec_t xv;
            if (planes && m >= VW && nll_pick_ok(c))
                xv = nll_pick_planes(x + o, tv, valid, cs, c, weight, &wv);
            else {
                xv = s_gather(x + o * ks, v_toff(tv, kofs, cs), valid);
                wv = weight ? s_gather(weight, tv, valid) : v_mzero(valid, one);
            }
            loss = v_mzero(valid, v_mul(v_neg(xv), wv));
        }
    done:
        if (out) {
            if (m >= VW)
                s_store(out + o, loss);
            else
                s_store_n(out + o, loss, m);
        }
        acc[j] = v_acc_add(acc[j], loss);
        accw[j] = v_acc_add(accw[j], wv);
    }
    return 0;
}

/* Whether the 16 targets from k (all inside the run) are all t0. */
INLINE int nll_group_is(const void *tg, size_t k, int64_t t0, const nllk_target_type tt)
{
    unsigned diff = 0;
    for (int j = 0; j < G; j++)
        diff |= v_tvalid(tload(tg, k + (size_t)j * VW, tt), t0);
    return diff == 0;
}

/* Coherent targets, N-D runs: a stretch of whole groups [k, e) whose targets are all t0 goes as one tight loop over
 * plane t0 (contiguous loads, one weight broadcast, no target loads but the prefetch's): element k + i still adds
 * into lane (k + i) % 16, in order, so the sums are the per-group loop's bits. An ignored stretch leaves the lanes
 * alone: its +0.0 adds change nothing. Returns 0, or 1 + the first bad target. */
INLINE size_t nll_fwd_stretch(size_t k, size_t e, size_t len, int64_t t0, const stor_t *x, const void *tg,
                              const stor_t *weight, stor_t *out, vacc_t *acc, vacc_t *accw, size_t cs, size_t c,
                              int64_t ign, const nllk_target_type tt)
{
    const vec_t zero = v_set1(0.0);
    if (nllk_nll_is_ignored(t0, ign)) { /* +0.0 to the lanes: no change (a lane starts at +0.0, so is never -0.0) */
        if (out)
            for (size_t q = k; q < e; q += VW)
                s_store(out + q, zero);
        return 0;
    }
    if (!nllk_nll_in_range(t0, c))
        return 1 + k;
    const vec_t wv = weight ? v_set1(s_get(weight + t0)) : v_set1(1.0);
    const stor_t *xp = x + (size_t)t0 * cs;
    for (size_t q = k; q < e; q += 16) {
        if (q + PF_PLANE + 16 <= len)
            prefetch_planes(x, tg, q + PF_PLANE, cs, c, tt);
        for (int j = 0; j < G; j++) {
            const size_t o = q + (size_t)j * VW;
            const vec_t loss = v_mul(v_neg(s_load(xp + o)), wv);
            if (out)
                s_store(out + o, loss);
            acc[j] = v_acc_add(acc[j], loss);
            accw[j] = v_acc_add(accw[j], wv);
        }
    }
    return 0;
}

INLINE size_t nll_fwd_body(const nllk_nll_run *r, const stor_t *x, const void *tg, const stor_t *weight, stor_t *out,
                           double *lanes, const nllk_target_type tt)
{
    const size_t len = r->len, ks = r->k_stride, cs = r->c_stride, c = r->c;
    const int64_t ign = r->ignore_index;
    const vidx_t kofs = v_kofs(ks);
    vacc_t acc[G], accw[G];
    for (int j = 0; j < G; j++) {
        acc[j] = lanes ? v_acc_load(lanes + j * VW) : v_acc_zero();
        accw[j] = lanes ? v_acc_load(lanes + 16 + j * VW) : v_acc_zero();
    }
    const size_t row_bytes = ks * sizeof(stor_t);
    const int pf_dense = VW > 1 && cs == 1 && row_bytes <= NLLK_NARROW_ROW_BYTES; /* 2-D runs only */
    const int pf_rows = cs == 1 && row_bytes > NLLK_NARROW_ROW_BYTES;             /* wide 2-D runs */
    size_t bad = 0;
    unsigned seg_skip = 0;
    if (ks == 1) { /* N-D runs (and c == 1): stretches of equal targets, other groups one by one */
        const int pf_all = PF_ALL > 0 && c <= PF_ALL_MAXC;
        const int pick = nll_pick_ok(c); /* mixed vectors: nll_pick_planes */
        int mixed = 0; /* the last groups had vectors of too many runs (random targets) */
        for (size_t k = 0; k < len && !bad;) {
            if (len - k >= 16 && !seg_skip) { /* (not right after a vector of too many runs: random targets) */
                const int64_t t0 = target_at(tg, k, tt);
                size_t e = k;
                while (e + 16 <= len && nll_group_is(tg, e, t0, tt))
                    e += 16;
                if (e > k) {
                    bad = nll_fwd_stretch(k, e, len, t0, x, tg, weight, out, acc, accw, cs, c, ign, tt);
                    k = e;
                    mixed = 0;
                    continue;
                }
            }
            if (mixed && pick) {
                /* no prefetch: the picks read every plane in order */
            } else if (mixed && pf_all) {
                if (k + PF_ALL + 16 <= len)
                    prefetch_all_planes(x, k + PF_ALL, cs, c);
            } else if (k + PF_PLANE + 16 <= len)
                prefetch_planes(x, tg, k + PF_PLANE, cs, c, tt);
            const unsigned skip0 = seg_skip;
            bad = nll_fwd_group(k, len, x, tg, weight, out, acc, accw, ks, cs, c, ign, kofs, &seg_skip, 1, tt);
            if (seg_skip)
                mixed = 1;
            else if (!skip0)
                mixed = 0;
            k += 16;
        }
    } else {
        for (size_t k = 0; k < len && !bad; k += 16) {
            if (pf_dense) {
                /* may lie past the end of x: a prefetch is never dereferenced */
                const uintptr_t p = (uintptr_t)(x + k * ks) + PF_DIST;
                for (size_t b = 0; b < 16 * row_bytes; b += 64)
                    __builtin_prefetch((const void *)(p + b));
            }
            if (pf_rows && k + PF_ROWS + 16 <= len)
                prefetch_rows(x, tg, k + PF_ROWS, ks, c, tt);
            bad = nll_fwd_group(k, len, x, tg, weight, out, acc, accw, ks, cs, c, ign, kofs, &seg_skip, 0, tt);
        }
    }
    if (bad)
        return bad - 1;
    if (lanes)
        for (int j = 0; j < G; j++) {
            v_acc_store(lanes + j * VW, acc[j]);
            v_acc_store(lanes + 16 + j * VW, accw[j]);
        }
    return len;
}

INLINE void nll_bwd_body(const nllk_nll_run *r, const void *tg, const stor_t *weight, const stor_t *g, size_t g_stride,
                         stor_t *gx, const nllk_target_type tt)
{
    const size_t len = r->len, ks = r->k_stride, cs = r->c_stride;
    const int64_t ign = r->ignore_index;
    if (len == 0)
        return;
    const vidx_t kofs = v_kofs(ks);
    const vec_t gb = v_set1(s_get(g));
    for (size_t o = 0; o < len; o += VW) {
        const size_t m = len - o;
        const vidx_t tv = tload_at(tg, o, len, ign, tt);
        const unsigned valid = v_tvalid(tv, ign);
        if (!valid)
            continue;
        const vec_t gv = !g_stride ? gb : m >= VW ? s_load(g + o) : s_load_n(g + o, m);
        const vec_t gneg = v_neg(gv);
        const vec_t v = weight ? v_mul(s_gather(weight, tv, valid), gneg) : gneg;
        s_scatter(gx + o * ks, v_toff(tv, kofs, cs), valid, v);
    }
}

/* N-D backward in one pass (an N-D run: k_stride 1, c_stride d): every element of the run's c planes is written
 * once, the value at each position's target plane and +0 in the others. Positions go in chunks of FILL_CHUNK: the
 * chunk's targets and values first, then each plane's stretch of the chunk in turn (1 KiB of f32, whole cache lines
 * in one DRAM page, streaming stores when `stream` and the planes' lines line up; 64-byte pieces of 21 planes
 * interleaved measured 2x slower). Positions up to the first 64-byte boundary of gx and the last partial group use
 * ordinary (masked) stores. The values are the scatter's: w[t] * -g (or -g), +0 elsewhere. This path serves a
 * per-position grad_output (reduction none) and c > INT32_MAX; a scalar one goes through nll_plane_chunk below. */
#define FILL_CHUNK 256
#define FILL_GROUPS (FILL_CHUNK / 16)

typedef struct fill_group {
    vidx_t tv[G];
    vtn_t tn[G]; /* the valid targets narrowed (-1 elsewhere), when c <= INT32_MAX */
    vec_t val[G];
    unsigned valid[G];
    int64_t t0;  /* the class of every position when uniform */
    int uniform; /* 16 positions, all targets t0 */
} fill_group;

/* the group's state; returns 16, or the offset of its first bad target (neither ign nor in [0, c)) */
INLINE size_t nll_fill_prepare(fill_group *fg, size_t k, size_t n, const void *tg, const stor_t *weight,
                               const stor_t *g, size_t g_stride, vec_t gb, size_t c, int64_t ign,
                               const nllk_target_type tt)
{
    fg->t0 = target_at(tg, k, tt);
    fg->uniform = n == 16;
    for (int j = 0; j < G; j++) {
        const size_t o = (size_t)j * VW;
        if (o >= n) { /* past the end: never stored (nll_fill_store stops at n) */
            fg->tv[j] = fg->tv[0];
            fg->tn[j] = fg->tn[0];
            fg->valid[j] = 0;
            continue;
        }
        fg->tv[j] = tload_at(tg, k + o, k + n, ign, tt);
        const unsigned bad = v_tbad(fg->tv[j], c, ign);
        if (bad)
            return o + (size_t)__builtin_ctz(bad);
        fg->valid[j] = v_tvalid(fg->tv[j], ign);
        fg->tn[j] = v_tnarrow(fg->tv[j], fg->valid[j]);
        fg->uniform = fg->uniform && !v_tvalid(fg->tv[j], fg->t0);
    }
    /* one weight for a uniform group (the gather's value in every lane) */
    const int one_w = fg->uniform && !nllk_nll_is_ignored(fg->t0, ign);
    const vec_t w0 = weight && one_w ? v_set1(s_get(weight + fg->t0)) : gb;
    for (int j = 0; j < G; j++) {
        const size_t o = (size_t)j * VW;
        if (o >= n) {
            fg->val[j] = gb;
            continue;
        }
        const size_t m = n - o;
        const vec_t gneg = v_neg(!g_stride ? gb : m >= VW ? s_load(g + k + o) : s_load_n(g + k + o, m));
        fg->val[j] = !weight ? gneg : one_w ? v_mul(w0, gneg) : v_mul(s_gather(weight, fg->tv[j], fg->valid[j]), gneg);
    }
    return 16;
}

/* v to p, of which left elements remain: a streaming store (nt: then the caller's stretch is whole vectors on the
 * 64-byte grid), a whole store, or a masked store of the tail */
INLINE void nll_put(stor_t *p, vec_t v, size_t left, const int nt)
{
    if (nt)
        s_stream(p, v);
    else if (left >= VW)
        s_store(p, v);
    else
        s_store_n(p, v, left);
}

/* plane cls's elements of the group's n positions at pl */
INLINE void nll_fill_store(const fill_group *fg, stor_t *pl, size_t n, size_t cls, int64_t ign, vec_t zero, int narrow,
                           const int nt)
{
    const int hit = fg->uniform && (int64_t)cls == fg->t0 && !nllk_nll_is_ignored(fg->t0, ign);
    for (int j = 0; j < G; j++) {
        const size_t o = (size_t)j * VW;
        if (o >= n)
            break;
        const vec_t v = fg->uniform ? (hit ? fg->val[j] : zero)
                        : narrow    ? v_tnsel(fg->tn[j], (int32_t)cls, fg->val[j])
                                    : v_tsel(fg->tv[j], (int64_t)cls, fg->valid[j], fg->val[j]);
        nll_put(pl + o, v, n - o, nt);
    }
}

/* positions [k, k + n) with n <= FILL_CHUNK; nt: streaming stores (then k is on the 64-byte grid and n % 16 == 0).
 * Returns n, or the offset of the first bad target (then the chunk is not written). */
INLINE size_t nll_fill_chunk(size_t k, size_t n, const void *tg, const stor_t *weight, const stor_t *g, size_t g_stride,
                             vec_t gb, stor_t *gx, size_t cs, size_t c, int64_t ign, const int nt,
                             const nllk_target_type tt)
{
    fill_group fg[FILL_GROUPS];
    const size_t groups = (n + 15) / 16;
    for (size_t q = 0; q < groups; q++) {
        const size_t b = nll_fill_prepare(&fg[q], k + q * 16, n - q * 16 < 16 ? n - q * 16 : 16, tg, weight, g,
                                          g_stride, gb, c, ign, tt);
        if (b < 16)
            return q * 16 + b;
    }
    const vec_t zero = v_set1(0.0);
    const int narrow = c <= INT32_MAX; /* then every valid target fits the int32 lanes of v_tnarrow */
    for (size_t cc = 0; cc < c; cc++) {
        stor_t *pl = gx + cc * cs + k;
        for (size_t q = 0; q < groups; q++)
            nll_fill_store(&fg[q], pl + q * 16, n - q * 16 < 16 ? n - q * 16 : 16, cc, ign, zero, narrow, nt);
    }
    return n;
}

/* A scalar grad_output (mean, sum: g_stride 0) gives every target position of plane k the same value, w[k] * -g (or
 * -g), and +0 elsewhere: each plane's stretch is a masked broadcast, with no per-position values. Positions go in
 * chunks of PLANE_CHUNK (8 KiB of f32 per plane and stretch: two whole 4 KiB pages; 1024 and 4096 measured no better,
 * BENCHMARKS.md "N-D NLL backward (stop 23)"); the per-chunk state is only the chunk's targets, narrowed once to int32
 * lanes (-1 where ignored: no plane's class; 8 KiB, and 4 KiB of slack), then each plane's stretch is a compare and a
 * store per vector.
 * Needs c <= INT32_MAX (every class fits the narrowed lanes); reduction none (per-position values) goes through
 * nll_fill_chunk. */
#ifndef PLANE_CHUNK
#    define PLANE_CHUNK 2048
#endif
#define PLANE_VECS (PLANE_CHUNK / VW)

/* positions [k, k + n) with n <= PLANE_CHUNK; nt: streaming stores (then k is on the 64-byte grid and n % 16 == 0).
 * Returns n, or the offset of the first bad target (then the chunk is not written). */
INLINE size_t nll_plane_chunk(size_t k, size_t n, const void *tg, const stor_t *weight, vec_t gneg, stor_t *gx,
                              size_t cs, size_t c, int64_t ign, const int nt, const nllk_target_type tt)
{
    /* tn[q] lies 2 KiB from the store of vector q modulo 4 KiB: a load whose address matches a store in flight in
     * its low 12 bits waits for it (4K aliasing), and the planes' strides are often multiples of 4 KiB, so with tn
     * wherever the stack put it every load collided with a store in some processes (BENCHMARKS.md, stop 23) */
    vtn_t tnbuf[PLANE_VECS + 4096 / sizeof(vtn_t)];
    const uintptr_t want = ((uintptr_t)(gx + k) + 2048) & 4095, have = (uintptr_t)tnbuf & 4095;
    vtn_t *const tn = tnbuf + ((want - have) & 4095) / sizeof(vtn_t);
    const size_t vecs = (n + VW - 1) / VW;
    for (size_t q = 0; q < vecs; q++) {
        const vidx_t tv = tload_at(tg, k + q * VW, k + n, ign, tt);
        const unsigned bad = v_tbad(tv, c, ign);
        if (bad)
            return q * VW + (size_t)__builtin_ctz(bad);
        tn[q] = v_tnarrow(tv, v_tvalid(tv, ign));
    }
    for (size_t cc = 0; cc < c; cc++) {
        stor_t *pl = gx + cc * cs + k;
        /* the value of a uniform group in nll_fill_prepare: the weight broadcast, times -g */
        const vec_t val = weight ? v_mul(v_set1(s_get(weight + cc)), gneg) : gneg;
        size_t o = 0;
        for (size_t q = 0; q < vecs; q++, o += VW)
            nll_put(pl + o, v_tnsel(tn[q], (int32_t)cc, val), n - o, nt);
    }
    return n;
}

/* positions [k, k + n): planes ? nll_plane_chunk (n <= PLANE_CHUNK) : nll_fill_chunk (n <= FILL_CHUNK); returns n,
 * or the offset of the first bad target */
INLINE size_t nll_fill_any(size_t k, size_t n, const void *tg, const stor_t *weight, const stor_t *g, size_t g_stride,
                           vec_t gb, stor_t *gx, size_t cs, size_t c, int64_t ign, const int nt, const int planes,
                           const nllk_target_type tt)
{
    return planes ? nll_plane_chunk(k, n, tg, weight, v_neg(gb), gx, cs, c, ign, nt, tt)
                  : nll_fill_chunk(k, n, tg, weight, g, g_stride, gb, gx, cs, c, ign, nt, tt);
}

/* The run's c planes written whole; returns len, or the offset of the first bad target (the targets are validated
 * chunk by chunk, before the chunk's first store: the planes then hold unspecified values, as nllk.h allows). */
INLINE size_t nll_fill_run(const nllk_nll_run *r, const void *tg, const stor_t *weight, const stor_t *g,
                           size_t g_stride, stor_t *gx, int stream, const int planes, const nllk_target_type tt)
{
    const size_t len = r->len, cs = r->c_stride, c = r->c;
    const int64_t ign = r->ignore_index;
    if (len == 0)
        return 0;
    const vec_t gb = v_set1(s_get(g));
    const uintptr_t a = (uintptr_t)gx;
    stream = stream && a % sizeof(stor_t) == 0 && cs * sizeof(stor_t) % 64 == 0;
    size_t k = stream ? (size_t)(-a & 63) / sizeof(stor_t) : 0, done = 0;
    if (k > len)
        k = len;
    const size_t chunk = planes ? PLANE_CHUNK : FILL_CHUNK;
    if (k) /* up to the 64-byte grid: fewer than 16 positions */
        done = nll_fill_any(0, k, tg, weight, g, g_stride, gb, gx, cs, c, ign, 0, planes, tt);
    while (done == k && k + 16 <= len) {
        const size_t body = len - k < chunk ? (len - k) / 16 * 16 : chunk;
        if (stream)
            done = k + nll_fill_any(k, body, tg, weight, g, g_stride, gb, gx, cs, c, ign, 1, planes, tt);
        else
            done = k + nll_fill_any(k, body, tg, weight, g, g_stride, gb, gx, cs, c, ign, 0, planes, tt);
        k += body;
    }
    if (done == k && k < len)
        done = k + nll_fill_any(k, len - k, tg, weight, g, g_stride, gb, gx, cs, c, ign, 0, planes, tt);
    if (stream)
        v_stream_fence();
    return done;
}

INLINE size_t nll_bwd_fill_body(const nllk_nll_run *r, const void *tg, const stor_t *weight, const stor_t *g,
                                size_t g_stride, stor_t *gx, int stream, const nllk_target_type tt)
{
    if (!g_stride && r->c <= INT32_MAX) /* a scalar grad_output: masked broadcasts (nll_plane_chunk) */
        return nll_fill_run(r, tg, weight, g, g_stride, gx, stream, 1, tt);
    return nll_fill_run(r, tg, weight, g, g_stride, gx, stream, 0, tt);
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
size_t KERNEL(nll_bwd_fill_i64)(const nllk_nll_run *r, const void *tg, const void *w, const void *g, size_t gs,
                                void *gx, int stream)
{
    return nll_bwd_fill_body(r, tg, w, g, gs, gx, stream, NLLK_TARGET_I64);
}
size_t KERNEL(nll_bwd_fill_i32)(const nllk_nll_run *r, const void *tg, const void *w, const void *g, size_t gs,
                                void *gx, int stream)
{
    return nll_bwd_fill_body(r, tg, w, g, gs, gx, stream, NLLK_TARGET_I32);
}
size_t KERNEL(nll_bwd_fill_u8)(const nllk_nll_run *r, const void *tg, const void *w, const void *g, size_t gs, void *gx,
                               int stream)
{
    return nll_bwd_fill_body(r, tg, w, g, gs, gx, stream, NLLK_TARGET_U8);
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

/* ---- cross-entropy (kept apart from the NLL kernels; storage-generic like the rest) ---------------------------- */
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
    .nll_bwd_fill = {KERNEL(nll_bwd_fill_i64), KERNEL(nll_bwd_fill_i32), KERNEL(nll_bwd_fill_u8)},
    .ce_fwdbwd = {KERNEL(ce_fwdbwd_i64), KERNEL(ce_fwdbwd_i32), KERNEL(ce_fwdbwd_u8)},
};
