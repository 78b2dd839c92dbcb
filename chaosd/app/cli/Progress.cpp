#include "chaosd/app/cli/Progress.h"

#include <unistd.h>

#include "chaosd/base/Units.h"

namespace chaosd::cli {

ProgressPrinter::ProgressPrinter(std::FILE* out) : out_(out), tty_(::isatty(::fileno(out)) != 0) {}

void ProgressPrinter::line(const std::string& text) {
  if (statusShown_) std::fputs("\r\033[K", out_);
  std::fprintf(out_, "%s\n", text.c_str());
  statusShown_ = false;
  std::fflush(out_);
}

void ProgressPrinter::phaseStarted(Phase phase, Duration length) {
  std::lock_guard lock(mu_);
  phase_ = std::string(phaseName(phase));
  ok_ = failed_ = 0;
  static const char* kTitles[] = {"baseline", "method", "recovery"};
  line("== " + std::string(kTitles[static_cast<int>(phase)]) + " (" + phase_ + ", " +
       units::formatDuration(length) + ")");
}

void ProgressPrinter::phaseEnded(Phase, const std::vector<PhaseVerdict>& verdicts) {
  std::lock_guard lock(mu_);
  for (const auto& v : verdicts) {
    std::string text = "   probe " + v.probe + ": " + (v.held ? "held" : "FAILED") + ", " +
                       std::to_string(v.passed) + "/" + std::to_string(v.count) + " passed, p95 " +
                       formatLatency(v.p95);
    for (const auto& r : v.reasons) text += "; " + r;
    line(text);
  }
}

void ProgressPrinter::faultApplied(const FaultRecordOut& f) {
  std::lock_guard lock(mu_);
  line("   + " + f.step + ": " + f.type + (f.description.empty() ? "" : " — " + f.description) +
       (f.backend.empty() ? "" : " [" + f.backend + "]"));
}

void ProgressPrinter::faultReverted(const FaultRecordOut& f) {
  std::lock_guard lock(mu_);
  line("   - " + f.step + ": " +
       (f.state == FaultState::kReverted ? "reverted" : "REVERT FAILED: " + f.error));
}

void ProgressPrinter::sample(const ProbeSample& s) {
  std::lock_guard lock(mu_);
  (s.ok ? ok_ : failed_)++;
  if (!tty_) return;
  std::fprintf(out_, "\r\033[K   %s: %zu ok, %zu failed; last %s %s", phase_.c_str(), ok_, failed_,
               s.probe.c_str(), s.ok ? "ok" : s.detail.c_str());
  statusShown_ = true;
  std::fflush(out_);
}

void ProgressPrinter::message(const std::string& text) {
  std::lock_guard lock(mu_);
  line("   " + text);
}

}  // namespace chaosd::cli
