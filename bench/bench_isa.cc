// The ISA speed targets (Google Benchmark, one thread, medians of repetitions):
//   - Poisson forward f32 mean, arrays in cache, log_input=1 vs a bare loop calling the same SLEEF exp on the same
//     data, and log_input=0 vs the bare SLEEF log loop, per ISA (target: >= 90% of the bare loop);
//   - NLL forward f32 (65536, 1000) mean per ISA (target: >= 3x scalar).
//   bench_isa --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "limits.h"
#include "nllk.h"

namespace {

constexpr size_t kPoissonN = 8192;  // 2 x 32 KiB of input: in L1/L2

struct PoissonData {
    std::vector<float> x, t, y;
    PoissonData() : x(kPoissonN), t(kPoissonN), y(kPoissonN)
    {
        std::mt19937 g(1);
        std::uniform_real_distribution<float> ux(0.01f, 4.0f), ut(0.0f, 10.0f);
        for (size_t i = 0; i < kPoissonN; i++) {
            x[i] = ux(g);
            t[i] = ut(g);
        }
    }
};
PoissonData &poisson_data()
{
    static PoissonData d;
    return d;
}

bool select(benchmark::State &st, const char *isa)
{
    nllk_set_num_threads(1);
    if (nllk_set_isa(isa) != NLLK_OK) {
        st.SkipWithError("ISA not supported");
        return false;
    }
    return true;
}

void BM_poisson_fwd_mean(benchmark::State &st, const char *isa, int log_input)
{
    if (!select(st, isa))
        return;
    PoissonData &d = poisson_data();
    float out;
    for (auto _ : st) {
        nllk_poisson_nll_fwd_f32(d.x.data(), d.t.data(), kPoissonN, log_input, 0, 1e-8, NLLK_REDUCTION_MEAN, &out);
        benchmark::DoNotOptimize(out);
    }
    st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(kPoissonN));
    nllk_set_isa(nullptr);
}

void BM_sleef_bare(benchmark::State &st, nllkb::LimitIsa isa, nllkb::SleefFn fn)
{
    PoissonData &d = poisson_data();
    const char *name = isa == nllkb::ISA_AVX512 ? "avx512" : isa == nllkb::ISA_AVX2 ? "avx2" : "scalar";
    if (!nllk_isa_supported(name)) {
        st.SkipWithError("ISA not supported");
        return;
    }
    for (auto _ : st) {
        double c = nllkb::sleef_loop(isa, false, fn, d.x.data(), d.y.data(), kPoissonN, 1);
        benchmark::DoNotOptimize(c);
    }
    st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(kPoissonN));
}

constexpr size_t kNllN = 65536, kNllC = 1000;
struct NllData {
    std::vector<float> x;
    std::vector<int64_t> t;
    NllData() : x(kNllN * kNllC), t(kNllN)
    {
        std::mt19937 g(2);
        for (size_t i = 0; i < x.size(); i++)
            x[i] = -float(i % 977) * 0.01f;
        for (size_t i = 0; i < kNllN; i++)
            t[i] = int64_t(g() % kNllC);
    }
};
NllData &nll_data()
{
    static NllData d;
    return d;
}

void BM_nll_fwd_mean(benchmark::State &st, const char *isa)
{
    if (!select(st, isa))
        return;
    NllData &d = nll_data();
    float out, tw;
    for (auto _ : st) {
        nllk_nll_fwd_f32(d.x.data(), d.t.data(), NLLK_TARGET_I64, kNllN, kNllC, 1, nullptr, -100, NLLK_REDUCTION_MEAN,
                         &out, &tw);
        benchmark::DoNotOptimize(out);
    }
    st.SetItemsProcessed(int64_t(st.iterations()) * int64_t(kNllN));
    nllk_set_isa(nullptr);
}

int register_all()
{
    for (int i = 0; nllk_isa_name(i); i++) {
        const char *isa = nllk_isa_name(i);
        if (!nllk_isa_supported(isa))
            continue;
        benchmark::RegisterBenchmark((std::string("poisson_fwd_mean_f32/log_input:1/") + isa).c_str(),
                                     BM_poisson_fwd_mean, isa, 1);
        benchmark::RegisterBenchmark((std::string("poisson_fwd_mean_f32/log_input:0/") + isa).c_str(),
                                     BM_poisson_fwd_mean, isa, 0);
    }
    const struct { nllkb::LimitIsa isa; const char *name; } bare[] = {
        {nllkb::ISA_SCALAR, "scalar"}, {nllkb::ISA_AVX2, "avx2"}, {nllkb::ISA_AVX512, "avx512"}};
    for (auto &b : bare) {
        if (!nllk_isa_supported(b.name))
            continue;
        benchmark::RegisterBenchmark((std::string("bare_sleef_expf/") + b.name).c_str(), BM_sleef_bare, b.isa,
                                     nllkb::FN_EXP);
        benchmark::RegisterBenchmark((std::string("bare_sleef_logf/") + b.name).c_str(), BM_sleef_bare, b.isa,
                                     nllkb::FN_LOG);
    }
    for (int i = 0; nllk_isa_name(i); i++)
        if (const char *isa = nllk_isa_name(i); nllk_isa_supported(isa))
            benchmark::RegisterBenchmark((std::string("nll_fwd_mean_f32/65536x1000/") + isa).c_str(),
                                         BM_nll_fwd_mean, isa)
                ->Unit(benchmark::kMicrosecond);
    return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
