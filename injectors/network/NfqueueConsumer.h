#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "chaosd/base/Fd.h"
#include "chaosd/base/Result.h"
#include "injectors/network/ReleaseQueue.h"

struct mnl_socket;

// The userspace half of network.delay through NFQUEUE: one thread that reads the packets the
// kernel queues (metadata only: the verdict needs the packet id and nothing else) and accepts
// each once its delay has passed, earliest release first. The netlink socket is opened inside
// the target's network namespace (a socket stays in the namespace it was opened in), so the
// thread itself runs anywhere. docs/faults/network.md.
namespace chaosd::nfq {

struct ConsumerStats {
  uint64_t queued = 0;          // packets the kernel handed over
  uint64_t released = 0;        // accepted after their delay
  uint64_t releasedAtStop = 0;  // still held at stop(), accepted then
  uint64_t overflow = 0;        // accepted at once: the held queue was full (the kernel's maxlen
                                // makes this rare: past it, the kernel itself accepts, fail-open)
  uint64_t idGaps = 0;          // ids never received: the kernel accepted those itself (fail-open)
                                // because our socket's buffer was full
  uint64_t batchVerdicts = 0;   // NFQNL_MSG_VERDICT_BATCH messages sent
  uint64_t verdictErrors = 0;   // verdicts the kernel refused (packet already gone)
  uint64_t maxHeld = 0;         // most packets held at once
  int64_t maxLateNs = 0;        // latest release after its due time
};

struct ConsumerConfig {
  std::string netnsPath;  // "" for the caller's namespace
  uint16_t queue = 0;
  uint32_t maxlen = 1000;  // the kernel queue's and ours
  DelaySampler sampler;
};

// A bound queue and whatever holds its packets, as the delay injector sees it (the real one
// below; a fake in tests/support/FakeNfqueueKernel.h). Destroying it stops it.
class QueueConsumer {
 public:
  virtual ~QueueConsumer() = default;
  // Accepts every packet still held (none is lost), then unbinds the queue. Idempotent; the
  // final counts.
  virtual ConsumerStats stop() = 0;
  // The queue number it holds.
  virtual uint16_t queue() const = 0;
};

class NfqueueConsumer final : public QueueConsumer {
 public:
  using Config = ConsumerConfig;

  // Binds the queue in the namespace (copy mode meta, kernel maxlen, fail-open), then starts
  // the thread. kConflict when another socket holds the queue number.
  static Result<std::unique_ptr<NfqueueConsumer>> start(Config config);

  // Stops the thread: first reads what is still in the socket, accepts every packet held
  // (none is lost), then unbinds the queue. Idempotent; the final counts.
  ConsumerStats stop() override;
  ~NfqueueConsumer() override;
  NfqueueConsumer(const NfqueueConsumer&) = delete;
  NfqueueConsumer& operator=(const NfqueueConsumer&) = delete;

  uint16_t queue() const override { return queue_; }
  // The counts so far (from another thread).
  ConsumerStats stats() const;

 private:
  NfqueueConsumer(mnl_socket* nl, uint16_t queue, uint32_t maxlen, DelaySampler sampler);
  void loop();
  // Reads what the socket holds now (at most `budget` messages; 0: until empty).
  void receive(size_t budget);
  // Queues the verdicts of released packets (one batch verdict where it covers them all).
  // `due`: when the earliest of them was due, for the lateness count.
  void release(const ReleaseQueue::Release& r, bool atStop, std::optional<TimePoint> due);
  void putVerdict(int type, uint32_t id);
  void flushVerdicts();
  void publish();

  mnl_socket* nl_;
  uint16_t queue_;
  ReleaseQueue held_;
  DelaySampler sampler_;
  Fd stop_;  // eventfd
  std::vector<char> recvBuf_;
  std::vector<char> sendBuf_;
  size_t sendLen_ = 0;
  std::optional<uint32_t> lastId_;
  ConsumerStats live_;  // the loop's own, copied to stats_ after each wake-up
  mutable std::mutex statsMu_;
  ConsumerStats stats_;
  std::thread thread_;
  bool stopped_ = false;
};

// Binds NFQUEUE `queue` in the calling thread's network namespace on a new netfilter netlink
// socket (the caller owns it: mnl_socket_close): kernel maxlen, fail-open, GSO. copyRange 0:
// metadata only; else the first copyRange bytes of each packet are copied (the DNS fault reads
// the query). kConflict when another socket holds the queue number.
Result<mnl_socket*> bindQueue(uint16_t queue, uint32_t maxlen, uint32_t copyRange);
// Unbinds `queue` (the kernel flushes what is still queued with a drop: consumers accept all of
// it first) and closes the socket bindQueue returned. Best effort: a dead socket is closed.
void unbindQueue(mnl_socket* nl, uint16_t queue);

// The queue numbers bound in the calling thread's network namespace, from
// /proc/thread-self/net/netfilter/nfnetlink_queue (empty when no queue was ever used).
Result<std::set<uint16_t>> boundQueues();

}  // namespace chaosd::nfq
