#pragma once

#include <cstdio>
#include <mutex>
#include <string>

#include "chaosd/engine/Engine.h"

namespace chaosd::cli {

// Progress of a run for a person: one line per phase, fault and verdict; on a terminal also
// a status line that updates in place with the samples so far.
class ProgressPrinter final : public EngineObserver {
 public:
  explicit ProgressPrinter(std::FILE* out);
  void phaseStarted(Phase phase, Duration length) override;
  void phaseEnded(Phase phase, const std::vector<PhaseVerdict>& verdicts) override;
  void faultApplied(const FaultRecordOut& fault) override;
  void faultReverted(const FaultRecordOut& fault) override;
  void sample(const ProbeSample& sample) override;
  void message(const std::string& line) override;

 private:
  void line(const std::string& text);
  std::FILE* out_;
  bool tty_;
  std::mutex mu_;
  std::string phase_;
  size_t ok_ = 0;
  size_t failed_ = 0;
  bool statusShown_ = false;
};

}  // namespace chaosd::cli
