/* Choice of the active kernel table: detected once (cpuid + xgetbv), optionally lowered by the NLLK_ISA
 * environment variable or nllk_set_isa, and cached in atomics (any thread may call anything at any time). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "error.h"
#include "kernels.h"
#include "nllk.h"

typedef struct isa_entry {
    const char *name;
    unsigned need; /* NLLK_CPU_* bits the CPU must have */
} isa_entry;

/* The ISAs of this build, lowest level first (each level's CPU requirement implies the lower ones'). */
#if defined(__x86_64__)
static const isa_entry isas[] = {{"scalar", 0}, {"avx2", NLLK_CPU_AVX2}, {"avx512", NLLK_CPU_AVX512}};
#elif defined(__aarch64__)
static const isa_entry isas[] = {{"scalar", 0}, {"neon", NLLK_CPU_NEON}};
#else
static const isa_entry isas[] = {{"scalar", 0}};
#endif
enum { NUM_ISAS = (int)(sizeof isas / sizeof isas[0]) };

/* Every name nllk knows, on any architecture. */
static int known_name(const char *name)
{
    static const char *const all[] = {"scalar", "avx2", "avx512", "neon"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, all[i]) == 0)
            return 1;
    return 0;
}

static int index_of(const char *name)
{
    for (int i = 0; i < NUM_ISAS; i++)
        if (strcmp(name, isas[i].name) == 0)
            return i;
    return -1;
}

static unsigned features(void)
{
    static atomic_uint cached; /* features | 0x80000000 once detected */
    unsigned f = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!f) {
        f = nllk_cpu_features() | 0x80000000u;
        atomic_store_explicit(&cached, f, memory_order_relaxed);
    }
    return f & 0x7fffffffu;
}

static int supported(int i) { return i >= 0 && (features() & isas[i].need) == isas[i].need; }

static const nllk_kernels *table_of(int i)
{
    const char *name = isas[i].name;
#if defined(__x86_64__)
    if (strcmp(name, "avx512") == 0)
        return &nllk_kernels_avx512;
    if (strcmp(name, "avx2") == 0)
        return &nllk_kernels_avx2;
    /* scalar: the FMA build (purecfma, bit-identical to the vector kernels) when the CPU has FMA */
    return (features() & NLLK_CPU_FMA) ? &nllk_kernels_scalar_fma : &nllk_kernels_scalar;
#elif defined(__aarch64__)
    return strcmp(name, "neon") == 0 ? &nllk_kernels_neon : &nllk_kernels_scalar;
#else
    (void)name;
    return &nllk_kernels_scalar;
#endif
}

/* The highest supported level, lowered to the level NLLK_ISA names (an unknown or foreign name is ignored). */
static const nllk_kernels *automatic_table(void)
{
    static _Atomic(const nllk_kernels *) cached;
    const nllk_kernels *t = atomic_load_explicit(&cached, memory_order_acquire);
    if (t)
        return t;
    int best = 0;
    for (int i = 0; i < NUM_ISAS; i++)
        if (supported(i))
            best = i;
    const char *env = getenv("NLLK_ISA");
    if (env && *env) {
        const int want = index_of(env);
        if (want >= 0 && want < best)
            best = want;
    }
    t = table_of(best);
    atomic_store_explicit(&cached, t, memory_order_release); /* racing threads store the same pointer */
    return t;
}

static _Atomic(const nllk_kernels *) forced; /* set by nllk_set_isa; NULL: automatic */

const nllk_kernels *nllk_active_kernels(void)
{
    const nllk_kernels *t = atomic_load_explicit(&forced, memory_order_acquire);
    return t ? t : automatic_table();
}

const char *nllk_active_isa(void) { return nllk_active_kernels()->isa; }

const char *nllk_isa_name(int i) { return i >= 0 && i < NUM_ISAS ? isas[i].name : NULL; }

int nllk_isa_supported(const char *name)
{
    return name && supported(index_of(name));
}

nllk_status nllk_set_isa(const char *name)
{
    if (!name || !*name) {
        atomic_store_explicit(&forced, NULL, memory_order_release);
        return nllk_ok();
    }
    if (!known_name(name))
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "unknown instruction set \"%.32s\" (scalar, avx2, avx512, neon)",
                         name);
    const int i = index_of(name);
    if (i < 0)
        return nllk_fail(NLLK_ERR_UNSUPPORTED, "instruction set \"%s\" is not part of this build", name);
    if (!supported(i))
        return nllk_fail(NLLK_ERR_UNSUPPORTED, "this CPU does not support instruction set \"%s\"", name);
    atomic_store_explicit(&forced, table_of(i), memory_order_release);
    return nllk_ok();
}
