/* perclass.c — see perclass.h. */
#define _GNU_SOURCE
#include "perclass.h"

#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "score.h"
#include "shard.h"

enum { STAGE = 1024 }; /* losses staged per class between accumulator updates */

typedef struct cls {
    nllk_acc *acc; /* NULL: the class has not occurred */
    void *stage;   /* STAGE negated losses                 */
    uint32_t n;
} cls;

struct perclass {
    const uint64_t *begin; /* under MPI: each class's first element number in this rank's shard (else NULL) */
    uint64_t c;
    npy_dtype dtype;
    size_t es;
    int64_t ignore;
    const void *weight;
    cls *k;
    uint8_t zeros[STAGE]; /* the one-class accumulators' targets: class 0 */
};

perclass *pc_new(uint64_t c, npy_dtype dtype, int64_t ignore_index, const void *weight, const uint64_t *begin)
{
    perclass *p = calloc(1, sizeof *p);
    if (!p || !(p->k = calloc(c ? (size_t)c : 1, sizeof *p->k)))
        die(EX_IO, "out of memory (--per-class, %llu classes)", (unsigned long long)c);
    p->c = c;
    p->dtype = dtype;
    p->es = npy_dtype_size(dtype);
    p->ignore = ignore_index;
    p->weight = weight;
    p->begin = begin;
    return p;
}

static nllk_dtype ldt(const perclass *p) { return loss_dtype(p->dtype); }

static void flush(perclass *p, cls *k, const void *weight)
{
    const nllk_status st = p->dtype == NPY_F32   ? nllk_nll_acc_update_f32(k->acc, k->stage, p->zeros, k->n, weight)
                           : p->dtype == NPY_F16 ? nllk_nll_acc_update_f16(k->acc, k->stage, p->zeros, k->n, weight)
                                                 : nllk_nll_acc_update_f64(k->acc, k->stage, p->zeros, k->n, weight);
    if (st != NLLK_OK)
        die(EX_INTERNAL, "--per-class: accumulator update: %s", nllk_last_error());
    k->n = 0;
}

static cls *open_class(perclass *p, uint64_t t)
{
    cls *k = &p->k[t];
    k->acc = malloc(sizeof *k->acc);
    k->stage = malloc(STAGE * p->es);
    if (!k->acc || !k->stage)
        die(EX_IO, "out of memory (--per-class, class %llu)", (unsigned long long)t);
    if (nllk_nll_acc_init(k->acc, ldt(p), NLLK_TARGET_U8, 1, 1, -100, p->begin ? p->begin[t] : 0) != NLLK_OK)
        die(EX_INTERNAL, "--per-class: accumulator init: %s", nllk_last_error());
    return k;
}

void pc_add(perclass *p, const void *losses, const void *target, nllk_target_type tt, size_t m)
{
    for (size_t i = 0; i < m; i++) {
        int64_t t;
        switch (tt) {
        case NLLK_TARGET_I64: t = ((const int64_t *)target)[i]; break;
        case NLLK_TARGET_I32: t = ((const int32_t *)target)[i]; break;
        default: t = ((const uint8_t *)target)[i]; break;
        }
        if (t == p->ignore || t < 0 || (uint64_t)t >= p->c) /* out of range: the library has refused it already */
            continue;
        cls *k = p->k[t].acc ? &p->k[t] : open_class(p, (uint64_t)t);
        if (p->dtype == NPY_F32)
            ((float *)k->stage)[k->n] = -((const float *)losses)[i];
        else if (p->dtype == NPY_F16)
            ((_Float16 *)k->stage)[k->n] = -((const _Float16 *)losses)[i];
        else
            ((double *)k->stage)[k->n] = -((const double *)losses)[i];
        if (++k->n == STAGE)
            flush(p, k, NULL);
    }
}

/* Under MPI (total: the classes' counts over all ranks): every rank's accumulator of each class that occurs
 * anywhere (an empty one where it does not occur in the rank's shard) to rank 0, merged there in rank order. */
static void gather_classes(perclass *p, const uint64_t *total)
{
    const int k = shard_size(), root = shard_rank() == 0;
    nllk_acc *all = root ? malloc((size_t)k * sizeof *all) : NULL;
    if (root && !all)
        die(EX_IO, "out of memory (--per-class, %d accumulators)", k);
    for (uint64_t t = 0; t < p->c; t++) {
        if (!total[t])
            continue;
        cls *c = p->k[t].acc ? &p->k[t] : open_class(p, t);
        if (c->n)
            flush(p, c, NULL);
        shard_gather_acc(c->acc, all);
        for (int r = 1; root && r < k; r++)
            if (nllk_acc_merge(&all[0], &all[r]) != NLLK_OK)
                die(EX_INTERNAL, "--per-class: nllk_acc_merge (class %llu, rank %d): %s", (unsigned long long)t, r,
                    nllk_last_error());
        if (root)
            memcpy(c->acc, &all[0], sizeof *c->acc);
        else { /* only rank 0 reports */
            free(c->acc);
            free(c->stage);
            c->acc = NULL;
        }
    }
    free(all);
}

class_result *pc_finish(perclass *p, uint64_t *n, const uint64_t *total)
{
    if (total)
        gather_classes(p, total);
    uint64_t used = 0;
    for (uint64_t t = 0; t < p->c; t++)
        used += p->k[t].acc != NULL;
    class_result *r = calloc(used ? (size_t)used : 1, sizeof *r);
    void *zero = calloc(STAGE, p->es); /* inputs of the total-weight accumulator: any finite value */
    nllk_acc *tw = malloc(sizeof *tw);
    if (!r || !zero || !tw)
        die(EX_IO, "out of memory (--per-class)");
    uint64_t j = 0;
    for (uint64_t t = 0; t < p->c; t++) {
        cls *k = &p->k[t];
        if (!k->acc)
            continue;
        if (k->n)
            flush(p, k, NULL);
        class_result *c = &r[j++];
        c->cls = t;
        if (nllk_acc_result(k->acc, NLLK_REDUCTION_SUM, &c->sum, &c->total_weight, &c->count) != NLLK_OK)
            die(EX_INTERNAL, "--per-class: accumulator result: %s", nllk_last_error());
        if (p->weight) { /* the canonical sum of count copies of w[k], as the one-shot call on the class sums it */
            const unsigned char *wk = (const unsigned char *)p->weight + t * p->es;
            if (nllk_nll_acc_init(tw, ldt(p), NLLK_TARGET_U8, 1, 1, -100, 0) != NLLK_OK)
                die(EX_INTERNAL, "--per-class: accumulator init: %s", nllk_last_error());
            cls z = {tw, zero, 0};
            for (uint64_t left = c->count; left;) {
                z.n = left < STAGE ? (uint32_t)left : STAGE;
                left -= z.n;
                flush(p, &z, wk);
            }
            double ignored;
            if (nllk_acc_result(tw, NLLK_REDUCTION_SUM, &ignored, &c->total_weight, NULL) != NLLK_OK)
                die(EX_INTERNAL, "--per-class: accumulator result: %s", nllk_last_error());
        }
        free(k->acc);
        free(k->stage);
    }
    free(tw);
    free(zero);
    free(p->k);
    free(p);
    *n = used;
    return r;
}
