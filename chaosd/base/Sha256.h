#pragma once

#include <string>
#include <string_view>

#include "chaosd/base/Result.h"

// SHA-256 (FIPS 180-4), for fingerprints of files a record refers to (a calibration names the
// experiment file it measured): not for anything secret. No crypto library is linked for this.
namespace chaosd {

// The lowercase hex digest of `data`.
std::string sha256Hex(std::string_view data);

// The lowercase hex digest of the file's bytes; kIo when it cannot be read.
Result<std::string> sha256File(const std::string& path);

}  // namespace chaosd
