# cmake --install: headers, the library (static, or shared with BUILD_SHARED_LIBS), a CMake
# package (find_package(iomux) -> iomux::iomux), a pkg-config file, and the CLI when it is built.
include(CMakePackageConfigHelpers)
get_target_property(_iomux_type iomux TYPE)
if(_iomux_type STREQUAL "SHARED_LIBRARY")
  set(IOMUX_SHARED ON)
else()
  set(IOMUX_SHARED OFF)
endif()

install(TARGETS iomux EXPORT iomuxTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/iomux DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT iomuxTargets NAMESPACE iomux:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/iomux)

configure_package_config_file(cmake/iomuxConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/iomuxConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/iomux)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/iomuxConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
# FindLiburing.cmake goes along: a static libiomux's config file uses it.
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/iomuxConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/iomuxConfigVersion.cmake
  ${CMAKE_CURRENT_SOURCE_DIR}/cmake/FindLiburing.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/iomux)

# The .pc file finds the prefix relative to itself, so the package can be installed anywhere
# (cmake --install --prefix DIR) and still be found.
# A static archive needs liburing on the link line of every program; a shared library links it
# itself.
file(RELATIVE_PATH IOMUX_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
if(IOMUX_SHARED)
  set(IOMUX_PC_LIBS "-liomux -pthread")
else()
  set(IOMUX_PC_LIBS "-liomux -luring -pthread")
endif()
configure_file(cmake/iomux.pc.in ${CMAKE_CURRENT_BINARY_DIR}/iomux.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/iomux.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(TARGET iomux_cli)
  install(TARGETS iomux_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
