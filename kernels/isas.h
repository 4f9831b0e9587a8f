/* The ISA registry: every instruction set nllk has kernels for, one line each, lowest level first.
 *
 * The one list of ISAs. dispatch/isa.c reads it as an X-macro (the entries of the target architecture become the
 * ordered table it walks: the highest entry the CPU supports is the default, NLLK_ISA and nllk_set_isa lower it);
 * CMakeLists.txt parses the NLLK_ISA lines (one kernel build per line and dtype, with the line's flags) and
 * tests/CMakeLists.txt registers every C test once per name of the target architecture (a test skips, exit 77,
 * when the CPU lacks the ISA). Adding an ISA: kernels/<dir>/vec.h and one line here (CONTRIBUTING.md).
 *
 *   name   what users select (NLLK_ISA=name, nllk_set_isa, nllk_isa_name, nllk_active_isa)
 *   build  the kernel build: the suffix of its symbols (nllk_f32_poisson_fwd__<build>) and of its CMake targets
 *   dir    kernels/<dir>/vec.h is the build's vector map
 *   arch   x86_64, aarch64 or any
 *   need   the NLLK_CPU_* bits (dispatch/cpu.h) the CPU must have; a line's bits include the lower lines'
 *   flags  the compiler flags of the build (a string for CMake; C ignores it)
 *
 * Several builds may serve one name, consecutive lines: the last one the CPU supports does. On x86-64 "scalar" is
 * scalar_fma (SLEEF purecfma, bit-identical to the vector kernels; -mfma implies VEX encodings, so no
 * autovectorization keeps it one lane) on every CPU with FMA, and the baseline build (SLEEF purec, may differ in
 * the last bit) only on CPUs without. On AArch64 the baseline build is already purecfma.
 *
 * Included with NLLK_ISA(name, build, dir, arch, need, flags) defined (no include guard around the lines);
 * NLLK_ARCH_<arch>(...) expands to its arguments on that architecture and to nothing elsewhere, so
 * `NLLK_ARCH_##arch(...)` keeps the lines of the target's architecture. */
#ifndef NLLK_KERNELS_ISAS_ARCH
#  define NLLK_KERNELS_ISAS_ARCH
#  define NLLK_ARCH_any(...) __VA_ARGS__
#  if defined(__x86_64__)
#    define NLLK_ARCH_x86_64(...) __VA_ARGS__
#  else
#    define NLLK_ARCH_x86_64(...)
#  endif
#  if defined(__aarch64__)
#    define NLLK_ARCH_aarch64(...) __VA_ARGS__
#  else
#    define NLLK_ARCH_aarch64(...)
#  endif
#endif

/*       name    build       dir     arch     need             flags */
NLLK_ISA(scalar, scalar,     scalar, any,     0,               "")
NLLK_ISA(scalar, scalar_fma, scalar, x86_64,  NLLK_CPU_FMA,    "-mfma -fno-tree-vectorize -fno-tree-slp-vectorize")
NLLK_ISA(avx2,   avx2,       avx2,   x86_64,  NLLK_CPU_AVX2,   "-mavx2 -mfma -mf16c")
NLLK_ISA(avx512, avx512,     avx512, x86_64,  NLLK_CPU_AVX512, "-mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma")
NLLK_ISA(neon,   neon,       neon,   aarch64, NLLK_CPU_NEON,   "")
