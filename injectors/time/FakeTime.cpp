#include "injectors/time/FakeTime.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "chaosd/base/Fd.h"

namespace chaosd {
namespace {

namespace fs = std::filesystem;

// The folder of the C library this process runs with: /lib/x86_64-linux-gnu on Debian. Asked
// of the dynamic linker by the library's name, not by the address of one of its functions:
// under AddressSanitizer `fopen` and friends are the sanitizer's, in the executable.
std::string libcFolder() {
  void* handle = ::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return {};
  link_map* map = nullptr;
  std::string folder;
  if (::dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr && map->l_name != nullptr &&
      map->l_name[0] == '/') {
    folder = fs::path(map->l_name).parent_path().string();
  }
  ::dlclose(handle);
  return folder;
}

Result<void> writeAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::fromErrno("write", errno);
    done += static_cast<size_t>(n);
  }
  return success();
}

}  // namespace

Result<std::string> findFakeTimeLibrary() {
  std::vector<std::string> folders;
  const std::string libc = libcFolder();
  if (!libc.empty()) {
    // Debian's libc is in /lib/<triplet> (a symlink to /usr/lib/<triplet>); libfaketime's
    // package installs under /usr/lib/<triplet>/faketime.
    if (libc.starts_with("/lib")) folders.push_back("/usr" + libc + "/faketime");
    folders.push_back(libc + "/faketime");
  }
  for (const char* f : {"/usr/lib/faketime", "/usr/lib64/faketime", "/usr/local/lib/faketime"}) {
    folders.emplace_back(f);
  }
  for (const char* name : {"libfaketimeMT.so.1", "libfaketime.so.1"}) {
    for (const auto& folder : folders) {
      const std::string path = folder + "/" + name;
      if (::access(path.c_str(), R_OK) == 0) return path;
    }
  }
  return Error(ErrorCode::kNotFound,
               "libfaketime is not installed (looked in " + folders.front() +
                   " and the usual folders): install Debian's package libfaketime");
}

Result<std::string> makeControlFile(const std::string& dir) {
  std::string path = dir + "/chaosd-faketime-XXXXXX.rc";
  Fd fd(::mkostemps(path.data(), 3, O_CLOEXEC));
  if (!fd) return Error::fromErrno("creating a control file in " + dir, errno);
  if (::fchmod(fd.get(), 0644) != 0) return Error::fromErrno("chmod " + path, errno);
  CHAOSD_TRY(writeAll(fd.get(), "+0\n"));
  return path;
}

Result<void> writeControlFile(const std::string& path, const std::string& spec) {
  if (::access(path.c_str(), F_OK) != 0) {
    return Error(ErrorCode::kNotFound, "control file " + path + " is not there");
  }
  const std::string tmp = path + ".new";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return Error::fromErrno("open " + tmp, errno);
  if (auto w = writeAll(fd.get(), spec + "\n"); !w) {
    ::unlink(tmp.c_str());
    return std::move(w).error().withContext("writing " + tmp);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error::fromErrno("rename " + tmp + " to " + path, err);
  }
  return success();
}

Result<std::string> readControlFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    if (errno == ENOENT) return Error(ErrorCode::kNotFound, "control file " + path + " is gone");
    return Error::fromErrno("open " + path, errno);
  }
  char buf[256];
  ssize_t n = 0;
  do {
    n = ::read(fd.get(), buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::fromErrno("read " + path, errno);
  return std::string(buf, static_cast<size_t>(n));
}

void FakeTimeTargets::add(FakeTimeTarget target) {
  std::lock_guard lock(mu_);
  const pid_t pid = target.pid;
  targets_[pid] = Entry{std::move(target), {}};
}

void FakeTimeTargets::remove(pid_t pid, uint64_t startTime) {
  std::lock_guard lock(mu_);
  auto it = targets_.find(pid);
  if (it != targets_.end() && it->second.target.startTime == startTime) targets_.erase(it);
}

std::optional<FakeTimeTarget> FakeTimeTargets::find(pid_t pid) const {
  std::lock_guard lock(mu_);
  auto it = targets_.find(pid);
  if (it == targets_.end()) return std::nullopt;
  return it->second.target;
}

Result<void> FakeTimeTargets::claim(pid_t pid, const std::string& faultId) {
  std::lock_guard lock(mu_);
  auto it = targets_.find(pid);
  if (it == targets_.end()) return success();  // not ours to arbitrate (another process)
  if (!it->second.holder.empty() && it->second.holder != faultId) {
    return Error(ErrorCode::kConflict, "the clock of pid " + std::to_string(pid) +
                                           " is already skewed by fault " + it->second.holder);
  }
  it->second.holder = faultId;
  return success();
}

void FakeTimeTargets::release(pid_t pid, const std::string& faultId) {
  std::lock_guard lock(mu_);
  auto it = targets_.find(pid);
  if (it != targets_.end() && it->second.holder == faultId) it->second.holder.clear();
}

}  // namespace chaosd
