/* The vector map: the operations every kernels/<dir>/vec.h provides, the one list.
 *
 * kernels/common/kernels.c is compiled once per (build, dtype) of the registry (kernels/isas.h) with -I
 * kernels/<dir>, -DNLLK_BUILD=<build>, -DNLLK_DTYPE=f32|f64 and -DNLLK_DTYPE_F32 or -DNLLK_DTYPE_F64. It includes
 * "vec.h", which defines, for the dtype being compiled, the names below (static inline, no intrinsics outside
 * vec.h). A map may use any helper of its own (prefix nv_). tests/test_vec.c checks every operation of every
 * map against the scalar map, bit for bit.
 *
 * Types and constants
 *   elem_t                     the element type (float, double)
 *   VW                         lanes per vector (1 for scalar); 16 % VW == 0
 *   vec_t                      VW elements
 *   vacc_t                     VW doubles: the canonical sum lanes of VW elements (nllk.h section 2)
 *   vidx_t                     VW NLL targets as int64 lanes
 *   vtn_t                      VW NLL targets narrowed to int32 lanes (v_tnarrow)
 *   vmask_t                    a comparison result (v_le), consumed by v_select
 *
 * Arithmetic: IEEE operations, rounded once each (the build has -ffp-contract=off)
 *   v_add(a, b) v_sub(a, b) v_mul(a, b) v_div(a, b) v_neg(a)
 *   v_exp(a), v_log(a)         SLEEF u10, the FMA variants (the same bits on every ISA, nllk.h section 2)
 *   v_set1(double d)           every lane (elem_t)d
 *   v_le(a, b)                 per lane a <= b (ordered: false for NaN)
 *   v_select(m, a, b)          per lane m ? a : b
 *   v_mzero(bits, v)           lanes whose bit of `bits` is clear set to +0
 *   v_mblend(bits, a, b)       lane i: a[i] where bit i of `bits` is set, else b[i] (N-D NLL)
 *
 * Memory: unaligned; the _n forms touch the first m < VW lanes only (nothing outside [p, p + m) is accessed; the
 * other lanes read as +0)
 *   v_load(p), v_store(p, v), v_load_n(p, m), v_store_n(p, v, m)
 *
 * Sum lanes
 *   v_acc_zero(), v_acc_load(d), v_acc_store(d, a), v_acc_add(a, v)     a[i] + (double)v[i]
 *   v_acc_sum(a, b)            a[i] + b[i] (two sum lanes combined; cross-entropy planes)
 *
 * NLL targets (compared in 64 bits; offsets wrap, and are meaningful for valid lanes only)
 *   v_tload_i64(p), v_tload_i32(p), v_tload_u8(p)   VW targets widened to int64 (sign- or zero-extended)
 *   v_kofs(ks)                 lane i holds i*ks
 *   v_tbad(t, c, ign)          bit i set when target i is neither ign nor in [0, c)
 *   v_tvalid(t, ign)           bit i set when target i is not ign
 *   v_toff(t, kofs, cs)        lane i: kofs[i] + t[i]*cs
 *   v_gather(base, off, bits)  lane i: base[off[i]] where bit i is set, else +0; nothing else is read
 *   v_scatter(base, off, bits, v)   base[off[i]] = v[i] where bit i is set; nothing else is written
 *   v_tsel(t, cls, bits, v)    lane i: v[i] where bit i is set and t[i] == cls (64-bit compare), else +0
 *   v_tnarrow(t, bits)         lane i: the low 32 bits of t[i] as int32 where bit i is set, else -1
 *   v_tnsel(n, cls, v)         lane i: v[i] where n[i] == cls (an int32 >= 0), else +0
 *   v_tnpick(n, cls, v, a)     lane i: v[i] where n[i] == cls (an int32 >= 0), else a[i]
 *
 * Other
 *   v_zero_fill(p, bytes)      zero `bytes` bytes: wide stores, streaming (non-temporal) ones for spans much
 *                              larger than the caches
 *   v_stream(p, v)             store VW elements with a streaming (non-temporal) store where the ISA has one (p
 *                              aligned to VW elements' bytes, 64 at most); an ordinary store otherwise
 *   v_stream_fence()           orders earlier streaming stores before later stores (after a series of v_stream)
 *
 * 16-bit storage (bf16, f16: compiled with NLLK_STORAGE_16 over the float section; kernels/common/storage.h)
 *   v_h_load(p) v_h_load_n(p, m) v_h_gather(base, off, bits)     uint16_t -> float lanes, exactly (half.h)
 *   v_h_store(p, v) v_h_store_n(p, v, m) v_h_scatter(base, off, bits, v) v_h_stream(p, v)
 *                              float lanes rounded once to 16 bits (kernels/common/half.h's bits on every ISA)
 * Cross-entropy
 *   v_exp_ce(a)                the cross-entropy's exp: f32 a fixed Cephes-style evaluation with explicit FMAs
 *                              (kernels/scalar/vec.h defines it; within 1.02 ulp, every map the same bits), inline
 *                              (no call, no clobbered registers); f64 v_exp
 * Cross-entropy rows (stop 23; at the end of every map, block "ce rows (stop 23)")
 *   v_max_num(m, x)            per lane x > m ? x : m (a NaN x leaves m; equal zeros keep m): x86 one vmaxps
 *   v_exp_ce_le0(a)            v_exp_ce(a) for a <= 0 or NaN (x - m of a row's max m), other arguments unspecified:
 *                              without the upper clamp, a no-op there
 *   v_h_max2(m, p)             16-bit storage: m with the 2*VW stored values p[0 .. 2*VW) folded in by v_max_num in an
 *                              unspecified lane order (order-free maxima only; a NaN may widen to any NaN)
 * Cross-entropy logsums (stop 25; at the end of every map, block "ce logsums (stop 25)")
 *   v_acc_split(a, &hi, &lo)   hi[i] = (elem_t)a[i]; lo[i] = +0 where a[i] == (double)hi[i] (ordered), else
 *                              (elem_t)((a[i] - (double)hi[i]) / (double)hi[i]): a double sum as a float and its
 *                              relative residual (ce_logsums), every step an IEEE operation rounded once
 * Cross-entropy planes gradient (stop 26; at the end of every map, block "ce planes gradient (stop 26)")
 *   v_acc_rdiv(a, s)           (elem_t)((double)a[i] / s[i]): one division in double, rounded once to the dtype
 *                              (ce_pfac of VW positions)
 * Optional (a map that has them defines NLLK_HAVE_H_EXP_SUM32; the kernels use the ops above otherwise, the same bits):
 * cross-entropy bf16 rows (stop 27; AVX-512's block "ce bf16 rows (stop 27)")
 *   v_h32_swap(a)              the canonical lanes regrouped as v_h_exp_sum32 holds them, and back
 *   v_h_exp_sum32(a, p, m)     the regrouped lanes a plus v_exp_ce_le0(p[k] - m) of 32 bfloat16 classes: the bits of
 *                              two whole vectors of v_acc_add (class k in lane k % 16, increasing k) */
#ifndef NLLK_KERNELS_COMMON_VEC_OPS_H
#define NLLK_KERNELS_COMMON_VEC_OPS_H

#if defined(NLLK_DTYPE_F32) == defined(NLLK_DTYPE_F64)
#    error "compile with exactly one of -DNLLK_DTYPE_F32, -DNLLK_DTYPE_F64"
#endif

#endif
