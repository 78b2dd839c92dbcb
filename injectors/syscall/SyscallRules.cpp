#include "injectors/syscall/SyscallRules.h"

#include <fnmatch.h>

namespace chaosd {

Result<void> SyscallRuleSet::add(SyscallRule rule) {
  if (rules_.contains(rule.faultId)) {
    return Error(ErrorCode::kConflict, "fault " + rule.faultId + " is already applied");
  }
  const std::string id = rule.faultId;
  const uint64_t seed = rule.seed;
  rules_.emplace(id, ActiveRule{std::move(rule), {}, std::mt19937_64(seed)});
  return success();
}

std::optional<SyscallRuleStats> SyscallRuleSet::remove(const std::string& faultId) {
  auto it = rules_.find(faultId);
  if (it == rules_.end()) return std::nullopt;
  SyscallRuleStats stats = it->second.stats;
  rules_.erase(it);
  return stats;
}

bool SyscallRuleSet::has(const std::string& faultId) const { return rules_.contains(faultId); }

SyscallVerdict SyscallRuleSet::judge(int nr, const std::function<std::string()>& pathOf,
                                     bool readOnlyOpen) {
  std::string path;
  bool pathRead = false;
  for (auto& [id, active] : rules_) {
    const SyscallRule& r = active.rule;
    if (!r.syscalls.contains(nr)) continue;
    if (!r.pathGlob.empty()) {
      if (!pathRead) {
        path = pathOf();
        pathRead = true;
      }
      if (path.empty() || ::fnmatch(r.pathGlob.c_str(), path.c_str(), 0) != 0) continue;
    }
    SyscallRuleStats& s = active.stats;
    ++s.matched;
    if (r.corrupt && !readOnlyOpen) {
      ++s.notReadOnly;
      ++s.passed;
      continue;
    }
    const bool beyondFirst = r.first != 0 && s.hit >= r.first;
    const bool tooEarly = s.matched <= r.after;
    const bool drawn = r.probability >= 1.0 ||
                       std::uniform_real_distribution<double>(0.0, 1.0)(active.rng) < r.probability;
    if (beyondFirst || tooEarly || !drawn) {
      ++s.passed;
      continue;
    }
    ++s.hit;
    return SyscallVerdict{true, r.errnoValue, r.delay, id, r.corrupt};
  }
  return SyscallVerdict{};
}

void SyscallRuleSet::corruptionDone(const std::string& faultId, bool handedOver) {
  auto it = rules_.find(faultId);
  if (it == rules_.end()) return;  // reverted meanwhile
  SyscallRuleStats& s = it->second.stats;
  if (handedOver) {
    ++s.corrupted;
    return;
  }
  ++s.copyFailed;
  if (s.hit > 0) --s.hit;
  ++s.passed;
}

}  // namespace chaosd
