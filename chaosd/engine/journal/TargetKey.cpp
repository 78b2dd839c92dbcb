#include "chaosd/engine/journal/TargetKey.h"

namespace chaosd {

bool keysOverlap(const std::string& a, const std::string& b) {
  if (a == b) return true;
  auto under = [](const std::string& inner, const std::string& outer) {
    return inner.rfind("path:", 0) == 0 && outer.rfind("path:", 0) == 0 &&
           inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 &&
           (inner[outer.size()] == '/' || outer.back() == '/');
  };
  return under(a, b) || under(b, a);
}

}  // namespace chaosd
