#include "chaosd/engine/ProbeRunner.h"

namespace chaosd {

ThreadedProbeRunner::ThreadedProbeRunner(std::vector<std::unique_ptr<Probe>> probes,
                                         Deliver deliver)
    : deliver_(std::move(deliver)) {
  for (auto& p : probes) {
    auto w = std::make_unique<Worker>();
    w->probe = std::move(p);
    workers_.push_back(std::move(w));
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->thread = std::thread([this, i] { loop(i); });
  }
}

ThreadedProbeRunner::~ThreadedProbeRunner() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

bool ThreadedProbeRunner::start(size_t index, Phase phase) {
  {
    std::lock_guard lock(mu_);
    Worker& w = *workers_.at(index);
    if (w.busy) return false;
    w.busy = true;
    w.request = phase;
  }
  cv_.notify_all();
  return true;
}

void ThreadedProbeRunner::drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    for (const auto& w : workers_) {
      if (w->busy) return false;
    }
    return true;
  });
}

void ThreadedProbeRunner::loop(size_t index) {
  Worker& w = *workers_[index];
  for (;;) {
    Phase phase;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || w.request.has_value(); });
      if (stopping_ && !w.request) return;
      phase = *w.request;
      w.request.reset();
    }
    ProbeSample s = w.probe->sample(phase);
    deliver_(index, std::move(s));
    {
      std::lock_guard lock(mu_);
      w.busy = false;
    }
    cv_.notify_all();
  }
}

}  // namespace chaosd
