#include <map>
#include <set>

#include "chaosd/core/Units.h"
#include "experiments/model/Timeline.h"
#include "experiments/parser/ArgValidator.h"
#include "experiments/parser/Sections.h"

namespace chaosd::parser {
namespace {

struct StepFields {
  YAML::Mark afterMark;
  std::string afterPath;
  YAML::Mark mark;
  std::string path;
};

class MethodParser {
 public:
  MethodParser(ReadContext& ctx, const FaultRegistry& registry, Experiment& exp)
      : ctx_(ctx), registry_(registry), exp_(exp) {}

  void parse(const Field& f) {
    auto items = asSequence(ctx_, f);
    if (!items) return;
    if (items->empty()) {
      ctx_.diag.error(f.node.Mark(), f.path, "the method has no steps", "at least one step");
      return;
    }
    for (const auto& item : *items) {
      if (auto step = parseStep(item, /*inGroup=*/false)) exp_.method.push_back(std::move(*step));
    }
    checkReferences();
    checkFaultCount(f);
    if (!ctx_.diag.empty()) return;  // a timeline over broken steps says nothing useful
    Timeline tl = computeTimeline(exp_.method);
    if (tl.ok() && tl.total > exp_.guardrails.maxDuration) {
      ctx_.diag.error(f.node.Mark(), f.path,
                      "the method runs " + units::formatDuration(tl.total) +
                          ", longer than guardrails.maxDuration",
                      "at most " + units::formatDuration(exp_.guardrails.maxDuration) +
                          ", or raise guardrails.maxDuration (up to 24h)");
    }
    if (!tl.ok()) {
      std::string chain;
      for (size_t i = 0; i < tl.cycle.size(); ++i) chain += (i ? " -> " : "") + tl.cycle[i];
      const auto& where = fields_[tl.cycle.front()];
      ctx_.diag.error(where.afterMark.is_null() ? where.mark : where.afterMark,
                      where.afterPath.empty() ? where.path : where.afterPath,
                      "the steps wait for each other in a cycle: " + chain,
                      "after: must point to a step that can finish first");
    }
  }

 private:
  std::optional<StepSpec> parseStep(const Field& f, bool inGroup) {
    MapReader m(ctx_, f,
                {"name", "fault", "target", "args", "duration", "at", "after", "pause", "parallel"});
    if (!m.valid()) return std::nullopt;
    StepSpec step;
    step.pos = posOf(f.node.Mark());
    StepFields sf{YAML::Mark::null_mark(), "", f.node.Mark(), f.path};
    if (auto nameField = m.require("name", "a name for the step")) {
      if (auto name = asNonEmptyString(ctx_, *nameField)) {
        if (checkName(ctx_, *nameField, *name, "step") && fields_.contains(*name)) {
          ctx_.diag.error(nameField->node.Mark(), nameField->path,
                          "duplicate step name '" + *name + "'", "unique step names");
        }
        step.name = *name;
      }
    }
    auto kind = m.exactlyOne({"fault", "pause", "parallel"}, "what the step does");
    if (kind == "fault") {
      parseFaultStep(m, f, step);
    } else if (kind == "pause") {
      step.kind = StepKind::kPause;
      step.duration = asDuration(ctx_, *m.get("pause"));
      rejectKeys(m, {"fault", "target", "args", "duration"}, "a pause step");
    } else if (kind == "parallel") {
      step.kind = StepKind::kParallel;
      rejectKeys(m, {"target", "args", "duration"}, "a parallel group");
      if (inGroup) {
        ctx_.diag.error(m.get("parallel")->node.Mark(), joinPath(f.path, "parallel"),
                        "parallel groups cannot be nested", "fault or pause steps in a group");
      } else if (auto items = asSequence(ctx_, *m.get("parallel"))) {
        if (items->empty()) {
          ctx_.diag.error(m.get("parallel")->node.Mark(), joinPath(f.path, "parallel"),
                          "the group is empty", "at least one step");
        }
        for (const auto& item : *items) {
          if (auto member = parseStep(item, true)) step.parallel.push_back(std::move(*member));
        }
      }
    }
    if (auto at = m.get("at")) {
      step.at = asDuration(ctx_, *at, /*allowZero=*/true);
      if (inGroup) {
        ctx_.diag.error(at->node.Mark(), at->path, "a group member starts with its group",
                        "at: on the parallel group itself");
      }
    }
    if (auto after = m.get("after")) {
      step.after = asNonEmptyString(ctx_, *after).value_or("");
      step.afterPos = posOf(after->node.Mark());
      sf.afterMark = after->node.Mark();
      sf.afterPath = after->path;
      if (inGroup) {
        ctx_.diag.error(after->node.Mark(), after->path, "a group member starts with its group",
                        "after: on the parallel group itself");
      }
      if (step.at) {
        ctx_.diag.error(after->node.Mark(), after->path, "'at' and 'after' cannot be combined",
                        "one of them");
      }
    }
    if (!step.name.empty()) fields_.emplace(step.name, sf);
    return step;
  }

  void rejectKeys(MapReader& m, std::initializer_list<const char*> keys, const char* what) {
    for (const char* k : keys) {
      if (m.has(k)) {
        ctx_.diag.error(m.self().node[k].Mark(), joinPath(m.self().path, k),
                        std::string("'") + k + "' does not apply to " + what);
      }
    }
  }

  void parseFaultStep(MapReader& m, const Field& f, StepSpec& step) {
    step.kind = StepKind::kFault;
    auto faultField = *m.get("fault");
    auto name = asNonEmptyString(ctx_, faultField);
    step.faultPos = posOf(faultField.node.Mark());
    const FaultType* type = nullptr;
    if (name) {
      step.fault = *name;
      type = registry_.find(*name);
      if (!type) {
        auto near = closest(*name, registry_.names());
        ctx_.diag.error(faultField.node.Mark(), faultField.path,
                        "unknown fault type '" + *name + "'",
                        near ? "did you mean '" + *near + "'?"
                             : "one of: " + listOptions(registry_.names()));
      }
    }
    if (auto d = m.get("duration")) {
      step.duration = asDuration(ctx_, *d);
      if (step.duration && *step.duration > exp_.guardrails.maxDuration) {
        ctx_.diag.error(d->node.Mark(), d->path,
                        "the fault would be held " + units::formatDuration(*step.duration) +
                            ", longer than guardrails.maxDuration",
                        "at most " + units::formatDuration(exp_.guardrails.maxDuration));
      }
    } else if (type && type->needsDuration) {
      ctx_.diag.error(f.node.Mark(), joinPath(f.path, "duration"),
                      "the fault has no duration",
                      "every fault needs a duration (its deadline), e.g. duration: 30s");
    }
    auto targetField = m.get("target");
    if (targetField) {
      step.target = asNonEmptyString(ctx_, *targetField).value_or("");
      step.targetPos = posOf(targetField->node.Mark());
    }
    if (type) {
      checkTarget(f, targetField, step, *type);
      step.args = validateArgs(ctx_, m.get("args"), joinPath(f.path, "args"), f.node.Mark(),
                               type->schema, step.duration, exp_.guardrails.allowSsh)
                      .value_or(nlohmann::json::object());
    }
  }

  void checkTarget(const Field& f, const std::optional<Field>& targetField, const StepSpec& step,
                   const FaultType& type) {
    if (type.targetKinds.empty()) {
      if (targetField) {
        ctx_.diag.error(targetField->node.Mark(), targetField->path,
                        type.name + " takes no target");
      }
      return;
    }
    std::vector<std::string> kinds;
    for (auto k : type.targetKinds) kinds.emplace_back(targetKindName(k));
    if (!targetField) {
      ctx_.diag.error(f.node.Mark(), joinPath(f.path, "target"),
                      "missing required field 'target'",
                      "the name of a target of kind " + listOptions(kinds));
      return;
    }
    if (step.target.empty()) return;
    const TargetSpec* t = exp_.findTarget(step.target);
    if (!t) {
      std::vector<std::string> names;
      for (const auto& tt : exp_.targets) names.push_back(tt.name);
      auto near = closest(step.target, names);
      ctx_.diag.error(targetField->node.Mark(), targetField->path,
                      "no target named '" + step.target + "'",
                      near           ? "did you mean '" + *near + "'?"
                      : names.empty() ? "define it under targets:"
                                      : "one of: " + listOptions(names));
      return;
    }
    if (std::find(type.targetKinds.begin(), type.targetKinds.end(), t->kind) ==
        type.targetKinds.end()) {
      ctx_.diag.error(targetField->node.Mark(), targetField->path,
                      "target '" + t->name + "' is " + std::string(targetKindName(t->kind)) +
                          ", which " + type.name + " cannot act on",
                      "a target of kind " + listOptions(kinds));
    }
  }

  void checkReferences() {
    auto check = [&](const StepSpec& s) {
      if (s.after.empty()) return;
      const auto& sf = fields_[s.name];
      if (s.after == s.name) {
        ctx_.diag.error(sf.afterMark, sf.afterPath, "a step cannot wait for itself",
                        "the name of another step");
      } else if (!fields_.contains(s.after)) {
        std::vector<std::string> names;
        for (const auto& [n, unused] : fields_) names.push_back(n);
        auto near = closest(s.after, names);
        ctx_.diag.error(sf.afterMark, sf.afterPath, "no step named '" + s.after + "'",
                        near ? "did you mean '" + *near + "'?" : "one of: " + listOptions(names));
      }
    };
    for (const auto& s : exp_.method) {
      check(s);
      for (const auto& m : s.parallel) check(m);
    }
  }

  void checkFaultCount(const Field& f) {
    size_t faults = 0;
    for (const auto& s : exp_.method) {
      faults += s.kind == StepKind::kFault ? 1 : 0;
      for (const auto& m : s.parallel) faults += m.kind == StepKind::kFault ? 1 : 0;
    }
    if (faults > exp_.guardrails.maxFaults) {
      ctx_.diag.error(f.node.Mark(), f.path,
                      std::to_string(faults) + " fault steps exceed guardrails.maxFaults",
                      "at most " + std::to_string(exp_.guardrails.maxFaults));
    }
  }

  ReadContext& ctx_;
  const FaultRegistry& registry_;
  Experiment& exp_;
  std::map<std::string, StepFields> fields_;
};

}  // namespace

void parseMethod(ReadContext& ctx, const Field& f, const FaultRegistry& registry,
                 Experiment& exp) {
  MethodParser(ctx, registry, exp).parse(f);
}

}  // namespace chaosd::parser
