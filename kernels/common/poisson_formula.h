/* The Poisson NLL per-element formulas, written once over the vector map (kernels/common/vec_ops.h).
 *
 * The operations and their order are PyTorch's (ATen's poisson_nll_loss and its autograd graph), so that the
 * per-element values equal PyTorch's up to its exp/log; every build evaluates the same expression with the same
 * operations, so every ISA gives the same bits (kernels are built with -ffp-contract=off). */
#ifndef NLLK_KERNELS_COMMON_POISSON_FORMULA_H
#define NLLK_KERNELS_COMMON_POISSON_FORMULA_H

/* Stirling's term t*log(t) - t + 0.5*log(2*pi*t) where t > 1, else +0 (PyTorch's masked_fill(t <= 1, 0)). */
static inline vec_t poisson_stirling(vec_t t)
{
    const vec_t half_log_2pi_t = v_mul(v_set1(0.5), v_log(v_mul(v_set1(6.283185307179586), t)));
    const vec_t term = v_add(v_sub(v_mul(t, v_log(t)), t), half_log_2pi_t);
    return v_select(v_le(t, v_set1(1.0)), v_set1(0.0), term);
}

/* The full loss: the loss plus Stirling's term s (poisson_stirling(t), computed or tabulated). */
static inline vec_t poisson_loss_full(vec_t loss, vec_t s) { return v_add(loss, s); }

/* loss = exp(x) - t*x  (log_input)  or  x - t*log(x + eps);  full adds the masked Stirling term. */
static inline vec_t poisson_loss(vec_t x, vec_t t, vec_t eps, int log_input, int full)
{
    vec_t loss = log_input ? v_sub(v_exp(x), v_mul(t, x)) : v_sub(x, v_mul(t, v_log(v_add(x, eps))));
    if (full)
        loss = poisson_loss_full(loss, poisson_stirling(t));
    return loss;
}

/* d loss / d x times g:  g*exp(x) - g*t  (log_input)  or  g - g*t/(x + eps). */
static inline vec_t poisson_grad_input(vec_t x, vec_t t, vec_t eps, vec_t g, int log_input)
{
    return log_input ? v_sub(v_mul(g, v_exp(x)), v_mul(g, t)) : v_sub(g, v_div(v_mul(g, t), v_add(x, eps)));
}

/* d loss / d t times g:  -g*x  (log_input)  or  -g*log(x + eps);  full adds g*(log(t) + 0.5/t) where t > 1.
 * The mask is the forward's (t <= 1 gives 0), so a NaN target gives NaN as in PyTorch. */
static inline vec_t poisson_grad_target(vec_t x, vec_t t, vec_t eps, vec_t g, int log_input, int full)
{
    vec_t grad = v_neg(v_mul(g, log_input ? x : v_log(v_add(x, eps))));
    if (full) {
        const vec_t d = v_mul(g, v_add(v_log(t), v_div(v_set1(0.5), t)));
        grad = v_add(grad, v_select(v_le(t, v_set1(1.0)), v_set1(0.0), d));
    }
    return grad;
}

#endif
