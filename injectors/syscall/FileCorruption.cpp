#include "injectors/syscall/FileCorruption.h"

#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <random>
#include <set>

#include "injectors/RecordFields.h"

namespace chaosd {
namespace {

const char* modeName(FileCorruption::Mode m) {
  switch (m) {
    case FileCorruption::Mode::kFlip:
      return "flip";
    case FileCorruption::Mode::kTruncate:
      return "truncate";
    case FileCorruption::Mode::kZero:
      return "zero";
  }
  return "flip";
}

// Flips bits of data[0..size) in place; returns how many.
uint64_t flipBits(unsigned char* data, uint64_t size, const FileCorruption& c) {
  const uint64_t bits = size * 8;
  if (bits == 0) return 0;
  std::mt19937_64 rng(c.seed);
  uint64_t flipped = 0;
  if (c.flips > 0) {
    // Exactly `flips` distinct positions (all of them when the file has fewer bits).
    const uint64_t want = std::min(c.flips, bits);
    std::set<uint64_t> chosen;
    std::uniform_int_distribution<uint64_t> pick(0, bits - 1);
    while (chosen.size() < want) chosen.insert(pick(rng));
    for (const uint64_t bit : chosen) data[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
    return want;
  }
  // Each bit with probability rate: the gaps between flipped bits are geometric, so the cost
  // is the number of flips, not the size.
  std::geometric_distribution<uint64_t> gap(c.rate);
  for (uint64_t bit = gap(rng); bit < bits; bit += 1 + gap(rng)) {
    data[bit / 8] ^= static_cast<unsigned char>(1u << (bit % 8));
    ++flipped;
  }
  return flipped;
}

Result<void> copyAll(int source, int target, uint64_t size) {
  off_t offset = 0;
  while (static_cast<uint64_t>(offset) < size) {
    const ssize_t n = ::sendfile(target, source, &offset,
                                 std::min<uint64_t>(size - static_cast<uint64_t>(offset), 1 << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::fromErrno("copy into the corrupted copy", errno);
    }
    if (n == 0) break;  // the file shrank meanwhile: the copy is what there was
  }
  if (::ftruncate(target, offset) != 0) return Error::fromErrno("ftruncate the copy", errno);
  return success();
}

}  // namespace

Result<FileCorruption> FileCorruption::fromJson(const nlohmann::json& j) {
  RecordFields fields(j, "file corruption");
  FileCorruption c;
  std::string mode;
  fields.required("mode", mode)
      .optional("rate", c.rate)
      .optional("flips", c.flips)
      .optional("seed", c.seed)
      .optional("keep", c.keep)
      .optional("offset", c.offset)
      .optional("length", c.length)
      .required("maxSize", c.maxSize);
  if (mode == "flip") {
    c.mode = Mode::kFlip;
    if (fields.ok() && c.flips == 0 && !(c.rate > 0 && c.rate <= 1)) {
      fields.fail("flip needs flips > 0 or a rate in (0, 1]");
    }
  } else if (mode == "truncate") {
    c.mode = Mode::kTruncate;
  } else if (mode == "zero") {
    c.mode = Mode::kZero;
  } else if (fields.ok()) {
    fields.fail("unknown mode '" + mode + "'");
  }
  CHAOSD_TRY(fields.done());
  return c;
}

nlohmann::json FileCorruption::toJson() const {
  nlohmann::json j{{"mode", modeName(mode)}, {"maxSize", maxSize}};
  switch (mode) {
    case Mode::kFlip:
      if (flips > 0) j["flips"] = flips;
      if (flips == 0) j["rate"] = rate;
      j["seed"] = seed;
      break;
    case Mode::kTruncate:
      j["keep"] = keep;
      break;
    case Mode::kZero:
      j["offset"] = offset;
      j["length"] = length;
      break;
  }
  return j;
}

std::string FileCorruption::describe() const {
  char buf[96];
  switch (mode) {
    case Mode::kFlip:
      if (flips > 0) {
        std::snprintf(buf, sizeof buf, "flip %llu bit(s)", static_cast<unsigned long long>(flips));
      } else {
        std::snprintf(buf, sizeof buf, "flip %g of the bits", rate);
      }
      return buf;
    case Mode::kTruncate:
      return "truncate at " + std::to_string(keep) + "B";
    case Mode::kZero:
      return "zero " + (length == 0 ? std::string("to the end") : std::to_string(length) + "B") +
             " from byte " + std::to_string(offset);
  }
  return "";
}

Result<CorruptedCopy> makeCorruptedCopy(int source, const std::string& name,
                                        const FileCorruption& c) {
  struct stat st {};
  if (::fstat(source, &st) != 0) return Error::fromErrno("fstat", errno);
  if (!S_ISREG(st.st_mode)) return Error(ErrorCode::kUnsupported, "not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > c.maxSize) {
    return Error(ErrorCode::kUnsupported,
                 std::to_string(size) + " bytes, above maxSize " + std::to_string(c.maxSize));
  }
  CorruptedCopy copy;
  copy.memfd = Fd(::memfd_create(("chaosd-corrupt:" + name).c_str(), MFD_CLOEXEC));
  if (!copy.memfd) return Error::fromErrno("memfd_create", errno);
  CHAOSD_TRY(copyAll(source, copy.memfd.get(), size));
  struct stat copied {};
  if (::fstat(copy.memfd.get(), &copied) != 0) return Error::fromErrno("fstat the copy", errno);
  copy.size = static_cast<uint64_t>(copied.st_size);
  switch (c.mode) {
    case FileCorruption::Mode::kTruncate:
      if (c.keep < copy.size) {
        if (::ftruncate(copy.memfd.get(), static_cast<off_t>(c.keep)) != 0) {
          return Error::fromErrno("truncate the copy", errno);
        }
        copy.changedBytes = copy.size - c.keep;
        copy.size = c.keep;
      }
      break;
    case FileCorruption::Mode::kZero: {
      if (c.offset >= copy.size) break;
      const uint64_t end = c.length == 0 ? copy.size : std::min(copy.size, c.offset + c.length);
      // FALLOC_FL_PUNCH_HOLE would do it in one call on tmpfs; plain writes work everywhere.
      const std::string zeros(64 * 1024, '\0');
      for (uint64_t at = c.offset; at < end;) {
        const ssize_t n =
            ::pwrite(copy.memfd.get(), zeros.data(), std::min<uint64_t>(zeros.size(), end - at),
                     static_cast<off_t>(at));
        if (n <= 0) return Error::fromErrno("zero the copy", errno);
        at += static_cast<uint64_t>(n);
      }
      copy.changedBytes = end - c.offset;
      break;
    }
    case FileCorruption::Mode::kFlip: {
      if (copy.size == 0) break;
      void* map =
          ::mmap(nullptr, copy.size, PROT_READ | PROT_WRITE, MAP_SHARED, copy.memfd.get(), 0);
      if (map == MAP_FAILED) return Error::fromErrno("mmap the copy", errno);
      copy.changedBits = flipBits(static_cast<unsigned char*>(map), copy.size, c);
      ::munmap(map, copy.size);
      break;
    }
  }
  return copy;
}

}  // namespace chaosd
