#include "error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

static _Thread_local char last_error[512];
static _Thread_local uint64_t last_error_index = NLLK_NO_INDEX;

static void record(const char *fmt, va_list ap) { vsnprintf(last_error, sizeof last_error, fmt, ap); }

nllk_status nllk_fail(nllk_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(fmt, ap);
    va_end(ap);
    last_error_index = NLLK_NO_INDEX;
    return status;
}

nllk_status nllk_fail_at(nllk_status status, uint64_t index, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record(fmt, ap);
    va_end(ap);
    last_error_index = index;
    return status;
}

nllk_status nllk_ok(void)
{
    last_error[0] = '\0';
    last_error_index = NLLK_NO_INDEX;
    return NLLK_OK;
}

uint64_t nllk_last_error_index(void) { return last_error_index; }

int nllk_mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > (size_t)-1 / a)
        return 0;
    *out = a * b;
    return 1;
}

const char *nllk_last_error(void) { return last_error; }

const char *nllk_status_name(nllk_status status)
{
    switch (status) {
    case NLLK_OK: return "NLLK_OK";
    case NLLK_ERR_NULL_POINTER: return "NLLK_ERR_NULL_POINTER";
    case NLLK_ERR_INVALID_ARGUMENT: return "NLLK_ERR_INVALID_ARGUMENT";
    case NLLK_ERR_SIZE_OVERFLOW: return "NLLK_ERR_SIZE_OVERFLOW";
    case NLLK_ERR_TARGET_OUT_OF_RANGE: return "NLLK_ERR_TARGET_OUT_OF_RANGE";
    case NLLK_ERR_UNSUPPORTED: return "NLLK_ERR_UNSUPPORTED";
    }
    return "unknown";
}

#define NLLK_STR2(x) #x
#define NLLK_STR(x) NLLK_STR2(x)
const char *nllk_version_string(void)
{
    return NLLK_STR(NLLK_VERSION_MAJOR) "." NLLK_STR(NLLK_VERSION_MINOR) "." NLLK_STR(NLLK_VERSION_PATCH);
}
unsigned nllk_version_number(void) { return NLLK_VERSION_NUMBER; }
