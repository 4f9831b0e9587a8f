/*
 * nllk.h — negative log-likelihood, Poisson negative log-likelihood and cross-entropy losses on the CPU.
 *
 * This header is the manual. Every public function is declared here, with what each argument means,
 * what it returns, which errors it reports, how accurate it is, and how it behaves under threads.
 *
 * ---------------------------------------------------------------------------------------------------------
 * 1. What the functions compute
 * ---------------------------------------------------------------------------------------------------------
 * The semantics are PyTorch's (torch.nn.functional.nll_loss / poisson_nll_loss, ATen's nll_loss_forward /
 * nll_loss_backward, PyTorch 1.13), for every argument PyTorch accepts:
 *
 *   Poisson NLL, per element i (x = input, t = target):
 *     log_input != 0 :  loss_i = exp(x_i) - t_i * x_i
 *     log_input == 0 :  loss_i = x_i - t_i * log(x_i + eps)         (eps rounded to the input's dtype)
 *     full != 0      :  loss_i += t_i*log(t_i) - t_i + 0.5*log(2*pi*t_i)   where t_i > 1, + 0 elsewhere
 *     mean = sum / n (NaN when n = 0), sum = sum over i (0 when n = 0).
 *     Values are never validated: negative x with log_input == 0 gives NaN, exp overflow gives +Inf,
 *     negative targets are accepted — exactly as in PyTorch.
 *
 *   NLL over an input of shape (n, c, d) — PyTorch's (C) is n = 1, d = 1 with a single target; (N, C) is
 *   d = 1; (N, C, d1, ..., dK) is d = d1*...*dK — and a target of n*d class indices:
 *     element (i, j), target k = target[i*d + j]:
 *       ignored (k == ignore_index) :  loss = +0, weight = 0
 *       otherwise                   :  loss = -input[(i*c + k)*d + j] * w[k], weight = w[k]
 *                                      (w[k] = weight[k], or 1 when weight == NULL)
 *     sum  = sum of loss over all elements (0 when there are none)
 *     mean = sum / total_weight, total_weight = sum of weight over non-ignored elements
 *            (the weighted mean: NaN for an empty or all-ignored batch, as in PyTorch)
 *     PyTorch's 1-D input (C) with reduction 'none' is special there: it returns +0 (not -0) for a zero
 *     weight and total_weight = w[k]; callers emulating it use SUM with n = d = 1, which gives exactly that.
 *     A target outside [0, c) that is not ignore_index is an error (NLLK_ERR_TARGET_OUT_OF_RANGE), never a read
 *     out of bounds; ignore_index may be any int64, inside or outside [0, c).
 *
 * ---------------------------------------------------------------------------------------------------------
 * 2. Numbers: the same bits, always
 * ---------------------------------------------------------------------------------------------------------
 * Per-element values (reduction NLLK_REDUCTION_NONE, and all gradients) are computed in the input's dtype with
 * the same operations as PyTorch, exp and log from SLEEF (1.0-ulp). They are within a few ulp of PyTorch's.
 *
 * Reductions (mean, sum, NLL's total_weight) follow one fixed summation tree defined by element index only,
 * never by execution, so they give the same bits whatever the thread count, the CPU's instruction set, or how
 * the data was split into calls (the streaming accumulators give the bits of the one-shot call):
 *
 *   - per-element values (in the input's dtype) are converted to double and summed in double;
 *   - the elements, numbered by their flat index (i for Poisson, i*d + j for NLL), are cut into blocks of
 *     NLLK_BLOCK = 4096 consecutive elements (the last block may be shorter);
 *   - in a block, 16 lanes: lane k starts at +0.0 and adds the block's elements k, k+16, k+32, ... in order;
 *     then s[k] += s[k+8] for k < 8, s[k] += s[k+4] for k < 4, s[k] += s[k+2] for k < 2, s[0] += s[1];
 *     the block's sum is s[0];
 *   - block sums are combined by the perfect binary tree over block indices: a node at level l covers blocks
 *     [m*2^l, (m+1)*2^l) and is left + right, where a node whose right part holds no block is its left part.
 *   - mean = total / n (Poisson) or total / total_weight (NLL), in double, rounded once to the input's dtype;
 *     sum is the double total rounded once.
 *
 * So an f32 mean or sum is within about 1 ulp of the exact sum of the per-element f32 values (more accurate
 * than PyTorch's float accumulation, which also changes with the thread count).
 *
 * ---------------------------------------------------------------------------------------------------------
 * 3. Errors
 * ---------------------------------------------------------------------------------------------------------
 * Every function that can fail returns an nllk_status. On failure nllk_last_error() gives a message for the
 * calling thread (e.g. "target[1234] = 57 is out of range [0, 21)"). The library never prints, aborts or
 * exits, never modifies its inputs and never allocates memory per call.
 * After a failed call, scalar outputs (a mean or sum, total_weight) are untouched; array outputs (a NONE
 * reduction's per-element losses, gradients) may have been partly written and hold unspecified values.
 *
 * ---------------------------------------------------------------------------------------------------------
 * 4. Threads
 * ---------------------------------------------------------------------------------------------------------
 * All functions may be called from any number of threads at once on different data. Inputs may be shared
 * between concurrent calls (they are only read); outputs must not overlap inputs or each other.
 *
 * Inside a call, nllk splits the work with OpenMP across contiguous ranges of 4096-element blocks of the
 * flattened (n, d) index (batch and spatial dimensions together). Inputs smaller than a grain (tens of
 * thousands of elements) stay on the calling thread. The thread count is, in order of precedence: the last
 * nllk_set_num_threads(k > 0); the environment variable NLLK_NUM_THREADS read at the first call; OpenMP's
 * own default (omp_get_max_threads(), i.e. OMP_NUM_THREADS or the number of cores). Results do not depend on
 * it: reductions follow the canonical tree (section 2) and an out-of-range target error names the lowest
 * offending index whatever the thread count. Called from inside an OpenMP parallel region, nllk runs on the
 * calling thread unless nested parallelism is enabled.
 * In a process created by fork() (and its children), nllk runs on one thread and nllk_get_num_threads()
 * returns 1: libgomp's worker threads do not survive fork, and a multi-threaded region there would hang.
 * A call that uses fewer threads than the calling thread's OpenMP setting (omp_get_max_threads(): a forced
 * count, or a small input) still runs in a team of that size, the surplus threads getting no work: libgomp's
 * thread pool is shared with the caller's other OpenMP code (PyTorch's ops), and a smaller team would end pool
 * threads that the caller's next parallel region then has to create again.
 *
 * ---------------------------------------------------------------------------------------------------------
 * 5. Memory layout
 * ---------------------------------------------------------------------------------------------------------
 * All arrays are dense and C-contiguous, naturally aligned for their type; no other alignment is required.
 */
#ifndef NLLK_H
#define NLLK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(NLLK_SHARED_BUILD)
#  define NLLK_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define NLLK_API __attribute__((visibility("default")))
#else
#  define NLLK_API
#endif

/* NLLK_VERSION_MAJOR, _MINOR, _PATCH: generated from CMakeLists.txt's project() and installed beside this file */
#include "nllk_version.h"
/* NLLK_VERSION_NUMBER = major*10000 + minor*100 + patch */
#define NLLK_VERSION_NUMBER (NLLK_VERSION_MAJOR * 10000 + NLLK_VERSION_MINOR * 100 + NLLK_VERSION_PATCH)

/* The block length of the canonical summation tree (section 2). */
#define NLLK_BLOCK 4096

/* ------------------------------------------------------------------------------------------------------- */
/* Status, errors, version                                                                                 */
/* ------------------------------------------------------------------------------------------------------- */

typedef enum nllk_status {
    NLLK_OK = 0,
    NLLK_ERR_NULL_POINTER = 1,         /* a required pointer is NULL                                          */
    NLLK_ERR_INVALID_ARGUMENT = 2,     /* an enum value or flag outside its range                             */
    NLLK_ERR_SIZE_OVERFLOW = 3,        /* a product of sizes (or its byte count) does not fit in size_t       */
    NLLK_ERR_TARGET_OUT_OF_RANGE = 4,  /* an NLL target outside [0, c) that is not ignore_index               */
    NLLK_ERR_UNSUPPORTED = 5           /* e.g. a forced instruction set this CPU or build lacks               */
} nllk_status;

/* The message of the calling thread's last failed call ("" if none). The pointer stays valid until the
 * calling thread's next nllk call. */
NLLK_API const char *nllk_last_error(void);

/* The global flat element index the calling thread's last failure is about, or NLLK_NO_INDEX when it names no
 * element. Set with NLLK_ERR_TARGET_OUT_OF_RANGE: the lowest offending target's index (for accumulators counted
 * from global element 0, i.e. including the accumulator's `begin`), so callers need not re-scan to find it.
 * Cleared by every successful call of the same thread. */
#define NLLK_NO_INDEX UINT64_MAX
NLLK_API uint64_t nllk_last_error_index(void);

/* A short constant name for a status ("NLLK_OK", "NLLK_ERR_TARGET_OUT_OF_RANGE", ...; "unknown" otherwise). */
NLLK_API const char *nllk_status_name(nllk_status status);

/* The library's version: "major.minor.patch", and NLLK_VERSION_NUMBER of the library actually loaded. */
NLLK_API const char *nllk_version_string(void);
NLLK_API unsigned nllk_version_number(void);

/* ------------------------------------------------------------------------------------------------------- */
/* Instruction sets                                                                                        */
/* ------------------------------------------------------------------------------------------------------- */

/*
 * nllk has kernels for "scalar" (portable C), "avx2" (AVX2 + FMA + F16C), "avx512" (AVX-512 F/DQ/BW/VL + FMA) on
 * x86-64, and "scalar" and "neon" (Advanced SIMD) on AArch64. At the first call it detects the CPU (cpuid, and
 * xgetbv for the operating system's support of the wider registers; AVX2 requires FMA and F16C, AVX-512 every extension
 * above) and picks the best; the choice is cached (thread-safe).
 *
 * The environment variable NLLK_ISA=scalar|avx2|avx512|neon, read once at the first call, lowers that choice;
 * it is clamped to what the CPU has (NLLK_ISA=avx512 on an AVX2-only CPU gives avx2), so it can never cause an
 * illegal instruction. An unknown value, or one of the other architecture, is ignored.
 *
 * Every ISA gives the same bits for every output (per-element losses, gradients, mean/sum, total_weight):
 * the kernels evaluate the same formula with the same operations in the same order, exp/log come from SLEEF's
 * 1.0-ulp FMA variants (u10avx2, u10avx512f, u10advsimd, and the scalar u10purecfma, which agree bit for bit),
 * and the build uses -ffp-contract=off. The one exception: on an x86-64 CPU without FMA the scalar kernels use
 * SLEEF's purec functions, whose exp/log may differ from the FMA variants' in the last bit (NLL, which has no
 * exp/log, is bit-identical there too). NaN results are NaN on every ISA, but their sign and payload bits follow
 * the hardware (x86's default NaN is negative, AArch64's positive).
 *
 * The list of ISAs is the registry kernels/isas.h (nllk_isa_name enumerates this build's part of it: the ISAs of its
 * architecture, or those the CMake option NLLK_KERNEL_ISAS kept, scalar always among them). Each kernel
 * is compiled once per ISA and dtype and named by dtype, operation and build, e.g. nllk_f32_nll_fwd_i64__avx512
 * or nllk_f64_poisson_fwd__scalar_fma (the x86-64 "scalar" ISA of CPUs with FMA; "__scalar" is the build for
 * CPUs without): the names perf, gdb and `nm libnllk.a` show. They are internal, not exported by the shared
 * library; the functions of this header are the only interface.
 */

/* The name of the instruction set whose kernels this process uses: "scalar", "avx2", "avx512" or "neon". */
NLLK_API const char *nllk_active_isa(void);

/* Forces the instruction set of every later call of any thread (for tests and benchmarks): "scalar", "avx2",
 * "avx512" or "neon"; NULL or "" restores the automatic choice (the best, lowered by NLLK_ISA).
 * Errors: NLLK_ERR_INVALID_ARGUMENT (an unknown name), NLLK_ERR_UNSUPPORTED (an ISA this build or CPU lacks;
 * the active ISA is unchanged). Calls running concurrently keep the table they started with. */
NLLK_API nllk_status nllk_set_isa(const char *name);

/* 1 if nllk_set_isa(name) would succeed for a non-empty name, else 0. */
NLLK_API int nllk_isa_supported(const char *name);

/* The i-th instruction set of this build, lowest level first (i = 0 is "scalar"), or NULL for i past the last:
 * the one list that usage texts, tests and benchmarks enumerate (pair it with nllk_isa_supported). */
NLLK_API const char *nllk_isa_name(int i);

/* ------------------------------------------------------------------------------------------------------- */
/* Options                                                                                                 */
/* ------------------------------------------------------------------------------------------------------- */

/* Values equal PyTorch's internal reduction enum (none = 0, mean = 1, sum = 2). */
typedef enum nllk_reduction {
    NLLK_REDUCTION_NONE = 0,  /* one loss per element                                */
    NLLK_REDUCTION_MEAN = 1,  /* Poisson: sum / n;  NLL: sum / total_weight          */
    NLLK_REDUCTION_SUM = 2
} nllk_reduction;

/* Element type of NLL targets. uint8 and int32 cut the bytes a segmentation batch reads by 8x and 2x; PyTorch
 * accepts only int64 (and uint8 for 1-D/2-D input) — nllk takes all three for every shape. */
typedef enum nllk_target_type {
    NLLK_TARGET_I64 = 0,
    NLLK_TARGET_I32 = 1,
    NLLK_TARGET_U8 = 2
} nllk_target_type;

/* ------------------------------------------------------------------------------------------------------- */
/* 16-bit element types                                                                                    */
/* ------------------------------------------------------------------------------------------------------- */

/* The bits of a bfloat16 value (torch.bfloat16): sign bit 15, 8 exponent bits 14..7 (bias 127), 7 fraction bits
 * 6..0 — the upper half of the float with the same sign and exponent. */
typedef uint16_t nllk_bf16;
/* The bits of an IEEE 754 binary16 value (torch.float16, numpy float16, '<f2'): sign bit 15, 5 exponent bits
 * 14..10 (bias 15), 10 fraction bits 9..0. The _bf16 / _f16 functions: section "bfloat16 and float16 storage". */
typedef uint16_t nllk_f16;

/* ------------------------------------------------------------------------------------------------------- */
/* Poisson negative log-likelihood                                                                         */
/* ------------------------------------------------------------------------------------------------------- */

/*
 * nllk_poisson_nll_fwd_f32 / _f64 — forward.
 *
 *   input, target  n elements each (the C API takes equal sizes; broadcast before calling). May be NULL when
 *                  n == 0.
 *   n              number of elements (0 allowed: mean is NaN, sum is 0, none writes nothing).
 *   log_input      nonzero: input holds log-rates (loss exp(x) - t*x); zero: rates (loss x - t*log(x + eps)).
 *   full           nonzero: add the Stirling term t*log(t) - t + 0.5*log(2*pi*t) where t > 1.
 *   eps            added to x before the log when log_input == 0; rounded to the input's dtype first, as in
 *                  PyTorch. Ignored when log_input != 0. PyTorch's default is 1e-8.
 *   reduction      NONE: out receives n per-element losses; MEAN, SUM: out receives 1 value.
 *   out            the result (see reduction). Required (except for NONE with n == 0).
 *
 * Errors: NLLK_ERR_NULL_POINTER (input, target or out NULL where needed), NLLK_ERR_INVALID_ARGUMENT
 * (reduction), NLLK_ERR_SIZE_OVERFLOW (n * sizeof(element) overflows).
 * Accuracy: per element a few ulp of PyTorch (SLEEF 1.0-ulp exp/log); mean/sum as in section 2.
 */
NLLK_API nllk_status nllk_poisson_nll_fwd_f32(const float *input, const float *target, size_t n, int log_input,
                                              int full, double eps, nllk_reduction reduction, float *out);
NLLK_API nllk_status nllk_poisson_nll_fwd_f64(const double *input, const double *target, size_t n, int log_input,
                                              int full, double eps, nllk_reduction reduction, double *out);

/*
 * nllk_poisson_nll_bwd_f32 / _f64 — backward: the gradients of the forward's result w.r.t. input and target.
 *
 *   input, target, n, log_input, full, eps, reduction   as in the forward call.
 *   grad_output    NONE: n values (d loss / d out_i); MEAN, SUM: 1 value.
 *   grad_input     n values, required:  log_input: g*exp(x) - g*t;  else: g - g*t/(x + eps),
 *                  with g = grad_output_i (NONE), grad_output (SUM) or grad_output / n (MEAN, in the dtype).
 *                  Does not depend on full.
 *   grad_target    n values, or NULL to skip:  log_input: -g*x;  else: -g*log(x + eps);
 *                  full adds g*(log(t) + 0.5/t) where t > 1. Where t <= 0 with full, PyTorch's autograd gives
 *                  NaN (0 * an infinite derivative of the masked term); nllk gives the mathematically right
 *                  value without that artefact (the term is constant 0 there). Where t = +Inf with full,
 *                  PyTorch gives NaN (Inf - Inf in its autograd graph) and nllk +Inf (or NaN from -g*x).
 *
 * Errors: as the forward; NLLK_ERR_NULL_POINTER for a NULL grad_input with n > 0, or a NULL grad_output
 * (always for MEAN and SUM, which read it; for NONE when n > 0).
 */
NLLK_API nllk_status nllk_poisson_nll_bwd_f32(const float *input, const float *target, size_t n, int log_input,
                                              int full, double eps, nllk_reduction reduction,
                                              const float *grad_output, float *grad_input, float *grad_target);
NLLK_API nllk_status nllk_poisson_nll_bwd_f64(const double *input, const double *target, size_t n, int log_input,
                                              int full, double eps, nllk_reduction reduction,
                                              const double *grad_output, double *grad_input, double *grad_target);

/* ------------------------------------------------------------------------------------------------------- */
/* Negative log-likelihood                                                                                 */
/* ------------------------------------------------------------------------------------------------------- */

/*
 * nllk_nll_fwd_f32 / _f64 — forward.
 *
 *   input          n*c*d log-probabilities, shape (n, c, d) (see section 1). May be NULL when n*c*d == 0.
 *   target         n*d class indices of type target_type, shape (n, d). May be NULL when n*d == 0.
 *   target_type    NLLK_TARGET_I64, _I32 or _U8.
 *   n, c, d        batch size, classes, product of spatial sizes (1 for 1-D and 2-D input). c may be 0 (then
 *                  every target must be ignore_index). d may be 0 (an empty spatial dim).
 *   weight         c class weights, or NULL for all ones. Negative, zero, NaN weights are used as given.
 *   ignore_index   target value that contributes nothing (any int64; PyTorch's default is -100).
 *   reduction      NONE: out receives n*d losses (+0 at ignored elements); MEAN, SUM: out receives 1 value.
 *   out            the result (see reduction). Required (except for NONE with n*d == 0).
 *   total_weight   receives the sum of w[target] over non-ignored elements (the count of non-ignored elements
 *                  when weight == NULL), rounded once to the dtype, for MEAN and SUM; 0 for NONE (as ATen's
 *                  nll_loss_forward returns). NULL to skip. Pass it to the backward call.
 *
 * Errors: NLLK_ERR_NULL_POINTER, NLLK_ERR_INVALID_ARGUMENT (reduction, target_type), NLLK_ERR_SIZE_OVERFLOW
 * (n*c*d or n*d or their byte counts overflow), NLLK_ERR_TARGET_OUT_OF_RANGE (the message names the lowest
 * offending flat index i*d + j and its value; checked for every reduction, as PyTorch does).
 * Accuracy: per element exact (a sign change and one multiplication); mean/sum/total_weight as in section 2.
 * Memory: for N-D input (d > 1) only the input lines that targets name are read; where targets come in runs of one
 * class along the positions (segmentation masks) each run is read from its class plane with contiguous loads, and
 * other targets are gathered. The same bits either way.
 */
NLLK_API nllk_status nllk_nll_fwd_f32(const float *input, const void *target, nllk_target_type target_type,
                                      size_t n, size_t c, size_t d, const float *weight, int64_t ignore_index,
                                      nllk_reduction reduction, float *out, float *total_weight);
NLLK_API nllk_status nllk_nll_fwd_f64(const double *input, const void *target, nllk_target_type target_type,
                                      size_t n, size_t c, size_t d, const double *weight, int64_t ignore_index,
                                      nllk_reduction reduction, double *out, double *total_weight);

/*
 * nllk_nll_bwd_f32 / _f64 — backward: the gradient of the forward's result w.r.t. input.
 *
 *   grad_output    NONE: n*d values; MEAN, SUM: 1 value.
 *   target ... reduction   as in the forward call.
 *   total_weight   the forward's total_weight (used by MEAN only).
 *   grad_input     n*c*d values, required: 0 everywhere except at each non-ignored element's target class:
 *                    NONE: -w[k] * grad_output[i*d + j];  SUM: -w[k] * grad_output;
 *                    MEAN: w[k] * -(grad_output / total_weight)   (NaN when total_weight is 0, as in PyTorch)
 *
 * Errors: as the forward; nothing is ever written out of bounds. NLLK_ERR_TARGET_OUT_OF_RANGE: for d == 1 the
 * targets are checked before anything is written; for d > 1 the one pass below checks each chunk of positions
 * before writing it, so grad_input may have been partly written (unspecified values, as any array output of a
 * failed call). The reported index is the lowest bad one either way, for any thread count.
 *
 * Memory: for N-D input (d > 1) every element of grad_input is written exactly once (the zeros and the values in
 * one pass); when grad_input has 32 MiB or more the writes are streaming (non-temporal) stores, so it is not left
 * in the caches.
 */
NLLK_API nllk_status nllk_nll_bwd_f32(const float *grad_output, const void *target, nllk_target_type target_type,
                                      size_t n, size_t c, size_t d, const float *weight, int64_t ignore_index,
                                      nllk_reduction reduction, float total_weight, float *grad_input);
NLLK_API nllk_status nllk_nll_bwd_f64(const double *grad_output, const void *target, nllk_target_type target_type,
                                      size_t n, size_t c, size_t d, const double *weight, int64_t ignore_index,
                                      nllk_reduction reduction, double total_weight, double *grad_input);

/* ------------------------------------------------------------------------------------------------------- */
/* Cross-entropy from logits (log_softmax + NLL, fused)                                                    */
/* ------------------------------------------------------------------------------------------------------- */

/*
 * PyTorch's F.cross_entropy (1.13: cross_entropy_loss_label_smoothing, cross_entropy_loss_prob_target) over
 * logits of shape (n, c, d) as for NLL (PyTorch's (C) is n = d = 1; (N, C) is d = 1; (N, C, d1..dK) is
 * d = d1*...*dK). Position (i, j) has the c logits x_k = input[(i*c + k)*d + j].
 *
 * Per-position log-sum-exp, the order every ISA, thread count and chunking follows (so the same bits):
 *   m      = the largest of the position's logits that are not NaN (-Inf if none), exactly, with -0 read as +0;
 *   e_k    = exp(x_k - m) in the dtype (x_k - m rounded to the dtype), by the cross-entropy's exp: f32 a fixed
 *            evaluation written out in kernels/scalar/vec.h (v_exp_ce: argument clamped to [-104, 89];
 *            n = round(a*log2(e)) by the 1.5*2^23 trick; Cody-Waite reduction r = a - n*ln2 in two FMAs; Cephes'
 *            degree-5 polynomial by FMAs, y = r + r^2*P(r) + 1; y*2^n rounded once), the same operations on every
 *            ISA (checked on all 2^32 inputs), within 1.02 ulp of exp, inline and about twice SLEEF's u10
 *            throughput; f64 SLEEF's u10 exp;
 *   s      = the sum of e_k in double over 16 lanes by class index: lane q starts at +0.0 and adds e_k for
 *            k = q, q+16, q+32, ... in increasing k; then s[q] += s[q+8] (q < 8), += s[q+4], += s[q+2], += s[q+1]
 *            (the in-block order of section 2, applied to the classes). The same definition for both layouts
 *            ((n, c) rows are vectorised along classes, (n, c, d) along positions, each lane computed when the
 *            fold takes it, in registers);
 *   logsum = log(s) to the dtype: f64: SLEEF log of s; f32: log(sf) + r in float, where sf = (float)s and
 *            r = (float)((s - sf) / sf) (the residual of the rounding, so that log(s) keeps s's double accuracy);
 *   log_softmax_k = (x_k - m) - logsum         (PyTorch's operation order)
 *   lse    = m + logsum, rounded to the dtype (returned by the forward, taken by the backward).
 * Every row (or (n, c, d) column) is read by two passes, a max pass then an exp pass: for c up to several
 * million classes the second pass reads it from cache (L1/L2 for c <= 64k f32, L3 beyond), so the logits are read
 * from memory once; no online rescaling, whose extra exp would round differently.
 * A NaN logit, a +Inf logit or a row of -Inf logits gives NaN (as PyTorch); -Inf in some classes is exact
 * (exp gives 0). Accuracy (f32): the e_k are within 1.02 ulp, and their double sum s is exact to ~2^-40 relative
 * for any c up to 2^24, so the per-position loss is
 * within a few ulp of the exact value plus the inherent roundings of the x_k - m in the dtype (as in PyTorch) and
 * 2^-53 absolute (the double sum); f64: s carries about
 * c/16 * 2^-53 relative error in the worst case (sqrt of that typically).
 *
 * Class-index targets (t = target[i*d + j], types as NLL; w_k = weight[k] or 1; ls = label_smoothing):
 *   ignored (t == ignore_index):  loss = +0, weight = 0
 *   otherwise:  nll = -(log_softmax_t * w_t)
 *               ls == 0:  loss = nll
 *               ls > 0 :  smooth = -(D - logsum * W) in double, rounded to the dtype, where W = sum_k w_k and
 *                         D = sum_k (double)(w_k * (x_k - m)) (each product in the dtype; both sums in the lane
 *                         order above); this equals -sum_k w_k * log_softmax_k (PyTorch's smoothing term);
 *                         loss = (1 - ls) * nll + (ls / c) * smooth  in the dtype, the factors rounded to it
 *                         (PyTorch's formula: (1 - ls) * nll_loss + (ls / n_classes) * smooth_loss)
 *   sum  = the canonical sum (section 2) of loss over positions;
 *   mean = sum / total_weight, total_weight = the canonical sum of w_t over non-ignored positions (their count
 *          without weights). PyTorch 1.13 divides the smoothing term by the same total_weight, weighted or not,
 *          so one denominator serves both terms; an empty or all-ignored batch gives NaN, as in PyTorch.
 * Probability targets (target has the input's shape; q_k = target[(i*c + k)*d + j]; ls > 0 first replaces
 * q_k by q_k * (1 - ls) + ls / c in the dtype, as PyTorch):
 *   loss = -(A - logsum * B) in double, rounded to the dtype, where B = sum_k (double)(q_k * w_k) and
 *          A = sum_k (double)((q_k * w_k) * (x_k - m)) (products in the dtype; sums in the lane order above);
 *          this is -sum_k w_k * q_k * log_softmax_k (a -Inf logit with q_k * w_k = 0 gives NaN, as PyTorch);
 *   sum  = the canonical sum of loss; mean = sum / (n*d) (NaN when n*d = 0), as PyTorch.
 *
 * Backward (both target kinds): with the per-position factor g (grad_output[i*d + j] for NONE, grad_output
 * for SUM, grad_output / total_weight (class index) or grad_output / (n*d) (probabilities) for MEAN, computed in
 * the dtype as PyTorch), PyTorch's log_softmax backward over the loss's gradient G_k w.r.t. log_softmax_k:
 *   p_k * S = e_k * fac, fac = S / s in double rounded once to the dtype, with m, e_k and s recomputed exactly as
 *            the forward's (a max pass, then an exp pass from cache): p_k = e_k / s never goes through a rounded
 *            lse, so the gradient is offset-invariant like PyTorch's exp((x_k - m) - logsum) (rows of equal logits
 *            at -1e30 give p_k = 1/c; logits near 1e5 keep f32 accuracy), and p_k is within a few ulp of the
 *            exact softmax (the roundings of x_k - m, e_k, s and fac). The lse argument of the backward is
 *            accepted for compatibility and not read (recomputing m and s costs no more exps than exp(x - lse)
 *            did: one per logit).
 *   class index: G_k = -(w_t * gn) * [k == t] - w_k * gs,  gn = (1 - ls) * g (g when ls == 0),
 *                gs = (ls / c) * g (no term when ls == 0);  all G_k = 0 at ignored positions
 *   probabilities: G_k = -(g * q_k) * w_k   (q after smoothing)
 *   grad_input_k = G_k - e_k * fac,  S = sum_k G_k in double, rounded to the dtype: class index -(w_t * gn) - gs * W
 *                  (just -(w_t * gn) when ls == 0), probabilities -g * B
 *   W = sum_k w_k (c without weights) in the class-lane order above.
 *   grad_target_k (probabilities) = -(g * w_k) * log_softmax_k * (1 - ls)  ((1 - ls) omitted when ls == 0;
 *                  log_softmax_k = (x_k - m) - logsum as above)
 *
 * Threads (section 4): a position costs about c elements' work, so a thread takes from about 32768 / c positions
 * on. MEAN and SUM give threads whole 4096-position blocks of the canonical sum; a call of at most 4096
 * positions (e.g. 2048 tokens of a 256k vocabulary) shares its one block between threads instead (the losses go
 * through a 32 KiB stack buffer, then into the canonical sum: the same bits; on 16-bit storage the buffer keeps each
 * loss as computed, not its 16-bit rounding, one position per kernel call). Calls of a few blocks use at most
 * that many threads. NONE and the backward split positions freely. The backward reads the logits again and
 * recomputes the softmax (nothing of size n*c is stored); it writes grad_input once, with streaming
 * (non-temporal) stores when grad_input has 32 MiB or more ((n, c) rows of a 64-byte line's worth of classes up to
 * 4096 classes, 8191 on 16-bit storage: each row's whole 64-byte lines, its first and last partial lines with
 * ordinary stores; (n, c, d) with up to 256 classes and d a multiple of the vector width). 16-bit rows of 8192 to
 * 32768 classes instead fetch each row's grad_input lines into cache while its exps are computed (write prefetches)
 * and write them with ordinary stores.
 *
 * Errors (every function): NLLK_ERR_NULL_POINTER, NLLK_ERR_SIZE_OVERFLOW, NLLK_ERR_INVALID_ARGUMENT (reduction,
 * target_type; label_smoothing NaN or outside [0, 1], as PyTorch's "label_smoothing must be between 0.0 and
 * 1.0"), NLLK_ERR_TARGET_OUT_OF_RANGE (class index: the lowest offending flat index, as NLL, checked for every
 * reduction and before anything is written). c = 0 requires every target ignored (losses +0); c = 1 gives
 * log_softmax = 0 and loss -0 (as PyTorch).
 */

/*
 * nllk_cross_entropy_fwd_f32 / _f64 — class-index targets, forward.
 *
 *   input          n*c*d logits (n, c, d). May be NULL when n*c*d == 0.
 *   target         n*d class indices of type target_type. May be NULL when n*d == 0.
 *   n, c, d, weight, ignore_index, reduction, out, total_weight   as nllk_nll_fwd_* (total_weight: MEAN and SUM
 *                  give the sum of w_t over non-ignored positions, NONE gives 0; NULL to skip).
 *   label_smoothing  in [0, 1] (PyTorch's default 0).
 *   lse            n*d per-position log-sum-exp values (m + logsum above), or NULL to skip: hand them to the
 *                  backward so that it does not recompute them.
 */
NLLK_API nllk_status nllk_cross_entropy_fwd_f32(const float *input, const void *target, nllk_target_type target_type,
                                                size_t n, size_t c, size_t d, const float *weight,
                                                int64_t ignore_index, double label_smoothing,
                                                nllk_reduction reduction, float *out, float *total_weight,
                                                float *lse);
NLLK_API nllk_status nllk_cross_entropy_fwd_f64(const double *input, const void *target,
                                                nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                const double *weight, int64_t ignore_index, double label_smoothing,
                                                nllk_reduction reduction, double *out, double *total_weight,
                                                double *lse);

/*
 * nllk_cross_entropy_bwd_f32 / _f64 — class-index targets, backward: d(result) / d(input).
 *
 *   grad_output    NONE: n*d values; MEAN, SUM: 1 value.
 *   input ... reduction   as in the forward call.
 *   total_weight   the forward's total_weight (MEAN only).
 *   lse            the forward's lse, or NULL: not read (the backward recomputes each position's max and exp-sum;
 *                  the same bits either way).
 *   grad_input     n*c*d values, required (every entry is written).
 */
NLLK_API nllk_status nllk_cross_entropy_bwd_f32(const float *grad_output, const float *input, const void *target,
                                                nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                const float *weight, int64_t ignore_index, double label_smoothing,
                                                nllk_reduction reduction, float total_weight, const float *lse,
                                                float *grad_input);
NLLK_API nllk_status nllk_cross_entropy_bwd_f64(const double *grad_output, const double *input, const void *target,
                                                nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                const double *weight, int64_t ignore_index, double label_smoothing,
                                                nllk_reduction reduction, double total_weight, const double *lse,
                                                double *grad_input);

/*
 * nllk_cross_entropy_fwdbwd_f32 / _f64 — class-index targets, forward and backward in one call (training: the
 * loss and d(result) / d(input) together).
 *
 *   input ... lse  as nllk_cross_entropy_fwd_* (out, total_weight, lse: the forward's values; total_weight and lse
 *                  NULL to skip).
 *   grad_output    as nllk_cross_entropy_bwd_* (NONE: n*d values; MEAN, SUM: 1 value), or NULL for 1 (every
 *                  position's 1 for NONE): d(result) / d(input) itself.
 *   grad_input     n*c*d values, required (every entry is written); it must not overlap input.
 * The results are bit for bit those of nllk_cross_entropy_fwd_* followed by nllk_cross_entropy_bwd_* with the
 * forward's total_weight (MEAN divides grad_output by total_weight as rounded to the dtype; the fused call computes
 * it from the targets and weights first, in the canonical order), on every ISA and thread count. What it saves:
 * (n, c) rows are read from memory once (a max pass, then one exp pass from cache), one exp per logit, and
 * grad_input is written once: rows of up to 4096 classes keep their exps in a stack buffer (grad_input written with
 * plain stores, which measured faster than streaming ones in this pass), longer rows keep them in their grad_input
 * row, rewritten in place. (n, c, d)
 * inputs (d > 1) take a vector of positions at a time: the max pass, one exp pass (exps kept on the stack up to 256
 * classes, else in grad_input, rewritten in place; 16-bit storage beyond 256 classes computes them again), the
 * losses, then grad_input class plane by class plane (streaming stores as the backward's, when grad_input is on the
 * vector grid).
 * Errors: as the forward and the backward (a target out of range is reported before anything is written);
 * NLLK_ERR_NULL_POINTER when grad_input is NULL and n*c*d > 0.
 */
NLLK_API nllk_status nllk_cross_entropy_fwdbwd_f32(const float *input, const void *target,
                                                   nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                   const float *weight, int64_t ignore_index, double label_smoothing,
                                                   nllk_reduction reduction, float *out, float *total_weight,
                                                   float *lse, const float *grad_output, float *grad_input);
NLLK_API nllk_status nllk_cross_entropy_fwdbwd_f64(const double *input, const void *target,
                                                   nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                   const double *weight, int64_t ignore_index, double label_smoothing,
                                                   nllk_reduction reduction, double *out, double *total_weight,
                                                   double *lse, const double *grad_output, double *grad_input);

/*
 * nllk_cross_entropy_prob_fwd_f32 / _f64 — probability targets (target: n*c*d values, the input's shape),
 * forward. out: NONE n*d losses, MEAN/SUM 1 value; lse as above (NULL to skip). weight c values or NULL.
 */
NLLK_API nllk_status nllk_cross_entropy_prob_fwd_f32(const float *input, const float *target, size_t n, size_t c,
                                                     size_t d, const float *weight, double label_smoothing,
                                                     nllk_reduction reduction, float *out, float *lse);
NLLK_API nllk_status nllk_cross_entropy_prob_fwd_f64(const double *input, const double *target, size_t n, size_t c,
                                                     size_t d, const double *weight, double label_smoothing,
                                                     nllk_reduction reduction, double *out, double *lse);

/*
 * nllk_cross_entropy_prob_bwd_f32 / _f64 — probability targets, backward. grad_output as the class-index
 * backward; lse the forward's or NULL (not read, as above); grad_input n*c*d values (required); grad_target n*c*d
 * values or NULL to skip.
 */
NLLK_API nllk_status nllk_cross_entropy_prob_bwd_f32(const float *grad_output, const float *input,
                                                     const float *target, size_t n, size_t c, size_t d,
                                                     const float *weight, double label_smoothing,
                                                     nllk_reduction reduction, const float *lse, float *grad_input,
                                                     float *grad_target);
NLLK_API nllk_status nllk_cross_entropy_prob_bwd_f64(const double *grad_output, const double *input,
                                                     const double *target, size_t n, size_t c, size_t d,
                                                     const double *weight, double label_smoothing,
                                                     nllk_reduction reduction, const double *lse,
                                                     double *grad_input, double *grad_target);

/* ------------------------------------------------------------------------------------------------------- */
/* Threads                                                                                                 */
/* ------------------------------------------------------------------------------------------------------- */

/* Sets the number of threads every later call of any thread uses (section 4); k = 0 restores the default
 * (NLLK_NUM_THREADS, else OpenMP's). Errors: NLLK_ERR_INVALID_ARGUMENT for k < 0. A build without OpenMP
 * accepts any k and always runs on the calling thread. */
NLLK_API nllk_status nllk_set_num_threads(int k);

/* The number of threads calls will use at most (>= 1). */
NLLK_API int nllk_get_num_threads(void);

/* ------------------------------------------------------------------------------------------------------- */
/* Streaming: accumulators for data that arrives in pieces                                                 */
/* ------------------------------------------------------------------------------------------------------- */

/*
 * An accumulator folds consecutive chunks of any length into the canonical tree (section 2) and finalizes to
 * exactly the bits of the one-shot call over the concatenated data: sum, mean, NLL's total_weight, count.
 * Two accumulators over adjacent ranges merge into the accumulator of their union, in the same tree, so a
 * dataset can be cut into shards (threads, processes, machines), each scored from its global offset, and the
 * shards merged left to right (or in any bracketing that keeps the order) to the one-shot bits.
 *
 * nllk_acc is a plain fixed-size value (about 70 KiB, no pointers, no allocation): put it anywhere, copy it
 * with memcpy, send its bytes to another process of the same build (the layout is the build's: same nllk
 * version, same architecture). It remembers its loss, dtype, options and the global element range [begin, end)
 * it covers.
 *
 * Bytes from outside are validated, never trusted. Every call that reads an accumulator (update, merge — both
 * sides —, range, result) checks every field: initialized (magic number), kind, dtype, the options of its loss
 * (log_input and full 0 or 1; eps any value, as in the one-shot call; target_type; d >= 1 and a sample of c*d
 * elements addressable; the other loss's options zero), begin <= end, the canonical sum's open nodes exactly
 * those of [begin, end), and a checksum over all of them and the partial sums. An accumulator that is corrupted,
 * truncated or padded with garbage, or not an accumulator at all, gives NLLK_ERR_INVALID_ARGUMENT with a message
 * naming what is wrong, and nothing is changed; no bytes make a call crash or access memory out of bounds. The
 * checksum detects any change of one 64-bit word and accidental corruption, not deliberate forgery (it is not a
 * MAC). An update does not recheck the up to 4096 raw values kept by a shard that begins inside a block (it
 * never reads them, and stays fast): a corruption there is reported by the next merge, range or result.
 *
 * Element numbering: Poisson element i is input[i]; NLL element i*d + j is (sample i, position j).
 * The per-element losses of a chunk are returned by the *_update_out_* variants (the values of the one-shot call
 * with NLLK_REDUCTION_NONE, also for NLL chunks that start or end inside a sample).
 */
#define NLLK_ACC_SIZE (72 * 1024)
typedef struct nllk_acc {
    union {
        unsigned char bytes[NLLK_ACC_SIZE];
        double align_;
        uint64_t align64_;
    } opaque;
} nllk_acc;

typedef enum nllk_dtype {
    NLLK_F32 = 0,
    NLLK_F64 = 1,
    NLLK_BF16 = 2, /* bfloat16 storage (nllk_bf16), float math, double sums */
    NLLK_F16 = 3   /* float16 storage (nllk_f16), float math, double sums   */
} nllk_dtype;

/* Starts a Poisson accumulator at global element `begin` (0 for the first chunk of a dataset; a shard's
 * first element index otherwise). Options as in nllk_poisson_nll_fwd_*. Errors: NLLK_ERR_NULL_POINTER,
 * NLLK_ERR_INVALID_ARGUMENT (dtype). */
NLLK_API nllk_status nllk_poisson_acc_init(nllk_acc *acc, nllk_dtype dtype, int log_input, int full, double eps,
                                           uint64_t begin);

/* Folds the next n elements (global indices end .. end+n-1). The dtype must be the accumulator's.
 * Errors: NLLK_ERR_NULL_POINTER, NLLK_ERR_INVALID_ARGUMENT (not a valid Poisson accumulator of this dtype, or
 * the count would pass 2^64). On failure the accumulator is unchanged. */
NLLK_API nllk_status nllk_poisson_acc_update_f32(nllk_acc *acc, const float *input, const float *target, size_t n);
NLLK_API nllk_status nllk_poisson_acc_update_f64(nllk_acc *acc, const double *input, const double *target,
                                                 size_t n);
/* As nllk_poisson_acc_update_*, and also writes the chunk's n per-element losses to out (NULL: none written). */
NLLK_API nllk_status nllk_poisson_acc_update_out_f32(nllk_acc *acc, const float *input, const float *target,
                                                     size_t n, float *out);
NLLK_API nllk_status nllk_poisson_acc_update_out_f64(nllk_acc *acc, const double *input, const double *target,
                                                     size_t n, double *out);

/* Starts an NLL accumulator for inputs of c classes and d positions per sample, at global flat element
 * `begin` (= i*d + j). The weight, if any, is passed with every update (it is not copied).
 * Errors: NLLK_ERR_NULL_POINTER, NLLK_ERR_INVALID_ARGUMENT (dtype, target_type, d == 0, c*d elements of the
 * dtype overflow size_t bytes). */
NLLK_API nllk_status nllk_nll_acc_init(nllk_acc *acc, nllk_dtype dtype, nllk_target_type target_type, size_t c,
                                       size_t d, int64_t ignore_index, uint64_t begin);

/* Folds the next n flat elements [end, end + n) — whole samples, or any run of positions that may start and
 * end inside a sample.
 *   input    points at the start of sample floor(end / d) of the (samples, c, d) input: the chunk's first
 *            element reads input[t*d + end % d]; later samples follow at c*d strides.
 *   target   the chunk's n targets (target[0] is element end's).
 *   weight   c class weights or NULL; pass the same weights to every update of a dataset.
 * Errors: NLLK_ERR_NULL_POINTER, NLLK_ERR_INVALID_ARGUMENT (not a valid NLL accumulator of this dtype),
 * NLLK_ERR_SIZE_OVERFLOW, NLLK_ERR_TARGET_OUT_OF_RANGE (the message names the lowest offending GLOBAL flat
 * index, its sample and position; nllk_last_error_index() gives that index). On failure the accumulator is
 * unchanged (targets are checked first) and nothing is written to out. */
NLLK_API nllk_status nllk_nll_acc_update_f32(nllk_acc *acc, const float *input, const void *target, size_t n,
                                             const float *weight);
NLLK_API nllk_status nllk_nll_acc_update_f64(nllk_acc *acc, const double *input, const void *target, size_t n,
                                             const double *weight);
/* As nllk_nll_acc_update_*, and also writes the chunk's n per-element losses to out (NULL: none written):
 * out[k] is element end+k's loss, -w[t]*x (or +0 at an ignored position), the one-shot NONE value. */
NLLK_API nllk_status nllk_nll_acc_update_out_f32(nllk_acc *acc, const float *input, const void *target, size_t n,
                                                 const float *weight, float *out);
NLLK_API nllk_status nllk_nll_acc_update_out_f64(nllk_acc *acc, const double *input, const void *target,
                                                 size_t n, const double *weight, double *out);

/* Starts a cross-entropy accumulator (class-index targets) for inputs of c classes and d positions per
 * sample, at global flat position `begin`; options as nllk_cross_entropy_fwd_*. Chunks, numbering and `input`
 * as nllk_nll_acc_update_* (a chunk may start and end inside a sample; the position's c logits are read at
 * stride d from the sample holding it). nllk_acc_result gives the one-shot MEAN/SUM bits and total_weight.
 * Errors: as nllk_nll_acc_init, and NLLK_ERR_INVALID_ARGUMENT for label_smoothing NaN or outside [0, 1]. */
NLLK_API nllk_status nllk_cross_entropy_acc_init(nllk_acc *acc, nllk_dtype dtype, nllk_target_type target_type,
                                                 size_t c, size_t d, int64_t ignore_index, double label_smoothing,
                                                 uint64_t begin);
/* Folds the next n positions; as nllk_nll_acc_update_* (weight: the same c weights, or NULL, every update). */
NLLK_API nllk_status nllk_cross_entropy_acc_update_f32(nllk_acc *acc, const float *input, const void *target,
                                                       size_t n, const float *weight);
NLLK_API nllk_status nllk_cross_entropy_acc_update_f64(nllk_acc *acc, const double *input, const void *target,
                                                       size_t n, const double *weight);
/* As above, and writes the chunk's n per-position losses (the one-shot NONE values) to out (NULL: none). */
NLLK_API nllk_status nllk_cross_entropy_acc_update_out_f32(nllk_acc *acc, const float *input, const void *target,
                                                           size_t n, const float *weight, float *out);
NLLK_API nllk_status nllk_cross_entropy_acc_update_out_f64(nllk_acc *acc, const double *input, const void *target,
                                                           size_t n, const double *weight, double *out);

/* Starts a cross-entropy accumulator with probability targets (c classes, d positions; begin as above).
 * An update's target points like its input (at the start of the sample holding the chunk's first position,
 * the same (samples, c, d) layout). nllk_acc_result's MEAN divides by the count of positions (total_weight is
 * that count). Errors: as nllk_cross_entropy_acc_init. */
NLLK_API nllk_status nllk_cross_entropy_prob_acc_init(nllk_acc *acc, nllk_dtype dtype, size_t c, size_t d,
                                                      double label_smoothing, uint64_t begin);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_f32(nllk_acc *acc, const float *input, const float *target,
                                                            size_t n, const float *weight);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_f64(nllk_acc *acc, const double *input,
                                                            const double *target, size_t n, const double *weight);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_out_f32(nllk_acc *acc, const float *input,
                                                                const float *target, size_t n, const float *weight,
                                                                float *out);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_out_f64(nllk_acc *acc, const double *input,
                                                                const double *target, size_t n,
                                                                const double *weight, double *out);

/* Appends `right` to `left`. Requires the same loss, dtype and options, and right's begin == left's end.
 * Errors: NLLK_ERR_NULL_POINTER, NLLK_ERR_INVALID_ARGUMENT (either not a valid accumulator, or a mismatch;
 * left unchanged). */
NLLK_API nllk_status nllk_acc_merge(nllk_acc *left, const nllk_acc *right);

/* The accumulator's global range [begin, end). Errors: NLLK_ERR_NULL_POINTER (acc), NLLK_ERR_INVALID_ARGUMENT
 * (not a valid accumulator; *begin and *end unchanged). */
NLLK_API nllk_status nllk_acc_range(const nllk_acc *acc, uint64_t *begin, uint64_t *end);

/* The result over everything folded so far, equal to the one-shot call's bits when begin == 0:
 *   value         MEAN or SUM (f32, f64: rounded to the accumulator's dtype, then widened exactly to double;
 *                 bf16, f16: the double value itself, unrounded);
 *                 NONE is NLLK_ERR_INVALID_ARGUMENT.
 *   total_weight  NLL: the sum of weights of non-ignored elements (rounded to the dtype; bf16, f16: unrounded);
 *                 Poisson: the count.
 *                 NULL to skip.
 *   count         the number of elements folded (end - begin). NULL to skip.
 * For begin != 0 (a shard) the values are that shard's own, summed in a fixed order: merge shards instead
 * of adding their results.
 * Errors: NLLK_ERR_NULL_POINTER (acc, value), NLLK_ERR_INVALID_ARGUMENT (not a valid accumulator; reduction). */
NLLK_API nllk_status nllk_acc_result(const nllk_acc *acc, nllk_reduction reduction, double *value,
                                     double *total_weight, uint64_t *count);

/* ------------------------------------------------------------------------------------------------------- */
/* bfloat16 and float16 storage                                                                            */
/* ------------------------------------------------------------------------------------------------------- */

/*
 * Every _f32 function has _bf16 and _f16 twins with the same parameters, where each element array or element
 * scalar (input, Poisson's and probability cross-entropy's target, weight, out, total_weight, grad_output,
 * grad_input, grad_target, lse) holds 16-bit values: nllk_bf16 or nllk_f16 (nllk_dtype NLLK_BF16, NLLK_F16 for
 * the accumulators). double parameters (eps, label_smoothing) stay double. The arrays must be 2-byte aligned
 * (the C alignment of uint16_t).
 *
 * Semantics ("16-bit storage, f32 math, double sums"):
 *   - each input element is converted exactly to float (every bfloat16 and float16 value is a float);
 *   - the per-element math is the f32 functions' (the same operations in float, the same bits as the _f32
 *     function called on the converted inputs, eps rounded to float);
 *   - each per-element output and gradient (NONE losses, grad_input, grad_target, lse) is that float value
 *     rounded once to the storage type, to nearest, ties to even;
 *   - reductions add the float per-element values (not their 16-bit roundings) in double on the canonical tree
 *     of section 2; the one-shot MEAN / SUM and NLL's total_weight are the double result rounded once (directly
 *     from double, no intermediate float) to the storage type: PyTorch's output dtype, within 0.5 ulp of the
 *     double total;
 *   - the accumulators' nllk_acc_result gives the double value (and total_weight) unrounded: the exact bits the
 *     one-shot call rounds;
 *   - the backward's MEAN factor grad_output / count (Poisson) or grad_output / total_weight (NLL) is computed
 *     in float and rounded to the storage type before the per-element product, as PyTorch's 16-bit autograd
 *     does; SUM passes grad_output as given.
 * Conversion of a float to 16 bits: round to nearest even; overflow gives +-Inf, results below the smallest
 * denormal round to +-0 (ties to even), denormals are produced (never flushed, whatever the FPU's FTZ/DAZ
 * modes); NaN gives a quiet NaN: 0x7FC0 for bfloat16 (c10::BFloat16's round_to_nearest_even: the sign and
 * payload are dropped), sign | 0x7E00 for float16 (c10::Half's conversion: the payload is dropped). These bits
 * are the same on every ISA.
 * Accuracy: per element, the f32 function's value (a few ulp of float for Poisson, exact for NLL's product)
 * then one 16-bit rounding; so within 0.5 ulp (16-bit) of the float64 value plus the f32 error, ties aside.
 * float16 has a narrow range (largest finite 65504, smallest denormal 2^-24): per-element results beyond it
 * become +-Inf or 0, exactly as the rounding says (a float16 sum may overflow where its mean does not: the
 * double accumulation gives the right mean).
 * Cross-entropy on 16-bit storage: any number of classes (LLM vocabularies of 32000 .. 2^18 and more), the same
 * kernels as f32 reading and writing 16-bit arrays; lse is written rounded to the storage type, and the backward
 * ignores a 16-bit lse passed to it and recomputes it in float (a bfloat16 lse, 8 bits, is far too coarse for
 * exp(x - lse)), so the backward's bits do not depend on lse. Its exps stay in float: up to 32768 classes (rows;
 * a 128 KiB stack buffer) or 256 (N-D) on the stack, beyond that the backward computes them a second time (the f32
 * backward keeps them in grad_input, which 16 bits cannot hold), so there it costs two exps per logit.
 * The fused nllk_cross_entropy_fwdbwd_bf16 / _f16 give the forward's and the backward's bits as for f32.
 * Speed: the arrays hold half the bytes of f32, which helps the memory-bound NLL; calls dominated by exp/log
 * (Poisson, cross-entropy) run at about f32's speed plus the conversions (BENCHMARKS.md, "bfloat16 and float16").
 * Poisson with full != 0 takes Stirling's term (a function of the target alone) from a table of all 65536 target
 * values: the same bits, built on the first such call of the process by the f32 formula (1-2 ms here) and kept in
 * static memory (256 KiB per storage type), so the forward costs no log of the target per element.
 */
NLLK_API nllk_status nllk_poisson_nll_fwd_bf16(const nllk_bf16 *input, const nllk_bf16 *target, size_t n, int log_input,
                                               int full, double eps, nllk_reduction reduction, nllk_bf16 *out);
NLLK_API nllk_status nllk_poisson_nll_bwd_bf16(const nllk_bf16 *input, const nllk_bf16 *target, size_t n, int log_input,
                                               int full, double eps, nllk_reduction reduction,
                                               const nllk_bf16 *grad_output, nllk_bf16 *grad_input,
                                               nllk_bf16 *grad_target);
NLLK_API nllk_status nllk_nll_fwd_bf16(const nllk_bf16 *input, const void *target, nllk_target_type target_type,
                                       size_t n, size_t c, size_t d, const nllk_bf16 *weight, int64_t ignore_index,
                                       nllk_reduction reduction, nllk_bf16 *out, nllk_bf16 *total_weight);
NLLK_API nllk_status nllk_nll_bwd_bf16(const nllk_bf16 *grad_output, const void *target, nllk_target_type target_type,
                                       size_t n, size_t c, size_t d, const nllk_bf16 *weight, int64_t ignore_index,
                                       nllk_reduction reduction, nllk_bf16 total_weight, nllk_bf16 *grad_input);
NLLK_API nllk_status nllk_cross_entropy_fwd_bf16(const nllk_bf16 *input, const void *target,
                                                 nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                 const nllk_bf16 *weight, int64_t ignore_index, double label_smoothing,
                                                 nllk_reduction reduction, nllk_bf16 *out, nllk_bf16 *total_weight,
                                                 nllk_bf16 *lse);
NLLK_API nllk_status nllk_cross_entropy_bwd_bf16(const nllk_bf16 *grad_output, const nllk_bf16 *input,
                                                 const void *target, nllk_target_type target_type, size_t n, size_t c,
                                                 size_t d, const nllk_bf16 *weight, int64_t ignore_index,
                                                 double label_smoothing, nllk_reduction reduction,
                                                 nllk_bf16 total_weight, const nllk_bf16 *lse, nllk_bf16 *grad_input);
NLLK_API nllk_status nllk_cross_entropy_fwdbwd_bf16(const nllk_bf16 *input, const void *target,
                                                    nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                    const nllk_bf16 *weight, int64_t ignore_index,
                                                    double label_smoothing, nllk_reduction reduction, nllk_bf16 *out,
                                                    nllk_bf16 *total_weight, nllk_bf16 *lse,
                                                    const nllk_bf16 *grad_output, nllk_bf16 *grad_input);
NLLK_API nllk_status nllk_cross_entropy_prob_fwd_bf16(const nllk_bf16 *input, const nllk_bf16 *target, size_t n,
                                                      size_t c, size_t d, const nllk_bf16 *weight,
                                                      double label_smoothing, nllk_reduction reduction, nllk_bf16 *out,
                                                      nllk_bf16 *lse);
NLLK_API nllk_status nllk_cross_entropy_prob_bwd_bf16(const nllk_bf16 *grad_output, const nllk_bf16 *input,
                                                      const nllk_bf16 *target, size_t n, size_t c, size_t d,
                                                      const nllk_bf16 *weight, double label_smoothing,
                                                      nllk_reduction reduction, const nllk_bf16 *lse,
                                                      nllk_bf16 *grad_input, nllk_bf16 *grad_target);
NLLK_API nllk_status nllk_poisson_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input, const nllk_bf16 *target,
                                                  size_t n);
NLLK_API nllk_status nllk_poisson_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input, const nllk_bf16 *target,
                                                      size_t n, nllk_bf16 *out);
NLLK_API nllk_status nllk_nll_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target, size_t n,
                                              const nllk_bf16 *weight);
NLLK_API nllk_status nllk_nll_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target, size_t n,
                                                  const nllk_bf16 *weight, nllk_bf16 *out);
NLLK_API nllk_status nllk_cross_entropy_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target,
                                                        size_t n, const nllk_bf16 *weight);
NLLK_API nllk_status nllk_cross_entropy_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input, const void *target,
                                                            size_t n, const nllk_bf16 *weight, nllk_bf16 *out);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_bf16(nllk_acc *acc, const nllk_bf16 *input,
                                                             const nllk_bf16 *target, size_t n,
                                                             const nllk_bf16 *weight);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_out_bf16(nllk_acc *acc, const nllk_bf16 *input,
                                                                 const nllk_bf16 *target, size_t n,
                                                                 const nllk_bf16 *weight, nllk_bf16 *out);

NLLK_API nllk_status nllk_poisson_nll_fwd_f16(const nllk_f16 *input, const nllk_f16 *target, size_t n, int log_input,
                                              int full, double eps, nllk_reduction reduction, nllk_f16 *out);
NLLK_API nllk_status nllk_poisson_nll_bwd_f16(const nllk_f16 *input, const nllk_f16 *target, size_t n, int log_input,
                                              int full, double eps, nllk_reduction reduction,
                                              const nllk_f16 *grad_output, nllk_f16 *grad_input, nllk_f16 *grad_target);
NLLK_API nllk_status nllk_nll_fwd_f16(const nllk_f16 *input, const void *target, nllk_target_type target_type, size_t n,
                                      size_t c, size_t d, const nllk_f16 *weight, int64_t ignore_index,
                                      nllk_reduction reduction, nllk_f16 *out, nllk_f16 *total_weight);
NLLK_API nllk_status nllk_nll_bwd_f16(const nllk_f16 *grad_output, const void *target, nllk_target_type target_type,
                                      size_t n, size_t c, size_t d, const nllk_f16 *weight, int64_t ignore_index,
                                      nllk_reduction reduction, nllk_f16 total_weight, nllk_f16 *grad_input);
NLLK_API nllk_status nllk_cross_entropy_fwd_f16(const nllk_f16 *input, const void *target, nllk_target_type target_type,
                                                size_t n, size_t c, size_t d, const nllk_f16 *weight,
                                                int64_t ignore_index, double label_smoothing, nllk_reduction reduction,
                                                nllk_f16 *out, nllk_f16 *total_weight, nllk_f16 *lse);
NLLK_API nllk_status nllk_cross_entropy_bwd_f16(const nllk_f16 *grad_output, const nllk_f16 *input, const void *target,
                                                nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                const nllk_f16 *weight, int64_t ignore_index, double label_smoothing,
                                                nllk_reduction reduction, nllk_f16 total_weight, const nllk_f16 *lse,
                                                nllk_f16 *grad_input);
NLLK_API nllk_status nllk_cross_entropy_fwdbwd_f16(const nllk_f16 *input, const void *target,
                                                    nllk_target_type target_type, size_t n, size_t c, size_t d,
                                                    const nllk_f16 *weight, int64_t ignore_index,
                                                    double label_smoothing, nllk_reduction reduction, nllk_f16 *out,
                                                    nllk_f16 *total_weight, nllk_f16 *lse,
                                                    const nllk_f16 *grad_output, nllk_f16 *grad_input);
NLLK_API nllk_status nllk_cross_entropy_prob_fwd_f16(const nllk_f16 *input, const nllk_f16 *target, size_t n, size_t c,
                                                     size_t d, const nllk_f16 *weight, double label_smoothing,
                                                     nllk_reduction reduction, nllk_f16 *out, nllk_f16 *lse);
NLLK_API nllk_status nllk_cross_entropy_prob_bwd_f16(const nllk_f16 *grad_output, const nllk_f16 *input,
                                                     const nllk_f16 *target, size_t n, size_t c, size_t d,
                                                     const nllk_f16 *weight, double label_smoothing,
                                                     nllk_reduction reduction, const nllk_f16 *lse,
                                                     nllk_f16 *grad_input, nllk_f16 *grad_target);
NLLK_API nllk_status nllk_poisson_acc_update_f16(nllk_acc *acc, const nllk_f16 *input, const nllk_f16 *target,
                                                 size_t n);
NLLK_API nllk_status nllk_poisson_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input, const nllk_f16 *target,
                                                     size_t n, nllk_f16 *out);
NLLK_API nllk_status nllk_nll_acc_update_f16(nllk_acc *acc, const nllk_f16 *input, const void *target, size_t n,
                                             const nllk_f16 *weight);
NLLK_API nllk_status nllk_nll_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input, const void *target, size_t n,
                                                 const nllk_f16 *weight, nllk_f16 *out);
NLLK_API nllk_status nllk_cross_entropy_acc_update_f16(nllk_acc *acc, const nllk_f16 *input, const void *target,
                                                       size_t n, const nllk_f16 *weight);
NLLK_API nllk_status nllk_cross_entropy_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input, const void *target,
                                                           size_t n, const nllk_f16 *weight, nllk_f16 *out);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_f16(nllk_acc *acc, const nllk_f16 *input,
                                                            const nllk_f16 *target, size_t n, const nllk_f16 *weight);
NLLK_API nllk_status nllk_cross_entropy_prob_acc_update_out_f16(nllk_acc *acc, const nllk_f16 *input,
                                                                const nllk_f16 *target, size_t n,
                                                                const nllk_f16 *weight, nllk_f16 *out);

#ifdef __cplusplus
}
#endif

#endif /* NLLK_H */
