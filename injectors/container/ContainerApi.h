#pragma once

#include <memory>
#include <string>

#include "chaosd/base/Result.h"

// The runtimes' REST APIs over their UNIX sockets (Docker's, and Podman's which serves the same
// routes plus its own libpod ones): GET only, JSON answers. An interface so that the finder's
// unit tests answer from fixtures.
namespace chaosd {

struct ApiResponse {
  long status = 0;  // the HTTP status
  std::string body;
};

class ContainerApi {
 public:
  virtual ~ContainerApi() = default;
  // GET `path` (with its query) from the server on the UNIX socket `socket`. An error when the
  // socket does not answer (kNotFound when it does not exist); any HTTP status is a response.
  virtual Result<ApiResponse> get(const std::string& socket, const std::string& path) = 0;
};

// libcurl over the UNIX socket, 5 s at most per request.
std::unique_ptr<ContainerApi> makeCurlContainerApi();

}  // namespace chaosd
