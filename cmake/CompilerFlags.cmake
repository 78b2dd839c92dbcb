# Warning, sanitizer and fuzzing flags, applied to our own targets through chaosd_flags.
add_library(chaosd_flags INTERFACE)
target_compile_options(chaosd_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wformat=2
  # GCC's -Wnull-dereference depends on the optimizer and reports paths inside libstdc++
  # (std::string in a std::variant at -O2) that cannot happen; clang's is a front-end check
  # with no such noise, and the fuzz build compiles everything with clang.
  $<$<CXX_COMPILER_ID:Clang>:-Wnull-dereference>
  $<$<BOOL:${CHAOSD_WERROR}>:-Werror>)

if(CHAOSD_SANITIZE)
  # GCC's -Wmaybe-uninitialized misfires inside libstdc++'s <regex> once ASan instruments it;
  # the release build keeps the warning (and -Werror) for our code.
  target_compile_options(chaosd_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
    $<$<CXX_COMPILER_ID:GNU>:-Wno-maybe-uninitialized>)
  target_link_options(chaosd_flags INTERFACE -fsanitize=address,undefined)
endif()

if(CHAOSD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CHAOSD_FUZZ needs clang (configure with CXX=clang++-14)")
  endif()
  # UB must stop the run (libFuzzer only sees crashes), as it does in the sanitizer build.
  target_compile_options(chaosd_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
    -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(chaosd_flags INTERFACE -fsanitize=address,undefined)
endif()
