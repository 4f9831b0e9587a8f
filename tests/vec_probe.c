/* One vector map's probe (tests/vec_probe.h), compiled per (build, dtype) like kernels/common/kernels.c. */
#include <stddef.h>
#include <stdint.h>

#include "vec.h"
#include "vec_probe.h"

#define NAME_(dtype, op, build) vec_##dtype##_##op##__##build
#define NAME(dtype, op, build) NAME_(dtype, op, build)

size_t NAME(NLLK_DTYPE, probe, NLLK_BUILD)(const vec_probe *p)
{
    const elem_t *a = p->a, *b = p->b, *x = p->x;
    elem_t *out = p->out, *scat = p->scatter;
    const size_t n = p->n;
    const vidx_t kofs = v_kofs(p->ks);
    for (size_t o = 0; o < n; o += VW) {
        const vec_t va = v_load(a + o), vb = v_load(b + o);
        elem_t *res[P_NUM_OUT];
        for (int k = 0; k < P_NUM_OUT; k++)
            res[k] = out + (size_t)k * n + o;
        v_store(res[P_ADD], v_add(va, vb));
        v_store(res[P_SUB], v_sub(va, vb));
        v_store(res[P_MUL], v_mul(va, vb));
        v_store(res[P_DIV], v_div(va, vb));
        v_store(res[P_NEG], v_neg(va));
        v_store(res[P_EXP], v_exp(va));
        v_store(res[P_LOG], v_log(va));
        elem_t d[VW];
        for (size_t i = 0; i < VW; i++) {
            v_store(d, v_set1(p->d[o + i]));
            res[P_SET1][i] = d[i];
        }
        v_store(res[P_LE], v_select(v_le(va, vb), v_set1(1.0), v_set1(0.0)));
        v_store(res[P_SELECT], v_select(v_le(va, vb), va, vb));
        unsigned keep = 0;
        for (size_t i = 0; i < VW; i++)
            keep |= (unsigned)p->keep[o + i] << i;
        v_store(res[P_MZERO], v_mzero(keep, va));
        v_store(res[P_MBLEND], v_mblend(keep, va, vb));
        v_store(res[P_LOAD], va);
        const size_t m = (o / VW) % VW;
        v_store(res[P_LOAD_N], v_load_n(a + o, m));
        v_store_n(res[P_STORE_N], va, m);
        v_acc_store(p->acc + o, v_acc_add(v_acc_load(p->d + o), va));
        {
            vec_t hi, lo;
            v_acc_split(v_acc_load(p->d + o), &hi, &lo);
            v_store(res[P_SPLIT_HI], hi);
            v_store(res[P_SPLIT_LO], lo);
            v_store(res[P_RDIV], v_acc_rdiv(va, v_acc_load(p->d + o)));
        }
        if (p->acc_sum) /* ce planes (stop 23): two sum lanes combined */
            v_acc_store(p->acc_sum + o, v_acc_sum(v_acc_load(p->d + o), v_acc_load(p->acc + o)));

        const vidx_t t[3] = {v_tload_i64(p->t64 + o), v_tload_i32(p->t32 + o), v_tload_u8(p->t8 + o)};
        for (int tt = 0; tt < 3; tt++) {
            const unsigned bad = v_tbad(t[tt], p->c, p->ign), valid = v_tvalid(t[tt], p->ign);
            for (size_t i = 0; i < VW; i++) {
                p->bad[(size_t)tt * n + o + i] = (bad >> i) & 1;
                p->valid[(size_t)tt * n + o + i] = (valid >> i) & 1;
            }
        }
        const unsigned ok = v_tvalid(t[0], p->ign) & ~v_tbad(t[0], p->c, p->ign);
        const vidx_t off = v_toff(t[0], kofs, p->cs);
        v_store(res[P_GATHER], v_gather(x + o * p->ks, off, ok));
        v_scatter(scat + o * p->ks, off, ok, va);
        _Alignas(64) elem_t sbuf[VW];
        v_store(res[P_TSEL], v_tsel(t[0], 3, keep, va));
        v_store(res[P_TNSEL], v_tnsel(v_tnarrow(t[0], keep), 3, va));
        v_store(res[P_TNPICK], v_tnpick(v_tnarrow(t[0], keep), 3, va, vb));
        v_store(res[P_EXP_CE], v_exp_ce(va));
        v_store(res[P_MAX_NUM], v_max_num(va, vb));
        v_store(res[P_CE_EXP0], v_select(v_le(va, v_set1(0.0)), v_exp_ce_le0(va), v_set1(0.0)));
        {
            elem_t ai[VW], e[VW];
            v_store(ai, va);
            v_store(e, v_exp_ce_le0(va));
            for (size_t i = 0; i < VW; i++)
                if (ai[i] != ai[i])
                    res[P_CE_EXP0][i] = e[i]; /* NaN arguments too */
        }
        v_stream(sbuf, va);
        v_stream_fence();
        for (size_t i = 0; i < VW; i++)
            res[P_STREAM][i] = sbuf[i];
    }
    return VW;
}

void NAME(NLLK_DTYPE, zero_fill, NLLK_BUILD)(void *p, size_t bytes) { v_zero_fill(p, bytes); }
