#include "experiments/model/Experiment.h"

#include <cmath>
#include <sstream>

#include "chaosd/base/Units.h"

namespace chaosd {

std::string_view targetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kProcess:
      return "process";
    case TargetKind::kExec:
      return "exec";
    case TargetKind::kInterface:
      return "interface";
    case TargetKind::kPath:
      return "path";
    case TargetKind::kContainer:
      return "container";
  }
  return "unknown";
}

std::string_view containerRuntimeName(ContainerRuntime runtime) {
  switch (runtime) {
    case ContainerRuntime::kAuto:
      return "auto";
    case ContainerRuntime::kDocker:
      return "docker";
    case ContainerRuntime::kPodman:
      return "podman";
    case ContainerRuntime::kContainerd:
      return "containerd";
    case ContainerRuntime::kCrio:
      return "cri-o";
  }
  return "unknown";
}

std::string_view phaseName(Phase phase) {
  switch (phase) {
    case Phase::kBefore:
      return "before";
    case Phase::kDuring:
      return "during";
    case Phase::kAfter:
      return "after";
  }
  return "unknown";
}

std::string_view streamMetricName(StreamMetric metric) {
  switch (metric) {
    case StreamMetric::kFirstByte:
      return "firstByte";
    case StreamMetric::kFirstEvent:
      return "firstEvent";
    case StreamMetric::kEventGap:
      return "eventGap";
    case StreamMetric::kEventRate:
      return "eventRate";
  }
  return "unknown";
}

std::string_view probeKindName(ProbeKind kind) {
  switch (kind) {
    case ProbeKind::kHttp:
      return "http";
    case ProbeKind::kTcp:
      return "tcp";
    case ProbeKind::kCommand:
      return "command";
    case ProbeKind::kProcess:
      return "process";
    case ProbeKind::kPrometheus:
      return "prometheus";
  }
  return "unknown";
}

namespace {

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

}  // namespace

std::string ValueMatch::describe() const {
  switch (kind) {
    case Kind::kEquals:
      return "== " + (values.empty() ? std::string() : values.front());
    case Kind::kOneOf: {
      std::string out = "in {";
      for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + values[i];
      return out + "}";
    }
    case Kind::kRange:
      return "in " + number(low) + ".." + number(high);
    case Kind::kRegex:
      return "~ /" + regex + "/";
  }
  return "";
}

bool Comparison::holds(double observed) const {
  switch (op) {
    case CompareOp::kLt:
      return observed < value;
    case CompareOp::kLe:
      return observed <= value;
    case CompareOp::kGt:
      return observed > value;
    case CompareOp::kGe:
      return observed >= value;
    case CompareOp::kEq:
      return observed == value;
  }
  return false;
}

std::string Comparison::describe() const {
  const char* ops[] = {"<", "<=", ">", ">=", "=="};
  return std::string(ops[static_cast<int>(op)]) + " " + number(value);
}

const TargetSpec* Experiment::findTarget(std::string_view name) const {
  for (const auto& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace chaosd
