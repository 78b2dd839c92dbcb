#include "experiments/model/Timeline.h"

#include <algorithm>
#include <map>
#include <optional>

namespace chaosd {
namespace {

struct Node {
  const StepSpec* step = nullptr;
  const StepSpec* previous = nullptr;  // the default predecessor (sequential order)
  const StepSpec* group = nullptr;     // its parallel group, for members
};

// Resolves starts and ends on demand. A step's start depends on another step's end (or its
// group's start); a group's end on its members' ends. A repeated visit means a cycle.
class Resolver {
 public:
  explicit Resolver(const std::vector<StepSpec>& method) {
    const StepSpec* prev = nullptr;
    for (const auto& s : method) {
      nodes_[s.name] = Node{&s, prev, nullptr};
      for (const auto& m : s.parallel) nodes_[m.name] = Node{&m, nullptr, &s};
      prev = &s;
    }
  }

  std::optional<Duration> start(const std::string& name) { return visit(name, false); }
  std::optional<Duration> end(const std::string& name) { return visit(name, true); }
  std::vector<std::string> cycle;

 private:
  std::optional<Duration> visit(const std::string& name, bool wantEnd) {
    auto key = std::make_pair(name, wantEnd);
    if (auto it = done_.find(key); it != done_.end()) return it->second;
    auto nit = nodes_.find(name);
    if (nit == nodes_.end()) return Duration{0};  // dangling: the parser reports it
    if (auto from = std::find(stack_.begin(), stack_.end(), key); from != stack_.end()) {
      if (cycle.empty()) {
        // The names from the repeated visit on, each once in a row: "b -> c -> b" reads
        // "b waits for c, which waits for b".
        for (auto it = from; it != stack_.end(); ++it) {
          if (cycle.empty() || cycle.back() != it->first) cycle.push_back(it->first);
        }
        if (cycle.back() != name || cycle.size() == 1) cycle.push_back(name);
      }
      return std::nullopt;
    }
    stack_.push_back(key);
    auto v = wantEnd ? computeEnd(nit->second) : computeStart(nit->second);
    stack_.pop_back();
    if (v) done_[key] = *v;
    return v;
  }

  std::optional<Duration> computeStart(const Node& n) {
    const StepSpec& s = *n.step;
    if (n.group) return start(n.group->name);
    if (s.at) return *s.at;
    if (!s.after.empty()) return end(s.after);
    if (n.previous) return end(n.previous->name);
    return Duration{0};
  }

  std::optional<Duration> computeEnd(const Node& n) {
    const StepSpec& s = *n.step;
    auto begin = start(s.name);
    if (!begin) return std::nullopt;
    Duration e = *begin + s.duration.value_or(Duration{0});
    for (const auto& m : s.parallel) {
      auto me = end(m.name);
      if (!me) return std::nullopt;
      e = std::max(e, *me);
    }
    return e;
  }

  std::map<std::string, Node> nodes_;
  std::map<std::pair<std::string, bool>, Duration> done_;
  std::vector<std::pair<std::string, bool>> stack_;
};

}  // namespace

Timeline computeTimeline(const std::vector<StepSpec>& method) {
  Resolver r(method);
  Timeline out;
  auto add = [&](const StepSpec& s, const std::string& group) -> bool {
    auto b = r.start(s.name);
    auto e = r.end(s.name);
    if (!b || !e) return false;
    out.entries.push_back(TimelineEntry{s.name, group, s.kind, s.fault, s.target, *b, *e});
    out.total = std::max(out.total, *e);
    return true;
  };
  for (const auto& s : method) {
    if (!add(s, "")) {
      out.cycle = r.cycle;
      out.entries.clear();
      return out;
    }
    for (const auto& m : s.parallel) {
      if (!add(m, s.name)) {
        out.cycle = r.cycle;
        out.entries.clear();
        return out;
      }
    }
  }
  std::stable_sort(
      out.entries.begin(), out.entries.end(),
      [](const TimelineEntry& a, const TimelineEntry& b) { return a.start < b.start; });
  return out;
}

}  // namespace chaosd
