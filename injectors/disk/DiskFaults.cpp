// The disk fault types and their arguments; the injectors plug in here.
#include "injectors/BuiltinFaults.h"
#include "injectors/FaultRegistry.h"
#include "injectors/disk/DiskFillInjector.h"
#include "injectors/disk/IoLoadInjector.h"

namespace chaosd {

void registerDiskFaults(FaultRegistry& registry) {
  // The filesystem both injectors touch: the kernel's (a fake one in unit tests).
  const std::shared_ptr<DiskFs> fs = realDiskFs();
  FaultType fill;
  fill.name = "disk.fill";
  fill.summary = "fill the filesystem holding the target path, to a size or a usage";
  fill.targetKinds = {TargetKind::kPath, TargetKind::kContainer};
  fill.survivesReboot = true;
  fill.schema.args = {
      arg::range(
          arg::make("size", ArgType::kSize,
                    "bytes to allocate (fewer when the filesystem runs out: a partial fill)"),
          1, static_cast<double>(1ULL << 60)),
      arg::range(arg::make("usage", ArgType::kPercent,
                           "fill until the filesystem is this full, as df counts use%"),
                 0.01, 1)};
  fill.schema.constraints.push_back([](const ArgContext& ctx) -> std::optional<ArgProblem> {
    bool size = ctx.args.contains("size");
    bool usage = ctx.args.contains("usage");
    if (size == usage) {
      return ArgProblem{"", size ? "give size or usage, not both" : "give size or usage"};
    }
    return std::nullopt;
  });
  fill.factory = [fs] { return std::make_unique<DiskFillInjector>(fs); };
  (void)registry.add(std::move(fill));

  FaultType io;
  io.name = "disk.io-load";
  io.summary = "load the disk holding the target path with reads and writes";
  io.targetKinds = {TargetKind::kPath, TargetKind::kContainer};
  io.survivesReboot = true;  // its work files stay on disk
  io.schema.args = {
      arg::withDefault(arg::range(arg::make("workers", ArgType::kInt, "worker threads"), 1, 64), 2),
      arg::withDefault(
          arg::range(
              arg::make("readShare", ArgType::kPercent,
                        "share of operations that read, once each worker has written its file"),
              0, 1),
          0.5),
      arg::withDefault(
          arg::range(arg::make("blockSize", ArgType::kSize, "bytes per operation"), 512, 64 << 20),
          1 << 20),
      arg::withDefault(
          arg::make("direct", ArgType::kBool, "O_DIRECT where the filesystem allows it"), true),
      arg::withDefault(arg::range(arg::make("fileSize", ArgType::kSize,
                                            "size of each worker's "
                                            "file"),
                                  1 << 20, static_cast<double>(1ULL << 40)),
                       256 << 20),
      arg::range(
          arg::make("bytes", ArgType::kSize, "stop after this many bytes read and written in all"),
          1, static_cast<double>(1ULL << 60))};
  io.factory = [fs] { return std::make_unique<IoLoadInjector>(fs); };
  (void)registry.add(std::move(io));
}

}  // namespace chaosd
