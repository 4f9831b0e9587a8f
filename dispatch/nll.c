/* Public NLL entry points: argument checks and the driver, written once over the dtype descriptor (dtype.h);
 * each public function is one line at the end of the file. */
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

/* The validated geometry of one call. */
typedef struct nllk_nll_shape {
    size_t n, c, d;
    const unsigned char *target;
    size_t target_size;
    nllk_target_type target_type;
    int64_t ignore_index;
} nllk_nll_shape;

/* input_name: what the (n, c, d) array is called in the caller ("input", or "grad_input" for the backward) */
static nllk_status nll_check_args(nllk_nll_shape *s, const void *input, const char *input_name, const void *target,
                                  nllk_target_type target_type, size_t n, size_t c, size_t d, size_t elem_size,
                                  int64_t ignore_index, nllk_reduction reduction)
{
    size_t nd, ncd, bytes;
    nllk_status st = nllk_check_reduction(reduction);
    if (st == NLLK_OK)
        st = nllk_check_target_type(target_type);
    if (st != NLLK_OK)
        return st;
    if (!nllk_mul_size(n, d, &nd) || !nllk_mul_size(nd, c, &ncd) || !nllk_mul_size(ncd, elem_size, &bytes) ||
        !nllk_mul_size(nd, nllk_target_sizes[target_type], &bytes) || !nllk_mul_size(nd, elem_size, &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "shape (n=%zu, c=%zu, d=%zu) overflows size_t", n, c, d);
    if (ncd > 0 && !input)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", input_name);
    if (nd > 0 && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    *s = (nllk_nll_shape){n, c, d, target, nllk_target_sizes[target_type], target_type, ignore_index};
    return NLLK_OK;
}

/* One call: its geometry, arrays and kernels. Arrays of the dtype are void, element i at byte i * dt->size. */
typedef struct nll_ctx {
    nllk_nll_shape s;
    const nllk_dtype_desc *dt;
    const nllk_kernels *k; /* the active ISA's kernels of dt, fetched once per call */
    const void *x;         /* the start of the sample holding element 0                          */
    size_t j0;             /* element 0's position in that sample (0 except for streaming chunks) */
    const void *weight;
    void *out;     /* forward: per-element losses (NONE, or the accumulators' out)        */
    const void *g; /* backward: grad_output, g_stride 0 or 1                              */
    size_t g_stride;
    void *gx;   /* backward: grad_input                                               */
    int stream; /* backward, N-D: streaming stores (grad_input beyond the caches)     */
} nll_ctx;

static nll_ctx nll_ctx_for(const nllk_dtype_desc *dt, const void *x, const void *weight)
{
    return (nll_ctx){.dt = dt, .k = nllk_active()->kernels[dt->slot], .x = x, .weight = weight};
}

/* The run of elements [f, f + left) that stays inside one sample (all of it when d == 1). */
static nllk_nll_run nll_run_at(const nll_ctx *c, size_t f, size_t left, size_t *x_off)
{
    const nllk_nll_shape *s = &c->s;
    if (s->d == 1) {
        *x_off = f * s->c;
        return (nllk_nll_run){left, s->c, 1, s->c, s->ignore_index};
    }
    const size_t g = c->j0 + f, i = g / s->d, j = g % s->d;
    *x_off = i * s->c * s->d + j;
    return (nllk_nll_run){left < s->d - j ? left : s->d - j, 1, s->d, s->c, s->ignore_index};
}

/* Forward over elements [off, off + len): per-element losses to out (if set), lanes from element off. */
static size_t nll_fwd_span(const nll_ctx *c, size_t off, size_t len, double *lanes)
{
    const nllk_dtype_desc *dt = c->dt;
    const nllk_nll_fwd_fn fwd = c->k->nll_fwd[c->s.target_type];
    for (size_t done = 0; done < len;) {
        size_t x_off;
        const nllk_nll_run r = nll_run_at(c, off + done, len - done, &x_off);
        const void *x = nllk_elem(dt, c->x, x_off);
        const void *tg = c->s.target + (off + done) * c->s.target_size;
        void *out = c->out ? nllk_elem_mut(dt, c->out, off + done) : NULL;
        size_t k;
        if (!lanes || done % NLLK_LANES == 0) {
            k = fwd(&r, x, tg, c->weight, out, lanes);
        } else { /* this run starts inside a group of 16: its element 0 belongs in lane done % 16 */
            double rot[2 * NLLK_LANES];
            nllk_lanes_rotate(rot, lanes, (unsigned)(done % NLLK_LANES));
            k = fwd(&r, x, tg, c->weight, out, rot);
            nllk_lanes_unrotate(lanes, rot, (unsigned)(done % NLLK_LANES));
        }
        if (k != r.len)
            return done + k;
        done += r.len;
    }
    return len;
}

static size_t nll_sum_run(void *vctx, size_t off, size_t len, double *lanes)
{
    return nll_fwd_span(vctx, off, len, lanes);
}

static size_t nll_none_span(void *vctx, size_t off, size_t len) { return nll_fwd_span(vctx, off, len, NULL); }

static size_t check_span(void *vctx, size_t off, size_t len)
{
    const nll_ctx *c = vctx;
    return c->k->nll_check[c->s.target_type](len, c->s.target + off * c->s.target_size, c->s.c, c->s.ignore_index);
}

/* The lowest f in [0, nd) whose target is neither in [0, c) nor ignore_index, or nd. */
static size_t nll_check_targets(nll_ctx *c, size_t nd)
{
    return nllk_parallel_spans(nd, 4 * NLLK_GRAIN, check_span, c);
}

/* Backward over elements [off, off + len): the scatter into zero-filled rows (targets already validated), or (fill)
 * the N-D one-pass kernel, whose runs write their c planes whole and validate their targets (kernels.h). Returns
 * len, or the first bad target's element (fill only). */
static size_t nll_bwd_runs(const nll_ctx *c, size_t off, size_t len, int fill)
{
    const nllk_dtype_desc *dt = c->dt;
    for (size_t done = 0; done < len;) {
        size_t x_off;
        const nllk_nll_run r = nll_run_at(c, off + done, len - done, &x_off);
        const void *tg = c->s.target + (off + done) * c->s.target_size;
        const void *g = nllk_elem(dt, c->g, (off + done) * c->g_stride);
        void *gx = nllk_elem_mut(dt, c->gx, x_off);
        if (fill) {
            const size_t k = c->k->nll_bwd_fill[c->s.target_type](&r, tg, c->weight, g, c->g_stride, gx, c->stream);
            if (k != r.len)
                return done + k;
        } else
            c->k->nll_bwd[c->s.target_type](&r, tg, c->weight, g, c->g_stride, gx);
        done += r.len;
    }
    return len;
}

static size_t nll_bwd_fill_span(void *vctx, size_t off, size_t len) { return nll_bwd_runs(vctx, off, len, 1); }

static void zero_fill(const nll_ctx *c, size_t first, size_t count)
{
    if (count)
        c->k->zero_fill(nllk_elem_mut(c->dt, c->gx, first), count * c->dt->size);
}

/* For d == 1 each span zero-fills its own rows and scatters into them. A span of narrow rows
 * (NLLK_NARROW_ROW_BYTES, kernels.h) larger than BWD_PIECES_FROM goes a piece of BWD_PIECE bytes at a time, so
 * the scatter finds its rows still in L1: filling a whole span first (up to the grain, 1.3 MB for (N, 10) f32, more
 * than L2) made the scatters miss, 1.5-2x slower on (1048576, 10) and (1048576, 32) f32 (BENCHMARKS.md). Wide rows
 * keep one fill per span, which streams when it is large; small spans measured faster in one fill too. For d > 1
 * each position's c planes are written in one pass (nll_bwd_fill_span), zeros and values together. */
#define BWD_PIECE ((size_t)16 << 10)
#define BWD_PIECES_FROM ((size_t)512 << 10)
static size_t nll_bwd_span(void *vctx, size_t off, size_t len)
{
    const nll_ctx *c = vctx;
    const size_t row = c->s.c * c->dt->size;
    const int pieces = row && row <= NLLK_NARROW_ROW_BYTES && len * row > BWD_PIECES_FROM;
    const size_t per = pieces ? BWD_PIECE / row : len;
    for (size_t p = 0; p < len; p += per) {
        const size_t m = len - p < per ? len - p : per;
        zero_fill(c, (off + p) * c->s.c, m * c->s.c);
        nll_bwd_runs(c, off + p, m, 0);
    }
    return len;
}

static nllk_status nll_fwd(const nllk_dtype_desc *dt, const void *input, const void *target,
                           nllk_target_type target_type, size_t n, size_t c, size_t d, const void *weight,
                           int64_t ignore_index, nllk_reduction reduction, void *out, void *total_weight)
{
    nll_ctx ctx = nll_ctx_for(dt, input, weight);
    nllk_status st =
        nll_check_args(&ctx.s, input, "input", target, target_type, n, c, d, dt->size, ignore_index, reduction);
    if (st != NLLK_OK)
        return st;
    const size_t nd = n * d;
    if (!out && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "out is NULL");
    if (reduction == NLLK_REDUCTION_NONE) {
        ctx.out = out;
        const size_t done = nllk_parallel_spans(nd, NLLK_GRAIN, nll_none_span, &ctx);
        if (done != nd)
            return nllk_target_error(ctx.s.target, ctx.s.target_type, ctx.s.c, ctx.s.d, 0, done);
        if (total_weight)
            dt->store(total_weight, 0.0);
        return nllk_ok();
    }
    nllk_sum s;
    double total[2];
    nllk_sum_init(&s, 0);
    const size_t done = nllk_sum_feed_parallel(&s, NULL, nd, nll_sum_run, &ctx);
    if (done != nd)
        return nllk_target_error(ctx.s.target, ctx.s.target_type, ctx.s.c, ctx.s.d, 0, done);
    nllk_sum_total(&s, NULL, total);
    nllk_reduce_store(&nllk_loss_nll, dt, reduction, total, nd, out);
    if (total_weight)
        dt->store(total_weight, total[1]);
    return nllk_ok();
}

/* total_weight: the forward's, a value of the dtype (exact in double) */
static nllk_status nll_bwd(const nllk_dtype_desc *dt, const void *grad_output, const void *target,
                           nllk_target_type target_type, size_t n, size_t c, size_t d, const void *weight,
                           int64_t ignore_index, nllk_reduction reduction, double total_weight, void *grad_input)
{
    nll_ctx ctx = nll_ctx_for(dt, NULL, weight);
    ctx.gx = grad_input;
    nllk_status st = nll_check_args(&ctx.s, grad_input, "grad_input", target, target_type, n, c, d, dt->size,
                                    ignore_index, reduction);
    if (st != NLLK_OK)
        return st;
    const size_t nd = n * d;
    if (!grad_output && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_output is NULL");
    /* mean's factor is grad_output / total_weight in the dtype, negated by the kernel (ATen's order) */
    nllk_scalar g;
    ctx.g = nllk_grad_scale(dt, reduction, grad_output, total_weight, nd, &g, &ctx.g_stride);
    if (d != 1) { /* one pass: every line of grad_input written once, streaming beyond the caches; the kernel
                   * validates the targets as it goes (it writes only inside the planes) */
        ctx.stream = n * c * d * dt->size >= NLLK_NLL_STREAM_BYTES;
        const size_t bad = nllk_parallel_spans(nd, NLLK_GRAIN, nll_bwd_fill_span, &ctx);
        if (bad != nd)
            return nllk_target_error(ctx.s.target, ctx.s.target_type, ctx.s.c, ctx.s.d, 0, bad);
        return nllk_ok();
    }
    /* the scatter: every target is checked before the first write, so nothing is ever written out of bounds */
    const size_t bad = nll_check_targets(&ctx, nd);
    if (bad != nd)
        return nllk_target_error(ctx.s.target, ctx.s.target_type, ctx.s.c, ctx.s.d, 0, bad);
    nllk_parallel_spans(nd, NLLK_GRAIN, nll_bwd_span, &ctx);
    return nllk_ok();
}

nllk_status nllk_nll_acc_init(nllk_acc *acc, nllk_dtype dtype, nllk_target_type target_type, size_t c, size_t d,
                              int64_t ignore_index, uint64_t begin)
{
    const nllk_status bad_type = nllk_check_target_type(target_type);
    if (bad_type != NLLK_OK)
        return bad_type;
    if (d == 0)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "d = 0: an accumulator needs at least one position per sample");
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_start(acc, NLLK_ACC_NLL, dtype, begin, &st);
    if (!a)
        return st;
    a->target_type = (uint32_t)target_type;
    a->c = c;
    a->d = d;
    a->ignore_index = ignore_index;
    return nllk_acc_seal(a);
}

static nllk_status nll_acc_update(const nllk_dtype_desc *dt, nllk_acc *acc, const void *input, const void *target,
                                  size_t n, const void *weight, void *out)
{
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_get(acc, nllk_loss_nll.acc, dt->id, &st);
    if (!a)
        return st;
    if (n > UINT64_MAX - a->sum.end)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "the element count would pass 2^64");
    const size_t j0 = (size_t)(a->sum.end % a->d);
    size_t samples, extent, bytes;
    if (j0 + n < n || !nllk_mul_size((j0 + n + a->d - 1) / a->d, a->c, &samples) ||
        !nllk_mul_size(samples, a->d, &extent) || !nllk_mul_size(extent, dt->size, &bytes) ||
        !nllk_mul_size(n, nllk_target_sizes[a->target_type], &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "a chunk of %zu elements overflows size_t", n);
    if (n > 0 && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    if (n > 0 && a->c > 0 && !input)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "input is NULL");
    nll_ctx ctx = nll_ctx_for(dt, input, weight);
    ctx.s = (nllk_nll_shape){
        0, a->c, a->d, target, nllk_target_sizes[a->target_type], (nllk_target_type)a->target_type, a->ignore_index};
    ctx.j0 = j0;
    ctx.out = out;
    /* targets first, so that a failed update leaves the accumulator as it was */
    const size_t bad = nll_check_targets(&ctx, n);
    if (bad != n)
        return nllk_target_error(ctx.s.target, ctx.s.target_type, ctx.s.c, ctx.s.d, a->sum.end, bad);
    nllk_acc_feed(a, n, nll_sum_run, &ctx);
    return nllk_ok();
}

/* ---- the public functions ------------------------------------------------------------------------------------- */

nllk_status nllk_nll_fwd_f32(const float *input, const void *target, nllk_target_type target_type, size_t n, size_t c,
                             size_t d, const float *weight, int64_t ignore_index, nllk_reduction reduction, float *out,
                             float *total_weight)
{
    return nll_fwd(&nllk_dtype_f32, input, target, target_type, n, c, d, weight, ignore_index, reduction, out,
                   total_weight);
}
nllk_status nllk_nll_fwd_f64(const double *input, const void *target, nllk_target_type target_type, size_t n, size_t c,
                             size_t d, const double *weight, int64_t ignore_index, nllk_reduction reduction,
                             double *out, double *total_weight)
{
    return nll_fwd(&nllk_dtype_f64, input, target, target_type, n, c, d, weight, ignore_index, reduction, out,
                   total_weight);
}

nllk_status nllk_nll_bwd_f32(const float *grad_output, const void *target, nllk_target_type target_type, size_t n,
                             size_t c, size_t d, const float *weight, int64_t ignore_index, nllk_reduction reduction,
                             float total_weight, float *grad_input)
{
    return nll_bwd(&nllk_dtype_f32, grad_output, target, target_type, n, c, d, weight, ignore_index, reduction,
                   total_weight, grad_input);
}
nllk_status nllk_nll_bwd_f64(const double *grad_output, const void *target, nllk_target_type target_type, size_t n,
                             size_t c, size_t d, const double *weight, int64_t ignore_index, nllk_reduction reduction,
                             double total_weight, double *grad_input)
{
    return nll_bwd(&nllk_dtype_f64, grad_output, target, target_type, n, c, d, weight, ignore_index, reduction,
                   total_weight, grad_input);
}

nllk_status nllk_nll_acc_update_f32(nllk_acc *acc, const float *input, const void *target, size_t n,
                                    const float *weight)
{
    return nll_acc_update(&nllk_dtype_f32, acc, input, target, n, weight, NULL);
}
nllk_status nllk_nll_acc_update_f64(nllk_acc *acc, const double *input, const void *target, size_t n,
                                    const double *weight)
{
    return nll_acc_update(&nllk_dtype_f64, acc, input, target, n, weight, NULL);
}

nllk_status nllk_nll_acc_update_out_f32(nllk_acc *acc, const float *input, const void *target, size_t n,
                                        const float *weight, float *out)
{
    return nll_acc_update(&nllk_dtype_f32, acc, input, target, n, weight, out);
}
nllk_status nllk_nll_acc_update_out_f64(nllk_acc *acc, const double *input, const void *target, size_t n,
                                        const double *weight, double *out)
{
    return nll_acc_update(&nllk_dtype_f64, acc, input, target, n, weight, out);
}

/* ---- bfloat16 and float16 storage (nllk.h): the same driver over the 16-bit descriptors ----------------------- */

nllk_status nllk_nll_fwd_bf16(const nllk_bf16 *input, const void *target, nllk_target_type target_type, size_t n,
                              size_t c, size_t d, const nllk_bf16 *weight, int64_t ignore_index,
                              nllk_reduction reduction, nllk_bf16 *out, nllk_bf16 *total_weight)
{
    return nll_fwd(&nllk_dtype_bf16, input, target, target_type, n, c, d, weight, ignore_index, reduction, out,
                   total_weight);
}

nllk_status nllk_nll_fwd_f16(const nllk_f16 *input, const void *target, nllk_target_type target_type, size_t n,
                             size_t c, size_t d, const nllk_f16 *weight, int64_t ignore_index, nllk_reduction reduction,
                             nllk_f16 *out, nllk_f16 *total_weight)
{
    return nll_fwd(&nllk_dtype_f16, input, target, target_type, n, c, d, weight, ignore_index, reduction, out,
                   total_weight);
}

nllk_status nllk_nll_bwd_bf16(const nllk_bf16 *grad_output, const void *target, nllk_target_type target_type, size_t n,
                              size_t c, size_t d, const nllk_bf16 *weight, int64_t ignore_index,
                              nllk_reduction reduction, nllk_bf16 total_weight, nllk_bf16 *grad_input)
{
    return nll_bwd(&nllk_dtype_bf16, grad_output, target, target_type, n, c, d, weight, ignore_index, reduction,
                   nllk_dtype_bf16.load(&total_weight), grad_input);
}

nllk_status nllk_nll_bwd_f16(const nllk_f16 *grad_output, const void *target, nllk_target_type target_type, size_t n,
                             size_t c, size_t d, const nllk_f16 *weight, int64_t ignore_index, nllk_reduction reduction,
                             nllk_f16 total_weight, nllk_f16 *grad_input)
{
    return nll_bwd(&nllk_dtype_f16, grad_output, target, target_type, n, c, d, weight, ignore_index, reduction,
                   nllk_dtype_f16.load(&total_weight), grad_input);
}

nllk_status nllk_nll_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target, size_t n,
                                     const nllk_bf16 *weight)
{
    return nll_acc_update(&nllk_dtype_bf16, acc, input, target, n, weight, NULL);
}

nllk_status nllk_nll_acc_update_f16(nllk_acc *acc, const nllk_f16 *input, const void *target, size_t n,
                                    const nllk_f16 *weight)
{
    return nll_acc_update(&nllk_dtype_f16, acc, input, target, n, weight, NULL);
}

nllk_status nllk_nll_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target, size_t n,
                                         const nllk_bf16 *weight, nllk_bf16 *out)
{
    return nll_acc_update(&nllk_dtype_bf16, acc, input, target, n, weight, out);
}

nllk_status nllk_nll_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input, const void *target, size_t n,
                                        const nllk_f16 *weight, nllk_f16 *out)
{
    return nll_acc_update(&nllk_dtype_f16, acc, input, target, n, weight, out);
}
