/* npy.h — a strict reader and a writer of NumPy .npy headers (format versions 1.0, 2.0, 3.0).
 *
 * The parser takes bytes (no file access), so the fuzzer and the corpus test drive exactly the code the
 * program runs. It accepts what numpy.save writes for the dtypes nllk-score uses — little-endian (or '|' /
 * '=' for one-byte and native types on a little-endian host) float32, float64, float16, int8..int64,
 * uint8..uint64 — and
 * classifies everything else (not an .npy, a malformed or truncated header, Fortran order, big-endian,
 * an unsupported dtype, a shape whose size overflows) with a one-line message. */
#ifndef NLLK_SCORE_NPY_H
#define NLLK_SCORE_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 32
/* A header longer than this is rejected (numpy itself refuses more than 10000 bytes by default). */
#define NPY_MAX_HEADER (1u << 20)

typedef enum npy_dtype {
    NPY_F32 = 0, NPY_F64, NPY_I64, NPY_I32, NPY_U8, /* the first five: what the losses read directly        */
    NPY_I8, NPY_I16, NPY_U16, NPY_U32, NPY_U64,     /* integer counts (Poisson targets, converted exactly)   */
    NPY_F16                                         /* float16 ('<f2'): 16-bit storage, read directly too    */
} npy_dtype;

typedef enum npy_status {
    NPY_OK = 0,
    NPY_E_NOT_NPY,     /* no \x93NUMPY magic                                                         */
    NPY_E_VERSION,     /* a format version other than 1.0, 2.0, 3.0                                  */
    NPY_E_TRUNCATED,   /* fewer bytes than the preamble, header or data need                          */
    NPY_E_HEADER,      /* the header dictionary is malformed                                         */
    NPY_E_FORTRAN,     /* fortran_order: True                                                        */
    NPY_E_BIG_ENDIAN,  /* a big-endian dtype                                                         */
    NPY_E_DTYPE,       /* a dtype other than the eleven above (or a structured one)                  */
    NPY_E_SHAPE        /* too many dimensions, or a size that overflows 64 bits                      */
} npy_status;

typedef struct npy_header {
    int major, minor;
    npy_dtype dtype;
    size_t itemsize;
    int ndim;
    uint64_t shape[NPY_MAX_DIMS];
    uint64_t count;       /* product of shape (1 for a 0-d array)                          */
    uint64_t data_offset; /* bytes before the data: 10 or 12 (preamble) + header length    */
    uint64_t nbytes;      /* count * itemsize                                              */
} npy_header;

/* The number of bytes the preamble + header need, from the first `len` bytes (at least 12 for v2/v3, 10 for
 * v1 — pass what you have). Returns NPY_OK and sets *need, or NPY_E_NOT_NPY / NPY_E_VERSION /
 * NPY_E_TRUNCATED / NPY_E_HEADER (header longer than NPY_MAX_HEADER). */
npy_status npy_header_size(const unsigned char *buf, size_t len, uint64_t *need, char *err, size_t errlen);

/* Parses a complete preamble + header in buf[0, len). Does not check that the data is present: compare
 * h->data_offset + h->nbytes with the file size. On failure err holds one line (no newline). */
npy_status npy_parse(const unsigned char *buf, size_t len, npy_header *h, char *err, size_t errlen);

/* "float32", "float64", "float16", "int64", "int32", "uint8", ... */
const char *npy_dtype_name(npy_dtype t);
size_t npy_dtype_size(npy_dtype t);

/* Writes a version 1.0 (2.0 if the header needs it) preamble + header for a C-order little-endian array,
 * padded with spaces and a final newline so the data starts at a multiple of 64 bytes, as numpy does.
 * Returns its length, or 0 if cap is too small (NPY_MAX_HEADER is always enough). */
size_t npy_format_header(unsigned char *buf, size_t cap, npy_dtype t, int ndim, const uint64_t *shape);

#endif
