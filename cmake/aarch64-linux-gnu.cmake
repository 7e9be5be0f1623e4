# Cross toolchain for aarch64 Linux (Debian: apt-get install gcc-aarch64-linux-gnu qemu-user).
# cmake -S . -B build/aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DGN_WITH_IMAGES=OFF
# Tests run under qemu: CMAKE_CROSSCOMPILING_EMULATOR makes ctest prefix them with it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(GN_AARCH64_SYSROOT /usr/aarch64-linux-gnu CACHE PATH "aarch64 runtime libraries for qemu -L")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;${GN_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH ${GN_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config must not hand the host's x86_64 libraries to the cross build
set(ENV{PKG_CONFIG_LIBDIR} ${GN_AARCH64_SYSROOT}/lib/pkgconfig)
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${GN_AARCH64_SYSROOT})
