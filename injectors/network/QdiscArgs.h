#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chaosd/base/Result.h"
#include "chaosd/base/Units.h"

namespace chaosd {

// Which packets a qdisc fault shapes: those the interface sends, or those it receives (through
// an ifb device of the fault's own).
enum class QdiscDirection { kEgress, kIngress };
std::string_view qdiscDirectionName(QdiscDirection direction);       // "egress", "ingress"
Result<QdiscDirection> qdiscDirectionFrom(const std::string& name);  // kInvalid for another

enum class QdiscProtocol { kAll, kTcp, kUdp, kIcmp };

// One side of the filter args (`to`: destination, `from`: source). Empty lists match anything.
struct QdiscEndpoint {
  std::vector<units::Cidr> cidrs;
  std::vector<units::PortRange> ports;
  bool empty() const { return cidrs.empty() && ports.empty(); }
  bool operator==(const QdiscEndpoint&) const = default;
};

// The filter args: the packets the fault applies to (QdiscFilters.h turns them into u32 keys).
struct QdiscMatch {
  QdiscEndpoint to;
  QdiscEndpoint from;
  QdiscProtocol protocol = QdiscProtocol::kAll;
  bool operator==(const QdiscMatch&) const = default;
};

// The args of a qdisc fault (network.delay/loss/duplicate/corrupt/reorder/rate and
// network.bandwidth) as NetworkFaults.cpp's schemas validate and normalise them, parsed once.
// Optional fields are the args the fault left out; which of them apply, and what `rate` and
// `limit` mean, depends on the type (leafForFault in QdiscLeaf.h). Units are the normalised ones.
struct QdiscArgs {
  std::optional<uint64_t> rate;       // bit/s: tbf's rate (bandwidth), netem's own limit (others)
  std::optional<uint64_t> burst;      // bytes (bandwidth)
  std::optional<uint64_t> limit;      // bytes waiting (bandwidth), queue length in packets (netem)
  std::optional<int64_t> latency;     // ns (bandwidth)
  std::optional<int64_t> delay;       // ns
  std::optional<int64_t> jitter;      // ns
  std::optional<double> correlation;  // fractions 0..1
  std::optional<double> loss;
  std::optional<double> lossCorrelation;
  std::optional<double> duplicate;
  std::optional<double> corrupt;
  std::optional<double> reorder;
  std::optional<int64_t> gap;
  std::optional<std::string> distribution;  // "normal", "pareto", ...; absent: uniform
  QdiscMatch match;
  QdiscDirection direction = QdiscDirection::kEgress;

  bool operator==(const QdiscArgs&) const = default;

  // Fails with kInvalid (never throws) on a member of the wrong type, a CIDR units::parseCidr
  // refuses, a port range that is reversed, an unknown protocol or direction. Members it does
  // not know (`backend`) are left to their owners; null reads as no args.
  static Result<QdiscArgs> fromJson(const nlohmann::json& args);
  // The normalised args: the optional fields present, protocol and direction always.
  nlohmann::json toJson() const;
};

}  // namespace chaosd
