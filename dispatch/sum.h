/* The canonical deterministic sum (nllk.h section 2), for one-shot calls, threads and streaming alike.
 *
 * An nllk_sum covers the element range [begin, end) and sums two channels at once (NLL: loss and weight;
 * Poisson: loss, the second channel stays 0). It folds each complete block it owns into the perfect binary
 * tree over block indices and keeps only the tree nodes not yet combined (at most two per level), so two
 * sums over adjacent ranges merge into exactly the state a single pass would have reached.
 *
 * A sum that starts inside a block cannot fold that block's lanes (the block's earlier elements belong to
 * someone else, and lane sums are sequential), so it keeps that block's values raw in `head` and replays them
 * into the left neighbour on merge. Sums that start on a block boundary (threads) never use it. */
#ifndef NLLK_DISPATCH_SUM_H
#define NLLK_DISPATCH_SUM_H

#include <stddef.h>
#include <stdint.h>

#include "nllk.h"

#define NLLK_LANES 16
#define NLLK_SUM_MAX_NODES 130 /* two open nodes per level of a 64-bit block index, plus slack */

typedef struct nllk_sum_node {
    uint64_t index;  /* the node covers blocks [index << level, (index + 1) << level) */
    uint32_t level;
    double v[2];
} nllk_sum_node;

typedef struct nllk_sum {
    uint64_t begin, end;
    uint32_t nnodes;
    double lanes[2 * NLLK_LANES];  /* channel c, lane k at [c*16 + k]: the open block of `end`   */
    nllk_sum_node node[NLLK_SUM_MAX_NODES];
} nllk_sum;

/* The raw values of [begin, next block boundary) of a sum whose begin is inside a block. Kept apart from
 * nllk_sum (64 KiB) so that block-aligned sums — one-shot calls, threads — stay small enough for any stack;
 * functions take it as `head`, which may be NULL when begin is on a block boundary. */
typedef struct nllk_sum_head {
    double v[2][NLLK_BLOCK];
} nllk_sum_head;

/* A run of elements: adds element k (k counted from the run's element `off`) to lanes[k % 16] (channel 0)
 * and lanes[16 + k % 16] (channel 1); returns n, or the k < n of an element that failed (nothing after it is
 * processed). */
typedef size_t (*nllk_sum_run_fn)(void *ctx, size_t off, size_t n, double *lanes);

void nllk_sum_init(nllk_sum *s, uint64_t begin);

/* Lane rotation for a run that starts r elements into a group of 16: dst[q] = src[(r + q) % 16] per channel,
 * and back. A run function that splits its run further uses these for the later pieces. */
void nllk_lanes_rotate(double *dst, const double *src, unsigned r);
void nllk_lanes_unrotate(double *dst, const double *src, unsigned r);

/* Feeds the next n elements (global indices end .. end+n-1) through run(ctx, off, len, lanes) over pieces
 * that never cross a block boundary. Returns n, or the offset of the element that failed (then the sum is
 * left in an unspecified state). */
size_t nllk_sum_feed(nllk_sum *s, nllk_sum_head *head, size_t n, nllk_sum_run_fn run, void *ctx);

/* Appends `right` (right->begin == left->end) to `left`: the state a single pass over both would reach. */
void nllk_sum_merge(nllk_sum *left, nllk_sum_head *left_head, const nllk_sum *right,
                    const nllk_sum_head *right_head);

/* The totals of both channels. For a sum that begins at 0 these are the canonical tree's values. */
void nllk_sum_total(const nllk_sum *s, const nllk_sum_head *head, double total[2]);

/* How many raw values `head` holds: those of elements [begin, begin + len). */
uint64_t nllk_sum_head_len(const nllk_sum *s);

/* NULL if s is a state that init, feed and merge can reach for its range [begin, end): begin <= end, its open
 * nodes exactly the range's, the lanes clear when no block is open; else what is wrong. Values are not checked.
 * Reads only s->node[0 .. min(nnodes, NLLK_SUM_MAX_NODES)), so any bytes may be checked. */
const char *nllk_sum_check(const nllk_sum *s);

#endif
