#!/usr/bin/env bash
# Installs what nllk needs on Debian 12, skipping what is already there.
#   scripts/deps.sh build   the compiler, CMake and SLEEF (enough to build and run the library)
#   scripts/deps.sh test    everything the test suite uses (PyTorch, pytest, the AArch64 cross toolchain, qemu)
set -euo pipefail
what=${1:-test}
pkgs=(build-essential cmake pkg-config libsleef-dev)
if [ "$what" = test ]; then
  pkgs+=(clang-14 libclang-rt-14-dev libomp-14-dev python3-torch libtorch-dev pybind11-dev python3-dev python3-numpy python3-pytest binutils libbenchmark-dev python3-matplotlib libjemalloc2
         gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libsleef-dev:arm64 libopenmpi-dev openmpi-bin)
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ "$what" = test ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
  need_update=1
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
  $SUDO apt-get update -q
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps.sh: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
