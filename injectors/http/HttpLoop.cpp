#include "injectors/http/HttpLoop.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>

namespace chaosd::http {
namespace {

// epoll's data word: a connection's address with bit 0 set for its upstream socket, or one of
// these (never an address: connections are aligned).
constexpr uint64_t kStopTag = 2;
constexpr uint64_t kListenerTag = 4;
constexpr int kEvents = 256;
constexpr int kAcceptBatch = 64;

uint64_t tagOf(Connection& c, bool upstream) {
  return reinterpret_cast<uintptr_t>(&c) | (upstream ? 1u : 0u);
}

}  // namespace

EventLoop::EventLoop(std::shared_ptr<ProxyShared> shared, int listener, int stopEvent)
    : shared_(std::move(shared)),
      listener_(listener),
      stopEvent_(stopEvent),
      epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
  epoll_event stop{EPOLLIN, {.u64 = kStopTag}};
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stopEvent_, &stop);
  // Level-triggered and exclusive: one loop is woken per burst of connections, and a loop that
  // left some in the queue (its batch was full) is woken again.
  epoll_event listen{EPOLLIN | EPOLLEXCLUSIVE, {.u64 = kListenerTag}};
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_, &listen);
}

EventLoop::~EventLoop() { closeAll(); }

void EventLoop::closeAll() {
  for (auto& c : connections_) c->close();
  freeRetired();
}

bool EventLoop::watch(int fd, Connection& c, bool upstream) {
  epoll_event e{EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.u64 = tagOf(c, upstream)}};
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &e) == 0;
}

void EventLoop::unwatch(int fd) { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void EventLoop::arm(Connection& c, Clock::time_point at) {
  disarm(c);
  c.timer = timers_.emplace(at, &c);
}

void EventLoop::disarm(Connection& c) {
  if (!c.timer) return;
  timers_.erase(*c.timer);
  c.timer.reset();
}

void EventLoop::retire(Connection& c) {
  disarm(c);
  shared_->active.fetch_sub(1, std::memory_order_relaxed);
  retired_.push_back(&c);
}

void EventLoop::run() {
  std::array<epoll_event, kEvents> events;
  while (!shared_->stopping.load(std::memory_order_relaxed)) {
    timespec wait{};
    const timespec* until = timeout(wait);
    int n = ::epoll_pwait2(epoll_.get(), events.data(), kEvents, until, nullptr);
    if (n < 0 && errno == ENOSYS) {  // before Linux 5.11: milliseconds, rounded up
      const int ms =
          until == nullptr
              ? -1
              : static_cast<int>(until->tv_sec * 1000 + (until->tv_nsec + 999'999) / 1'000'000);
      n = ::epoll_wait(epoll_.get(), events.data(), kEvents, ms);
    }
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[static_cast<size_t>(i)].data.u64;
      if (tag == kStopTag) break;
      if (tag == kListenerTag) {
        acceptSome();
        continue;
      }
      auto* c = reinterpret_cast<Connection*>(tag & ~uint64_t{1});
      if (!c->closed()) c->onEvent((tag & 1) != 0, events[static_cast<size_t>(i)].events);
    }
    fireTimers();
    freeRetired();
  }
  closeAll();
}

void EventLoop::acceptSome() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN: another loop took it, or none left
    if (shared_->active.fetch_add(1, std::memory_order_relaxed) >= shared_->config.maxConnections) {
      shared_->active.fetch_sub(1, std::memory_order_relaxed);
      shared_->counters.refused.fetch_add(1, std::memory_order_relaxed);
      linger l{1, 0};  // a reset, at once: the client retries or fails, it does not hang
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Connection>(*this, fd);
    c->slot = connections_.size();
    connections_.push_back(std::move(c));
    connections_.back()->start();  // a connection that cannot be served retires itself
  }
}

const timespec* EventLoop::timeout(timespec& out) const {
  if (timers_.empty()) return nullptr;  // no deadline: wait for events
  const auto left = std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::nanoseconds>(timers_.begin()->first - Clock::now())
             .count());
  out.tv_sec = static_cast<time_t>(left / 1'000'000'000);
  out.tv_nsec = static_cast<long>(left % 1'000'000'000);
  return &out;
}

void EventLoop::fireTimers() {
  if (timers_.empty()) return;
  const auto now = Clock::now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Connection* c = timers_.begin()->second;
    timers_.erase(timers_.begin());
    c->timer.reset();
    if (!c->closed()) c->onTimer();
  }
}

void EventLoop::freeRetired() {
  for (Connection* c : retired_) {
    // Swap the last connection into its slot: the list stays dense, a free is O(1).
    const size_t slot = c->slot;
    if (slot != connections_.size() - 1) {
      connections_[slot] = std::move(connections_.back());
      connections_[slot]->slot = slot;
    }
    connections_.pop_back();
  }
  retired_.clear();
}

}  // namespace chaosd::http
