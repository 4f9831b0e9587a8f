/* The Poisson entry points for one dtype; included by poisson.c once per dtype with
 *   T   the element type, DT its suffix (f32, f64). */
#define NLLK_CAT_(a, b) a##b
#define NLLK_CAT(a, b) NLLK_CAT_(a, b)
#define NLLK_DT(name) NLLK_CAT(name, NLLK_CAT(_, DT))

typedef struct NLLK_DT(poisson_ctx) {
    const T *x, *t;
    nllk_poisson_params p;
    const nllk_kernels *k;
    T *out;                      /* forward NONE                            */
    const T *g;                  /* backward: grad_output, g_stride 0 or 1   */
    size_t g_stride;
    T *gx, *gt;
} NLLK_DT(poisson_ctx);

static size_t NLLK_DT(poisson_run)(void *vctx, size_t off, size_t n, double *lanes)
{
    const NLLK_DT(poisson_ctx) *c = vctx;
    c->k->NLLK_DT(poisson_fwd)(n, c->x + off, c->t + off, &c->p, c->out ? c->out + off : NULL, lanes);
    return n;
}

static size_t NLLK_DT(poisson_fwd_span)(void *vctx, size_t off, size_t n)
{
    const NLLK_DT(poisson_ctx) *c = vctx;
    c->k->NLLK_DT(poisson_fwd)(n, c->x + off, c->t + off, &c->p, c->out + off, NULL);
    return n;
}

static size_t NLLK_DT(poisson_bwd_span)(void *vctx, size_t off, size_t n)
{
    const NLLK_DT(poisson_ctx) *c = vctx;
    c->k->NLLK_DT(poisson_bwd)(n, c->x + off, c->t + off, &c->p, c->g + off * c->g_stride, c->g_stride,
                               c->gx + off, c->gt ? c->gt + off : NULL);
    return n;
}

nllk_status NLLK_DT(nllk_poisson_nll_fwd)(const T *input, const T *target, size_t n, int log_input, int full,
                                          double eps, nllk_reduction reduction, T *out)
{
    const nllk_status st = poisson_check_args(input, target, n, sizeof(T), reduction);
    if (st != NLLK_OK)
        return st;
    if (!out && (reduction != NLLK_REDUCTION_NONE || n > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "out is NULL");
    /* ctx.out: the per-element losses, NONE only (MEAN/SUM's out is the one result) */
    NLLK_DT(poisson_ctx) ctx = {.x = input, .t = target, .p = {eps, log_input != 0, full != 0},
                                .k = nllk_active_kernels(),
                                .out = reduction == NLLK_REDUCTION_NONE ? out : NULL};
    if (reduction == NLLK_REDUCTION_NONE) {
        if (n > 0)
            nllk_parallel_spans(n, NLLK_GRAIN, NLLK_DT(poisson_fwd_span), &ctx);
        return nllk_ok();
    }
    nllk_sum s;
    double total[2];
    nllk_sum_init(&s, 0);
    nllk_sum_feed_parallel(&s, NULL, n, NLLK_DT(poisson_run), &ctx);
    nllk_sum_total(&s, NULL, total);
    *out = (T)(reduction == NLLK_REDUCTION_MEAN ? total[0] / (double)n : total[0]);
    return nllk_ok();
}

nllk_status NLLK_DT(nllk_poisson_nll_bwd)(const T *input, const T *target, size_t n, int log_input, int full,
                                          double eps, nllk_reduction reduction, const T *grad_output,
                                          T *grad_input, T *grad_target)
{
    const nllk_status st = poisson_check_args(input, target, n, sizeof(T), reduction);
    if (st != NLLK_OK)
        return st;
    if (!grad_output && (reduction != NLLK_REDUCTION_NONE || n > 0))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_output is NULL");
    if (!grad_input && n > 0)
        return nllk_fail(NLLK_ERR_NULL_POINTER, "grad_input is NULL");
    if (n == 0)
        return nllk_ok();
    /* mean's gradient is grad_output / n in the dtype, as PyTorch's mean backward computes it */
    const T g = reduction == NLLK_REDUCTION_MEAN ? grad_output[0] / (T)n
                : reduction == NLLK_REDUCTION_SUM ? grad_output[0] : (T)0;
    NLLK_DT(poisson_ctx) ctx = {.x = input, .t = target, .p = {eps, log_input != 0, full != 0},
                                .k = nllk_active_kernels(),
                                .g = reduction == NLLK_REDUCTION_NONE ? grad_output : &g,
                                .g_stride = reduction == NLLK_REDUCTION_NONE, .gx = grad_input,
                                .gt = grad_target};
    nllk_parallel_spans(n, NLLK_GRAIN, NLLK_DT(poisson_bwd_span), &ctx);
    return nllk_ok();
}

nllk_status NLLK_DT(nllk_poisson_acc_update)(nllk_acc *acc, const T *input, const T *target, size_t n)
{
    return NLLK_DT(nllk_poisson_acc_update_out)(acc, input, target, n, NULL);
}

nllk_status NLLK_DT(nllk_poisson_acc_update_out)(nllk_acc *acc, const T *input, const T *target, size_t n, T *out)
{
    nllk_status st;
    nllk_acc_impl *a = nllk_acc_get(acc, NLLK_ACC_POISSON, DTYPE, &st);
    if (!a)
        return st;
    if (n > 0 && (!input || !target))
        return nllk_fail(NLLK_ERR_NULL_POINTER, "%s is NULL", input ? "target" : "input");
    if (n > UINT64_MAX - a->sum.end)
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "the element count would pass 2^64");
    NLLK_DT(poisson_ctx) ctx = {.x = input, .t = target, .p = {a->eps, a->log_input, a->full},
                                .k = nllk_active_kernels(), .out = out};
    nllk_acc_feed(a, n, NLLK_DT(poisson_run), &ctx);
    return nllk_ok();
}

#undef NLLK_CAT_
#undef NLLK_CAT
#undef NLLK_DT
