#include "injectors/network/HostFilters.h"

#include <algorithm>

#include "chaosd/base/HostNames.h"
#include "chaosd/base/Units.h"

namespace chaosd {
namespace {

using json = nlohmann::json;

// Resolves `where.hosts` into `where.cidr` (field names the place in errors).
Result<void> resolveIn(json& where, const std::string& field, const HostResolver& resolve,
                       json& found) {
  if (!where.is_object() || !where.contains("hosts")) return {};
  json cidrs = where.value("cidr", json::array());
  for (const auto& host : where["hosts"]) {
    const std::string name = host.get<std::string>();
    auto addresses = resolve(name);
    if (!addresses) {
      return Error(addresses.error().code(),
                   field + ": " + addresses.error().message() + " (a filter is never left empty)");
    }
    for (const auto& a : *addresses) {
      auto cidr = units::parseCidr(a);
      if (!cidr) return Error(ErrorCode::kInternal, "resolver gave '" + a + "' for " + name);
      const std::string text = cidr->str();
      if (std::find(cidrs.begin(), cidrs.end(), text) == cidrs.end()) cidrs.push_back(text);
    }
    found[name] = *addresses;
  }
  where.erase("hosts");
  where["cidr"] = std::move(cidrs);
  return {};
}

}  // namespace

Result<ResolvedArgs> resolveHostFilters(const json& args, const HostResolver& resolve) {
  ResolvedArgs out{args, nullptr};
  json found = json::object();
  CHAOSD_TRY(resolveIn(out.args, "hosts", resolve, found));
  for (const char* side : {"to", "from"}) {
    if (out.args.contains(side)) {
      CHAOSD_TRY(resolveIn(out.args[side], std::string(side) + ".hosts", resolve, found));
    }
  }
  if (!found.empty()) out.observed = json{{"hosts", std::move(found)}};
  return out;
}

ArgResolver hostFilterResolver() {
  return [](const json& args) { return resolveHostFilters(args, resolveHostName); };
}

}  // namespace chaosd
