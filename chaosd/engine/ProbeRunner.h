#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "chaosd/engine/probes/Probe.h"

namespace chaosd {

// Takes samples of the experiment's probes for the engine. Results go to `deliver`, which may
// be called from any thread.
class ProbeRunner {
 public:
  using Deliver = std::function<void(size_t probe, ProbeSample sample)>;
  virtual ~ProbeRunner() = default;
  // Starts one sample of probe `index`. Returns false (and starts nothing) while that probe's
  // previous sample is still running: a slow target is not hit by overlapping samples.
  virtual bool start(size_t index, Phase phase) = 0;
  // Waits for the samples in flight (each bounded by its probe's timeout).
  virtual void drain() = 0;
};

// One worker thread per probe, so a hanging target never delays the engine's fault deadlines.
class ThreadedProbeRunner final : public ProbeRunner {
 public:
  ThreadedProbeRunner(std::vector<std::unique_ptr<Probe>> probes, Deliver deliver);
  ~ThreadedProbeRunner() override;
  bool start(size_t index, Phase phase) override;
  void drain() override;

 private:
  struct Worker {
    std::unique_ptr<Probe> probe;
    std::optional<Phase> request;
    bool busy = false;
    std::thread thread;
  };
  void loop(size_t index);

  Deliver deliver_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// Samples on the caller's thread; for tests with a fake clock and fake probes.
class InlineProbeRunner final : public ProbeRunner {
 public:
  InlineProbeRunner(std::vector<std::unique_ptr<Probe>> probes, Deliver deliver)
      : probes_(std::move(probes)), deliver_(std::move(deliver)) {}
  bool start(size_t index, Phase phase) override {
    deliver_(index, probes_.at(index)->sample(phase));
    return true;
  }
  void drain() override {}

 private:
  std::vector<std::unique_ptr<Probe>> probes_;
  Deliver deliver_;
};

}  // namespace chaosd
