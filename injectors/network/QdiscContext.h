#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "injectors/network/QdiscUndo.h"

namespace chaosd {

// What the qdisc injectors of one registry share (NetworkFaults.cpp makes one per registry: one
// per chaosd or chaosctl process). Not copyable; thread-safe through lockTree().
class QdiscContext {
 public:
  QdiscContext() = default;
  QdiscContext(const QdiscContext&) = delete;
  QdiscContext& operator=(const QdiscContext&) = delete;
  QdiscContext(QdiscContext&&) = delete;
  QdiscContext& operator=(QdiscContext&&) = delete;
  ~QdiscContext() = default;

  // Held while a fault reads or changes a device's tree: one tree change at a time among the
  // injectors sharing the context.
  [[nodiscard]] std::unique_lock<std::mutex> lockTree() { return std::unique_lock(treeMu_); }

  // The users' roots seen at prepare, by device (namespace and ifindex, QdiscRoot.h's
  // deviceKey), for a fault prepared while our tree already replaced it (another fault of these
  // injectors on the same device): that fault needs the user's root in its own undo, since it
  // may be the one whose revert removes the tree. Callers hold lockTree().
  std::optional<QdiscPriorRoot> priorOf(const std::string& device) const {
    auto it = priors_.find(device);
    if (it == priors_.end()) return std::nullopt;
    return it->second;
  }
  void remember(const std::string& device, QdiscPriorRoot prior) {
    priors_[device] = std::move(prior);
  }
  void forget(const std::string& device) { priors_.erase(device); }

 private:
  std::mutex treeMu_;
  std::map<std::string, QdiscPriorRoot> priors_;
};

}  // namespace chaosd
