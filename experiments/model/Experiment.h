#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "chaosd/base/Netns.h"
#include "chaosd/base/ProcessTable.h"
#include "experiments/model/TargetKind.h"

// The experiment as plain structs: what the parser produces and everything after it reads.
// No yaml-cpp types past the parser. docs/experiment-format.md documents every field.
namespace chaosd {

using Duration = std::chrono::nanoseconds;

// Where a field was written, 1-based; 0 when it was not written (a default).
struct SourcePos {
  int line = 0;
  int column = 0;
};

struct Metadata {
  std::string name;
  std::string title;
  std::string description;
  std::vector<std::string> tags;
  std::map<std::string, std::string> labels;
};

struct ConfigValue {
  std::string value;
  bool secret = false;  // redacted in reports and logs
};

// ---- targets --------------------------------------------------------------------------

enum class SelectionMode { kAll, kOne, kCount, kPercent };

struct Selection {
  SelectionMode mode = SelectionMode::kAll;
  uint64_t count = 0;            // kCount
  double fraction = 0;           // kPercent, 0..1
  std::optional<uint64_t> seed;  // recorded in the report so a run can be replayed
};

// A process the experiment starts itself and stops at its end.
struct ExecSpec {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
  std::string cwd;
  // `ready:` the run waits (up to readyWithin) until this address accepts a TCP connection
  // before the baseline starts; without it the baseline starts at once.
  std::string readyHost;
  uint16_t readyPort = 0;  // 0: no readiness check
  std::chrono::nanoseconds readyWithin = std::chrono::seconds(30);
};

struct InterfaceSelector {
  std::string name;
  NetnsRef netns;
};

// A running container, found through its runtime's API socket or the cgroups it made.
enum class ContainerRuntime { kAuto, kDocker, kPodman, kContainerd, kCrio };
std::string_view containerRuntimeName(ContainerRuntime runtime);

// Which of a container's processes process faults may hit: all but its init (the default),
// all of them, or only its init.
enum class ContainerInit { kProtect, kInclude, kOnly };

// A Kubernetes pod's containers on this node, by namespace, pod name (or glob) and container
// name, found through the kubelet's container log links (logDir/<pod>_<namespace>_<container>-
// <id>.log, kept by every kubelet for log collectors) and the cgroups the runtime made for
// those ids. docs/containers.md#kubernetes-pods.
struct KubernetesPodSpec {
  std::string ns = "default";
  std::string pod;        // a name, or a glob (`web-*`: the replicas of a deployment)
  std::string container;  // "" for any container of the pod
  std::string logDir = "/var/log/containers";
};

struct ContainerSpec {
  std::optional<KubernetesPodSpec> kubernetes;  // instead of id, name, labels and pod
  std::string id;                               // a prefix of the 64-hex id (at least 4 characters)
  std::string name;                             // exactly
  std::map<std::string, std::string> labels;    // every one must match
  std::string pod;                              // the podman (libpod API) pod's name
  ContainerRuntime runtime = ContainerRuntime::kAuto;
  std::string socket;              // the runtime's API socket; "" for the runtime's usual one
  std::string interface = "eth0";  // network faults act on it, in the container's namespace
  std::string path;                // disk faults: the path as the container sees it
  ContainerInit init = ContainerInit::kProtect;
  bool followRestart = true;  // `onRestart: follow` (default) or `report`
};

struct TargetSpec {
  std::string name;
  SourcePos pos;
  TargetKind kind = TargetKind::kProcess;
  ProcessSelector process;      // kProcess
  ExecSpec exec;                // kExec
  InterfaceSelector interface;  // kInterface
  std::string path;             // kPath
  ContainerSpec container;      // kContainer
  Selection selection;          // kProcess, kContainer
  bool emptySkip = false;       // `empty: skip` instead of an error when nothing matches
};

// ---- probes ---------------------------------------------------------------------------

enum class Phase { kBefore, kDuring, kAfter };
std::string_view phaseName(Phase phase);

enum class ProbeKind { kHttp, kTcp, kCommand, kProcess, kPrometheus };
std::string_view probeKindName(ProbeKind kind);

struct HttpProbe {
  std::string method = "GET";
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
  bool tlsVerify = true;
};

struct TcpProbe {
  std::string host;  // v4, v6 or a name
  uint16_t port = 0;
};

struct CommandProbe {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
};

struct ProcessProbe {
  ProcessSelector selector;
};

struct PrometheusProbe {
  std::string url;    // base URL of the Prometheus HTTP API, "http://127.0.0.1:9090"
  std::string query;  // PromQL instant query
};

// How one observed value is judged. A scalar means equality, a YAML list means set
// membership, "a..b" an inclusive range, {regex: ...} a regular expression.
struct ValueMatch {
  enum class Kind { kEquals, kOneOf, kRange, kRegex };
  Kind kind = Kind::kEquals;
  std::vector<std::string> values;  // kEquals (one), kOneOf (many); compared as numbers
                                    // when both sides are numbers, else as strings
  double low = 0;                   // kRange
  double high = 0;
  std::string regex;             // kRegex (ECMAScript, searched)
  std::string describe() const;  // "== 200", "in {200, 204}", "in 200..299", "~ /ok/"
};

enum class CompareOp { kLt, kLe, kGt, kGe, kEq };

// ">= 0.99", "<= 300ms": an operator and a number (a duration is held in nanoseconds).
struct Comparison {
  CompareOp op = CompareOp::kGe;
  double value = 0;
  bool holds(double observed) const;
  std::string describe() const;
};

struct LatencyBound {
  double percentile = 95;  // p50 -> 50, p99.9 -> 99.9
  Comparison bound;        // value in nanoseconds
};

// What an http probe measures of a streamed response (chunked, or text/event-stream): the
// first body byte, the first complete event (an SSE event, or a line of a chunked body: the
// first token of a model's answer, TTFT), the gaps between events (time per output token), and
// events per second after the first.
enum class StreamMetric { kFirstByte, kFirstEvent, kEventGap, kEventRate };
std::string_view streamMetricName(StreamMetric metric);  // "firstByte", ... as written

// A bound on a percentile of a stream metric over a phase: durations in nanoseconds, the rate
// in events per second.
struct StreamBound {
  StreamMetric metric = StreamMetric::kFirstEvent;
  double percentile = 95;
  Comparison bound;
};

// How the statistical mode decides (docs/experiment-format.md, "baseline: the statistical mode").
enum class BaselineTest {
  // The phase's latency quantile against the reference's, as a ratio with a confidence interval
  // from a moving-block bootstrap (blocks of consecutive samples keep their autocorrelation);
  // deviated when the interval's lower end is above 1 + minEffect. The default.
  kBlocks,
  // The exact count test: k of the phase's n samples above the reference's quantile (raised by
  // minEffect) against the beta-binomial law. Exact only for exchangeable samples (no drift).
  kExceedance,
};

// How the minimum effect is compared. kEstimate (Kayenta's allowedIncrease): the test finds a
// rise (above zero at 1 - alpha) and the rise measured is at least the minimum effect. kBound:
// the rise is shown to exceed the minimum effect at 1 - alpha (the lower bound is above it;
// the count test raises its threshold by it): a stronger claim that needs more samples.
enum class MinEffectBy { kEstimate, kBound };

// The statistical mode: the phase's latency quantile against a reference (the probe's own
// before phase, or a control probe's samples of the same phase), at false-alarm bound alpha,
// counting only a rise of at least the minimum effect.
struct BaselineTolerance {
  double alpha = 0.01;
  double quantile = 0.95;
  // minEffect: a rise smaller than this is no deviation however detectable it is. One of the
  // two is set: a share (0.2 for "20%": the quantile rises by at least 20%) or a duration.
  double minRelative = 0;
  Duration minAbsolute{0};
  MinEffectBy minEffectBy = MinEffectBy::kEstimate;
  // A probe on a replica the faults do not touch, sampled concurrently: each phase is judged
  // against the control's samples of the same phase (ChAP's control group), so a drift both
  // share cancels out. Empty: against this probe's before phase.
  std::string control;
  BaselineTest test = BaselineTest::kBlocks;
};

struct Tolerance {
  std::optional<ValueMatch> status;        // http
  std::optional<std::string> body;         // http, regex searched in the body
  std::map<std::string, ValueMatch> json;  // http, JSON pointer -> match
  std::optional<ValueMatch> exitCode;      // command (default: 0)
  std::optional<std::string> stdoutRegex;  // command
  std::optional<ValueMatch> count;         // process: number of matching processes
  std::optional<bool> running;             // process: at least one matches and none is stopped
  std::optional<ValueMatch> value;         // prometheus: the scalar, or each series' value
  std::optional<Comparison> successRate;   // over a phase, fraction of passing samples
  std::vector<LatencyBound> latency;       // over a phase
  std::vector<StreamBound> stream;         // http, over a phase; a sample must be streamed
  std::optional<BaselineTolerance> baseline;
};

struct ProbeSpec {
  std::string name;
  SourcePos pos;
  ProbeKind kind = ProbeKind::kHttp;
  HttpProbe http;
  TcpProbe tcp;
  CommandProbe command;
  ProcessProbe process;
  PrometheusProbe prometheus;
  Duration timeout = std::chrono::seconds(1);
  Duration every = std::chrono::seconds(1);
  Tolerance tolerance;
  std::vector<Phase> phases{Phase::kBefore, Phase::kDuring, Phase::kAfter};
  bool abort = false;
};

struct SteadyState {
  Duration baseline = std::chrono::seconds(5);  // the before window
  Duration recovery = std::chrono::seconds(5);  // the after window
  std::vector<ProbeSpec> probes;
};

// ---- load -----------------------------------------------------------------------------

// A step of the arrival rate: `rate` requests per second for `duration`, from the end of the
// step before (the first from the start of the baseline).
struct LoadStep {
  double rate = 0;
  Duration duration{0};
};

// `load.capacity`: before the baseline, the load at rising rates (from, from + step, ... up to
// max, each for `every`) until a step breaks the load's own tolerance; the service's capacity μ
// is the throughput of the last step that held. Then `cooldown` for the service to drain its
// queues before the baseline. docs/experiment-format.md#load-capacity.
struct LoadCapacitySpec {
  SourcePos pos;
  double from = 0;
  double step = 0;  // added at each step; `from` when not given
  double max = 0;
  Duration every = std::chrono::seconds(5);
  Duration cooldown = std::chrono::seconds(5);  // `every` when not given

  // The rates of the ramp, in order (at most kMaxSteps).
  static constexpr size_t kMaxSteps = 100;
  std::vector<double> rates() const {
    std::vector<double> out;
    for (size_t i = 0; i < kMaxSteps && step > 0; ++i) {
      const double r = from + step * static_cast<double>(i);
      if (r > max * (1 + 1e-9)) break;
      out.push_back(r);
    }
    return out;
  }
};

// `load:` an open-loop generator of HTTP requests at a known arrival rate over every phase:
// request i is due at a fixed time whatever became of the ones before it, and its latency is
// measured from that intended time (no coordinated omission). docs/experiment-format.md#load.
struct LoadSpec {
  SourcePos pos;
  std::string name = "load";
  HttpProbe http;               // method, url, headers, body, tlsVerify
  double rate = 0;              // constant λ in requests per second (when steps is empty)
  std::vector<LoadStep> steps;  // instead of rate; the last step's rate holds to the end
  Duration timeout = std::chrono::seconds(5);
  uint32_t maxInFlight = 1000;  // requests open at once; a request due beyond it is an error
  Tolerance tolerance;          // successRate, latency, status; judged per phase like a probe
  std::optional<LoadCapacitySpec> capacity;  // the ramp before the baseline that measures μ
};

// ---- method ---------------------------------------------------------------------------

enum class StepKind { kFault, kPause, kParallel };

struct StepSpec {
  std::string name;
  SourcePos pos;
  StepKind kind = StepKind::kFault;
  std::string fault;  // kFault: the registered type
  SourcePos faultPos;
  std::string target;  // a name from `targets`, or "" when the type takes none
  SourcePos targetPos;
  nlohmann::json args = nlohmann::json::object();  // normalised by the type's schema
  std::optional<Duration> duration;  // kFault: how long it is held; kPause: how long to wait
  std::optional<Duration> at;        // offset from the method's start
  std::string after;                 // start when that step has ended
  SourcePos afterPos;
  std::vector<StepSpec> parallel;  // kParallel: started together
};

struct RollbackSpec {
  std::string name;
  SourcePos pos;
  std::vector<std::string> command;  // argv, no shell
  std::map<std::string, std::string> env;
  Duration timeout = std::chrono::seconds(30);
};

struct Guardrails {
  Duration maxDuration = std::chrono::hours(1);  // ceiling on how long each fault step is held
  uint32_t maxTargets = 10;                      // processes one fault may hit
  double maxPercent = 1.0;                       // of the matching processes
  uint32_t maxFaults = 50;                       // fault steps in the method
  bool allowSsh = false;                         // may port 22 be partitioned
  bool allowFullCpu = false;                     // may cpu.stress take every CPU whole
  bool allowDefaultRouteDown = false;  // may network.down take the default route's interface
  bool allowHostClock = false;         // may time.skew without a target step the host's clock
};

struct ReportSpec {
  std::vector<std::string> formats{"json", "junit", "html", "md"};
  std::string dir = "./chaos-reports";
};

struct ScheduleSpec {
  std::string cron;                                           // 5 fields
  std::string timezone;                                       // IANA name; "" = UTC
  std::optional<std::pair<std::string, std::string>> window;  // "HH:MM" .. "HH:MM"
  std::optional<uint32_t> maxRuns;
};

struct Experiment {
  std::string file;
  std::string apiVersion;
  Metadata metadata;
  std::map<std::string, ConfigValue> config;
  std::vector<TargetSpec> targets;
  SteadyState steadyState;
  std::optional<LoadSpec> load;
  std::vector<StepSpec> method;
  std::vector<RollbackSpec> rollbacks;
  Guardrails guardrails;
  ReportSpec report;
  std::optional<ScheduleSpec> schedule;

  const TargetSpec* findTarget(std::string_view name) const;
};

}  // namespace chaosd
