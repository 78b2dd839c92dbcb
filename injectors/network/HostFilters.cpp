#include "injectors/network/HostFilters.h"

#include <algorithm>

#include "chaosd/base/HostNames.h"
#include "chaosd/base/Units.h"

namespace chaosd {
namespace {

using json = nlohmann::json;

// Where the addresses of the names go: folded into `cidr`, or, for a fault that refreshes its
// names, apart in `hostAddresses` (the injector keeps them in a set it can update).
struct Placement {
  bool apart = false;
  const json* lastHosts = nullptr;  // refresh: a name that fails keeps these addresses
  std::map<std::string, std::string>* kept = nullptr;
};

void addUnique(json& list, const std::string& text) {
  if (std::find(list.begin(), list.end(), text) == list.end()) list.push_back(text);
}

// Resolves `where.hosts` into `where.cidr` or `where.hostAddresses` (field names the place in
// errors).
Result<void> resolveIn(json& where, const std::string& field, const HostResolver& resolve,
                       json& found, const Placement& place) {
  if (!where.is_object() || !where.contains("hosts")) return {};
  json cidrs = where.value("cidr", json::array());
  json apart = json::array();
  for (const auto& host : where["hosts"]) {
    const std::string name = host.get<std::string>();
    auto addresses = resolve(name);
    if (!addresses && place.lastHosts != nullptr && place.lastHosts->contains(name)) {
      // Never silently empty: a name that stops resolving keeps what it had.
      (*place.kept)[name] = addresses.error().message();
      addresses = (*place.lastHosts)[name].get<std::vector<std::string>>();
    }
    if (!addresses) {
      return Error(addresses.error().code(),
                   field + ": " + addresses.error().message() + " (a filter is never left empty)");
    }
    for (const auto& a : *addresses) {
      auto cidr = units::parseCidr(a);
      if (!cidr) return Error(ErrorCode::kInternal, "resolver gave '" + a + "' for " + name);
      if (place.apart) {
        addUnique(apart, a);
      } else {
        addUnique(cidrs, cidr->str());
      }
    }
    found[name] = *addresses;
  }
  where.erase("hosts");
  if (!cidrs.empty() || !place.apart) where["cidr"] = std::move(cidrs);
  if (place.apart) {
    std::sort(apart.begin(), apart.end());
    where["hostAddresses"] = std::move(apart);
  }
  return {};
}

Result<ResolvedArgs> resolveAll(const json& args, const HostResolver& resolve,
                                const Placement& place) {
  ResolvedArgs out{args, nullptr};
  json found = json::object();
  CHAOSD_TRY(resolveIn(out.args, "hosts", resolve, found, place));
  for (const char* side : {"to", "from"}) {
    if (out.args.contains(side)) {
      CHAOSD_TRY(resolveIn(out.args[side], std::string(side) + ".hosts", resolve, found, place));
    }
  }
  if (!found.empty()) out.observed = json{{"hosts", std::move(found)}};
  return out;
}

}  // namespace

Result<ResolvedArgs> resolveHostFilters(const json& args, const HostResolver& resolve) {
  return resolveAll(args, resolve, Placement{.apart = args.contains("refresh")});
}

Result<RefreshedArgs> refreshHostFilters(const json& args, const json& lastHosts,
                                         const HostResolver& resolve) {
  RefreshedArgs out;
  const json last = lastHosts.is_object() ? lastHosts : json::object();
  auto resolved = resolveAll(args, resolve, Placement{true, &last, &out.kept});
  if (!resolved) return std::move(resolved).error();
  out.resolved = std::move(*resolved);
  return out;
}

ArgResolver hostFilterResolver() {
  return [](const json& args) { return resolveHostFilters(args, resolveHostName); };
}

ArgRefresher hostFilterRefresher() {
  return [](const json& args, const json& lastHosts) {
    return refreshHostFilters(args, lastHosts, resolveHostName);
  };
}

}  // namespace chaosd
