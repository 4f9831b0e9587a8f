/* The dtype descriptors (dtype.h): storage and compute type float (f32), double (f64); storage bfloat16 or float16
 * with compute type float (bf16, f16; the conversions: kernels/common/half.h). */
#include "dtype.h"

#include "../kernels/common/half.h"

static double load_f32(const void *p) { return *(const float *)p; }
static void store_f32(void *p, double v) { *(float *)p = (float)v; }
static void div_f32(void *q, const void *a, double b) { *(float *)q = *(const float *)a / (float)b; }

static double load_f64(const void *p) { return *(const double *)p; }
static void store_f64(void *p, double v) { *(double *)p = v; }
static void div_f64(void *q, const void *a, double b) { *(double *)q = *(const double *)a / b; }

static double load_bf16(const void *p) { return nllk_bf16_to_f32(*(const uint16_t *)p); }
static void store_bf16(void *p, double v) { *(uint16_t *)p = nllk_f64_to_bf16(v); }
static void div_bf16(void *q, const void *a, double b)
{
    *(uint16_t *)q = nllk_f32_to_bf16(nllk_bf16_to_f32(*(const uint16_t *)a) / (float)b);
}

static double load_f16(const void *p) { return nllk_f16_to_f32(*(const uint16_t *)p); }
static void store_f16(void *p, double v) { *(uint16_t *)p = nllk_f64_to_f16(v); }
static void div_f16(void *q, const void *a, double b)
{
    *(uint16_t *)q = nllk_f32_to_f16(nllk_f16_to_f32(*(const uint16_t *)a) / (float)b);
}

const nllk_dtype_desc nllk_dtype_f32 = {NLLK_F32, "f32", sizeof(float), NLLK_SLOT_F32, load_f32, store_f32, div_f32};
const nllk_dtype_desc nllk_dtype_f64 = {NLLK_F64, "f64", sizeof(double), NLLK_SLOT_F64, load_f64, store_f64, div_f64};

const nllk_dtype_desc nllk_dtype_bf16 = {NLLK_BF16, "bf16", 2, NLLK_SLOT_BF16, load_bf16, store_bf16, div_bf16};
const nllk_dtype_desc nllk_dtype_f16 = {NLLK_F16, "f16", 2, NLLK_SLOT_F16, load_f16, store_f16, div_f16};

const nllk_dtype_desc *nllk_dtype_of(nllk_dtype id)
{
    static const nllk_dtype_desc *const all[] = {&nllk_dtype_f32, &nllk_dtype_f64, &nllk_dtype_bf16, &nllk_dtype_f16};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->id == id)
            return all[i];
    return NULL;
}
