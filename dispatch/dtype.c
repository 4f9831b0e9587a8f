/* The dtype descriptors (dtype.h): storage and compute type float (f32), double (f64). */
#include "dtype.h"

static double load_f32(const void *p) { return *(const float *)p; }
static void store_f32(void *p, double v) { *(float *)p = (float)v; }
static void div_f32(void *q, const void *a, double b) { *(float *)q = *(const float *)a / (float)b; }

static double load_f64(const void *p) { return *(const double *)p; }
static void store_f64(void *p, double v) { *(double *)p = v; }
static void div_f64(void *q, const void *a, double b) { *(double *)q = *(const double *)a / b; }

const nllk_dtype_desc nllk_dtype_f32 = {NLLK_F32, "f32", sizeof(float), NLLK_SLOT_F32, load_f32, store_f32, div_f32};
const nllk_dtype_desc nllk_dtype_f64 = {NLLK_F64, "f64", sizeof(double), NLLK_SLOT_F64, load_f64, store_f64, div_f64};

const nllk_dtype_desc *nllk_dtype_of(nllk_dtype id)
{
    static const nllk_dtype_desc *const all[] = {&nllk_dtype_f32, &nllk_dtype_f64};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->id == id)
            return all[i];
    return NULL;
}
