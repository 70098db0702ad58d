# One helper per kind of target (after Abseil's CMake helpers): each folder's
# CMakeLists.txt then reads as a list of libraries, executables and tests with their deps.
include_guard(GLOBAL)

# Warnings for our own code only (dependencies' headers are SYSTEM includes).
function(peerstack_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Woverloaded-virtual
    -Wformat=2 -Wimplicit-fallthrough
    $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)  # clang (fuzz builds) has no such warning
endfunction()

function(peerstack_set_sanitizers target)
  if(PEERSTACK_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  if(PEERSTACK_FUZZ)
    # Fuzz builds (clang): coverage feedback for libFuzzer and the sanitizers in every library
    # a harness links, not only in the harness; UB stops the run like a crash. Executables
    # link the sanitizer runtimes; tests/fuzz/ links the harnesses with libFuzzer's main.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
                           -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# peerstack_library(NAME name SRCS ... DEPS ... [PUBLIC_DEPS ...])
# Defines static library peerstack_<name> with alias Peerstack::<name>; headers are included
# as "<module>/<file>.h" relative to core/.
function(peerstack_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;PUBLIC_DEPS" ${ARGN})
  set(target peerstack_${ARG_NAME})
  add_library(${target} STATIC ${ARG_SRCS})
  add_library(Peerstack::${ARG_NAME} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR}/core)
  target_link_libraries(${target} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_DEPS})
  peerstack_set_warnings(${target})
  peerstack_set_sanitizers(${target})
endfunction()

# peerstack_executable(NAME name SRCS ... DEPS ...)
function(peerstack_executable)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS})
  peerstack_set_warnings(${ARG_NAME})
  peerstack_set_sanitizers(${ARG_NAME})
endfunction()

# peerstack_test(NAME name SRCS ... DEPS ... [LABELS ...] [ENV k=v ...])
# A GoogleTest binary; every TEST becomes its own CTest entry so ctest -j runs them in parallel.
function(peerstack_test)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;DEPS;LABELS;ENV" ${ARGN})
  add_executable(${ARG_NAME} ${ARG_SRCS})
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  peerstack_set_warnings(${ARG_NAME})
  peerstack_set_sanitizers(${ARG_NAME})
  gtest_discover_tests(${ARG_NAME}
    PROPERTIES LABELS "${ARG_LABELS}" ENVIRONMENT "${ARG_ENV}"
    DISCOVERY_TIMEOUT 30)
endfunction()
