# `cmake --install build --prefix P`: the `aitw` binary, the client library with the static libraries it
# needs (aitw_net and what it links: pipeline, model, kernel, proto, base) and their headers, a CMake package
# (find_package(aitw CONFIG) -> aitw::client) and aitw.pc. tests/consumer builds a project against it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(AITW_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/aitw")
set(_aitw_libs aitw_base aitw_proto aitw_kernel aitw_model aitw_pipeline aitw_net)

# Each library names its headers by a source (or build) path; installed, they all sit in include/.
foreach(lib IN LISTS _aitw_libs)
  get_target_property(_dirs ${lib} INTERFACE_INCLUDE_DIRECTORIES)
  set(_build_dirs "")
  foreach(d IN LISTS _dirs)
    list(APPEND _build_dirs "$<BUILD_INTERFACE:${d}>")
  endforeach()
  set_target_properties(${lib} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
                                          "${_build_dirs};$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
endforeach()

# The public name: a client of the worker protocol needs aitw_net only (a static library: the linker takes
# the client's objects, not the server's).
add_library(aitw_client INTERFACE)
target_link_libraries(aitw_client INTERFACE aitw_net)
set_target_properties(aitw_client PROPERTIES EXPORT_NAME client)
add_library(aitw::client ALIAS aitw_client)

# aitw_warnings is linked to every target (link_libraries) and so must be exported too; to a static
# library it is link-only, so its warning flags never reach a consumer's compile.
install(TARGETS ${_aitw_libs} aitw_client aitw_warnings EXPORT aitwTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS aitw RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
foreach(lib base kernel model pipeline net)
  install(DIRECTORY ${PROJECT_SOURCE_DIR}/${lib}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endforeach()
install(FILES ${PROJECT_BINARY_DIR}/proto/aitw.pb.h ${PROJECT_BINARY_DIR}/proto/onnx.pb.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/proto/aitw.proto DESTINATION ${CMAKE_INSTALL_DATADIR}/aitw)

install(EXPORT aitwTargets NAMESPACE aitw:: DESTINATION ${AITW_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/aitwConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/aitwConfig.cmake INSTALL_DESTINATION ${AITW_INSTALL_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/aitwConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/aitwConfig.cmake ${PROJECT_BINARY_DIR}/aitwConfigVersion.cmake
        DESTINATION ${AITW_INSTALL_CMAKEDIR})

# pkg-config: the same libraries in link order; the system ones through their own .pc files. The prefix is
# found from the .pc file's own place, so `cmake --install --prefix` anywhere gives a working file.
string(REGEX REPLACE "[^/]+" ".." AITW_PC_TO_PREFIX "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
configure_file(${CMAKE_CURRENT_LIST_DIR}/aitw.pc.in ${PROJECT_BINARY_DIR}/aitw.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/aitw.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
