#pragma once

// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37): included bare from C++, its
// functions get C++ names and fail to link. Include this header instead.
extern "C" {
#include <sys/pidfd.h>
}
