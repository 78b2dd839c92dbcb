#include "experiments/parser/ExperimentParser.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "chaosd/base/SearchRegex.h"
#include "experiments/model/Cron.h"
#include "experiments/parser/Sections.h"
#include "experiments/parser/YamlSyntaxGate.h"

namespace chaosd {
namespace parser {
namespace {

const std::vector<std::string> kTopKeys = {"apiVersion", "kind",        "metadata", "config",
                                           "targets",    "steadyState", "method",   "rollbacks",
                                           "guardrails", "report",      "schedule", "load"};
const std::regex kVarName("[A-Za-z_][A-Za-z0-9_]*");

void parseMetadata(ReadContext& ctx, const Field& f, Metadata& md) {
  MapReader m(ctx, f, {"name", "title", "description", "tags", "labels"});
  if (!m.valid()) return;
  if (auto name = m.require("name", "a lowercase name like api-survives-db-latency")) {
    if (auto s = asNonEmptyString(ctx, *name)) {
      static const std::regex kDnsLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
      if (s->size() > 63 || !std::regex_match(*s, kDnsLabel)) {
        ctx.diag.error(name->node.Mark(), name->path, quoteText(*s) + " is not a valid name",
                       "lowercase letters, digits and '-', at most 63 characters");
      } else {
        md.name = *s;
      }
    }
  }
  md.title = m.string("title").value_or("");
  md.description = m.string("description").value_or("");
  if (auto tags = m.get("tags")) md.tags = asStringList(ctx, *tags).value_or(md.tags);
  if (auto labels = m.get("labels")) md.labels = asStringMap(ctx, *labels).value_or(md.labels);
}

// config: values are read without substitution (they are what is substituted).
void parseConfig(ReadContext& ctx, const Field& f, Experiment& exp) {
  if (!f.node.IsMap()) {
    ctx.diag.error(f.node.Mark(), f.path, "expected a mapping of variable names to values");
    return;
  }
  std::map<std::string, int> firstLine;  // of each variable's name
  for (const auto& kv : f.node) {
    if (!kv.first.IsScalar()) {
      ctx.diag.error(kv.first.Mark(), f.path, "a variable name must be a plain name");
      continue;
    }
    std::string name = kv.first.Scalar();
    Field value{kv.second, joinPath(f.path, name)};
    if (!std::regex_match(name, kVarName)) {
      ctx.diag.error(kv.first.Mark(), value.path, quoteText(name) + " is not a valid variable name",
                     "letters, digits and '_', not starting with a digit");
      continue;
    }
    if (auto first = firstLine.find(name); first != firstLine.end()) {
      ctx.diag.error(kv.first.Mark(), value.path, "duplicate variable " + quoteText(name),
                     "each variable once; first given at line " + std::to_string(first->second));
      continue;
    }
    firstLine.emplace(name, posOf(kv.first.Mark()).line);
    ConfigValue cv;
    if (value.node.IsScalar()) {
      cv.value = value.node.Scalar();
    } else if (value.node.IsMap()) {
      MapReader m(ctx, value, {"value", "env", "default", "secret"});
      cv.secret = m.boolean("secret").value_or(false);
      auto literal = m.get("value");
      auto env = m.get("env");
      if (literal && env) {
        ctx.diag.error(env->node.Mark(), env->path, "'value' and 'env' cannot be combined",
                       "one source for the value");
      } else if (literal && literal->node.IsScalar()) {
        cv.value = literal->node.Scalar();
        if (auto def = m.get("default")) {
          ctx.diag.error(def->node.Mark(), def->path, "a default applies to env only",
                         "value: TEXT, or env: NAME with default: TEXT");
        }
      } else if (env) {
        auto var = asNonEmptyString(ctx, *env);
        const char* got = var ? std::getenv(var->c_str()) : nullptr;
        if (got) {
          cv.value = got;
        } else if (auto def = m.get("default"); def && def->node.IsScalar()) {
          cv.value = def->node.Scalar();
        } else if (var) {
          ctx.diag.error(env->node.Mark(), env->path,
                         "environment variable " + quoteText(*var) + " is not set",
                         "set it, or give a default");
        }
      } else if (!literal) {
        ctx.diag.error(value.node.Mark(), value.path, "missing 'value' or 'env'",
                       "value: TEXT, or env: NAME with an optional default");
      } else {
        ctx.diag.error(literal->node.Mark(), literal->path, "expected a scalar value");
      }
    } else {
      ctx.diag.error(value.node.Mark(), value.path, "expected a scalar value",
                     "a string or number, or {value|env, default, secret}");
      continue;
    }
    exp.config.emplace(name, std::move(cv));
  }
}

void parseGuardrails(ReadContext& ctx, const Field& f, Guardrails& g) {
  MapReader m(ctx, f,
              {"maxDuration", "maxTargets", "maxPercent", "maxFaults", "allowSsh", "allowFullCpu",
               "allowDefaultRouteDown", "allowHostClock"});
  if (!m.valid()) return;
  if (auto d = m.get("maxDuration")) {
    if (auto v = asDuration(ctx, *d)) {
      if (*v > std::chrono::hours(24)) {
        ctx.diag.error(d->node.Mark(), d->path, "longer than chaosd's ceiling of 24h",
                       "at most 24h");
      } else {
        g.maxDuration = *v;
      }
    }
  }
  if (auto t = m.get("maxTargets")) {
    if (auto v = asInt(ctx, *t, 1, 100000)) g.maxTargets = static_cast<uint32_t>(*v);
  }
  if (auto p = m.get("maxPercent")) {
    if (auto v = asPercent(ctx, *p)) g.maxPercent = *v;
  }
  if (auto n = m.get("maxFaults")) {
    if (auto v = asInt(ctx, *n, 1, 10000)) g.maxFaults = static_cast<uint32_t>(*v);
  }
  if (auto s = m.boolean("allowSsh")) g.allowSsh = *s;
  if (auto c = m.boolean("allowFullCpu")) g.allowFullCpu = *c;
  if (auto r = m.boolean("allowDefaultRouteDown")) g.allowDefaultRouteDown = *r;
  if (auto h = m.boolean("allowHostClock")) g.allowHostClock = *h;
}

void parseRollbacks(ReadContext& ctx, const Field& f, Experiment& exp) {
  auto items = asSequence(ctx, f);
  if (!items) return;
  std::set<std::string> names;
  for (const auto& item : *items) {
    MapReader m(ctx, item, {"name", "command", "env", "timeout"});
    if (!m.valid()) continue;
    RollbackSpec r;
    r.pos = posOf(item.node.Mark());
    if (auto nameField = m.require("name", "a name for the rollback")) {
      if (auto name = asNonEmptyString(ctx, *nameField)) {
        if (checkName(ctx, *nameField, *name, "rollback") && !names.insert(*name).second) {
          ctx.diag.error(nameField->node.Mark(), nameField->path,
                         "duplicate rollback name " + quoteText(*name), "unique names");
        }
        r.name = *name;
      }
    }
    if (auto cmd = m.require("command", "the command as a list: [systemctl, start, api]")) {
      if (cmd->node.IsScalar()) {
        ctx.diag.error(cmd->node.Mark(), cmd->path,
                       "a command is a list of arguments, not a "
                       "string",
                       "[program, arg1, arg2]; no shell is used");
      } else if (auto argv = asStringList(ctx, *cmd)) {
        if (argv->empty()) {
          ctx.diag.error(cmd->node.Mark(), cmd->path, "the command is empty", "[program, args...]");
        }
        r.command = *argv;
      }
    }
    if (auto env = m.get("env")) r.env = asStringMap(ctx, *env, environmentRules()).value_or(r.env);
    if (auto t = m.duration("timeout")) r.timeout = *t;
    exp.rollbacks.push_back(std::move(r));
  }
}

void parseReport(ReadContext& ctx, const Field& f, ReportSpec& report) {
  MapReader m(ctx, f, {"formats", "dir"});
  if (!m.valid()) return;
  if (auto formats = m.get("formats")) {
    if (auto list = asStringItems(ctx, *formats)) {
      static const std::vector<std::string> kFormats = {"json", "junit", "html", "md"};
      bool ok = !list->empty();
      if (list->empty()) {
        ctx.diag.error(formats->node.Mark(), formats->path, "no report formats",
                       "any of: json, junit, html, md (json is always written)");
      }
      std::vector<std::string> seen;
      for (const auto& [fmt, item] : *list) {
        if (std::find(kFormats.begin(), kFormats.end(), fmt) == kFormats.end()) {
          ctx.diag.error(item.node.Mark(), item.path, "unknown report format " + quoteText(fmt),
                         "any of: json, junit, html, md");
          ok = false;
        } else if (std::find(seen.begin(), seen.end(), fmt) != seen.end()) {
          ctx.diag.error(item.node.Mark(), item.path,
                         "report format " + quoteText(fmt) + " is listed twice",
                         "each format once");
          ok = false;
        } else {
          seen.push_back(fmt);
        }
      }
      if (ok) report.formats = seen;
    }
  }
  if (auto dir = m.string("dir")) report.dir = *dir;
}

void parseSchedule(ReadContext& ctx, const Field& f, Experiment& exp) {
  MapReader m(ctx, f, {"cron", "timezone", "window", "maxRuns"});
  if (!m.valid()) return;
  ScheduleSpec s;
  if (auto cron = m.require("cron", "a 5-field cron expression like \"0 3 * * tue\"")) {
    if (auto text = asNonEmptyString(ctx, *cron)) {
      auto spec = parseCron(*text);
      if (!spec) {
        ctx.diag.error(cron->node.Mark(), cron->path, spec.error().message(),
                       "minute hour day-of-month month day-of-week");
      }
      s.cron = *text;
    }
  }
  if (auto tz = m.get("timezone")) {
    if (auto text = asNonEmptyString(ctx, *tz)) {
      static const std::regex kZone("[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*");
      struct stat st {};
      bool haveDb = ::stat("/usr/share/zoneinfo", &st) == 0;
      if (!std::regex_match(*text, kZone) || text->find("..") != std::string::npos) {
        ctx.diag.error(tz->node.Mark(), tz->path, quoteText(*text) + " is not a time zone name",
                       "an IANA name like Europe/Berlin or UTC");
      } else if (haveDb && ::stat(("/usr/share/zoneinfo/" + *text).c_str(), &st) != 0) {
        ctx.diag.error(tz->node.Mark(), tz->path, "unknown time zone " + quoteText(*text),
                       "an IANA name from /usr/share/zoneinfo, like Europe/Berlin or UTC");
      }
      s.timezone = *text;
    }
  }
  if (auto w = m.get("window")) {
    if (auto text = asNonEmptyString(ctx, *w)) {
      static const std::regex kWindow(
          "([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-3]):([0-5][0-9])");
      std::smatch match;
      if (!std::regex_match(*text, match, kWindow)) {
        ctx.diag.error(w->node.Mark(), w->path, quoteText(*text) + " is not a time window",
                       "HH:MM-HH:MM, e.g. 02:00-05:00");
      } else {
        s.window = std::make_pair(text->substr(0, 5), text->substr(6, 5));
      }
    }
  }
  if (auto n = m.get("maxRuns")) {
    if (auto v = asInt(ctx, *n, 1, 1000000)) s.maxRuns = static_cast<uint32_t>(*v);
  }
  exp.schedule = std::move(s);
}

void parseDocument(ReadContext& ctx, const YAML::Node& root, const ParseOptions& options,
                   Experiment& exp, std::map<std::string, std::string>& vars) {
  MapReader top(ctx, Field{root, ""}, kTopKeys);
  if (!top.valid()) return;
  if (auto v = top.require("apiVersion", "apiVersion: chaosd/v1")) {
    if (auto s = asString(ctx, *v)) {
      if (*s != "chaosd/v1") {
        ctx.diag.error(v->node.Mark(), v->path, "unsupported apiVersion " + quoteText(*s),
                       "chaosd/v1");
      }
      exp.apiVersion = *s;
    }
  }
  if (auto k = top.require("kind", "kind: Experiment")) {
    if (auto s = asString(ctx, *k); s && *s != "Experiment") {
      ctx.diag.error(k->node.Mark(), k->path, "unsupported kind " + quoteText(*s), "Experiment");
    }
  }
  // Variables first: every other section may use them.
  if (auto c = top.get("config")) parseConfig(ctx, *c, exp);
  // Built in, overridable like any other: the directory holding the experiment file, so an
  // experiment can start a program that ships next to it.
  if (!exp.file.empty()) {
    std::error_code ec;
    auto dir = std::filesystem::absolute(std::filesystem::path(exp.file), ec).parent_path();
    if (!ec) vars["experiment_dir"] = dir.lexically_normal().string();
  }
  for (const auto& [name, cv] : exp.config) vars[name] = cv.value;
  for (const auto& [name, value] : options.vars) {
    // A value given on the command line goes into the experiment's strings, and from them into
    // the journal and the report (JSON, which has no bytes): it must be text, as the file is.
    if (!isUtf8(name) || !isUtf8(value)) {
      ctx.diag.errorAt(
          1, 1, "--var " + quoteText(name),
          "the variable's " + std::string(isUtf8(name) ? "value" : "name") + " is not UTF-8 text",
          "UTF-8, as the experiment file is");
    }
    vars[name] = value;  // known all the same: its uses are not "undefined" on top of this
  }

  if (auto md = top.require("metadata", "metadata: {name: ...}")) {
    parseMetadata(ctx, *md, exp.metadata);
  }
  // Guardrails before the method, whose durations they bound.
  if (auto g = top.get("guardrails")) parseGuardrails(ctx, *g, exp.guardrails);
  if (auto t = top.get("targets")) parseTargets(ctx, *t, exp);
  if (auto s = top.require("steadyState", "steadyState: {baseline, recovery, probes}")) {
    parseSteadyState(ctx, *s, exp);
  }
  if (auto m = top.require("method", "method: a list of steps")) {
    parseMethod(ctx, *m, *options.registry, exp);
  }
  if (auto l = top.get("load")) parseLoad(ctx, *l, exp);
  if (auto r = top.get("rollbacks")) parseRollbacks(ctx, *r, exp);
  if (auto r = top.get("report")) parseReport(ctx, *r, exp.report);
  if (auto s = top.get("schedule")) parseSchedule(ctx, *s, exp);
}

}  // namespace

bool checkSearchRegex(ReadContext& ctx, const Field& f, const std::string& pattern) {
  auto re = SearchRegex::compile(pattern, "regex");
  if (!re) {
    // SearchRegex's message repeats the pattern; keep only what the engine said.
    std::string why = re.error().message();
    static const std::string kMarker = "is not a valid regex: ";
    if (auto pos = why.find(kMarker); pos != std::string::npos)
      why = why.substr(pos + kMarker.size());
    ctx.diag.error(f.node.Mark(), f.path, quoteText(pattern) + " is not a valid regular expression",
                   "ECMAScript syntax without back-references: " + why);
    return false;
  }
  return true;
}

bool checkName(ReadContext& ctx, const Field& f, const std::string& name, std::string_view what) {
  static const std::regex kName("[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?");
  if (name.size() > 63 || !std::regex_match(name, kName)) {
    ctx.diag.error(f.node.Mark(), f.path,
                   quoteText(name) + " is not a valid " + std::string(what) + " name",
                   "letters, digits, '-', '_' and '.', at most 63 characters");
    return false;
  }
  return true;
}

}  // namespace parser

ParseResult parseExperimentText(std::string_view text, const std::string& fileName,
                                const ParseOptions& options) {
  parser::Diagnostics diag(fileName);
  ParseResult result;
  if (options.registry == nullptr) {
    diag.errorAt(0, 0, "", "internal error: no fault registry given to the parser");
    result.diagnostics = diag.take();
    return result;
  }
  try {
    if (parser::checkText(text, diag, options.limits)) {
      diag.setText(text);
      if (auto root = parser::loadYaml(text, diag, options.limits)) {
        Experiment exp;
        exp.file = fileName;
        std::map<std::string, std::string> vars;
        parser::ReadContext ctx{diag, vars, {}};
        parser::parseDocument(ctx, *root, options, exp, vars);
        if (diag.empty()) result.experiment = std::move(exp);
      }
    }
  } catch (const std::exception& e) {
    // yaml-cpp can throw from node access on malformed trees; report, never crash.
    diag.errorAt(0, 0, "", std::string("cannot read the experiment: ") + e.what());
    result.experiment.reset();
  }
  result.diagnostics = diag.take();
  if (!result.diagnostics.empty()) result.experiment.reset();
  return result;
}

ParseResult parseExperimentFile(const std::string& path, const ParseOptions& options) {
  ParseResult result;
  auto fail = [&](std::string message, std::string expected = "") {
    result.diagnostics.push_back(
        Diagnostic{path, 0, 0, "", std::move(message), std::move(expected)});
    return result;
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return fail("is a directory", "an experiment file");
  if (!S_ISREG(st.st_mode)) return fail("is not a regular file", "an experiment file");
  if (static_cast<uint64_t>(st.st_size) > options.limits.maxBytes) {
    return fail("the file is " + std::to_string(st.st_size) + " bytes, larger than the limit",
                "an experiment of at most " + std::to_string(options.limits.maxBytes) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(std::string("cannot open: ") + std::strerror(errno));
  std::string text;
  text.resize(static_cast<size_t>(st.st_size));
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));  // a file that shrank since stat
  return parseExperimentText(text, path, options);
}

Result<std::map<std::string, std::string>> readVarFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error::fromErrno("cannot open var file " + path, errno);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  if (auto problem = parser::yamlSyntaxProblem(text, ParseLimits{}.maxDepth)) {
    return Error(ErrorCode::kInvalid,
                 path + ":" + std::to_string(problem->line) + ":" +
                     std::to_string(problem->column) + ": " +
                     (problem->tooDeep ? "nesting too deep" : problem->message));
  }
  try {
    YAML::Node root = YAML::Load(text);
    std::map<std::string, std::string> out;
    if (root.IsNull()) return out;
    if (!root.IsMap()) {
      return Error(ErrorCode::kInvalid, path + ": expected a mapping of names to values");
    }
    for (const auto& kv : root) {
      if (!kv.first.IsScalar() || !kv.second.IsScalar()) {
        return Error(ErrorCode::kInvalid, path + ":" + std::to_string(kv.first.Mark().line + 1) +
                                              ": expected NAME: VALUE with a scalar value");
      }
      out[kv.first.Scalar()] = kv.second.Scalar();
    }
    return out;
  } catch (const YAML::Exception& e) {
    return Error(ErrorCode::kInvalid, path + ": " + e.what());
  }
}

}  // namespace chaosd
