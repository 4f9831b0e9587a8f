/* score.c — see score.h. */
#define _GNU_SOURCE
#include "score.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fail.h"
#include "outfile.h"
#include "prefetch.h"
#include "progress.h"
#include "shard.h"
#include "util.h"

static nllk_acc g_acc;

void open_npy(npy_file *f, const char *path, const options *o, const char *role)
{
    char err[512];
    const int k = npyf_open(f, path, io_for(o), err, sizeof err);
    if (k != NPYF_OK)
        die(k, "%s: %s", role, err);
    f->release = !o->keep_pages;
}

static int64_t target_value(const void *t, nllk_target_type tt, uint64_t k)
{
    switch (tt) {
    case NLLK_TARGET_I64: return ((const int64_t *)t)[k];
    case NLLK_TARGET_I32: return ((const int32_t *)t)[k];
    default: return ((const uint8_t *)t)[k];
    }
}

/* The library rejected chunk [f, f + m) whose targets are t: name the offending one by flat index (the library's
 * fact) and coordinates, with its value as read in the chunk. */
static void target_error(const job *j, const void *t, uint64_t f, uint64_t m)
{
    const uint64_t flat = nllk_last_error_index();
    if (flat == NLLK_NO_INDEX || flat < f || flat - f >= m)
        die(EX_TARGET, "target %s: %s", j->tg.path, nllk_last_error());
    uint64_t rem = flat, coord[NPY_MAX_DIMS];
    for (int k = j->tg.h.ndim - 1; k >= 0; k--) {
        const uint64_t s = j->tg.h.shape[k];
        coord[k] = s ? rem % s : 0;
        rem = s ? rem / s : 0;
    }
    char cs[NPY_MAX_DIMS * 24 + 8];
    shape_str(cs, sizeof cs, j->tg.h.ndim, coord);
    die(EX_TARGET, "target %s: value %lld at flat index %llu, coordinates %s, is out of range [0, %llu) "
                   "(ignore_index %lld)",
        j->tg.path, (long long)target_value(t, j->tt, flat - f), (unsigned long long)flat, cs,
        (unsigned long long)j->c, (long long)j->o->ignore_index);
}

/* A mapped file lost pages under the run (npyf_changed): what was read is not the file. */
static void check_unchanged(const npy_file *f, const char *role)
{
    if (!npyf_changed(f))
        return;
    struct stat st;
    const long long now = fstat(f->fd, &st) == 0 ? (long long)st.st_size : -1;
    die(EX_IO, "%s %s changed while being read (now %lld bytes, %llu expected): was it truncated or rewritten?",
        role, f->path, now, (unsigned long long)f->file_size);
}

/* The chunk starting at target element f (< f1): the plan's size, and inside one sample for `sub` chunks. */
static uint64_t chunk_at(const job *j, uint64_t f, uint64_t f1)
{
    uint64_t m = f1 - f < j->chunk ? f1 - f : j->chunk;
    if (j->sub && j->d - f % j->d < m)
        m = j->d - f % j->d;
    return m;
}

/* The inputs of chunk [f, f + m): c*m values through the reader, or (sub) the sample's start in the mapping
 * (the kernel reads c strided runs of it; `runs`: bring them in first). */
static const void *input_get(job *j, uint64_t f, uint64_t m, int runs)
{
    if (!j->sub) {
        char err[512];
        const void *x = npyf_get(&j->in, f * j->c, m * j->c, err, sizeof err);
        if (!x)
            die(EX_IO, "%s", err);
        return x;
    }
    const uint64_t i = f / j->d, pos = f % j->d;
    for (uint64_t k = 0; runs && k < j->c; k++)
        npyf_populate(&j->in, (i * j->c + k) * j->d + pos, m);
    return (const unsigned char *)npyf_data(&j->in) + i * j->c * j->d * j->es;
}

static void input_put(job *j, uint64_t f, uint64_t m, int runs)
{
    if (!j->sub) {
        npyf_put(&j->in, f * j->c, m * j->c);
        return;
    }
    const uint64_t i = f / j->d, pos = f % j->d;
    for (uint64_t k = 0; runs && k < j->c; k++)
        npyf_drop(&j->in, (i * j->c + k) * j->d + pos, m);
}

/* The one chunk loop: target elements [f0, f1) into g_acc, their losses to out (NULL: none). */
static void score_chunks(const loss *L, job *j, out_file *out, void *obuf, uint64_t f0, uint64_t f1,
                         progress *pr, result *r)
{
    const options *o = j->o;
    const update_fn update = j->dtype == NPY_F32 ? L->update_f32 : L->update_f64;
    const uint64_t unit_bytes = j->c * j->es + j->ts; /* file bytes per target element */
    const int pipe = !j->sub && j->in.mode == IO_PREFETCH;
    const int big_runs = j->sub && j->chunk * j->es >= 65536; /* else c tiny runs: leave them to page faults */
    const int populate = big_runs && j->in.mode != IO_MMAP;
    prefetcher pf;
    prefetch_start(&pf, pipe);
    span last[PREFETCH_FILES] = {{&j->in, 0, 0}, {&j->tg, 0, 0}};
    char err[512];
    for (uint64_t f = f0, m; f < f1; f += m) {
        m = chunk_at(j, f, f1);
        if (pipe) {
            const uint64_t f2 = f + m, m2 = f2 < f1 ? chunk_at(j, f2, f1) : 0;
            const span cur[PREFETCH_FILES] = {{&j->in, f * j->c, m * j->c}, {&j->tg, f, m}};
            const span nxt[PREFETCH_FILES] = {{&j->in, f2 * j->c, m2 * j->c}, {&j->tg, f2, m2}};
            prefetch_step(&pf, cur, m2 ? nxt : NULL, f > f0 && !o->keep_pages ? last : NULL, PREFETCH_FILES,
                          f == f0);
            memcpy(last, cur, sizeof last);
        }
        const void *x = input_get(j, f, m, populate);
        const void *t = npyf_get(&j->tg, f, m, err, sizeof err);
        if (!t)
            die(EX_IO, "%s", err);
        const nllk_status st = update(&g_acc, x, t, (size_t)m, j->weight, out ? obuf : NULL);
        check_unchanged(&j->in, "input");
        check_unchanged(&j->tg, "target");
        if (st == NLLK_ERR_TARGET_OUT_OF_RANGE)
            target_error(j, t, f, m);
        if (st != NLLK_OK)
            die(EX_INTERNAL, "%s: accumulator update: %s", L->name, nllk_last_error());
        if (out)
            out_write(out, obuf, (size_t)m * j->es);
        input_put(j, f, m, big_runs && !o->keep_pages);
        npyf_put(&j->tg, f, m);
        r->chunks++;
        progress_update(pr, (f + m - f0) * unit_bytes);
    }
    prefetch_stop(&pf, pipe && !o->keep_pages ? last : NULL, PREFETCH_FILES);
}

/* Under MPI: every rank scored its shard into g_acc; rank 0 gathers the accumulators and merges them in rank
 * order (the canonical tree: the bits of one process), then the output's slices are synced and closed (renamed
 * by main after the report). Single process: just the output. `seconds` is this rank's time on its shard. */
static void finish_shards(result *r, out_file *out, double t0, double seconds)
{
    const int k = shard_size(), root = shard_rank() == 0;
    typedef struct {
        double seconds;
        uint64_t chunks;
    } rank_stat;
    rank_stat me = {seconds, r->chunks}, *st = NULL;
    nllk_acc *all = NULL;
    if (shard_on() && root) {
        all = malloc((size_t)k * sizeof *all);
        st = malloc((size_t)k * sizeof *st);
        r->rank_seconds = malloc((size_t)k * sizeof(double));
        if (!all || !st || !r->rank_seconds)
            die(EX_IO, "out of memory (%d accumulators)", k);
    }
    phase_check(); /* every rank scored its shard */
    if (shard_on()) {
        shard_gather_acc(&g_acc, all);
        shard_gather_bytes(&me, sizeof me, st);
        if (root) {
            r->ranks = k;
            r->chunks = 0;
            for (int j = 0; j < k; j++) {
                if (j && nllk_acc_merge(&all[0], &all[j]) != NLLK_OK)
                    die(EX_INTERNAL, "nllk_acc_merge (rank %d): %s", j, nllk_last_error());
                r->rank_seconds[j] = st[j].seconds;
                r->chunks += st[j].chunks;
            }
            memcpy(&g_acc, &all[0], sizeof g_acc);
        }
        free(all);
        free(st);
    }
    if (out)
        out_close(out);
    r->seconds = shard_on() ? now_s() - t0 : seconds;
}

static void acc_finish(result *r)
{
    if (shard_rank() != 0)
        return; /* a shard's partial accumulator: only rank 0 has the merged result */
    uint64_t count;
    if (nllk_acc_result(&g_acc, NLLK_REDUCTION_MEAN, &r->mean, &r->total_weight, &count) != NLLK_OK ||
        nllk_acc_result(&g_acc, NLLK_REDUCTION_SUM, &r->sum, NULL, &r->count) != NLLK_OK)
        die(EX_INTERNAL, "nllk_acc_result: %s", nllk_last_error());
}

void score(const loss *L, const options *o, out_file *out, result *r)
{
    job j;
    memset(&j, 0, sizeof j);
    j.o = o;
    j.in.fd = j.tg.fd = -1;
    open_npy(&j.in, o->input, o, "input");
    open_npy(&j.tg, o->target, o, "target");
    if (j.in.h.dtype != NPY_F32 && j.in.h.dtype != NPY_F64)
        die(EX_FORMAT, "input %s: dtype %s is not supported (float32 or float64)", j.in.path,
            npy_dtype_name(j.in.h.dtype));
    j.dtype = j.in.h.dtype;
    j.es = j.in.h.itemsize;
    j.ts = j.tg.h.itemsize;
    L->setup(&j);
    char err[512];
    if ((!j.sub && npyf_reserve(&j.in, (size_t)(j.chunk * j.c * j.es), err, sizeof err)) ||
        npyf_reserve(&j.tg, (size_t)(j.chunk * j.ts), err, sizeof err))
        die(EX_IO, "%s", err);

    void *obuf = NULL;
    if (o->out) {
        out_not_input(o->out, "--input", o->input);
        out_not_input(o->out, "--target", o->target);
        out_not_input(o->out, "--weight", o->weight);
        obuf = aligned_alloc(64, ((size_t)j.chunk * j.es + 64) & ~(size_t)63);
        if (!obuf)
            die(EX_IO, "out of memory (%llu-element output buffer)", (unsigned long long)j.chunk);
    }
    uint64_t u0, u1; /* this rank's units (all without MPI) */
    shard_range(j.units, &u0, &u1);
    const uint64_t f0 = u0 * j.d, f1 = u1 * j.d, unit_bytes = j.c * j.es + j.ts;
    if (o->out)
        out_open(out, o->out, j.dtype, j.tg.h.ndim, j.tg.h.shape, f0, j.es);
    phase_check();
    if (L->init(&g_acc, &j, f0) != NLLK_OK)
        die(EX_INTERNAL, "%s: accumulator init: %s", L->name, nllk_last_error());

    progress pr;
    progress_init(&pr, o->quiet ? 0 : o->progress ? 2 : 1, j.units * j.d * unit_bytes, (f1 - f0) * unit_bytes);
    const double t0 = now_s();
    r->chunks = 0;
    score_chunks(L, &j, o->out ? out : NULL, obuf, f0, f1, &pr, r);
    finish_shards(r, o->out ? out : NULL, t0, now_s() - t0);
    progress_end(&pr);
    acc_finish(r);
    r->command = L->name;
    r->reduction = o->reduction;
    r->dtype = j.dtype;
    r->chunk_elems = j.chunk;
    r->bytes = j.units * j.d * unit_bytes;
    r->out = o->out;
    free(obuf);
    free(j.weight);
    npyf_close(&j.in);
    npyf_close(&j.tg);
}
