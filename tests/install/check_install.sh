#!/usr/bin/env bash
# Installs the build tree into a scratch prefix and links a consumer against it three ways: the CMake package
# (shared and static targets) and pkg-config. Usage: check_install.sh <build dir> <scratch dir>
set -euo pipefail
build=$1 scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch" && mkdir -p "$scratch"
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(find "$prefix" -name 'libnllk.so' -printf '%h\n' | head -1)

cmake -S "$here" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$scratch/cmake" >/dev/null
LD_LIBRARY_PATH=$libdir "$scratch/cmake/consumer_shared"
"$scratch/cmake/consumer_static"

export PKG_CONFIG_PATH=$libdir/pkgconfig
cc "$here/consumer.c" -o "$scratch/consumer_pc" $(pkg-config --cflags --libs nllk)
LD_LIBRARY_PATH=$libdir "$scratch/consumer_pc"
cc "$here/consumer.c" -o "$scratch/consumer_pc_static" $(pkg-config --cflags nllk) \
  "$libdir/libnllk.a" $(pkg-config --static --libs-only-other --libs-only-l nllk | sed 's/-lnllk//')
"$scratch/consumer_pc_static"
echo "install check: CMake package (shared, static) and pkg-config (shared, static) all link and run"
