#include "chaosd/base/Error.h"

#include <cstring>

namespace chaosd {

std::string_view errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalid:
      return "invalid";
    case ErrorCode::kNotFound:
      return "not-found";
    case ErrorCode::kPermission:
      return "permission";
    case ErrorCode::kKernel:
      return "kernel";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kAborted:
      return "aborted";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

Error Error::fromErrno(std::string_view what, int errnum) {
  ErrorCode code = ErrorCode::kIo;
  switch (errnum) {
    case EPERM:
    case EACCES:
      code = ErrorCode::kPermission;
      break;
    case ENOENT:
    case ESRCH:
    case ENODEV:
      code = ErrorCode::kNotFound;
      break;
    case EEXIST:
    case EBUSY:
      code = ErrorCode::kConflict;
      break;
    case EOPNOTSUPP:
    case ENOSYS:
      code = ErrorCode::kUnsupported;
      break;
    case ETIMEDOUT:
      code = ErrorCode::kTimeout;
      break;
    case EINVAL:
      code = ErrorCode::kInvalid;
      break;
    default:
      break;
  }
  return Error(code, std::string(what) + ": " + std::strerror(errnum), errnum);
}

std::string Error::describe() const {
  std::string out;
  for (auto it = context_.rbegin(); it != context_.rend(); ++it) {
    out += *it;
    out += ": ";
  }
  out += message_;
  return out;
}

}  // namespace chaosd
