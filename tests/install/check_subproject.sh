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
# These builds check that nllk configures, builds, links and runs as a subproject, not the vector kernels (the
# top-level build tests those on every ISA): they compile the scalar kernels only (NLLK_KERNEL_ISAS=scalar): on x86
# 8 of the 16 kernel objects, and not the heavy vector ones, which are most of the build's time. The two consumer builds are Debug.
for via in add_subdirectory FetchContent; do
  cmake --no-warn-unused-cli -S "$here" -B "$scratch/$via" -DNLLK_VIA=$via -DNLLK_SOURCE_DIR="$src" -DFETCHCONTENT_SOURCE_DIR_NLLK="$src" \
    -DFETCHCONTENT_FULLY_DISCONNECTED=ON -DCMAKE_BUILD_TYPE=Debug -DNLLK_KERNEL_ISAS=scalar >"$scratch/$via.log"
  cmake --build "$scratch/$via" -j "$jobs" >>"$scratch/$via.log"
  "$scratch/$via/consumer_shared"
  "$scratch/$via/consumer_static"
done
# nllk's own tests inside the parent, Release: test_cross_isa finds its hash file and, with one ISA compiled, still
# gives the hash of every ISA, and refuses the ISAs left out as not part of this build.
cmake -S "$here" -B "$scratch/with_tests" -DNLLK_VIA=add_subdirectory -DNLLK_SOURCE_DIR="$src" \
  -DNLLK_BUILD_TESTS=ON -DNLLK_BUILD_APPS=ON -DNLLK_PYTHON_TESTS=OFF -DNLLK_CLI_PYTHON3=/nonexistent \
  -DCMAKE_BUILD_TYPE=Release -DNLLK_KERNEL_ISAS=scalar >"$scratch/with_tests.log"
cmake --build "$scratch/with_tests" -j "$jobs" --target test_cross_isa npy_corpus >>"$scratch/with_tests.log"
(cd "$scratch/with_tests/nllk" && ctest -R '^(test_cross_isa|npy_corpus)$' --output-on-failure | grep 'tests passed')
# NLLK_KERNEL_ISAS=scalar took effect: the library lists one ISA and runs it on this CPU too
"$scratch/with_tests/nllk/tests/test_cross_isa" "$src/tests/cross_isa.hash" | grep '^test_cross_isa: 1 ISAs, 0 failures (automatic ISA scalar)$' >/dev/null ||
  { echo "NLLK_KERNEL_ISAS=scalar: test_cross_isa did not run the scalar ISA alone"; exit 1; }
echo "subproject check: add_subdirectory and FetchContent build and run; nllk's tests inside a parent find their files"
