# ctest: installs this build under a fresh prefix, then configures, builds and runs tests/consumer against
# it with find_package(aitw CONFIG), and compiles it again with pkg-config (aitw.pc) alone.
#   cmake -DBUILD=<build dir> -DWORK=<scratch dir> -DSOURCE=<tests/consumer> -DMODELS=<dir> -DIMAGE=<jpg>
#         [-DCXX=<compiler> -DCXX_FLAGS=<flags> -DLINK_FLAGS=<flags>] -P run.cmake
file(REMOVE_RECURSE "${WORK}")
set(compiler "")
if(CXX)
  set(compiler "-DCMAKE_CXX_COMPILER=${CXX}")
else()
  set(CXX c++)
endif()
set(prefix "${WORK}/prefix")
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
endfunction()

run("install" ${CMAKE_COMMAND} --install "${BUILD}" --prefix "${prefix}")
foreach(f bin/aitw include/aitw/net/client.hpp include/aitw.pb.h lib/cmake/aitw/aitwConfig.cmake
          lib/pkgconfig/aitw.pc lib/libaitw_net.a)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install: ${prefix}/${f} missing")
  endif()
endforeach()

run("configure the consumer" ${CMAKE_COMMAND} -S "${SOURCE}" -B "${WORK}/build" -G Ninja
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}" ${compiler})
run("build the consumer" ${CMAKE_COMMAND} --build "${WORK}/build")
run("run the consumer" "${WORK}/build/aitw_consumer" "${prefix}/bin/aitw" "${MODELS}" "${IMAGE}")
message("${last_out}")
if(NOT last_out MATCHES "not initialized \\(as expected\\)" OR NOT last_out MATCHES "\nOK\n")
  message(FATAL_ERROR "the consumer's output lacks its checks")
endif()

# pkg-config alone: what a Makefile project would use.
set(ENV{PKG_CONFIG_PATH} "${prefix}/lib/pkgconfig")
run("pkg-config" pkg-config --cflags --libs aitw)
string(STRIP "${last_out} ${CXX_FLAGS}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
separate_arguments(link_flags UNIX_COMMAND "${LINK_FLAGS}")
run("compile with pkg-config" ${CXX} -std=c++20 -c "${SOURCE}/main.cpp" -o "${WORK}/main.o" ${flags})
run("link with pkg-config" ${CXX} "${WORK}/main.o" -o "${WORK}/aitw_consumer_pc" ${flags} ${link_flags})
message("pkg-config build: OK")
