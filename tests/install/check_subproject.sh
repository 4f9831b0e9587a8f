#!/usr/bin/env bash
# nllk as a subproject of another CMake project, as add_subdirectory and FetchContent users build it: the consumer
# (tests/install) configures, builds nllk's libraries only, links nllk::nllk and nllk::nllk_static, and runs.
# Then nllk's own tests, switched on inside the parent project, find their files (paths are nllk's, not the parent's).
# Usage: check_subproject.sh <nllk source dir> <scratch dir>
set -euo pipefail
src=$1 scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch" && mkdir -p "$scratch"
jobs=${NLLK_BUILD_JOBS:-2}
# The two consumer builds check that nllk configures, builds, links and runs as a subproject; how fast the kernels
# are does not matter to them, so they build Debug (-O0 compiles the kernel objects about 3x faster than -O3). The
# with_tests build below stays Release: its test_cross_isa checks the optimised kernels' bits inside a parent.
for via in add_subdirectory FetchContent; do
  cmake --no-warn-unused-cli -S "$here" -B "$scratch/$via" -DNLLK_VIA=$via -DNLLK_SOURCE_DIR="$src" -DFETCHCONTENT_SOURCE_DIR_NLLK="$src" \
    -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DCMAKE_BUILD_TYPE=Debug >"$scratch/$via.log"
  cmake --build "$scratch/$via" -j "$jobs" >>"$scratch/$via.log"
  "$scratch/$via/consumer_shared"
  "$scratch/$via/consumer_static"
done
cmake -S "$here" -B "$scratch/with_tests" -DNLLK_VIA=add_subdirectory -DNLLK_SOURCE_DIR="$src" \
  -DNLLK_BUILD_TESTS=ON -DNLLK_BUILD_APPS=ON -DNLLK_PYTHON_TESTS=OFF -DNLLK_CLI_PYTHON3=/nonexistent \
  -DCMAKE_BUILD_TYPE=Release >"$scratch/with_tests.log"
cmake --build "$scratch/with_tests" -j "$jobs" --target test_cross_isa npy_corpus >>"$scratch/with_tests.log"
(cd "$scratch/with_tests/nllk" && ctest -R '^(test_cross_isa|npy_corpus)$' --output-on-failure | grep 'tests passed')
echo "subproject check: add_subdirectory and FetchContent build and run; nllk's tests inside a parent find their files"
