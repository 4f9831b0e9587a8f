/* The NLL entry points for one dtype; included by nll.c once per dtype with
 *   T   the element type, DT its suffix (f32, f64). */
#define NLLK_CAT_(a, b) a##b
#define NLLK_CAT(a, b) NLLK_CAT_(a, b)
#define NLLK_DT(name) NLLK_CAT(name, NLLK_CAT(_, DT))

typedef struct NLLK_DT(nll_ctx) {
    nllk_nll_shape s;
    const nllk_kernels *k;
    const T *x;        /* the start of the sample holding element 0                          */
    size_t j0;         /* element 0's position in that sample (0 except for streaming chunks) */
    const T *weight;
    T *out;            /* forward NONE, indexed by element                                    */
    const T *g;        /* backward: grad_output, g_stride 0 or 1                              */
    size_t g_stride;
    T *gx;             /* backward: grad_input                                               */
} NLLK_DT(nll_ctx);

/* The run of elements [off + done, off + len) that stays inside one sample (all of it when d == 1). */
static nllk_nll_run NLLK_DT(nll_run_at)(const NLLK_DT(nll_ctx) *c, size_t f, size_t left, size_t *x_off)
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
static size_t NLLK_DT(nll_fwd_span)(const NLLK_DT(nll_ctx) *c, size_t off, size_t len, double *lanes)
{
    const size_t tsize = c->s.target_size;
    for (size_t done = 0; done < len;) {
        size_t x_off;
        const nllk_nll_run r = NLLK_DT(nll_run_at)(c, off + done, len - done, &x_off);
        const T *x = c->x + x_off;
        const void *tg = c->s.target + (off + done) * tsize;
        T *out = c->out ? c->out + off + done : NULL;
        size_t k;
        if (!lanes || done % NLLK_LANES == 0) {
            k = c->k->NLLK_DT(nll_fwd)[c->s.target_type](&r, x, tg, c->weight, out, lanes);
        } else { /* this run starts inside a group of 16: its element 0 belongs in lane done % 16 */
            double rot[2 * NLLK_LANES];
            nllk_lanes_rotate(rot, lanes, (unsigned)(done % NLLK_LANES));
            k = c->k->NLLK_DT(nll_fwd)[c->s.target_type](&r, x, tg, c->weight, out, rot);
            nllk_lanes_unrotate(lanes, rot, (unsigned)(done % NLLK_LANES));
        }
        if (k != r.len)
            return done + k;
        done += r.len;
    }
    return len;
}

static size_t NLLK_DT(nll_sum_run)(void *vctx, size_t off, size_t len, double *lanes)
{
    return NLLK_DT(nll_fwd_span)(vctx, off, len, lanes);
}

static size_t NLLK_DT(nll_none_span)(void *vctx, size_t off, size_t len)
{
    return NLLK_DT(nll_fwd_span)(vctx, off, len, NULL);
}

/* Backward scatter over elements [off, off + len) (targets already validated). */
static void NLLK_DT(nll_bwd_scatter)(const NLLK_DT(nll_ctx) *c, size_t off, size_t len)
{
    for (size_t done = 0; done < len;) {
        size_t x_off;
        const nllk_nll_run r = NLLK_DT(nll_run_at)(c, off + done, len - done, &x_off);
        c->k->NLLK_DT(nll_bwd)[c->s.target_type](&r, c->s.target + (off + done) * c->s.target_size, c->weight,
                                                c->g + (off + done) * c->g_stride, c->g_stride, c->gx + x_off);
        done += r.len;
    }
}

/* For d == 1 each span zero-fills its own rows and scatters into them. A span of narrow rows
 * (NLLK_NARROW_ROW_BYTES, kernels.h) larger than NLLK_BWD_PIECES_FROM goes a piece of NLLK_BWD_PIECE bytes at a
 * time, so the scatter finds its rows still in L1: filling a whole span first (up to the grain, 1.3 MB for
 * (N, 10) f32, more than L2) made the scatters miss, 1.5-2x slower on (1048576, 10) and (1048576, 32) f32
 * (BENCHMARKS.md). Wide rows keep one fill per span, which streams when it is large; small spans measured faster
 * in one fill too. For d > 1 the zero fill is a separate pass (nll_zero_span). */
#define NLLK_BWD_PIECE ((size_t)16 << 10)
#define NLLK_BWD_PIECES_FROM ((size_t)512 << 10)
static size_t NLLK_DT(nll_bwd_span)(void *vctx, size_t off, size_t len)
{
    const NLLK_DT(nll_ctx) *c = vctx;
    const size_t row = c->s.c * sizeof(T);
    if (c->s.d != 1) {
        NLLK_DT(nll_bwd_scatter)(c, off, len);
        return len;
    }
    const int pieces = row && row <= NLLK_NARROW_ROW_BYTES && len * row > NLLK_BWD_PIECES_FROM;
    const size_t per = pieces ? NLLK_BWD_PIECE / row : len;
    for (size_t p = 0; p < len; p += per) {
        const size_t m = len - p < per ? len - p : per;
        nllk_zero_fill(c->gx + (off + p) * c->s.c, m * row);
        NLLK_DT(nll_bwd_scatter)(c, off + p, m);
    }
    return len;
}

static size_t NLLK_DT(nll_zero_span)(void *vctx, size_t off, size_t len)
{
    const NLLK_DT(nll_ctx) *c = vctx;
    nllk_zero_fill(c->gx + off, len * sizeof(T));
    return len;
}

nllk_status NLLK_DT(nllk_nll_fwd)(const T *input, const void *target, nllk_target_type target_type, size_t n,
                                  size_t c, size_t d, const T *weight, int64_t ignore_index,
                                  nllk_reduction reduction, T *out, T *total_weight)
{
    NLLK_DT(nll_ctx) ctx = {.k = nllk_active_kernels(), .x = input, .weight = weight};
    nllk_status st = nll_check_args(&ctx.s, input, "input", target, target_type, n, c, d, sizeof(T), ignore_index,
                                    reduction);
    if (st != NLLK_OK)
        return st;
    const size_t nd = n * d;
    if (!out && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "out is NULL");
    if (reduction == NLLK_REDUCTION_NONE) {
        ctx.out = out;
        const size_t done = nllk_parallel_spans(nd, NLLK_GRAIN, NLLK_DT(nll_none_span), &ctx);
        if (done != nd)
            return nll_target_error(&ctx.s, 0, done);
        if (total_weight)
            *total_weight = 0;
        return nllk_ok();
    }
    nllk_sum s;
    double total[2];
    nllk_sum_init(&s, 0);
    const size_t done = nllk_sum_feed_parallel(&s, NULL, nd, NLLK_DT(nll_sum_run), &ctx);
    if (done != nd)
        return nll_target_error(&ctx.s, 0, done);
    nllk_sum_total(&s, NULL, total);
    *out = (T)(reduction == NLLK_REDUCTION_MEAN ? total[0] / total[1] : total[0]);
    if (total_weight)
        *total_weight = (T)total[1];
    return nllk_ok();
}

nllk_status NLLK_DT(nllk_nll_bwd)(const T *grad_output, const void *target, nllk_target_type target_type,
                                  size_t n, size_t c, size_t d, const T *weight, int64_t ignore_index,
                                  nllk_reduction reduction, T total_weight, T *grad_input)
{
    NLLK_DT(nll_ctx) ctx = {.k = nllk_active_kernels(), .weight = weight, .gx = grad_input};
    nllk_status st = nll_check_args(&ctx.s, grad_input, "grad_input", target, target_type, n, c, d, sizeof(T),
                                    ignore_index, reduction);
    if (st != NLLK_OK)
        return st;
    const size_t nd = n * d;
    if (!grad_output && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_output is NULL");
    /* every target is checked before the first write, so nothing is ever written out of bounds */
    const size_t bad = nll_check_targets(&ctx.s, nd);
    if (bad != nd)
        return nll_target_error(&ctx.s, 0, bad);
    /* mean's factor is grad_output / total_weight in the dtype, negated by the kernel (ATen's order) */
    const T g = reduction == NLLK_REDUCTION_MEAN ? (nd ? grad_output[0] / total_weight : 0)
                : reduction == NLLK_REDUCTION_SUM ? (nd ? grad_output[0] : 0) : (T)0;
    ctx.g = reduction == NLLK_REDUCTION_NONE ? grad_output : &g;
    ctx.g_stride = reduction == NLLK_REDUCTION_NONE;
    if (d != 1) /* samples' gradient slabs interleave classes and positions: clear them all first */
        nllk_parallel_spans(n * c * d, 8 * NLLK_GRAIN, NLLK_DT(nll_zero_span), &ctx);
    nllk_parallel_spans(nd, NLLK_GRAIN, NLLK_DT(nll_bwd_span), &ctx);
    return nllk_ok();
}

nllk_status NLLK_DT(nllk_nll_acc_update)(nllk_acc *acc, const T *input, const void *target, size_t n,
                                         const T *weight)
{
    return NLLK_DT(nllk_nll_acc_update_out)(acc, input, target, n, weight, NULL);
}

nllk_status NLLK_DT(nllk_nll_acc_update_out)(nllk_acc *acc, const T *input, const void *target, size_t n,
                                             const T *weight, T *out)
{
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_get(acc, NLLK_ACC_NLL, DTYPE, &st);
    if (!a)
        return st;
    if (n > UINT64_MAX - a->sum.end)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "the element count would pass 2^64");
    const size_t j0 = (size_t)(a->sum.end % a->d);
    size_t samples, extent, bytes;
    if (j0 + n < n || !nllk_mul_size((j0 + n + a->d - 1) / a->d, a->c, &samples) ||
        !nllk_mul_size(samples, a->d, &extent) || !nllk_mul_size(extent, sizeof(T), &bytes) ||
        !nllk_mul_size(n, target_sizes[a->target_type], &bytes))
        return nllk_fail(NLLK_ERR_SIZE_OVERFLOW, "a chunk of %zu elements overflows size_t", n);
    if (n > 0 && !target)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "target is NULL");
    if (n > 0 && a->c > 0 && !input)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "input is NULL");
    NLLK_DT(nll_ctx) ctx = {.s = {0, a->c, a->d, target, target_sizes[a->target_type],
                                  (nllk_target_type)a->target_type, a->ignore_index},
                            .k = nllk_active_kernels(), .x = input, .j0 = j0, .weight = weight, .out = out};
    /* targets first, so that a failed update leaves the accumulator as it was */
    const size_t bad = nll_check_targets(&ctx.s, n);
    if (bad != n)
        return nll_target_error(&ctx.s, a->sum.end, bad);
    nllk_acc_feed(a, n, NLLK_DT(nll_sum_run), &ctx);
    return nllk_ok();
}

#undef NLLK_BWD_PIECE
#undef NLLK_BWD_PIECES_FROM
#undef NLLK_CAT_
#undef NLLK_CAT
#undef NLLK_DT
