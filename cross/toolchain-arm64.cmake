# Cross build for 64-bit ARM (Raspberry Pi 3/4/5 with a 64-bit OS) on a
# Debian 12 amd64 host with crossbuild-essential-arm64 and the :arm64 -dev
# packages installed (see docs/CONTRIBUTING.md). Tests run under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# protoc and other build tools are the host's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# Debian's multiarch libraries live in /usr/lib/aarch64-linux-gnu: do not
# restrict CMAKE_FIND_ROOT_PATH to /usr/aarch64-linux-gnu.
# pkg-config must answer with the target's .pc files: with the host's,
# FindOpenSSL takes /usr/lib/x86_64-linux-gnu/libssl.so and the link fails.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# Plain qemu-aarch64 (no -L): with -L, threaded programs hang.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
