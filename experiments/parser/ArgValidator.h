#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "experiments/model/ArgSchema.h"
#include "experiments/model/Experiment.h"
#include "experiments/parser/YamlReader.h"

namespace chaosd::parser {

// Validates a fault's `args` against its type's schema: unknown keys, required, types, units,
// ranges, then the schema's cross-field constraints. Returns the normalised args (defaults
// filled in) or nullopt after reporting every problem. Constraints see the guardrails that
// allow what is refused by default (allowSsh, allowFullCpu, allowHostClock) and whether the
// step acts on the host (`onHost`: no target). `args` may be absent (no node).
std::optional<nlohmann::json> validateArgs(ReadContext& ctx, const std::optional<Field>& args,
                                           const std::string& argsPath, const YAML::Mark& stepMark,
                                           const ArgSchema& schema,
                                           std::optional<std::chrono::nanoseconds> duration,
                                           const Guardrails& guardrails, bool onHost = false);

}  // namespace chaosd::parser
