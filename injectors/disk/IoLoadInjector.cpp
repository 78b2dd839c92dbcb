#include "injectors/disk/IoLoadInjector.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <set>
#include <system_error>
#include <thread>
#include <vector>

#include "chaosd/base/Log.h"
#include "chaosd/base/Units.h"
#include "injectors/RecordFields.h"
#include "injectors/disk/DiskRecords.h"
#include "injectors/disk/OwnedFiles.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr std::string_view kIoPrefix = ".chaosd-io-";
constexpr size_t kDirectAlign = 4096;  // covers every logical block size Linux supports

// The record, when it belongs to faultId ("" for any: the audit).
Result<IoLoadUndo> recordOf(const nlohmann::json& undo, std::string_view faultId) {
  auto u = IoLoadUndo::fromJson(undo);
  if (!u) return u;
  CHAOSD_TRY(checkRecordOwner("disk.io-load undo record", u->faultId, faultId));
  return u;
}

// What the workers need of the parameters: checked at prepare, and again of the record before
// workers use it (a block size of 0 would divide by zero).
Result<void> checkLoad(const IoLoadArgs& p) {
  if (p.workers < 1 || p.blockSize == 0 || !(p.readShare >= 0 && p.readShare <= 1)) {
    return Error(ErrorCode::kInvalid, "disk.io-load: workers, blockSize or readShare out of range");
  }
  if (p.fileSize < p.blockSize) {
    return Error(ErrorCode::kInvalid, "disk.io-load: fileSize " + units::formatSize(p.fileSize) +
                                          " is smaller than blockSize " +
                                          units::formatSize(p.blockSize));
  }
  return success();
}

// A buffer aligned for O_DIRECT.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t size)
      : size_(size),
        data_(static_cast<char*>(std::aligned_alloc(
            kDirectAlign, (size + kDirectAlign - 1) / kDirectAlign * kDirectAlign))) {}
  ~AlignedBuffer() { std::free(data_); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data() { return data_; }
  size_t size() const { return size_; }

 private:
  size_t size_;
  char* data_;
};

// One worker thread and its file.
struct IoWorker {
  int index = 0;
  std::string file;
  std::unique_ptr<DiskFile> handle;
  bool direct = false;
  std::string directNote;  // why O_DIRECT was given up
  std::atomic<uint64_t> bytesRead{0};
  std::atomic<uint64_t> bytesWritten{0};
  // Written by the worker thread before it ends, read after join.
  std::string endedBy;
  std::string error;
  SteadyClock::time_point endedAt;
  std::atomic<bool> running{true};  // false once the loop has ended
  std::thread thread;
};

}  // namespace

struct IoLoadInjector::Load {
  IoLoadArgs params;
  std::chrono::nanoseconds duration{0};  // 0: until revert
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> issued{0};  // bytes claimed by operations, for the `bytes` bound
  SteadyClock::time_point startedAt;
  std::optional<SteadyClock::time_point> deadline;
  std::vector<std::unique_ptr<IoWorker>> workers;

  void stopAndJoin() {
    stop.store(true);
    for (auto& w : workers) {
      if (w->thread.joinable()) w->thread.join();
    }
  }
};

namespace {

// One read or write of the buffer at offset. A direct operation the filesystem or device
// refuses (EINVAL: an unaligned size) switches the file to buffered IO, once, and retries.
Result<void> doIo(IoWorker& w, AlignedBuffer& buf, bool read, uint64_t offset) {
  for (;;) {
    auto n = read ? w.handle->readAt(buf.data(), buf.size(), offset)
                  : w.handle->writeAt(buf.data(), buf.size(), offset);
    if (n) {
      (read ? w.bytesRead : w.bytesWritten).fetch_add(*n, std::memory_order_relaxed);
      return success();
    }
    const int err = n.error().sysErrno();
    if (err == EINTR) continue;
    if (err == EINVAL && w.direct) {
      if (auto off = w.handle->setDirect(false); !off) {
        return reworded("leaving O_DIRECT on " + w.file, off.error());
      }
      w.direct = false;
      w.directNote = std::string("direct ") + (read ? "read" : "write") + " of " +
                     std::to_string(buf.size()) + " bytes refused (EINVAL): buffered IO";
      continue;
    }
    return reworded(std::string(read ? "reading " : "writing ") + w.file, n.error());
  }
}

// The worker: one sequential pass writing the whole file (reads of never-written blocks are
// answered with zeros without touching the disk), then random blocks, a share of them reads.
void runWorker(IoLoadInjector::Load& load, IoWorker& w) {
  const IoLoadArgs& p = load.params;
  const uint64_t blocks = std::max<uint64_t>(1, p.fileSize / p.blockSize);
  AlignedBuffer buf(p.blockSize);
  std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(w.index));
  for (size_t i = 0; i < buf.size(); i += sizeof(uint64_t)) {
    uint64_t v = rng();
    std::memcpy(buf.data() + i, &v, std::min(sizeof v, buf.size() - i));
  }
  std::bernoulli_distribution isRead(p.readShare);
  std::uniform_int_distribution<uint64_t> pick(0, blocks - 1);
  uint64_t laidOut = 0;
  w.endedBy = "revert";
  while (!load.stop.load(std::memory_order_relaxed)) {
    if (load.deadline && SteadyClock::now() >= *load.deadline) {
      w.endedBy = "duration";
      break;
    }
    if (p.bytes > 0 && load.issued.fetch_add(p.blockSize) >= p.bytes) {
      w.endedBy = "bytes";
      break;
    }
    bool read = laidOut >= blocks && isRead(rng);
    uint64_t block = laidOut < blocks ? laidOut++ : pick(rng);
    if (auto r = doIo(w, buf, read, block * p.blockSize); !r) {
      w.endedBy = "error";
      w.error = r.error().describe();
      break;
    }
  }
  w.endedAt = SteadyClock::now();
  w.running.store(false);
}

// Creates a worker's file and reserves its space; decides O_DIRECT.
Result<std::unique_ptr<IoWorker>> makeWorker(DiskFs& fs, int index, const std::string& file,
                                             const IoLoadArgs& p, std::string& layout) {
  auto w = std::make_unique<IoWorker>();
  w->index = index;
  w->file = file;
  auto handle = fs.create(file, /*exclusive=*/true, /*readWrite=*/true);
  if (!handle) return reworded("creating " + file, handle.error());
  w->handle = std::move(*handle);
  if (auto allocated = w->handle->allocate(0, p.fileSize); !allocated) {
    if (allocated.error().sysErrno() != EOPNOTSUPP) {
      return reworded("allocating " + file, allocated.error());
    }
    if (auto sized = w->handle->truncate(p.fileSize); !sized) {
      return reworded("sizing " + file, sized.error());
    }
    layout = "sparse";
  }
  if (p.direct) {
    if (auto direct = w->handle->setDirect(true)) {
      w->direct = true;
    } else {
      w->directNote = std::string("the filesystem refuses O_DIRECT (") +
                      std::strerror(direct.error().sysErrno()) + "): buffered IO";
    }
  }
  return w;
}

double mbPerSecond(uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
}

// What the workers achieved, after they were joined.
nlohmann::json loadStats(const IoLoadInjector::Load& load) {
  uint64_t read = 0;
  uint64_t written = 0;
  SteadyClock::time_point end = load.startedAt;
  bool direct = !load.workers.empty();
  std::set<std::string> endedBy;
  nlohmann::json notes = nlohmann::json::array();
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& w : load.workers) {
    read += w->bytesRead.load();
    written += w->bytesWritten.load();
    end = std::max(end, w->endedAt);
    direct = direct && w->direct;
    endedBy.insert(w->endedBy);
    if (!w->directNote.empty()) notes.push_back(w->directNote);
    if (!w->error.empty()) errors.push_back(w->error);
  }
  double seconds = std::chrono::duration<double>(end - load.startedAt).count();
  return {{"bytesRead", read},
          {"bytesWritten", written},
          {"loadSeconds", seconds},
          {"readMBps", mbPerSecond(read, seconds)},
          {"writeMBps", mbPerSecond(written, seconds)},
          {"totalMBps", mbPerSecond(read + written, seconds)},
          {"directAtEnd", direct},
          {"directNotes", notes},
          {"workersEndedBy", std::vector<std::string>(endedBy.begin(), endedBy.end())},
          {"workerErrors", errors}};
}

}  // namespace

IoLoadInjector::IoLoadInjector() : IoLoadInjector(realDiskFs()) {}
IoLoadInjector::IoLoadInjector(std::shared_ptr<DiskFs> fs) : fs_(std::move(fs)) {}

IoLoadInjector::~IoLoadInjector() {
  std::lock_guard lock(mutex_);
  for (auto& [id, load] : loads_) load->stopAndJoin();
}

std::string IoLoadInjector::fileNameFor(std::string_view faultId, int worker) {
  return std::string(kIoPrefix) + std::string(faultId) + "-" + std::to_string(worker);
}

Result<PreparedFault> IoLoadInjector::prepare(const FaultRequest& request) {
  if (!isFileNameSafe(request.faultId)) {
    return Error(ErrorCode::kInvalid, "fault id '" + request.faultId + "' cannot name a file");
  }
  auto target = resolveDiskTarget(*fs_, request);
  if (!target) return std::move(target).error();
  if (target->readOnly) {
    return Error(ErrorCode::kUnsupported, "the filesystem of " + target->dir + " is read-only");
  }
  auto args = IoLoadArgs::fromJson(request.args);
  if (!args) return std::move(args).error();
  CHAOSD_TRY(checkLoad(*args));
  IoLoadUndo u;
  u.faultId = request.faultId;
  u.dir = target->dir;
  u.fs = target->fs;
  u.load = *args;
  u.load.fileSize -= u.load.fileSize % u.load.blockSize;  // whole blocks: every offset aligned
  u.duration = request.duration;
  const IoLoadArgs& p = u.load;
  const uint64_t need = p.fileSize * static_cast<uint64_t>(p.workers);
  if (need > target->space.availBytes()) {
    return Error(ErrorCode::kIo,
                 "disk.io-load needs " + units::formatSize(need) + " for " +
                     std::to_string(p.workers) + " files of " + units::formatSize(p.fileSize) +
                     " in " + target->dir + ", only " +
                     units::formatSize(target->space.availBytes()) +
                     " available (lower fileSize or workers)",
                 ENOSPC);
  }
  PreparedFault prepared;
  for (int i = 0; i < p.workers; ++i) {
    std::string file = (fs::path(target->dir) / fileNameFor(request.faultId, i)).string();
    if (fs_->lstat(file)) {
      return Error(ErrorCode::kConflict, file + " already exists: a leftover of this fault id");
    }
    prepared.resources.push_back("file:" + file);
    u.files.push_back(std::move(file));
  }
  prepared.undo = u.toJson();
  prepared.description =
      "IO load on " + target->dir + ": " + std::to_string(p.workers) + " workers, " +
      units::formatSize(p.blockSize) + " blocks, " + units::formatPercent(p.readShare) + " reads" +
      (p.direct ? ", O_DIRECT" : "") + ", files of " + units::formatSize(p.fileSize) +
      (p.bytes > 0 ? ", up to " + units::formatSize(p.bytes) : "");
  return prepared;
}

Result<AppliedFault> IoLoadInjector::apply(const std::string& faultId, const nlohmann::json& undo) {
  auto u = recordOf(undo, faultId);
  if (!u) return std::move(u).error();
  if (u->files.empty()) return Error(ErrorCode::kInvalid, "disk.io-load undo record has no files");
  CHAOSD_TRY(checkLoad(u->load));
  auto dirSt = fs_->stat(u->dir);
  if (!dirSt) return reworded("stat " + u->dir, dirSt.error());
  if (dirSt->dev != u->fs.dev) {
    return Error(ErrorCode::kConflict, u->dir + " is no longer on the filesystem prepared for");
  }
  auto load = std::make_unique<Load>();
  load->params = u->load;
  load->duration = u->duration;
  std::string layout = "fallocate";
  for (size_t i = 0; i < u->files.size(); ++i) {
    auto w = makeWorker(*fs_, static_cast<int>(i), u->files[i], u->load, layout);
    if (!w) return std::move(w).error();  // the engine's revert removes what was created
    load->workers.push_back(std::move(*w));
  }
  CHAOSD_TRY(fs_->syncDirectory(u->dir));

  AppliedFault applied;
  applied.backend = "threads";
  bool direct = true;
  nlohmann::json notes = nlohmann::json::array();
  for (const auto& w : load->workers) {
    direct = direct && w->direct;
    if (!w->directNote.empty()) notes.push_back(w->directNote);
  }
  applied.observed = {
      {"files", u->files}, {"layout", layout}, {"direct", direct}, {"directNotes", notes}};
  // The parameters overwrite "direct" with the one asked for, as they always have.
  applied.observed.update(u->load.toJson());
  applied.observed["durationNs"] = u->duration.count();

  std::lock_guard lock(mutex_);
  if (loads_.count(faultId) != 0) {
    return Error(ErrorCode::kConflict, "disk.io-load " + faultId + " is already running");
  }
  Load& l = *load;
  l.startedAt = SteadyClock::now();
  if (l.duration.count() > 0) l.deadline = l.startedAt + l.duration;
  try {
    for (auto& w : l.workers) {
      IoWorker* wp = w.get();
      wp->thread = std::thread([&l, wp] { runWorker(l, *wp); });
    }
  } catch (const std::system_error& e) {
    l.stopAndJoin();
    return Error(ErrorCode::kKernel, std::string("starting IO workers: ") + e.what());
  }
  loads_[faultId] = std::move(load);
  log::get("disk")->info("io load started fault={} dir={} workers={} direct={}", faultId, u->dir,
                         u->files.size(), direct);
  return applied;
}

Result<nlohmann::json> IoLoadInjector::revert(const std::string& faultId,
                                              const nlohmann::json& undo) {
  auto u = recordOf(undo, faultId);
  if (!u) return std::move(u).error();
  std::unique_ptr<Load> load;
  {
    std::lock_guard lock(mutex_);
    if (auto it = loads_.find(faultId); it != loads_.end()) {
      load = std::move(it->second);
      loads_.erase(it);
    }
  }
  nlohmann::json out = nlohmann::json::object();
  if (load) {
    const auto t0 = SteadyClock::now();
    load->stopAndJoin();
    out = loadStats(*load);
    out["stopSeconds"] = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    load.reset();  // closes the files, so removing them frees their space
  } else {
    out["workersInThisProcess"] = false;  // the guardian's revert, or a second one
  }
  int removed = 0;
  uint64_t freed = 0;
  std::optional<Error> firstError;
  for (size_t i = 0; i < u->files.size(); ++i) {
    auto r =
        removeOwnedFile(*fs_, u->files[i], fileNameFor(u->faultId, static_cast<int>(i)), u->fs);
    if (!r) {
      if (!firstError) firstError = std::move(r).error();
      continue;
    }
    removed += r->removed ? 1 : 0;
    freed += r->freedBytes;
  }
  if (firstError) return std::move(*firstError);
  out["filesRemoved"] = removed;
  out["freedBytes"] = freed;
  return out;
}

std::optional<IoLoadInjector::Progress> IoLoadInjector::progress(const std::string& faultId) {
  std::lock_guard lock(mutex_);
  auto it = loads_.find(faultId);
  if (it == loads_.end()) return std::nullopt;
  Progress out;
  for (const auto& w : it->second->workers) {
    out.bytesRead += w->bytesRead.load(std::memory_order_relaxed);
    out.bytesWritten += w->bytesWritten.load(std::memory_order_relaxed);
    if (w->running.load()) ++out.workersRunning;
  }
  return out;
}

Result<std::vector<std::string>> IoLoadInjector::audit(const nlohmann::json& undo) {
  auto u = recordOf(undo, "");
  if (!u) return std::move(u).error();
  std::vector<std::string> left;
  for (const auto& file : u->files) {
    if (auto line = auditOwnedFile(*fs_, file, u->fs, "IO load file"); !line.empty()) {
      left.push_back(std::move(line));
    }
  }
  {
    std::lock_guard lock(mutex_);
    if (loads_.count(u->faultId) != 0) left.push_back("IO load workers still running");
  }
  return left;
}

}  // namespace chaosd
