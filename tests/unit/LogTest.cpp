#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "chaosd/base/Log.h"

namespace chaosd {
namespace {

TEST(LogTest, JsonLinesEscapeTheMessage) {
  ASSERT_TRUE(log::setup(log::Format::kJson, "info").ok());
  auto logger = log::get("logtest");
  std::ostringstream out;
  logger->sinks().clear();
  logger->sinks().push_back(std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  ASSERT_TRUE(log::setup(log::Format::kJson, "info").ok());  // re-applies the formatter
  logger->info("a \"quoted\" path C:\\x\nnext\tline \x01");
  auto line = out.str();
  ASSERT_FALSE(line.empty());
  auto j = nlohmann::json::parse(line.substr(0, line.find_last_not_of('\n') + 1));
  EXPECT_EQ(j["msg"], "a \"quoted\" path C:\\x\nnext\tline \x01");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["logger"], "logtest");
  ASSERT_TRUE(log::setup(log::Format::kText, "info").ok());
}

TEST(LogTest, RejectsUnknownLevelsAndFormats) {
  EXPECT_FALSE(log::setup(log::Format::kText, "loud").ok());
  EXPECT_FALSE(log::parseFormat("xml").ok());
  EXPECT_TRUE(log::setup(log::Format::kText, "off").ok());
  EXPECT_TRUE(log::setup(log::Format::kText, "info").ok());
}

}  // namespace
}  // namespace chaosd
