/* The storage layer of the kernels: what the caller's arrays hold (stor_t) apart from what the kernels compute in
 * (elem_t, vec_t of the map: float or double).
 *
 * f32, f64: the storage type is the compute type and the s_* operations are the map's own memory operations.
 * bf16, f16 (kernels/common/kernels.c compiled with -DNLLK_DTYPE_BF16 or -DNLLK_DTYPE_F16, which selects the map's
 * float section and its "16-bit storage" block): stor_t is uint16_t, loads and gathers convert exactly to float,
 * stores, scatters and streaming stores round once to the storage type (kernels/common/half.h, the same bits on
 * every ISA). Scratch buffers of computed values stay elem_t (float): a kernel sums the float values, never their
 * 16-bit roundings (nllk.h, "bfloat16 and float16 storage").
 *
 *   stor_t                         one stored element
 *   S_SAME                         1 when stor_t is elem_t (an output array may double as a scratch buffer)
 *   s_load(p) s_load_n(p, m) s_store(p, v) s_store_n(p, v, m) s_gather(base, off, bits)
 *   s_scatter(base, off, bits, v) s_stream(p, v)       as the v_ forms (kernels/common/vec_ops.h), on stor_t
 *   s_get(p)                       one stored element, exactly, as a double (a scalar the kernel broadcasts)
 *   s_set(p, v)                    one computed value stored (rounded once to the storage type)
 *   s_lookup(tab, p) s_lookup_n(tab, p, m)     16-bit only: tab[p[i]], a float table indexed by the stored patterns
 *
 * Pairs (S_PAIRS 1): where the map's 16-bit block defines V_H_PAIR_EVEN_ODD (bfloat16 on AVX-512 and AVX2), 2*VW
 * stored elements load as two vectors, a the even elements and b the odd, which widen and round without the permute
 * element order takes. Element-wise loops take pairs first (under #if S_PAIRS), then single vectors; the other
 * storage types keep their single-vector loops unchanged. 2*VW is a multiple of 16 there. A sum over pairs puts the
 * accumulators in the pair arrangement first and back after, so each canonical lane still adds its elements in
 * increasing order.
 *   s_load_pair(p, &a, &b) s_store_pair(p, a, b) s_stream_pair(p, a, b) s_lookup_pair(tab, p, &a, &b)
 *                                          (s_stream_pair: p aligned to 2*VW elements' bytes)
 *   s_pair(x0, x1, &a, &b) s_unpair(a, b, &x0, &x1) s_pair_tn(n0, n1, &a, &b)
 *                                          2*VW computed values (vtn_t targets) from element order (x0 the first VW,
 *                                          x1 the next) to the pair order, and back (cross-entropy planes)
 *   s_acc_pair(acc) s_acc_unpair(acc)      the G accumulators to the pair arrangement and back
 *   s_acc_add_pair(acc, a, b)              a pair of computed values into them */
#ifndef NLLK_KERNELS_COMMON_STORAGE_H
#define NLLK_KERNELS_COMMON_STORAGE_H

#if defined(NLLK_STORAGE_16)
#    include "half.h"
typedef uint16_t stor_t;
#    define S_SAME 0
static inline vec_t s_load(const stor_t *p) { return v_h_load(p); }
static inline vec_t s_load_n(const stor_t *p, size_t m) { return v_h_load_n(p, m); }
static inline void s_store(stor_t *p, vec_t v) { v_h_store(p, v); }
static inline void s_store_n(stor_t *p, vec_t v, size_t m) { v_h_store_n(p, v, m); }
static inline vec_t s_gather(const stor_t *base, vidx_t off, unsigned bits) { return v_h_gather(base, off, bits); }
static inline void s_scatter(stor_t *base, vidx_t off, unsigned bits, vec_t v) { v_h_scatter(base, off, bits, v); }
static inline void s_stream(stor_t *p, vec_t v) { v_h_stream(p, v); }
static inline double s_get(const stor_t *p) { return nllk_h_to_f32(*p); }
static inline vec_t s_lookup(const float *tab, const stor_t *p) { return v_h_lookup(tab, p); }
static inline vec_t s_lookup_n(const float *tab, const stor_t *p, size_t m) { return v_h_lookup_n(tab, p, m); }
static inline void s_set(stor_t *p, float v) { *p = nllk_f32_to_h(v); }
#else
typedef elem_t stor_t;
#    define S_SAME 1
static inline vec_t s_load(const stor_t *p) { return v_load(p); }
static inline vec_t s_load_n(const stor_t *p, size_t m) { return v_load_n(p, m); }
static inline void s_store(stor_t *p, vec_t v) { v_store(p, v); }
static inline void s_store_n(stor_t *p, vec_t v, size_t m) { v_store_n(p, v, m); }
static inline vec_t s_gather(const stor_t *base, vidx_t off, unsigned bits) { return v_gather(base, off, bits); }
static inline void s_scatter(stor_t *base, vidx_t off, unsigned bits, vec_t v) { v_scatter(base, off, bits, v); }
static inline void s_stream(stor_t *p, vec_t v) { v_stream(p, v); }
static inline double s_get(const stor_t *p) { return (double)*p; }
static inline void s_set(stor_t *p, elem_t v) { *p = v; }
#endif

#if defined(NLLK_STORAGE_16) && defined(V_H_PAIR_EVEN_ODD)
#    define S_PAIRS 1
static inline void s_load_pair(const stor_t *p, vec_t *a, vec_t *b) { v_h_load_pair(p, a, b); }
static inline void s_store_pair(stor_t *p, vec_t a, vec_t b) { v_h_store_pair(p, a, b); }
static inline void s_stream_pair(stor_t *p, vec_t a, vec_t b) { v_h_stream_pair(p, a, b); }
static inline void s_pair(vec_t x0, vec_t x1, vec_t *a, vec_t *b) { v_h_pair(x0, x1, a, b); }
static inline void s_unpair(vec_t a, vec_t b, vec_t *x0, vec_t *x1) { v_h_unpair(a, b, x0, x1); }
static inline void s_pair_tn(vtn_t n0, vtn_t n1, vtn_t *a, vtn_t *b) { v_h_pair_tn(n0, n1, a, b); }
static inline void s_lookup_pair(const float *tab, const stor_t *p, vec_t *a, vec_t *b)
{
    v_h_lookup_pair(tab, p, a, b);
}
static inline void s_acc_pair(vacc_t *acc) { v_h_acc_pair(acc); }
static inline void s_acc_unpair(vacc_t *acc) { v_h_acc_unpair(acc); }
static inline void s_acc_add_pair(vacc_t *acc, vec_t a, vec_t b) { v_h_acc_add_pair(acc, a, b); }
#else
#    define S_PAIRS 0
#endif

#endif
