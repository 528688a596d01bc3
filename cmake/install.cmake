# cmake --install: headers, the library, a CMake package (find_package(iomux) -> iomux::iomux)
# and a pkg-config file.
include(CMakePackageConfigHelpers)

install(TARGETS iomux EXPORT iomuxTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/iomux DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT iomuxTargets NAMESPACE iomux:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/iomux)

configure_package_config_file(cmake/iomuxConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/iomuxConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/iomux)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/iomuxConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/iomuxConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/iomuxConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/iomux)

# The .pc file finds the prefix relative to itself, so the package can be installed anywhere
# (cmake --install --prefix DIR) and still be found.
file(RELATIVE_PATH IOMUX_PC_TO_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(cmake/iomux.pc.in ${CMAKE_CURRENT_BINARY_DIR}/iomux.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/iomux.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
install(TARGETS iomux_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
