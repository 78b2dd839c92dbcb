#include "reports/JunitReport.h"

#include <sstream>
#include <vector>

#include "reports/Escape.h"
#include "reports/FailureText.h"
#include "reports/ObservedText.h"
#include "reports/ReportFields.h"
#include "reports/ResilienceScore.h"

namespace chaosd::report {
namespace {

struct TestCase {
  TestCase(std::string n, std::string k, int64_t t = 0)
      : name(std::move(n)), kind(std::move(k)), timeNs(t) {}
  std::string name;
  std::string kind;  // probe, fault, rollback, audit: the last part of the classname
  int64_t timeNs = 0;
  enum class Status { kPassed, kFailed, kSkipped } status = Status::kPassed;
  std::string message;  // the failure or skip message
  std::string body;     // the failure's full text
  std::string output;   // <system-out>: what the injector observed
};

TestCase probeCase(const Json& report, const Json& probe, const std::string& phase) {
  const std::string name = text(probe, "name");
  TestCase tc{"probe " + name + ": " + phase + (phase == "before" ? " (baseline)" : ""), "probe"};
  const Json* verdict = verdictOf(probe, phase);
  const Json* ph = phaseOf(report, phase);
  if (ph) {
    auto start = wallOffset(report, *ph, "startedAt");
    auto end = wallOffset(report, *ph, "endedAt");
    if (start && end) tc.timeNs = *end - *start;
  }
  if (!verdict) {
    tc.status = TestCase::Status::kSkipped;
    if (ph && !flag(*ph, "ran") && !text(*ph, "skipped").empty()) {
      tc.message = "the " + phase + " phase did not run: " + text(*ph, "skipped");
    } else if (ph && !flag(*ph, "ran")) {
      tc.message = "the " + phase + " phase did not run";
    } else {
      tc.message = "probe " + name + " does not run in the " + phase + " phase";
    }
    return tc;
  }
  if (!flag(*verdict, "held")) {
    tc.status = TestCase::Status::kFailed;
    tc.message = probeFailureMessage(report, probe, *verdict);
    tc.body = verdictDetails(*verdict);
  }
  return tc;
}

void addFaultCases(const Json& report, const Json& f, std::vector<TestCase>& out) {
  const std::string step = text(f, "step");
  const std::string state = text(f, "state");
  const std::string what = faultWhat(f);
  TestCase apply{"fault " + step + " applied (" + what + ")", "fault"};
  auto intent = wallOffset(report, f, "intentAt");
  auto applied = wallOffset(report, f, "appliedAt");
  if (intent && applied) apply.timeNs = *applied - *intent;
  if (state == "apply-failed") {
    apply.status = TestCase::Status::kFailed;
    apply.message = "fault " + step + " (" + what + ") could not be applied: " + text(f, "error");
    apply.body = text(f, "description");
  } else if (state == "not-started" || state == "skipped") {
    apply.status = TestCase::Status::kSkipped;
    apply.message = "fault " + step + " was not applied (" + state + ")" +
                    (text(f, "error").empty() ? "" : ": " + text(f, "error"));
  }
  for (const auto& line : observedLines(f)) apply.output += line + "\n";
  out.push_back(apply);
  const bool wasApplied = state == "reverted" || state == "revert-failed" || state == "applied";
  if (!wasApplied || (!flag(f, "revertible", true) && state != "revert-failed")) return;
  TestCase revert{"fault " + step + " reverted (" + what + ")", "fault"};
  auto on = nanos(f, "appliedOffsetNs");
  auto off = nanos(f, "revertedOffsetNs");
  if (on && off) revert.timeNs = *off - *on;
  const auto& leftovers = list(f, "leftovers");
  if (state != "reverted") {
    revert.status = TestCase::Status::kFailed;
    revert.message = "fault " + step + " (" + what + ") could not be reverted" +
                     (text(f, "error").empty() ? "" : ": " + text(f, "error"));
  } else if (!leftovers.empty()) {
    revert.status = TestCase::Status::kFailed;
    revert.message = "the audit found what fault " + step + " (" + what +
                     ") left behind after its revert: " + joined(leftovers, "; ");
  }
  if (!leftovers.empty()) revert.body = "leftovers:\n" + joined(leftovers, "\n");
  out.push_back(revert);
}

TestCase rollbackCase(const Json& rb) {
  TestCase tc{"rollback " + text(rb, "name"), "rollback", nanos(rb, "durationNs").value_or(0)};
  if (!flag(rb, "ok")) {
    tc.status = TestCase::Status::kFailed;
    tc.message = rollbackFailureMessage(rb);
    tc.body = "command: " + joined(list(rb, "command"), " ");
  }
  return tc;
}

TestCase auditCase(const Json& report) {
  TestCase tc{"audit: nothing left behind", "audit"};
  std::vector<std::string> found = leftoverLines(report);
  if (!found.empty()) {
    tc.status = TestCase::Status::kFailed;
    tc.message = "the audit found " + std::to_string(found.size()) +
                 " thing(s) left behind: " + found.front();
    for (const auto& l : found) tc.body += l + "\n";
  } else if (!flag(report, "auditClean", true)) {
    tc.status = TestCase::Status::kFailed;
    tc.message = "the audit was not clean";
  }
  return tc;
}

std::vector<TestCase> testCases(const Json& report) {
  std::vector<TestCase> out;
  for (const auto& p : list(report, "probes")) {
    for (const char* phase : kPhases) out.push_back(probeCase(report, p, phase));
  }
  for (const auto& f : list(report, "faults")) addFaultCases(report, f, out);
  for (const auto& rb : list(report, "rollbacks")) out.push_back(rollbackCase(rb));
  out.push_back(auditCase(report));
  return out;
}

void writeCase(std::ostringstream& x, const std::string& classPrefix, const TestCase& tc) {
  x << "    <testcase name=\"" << xmlEscape(tc.name) << "\" classname=\""
    << xmlEscape(classPrefix + tc.kind) << "\" time=\"" << seconds(tc.timeNs) << "\"";
  if (tc.status == TestCase::Status::kPassed && tc.output.empty()) {
    x << "/>\n";
    return;
  }
  x << ">\n";
  if (tc.status == TestCase::Status::kSkipped) {
    x << "      <skipped message=\"" << xmlEscape(tc.message) << "\"/>\n";
  } else if (tc.status == TestCase::Status::kFailed) {
    x << "      <failure message=\"" << xmlEscape(tc.message) << "\" type=\"" << tc.kind << "\">"
      << xmlText(tc.body.empty() ? tc.message : tc.body) << "</failure>\n";
  }
  if (!tc.output.empty()) x << "      <system-out>" << xmlText(tc.output) << "</system-out>\n";
  x << "    </testcase>\n";
}

}  // namespace

std::string junitXml(const Json& report) {
  const std::string name = experimentName(report);
  const auto cases = testCases(report);
  size_t failures = 0;
  size_t skipped = 0;
  for (const auto& tc : cases) {
    failures += tc.status == TestCase::Status::kFailed ? 1 : 0;
    skipped += tc.status == TestCase::Status::kSkipped ? 1 : 0;
  }
  int64_t total = 0;
  auto start = parseIsoTime(text(report, "startedAt"));
  auto end = parseIsoTime(text(report, "endedAt"));
  if (start && end) total = *end - *start;
  const std::string counts = "tests=\"" + std::to_string(cases.size()) + "\" failures=\"" +
                             std::to_string(failures) + "\" errors=\"0\" skipped=\"" +
                             std::to_string(skipped) + "\" time=\"" + seconds(total) + "\"";
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << "<testsuites name=\"chaosd\" " << counts << ">\n";
  x << "  <testsuite name=\"" << xmlEscape(name) << "\" " << counts;
  // JUnit timestamps carry no time zone; report times are UTC.
  std::string stamp = text(report, "startedAt");
  if (parseIsoTime(stamp)) x << " timestamp=\"" << xmlEscape(stamp.substr(0, 19)) << "\"";
  x << ">\n    <properties>\n";
  auto property = [&](const std::string& key, const std::string& value) {
    x << "      <property name=\"" << xmlEscape(key) << "\" value=\"" << xmlEscape(value)
      << "\"/>\n";
  };
  property("chaosd.runId", text(report, "runId"));
  property("chaosd.outcome", text(report, "outcome"));
  property("chaosd.exitCode", std::to_string(static_cast<int>(number(report, "exitCode"))));
  property("chaosd.resilienceScore", std::to_string(resilienceScore(report)));
  property("chaosd.auditClean", flag(report, "auditClean", true) ? "true" : "false");
  for (const auto& r : list(report, "reasons")) {
    property("chaosd.reason", r.is_string() ? r.get<std::string>() : r.dump());
  }
  x << "    </properties>\n";
  const std::string classPrefix = "chaosd." + name + ".";
  for (const auto& tc : cases) writeCase(x, classPrefix, tc);
  x << "    <system-out>" << xmlText(verdictText(report)) << "</system-out>\n";
  x << "  </testsuite>\n</testsuites>\n";
  return x.str();
}

}  // namespace chaosd::report
