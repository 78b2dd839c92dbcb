// The io.throttle fault type and its arguments (docs/faults/io-throttle.md).
#include <memory>

#include "chaosd/base/ProcessKernel.h"
#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/resource/IoThrottleInjector.h"

namespace chaosd {

void registerIoThrottleFault(FaultRegistry& registry) {
  std::shared_ptr<ProcessKernel> kernel = systemProcessKernel();
  constexpr double kMaxBps = static_cast<double>(1ULL << 50);
  constexpr double kMaxIops = 1e9;

  FaultType type;
  type.name = "io.throttle";
  type.summary =
      "limit a target's read/write bytes per second and IOPS on the disk that holds a path "
      "(cgroup io.max, or blkio.throttle on cgroup v1)";
  type.targetKinds = {TargetKind::kProcess, TargetKind::kExec, TargetKind::kContainer};
  type.schema.args = {
      arg::required(arg::make("path", ArgType::kString,
                              "a file or directory (the disk that holds its filesystem is "
                              "throttled; a partition: its whole disk), or a block device "
                              "node")),
      arg::range(arg::make("readBps", ArgType::kSize, "bytes per second the target may read"), 1,
                 kMaxBps),
      arg::range(arg::make("writeBps", ArgType::kSize, "bytes per second the target may write"), 1,
                 kMaxBps),
      arg::range(arg::make("readIops", ArgType::kInt, "read operations per second (>= 1)"), 1,
                 kMaxIops),
      arg::range(arg::make("writeIops", ArgType::kInt, "write operations per second (>= 1)"), 1,
                 kMaxIops)};
  type.schema.constraints.push_back([](const ArgContext& ctx) -> std::optional<ArgProblem> {
    for (const char* key : {"readBps", "writeBps", "readIops", "writeIops"}) {
      if (ctx.args.contains(key)) return std::nullopt;
    }
    return ArgProblem{"", "give at least one limit: readBps, writeBps, readIops or writeIops"};
  });
  type.factory = [kernel] { return std::make_unique<IoThrottleInjector>(kernel); };
  (void)registry.add(std::move(type));
}

}  // namespace chaosd
