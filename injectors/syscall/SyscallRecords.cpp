#include "injectors/syscall/SyscallRecords.h"

#include "injectors/RecordFields.h"

namespace chaosd {

Result<SyscallArgs> SyscallArgs::fromJson(const nlohmann::json& args) {
  RecordFields fields(args, "syscall fault args");
  SyscallArgs a;
  fields.optional("syscalls", a.syscalls)
      .optional("probability", a.probability)
      .optional("errno", a.errnoName)
      .optional("delay", a.delay)
      .optional("path", a.path)
      .optional("first", a.first)
      .optional("after", a.after);
  CHAOSD_TRY(fields.done());
  return a;
}

Result<FileCorruptArgs> FileCorruptArgs::fromJson(const nlohmann::json& args) {
  RecordFields fields(args, "file.corrupt args");
  FileCorruptArgs a;
  fields.required("path", a.path)
      .required("mode", a.mode)
      .optional("rate", a.rate)
      .optional("flips", a.flips)
      .optional("seed", a.seed)
      .optional("size", a.size)
      .optional("offset", a.offset)
      .optional("length", a.length)
      .optional("maxSize", a.maxSize)
      .optional("probability", a.probability)
      .optional("first", a.first)
      .optional("after", a.after);
  CHAOSD_TRY(fields.done());
  return a;
}

nlohmann::json SyscallArgs::toJson() const {
  nlohmann::json j{{"syscalls", syscalls}, {"probability", probability}};
  if (errnoName) j["errno"] = *errnoName;
  if (delay) j["delay"] = delay->count();
  if (path) j["path"] = *path;
  if (first) j["first"] = *first;
  if (after) j["after"] = *after;
  return j;
}

// faultId, pid and numbers are required, as they always were; the other keys keep the
// defaults they always had. A record holds either an errno or a delay.
Result<SyscallUndo> SyscallUndo::fromJson(const nlohmann::json& undo) {
  RecordFields fields(undo, "syscall undo record");
  SyscallUndo u;
  fields.required("faultId", u.faultId)
      .required("pid", u.pid)
      .required("numbers", u.numbers)
      .optional("startTime", u.startTime)
      .optional("syscalls", u.syscalls)
      .optional("probability", u.probability)
      .optional("path", u.path)
      .optional("first", u.first)
      .optional("after", u.after)
      .optional("seed", u.seed);
  const bool isError = fields.has("errno") || fields.has("errnoValue");
  const bool isCorrupt = fields.has("corrupt");
  if (static_cast<int>(isError) + static_cast<int>(fields.has("delayNs")) +
          static_cast<int>(isCorrupt) >
      1) {
    fields.fail("holds more than one of an errno, a delay and a corruption");
  }
  if (isCorrupt) {
    if (fields.ok()) {
      auto corruption = FileCorruption::fromJson(undo.at("corrupt"));
      if (corruption) {
        u.action = *corruption;
      } else {
        fields.fail(corruption.error().message());
      }
    }
  } else if (isError) {
    SyscallErrno e;
    fields.required("errno", e.name).required("errnoValue", e.value);
    u.action = std::move(e);
  } else {
    SyscallDelay d;
    fields.required("delayNs", d.delay);
    u.action = d;
  }
  if (fields.ok() && u.pid <= 0) fields.fail("pid " + std::to_string(u.pid) + " names no process");
  CHAOSD_TRY(fields.done());
  return u;
}

nlohmann::json SyscallUndo::toJson() const {
  nlohmann::json j{{"faultId", faultId},   {"pid", pid},         {"startTime", startTime},
                   {"syscalls", syscalls}, {"numbers", numbers}, {"probability", probability},
                   {"seed", seed}};
  if (const auto* e = std::get_if<SyscallErrno>(&action)) {
    j["errno"] = e->name;
    j["errnoValue"] = e->value;
  } else if (const auto* c = std::get_if<FileCorruption>(&action)) {
    j["corrupt"] = c->toJson();
  } else {
    j["delayNs"] = std::get<SyscallDelay>(action).delay.count();
  }
  if (path) j["path"] = *path;
  if (first) j["first"] = *first;
  if (after) j["after"] = *after;
  return j;
}

SyscallRule SyscallUndo::rule() const {
  SyscallRule r;
  r.faultId = faultId;
  r.syscalls = std::set<int>(numbers.begin(), numbers.end());
  if (const auto* e = std::get_if<SyscallErrno>(&action)) {
    r.errnoValue = e->value;
  } else if (const auto* c = std::get_if<FileCorruption>(&action)) {
    r.corrupt = *c;
  } else {
    r.delay = std::get<SyscallDelay>(action).delay;
  }
  r.probability = probability;
  r.pathGlob = path.value_or("");
  r.first = first.value_or(0);
  r.after = after.value_or(0);
  r.seed = seed;
  return r;
}

}  // namespace chaosd
