#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "experiments/model/Experiment.h"
#include "injectors/network/BackendSwitch.h"
#include "injectors/network/NfqueueRecords.h"
#include "injectors/network/NftRecords.h"
#include "injectors/network/NftablesInjector.h"

// The typed args and undo records of the nftables and NFQUEUE faults. The undo literals are
// records as the previous release journalled them (its prepare()'s output): they must parse,
// and toJson() must write them back unchanged, or a guardian of this release could not revert
// a fault applied by the last one.
namespace chaosd {
namespace {

using nlohmann::json;

const json kPartitionUndo = json::parse(R"json({
  "comment": "chaosd:run-1a2b-cut",
  "family": "inet",
  "faultId": "run-1a2b-cut",
  "iface": "veth-db",
  "netns": "/run/netns/app",
  "script": "add rule inet chaosd_run_run_1a2b out oifname \"veth-db\" ip daddr { 10.0.0.2/32 } meta l4proto tcp th dport { 5432 } reject with tcp reset comment \"chaosd:run-1a2b-cut\"\nadd rule inet chaosd_run_run_1a2b out oifname \"veth-db\" ip6 daddr { fd00::/64 } meta l4proto tcp th dport { 5432 } reject with tcp reset comment \"chaosd:run-1a2b-cut\"\nadd rule inet chaosd_run_run_1a2b in iifname \"veth-db\" ip saddr { 10.0.0.2/32 } meta l4proto tcp th sport { 5432 } reject with tcp reset comment \"chaosd:run-1a2b-cut\"\nadd rule inet chaosd_run_run_1a2b in iifname \"veth-db\" ip6 saddr { fd00::/64 } meta l4proto tcp th sport { 5432 } reject with tcp reset comment \"chaosd:run-1a2b-cut\"\n",
  "table": "chaosd_run_run_1a2b"
})json");

const json kLossUndo = json::parse(R"json({
  "comment": "chaosd:run-1a2b-loss",
  "family": "inet",
  "faultId": "run-1a2b-loss",
  "iface": "veth-db",
  "netns": "/run/netns/app",
  "script": "add rule inet chaosd_run_run_1a2b in iifname \"veth-db\" ip saddr { 10.0.0.0/24 } meta l4proto { tcp, udp } th sport { 8000-8100 } numgen random mod 1000000 < 250000 drop comment \"chaosd:run-1a2b-loss\"\n",
  "table": "chaosd_run_run_1a2b"
})json");

const json kTableUndo = json::parse(R"json({
  "family": "inet",
  "netns": "/run/netns/app",
  "script": "table inet chaosd_run_run_1a2b {\n  chain out {\n    type filter hook output priority -300; policy accept;\n  }\n  chain in {\n    type filter hook input priority -300; policy accept;\n  }\n}\n",
  "table": "chaosd_run_run_1a2b"
})json");

const json kDelayUndo = json::parse(R"json({
  "delayNs": 50000000,
  "direction": "egress",
  "distribution": "normal",
  "family": "inet",
  "faultId": "run-1a2b-slow",
  "filter": {"protocol": "tcp",
             "to": {"cidr": ["10.0.0.2/32", "fd00::2/128"], "ports": [{"first": 80, "last": 80}]}},
  "iface": "lo",
  "jitterNs": 5000000,
  "limit": 1000,
  "netns": "",
  "queue": 19383,
  "rules": ["ip daddr 10.0.0.2/32 meta l4proto tcp th dport 80",
            "ip6 daddr fd00::2/128 meta l4proto tcp th dport 80"],
  "seed": 11388482961069886597,
  "table": "chaosd_run_1a2b_slow"
})json");

// A delay without filter args (the filter stays empty) on the ingress side.
const json kBareDelayUndo = json::parse(R"json({
  "delayNs": 1000000, "direction": "ingress", "distribution": "uniform", "family": "inet",
  "faultId": "run-1a2b-slow", "filter": {}, "iface": "lo", "jitterNs": 0, "limit": 1000,
  "netns": "/proc/42/ns/net", "queue": 17152, "rules": ["all"], "seed": 7,
  "table": "chaosd_run_1a2b_slow"
})json");

template <typename T>
void expectRoundTrip(const json& record) {
  auto parsed = T::fromJson(record);
  ASSERT_TRUE(parsed.ok()) << parsed.error().describe();
  EXPECT_EQ(parsed->toJson(), record);
  EXPECT_EQ(parsed->toJson().dump(), record.dump()) << "same keys, same types";
}

TEST(NftablesRecordsTest, TodaysUndoRecordsParseAndWriteBackUnchanged) {
  expectRoundTrip<NftRuleUndo>(kPartitionUndo);
  expectRoundTrip<NftRuleUndo>(kLossUndo);
  expectRoundTrip<NftTableUndo>(kTableUndo);
  expectRoundTrip<NfqueueDelayUndo>(kDelayUndo);
  expectRoundTrip<NfqueueDelayUndo>(kBareDelayUndo);
  expectRoundTrip<BackendUndo>(json{{"backend", "nftables"}, {"inner", kDelayUndo}});
  expectRoundTrip<BackendUndo>(json{{"backend", "netem"}, {"inner", nullptr}});
}

TEST(NftablesRecordsTest, UndoRecordsReadAsTyped) {
  auto rule = NftRuleUndo::fromJson(kPartitionUndo);
  ASSERT_TRUE(rule.ok());
  EXPECT_EQ(rule->table, "chaosd_run_run_1a2b");
  EXPECT_EQ(rule->comment, "chaosd:run-1a2b-cut");
  EXPECT_EQ(rule->netns().path, "/run/netns/app");
  EXPECT_TRUE(rule->belongsTo("run-1a2b-cut").ok());
  EXPECT_TRUE(rule->belongsTo("").ok()) << "audit asks for any fault";
  EXPECT_EQ(rule->belongsTo("run-1a2b-loss").error().code(), ErrorCode::kInvalid);

  auto delay = NfqueueDelayUndo::fromJson(kDelayUndo);
  ASSERT_TRUE(delay.ok());
  EXPECT_EQ(delay->queue, 19383);
  EXPECT_EQ(delay->seed, 11388482961069886597ull);
  EXPECT_TRUE(delay->egress);
  EXPECT_TRUE(delay->netns().isHost());
  ASSERT_TRUE(delay->filter.to.has_value());
  EXPECT_FALSE(delay->filter.from.has_value());
  EXPECT_EQ(delay->filter.to->ports, (std::vector<units::PortRange>{{80, 80}}));
  EXPECT_EQ(delay->filter.protocol, "tcp");

  auto bare = NfqueueDelayUndo::fromJson(kBareDelayUndo);
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(bare->egress);
  EXPECT_EQ(bare->netns().nsPath(), "/proc/42/ns/net");
  EXPECT_FALSE(bare->filter.protocol.has_value());
}

// prepare() still writes the records above: the same undo, shared need and keys.
TEST(NftablesRecordsTest, PrepareWritesTodaysRecords) {
  TargetSpec target;
  target.name = "link";
  target.kind = TargetKind::kInterface;
  target.interface.name = "veth-db";
  target.interface.netns.name = "app";
  FaultRequest request;
  request.runId = "run-1a2b";
  request.faultId = "run-1a2b-cut";
  request.faultType = "network.partition";
  request.target = &target;
  request.args = {{"cidr", {"10.0.0.2/32", "fd00::/64"}},
                  {"ports", {{{"first", 5432}, {"last", 5432}}}},
                  {"protocol", "tcp"},
                  {"direction", "both"},
                  {"reject", true}};
  NftablesInjector injector;
  auto partition = injector.prepare(request);
  ASSERT_TRUE(partition.ok()) << partition.error().describe();
  EXPECT_EQ(partition->undo, kPartitionUndo);
  ASSERT_EQ(partition->shared.size(), 1u);
  EXPECT_EQ(partition->shared[0].undo, kTableUndo);
  EXPECT_EQ(partition->shared[0].key, "nft:/run/netns/app:chaosd_run_run_1a2b");
  EXPECT_EQ(partition->shared[0].faultType, kNftablesTableFaultType);
  EXPECT_EQ(partition->resources,
            (std::vector<std::string>{"nft:/run/netns/app:chaosd_run_run_1a2b:run-1a2b-cut"}));
  EXPECT_EQ(partition->description,
            "partition on veth-db in netns app (nftables rules \"chaosd:run-1a2b-cut\" in table "
            "inet chaosd_run_run_1a2b)");

  request.faultId = "run-1a2b-loss";
  request.faultType = "network.loss";
  request.args = {
      {"loss", 0.25},
      {"direction", "ingress"},
      {"from", {{"cidr", {"10.0.0.0/24"}}, {"ports", {{{"first", 8000}, {"last", 8100}}}}}},
      {"protocol", "all"},
      {"backend", "nftables"},
      {"limit", 1000}};
  auto loss = injector.prepare(request);
  ASSERT_TRUE(loss.ok()) << loss.error().describe();
  EXPECT_EQ(loss->undo, kLossUndo);
  EXPECT_EQ(loss->shared.at(0).undo, kTableUndo) << "one table for the run's faults";
}

TEST(NftablesRecordsTest, CorruptRecordsFailAsValues) {
  const std::string badUtf8 = "\xff\xfe";
  auto without = [](json j, const char* key) {
    j.erase(key);
    return j;
  };
  auto with = [](json j, const char* key, json value) {
    j[key] = std::move(value);
    return j;
  };
  const std::vector<json> rules = {
      json(),
      json::array(),
      json(badUtf8),
      json::object(),
      without(kPartitionUndo, "table"),
      without(kPartitionUndo, "script"),
      without(kPartitionUndo, "comment"),
      with(kPartitionUndo, "table", 7),
      with(kPartitionUndo, "table", "filter"),
      with(kPartitionUndo, "table", badUtf8),
      with(kPartitionUndo, "script", json::array()),
      with(kPartitionUndo, "netns", 42),
      with(kPartitionUndo, "faultId", nullptr),
  };
  for (const auto& r : rules) {
    auto parsed = NftRuleUndo::fromJson(r);
    ASSERT_FALSE(parsed.ok()) << r.dump(-1, ' ', false, json::error_handler_t::replace);
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalid);
  }
  for (const auto& r : {json(), without(kTableUndo, "table"), with(kTableUndo, "table", "nat"),
                        with(kTableUndo, "script", 1), with(kTableUndo, "netns", json::object())}) {
    auto parsed = NftTableUndo::fromJson(r);
    ASSERT_FALSE(parsed.ok()) << r.dump();
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalid);
  }
  const std::vector<json> delays = {
      json("chaosd_x"),
      without(kDelayUndo, "queue"),
      without(kDelayUndo, "filter"),
      without(kDelayUndo, "table"),
      with(kDelayUndo, "table", "mangle"),
      with(kDelayUndo, "queue", 70000),
      with(kDelayUndo, "queue", -1),
      with(kDelayUndo, "queue", "17152"),
      with(kDelayUndo, "filter", "tcp"),
      with(kDelayUndo, "filter", {{"to", {{"cidr", {1, 2}}}}}),
      with(kDelayUndo, "filter", {{"to", {{"ports", {{{"first", 99999}}}}}}}),
      with(kDelayUndo, "filter", {{"protocol", false}}),
      with(kDelayUndo, "rules", "all"),
      with(kDelayUndo, "seed", "random"),
      with(kDelayUndo, "delayNs", json::array()),
  };
  for (const auto& r : delays) {
    auto parsed = NfqueueDelayUndo::fromJson(r);
    ASSERT_FALSE(parsed.ok()) << r.dump();
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalid);
  }
  for (const auto& r : {json(), json{{"by", "netem"}}, json{{"backend", 3}, {"inner", {}}},
                        json{{"backend", "nftables"}}}) {
    auto parsed = BackendUndo::fromJson(r);
    ASSERT_FALSE(parsed.ok()) << r.dump();
    EXPECT_EQ(parsed.error().code(), ErrorCode::kInvalid);
  }
}

TEST(NftablesRecordsTest, PartitionArgsParse) {
  auto args = NftPartitionArgs::fromJson({{"cidr", {"10.0.0.2/32", "fd00::/64"}},
                                          {"ports", {{{"first", 8000}, {"last", 8100}}}},
                                          {"protocol", "tcp"},
                                          {"direction", "to"},
                                          {"reject", true}});
  ASSERT_TRUE(args.ok()) << args.error().describe();
  EXPECT_EQ(args->peers.cidrs, (std::vector<std::string>{"10.0.0.2/32", "fd00::/64"}));
  EXPECT_EQ(args->peers.ports, (std::vector<units::PortRange>{{8000, 8100}}));
  EXPECT_EQ(args->protocol, "tcp");
  EXPECT_EQ(args->direction, "to");
  EXPECT_TRUE(args->reject);
  auto again = NftPartitionArgs::fromJson(args->toJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->toJson(), args->toJson());

  auto defaults = NftPartitionArgs::fromJson({{"ports", {{{"first", 53}}}}});
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->peers.cidrs.empty());
  EXPECT_EQ(defaults->peers.ports, (std::vector<units::PortRange>{{53, 53}})) << "last = first";
  EXPECT_EQ(defaults->protocol, "all");
  EXPECT_EQ(defaults->direction, "both");
  EXPECT_FALSE(defaults->reject);

  EXPECT_EQ(NftPartitionArgs::fromJson({{"cidr", "10.0.0.2/32"}}).error().code(),
            ErrorCode::kInvalid);
  EXPECT_EQ(NftPartitionArgs::fromJson({{"reject", "yes"}}).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(NftPartitionArgs::fromJson(json::array()).error().code(), ErrorCode::kInvalid);
}

TEST(NftablesRecordsTest, LossArgsParseAndRefuseWhatOnlyNetemDoes) {
  auto args = NftLossArgs::fromJson({{"loss", 0.3},
                                     {"direction", "egress"},
                                     {"to", {{"cidr", {"10.0.0.2/32"}}}},
                                     {"protocol", "udp"},
                                     {"backend", "nftables"},
                                     {"limit", 1000}});
  ASSERT_TRUE(args.ok()) << args.error().describe();
  EXPECT_DOUBLE_EQ(args->loss, 0.3);
  EXPECT_TRUE(args->egress);
  EXPECT_EQ(args->to.cidrs, (std::vector<std::string>{"10.0.0.2/32"}));
  EXPECT_TRUE(args->from.cidrs.empty());
  EXPECT_EQ(args->protocol, "udp");
  auto rules = nftablesRules(*args, "eth0");
  EXPECT_EQ(rules.out, (std::vector<std::string>{"oifname \"eth0\" ip daddr { 10.0.0.2/32 } meta "
                                                 "l4proto udp numgen random mod 1000000 < 300000 "
                                                 "drop"}));
  EXPECT_TRUE(rules.in.empty());

  auto ingress = NftLossArgs::fromJson({{"loss", 0.1}, {"direction", "ingress"}});
  ASSERT_TRUE(ingress.ok());
  EXPECT_FALSE(ingress->egress);
  EXPECT_EQ(ingress->protocol, "all");

  auto netem = NftLossArgs::fromJson({{"loss", 0.1}, {"duplicate", 0.1}, {"delay", 1000}});
  ASSERT_FALSE(netem.ok());
  EXPECT_EQ(netem.error().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(netem.error().message(), "'delay' needs the netem backend (backend: netem)");
}

TEST(NftablesRecordsTest, DelayArgsParseKeepingTheFilterAsGiven) {
  auto args = NfqueueDelayArgs::fromJson({{"delay", 50'000'000},
                                          {"jitter", 5'000'000},
                                          {"distribution", "pareto"},
                                          {"direction", "ingress"},
                                          {"from", {{"ports", {{{"first", 53}, {"last", 53}}}}}},
                                          {"limit", 500},
                                          {"backend", "nftables"}});
  ASSERT_TRUE(args.ok()) << args.error().describe();
  EXPECT_EQ(args->delayNs, 50'000'000);
  EXPECT_EQ(args->jitterNs, 5'000'000);
  EXPECT_EQ(args->distribution, "pareto");
  EXPECT_EQ(args->limit, 500);
  EXPECT_FALSE(args->egress);
  EXPECT_FALSE(args->filter.to.has_value());
  ASSERT_TRUE(args->filter.from.has_value());
  EXPECT_EQ(args->filter.from->ports, (std::vector<units::PortRange>{{53, 53}}));
  EXPECT_FALSE(args->filter.protocol.has_value()) << "not given, so not in the undo's filter";
  EXPECT_EQ(args->filter.toJson(), json({{"from", {{"ports", {{{"first", 53}, {"last", 53}}}}}}}));

  auto defaults = NfqueueDelayArgs::fromJson({{"delay", 1'000'000}});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->jitterNs, 0);
  EXPECT_EQ(defaults->distribution, "uniform");
  EXPECT_EQ(defaults->limit, 1000);
  EXPECT_TRUE(defaults->egress);
  EXPECT_EQ(defaults->filter.toJson(), json::object());

  auto none = NfqueueDelayArgs::fromJson({{"direction", "egress"}});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(
      NfqueueDelayArgs::fromJson({{"delay", 1}, {"distribution", "paretonormal"}}).error().code(),
      ErrorCode::kUnsupported)
      << "netem draws it; this backend does not";
  auto loss = NfqueueDelayArgs::fromJson({{"delay", 1}, {"loss", 0.1}});
  ASSERT_FALSE(loss.ok());
  EXPECT_EQ(loss.error().code(), ErrorCode::kUnsupported);
}

TEST(NftablesRecordsTest, BackendArgsDefaultToAuto) {
  EXPECT_EQ(BackendArgs::fromJson({{"delay", 1}})->backend, "auto");
  EXPECT_EQ(BackendArgs::fromJson(json())->backend, "auto");
  EXPECT_EQ(BackendArgs::fromJson({{"backend", "netem"}})->backend, "netem");
  EXPECT_EQ(BackendArgs::fromJson({{"backend", 1}}).error().code(), ErrorCode::kInvalid);
  EXPECT_EQ(BackendArgs{"nftables"}.toJson(), json({{"backend", "nftables"}}));
}

}  // namespace
}  // namespace chaosd
