#pragma once

#include <time.h>

#include <array>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "chaosd/base/Fd.h"
#include "injectors/http/HttpConnection.h"

// One thread of http.fault's proxy: an epoll loop (edge-triggered) over the connections it
// accepted, with their timers (header timeouts, delays, lingers) kept in the loop rather than in
// sleeping threads. The proxy runs one loop per CPU (HttpProxy.cpp); they share the listener
// (EPOLLEXCLUSIVE: one loop woken per new connection) and the stop event.
namespace chaosd::http {

class EventLoop {
 public:
  // `listener` and `stopEvent` belong to the proxy and outlive the loop.
  EventLoop(std::shared_ptr<ProxyShared> shared, int listener, int stopEvent);
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();

  // Serves until the stop event fires, then closes every connection. On the calling thread,
  // which must be in the proxy's namespace (upstream sockets are made there).
  void run();

  // For connections, on the loop's thread.
  ProxyShared& shared() { return *shared_; }
  // Watches both directions of fd, edge-triggered, reporting to c (upstream: which socket).
  bool watch(int fd, Connection& c, bool upstream);
  // Stops watching fd; called before it is closed. A close alone does not remove it from the
  // epoll set while another descriptor shares its file (a fork elsewhere in the process between
  // fork and exec), and its events would then name a connection already freed.
  void unwatch(int fd);
  // One timer per connection: arming again moves it.
  void arm(Connection& c, Clock::time_point at);
  void disarm(Connection& c);
  // Called by a connection that closed itself: freed once the current batch of events is done.
  void retire(Connection& c);
  // A buffer for one read that is handled before the next (the loop's, not the connection's).
  std::array<char, 65536>& scratch() { return scratch_; }
  double draw() { return uniform_(rng_); }

 private:
  void acceptSome();
  void closeAll();
  // epoll_pwait2's timeout: until the next timer (nanoseconds: a delay is not rounded to a ms).
  const timespec* timeout(timespec& out) const;
  void fireTimers();
  void freeRetired();

  std::shared_ptr<ProxyShared> shared_;
  int listener_, stopEvent_;
  Fd epoll_;
  std::vector<std::unique_ptr<Connection>> connections_;  // a connection's index is its slot
  std::vector<Connection*> retired_;
  std::multimap<Clock::time_point, Connection*> timers_;
  std::array<char, 65536> scratch_{};
  std::mt19937_64 rng_{std::random_device{}()};
  std::uniform_real_distribution<double> uniform_{0.0, 1.0};
};

}  // namespace chaosd::http
