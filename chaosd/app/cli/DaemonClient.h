#pragma once

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "chaosd/base/Result.h"

// chaosctl's side of the daemon's API: HTTP/1.1 over the UNIX socket with libcurl
// (CURLOPT_UNIX_SOCKET_PATH).
namespace chaosd::cli {

inline constexpr const char* kDefaultSocket = "/run/chaosd/chaosd.sock";

struct DaemonResponse {
  long status = 0;
  std::string contentType;
  std::string body;
  // The body as JSON (discarded when it is not JSON).
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  bool ok() const { return status >= 200 && status < 300; }
  // The API's error message ("error.message"), or the status line when there is none.
  std::string errorMessage() const;
};

class DaemonClient {
 public:
  explicit DaemonClient(std::string socketPath) : socket_(std::move(socketPath)) {}

  // kIo when the daemon cannot be reached; an HTTP error status is a response, not an error.
  Result<DaemonResponse> request(const std::string& method, const std::string& path,
                                 const std::string& body = "",
                                 const std::string& contentType = "application/json") const;
  const std::string& socket() const { return socket_; }

 private:
  std::string socket_;
};

// --socket (default $CHAOSD_SOCKET, else /run/chaosd/chaosd.sock).
void addSocketOption(boost::program_options::options_description& desc, std::string& socket);

// The exit code (DESIGN.md 5) for an API error status: 400 and 404 are bad input (2), the
// rest (403, 409, 5xx) runtime errors (5).
int exitCodeForStatus(long status);

}  // namespace chaosd::cli
