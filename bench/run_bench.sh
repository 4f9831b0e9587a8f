#!/usr/bin/env bash
# Builds and runs the Google Benchmark suite; writes JSON.
#   bench/run_bench.sh [--quick|--full] [--out FILE] [extra bench_nllk / Google Benchmark flags...]
#   --quick   a smoke run (2 sizes, short timings)   --full   every size, in-cache to 512 MB, 3 repetitions
# The build directory is $NLLK_BENCH_BUILD (default: build-bench next to this repository's CMakeLists.txt).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${NLLK_BENCH_BUILD:-$root/build-bench}
mode=default
out=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) mode=quick ;;
    --full) mode=full ;;
    --out) out=$2; shift ;;
    *) extra+=("$1") ;;
  esac
  shift
done
out=${out:-$build/bench_nllk_$mode.json}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DNLLK_BUILD_BENCHMARKS=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench_nllk >/dev/null
case $mode in
  quick) flags=(--nllk_sizes=quick --benchmark_min_time=0.01) ;;
  full) flags=(--nllk_sizes=full --benchmark_min_time=0.1 --benchmark_repetitions=3
               --benchmark_report_aggregates_only=true) ;;
  *) flags=(--nllk_sizes=default --benchmark_min_time=0.05) ;;
esac
"$build/bench/bench_nllk" "${flags[@]}" --benchmark_out="$out" --benchmark_out_format=json "${extra[@]}"
echo "bench_nllk: JSON written to $out" >&2
