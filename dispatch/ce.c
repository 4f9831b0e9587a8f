/* Public cross-entropy entry points (nllk.h, "Cross-entropy"): argument checks and the driver, written once over
 * the dtype descriptor for both target kinds; each public function is one line at the end of the file. */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "acc.h"
#include "dtype.h"
#include "error.h"
#include "kernels.h"
#include "loss.h"
#include "nllk.h"
#include "parallel.h"
#include "target.h"

/* One call: geometry, options, arrays (of the dtype, element i at byte i * dt->size) and kernels. A position's
 * flat index f counts from the call's first position, which is position j0 of the sample x points at. */
typedef struct ce_ctx {
    const nllk_dtype_desc *dt;
    const nllk_kernels *k;
    size_t c, d, j0;
    int prob; /* probability targets */
    nllk_target_type tt;
    const unsigned char *target; /* class indices (flat positions), or probabilities (x's layout) */
    int64_t ignore_index;
    double ls, wsum;
    const void *x, *weight, *g;
    void *out, *lse, *gx, *gq;
    size_t g_stride;
    int stream; /* backward: grad_input beyond the caches (streaming stores) */
    double *exact; /* 16-bit storage, one block shared by threads: each position's loss as computed (float) */
    /* (a forward with gx set is the fused forward and backward: ce_fwd_run) */
} ce_ctx;

static nllk_status ce_check_options(double label_smoothing)
{
    if (!(label_smoothing >= 0.0 && label_smoothing <= 1.0))
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "label_smoothing must be between 0.0 and 1.0. Got: %g",
                         label_smoothing);
    return NLLK_OK;
}

/* W: the c weights summed in the class-lane order (nllk.h), c without weights. */
static double ce_weight_sum(const nllk_dtype_desc *dt, const void *weight, size_t c)
{
    if (!weight)
        return (double)c;
    double l[NLLK_LANES] = {0};
    for (size_t k = 0; k < c; k++)
        l[k % NLLK_LANES] += dt->load(nllk_elem(dt, weight, k));
    for (int h = NLLK_LANES / 2; h >= 1; h /= 2)
        for (int q = 0; q < h; q++)
            l[q] += l[q + h];
    return l[0];
}

static ce_ctx ce_ctx_for(const nllk_dtype_desc *dt, const void *x, const void *weight, size_t c, size_t d, double ls)
{
    return (ce_ctx){.dt = dt,
                    .k = nllk_active()->kernels[dt->slot],
                    .c = c,
                    .d = d,
                    .x = x,
                    .weight = weight,
                    .ls = ls,
                    .wsum = ls > 0 ? ce_weight_sum(dt, weight, c) : 0.0};
}

/* Positions worth a thread: a position costs about c elements' work. */
static size_t ce_grain(size_t c) { return c > 1 ? (NLLK_GRAIN / c > 16 ? NLLK_GRAIN / c : 16) : NLLK_GRAIN; }

/* The run of positions [f, f + left) inside one sample (all of them when d == 1), and its element offset. */
static nllk_ce_run ce_run_at(const ce_ctx *c, size_t f, size_t left, size_t *x_off)
{
    if (c->d == 1) {
        *x_off = f * c->c;
        return (nllk_ce_run){left, c->c, 1, c->c, c->ignore_index, c->ls, c->wsum, c->stream};
    }
    const size_t g = c->j0 + f, i = g / c->d, j = g % c->d;
    *x_off = i * c->c * c->d + j;
    return (nllk_ce_run){left < c->d - j ? left : c->d - j, 1, c->d, c->c, c->ignore_index, c->ls, c->wsum, c->stream};
}

static void *opt_elem(const nllk_dtype_desc *dt, void *p, size_t i) { return p ? nllk_elem_mut(dt, p, i) : NULL; }

/* One kernel call over a run at position f, lanes as given (already rotated); with c->gx, the fused kernel. */
static size_t ce_fwd_run(const ce_ctx *c, const nllk_ce_run *r, size_t f, size_t x_off, double *lanes)
{
    const nllk_dtype_desc *dt = c->dt;
    const void *x = nllk_elem(dt, c->x, x_off);
    if (c->gx)
        return c->k->ce_fwdbwd[c->tt](r, x, c->target + f * nllk_target_sizes[c->tt], c->weight,
                                      nllk_elem(dt, c->g, f * c->g_stride), c->g_stride, opt_elem(dt, c->out, f),
                                      opt_elem(dt, c->lse, f), lanes, nllk_elem_mut(dt, c->gx, x_off));
    if (c->prob) {
        c->k->ce_prob_fwd(r, x, nllk_elem(dt, c->target, x_off), c->weight, opt_elem(dt, c->out, f),
                          opt_elem(dt, c->lse, f), lanes);
        return r->len;
    }
    return c->k->ce_fwd[c->tt](r, x, c->target + f * nllk_target_sizes[c->tt], c->weight, opt_elem(dt, c->out, f),
                               opt_elem(dt, c->lse, f), lanes);
}

/* Forward over positions [off, off + len): losses to out, lse to lse (if set), lanes from position off. */
static size_t ce_fwd_span(const ce_ctx *c, size_t off, size_t len, double *lanes)
{
    for (size_t done = 0; done < len;) {
        size_t x_off;
        const nllk_ce_run r = ce_run_at(c, off + done, len - done, &x_off);
        size_t k;
        if (!lanes || done % NLLK_LANES == 0) {
            k = ce_fwd_run(c, &r, off + done, x_off, lanes);
        } else { /* this run starts inside a group of 16: its position 0 belongs in lane done % 16 */
            double rot[2 * NLLK_LANES];
            nllk_lanes_rotate(rot, lanes, (unsigned)(done % NLLK_LANES));
            k = ce_fwd_run(c, &r, off + done, x_off, rot);
            nllk_lanes_unrotate(lanes, rot, (unsigned)(done % NLLK_LANES));
        }
        if (k != r.len)
            return done + k;
        done += r.len;
    }
    return len;
}

static size_t ce_sum_run(void *vctx, size_t off, size_t len, double *lanes)
{
    return ce_fwd_span(vctx, off, len, lanes);
}

static size_t ce_none_span(void *vctx, size_t off, size_t len) { return ce_fwd_span(vctx, off, len, NULL); }

/* 16-bit storage: out would hold the losses rounded, but the lanes add them as computed. So each position is a
 * one-position kernel call with lanes of its own, whose lane 0 is +0 + loss: the loss exactly, kept in c->exact. */
static size_t ce_exact_span(void *vctx, size_t off, size_t len)
{
    const ce_ctx *c = vctx;
    for (size_t k = 0; k < len; k++) {
        size_t x_off;
        const nllk_ce_run r = ce_run_at(c, off + k, 1, &x_off);
        double l[2 * NLLK_LANES] = {0};
        if (ce_fwd_run(c, &r, off + k, x_off, l) != 1)
            return k;
        c->exact[off + k] = l[0];
    }
    return len;
}

/* Room for one block's losses in any dtype (or as doubles). */
typedef struct nllk_scalar_block {
    nllk_scalar v[NLLK_BLOCK / (sizeof(nllk_scalar) / sizeof(double))];
} nllk_scalar_block;

/* What the kernels add to the weight lanes for position f: w_t (0 when ignored), or 1 for probabilities. */
static double ce_weight_at(const ce_ctx *c, size_t f)
{
    if (c->prob)
        return 1.0;
    const int64_t t = nllk_target_at(c->target, c->tt, f);
    return t == c->ignore_index ? 0.0 : c->weight ? c->dt->load(nllk_elem(c->dt, c->weight, (size_t)t)) : 1.0;
}

/* The lanes of positions whose losses are already in c->out: what the kernels add (the loss and the weight), in
 * the same order. */
static size_t ce_buffer_run(void *vctx, size_t off, size_t len, double *lanes)
{
    const ce_ctx *c = vctx;
    for (size_t k = 0; k < len; k++) {
        lanes[k % NLLK_LANES] += c->exact ? c->exact[off + k] : c->dt->load(nllk_elem(c->dt, c->out, off + k));
        lanes[NLLK_LANES + k % NLLK_LANES] += ce_weight_at(c, off + k);
    }
    return len;
}

/* The weight lanes alone (the losses' stay +0): the forward's total_weight, from the targets only. */
static size_t ce_weight_run(void *vctx, size_t off, size_t len, double *lanes)
{
    const ce_ctx *c = vctx;
    for (size_t k = 0; k < len; k++)
        lanes[NLLK_LANES + k % NLLK_LANES] += ce_weight_at(c, off + k);
    return len;
}

static size_t ce_bwd_span(void *vctx, size_t off, size_t len)
{
    const ce_ctx *c = vctx;
    const nllk_dtype_desc *dt = c->dt;
    for (size_t done = 0; done < len;) {
        size_t x_off;
        const size_t f = off + done;
        const nllk_ce_run r = ce_run_at(c, f, len - done, &x_off);
        const void *x = nllk_elem(dt, c->x, x_off), *g = nllk_elem(dt, c->g, f * c->g_stride);
        if (c->prob)
            c->k->ce_prob_bwd(&r, x, nllk_elem(dt, c->target, x_off), c->weight, g, c->g_stride,
                              nllk_elem_mut(dt, c->gx, x_off), opt_elem(dt, c->gq, x_off));
        else
            c->k->ce_bwd[c->tt](&r, x, c->target + f * nllk_target_sizes[c->tt], c->weight, g, c->g_stride,
                                nllk_elem_mut(dt, c->gx, x_off));
        done += r.len;
    }
    return len;
}

/* ---- targets -------------------------------------------------------------------------------------------------- */

static size_t ce_check_span(void *vctx, size_t off, size_t len)
{
    const ce_ctx *c = vctx;
    return c->k->nll_check[c->tt](len, c->target + off * nllk_target_sizes[c->tt], c->c, c->ignore_index);
}

/* ---- shapes --------------------------------------------------------------------------------------------------- */

/* Checks reduction, target_type (class index), label_smoothing and sizes; fills c's target fields. */
static nllk_status ce_check(ce_ctx *c, const void *input, const char *input_name, const void *target, int prob,
                            nllk_target_type tt, size_t n, nllk_reduction reduction, size_t *nd)
{
    size_t ncd, bytes;
    nllk_status st = nllk_check_reduction(reduction);
    if (st == NLLK_OK && !prob)
        st = nllk_check_target_type(tt);
    if (st == NLLK_OK)
        st = ce_check_options(c->ls);
    if (st != NLLK_OK)
        return st;
    if (!nllk_mul_size(n, c->d, nd) || !nllk_mul_size(*nd, c->c, &ncd) || !nllk_mul_size(ncd, c->dt->size, &bytes) ||
        !nllk_mul_size(*nd, prob ? c->dt->size : nllk_target_sizes[tt], &bytes) ||
        !nllk_mul_size(*nd, c->dt->size, &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "shape (n=%zu, c=%zu, d=%zu) overflows size_t", n, c->c, c->d);
    if (ncd > 0 && !input)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", input_name);
    if (ncd > 0 && input_name[0] == 'g' && !c->x)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "input is NULL");
    if ((prob ? ncd : *nd) > 0 && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    c->prob = prob;
    c->tt = prob ? NLLK_TARGET_I64 : tt;
    c->target = target;
    return NLLK_OK;
}

/* ---- one-shot ------------------------------------------------------------------------------------------------- */

/* The fused call's backward half (class-index targets; c->target etc. set by ce_check): every target checked
 * before anything is written, then the gradient factor (grad_output NULL: 1) as the backward computes it from the
 * forward's total_weight, which MEAN computes first (the weight lanes of the canonical sum, rounded to the dtype). */
static nllk_status ce_fused_setup(ce_ctx *c, size_t nd, nllk_reduction reduction, const void *grad_output,
                                  void *grad_input, nllk_scalar *one, nllk_scalar *g, void *dummy)
{
    const nllk_dtype_desc *dt = c->dt;
    if (!grad_input && nd * c->c > 0)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_input is NULL");
    const size_t bad = nllk_parallel_spans(nd, 4 * NLLK_GRAIN, ce_check_span, c);
    if (bad != nd)
        return nllk_target_error(c->target, c->tt, c->c, c->d, 0, bad);
    double tw = 0.0;
    if (reduction == NLLK_REDUCTION_MEAN) {
        nllk_sum s;
        double total[2];
        nllk_sum_init(&s, 0);
        nllk_sum_feed_parallel_grain(&s, NULL, nd, 4 * NLLK_GRAIN, ce_weight_run, c);
        nllk_sum_total(&s, NULL, total);
        tw = nllk_round_to(dt, total[1]);
    }
    dt->store(one, 1.0);
    c->g = nllk_grad_scale(dt, reduction, grad_output ? grad_output : one, tw, nd, g, &c->g_stride);
    if (!grad_output)
        c->g_stride = 0; /* NONE: 1 for every position */
    c->stream = nd * c->c * dt->size >= NLLK_NLL_STREAM_BYTES;
    c->gx = grad_input ? grad_input : dummy; /* (no element: never written) */
    return NLLK_OK;
}

/* The forward; fused (class-index targets): the forward and the backward in one pass (nllk_cross_entropy_fwdbwd_*). */
static nllk_status ce_forward(const nllk_dtype_desc *dt, const void *input, const void *target, int prob,
                              nllk_target_type tt, size_t n, size_t c, size_t d, const void *weight,
                              int64_t ignore_index, double ls, nllk_reduction reduction, void *out, void *total_weight,
                              void *lse, int fused, const void *grad_output, void *grad_input)
{
    ce_ctx ctx = ce_ctx_for(dt, input, weight, c, d, ls);
    ctx.ignore_index = ignore_index;
    size_t nd;
    nllk_status st = ce_check(&ctx, input, "input", target, prob, tt, n, reduction, &nd);
    if (st != NLLK_OK)
        return st;
    if (!out && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "out is NULL");
    nllk_scalar one, gscale, dummy;
    if (fused && (st = ce_fused_setup(&ctx, nd, reduction, grad_output, grad_input, &one, &gscale, &dummy)) != NLLK_OK)
        return st;
    ctx.lse = lse;
    const size_t grain = ce_grain(c);
    if (reduction == NLLK_REDUCTION_NONE) {
        ctx.out = out;
        const size_t done = nllk_parallel_spans(nd, grain, ce_none_span, &ctx);
        if (done != nd)
            return nllk_target_error(ctx.target, ctx.tt, ctx.c, ctx.d, 0, done);
        if (total_weight)
            dt->store(total_weight, 0.0);
        return nllk_ok();
    }
    nllk_sum s;
    double total[2];
    nllk_sum_init(&s, 0);
    size_t done;
    if (nd <= NLLK_BLOCK && nllk_threads_for(nd, grain) > 1) {
        /* one block of costly positions (e.g. a few thousand rows of a huge vocabulary): the threads share it,
         * writing the losses to a stack buffer, which is then summed in the canonical order (the same bits) */
        nllk_scalar_block buf;
        if (dt->size == 2) { /* the losses as computed, not their 16-bit roundings (ce_exact_span) */
            ctx.exact = (double *)(void *)buf.v;
            done = nllk_parallel_spans(nd, grain, ce_exact_span, &ctx);
        } else {
            ctx.out = buf.v;
            done = nllk_parallel_spans(nd, grain, ce_none_span, &ctx);
        }
        if (done == nd)
            done = nllk_sum_feed(&s, NULL, nd, ce_buffer_run, &ctx);
    } else {
        done = nllk_sum_feed_parallel_grain(&s, NULL, nd, grain, ce_sum_run, &ctx);
    }
    if (done != nd)
        return nllk_target_error(ctx.target, ctx.tt, ctx.c, ctx.d, 0, done);
    nllk_sum_total(&s, NULL, total);
    nllk_reduce_store(prob ? &nllk_loss_ce_prob : &nllk_loss_ce, dt, reduction, total, nd, out);
    if (total_weight)
        dt->store(total_weight, total[1]);
    return nllk_ok();
}

static nllk_status ce_fwd(const nllk_dtype_desc *dt, const void *input, const void *target, int prob,
                          nllk_target_type tt, size_t n, size_t c, size_t d, const void *weight, int64_t ignore_index,
                          double ls, nllk_reduction reduction, void *out, void *total_weight, void *lse)
{
    return ce_forward(dt, input, target, prob, tt, n, c, d, weight, ignore_index, ls, reduction, out, total_weight, lse,
                      0, NULL, NULL);
}

static nllk_status ce_bwd(const nllk_dtype_desc *dt, const void *grad_output, const void *input, const void *target,
                          int prob, nllk_target_type tt, size_t n, size_t c, size_t d, const void *weight,
                          int64_t ignore_index, double ls, nllk_reduction reduction, double total_weight,
                          const void *lse, void *grad_input, void *grad_target)
{
    ce_ctx ctx = ce_ctx_for(dt, input, weight, c, d, ls);
    ctx.ignore_index = ignore_index;
    size_t nd;
    nllk_status st = ce_check(&ctx, grad_input, "grad_input", target, prob, tt, n, reduction, &nd);
    if (st != NLLK_OK)
        return st;
    if (!grad_output && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_output is NULL");
    const size_t grain = ce_grain(c);
    if (!prob) { /* every target is checked before the first write */
        const size_t bad = nllk_parallel_spans(nd, 4 * NLLK_GRAIN, ce_check_span, &ctx);
        if (bad != nd)
            return nllk_target_error(ctx.target, ctx.tt, ctx.c, ctx.d, 0, bad);
    }
    nllk_scalar g;
    ctx.g = nllk_grad_scale(dt, reduction, grad_output, prob ? (double)nd : total_weight, nd, &g, &ctx.g_stride);
    (void)lse; /* the backward recomputes each position's max and exp-sum (nllk.h): the same cost as exp(x - lse) */
    ctx.stream = nd * c * dt->size >= NLLK_NLL_STREAM_BYTES;
    ctx.gx = grad_input;
    ctx.gq = grad_target;
    nllk_parallel_spans(nd, grain, ce_bwd_span, &ctx);
    return nllk_ok();
}

/* ---- accumulators --------------------------------------------------------------------------------------------- */

static nllk_status ce_acc_init(nllk_acc *acc, nllk_dtype dtype, int prob, nllk_target_type tt, size_t c, size_t d,
                               int64_t ignore_index, double ls, uint64_t begin)
{
    if (!prob && nllk_check_target_type(tt) != NLLK_OK)
        return NLLK_ERR_INVALID_ARGUMENT;
    nllk_status st = ce_check_options(ls);
    if (st != NLLK_OK)
        return st;
    if (d == 0)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "d = 0: an accumulator needs at least one position per sample");
    nllk_acc_impl *a = nllk_acc_start(acc, prob ? NLLK_ACC_CE_PROB : NLLK_ACC_CE, dtype, begin, &st);
    if (!a)
        return st;
    a->target_type = prob ? 0u : (uint32_t)tt;
    a->c = c;
    a->d = d;
    a->ignore_index = prob ? 0 : ignore_index;
    a->label_smoothing = ls + 0.0; /* -0 reads as +0 */
    return nllk_acc_seal(a);
}

static nllk_status ce_acc_update(const nllk_dtype_desc *dt, int prob, nllk_acc *acc, const void *input,
                                 const void *target, size_t n, const void *weight, void *out)
{
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_get(acc, prob ? NLLK_ACC_CE_PROB : NLLK_ACC_CE, dt->id, &st);
    if (!a)
        return st;
    if (n > UINT64_MAX - a->sum.end)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "the element count would pass 2^64");
    const size_t j0 = (size_t)(a->sum.end % a->d);
    size_t samples, extent, bytes;
    if (j0 + n < n || !nllk_mul_size((j0 + n + a->d - 1) / a->d, a->c, &samples) ||
        !nllk_mul_size(samples, a->d, &extent) || !nllk_mul_size(extent, dt->size, &bytes) ||
        !nllk_mul_size(n, prob ? dt->size : nllk_target_sizes[a->target_type], &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "a chunk of %zu positions overflows size_t", n);
    if (n > 0 && a->c > 0 && (!target || !input))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", target ? "input" : "target");
    if (n > 0 && !prob && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    ce_ctx ctx = ce_ctx_for(dt, input, weight, (size_t)a->c, (size_t)a->d, a->label_smoothing);
    ctx.prob = prob;
    ctx.tt = (nllk_target_type)a->target_type;
    ctx.target = target;
    ctx.ignore_index = a->ignore_index;
    ctx.j0 = j0;
    ctx.out = out;
    if (!prob) { /* targets first, so that a failed update leaves the accumulator as it was */
        const size_t bad = nllk_parallel_spans(n, 4 * NLLK_GRAIN, ce_check_span, &ctx);
        if (bad != n)
            return nllk_target_error(ctx.target, ctx.tt, ctx.c, ctx.d, a->sum.end, bad);
    }
    nllk_acc_feed_grain(a, n, ce_grain(ctx.c), ce_sum_run, &ctx);
    return nllk_ok();
}

/* ---- the public functions ------------------------------------------------------------------------------------- */

nllk_status nllk_cross_entropy_fwd_f32(const float *input, const void *target, nllk_target_type target_type, size_t n,
                                       size_t c, size_t d, const float *weight, int64_t ignore_index,
                                       double label_smoothing, nllk_reduction reduction, float *out,
                                       float *total_weight, float *lse)
{
    return ce_fwd(&nllk_dtype_f32, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                  reduction, out, total_weight, lse);
}
nllk_status nllk_cross_entropy_fwd_f64(const double *input, const void *target, nllk_target_type target_type, size_t n,
                                       size_t c, size_t d, const double *weight, int64_t ignore_index,
                                       double label_smoothing, nllk_reduction reduction, double *out,
                                       double *total_weight, double *lse)
{
    return ce_fwd(&nllk_dtype_f64, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                  reduction, out, total_weight, lse);
}

nllk_status nllk_cross_entropy_bwd_f32(const float *grad_output, const float *input, const void *target,
                                       nllk_target_type target_type, size_t n, size_t c, size_t d, const float *weight,
                                       int64_t ignore_index, double label_smoothing, nllk_reduction reduction,
                                       float total_weight, const float *lse, float *grad_input)
{
    return ce_bwd(&nllk_dtype_f32, grad_output, input, target, 0, target_type, n, c, d, weight, ignore_index,
                  label_smoothing, reduction, total_weight, lse, grad_input, NULL);
}
nllk_status nllk_cross_entropy_bwd_f64(const double *grad_output, const double *input, const void *target,
                                       nllk_target_type target_type, size_t n, size_t c, size_t d, const double *weight,
                                       int64_t ignore_index, double label_smoothing, nllk_reduction reduction,
                                       double total_weight, const double *lse, double *grad_input)
{
    return ce_bwd(&nllk_dtype_f64, grad_output, input, target, 0, target_type, n, c, d, weight, ignore_index,
                  label_smoothing, reduction, total_weight, lse, grad_input, NULL);
}

nllk_status nllk_cross_entropy_fwdbwd_f32(const float *input, const void *target, nllk_target_type target_type,
                                          size_t n, size_t c, size_t d, const float *weight, int64_t ignore_index,
                                          double label_smoothing, nllk_reduction reduction, float *out,
                                          float *total_weight, float *lse, const float *grad_output, float *grad_input)
{
    return ce_forward(&nllk_dtype_f32, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                      reduction, out, total_weight, lse, 1, grad_output, grad_input);
}
nllk_status nllk_cross_entropy_fwdbwd_f64(const double *input, const void *target, nllk_target_type target_type,
                                          size_t n, size_t c, size_t d, const double *weight, int64_t ignore_index,
                                          double label_smoothing, nllk_reduction reduction, double *out,
                                          double *total_weight, double *lse, const double *grad_output,
                                          double *grad_input)
{
    return ce_forward(&nllk_dtype_f64, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                      reduction, out, total_weight, lse, 1, grad_output, grad_input);
}

nllk_status nllk_cross_entropy_prob_fwd_f32(const float *input, const float *target, size_t n, size_t c, size_t d,
                                            const float *weight, double label_smoothing, nllk_reduction reduction,
                                            float *out, float *lse)
{
    return ce_fwd(&nllk_dtype_f32, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing, reduction,
                  out, NULL, lse);
}
nllk_status nllk_cross_entropy_prob_fwd_f64(const double *input, const double *target, size_t n, size_t c, size_t d,
                                            const double *weight, double label_smoothing, nllk_reduction reduction,
                                            double *out, double *lse)
{
    return ce_fwd(&nllk_dtype_f64, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing, reduction,
                  out, NULL, lse);
}

nllk_status nllk_cross_entropy_prob_bwd_f32(const float *grad_output, const float *input, const float *target, size_t n,
                                            size_t c, size_t d, const float *weight, double label_smoothing,
                                            nllk_reduction reduction, const float *lse, float *grad_input,
                                            float *grad_target)
{
    return ce_bwd(&nllk_dtype_f32, grad_output, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing,
                  reduction, 0.0, lse, grad_input, grad_target);
}
nllk_status nllk_cross_entropy_prob_bwd_f64(const double *grad_output, const double *input, const double *target,
                                            size_t n, size_t c, size_t d, const double *weight, double label_smoothing,
                                            nllk_reduction reduction, const double *lse, double *grad_input,
                                            double *grad_target)
{
    return ce_bwd(&nllk_dtype_f64, grad_output, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing,
                  reduction, 0.0, lse, grad_input, grad_target);
}

nllk_status nllk_cross_entropy_acc_init(nllk_acc *acc, nllk_dtype dtype, nllk_target_type target_type, size_t c,
                                        size_t d, int64_t ignore_index, double label_smoothing, uint64_t begin)
{
    return ce_acc_init(acc, dtype, 0, target_type, c, d, ignore_index, label_smoothing, begin);
}
nllk_status nllk_cross_entropy_prob_acc_init(nllk_acc *acc, nllk_dtype dtype, size_t c, size_t d,
                                             double label_smoothing, uint64_t begin)
{
    return ce_acc_init(acc, dtype, 1, NLLK_TARGET_I64, c, d, 0, label_smoothing, begin);
}

nllk_status nllk_cross_entropy_acc_update_f32(nllk_acc *acc, const float *input, const void *target, size_t n,
                                              const float *weight)
{
    return ce_acc_update(&nllk_dtype_f32, 0, acc, input, target, n, weight, NULL);
}
nllk_status nllk_cross_entropy_acc_update_f64(nllk_acc *acc, const double *input, const void *target, size_t n,
                                              const double *weight)
{
    return ce_acc_update(&nllk_dtype_f64, 0, acc, input, target, n, weight, NULL);
}
nllk_status nllk_cross_entropy_acc_update_out_f32(nllk_acc *acc, const float *input, const void *target, size_t n,
                                                  const float *weight, float *out)
{
    return ce_acc_update(&nllk_dtype_f32, 0, acc, input, target, n, weight, out);
}
nllk_status nllk_cross_entropy_acc_update_out_f64(nllk_acc *acc, const double *input, const void *target, size_t n,
                                                  const double *weight, double *out)
{
    return ce_acc_update(&nllk_dtype_f64, 0, acc, input, target, n, weight, out);
}
nllk_status nllk_cross_entropy_prob_acc_update_f32(nllk_acc *acc, const float *input, const float *target, size_t n,
                                                   const float *weight)
{
    return ce_acc_update(&nllk_dtype_f32, 1, acc, input, target, n, weight, NULL);
}
nllk_status nllk_cross_entropy_prob_acc_update_f64(nllk_acc *acc, const double *input, const double *target, size_t n,
                                                   const double *weight)
{
    return ce_acc_update(&nllk_dtype_f64, 1, acc, input, target, n, weight, NULL);
}
nllk_status nllk_cross_entropy_prob_acc_update_out_f32(nllk_acc *acc, const float *input, const float *target, size_t n,
                                                       const float *weight, float *out)
{
    return ce_acc_update(&nllk_dtype_f32, 1, acc, input, target, n, weight, out);
}
nllk_status nllk_cross_entropy_prob_acc_update_out_f64(nllk_acc *acc, const double *input, const double *target,
                                                       size_t n, const double *weight, double *out)
{
    return ce_acc_update(&nllk_dtype_f64, 1, acc, input, target, n, weight, out);
}

/* ---- bfloat16 and float16 storage (nllk.h): the same driver over the 16-bit descriptors ------------------------ */

nllk_status nllk_cross_entropy_fwd_bf16(const nllk_bf16 *input, const void *target, nllk_target_type target_type,
                                        size_t n, size_t c, size_t d, const nllk_bf16 *weight, int64_t ignore_index,
                                        double label_smoothing, nllk_reduction reduction, nllk_bf16 *out,
                                        nllk_bf16 *total_weight, nllk_bf16 *lse)
{
    return ce_fwd(&nllk_dtype_bf16, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                  reduction, out, total_weight, lse);
}

nllk_status nllk_cross_entropy_bwd_bf16(const nllk_bf16 *grad_output, const nllk_bf16 *input, const void *target,
                                        nllk_target_type target_type, size_t n, size_t c, size_t d,
                                        const nllk_bf16 *weight, int64_t ignore_index, double label_smoothing,
                                        nllk_reduction reduction, nllk_bf16 total_weight, const nllk_bf16 *lse,
                                        nllk_bf16 *grad_input)
{
    return ce_bwd(&nllk_dtype_bf16, grad_output, input, target, 0, target_type, n, c, d, weight, ignore_index,
                  label_smoothing, reduction, nllk_dtype_bf16.load(&total_weight), lse, grad_input, NULL);
}

nllk_status nllk_cross_entropy_fwdbwd_bf16(const nllk_bf16 *input, const void *target, nllk_target_type target_type,
                                           size_t n, size_t c, size_t d, const nllk_bf16 *weight, int64_t ignore_index,
                                           double label_smoothing, nllk_reduction reduction, nllk_bf16 *out,
                                           nllk_bf16 *total_weight, nllk_bf16 *lse, const nllk_bf16 *grad_output,
                                           nllk_bf16 *grad_input)
{
    return ce_forward(&nllk_dtype_bf16, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                      reduction, out, total_weight, lse, 1, grad_output, grad_input);
}

nllk_status nllk_cross_entropy_prob_fwd_bf16(const nllk_bf16 *input, const nllk_bf16 *target, size_t n, size_t c,
                                             size_t d, const nllk_bf16 *weight, double label_smoothing,
                                             nllk_reduction reduction, nllk_bf16 *out, nllk_bf16 *lse)
{
    return ce_fwd(&nllk_dtype_bf16, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing, reduction,
                  out, NULL, lse);
}

nllk_status nllk_cross_entropy_prob_bwd_bf16(const nllk_bf16 *grad_output, const nllk_bf16 *input,
                                             const nllk_bf16 *target, size_t n, size_t c, size_t d,
                                             const nllk_bf16 *weight, double label_smoothing, nllk_reduction reduction,
                                             const nllk_bf16 *lse, nllk_bf16 *grad_input, nllk_bf16 *grad_target)
{
    return ce_bwd(&nllk_dtype_bf16, grad_output, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing,
                  reduction, 0.0, lse, grad_input, grad_target);
}

nllk_status nllk_cross_entropy_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target, size_t n,
                                               const nllk_bf16 *weight)
{
    return ce_acc_update(&nllk_dtype_bf16, 0, acc, input, target, n, weight, NULL);
}

nllk_status nllk_cross_entropy_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target, size_t n,
                                                   const nllk_bf16 *weight, nllk_bf16 *out)
{
    return ce_acc_update(&nllk_dtype_bf16, 0, acc, input, target, n, weight, out);
}

nllk_status nllk_cross_entropy_prob_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input, const nllk_bf16 *target,
                                                    size_t n, const nllk_bf16 *weight)
{
    return ce_acc_update(&nllk_dtype_bf16, 1, acc, input, target, n, weight, NULL);
}

nllk_status nllk_cross_entropy_prob_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input, const nllk_bf16 *target,
                                                        size_t n, const nllk_bf16 *weight, nllk_bf16 *out)
{
    return ce_acc_update(&nllk_dtype_bf16, 1, acc, input, target, n, weight, out);
}

nllk_status nllk_cross_entropy_fwd_f16(const nllk_f16 *input, const void *target, nllk_target_type target_type,
                                       size_t n, size_t c, size_t d, const nllk_f16 *weight, int64_t ignore_index,
                                       double label_smoothing, nllk_reduction reduction, nllk_f16 *out,
                                       nllk_f16 *total_weight, nllk_f16 *lse)
{
    return ce_fwd(&nllk_dtype_f16, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                  reduction, out, total_weight, lse);
}

nllk_status nllk_cross_entropy_bwd_f16(const nllk_f16 *grad_output, const nllk_f16 *input, const void *target,
                                       nllk_target_type target_type, size_t n, size_t c, size_t d,
                                       const nllk_f16 *weight, int64_t ignore_index, double label_smoothing,
                                       nllk_reduction reduction, nllk_f16 total_weight, const nllk_f16 *lse,
                                       nllk_f16 *grad_input)
{
    return ce_bwd(&nllk_dtype_f16, grad_output, input, target, 0, target_type, n, c, d, weight, ignore_index,
                  label_smoothing, reduction, nllk_dtype_f16.load(&total_weight), lse, grad_input, NULL);
}

nllk_status nllk_cross_entropy_fwdbwd_f16(const nllk_f16 *input, const void *target, nllk_target_type target_type,
                                          size_t n, size_t c, size_t d, const nllk_f16 *weight, int64_t ignore_index,
                                          double label_smoothing, nllk_reduction reduction, nllk_f16 *out,
                                          nllk_f16 *total_weight, nllk_f16 *lse, const nllk_f16 *grad_output,
                                          nllk_f16 *grad_input)
{
    return ce_forward(&nllk_dtype_f16, input, target, 0, target_type, n, c, d, weight, ignore_index, label_smoothing,
                      reduction, out, total_weight, lse, 1, grad_output, grad_input);
}

nllk_status nllk_cross_entropy_prob_fwd_f16(const nllk_f16 *input, const nllk_f16 *target, size_t n, size_t c, size_t d,
                                            const nllk_f16 *weight, double label_smoothing, nllk_reduction reduction,
                                            nllk_f16 *out, nllk_f16 *lse)
{
    return ce_fwd(&nllk_dtype_f16, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing, reduction,
                  out, NULL, lse);
}

nllk_status nllk_cross_entropy_prob_bwd_f16(const nllk_f16 *grad_output, const nllk_f16 *input, const nllk_f16 *target,
                                            size_t n, size_t c, size_t d, const nllk_f16 *weight,
                                            double label_smoothing, nllk_reduction reduction, const nllk_f16 *lse,
                                            nllk_f16 *grad_input, nllk_f16 *grad_target)
{
    return ce_bwd(&nllk_dtype_f16, grad_output, input, target, 1, NLLK_TARGET_I64, n, c, d, weight, 0, label_smoothing,
                  reduction, 0.0, lse, grad_input, grad_target);
}

nllk_status nllk_cross_entropy_acc_update_f16(nllk_acc *acc, const nllk_f16 *input, const void *target, size_t n,
                                              const nllk_f16 *weight)
{
    return ce_acc_update(&nllk_dtype_f16, 0, acc, input, target, n, weight, NULL);
}

nllk_status nllk_cross_entropy_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input, const void *target, size_t n,
                                                  const nllk_f16 *weight, nllk_f16 *out)
{
    return ce_acc_update(&nllk_dtype_f16, 0, acc, input, target, n, weight, out);
}

nllk_status nllk_cross_entropy_prob_acc_update_f16(nllk_acc *acc, const nllk_f16 *input, const nllk_f16 *target,
                                                   size_t n, const nllk_f16 *weight)
{
    return ce_acc_update(&nllk_dtype_f16, 1, acc, input, target, n, weight, NULL);
}

nllk_status nllk_cross_entropy_prob_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input, const nllk_f16 *target,
                                                       size_t n, const nllk_f16 *weight, nllk_f16 *out)
{
    return ce_acc_update(&nllk_dtype_f16, 1, acc, input, target, n, weight, out);
}
