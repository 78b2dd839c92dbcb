#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>

#include "chaosd/base/Result.h"
#include "injectors/network/NetemSupport.h"
#include "injectors/network/QdiscArgs.h"

// The qdisc a fault hangs under its class: tbf (network.bandwidth) or netem (the others), with
// its parameters in the units libnl takes. Part of the undo record (its "leaf").
namespace chaosd {

struct TbfLeaf {
  uint64_t rate = 0;   // bytes/s
  uint64_t burst = 0;  // bytes
  // One of the two bounds of the queue: bytes, or the longest wait in microseconds.
  std::optional<uint64_t> limit;
  std::optional<int64_t> latencyUs;
  bool operator==(const TbfLeaf&) const = default;
};

struct NetemLeaf {
  int64_t limit = 1000;  // packets
  std::optional<int64_t> delayUs;
  std::optional<int64_t> jitterUs;
  std::optional<double> correlation;  // fractions 0..1
  std::optional<double> loss;
  std::optional<double> lossCorrelation;
  std::optional<double> duplicate;
  std::optional<double> corrupt;
  std::optional<double> reorder;
  std::optional<int64_t> gap;
  std::optional<uint64_t> rateBytes;            // bytes/s
  std::optional<std::string> distributionFile;  // iproute2's table, for a non-uniform jitter
  bool operator==(const NetemLeaf&) const = default;
};

struct QdiscLeaf {
  std::variant<TbfLeaf, NetemLeaf> shape;

  bool isNetem() const { return std::holds_alternative<NetemLeaf>(shape); }
  std::string kind() const { return isNetem() ? "netem" : "tbf"; }
  bool operator==(const QdiscLeaf&) const = default;

  // The undo record's "leaf": {"kind": "tbf", "rate", "burst", "limit" | "latencyUs"} or
  // {"kind": "netem", "limit", and the optional fields under their names}. kInvalid (never a
  // throw) on another kind, a missing or mistyped field; QdiscUndo::fromJson reads it.
  static Result<QdiscLeaf> fromJson(const nlohmann::json& leaf);
  nlohmann::json toJson() const;
};

// Whether the kernel can add netem (NetemSupport.h's kernelHasNetem, TcKernel::hasNetem).
using NetemProbe = std::function<Result<bool>()>;

// The leaf `faultType` gets from its args: tbf for network.bandwidth (kUnsupported above
// 2^31-1 bytes/s), else netem (kUnsupported when hasNetem says no, kNotFound without the
// distribution's table). Reads the machine (netem support, the tables), changes nothing.
Result<QdiscLeaf> leafForFault(const std::string& faultType, const QdiscArgs& args,
                               const NetemProbe& hasNetem = kernelHasNetem);

// Why a netem leaf cannot be added on this kernel.
std::string missingNetem();

}  // namespace chaosd
