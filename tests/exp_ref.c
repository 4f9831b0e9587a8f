/* The reference exp of test_exp16.c: SLEEF's own scalar Sleef_expf1_u10purecfma, the function every ISA's v_exp
 * must equal bit for bit (nllk.h, "Instruction sets"). Compiled alone with -mfma (sleef.h declares the purecfma
 * functions only under FP_FAST_FMA); test_exp16 calls it only when the CPU has FMA. */
#include <math.h> /* FP_FAST_FMA, which sleef.h tests */
#include <sleef.h>

float exp_ref(float x);
float exp_ref(float x) { return Sleef_expf1_u10purecfma(x); }

float log_ref(float x);
float log_ref(float x) { return Sleef_logf1_u10purecfma(x); }
