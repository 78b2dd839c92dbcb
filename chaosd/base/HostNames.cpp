#include "chaosd/base/HostNames.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <memory>

namespace chaosd {
namespace {

bool isAddressLiteral(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

Result<std::string> checkHostName(std::string_view text) {
  std::string name(text);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (isAddressLiteral(name)) return name;
  if (!name.empty() && name.back() == '.') name.pop_back();
  const std::string quoted = "'" + std::string(text) + "'";
  if (name.empty()) return Error(ErrorCode::kInvalid, "a host name cannot be empty");
  if (name.size() > 253) {
    return Error(ErrorCode::kInvalid, quoted + " is not a host name: longer than 253 characters");
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string::npos) dot = name.size();
    const std::string_view label(name.data() + start, dot - start);
    if (label.empty()) {
      return Error(ErrorCode::kInvalid, quoted + " is not a host name: an empty label ('..')");
    }
    if (label.size() > 63) {
      return Error(ErrorCode::kInvalid,
                   quoted + " is not a host name: a label longer than 63 characters");
    }
    for (char c : label) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
        return Error(ErrorCode::kInvalid, quoted + " is not a host name: '" + std::string(1, c) +
                                              "' (letters, digits, '-', '_' and dots only)");
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      return Error(ErrorCode::kInvalid,
                   quoted + " is not a host name: a label starts or ends with '-'");
    }
    start = dot + 1;
  }
  return name;
}

Result<std::vector<std::string>> resolveHostName(const std::string& name) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address, not one per socket type
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return Error(ErrorCode::kNotFound,
                 "host name '" + name + "' does not resolve: " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, ::freeaddrinfo);
  std::vector<std::string> out;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw = nullptr;
    if (a->ai_family == AF_INET) {
      raw = &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr;
    } else if (a->ai_family == AF_INET6) {
      raw = &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (::inet_ntop(a->ai_family, raw, text, sizeof text) != nullptr) out.emplace_back(text);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (out.empty()) {
    return Error(ErrorCode::kNotFound, "host name '" + name + "' has no IPv4 or IPv6 address");
  }
  return out;
}

}  // namespace chaosd
