# shellcheck shell=bash
# Variables set here are read by the scripts that source it:
# shellcheck disable=SC2034
# Helpers shared by the scripts in this folder. Source it; it does not run anything itself.

# The repository root, whatever the caller's working directory.
CHAOSD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CHAOSD_ROOT

# Build directories. CHAOSD_BUILD_PREFIX lets a second checkout or a second engineer build
# next to an existing tree without touching it: prefix "build-ci" gives build-ci,
# build-ci-asan and build-ci-fuzz.
CHAOSD_BUILD_PREFIX="${CHAOSD_BUILD_PREFIX:-build}"
BUILD_DIR="${CHAOSD_ROOT}/${CHAOSD_BUILD_PREFIX}"
# The sanitizer build: clang-14 with ASan, UBSan and libFuzzer's coverage, for both the asan
# stage's ctest and the fuzz stage's fuzzer (one build of the library instead of two).
SAN_BUILD_DIR="${CHAOSD_ROOT}/${CHAOSD_BUILD_PREFIX}-san"

JOBS="$(nproc 2>/dev/null || echo 2)"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
  printf 'FAILED: %s\n' "$*" >&2
  exit 1
}

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Configures (idempotent; cmake only regenerates what changed) a Ninja build tree.
# Usage: configure_build DIR [cmake args...]
configure_build() {
  local dir="$1"
  shift
  cmake -S "${CHAOSD_ROOT}" -B "${dir}" -G Ninja "$@"
}
