#include "injectors/process/Selection.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace chaosd {

size_t selectionSize(const Selection& selection, size_t available) {
  switch (selection.mode) {
    case SelectionMode::kAll:
      return available;
    case SelectionMode::kOne:
      return std::min<size_t>(1, available);
    case SelectionMode::kCount:
      return std::min<size_t>(selection.count, available);
    case SelectionMode::kPercent:
      return std::min(available, static_cast<size_t>(std::ceil(
                                     selection.fraction * static_cast<double>(available) - 1e-9)));
  }
  return 0;
}

std::vector<ProcessInfo> selectProcesses(std::vector<ProcessInfo> candidates,
                                         const Selection& selection, uint64_t seed) {
  std::sort(candidates.begin(), candidates.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  size_t n = selectionSize(selection, candidates.size());
  if (n < candidates.size()) {
    // Our own Fisher-Yates with rejection sampling: std::shuffle's draws depend on the
    // standard library's distribution code, and a recorded seed must replay anywhere.
    std::mt19937_64 rng(seed);
    for (size_t i = candidates.size() - 1; i > 0; --i) {
      uint64_t bound = i + 1;
      uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
      uint64_t r = 0;
      do {
        r = rng();
      } while (r >= limit);
      std::swap(candidates[i], candidates[static_cast<size_t>(r % bound)]);
    }
    candidates.resize(n);
    std::sort(candidates.begin(), candidates.end(),
              [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  }
  return candidates;
}

}  // namespace chaosd
