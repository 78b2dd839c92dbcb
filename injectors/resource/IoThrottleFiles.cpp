#include "injectors/resource/IoThrottleFiles.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <vector>

#include "chaosd/base/Fd.h"

namespace chaosd {
namespace {

std::vector<std::string_view> splitOn(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(sep, pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash in paths as \ooo.
std::string unescape(std::string_view field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    auto octal = [&](size_t k) { return field[k] >= '0' && field[k] <= '7'; };
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) |
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

// One mountinfo line: root, mount point, fstype, super options.
struct MountLine {
  std::string_view device;
  std::string_view root;
  std::string_view point;
  std::string_view fstype;
  std::string_view superOptions;
};

std::optional<MountLine> parseMountLine(std::string_view line) {
  auto f = splitOn(line, ' ');
  size_t sep = 6;
  while (sep < f.size() && f[sep] != "-") ++sep;
  if (f.size() < 7 || sep + 1 >= f.size()) return std::nullopt;
  return MountLine{f[2], f[3], f[4], f[sep + 1], sep + 3 < f.size() ? f[sep + 3] : ""};
}

bool hasOption(std::string_view options, std::string_view name) {
  for (auto o : splitOn(options, ',')) {
    if (o == name) return true;
  }
  return false;
}

// The rest of the line that starts with "device " in text; nullopt when none does.
std::optional<std::string_view> restOfDeviceLine(std::string_view text, std::string_view device) {
  for (auto line : splitOn(text, '\n')) {
    if (line.size() > device.size() && line.substr(0, device.size()) == device &&
        line[device.size()] == ' ') {
      return line.substr(device.size() + 1);
    }
  }
  return std::nullopt;
}

uint64_t number(std::string_view s) {
  uint64_t v = 0;
  (void)std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// "N" of "MAJ:MIN <op> N" in a v1 io_service* file.
uint64_t v1Count(std::string_view text, std::string_view device, std::string_view op) {
  for (auto line : splitOn(text, '\n')) {
    auto f = splitOn(line, ' ');
    if (f.size() == 3 && f[0] == device && f[1] == op) return number(f[2]);
  }
  return 0;
}

}  // namespace

IoCgroupMounts ioCgroupMountsFromText(std::string_view mountinfo) {
  IoCgroupMounts m;
  for (auto line : splitOn(mountinfo, '\n')) {
    auto ml = parseMountLine(line);
    if (!ml) continue;
    // A mount of the whole hierarchy wins over a bind of a subtree.
    if (ml->fstype == "cgroup2" && (m.v2.empty() || ml->root == "/")) m.v2 = unescape(ml->point);
    if (ml->fstype == "cgroup" && hasOption(ml->superOptions, "blkio") &&
        (m.blkioV1.empty() || (ml->root == "/" && m.blkioRoot != "/"))) {
      m.blkioV1 = unescape(ml->point);
      m.blkioRoot = unescape(ml->root);
    }
  }
  return m;
}

Result<IoCgroupMounts> ioCgroupMounts(const std::string& mountinfoPath) {
  auto text = readKernelFile(mountinfoPath);
  if (!text) return std::move(text).error();
  return ioCgroupMountsFromText(*text);
}

std::string fstypeOfDevice(std::string_view mountinfo, std::string_view device) {
  for (auto line : splitOn(mountinfo, '\n')) {
    auto ml = parseMountLine(line);
    if (ml && ml->device == device) return std::string(ml->fstype);
  }
  return "";
}

Result<std::string> blkioPathFromText(std::string_view procCgroup) {
  for (auto line : splitOn(procCgroup, '\n')) {
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    if (hasOption(line.substr(first + 1, second - first - 1), "blkio")) {
      return std::string(line.substr(second + 1));
    }
  }
  return Error(ErrorCode::kNotFound, "no blkio line in /proc/PID/cgroup");
}

Result<std::string> blkioPathOfPid(pid_t pid, const std::string& procRoot) {
  const std::string file = procRoot + "/" + std::to_string(pid) + "/cgroup";
  auto text = readKernelFile(file);
  if (!text) return std::move(text).error();
  auto path = blkioPathFromText(*text);
  if (!path) return std::move(path).error().withContext(file);
  return path;
}

Result<BlockDisk> wholeDiskOf(unsigned major, unsigned minor, const std::string& sysfsRoot) {
  namespace fs = std::filesystem;
  const std::string asked = std::to_string(major) + ":" + std::to_string(minor);
  const fs::path link = fs::path(sysfsRoot) / "dev/block" / asked;
  std::error_code ec;
  fs::path dir = fs::canonical(link, ec);
  if (ec) {
    return Error(ErrorCode::kNotFound, "device " + asked + " is not a block device (" +
                                           link.string() + ": " + ec.message() + ")");
  }
  BlockDisk disk;
  disk.device = asked;
  if (fs::exists(dir / "partition")) {
    dir = dir.parent_path();
    auto dev = readKernelFile((dir / "dev").string());
    if (!dev) return std::move(dev).error().withContext("the disk of partition " + asked);
    std::string d = *dev;
    while (!d.empty() && (d.back() == '\n' || d.back() == ' ')) d.pop_back();
    if (!isDeviceNumber(d)) {
      return Error(ErrorCode::kInvalid, (dir / "dev").string() + " reads '" + d + "'");
    }
    disk.partitionOf = asked;
    disk.device = d;
  }
  if (auto uevent = readKernelFile((dir / "uevent").string())) {
    for (auto line : splitOn(*uevent, '\n')) {
      if (line.substr(0, 8) == "DEVNAME=") disk.name = "/dev/" + std::string(line.substr(8));
    }
  }
  return disk;
}

std::optional<std::string> throttleRuleOf(std::string_view file, std::string_view device) {
  auto rest = restOfDeviceLine(file, device);
  if (!rest) return std::nullopt;
  return std::string(*rest);
}

std::optional<std::string> ioMaxLineOf(std::string_view file, std::string_view device) {
  auto rest = restOfDeviceLine(file, device);
  if (!rest) return std::nullopt;
  return std::string(*rest);
}

std::string ioMaxValue(std::string_view limits, std::string_view key) {
  for (auto token : splitOn(limits, ' ')) {
    size_t eq = token.find('=');
    if (eq != std::string_view::npos && token.substr(0, eq) == key) {
      return std::string(token.substr(eq + 1));
    }
  }
  return "max";
}

IoCounters ioStatOf(std::string_view ioStat, std::string_view device) {
  IoCounters c;
  auto rest = restOfDeviceLine(ioStat, device);
  if (!rest) return c;
  auto get = [&](std::string_view key) {
    std::string v = ioMaxValue(*rest, key);
    return v == "max" ? uint64_t{0} : number(v);
  };
  c.readBytes = get("rbytes");
  c.writeBytes = get("wbytes");
  c.readOps = get("rios");
  c.writeOps = get("wios");
  return c;
}

IoCounters blkioCountersOf(std::string_view serviceBytes, std::string_view serviced,
                           std::string_view device) {
  IoCounters c;
  c.readBytes = v1Count(serviceBytes, device, "Read");
  c.writeBytes = v1Count(serviceBytes, device, "Write");
  c.readOps = v1Count(serviced, device, "Read");
  c.writeOps = v1Count(serviced, device, "Write");
  return c;
}

bool isDeviceNumber(std::string_view device) {
  size_t colon = device.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == device.size() || colon > 10 ||
      device.size() - colon - 1 > 10) {
    return false;
  }
  for (size_t i = 0; i < device.size(); ++i) {
    if (i != colon && (device[i] < '0' || device[i] > '9')) return false;
  }
  return true;
}

}  // namespace chaosd
