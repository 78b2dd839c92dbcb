# Warning, sanitizer and fuzzing flags, applied to our own targets through chaosd_flags.
add_library(chaosd_flags INTERFACE)
target_compile_options(chaosd_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2
  $<$<BOOL:${CHAOSD_WERROR}>:-Werror>)

if(CHAOSD_SANITIZE)
  target_compile_options(chaosd_flags INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(chaosd_flags INTERFACE -fsanitize=address,undefined)
endif()

if(CHAOSD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "CHAOSD_FUZZ needs clang (configure with CXX=clang++-14)")
  endif()
  target_compile_options(chaosd_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined)
  target_link_options(chaosd_flags INTERFACE -fsanitize=address,undefined)
endif()
