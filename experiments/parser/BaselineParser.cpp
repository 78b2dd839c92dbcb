// tolerance.baseline, the statistical mode: alpha, quantile, minEffect(By), control and test, and
// the check that a control names another probe running in the phases it is the reference of.
#include "chaosd/base/Units.h"
#include "experiments/parser/Sections.h"

namespace chaosd::parser {
namespace {

// minEffect, minEffectBy, control and test of `tolerance.baseline`.
void parseBaselineDecision(ReadContext& ctx, MapReader& bm, BaselineTolerance& bt) {
  if (auto e = bm.get("minEffect")) {
    const std::string text = e->node.IsScalar() ? e->node.Scalar() : "";
    const char* expected =
        "the smallest rise that matters: a share of the reference quantile (20%) or a time "
        "(5ms)";
    if (!text.empty() && text.back() == '%') {
      auto v = units::parsePercent(text);
      if (!v || *v <= 0) {
        ctx.diag.error(e->node.Mark(), e->path, "minEffect " + text + " is not a positive share",
                       expected);
      } else {
        bt.minRelative = *v;
      }
    } else if (auto d = units::parseDuration(text); d && *d > Duration::zero()) {
      bt.minAbsolute = *d;
    } else {
      ctx.diag.error(e->node.Mark(), e->path,
                     "minEffect " + quoteText(text) + " is neither a percentage nor a duration",
                     expected);
    }
  }
  if (auto by = bm.get("minEffectBy")) {
    const std::vector<std::string> ways = {"estimate", "bound"};
    const std::string text = by->node.IsScalar() ? by->node.Scalar() : "";
    if (text == "estimate") {
      bt.minEffectBy = MinEffectBy::kEstimate;
    } else if (text == "bound") {
      bt.minEffectBy = MinEffectBy::kBound;
    } else {
      auto near = closest(text, ways);
      ctx.diag.error(
          by->node.Mark(), by->path,
          "unknown way " + quoteText(text) + (near ? "; did you mean " + *near + "?" : ""),
          listOptions(ways));
    }
    if (!bm.get("minEffect")) {
      ctx.diag.error(by->node.Mark(), by->path, "minEffectBy without a minEffect",
                     "a minEffect beside it: minEffectBy only says how it is compared");
    }
  }
  if (auto c = bm.string("control")) bt.control = *c;
  if (auto t = bm.get("test")) {
    const std::vector<std::string> tests = {"blocks", "exceedance"};
    const std::string text = t->node.IsScalar() ? t->node.Scalar() : "";
    if (text == "blocks") {
      bt.test = BaselineTest::kBlocks;
    } else if (text == "exceedance") {
      bt.test = BaselineTest::kExceedance;
    } else {
      auto near = closest(text, tests);
      ctx.diag.error(
          t->node.Mark(), t->path,
          "unknown test " + quoteText(text) + (near ? "; did you mean " + *near + "?" : ""),
          listOptions(tests));
    }
  }
}

// A control names another probe that runs in every phase this one is judged in besides before.
void checkControl(ReadContext& ctx, const Field& f, const ProbeSpec& p,
                  const std::vector<ProbeSpec>& probes) {
  if (!p.tolerance.baseline || p.tolerance.baseline->control.empty()) return;
  const std::string& name = p.tolerance.baseline->control;
  const std::string path = joinPath(f.path, "tolerance.baseline.control");
  // The control's own position (the parser got here, so the mappings exist).
  const YAML::Mark mark = f.node["tolerance"]["baseline"]["control"].Mark();
  std::vector<std::string> others;
  const ProbeSpec* control = nullptr;
  for (const auto& q : probes) {
    if (q.name != p.name) others.push_back(q.name);
    if (q.name == name && q.name != p.name) control = &q;
  }
  if (name == p.name) {
    ctx.diag.error(mark, path, "a probe cannot be its own control",
                   "another probe, on a replica the faults do not touch");
    return;
  }
  if (!control) {
    auto near = closest(name, others);
    ctx.diag.error(
        mark, path,
        "no probe named " + quoteText(name) + (near ? "; did you mean " + *near + "?" : ""),
        "another probe of this steadyState" +
            (others.empty() ? std::string() : ": " + listOptions(others)));
    return;
  }
  for (Phase phase : p.phases) {
    if (phase == Phase::kBefore) continue;
    if (std::find(control->phases.begin(), control->phases.end(), phase) == control->phases.end()) {
      ctx.diag.error(mark, path,
                     "the control " + name + " does not run in the " +
                         std::string(phaseName(phase)) + " phase, which this probe is judged in",
                     "a control whose phases include this probe's during and after");
    }
  }
}

}  // namespace

void parseBaselineTolerance(ReadContext& ctx, const Field& b, Tolerance& tol) {
  MapReader bm(ctx, b, {"alpha", "quantile", "minEffect", "minEffectBy", "control", "test"});
  BaselineTolerance bt;
  if (auto a = bm.get("alpha")) {
    if (auto v = asNumber(ctx, *a)) {
      if (*v <= 0 || *v >= 0.5) {
        ctx.diag.error(a->node.Mark(), a->path, "alpha " + a->node.Scalar() + " is out of range",
                       "a false-alarm bound between 0 and 0.5, e.g. 0.01");
      } else {
        bt.alpha = *v;
      }
    }
  }
  if (auto q = bm.get("quantile")) {
    if (auto v = asNumber(ctx, *q)) {
      if (*v < 0.5 || *v >= 1) {
        ctx.diag.error(q->node.Mark(), q->path, "quantile " + q->node.Scalar() + " is out of range",
                       "between 0.5 and 1 (exclusive), e.g. 0.95");
      } else {
        bt.quantile = *v;
      }
    }
  }
  parseBaselineDecision(ctx, bm, bt);
  if (bm.valid()) tol.baseline = bt;
}

void checkBaselineControls(ReadContext& ctx, const std::vector<Field>& items,
                           const std::vector<ProbeSpec>& probes) {
  for (const auto& item : items) {  // by name: a probe with errors was not added
    const YAML::Node name = item.node.IsMap() ? item.node["name"] : YAML::Node();
    for (const auto& probe : probes) {
      if (name && name.IsScalar() && probe.name == name.Scalar()) {
        checkControl(ctx, item, probe, probes);
      }
    }
  }
}

}  // namespace chaosd::parser
