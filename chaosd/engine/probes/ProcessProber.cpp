#include "chaosd/engine/probes/ProcessProber.h"

#include <algorithm>

#include "chaosd/base/ProcessTable.h"

namespace chaosd {

Result<std::unique_ptr<Probe>> ProcessProber::create(const ProbeSpec& spec, const Clock& clock,
                                                     std::string procRoot) {
  std::optional<ValueMatcher> count;
  if (spec.tolerance.count) {
    auto matcher = ValueMatcher::create(*spec.tolerance.count, "count");
    if (!matcher) return std::move(matcher).error();
    count = std::move(*matcher);
  }
  std::optional<bool> running = spec.tolerance.running;
  if (!count && !running) running = true;
  return std::unique_ptr<Probe>(
      new ProcessProber(spec, clock, std::move(count), running, std::move(procRoot)));
}

Observation ProcessProber::observe() {
  auto table = ProcessTable::scan(procRoot_);
  if (!table) return Observation::fail(table.error().message());
  auto matched = table->match(spec().process.selector);
  if (!matched) return Observation::fail(matched.error().message());
  std::erase_if(*matched, [](const ProcessInfo& p) { return p.state == 'Z' || p.state == 'X'; });

  const auto n = static_cast<double>(matched->size());
  std::string detail = std::to_string(matched->size()) +
                       (matched->size() == 1 ? " process matches" : " processes match");
  if (count_ && !count_->matches(n)) {
    return Observation::fail(detail + " (expected " + count_->describe() + ")", n);
  }
  if (running_) {
    auto stopped = std::find_if(matched->begin(), matched->end(), [](const ProcessInfo& p) {
      return p.state == 'T' || p.state == 't';
    });
    const bool isRunning = !matched->empty() && stopped == matched->end();
    if (isRunning != *running_) {
      if (*running_ && matched->empty()) return Observation::fail("no process matches", n);
      if (*running_) {
        return Observation::fail(detail + "; pid " + std::to_string(stopped->pid) + " (" +
                                     stopped->comm + ") is stopped",
                                 n);
      }
      return Observation::fail(detail + " and running (expected none running)", n);
    }
  }
  return Observation::pass(detail, n);
}

}  // namespace chaosd
