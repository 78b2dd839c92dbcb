#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

// The arguments a fault type accepts, declared once by its injector. The experiment parser
// validates a fault's `args` against it (types, units, ranges, required, unknown keys) and
// produces a normalised JSON object; `chaosctl faults` prints it as documentation.
namespace chaosd {

enum class ArgType {
  kBool,
  kInt,     // integer
  kNumber,  // real number
  kString,
  kDuration,   // normalised to integer nanoseconds
  kSize,       // normalised to integer bytes
  kRate,       // normalised to integer bits per second
  kPercent,    // normalised to a fraction 0..1 (written 25% or 0.25)
  kSignal,     // normalised to the signal number
  kCidr,       // normalised to the canonical string "10.0.0.0/24"
  kPortRange,  // normalised to {"first": N, "last": M}
  kHost,       // a host name or address literal, lowercased; resolved when the fault is prepared
  kEnum,       // a string from `choices`
  kList,       // a YAML sequence of `element` (a single scalar is accepted as a list of one)
  kObject,     // a mapping with `fields`
  kStringMap,  // a mapping of string to string (env, headers)
};

std::string_view argTypeName(ArgType type);

struct ArgSpec {
  std::string name;
  ArgType type = ArgType::kString;
  std::string help;
  bool required = false;
  std::optional<nlohmann::json> defaultValue;  // normalised form
  // Inclusive bounds in the normalised unit (ns, bytes, bit/s, fraction, number).
  std::optional<double> min;
  std::optional<double> max;
  std::vector<std::string> choices;  // kEnum
  std::shared_ptr<ArgSpec> element;  // kList
  std::vector<ArgSpec> fields;       // kObject
  std::optional<size_t> maxItems;    // kList
};

// A check across fields, run after every field is valid. Returns nothing when the args are
// fine, or the field to blame (a dotted path inside args, "" for args itself) and a message.
struct ArgProblem {
  std::string field;
  std::string message;
};
// What a constraint sees: the normalised args and the step's duration, if it has one.
struct ArgContext {
  const nlohmann::json& args;
  std::optional<std::chrono::nanoseconds> duration;
  bool allowSsh = false;        // guardrails.allowSsh: may port 22 be cut off
  bool allowFullCpu = false;    // guardrails.allowFullCpu: may every CPU be taken whole
  bool onHost = false;          // the step names no target: a targetOptional type acts on the host
  bool allowHostClock = false;  // guardrails.allowHostClock: may the host's clock be stepped
};
using ArgConstraint = std::function<std::optional<ArgProblem>(const ArgContext& ctx)>;

struct ArgSchema {
  std::vector<ArgSpec> args;
  std::vector<ArgConstraint> constraints;

  const ArgSpec* find(std::string_view name) const;
};

// Builders that keep schema declarations short and readable.
namespace arg {
ArgSpec make(std::string name, ArgType type, std::string help);
ArgSpec required(ArgSpec spec);
ArgSpec withDefault(ArgSpec spec, nlohmann::json value);
ArgSpec range(ArgSpec spec, std::optional<double> min, std::optional<double> max);
ArgSpec oneOf(std::string name, std::vector<std::string> choices, std::string help);
ArgSpec listOf(std::string name, ArgSpec element, std::string help);
ArgSpec object(std::string name, std::vector<ArgSpec> fields, std::string help);
}  // namespace arg

// A normalised number as the user would write it ("250ms", "25%", "10mbit").
std::string formatArgValue(const ArgSpec& spec, double value);

// Normalised args in the user's units: "delay=200ms jitter=20ms to.cidr=[10.0.0.2/32]".
std::string formatArgs(const ArgSchema& schema, const nlohmann::json& args);

// Human-readable documentation of a schema, one argument per line with type, unit,
// default, range and help; nested fields indented.
std::string describeSchema(const ArgSchema& schema);

}  // namespace chaosd
