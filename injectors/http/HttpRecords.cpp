#include "injectors/http/HttpRecords.h"

#include "chaosd/base/Units.h"
#include "injectors/RecordFields.h"
#include "injectors/network/NftRecords.h"

namespace chaosd {
namespace {

using nlohmann::json;

// A mapping of strings (headers); absent: empty.
Result<std::map<std::string, std::string>> readMap(const json& j, const std::string& key,
                                                   const std::string& where) {
  std::map<std::string, std::string> out;
  if (!j.contains(key)) return out;
  const json& m = j.at(key);
  if (!m.is_object()) return Error(ErrorCode::kInvalid, where + "." + key + ": not a mapping");
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) {
      return Error(ErrorCode::kInvalid, where + "." + key + "." + k + ": not a string");
    }
    out[k] = v.get<std::string>();
  }
  return out;
}

Result<void> checkPercent(double p, const std::string& where) {
  if (p < 0 || p > 1) {
    return Error(ErrorCode::kInvalid, where + ".percent: " + std::to_string(p) + " is not 0..1");
  }
  return success();
}

Result<http::Rule> readRule(const json& j, const std::string& where) {
  http::Rule r;
  RecordFields f(j, where);
  f.optional("method", r.method).optional("path", r.pathPrefix);
  f.optional("pathRegex", r.pathRegex);
  CHAOSD_TRY(f.done());
  auto headers = readMap(j, "headers", where);
  if (!headers) return std::move(headers).error();
  r.headers = std::move(*headers);
  for (const char* key : {"delay", "responseDelay"}) {
    if (!j.contains(key)) continue;
    const std::string at = where + "." + key;
    http::DelayAction d;
    RecordFields g(j.at(key), at);
    g.required("delay", d.delayNs).optional("jitter", d.jitterNs).optional("percent", d.percent);
    CHAOSD_TRY(g.done());
    CHAOSD_TRY(checkPercent(d.percent, at));
    if (d.delayNs < 0 || d.jitterNs < 0) {
      return Error(ErrorCode::kInvalid, at + ": a negative duration");
    }
    (std::string_view(key) == "delay" ? r.delay : r.responseDelay) = d;
  }
  if (j.contains("reset")) {
    http::ResetAction a;
    RecordFields g(j.at("reset"), where + ".reset");
    g.optional("percent", a.percent);
    CHAOSD_TRY(g.done());
    CHAOSD_TRY(checkPercent(a.percent, where + ".reset"));
    r.reset = a;
  }
  if (j.contains("abort")) {
    http::AbortAction a;
    RecordFields g(j.at("abort"), where + ".abort");
    g.required("status", a.status).optional("body", a.body).optional("percent", a.percent);
    CHAOSD_TRY(g.done());
    CHAOSD_TRY(checkPercent(a.percent, where + ".abort"));
    if (a.status < 100 || a.status > 599) {
      return Error(ErrorCode::kInvalid, where + ".abort.status: " + std::to_string(a.status) +
                                            " is not an HTTP status (100..599)");
    }
    auto h = readMap(j.at("abort"), "headers", where + ".abort");
    if (!h) return std::move(h).error();
    for (const auto& [name, value] : *h) {
      if (name.find_first_of(":\r\n ") != std::string::npos ||
          value.find_first_of("\r\n") != std::string::npos) {
        return Error(ErrorCode::kInvalid,
                     where + ".abort.headers." + name + ": not a valid header line");
      }
    }
    a.headers = std::move(*h);
    r.abort = a;
  }
  if (j.contains("truncate")) {
    http::TruncateAction a;
    RecordFields g(j.at("truncate"), where + ".truncate");
    g.optional("bytes", a.bytes).optional("percent", a.percent);
    CHAOSD_TRY(g.done());
    CHAOSD_TRY(checkPercent(a.percent, where + ".truncate"));
    r.truncate = a;
  }
  if (!r.delay && !r.responseDelay && !r.reset && !r.abort && !r.truncate) {
    return Error(ErrorCode::kInvalid,
                 where + ": no action (delay, responseDelay, abort, reset or truncate)");
  }
  return r;
}

json writeMap(const std::map<std::string, std::string>& m) {
  json out = json::object();
  for (const auto& [k, v] : m) out[k] = v;
  return out;
}

json writeRule(const http::Rule& r) {
  json out{{"method", r.method},
           {"path", r.pathPrefix},
           {"pathRegex", r.pathRegex},
           {"headers", writeMap(r.headers)}};
  auto delayJson = [](const http::DelayAction& d) {
    return json{{"delay", d.delayNs}, {"jitter", d.jitterNs}, {"percent", d.percent}};
  };
  if (r.delay) out["delay"] = delayJson(*r.delay);
  if (r.responseDelay) out["responseDelay"] = delayJson(*r.responseDelay);
  if (r.reset) out["reset"] = {{"percent", r.reset->percent}};
  if (r.abort) {
    out["abort"] = {{"status", r.abort->status},
                    {"body", r.abort->body},
                    {"headers", writeMap(r.abort->headers)},
                    {"percent", r.abort->percent}};
  }
  if (r.truncate) {
    out["truncate"] = {{"bytes", r.truncate->bytes}, {"percent", r.truncate->percent}};
  }
  return out;
}

}  // namespace

Result<HttpFaultArgs> HttpFaultArgs::fromJson(const json& args) {
  HttpFaultArgs a;
  RecordFields f(args, "the args of http.fault");
  std::vector<int64_t> ports;
  f.required("ports", ports).optional("to", a.to);
  f.optional("maxConnections", a.maxConnections).optional("headerTimeout", a.headerTimeoutNs);
  f.optional("resetExisting", a.resetExisting).optional("refresh", a.refreshNs);
  f.optional("hostAddresses", a.hostAddresses);
  CHAOSD_TRY(f.done());
  if (ports.empty()) return Error(ErrorCode::kInvalid, "ports: at least one port");
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string where = "ports[" + std::to_string(i) + "]";
    if (ports[i] < 1 || ports[i] > 65535) {
      return Error(ErrorCode::kInvalid, where + ": " + std::to_string(ports[i]) + " is no port");
    }
    if (ports[i] == 22) {
      return Error(ErrorCode::kInvalid, where + ": port 22 (SSH) is never redirected");
    }
    a.ports.push_back(static_cast<uint16_t>(ports[i]));
  }
  for (size_t i = 0; i < a.to.size(); ++i) {
    auto cidr = units::parseCidr(a.to[i]);
    if (!cidr) {
      return Error(ErrorCode::kInvalid, "to[" + std::to_string(i) + "]: " + cidr.error().message() +
                                            " (host names are resolved before the fault is "
                                            "prepared)");
    }
  }
  if (a.hostAddresses) {
    for (const auto& h : *a.hostAddresses) {
      auto ip = units::parseIp(h);  // spliced into nft text: addresses only
      if (!ip) return Error(ErrorCode::kInvalid, "hostAddresses: " + ip.error().message());
    }
  }
  if (!args.contains("rules") || !args.at("rules").is_array() || args.at("rules").empty()) {
    return Error(ErrorCode::kInvalid, "rules: at least one rule");
  }
  for (size_t i = 0; i < args.at("rules").size(); ++i) {
    auto r = readRule(args.at("rules")[i], "rules[" + std::to_string(i) + "]");
    if (!r) return std::move(r).error();
    a.rules.push_back(std::move(*r));
  }
  if (a.maxConnections < 1 || a.maxConnections > 100'000) {
    return Error(ErrorCode::kInvalid, "maxConnections: " + std::to_string(a.maxConnections) +
                                          " is out of range (1..100000)");
  }
  if (a.headerTimeoutNs < 1'000'000) {
    return Error(ErrorCode::kInvalid, "headerTimeout: at least 1ms");
  }
  return a;
}

json HttpFaultArgs::toJson() const {
  json rulesJson = json::array();
  for (const auto& r : rules) rulesJson.push_back(writeRule(r));
  json out = {{"ports", ports},
              {"to", to},
              {"rules", rulesJson},
              {"maxConnections", maxConnections},
              {"headerTimeout", headerTimeoutNs},
              {"resetExisting", resetExisting}};
  if (hostAddresses) out["hostAddresses"] = *hostAddresses;
  if (refreshNs > 0) out["refresh"] = refreshNs;
  return out;
}

NetnsRef HttpFaultUndo::netns() const { return netnsAtPath(netnsPath); }

Result<void> HttpFaultUndo::belongsTo(std::string_view otherFaultId) const {
  return sameFault(faultId, otherFaultId);
}

Result<HttpFaultUndo> HttpFaultUndo::fromJson(const json& undo) {
  HttpFaultUndo u;
  RecordFields f(undo, "http.fault undo record");
  uint64_t mark = 0;
  f.required("faultId", u.faultId).required("table", u.table).optional("netns", u.netnsPath);
  f.required("mark", mark);
  CHAOSD_TRY(f.done());
  if (!isChaosdTable(u.table)) {
    return Error(ErrorCode::kInvalid, "refusing to touch table " + u.table + ": not ours");
  }
  if (mark == 0 || mark > UINT32_MAX) {
    return Error(ErrorCode::kInvalid, "http.fault undo record: mark " + std::to_string(mark));
  }
  u.mark = static_cast<uint32_t>(mark);
  if (!undo.contains("args")) {
    return Error(ErrorCode::kInvalid, "http.fault undo record: no args");
  }
  auto args = HttpFaultArgs::fromJson(undo.at("args"));
  if (!args) return std::move(args).error().withContext("http.fault undo record");
  u.args = std::move(*args);
  return u;
}

json HttpFaultUndo::toJson() const {
  return {{"faultId", faultId}, {"table", table}, {"family", "inet"},
          {"netns", netnsPath}, {"mark", mark},   {"args", args.toJson()}};
}

}  // namespace chaosd
