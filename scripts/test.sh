#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the release build's ctest suite (every test under every
# ISA this CPU has, plus the Python tests against PyTorch), the same under AddressSanitizer+UBSan, the
# threading tests under ThreadSanitizer, and the
# AArch64 build's C tests under qemu-aarch64. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
jobs=$(nproc)

echo "== release build: ctest"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== sanitizer build (ASan + UBSan): ctest"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DNLLK_SANITIZE=ON -DNLLK_PYTHON_TESTS=OFF >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ctest --output-on-failure -j"$jobs")

echo "== ThreadSanitizer (clang + libomp + Archer): test_threads"
scripts/tsan.sh
