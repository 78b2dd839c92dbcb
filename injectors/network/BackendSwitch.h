#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "injectors/FaultRegistry.h"
#include "injectors/FilterRefresh.h"
#include "injectors/Injector.h"

// network.delay and network.loss have more than one mechanism: the netem qdisc, or nftables
// (loss: a random-number match; delay: NFQUEUE and a consumer in the owner). The fault's
// `backend` arg picks one, or `auto`: netem when the kernel has it, else the next in the
// preference list. BackendSwitch makes that choice in prepare() and writes it into the undo
// record, so apply, revert and audit (also the guardian's, from the journal alone) go to the
// same injector. docs/faults/network.md.
namespace chaosd {

// The `backend` arg of network.delay and network.loss ("auto" when not given).
struct BackendArgs {
  std::string backend = "auto";  // auto, or a Backend's name

  // Args that are no object are "auto"; kInvalid when `backend` is no string.
  static Result<BackendArgs> fromJson(const nlohmann::json& args);
  nlohmann::json toJson() const;
};

// BackendSwitch's undo record: the backend it chose and that backend's own record, which only
// that backend reads. JSON keys: backend, inner.
struct BackendUndo {
  std::string backend;
  nlohmann::json inner;

  // kInvalid when the record names no backend (never throws).
  static Result<BackendUndo> fromJson(const nlohmann::json& undo);
  nlohmann::json toJson() const;
};

class BackendSwitch final : public Injector, public FilterRefresh {
 public:
  struct Backend {
    std::string name;         // "netem", "nftables": the values of the `backend` arg
    InjectorFactory factory;  // empty: not in this build (auto skips it, asking for it fails)
    // Whether this machine offers the mechanism; asked only for `auto`. Empty: always.
    std::function<Result<bool>()> available;
  };

  // `backends` in the order `auto` tries them.
  explicit BackendSwitch(std::vector<Backend> backends);

  Result<PreparedFault> prepare(const FaultRequest& request) override;
  Result<AppliedFault> apply(const std::string& faultId, const nlohmann::json& undo) override;
  Result<nlohmann::json> revert(const std::string& faultId, const nlohmann::json& undo) override;
  Result<std::vector<std::string>> audit(const nlohmann::json& undo) override;
  // To the backend the record names (a refresh never changes the backend).
  Result<nlohmann::json> reprepare(const std::string& faultId, const nlohmann::json& undo,
                                   const nlohmann::json& args) override;
  Result<void> update(const std::string& faultId, const nlohmann::json& undo,
                      const nlohmann::json& next) override;

 private:
  // The injector of a backend (created once, then kept: an injector may hold live state between
  // apply and revert, like the NFQUEUE consumer).
  Result<Injector*> injectorFor(const std::string& backend);
  Result<const Backend*> choose(const std::string& wanted);
  // The backend's injector as a FilterRefresh; kUnsupported when it is none (netem).
  Result<FilterRefresh*> refreshOf(const std::string& backend);

  std::vector<Backend> backends_;
  std::map<std::string, std::unique_ptr<Injector>> injectors_;
};

}  // namespace chaosd
