#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the release build's ctest suite (every test under every
# ISA this CPU has, plus the Python tests against PyTorch), the same under AddressSanitizer+UBSan, the
# threading tests under ThreadSanitizer, and the
# AArch64 build's C tests under qemu-aarch64. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
jobs=$(nproc)
# each stage's heading says when it started and how long the run has taken so far (CI has a time limit)
stage() { echo "== $* [$(date -u +%H:%M:%S), ${SECONDS} s in]"; }

stage "release build, with the benchmarks: ctest (the benchmarks' smoke runs check that they build and run end to" \
  "end; no speed is asserted)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNLLK_BUILD_BENCHMARKS=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

stage "sanitizer build (ASan + UBSan): ctest"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNLLK_SANITIZE=ON -DNLLK_PYTHON_TESTS=OFF >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -j"$jobs")

stage "accumulator-state fuzzer (clang-14 libFuzzer, ASan + UBSan): fuzz_acc for 60 s from tests/fuzz/corpus_acc"
CC=clang-14 cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNLLK_FUZZ=ON -DNLLK_SANITIZE=ON \
  -DNLLK_PYTHON_TESTS=OFF -DNLLK_BUILD_APPS=OFF -DNLLK_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_acc
mkdir -p build-fuzz/corpus_acc # new inputs go here, not into the committed seeds
if ! build-fuzz/tests/fuzz_acc build-fuzz/corpus_acc tests/fuzz/corpus_acc -max_total_time=60 -timeout=30 \
     -artifact_prefix=build-fuzz/ -print_final_stats=1 >build-fuzz/fuzz_acc.log 2>&1; then
  tail -n 80 build-fuzz/fuzz_acc.log; echo "fuzz_acc failed: the input is build-fuzz/crash-* (or timeout-*)"; exit 1
fi
grep -E '^(Done|stat::)' build-fuzz/fuzz_acc.log

stage "ThreadSanitizer (clang + libomp + Archer): test_threads"
scripts/tsan.sh

stage "AArch64 cross build (gcc-aarch64-linux-gnu, libsleef-dev:arm64): C tests under qemu-aarch64, NEON and scalar"
# Every test the cross build registers, each run under qemu-aarch64 (the toolchain file's emulator): the C suite
# (test_sum, test_reference, test_errors, test_threads) at full size once per ISA (NLLK_ISA=scalar, NLLK_ISA=neon),
# test_cross_isa (every kernel under both ISAs; the output hash must equal tests/cross_isa.hash, the one the x86
# build checks: x86 and AArch64 agree bit for bit) and npy_corpus (nllk-score's .npy parser over the fuzz corpus).
# The Python tests are not registered there (they need the host's Python to load the library). About 4 minutes
# one test at a time on a loaded 2-core machine; --timeout turns a hang under the emulator into a failure.
cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -DCMAKE_BUILD_TYPE=Release \
  -DNLLK_PYTHON_TESTS=OFF -DNLLK_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-arm -j"$jobs"
(cd build-arm && ctest --output-on-failure -j"$jobs" --timeout 600)
(cd build-arm && ctest --output-on-failure -V -R '^test_cross_isa$' | grep -E 'hash|ISAs')
echo "== all stages passed [${SECONDS} s]"
