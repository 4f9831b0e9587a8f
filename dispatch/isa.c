/* The active ISA: the registry (kernels/isas.h) walked in order. Detected once (cpuid + xgetbv), optionally
 * lowered by the NLLK_ISA environment variable or nllk_set_isa, and cached in atomics (any thread may call
 * anything at any time). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "error.h"
#include "kernels.h"
#include "nllk.h"

/* the kernel tables of this architecture's builds, one per dtype (defined by kernels/common/kernels.c) */
#define NLLK_ISA(name, build, dir, arch, need, flags)                                                                  \
    NLLK_ARCH_##arch(extern const nllk_kernels nllk_f32_kernels__##build, nllk_f64_kernels__##build,                \
                     nllk_bf16_kernels__##build, nllk_f16_kernels__##build;)
#include "../kernels/isas.h"
#undef NLLK_ISA

/* The builds of this architecture, in registry order. */
static const nllk_isa isas[] = {
#define NLLK_ISA(name, build, dir, arch, need, flags)                                                                  \
    NLLK_ARCH_##arch({#name,                                                                                    \
                      #build,                                                                                   \
                      need,                                                                                     \
                      {&nllk_f32_kernels__##build, &nllk_f64_kernels__##build, &nllk_bf16_kernels__##build,     \
                       &nllk_f16_kernels__##build}},                                                            \
                     )
#include "../kernels/isas.h"
#undef NLLK_ISA
};
enum { NUM_ISAS = (int)(sizeof isas / sizeof isas[0]) };

/* Every name in the registry, of any architecture: a name of another architecture is "unsupported", not
 * "unknown". */
static const char *const all_names[] = {
#define NLLK_ISA(name, build, dir, arch, need, flags) #name,
#include "../kernels/isas.h"
#undef NLLK_ISA
};
enum { NUM_ALL_NAMES = (int)(sizeof all_names / sizeof all_names[0]) };

static int known_name(const char *name)
{
    for (int i = 0; i < NUM_ALL_NAMES; i++)
        if (strcmp(name, all_names[i]) == 0)
            return 1;
    return 0;
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

static int supported(const nllk_isa *e) { return (features() & e->need) == e->need; }

/* The build serving `name`: the last supported entry of that name; NULL if none is (or the name is not here). */
static const nllk_isa *build_of(const char *name)
{
    const nllk_isa *best = NULL;
    for (int i = 0; i < NUM_ISAS; i++)
        if (strcmp(isas[i].name, name) == 0 && supported(&isas[i]))
            best = &isas[i];
    return best;
}

static int name_listed(const char *name)
{
    for (int i = 0; i < NUM_ISAS; i++)
        if (strcmp(isas[i].name, name) == 0)
            return 1;
    return 0;
}

/* The highest supported entry, lowered to the name NLLK_ISA gives (an unknown, foreign or higher name is
 * ignored). */
static const nllk_isa *automatic(void)
{
    static _Atomic(const nllk_isa *) cached;
    const nllk_isa *e = atomic_load_explicit(&cached, memory_order_acquire);
    if (e)
        return e;
    for (int i = 0; i < NUM_ISAS; i++)
        if (supported(&isas[i]))
            e = &isas[i];
    const char *env = getenv("NLLK_ISA");
    const nllk_isa *want = env && *env ? build_of(env) : NULL;
    if (want && want < e)
        e = want;
    atomic_store_explicit(&cached, e, memory_order_release); /* racing threads store the same pointer */
    return e;
}

static _Atomic(const nllk_isa *) forced; /* set by nllk_set_isa; NULL: automatic */

const nllk_isa *nllk_active(void)
{
    const nllk_isa *e = atomic_load_explicit(&forced, memory_order_acquire);
    return e ? e : automatic();
}

const char *nllk_active_isa(void) { return nllk_active()->name; }

/* The i-th distinct name (lines of one name are consecutive). */
const char *nllk_isa_name(int i)
{
    for (int k = 0; k < NUM_ISAS; k++)
        if ((k == 0 || strcmp(isas[k].name, isas[k - 1].name) != 0) && i-- == 0)
            return isas[k].name;
    return NULL;
}

int nllk_isa_supported(const char *name) { return name && build_of(name) != NULL; }

nllk_status nllk_set_isa(const char *name)
{
    if (!name || !*name) {
        atomic_store_explicit(&forced, NULL, memory_order_release);
        return nllk_ok();
    }
    if (!known_name(name)) {
        char list[128] = "";
        for (int i = 0; i < NUM_ALL_NAMES; i++)
            if (i == 0 || strcmp(all_names[i], all_names[i - 1]) != 0)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", all_names[i]);
        return nllk_fail(NLLK_ERR_INVALID_ARGUMENT, "unknown instruction set \"%.32s\" (%s)", name, list);
    }
    if (!name_listed(name))
        return nllk_fail(NLLK_ERR_UNSUPPORTED, "instruction set \"%s\" is not part of this build", name);
    const nllk_isa *e = build_of(name);
    if (!e)
        return nllk_fail(NLLK_ERR_UNSUPPORTED, "this CPU does not support instruction set \"%s\"", name);
    atomic_store_explicit(&forced, e, memory_order_release);
    return nllk_ok();
}
