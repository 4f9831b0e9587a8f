/* One vector map's 16-bit storage operations (the "16-bit storage" block of kernels/<dir>/vec.h), compiled per
 * (build, bf16 | f16) like kernels/common/kernels.c: over n elements, VW lanes at a time,
 *   out_load[i]    = v_h_load(h)[i] as float, out_load_n: v_h_load_n(h, m) (lanes >= m must read +0),
 *   out_store[i]   = v_h_store(f)[i], out_store_n: v_h_store_n(f, m) over a pre-filled array (lanes >= m untouched),
 *   out_gather[i]  = v_h_gather(h, offsets, bits) (lanes off the mask +0), scatter: v_h_scatter of f into a
 *                    pre-filled array, out_stream: v_h_stream of f into an aligned buffer,
 *   the pair operations where the map has them (vec_probe.h).
 * tests/test_vec.c compares every value with kernels/common/half.h's scalar conversions. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(NLLK_DTYPE_BF16) || defined(NLLK_DTYPE_F16)
#    define NLLK_DTYPE_F32 1
#    define NLLK_STORAGE_16 1
#endif
#include "vec.h"
#include "vec_probe.h"

#define NAME_(dtype, op, build) vec_##dtype##_##op##__##build
#define NAME(dtype, op, build) NAME_(dtype, op, build)

size_t NAME(NLLK_DTYPE, probe16, NLLK_BUILD)(const vec_probe16 *p)
{
    const size_t n = p->n;
    for (size_t o = 0; o < n; o += VW) {
        const size_t m = (o / VW) % VW;
        v_store(p->out_load + o, v_h_load(p->h + o));
        v_store(p->out_load_n + o, v_h_load_n(p->h + o, m));
        const vec_t f = v_load(p->f + o);
        v_h_store(p->out_store + o, f);
        v_h_store_n(p->out_store_n + o, f, m);
        const vidx_t t = v_tload_i64(p->t64 + o);
        const unsigned ok = v_tvalid(t, -1); /* every lane whose offset is not -1 */
        /* the offsets are the targets themselves (lane i reads h[t[i]]), -1 masked off */
        v_store(p->out_gather + o, v_h_gather(p->h, t, ok));
        v_h_scatter(p->scatter, t, ok, f);
        _Alignas(64) uint16_t sbuf[VW];
        v_h_stream(sbuf, f);
        v_stream_fence();
        for (size_t i = 0; i < VW; i++)
            p->out_stream[o + i] = sbuf[i];
    }
    for (size_t b = 0; b < n / 32; b++) {
        vec_t m = v_set1(-(double)INFINITY);
        for (size_t o = 0; o < 32; o += 2 * VW)
            m = v_h_max2(m, p->hm + 32 * b + o);
        float l[VW];
        v_store(l, m);
        float r = l[0];
        for (size_t i = 1; i < VW; i++)
            r = l[i] > r ? l[i] : r;
        p->out_max2[b] = r;
    }
#if defined(V_H_PAIR_EVEN_ODD)
    *p->pairs = 1;
    for (size_t o = 0; o + 2 * VW <= n; o += 2 * VW) {
        vec_t a, b, x0, x1;
        v_h_load_pair(p->h + o, &a, &b);
        v_store(p->out_pair + o, a);
        v_store(p->out_pair + o + VW, b);
        v_h_unpair(a, b, &x0, &x1);
        v_store(p->out_unpair + o, x0);
        v_store(p->out_unpair + o + VW, x1);
        v_h_pair(x0, x1, &a, &b);
        v_store(p->out_repair + o, a);
        v_store(p->out_repair + o + VW, b);
        v_h_pair(v_load(p->f + o), v_load(p->f + o + VW), &a, &b);
        v_h_store_pair(p->out_store_pair + o, a, b);
        _Alignas(64) uint16_t sbuf[2 * VW];
        v_h_stream_pair(sbuf, a, b);
        v_stream_fence();
        for (size_t i = 0; i < 2 * VW; i++)
            p->out_stream_pair[o + i] = sbuf[i];
    }
#endif
    return VW;
}
