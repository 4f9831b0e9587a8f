/* score.c — see score.h. */
#define _GNU_SOURCE
#include "score.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fail.h"
#include "outfile.h"
#include "prefetch.h"
#include "progress.h"
#include "shard.h"
#include "source.h"
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

const char *where_str(char *buf, size_t cap, const source *s, uint64_t flat)
{
    uint64_t local;
    const char *name = src_name(s, flat, &local);
    const npy_header *h = &s->parts[0].h;
    uint64_t rem = local, coord[NPY_MAX_DIMS];
    for (int k = h->ndim - 1; k >= 0; k--) {
        const uint64_t sz = k ? h->shape[k] : UINT64_MAX; /* the first dimension: the part's own */
        coord[k] = sz ? rem % sz : 0;
        rem = sz ? rem / sz : 0;
    }
    char cs[NPY_MAX_DIMS * 24 + 8];
    shape_str(cs, sizeof cs, h->ndim, coord);
    if (s->n > 1)
        snprintf(buf, cap, "flat index %llu, coordinates %s (flat index %llu of the %d parts' concatenation)",
                 (unsigned long long)local, cs, (unsigned long long)flat, s->n);
    else
        snprintf(buf, cap, "flat index %llu, coordinates %s", (unsigned long long)local, cs);
    return name;
}

/* The library rejected chunk [f, f + m) whose targets are t: name the offending one by flat index (the library's
 * fact) and coordinates, with its value as read in the chunk. */
static void target_error(const job *j, const void *t, uint64_t f, uint64_t m)
{
    const uint64_t flat = nllk_last_error_index();
    if (flat == NLLK_NO_INDEX || flat < f || flat - f >= m)
        die(EX_TARGET, "target %s: %s", src_name(&j->tg, f, NULL), nllk_last_error());
    const long long v = (long long)target_value(t, j->tt, flat - f);
    char w[1024];
    const char *name = where_str(w, sizeof w, &j->tg, flat);
    if ((v == 255 || v == -1) && v != j->o->ignore_index)
        warn("target value %lld is out of range [0, %llu): if it marks pixels or samples to skip, add "
             "--ignore-index %lld", v, (unsigned long long)j->c, v);
    die(EX_TARGET, "target %s: value %lld at %s, is out of range [0, %llu) (ignore_index %lld)", name, v, w,
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

/* The end of the parts (input's and target's) that hold target element f: no chunk crosses it. */
static uint64_t parts_end(const job *j, uint64_t f)
{
    uint64_t e = src_part_end(&j->tg, f * j->tc) / j->tc;
    if (j->c) {
        const uint64_t ei = src_part_end(&j->in, f * j->c) / j->c;
        if (ei < e)
            e = ei;
    }
    return e;
}

/* The chunk starting at target element f (< f1): the plan's size, inside one part of each file, and inside one
 * sample for `sub` chunks. */
static uint64_t chunk_at(const job *j, uint64_t f, uint64_t f1)
{
    uint64_t m = f1 - f < j->chunk ? f1 - f : j->chunk;
    if (j->sub && j->d - f % j->d < m)
        m = j->d - f % j->d;
    const uint64_t e = parts_end(j, f);
    if (e - f < m)
        m = e - f;
    return m;
}

/* The inputs of chunk [f, f + m): c*m values through the reader, or (sub) the sample's start in the mapping
 * (the kernel reads c strided runs of it; `runs`: bring them in first). */
/* The values of chunk [f, f + m) in source s that has k values per target element (the input: c; the target: tc):
 * k*m values through the reader, or (sub chunks, k > 1) the sample's start in the part's mapping (the kernel
 * reads k strided runs of it; `runs`: bring them in first). */
static const void *plane_get(job *j, source *s, uint64_t k, uint64_t f, uint64_t m, int runs)
{
    if (!j->sub || k == 1)
        return src_get(s, f * k, m * k);
    const uint64_t i = f / j->d, pos = f % j->d;
    uint64_t local;
    npy_file *pf = src_part(s, i * k * j->d, &local);
    for (uint64_t q = 0; runs && q < k; q++)
        npyf_populate(pf, local + q * j->d + pos, m);
    return (const unsigned char *)npyf_data(pf) + local * s->h.itemsize;
}

static void plane_put(job *j, source *s, uint64_t k, uint64_t f, uint64_t m, int runs)
{
    if (!j->sub || k == 1) {
        src_put(s, f * k, m * k);
        return;
    }
    const uint64_t i = f / j->d, pos = f % j->d;
    uint64_t local;
    npy_file *pf = src_part(s, i * k * j->d, &local);
    for (uint64_t q = 0; runs && q < k; q++)
        npyf_drop(pf, local + q * j->d + pos, m);
}

/* The one chunk loop: target elements [f0, f1) into g_acc, their losses to out (NULL: none). */
static void score_chunks(const loss *L, job *j, out_file *out, void *obuf, uint64_t f0, uint64_t f1,
                         progress *pr, result *r)
{
    const options *o = j->o;
    const update_fn update = loss_update(L, j->dtype);
    const uint64_t unit_bytes = j->c * j->es + j->tc * j->ts; /* file bytes per target element */
    const int pipe = !j->sub && j->in.mode == IO_PREFETCH;
    const int big_runs = j->sub && j->chunk * j->es >= 65536; /* else c tiny runs: leave them to page faults */
    const int populate = big_runs && j->in.mode != IO_MMAP;
    const int losses = out || j->pc;
    prefetcher pf;
    prefetch_start(&pf, pipe);
    span last[PREFETCH_FILES];
    int first = 1; /* the first chunk of this pair of parts */
    for (uint64_t f = f0, m; f < f1; f += m) {
        m = chunk_at(j, f, f1);
        if (pipe) {
            if (src_switching(&j->in, f * j->c) || src_switching(&j->tg, f * j->tc)) {
                /* the helper must not touch a part being closed: stop it, open the new parts, start it again */
                if (f > f0) {
                    prefetch_stop(&pf, o->keep_pages ? NULL : last, PREFETCH_FILES);
                    prefetch_start(&pf, 1);
                }
                uint64_t l;
                src_part(&j->in, f * j->c, &l);
                src_part(&j->tg, f * j->tc, &l);
                first = 1;
            }
            const uint64_t fi = f * j->tc - j->tg.parts[j->tg.cur].first, xi = f * j->c - j->in.parts[j->in.cur].first;
            const uint64_t f2 = f + m, m2 = f2 < f1 && f2 < parts_end(j, f) ? chunk_at(j, f2, f1) : 0;
            const span cur[PREFETCH_FILES] = {{&j->in.f, xi, m * j->c}, {&j->tg.f, fi, m * j->tc}};
            const span nxt[PREFETCH_FILES] = {{&j->in.f, xi + m * j->c, m2 * j->c},
                                              {&j->tg.f, fi + m * j->tc, m2 * j->tc}};
            prefetch_step(&pf, cur, m2 ? nxt : NULL, !first && !o->keep_pages ? last : NULL, PREFETCH_FILES,
                          first);
            memcpy(last, cur, sizeof last);
            first = 0;
        }
        const void *x = plane_get(j, &j->in, j->c, f, m, populate);
        const void *t = plane_get(j, &j->tg, j->tc, f, m, populate);
        const void *tl = L->prepare ? L->prepare(j, x, t, f, m) : t;
        const nllk_status st = update(&g_acc, x, tl, (size_t)m, j->weight, losses ? obuf : NULL);
        check_unchanged(&j->in.f, "input");
        check_unchanged(&j->tg.f, "target");
        if (st == NLLK_ERR_TARGET_OUT_OF_RANGE)
            target_error(j, t, f, m);
        if (st != NLLK_OK)
            die(EX_INTERNAL, "%s: accumulator update: %s", L->name, nllk_last_error());
        if (out)
            out_write(out, obuf, (size_t)m * j->es);
        if (j->pc)
            pc_add(j->pc, obuf, t, j->tt, (size_t)m);
        plane_put(j, &j->in, j->c, f, m, big_runs && !o->keep_pages);
        plane_put(j, &j->tg, j->tc, f, m, big_runs && !o->keep_pages);
        r->chunks++;
        progress_update(pr, (f + m - f0) * unit_bytes);
    }
    prefetch_stop(&pf, pipe && !o->keep_pages && !first ? last : NULL, PREFETCH_FILES);
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

/* --per-class under MPI: counts this rank's targets [f0, f1) per class and exchanges the counts: *begin = each
 * class's count in the ranks before this one, *total = over all ranks (malloc'ed). Collective. */
static void class_counts(job *j, uint64_t f0, uint64_t f1, uint64_t **begin, uint64_t **total)
{
    const uint64_t c = j->c;
    const int k = shard_size(), me = shard_rank();
    if (c > (uint64_t)INT32_MAX / 8 / (uint64_t)k)
        die(EX_USAGE, "--per-class under MPI: %llu classes x %d ranks is too many", (unsigned long long)c, k);
    uint64_t *mine = calloc(c ? (size_t)c : 1, sizeof *mine), *all = calloc((size_t)k * (c ? c : 1), sizeof *all);
    *begin = calloc(c ? (size_t)c : 1, sizeof **begin);
    *total = calloc(c ? (size_t)c : 1, sizeof **total);
    if (!mine || !all || !*begin || !*total)
        die(EX_IO, "out of memory (--per-class counts, %llu classes x %d ranks)", (unsigned long long)c, k);
    for (uint64_t f = f0, m; f < f1; f += m) {
        m = f1 - f < j->chunk ? f1 - f : j->chunk;
        const uint64_t e = src_part_end(&j->tg, f);
        if (e - f < m)
            m = e - f;
        const void *t = src_get(&j->tg, f, m);
        for (uint64_t q = 0; q < m; q++) {
            const int64_t v = target_value(t, j->tt, q);
            if (v != j->o->ignore_index && v >= 0 && (uint64_t)v < c)
                mine[v]++;
        }
        src_put(&j->tg, f, m);
    }
    phase_check(); /* every rank counted its targets */
    shard_gather_bytes(mine, (size_t)c * sizeof *mine, all);
    shard_bcast(all, (size_t)k * (size_t)c * sizeof *all);
    for (int r = 0; r < k; r++)
        for (uint64_t q = 0; q < c; q++) {
            if (r < me)
                (*begin)[q] += all[(size_t)r * c + q];
            (*total)[q] += all[(size_t)r * c + q];
        }
    free(mine);
    free(all);
}

/* Refuses an output that is one of the parts of a source (an .npz member: its archive). */
static void out_not_parts(const char *out, const char *role, const source *s)
{
    for (int k = 0; k < s->n; k++) {
        const char *spec = s->parts[k].spec;
        const size_t alen = npyf_member_split(spec);
        char *file = alen ? strndup(spec, alen) : NULL;
        out_not_input(out, role, file ? file : spec);
        free(file);
    }
}

void score(const loss *L, const options *o, out_file *out, result *r)
{
    job j;
    memset(&j, 0, sizeof j);
    j.o = o;
    warnings_off(o->no_warn);
    src_open(&j.in, o->inputs.v, o->inputs.n, io_for(o), !o->keep_pages, "input");
    src_open(&j.tg, o->targets.v, o->targets.n, io_for(o), !o->keep_pages, "target");
    if (j.in.h.dtype != NPY_F32 && j.in.h.dtype != NPY_F64 && j.in.h.dtype != NPY_F16)
        die(EX_FORMAT, "input %s: dtype %s is not supported (float32, float64 or float16)", j.in.parts[0].spec,
            npy_dtype_name(j.in.h.dtype));
    j.dtype = j.in.h.dtype;
    j.es = j.in.h.itemsize;
    j.ts = j.tg.h.itemsize;
    j.tc = 1;
    j.ondim = -1;
    L->setup(&j);
    if (j.ondim < 0) {
        j.ondim = j.tg.h.ndim;
        memcpy(j.oshape, j.tg.h.shape, sizeof j.oshape);
    }
    if (j.sub && j.tc > 1 && j.tg.misaligned)
        die(EX_FORMAT, "target %s: an .npz member whose data is not aligned cannot be read in place, and one of its "
                       "samples is larger than a chunk: extract it with numpy.save, or give a larger --chunk-bytes",
            j.tg.parts[0].spec);
    if (j.sub && j.in.misaligned)
        die(EX_FORMAT, "input %s: an .npz member whose data is not aligned cannot be read in place, and one of its "
                       "samples (%llu values) is larger than a chunk: extract it with numpy.save, or give a larger "
                       "--chunk-bytes", j.in.parts[0].spec, (unsigned long long)(j.c * j.d));
    if (!j.sub)
        src_reserve(&j.in, (size_t)(j.chunk * j.c * j.es));
    if (!j.sub || j.tc == 1)
        src_reserve(&j.tg, (size_t)(j.chunk * j.tc * j.ts));
    if (j.convert) {
        j.tconv = aligned_alloc(64, ((size_t)j.chunk * j.es + 64) & ~(size_t)63);
        if (!j.tconv)
            die(EX_IO, "out of memory (%llu-element target buffer)", (unsigned long long)j.chunk);
    }

    void *obuf = NULL;
    if (o->out) {
        out_not_parts(o->out, "--input", &j.in);
        out_not_parts(o->out, "--target", &j.tg);
        out_not_input(o->out, "--weight", o->weight);
    }
    if (o->out || o->per_class) {
        obuf = aligned_alloc(64, ((size_t)j.chunk * j.es + 64) & ~(size_t)63);
        if (!obuf)
            die(EX_IO, "out of memory (%llu-element output buffer)", (unsigned long long)j.chunk);
    }
    uint64_t u0, u1; /* this rank's units (all without MPI) */
    shard_range(j.units, &u0, &u1);
    const uint64_t f0 = u0 * j.d, f1 = u1 * j.d, unit_bytes = j.c * j.es + j.tc * j.ts;
    uint64_t *pc_begin = NULL, *pc_total = NULL;
    if (o->per_class && shard_on())
        class_counts(&j, f0, f1, &pc_begin, &pc_total);
    if (o->per_class)
        j.pc = pc_new(j.c, j.dtype, o->ignore_index, j.weight, pc_begin);
    if (o->out)
        out_open(out, o->out, j.dtype, j.ondim, j.oshape, f0, j.es);
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
    if (j.pc)
        r->classes = pc_finish(j.pc, &r->nclasses, pc_total);
    free(pc_begin);
    free(pc_total);
    r->per_class = o->per_class;
    r->command = L->name;
    r->reduction = o->reduction;
    r->dtype = j.dtype;
    r->chunk_elems = j.chunk;
    r->bytes = j.units * j.d * unit_bytes;
    r->out = o->out;
    /* the parts' names, in order, for --json (kept until exit) */
    r->ninputs = j.in.n;
    r->ntargets = j.tg.n;
    r->inputs = malloc((size_t)(j.in.n + j.tg.n) * sizeof(char *));
    if (!r->inputs)
        die(EX_IO, "out of memory");
    r->targets = r->inputs + j.in.n;
    for (int k = 0; k < j.in.n; k++)
        r->inputs[k] = j.in.parts[k].spec;
    for (int k = 0; k < j.tg.n; k++)
        r->targets[k] = j.tg.parts[k].spec;
    free(obuf);
    free(j.tconv);
    free(j.weight);
    npyf_close(&j.in.f);
    npyf_close(&j.tg.f);
    free(j.in.parts); /* (their names now belong to r) */
    free(j.tg.parts);
}
