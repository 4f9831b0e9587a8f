// bench_nllk — Google Benchmark suite of every nllk kernel, next to the machine's limits on the same bytes.
//
// Every kernel (Poisson and NLL, forward and backward, f32 and f64, Poisson's log_input/full/grad_target
// options, NLL's target types and weight/ignore_index) runs through the public API, for every ISA this CPU
// and build have (the library's list: nllk_isa_name, nllk_isa_supported, nllk_set_isa), at 1 thread and all threads,
// over sizes from in-cache to 512 MB. Each benchmark reports, besides Google Benchmark's time,
//   elem_per_s     elements (Poisson: n; NLL: n*d positions) per second
//   GB_per_s       bytes the kernel must move (read arrays + written arrays; NLL forward: target + the one
//                  input element per position) per second
//   mem_limit_s    a bare pass over the same bytes: a vectorized read of every array the kernel reads and a
//                  write (best of memset and streaming stores) of every array it writes; for NLL forward a bare
//                  gather loop over the same targets and input elements (same thread count, same buffers)
//   sleef_limit_s  the time bare SLEEF exp/log loops of the same ISA need for the kernel's exp/log count
//   limit_frac     max(mem_limit_s, sleef_limit_s) / kernel time  (1.0 = at the machine's limit)
// The limits are also reported on their own (limit/read, limit/sleef_*, and the writes: limit/write_memset and
// limit/write_stream of zeros, limit/write_data and limit/write_stream_data of gradient-like data, which streams
// more slowly here than zeros do).
//
// Options (before Google Benchmark's own, e.g. --benchmark_out=x.json --benchmark_out_format=json):
//   --nllk_sizes=quick|default|full   which sizes (quick: smoke run; full: adds 1 MB, 16 MB, 512 MB)
//   --nllk_isas=avx512,scalar         restrict the ISAs (default: every one available)
//   --nllk_threads=1,2                thread counts (default: 1 and all)
//   --nllk_ops=poisson,nll            restrict the kernels
//   --nllk_dtypes=f32,f64             the dtypes (default f32,f64; bf16 adds bfloat16 storage rows)
//   --nllk_poisson_n=N,N,...          Poisson sizes in elements instead of the size set
//   --nllk_nll_shapes=NxCxD,...       NLL shapes (batch x classes x positions) instead of the size set
//   --nllk_nll_targets=random,coherent  N-D NLL target kinds (default both; 2-D shapes: random only). coherent:
//                                     label maps of blobs and rectangles (bench/labelmap.h, = bench/labelmaps.py),
//                                     H x W = D with W = 512 when 512 divides D, else the square root, else 1 x D
//   --nllk_nll_cache=warm,cold        N-D NLL forward cache state (default warm). cold: a 96 MiB buffer is written
//                                     before every call (untimed), as when a model just produced the input
//   --nllk_dump_labels=FILE           write the coherent uint8 label map of (4, 512, 512), C = 21, ignore 255 and
//                                     exit (bench/labelmaps.py's check)
// NLL N-D forward rows also report touched_bytes (the targets + every 64-byte input line a non-ignored target
// names), touched_limit_s (a vectorized read of that many contiguous bytes, in the same cache state) and
// touched_frac = touched_limit_s / kernel time. 2-D forward rows report gather_pf_s: the best of the bare gather
// loop with a targeted software prefetch 8, 32 or 128 rows ahead (the buffers are 2 MiB-aligned and madvised
// MADV_HUGEPAGE) -- mem_limit_s takes the best of it and the plain loop.
#include <benchmark/benchmark.h>

#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "labelmap.h"
#include "limits.h"
#include "nllk.h"

namespace {

using Clock = std::chrono::steady_clock;

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

// ---- options ----------------------------------------------------------------------------------------------
std::string g_sizes = "default";
std::vector<std::string> g_isas;     // usable kernel ISAs
std::vector<int> g_threads;
std::string g_ops = "poisson,nll";
std::string g_dtypes = "f32,f64";
std::vector<size_t> g_poisson_n;               // explicit Poisson sizes (--nllk_poisson_n)
std::vector<std::vector<size_t>> g_nll_shapes;  // explicit NLL shapes n x c x d (--nllk_nll_shapes)
std::string g_nll_targets = "random,coherent";  // N-D target kinds (--nllk_nll_targets)
std::string g_nll_cache = "warm";               // N-D forward cache states (--nllk_nll_cache)

std::vector<std::string> split(const std::string &s, char sep)
{
    std::vector<std::string> out;
    size_t b = 0;
    while (b <= s.size()) {
        size_t e = s.find(sep, b);
        if (e == std::string::npos)
            e = s.size();
        if (e > b)
            out.push_back(s.substr(b, e - b));
        b = e + 1;
    }
    return out;
}

// ---- ISA selection: the library's registry (nllk_isa_name, nllk_isa_supported, nllk_set_isa) ---------------
bool select_isa(const std::string &isa) { return nllk_set_isa(isa.c_str()) == NLLK_OK && isa == nllk_active_isa(); }

using nllkb::best_isa;
using nllkb::limit_isa;

// ---- buffers: allocated once, grown only, pre-touched, refilled only when their content kind changes ------
enum Role { R_X, R_T, R_OUT, R_GT, R_W, R_EVICT, R_TOUCH, R_COUNT };
struct Buf {
    void *p = nullptr;
    size_t cap = 0;
    std::string tag;
};
Buf g_buf[R_COUNT];

void *buffer(Role r, size_t bytes)
{
    Buf &b = g_buf[r];
    if (b.cap < bytes) {
        std::free(b.p);
        const size_t cap = (bytes + (2u << 20) - 1) & ~(size_t)((2u << 20) - 1);
        b.p = std::aligned_alloc(2u << 20, cap);
        if (!b.p) {
            std::fprintf(stderr, "bench_nllk: out of memory (%zu bytes)\n", cap);
            std::exit(1);
        }
        madvise(b.p, cap, MADV_HUGEPAGE);
        std::memset(b.p, 0, cap);  // pre-touch: no page fault is ever timed
        b.cap = cap;
        b.tag.clear();
    }
    return b.p;
}

// Fills with a deterministic pseudo-random stream unless the buffer already holds `tag`.
template <class T, class Gen>
T *filled(Role r, size_t count, const std::string &tag, Gen gen)
{
    T *p = static_cast<T *>(buffer(r, count * sizeof(T) + 64));
    const std::string full = tag + "#" + std::to_string(count);
    if (g_buf[r].tag != full) {
        uint64_t s = 0x9E3779B97F4A7C15ull ^ std::hash<std::string>()(tag);
        for (size_t i = 0; i < count; i++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            p[i] = gen(s);
        }
        g_buf[r].tag = full;
    }
    return p;
}

double unit(uint64_t s) { return (double)(s >> 11) * (1.0 / 9007199254740992.0); }

// A bfloat16 element of the benchmarks' arrays (nllk_bf16 bits): made from a double (through float, to nearest
// even: good enough for test data) and read back as a double.
struct bf16v {
    nllk_bf16 bits = 0;
    bf16v() = default;
    bf16v(double v)
    {
        const float f = (float)v;
        uint32_t u;
        std::memcpy(&u, &f, 4);
        bits = f != f ? (nllk_bf16)0x7fc0 : (nllk_bf16)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
    operator double() const
    {
        const uint32_t u = (uint32_t)bits << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
};
static_assert(sizeof(bf16v) == 2, "bf16v is its bits");
inline const nllk_bf16 *bits(const bf16v *p) { return reinterpret_cast<const nllk_bf16 *>(p); }
inline nllk_bf16 *bits(bf16v *p) { return reinterpret_cast<nllk_bf16 *>(p); }
// the arrays as the bare loops read them (bfloat16: its bits)
inline const float *raw(const float *p) { return p; }
inline const double *raw(const double *p) { return p; }
inline const uint16_t *raw(const bf16v *p) { return bits(p); }

// ---- the cases ----------------------------------------------------------------------------------------------
enum Op { P_FWD, P_BWD, N_FWD, N_BWD };

struct Case {
    Op op = P_FWD;
    bool f64 = false;
    bool bf16 = false;  // bfloat16 storage (f64 false)
    // Poisson
    int log_input = 1, full = 0;
    bool grad_target = false;
    size_t n = 0;  // Poisson elements, NLL batch
    // NLL
    size_t c = 0, d = 1;
    nllk_target_type tt = NLLK_TARGET_I64;
    bool weighted = false, ignored = false;
    int64_t ignore_index = -100;
    std::string shape;
    nllk_reduction red = NLLK_REDUCTION_MEAN;
    bool coherent = false;  // N-D: label maps of blobs and rectangles (bench/labelmap.h) instead of random targets
    bool cold = false;      // N-D forward: caches evicted before every call

    size_t esize() const { return bf16 ? 2 : f64 ? 8 : 4; }
    const char *dtname() const { return bf16 ? "bf16" : f64 ? "f64" : "f32"; }
    size_t tsize() const { return tt == NLLK_TARGET_I64 ? 8 : tt == NLLK_TARGET_I32 ? 4 : 1; }
    size_t positions() const { return op == P_FWD || op == P_BWD ? n : n * d; }

    // bytes the kernel must read and write
    size_t read_bytes() const
    {
        switch (op) {
        case P_FWD:
        case P_BWD: return 2 * n * esize();
        case N_FWD: return n * d * (tsize() + esize());
        case N_BWD: return n * d * tsize();
        }
        return 0;
    }
    size_t write_bytes() const
    {
        switch (op) {
        case P_FWD: return red == NLLK_REDUCTION_NONE ? n * esize() : 0;
        case P_BWD: return (grad_target ? 2 : 1) * n * esize();
        case N_FWD: return red == NLLK_REDUCTION_NONE ? n * d * esize() : 0;
        case N_BWD: return n * c * d * esize();
        }
        return 0;
    }
    // SLEEF calls per element (the formulas of kernels/common/poisson_formula.h)
    int exps() const
    {
        if (op == P_FWD || op == P_BWD)
            return log_input ? 1 : 0;
        return 0;
    }
    int logs() const
    {
        if (op == P_FWD)
            return (log_input ? 0 : 1) + (full ? 2 : 0);
        if (op == P_BWD)
            return grad_target ? (log_input ? 0 : 1) + (full ? 1 : 0) : 0;
        return 0;
    }

    std::string name() const
    {
        const char *dt = dtname();
        const char *rn = red == NLLK_REDUCTION_NONE ? "none" : red == NLLK_REDUCTION_SUM ? "sum" : "mean";
        char b[256];
        if (op == P_FWD || op == P_BWD)
            std::snprintf(b, sizeof b, "poisson_%s/%s/log_input:%d/full:%d%s/%s/n:%zu", op == P_FWD ? "fwd" : "bwd",
                          dt, log_input, full, op == P_BWD ? (grad_target ? "/grad_target:1" : "/grad_target:0") : "",
                          rn, n);
        else
            std::snprintf(b, sizeof b, "nll_%s/%s/%s/target:%s/%s%s%s/%s/shape:%zux%zux%zu",
                          op == N_FWD ? "fwd" : "bwd", dt, shape.c_str(),
                          tt == NLLK_TARGET_I64 ? "i64" : tt == NLLK_TARGET_I32 ? "i32" : "u8",
                          weighted ? "weighted_ignored" : "plain", coherent ? "/coherent" : "", cold ? "/cold" : "", rn,
                          n, c, d);
        return b;
    }
};

// ---- data ----------------------------------------------------------------------------------------------------
template <class T>
struct PoissonData {
    T *x, *t, *out, *gt;
};

template <class T>
PoissonData<T> poisson_data(const Case &cs)
{
    PoissonData<T> p;
    const std::string dt = cs.dtname();
    if (cs.log_input)
        p.x = filled<T>(R_X, cs.n, "px_log_" + dt, [](uint64_t s) { return (T)(4.0 * unit(s) - 2.0); });
    else
        p.x = filled<T>(R_X, cs.n, "px_rate_" + dt, [](uint64_t s) { return (T)(0.01 + 5.0 * unit(s)); });
    p.t = filled<T>(R_T, cs.n, "pt_" + dt, [](uint64_t s) { return (T)(int)(7.0 * unit(s)); });
    p.out = static_cast<T *>(buffer(R_OUT, cs.n * sizeof(T) + 64));
    p.gt = static_cast<T *>(buffer(R_GT, cs.n * sizeof(T) + 64));
    return p;
}

// A label map's H x W for d positions: W = 512 when it divides d, else the square root when d is a square, else 1 x d.
void map_dims(size_t d, size_t *h, size_t *w)
{
    size_t r = (size_t)std::llround(std::sqrt((double)d));
    if (d % 512 == 0)
        *w = 512;
    else if (r * r == d)
        *w = r;
    else
        *w = d;
    *h = d / *w;
}

template <class T>
struct NllData {
    T *x, *w, *out;
    void *t;
};

template <class T>
NllData<T> nll_data(const Case &cs)
{
    NllData<T> q;
    const std::string dt = cs.dtname();
    const size_t c = cs.c, nd = cs.n * cs.d;
    q.x = filled<T>(R_X, cs.n * c * cs.d, "nx_" + dt, [](uint64_t s) { return (T)(-10.0 * unit(s)); });
    q.w = filled<T>(R_W, c, "nw_" + dt + std::to_string(c), [](uint64_t s) { return (T)(0.5 + unit(s)); });
    const int64_t ig = cs.ignore_index;
    const bool ign = cs.ignored;
    const std::string tag = "nt_" + std::to_string(c) + "_" + std::to_string(ig) + (ign ? "i" : "");
    auto gen = [c, ig, ign](uint64_t s) {
        const double u = unit(s);
        if (ign && u < 0.1)
            return ig;  // about 10% of positions ignored
        return (int64_t)((u - (ign ? 0.1 : 0.0)) / (ign ? 0.9 : 1.0) * (double)c) % (int64_t)c;
    };
    if (cs.coherent) {  // label maps: H x W = d
        size_t h, w;
        map_dims(cs.d, &h, &w);
        const std::string ctag = "coherent_" + std::to_string(c) + "_" + std::to_string(ig) + (ign ? "i" : "") +
                                 std::to_string((int)cs.tt) + "#" + std::to_string(nd);
        void *p = buffer(R_T, nd * cs.tsize() + 64);
        if (g_buf[R_T].tag != ctag) {
            switch (cs.tt) {
            case NLLK_TARGET_I64:
                nllkb::labelmaps((int64_t *)p, (int64_t)cs.n, (int64_t)h, (int64_t)w, (int64_t)c, ign, ig, 0);
                break;
            case NLLK_TARGET_I32:
                nllkb::labelmaps((int32_t *)p, (int64_t)cs.n, (int64_t)h, (int64_t)w, (int64_t)c, ign, ig, 0);
                break;
            default:
                nllkb::labelmaps((uint8_t *)p, (int64_t)cs.n, (int64_t)h, (int64_t)w, (int64_t)c, ign, ig, 0);
                break;
            }
            g_buf[R_T].tag = ctag;
        }
        q.t = p;
        q.out = static_cast<T *>(buffer(R_OUT, (cs.op == N_BWD ? cs.n * c * cs.d : nd) * sizeof(T) + 64));
        return q;
    }
    switch (cs.tt) {
    case NLLK_TARGET_I64: q.t = filled<int64_t>(R_T, nd, tag + "i64", gen); break;
    case NLLK_TARGET_I32:
        q.t = filled<int32_t>(R_T, nd, tag + "i32", [&](uint64_t s) { return (int32_t)gen(s); });
        break;
    default: q.t = filled<uint8_t>(R_T, nd, tag + "u8", [&](uint64_t s) { return (uint8_t)gen(s); }); break;
    }
    q.out = static_cast<T *>(buffer(R_OUT, (cs.op == N_BWD ? cs.n * c * cs.d : nd) * sizeof(T) + 64));
    return q;
}

// ---- the machine's limits -------------------------------------------------------------------------------------
// Median of timed runs of f (at least 3, about 30 ms in all).
double median_time(const std::function<void()> &f)
{
    double t0 = now_s();
    f();  // warm
    const double once = now_s() - t0;
    const int batch = once > 20e-6 ? 1 : (int)std::min(10000.0, 20e-6 / std::max(once, 1e-9)) + 1;
    std::vector<double> ts;
    const double start = now_s();
    while (ts.size() < 3 || (ts.size() < 101 && now_s() - start < 0.03)) {
        t0 = now_s();
        for (int b = 0; b < batch; b++)
            f();
        ts.push_back((now_s() - t0) / batch);
    }
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
}

volatile uint64_t g_sink;
volatile double g_dsink;

struct Span {
    const void *p;
    size_t bytes;
};

// thread k of nt: its 64-byte-aligned slice of [0, bytes)
void slice(size_t bytes, int k, int nt, size_t *b, size_t *e)
{
    const size_t lines = (bytes + 63) / 64;
    *b = std::min(bytes, lines * k / nt * 64);
    *e = std::min(bytes, lines * (k + 1) / nt * 64);
}

// Runs body(k, nt) on `threads` threads (directly on the caller for one: no OpenMP fork to time).
template <class F>
void par(int threads, F body)
{
    if (threads <= 1) {
        body(0, 1);
        return;
    }
#pragma omp parallel num_threads(threads)
    body(omp_get_thread_num(), omp_get_num_threads());
}

// What a write limit writes: zeros with memset or streaming stores, or data (a different gradient-like pattern in
// every line: nllkb::write_data_*) with plain or streaming stores.
enum WriteKind { W_MEMSET, W_NT_ZERO, W_DATA, W_NT_DATA };

// A bare pass reading `reads` (vectorized sum) and writing `writes` (memset or streaming stores; with `data`,
// gradient-like data instead of zeros), split across `threads` threads in contiguous slices.
double stream_pass(const std::vector<Span> &reads, const std::vector<Span> &writes, int threads, bool nt_store,
                   bool data = false)
{
    std::atomic<uint64_t> total{0};
    par(threads, [&](int k, int nt) {
        for (const Span &s : reads) {
            size_t b, e;
            slice(s.bytes, k, nt, &b, &e);
            total += nllkb::read_sum(best_isa(), static_cast<const char *>(s.p) + b, e - b);
        }
        for (const Span &s : writes) {
            size_t b, e;
            slice(s.bytes, k, nt, &b, &e);
            char *p = const_cast<char *>(static_cast<const char *>(s.p)) + b;
            if (data) {
                nllkb::write_data(best_isa(), p, e - b, nt_store);
                continue;
            }
#if defined(__x86_64__)
            if (nt_store && best_isa() == nllkb::ISA_AVX512)
                nllkb::write_nt_avx512(p, e - b);
            else if (nt_store && best_isa() == nllkb::ISA_AVX2)
                nllkb::write_nt_avx2(p, e - b);
            else
#endif
                std::memset(p, 0, e - b);
        }
    });
    g_sink = total.load();
    return 0;
}

// The best of memset and streaming stores, and of 1 .. `threads` threads (a fork costs more than a small pass).
double stream_limit(const std::vector<Span> &reads, const std::vector<Span> &writes, int threads)
{
    double t = 1e30;
    for (int th = 1; th <= threads; th++) {
        t = std::min(t, median_time([&] { stream_pass(reads, writes, th, false); }));
        if (!writes.empty())
            t = std::min(t, median_time([&] { stream_pass(reads, writes, th, true); }));
    }
    return t;
}

// A bare NLL gather: sum of x[(i*c + t)*d + j] over positions whose target is not ignore_index (no checks, no
// weights, no canonical tree): the bytes the forward kernel must touch, read as fast as a plain loop can. For 2-D
// (d == 1) with dist > 0, the best-effort variant: a targeted software prefetch of the row `dist` rows ahead.
template <class T, class TT>
double gather_pass(const T *x, const TT *t, size_t n, size_t c, size_t d, int64_t ig, int threads, size_t dist = 0)
{
    const size_t nd = n * d;
    std::vector<double> totals(threads > 0 ? threads : 1);
    par(threads, [&](int k, int nt) {
        const size_t b = nd * k / nt, e = nd * (k + 1) / nt;
        T s0 = 0, s1 = 0;
        size_t q = b;
        if (d == 1) {
            for (; q + 1 < e; q += 2) {
                if (dist && q + dist + 1 < e) {
                    __builtin_prefetch(x + (q + dist) * c + (size_t)t[q + dist]);
                    __builtin_prefetch(x + (q + dist + 1) * c + (size_t)t[q + dist + 1]);
                }
                const int64_t t0 = (int64_t)t[q], t1 = (int64_t)t[q + 1];
                s0 += t0 == ig ? (T)0 : x[q * c + (size_t)t0];
                s1 += t1 == ig ? (T)0 : x[(q + 1) * c + (size_t)t1];
            }
            for (; q < e; q++) {
                const int64_t t0 = (int64_t)t[q];
                s0 += t0 == ig ? (T)0 : x[q * c + (size_t)t0];
            }
        } else {  // walk (i, j) without a division per element
            size_t i = b / d, j = b % d;
            for (; q < e; q++) {
                const int64_t t0 = (int64_t)t[q];
                s0 += t0 == ig ? (T)0 : x[(i * c + (size_t)t0) * d + j];
                if (++j == d) {
                    j = 0;
                    i++;
                }
            }
        }
        totals[k] = (double)s0 + (double)s1;
    });
    double total = 0;
    for (double v : totals)
        total += v;
    g_dsink = total;
    return 0;
}

// Bytes an N-D forward must touch: the targets and every 64-byte line of x that a non-ignored target names.
template <class TT>
size_t touched_bytes(const void *x, const TT *t, size_t n, size_t c, size_t d, size_t es, int64_t ig)
{
    const uintptr_t base = (uintptr_t)x / 64;
    const size_t lines = ((uintptr_t)x + n * c * d * es + 63) / 64 - base;
    std::vector<uint64_t> seen((lines + 63) / 64);
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const int64_t tv = (int64_t)t[i * d + j];
            if (tv == ig || tv < 0 || (size_t)tv >= c)
                continue;
            const size_t l = ((uintptr_t)x + ((i * c + (size_t)tv) * d + j) * es) / 64 - base;
            if (!(seen[l / 64] >> (l % 64) & 1)) {
                seen[l / 64] |= (uint64_t)1 << (l % 64);
                count++;
            }
        }
    return n * d * sizeof(TT) + count * 64;
}

// Evicts the caches: writes a 96 MiB buffer (3x this machine's L3).
void evict_caches()
{
    const size_t bytes = (size_t)96 << 20;
    void *p = buffer(R_EVICT, bytes);
    std::memset(p, (int)(g_sink & 0x7f), bytes);
    g_sink = g_sink + static_cast<unsigned char *>(p)[bytes / 2];
}

std::map<std::string, double> g_limit_cache;

double cached(const std::string &key, const std::function<double()> &f)
{
    auto it = g_limit_cache.find(key);
    if (it != g_limit_cache.end())
        return it->second;
    const double v = f();
    g_limit_cache[key] = v;
    return v;
}

// The best SLEEF throughput with up to `threads` threads (elements per second), measured once.
double sleef_rate_best(nllkb::LimitIsa isa, bool f64, nllkb::SleefFn fn, int threads)
{
    const std::string key = "sleef/" + std::to_string(isa) + "/" + std::to_string(f64) + "/" +
                            std::to_string(fn) + "/" + std::to_string(threads);
    return cached(key, [&] {
        double best = 0;
        for (int th = 1; th <= threads; th++)
            best = std::max(best, nllkb::sleef_rate(isa, f64, fn, th));
        return best;
    });
}

// ---- the benchmark ---------------------------------------------------------------------------------------------
template <class T>
struct Api;
template <>
struct Api<float> {
    static constexpr auto pf = nllk_poisson_nll_fwd_f32;
    static constexpr auto pb = nllk_poisson_nll_bwd_f32;
    static constexpr auto nf = nllk_nll_fwd_f32;
    static constexpr auto nb = nllk_nll_bwd_f32;
};
template <>
struct Api<bf16v> {
    static nllk_status pf(const bf16v *x, const bf16v *t, size_t n, int li, int full, double eps, nllk_reduction r,
                          bf16v *out)
    {
        return nllk_poisson_nll_fwd_bf16(bits(x), bits(t), n, li, full, eps, r, bits(out));
    }
    static nllk_status pb(const bf16v *x, const bf16v *t, size_t n, int li, int full, double eps, nllk_reduction r,
                          const bf16v *go, bf16v *gx, bf16v *gt)
    {
        return nllk_poisson_nll_bwd_bf16(bits(x), bits(t), n, li, full, eps, r, bits(go), bits(gx), bits(gt));
    }
    static nllk_status nf(const bf16v *x, const void *t, nllk_target_type tt, size_t n, size_t c, size_t d,
                          const bf16v *w, int64_t ig, nllk_reduction r, bf16v *out, bf16v *tw)
    {
        return nllk_nll_fwd_bf16(bits(x), t, tt, n, c, d, bits(w), ig, r, bits(out), bits(tw));
    }
    static nllk_status nb(const bf16v *go, const void *t, nllk_target_type tt, size_t n, size_t c, size_t d,
                          const bf16v *w, int64_t ig, nllk_reduction r, bf16v tw, bf16v *gx)
    {
        return nllk_nll_bwd_bf16(bits(go), t, tt, n, c, d, bits(w), ig, r, tw.bits, bits(gx));
    }
};
template <>
struct Api<double> {
    static constexpr auto pf = nllk_poisson_nll_fwd_f64;
    static constexpr auto pb = nllk_poisson_nll_bwd_f64;
    static constexpr auto nf = nllk_nll_fwd_f64;
    static constexpr auto nb = nllk_nll_bwd_f64;
};

template <class T>
void run_case(benchmark::State &state, const Case &cs, const std::string &isa, int threads)
{
    if (!select_isa(isa)) {
        state.SkipWithError("ISA not available");
        return;
    }
    nllk_set_num_threads(threads);
    std::function<nllk_status()> call;
    double mem_limit = 0;
    std::string mem_key = cs.name() + "/threads:" + std::to_string(threads);
    T scalar_out = 0, total_weight = 0;
    static T one = 1;
    double touched = 0, touched_limit = 0;

    if (cs.op == P_FWD || cs.op == P_BWD) {
        PoissonData<T> p = poisson_data<T>(cs);
        const size_t nb = cs.n * sizeof(T);
        if (cs.op == P_FWD) {
            T *out = cs.red == NLLK_REDUCTION_NONE ? p.out : &scalar_out;
            call = [=] { return Api<T>::pf(p.x, p.t, cs.n, cs.log_input, cs.full, 1e-8, cs.red, out); };
            std::vector<Span> w;
            if (cs.red == NLLK_REDUCTION_NONE)
                w.push_back({p.out, nb});
            mem_limit = cached(mem_key, [&] { return stream_limit({{p.x, nb}, {p.t, nb}}, w, threads); });
        } else {
            T *gt = cs.grad_target ? p.gt : nullptr;
            call = [=] {
                return Api<T>::pb(p.x, p.t, cs.n, cs.log_input, cs.full, 1e-8, cs.red, &one, p.out, gt);
            };
            std::vector<Span> w{{p.out, nb}};
            if (gt)
                w.push_back({gt, nb});
            mem_limit = cached(mem_key, [&] { return stream_limit({{p.x, nb}, {p.t, nb}}, w, threads); });
        }
    } else {
        NllData<T> q = nll_data<T>(cs);
        const T *w = cs.weighted ? q.w : nullptr;
        const size_t nd = cs.n * cs.d;
        if (cs.op == N_FWD) {
            T *out = cs.red == NLLK_REDUCTION_NONE ? q.out : &scalar_out;
            call = [=, &total_weight] {
                return Api<T>::nf(q.x, q.t, cs.tt, cs.n, cs.c, cs.d, w, cs.ignore_index, cs.red, out, &total_weight);
            };
            mem_limit = cached(mem_key, [&] {
                double t = 1e30;
                for (int th = 1; th <= threads; th++)
                    t = std::min(t, median_time([&] {
                        switch (cs.tt) {
                        case NLLK_TARGET_I64:
                            gather_pass(raw(q.x), (const int64_t *)q.t, cs.n, cs.c, cs.d, cs.ignore_index, th);
                            break;
                        case NLLK_TARGET_I32:
                            gather_pass(raw(q.x), (const int32_t *)q.t, cs.n, cs.c, cs.d, cs.ignore_index, th);
                            break;
                        default:
                            gather_pass(raw(q.x), (const uint8_t *)q.t, cs.n, cs.c, cs.d, cs.ignore_index, th);
                            break;
                        }
                    }));
                if (cs.d == 1) {  // the best-effort gather: targeted prefetch at several distances
                    double best = 1e30;
                    for (size_t dist : {8, 32, 128})
                        for (int th = 1; th <= threads; th++)
                            best = std::min(best, median_time([&] {
                                switch (cs.tt) {
                                case NLLK_TARGET_I64:
                                    gather_pass(raw(q.x), (const int64_t *)q.t, cs.n, cs.c, 1, cs.ignore_index, th, dist);
                                    break;
                                case NLLK_TARGET_I32:
                                    gather_pass(raw(q.x), (const int32_t *)q.t, cs.n, cs.c, 1, cs.ignore_index, th, dist);
                                    break;
                                default:
                                    gather_pass(raw(q.x), (const uint8_t *)q.t, cs.n, cs.c, 1, cs.ignore_index, th, dist);
                                    break;
                                }
                            }));
                    g_limit_cache[mem_key + "/gather_pf"] = best;
                    t = std::min(t, best);
                }
                if (cs.red == NLLK_REDUCTION_NONE)  // + the write of the per-position losses
                    t += stream_limit({}, {{q.out, nd * sizeof(T)}}, threads);
                return t;
            });
            if (cs.d > 1) {  // the touched-bytes read limit, in the kernel's cache state
                const size_t tb = cached(mem_key + "/touched_bytes", [&] {
                    switch (cs.tt) {
                    case NLLK_TARGET_I64:
                        return (double)touched_bytes(q.x, (const int64_t *)q.t, cs.n, cs.c, cs.d, sizeof(T), cs.ignore_index);
                    case NLLK_TARGET_I32:
                        return (double)touched_bytes(q.x, (const int32_t *)q.t, cs.n, cs.c, cs.d, sizeof(T), cs.ignore_index);
                    default:
                        return (double)touched_bytes(q.x, (const uint8_t *)q.t, cs.n, cs.c, cs.d, sizeof(T), cs.ignore_index);
                    }
                });
                touched = (double)tb;
                touched_limit = cached(mem_key + "/touched", [&] {
                    void *buf = filled<uint8_t>(R_TOUCH, tb, "touch", [](uint64_t v) { return (uint8_t)v; });
                    double best = 1e30;
                    for (int th = 1; th <= threads; th++) {
                        if (!cs.cold) {
                            best = std::min(best, median_time([&] { stream_pass({{buf, tb}}, {}, th, false); }));
                            continue;
                        }
                        std::vector<double> ts;
                        for (int r = 0; r < 15; r++) {
                            evict_caches();
                            const double t0 = now_s();
                            stream_pass({{buf, tb}}, {}, th, false);
                            ts.push_back(now_s() - t0);
                        }
                        std::sort(ts.begin(), ts.end());
                        best = std::min(best, ts[ts.size() / 2]);
                    }
                    return best;
                });
            }
        } else {
            nllk_status st = Api<T>::nf(q.x, q.t, cs.tt, cs.n, cs.c, cs.d, w, cs.ignore_index, NLLK_REDUCTION_MEAN,
                                        &scalar_out, &total_weight);
            if (st != NLLK_OK) {
                state.SkipWithError(nllk_last_error());
                return;
            }
            const T tw = total_weight;
            call = [=] {
                return Api<T>::nb(&one, q.t, cs.tt, cs.n, cs.c, cs.d, w, cs.ignore_index, cs.red, tw, q.out);
            };
            mem_limit = cached(mem_key, [&] {
                return stream_limit({{q.t, nd * cs.tsize()}}, {{q.out, cs.n * cs.c * cs.d * sizeof(T)}}, threads);
            });
        }
    }

    if (call() != NLLK_OK) {  // also the warm-up call
        state.SkipWithError(nllk_last_error());
        return;
    }
    double per_call;
    if (cs.cold) {  // each call timed alone, after the caches are evicted (manual time)
        double sum = 0;
        for (auto _ : state) {
            evict_caches();
            const double t1 = now_s();
            call();
            benchmark::ClobberMemory();
            const double dt = now_s() - t1;
            state.SetIterationTime(dt);
            sum += dt;
        }
        per_call = sum / (double)state.iterations();
    } else {
        const double t0 = now_s();
        for (auto _ : state) {
            call();
            benchmark::ClobberMemory();
        }
        per_call = (now_s() - t0) / (double)state.iterations();
    }

    const nllkb::LimitIsa li = limit_isa(isa.c_str());
    const size_t elems = cs.positions();
    double sleef_limit = 0;
    if (cs.exps())
        sleef_limit += cs.exps() * (double)elems / sleef_rate_best(li, cs.f64, nllkb::FN_EXP, threads);
    if (cs.logs())
        sleef_limit += cs.logs() * (double)elems / sleef_rate_best(li, cs.f64, nllkb::FN_LOG, threads);
    const double limit = std::max(mem_limit, sleef_limit);
    const double bytes = (double)(cs.read_bytes() + cs.write_bytes());

    state.SetItemsProcessed((int64_t)state.iterations() * (int64_t)elems);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)bytes);
    state.counters["elem_per_s"] = (double)elems / per_call;
    state.counters["GB_per_s"] = bytes / per_call * 1e-9;
    state.counters["us_per_call"] = per_call * 1e6;
    state.counters["mem_limit_s"] = mem_limit;
    state.counters["sleef_limit_s"] = sleef_limit;
    state.counters["limit_frac"] = limit / per_call;
    if (touched_limit > 0) {
        state.counters["touched_bytes"] = touched;
        state.counters["touched_limit_s"] = touched_limit;
        state.counters["touched_frac"] = touched_limit / per_call;
    }
    auto pf = g_limit_cache.find(mem_key + "/gather_pf");
    if (pf != g_limit_cache.end())
        state.counters["gather_pf_s"] = pf->second;
    state.counters["threads"] = threads;
    state.SetLabel(isa);
}

// ---- standalone limits ---------------------------------------------------------------------------------------
void run_read_limit(benchmark::State &state, size_t bytes, int threads)
{
    void *p = filled<uint8_t>(R_X, bytes, "bytes", [](uint64_t s) { return (uint8_t)s; });
    for (auto _ : state)
        stream_pass({{p, bytes}}, {}, threads, false);
    state.counters["best_of_1_to_threads_s"] = stream_limit({{p, bytes}}, {}, threads);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)bytes);
    state.counters["threads"] = threads;
}

void run_write_limit(benchmark::State &state, size_t bytes, int threads, WriteKind kind)
{
    void *p = buffer(R_OUT, bytes);
    g_buf[R_OUT].tag.clear();
    const bool nt = kind == W_NT_ZERO || kind == W_NT_DATA, data = kind == W_DATA || kind == W_NT_DATA;
    for (auto _ : state)
        stream_pass({}, {{p, bytes}}, threads, nt, data);
    state.SetBytesProcessed((int64_t)state.iterations() * (int64_t)bytes);
    state.counters["threads"] = threads;
}

void run_sleef_limit(benchmark::State &state, const std::string &isa, bool f64, nllkb::SleefFn fn, int threads)
{
    double rate = 0;
    for (auto _ : state) {
        g_limit_cache.erase("sleef/" + std::to_string(limit_isa(isa.c_str())) + "/" + std::to_string(f64) + "/" +
                            std::to_string(fn) + "/" + std::to_string(threads));
        rate = sleef_rate_best(limit_isa(isa.c_str()), f64, fn, threads);
    }
    state.counters["elem_per_s"] = rate;
    state.counters["threads"] = threads;
    state.SetLabel(isa);
}

// ---- registration ---------------------------------------------------------------------------------------------
bool want_op(const std::string &op) { return g_ops.find(op) != std::string::npos; }

// Sizes as bytes of the arrays a kernel reads (Poisson: x and t; NLL: the input).
std::vector<size_t> size_list()
{
    const size_t K = 1024, M = 1024 * 1024;
    if (g_sizes == "quick")
        return {64 * K, 4 * M};
    if (g_sizes == "full")
        return {64 * K, 1 * M, 16 * M, 128 * M, 512 * M};
    return {64 * K, 4 * M, 128 * M};
}

void add(const Case &cs)
{
    for (const std::string &isa : g_isas)
        for (int th : g_threads) {
            const std::string name = cs.name() + "/isa:" + isa + "/threads:" + std::to_string(th);
            auto *b = cs.bf16  ? benchmark::RegisterBenchmark(name.c_str(), [cs, isa, th](benchmark::State &s) {
                run_case<bf16v>(s, cs, isa, th);
            })
                      : cs.f64 ? benchmark::RegisterBenchmark(name.c_str(), [cs, isa, th](benchmark::State &s) {
                run_case<double>(s, cs, isa, th);
            })
                               : benchmark::RegisterBenchmark(name.c_str(), [cs, isa, th](benchmark::State &s) {
                                     run_case<float>(s, cs, isa, th);
                                 });
            if (cs.cold)
                b->UseManualTime();
            else
                b->UseRealTime();
            b->Unit(benchmark::kMicrosecond);
        }
}

void register_all()
{
    const size_t K = 1024, M = 1024 * 1024;
    std::vector<size_t> sizes = size_list();
    // the machine's limits on their own
    for (size_t bytes : sizes)
        for (int th : g_threads) {
            const std::string sfx = "/bytes:" + std::to_string(bytes) + "/threads:" + std::to_string(th);
            benchmark::RegisterBenchmark(("limit/read" + sfx).c_str(),
                                         [bytes, th](benchmark::State &s) { run_read_limit(s, bytes, th); })
                ->UseRealTime()->Unit(benchmark::kMicrosecond);
            const std::pair<const char *, WriteKind> writes[] = {
                {"write_memset", W_MEMSET}, {"write_stream", W_NT_ZERO}, {"write_data", W_DATA},
                {"write_stream_data", W_NT_DATA}};
            for (const auto &w : writes) {
                if ((w.second == W_NT_ZERO || w.second == W_NT_DATA) && best_isa() == nllkb::ISA_SCALAR)
                    continue;
                const WriteKind kind = w.second;
                benchmark::RegisterBenchmark((std::string("limit/") + w.first + sfx).c_str(),
                                             [bytes, th, kind](benchmark::State &s) {
                                                 run_write_limit(s, bytes, th, kind);
                                             })
                    ->UseRealTime()->Unit(benchmark::kMicrosecond);
            }
        }
    for (const std::string &isa : g_isas)
        for (int f64 = 0; f64 < 2; f64++)
            for (int fn = 0; fn < 2; fn++)
                for (int th : g_threads) {
                    const std::string name = std::string("limit/sleef_") + (fn ? "log" : "exp") + (f64 ? "_f64" : "_f32") +
                                             "/isa:" + isa + "/threads:" + std::to_string(th);
                    benchmark::RegisterBenchmark(name.c_str(), [isa, f64, fn, th](benchmark::State &s) {
                        run_sleef_limit(s, isa, f64, (nllkb::SleefFn)fn, th);
                    })->Iterations(1)->Unit(benchmark::kMicrosecond);
                }

    for (int dti = 0; dti < 3; dti++) {  // f32, f64, bf16
        const int f64 = dti == 1;
        const bool bf = dti == 2;
        if (g_dtypes.find(bf ? "bf16" : f64 ? "f64" : "f32") == std::string::npos)
            continue;
        const size_t es = bf ? 2 : f64 ? 8 : 4;
        if (want_op("poisson")) {
            std::vector<size_t> ns;
            if (!g_poisson_n.empty())
                ns = g_poisson_n;
            else {
                ns.push_back(16);  // tiny: call overhead
                for (size_t b : sizes)
                    ns.push_back(b / (2 * es));
            }
            for (size_t n : ns)
                for (int li = 1; li >= 0; li--)
                    for (int full = 0; full < 2; full++) {
                        Case cs;
                        cs.op = P_FWD;
                        cs.f64 = f64;
                        cs.bf16 = bf;
                        cs.n = n;
                        cs.log_input = li;
                        cs.full = full;
                        add(cs);
                        if (n <= 16)
                            continue;
                        cs.red = NLLK_REDUCTION_NONE;
                        add(cs);
                        cs.red = NLLK_REDUCTION_MEAN;
                        cs.op = P_BWD;
                        cs.grad_target = false;
                        if (!full)
                            add(cs);  // grad_input does not depend on full
                        cs.grad_target = true;
                        add(cs);
                    }
        }
        if (want_op("nll")) {
            struct Shape {
                std::string family;
                size_t n, c, d;
            };
            std::vector<Shape> shapes;
            if (!g_nll_shapes.empty()) {
                for (const auto &sh : g_nll_shapes)
                    shapes.push_back({"custom", sh[0], sh[1], sh[2]});
            } else {
                shapes.push_back({"2d_c10", 16, 10, 1});  // tiny: call overhead
                for (size_t b : sizes) {
                    shapes.push_back({"2d_c1000", std::max<size_t>(1, b / (1000 * es)), 1000, 1});
                    shapes.push_back({"2d_c10", std::max<size_t>(1, b / (10 * es)), 10, 1});
                    // (4, 21, H, W) with H*W from the size
                    shapes.push_back({"4d_c21", 4, 21, std::max<size_t>(1, b / (4 * 21 * es))});
                }
            }
            for (const Shape &sh : shapes) {
                Case cs;
                cs.op = N_FWD;
                cs.f64 = f64;
                cs.bf16 = bf;
                cs.shape = sh.family;
                cs.n = sh.n;
                cs.c = sh.c;
                cs.d = sh.d;
                const bool u8ok = sh.c <= 255, tiny = sh.n * sh.d <= 16;
                for (int kind = 0; kind < 2; kind++)
                for (int tt = 0; tt < 3; tt++) {
                    cs.coherent = kind == 1;
                    if (g_nll_targets.find(kind ? "coherent" : "random") == std::string::npos || (kind && sh.d == 1))
                        continue;
                    cs.tt = (nllk_target_type)tt;
                    if (cs.tt == NLLK_TARGET_U8 && !u8ok)
                        continue;
                    if (cs.tt == NLLK_TARGET_I32 && u8ok)
                        continue;  // int32 only for shapes uint8 cannot hold
                    for (int wi = 0; wi < 2; wi++) {
                        cs.weighted = cs.ignored = wi;
                        cs.ignore_index = wi ? (u8ok ? 255 : -100) : -100;
                        cs.op = N_FWD;
                        cs.red = NLLK_REDUCTION_MEAN;
                        if (g_nll_cache.find("warm") != std::string::npos)
                            add(cs);
                        if (sh.d > 1 && g_nll_cache.find("cold") != std::string::npos) {
                            cs.cold = true;
                            add(cs);
                            cs.cold = false;
                        }
                        if (tiny)
                            continue;
                        if (sh.d > 1) {
                            cs.red = NLLK_REDUCTION_NONE;
                            add(cs);
                            cs.red = NLLK_REDUCTION_MEAN;
                        }
                        cs.op = N_BWD;
                        add(cs);
                    }
                }
            }
        }
    }
    (void)K;
    (void)M;
}

}  // namespace

int main(int argc, char **argv)
{
    std::vector<char *> rest{argv[0]};
    std::string isas_opt, threads_opt;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a.rfind("--nllk_sizes=", 0) == 0)
            g_sizes = a.substr(13);
        else if (a.rfind("--nllk_isas=", 0) == 0)
            isas_opt = a.substr(12);
        else if (a.rfind("--nllk_threads=", 0) == 0)
            threads_opt = a.substr(15);
        else if (a.rfind("--nllk_ops=", 0) == 0)
            g_ops = a.substr(11);
        else if (a.rfind("--nllk_dtypes=", 0) == 0)
            g_dtypes = a.substr(14);
        else if (a.rfind("--nllk_poisson_n=", 0) == 0) {
            for (const std::string &v : split(a.substr(17), ','))
                g_poisson_n.push_back(std::strtoull(v.c_str(), nullptr, 10));
        } else if (a.rfind("--nllk_nll_targets=", 0) == 0) {
            g_nll_targets = a.substr(19);
        } else if (a.rfind("--nllk_nll_cache=", 0) == 0) {
            g_nll_cache = a.substr(17);
        } else if (a.rfind("--nllk_dump_labels=", 0) == 0) {
            std::vector<uint8_t> m((size_t)4 * 512 * 512);
            nllkb::labelmaps(m.data(), 4, 512, 512, 21, true, 255, 0);
            FILE *f = std::fopen(a.substr(19).c_str(), "wb");
            if (!f || std::fwrite(m.data(), 1, m.size(), f) != m.size() || std::fclose(f) != 0) {
                std::fprintf(stderr, "bench_nllk: cannot write %s\n", a.substr(19).c_str());
                return 1;
            }
            return 0;
        } else if (a.rfind("--nllk_nll_shapes=", 0) == 0) {
            for (const std::string &v : split(a.substr(18), ',')) {
                std::vector<size_t> sh;
                for (const std::string &x : split(v, 'x'))
                    sh.push_back(std::strtoull(x.c_str(), nullptr, 10));
                while (sh.size() < 3)
                    sh.push_back(1);
                g_nll_shapes.push_back(sh);
            }
        }
        else
            rest.push_back(argv[i]);
    }
    const std::string native = nllk_active_isa();
    std::vector<std::string> cand;
    for (int i = 0; nllk_isa_name(i); i++)
        cand.push_back(nllk_isa_name(i));
    if (!isas_opt.empty())
        cand = split(isas_opt, ',');
    for (const std::string &isa : cand)
        if (nllk_isa_supported(isa.c_str()) && select_isa(isa))
            g_isas.push_back(isa);
    select_isa(native);
    const int all = omp_get_num_procs();
    if (threads_opt.empty()) {
        g_threads.push_back(1);
        if (all > 1)
            g_threads.push_back(all);
    } else {
        for (const std::string &s : split(threads_opt, ','))
            g_threads.push_back(std::atoi(s.c_str()));
    }
    benchmark::AddCustomContext("nllk_version", nllk_version_string());
    std::string il;
    for (const std::string &s : g_isas)
        il += (il.empty() ? "" : ",") + s;
    benchmark::AddCustomContext("nllk_isas", il);
    benchmark::AddCustomContext("nllk_native_isa", native);
    benchmark::AddCustomContext("nllk_sizes", g_sizes);

    register_all();
    int rargc = (int)rest.size();
    benchmark::Initialize(&rargc, rest.data());
    if (benchmark::ReportUnrecognizedArguments(rargc, rest.data()))
        return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
