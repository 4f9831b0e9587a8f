/* score.h — one chunk loop for every loss: a loss is a descriptor (how to check its files and plan its chunks,
 * how to start and update its accumulator); score() streams the files through it chunk by chunk.
 *
 * The geometry every loss is described in: there are `units * d` target elements (the output's elements), in
 * `units` units that shards split (Poisson: elements, d = 1; NLL, CE: samples of d positions), and each target
 * element has c input values (Poisson: c = 1; NLL, CE: one per class, c*d per sample, class-major) and tc target
 * values (1; CE --probs: c, laid out as the input). A chunk is a run of target elements: whole units, or (`sub`) a
 * run of positions inside one sample. */
#ifndef NLLK_SCORE_SCORE_H
#define NLLK_SCORE_SCORE_H

#include <nllk.h>

#include "cli.h"
#include "npyfile.h"
#include "outfile.h"
#include "perclass.h"
#include "report.h"
#include "source.h"

typedef struct job {
    const options *o;
    source in, tg;         /* input and target: their parts, concatenated (source.h)      */
    npy_dtype dtype;       /* the input's, which is the output's                          */
    size_t es, ts;         /* input and target item sizes (the target's in its files)     */
    uint64_t units, c, d;  /* see above                                                   */
    uint64_t tc;           /* target values per target element: 1, or c (ce --probs: the
                              target has the input's layout and is read like it)          */
    int ondim;             /* the output's shape (--out): the target's, unless setup sets */
    uint64_t oshape[NPY_MAX_DIMS]; /* it (ondim >= 0)                                     */
    uint64_t chunk;        /* target elements per chunk                                   */
    int sub;               /* chunks are runs inside one sample (chunk < d)               */
    nllk_target_type tt;   /* NLL: the target's type                                      */
    void *weight;          /* NLL: c class weights in the input's dtype, or NULL          */
    int convert;           /* Poisson integer targets: converted to the input's dtype ...  */
    void *tconv;           /* ... a chunk at a time, here                                 */
    perclass *pc;          /* --per-class, or NULL                                        */
    int warned;            /* warnings given (bits, per loss)                             */
} job;

/* The accumulator update of one chunk: n target elements, their inputs x, and (out not NULL) their losses. */
typedef nllk_status (*update_fn)(nllk_acc *acc, const void *x, const void *t, size_t n, const void *weight,
                                 void *out);

typedef struct loss {
    const char *name;
    /* checks the opened files, sets the geometry, the chunk plan and the weight; errors end the program */
    void (*setup)(job *j);
    nllk_status (*init)(nllk_acc *acc, const job *j, uint64_t begin);
    update_fn update_f32, update_f64;
    /* optional: looks at chunk [f, f + m) before its update (warnings) and returns the targets to pass (t, or
     * Poisson's integer targets converted); errors end the program */
    const void *(*prepare)(job *j, const void *x, const void *t, uint64_t f, uint64_t m);
    update_fn update_f16; /* float16 ('<f2') inputs */
} loss;

/* The update of input dtype t (float32, float64, float16). */
static inline update_fn loss_update(const loss *L, npy_dtype t)
{
    return t == NPY_F32 ? L->update_f32 : t == NPY_F64 ? L->update_f64 : L->update_f16;
}

/* The library's nllk_dtype of input dtype t. float16 is 16-bit storage: float math, double sums; the accumulators'
 * results (what nllk-score reports) are the double values, the per-element losses (--out) float16. */
static inline nllk_dtype loss_dtype(npy_dtype t) { return t == NPY_F32 ? NLLK_F32 : t == NPY_F64 ? NLLK_F64 : NLLK_F16; }

/* Element k of an array of float dtype t (float32, float64, float16), as a double (exactly). */
static inline double elem_value(npy_dtype t, const void *p, uint64_t k)
{
    return t == NPY_F32 ? (double)((const float *)p)[k]
         : t == NPY_F64 ? ((const double *)p)[k] : (double)((const _Float16 *)p)[k];
}

extern const loss loss_poisson, loss_nll, loss_ce, loss_ce_probs;

/* Scores o's files with loss L into r (under MPI: this rank's shard, merged on rank 0); with --out, the losses
 * into out, synced and closed but not yet renamed (out_commit). */
void score(const loss *L, const options *o, out_file *out, result *r);

/* Opens one of o's files for chunked reading (errors end the program). */
void open_npy(npy_file *f, const char *path, const options *o, const char *role);

/* Element flat of source s, for messages: returns its part's name and writes "flat index I, coordinates (..)"
 * (in the part; and the concatenation's flat index when there are several parts) to buf. */
const char *where_str(char *buf, size_t cap, const source *s, uint64_t flat);

#endif
