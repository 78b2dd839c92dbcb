# Precompiled headers: the standard and third-party headers most files include, parsed once per
# build instead of once per file. CI builds everything twice from a clean tree (GCC release,
# clang sanitizers) on two cores; about 2-4 s of each file's 5-10 s went to these headers
# (the base and experiments layers: 69 s without, 47 s with, GCC -O2).
# The libraries, the mains, the benchmarks and the helpers share one PCH (they have the same
# flags); the two test binaries share a second one that adds GoogleTest.
#
# With the PCH every file sees these headers whether it includes them or not; a GCC build (the
# release stage) has no PCH, so a file that forgets an include fails there.
#
# On by default with clang only. GCC 12 loses the system-header status of these headers in a
# PCH: its -O2 middle-end warnings inside libstdc++ (the known -Warray-bounds false positive of
# std::string's operator+) are then reported, not suppressed, and fail the -Werror release
# build (verified: the same file compiles clean without the PCH, and a `#pragma GCC
# system_header` in the precompiled header does not help).
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(chaosd_pch_default ON)
else()
  set(chaosd_pch_default OFF)
endif()
option(CHAOSD_PCH "Precompile the common standard and library headers" ${chaosd_pch_default})

set(CHAOSD_PCH_HEADERS
  <algorithm> <array> <atomic> <cerrno> <charconv> <chrono> <cmath> <condition_variable>
  <cstddef> <cstdint> <cstdio> <cstdlib> <cstring> <filesystem> <fstream> <functional>
  <iostream> <limits> <map> <memory> <mutex> <optional> <random> <regex> <set> <sstream>
  <string> <string_view> <thread> <unordered_map> <utility> <variant> <vector>
  <nlohmann/json.hpp> <spdlog/spdlog.h> <yaml-cpp/yaml.h>)

# chaosd_pch_own(TARGET [HEADER...]): TARGET makes a PCH of the common headers plus HEADERs.
# chaosd_pch_reuse(TARGET OWNER): TARGET uses OWNER's (their flags must match).
function(chaosd_pch_own target)
  if(CHAOSD_PCH)
    target_precompile_headers(${target} PRIVATE ${CHAOSD_PCH_HEADERS} ${ARGN})
  endif()
endfunction()
function(chaosd_pch_reuse target owner)
  if(CHAOSD_PCH)
    target_precompile_headers(${target} REUSE_FROM ${owner})
  endif()
endfunction()
