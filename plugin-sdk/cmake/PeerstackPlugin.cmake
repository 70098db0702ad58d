# peerstack_add_plugin(NAME name SOURCES src... [VERSION x.y.z] [OUTPUT_NAME file])
#
# Builds a Peerstack plugin: a shared library (MODULE) named lib<name>.so that exports only
# peerstack_plugin_entry (hidden visibility plus a version script), is built without
# STB_GNU_UNIQUE symbols (so a new version really loads beside an old one), and has every
# symbol resolved at link time (-Wl,-z,defs: a missing symbol fails the build, not the load),
# and carries its own copy of libstdc++ and libgcc (-static-libstdc++ -static-libgcc, hidden by
# the version script), so it loads in a node that runs where no libstdc++ is installed (the
# one-file download). Set PEERSTACK_PLUGIN_SHARED_LIBSTDCXX=ON to link them as shared
# libraries instead (smaller, but the plugin then needs libstdc++.so.6 on every machine).
# VERSION is passed to the sources as PEERSTACK_PLUGIN_VERSION (a string literal).
include_guard(GLOBAL)

function(peerstack_add_plugin)
  cmake_parse_arguments(ARG "" "NAME;VERSION;OUTPUT_NAME" "SOURCES" ${ARGN})
  if(NOT ARG_NAME OR NOT ARG_SOURCES)
    message(FATAL_ERROR "peerstack_add_plugin: NAME and SOURCES are required")
  endif()
  if(NOT ARG_VERSION)
    set(ARG_VERSION 0.0.0)
  endif()
  add_library(${ARG_NAME} MODULE ${ARG_SOURCES})
  if(TARGET Peerstack::plugin_sdk)
    target_link_libraries(${ARG_NAME} PRIVATE Peerstack::plugin_sdk)
  else()
    target_link_libraries(${ARG_NAME} PRIVATE Peerstack::PluginSDK)
  endif()
  set(_out ${ARG_NAME})
  if(ARG_OUTPUT_NAME)
    set(_out ${ARG_OUTPUT_NAME})
  endif()
  set_target_properties(${ARG_NAME} PROPERTIES
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    OUTPUT_NAME ${_out}
    PREFIX "lib"
    SUFFIX ".so")
  target_compile_definitions(${ARG_NAME} PRIVATE PEERSTACK_PLUGIN_VERSION="${ARG_VERSION}")
  target_compile_options(${ARG_NAME} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-gnu-unique>)
  target_link_options(${ARG_NAME} PRIVATE
    "-Wl,--version-script=${CMAKE_CURRENT_FUNCTION_LIST_DIR}/plugin.version" "-Wl,-z,defs")
  if(NOT PEERSTACK_PLUGIN_SHARED_LIBSTDCXX)
    target_link_options(${ARG_NAME} PRIVATE -static-libstdc++ -static-libgcc)
  endif()
endfunction()
