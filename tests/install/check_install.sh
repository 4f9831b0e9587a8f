#!/usr/bin/env bash
# The install tree as a consumer sees it. Installs the build into a scratch prefix, then builds and runs:
#   - tests/install as a CMake project: find_package(nllk), nllk::nllk (shared) and nllk::nllk_static;
#   - the installed example, with its own CMakeLists.txt (share/nllk/examples);
#   - pkg-config: nllk (shared) and nllk-static (libnllk.a inside the program: it needs no libnllk.so to run;
#     SLEEF, the OpenMP runtime and libm stay shared, as Debian ships no libsleef.a);
#   - with clang: an OpenMP program built against nllk::nllk_static gets one OpenMP runtime (clang's libomp, which
#     also serves nllk's GOMP_* calls), not libomp and libgomp side by side.
# The consumers are compiled by $CC (ctest passes nllk's own compiler): a clang-built libnllk.a calls libomp's
# __kmpc_* entry points, which gcc's libgomp does not provide.
# Usage: check_install.sh <build dir> <scratch dir>
set -euo pipefail
cc=${CC:-cc}
build=$1 scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch" && mkdir -p "$scratch"
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libnllk.so' | head -1)")
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
fail() { echo "FAIL: $*" >&2; exit 1; }

test -f "$prefix/include/nllk_version.h" || fail "nllk_version.h not installed"
readelf -d "$libdir/libnllk.so" | grep -q 'SONAME.*\[libnllk\.so\.0\.1\]' || fail "SONAME is not libnllk.so.0.1"

cmake -S "$here" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$scratch/cmake" >/dev/null
LD_LIBRARY_PATH=$libdir "$scratch/cmake/consumer_shared"
"$scratch/cmake/consumer_static"

cmake -S "$prefix/share/nllk/examples" -B "$scratch/example" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/example" >/dev/null
LD_LIBRARY_PATH=$libdir "$scratch/example/nllk-example" | head -1

export PKG_CONFIG_PATH=$libdir/pkgconfig
"$cc" "$here/consumer.c" -o "$scratch/consumer_pc" $(pkg-config --cflags --libs nllk)
LD_LIBRARY_PATH=$libdir "$scratch/consumer_pc"
"$cc" "$here/consumer.c" -o "$scratch/consumer_pc_static" $(pkg-config --cflags --libs nllk-static)
case " $(needed "$scratch/consumer_pc_static")" in
  *" libnllk.so"*) fail "the pkg-config static link still needs libnllk.so" ;;
esac
env -u LD_LIBRARY_PATH "$scratch/consumer_pc_static"
echo "static (pkg-config nllk-static) needs at run time: $(needed "$scratch/consumer_pc_static")"

if command -v clang >/dev/null && echo 'int main(void){return 0;}' | clang -fopenmp -x c - -o "$scratch/omp_probe" \
     2>/dev/null; then
  CC=clang cmake -S "$here" -B "$scratch/clang" -DCMAKE_PREFIX_PATH="$prefix" -DNLLK_OPENMP_CONSUMER=ON >/dev/null
  cmake --build "$scratch/clang" --target consumer_openmp >/dev/null
  runtimes=$(needed "$scratch/clang/consumer_openmp" | tr ' ' '\n' | grep -c -E '^lib(g|i)?omp' || true)
  [ "$runtimes" = 1 ] || fail "clang OpenMP consumer links $runtimes OpenMP runtimes: $(needed "$scratch/clang/consumer_openmp")"
  OMP_NUM_THREADS=2 "$scratch/clang/consumer_openmp"
  echo "clang + OpenMP + nllk::nllk_static: one runtime ($(needed "$scratch/clang/consumer_openmp" | tr ' ' '\n' | grep -E '^lib(g|i)?omp'))"
else
  echo "clang with OpenMP not found: the one-runtime check is skipped"
fi
echo "install check: CMake package (shared, static), installed example, pkg-config (shared, static) link and run"
