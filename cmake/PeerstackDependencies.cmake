# Finds the Debian packages Peerstack builds against and exposes each as an imported target
# named Peerstack::dep::<name>, so module CMakeLists.txt only list what they use.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

pkg_check_modules(PISTACHE REQUIRED IMPORTED_TARGET libpistache)
pkg_check_modules(CRYPTOPP REQUIRED IMPORTED_TARGET libcrypto++)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
find_package(simdjson 3 REQUIRED CONFIG)
find_package(Boost 1.74 REQUIRED)
# Port mapping (the `upnp` tunnel provider): libminiupnpc-dev has a .pc file, libnatpmp-dev not.
pkg_check_modules(MINIUPNPC REQUIRED IMPORTED_TARGET miniupnpc)
find_path(NATPMP_INCLUDE_DIR natpmp.h REQUIRED)
find_library(NATPMP_LIBRARY natpmp REQUIRED)
add_library(peerstack_dep_natpmp INTERFACE)
target_include_directories(peerstack_dep_natpmp INTERFACE ${NATPMP_INCLUDE_DIR})
target_link_libraries(peerstack_dep_natpmp INTERFACE ${NATPMP_LIBRARY})

add_library(Peerstack::dep::pistache ALIAS PkgConfig::PISTACHE)
add_library(Peerstack::dep::cryptopp ALIAS PkgConfig::CRYPTOPP)
add_library(Peerstack::dep::sqlite3 ALIAS PkgConfig::SQLITE3)
add_library(Peerstack::dep::simdjson ALIAS simdjson::simdjson)
add_library(Peerstack::dep::boost ALIAS Boost::headers)
# TLS for outgoing https:// requests (Asio SSL on Debian's OpenSSL 3).
find_package(OpenSSL REQUIRED)
add_library(Peerstack::dep::openssl ALIAS OpenSSL::SSL)
add_library(Peerstack::dep::miniupnpc ALIAS PkgConfig::MINIUPNPC)
add_library(Peerstack::dep::natpmp ALIAS peerstack_dep_natpmp)

if(BUILD_TESTING)
  find_package(GTest REQUIRED)
endif()
