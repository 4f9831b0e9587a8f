// The machine's limits, measured by bare loops in the same binary as the kernel benchmarks
// (design notes section 5). One translation unit per ISA, each compiled with that ISA's flags only; the
// caller checks nllk_isa_supported before calling an ISA's functions.
#ifndef NLLK_BENCH_LIMITS_H
#define NLLK_BENCH_LIMITS_H

#include <cstddef>
#include <cstdint>

namespace nllkb {

enum LimitIsa { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_COUNT = 3 };
enum SleefFn { FN_EXP = 0, FN_LOG = 1 };

// Bare SLEEF loop: `reps` passes of y[i] = fn(x[i]) over len elements (len a multiple of 16; x, y in cache),
// with the same SLEEF u10 functions the kernels of that ISA run (f32 when f64 == false): the f32 exp of AVX2 and
// AVX-512 inlined as the kernels inline it (nllkb_map_expf_loop_*), the rest calls into libsleef. Returns a checksum.
double sleef_loop_scalar(bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps);
double sleef_loop_avx2(bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps);
double sleef_loop_avx512(bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps);

// The f32 exp loop through the kernels' own map (bench/limits_map.c): on AVX2 and AVX-512 the inlined SLEEF expf u10
// the kernels run, faster than calls into libsleef; sleef_loop_avx2/avx512 use it for (f32, FN_EXP).
extern "C" double nllkb_map_expf_loop_avx2(const float *x, float *y, size_t len, size_t reps);
extern "C" double nllkb_map_expf_loop_avx512(const float *x, float *y, size_t len, size_t reps);

// sleef_loop_* through the given ISA's function (scalar where the build has no other; the caller checks support).
double sleef_loop(LimitIsa isa, bool f64, SleefFn fn, const void *x, void *y, size_t len, size_t reps);
// SLEEF throughput (elements per second) of fn on one ISA with exactly `threads` threads: the median of timed samples
// of 2048 x 1024 calls per thread on inputs in cache (exp over [-10, 10], log over [0.01, 100]).
double sleef_rate(LimitIsa isa, bool f64, SleefFn fn, int threads);

// STREAM-like read: a vectorized sum of `bytes` bytes (as 64-bit integers, 4 independent accumulators).
uint64_t read_sum_scalar(const void *p, size_t bytes);
uint64_t read_sum_avx2(const void *p, size_t bytes);
uint64_t read_sum_avx512(const void *p, size_t bytes);

// Write of `bytes` zero bytes with non-temporal (streaming) stores; p 64-byte aligned. (The other write limit
// is memset.)
void write_nt_avx2(void *p, size_t bytes);
void write_nt_avx512(void *p, size_t bytes);

// Write of `bytes` bytes of data -- floats near 1e-3, a different pattern in every 64-byte line, like a gradient --
// with streaming stores (nt) or plain stores; p 64-byte aligned. On this machine lines of zeros stream faster than
// lines of data (BENCHMARKS.md), so a kernel that writes values (a softmax gradient) is held to this limit, not to
// the zeros'. data_word(line, i) is word i (0..15) of 64-byte line `line`: every ISA writes the same bytes.
inline uint32_t data_word(size_t line, unsigned i) { return (0x3a800000u + (i << 18)) ^ ((uint32_t)line & 0xffffu); }
void write_data_scalar(void *p, size_t bytes, bool nt);
void write_data_avx2(void *p, size_t bytes, bool nt);
void write_data_avx512(void *p, size_t bytes, bool nt);
// The same through the given ISA's function (scalar where the build has no other; the caller checks support).
void write_data(LimitIsa isa, void *p, size_t bytes, bool nt);
// read_sum_* through the given ISA's function (the same rule).
uint64_t read_sum(LimitIsa isa, const void *p, size_t bytes);

// The loops' ISA for one of the library's ISA names (nllk_isa_name): scalar for one without loops here.
LimitIsa limit_isa(const char *nllk_isa);
// The best loops this CPU runs (the memory limits are the machine's, not an ISA's): those of the highest ISA of the
// library's list that the CPU supports (nllk_isa_supported), found once.
LimitIsa best_isa();

}  // namespace nllkb

#endif
