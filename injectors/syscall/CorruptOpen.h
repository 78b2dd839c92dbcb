#pragma once

#include <string>

#include "chaosd/base/Result.h"
#include "injectors/syscall/FileCorruption.h"

struct seccomp_notif;  // <linux/seccomp.h>

// file.corrupt's answer to an intercepted open: a corrupted copy of the file, installed in the
// process as the call's result. docs/faults/file-corrupt.md.
namespace chaosd {

// Whether the notified call is an open (open, openat) for reading only: not O_WRONLY or
// O_RDWR, and none of O_CREAT, O_TRUNC, O_DIRECT, O_PATH, O_DIRECTORY. Only those are given a
// corrupted copy; the rest run as usual.
bool isReadOnlyOpen(const seccomp_notif& req);

// Opens `path` with the calling thread's file-system uid and gid (so the copy holds nothing
// the process could not read itself), copies and damages it (makeCorruptedCopy), and answers
// the call with a read-only fd of the copy through SECCOMP_IOCTL_NOTIF_ADDFD with
// SECCOMP_ADDFD_FLAG_SEND (kernel 5.14+): the fd is installed and returned in one step, with
// O_CLOEXEC when the open asked for it. An error leaves the call unanswered: the caller lets it
// run (CONTINUE), so the process sees the file's own answer (ENOENT, EACCES, the real bytes).
Result<void> answerWithCorruptedCopy(int listener, const seccomp_notif& req,
                                     const std::string& path, const FileCorruption& corruption);

}  // namespace chaosd
