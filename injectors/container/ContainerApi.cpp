#include "injectors/container/ContainerApi.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <mutex>

namespace chaosd {
namespace {

constexpr size_t kMaxBody = 16u << 20;  // a list of many containers, not a stream

size_t onBody(char* data, size_t size, size_t count, void* userdata) {
  auto* body = static_cast<std::string*>(userdata);
  const size_t bytes = size * count;
  if (body->size() + bytes > kMaxBody) return 0;  // aborts with CURLE_WRITE_ERROR
  body->append(data, bytes);
  return bytes;
}

class CurlContainerApi : public ContainerApi {
 public:
  Result<ApiResponse> get(const std::string& socket, const std::string& path) override {
    struct stat st {};
    if (::stat(socket.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
      return Error(ErrorCode::kNotFound, "no API socket at " + socket);
    }
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return Error(ErrorCode::kInternal, "curl_easy_init failed");
    ApiResponse out;
    char err[CURL_ERROR_SIZE] = {};
    const std::string url = "http://localhost" + path;
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    const CURLcode rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      return Error(ErrorCode::kIo, "GET " + path + " on " + socket + ": " +
                                       (err[0] != 0 ? err : curl_easy_strerror(rc)));
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<ContainerApi> makeCurlContainerApi() {
  return std::make_unique<CurlContainerApi>();
}

}  // namespace chaosd
