#include "chaosd/app/daemon/TimeZone.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <regex>

namespace chaosd::daemon {
namespace {

int64_t be(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  if (bytes == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
  return static_cast<int64_t>(v);
}

struct Header {
  int64_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

bool readHeader(const std::string& data, size_t at, Header& h) {
  if (data.size() < at + 44 || data.compare(at, 4, "TZif") != 0) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at + 20);
  h = {be(p, 4), be(p + 4, 4), be(p + 8, 4), be(p + 12, 4), be(p + 16, 4), be(p + 20, 4)};
  return h.timecnt >= 0 && h.typecnt > 0 && h.typecnt <= 256 && h.timecnt < 100000;
}

size_t blockSize(const Header& h, int timeBytes) {
  return static_cast<size_t>(h.timecnt * timeBytes + h.timecnt + h.typecnt * 6 + h.charcnt +
                             h.leapcnt * (timeBytes + 4) + h.isstdcnt + h.isutcnt);
}

}  // namespace

LocalTime civilFromUnix(int64_t s) {
  // Howard Hinnant's days_from_civil inverse.
  int64_t days = s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
  int64_t rem = s - days * 86400;
  LocalTime t;
  t.hour = static_cast<int>(rem / 3600);
  t.minute = static_cast<int>(rem % 3600 / 60);
  t.second = static_cast<int>(rem % 60);
  t.weekday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  t.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  t.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  t.year = static_cast<int>(y + (t.month <= 2 ? 1 : 0));
  return t;
}

TimeZone TimeZone::utc() { return TimeZone(); }

Result<TimeZone> TimeZone::load(const std::string& name, const std::string& zoneinfoDir) {
  if (name.empty() || name == "UTC" || name == "Etc/UTC") return utc();
  static const std::regex kForm(R"([A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*)");
  if (!std::regex_match(name, kForm) || name.find("..") != std::string::npos) {
    return Error(ErrorCode::kInvalid, "'" + name + "' is not a time zone name");
  }
  std::ifstream in(zoneinfoDir + "/" + name, std::ios::binary);
  if (!in) return Error(ErrorCode::kNotFound, "unknown time zone '" + name + "'");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Header h{};
  if (!readHeader(data, 0, h)) {
    return Error(ErrorCode::kInvalid, "'" + name + "' is not a TZif file");
  }
  size_t at = 44;
  int timeBytes = 4;
  if (data[4] >= '2') {  // skip the 32-bit block; the 64-bit one follows
    at += blockSize(h, 4);
    if (!readHeader(data, at, h)) {
      return Error(ErrorCode::kInvalid, "'" + name + "' has a bad TZif v2 header");
    }
    at += 44;
    timeBytes = 8;
  }
  if (data.size() < at + blockSize(h, timeBytes)) {
    return Error(ErrorCode::kInvalid, "'" + name + "' is truncated");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
  std::vector<int64_t> times(static_cast<size_t>(h.timecnt));
  for (auto& t : times) {
    t = be(p, timeBytes);
    p += timeBytes;
  }
  std::vector<int> typeIdx(static_cast<size_t>(h.timecnt));
  for (auto& i : typeIdx) i = *p++;
  std::vector<int> typeOffset(static_cast<size_t>(h.typecnt));
  std::vector<bool> typeDst(static_cast<size_t>(h.typecnt));
  for (size_t i = 0; i < typeOffset.size(); ++i) {
    typeOffset[i] = static_cast<int>(be(p, 4));
    typeDst[i] = p[4] != 0;
    p += 6;
  }
  TimeZone tz;
  tz.name_ = name;
  // Before the first transition: the first non-DST type (RFC 8536 3.2), else type 0.
  tz.initialOffset_ = typeOffset[0];
  for (size_t i = 0; i < typeOffset.size(); ++i) {
    if (!typeDst[i]) {
      tz.initialOffset_ = typeOffset[i];
      break;
    }
  }
  for (size_t i = 0; i < times.size(); ++i) {
    if (typeIdx[i] >= h.typecnt) return Error(ErrorCode::kInvalid, "'" + name + "' is corrupt");
    tz.transitions_.push_back(times[i]);
    tz.offsets_.push_back(typeOffset[static_cast<size_t>(typeIdx[i])]);
  }
  return tz;
}

int TimeZone::offsetAt(int64_t unixSeconds) const {
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unixSeconds);
  if (it == transitions_.begin()) return initialOffset_;
  return offsets_[static_cast<size_t>(it - transitions_.begin() - 1)];
}

LocalTime TimeZone::toLocal(int64_t unixSeconds) const {
  return civilFromUnix(unixSeconds + offsetAt(unixSeconds));
}

}  // namespace chaosd::daemon
