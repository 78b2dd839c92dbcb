#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace chaosd {

// What kind of failure an Error is; callers branch on this, people read the message.
enum class ErrorCode {
  kInvalid,      // bad input: experiment, argument, unit
  kNotFound,     // a target, file, interface, process that is not there
  kPermission,   // EPERM/EACCES, not root
  kKernel,       // the kernel refused (netlink error, missing module)
  kIo,           // read/write/fs errors
  kTimeout,      // a deadline passed
  kConflict,     // already held, busy
  kUnsupported,  // this kernel or build cannot do it
  kAborted,      // stopped by a signal or a stop condition
  kInternal,     // a bug in chaosd
};

std::string_view errorCodeName(ErrorCode code);

// An error value: a code, a message and the context it travelled through
// ("while applying network.delay", "in netns app"). errno is kept when one caused it.
class Error {
 public:
  Error(ErrorCode code, std::string message, int sysErrno = 0)
      : code_(code), message_(std::move(message)), errno_(sysErrno) {}

  // An error from a failed system call: message "what: strerror(errnum)".
  static Error fromErrno(std::string_view what, int errnum);

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  int sysErrno() const { return errno_; }
  const std::vector<std::string>& context() const { return context_; }

  // Adds an outer layer of context; the newest layer is printed first.
  Error& withContext(std::string ctx) & {
    context_.push_back(std::move(ctx));
    return *this;
  }
  Error&& withContext(std::string ctx) && {
    context_.push_back(std::move(ctx));
    return std::move(*this);
  }

  // "outer: inner: message"
  std::string describe() const;

 private:
  ErrorCode code_;
  std::string message_;
  int errno_;
  std::vector<std::string> context_;
};

}  // namespace chaosd
