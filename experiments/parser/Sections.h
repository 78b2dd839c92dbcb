#pragma once

#include <optional>
#include <string_view>

#include "experiments/model/Experiment.h"
#include "experiments/model/FaultCatalog.h"
#include "experiments/parser/YamlReader.h"

// The section parsers of ExperimentParser.cpp, one file per section family. Each reads its
// node into the experiment and reports problems; none stops at the first.
namespace chaosd::parser {

// Raw-text checks before YAML sees the bytes: size, UTF-8, control characters. Reports and
// returns false when the text cannot be parsed at all.
bool checkText(std::string_view text, Diagnostics& diag, const ParseLimits& limits);
// yaml-cpp's load with its exceptions turned into diagnostics, and the node budget (depth,
// nodes visited through aliases) checked. nullopt after reporting.
std::optional<YAML::Node> loadYaml(std::string_view text, Diagnostics& diag,
                                   const ParseLimits& limits);

void parseTargets(ReadContext& ctx, const Field& f, Experiment& exp);
void parseSteadyState(ReadContext& ctx, const Field& f, Experiment& exp);
void parseMethod(ReadContext& ctx, const Field& f, const FaultCatalog& registry, Experiment& exp);
std::optional<ProcessSelector> parseProcessSelector(ReadContext& ctx, const Field& f);
std::optional<ContainerSpec> parseContainerSpec(ReadContext& ctx, const Field& f);
// tolerance.baseline (BaselineParser.cpp); and, once every probe is read, that each control
// names another probe running in the phases it is the reference of.
void parseBaselineTolerance(ReadContext& ctx, const Field& f, Tolerance& tol);
void checkBaselineControls(ReadContext& ctx, const std::vector<Field>& items,
                           const std::vector<ProbeSpec>& probes);

// A regex as probes and selectors compile it (chaosd/base/SearchRegex.h: ECMAScript, no
// back-references); reports it when it does not compile.
bool checkSearchRegex(ReadContext& ctx, const Field& f, const std::string& pattern);

// An HTTP request's url, method, headers, body and tlsVerify from `h` (a probe's `http:`, the
// load's `http:`); the caller's MapReader allows those keys.
void parseHttpRequest(ReadContext& ctx, MapReader& h, HttpProbe& http);
// `load.tolerance`: status, successRate and latency, read as a probe's are.
void parseLoadTolerance(ReadContext& ctx, const Field& f, Tolerance& tol);
// `load:` (LoadParser.cpp).
void parseLoad(ReadContext& ctx, const Field& f, Experiment& exp);

// Rules for maps that another program reads (ProbeParser.cpp): HTTP headers, and
// environment variables of a started process.
StringMapRules headerRules();
// A host a connection is made to (a tcp probe, an exec target's ready check): a name or an
// address literal, or an error naming map's `host`. An empty host is left to `required`.
void checkConnectHost(ReadContext& ctx, MapReader& map, const std::string& host);
StringMapRules environmentRules();

// Shared by sections: names of targets, probes and steps.
bool checkName(ReadContext& ctx, const Field& f, const std::string& name, std::string_view what);

}  // namespace chaosd::parser
