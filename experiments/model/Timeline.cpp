#include "experiments/model/Timeline.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace chaosd {
namespace {

struct Node {
  const StepSpec* step = nullptr;
  std::optional<size_t> previous;  // the default predecessor (sequential order)
  std::optional<size_t> group;     // its parallel group, for members
  std::optional<size_t> after;     // the step named by `after:`, when it exists
};

// Resolves every start and end in one pass, linear in the number of steps. A step's start
// depends on another step's end (or its group's start); a group's end on its start and its
// members' ends. The walk is depth first with an explicit stack: a method of 13,000 steps in
// a chain is 26,000 levels deep, which a recursive walk cannot afford on a thread's stack. A
// value met again while it is on the stack is a cycle.
class Resolver {
 public:
  explicit Resolver(const std::vector<StepSpec>& method) {
    std::unordered_map<std::string_view, size_t> index;
    std::optional<size_t> prev;
    for (const auto& s : method) {
      size_t self = add(index, Node{&s, prev, std::nullopt, std::nullopt});
      for (const auto& m : s.parallel) add(index, Node{&m, std::nullopt, self, std::nullopt});
      prev = self;
    }
    for (auto& n : nodes_) {
      if (n.step->after.empty()) continue;
      if (auto it = index.find(n.step->after); it != index.end()) n.after = it->second;
    }
    state_.assign(nodes_.size() * 2, kUnseen);
    value_.assign(nodes_.size() * 2, Duration{0});
    stackAt_.assign(nodes_.size() * 2, 0);
  }

  size_t size() const { return nodes_.size(); }
  const StepSpec& step(size_t node) const { return *nodes_[node].step; }
  std::string groupName(size_t node) const {
    const auto& g = nodes_[node].group;
    return g ? nodes_[*g].step->name : std::string();
  }
  // The node's start and end, or nullopt when a cycle stands in the way (then `cycle` says
  // which steps form it).
  std::optional<Duration> start(size_t node) { return resolve(node * 2); }
  std::optional<Duration> end(size_t node) { return resolve(node * 2 + 1); }

  std::vector<std::string> cycle;

 private:
  enum State : uint8_t { kUnseen, kOnStack, kDone };
  struct Frame {
    size_t id;
    size_t next = 0;  // the next dependency to look at
  };

  size_t add(std::unordered_map<std::string_view, size_t>& index, Node node) {
    index.emplace(node.step->name, nodes_.size());  // a duplicate name: the first one (reported)
    nodes_.push_back(node);
    return nodes_.size() - 1;
  }

  // The k-th value that value `id` (node * 2 + isEnd) depends on, in the order they are
  // resolved; nullopt past the last.
  std::optional<size_t> dependency(size_t id, size_t k) const {
    const Node& n = nodes_[id / 2];
    if (id % 2 == 1) {  // end: its own start, then its members' ends
      if (k == 0) return id - 1;
      if (k - 1 < n.step->parallel.size()) return (id / 2 + k) * 2 + 1;
      return std::nullopt;
    }
    if (k > 0) return std::nullopt;
    if (n.group) return *n.group * 2;
    if (n.step->at) return std::nullopt;
    if (!n.step->after.empty())
      return n.after ? std::optional<size_t>(*n.after * 2 + 1) : std::nullopt;
    if (n.previous) return *n.previous * 2 + 1;
    return std::nullopt;
  }

  Duration compute(size_t id) const {
    const Node& n = nodes_[id / 2];
    if (id % 2 == 1) {
      Duration e = value_[id - 1] + n.step->duration.value_or(Duration{0});
      for (size_t k = 1; k <= n.step->parallel.size(); ++k)
        e = std::max(e, value_[(id / 2 + k) * 2 + 1]);
      return e;
    }
    if (n.group) return value_[*n.group * 2];
    if (n.step->at) return *n.step->at;
    if (!n.step->after.empty()) return n.after ? value_[*n.after * 2 + 1] : Duration{0};
    if (n.previous) return value_[*n.previous * 2 + 1];
    return Duration{0};
  }

  std::optional<Duration> resolve(size_t root) {
    if (state_[root] == kDone) return value_[root];
    if (!cycle.empty()) return std::nullopt;
    std::vector<Frame> stack{{root}};
    state_[root] = kOnStack;
    stackAt_[root] = 0;
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (auto dep = dependency(f.id, f.next)) {
        ++f.next;
        if (state_[*dep] == kDone) continue;
        if (state_[*dep] == kOnStack) {
          recordCycle(stack, *dep);
          return std::nullopt;
        }
        state_[*dep] = kOnStack;
        stackAt_[*dep] = stack.size();
        stack.push_back(Frame{*dep});
        continue;
      }
      value_[f.id] = compute(f.id);
      state_[f.id] = kDone;
      stack.pop_back();
    }
    return value_[root];
  }

  // The names from the repeated value on, each once in a row, then the first again:
  // "b -> c -> b" reads "b waits for c, which waits for b".
  void recordCycle(const std::vector<Frame>& stack, size_t repeated) {
    for (size_t i = stackAt_[repeated]; i < stack.size(); ++i) {
      const std::string& name = nodes_[stack[i].id / 2].step->name;
      if (cycle.empty() || cycle.back() != name) cycle.push_back(name);
    }
    const std::string& name = nodes_[repeated / 2].step->name;
    if (cycle.back() != name || cycle.size() == 1) cycle.push_back(name);
  }

  std::vector<Node> nodes_;
  std::vector<State> state_;
  std::vector<Duration> value_;
  std::vector<size_t> stackAt_;  // where a value on the stack sits in it
};

}  // namespace

Timeline computeTimeline(const std::vector<StepSpec>& method) {
  Resolver r(method);
  Timeline out;
  // Method order (a group, then its members) is the order the steps are resolved in, so the
  // first cycle found is the one nearest the top of the file.
  for (size_t i = 0; i < r.size(); ++i) {
    const StepSpec& s = r.step(i);
    auto b = r.start(i);
    auto e = r.end(i);
    if (!b || !e) {
      out.cycle = r.cycle;
      out.entries.clear();
      out.total = Duration{0};
      return out;
    }
    out.entries.push_back(TimelineEntry{s.name, r.groupName(i), s.kind, s.fault, s.target, *b, *e});
    out.total = std::max(out.total, *e);
  }
  std::stable_sort(
      out.entries.begin(), out.entries.end(),
      [](const TimelineEntry& a, const TimelineEntry& b) { return a.start < b.start; });
  return out;
}

}  // namespace chaosd
