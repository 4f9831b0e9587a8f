# Cross-build for AArch64 with Debian's gcc-aarch64-linux-gnu and libsleef-dev:arm64; ctest runs the test
# programs under qemu-aarch64 (qemu-user).
#   cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(NLLK_CROSS_TRIPLET aarch64-linux-gnu)

set(CMAKE_C_COMPILER ${NLLK_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${NLLK_CROSS_TRIPLET}-g++)

# Debian multiarch: the target's libraries and headers live in /usr/lib/aarch64-linux-gnu and
# /usr/include/aarch64-linux-gnu, which the cross gcc searches; pkg-config must look only at the arm64 .pc files.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${NLLK_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(CMAKE_FIND_ROOT_PATH /usr/${NLLK_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# -L: the dynamic loader and libraries of the cross toolchain (libc6-arm64-cross, libgomp1-arm64-cross) under
# /usr/aarch64-linux-gnu. LD_LIBRARY_PATH: the loader must also take libc from there. Otherwise it finds the
# host's /etc/ld.so.cache, which lists the multiarch libc6:arm64 (pulled in by libsleef-dev:arm64, usually a
# different Debian revision from libc6-arm64-cross), and a loader and libc of different builds do not work
# together: the first pthread_create (any OpenMP parallel region) spins forever walking a corrupt stack list.
find_program(NLLK_QEMU_AARCH64 qemu-aarch64)
if(NLLK_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${NLLK_QEMU_AARCH64} -L /usr/${NLLK_CROSS_TRIPLET}
      -E LD_LIBRARY_PATH=/usr/${NLLK_CROSS_TRIPLET}/lib)
endif()
