#include <map>
#include <set>

#include "chaosd/base/Units.h"
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
  MethodParser(ReadContext& ctx, const FaultCatalog& registry, Experiment& exp)
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
    // The cycle check runs whatever else is wrong: the file's every error is reported. A step
    // that is not a mapping at all is left out; every other step is in, with what could be
    // read of it.
    // A step that waits for itself was reported above; unhooked (the experiment is refused
    // anyway) so that it neither is reported again as a cycle nor hides another one.
    for (auto& s : exp_.method) {
      if (s.after == s.name) s.after.clear();
      for (auto& m : s.parallel) {
        if (m.after == m.name) m.after.clear();
      }
    }
    Timeline tl = computeTimeline(exp_.method);
    if (!tl.ok()) reportCycle(tl.cycle);
  }

  // Names the first few steps of the cycle: one of 13,000 steps is not a message.
  void reportCycle(const std::vector<std::string>& cycle) {
    constexpr size_t kMaxNamed = 10;
    std::string chain;
    const size_t steps = cycle.size() - 1;  // the first name closes the cycle again
    if (steps <= kMaxNamed) {
      for (size_t i = 0; i < cycle.size(); ++i) chain += (i ? " -> " : "") + cycle[i];
    } else {
      for (size_t i = 0; i < kMaxNamed; ++i) chain += (i ? " -> " : "") + cycle[i];
      chain += " -> ... -> " + cycle.back() + " (" + std::to_string(steps) + " steps)";
    }
    const StepFields* found = nullptr;
    size_t i = 0;
    auto visit = [&](const StepSpec& st) {
      if (st.name == cycle.front() && !found) found = &order_[i];
      ++i;
    };
    for (const auto& st : exp_.method) {
      visit(st);
      for (const auto& mm : st.parallel) visit(mm);
    }
    if (found == nullptr) return;  // cannot happen: the cycle is made of these steps
    const StepFields& where = *found;
    ctx_.diag.error(where.afterMark.is_null() ? where.mark : where.afterMark,
                    where.afterPath.empty() ? where.path : where.afterPath,
                    "the steps wait for each other in a cycle: " + chain,
                    "after: must point to a step that can finish first");
  }

 private:
  std::optional<StepSpec> parseStep(const Field& f, bool inGroup) {
    MapReader m(
        ctx_, f,
        {"name", "fault", "target", "args", "duration", "at", "after", "pause", "parallel"});
    if (!m.valid()) return std::nullopt;
    StepSpec step;
    step.pos = posOf(f.node.Mark());
    StepFields sf{YAML::Mark::null_mark(), "", f.node.Mark(), f.path};
    size_t slot = order_.size();
    order_.emplace_back();  // reserved: the group's entry precedes its members'

    if (auto nameField = m.require("name", "a name for the step")) {
      if (auto name = asNonEmptyString(ctx_, *nameField)) {
        if (checkName(ctx_, *nameField, *name, "step") && names_.contains(*name)) {
          ctx_.diag.error(nameField->node.Mark(), nameField->path,
                          "duplicate step name " + quoteText(*name), "unique step names");
        }
        step.name = *name;
      }
    }
    // Registered before the members, so a member cannot take its group's name.
    if (!step.name.empty()) names_.insert(step.name);
    auto kind = m.exactlyOne({"fault", "pause", "parallel"}, "what the step does");
    auto what = kind ? m.get(*kind) : std::nullopt;  // nullopt also when it has no value
    if (kind == "fault" && what) {
      parseFaultStep(m, f, *what, step);
    } else if (kind == "pause") {
      step.kind = StepKind::kPause;
      if (what) step.duration = asDuration(ctx_, *what);
      rejectKeys(m, {"fault", "target", "args", "duration"}, "a pause step");
    } else if (kind == "parallel") {
      step.kind = StepKind::kParallel;
      rejectKeys(m, {"target", "args", "duration"}, "a parallel group");
      if (what && inGroup) {
        ctx_.diag.error(what->node.Mark(), what->path, "parallel groups cannot be nested",
                        "fault or pause steps in a group");
      } else if (what) {
        if (auto items = asSequence(ctx_, *what)) {
          if (items->empty()) {
            ctx_.diag.error(what->node.Mark(), what->path, "the group is empty",
                            "at least one step");
          }
          for (const auto& item : *items) {
            if (auto member = parseStep(item, true)) step.parallel.push_back(std::move(*member));
          }
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
    order_[slot] = sf;  // depth-first, the order checkReferences walks the steps in
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

  void parseFaultStep(MapReader& m, const Field& f, const Field& faultField, StepSpec& step) {
    step.kind = StepKind::kFault;
    auto name = asNonEmptyString(ctx_, faultField);
    step.faultPos = posOf(faultField.node.Mark());
    const FaultTypeInfo* type = nullptr;
    if (name) {
      step.fault = *name;
      type = registry_.find(*name);
      if (type != nullptr && type->internal) type = nullptr;  // journal-only, never a step
      if (!type) {
        auto near = closest(*name, registry_.names());
        ctx_.diag.error(faultField.node.Mark(), faultField.path,
                        "unknown fault type " + quoteText(*name),
                        near ? "did you mean " + quoteText(*near) + "?"
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
    } else if (type && type->needsDuration && !m.has("duration")) {
      ctx_.diag.error(f.node.Mark(), joinPath(f.path, "duration"), "the fault has no duration",
                      "every fault needs a duration (its deadline), e.g. duration: 30s");
    }
    auto targetField = m.get("target");
    if (targetField) {
      step.target = asNonEmptyString(ctx_, *targetField).value_or("");
      step.targetPos = posOf(targetField->node.Mark());
    }
    if (type) {
      if (targetField || !m.has("target")) checkTarget(f, targetField, step, *type);
      auto args = m.get("args");
      if (args && type->schema.args.empty() && args->node.IsMap()) {
        // "unknown key (one of: )" would send the user looking for a list that is empty.
        for (const auto& kv : args->node) {
          std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
          ctx_.diag.error(kv.first.Mark(), joinPath(args->path, key),
                          "unknown key " + quoteText(key), type->name + " takes no arguments");
        }
      } else if (args || !m.has("args")) {  // a present but empty args: was reported
        step.args =
            validateArgs(ctx_, args, joinPath(f.path, "args"), f.node.Mark(), type->schema,
                         step.duration, exp_.guardrails, type->targetOptional && !m.has("target"))
                .value_or(nlohmann::json::object());
      }
    }
  }

  void checkTarget(const Field& f, const std::optional<Field>& targetField, const StepSpec& step,
                   const FaultTypeInfo& type) {
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
      if (type.targetOptional) return;
      ctx_.diag.error(f.node.Mark(), joinPath(f.path, "target"), "missing required field 'target'",
                      "the name of a target of kind " + listOptions(kinds));
      return;
    }
    if (step.target.empty() || ctx_.brokenTargets.contains(step.target)) return;
    const TargetSpec* t = exp_.findTarget(step.target);
    if (!t) {
      std::vector<std::string> names;
      for (const auto& tt : exp_.targets) names.push_back(tt.name);
      auto near = closest(step.target, names);
      ctx_.diag.error(targetField->node.Mark(), targetField->path,
                      "no target named " + quoteText(step.target),
                      near            ? "did you mean " + quoteText(*near) + "?"
                      : names.empty() ? "define it under targets:"
                                      : "one of: " + listOptions(names));
      return;
    }
    if (std::find(type.targetKinds.begin(), type.targetKinds.end(), t->kind) ==
        type.targetKinds.end()) {
      ctx_.diag.error(targetField->node.Mark(), targetField->path,
                      "target " + quoteText(t->name) + " is " +
                          std::string(targetKindName(t->kind)) + ", which " + type.name +
                          " cannot act on",
                      "a target of kind " + listOptions(kinds));
      return;
    }
    // A disk fault sees a container through the path inside it, which the target must name.
    auto takes = [&type](TargetKind k) {
      return std::find(type.targetKinds.begin(), type.targetKinds.end(), k) !=
             type.targetKinds.end();
    };
    if (t->kind == TargetKind::kContainer && takes(TargetKind::kPath) &&
        !takes(TargetKind::kInterface) && t->container.path.empty()) {
      ctx_.diag.error(targetField->node.Mark(), targetField->path,
                      "container target " + quoteText(t->name) + " has no path, which " +
                          type.name + " acts on",
                      "path: under the target's container, as the container sees it");
    }
  }

  void checkReferences() {
    size_t next = 0;
    auto check = [&](const StepSpec& s) {
      const StepFields& sf = order_.at(next++);
      if (s.after.empty()) return;
      if (s.after == s.name) {
        ctx_.diag.error(sf.afterMark, sf.afterPath, "a step cannot wait for itself",
                        "the name of another step");
      } else if (!names_.contains(s.after)) {
        std::vector<std::string> names(names_.begin(), names_.end());
        auto near = closest(s.after, names);
        ctx_.diag.error(
            sf.afterMark, sf.afterPath, "no step named " + quoteText(s.after),
            near ? "did you mean " + quoteText(*near) + "?" : "one of: " + listOptions(names));
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
  const FaultCatalog& registry_;
  Experiment& exp_;
  std::set<std::string> names_;
  std::vector<StepFields> order_;  // per step, depth-first: a group, then its members
};

}  // namespace

void parseMethod(ReadContext& ctx, const Field& f, const FaultCatalog& registry, Experiment& exp) {
  MethodParser(ctx, registry, exp).parse(f);
}

}  // namespace chaosd::parser
