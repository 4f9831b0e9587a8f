/* Choice of the active kernel table. */
#include "kernels.h"
#include "nllk.h"

const nllk_kernels *nllk_active_kernels(void) { return &nllk_kernels_scalar; }

const char *nllk_active_isa(void) { return nllk_active_kernels()->isa; }
