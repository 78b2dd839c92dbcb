#pragma once

// ScratchFs: a filesystem of a root test's own, mounted on a directory (a tmpfs, or an image
// on a loop device), unmounted on destruction even when an assertion failed.
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "chaosd/base/Fd.h"

namespace chaosd {

// A filesystem mounted on a directory for one test; unmounted (and its loop device, set to
// auto-clear, detached) on destruction.
class ScratchFs {
 public:
  explicit ScratchFs(std::filesystem::path dir) : dir_(std::move(dir)) {}
  ScratchFs(const ScratchFs&) = delete;
  ScratchFs& operator=(const ScratchFs&) = delete;
  ~ScratchFs() {
    if (!mounted_) return;
    if (::umount2(dir_.c_str(), 0) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  const std::filesystem::path& dir() const { return dir_; }

  // "" on success, else what failed.
  std::string mountTmpfs(const std::string& options) {
    std::filesystem::create_directories(dir_);
    if (::mount("chaosd-test-tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                options.c_str()) != 0) {
      return std::string("mount tmpfs: ") + std::strerror(errno);
    }
    mounted_ = true;
    return "";
  }

  // mkfs (a command line ending in the image path) on a sparse image of `bytes`, then a loop
  // device with the given logical sector size, then mount.
  std::string mountImage(const std::filesystem::path& image, uint64_t bytes,
                         const std::string& mkfs, const char* fstype, uint32_t sectorSize = 512) {
    std::filesystem::create_directories(dir_);
    Fd img(::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!img || ::ftruncate(img.get(), static_cast<off_t>(bytes)) != 0) {
      return "creating " + image.string() + ": " + std::strerror(errno);
    }
    std::string cmd = mkfs + " " + image.string() + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) return "failed: " + cmd;
    Fd ctl(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
    if (!ctl) return std::string("/dev/loop-control: ") + std::strerror(errno);
    for (int attempt = 0; attempt < 20; ++attempt) {
      int n = ::ioctl(ctl.get(), LOOP_CTL_GET_FREE);
      if (n < 0) return std::string("LOOP_CTL_GET_FREE: ") + std::strerror(errno);
      std::string dev = "/dev/loop" + std::to_string(n);
      Fd loop(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
      if (!loop) continue;
      loop_config cfg{};
      cfg.fd = static_cast<uint32_t>(img.get());
      cfg.block_size = sectorSize;
      cfg.info.lo_flags = LO_FLAGS_AUTOCLEAR;
      std::strncpy(reinterpret_cast<char*>(cfg.info.lo_file_name), image.c_str(), LO_NAME_SIZE - 1);
      if (::ioctl(loop.get(), LOOP_CONFIGURE, &cfg) != 0) {
        if (errno == EBUSY) continue;  // another test took it first
        return "LOOP_CONFIGURE " + dev + ": " + std::strerror(errno);
      }
      // Closing `loop` after a failed mount detaches the device (auto-clear).
      if (::mount(dev.c_str(), dir_.c_str(), fstype, MS_NOSUID | MS_NODEV, nullptr) != 0) {
        return "mount " + dev + ": " + std::strerror(errno);
      }
      mounted_ = true;
      return "";
    }
    return "no free loop device";
  }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

}  // namespace chaosd
