#pragma once

// What the process seam tests share: a fake process table, a process target over it, the
// request a step would make, and a bounded wait on a condition (never a fixed sleep).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "experiments/model/Experiment.h"
#include "injectors/Injector.h"
#include "tests/support/FakeProcesses.h"

namespace chaosd {

// Polls `done` until it holds or `limit` passes; true when it held.
template <typename Done>
bool waitFor(Done done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class ProcessSeamTest : public ::testing::Test {
 protected:
  ProcessSeamTest() {
    target_.name = "api";
    target_.kind = TargetKind::kProcess;
    target_.process.name = "api";
    target_.selection.seed = 7;
  }

  FaultRequest request(const std::string& type, nlohmann::json args,
                       std::chrono::nanoseconds duration = std::chrono::nanoseconds(0)) {
    FaultRequest r;
    r.runId = "run-1";
    r.faultId = "run-1-f1";
    r.stepName = "step";
    r.faultType = type;
    r.target = &target_;
    r.args = std::move(args);
    r.duration = duration;
    return r;
  }

  // The pids of the observed victims' records, in order ("victims"[i].pid).
  static std::vector<pid_t> victimPids(const nlohmann::json& observed) {
    std::vector<pid_t> out;
    for (const auto& v : observed.at("victims")) {
      if (v.contains("pid")) out.push_back(v.at("pid").get<pid_t>());
    }
    return out;
  }

  std::shared_ptr<FakeProcesses> fake_ = std::make_shared<FakeProcesses>();
  TargetSpec target_;
};

}  // namespace chaosd
