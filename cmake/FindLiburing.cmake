# FindLiburing: liburing, the io_uring library, as the imported target Liburing::Liburing.
# Used to build iomux, and by the installed package's config file when libiomux is a static
# archive (which needs liburing at link time). pkg-config, when present, only gives hints: a
# liburing in a non-standard prefix is found through PKG_CONFIG_PATH, and the module works
# without pkg-config. Sets Liburing_FOUND, Liburing_VERSION (from pkg-config, when known).
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_LIBURING QUIET liburing)
endif()
find_path(Liburing_INCLUDE_DIR liburing.h HINTS ${PC_LIBURING_INCLUDE_DIRS})
find_library(Liburing_LIBRARY NAMES uring HINTS ${PC_LIBURING_LIBRARY_DIRS})
set(Liburing_VERSION ${PC_LIBURING_VERSION})

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Liburing REQUIRED_VARS Liburing_LIBRARY Liburing_INCLUDE_DIR
                                  VERSION_VAR Liburing_VERSION
                                  REASON_FAILURE_MESSAGE "install liburing's development package (liburing-dev on Debian and Ubuntu, liburing-devel on Fedora)")
mark_as_advanced(Liburing_INCLUDE_DIR Liburing_LIBRARY)

if(Liburing_FOUND AND NOT TARGET Liburing::Liburing)
  add_library(Liburing::Liburing UNKNOWN IMPORTED)
  set_target_properties(Liburing::Liburing PROPERTIES IMPORTED_LOCATION "${Liburing_LIBRARY}"
                                                      INTERFACE_INCLUDE_DIRECTORIES "${Liburing_INCLUDE_DIR}")
endif()
