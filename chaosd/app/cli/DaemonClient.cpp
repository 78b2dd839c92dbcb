#include "chaosd/app/cli/DaemonClient.h"

#include <curl/curl.h>

#include <cstdlib>
#include <memory>

#include "chaosd/base/ExitCode.h"

namespace chaosd::cli {
namespace {

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

std::string DaemonResponse::errorMessage() const {
  auto j = json();
  if (j.is_object() && j.contains("error") && j["error"].is_object() &&
      j["error"].contains("message")) {
    return j["error"]["message"].get<std::string>();
  }
  return "HTTP " + std::to_string(status) + (body.empty() ? "" : ": " + body);
}

Result<DaemonResponse> DaemonClient::request(const std::string& method, const std::string& path,
                                             const std::string& body,
                                             const std::string& contentType) const {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return Error(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* c = curl.get();
  DaemonResponse out;
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_.c_str());
  std::string url = "http://chaosd" + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &out.body);
  if (method == "POST" || method == "PUT" || !body.empty()) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    std::string ct = "Content-Type: " + contentType;
    headers.reset(curl_slist_append(nullptr, ct.c_str()));
    // No "Expect: 100-continue" round trip: the daemon reads whole bodies anyway.
    headers.reset(curl_slist_append(headers.release(), "Expect:"));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  }
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return Error(ErrorCode::kIo,
                 "cannot reach chaosd at " + socket_ + ": " + curl_easy_strerror(rc));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.status);
  char* type = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  if (type != nullptr) out.contentType = type;
  return out;
}

void addSocketOption(boost::program_options::options_description& desc, std::string& socket) {
  const char* env = std::getenv("CHAOSD_SOCKET");
  desc.add_options()(
      "socket",
      boost::program_options::value(&socket)->default_value(
          env != nullptr && *env != '\0' ? env : kDefaultSocket),
      "the daemon's UNIX socket (default $CHAOSD_SOCKET or /run/chaosd/chaosd.sock)");
}

int exitCodeForStatus(long status) {
  if (status >= 200 && status < 300) return kExitOk;
  if (status == 400 || status == 404 || status == 405 || status == 413 || status == 415) {
    return kExitInvalid;
  }
  return kExitRuntimeError;
}

}  // namespace chaosd::cli
