# Cross build for 64-bit ARM Linux (Debian 12 arm64 boards): Debian's cross compiler
# (crossbuild-essential-arm64 / g++-aarch64-linux-gnu) against a sysroot unpacked from Debian's arm64
# packages by toolchains/make-sysroot.sh, and qemu-user-static to run the tests. Used by the `aarch64`
# preset (CMakePresets.json):  cmake --preset aarch64 && cmake --build --preset aarch64
#
# AITW_SYSROOT (cache variable or environment) picks the sysroot; the default <build dir>/sysroot is
# created on the first configure if it is missing.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

if(NOT AITW_SYSROOT)
  if(DEFINED ENV{AITW_SYSROOT})
    set(AITW_SYSROOT "$ENV{AITW_SYSROOT}")
  else()
    set(AITW_SYSROOT "${CMAKE_BINARY_DIR}/sysroot")
  endif()
endif()
set(AITW_SYSROOT "${AITW_SYSROOT}" CACHE PATH "Debian arm64 sysroot (toolchains/make-sysroot.sh)")
# try_compile projects read this file again from their own binary directory.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AITW_SYSROOT)

if(NOT EXISTS "${AITW_SYSROOT}/.aitw-sysroot")
  message(STATUS "aarch64: building the sysroot in ${AITW_SYSROOT} (toolchains/make-sysroot.sh)")
  execute_process(COMMAND bash "${CMAKE_CURRENT_LIST_DIR}/make-sysroot.sh" "${AITW_SYSROOT}"
                  RESULT_VARIABLE _aitw_sysroot_result)
  if(NOT _aitw_sysroot_result EQUAL 0)
    message(FATAL_ERROR "toolchains/make-sysroot.sh ${AITW_SYSROOT} failed (${_aitw_sysroot_result})")
  endif()
endif()

set(CMAKE_SYSROOT "${AITW_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${AITW_SYSROOT}")
# Programs (protoc) from the host; libraries, headers and CMake packages from the sysroot only.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# pkg-config (httplib's imported target): the sysroot's .pc files only, their paths prefixed with it.
set(ENV{PKG_CONFIG_LIBDIR} "${AITW_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${AITW_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${AITW_SYSROOT}")
set(ENV{PKG_CONFIG_PATH} "")

# protoc runs on the build machine: the host's /usr/bin/protoc (protobuf-compiler, 3.21.12 like the
# sysroot's libprotobuf-dev; FindProtobuf warns when they differ). The sysroot has no protoc of its own.
find_program(Protobuf_PROTOC_EXECUTABLE NAMES protoc NO_CMAKE_FIND_ROOT_PATH
             DOC "Host protoc for the cross build")

# Test binaries (and gtest_discover_tests' listing at build time) run under user-mode emulation, with the
# sysroot as the prefix for the dynamic loader and libraries.
find_program(AITW_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64 NO_CMAKE_FIND_ROOT_PATH
             DOC "User-mode emulator that runs the aarch64 tests on the build machine")
if(AITW_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${AITW_QEMU_AARCH64};-L;${AITW_SYSROOT}")
else()
  message(WARNING "qemu-aarch64-static not found (apt-get install qemu-user-static): the tests cannot be "
                  "listed or run; configure with -DAITW_BUILD_TESTS=OFF to build without them")
endif()
