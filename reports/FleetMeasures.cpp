#include "reports/FleetMeasures.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "chaosd/engine/probes/Verdict.h"
#include "reports/Reliability.h"
#include "reports/ReportFields.h"
#include "reports/ReportJson.h"

namespace chaosd::report {
namespace {

Error invalid(const std::string& what) { return Error(ErrorCode::kInvalid, what); }

Json edgeJson(const std::optional<FleetWindow::Edge>& e) {
  if (!e) return nullptr;
  return {{"at", isoNanos(e->ns)}, {"host", e->host}, {"step", e->step}};
}

struct TimedSample {
  int64_t at = 0;
  int64_t durationNs = 0;
  bool ok = false;
};

std::vector<TimedSample> timedSamples(const Json& probe) {
  std::vector<TimedSample> out;
  for (const auto& s : list(probe, "samples")) {
    auto at = parseIsoTime(text(s, "at"));
    if (!at) continue;
    out.push_back({*at, nanos(s, "durationNs").value_or(0), flag(s, "ok")});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const TimedSample& a, const TimedSample& b) { return a.at < b.at; });
  return out;
}

std::string probeNames(const Json& report) {
  std::string out;
  for (const auto& p : list(report, "probes")) out += (out.empty() ? "" : ", ") + text(p, "name");
  return out.empty() ? "none" : out;
}

// The probe `name` of a report, or its only probe when name is "". The error says which field
// of the topology to set.
Result<const Json*> pickProbe(const Json& report, const std::string& name, const std::string& whose,
                              const std::string& field) {
  const auto& probes = list(report, "probes");
  if (name.empty()) {
    if (probes.size() == 1) return &probes[0];
    return invalid("topology " + field + ": " + whose + " has " +
                   (probes.empty() ? std::string("no probe") : "probes " + probeNames(report)) +
                   (probes.empty() ? "" : ": name the one to use in " + field));
  }
  for (const auto& p : probes) {
    if (text(p, "name") == name) return &p;
  }
  return invalid("topology " + field + ": " + whose + " has no probe '" + name +
                 "' (it has: " + probeNames(report) + ")");
}

struct ImpactValue {
  int64_t ns = 0;
  std::string host;
  std::string step;
  std::string probe;
};

Json valueJson(const ImpactValue& v) {
  return {{"ns", v.ns}, {"host", v.host}, {"step", v.step}, {"probe", v.probe}};
}

}  // namespace

std::string isoNanos(int64_t ns) {
  using namespace std::chrono;
  return isoTime(system_clock::time_point(duration_cast<system_clock::duration>(nanoseconds(ns))));
}

Json windowJson(const FleetWindow& w) {
  return {{"startAt", isoNanos(w.start)},
          {"endAt", isoNanos(w.end)},
          {"lengthNs", w.end - w.start},
          {"source", w.source},
          {"firstApply", edgeJson(w.firstApply)},
          {"lastRevert", edgeJson(w.lastRevert)},
          {"applySpreadNs", w.applySpreadNs ? Json(*w.applySpreadNs) : Json(nullptr)}};
}

SampleCount samplesIn(const Json& probe, const FleetWindow& window) {
  SampleCount c;
  for (const auto& s : timedSamples(probe)) {
    if (s.at < window.start || s.at > window.end) continue;
    ++c.count;
    c.passed += s.ok ? 1 : 0;
  }
  return c;
}

Json frontEndImpact(const Json& controlReport, const FleetWindow& window, const std::string& name) {
  auto probe = pickProbe(controlReport, name, "the control node's report", "frontEnd.probe");
  if (!probe) return {{"probe", nullptr}, {"note", probe.error().message()}};
  Json out = {{"probe", text(**probe, "name")},
              {"detected", false},
              {"detectedAfterNs", nullptr},
              {"recovered", false},
              {"recoveredAfterNs", nullptr}};
  if (!window.firstApply || !window.lastRevert) {
    out["note"] = "no fault was applied on any host";
    return out;
  }
  const auto samples = timedSamples(**probe);
  for (const auto& s : samples) {
    if (s.at >= window.firstApply->ns && s.at <= window.lastRevert->ns && !s.ok) {
      out["detected"] = true;
      out["detectedAfterNs"] = s.at + s.durationNs - window.firstApply->ns;
      break;
    }
  }
  if (!out["detected"].get<bool>()) return out;
  const size_t k = static_cast<size_t>(kRecoverySamples);
  for (size_t i = 0; i + k <= samples.size(); ++i) {
    if (samples[i].at < window.lastRevert->ns) continue;
    bool run = true;
    for (size_t j = i; j < i + k; ++j) run = run && samples[j].ok;
    if (run) {
      out["recovered"] = true;
      out["recoveredAfterNs"] = samples[i].at - window.lastRevert->ns;
      break;
    }
  }
  return out;
}

Json impactSpread(const std::vector<FleetMember>& hosts, bool recovery) {
  std::vector<ImpactValue> values;
  Json missing = Json::array();
  for (const auto& m : hosts) {
    for (const auto& f : list(m.report, "faults")) {
      for (const auto& i : list(f, "impact")) {
        const ImpactValue where{0, m.host, text(f, "step"), text(i, "probe")};
        const bool counted =
            recovery ? flag(i, "detected") && flag(i, "recovered") : flag(i, "detected");
        auto ns = nanos(i, recovery ? "recoveredAfterNs" : "detectedAfterNs");
        if (counted && ns) {
          ImpactValue v = where;
          v.ns = *ns;
          values.push_back(v);
        } else if (!recovery || flag(i, "detected")) {
          missing.push_back({{"host", where.host}, {"step", where.step}, {"probe", where.probe}});
        }
      }
    }
  }
  Json out = {{"count", values.size()},
              {recovery ? "notRecovered" : "notDetected", missing},
              {"min", nullptr},
              {"median", nullptr},
              {"max", nullptr}};
  if (values.empty()) return out;
  std::stable_sort(values.begin(), values.end(),
                   [](const ImpactValue& a, const ImpactValue& b) { return a.ns < b.ns; });
  out["min"] = valueJson(values.front());
  out["max"] = valueJson(values.back());
  const size_t mid = values.size() / 2;
  if (values.size() % 2 == 1) {
    out["median"] = valueJson(values[mid]);
  } else {
    out["median"] = {{"ns", (values[mid - 1].ns + values[mid].ns) / 2}};
  }
  return out;
}

namespace {

struct ReplicaMeasure {
  std::string host;
  std::string probe;
  SampleCount samples;
  bool noReport = false;
};

Result<std::vector<ReplicaMeasure>> measureTier(
    const TopologyTier& tier, size_t index, const std::map<std::string, const FleetMember*>& byHost,
    const FleetWindow& window) {
  std::vector<ReplicaMeasure> out;
  for (size_t h = 0; h < tier.hosts.size(); ++h) {
    const std::string field = "tiers[" + std::to_string(index) + "]";
    auto it = byHost.find(tier.hosts[h]);
    if (it == byHost.end()) {
      // No report from that host (the fleet lists it under missingHosts): no measure.
      out.push_back({tier.hosts[h], tier.probe, SampleCount{}, true});
      continue;
    }
    auto probe = pickProbe(it->second->report, tier.probe, "host " + tier.hosts[h] + "'s report",
                           field + ".probe");
    if (!probe) return probe.error();
    out.push_back({tier.hosts[h], text(**probe, "name"), samplesIn(**probe, window)});
  }
  return out;
}

// Whether the model is outside the observation's 95% interval, and what that suggests.
std::string gapCallout(double model, double observed, const Interval& interval) {
  if (model < interval.low) {
    return "the front end was up more than the model predicts (model " + percent(model) +
           ", observed " + percent(observed) + ", 95% interval " + percent(interval.low) + " to " +
           percent(interval.high) +
           "): it retries or fails over faster than the replicas' probes notice, or the "
           "replicas' probes are stricter than the front end's";
  }
  if (model > interval.high) {
    return "the front end was up less than the model predicts (model " + percent(model) +
           ", observed " + percent(observed) + ", 95% interval " + percent(interval.low) + " to " +
           percent(interval.high) +
           "): the replicas do not fail independently (a shared dependency, correlated "
           "failures), the topology misses a tier, or the front end does not fail over";
  }
  return "";
}

}  // namespace

Result<Json> reliabilityJson(const Topology& topology, const std::vector<FleetMember>& hosts,
                             const FleetMember* control, const FleetWindow& window) {
  std::map<std::string, const FleetMember*> byHost;
  for (const auto& m : hosts) byHost[m.host] = &m;
  Json tiers = Json::array();
  std::vector<TierModel> models;
  std::string unmeasured;
  for (size_t t = 0; t < topology.tiers.size(); ++t) {
    const TopologyTier& tier = topology.tiers[t];
    auto replicas = measureTier(tier, t, byHost, window);
    if (!replicas) return replicas.error();
    TierModel model{tier.name, tier.k, {}};
    Json replicaJson = Json::array();
    for (const auto& r : *replicas) {
      Json j = {{"host", r.host},
                {"probe", r.probe},
                {"count", r.samples.count},
                {"passed", r.samples.passed},
                {"availability", nullptr}};
      if (r.samples.count > 0) {
        j["availability"] = r.samples.availability();
        model.replicas.push_back(r.samples.availability());
      } else if (unmeasured.empty()) {
        unmeasured =
            r.noReport ? "no report from host " + r.host
                       : "host " + r.host + "'s probe " + r.probe + " has no sample in the window";
      }
      replicaJson.push_back(j);
    }
    Json tierJson = {{"name", tier.name},
                     {"k", tier.k},
                     {"n", tier.hosts.size()},
                     {"replicas", replicaJson},
                     {"reliability", nullptr}};
    if (model.replicas.size() == tier.hosts.size()) {
      tierJson["reliability"] = kOfNReliability(tier.k, model.replicas);
    }
    tiers.push_back(tierJson);
    models.push_back(std::move(model));
  }
  Json out = {{"tiers", tiers},
              {"model", nullptr},
              {"observed", nullptr},
              {"gap", nullptr},
              {"callout", nullptr}};
  if (unmeasured.empty()) {
    out["model"] = systemReliability(models);
  } else {
    out["note"] = "no model: " + unmeasured;
  }
  if (!control) {
    if (!out.contains("note")) out["note"] = "no observation: give the control node's report";
    return out;
  }
  auto probe = pickProbe(control->report, topology.frontEndProbe, "the control node's report",
                         "frontEnd.probe");
  if (!probe) return probe.error();
  const SampleCount c = samplesIn(**probe, window);
  auto interval = wilsonInterval(c.passed, c.count);
  if (!interval) {
    out["note"] = "no observation: the front end's probe has no sample in the window";
    return out;
  }
  out["observed"] = {
      {"probe", text(**probe, "name")},   {"count", c.count},     {"passed", c.passed},
      {"availability", c.availability()}, {"low", interval->low}, {"high", interval->high}};
  if (out["model"].is_number()) {
    const double model = out["model"].get<double>();
    out["gap"] = model - c.availability();
    const std::string callout = gapCallout(model, c.availability(), *interval);
    if (!callout.empty()) out["callout"] = callout;
  }
  return out;
}

}  // namespace chaosd::report
