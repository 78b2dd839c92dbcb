// ArgSchema's printing: one value (formatArgValue), normalised args in the user's units
// (formatArgs) and a schema as documentation (describeSchema).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "experiments/model/ArgSchema.h"
#include "injectors/FaultRegistry.h"
#include "tests/support/BuiltinFaults.h"

namespace chaosd {
namespace {

using chaosd::testing::builtinFaults;
using ::testing::HasSubstr;

const ArgSchema& schemaOf(std::string_view fault) {
  const FaultType* t = builtinFaults().find(fault);
  EXPECT_NE(t, nullptr) << fault;
  static const ArgSchema kEmpty;
  return t ? t->schema : kEmpty;
}

// A small schema of every printed type, independent of the fault catalogue.
ArgSchema sampleSchema() {
  ArgSchema s;
  s.args = {
      arg::required(arg::range(arg::make("delay", ArgType::kDuration, "added latency"), 0, 600e9)),
      arg::withDefault(arg::oneOf("mode", {"fast", "slow"}, "how"), "fast"),
      arg::object(
          "to",
          {arg::listOf("cidr", arg::make("cidr", ArgType::kCidr, "a CIDR"), "peers"),
           arg::listOf("ports", arg::make("port", ArgType::kPortRange, "a port"), "peer ports")},
          "destination"),
      arg::withDefault(arg::range(arg::make("share", ArgType::kPercent, "share hit"), 0, 1), 0.25),
      arg::withDefault(arg::make("signal", ArgType::kSignal, "the signal"), 15),
      arg::range(arg::make("size", ArgType::kSize, "bytes"), 512, static_cast<double>(1 << 30)),
      arg::make("rate", ArgType::kRate, "bits per second"),
      arg::withDefault(arg::range(arg::make("workers", ArgType::kInt, "threads"), 1, 64), 2),
      arg::withDefault(arg::make("direct", ArgType::kBool, "O_DIRECT"), true),
      arg::make("env", ArgType::kStringMap, "environment")};
  return s;
}

TEST(ArgSchemaTest, FormatArgValueInTheUsersUnits) {
  EXPECT_EQ(formatArgValue(arg::make("d", ArgType::kDuration, ""), 250e6), "250ms");
  EXPECT_EQ(formatArgValue(arg::make("d", ArgType::kDuration, ""), 90e9), "1m30s");
  EXPECT_EQ(formatArgValue(arg::make("d", ArgType::kDuration, ""), 0), "0s");
  EXPECT_EQ(formatArgValue(arg::make("s", ArgType::kSize, ""), 1 << 30), "1GiB");
  EXPECT_EQ(formatArgValue(arg::make("s", ArgType::kSize, ""), 1000), "1000B");
  EXPECT_EQ(formatArgValue(arg::make("s", ArgType::kSize, ""), 1536), "1.5KiB");
  EXPECT_EQ(formatArgValue(arg::make("r", ArgType::kRate, ""), 10e6), "10mbit");
  EXPECT_EQ(formatArgValue(arg::make("p", ArgType::kPercent, ""), 0.25), "25%");
  EXPECT_EQ(formatArgValue(arg::make("p", ArgType::kPercent, ""), 0.005), "0.5%");
  EXPECT_EQ(formatArgValue(arg::make("n", ArgType::kInt, ""), 1000), "1000");
  EXPECT_EQ(formatArgValue(arg::make("n", ArgType::kInt, ""), -3), "-3");
  EXPECT_EQ(formatArgValue(arg::make("x", ArgType::kNumber, ""), 1e12), "1000000000000");
}

TEST(ArgSchemaTest, FormatArgsOfNetworkDelay) {
  nlohmann::json args = {
      {"delay", 200'000'000},
      {"jitter", 20'000'000},
      {"loss", 0.01},
      {"to",
       {{"cidr", {"10.0.0.2/32", "fd00::/64"}},
        {"ports", {{{"first", 5432}, {"last", 5432}}, {{"first", 8000}, {"last", 8100}}}}}},
      {"protocol", "tcp"},
      {"direction", "egress"},
      {"limit", 1000},
      {"backend", "auto"}};
  EXPECT_EQ(formatArgs(schemaOf("network.delay"), args),
            "delay=200ms jitter=20ms loss=1% limit=1000 to.cidr=[10.0.0.2/32, fd00::/64] "
            "to.ports=[5432, 8000-8100] protocol=tcp direction=egress backend=auto");
}

TEST(ArgSchemaTest, FormatArgsFollowsTheSchemaOrderAndSkipsUnknownKeys) {
  nlohmann::json args = {{"signal", 9}, {"delay", 1'500'000'000}, {"stray", 1}};
  EXPECT_EQ(formatArgs(sampleSchema(), args), "delay=1.5s signal=SIGKILL");
}

TEST(ArgSchemaTest, FormatArgsOfEveryType) {
  nlohmann::json args = {{"delay", 0},   {"mode", "slow"},     {"share", 0.333},
                         {"signal", 15}, {"size", 512 * 1024}, {"rate", 1'500'000'000},
                         {"workers", 4}, {"direct", false},    {"env", {{"A", "b"}}}};
  EXPECT_EQ(formatArgs(sampleSchema(), args),
            "delay=0s mode=slow share=33.3% signal=SIGTERM size=512KiB rate=1.5gbit workers=4 "
            "direct=false env={\"A\":\"b\"}");
}

TEST(ArgSchemaTest, FormatArgsOfNothing) {
  EXPECT_EQ(formatArgs(sampleSchema(), nlohmann::json::object()), "");
  EXPECT_EQ(formatArgs(schemaOf("process.pause"), nlohmann::json::object()), "");
}

TEST(ArgSchemaTest, DescribeSchema) {
  EXPECT_EQ(describeSchema(sampleSchema()),
            "  delay (duration, required, range 0s..10m): added latency\n"
            "  mode (one of fast|slow, default fast): how\n"
            "  to (mapping): destination\n"
            "    cidr (list of CIDR): peers\n"
            "    ports (list of port or port range): peer ports\n"
            "  share (percentage, default 25%, range 0%..100%): share hit\n"
            "  signal (signal, default SIGTERM): the signal\n"
            "  size (size, range 512B..1GiB): bytes\n"
            "  rate (rate): bits per second\n"
            "  workers (integer, default 2, range 1..64): threads\n"
            "  direct (bool, default true): O_DIRECT\n"
            "  env (mapping of strings): environment\n");
}

TEST(ArgSchemaTest, DescribeBuiltinSchemas) {
  std::string delay = describeSchema(schemaOf("network.delay"));
  EXPECT_THAT(delay, HasSubstr("  delay (duration, required, range 0s..10m): "));
  EXPECT_THAT(delay, HasSubstr("  limit (integer, default 1000, range 1..10000000): "));
  EXPECT_THAT(delay, HasSubstr("  backend (one of auto|netem|nftables, default auto): "));
  EXPECT_THAT(delay, HasSubstr("\n    ports (list of port or port range): "));
  std::string kill = describeSchema(schemaOf("process.kill"));
  EXPECT_THAT(kill, HasSubstr("  signal (signal, default SIGKILL): "));
  EXPECT_THAT(kill, HasSubstr("  interval (duration, range 1ms..1h): "));
  // Every builtin type documents every argument on its own line.
  for (const auto& name : builtinFaults().names()) {
    const ArgSchema& s = schemaOf(name);
    std::string text = describeSchema(s);
    for (const auto& a : s.args) {
      EXPECT_THAT(text, HasSubstr("  " + a.name + " (")) << name;
      EXPECT_FALSE(a.help.empty()) << name << "." << a.name;
    }
  }
}

TEST(ArgSchemaTest, ArgTypeNames) {
  EXPECT_EQ(argTypeName(ArgType::kDuration), "duration");
  EXPECT_EQ(argTypeName(ArgType::kPercent), "percentage");
  EXPECT_EQ(argTypeName(ArgType::kPortRange), "port or port range");
  EXPECT_EQ(argTypeName(ArgType::kStringMap), "mapping of strings");
}

TEST(ArgSchemaTest, FindAndBuilders) {
  ArgSchema s = sampleSchema();
  ASSERT_NE(s.find("delay"), nullptr);
  EXPECT_TRUE(s.find("delay")->required);
  EXPECT_EQ(s.find("delay")->max, 600e9);
  EXPECT_EQ(s.find("nope"), nullptr);
  const ArgSpec* to = s.find("to");
  ASSERT_NE(to, nullptr);
  EXPECT_EQ(to->type, ArgType::kObject);
  ASSERT_EQ(to->fields.size(), 2u);
  ASSERT_NE(to->fields[0].element, nullptr);
  EXPECT_EQ(to->fields[0].element->type, ArgType::kCidr);
  EXPECT_EQ(s.find("mode")->defaultValue, nlohmann::json("fast"));
}

}  // namespace
}  // namespace chaosd
