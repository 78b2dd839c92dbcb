#include "chaosd/app/daemon/Daemon.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <filesystem>
#include <iostream>

#include "chaosd/app/console/Console.h"
#include "chaosd/app/daemon/Api.h"
#include "chaosd/base/ExitCode.h"
#include "chaosd/base/Log.h"
#include "chaosd/engine/Recovery.h"
#include "injectors/BuiltinFaults.h"

namespace chaosd::daemon {
namespace {

namespace po = boost::program_options;

struct Options {
  std::string socket = "/run/chaosd/chaosd.sock";
  std::string stateDir = "/var/lib/chaosd";
  std::string metricsListen;
  std::string logLevel = "info";
  std::string logFormat = "text";
  std::string logFile;
  std::string group = "chaosd";
  std::string policy = kDefaultPolicyPath;
  std::string consoleListen;
  std::vector<std::string> consoleHosts;
  size_t keepRuns = 1000;
  unsigned keepDays = 0;
  size_t keepAudit = 100000;
};

int gSignalPipe[2] = {-1, -1};

extern "C" void onSignal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  [[maybe_unused]] ssize_t n = ::write(gSignalPipe[1], &b, 1);
}

// Points stderr (where every logger writes) at the log file; again on SIGHUP, after rotation.
Result<void> openLogFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return Error::fromErrno("open log file " + path, errno);
  if (::dup2(fd, STDERR_FILENO) < 0) {
    int e = errno;
    ::close(fd);
    return Error::fromErrno("dup2 log file", e);
  }
  ::close(fd);
  return success();
}

std::optional<Options> parseOptions(int argc, char** argv, int& exitCode) {
  Options o;
  po::options_description desc("chaosd options");
  desc.add_options()("help,h", "show this help")("version", "print the version and exit")(
      "socket", po::value(&o.socket)->default_value(o.socket),
      "the API's UNIX socket (mode 0660, group chaosd when it exists)")(
      "state-dir", po::value(&o.stateDir)->default_value(o.stateDir),
      "the journal (journal.db) and the run folders (runs/ID)")(
      "metrics-listen", po::value(&o.metricsListen),
      "also serve /metrics on HOST:PORT over TCP (e.g. 127.0.0.1:9464)")(
      "group", po::value(&o.group)->default_value(o.group),
      "the group whose members may use the API besides root")(
      "policy", po::value(&o.policy)->default_value(o.policy),
      "who may inject what where (docs/security.md); reloaded on SIGHUP")(
      "keep-runs", po::value(&o.keepRuns)->default_value(o.keepRuns),
      "ended runs kept in the journal and runs/ (older ones are deleted); 0 keeps all")(
      "keep-days", po::value(&o.keepDays)->default_value(o.keepDays),
      "also delete runs and audit lines older than this many days; 0: no age limit")(
      "keep-audit", po::value(&o.keepAudit)->default_value(o.keepAudit),
      "audit lines kept in the journal; 0 keeps all")(
      "log-level", po::value(&o.logLevel)->default_value(o.logLevel),
      "trace, debug, info, warn, error, critical, off")(
      "log-format", po::value(&o.logFormat)->default_value(o.logFormat), "text or json lines")(
      "log-file", po::value(&o.logFile), "append logs here instead of stderr (SIGHUP reopens)")(
      "console-listen", po::value(&o.consoleListen),
      "serve the web console on HOST:PORT, or PORT on 127.0.0.1 (off by default; "
      "docs/console.md)")("console-host", po::value(&o.consoleHosts)->composing(),
                          "a host name the console is reached by (repeatable; IP addresses and "
                          "localhost are always accepted)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    if (vm.count("help")) {
      std::cout << "usage: chaosd [options]\n\nThe chaosd daemon: runs chaos experiments for "
                   "others, on demand (chaosctl submit) and on a schedule.\n\n"
                << desc << "\n";
      exitCode = kExitOk;
      return std::nullopt;
    }
    if (vm.count("version")) {
      std::cout << "chaosd " << CHAOSD_VERSION << "\n";
      exitCode = kExitOk;
      return std::nullopt;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "chaosd: " << e.what() << "\n";
    exitCode = kExitInvalid;
    return std::nullopt;
  }
  return o;
}

// Reverts what this process's runs still hold (a run whose engine could not revert, or was
// cut short): the last step of a clean stop.
void revertOwn(FaultJournal& journal, const FaultRegistry& registry) {
  auto faults = journal.unreverted();
  if (!faults) return;
  std::vector<FaultRecord> own;
  for (auto& f : *faults) {
    auto run = journal.run(f.runId);
    if (run && run->ownerPid == ::getpid()) own.push_back(std::move(f));
  }
  if (!own.empty()) (void)revertFaults(journal, registry, std::move(own), "daemon-stop");
}

}  // namespace

int runChaosd(int argc, char** argv) {
  int exitCode = kExitOk;
  auto opts = parseOptions(argc, argv, exitCode);
  if (!opts) return exitCode;
  if (!opts->logFile.empty()) {
    if (auto r = openLogFile(opts->logFile); !r) {
      std::cerr << "chaosd: " << r.error().describe() << "\n";
      return kExitInvalid;
    }
  }
  auto format = log::parseFormat(opts->logFormat);
  if (!format) {
    std::cerr << "chaosd: --log-format: " << format.error().message() << "\n";
    return kExitInvalid;
  }
  if (auto r = log::setup(*format, opts->logLevel); !r) {
    std::cerr << "chaosd: --log-level: " << r.error().message() << "\n";
    return kExitInvalid;
  }
  auto logger = log::get("daemon");

  std::error_code ec;
  std::filesystem::create_directories(opts->stateDir, ec);
  if (ec) {
    logger->critical("cannot create state dir path={} error=\"{}\"", opts->stateDir, ec.message());
    return kExitRuntimeError;
  }
  ::chmod(opts->stateDir.c_str(), 0700);
  auto journal = openJournal(opts->stateDir + "/journal.db");
  if (!journal) {
    logger->critical("cannot open the journal error=\"{}\"", journal.error().describe());
    return kExitRuntimeError;
  }
  FaultRegistry registry;
  registerBuiltinFaults(registry);
  Metrics metrics;

  // An earlier life's faults go before anyone can ask for new ones.
  {
    RecoveryFilter filter;
    filter.by = "daemon-start";
    auto report = recoverAll(*journal, registry, filter);
    if (!report) {
      logger->critical("recovery at start failed error=\"{}\"", report.error().describe());
      return kExitRuntimeError;
    }
    for (size_t i = 0; i < report->failed(); ++i) metrics.revertFailed();
    logger->info("recovery at start reverted={} failed={} left_to_live_owners={} runs_ended={}",
                 report->reverted(), report->failed(), report->ownerAlive.size(),
                 report->runsEnded.size());
  }

  if (::pipe2(gSignalPipe, O_CLOEXEC) != 0) {
    logger->critical("pipe2 failed error=\"{}\"", std::strerror(errno));
    return kExitRuntimeError;
  }
  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  // The policy before the socket: a caller never meets a daemon without one. A file that does
  // not parse stops the start (a typo must not open or close everything silently).
  PolicyStore policy(opts->policy);
  if (auto r = policy.reload(); !r) {
    logger->critical("cannot load the policy error=\"{}\"", r.error().describe());
    return kExitInvalid;
  }
  logger->info("policy path={} loaded={} grants={}", opts->policy, policy.current()->loaded,
               policy.current()->grants.size());

  RunPoolConfig poolConfig;
  poolConfig.policy = &policy;
  poolConfig.stateDir = opts->stateDir;
  poolConfig.logLevel = opts->logLevel;
  poolConfig.retention.keepRuns = opts->keepRuns;
  poolConfig.retention.keepAudit = opts->keepAudit;
  if (opts->keepDays > 0) poolConfig.retention.keepFor = std::chrono::hours(24) * opts->keepDays;
  logger->info("retention keep_runs={} keep_days={} keep_audit={}", opts->keepRuns, opts->keepDays,
               opts->keepAudit);
  pruneHistory(*journal, poolConfig.retention, opts->stateDir);
  RunPool runs(*journal, registry, metrics, poolConfig);
  RealClock clock;
  Scheduler scheduler(*journal, clock, metrics,
                      [&runs](const ScheduleRecord& s) -> Result<std::string> {
                        SubmitRequest req;
                        req.yaml = s.experimentYaml;
                        for (const auto& [k, v] : s.vars.items())
                          req.vars[k] = v.is_string() ? v.get<std::string>() : v.dump();
                        req.fileName = "schedule-" + s.id + ".yaml";
                        req.source = "schedule:" + s.id;
                        // Its runs keep the credentials of whoever created it.
                        req.caller = credentialsFromJson(s.creator);
                        auto result = runs.submit(req);
                        if (auto* refused = std::get_if<SubmitRefusal>(&result)) {
                          Error e = refused->error;
                          for (const auto& d : refused->diagnostics) e.withContext(d);
                          return e;
                        }
                        return std::get<Submitted>(result).runId;
                      });
  if (auto r = scheduler.load(); !r) {
    logger->critical("cannot load schedules error=\"{}\"", r.error().describe());
    return kExitRuntimeError;
  }

  ApiContext ctx;
  ctx.journal = &*journal;
  ctx.registry = &registry;
  ctx.runs = &runs;
  ctx.scheduler = &scheduler;
  ctx.metrics = &metrics;
  ctx.access = loadAccessPolicy(opts->group);
  ctx.policy = &policy;
  std::unique_ptr<console::ConsoleTokens> consoleTokens;
  if (!opts->consoleListen.empty()) {
    auto t = console::ConsoleTokens::open(opts->stateDir + "/console-tokens.json");
    if (!t) {
      logger->critical("cannot read the console tokens error=\"{}\"", t.error().describe());
      return kExitRuntimeError;
    }
    consoleTokens = std::move(*t);
    ctx.consoleTokens = consoleTokens.get();
  }
  Api api(ctx);

  // The console before the socket: a client that can reach the socket can log in already.
  std::unique_ptr<console::Console> webConsole;
  std::unique_ptr<HttpServer> consoleServer;
  if (!opts->consoleListen.empty()) {
    webConsole = std::make_unique<console::Console>(
        console::ConsoleDeps{&api, consoleTokens.get(), &runs, &metrics}, opts->consoleHosts);
    HttpServerOptions co;
    co.threadPerConnection = true;  // the live views stream
    co.maxConnections = 256;
    const std::string address = console::consoleListenAddress(opts->consoleListen);
    auto c = HttpServer::listenTcp(
        address, co, [webUi = webConsole.get()](const HttpRequest& r) { return webUi->handle(r); });
    if (!c) {
      logger->critical("cannot listen for the console address={} error=\"{}\"", address,
                       c.error().describe());
      return kExitRuntimeError;
    }
    consoleServer = std::move(*c);
    const bool loopback = address.rfind("127.", 0) == 0 || address.rfind("[::1]", 0) == 0;
    logger->info("console listener address={} port={}", address, consoleServer->port());
    if (!loopback) {
      logger->warn(
          "the console listens beyond loopback address={}: it speaks plain HTTP, so "
          "tokens and cookies cross the network in clear; prefer 127.0.0.1 and ssh -L",
          address);
    }
  }
  std::filesystem::path socketDir = std::filesystem::path(opts->socket).parent_path();
  if (!socketDir.empty() && !std::filesystem::exists(socketDir)) {
    std::filesystem::create_directories(socketDir, ec);
    ::chmod(socketDir.c_str(), 0755);
  }
  auto server = HttpServer::listenUnix(
      opts->socket, 0660, ctx.access.group ? *ctx.access.group : static_cast<gid_t>(-1), {},
      [&api](const HttpRequest& r) { return api.handle(r); });
  if (!server) {
    logger->critical("cannot serve the socket path={} error=\"{}\"", opts->socket,
                     server.error().describe());
    return kExitRuntimeError;
  }
  std::unique_ptr<HttpServer> metricsServer;
  if (!opts->metricsListen.empty()) {
    HttpServerOptions mo;
    mo.threads = 1;
    auto m = HttpServer::listenTcp(
        opts->metricsListen, mo, [&api](const HttpRequest& r) { return api.handleMetricsOnly(r); });
    if (!m) {
      logger->critical("cannot listen for metrics address={} error=\"{}\"", opts->metricsListen,
                       m.error().describe());
      return kExitRuntimeError;
    }
    metricsServer = std::move(*m);
    logger->info("metrics listener address={} port={}", opts->metricsListen, metricsServer->port());
  }
  scheduler.startThread();
  logger->info("chaosd {} serving socket={} state_dir={} group={}{} pid={}", CHAOSD_VERSION,
               opts->socket, opts->stateDir, opts->group,
               ctx.access.group ? "" : " (absent: root only)", ::getpid());

  for (;;) {
    unsigned char sig = 0;
    ssize_t n = ::read(gSignalPipe[0], &sig, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1) break;
    if (sig == SIGHUP) {
      if (!opts->logFile.empty()) {
        if (auto r = openLogFile(opts->logFile); !r) {
          logger->error("cannot reopen the log file error=\"{}\"", r.error().describe());
        }
      }
      log::reopen();
      if (auto r = policy.reload(); !r) {
        logger->error("SIGHUP: the policy did not load; the one in force stays error=\"{}\"",
                      r.error().describe());
      } else {
        logger->info("SIGHUP: policy reloaded path={} grants={}", opts->policy,
                     policy.current()->grants.size());
      }
      logger->info("SIGHUP: logs reopened");
      continue;
    }
    logger->info("{}: stopping; aborting {} run(s) and reverting their faults",
                 sig == SIGTERM ? "SIGTERM" : "SIGINT", runs.active());
    break;
  }
  scheduler.stop();
  if (webConsole) webConsole->stop();  // live views end within a second
  runs.shutdown("the daemon is stopping");
  consoleServer.reset();
  webConsole.reset();
  metricsServer.reset();
  server->reset();
  revertOwn(*journal, registry);
  logger->info("chaosd stopped");
  return kExitOk;
}

}  // namespace chaosd::daemon
