# Finds the Debian packages Peerstack builds against and exposes each as an imported target
# named Peerstack::dep::<name>, so module CMakeLists.txt only list what they use.
#
# PEERSTACK_PORTABLE (on by default, off in sanitizer and fuzz builds) makes the runtime run
# on a machine that has glibc and nothing else, as the one-file download needs
# (docs/operations.md, "What the file needs"): every library Debian ships as a .a is linked
# statically (Pistache, Crypto++, SQLite, OpenSSL, miniupnpc, libnatpmp; Boost is headers
# only), libstdc++ and libgcc too (peerstack_portable_runtime()), and simdjson, which Debian
# ships only as a .so, is compiled from Debian's own source package (pinned by hash).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
include(FetchContent)

set(_portable_default ON)
if(PEERSTACK_SANITIZE OR PEERSTACK_FUZZ)
  set(_portable_default OFF)  # the sanitizer runtimes are shared libraries anyway
endif()
option(PEERSTACK_PORTABLE "Link every dependency statically: the runtime needs only glibc"
  ${_portable_default})

find_package(Boost 1.74 REQUIRED)
find_package(CLI11 2.1 REQUIRED CONFIG)  # header-only (Debian libcli11-dev)
add_library(Peerstack::dep::boost ALIAS Boost::headers)

# A Debian library as an imported target: its .a when portable, else what pkg-config says.
# NAME: our name; PC: the pkg-config module (optional); ARCHIVES: the .a files, in link order;
# LIBS: what those archives need beyond glibc; HEADER: a header to find (no .pc file).
function(peerstack_debian_dep)
  cmake_parse_arguments(ARG "" "NAME;PC;HEADER" "ARCHIVES;LIBS" ${ARGN})
  set(target peerstack_dep_${ARG_NAME})
  add_library(${target} INTERFACE)
  if(ARG_PC)
    pkg_check_modules(PC_${ARG_NAME} REQUIRED ${ARG_PC})
    target_include_directories(${target} SYSTEM INTERFACE ${PC_${ARG_NAME}_INCLUDE_DIRS})
    target_compile_options(${target} INTERFACE ${PC_${ARG_NAME}_CFLAGS_OTHER})
  endif()
  if(ARG_HEADER)
    find_path(${ARG_NAME}_INCLUDE_DIR ${ARG_HEADER} REQUIRED)
    target_include_directories(${target} SYSTEM INTERFACE ${${ARG_NAME}_INCLUDE_DIR})
  endif()
  if(PEERSTACK_PORTABLE)
    foreach(archive IN LISTS ARG_ARCHIVES)
      find_library(${ARG_NAME}_${archive}_A NAMES lib${archive}.a REQUIRED)
      target_link_libraries(${target} INTERFACE ${${ARG_NAME}_${archive}_A})
    endforeach()
    target_link_libraries(${target} INTERFACE ${ARG_LIBS})
  elseif(ARG_PC)
    target_link_libraries(${target} INTERFACE ${PC_${ARG_NAME}_LINK_LIBRARIES})
  else()
    foreach(archive IN LISTS ARG_ARCHIVES)
      find_library(${ARG_NAME}_${archive}_SO NAMES ${archive} REQUIRED)
      target_link_libraries(${target} INTERFACE ${${ARG_NAME}_${archive}_SO})
    endforeach()
  endif()
  add_library(Peerstack::dep::${ARG_NAME} ALIAS ${target})
endfunction()

# TLS for outgoing https:// requests (Asio SSL on Debian's OpenSSL 3).
peerstack_debian_dep(NAME openssl PC openssl ARCHIVES ssl crypto LIBS Threads::Threads ${CMAKE_DL_LIBS})
# Pistache's own TLS code needs OpenSSL after it on the link line, whatever order a target
# lists its libraries in: name the archives again (a target would be de-duplicated away).
peerstack_debian_dep(NAME pistache PC libpistache ARCHIVES pistache
  LIBS ${openssl_ssl_A} ${openssl_crypto_A} Threads::Threads ${CMAKE_DL_LIBS})
peerstack_debian_dep(NAME cryptopp PC libcrypto++ ARCHIVES crypto++ LIBS Threads::Threads)
peerstack_debian_dep(NAME sqlite3 PC sqlite3 ARCHIVES sqlite3 LIBS Threads::Threads m ${CMAKE_DL_LIBS})
# Port mapping (the `upnp` tunnel provider): libminiupnpc-dev has a .pc file, libnatpmp-dev not.
peerstack_debian_dep(NAME miniupnpc PC miniupnpc ARCHIVES miniupnpc)
peerstack_debian_dep(NAME natpmp HEADER natpmp.h ARCHIVES natpmp)

if(PEERSTACK_PORTABLE)
  # Debian's libsimdjson-dev has no .a: build the library from the source package of the
  # same version as its header (3.0.1-1), fetched once per build directory from Debian's
  # archive and checked against the hash its .dsc records.
  find_package(simdjson 3 REQUIRED CONFIG)  # the installed version must be the one we build
  if(NOT simdjson_VERSION VERSION_EQUAL 3.0.1)
    message(FATAL_ERROR "PEERSTACK_PORTABLE builds simdjson 3.0.1 from source, but the "
      "installed header is ${simdjson_VERSION}: update cmake/PeerstackDependencies.cmake")
  endif()
  FetchContent_Declare(simdjson_source
    URL http://deb.debian.org/debian/pool/main/s/simdjson/simdjson_3.0.1.orig.tar.gz
        https://snapshot.debian.org/archive/debian/20250520T000000Z/pool/main/s/simdjson/simdjson_3.0.1.orig.tar.gz
    URL_HASH SHA256=156b1bc5eb0561b2bd166b46d191fd3d95a3e709cc63761477d3b7aec2b6e9ed
    DOWNLOAD_EXTRACT_TIMESTAMP TRUE)
  FetchContent_GetProperties(simdjson_source)
  if(NOT simdjson_source_POPULATED)
    message(STATUS "simdjson: Debian's source package 3.0.1 (for a static runtime)")
    FetchContent_Populate(simdjson_source)
  endif()
  add_library(peerstack_dep_simdjson STATIC ${simdjson_source_SOURCE_DIR}/singleheader/simdjson.cpp)
  target_include_directories(peerstack_dep_simdjson SYSTEM PUBLIC ${simdjson_source_SOURCE_DIR}/singleheader)
  set_target_properties(peerstack_dep_simdjson PROPERTIES POSITION_INDEPENDENT_CODE ON)
  add_library(Peerstack::dep::simdjson ALIAS peerstack_dep_simdjson)
else()
  find_package(simdjson 3 REQUIRED CONFIG)
  add_library(Peerstack::dep::simdjson ALIAS simdjson::simdjson)
endif()

# Plugins built here carry their own libstdc++ only in portable builds: under the sanitizers
# a dlclose'd plugin's private libstdc++ leaves its exception pool to LeakSanitizer.
if(NOT PEERSTACK_PORTABLE)
  set(PEERSTACK_PLUGIN_SHARED_LIBSTDCXX ON)
endif()

# peerstack_portable_runtime(target): the program a download carries. Portable builds link
# libstdc++ and libgcc into it, so it needs nothing beyond glibc; in every build its debug
# info goes to <file>.debug beside it (gdb finds it through the debug link), which keeps the
# runtime a download carries small (15 MB rather than 100, or 190 under the sanitizers).
function(peerstack_portable_runtime target)
  if(PEERSTACK_PORTABLE)
    target_link_options(${target} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_OBJCOPY} --only-keep-debug $<TARGET_FILE:${target}> $<TARGET_FILE:${target}>.debug
    COMMAND ${CMAKE_OBJCOPY} --strip-debug --remove-section=.gnu_debuglink
            --add-gnu-debuglink=$<TARGET_FILE:${target}>.debug $<TARGET_FILE:${target}>
    VERBATIM)
endfunction()

if(BUILD_TESTING)
  find_package(GTest REQUIRED)
endif()
