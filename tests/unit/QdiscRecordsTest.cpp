// The qdisc faults' typed records: QdiscArgs (the fault's normalised args) and QdiscUndo (the
// journalled undo record, whose JSON must stay the format earlier releases wrote), and the
// refusals of records that are not ours, which fail as values before any kernel contact.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "injectors/network/QdiscInjector.h"

namespace chaosd {
namespace {

using json = nlohmann::json;

const json kBandwidthArgs = {
    {"rate", 8000000}, {"to", {{"cidr", {"10.0.0.0/24", "fd00::1/128"}}}}, {"protocol", "tcp"}};

// A user's pfifo (handle 7:, limit 500) on ifindex 2 as the add request that recreates it.
constexpr const char* kPfifoRequest =
    "38000000240005060000000000000000000000000200000000000700ffffffff000000000a000100706669666f"
    "00000008000200f4010000";

// An egress bandwidth fault over a user's root, exactly as prepare() journals it for
// network.bandwidth with kBandwidthArgs.
json egressRecord() {
  return json::parse(std::string(R"({
    "faultId": "run-1/limit-db",
    "faultType": "network.bandwidth",
    "netns": "/run/netns/app",
    "iface": "veth-db",
    "direction": "egress",
    "slot": 4660,
    "leaf": {"kind": "tbf", "rate": 1000000, "burst": 16384, "latencyUs": 50000},
    "filters": [
      {"family": 4, "keys": [[167772160, 4294967040, 16], [393216, 16711680, 8]]},
      {"family": 6, "keys": [[4244635648, 4294967295, 24], [0, 4294967295, 28],
                             [0, 4294967295, 32], [1, 4294967295, 36], [1536, 65280, 4]]}
    ],
    "prior": {"kind": "pfifo", "handle": "7:0", "request": ")") +
                     kPfifoRequest + R"("}
  })");
}

// An ingress netem fault in the host's namespace, exactly as prepare() journals it.
json ingressRecord() {
  return json::parse(R"({
    "faultId": "run-2/delay-in",
    "faultType": "network.delay",
    "netns": "",
    "iface": "eth0",
    "direction": "ingress",
    "slot": 77,
    "leaf": {"kind": "netem", "limit": 1000, "delayUs": 100000, "jitterUs": 10000,
             "correlation": 0.25, "loss": 0.2, "rateBytes": 6250000,
             "distributionFile": "/usr/lib/x86_64-linux-gnu/tc/normal.dist"},
    "filters": [{"family": 0, "keys": [[0, 0, 0]]}],
    "ifb": "cdifb0123456789",
    "prior": {"kind": "default"}
  })");
}

void expectInvalid(const json& record, const std::string& why) {
  Result<QdiscUndo> undo = Error(ErrorCode::kInternal, "not run");
  EXPECT_NO_THROW(undo = QdiscUndo::fromJson(record)) << why;
  ASSERT_FALSE(undo.ok()) << why << ": " << record.dump();
  EXPECT_EQ(undo.error().code(), ErrorCode::kInvalid) << why << ": " << undo.error().describe();
}

TEST(QdiscUndoRecord, AnEgressRecordOfTodaysFormatParsesAndComesBackIdentical) {
  const json record = egressRecord();
  auto undo = QdiscUndo::fromJson(record);
  ASSERT_TRUE(undo.ok()) << undo.error().describe();
  EXPECT_EQ(undo->faultId, "run-1/limit-db");
  EXPECT_EQ(undo->faultType, "network.bandwidth");
  EXPECT_EQ(undo->netns, "/run/netns/app");
  EXPECT_EQ(undo->netnsRef().path, "/run/netns/app");
  EXPECT_EQ(undo->where(), "/run/netns/app");
  EXPECT_EQ(undo->iface, "veth-db");
  EXPECT_FALSE(undo->ingress());
  EXPECT_EQ(undo->slot, 4660u);
  ASSERT_FALSE(undo->leaf.isNetem());
  const auto& tbf = std::get<TbfLeaf>(undo->leaf.shape);
  EXPECT_EQ(tbf.rate, 1000000u);
  EXPECT_EQ(tbf.burst, 16384u);
  EXPECT_FALSE(tbf.limit.has_value());
  EXPECT_EQ(tbf.latencyUs, 50000);
  ASSERT_EQ(undo->filters.size(), 2u);
  EXPECT_EQ(undo->filters[0].family, 4);
  EXPECT_EQ(undo->filters[0].keys,
            (std::vector<U32Key>{{0x0a000000, 0xffffff00, 16}, {6U << 16, 0x00ff0000, 8}}));
  EXPECT_EQ(undo->filters[1].keys.size(), 5u);
  EXPECT_EQ(undo->families(), (std::vector<int>{4, 6}));
  EXPECT_FALSE(undo->prior.isDefault());
  EXPECT_EQ(undo->prior.kind, "pfifo");
  EXPECT_EQ(undo->prior.handle, "7:0");
  ASSERT_EQ(undo->prior.request.size(), 56u);
  EXPECT_EQ(undo->prior.request[4], 36) << "RTM_NEWQDISC";
  EXPECT_TRUE(undo->ifb.empty());
  // Same keys, types and values: the journal's text is unchanged.
  EXPECT_EQ(undo->toJson(), record);
  EXPECT_EQ(undo->toJson().dump(), record.dump());
}

TEST(QdiscUndoRecord, AnIngressNetemRecordOfTodaysFormatParsesAndComesBackIdentical) {
  const json record = ingressRecord();
  auto undo = QdiscUndo::fromJson(record);
  ASSERT_TRUE(undo.ok()) << undo.error().describe();
  EXPECT_TRUE(undo->ingress());
  EXPECT_EQ(undo->ifb, "cdifb0123456789");
  EXPECT_TRUE(undo->netnsRef().isHost());
  EXPECT_EQ(undo->where(), "host");
  EXPECT_TRUE(undo->prior.isDefault());
  EXPECT_TRUE(undo->prior.request.empty());
  ASSERT_TRUE(undo->leaf.isNetem());
  const auto& n = std::get<NetemLeaf>(undo->leaf.shape);
  EXPECT_EQ(n.limit, 1000);
  EXPECT_EQ(n.delayUs, 100000);
  EXPECT_EQ(n.jitterUs, 10000);
  EXPECT_EQ(n.correlation, 0.25);
  EXPECT_EQ(n.loss, 0.2);
  EXPECT_FALSE(n.duplicate.has_value());
  EXPECT_FALSE(n.reorder.has_value());
  EXPECT_EQ(n.rateBytes, 6250000u);
  EXPECT_EQ(n.distributionFile, "/usr/lib/x86_64-linux-gnu/tc/normal.dist");
  EXPECT_EQ(undo->families(), (std::vector<int>{0}));
  EXPECT_EQ(undo->toJson(), record);
  EXPECT_EQ(undo->toJson().dump(), record.dump());
}

TEST(QdiscUndoRecord, ATbfLeafBoundedByBytesKeepsLimitAndNoLatency) {
  json record = egressRecord();
  record["leaf"] = {{"kind", "tbf"}, {"rate", 0}, {"burst", 16384}, {"limit", 30000}};
  auto undo = QdiscUndo::fromJson(record);
  ASSERT_TRUE(undo.ok()) << undo.error().describe();
  const auto& tbf = std::get<TbfLeaf>(undo->leaf.shape);
  EXPECT_EQ(tbf.rate, 0u) << "a leaf the kernel refuses is still a record (revert cleans up)";
  EXPECT_EQ(tbf.limit, 30000u);
  EXPECT_FALSE(tbf.latencyUs.has_value());
  EXPECT_EQ(undo->toJson(), record);
}

TEST(QdiscUndoRecord, MissingMembersFailAsValues) {
  for (const char* key : {"faultId", "faultType", "netns", "iface", "direction", "slot", "leaf",
                          "filters", "prior"}) {
    json record = egressRecord();
    record.erase(key);
    expectInvalid(record, std::string("without ") + key);
  }
  json leaf = egressRecord();
  leaf["leaf"].erase("rate");
  expectInvalid(leaf, "a tbf leaf without rate");
  json bounds = egressRecord();
  bounds["leaf"].erase("latencyUs");
  expectInvalid(bounds, "a tbf leaf with neither limit nor latencyUs");
  json kind = egressRecord();
  kind["leaf"].erase("kind");
  expectInvalid(kind, "a leaf without kind");
  json request = egressRecord();
  request["prior"].erase("request");
  expectInvalid(request, "a user's root without its request");
  json keys = egressRecord();
  keys["filters"][0].erase("keys");
  expectInvalid(keys, "a filter without keys");
}

TEST(QdiscUndoRecord, WrongTypesAndRangesFailAsValues) {
  auto with = [](const json::json_pointer& at, json value) {
    json record = egressRecord();
    record[at] = std::move(value);
    return record;
  };
  expectInvalid(json(), "null");
  expectInvalid(json::array(), "an array");
  expectInvalid(json("qdisc"), "a string");
  expectInvalid(with(json::json_pointer("/slot"), "4660"), "slot as a string");
  expectInvalid(with(json::json_pointer("/slot"), -1), "a negative slot");
  expectInvalid(with(json::json_pointer("/slot"), 0x3000), "a slot out of range");
  expectInvalid(with(json::json_pointer("/slot"), 1.5), "a fractional slot");
  expectInvalid(with(json::json_pointer("/iface"), 5), "iface as a number");
  expectInvalid(with(json::json_pointer("/netns"), nullptr), "netns null");
  expectInvalid(with(json::json_pointer("/direction"), "both"), "an unknown direction");
  expectInvalid(with(json::json_pointer("/leaf/kind"), "htb"), "a leaf kind chaosd never adds");
  expectInvalid(with(json::json_pointer("/leaf/rate"), "1mbit"), "a rate as a string");
  expectInvalid(with(json::json_pointer("/filters"), json::object()), "filters not a list");
  expectInvalid(with(json::json_pointer("/filters/0/keys/0"), json::array({1, 2})),
                "a key of two numbers");
  expectInvalid(with(json::json_pointer("/filters/0/keys/0/0"), 4294967296LL),
                "a key value past 32 bits");
  expectInvalid(with(json::json_pointer("/filters/0/family"), 5), "family 5");
  expectInvalid(with(json::json_pointer("/prior/request"), "abc"), "odd-length hex");
  expectInvalid(with(json::json_pointer("/prior/request"), "zz"), "not hex");
  expectInvalid(with(json::json_pointer("/prior/request"), ""), "an empty snapshot");
  expectInvalid(with(json::json_pointer("/prior"), "default"), "prior as a string");
  json netem = ingressRecord();
  netem["leaf"]["loss"] = "20%";
  expectInvalid(netem, "a probability as a string");
}

TEST(QdiscUndoRecord, ADeviceNotOursIsRefused) {
  json record = ingressRecord();
  record["ifb"] = "eth1";
  auto undo = QdiscUndo::fromJson(record);
  ASSERT_FALSE(undo.ok());
  EXPECT_EQ(undo.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(undo.error().message().find("refusing to touch device \"eth1\""), std::string::npos)
      << undo.error().describe();
  // Egress records name no ifb; one that does must name ours too.
  json egress = egressRecord();
  egress["ifb"] = "";
  expectInvalid(egress, "an empty ifb");
  json without = ingressRecord();
  without.erase("ifb");
  expectInvalid(without, "an ingress record without its ifb");
  json number = ingressRecord();
  number["ifb"] = 7;
  expectInvalid(number, "ifb as a number");
}

// The injector checks the record before it touches anything, so these need no root: a record
// of another fault, or one that is not ours, fails as a value (the guardian reverts from it).
TEST(QdiscUndoRecord, TheInjectorRefusesRecordsOfOtherFaultsAndCorruptOnes) {
  QdiscInjector injector;
  const json record = egressRecord();
  auto other = injector.revert("run-1/another", record);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kInvalid);
  EXPECT_NE(other.error().message().find("belongs to another fault"), std::string::npos);
  auto applied = injector.apply("run-1/another", record);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code(), ErrorCode::kInvalid);
  json corrupt = record;
  corrupt["slot"] = "x";
  Result<json> reverted = json();
  EXPECT_NO_THROW(reverted = injector.revert("run-1/limit-db", corrupt));
  ASSERT_FALSE(reverted.ok());
  EXPECT_EQ(reverted.error().code(), ErrorCode::kInvalid);
  json foreign = ingressRecord();
  foreign["ifb"] = "eth0";
  auto audited = injector.audit(foreign);
  ASSERT_FALSE(audited.ok());
  EXPECT_EQ(audited.error().code(), ErrorCode::kInvalid);
}

TEST(QdiscUndoRecord, NamesAndSlotsFollowTheFaultId) {
  EXPECT_EQ(qdiscSlot("run-1/limit-db"), qdiscSlot("run-1/limit-db"));
  EXPECT_LT(qdiscSlot("run-1/limit-db"), kQdiscSlots);
  const std::string ifb = qdiscIfbName("run-2/delay-in");
  EXPECT_EQ(ifb.rfind(kQdiscIfbPrefix, 0), 0u);
  // A record with the name prepare gives is accepted.
  json record = ingressRecord();
  record["ifb"] = ifb;
  record["slot"] = qdiscSlot("run-2/delay-in");
  EXPECT_TRUE(QdiscUndo::fromJson(record).ok());
}

TEST(QdiscArgsRecord, NormalisedArgsParseToTheStruct) {
  const json args = {
      {"rate", 8000000},
      {"burst", 32768},
      {"latency", 40000000},
      {"to",
       {{"cidr", {"10.0.0.0/24", "fd00::1/128"}}, {"ports", {{{"first", 8000}, {"last", 8003}}}}}},
      {"from", {{"ports", {{{"first", 53}, {"last", 53}}}}}},
      {"protocol", "tcp"},
      {"direction", "ingress"},
      {"backend", "auto"}};
  auto a = QdiscArgs::fromJson(args);
  ASSERT_TRUE(a.ok()) << a.error().describe();
  EXPECT_EQ(a->rate, 8000000u);
  EXPECT_EQ(a->burst, 32768u);
  EXPECT_EQ(a->latency, 40000000);
  EXPECT_FALSE(a->limit.has_value());
  EXPECT_FALSE(a->delay.has_value());
  EXPECT_FALSE(a->distribution.has_value());
  ASSERT_EQ(a->match.to.cidrs.size(), 2u);
  EXPECT_EQ(a->match.to.cidrs[0].family, AF_INET);
  EXPECT_EQ(a->match.to.cidrs[0].prefix, 24);
  EXPECT_EQ(a->match.to.cidrs[1].family, AF_INET6);
  EXPECT_EQ(a->match.to.cidrs[1].prefix, 128);
  EXPECT_EQ(a->match.to.ports, (std::vector<units::PortRange>{{8000, 8003}}));
  EXPECT_TRUE(a->match.from.cidrs.empty());
  EXPECT_EQ(a->match.from.ports, (std::vector<units::PortRange>{{53, 53}}));
  EXPECT_EQ(a->match.protocol, QdiscProtocol::kTcp);
  EXPECT_EQ(a->direction, QdiscDirection::kIngress);
  auto again = QdiscArgs::fromJson(a->toJson());
  ASSERT_TRUE(again.ok()) << again.error().describe();
  EXPECT_EQ(*again, *a);
}

TEST(QdiscArgsRecord, NetemArgsAndTheDefaults) {
  auto none = QdiscArgs::fromJson(json::object());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->match.protocol, QdiscProtocol::kAll);
  EXPECT_EQ(none->direction, QdiscDirection::kEgress);
  EXPECT_TRUE(none->match.to.empty());
  EXPECT_EQ(*none, QdiscArgs{});
  auto null = QdiscArgs::fromJson(json());
  ASSERT_TRUE(null.ok());
  EXPECT_EQ(*null, QdiscArgs{});
  auto netem = QdiscArgs::fromJson({{"delay", 100000000},
                                    {"jitter", 10000000},
                                    {"distribution", "normal"},
                                    {"loss", 0.2},
                                    {"reorder", 0.1},
                                    {"gap", 5},
                                    {"limit", 1000}});
  ASSERT_TRUE(netem.ok()) << netem.error().describe();
  EXPECT_EQ(netem->delay, 100000000);
  EXPECT_EQ(netem->jitter, 10000000);
  EXPECT_EQ(netem->distribution, "normal");
  EXPECT_EQ(netem->loss, 0.2);
  EXPECT_EQ(netem->reorder, 0.1);
  EXPECT_EQ(netem->gap, 5);
  EXPECT_EQ(netem->limit, 1000u);
  EXPECT_FALSE(netem->duplicate.has_value());
}

TEST(QdiscArgsRecord, BadArgsFailAsValues) {
  for (const json& args :
       std::vector<json>{{{"protocol", "sctp"}},
                         {{"direction", "both"}},
                         {{"to", {{"cidr", {"10.0.0.1/24"}}}}},  // host bits set
                         {{"to", {{"cidr", {"not-an-address"}}}}},
                         {{"to", {{"cidr", {42}}}}},
                         {{"from", {{"ports", {{{"first", 9000}, {"last", 8000}}}}}}},
                         {{"from", {{"ports", {{{"first", 70000}}}}}}},
                         {{"to", "10.0.0.2"}},
                         {{"delay", "100ms"}},
                         {{"loss", "20%"}},
                         {{"rate", -8}},
                         json::array()}) {
    Result<QdiscArgs> a = Error(ErrorCode::kInternal, "not run");
    EXPECT_NO_THROW(a = QdiscArgs::fromJson(args)) << args.dump();
    ASSERT_FALSE(a.ok()) << args.dump();
    EXPECT_EQ(a.error().code(), ErrorCode::kInvalid) << args.dump();
  }
}

// network.bandwidth's leaf needs no kernel: the rate in bytes, the default burst and latency.
TEST(QdiscArgsRecord, BandwidthArgsMakeTheTbfLeafPrepareJournals) {
  auto a = QdiscArgs::fromJson({{"rate", 8000000}});
  ASSERT_TRUE(a.ok());
  auto leaf = leafForFault("network.bandwidth", *a);
  ASSERT_TRUE(leaf.ok()) << leaf.error().describe();
  EXPECT_EQ(leaf->toJson(),
            (json{{"kind", "tbf"}, {"rate", 1000000}, {"burst", 16384}, {"latencyUs", 50000}}));
  auto fast = QdiscArgs::fromJson({{"rate", 8000000000ULL}, {"limit", 30000}});
  ASSERT_TRUE(fast.ok());
  auto fastLeaf = leafForFault("network.bandwidth", *fast);
  ASSERT_TRUE(fastLeaf.ok());
  EXPECT_EQ(fastLeaf->toJson(),
            (json{{"kind", "tbf"}, {"rate", 1000000000}, {"burst", 4000000}, {"limit", 30000}}));
  auto tooFast = QdiscArgs::fromJson({{"rate", 20000000000ULL}});
  ASSERT_TRUE(tooFast.ok());
  auto refused = leafForFault("network.bandwidth", *tooFast);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnsupported);
}

// What prepare computes from the args before it reads the device: the record's leaf and filters.
TEST(QdiscArgsRecord, TheArgsGiveTheLeafAndFiltersOfTheRecord) {
  auto undo = QdiscUndo::fromJson(egressRecord());
  ASSERT_TRUE(undo.ok()) << undo.error().describe();
  auto a = QdiscArgs::fromJson(kBandwidthArgs);
  ASSERT_TRUE(a.ok()) << a.error().describe();
  auto leaf = leafForFault("network.bandwidth", *a);
  ASSERT_TRUE(leaf.ok()) << leaf.error().describe();
  EXPECT_EQ(*leaf, undo->leaf);
  auto filters = u32FiltersFor(a->match);
  ASSERT_TRUE(filters.ok()) << filters.error().describe();
  EXPECT_EQ(*filters, undo->filters);
  EXPECT_EQ(a->direction, undo->direction);
  // The json entry point the filter tests use gives the same.
  auto viaJson = qdiscFilters(kBandwidthArgs);
  ASSERT_TRUE(viaJson.ok());
  EXPECT_EQ(*viaJson, *filters);
}

// The users' roots a context remembers for the faults that join a tree over one.
TEST(QdiscContextState, RemembersAUsersRootPerDeviceUntilForgotten) {
  QdiscContext context;
  auto lock = context.lockTree();
  EXPECT_FALSE(context.priorOf("1:2:3").has_value());
  QdiscPriorRoot pfifo{"pfifo", "7:0", {1, 2, 3}};
  context.remember("1:2:3", pfifo);
  EXPECT_EQ(context.priorOf("1:2:3"), pfifo);
  EXPECT_FALSE(context.priorOf("1:2:4").has_value());
  context.forget("1:2:3");
  EXPECT_FALSE(context.priorOf("1:2:3").has_value());
}

}  // namespace
}  // namespace chaosd
