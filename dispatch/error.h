/* The per-thread error message and size arithmetic shared by the entry points. */
#ifndef NLLK_DISPATCH_ERROR_H
#define NLLK_DISPATCH_ERROR_H

#include <stddef.h>
#include <stdint.h>

#include "nllk.h"

#if defined(__GNUC__)
#  define NLLK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define NLLK_PRINTF(a, b)
#endif

/* Records the calling thread's message and returns status, so that `return nllk_fail(...)` reads naturally. */
nllk_status nllk_fail(nllk_status status, const char *fmt, ...) NLLK_PRINTF(2, 3);

/* As nllk_fail, and records `index` (a global flat element index) for nllk_last_error_index(). */
nllk_status nllk_fail_at(nllk_status status, uint64_t index, const char *fmt, ...) NLLK_PRINTF(3, 4);

/* Clears the calling thread's message and error index; returns NLLK_OK. */
nllk_status nllk_ok(void);

/* *out = a * b; returns 0 on overflow. */
int nllk_mul_size(size_t a, size_t b, size_t *out);

#endif
