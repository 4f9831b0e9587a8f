/* The kernel table: the only door from the driver to ISA-specific code.
 *
 * Kernels know nothing of threads, blocks or validation beyond what is stated here. Every kernel computes
 * per-element values; when given `lanes` (16 doubles, or 2 x 16 for NLL) it adds the value of its element k
 * to lanes[k % 16], in increasing k, as doubles (the in-block step of the canonical tree, nllk.h section 2).
 * The driver cuts calls at block boundaries and rotates the lanes for calls that do not start at a multiple
 * of 16, so a kernel always counts k from its own first element. Every entry of every ISA must give the same
 * bits as the scalar entry. The kernels: kernels/common/kernels.c; the ISAs: kernels/isas.h. */
#ifndef NLLK_DISPATCH_KERNELS_H
#define NLLK_DISPATCH_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct nllk_poisson_params {
    double eps;     /* rounded to the kernel's dtype by the kernel */
    int log_input;
    int full;
} nllk_poisson_params;

/* Element pointers are void: a kernel reads and writes its table's dtype (kernels/common/kernels.c is compiled
 * once per dtype); the driver passes the arrays as given and offsets them in bytes (dispatch/dtype.h). */

/* Poisson forward over n elements: out[k] = loss_k if out != NULL; lanes[k % 16] += loss_k if lanes != NULL. */
typedef void (*nllk_poisson_fwd_fn)(size_t n, const void *x, const void *t, const nllk_poisson_params *p, void *out,
                                    double *lanes);

/* Poisson backward over n elements, g_k = g[k * g_stride] (g_stride is 0 for a broadcast scalar or 1):
 * gx[k] = d loss_k / d x_k * g_k; gt[k] (if gt != NULL) = d loss_k / d t_k * g_k. */
typedef void (*nllk_poisson_bwd_fn)(size_t n, const void *x, const void *t, const nllk_poisson_params *p,
                                    const void *g, size_t g_stride, void *gx, void *gt);

/* One NLL run of elements k = 0 .. len-1, element k reading target[k] (type fixed by the entry) and, when not
 * ignored, input x[k * k_stride + target[k] * c_stride]. A 2-D (n, c) run spans rows (k_stride = c, c_stride
 * = 1); an N-D run stays inside one row i (x = row base + j0, k_stride = 1, c_stride = d). */
typedef struct nllk_nll_run {
    size_t len;
    size_t k_stride;
    size_t c_stride;
    size_t c;                 /* valid targets are 0 .. c-1                                             */
    int64_t ignore_index;
} nllk_nll_run;

/* A 2-D run's rows of at most this many bytes (a few classes) are read or written almost whole and in order:
 * the forward kernels prefetch them (kernels/common/kernels.c) and the backward driver fills and scatters them in
 * L1-sized pieces (dispatch/nll.c). */
enum { NLLK_NARROW_ROW_BYTES = 256 };

/* The NLL N-D backward streams its stores when grad_input has at least this many bytes (beyond the last-level
 * cache of the machines measured: a later read would miss anyway, and streaming stores skip the line reads). */
#define NLLK_NLL_STREAM_BYTES ((size_t)32 << 20)

/* NLL forward over a run: out[k] = -x * w (or +0 when ignored) if out != NULL; lanes[k % 16] += loss_k and
 * lanes[16 + k % 16] += weight_k (0 when ignored) if lanes != NULL. weight may be NULL (all ones).
 * Returns len, or the k of the first target that is neither in [0, c) nor ignore_index (then elements from
 * that k on are not processed and nothing is read out of bounds). */
typedef size_t (*nllk_nll_fwd_fn)(const nllk_nll_run *r, const void *x, const void *target, const void *weight,
                                  void *out, double *lanes);

/* NLL backward scatter over a run whose targets are already validated: at each non-ignored element,
 * gx[k * k_stride + target[k] * c_stride] = w * -g_k with g_k = g[k * g_stride] (unweighted: -g_k).
 * Writes nothing else (the driver zero-fills grad_input first). */
typedef void (*nllk_nll_bwd_fn)(const nllk_nll_run *r, const void *target, const void *weight, const void *g,
                                size_t g_stride, void *gx);

/* NLL backward of an N-D run (k_stride 1, c_stride d) in one pass: every element gx[k + cls * c_stride], k < len,
 * cls < c, is written once: w * -g_k (unweighted: -g_k) where cls == target[k] is not ignored, +0 elsewhere (the
 * zero fill and the scatter together). stream != 0: streaming (non-temporal) stores where the planes' cache lines
 * allow (the driver asks for them when grad_input is much larger than the caches). The kernel validates the
 * targets itself (it writes only inside the planes, whatever they hold): returns len, or the k of the first bad
 * target, after which the planes hold unspecified values. */
typedef size_t (*nllk_nll_bwd_fill_fn)(const nllk_nll_run *r, const void *target, const void *weight, const void *g,
                                       size_t g_stride, void *gx, int stream);

/* Index of the first target in t[0 .. len) that is neither in [0, c) nor ignore_index, or len. */
typedef size_t (*nllk_nll_check_fn)(size_t len, const void *target, size_t c, int64_t ignore_index);

/* Cross-entropy (nllk.h): one run of positions k = 0 .. len-1, class q of position k at x[k*k_stride + q*c_stride]:
 * a 2-D (n, c) run spans rows (k_stride = c, c_stride = 1: vectorised along classes); an N-D run stays inside one
 * sample (x = sample base + j0, k_stride = 1, c_stride = d: vectorised along positions). Probability targets have
 * the input's layout (q at the same offsets). lse and out, when not NULL, hold one value per position k. */
typedef struct nllk_ce_run {
    size_t len;
    size_t k_stride;
    size_t c_stride;
    size_t c;
    int64_t ignore_index; /* class index only */
    double ls;            /* label smoothing in [0, 1]                                                          */
    double wsum;          /* W: the c weights summed in the class-lane order (c when unweighted); smoothing only */
    int stream;           /* backward: streaming stores where the layout allows (grad_input beyond the caches)  */
} nllk_ce_run;

/* Class-index forward: out[k] = loss_k, lse[k] = lse_k (each if not NULL); lanes[k % 16] += loss_k and
 * lanes[16 + k % 16] += weight_k (0 when ignored) if lanes != NULL. Returns len, or the k of the first target that
 * is neither in [0, c) nor ignore_index (nothing is read out of bounds; elements from its vector on unprocessed). */
typedef size_t (*nllk_ce_fwd_fn)(const nllk_ce_run *r, const void *x, const void *target, const void *weight,
                                 void *out, void *lse, double *lanes);
/* Class-index backward over a run of validated targets: writes every gx entry of the run's positions, with
 * g_k = g[k * g_stride] (already divided for MEAN); recomputes each position's max and exp-sum (no lse). */
typedef void (*nllk_ce_bwd_fn)(const nllk_ce_run *r, const void *x, const void *target, const void *weight,
                               const void *g, size_t g_stride, void *gx);
/* Probability forward: as the class-index one with lanes[16 + k % 16] += 1. */
typedef void (*nllk_ce_prob_fwd_fn)(const nllk_ce_run *r, const void *x, const void *q, const void *weight, void *out,
                                    void *lse, double *lanes);
/* Probability backward: grad_input to gx and (if not NULL) grad_target to gq. */
typedef void (*nllk_ce_prob_bwd_fn)(const nllk_ce_run *r, const void *x, const void *q, const void *weight,
                                    const void *g, size_t g_stride, void *gx, void *gq);

/* Class-index forward and backward in one pass (nllk_cross_entropy_fwdbwd_*): the forward's outputs (out, lse,
 * lanes as nllk_ce_fwd_fn) and the backward's gx (g and g_stride as nllk_ce_bwd_fn, g already divided for MEAN),
 * the same bits as the forward kernel then the backward kernel on the run. Targets already validated (still:
 * returns len, or the k of a bad target, as the forward). 2-D rows read each row from memory once. */
typedef size_t (*nllk_ce_fwdbwd_fn)(const nllk_ce_run *r, const void *x, const void *target, const void *weight,
                                    const void *g, size_t g_stride, void *out, void *lse, double *lanes, void *gx);

enum { NLLK_NUM_TARGET_TYPES = 3 }; /* indexed by nllk_target_type */

/* The kernels of one (build, dtype): nllk_<dtype>_kernels__<build>, defined by kernels/common/kernels.c. */
typedef struct nllk_kernels {
    nllk_poisson_fwd_fn poisson_fwd;
    nllk_poisson_bwd_fn poisson_bwd;
    nllk_nll_fwd_fn nll_fwd[NLLK_NUM_TARGET_TYPES];
    nllk_nll_bwd_fn nll_bwd[NLLK_NUM_TARGET_TYPES];
    nllk_nll_check_fn nll_check[NLLK_NUM_TARGET_TYPES];
    /* Sets `bytes` bytes at p to zero (NLL backward's grad_input): wide stores, streaming (non-temporal) stores
     * when the span is much larger than the caches. */
    void (*zero_fill)(void *p, size_t bytes);
    nllk_ce_fwd_fn ce_fwd[NLLK_NUM_TARGET_TYPES];
    nllk_ce_bwd_fn ce_bwd[NLLK_NUM_TARGET_TYPES];
    nllk_ce_prob_fwd_fn ce_prob_fwd;
    nllk_ce_prob_bwd_fn ce_prob_bwd;
    nllk_nll_bwd_fill_fn nll_bwd_fill[NLLK_NUM_TARGET_TYPES];
    nllk_ce_fwdbwd_fn ce_fwdbwd[NLLK_NUM_TARGET_TYPES];
} nllk_kernels;

/* Kernel slots: a dtype descriptor's `slot` (dispatch/dtype.h) indexes nllk_isa.kernels. */
enum { NLLK_SLOT_F32 = 0, NLLK_SLOT_F64 = 1, NLLK_SLOT_BF16 = 2, NLLK_SLOT_F16 = 3, NLLK_NUM_SLOTS = 4 };

/* One line of the ISA registry (kernels/isas.h) of this architecture. */
typedef struct nllk_isa {
    const char *name;  /* what users select                     */
    const char *build; /* which build of the kernels serves it  */
    unsigned need;     /* NLLK_CPU_* bits the CPU must have     */
    const nllk_kernels *kernels[NLLK_NUM_SLOTS];
} nllk_isa;

/* The active ISA (chosen once, thread-safely; nllk_set_isa changes it). A call fetches it once and passes the
 * table down. */
const nllk_isa *nllk_active(void);

#endif
