/* The NLL entry points for one dtype; included by nll.c once per dtype with
 *   T   the element type, DT its suffix (f32, f64). */
#define NLLK_CAT_(a, b) a##b
#define NLLK_CAT(a, b) NLLK_CAT_(a, b)
#define NLLK_DT(name) NLLK_CAT(name, NLLK_CAT(_, DT))

typedef struct NLLK_DT(nll_ctx) {
    nllk_nll_shape s;
    const T *x;
    const T *weight;
    size_t (*fwd)(const nllk_nll_run *, const T *, const void *, const T *, T *, double *);
} NLLK_DT(nll_ctx);

/* Forward over flat elements [off, off + len): out (if not NULL) is indexed from off, lanes from element off.
 * Runs never leave a row of an N-D input, so that each run's input entries are one stride apart. */
static size_t NLLK_DT(nll_fwd_span)(const NLLK_DT(nll_ctx) *c, size_t off, size_t len, T *out, double *lanes)
{
    const nllk_nll_shape *s = &c->s;
    if (s->d == 1) {
        const nllk_nll_run r = {len, s->c, 1, s->c, s->ignore_index};
        return c->fwd(&r, c->x + off * s->c, s->target + off * s->target_size, c->weight, out, lanes);
    }
    for (size_t done = 0; done < len;) {
        const size_t f = off + done, i = f / s->d, j = f % s->d;
        const size_t m = len - done < s->d - j ? len - done : s->d - j;
        const nllk_nll_run r = {m, 1, s->d, s->c, s->ignore_index};
        const T *xb = c->x + i * s->c * s->d + j;
        const void *tb = s->target + f * s->target_size;
        T *ob = out ? out + done : NULL;
        size_t k;
        if (!lanes || done % NLLK_LANES == 0) {
            k = c->fwd(&r, xb, tb, c->weight, ob, lanes);
        } else {
            double rot[2 * NLLK_LANES];
            nllk_lanes_rotate(rot, lanes, (unsigned)(done % NLLK_LANES));
            k = c->fwd(&r, xb, tb, c->weight, ob, rot);
            nllk_lanes_unrotate(lanes, rot, (unsigned)(done % NLLK_LANES));
        }
        if (k != m)
            return done + k;
        done += m;
    }
    return len;
}

static size_t NLLK_DT(nll_run)(void *vctx, size_t off, size_t len, double *lanes)
{
    return NLLK_DT(nll_fwd_span)(vctx, off, len, NULL, lanes);
}

nllk_status NLLK_DT(nllk_nll_fwd)(const T *input, const void *target, nllk_target_type target_type, size_t n,
                                  size_t c, size_t d, const T *weight, int64_t ignore_index,
                                  nllk_reduction reduction, T *out, T *total_weight)
{
    NLLK_DT(nll_ctx) ctx = {.x = input, .weight = weight};
    nllk_status st = nll_check_args(&ctx.s, input, target, target_type, n, c, d, sizeof(T), ignore_index,
                                    reduction);
    if (st != NLLK_OK)
        return st;
    const size_t nd = n * d;
    if (!out && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "out is NULL");
    ctx.fwd = nllk_active_kernels()->NLLK_DT(nll_fwd)[target_type];
    if (reduction == NLLK_REDUCTION_NONE) {
        const size_t done = NLLK_DT(nll_fwd_span)(&ctx, 0, nd, out, NULL);
        if (done != nd)
            return nll_target_error(&ctx.s, done);
        if (total_weight)
            *total_weight = 0;
        return nllk_ok();
    }
    double total[2];
    const size_t done = nllk_reduce(nd, NLLK_DT(nll_run), &ctx, total);
    if (done != nd)
        return nll_target_error(&ctx.s, done);
    *out = (T)(reduction == NLLK_REDUCTION_MEAN ? total[0] / total[1] : total[0]);
    if (total_weight)
        *total_weight = (T)total[1];
    return nllk_ok();
}

nllk_status NLLK_DT(nllk_nll_bwd)(const T *grad_output, const void *target, nllk_target_type target_type,
                                  size_t n, size_t c, size_t d, const T *weight, int64_t ignore_index,
                                  nllk_reduction reduction, T total_weight, T *grad_input)
{
    nllk_nll_shape s;
    nllk_status st = nll_check_args(&s, grad_input, target, target_type, n, c, d, sizeof(T), ignore_index,
                                    reduction);
    if (st != NLLK_OK)
        return st;
    const size_t nd = n * d;
    if (!grad_output && (reduction != NLLK_REDUCTION_NONE || nd > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_output is NULL");
    const nllk_kernels *k = nllk_active_kernels();
    /* every target is checked before the first write, so nothing is ever written out of bounds */
    const size_t bad = k->nll_check[target_type](nd, target, c, ignore_index);
    if (bad != nd)
        return nll_target_error(&s, bad);
    nllk_zero_fill(grad_input, n * c * d * sizeof(T));
    if (nd == 0)
        return nllk_ok();
    /* mean's factor is grad_output / total_weight in the dtype, negated by the kernel (ATen's order) */
    const T g = reduction == NLLK_REDUCTION_MEAN ? grad_output[0] / total_weight
                : reduction == NLLK_REDUCTION_SUM ? grad_output[0] : (T)0;
    const T *gp = reduction == NLLK_REDUCTION_NONE ? grad_output : &g;
    const size_t g_stride = reduction == NLLK_REDUCTION_NONE;
    const NLLK_CAT(nllk_nll_bwd_, NLLK_CAT(DT, _fn)) bwd = k->NLLK_DT(nll_bwd)[target_type];
    if (d == 1) {
        const nllk_nll_run r = {n, c, 1, c, ignore_index};
        bwd(&r, target, weight, gp, g_stride, grad_input);
        return nllk_ok();
    }
    const nllk_nll_run r = {d, 1, d, c, ignore_index};
    for (size_t i = 0; i < n; i++)
        bwd(&r, s.target + i * d * s.target_size, weight, gp + i * d * g_stride, g_stride, grad_input + i * c * d);
    return nllk_ok();
}

#undef NLLK_CAT_
#undef NLLK_CAT
#undef NLLK_DT
