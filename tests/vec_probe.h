/* test_vec's probe of one vector map: tests/vec_probe.c is compiled once per (build, dtype) of the ISA registry,
 * with the build's flags over its kernels/<dir>/vec.h, exactly as the kernels are, and applies every operation
 * of kernels/common/vec_ops.h to the arrays below, VW lanes at a time. tests/test_vec.c computes what each output
 * must be (plain C, the scalar map's semantics) and compares bit for bit. */
#ifndef NLLK_TESTS_VEC_PROBE_H
#define NLLK_TESTS_VEC_PROBE_H

#include <stddef.h>
#include <stdint.h>

/* Per-element outputs, each an array of n elements of the dtype in `out` (op * n + i). */
enum {
    P_ADD,
    P_SUB,
    P_MUL,
    P_DIV,
    P_NEG,
    P_EXP,
    P_LOG,
    P_SET1,    /* v_set1(d[i])                                                                   */
    P_LE,      /* v_select(v_le(a, b), 1, 0)                                                     */
    P_SELECT,  /* v_select(v_le(a, b), a, b)                                                     */
    P_MZERO,   /* v_mzero(keep bits, a)                                                          */
    P_LOAD,    /* v_store(v_load(a))                                                             */
    P_LOAD_N,  /* v_store(v_load_n(a, m)), m = (i / VW) % VW: lanes >= m must read +0            */
    P_STORE_N, /* v_store_n(v_load(a), m) over out pre-filled by the caller: lanes >= m untouched */
    P_GATHER,  /* v_gather(x + o*ks, v_toff(t, v_kofs(ks), cs), valid & ~bad) of the i64 targets  */
    P_STREAM,  /* v_stream(aligned buffer, a), v_stream_fence(), copied out                        */
    P_TSEL,    /* v_tsel(i64 targets, 3, keep bits, a)                                            */
    P_TNSEL,   /* v_tnsel(v_tnarrow(i64 targets, keep bits), 3, a)                                */
    P_EXP_CE,  /* v_exp_ce(a) (cross-entropy)                                                    */
    P_MBLEND,  /* v_mblend(keep bits, a, b)                                                      */
    P_MAX_NUM, /* v_max_num(a, b) (ce rows, stop 23)                                              */
    P_CE_EXP0, /* v_exp_ce_le0(a) where a <= 0 or NaN, else +0 (ce rows, stop 23)                */
    P_SPLIT_HI, /* v_acc_split(v_acc_load(d), &hi, &lo): hi (ce logsums, stop 25)                */
    P_SPLIT_LO, /* ... and lo                                                                    */
    P_RDIV,     /* v_acc_rdiv(a, v_acc_load(d)) (ce planes gradient, stop 26)                     */
    P_TNPICK,   /* v_tnpick(v_tnarrow(i64 targets, keep bits), 3, a, b) (N-D NLL, stop 28)         */
    P_NUM_OUT
};

typedef struct vec_probe {
    size_t n;                  /* elements, a multiple of 16                                    */
    const void *a, *b;         /* n elements each                                               */
    const double *d;           /* n doubles                                                     */
    const unsigned char *keep; /* n flags: bit i of a vector's mzero mask = keep[o + i]          */
    const int64_t *t64;        /* n targets of each type                                        */
    const int32_t *t32;
    const uint8_t *t8;
    size_t c, ks, cs; /* the targets' class count and the gather/scatter strides       */
    int64_t ign;
    const void *x;              /* gather base: (n - 1) * ks + c * cs + 1 elements                */
    void *out;                  /* P_NUM_OUT * n elements                                        */
    double *acc;                /* n doubles: v_acc_add(v_acc_load(d), a)                        */
    unsigned char *bad, *valid; /* 3 * n flags (i64, i32, u8 targets): v_tbad, v_tvalid per lane */
    void *scatter;              /* as x: v_scatter of a at the valid, in-range i64 targets       */
    double *acc_sum;            /* n doubles or NULL: v_acc_sum(v_acc_load(d), v_acc_load(acc))  */
} vec_probe;

typedef size_t (*vec_probe_fn)(const vec_probe *p);      /* runs the probe; returns VW */

/* The 16-bit storage operations' probe (tests/vec_probe16.c): n elements, a multiple of 16. */
typedef struct vec_probe16 {
    size_t n;
    const uint16_t *h;     /* n stored values (also the gather base)                                   */
    const float *f;        /* n floats to round                                                        */
    const int64_t *t64;    /* n gather/scatter offsets into h / scatter, or -1 (masked off)            */
    float *out_load, *out_load_n, *out_gather; /* n each                                               */
    uint16_t *out_store, *out_store_n, *out_stream; /* n each (out_store_n pre-filled by the caller)   */
    uint16_t *scatter;     /* n values, pre-filled; v_h_scatter of f at the offsets                    */
    const uint16_t *hm;    /* n stored values (ce rows, stop 23): out_max2[b] = the lane max (v_max_num) of
                              v_h_max2 over the 32 values hm[32*b .. 32*b + 32), from -Inf                */
    float *out_max2;       /* n / 32 values                                                            */
    /* Pairs (maps that define V_H_PAIR_EVEN_ODD set *pairs to 1; n elements each), per 2*VW elements from o:
     * out_pair: v_h_load_pair(h + o)'s a then b (the even elements, then the odd), out_unpair: v_h_unpair(a, b)'s
     * x0 then x1 (element order), out_repair: v_h_pair(x0, x1)'s a then b; out_store_pair, out_stream_pair:
     * v_h_store_pair, v_h_stream_pair of v_h_pair(f + o, f + o + VW) (element order again). */
    int *pairs;
    float *out_pair, *out_unpair, *out_repair;
    uint16_t *out_store_pair, *out_stream_pair;
} vec_probe16;
typedef size_t (*vec_probe16_fn)(const vec_probe16 *p);
typedef void (*vec_zero_fill_fn)(void *p, size_t bytes); /* v_zero_fill                  */

#endif
