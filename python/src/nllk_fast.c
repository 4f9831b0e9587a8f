/*
 * _nllk_fast: the numpy front end's compiled path (issue 14: nllk.nll_loss on numpy within 3 us of the C call).
 *
 * Plain C over CPython's buffer protocol (PEP 3118; no numpy headers). Each function takes the arguments of the
 * nllk function of the same name (python/nllk/_api.py, defaults filled in, positional) and either computes the
 * common call -- exact numpy.ndarray arguments, C-contiguous, aligned, native float32/float64 inputs (int64,
 * int32 or uint8 class indices), no broadcasting or dtype conversion, the common scalar types -- and returns
 * exactly what the Python path returns (the same C call with the same arguments, so the same bits), or returns
 * None: then _api.py runs its Python path, which checks, converts, computes and raises as always. Every error,
 * failed C call included, takes that path (its exceptions are the Python path's by construction); this module
 * raises only for a failure of its own (MemoryError from numpy.empty).
 *
 * The module does not link libnllk: bind() hands it the addresses of the functions of the libnllk that nllk's
 * ctypes binding (python/nllk/_capi.py) loaded, so both paths call one library (one nllk_set_isa, one thread
 * setting). It is built by CMake when Python's headers are found, and by setup.py through CMake.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#include "nllk.h"

/* ---- the library's entry points, bound at run time ---------------------------------------------------- */
#define NLLK_FAST_FUNCS(X)                                                                                             \
    X(nll_fwd_f32)                                                                                                     \
    X(nll_fwd_f64)                                                                                                     \
    X(nll_bwd_f32) X(nll_bwd_f64) X(poisson_nll_fwd_f32) X(poisson_nll_fwd_f64) X(poisson_nll_bwd_f32)                 \
        X(poisson_nll_bwd_f64) X(cross_entropy_fwd_f32) X(cross_entropy_fwd_f64) X(cross_entropy_bwd_f32)              \
            X(cross_entropy_bwd_f64) X(cross_entropy_prob_fwd_f32) X(cross_entropy_prob_fwd_f64)                       \
                X(cross_entropy_prob_bwd_f32) X(cross_entropy_prob_bwd_f64)

static struct {
#define X(name) __typeof__(&nllk_##name) name;
    NLLK_FAST_FUNCS(X)
#undef X
} lib;

static int bound;                                     /* bind() succeeded */
static PyObject *ndarray_type, *np_empty, *dtypes[2]; /* numpy.ndarray, numpy.empty, float32 and float64 */
static PyObject *empty_tuple;

/* A call on at least this many elements releases the GIL (as ctypes always does); smaller ones keep it, which
 * costs less than the release. */
#define RELEASE_GIL_FROM 32768

#define CALL(elements, status, expr)                                                                                   \
    do {                                                                                                               \
        if ((elements) >= RELEASE_GIL_FROM) {                                                                          \
            Py_BEGIN_ALLOW_THREADS status = (expr);                                                                    \
            Py_END_ALLOW_THREADS                                                                                       \
        } else {                                                                                                       \
            status = (expr);                                                                                           \
        }                                                                                                              \
    } while (0)

/* ---- arrays ------------------------------------------------------------------------------------------------- */
/* What an argument's buffer holds: a float dtype of the computation, or an nllk_target_type. */
enum { K_F32, K_F64, K_I64, K_I32, K_U8, K_OTHER };

/* What one call holds: the argument buffers, the result arrays, a scratch allocation; released by finish(). */
typedef struct {
    Py_buffer v[8];
    int count;
    PyObject *own[3];
    int owned;
    void *mem;
} buffers;

#define BUFFERS                                                                                                        \
    {                                                                                                                  \
        .count = 0, .owned = 0, .mem = NULL                                                                            \
    }

/* Releases what the call holds and returns result (a new reference, or NULL with an exception set). */
static PyObject *finish(buffers *b, PyObject *result)
{
    while (b->count > 0)
        PyBuffer_Release(&b->v[--b->count]);
    while (b->owned > 0)
        Py_DECREF(b->own[--b->owned]);
    PyMem_Free(b->mem);
    return result;
}

/* None: the Python path computes the call. */
static PyObject *python(buffers *b) { return finish(b, Py_NewRef(Py_None)); }

static int kind_of(const Py_buffer *v)
{
    const char *f = v->format;
    if (f == NULL || f[0] == 0 || f[1] != 0)
        return K_OTHER; /* (numpy writes native types as one letter; a byte-order prefix means another order) */
    switch (f[0]) {
    case 'f': return v->itemsize == 4 ? K_F32 : K_OTHER;
    case 'd': return v->itemsize == 8 ? K_F64 : K_OTHER;
    case 'l':
    case 'q': return v->itemsize == 8 ? K_I64 : K_OTHER;
    case 'i': return v->itemsize == 4 ? K_I32 : K_OTHER;
    case 'B': return K_U8;
    default: return K_OTHER;
    }
}

/* The buffer of an exact numpy.ndarray that is C-contiguous and aligned (NULL otherwise: the Python path). */
static Py_buffer *array(buffers *b, PyObject *o)
{
    if ((PyObject *)Py_TYPE(o) != ndarray_type || b->count == (int)(sizeof b->v / sizeof b->v[0]))
        return NULL;
    Py_buffer *v = &b->v[b->count];
    if (PyObject_GetBuffer(o, v, PyBUF_RECORDS_RO) != 0) {
        PyErr_Clear();
        return NULL;
    }
    b->count++;
    if (!PyBuffer_IsContiguous(v, 'C') || (v->itemsize > 1 && (uintptr_t)v->buf % (uintptr_t)v->itemsize))
        return NULL;
    return v;
}

static Py_ssize_t size_of(const Py_buffer *v) { return v->len / v->itemsize; }

/* The data pointer the C call gets: NULL for an empty array, as the ctypes path passes (_api._ptr). */
static void *ptr(const Py_buffer *v) { return v != NULL && v->len ? v->buf : NULL; }

static int same_shape(const Py_buffer *a, const Py_buffer *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

/* numpy.empty(shape, dtype), held by b, and its data pointer (NULL with an exception set on failure). */
static PyObject *new_array(buffers *b, int ndim, const Py_ssize_t *shape, int f64, void **data)
{
    PyObject *dims = empty_tuple;
    if (ndim > 0) {
        dims = PyTuple_New(ndim);
        if (dims == NULL)
            return NULL;
        for (int i = 0; i < ndim; i++) {
            PyObject *s = PyLong_FromSsize_t(shape[i]);
            if (s == NULL) {
                Py_DECREF(dims);
                return NULL;
            }
            PyTuple_SET_ITEM(dims, i, s);
        }
    } else {
        Py_INCREF(dims);
    }
    PyObject *args[2] = {dims, dtypes[f64]};
    PyObject *a = PyObject_Vectorcall(np_empty, args, 2, NULL);
    Py_DECREF(dims);
    if (a == NULL)
        return NULL;
    Py_buffer v;
    if (PyObject_GetBuffer(a, &v, PyBUF_SIMPLE | PyBUF_WRITABLE) != 0) {
        Py_DECREF(a);
        return NULL;
    }
    *data = v.len ? v.buf : NULL;
    PyBuffer_Release(&v); /* (the array keeps its memory: it is ours until returned) */
    b->own[b->owned++] = a;
    return a;
}

/* One value of the computation's dtype, written or read by the library. */
typedef union {
    double d;
    float f;
} real;

static double real_value(int f64, const real *v) { return f64 ? v->d : (double)v->f; }

/* ---- scalars ------------------------------------------------------------------------------------------------ */
/* The nllk_reduction of an exact str 'none', 'mean' or 'sum'; -1 for anything else. */
static int reduction_of(PyObject *o)
{
    if (!PyUnicode_CheckExact(o))
        return -1;
    if (PyUnicode_CompareWithASCIIString(o, "mean") == 0)
        return NLLK_REDUCTION_MEAN;
    if (PyUnicode_CompareWithASCIIString(o, "sum") == 0)
        return NLLK_REDUCTION_SUM;
    if (PyUnicode_CompareWithASCIIString(o, "none") == 0)
        return NLLK_REDUCTION_NONE;
    return -1;
}

/* An exact int within int64 (0: the Python path). */
static int int64_of(PyObject *o, int64_t *out)
{
    if (!PyLong_CheckExact(o))
        return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = (int64_t)v;
    return 1;
}

/* True or False (-1: the Python path). */
static int bool_of(PyObject *o) { return o == Py_True ? 1 : o == Py_False ? 0 : -1; }

/* label_smoothing as _args.label_smoothing gives it for an exact float (0: the Python path: another type, or
 * > 1, an error). */
static int smoothing_of(PyObject *o, double *out)
{
    if (!PyFloat_CheckExact(o))
        return 0;
    double v = PyFloat_AS_DOUBLE(o);
    if (v > 0.0) {
        if (!(v <= 1.0))
            return 0;
        *out = v;
    } else {
        *out = 0.0; /* (negative or NaN: no smoothing) */
    }
    return 1;
}

/* grad_output as _api._grad_output takes it: an array of the computation's dtype, of the loss's shape for 'none'
 * or of one value otherwise, or (reduced losses) an exact float, converted into *scratch. The pointer the C call
 * gets, or NULL with *ok = 0 for the Python path. */
static const void *grad_output_of(buffers *b, PyObject *o, int red, int ndim, const Py_ssize_t *shape, int f64,
                                  real *scratch, int *ok)
{
    *ok = 0;
    if (PyFloat_CheckExact(o)) {
        if (red == NLLK_REDUCTION_NONE)
            return NULL;
        double v = PyFloat_AS_DOUBLE(o);
        if (f64)
            scratch->d = v;
        else
            scratch->f = (float)v;
        *ok = 1;
        return scratch;
    }
    const Py_buffer *g = array(b, o);
    if (g == NULL || kind_of(g) != (f64 ? K_F64 : K_F32))
        return NULL;
    if (red == NLLK_REDUCTION_NONE) {
        if (g->ndim != ndim)
            return NULL;
        for (int i = 0; i < ndim; i++)
            if (g->shape[i] != shape[i])
                return NULL;
    } else if (size_of(g) != 1) {
        return NULL;
    }
    *ok = 1;
    return ptr(g);
}

/* total_weight as nll_loss_backward / cross_entropy_backward take it (float(...) of a one-value array or an exact
 * float); 0: the Python path. */
static int total_weight_of(buffers *b, PyObject *o, double *out)
{
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return 1;
    }
    const Py_buffer *v = array(b, o);
    if (v == NULL || size_of(v) != 1)
        return 0;
    int k = kind_of(v);
    if (k == K_F32)
        *out = *(const float *)v->buf;
    else if (k == K_F64)
        *out = *(const double *)v->buf;
    else
        return 0;
    return 1;
}

/* ---- class-index geometry (_args.nll_geometry for the shapes it accepts) ------------------------------------- */
typedef struct {
    const Py_buffer *x, *t;
    const void *w;
    int f64, ttype, red; /* red: the reduction of the C call (a 1-D input's 'none' is its 'sum') */
    size_t n, c, d;
    int out_ndim; /* the loss's shape for 'none': target's */
    const Py_ssize_t *out_shape;
} classes;

/* The class weight: None, or an array of c values of input's dtype (0: the Python path). */
static int weight_of(buffers *b, PyObject *weight, classes *g)
{
    g->w = NULL;
    if (weight == Py_None)
        return 1;
    const Py_buffer *w = array(b, weight);
    if (w == NULL || w->ndim != 1 || (size_t)w->shape[0] != g->c || kind_of(w) != (g->f64 ? K_F64 : K_F32))
        return 0;
    g->w = ptr(w);
    return 1;
}

/* x, t (buffers, NULL if not usable) and weight (None or an array) as a class-index call: 0 for the Python path. */
static int classes_from(buffers *b, const Py_buffer *x, const Py_buffer *t, PyObject *weight, int red, classes *g)
{
    if (x == NULL || t == NULL)
        return 0;
    int k = kind_of(x);
    if (k != K_F32 && k != K_F64)
        return 0;
    g->x = x, g->t = t, g->f64 = k == K_F64;
    switch (kind_of(t)) {
    case K_I64: g->ttype = NLLK_TARGET_I64; break;
    case K_I32: g->ttype = NLLK_TARGET_I32; break;
    case K_U8: g->ttype = NLLK_TARGET_U8; break;
    default: return 0;
    }
    g->red = red;
    g->out_ndim = t->ndim;
    g->out_shape = t->shape;
    if (x->ndim == 1 && t->ndim == 0) {
        g->n = 1, g->c = (size_t)x->shape[0], g->d = 1;
        if (red == NLLK_REDUCTION_NONE)
            g->red = NLLK_REDUCTION_SUM;
    } else if (x->ndim >= 2 && t->ndim == x->ndim - 1 && t->shape[0] == x->shape[0]) {
        g->n = (size_t)x->shape[0], g->c = (size_t)x->shape[1], g->d = 1;
        for (int i = 2; i < x->ndim; i++) {
            if (t->shape[i - 1] != x->shape[i])
                return 0;
            g->d *= (size_t)x->shape[i];
        }
    } else {
        return 0;
    }
    return weight_of(b, weight, g);
}

static int classes_of(buffers *b, PyObject *input, PyObject *target, PyObject *weight, int red, classes *g)
{
    const Py_buffer *x = array(b, input);
    return classes_from(b, x, x == NULL ? NULL : array(b, target), weight, red, g);
}

/* ---- the library's calls, one per loss and direction (a total_weight in the dtype, as ctypes converts it) --- */
static nllk_status nll_fwd(const classes *g, int64_t ii, void *out, void *tw)
{
    nllk_status s;
    CALL(g->n * g->c * g->d, s,
         g->f64 ? lib.nll_fwd_f64(ptr(g->x), ptr(g->t), g->ttype, g->n, g->c, g->d, g->w, ii, g->red, out, tw)
                : lib.nll_fwd_f32(ptr(g->x), ptr(g->t), g->ttype, g->n, g->c, g->d, g->w, ii, g->red, out, tw));
    return s;
}

static nllk_status ce_fwd(const classes *g, int64_t ii, double ls, void *out, void *tw, void *lse)
{
    nllk_status s;
    CALL(g->n * g->c * g->d, s,
         g->f64 ? lib.cross_entropy_fwd_f64(ptr(g->x), ptr(g->t), g->ttype, g->n, g->c, g->d, g->w, ii, ls, g->red, out,
                                            tw, lse)
                : lib.cross_entropy_fwd_f32(ptr(g->x), ptr(g->t), g->ttype, g->n, g->c, g->d, g->w, ii, ls, g->red, out,
                                            tw, lse));
    return s;
}

/* ---- NLL ------------------------------------------------------------------------------------------------------ */
/* nll_loss(input, target, weight, ignore_index, reduction) and nll_loss_forward (the same plus total_weight). */
static PyObject *nll_forward(PyObject *const *args, Py_ssize_t nargs, int with_total_weight)
{
    if (!bound || nargs != 5)
        Py_RETURN_NONE;
    int red = reduction_of(args[4]);
    int64_t ii;
    if (red < 0 || !int64_of(args[3], &ii))
        Py_RETURN_NONE;
    buffers b = BUFFERS;
    classes g;
    if (!classes_of(&b, args[0], args[1], args[2], red, &g))
        return python(&b);
    void *out_data, *tw_data = NULL;
    PyObject *out = red == NLLK_REDUCTION_NONE ? new_array(&b, g.out_ndim, g.out_shape, g.f64, &out_data)
                                               : new_array(&b, 0, NULL, g.f64, &out_data);
    PyObject *tw = NULL;
    if (out != NULL && with_total_weight) {
        tw = new_array(&b, 0, NULL, g.f64, &tw_data);
        if (tw != NULL)
            memset(tw_data, 0, g.f64 ? sizeof(double) : sizeof(float)); /* (np.zeros in the Python path) */
    }
    if (out == NULL || (with_total_weight && tw == NULL))
        return finish(&b, NULL);
    if (nll_fwd(&g, ii, out_data, tw_data) != NLLK_OK)
        return python(&b);
    return finish(&b, with_total_weight ? PyTuple_Pack(2, out, tw) : Py_NewRef(out));
}

static PyObject *fast_nll_loss(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return nll_forward(args, nargs, 0);
}

static PyObject *fast_nll_loss_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return nll_forward(args, nargs, 1);
}

/* nll_loss_backward(grad_output, input, target, weight, ignore_index, reduction, total_weight) */
static PyObject *fast_nll_loss_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (!bound || nargs != 7)
        Py_RETURN_NONE;
    int red = reduction_of(args[5]);
    int64_t ii;
    if (red < 0 || !int64_of(args[4], &ii))
        Py_RETURN_NONE;
    buffers b = BUFFERS;
    classes g;
    real g_scratch;
    double total_weight = 0.0;
    int ok;
    if (!classes_of(&b, args[1], args[2], args[3], red, &g))
        return python(&b);
    const void *go = grad_output_of(&b, args[0], g.red, g.out_ndim, g.out_shape, g.f64, &g_scratch, &ok);
    if (!ok)
        return python(&b);
    if (args[6] != Py_None) {
        if (!total_weight_of(&b, args[6], &total_weight))
            return python(&b);
    } else if (g.red == NLLK_REDUCTION_MEAN) {
        real tw = {0}, scratch;
        if (nll_fwd(&g, ii, &scratch, &tw) != NLLK_OK)
            return python(&b);
        total_weight = real_value(g.f64, &tw);
    }
    void *gx_data;
    PyObject *gx = new_array(&b, g.x->ndim, g.x->shape, g.f64, &gx_data);
    if (gx == NULL)
        return finish(&b, NULL);
    nllk_status s;
    CALL(g.n * g.c * g.d, s,
         g.f64 ? lib.nll_bwd_f64(go, ptr(g.t), g.ttype, g.n, g.c, g.d, g.w, ii, g.red, total_weight, gx_data)
               : lib.nll_bwd_f32(go, ptr(g.t), g.ttype, g.n, g.c, g.d, g.w, ii, g.red, (float)total_weight, gx_data));
    if (s != NLLK_OK)
        return python(&b);
    return finish(&b, Py_NewRef(gx));
}

/* ---- Poisson -------------------------------------------------------------------------------------------------- */
typedef struct {
    const Py_buffer *x, *t;
    int f64, li, fu, red;
    double eps;
} poisson;

/* input, target, log_input, full, eps, reduction: the same float dtype and shape (no broadcasting, no
 * promotion), bools, an exact float eps. 0: the Python path. */
static int poisson_of(buffers *b, PyObject *const *args, poisson *p)
{
    p->red = reduction_of(args[5]);
    p->li = bool_of(args[2]);
    p->fu = bool_of(args[3]);
    if (p->red < 0 || p->li < 0 || p->fu < 0 || !PyFloat_CheckExact(args[4]))
        return 0;
    p->eps = PyFloat_AS_DOUBLE(args[4]);
    p->x = array(b, args[0]);
    if (p->x == NULL)
        return 0;
    int k = kind_of(p->x);
    if (k != K_F32 && k != K_F64)
        return 0;
    p->f64 = k == K_F64;
    p->t = array(b, args[1]);
    return p->t != NULL && kind_of(p->t) == k && same_shape(p->x, p->t);
}

/* poisson_nll_loss(input, target, log_input, full, eps, reduction) */
static PyObject *fast_poisson_nll_loss(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (!bound || nargs != 6)
        Py_RETURN_NONE;
    buffers b = BUFFERS;
    poisson p;
    if (!poisson_of(&b, args, &p))
        return python(&b);
    void *out_data;
    PyObject *out = new_array(&b, p.red == NLLK_REDUCTION_NONE ? p.x->ndim : 0, p.x->shape, p.f64, &out_data);
    if (out == NULL)
        return finish(&b, NULL);
    size_t n = (size_t)size_of(p.x);
    nllk_status s;
    CALL(n, s,
         p.f64 ? lib.poisson_nll_fwd_f64(ptr(p.x), ptr(p.t), n, p.li, p.fu, p.eps, p.red, out_data)
               : lib.poisson_nll_fwd_f32(ptr(p.x), ptr(p.t), n, p.li, p.fu, p.eps, p.red, out_data));
    if (s != NLLK_OK)
        return python(&b);
    return finish(&b, Py_NewRef(out));
}

/* poisson_nll_loss_backward(grad_output, input, target, log_input, full, eps, reduction, compute_grad_target) */
static PyObject *fast_poisson_nll_loss_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (!bound || nargs != 8)
        Py_RETURN_NONE;
    int want_gt = bool_of(args[7]);
    if (want_gt < 0)
        Py_RETURN_NONE;
    buffers b = BUFFERS;
    poisson p;
    real g_scratch;
    int ok;
    if (!poisson_of(&b, args + 1, &p))
        return python(&b);
    const void *go = grad_output_of(&b, args[0], p.red, p.x->ndim, p.x->shape, p.f64, &g_scratch, &ok);
    if (!ok)
        return python(&b);
    void *gx_data, *gt_data = NULL;
    PyObject *gx = new_array(&b, p.x->ndim, p.x->shape, p.f64, &gx_data);
    PyObject *gt = gx != NULL && want_gt ? new_array(&b, p.x->ndim, p.x->shape, p.f64, &gt_data) : NULL;
    if (gx == NULL || (want_gt && gt == NULL))
        return finish(&b, NULL);
    size_t n = (size_t)size_of(p.x);
    nllk_status s;
    CALL(n, s,
         p.f64 ? lib.poisson_nll_bwd_f64(ptr(p.x), ptr(p.t), n, p.li, p.fu, p.eps, p.red, go, gx_data, gt_data)
               : lib.poisson_nll_bwd_f32(ptr(p.x), ptr(p.t), n, p.li, p.fu, p.eps, p.red, go, gx_data, gt_data));
    if (s != NLLK_OK)
        return python(&b);
    return finish(&b, want_gt ? PyTuple_Pack(2, gx, gt) : Py_NewRef(gx));
}

/* ---- cross-entropy -------------------------------------------------------------------------------------------- */
/* Class indices (g.t's kind an integer) or probabilities (prob = 1: target of input's shape and dtype; then
 * g.ttype is unused and out_shape is (N, d1..dK), () for a 1-D input). */
typedef struct {
    classes g;
    int prob;
    int64_t ii;
    double ls;
    Py_ssize_t out_shape[64];
} ce;

/* input, target, weight, ignore_index, reduction, label_smoothing as _api._ce_prepare takes them (0: the Python
 * path). */
static int ce_of(buffers *b, PyObject *const *args, ce *e)
{
    int red = reduction_of(args[4]);
    if (red < 0 || !int64_of(args[3], &e->ii) || !smoothing_of(args[5], &e->ls))
        return 0;
    classes *g = &e->g;
    const Py_buffer *x = array(b, args[0]), *t = array(b, args[1]);
    if (x == NULL || t == NULL || x->ndim < 1 || x->ndim > 64)
        return 0;
    e->prob = same_shape(x, t);
    if (!e->prob)
        return classes_from(b, x, t, args[2], red, g);
    int k = kind_of(x);
    if (e->ii >= 0 || (k != K_F32 && k != K_F64) || kind_of(t) != k)
        return 0; /* (errors, or a promotion: the Python path) */
    g->x = x, g->t = t, g->f64 = k == K_F64, g->red = red;
    if (x->ndim == 1) {
        g->n = 1, g->c = (size_t)x->shape[0], g->d = 1, g->out_ndim = 0;
    } else {
        g->n = (size_t)x->shape[0], g->c = (size_t)x->shape[1], g->d = 1;
        e->out_shape[0] = x->shape[0];
        for (int i = 2; i < x->ndim; i++) {
            e->out_shape[i - 1] = x->shape[i];
            g->d *= (size_t)x->shape[i];
        }
        g->out_ndim = x->ndim - 1;
    }
    g->out_shape = e->out_shape;
    return weight_of(b, args[2], g);
}

static nllk_status ce_prob_fwd(const ce *e, void *out, void *lse)
{
    const classes *g = &e->g;
    nllk_status s;
    CALL(g->n * g->c * g->d, s,
         g->f64
             ? lib.cross_entropy_prob_fwd_f64(ptr(g->x), ptr(g->t), g->n, g->c, g->d, g->w, e->ls, g->red, out, lse)
             : lib.cross_entropy_prob_fwd_f32(ptr(g->x), ptr(g->t), g->n, g->c, g->d, g->w, e->ls, g->red, out, lse));
    return s;
}

/* cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing) and cross_entropy_forward (the
 * same plus total_weight and lse). */
static PyObject *ce_forward(PyObject *const *args, Py_ssize_t nargs, int full)
{
    if (!bound || nargs != 6)
        Py_RETURN_NONE;
    buffers b = BUFFERS;
    ce e;
    if (!ce_of(&b, args, &e))
        return python(&b);
    const classes *g = &e.g;
    void *out_data, *tw_data = NULL, *lse_data = NULL;
    PyObject *out = g->red == NLLK_REDUCTION_NONE ? new_array(&b, g->out_ndim, g->out_shape, g->f64, &out_data)
                                                  : new_array(&b, 0, NULL, g->f64, &out_data);
    PyObject *tw = NULL, *lse = NULL;
    if (out != NULL && full) {
        tw = new_array(&b, 0, NULL, g->f64, &tw_data);
        lse = tw == NULL ? NULL : new_array(&b, g->out_ndim, g->out_shape, g->f64, &lse_data);
    }
    if (out == NULL || (full && lse == NULL))
        return finish(&b, NULL);
    if (full && e.prob) { /* the 'mean' divisor N*d, as np.asarray(n * d, dtype) converts it */
        double nd = (double)(g->n * g->d);
        if (g->f64)
            memcpy(tw_data, &nd, sizeof nd);
        else
            memcpy(tw_data, &(float){(float)nd}, sizeof(float));
    } else if (full) {
        memset(tw_data, 0, g->f64 ? sizeof(double) : sizeof(float));
    }
    nllk_status s = e.prob ? ce_prob_fwd(&e, out_data, lse_data) : ce_fwd(g, e.ii, e.ls, out_data, tw_data, lse_data);
    if (s != NLLK_OK)
        return python(&b);
    return finish(&b, full ? PyTuple_Pack(3, out, tw, lse) : Py_NewRef(out));
}

static PyObject *fast_cross_entropy(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return ce_forward(args, nargs, 0);
}

static PyObject *fast_cross_entropy_forward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return ce_forward(args, nargs, 1);
}

/* cross_entropy_backward(grad_output, input, target, weight, ignore_index, reduction, label_smoothing,
 *                        total_weight, lse, compute_grad_target) */
static PyObject *fast_cross_entropy_backward(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (!bound || nargs != 10)
        Py_RETURN_NONE;
    int want_gt = bool_of(args[9]);
    if (want_gt < 0)
        Py_RETURN_NONE;
    buffers b = BUFFERS;
    ce e;
    real g_scratch;
    int ok;
    if (!ce_of(&b, args + 1, &e) || (want_gt && !e.prob))
        return python(&b);
    const classes *g = &e.g;
    const void *go = grad_output_of(&b, args[0], g->red, g->out_ndim, g->out_shape, g->f64, &g_scratch, &ok);
    if (!ok)
        return python(&b);
    const void *lse = NULL;
    if (args[8] != Py_None) {
        const Py_buffer *l = array(&b, args[8]);
        if (l == NULL || (size_t)size_of(l) != g->n * g->d || kind_of(l) != (g->f64 ? K_F64 : K_F32))
            return python(&b);
        lse = ptr(l);
    }
    void *gx_data, *gt_data = NULL;
    PyObject *gx = new_array(&b, g->x->ndim, g->x->shape, g->f64, &gx_data);
    PyObject *gt = gx != NULL && want_gt ? new_array(&b, g->x->ndim, g->x->shape, g->f64, &gt_data) : NULL;
    if (gx == NULL || (want_gt && gt == NULL))
        return finish(&b, NULL);
    nllk_status s;
    if (e.prob) {
        CALL(g->n * g->c * g->d, s,
             g->f64 ? lib.cross_entropy_prob_bwd_f64(go, ptr(g->x), ptr(g->t), g->n, g->c, g->d, g->w, e.ls, g->red,
                                                     lse, gx_data, gt_data)
                    : lib.cross_entropy_prob_bwd_f32(go, ptr(g->x), ptr(g->t), g->n, g->c, g->d, g->w, e.ls, g->red,
                                                     lse, gx_data, gt_data));
        if (s != NLLK_OK)
            return python(&b);
        return finish(&b, want_gt ? PyTuple_Pack(2, gx, gt) : Py_NewRef(gx));
    }
    double total_weight = 0.0;
    if (args[7] != Py_None) {
        if (!total_weight_of(&b, args[7], &total_weight))
            return python(&b);
    } else if (g->red == NLLK_REDUCTION_MEAN) {
        /* as the Python path: a forward for total_weight, which also gives lse when the caller gave none */
        real tw = {0}, scratch;
        size_t lse_size = g->n * g->d * (g->f64 ? sizeof(double) : sizeof(float));
        if (lse == NULL && lse_size) {
            b.mem = PyMem_Malloc(lse_size);
            if (b.mem == NULL)
                return finish(&b, PyErr_NoMemory());
        }
        if (ce_fwd(g, e.ii, e.ls, &scratch, &tw, b.mem) != NLLK_OK)
            return python(&b);
        if (lse == NULL)
            lse = b.mem;
        total_weight = real_value(g->f64, &tw);
    }
    CALL(g->n * g->c * g->d, s,
         g->f64 ? lib.cross_entropy_bwd_f64(go, ptr(g->x), ptr(g->t), g->ttype, g->n, g->c, g->d, g->w, e.ii, e.ls,
                                            g->red, total_weight, lse, gx_data)
                : lib.cross_entropy_bwd_f32(go, ptr(g->x), ptr(g->t), g->ttype, g->n, g->c, g->d, g->w, e.ii, e.ls,
                                            g->red, (float)total_weight, lse, gx_data));
    if (s != NLLK_OK)
        return python(&b);
    return finish(&b, Py_NewRef(gx));
}

/* ---- binding -------------------------------------------------------------------------------------------------- */
/* bind(addresses, numpy.ndarray, numpy.empty, dtype float32, dtype float64): addresses are the library's
 * functions named in NAMES, in that order (ctypes.cast(function, c_void_p).value). */
static PyObject *fast_bind(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 5 || !PyTuple_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "bind(addresses, ndarray, empty, float32, float64)");
        return NULL;
    }
    static const char *const names[] = {
#define X(name) #name,
        NLLK_FAST_FUNCS(X)
#undef X
    };
    const Py_ssize_t count = (Py_ssize_t)(sizeof names / sizeof names[0]);
    if (PyTuple_GET_SIZE(args[0]) != count) {
        PyErr_Format(PyExc_ValueError, "bind: expected %zd addresses", count);
        return NULL;
    }
    void *addr[sizeof names / sizeof names[0]];
    for (Py_ssize_t i = 0; i < count; i++) {
        addr[i] = PyLong_AsVoidPtr(PyTuple_GET_ITEM(args[0], i));
        if (addr[i] == NULL) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "bind: no address for %s", names[i]);
            return NULL;
        }
    }
    bound = 0;
    Py_ssize_t i = 0;
#define X(name) memcpy(&lib.name, &addr[i++], sizeof(void *));
    NLLK_FAST_FUNCS(X)
#undef X
    Py_XSETREF(ndarray_type, Py_NewRef(args[1]));
    Py_XSETREF(np_empty, Py_NewRef(args[2]));
    Py_XSETREF(dtypes[0], Py_NewRef(args[3]));
    Py_XSETREF(dtypes[1], Py_NewRef(args[4]));
    bound = 1;
    Py_RETURN_NONE;
}

#define METHOD(name, doc)                                                                                              \
    {                                                                                                                  \
#        name, (PyCFunction)(void (*)(void))fast_##name, METH_FASTCALL, doc                                            \
    }
static PyMethodDef methods[] = {
    METHOD(bind, "bind(addresses, ndarray, empty, float32, float64): the library's functions (NAMES order)"),
    METHOD(nll_loss, "nll_loss(input, target, weight, ignore_index, reduction) -> out, or None"),
    METHOD(nll_loss_forward, "nll_loss_forward(...) -> (out, total_weight), or None"),
    METHOD(nll_loss_backward,
           "nll_loss_backward(grad_output, input, target, weight, ignore_index, reduction, total_weight)"),
    METHOD(poisson_nll_loss, "poisson_nll_loss(input, target, log_input, full, eps, reduction) -> out, or None"),
    METHOD(poisson_nll_loss_backward, "poisson_nll_loss_backward(grad_output, input, target, log_input, full, eps, "
                                      "reduction, compute_grad_target)"),
    METHOD(cross_entropy, "cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)"),
    METHOD(cross_entropy_forward, "cross_entropy_forward(...) -> (out, total_weight, lse), or None"),
    METHOD(cross_entropy_backward, "cross_entropy_backward(grad_output, input, target, weight, ignore_index, "
                                   "reduction, label_smoothing, total_weight, lse, compute_grad_target)"),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "_nllk_fast",
    "nllk's compiled numpy front end (see python/src/nllk_fast.c): None from a function means the Python path.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__nllk_fast(void)
{
    /* NAMES: the library's functions bind() takes, in its order, separated by ';' */
#define X(name) ";nllk_" #name
    static const char all[] = "" NLLK_FAST_FUNCS(X);
#undef X
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (empty_tuple == NULL)
        empty_tuple = PyTuple_New(0);
    if (empty_tuple == NULL || PyModule_AddStringConstant(m, "NAMES", all + 1) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
