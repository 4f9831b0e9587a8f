/* npy.c — .npy header parser and writer (see npy.h). No allocation, no file access, bounded loops. */
#include "npy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static npy_status fail(npy_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static npy_status fail(npy_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
        for (unsigned char *p = (unsigned char *)err; *p; p++) /* header bytes quoted: printable ASCII only */
            if (*p < 0x20 || *p >= 0x7f)
                *p = '?';
    }
    return st;
}

const char *npy_dtype_name(npy_dtype t)
{
    switch (t) {
    case NPY_F32: return "float32";
    case NPY_F64: return "float64";
    case NPY_I64: return "int64";
    case NPY_I32: return "int32";
    case NPY_U8: return "uint8";
    case NPY_I8: return "int8";
    case NPY_I16: return "int16";
    case NPY_U16: return "uint16";
    case NPY_U32: return "uint32";
    case NPY_U64: return "uint64";
    case NPY_F16: return "float16";
    }
    return "?";
}

size_t npy_dtype_size(npy_dtype t)
{
    switch (t) {
    case NPY_F32: return 4;
    case NPY_F64: return 8;
    case NPY_I64: return 8;
    case NPY_I32: return 4;
    case NPY_U8: return 1;
    case NPY_I8: return 1;
    case NPY_I16: return 2;
    case NPY_U16: return 2;
    case NPY_U32: return 4;
    case NPY_U64: return 8;
    case NPY_F16: return 2;
    }
    return 0;
}

static const char *dtype_descr(npy_dtype t)
{
    switch (t) {
    case NPY_F32: return "<f4";
    case NPY_F64: return "<f8";
    case NPY_I64: return "<i8";
    case NPY_I32: return "<i4";
    case NPY_U8: return "|u1";
    case NPY_I8: return "|i1";
    case NPY_I16: return "<i2";
    case NPY_U16: return "<u2";
    case NPY_U32: return "<u4";
    case NPY_U64: return "<u8";
    case NPY_F16: return "<f2";
    }
    return "";
}

npy_status npy_header_size(const unsigned char *buf, size_t len, uint64_t *need, char *err, size_t errlen)
{
    if (len == 0)
        return fail(NPY_E_NOT_NPY, err, errlen, "not an .npy file (empty)");
    if (len < 6 || memcmp(buf, magic, 6) != 0) {
        if (len < 6 && memcmp(buf, magic, len) == 0)
            return fail(NPY_E_TRUNCATED, err, errlen, "truncated .npy preamble (%zu bytes)", len);
        return fail(NPY_E_NOT_NPY, err, errlen, "not an .npy file (no \\x93NUMPY magic)");
    }
    if (len < 8)
        return fail(NPY_E_TRUNCATED, err, errlen, "truncated .npy preamble (%zu bytes)", len);
    const int major = buf[6], minor = buf[7];
    if (major < 1 || major > 3 || minor != 0)
        return fail(NPY_E_VERSION, err, errlen, "unsupported .npy format version %d.%d (1.0, 2.0, 3.0 are read)",
                    major, minor);
    const size_t pre = major == 1 ? 10 : 12;
    if (len < pre)
        return fail(NPY_E_TRUNCATED, err, errlen, "truncated .npy preamble (%zu bytes)", len);
    uint64_t hl = major == 1 ? (uint64_t)buf[8] | (uint64_t)buf[9] << 8
                             : (uint64_t)buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 |
                                   (uint64_t)buf[11] << 24;
    if (hl > NPY_MAX_HEADER)
        return fail(NPY_E_HEADER, err, errlen, ".npy header of %llu bytes is too long (at most %u)",
                    (unsigned long long)hl, NPY_MAX_HEADER);
    *need = pre + hl;
    return NPY_OK;
}

/* ---- a tiny tokenizer over the Python dict literal -------------------------------------------------------- */

typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes, copied to out (NUL-terminated, at most cap-1 characters). */
static int read_string(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return 0;
    const char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n' || n + 1 >= cap)
            return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return 0;
    c->p++;
    out[n] = 0;
    return 1;
}

static int read_word(cursor *c, const char *w)
{
    skip_ws(c);
    const size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return 0;
    const char *after = c->p + n;
    if (after < c->end && ((*after >= 'a' && *after <= 'z') || (*after >= 'A' && *after <= 'Z') ||
                           (*after >= '0' && *after <= '9') || *after == '_'))
        return 0;
    c->p = after;
    return 1;
}

/* A non-negative decimal integer (Python 2's trailing L tolerated). 1 ok, 0 syntax, -1 overflow. */
static int read_uint(cursor *c, uint64_t *v)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return 0;
    uint64_t x = 0;
    int overflow = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        const unsigned dgt = (unsigned)(*c->p - '0');
        if (x > (UINT64_MAX - dgt) / 10)
            overflow = 1;
        else
            x = x * 10 + dgt;
        c->p++;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l'))
        c->p++;
    *v = x;
    return overflow ? -1 : 1;
}

static int host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static npy_status parse_descr(const char *d, npy_header *h, char *err, size_t errlen)
{
    char order = '=';
    const char *t = d;
    if (*t == '<' || *t == '>' || *t == '|' || *t == '=')
        order = *t++;
    static const struct {
        const char *name;
        npy_dtype dtype;
    } known[] = {{"f4", NPY_F32}, {"f8", NPY_F64}, {"i8", NPY_I64}, {"i4", NPY_I32}, {"u1", NPY_U8},
                 {"i1", NPY_I8},   {"i2", NPY_I16},  {"u2", NPY_U16}, {"u4", NPY_U32}, {"u8", NPY_U64},
                 {"f2", NPY_F16}};
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
        if (strcmp(t, known[k].name) != 0)
            continue;
        const size_t size = npy_dtype_size(known[k].dtype);
        if (size > 1) {
            if (order == '>' || (order == '=' && !host_little_endian()))
                return fail(NPY_E_BIG_ENDIAN, err, errlen, "big-endian dtype '%s' (only little-endian is read)", d);
            if (order == '|')
                return fail(NPY_E_DTYPE, err, errlen, "dtype '%s' has no byte order", d);
        }
        h->dtype = known[k].dtype;
        h->itemsize = size;
        return NPY_OK;
    }
    return fail(NPY_E_DTYPE, err, errlen, "unsupported dtype '%s' (float32, float64, float16 and integers of 8 to 64 bits are "
                "read)",
                d);
}

npy_status npy_parse(const unsigned char *buf, size_t len, npy_header *h, char *err, size_t errlen)
{
    uint64_t need;
    npy_status st = npy_header_size(buf, len, &need, err, errlen);
    if (st != NPY_OK)
        return st;
    if (len < need)
        return fail(NPY_E_TRUNCATED, err, errlen, "truncated .npy header (%zu of %llu bytes)", len,
                    (unsigned long long)need);
    memset(h, 0, sizeof *h);
    h->major = buf[6];
    h->minor = buf[7];
    h->data_offset = need;
    const size_t pre = h->major == 1 ? 10 : 12;
    cursor c = {(const char *)buf + pre, (const char *)buf + need};
    /* v1/v2 headers are latin-1, v3 UTF-8: the dictionary itself is ASCII in both; a NUL is never valid */
    if (memchr(c.p, 0, (size_t)(c.end - c.p)))
        return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (NUL byte)");
    if (!eat(&c, '{'))
        return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (no dictionary)");
    int have_descr = 0, have_fortran = 0, have_shape = 0, fortran = 0;
    char descr_err[160] = "";
    npy_status descr_st = NPY_OK;
    for (;;) {
        if (eat(&c, '}'))
            break;
        char key[32];
        if (!read_string(&c, key, sizeof key) || !eat(&c, ':'))
            return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (expected 'key':)");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = 1;
            char d[64];
            skip_ws(&c);
            if (c.p < c.end && (*c.p == '[' || *c.p == '('))
                return fail(NPY_E_DTYPE, err, errlen, "unsupported structured dtype (a plain array is needed)");
            if (!read_string(&c, d, sizeof d))
                return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (descr is not a dtype string)");
            descr_st = parse_descr(d, h, descr_err, sizeof descr_err);
        } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
            have_fortran = 1;
            if (read_word(&c, "True"))
                fortran = 1;
            else if (read_word(&c, "False"))
                fortran = 0;
            else
                return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (fortran_order is not True/False)");
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            have_shape = 1;
            if (!eat(&c, '('))
                return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (shape is not a tuple)");
            int nd = 0, overflow = 0;
            while (!eat(&c, ')')) {
                uint64_t v = 0;
                const int r = read_uint(&c, &v);
                if (r == 0)
                    return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (bad shape entry)");
                if (r < 0)
                    overflow = 1;
                if (nd >= NPY_MAX_DIMS)
                    return fail(NPY_E_SHAPE, err, errlen, "shape has more than %d dimensions", NPY_MAX_DIMS);
                h->shape[nd++] = v;
                if (eat(&c, ','))
                    continue;
                if (!eat(&c, ')'))
                    return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (bad shape tuple)");
                if (nd == 1) /* (5) is not a tuple in Python */
                    return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (shape is not a tuple)");
                break;
            }
            if (overflow)
                return fail(NPY_E_SHAPE, err, errlen, "shape entry does not fit in 64 bits");
            h->ndim = nd;
        } else {
            return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (unexpected or repeated key '%s')", key);
        }
        if (eat(&c, ','))
            continue;
        if (eat(&c, '}'))
            break;
        return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (expected ',' or '}')");
    }
    skip_ws(&c);
    if (c.p != c.end)
        return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (text after the dictionary)");
    if (!have_descr || !have_fortran || !have_shape)
        return fail(NPY_E_HEADER, err, errlen, "malformed .npy header (missing %s)",
                    !have_descr ? "'descr'" : !have_fortran ? "'fortran_order'" : "'shape'");
    if (descr_st != NPY_OK)
        return fail(descr_st, err, errlen, "%s", descr_err);
    if (fortran)
        return fail(NPY_E_FORTRAN, err, errlen, "Fortran-order array (C order is needed: np.ascontiguousarray)");
    uint64_t count = 1;
    for (int k = 0; k < h->ndim; k++) {
        if (h->shape[k] != 0 && count > UINT64_MAX / h->shape[k])
            return fail(NPY_E_SHAPE, err, errlen, "array size overflows 64 bits");
        count *= h->shape[k];
    }
    /* every dimension may be huge when another is 0; the size itself must fit */
    for (int k = 0; k < h->ndim && count == 0; k++)
        if (h->shape[k] > (UINT64_MAX >> 4))
            return fail(NPY_E_SHAPE, err, errlen, "shape entry %llu is too large",
                        (unsigned long long)h->shape[k]);
    if (count > (UINT64_MAX - h->data_offset) / h->itemsize)
        return fail(NPY_E_SHAPE, err, errlen, "array size overflows 64 bits");
    h->count = count;
    h->nbytes = count * h->itemsize;
    return NPY_OK;
}

size_t npy_format_header(unsigned char *buf, size_t cap, npy_dtype t, int ndim, const uint64_t *shape)
{
    char dict[NPY_MAX_DIMS * 24 + 128];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", dtype_descr(t));
    for (int k = 0; k < ndim && k < NPY_MAX_DIMS; k++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, k ? ", %llu" : "%llu", (unsigned long long)shape[k]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, ndim == 1 ? ",), }" : "), }");
    size_t pre = 10, total = pre + (size_t)n + 1;
    total = (total + 63) & ~(size_t)63;
    if (total - pre > 65535) {
        pre = 12;
        total = (pre + (size_t)n + 1 + 63) & ~(size_t)63;
    }
    if (total > cap)
        return 0;
    const size_t hl = total - pre;
    memcpy(buf, magic, 6);
    buf[6] = pre == 10 ? 1 : 2;
    buf[7] = 0;
    buf[8] = (unsigned char)(hl & 0xff);
    buf[9] = (unsigned char)(hl >> 8 & 0xff);
    if (pre == 12) {
        buf[10] = (unsigned char)(hl >> 16 & 0xff);
        buf[11] = (unsigned char)(hl >> 24 & 0xff);
    }
    memcpy(buf + pre, dict, (size_t)n);
    memset(buf + pre + n, ' ', total - pre - (size_t)n - 1);
    buf[total - 1] = '\n';
    return total;
}
