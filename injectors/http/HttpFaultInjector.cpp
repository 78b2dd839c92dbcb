#include "injectors/http/HttpFaultInjector.h"

#include <sys/stat.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <map>
#include <utility>

#include "chaosd/base/Log.h"
#include "chaosd/base/Units.h"
#include "experiments/model/Experiment.h"
#include "injectors/http/HttpRecords.h"
#include "injectors/network/NftRecords.h"
#include "injectors/network/NftRules.h"
#include "injectors/network/NftSession.h"
#include "injectors/process/ProcessInjector.h"
#include "injectors/process/TargetResolution.h"

namespace chaosd {
namespace {

std::string tableName(const std::string& faultId) { return nftablesFaultTable(faultId); }

// "CH" and 16 bits of the fault id: a mark no other fault of this process shares, and unlikely
// to be one the namespace's own policy routing uses.
uint32_t markFor(const std::string& faultId) {
  uint32_t h = 2166136261u;
  for (unsigned char c : faultId) h = (h ^ c) * 16777619u;
  return 0x43480000u | (h & 0xffffu) | 1u;
}

Result<HttpFaultUndo> recordOf(const nlohmann::json& undo, const std::string& faultId) {
  auto record = HttpFaultUndo::fromJson(undo);
  if (!record) return std::move(record).error();
  CHAOSD_TRY(record->belongsTo(faultId));
  return record;
}

bool namespaceGone(const Error& e) { return e.code() == ErrorCode::kNotFound; }
bool tableGone(const Error& e) {
  return e.message().find("No such file or directory") != std::string::npos;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

std::string percentText(double p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", p * 100);
  return buf;
}

std::string describe(const HttpFaultUndo& u) {
  std::string actions;
  for (const auto& r : u.args.rules) {
    std::string what;
    if (r.delay)
      what += " delay " + std::to_string(r.delay->delayNs / 1'000'000) + "ms " +
              percentText(r.delay->percent);
    if (r.responseDelay)
      what += " responseDelay " + std::to_string(r.responseDelay->delayNs / 1'000'000) + "ms " +
              percentText(r.responseDelay->percent);
    if (r.abort)
      what += " abort " + std::to_string(r.abort->status) + " " + percentText(r.abort->percent);
    if (r.reset) what += " reset " + percentText(r.reset->percent);
    if (r.truncate) what += " truncate " + percentText(r.truncate->percent);
    std::string match = r.method.empty() ? "" : r.method + " ";
    match += r.pathPrefix.empty() ? (r.pathRegex.empty() ? "*" : "/" + r.pathRegex + "/")
                                  : r.pathPrefix + "*";
    actions += (actions.empty() ? "" : ";") + std::string(" ") + match + ":" + what;
  }
  std::vector<std::string> ports;
  for (auto p : u.args.ports) ports.push_back(std::to_string(p));
  std::vector<std::string> to = u.args.to;
  if (u.args.hostAddresses) {
    for (const auto& a : *u.args.hostAddresses) to.push_back(a + " (host)");
  }
  return "http" + actions + " for port " + joined(ports) + (to.empty() ? "" : " to " + joined(to)) +
         " from " + u.netns().describe() + " (proxy, nftables table inet " + u.table + ")";
}

// A namespace file's nsfs identity ("dev:inode"): the same for every path naming it.
std::optional<std::string> nsIdentity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

// The network namespace of a process target: every process it selects must share one, and not
// this process's own (a process target names the process's traffic; the host's namespace is
// an interface target's). Its name under /run/netns when it has one (it outlives the
// processes), else /proc/PID/ns/net of the lowest pid.
Result<std::string> processNetnsPath(const TargetSpec& target) {
  auto found = findCandidates(target.process, defaultProtection());
  if (!found) return std::move(found).error().withContext("resolving target " + target.name);
  if (found->eligible.empty()) {
    std::string why;
    for (const auto& r : found->refused) why += (why.empty() ? ": " : "; ") + r;
    return Error(found->refused.empty() ? ErrorCode::kNotFound : ErrorCode::kPermission,
                 "no process of target " + target.name + " (" + describeSelector(target) +
                     ") to take a network namespace from" + why);
  }
  std::map<std::string, pid_t> spaces;  // identity -> lowest pid in it
  for (const auto& p : found->eligible) {
    const std::string path = "/proc/" + std::to_string(p.pid) + "/ns/net";
    if (auto id = nsIdentity(path)) spaces.emplace(*id, p.pid);
  }
  if (spaces.empty()) {
    return Error(ErrorCode::kNotFound, "target " + target.name + ": its processes are gone");
  }
  if (spaces.size() > 1) {
    std::string pids;
    for (const auto& [id, pid] : spaces) pids += (pids.empty() ? "" : ", ") + std::to_string(pid);
    return Error(ErrorCode::kInvalid, "target " + target.name + " selects processes in " +
                                          std::to_string(spaces.size()) +
                                          " network namespaces (pids " + pids +
                                          "): http.fault acts on one; narrow the selector");
  }
  const auto& [id, pid] = *spaces.begin();
  if (nsIdentity("/proc/thread-self/ns/net") == id) {
    return Error(ErrorCode::kInvalid,
                 "target " + target.name + " (pid " + std::to_string(pid) +
                     ") is in chaosd's own network namespace: http.fault on a process acts on "
                     "the process's whole namespace; give an interface target for the host's");
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
    if (nsIdentity(e.path().string()) == id) return e.path().string();
  }
  return "/proc/" + std::to_string(pid) + "/ns/net";
}

// The connections resetExisting destroys: to the redirected ports and destinations, never the
// proxy's own.
http::ConnectionMatch connectionMatch(const HttpFaultUndo& u) {
  http::ConnectionMatch m;
  m.ports = u.args.ports;
  m.skipMark = u.mark;
  for (const auto& c : u.args.to) {
    if (auto cidr = units::parseCidr(c)) m.to.push_back(*cidr);
  }
  for (const auto& a : u.args.hostAddresses.value_or(std::vector<std::string>{})) {
    if (auto ip = units::parseIp(a)) m.to.push_back(*ip);
  }
  if (m.to.empty() && u.args.hostAddresses) m.ports.clear();  // names with no address: none
  return m;
}

}  // namespace

// The base name of the table's host sets (the table is the fault's own).
constexpr const char* kHostSet = "hosts";

std::string httpRedirectCommands(const HttpFaultUndo& u, uint16_t port) {
  const std::string t = "inet " + u.table;
  const std::string tag = "comment \"chaosd http.fault " + u.faultId + "\"";
  std::vector<std::string> ports;
  for (auto p : u.args.ports) ports.push_back(std::to_string(p));
  // Only a connection's first packet (SYN without ACK): a connection the namespace's conntrack
  // did not track before the table existed (no conntrack user there yet) is picked up mid-stream
  // as a new one, and redirecting its next packet would reset it (kernel 6.18, checked).
  const std::string redirect =
      "tcp dport { " + joined(ports) +
      " } tcp flags & (syn | ack) == syn redirect to :" + std::to_string(port) + " " + tag;
  char mark[16];
  std::snprintf(mark, sizeof mark, "0x%08x", u.mark);
  std::string out = "add table " + t + " { " + tag + " ; }\n";
  out += "add chain " + t + " output { type nat hook output priority -100 ; policy accept ; }\n";
  out += "add rule " + t + " output meta mark " + mark + " return\n";
  out += "add rule " + t + " output tcp dport 22 return\n";
  std::vector<std::string> v4, v6;
  for (const auto& c : u.args.to) (c.find(':') == std::string::npos ? v4 : v6).push_back(c);
  if (u.args.hostAddresses) {  // the host names' addresses, in sets a refresh replaces
    out += "add set " + t + " " + kHostSet + "_v4 { type ipv4_addr ; }\n";
    out += "add set " + t + " " + kHostSet + "_v6 { type ipv6_addr ; }\n";
    out += nftablesHostSetUpdate(u.table, kHostSet, *u.args.hostAddresses);
    out += "add rule " + t + " output ip daddr @" + kHostSet + "_v4 " + redirect + "\n";
    out += "add rule " + t + " output ip6 daddr @" + kHostSet + "_v6 " + redirect + "\n";
  } else if (u.args.to.empty()) {
    out += "add rule " + t + " output " + redirect + "\n";
  }
  if (!v4.empty())
    out += "add rule " + t + " output ip daddr { " + joined(v4) + " } " + redirect + "\n";
  if (!v6.empty())
    out += "add rule " + t + " output ip6 daddr { " + joined(v6) + " } " + redirect + "\n";
  return out;
}

bool HttpContext::runs(const std::string& faultId) const {
  std::lock_guard lock(mu_);
  return running_.contains(faultId);
}

void HttpContext::keep(const std::string& faultId, Running running) {
  std::optional<Running> replaced;  // stopped outside the lock
  std::lock_guard lock(mu_);
  auto it = running_.find(faultId);
  if (it != running_.end()) replaced = std::move(it->second);
  running_[faultId] = std::move(running);
}

std::optional<HttpContext::Running> HttpContext::take(const std::string& faultId) {
  std::lock_guard lock(mu_);
  auto it = running_.find(faultId);
  if (it == running_.end()) return std::nullopt;
  Running out = std::move(it->second);
  running_.erase(it);
  return out;
}

HttpFaultInjector::HttpFaultInjector(std::shared_ptr<HttpContext> context)
    : HttpFaultInjector(std::move(context),
                        std::make_shared<LibnftablesKernel>(std::make_shared<NftSessionPool>()),
                        std::make_shared<http::ThreadedHttpKernel>()) {}

HttpFaultInjector::HttpFaultInjector(std::shared_ptr<HttpContext> context,
                                     std::shared_ptr<NftKernel> nft,
                                     std::shared_ptr<http::HttpKernel> proxies)
    : context_(std::move(context)), nft_(std::move(nft)), proxies_(std::move(proxies)) {}

Result<PreparedFault> HttpFaultInjector::prepare(const FaultRequest& request) {
  const TargetSpec* target = request.target;
  if (target == nullptr ||
      (target->kind != TargetKind::kInterface && target->kind != TargetKind::kProcess)) {
    return Error(ErrorCode::kInvalid,
                 request.faultType + " needs an interface or a process target" +
                     (target != nullptr && target->kind == TargetKind::kExec
                          ? " (exec target '" + target->name + "' has no process started)"
                          : ""));
  }
  auto args = HttpFaultArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  CHAOSD_TRY(http::Policy::create(args->rules));  // every regex compiles
  std::string netnsPath;
  if (target->kind == TargetKind::kInterface) {
    netnsPath = target->interface.netns.nsPath();
  } else {
    auto path = processNetnsPath(*target);
    if (!path) return std::move(path).error();
    netnsPath = std::move(*path);
  }
  HttpFaultUndo undo{.faultId = request.faultId,
                     .table = tableName(request.faultId),
                     .netnsPath = netnsPath,
                     .mark = markFor(request.faultId),
                     .args = std::move(*args)};
  PreparedFault out;
  out.undo = undo.toJson();
  out.description = describe(undo);
  out.resources = {"nft:" + undo.netnsPath + ":" + undo.table};
  return out;
}

Result<AppliedFault> HttpFaultInjector::apply(const std::string& faultId,
                                              const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  if (context_->runs(faultId)) {
    return Error(ErrorCode::kConflict, "fault " + faultId + " is already applied");
  }
  auto policy = http::Policy::create(record->args.rules);
  if (!policy) return std::move(policy).error();
  http::ProxyConfig config{record->netnsPath, record->mark, *policy,
                           static_cast<size_t>(record->args.maxConnections),
                           std::chrono::nanoseconds(record->args.headerTimeoutNs)};
  // The proxy first: once the table exists, new connections to the dependency reach it.
  auto proxy = proxies_->startProxy(std::move(config));
  if (!proxy) return std::move(proxy).error();
  const uint16_t port = (*proxy)->port();
  // resetExisting: the connections open before the table exists went direct (NAT decides on a
  // connection's first packet), so they are listed now, and destroyed once the table is there:
  // a connection made in between goes direct and is left alone, one through the proxy is never
  // on the list.
  std::vector<http::OpenConnection> before;
  if (record->args.resetExisting) {
    auto listed = proxies_->openConnections(record->netnsPath, connectionMatch(*record));
    if (!listed) {
      (*proxy)->stop();
      return std::move(listed).error().withContext("http.fault resetExisting");
    }
    before = std::move(*listed);
  }
  const std::string commands = httpRedirectCommands(*record, port);
  auto added = nft_->run(record->netnsPath, commands);
  if (!added) {
    (*proxy)->stop();
    return std::move(added).error();
  }
  nlohmann::json observed = {
      {"table", "inet " + record->table}, {"proxyPort", port}, {"mark", record->mark}};
  if (record->args.resetExisting) {
    auto reset = proxies_->resetConnections(record->netnsPath, before);
    if (!reset) {  // all or nothing: the redirect goes, then the proxy
      if (nft_->run(record->netnsPath, "delete table inet " + record->table)) {
        nft_->forget(record->netnsPath);
      }
      (*proxy)->stop();
      return std::move(reset).error().withContext("http.fault resetExisting");
    }
    observed["resetConnections"] = *reset;
    log::get("http")->info("http.fault fault={} reset {} of {} connections open before it", faultId,
                           *reset, before.size());
  }
  context_->keep(faultId, {std::move(*proxy), *policy});
  log::get("http")->info("http.fault applied fault={} table={} port={}", faultId, record->table,
                         port);
  return AppliedFault{"proxy", std::move(observed)};
}

Result<nlohmann::json> HttpFaultInjector::revert(const std::string& faultId,
                                                 const nlohmann::json& undo) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  nlohmann::json observed = nlohmann::json::object();
  // The redirection first: new connections go direct at once. Then the proxy and its
  // connections, which the clients see closed.
  auto deleted = nft_->run(record->netnsPath, "delete table inet " + record->table);
  const bool gone = !deleted && namespaceGone(deleted.error());
  if (!deleted && !gone && !tableGone(deleted.error())) return std::move(deleted).error();
  if (deleted) nft_->forget(record->netnsPath);
  if (auto running = context_->take(faultId)) {
    const http::ProxyStats stats = running->proxy->stop();
    observed["proxy"] = stats.toJson();
    nlohmann::json rules = nlohmann::json::array();
    for (const auto& s : running->policy->stats()) rules.push_back(s.toJson());
    observed["rules"] = rules;
    log::get("http")->info("http.fault reverted fault={} requests={} connections={}", faultId,
                           stats.requests, stats.connections);
  }
  if (gone) observed["note"] = "the network namespace is gone";
  return observed;
}

Result<nlohmann::json> HttpFaultInjector::reprepare(const std::string& faultId,
                                                    const nlohmann::json& undo,
                                                    const nlohmann::json& args) {
  auto record = recordOf(undo, faultId);
  if (!record) return std::move(record).error();
  auto next = HttpFaultArgs::fromJson(args);
  if (!next) return std::move(next).error();
  if (!record->args.hostAddresses || !next->hostAddresses) {
    return Error(ErrorCode::kUnsupported, "fault " + faultId + " has no host set to refresh");
  }
  // Only the sets' addresses change: the table, the proxy and the rules stay.
  record->args.hostAddresses = std::move(next->hostAddresses);
  return record->toJson();
}

Result<void> HttpFaultInjector::update(const std::string& faultId, const nlohmann::json& undo,
                                       const nlohmann::json& next) {
  auto before = recordOf(undo, faultId);
  if (!before) return std::move(before).error();
  auto after = recordOf(next, faultId);
  if (!after) return std::move(after).error();
  if (!after->args.hostAddresses || after->table != before->table ||
      after->netnsPath != before->netnsPath) {
    return Error(ErrorCode::kInvalid, "the records of fault " + faultId + " name other objects");
  }
  // One transaction: both sets flushed and filled; a new connection sees the old or the new.
  auto ran = nft_->run(after->netnsPath,
                       nftablesHostSetUpdate(after->table, kHostSet, *after->args.hostAddresses));
  if (!ran) return std::move(ran).error();
  return success();
}

Result<std::vector<std::string>> HttpFaultInjector::audit(const nlohmann::json& undo) {
  auto record = recordOf(undo, "");
  if (!record) return std::move(record).error();
  std::vector<std::string> out;
  auto listed =
      nft_->listJson(record->netnsPath, "table inet " + record->table, NftSessionUse::kOneOff);
  if (listed) {
    out.push_back("nftables table inet " + record->table + " still exists");
  } else if (!namespaceGone(listed.error()) && !tableGone(listed.error())) {
    return std::move(listed).error();
  }
  if (context_->runs(record->faultId)) {
    out.push_back("the http.fault proxy of fault " + record->faultId + " still runs");
  }
  return out;
}

}  // namespace chaosd
