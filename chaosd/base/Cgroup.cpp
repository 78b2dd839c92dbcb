#include "chaosd/base/Cgroup.h"

#include <cerrno>
#include <fstream>
#include <sstream>
#include <vector>

namespace chaosd {
namespace {

std::vector<std::string_view> splitSpaces(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < line.size()) {
    size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    if (end > pos) fields.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return fields;
}

bool isOctal(char c) { return c >= '0' && c <= '7'; }

// mountinfo writes space, tab, newline and backslash in paths as \ooo (proc_pid_mountinfo
// uses mangle_path with " \t\n\\"); everything else is verbatim.
std::string unescapeMountPath(std::string_view field) {
  std::string out;
  out.reserve(field.size());
  for (size_t i = 0; i < field.size(); ++i) {
    if (field[i] == '\\' && i + 3 < field.size() && isOctal(field[i + 1]) &&
        isOctal(field[i + 2]) && isOctal(field[i + 3])) {
      out += static_cast<char>(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) |
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

}  // namespace

Result<std::string> cgroup2MountFromText(std::string_view mountinfo) {
  // A cgroup2 mount of the whole hierarchy wins over a bind mount of a subtree.
  std::string subtreeMount;
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t end = mountinfo.find('\n', pos);
    if (end == std::string_view::npos) end = mountinfo.size();
    auto fields = splitSpaces(mountinfo.substr(pos, end - pos));
    pos = end + 1;
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    size_t sep = 6;
    while (sep < fields.size() && fields[sep] != "-") ++sep;
    if (fields.size() < 7 || sep + 1 >= fields.size() || fields[sep + 1] != "cgroup2") continue;
    if (fields[3] == "/") return unescapeMountPath(fields[4]);
    if (subtreeMount.empty()) subtreeMount = unescapeMountPath(fields[4]);
  }
  if (!subtreeMount.empty()) return subtreeMount;
  return Error(ErrorCode::kNotFound, "no cgroup2 filesystem is mounted (cgroup v2 is needed)");
}

Result<std::string> cgroup2Mount(std::string mountinfoPath) {
  std::ifstream in(mountinfoPath);
  if (!in) return Error::fromErrno("reading " + mountinfoPath, errno);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Error::fromErrno("reading " + mountinfoPath, errno);
  return cgroup2MountFromText(text.str());
}

Result<std::string> cgroup2Dir(std::string_view cgroupPath, std::string mountinfoPath) {
  if (cgroupPath.empty() || cgroupPath.front() != '/') {
    return Error(ErrorCode::kInvalid,
                 "cgroup path must start with '/': '" + std::string(cgroupPath) + "'");
  }
  for (size_t pos = 0; pos < cgroupPath.size();) {
    size_t end = cgroupPath.find('/', pos);
    if (end == std::string_view::npos) end = cgroupPath.size();
    if (cgroupPath.substr(pos, end - pos) == "..") {
      return Error(ErrorCode::kInvalid,
                   "cgroup path may not contain '..': '" + std::string(cgroupPath) + "'");
    }
    pos = end + 1;
  }
  auto mount = cgroup2Mount(std::move(mountinfoPath));
  if (!mount) return std::move(mount).error();
  std::string dir = *mount;
  while (!dir.empty() && dir.back() == '/') dir.pop_back();
  dir += cgroupPath;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

}  // namespace chaosd
