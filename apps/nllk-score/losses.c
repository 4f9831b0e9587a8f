/* losses.c — the losses nllk-score knows, as descriptors for score.c's chunk loop (see score.h). */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fail.h"
#include "score.h"
#include "util.h"

static int is_float(npy_dtype t) { return t == NPY_F32 || t == NPY_F64 || t == NPY_F16; }

/* A source's name for messages: its file, or "FIRST ... LAST (K parts)". */
static const char *src_label(const source *s, char *buf, size_t cap)
{
    if (s->n == 1)
        return s->parts[0].spec;
    snprintf(buf, cap, "%s ... %s (%d parts)", s->parts[0].spec, s->parts[s->n - 1].spec, s->n);
    return buf;
}

static void shapes_differ(const job *j, const char *fmt_expect)
{
    char a[256], b[256], la[600], lb[600];
    shape_str(a, sizeof a, j->in.h.ndim, j->in.h.shape);
    shape_str(b, sizeof b, j->tg.h.ndim, j->tg.h.shape);
    const char *in = src_label(&j->in, la, sizeof la), *tg = src_label(&j->tg, lb, sizeof lb);
    if (!fmt_expect)
        die(EX_SHAPE, "shapes do not match: input %s has shape %s, target %s has %s", in, a, tg, b);
    die(EX_SHAPE, "shapes do not match: input %s has shape %s, so target %s must have shape %s, not %s", in, a, tg,
        fmt_expect, b);
}

/* ---- poisson: input and target of one shape and dtype; one target element per input element ------------- */

static int is_int(npy_dtype t) { return !is_float(t); }
static int is_signed(npy_dtype t) { return t == NPY_I8 || t == NPY_I16 || t == NPY_I32 || t == NPY_I64; }

static void poisson_setup(job *j)
{
    const options *o = j->o;
    if (is_int(j->tg.h.dtype))
        j->convert = 1; /* counts: converted exactly to the input's dtype, chunk by chunk (poisson_prepare) */
    else if (j->tg.h.dtype != j->in.h.dtype)
        die(EX_FORMAT, "target %s is %s but input %s is %s: both must have the same dtype (or the target integer "
                       "counts)", j->tg.parts[0].spec, npy_dtype_name(j->tg.h.dtype), j->in.parts[0].spec,
            npy_dtype_name(j->in.h.dtype));
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
        chunk = o->chunk_bytes / (j->es + j->ts);
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

enum { WARN_NEGATIVE = 1, WARN_FRACTION = 2, WARN_NOT_LOGP = 4 };

static void count_warning(job *j, int kind, double v, uint64_t flat)
{
    if (j->warned & kind)
        return;
    j->warned |= kind;
    char w[1024];
    const char *name = where_str(w, sizeof w, &j->tg, flat);
    if (kind == WARN_NEGATIVE)
        warn("target %s: %.17g at %s is negative: Poisson targets are counts (>= 0)", name, v, w);
    else
        warn("target %s: %.17g at %s is not an integer: Poisson targets are counts (rates or probabilities?)",
             name, v, w);
}

/* Float targets: warn (once each) about a negative or fractional one. The test is branch-free over the chunk
 * (it vectorizes; no cost next to the loss), and only a chunk that has one is searched for the first. */
#define SCAN_COUNTS(T, BIG)                                                                                       \
    do {                                                                                                          \
        const T *v = t;                                                                                           \
        int bad = 0;                                                                                              \
        for (uint64_t k = 0; k < m; k++) /* t + 2^p - 2^p rounds t (< 2^p) to an integer, as is when t is one */  \
            bad |= (v[k] < 0) | ((v[k] < BIG) & ((v[k] + BIG) - BIG != v[k]));                                    \
        for (uint64_t k = 0; bad && k < m; k++) {                                                                 \
            if (v[k] < 0)                                                                                         \
                count_warning(j, WARN_NEGATIVE, v[k], f + k);                                                     \
            else if (v[k] < BIG && (v[k] + BIG) - BIG != v[k])                                                    \
                count_warning(j, WARN_FRACTION, v[k], f + k);                                                     \
        }                                                                                                         \
    } while (0)

/* Integer targets: each converted exactly to the input's dtype; one that is not representable there is an error
 * naming it. */
#define CONVERT_COUNTS(S, SIGNED, OUT)                                                                                    \
    do {                                                                                                          \
        const S *v = t;                                                                                           \
        OUT *y = j->tconv;                                                                                        \
        for (uint64_t k = 0; k < m; k++) {                                                                        \
            y[k] = (OUT)v[k];                                                                                     \
            bad |= SIGNED && (int64_t)v[k] < 0;                                                                   \
            if (sizeof(S) * 8 > (sizeof(OUT) == 2 ? 11 : sizeof(OUT) == 4 ? 24 : 53))                             \
                inexact |= (double)y[k] >= 0x1p63 || (double)y[k] < -0x1p63 ||                                    \
                           (SIGNED ? (int64_t)y[k] != (int64_t)v[k] : (uint64_t)y[k] != (uint64_t)v[k]);           \
        }                                                                                                         \
    } while (0)

static const void *poisson_prepare(job *j, const void *x, const void *t, uint64_t f, uint64_t m)
{
    (void)x;
    if (!j->convert) {
        if ((j->warned & (WARN_NEGATIVE | WARN_FRACTION)) != (WARN_NEGATIVE | WARN_FRACTION)) {
            if (j->dtype == NPY_F32)
                SCAN_COUNTS(float, 0x1p23f);
            else if (j->dtype == NPY_F16)
                SCAN_COUNTS(_Float16, 0x1p23f); /* (each value widened to float: |t| < 2^16) */
            else
                SCAN_COUNTS(double, 0x1p52);
        }
        return t;
    }
    int bad = 0, inexact = 0;
#define CONVERT_TO(OUT)                                                                                           \
    switch (j->tg.h.dtype) {                                                                                      \
    case NPY_I8: CONVERT_COUNTS(int8_t, 1, OUT); break;                                                              \
    case NPY_I16: CONVERT_COUNTS(int16_t, 1, OUT); break;                                                            \
    case NPY_I32: CONVERT_COUNTS(int32_t, 1, OUT); break;                                                            \
    case NPY_I64: CONVERT_COUNTS(int64_t, 1, OUT); break;                                                            \
    case NPY_U8: CONVERT_COUNTS(uint8_t, 0, OUT); break;                                                             \
    case NPY_U16: CONVERT_COUNTS(uint16_t, 0, OUT); break;                                                           \
    case NPY_U32: CONVERT_COUNTS(uint32_t, 0, OUT); break;                                                           \
    case NPY_U64: CONVERT_COUNTS(uint64_t, 0, OUT); break;                                                           \
    default: break;                                                                                               \
    }
    if (j->dtype == NPY_F32) {
        CONVERT_TO(float)
    } else if (j->dtype == NPY_F16) {
        CONVERT_TO(_Float16)
    } else {
        CONVERT_TO(double)
    }
    if (bad || inexact) { /* the first offender, read back as an integer */
        const unsigned char *b = t;
        for (uint64_t k = 0; k < m; k++) {
            int64_t sv = 0;
            uint64_t uv = 0;
            const size_t ts = j->ts;
            if (is_signed(j->tg.h.dtype)) {
                if (ts == 1) sv = ((const int8_t *)b)[k];
                else if (ts == 2) sv = ((const int16_t *)b)[k];
                else if (ts == 4) sv = ((const int32_t *)b)[k];
                else sv = ((const int64_t *)b)[k];
                uv = (uint64_t)sv;
            } else {
                if (ts == 1) uv = b[k];
                else if (ts == 2) uv = ((const uint16_t *)b)[k];
                else if (ts == 4) uv = ((const uint32_t *)b)[k];
                else uv = ((const uint64_t *)b)[k];
            }
            const double y = elem_value(j->dtype, j->tconv, k);
            const int neg = is_signed(j->tg.h.dtype) && sv < 0;
            const int exact = y < 0x1p63 && y >= -0x1p63 && (neg ? (int64_t)y == sv : (uint64_t)y == uv);
            char w[1024];
            if (!exact) {
                const char *name = where_str(w, sizeof w, &j->tg, f + k);
                if (neg)
                    die(EX_TARGET, "target %s: the count %lld at %s is not exactly representable in %s (the "
                                   "input's dtype)", name, (long long)sv, w, npy_dtype_name(j->dtype));
                die(EX_TARGET, "target %s: the count %llu at %s is not exactly representable in %s (the input's "
                               "dtype)", name, (unsigned long long)uv, w, npy_dtype_name(j->dtype));
            }
            if (neg)
                count_warning(j, WARN_NEGATIVE, (double)sv, f + k);
        }
    }
    return j->tconv;
}

static nllk_status poisson_init(nllk_acc *acc, const job *j, uint64_t begin)
{
    const options *o = j->o;
    return nllk_poisson_acc_init(acc, loss_dtype(j->dtype), o->log_input, o->full, o->eps, begin);
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

static nllk_status poisson_f16(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    (void)w;
    return nllk_poisson_acc_update_out_f16(acc, x, t, n, out);
}

const loss loss_poisson = {"poisson", poisson_setup, poisson_init, poisson_f32, poisson_f64, poisson_prepare,
                           poisson_f16};

/* ---- nll: input (C) with a 0-d target, or (N, C, d1..dK) with target (N, d1..dK) ------------------------- */

/* The C class weights of --weight in the input's dtype (malloc'ed; float16 input: each rounded once). */
static void *load_weight(const options *o, npy_dtype want, size_t c)
{
    npy_file wf = {.fd = -1};
    open_npy(&wf, o->weight, o, "weight");
    if (!is_float(wf.h.dtype))
        die(EX_FORMAT, "weight %s: dtype %s is not supported (float32, float64 or float16)", wf.path,
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
        unsigned char one[8];
        memcpy(one, src + wf.h.itemsize * k, wf.h.itemsize); /* (the mapping may not be aligned) */
        const double v = elem_value(wf.h.dtype, one, 0);
        if (want == NPY_F32)
            ((float *)w)[k] = (float)v;
        else if (want == NPY_F16)
            ((_Float16 *)w)[k] = (_Float16)v;
        else
            ((double *)w)[k] = v;
    }
    npyf_close(&wf);
    return w;
}

/* probs: the target has the input's shape (ce --probs); else the input's without its class dimension. */
static void nll_geometry(job *j, int probs)
{
    const npy_header *in = &j->in.h, *tg = &j->tg.h;
    uint64_t n = 0, c = 0, d = 1;
    int ok;
    if (in->ndim == 0)
        die(EX_SHAPE, "input %s is 0-d: nll needs (C), (N, C) or (N, C, d1, ...)", j->in.parts[0].spec);
    if (in->ndim == 1 && j->in.n > 1)
        die(EX_SHAPE, "input %s is 1-D (C): several parts are concatenated along N, so each must be (N, C, ...)",
            j->in.parts[0].spec);
    if (in->ndim == 1) {
        n = 1;
        c = in->shape[0];
        ok = tg->ndim == 0;
    } else {
        n = in->shape[0];
        c = in->shape[1];
        ok = tg->ndim == in->ndim - 1 && tg->shape[0] == n;
        for (int k = 2; k < in->ndim; k++) {
            ok = ok && tg->shape[k - 1] == in->shape[k];
            d *= in->shape[k];
        }
    }
    if (probs) {
        ok = tg->ndim == in->ndim && !memcmp(tg->shape, in->shape, sizeof(uint64_t) * (size_t)in->ndim);
        if (!ok)
            shapes_differ(j, "the input's (probabilities of each class)");
        /* the output: one loss per position, the input's shape without its class dimension */
        j->ondim = in->ndim - 1;
        if (in->ndim > 1)
            j->oshape[0] = in->shape[0];
        for (int k = 2; k < in->ndim; k++)
            j->oshape[k - 1] = in->shape[k];
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
    const uint64_t row_bytes = c * d * j->es + d * j->tc * j->ts;
    uint64_t rows = o->chunk_rows, pos = d;
    if (!rows) {
        rows = row_bytes ? o->chunk_bytes / row_bytes : n;
        if (rows == 0) {
            rows = 1;
            pos = o->chunk_bytes / (c * j->es + j->tc * j->ts);
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
        die(EX_FORMAT, "target %s: unsupported dtype %s for class indices (int64, int32 or uint8)",
            j->tg.parts[0].spec, npy_dtype_name(j->tg.h.dtype));
    }
    /* the library checks every target before it uses one as an index, then reads them again: it must see a
     * private copy (pread), never the shared mapping a writer could change in between (validate what you read,
     * once) */
    j->tg.mode = IO_PREAD;
    nll_geometry(j, 0);
    if (j->o->weight)
        j->weight = load_weight(j->o, j->dtype, (size_t)j->c);
    nll_plan(j);
}

static nllk_status nll_init(nllk_acc *acc, const job *j, uint64_t begin)
{
    return nllk_nll_acc_init(acc, loss_dtype(j->dtype), j->tt, (size_t)j->c,
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

/* Warns (once) when a row of the input is clearly not log-probabilities: its logsumexp is far from 0. The first
 * row of every chunk is looked at (c values: nothing next to the chunk's c*m). */
static const void *nll_prepare(job *j, const void *x, const void *t, uint64_t f, uint64_t m)
{
    (void)m;
    if (j->c == 0 || (j->warned & WARN_NOT_LOGP))
        return t;
    const uint64_t pos = f % j->d, step = j->d;
    double mx = -INFINITY, sum = 0;
    for (uint64_t k = 0; k < j->c; k++) {
        const double v = elem_value(j->dtype, x, k * step + (j->sub ? pos : 0));
        if (v > mx)
            mx = v;
    }
    if (isnan(mx) || mx == INFINITY)
        return t;
    for (uint64_t k = 0; k < j->c && mx > -INFINITY; k++) {
        const double v = elem_value(j->dtype, x, k * step + (j->sub ? pos : 0));
        sum += exp(v - mx);
    }
    const double lse = mx > -INFINITY ? mx + log(sum) : -INFINITY;
    if (!(fabs(lse) > 0.05)) /* a log_softmax row: within rounding of 0 (even for 2^18 float32 classes) */
        return t;
    j->warned |= WARN_NOT_LOGP;
    uint64_t local;
    const char *name = src_name(&j->in, (f / j->d) * j->c * j->d, &local);
    warn("input %s: sample %llu, position %llu has logsumexp %.4g, not 0: these are not log-probabilities (logits: "
         "use `nllk-score ce`; probabilities: take their log first)", name,
         (unsigned long long)(local / (j->c * j->d)), (unsigned long long)(j->sub ? pos : 0), lse);
    return t;
}

static nllk_status nll_f16(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_nll_acc_update_out_f16(acc, x, t, n, w, out);
}

const loss loss_nll = {"nll", nll_setup, nll_init, nll_f32, nll_f64, nll_prepare, nll_f16};

/* ---- ce: logits as nll's input; class-index targets as nll's, or (--probs) probabilities of the input's shape -- */

static void ce_probs_setup(job *j)
{
    if (!is_float(j->tg.h.dtype) || j->tg.h.dtype != j->in.h.dtype)
        die(EX_FORMAT, "target %s is %s but input %s is %s: --probs targets are probabilities of the input's dtype",
            j->tg.parts[0].spec, npy_dtype_name(j->tg.h.dtype), j->in.parts[0].spec, npy_dtype_name(j->in.h.dtype));
    if (j->in.h.ndim == 0)
        die(EX_SHAPE, "input %s is 0-d: ce needs (C), (N, C) or (N, C, d1, ...)", j->in.parts[0].spec);
    if (j->in.h.ndim == 1 && (j->in.n > 1 || j->tg.n > 1))
        die(EX_SHAPE, "input %s is 1-D (C): several parts are concatenated along N, so each must be (N, C, ...)",
            j->in.parts[0].spec);
    nll_geometry(j, 1);
    j->tc = j->c;
    if (j->o->weight)
        j->weight = load_weight(j->o, j->dtype, (size_t)j->c);
    nll_plan(j);
}

static nllk_status ce_init(nllk_acc *acc, const job *j, uint64_t begin)
{
    return nllk_cross_entropy_acc_init(acc, loss_dtype(j->dtype), j->tt, (size_t)j->c,
                                       (size_t)(j->d ? j->d : 1), j->o->ignore_index, j->o->label_smoothing, begin);
}

static nllk_status ce_f32(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_cross_entropy_acc_update_out_f32(acc, x, t, n, w, out);
}

static nllk_status ce_f64(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_cross_entropy_acc_update_out_f64(acc, x, t, n, w, out);
}

static nllk_status ce_f16(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_cross_entropy_acc_update_out_f16(acc, x, t, n, w, out);
}

const loss loss_ce = {"ce", nll_setup, ce_init, ce_f32, ce_f64, NULL, ce_f16};

static nllk_status ce_probs_init(nllk_acc *acc, const job *j, uint64_t begin)
{
    return nllk_cross_entropy_prob_acc_init(acc, loss_dtype(j->dtype), (size_t)j->c,
                                            (size_t)(j->d ? j->d : 1), j->o->label_smoothing, begin);
}

static nllk_status ce_probs_f32(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_cross_entropy_prob_acc_update_out_f32(acc, x, t, n, w, out);
}

static nllk_status ce_probs_f64(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_cross_entropy_prob_acc_update_out_f64(acc, x, t, n, w, out);
}

static nllk_status ce_probs_f16(nllk_acc *acc, const void *x, const void *t, size_t n, const void *w, void *out)
{
    return nllk_cross_entropy_prob_acc_update_out_f16(acc, x, t, n, w, out);
}

const loss loss_ce_probs = {"ce", ce_probs_setup, ce_probs_init, ce_probs_f32, ce_probs_f64, NULL, ce_probs_f16};
