// The resource fault types (cpu.stress, memory.stress) and their arguments.
#include <charconv>
#include <string>

#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/resource/StressInjector.h"

namespace chaosd {
namespace {

// `workers`: a positive number, or "all" (one per CPU this process may use). nullopt: neither.
std::optional<int> parseWorkers(const std::string& text) {
  if (text == "all") return usableCpus();
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > 1024) {
    return std::nullopt;
  }
  return n;
}

ArgSpec cgroupArg() {
  return arg::make("cgroup", ArgType::kString,
                   "without a target: run the load inside this cgroup v2 path "
                   "(/system.slice/app.service), under its limits");
}

}  // namespace

void registerResourceFaults(FaultRegistry& registry) {
  std::shared_ptr<ProcessKernel> kernel = systemProcessKernel();

  FaultType cpu;
  cpu.name = "cpu.stress";
  cpu.summary =
      "keep CPUs busy at a set load, on the host or inside a target's cgroup (its limits apply)";
  cpu.targetKinds = {TargetKind::kProcess, TargetKind::kExec, TargetKind::kContainer};
  cpu.targetOptional = true;
  cpu.schema.args = {
      arg::required(arg::range(
          arg::make("load", ArgType::kPercent, "busy share of one CPU, per worker (1%..100%)"),
          0.01, 1)),
      arg::withDefault(arg::make("workers", ArgType::kString,
                                 "how many workers (one CPU's worth each): a number, or `all` "
                                 "for one per CPU"),
                       "1"),
      arg::range(arg::make("climb", ArgType::kDuration,
                           "ramp the load from 0 over this long (a gentler start)"),
                 1e6, 24 * 3600e9),
      cgroupArg()};
  cpu.schema.constraints.push_back([](const ArgContext& ctx) -> std::optional<ArgProblem> {
    const std::string text = ctx.args.value("workers", std::string("1"));
    auto workers = parseWorkers(text);
    if (!workers) {
      return ArgProblem{"workers", "'" + text + "' is not a number of workers (1..1024) or `all`"};
    }
    const int cpus = usableCpus();
    const double load = ctx.args.value("load", 1.0);
    if (!ctx.allowFullCpu && static_cast<double>(*workers) * load >= cpus - 1e-9) {
      const std::string asked =
          text == "all" ? "one worker per CPU" : std::to_string(*workers) + " worker(s)";
      return ArgProblem{
          "workers",
          asked + " at " + std::to_string(static_cast<int>(load * 100 + 0.5)) +
              "% would take every CPU" +
              (text == "all" ? std::string() : " of this machine (" + std::to_string(cpus) + ")") +
              " whole; leave room (fewer workers or a lower load) or "
              "set guardrails.allowFullCpu: true"};
    }
    return std::nullopt;
  });
  cpu.factory = [kernel] {
    return std::make_unique<StressInjector>(StressInjector::Kind::kCpu, kernel);
  };
  (void)registry.add(std::move(cpu));

  FaultType memory;
  memory.name = "memory.stress";
  memory.summary =
      "hold memory (touched or locked pages), never taking the machine below a reserve";
  memory.targetKinds = {TargetKind::kProcess, TargetKind::kExec, TargetKind::kContainer};
  memory.targetOptional = true;
  memory.survivesReboot = true;  // mode cache's file stays on disk
  memory.schema.args = {
      arg::range(arg::make("size", ArgType::kSize, "bytes to hold"), 4096,
                 static_cast<double>(1ULL << 50)),
      arg::range(arg::make("percent", ArgType::kPercent,
                           "share of the memory available when the fault starts"),
                 0.001, 1),
      arg::range(arg::make("reserve", ArgType::kSize,
                           "never let the machine's available memory fall below this (default: "
                           "256MiB or 5% of memory, the larger)"),
                 64 << 20, static_cast<double>(1ULL << 50)),
      arg::range(arg::make("rate", ArgType::kSize,
                           "bytes per second while growing (default: as fast as it can)"),
                 4096, static_cast<double>(1ULL << 40)),
      arg::withDefault(
          arg::oneOf("mode", {"anonymous", "locked", "cache"},
                     "anonymous: touched pages the kernel may swap; locked: mlock'ed, never "
                     "swapped; cache: the page cache of a file of chaosd's own (under `path`)"),
          "anonymous"),
      arg::make("path", ArgType::kString,
                "mode cache: the directory of the file (default /var/tmp); its filesystem "
                "must hold `size`"),
      cgroupArg()};
  memory.schema.constraints.push_back([](const ArgContext& ctx) -> std::optional<ArgProblem> {
    bool size = ctx.args.contains("size");
    bool percent = ctx.args.contains("percent");
    if (size == percent) {
      return ArgProblem{"", size ? "give size or percent, not both" : "give size or percent"};
    }
    // A machine already at its reserve: refused here, on the machine that runs it, before
    // anything (validate, plan, run, the daemon's submit).
    const uint64_t available = meminfoBytes("MemAvailable");
    const uint64_t reserve = ctx.args.contains("reserve")
                                 ? ctx.args["reserve"].get<uint64_t>()
                                 : defaultMemoryReserve(meminfoBytes("MemTotal"));
    if (available > 0 && available <= reserve) {
      return ArgProblem{ctx.args.contains("reserve") ? "reserve" : "",
                        "this machine has " + std::to_string(available >> 20) +
                            " MiB available, at or below the reserve of " +
                            std::to_string(reserve >> 20) +
                            " MiB that memory.stress never crosses: it would take nothing"};
    }
    if (ctx.args.contains("path") && ctx.args.value("mode", std::string()) != "cache") {
      return ArgProblem{"path", "path is for mode cache (the directory of its file)"};
    }
    return std::nullopt;
  });
  memory.factory = [kernel] {
    return std::make_unique<StressInjector>(StressInjector::Kind::kMemory, kernel);
  };
  (void)registry.add(std::move(memory));
}

}  // namespace chaosd
