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

find_program(NLLK_QEMU_AARCH64 qemu-aarch64)
if(NLLK_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${NLLK_QEMU_AARCH64} -L /usr/${NLLK_CROSS_TRIPLET})
endif()
