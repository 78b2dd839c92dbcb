#include <ctime>
#include <iostream>

#include "chaosd/app/cli/Cli.h"
#include "chaosd/app/cli/ClientCommands.h"
#include "chaosd/app/cli/DaemonClient.h"
#include "chaosd/base/ExitCode.h"

// chaosctl console token|tokens|revoke: the web console's login tokens, issued by the daemon
// over its UNIX socket to root or the chaosd group (docs/console.md).
namespace chaosd::cli {
namespace {

using json = nlohmann::json;

std::string localTime(int64_t epoch) {
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
  return buf;
}

int report(const std::string& what, const Result<DaemonResponse>& r, bool asJson) {
  if (!r) {
    std::cerr << "chaosctl console " << what << ": " << r.error().describe() << "\n";
    return kExitRuntimeError;
  }
  if (asJson) std::cout << r->body << (r->body.empty() || r->body.back() != '\n' ? "\n" : "");
  if (!r->ok()) {
    if (!asJson) std::cerr << "chaosctl console " << what << ": " << r->errorMessage() << "\n";
    return exitCodeForStatus(r->status);
  }
  return kExitOk;
}

}  // namespace

int consoleCommand(const std::vector<std::string>& args) {
  const std::string usageLine =
      "chaosctl console token [--read-only] [--ttl 8h]   a login token for the web console\n"
      "       chaosctl console tokens                       the tokens that are still valid\n"
      "       chaosctl console revoke ID                    end a token and its sessions";
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << "usage: " << usageLine << "\n";
    return args.empty() ? kExitInvalid : kExitOk;
  }
  const std::string sub = args[0];
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  po::options_description desc("chaosctl console options");
  CommonOptions common;
  std::string socket;
  bool readOnly = false;
  std::string ttl = "8h";
  std::string id;
  po::positional_options_description positional;
  if (sub == "token") {
    desc.add_options()("read-only", po::bool_switch(&readOnly),
                       "the session may only look (no submit, abort, pause or resume)")(
        "ttl", po::value(&ttl)->default_value(ttl), "how long the token stays valid (max 30d)");
  } else if (sub == "revoke") {
    desc.add_options()("id", po::value(&id)->required(),
                       "the token's id (chaosctl console tokens)");
    positional.add("id", 1);
  } else if (sub != "tokens") {
    std::cerr << "chaosctl console: unknown subcommand '" << sub << "'\nusage: " << usageLine
              << "\n";
    return kExitInvalid;
  }
  addSocketOption(desc, socket);
  addCommonOptions(desc, common);
  po::variables_map vm;
  int code = kExitOk;
  if (!parseArgs("chaosctl console " + sub + " [options]", desc, positional, rest, vm, code)) {
    return code;
  }
  if (!applyCommonOptions(common)) return kExitInvalid;
  DaemonClient client(socket);
  if (sub == "token") {
    json body = {{"role", readOnly ? "read" : "operate"}, {"ttl", ttl}};
    auto r = client.request("POST", "/v1/console/tokens", body.dump());
    if (int rc = report("token", r, common.json()); rc != kExitOk || common.json()) return rc;
    json t = r->json();
    // The token alone on stdout (TOKEN=$(chaosctl console token)); the rest on stderr.
    std::cout << t.value("token", "") << "\n";
    std::cerr << "console token " << t.value("id", "") << ": role " << t.value("role", "")
              << ", valid until " << localTime(t.value("expiresAt", int64_t{0}))
              << "; paste it at the console's /login (shown once; revoke with chaosctl console "
                 "revoke "
              << t.value("id", "") << ")\n";
    return kExitOk;
  }
  if (sub == "revoke") {
    auto r = client.request("DELETE", "/v1/console/tokens/" + id);
    if (int rc = report("revoke", r, common.json()); rc != kExitOk || common.json()) return rc;
    std::cout << "token " << id << " revoked; its sessions are logged out\n";
    return kExitOk;
  }
  auto r = client.request("GET", "/v1/console/tokens");
  if (int rc = report("tokens", r, common.json()); rc != kExitOk || common.json()) return rc;
  json tokens = r->json()["tokens"];
  if (tokens.empty()) {
    std::cout << "no console tokens\n";
    return kExitOk;
  }
  std::printf("%-12s  %-8s  %-16s  %s\n", "ID", "ROLE", "ISSUER", "EXPIRES");
  for (const auto& t : tokens) {
    const json& who = t["issuer"];
    std::string issuer = who.value("user", "") + "(" + std::to_string(who.value("uid", -1)) + ")";
    std::printf("%-12s  %-8s  %-16s  %s\n", t.value("id", "").c_str(), t.value("role", "").c_str(),
                issuer.c_str(), localTime(t.value("expiresAt", int64_t{0})).c_str());
  }
  return kExitOk;
}

}  // namespace chaosd::cli
