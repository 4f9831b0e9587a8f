/* The Poisson entry points for one dtype; included by poisson.c once per dtype with
 *   T   the element type, DT its suffix (f32, f64). */
#define NLLK_CAT_(a, b) a##b
#define NLLK_CAT(a, b) NLLK_CAT_(a, b)
#define NLLK_DT(name) NLLK_CAT(name, NLLK_CAT(_, DT))

typedef struct NLLK_DT(poisson_ctx) {
    const T *x, *t;
    nllk_poisson_params p;
    void (*fwd)(size_t, const T *, const T *, const nllk_poisson_params *, T *, double *);
} NLLK_DT(poisson_ctx);

static size_t NLLK_DT(poisson_run)(void *vctx, size_t off, size_t n, double *lanes)
{
    const NLLK_DT(poisson_ctx) *c = vctx;
    c->fwd(n, c->x + off, c->t + off, &c->p, NULL, lanes);
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
    const nllk_kernels *k = nllk_active_kernels();
    NLLK_DT(poisson_ctx) ctx = {input, target, {eps, log_input != 0, full != 0}, k->NLLK_DT(poisson_fwd)};
    if (reduction == NLLK_REDUCTION_NONE) {
        if (n > 0)
            ctx.fwd(n, input, target, &ctx.p, out, NULL);
        return nllk_ok();
    }
    double total[2];
    nllk_reduce(n, NLLK_DT(poisson_run), &ctx, total);
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
    const nllk_poisson_params p = {eps, log_input != 0, full != 0};
    /* mean's gradient is grad_output / n in the dtype, as PyTorch's mean backward computes it */
    const T g = reduction == NLLK_REDUCTION_MEAN ? grad_output[0] / (T)n
                : reduction == NLLK_REDUCTION_SUM ? grad_output[0] : (T)0;
    const T *gp = reduction == NLLK_REDUCTION_NONE ? grad_output : &g;
    nllk_active_kernels()->NLLK_DT(poisson_bwd)(n, input, target, &p, gp, reduction == NLLK_REDUCTION_NONE,
                                                grad_input, grad_target);
    return nllk_ok();
}

#undef NLLK_CAT_
#undef NLLK_CAT
#undef NLLK_DT
