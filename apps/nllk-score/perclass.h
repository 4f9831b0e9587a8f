/* perclass.h — --per-class: the loss sum, total weight and count of each class of class-index targets.
 *
 * Definition (exact, and checkable with the library alone): class k's sum and total weight are the bits of the
 * library's one-shot reduction='sum' call on the sub-dataset of class k — the elements (samples, positions)
 * whose target is k and not ignore_index, taken in flat-index order, each with its own input row and the same
 * weights and options. That is: the per-element losses of those elements (the --out values, from
 * nllk_*_acc_update_out_*) summed by the canonical tree over their rank in the class (element m of class k is
 * the m-th element of class k), and the canonical sum of w[k] over them. Ignored elements belong to no class.
 * float16 input: the per-element losses are the --out values, which are rounded to float16, so class k's sum is
 * the canonical sum of those rounded losses; the one-shot float16 call sums the unrounded float losses and may
 * differ from it (by up to half a float16 ulp of each loss). For float32 and float64 the two are the same.
 *
 * How: each class that occurs gets an NLL accumulator of one class (c = d = 1, no weight) fed the negated
 * per-element losses of its elements (the accumulator's per-element value is then -(-loss) = loss, exactly, and
 * it sums them in the canonical tree over the class's own element numbers); the total weight is the canonical
 * sum of count copies of w[k] made at the end by the same kind of accumulator with weight {w[k]}. So the sums are
 * the library's, not a second implementation of its tree. Memory: about 80 KiB per class that occurs. */
#ifndef NLLK_SCORE_PERCLASS_H
#define NLLK_SCORE_PERCLASS_H

#include <stddef.h>
#include <stdint.h>

#include <nllk.h>

#include "npy.h"

typedef struct class_result {
    uint64_t cls, count;
    double sum, total_weight;
} class_result;

typedef struct perclass perclass;

/* c classes, losses of dtype (NPY_F32/NPY_F64), weight: c values of that dtype or NULL. begin: NULL, or under
 * MPI each class's element count in the ranks before this one (its accumulators start there). */
perclass *pc_new(uint64_t c, npy_dtype dtype, int64_t ignore_index, const void *weight, const uint64_t *begin);

/* The next m elements: their losses (the accumulator's out) and targets. */
void pc_add(perclass *p, const void *losses, const void *target, nllk_target_type tt, size_t m);

/* The classes that occurred, in class order (malloc'ed, *n of them); frees p. Under MPI (total: each class's
 * count over all ranks, NULL otherwise) collective: the ranks' accumulators are merged on rank 0 in rank order
 * (the one-process bits), which alone gets the result (the others get *n = 0). */
class_result *pc_finish(perclass *p, uint64_t *n, const uint64_t *total);

#endif
