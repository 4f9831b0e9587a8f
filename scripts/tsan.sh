#!/usr/bin/env bash
# ThreadSanitizer run of the threading tests. GCC's libgomp is not instrumented (TSan would report its barriers
# as races), so this builds with clang and LLVM's libomp, whose OMPT tool Archer tells TSan about OpenMP's
# synchronisation. -O1, as TSan's manual advises (at -O0 the always-inlined kernels compile for many minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
archer=/usr/lib/llvm-14/lib/libarcher.so
command -v clang-14 >/dev/null && [ -f "$archer" ] || { echo "tsan.sh: needs clang-14 and libomp-14-dev"; exit 1; }
CC=clang-14 cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DNLLK_PYTHON_TESTS=OFF -DNLLK_BUILD_EXAMPLES=OFF \
  -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=thread" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" >/dev/null
cmake --build build-tsan -j"$(nproc)" --target test_threads
OMP_TOOL_LIBRARIES=$archer TSAN_OPTIONS="halt_on_error=1 exitcode=66 ignore_noninstrumented_modules=1" build-tsan/tests/test_threads
