#pragma once

// The web console from a test: plain HTTP over TCP with libcurl (headers kept, no cookie
// jar: the test passes Cookie, Origin and X-CSRF-Token itself, so it can leave each out), and
// a login with a token the daemon issues over its UNIX socket.
#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/DaemonProcess.h"

namespace chaosd::testing {

struct ConsoleReply {
  long status = 0;                             // 0: no answer (the error is in body)
  std::map<std::string, std::string> headers;  // names lower-case; a repeated one: the last
  std::vector<std::string> setCookies;
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  bool has(const std::string& lowerName) const { return headers.count(lowerName) != 0; }
  std::string header(const std::string& lowerName) const {
    auto it = headers.find(lowerName);
    return it == headers.end() ? "" : it->second;
  }
};

class ConsoleHttp {
 public:
  explicit ConsoleHttp(uint16_t port) : base_("http://127.0.0.1:" + std::to_string(port)) {}

  const std::string& base() const { return base_; }
  // The Origin of the console's own pages.
  std::string origin() const { return base_; }

  ConsoleReply request(const std::string& method, const std::string& path,
                       const std::vector<std::string>& headers = {},
                       const std::string& body = "") const {
    ConsoleReply out;
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return out;
    const std::string url = base_ + path;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (method == "POST" || method == "DELETE" || !body.empty()) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    }
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &ConsoleHttp::onBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &ConsoleHttp::onHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &out);
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK) {
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out.status);
    } else {
      out.body = curl_easy_strerror(rc);
    }
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    return out;
  }

 private:
  static size_t onBody(char* data, size_t size, size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
  }
  static size_t onHeader(char* data, size_t size, size_t n, void* user) {
    auto* out = static_cast<ConsoleReply*>(user);
    std::string line(data, size * n);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
      if (name == "set-cookie") out->setCookies.push_back(value);
      out->headers[name] = value;
    }
    return size * n;
  }

  std::string base_;
};

// A session of the console: the cookie header and the CSRF token.
struct ConsoleLogin {
  std::string cookie;  // "Cookie: chaosd_session=..."
  std::string csrf;
  std::string role;
};

// Asks the daemon (over its socket, as root) for a token; "" when it refused.
inline std::string issueConsoleToken(const DaemonProcess& d, bool readOnly) {
  auto r = d.client().request("POST", "/v1/console/tokens",
                              nlohmann::json{{"role", readOnly ? "read" : "operate"}}.dump());
  if (!r.ok() || r->status != 201) return "";
  return r->json().value("token", "");
}

// Logs in with the token as the login page does; cookie empty when refused.
inline ConsoleLogin consoleLogin(const ConsoleHttp& http, const std::string& token) {
  ConsoleLogin out;
  auto r =
      http.request("POST", "/login", {"Content-Type: application/json", "Origin: " + http.origin()},
                   nlohmann::json{{"token", token}}.dump());
  if (r.status != 200 || r.setCookies.empty()) return out;
  const std::string& c = r.setCookies.front();
  out.cookie = "Cookie: " + c.substr(0, c.find(';'));
  auto session = http.request("GET", "/api/session", {out.cookie});
  out.csrf = session.json().value("csrf", "");
  out.role = session.json().value("role", "");
  return out;
}

}  // namespace chaosd::testing
