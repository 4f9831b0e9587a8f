/* The portable scalar kernels: the common loops over the one-lane map.
 *
 * On x86-64 this file is compiled twice: the baseline (no FMA; SLEEF purec; the table nllk_kernels_scalar, for
 * CPUs without FMA) and with -mfma (SLEEF purecfma; nllk_kernels_scalar_fma, the "scalar" ISA of every CPU with
 * FMA, bit-identical to the vector kernels). On AArch64 it is compiled once, with purecfma. */
#include "vec.h"

#include "../common/kernels_impl.h"
