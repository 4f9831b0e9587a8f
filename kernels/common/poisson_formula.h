/* The Poisson NLL per-element formulas, written once over a vector map and instantiated by every ISA.
 *
 * The operations and their order are PyTorch's (ATen's poisson_nll_loss and its autograd graph), so that the
 * per-element values equal PyTorch's up to its exp/log; every ISA instantiates the same expression with the
 * same operations, so every ISA gives the same bits (kernels are built with -ffp-contract=off).
 *
 * Before including, define:
 *   NLLK_V          the vector type (a plain float or double for the scalar kernels)
 *   NLLK_OP(name)   the map's operations on NLLK_V:
 *                     add sub mul div neg exp log   (exp and log: SLEEF u10, the FMA variants)
 *                     set1(double)                  broadcast, rounded to the element type
 *                     le(a, b), gt(a, b)            comparison masks
 *                     select(m, a, b)               m ? a : b, per lane
 *   NLLK_FN(name)   the name this instantiation gives each formula (they are static inline).
 * This file has no include guard: it is meant to be included once per (ISA, dtype). */

/* Stirling's term t*log(t) - t + 0.5*log(2*pi*t) where t > 1, else +0 (PyTorch's masked_fill(t <= 1, 0)). */
static inline NLLK_V NLLK_FN(poisson_stirling)(NLLK_V t)
{
    const NLLK_V term = NLLK_OP(add)(NLLK_OP(sub)(NLLK_OP(mul)(t, NLLK_OP(log)(t)), t),
                                     NLLK_OP(mul)(NLLK_OP(set1)(0.5),
                                                  NLLK_OP(log)(NLLK_OP(mul)(NLLK_OP(set1)(6.283185307179586), t))));
    return NLLK_OP(select)(NLLK_OP(le)(t, NLLK_OP(set1)(1.0)), NLLK_OP(set1)(0.0), term);
}

/* loss = exp(x) - t*x  (log_input)  or  x - t*log(x + eps);  full adds the masked Stirling term. */
static inline NLLK_V NLLK_FN(poisson_loss)(NLLK_V x, NLLK_V t, NLLK_V eps, int log_input, int full)
{
    NLLK_V loss = log_input ? NLLK_OP(sub)(NLLK_OP(exp)(x), NLLK_OP(mul)(t, x))
                            : NLLK_OP(sub)(x, NLLK_OP(mul)(t, NLLK_OP(log)(NLLK_OP(add)(x, eps))));
    if (full)
        loss = NLLK_OP(add)(loss, NLLK_FN(poisson_stirling)(t));
    return loss;
}

/* d loss / d x times g:  g*exp(x) - g*t  (log_input)  or  g - g*t/(x + eps). */
static inline NLLK_V NLLK_FN(poisson_grad_input)(NLLK_V x, NLLK_V t, NLLK_V eps, NLLK_V g, int log_input)
{
    return log_input ? NLLK_OP(sub)(NLLK_OP(mul)(g, NLLK_OP(exp)(x)), NLLK_OP(mul)(g, t))
                     : NLLK_OP(sub)(g, NLLK_OP(div)(NLLK_OP(mul)(g, t), NLLK_OP(add)(x, eps)));
}

/* d loss / d t times g:  -g*x  (log_input)  or  -g*log(x + eps);  full adds g*(log(t) + 0.5/t) where t > 1.
 * The mask is the forward's (t <= 1 gives 0), so a NaN target gives NaN as in PyTorch. */
static inline NLLK_V NLLK_FN(poisson_grad_target)(NLLK_V x, NLLK_V t, NLLK_V eps, NLLK_V g, int log_input, int full)
{
    NLLK_V grad = NLLK_OP(neg)(NLLK_OP(mul)(g, log_input ? x : NLLK_OP(log)(NLLK_OP(add)(x, eps))));
    if (full) {
        const NLLK_V d = NLLK_OP(mul)(g, NLLK_OP(add)(NLLK_OP(log)(t), NLLK_OP(div)(NLLK_OP(set1)(0.5), t)));
        grad = NLLK_OP(add)(grad, NLLK_OP(select)(NLLK_OP(le)(t, NLLK_OP(set1)(1.0)), NLLK_OP(set1)(0.0), d));
    }
    return grad;
}
