#!/usr/bin/env bash
# `pip install .` as a user runs it, offline: a throw-away venv that sees the system's torch and numpy, the package
# built from the source tree with the interpreter's own setuptools, then a smoke test from outside the source tree
# with no NLLK_LIBRARY and no PYTHONPATH. Then `cmake --install` with NLLK_INSTALL_PYTHON and the same smoke test
# with the installed folder on PYTHONPATH. Usage: check_python.sh <python> <source dir> <scratch dir> <version>
set -euo pipefail
python=$1 src=$2 scratch=$3 version=$4
here=$(cd "$(dirname "$0")" && pwd)
# with the interpreter's headers both installs build the compiled numpy front end: the smoke test then requires it
headers=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
if [ -f "$headers/Python.h" ]; then export NLLK_EXPECT_FAST=1; else export NLLK_EXPECT_FAST=0; fi
rm -rf "$scratch" && mkdir -p "$scratch/elsewhere"
"$python" -m venv --system-site-packages "$scratch/venv"
NLLK_BUILD_JOBS=${NLLK_BUILD_JOBS:-2} "$scratch/venv/bin/python" -m pip install -q --no-build-isolation --no-index \
  --disable-pip-version-check "$src" >"$scratch/pip.log" 2>&1 || { cat "$scratch/pip.log"; exit 1; }
cp "$here/python_smoke.py" "$scratch/elsewhere/"
cd "$scratch/elsewhere"
env -u NLLK_LIBRARY -u PYTHONPATH "$scratch/venv/bin/python" python_smoke.py "$version"

# cmake --install with NLLK_INSTALL_PYTHON: the same package, library inside, under the install prefix. This checks
# the install layout, not the kernels: a Debug build of the scalar kernels only (NLLK_KERNEL_ISAS), which builds in a
# fraction of the time (the pip install above is the Release build, every ISA, that users get).
cmake -S "$src" -B "$scratch/cmake" -DCMAKE_BUILD_TYPE=Debug -DNLLK_KERNEL_ISAS=scalar \
  -DNLLK_BUILD_TESTS=OFF -DNLLK_BUILD_APPS=OFF -DNLLK_BUILD_EXAMPLES=OFF \
  -DNLLK_INSTALL_PYTHON=ON -DNLLK_PYTHON_INSTALL_DIR=lib/python3/site-packages >"$scratch/cmake.log"
cmake --build "$scratch/cmake" -j "${NLLK_BUILD_JOBS:-2}" >>"$scratch/cmake.log"
cmake --install "$scratch/cmake" --prefix "$scratch/prefix" >>"$scratch/cmake.log"
env -u NLLK_LIBRARY PYTHONPATH="$scratch/prefix/lib/python3/site-packages" "$python" python_smoke.py "$version" \
  "$scratch/prefix/lib/python3/site-packages"
