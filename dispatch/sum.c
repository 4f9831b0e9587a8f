#include "sum.h"

#include <math.h>
#include <string.h>

static uint64_t block_of(uint64_t i) { return i / NLLK_BLOCK; }
static int on_boundary(uint64_t i) { return i % NLLK_BLOCK == 0; }

/* True while `end` is still inside the block that `begin` starts in the middle of. */
static int in_head(const nllk_sum *s)
{
    return !on_boundary(s->begin) && block_of(s->end) == block_of(s->begin);
}

/* The end of the raw head: the first block boundary after begin, or end if that comes first. */
static uint64_t head_end(const nllk_sum *s)
{
    if (on_boundary(s->begin))
        return s->begin;
    const uint64_t boundary = (block_of(s->begin) + 1) * NLLK_BLOCK;
    return boundary < s->end ? boundary : s->end;
}

void nllk_sum_init(nllk_sum *s, uint64_t begin)
{
    s->begin = s->end = begin;
    s->nnodes = 0;
    memset(s->lanes, 0, sizeof s->lanes);
}

void nllk_lanes_rotate(double *dst, const double *src, unsigned r)
{
    for (unsigned q = 0; q < NLLK_LANES; q++) {
        dst[q] = src[(r + q) % NLLK_LANES];
        dst[NLLK_LANES + q] = src[NLLK_LANES + (r + q) % NLLK_LANES];
    }
}

void nllk_lanes_unrotate(double *dst, const double *src, unsigned r)
{
    for (unsigned q = 0; q < NLLK_LANES; q++) {
        dst[(r + q) % NLLK_LANES] = src[q];
        dst[NLLK_LANES + (r + q) % NLLK_LANES] = src[NLLK_LANES + q];
    }
}

/* The lane fold of nllk.h section 2: s[k] += s[k+8], +4, +2, +1. */
static double fold_lanes(double *lane)
{
    for (int half = NLLK_LANES / 2; half >= 1; half /= 2)
        for (int k = 0; k < half; k++)
            lane[k] += lane[k + half];
    return lane[0];
}

/* Pushes a complete node, combining it with its left sibling while that is the newest open node. */
static void push_node(nllk_sum *s, nllk_sum_node nd)
{
    while (s->nnodes > 0 && (nd.index & 1)) {
        const nllk_sum_node *top = &s->node[s->nnodes - 1];
        if (top->level != nd.level || top->index != nd.index - 1)
            break;
        nd.v[0] = top->v[0] + nd.v[0];
        nd.v[1] = top->v[1] + nd.v[1];
        nd.index >>= 1;
        nd.level++;
        s->nnodes--;
    }
    s->node[s->nnodes++] = nd;
}

/* Called when end has just reached a block boundary and the block before it was folded in lanes. */
static void close_block(nllk_sum *s)
{
    nllk_sum_node nd = {.index = block_of(s->end) - 1, .level = 0};
    nd.v[0] = fold_lanes(s->lanes);
    nd.v[1] = fold_lanes(s->lanes + NLLK_LANES);
    push_node(s, nd);
    memset(s->lanes, 0, sizeof s->lanes);
}

/* Appends one already computed element value at position end. */
static void add_value(nllk_sum *s, nllk_sum_head *head, double v0, double v1)
{
    const int was_head = in_head(s);
    if (was_head) {
        head->v[0][s->end - s->begin] = v0;
        head->v[1][s->end - s->begin] = v1;
    } else {
        const unsigned lane = (unsigned)(s->end % NLLK_LANES);
        s->lanes[lane] += v0;
        s->lanes[NLLK_LANES + lane] += v1;
    }
    s->end++;
    if (on_boundary(s->end) && !was_head)
        close_block(s);
}

size_t nllk_sum_feed(nllk_sum *s, nllk_sum_head *head, size_t n, nllk_sum_run_fn run, void *ctx)
{
    size_t off = 0;
    while (off < n && in_head(s)) {  /* the raw head, one element at a time (at most one block per sum) */
        double one[2 * NLLK_LANES] = {0};
        if (run(ctx, off, 1, one) != 1)
            return off;
        add_value(s, head, one[0], one[NLLK_LANES]);
        off++;
    }
    while (off < n) {
        const size_t room = NLLK_BLOCK - (size_t)(s->end % NLLK_BLOCK);
        const size_t len = n - off < room ? n - off : room;
        const unsigned r = (unsigned)(s->end % NLLK_LANES);
        size_t done;
        if (r == 0) {
            done = run(ctx, off, len, s->lanes);
        } else {  /* rotate so that the run's element 0 lands in lane r */
            double rot[2 * NLLK_LANES];
            nllk_lanes_rotate(rot, s->lanes, r);
            done = run(ctx, off, len, rot);
            nllk_lanes_unrotate(s->lanes, rot, r);
        }
        if (done != len)
            return off + done;
        s->end += len;
        off += len;
        if (on_boundary(s->end))
            close_block(s);
    }
    return n;
}

void nllk_sum_merge(nllk_sum *left, nllk_sum_head *left_head, const nllk_sum *right,
                    const nllk_sum_head *right_head)
{
    /* 1. the right sum's raw head continues the left sum's open block */
    const uint64_t hend = head_end(right);
    for (uint64_t i = right->begin; i < hend; i++)
        add_value(left, left_head, right_head->v[0][i - right->begin], right_head->v[1][i - right->begin]);
    if (hend == right->end)
        return;
    /* 2. its closed nodes, in order; 3. its open block */
    for (uint32_t k = 0; k < right->nnodes; k++)
        push_node(left, right->node[k]);
    memcpy(left->lanes, right->lanes, sizeof left->lanes);
    left->end = right->end;
}

void nllk_sum_total(const nllk_sum *s, const nllk_sum_head *head, double total[2])
{
    /* The open block (if any) is the last, partial leaf; the open nodes then fold right to left, which is
     * the perfect tree's value when a node whose right part is missing is just its left part. */
    double acc[2] = {0.0, 0.0};
    int have = 0;
    if (!in_head(s) && !on_boundary(s->end)) {
        double lanes[2 * NLLK_LANES];
        memcpy(lanes, s->lanes, sizeof lanes);
        acc[0] = fold_lanes(lanes);
        acc[1] = fold_lanes(lanes + NLLK_LANES);
        have = 1;
    }
    for (uint32_t k = s->nnodes; k-- > 0;) {
        acc[0] = have ? s->node[k].v[0] + acc[0] : s->node[k].v[0];
        acc[1] = have ? s->node[k].v[1] + acc[1] : s->node[k].v[1];
        have = 1;
    }
    if (!on_boundary(s->begin)) {  /* a partial range's raw head, summed as its own leftmost leaf */
        double lanes[2 * NLLK_LANES] = {0};
        for (uint64_t i = s->begin; i < head_end(s); i++) {
            lanes[i % NLLK_LANES] += head->v[0][i - s->begin];
            lanes[NLLK_LANES + i % NLLK_LANES] += head->v[1][i - s->begin];
        }
        const double h0 = fold_lanes(lanes), h1 = fold_lanes(lanes + NLLK_LANES);
        acc[0] = have ? h0 + acc[0] : h0;
        acc[1] = have ? h1 + acc[1] : h1;
    }
    total[0] = acc[0];
    total[1] = acc[1];
}

uint64_t nllk_sum_head_len(const nllk_sum *s) { return head_end(s) - s->begin; }

/* The first open node of the complete blocks [lo, hi): the largest aligned power-of-two run starting at lo. */
static unsigned first_level(uint64_t lo, uint64_t hi)
{
    const unsigned align = lo ? (unsigned)__builtin_ctzll(lo) : 63;
    const unsigned fit = 63 - (unsigned)__builtin_clzll(hi - lo); /* floor(log2(hi - lo)), hi > lo */
    return align < fit ? align : fit;
}

const char *nllk_sum_check(const nllk_sum *s)
{
    if (s->end < s->begin)
        return "end < begin";
    if (s->nnodes > NLLK_SUM_MAX_NODES)
        return "more open nodes than the state holds";
    /* The complete blocks folded into nodes are those from the first boundary at or after begin to end's block;
     * feeding them left to right leaves exactly their split into maximal aligned power-of-two runs. */
    const uint64_t hi = block_of(s->end);
    uint32_t k = 0;
    for (uint64_t lo = block_of(s->begin) + !on_boundary(s->begin); lo < hi; k++) {
        const unsigned level = first_level(lo, hi);
        if (k == s->nnodes)
            return "fewer open nodes than the range has";
        if (s->node[k].level != level || s->node[k].index != lo >> level)
            return "an open node is not the range's";
        lo += (uint64_t)1 << level;
    }
    if (k != s->nnodes)
        return "more open nodes than the range has";
    if (in_head(s) || on_boundary(s->end))  /* no open block: its lanes are cleared */
        for (int i = 0; i < 2 * NLLK_LANES; i++)
            if (s->lanes[i] != 0.0 || signbit(s->lanes[i]))
                return "lanes hold values but no block is open";
    return NULL;
}
