/* The dtype descriptor: everything the driver knows of an element type. The driver is written once over it
 * (dispatch/nll.c, dispatch/poisson.c); each public _f32/_f64 function is one line passing its descriptor.
 *
 * The storage type (what the caller's arrays hold, `size` bytes each) is separate from the compute type (the
 * kernels' arithmetic: float for f32, double for f64; a 16-bit storage type would compute in float). The driver
 * never does arithmetic in either: it converts through the descriptor (load, store, div), so the few scalar
 * steps it owns - mean = total / count rounded to the dtype, the backward's grad_output / count - give the bits
 * the kernels' own arithmetic would. Adding a dtype: a descriptor here (dtype.c), its kernel slot
 * (dispatch/kernels.h) and build (CMakeLists.txt), its public functions (CONTRIBUTING.md). */
#ifndef NLLK_DISPATCH_DTYPE_H
#define NLLK_DISPATCH_DTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "nllk.h"

/* Room for one element of any dtype (a scalar the driver computes and passes to the kernels); a member of each
 * storage type, so that the descriptors' loads and stores through typed pointers are valid accesses. */
typedef union nllk_scalar {
    float f32;
    double f64;
    uint16_t h16;
    unsigned char bytes[16];
} nllk_scalar;

typedef struct nllk_dtype_desc {
    nllk_dtype id;    /* the public enum value (accumulators record it)        */
    const char *name; /* "f32": the suffix of the public functions and kernels  */
    size_t size;      /* bytes of one stored element                            */
    int slot;         /* its kernels: nllk_isa.kernels[slot]                    */
    /* one stored element, exactly, as a double */
    double (*load)(const void *p);
    /* v rounded once to the storage type */
    void (*store)(void *p, double v);
    /* *q = a / b in the compute type, b first rounded to it, the quotient rounded to the storage type. b is a
     * count below 2^53 or a value of this dtype: exact in double, so it rounds as the compute type's own
     * conversion would. */
    void (*div)(void *q, const void *a, double b);
} nllk_dtype_desc;

extern const nllk_dtype_desc nllk_dtype_f32;
extern const nllk_dtype_desc nllk_dtype_f64;
/* 16-bit storage, float compute: load exact, store rounded once from double (kernels/common/half.h) */
extern const nllk_dtype_desc nllk_dtype_bf16;
extern const nllk_dtype_desc nllk_dtype_f16;

/* The descriptor of a public dtype value; NULL for a value that names none. */
const nllk_dtype_desc *nllk_dtype_of(nllk_dtype id);

/* v rounded to the dtype and widened back to double, exactly (a reduction's result as the caller sees it). */
static inline double nllk_round_to(const nllk_dtype_desc *dt, double v)
{
    nllk_scalar s;
    dt->store(&s, v);
    return dt->load(&s);
}

/* Element i of an array of this dtype. */
static inline const void *nllk_elem(const nllk_dtype_desc *dt, const void *p, size_t i)
{
    return (const char *)p + i * dt->size;
}
static inline void *nllk_elem_mut(const nllk_dtype_desc *dt, void *p, size_t i) { return (char *)p + i * dt->size; }

#endif
