/* losses.c — the losses nllk-score knows, as descriptors for score.c's chunk loop (see score.h). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "score.h"
#include "util.h"

static int is_float(npy_dtype t) { return t == NPY_F32 || t == NPY_F64; }

static void shapes_differ(const job *j, const char *fmt_expect)
{
    char a[256], b[256];
    shape_str(a, sizeof a, j->in.h.ndim, j->in.h.shape);
    shape_str(b, sizeof b, j->tg.h.ndim, j->tg.h.shape);
    if (!fmt_expect)
        die(EX_SHAPE, "shapes do not match: input %s has shape %s, target %s has %s", j->in.path, a, j->tg.path, b);
    die(EX_SHAPE, "shapes do not match: input %s has shape %s, so target %s must have shape %s, not %s", j->in.path,
        a, j->tg.path, fmt_expect, b);
}

/* ---- poisson: input and target of one shape and dtype; one target element per input element ------------- */

static void poisson_setup(job *j)
{
    const options *o = j->o;
    if (!is_float(j->tg.h.dtype))
        die(EX_FORMAT, "target %s: dtype %s is not supported (float32 or float64)", j->tg.path,
            npy_dtype_name(j->tg.h.dtype));
    if (j->tg.h.dtype != j->in.h.dtype)
        die(EX_FORMAT, "target %s is %s but input %s is %s: both must have the same dtype", j->tg.path,
            npy_dtype_name(j->tg.h.dtype), j->in.path, npy_dtype_name(j->in.h.dtype));
    if (j->in.h.ndim != j->tg.h.ndim ||
        memcmp(j->in.h.shape, j->tg.h.shape, sizeof(uint64_t) * (size_t)j->in.h.ndim) != 0)
        shapes_differ(j, NULL);
    const uint64_t n = j->in.h.count;
    j->units = n;
    j->c = j->d = 1;
    uint64_t row = 1; /* --chunk-rows counts rows of the input's trailing dimensions */
    for (int k = 1; k < j->in.h.ndim; k++)
        row *= j->in.h.shape[k];
    uint64_t chunk;
    if (o->chunk_rows)
        chunk = o->chunk_rows > UINT64_MAX / (row ? row : 1) ? UINT64_MAX : o->chunk_rows * row;
    else {
        chunk = o->chunk_bytes / (2 * j->es);
        if (chunk > NLLK_BLOCK)
            chunk -= chunk % NLLK_BLOCK;
    }
    if (chunk > n)
        chunk = n;
    if (chunk == 0)
        chunk = 1;
    if (chunk > SIZE_MAX / 2 / j->es)
        die(EX_USAGE, "--chunk-rows: a chunk of %llu elements is too large", (unsigned long long)chunk);
    j->chunk = chunk;
}

static nllk_status poisson_init(nllk_acc *acc, const job *j, uint64_t begin)
{
    const options *o = j->o;
    return nllk_poisson_acc_init(acc, j->dtype == NPY_F32 ? NLLK_F32 : NLLK_F64, o->log_input, o->full, o->eps,
                                 begin);
}

static nllk_status poisson_f32(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    (void)w;
    return nllk_poisson_acc_update_out_f32(acc, x, t, n, out);
}

static nllk_status poisson_f64(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    (void)w;
    return nllk_poisson_acc_update_out_f64(acc, x, t, n, out);
}

const loss loss_poisson = {"poisson", poisson_setup, poisson_init, poisson_f32, poisson_f64};

/* ---- nll: input (C) with a 0-d target, or (N, C, d1..dK) with target (N, d1..dK) ------------------------- */

/* The C class weights of --weight in the input's dtype (malloc'ed). */
static void *load_weight(const options *o, npy_dtype want, size_t c)
{
    npy_file wf = {.fd = -1};
    open_npy(&wf, o->weight, o, "weight");
    if (!is_float(wf.h.dtype))
        die(EX_FORMAT, "weight %s: dtype %s is not supported (float32 or float64)", wf.path,
            npy_dtype_name(wf.h.dtype));
    if (wf.h.ndim != 1 || wf.h.shape[0] != c) {
        char a[256];
        shape_str(a, sizeof a, wf.h.ndim, wf.h.shape);
        die(EX_SHAPE, "weight %s has shape %s but the input has %zu classes: it must be (%zu,)", wf.path, a, c, c);
    }
    const size_t es = npy_dtype_size(want);
    void *w = malloc(c ? c * es : 1);
    if (!w)
        die(EX_IO, "out of memory (weight)");
    const unsigned char *src = npyf_data(&wf);
    for (size_t k = 0; k < c; k++) {
        double v;
        if (wf.h.dtype == NPY_F32) {
            float f;
            memcpy(&f, src + 4 * k, 4);
            v = f;
        } else
            memcpy(&v, src + 8 * k, 8);
        if (want == NPY_F32)
            ((float *)w)[k] = (float)v;
        else
            ((double *)w)[k] = v;
    }
    npyf_close(&wf);
    return w;
}

static void nll_geometry(job *j)
{
    const npy_header *in = &j->in.h, *tg = &j->tg.h;
    uint64_t n = 0, c = 0, d = 1;
    int ok;
    if (in->ndim == 0)
        die(EX_SHAPE, "input %s is 0-d: nll needs (C), (N, C) or (N, C, d1, ...)", j->in.path);
    if (in->ndim == 1) {
        n = 1;
        c = in->shape[0];
        ok = tg->ndim == 0;
    } else {
        n = in->shape[0];
        c = in->shape[1];
        ok = tg->ndim == in->ndim - 1 && tg->shape[0] == n;
        for (int k = 2; k < in->ndim && ok; k++) {
            ok = tg->shape[k - 1] == in->shape[k];
            d *= in->shape[k];
        }
    }
    if (!ok)
        shapes_differ(j, in->ndim == 1 ? "()" : "(N, d1, ...) (the input's without its class dimension)");
    j->units = d ? n : 0; /* an empty spatial dimension: no element */
    j->c = c;
    j->d = d;
}

/* Chunks of whole samples, or (a default chunk smaller than one sample) runs of positions inside a sample. */
static void nll_plan(job *j)
{
    const options *o = j->o;
    const uint64_t n = j->in.h.ndim == 1 ? 1 : j->in.h.shape[0], c = j->c, d = j->d;
    const uint64_t row_bytes = c * d * j->es + d * j->ts;
    uint64_t rows = o->chunk_rows, pos = d;
    if (!rows) {
        rows = row_bytes ? o->chunk_bytes / row_bytes : n;
        if (rows == 0) {
            rows = 1;
            pos = o->chunk_bytes / (c * j->es + j->ts);
            if (pos > NLLK_BLOCK)
                pos -= pos % NLLK_BLOCK;
            if (pos == 0)
                pos = 1;
            if (pos > d)
                pos = d;
        }
    }
    if (rows > n)
        rows = n ? n : 1;
    if (rows > SIZE_MAX / (row_bytes ? row_bytes : 1))
        die(EX_USAGE, "--chunk-rows: a chunk of %llu rows is too large", (unsigned long long)rows);
    j->sub = pos < d;
    j->chunk = j->sub ? pos : rows * d;
}

static void nll_setup(job *j)
{
    switch (j->tg.h.dtype) {
    case NPY_I64: j->tt = NLLK_TARGET_I64; break;
    case NPY_I32: j->tt = NLLK_TARGET_I32; break;
    case NPY_U8: j->tt = NLLK_TARGET_U8; break;
    default:
        die(EX_FORMAT, "target %s: dtype %s is not supported (int64, int32 or uint8)", j->tg.path,
            npy_dtype_name(j->tg.h.dtype));
    }
    /* the library checks every target before it uses one as an index, then reads them again: it must see a
     * private copy (pread), never the shared mapping a writer could change in between (validate what you read,
     * once) */
    j->tg.mode = IO_PREAD;
    nll_geometry(j);
    if (j->o->weight)
        j->weight = load_weight(j->o, j->dtype, (size_t)j->c);
    nll_plan(j);
}

static nllk_status nll_init(nllk_acc *acc, const job *j, uint64_t begin)
{
    return nllk_nll_acc_init(acc, j->dtype == NPY_F32 ? NLLK_F32 : NLLK_F64, j->tt, (size_t)j->c,
                             (size_t)(j->d ? j->d : 1), j->o->ignore_index, begin);
}

static nllk_status nll_f32(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_nll_acc_update_out_f32(acc, x, t, n, w, out);
}

static nllk_status nll_f64(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_nll_acc_update_out_f64(acc, x, t, n, w, out);
}

const loss loss_nll = {"nll", nll_setup, nll_init, nll_f32, nll_f64};
