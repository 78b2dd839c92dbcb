// The u32 filters QdiscInjector derives from a fault's filter args, and its names and slots.
#include <gtest/gtest.h>

#include "injectors/network/QdiscInjector.h"

namespace chaosd {
namespace {

TEST(QdiscFilters, NoFilterArgsIsOneMatchAllFilter) {
  auto f = qdiscFilters(nlohmann::json::object());
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].family, 0);
  EXPECT_EQ((*f)[0].keys, (std::vector<U32Key>{{0, 0, 0}}));
}

TEST(QdiscFilters, AddressesByFamilyAtTheirOffsets) {
  auto f = qdiscFilters(
      {{"to", {{"cidr", {"10.1.2.0/24", "fd00::1/128"}}}}, {"from", {{"cidr", {"10.9.0.1/32"}}}}});
  ASSERT_TRUE(f.ok()) << f.error().describe();
  // A source of IPv4 only: no IPv6 filter can match it.
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].family, 4);
  EXPECT_EQ((*f)[0].keys,
            (std::vector<U32Key>{{0x0a010200, 0xffffff00, 16}, {0x0a090001, 0xffffffff, 12}}));
  auto v6 = qdiscFilters({{"to", {{"cidr", {"fd00::1/128"}}}}});
  ASSERT_TRUE(v6.ok());
  ASSERT_EQ(v6->size(), 1u);
  EXPECT_EQ((*v6)[0].family, 6);
  EXPECT_EQ((*v6)[0].keys.size(), 4u);
  EXPECT_EQ((*v6)[0].keys[0], (U32Key{0xfd000000, 0xffffffff, 24}));
  EXPECT_EQ((*v6)[0].keys[3], (U32Key{1, 0xffffffff, 36}));
}

TEST(QdiscFilters, PortsWithProtocolShareOneWordAndNeedIhl5) {
  auto f =
      qdiscFilters({{"to", {{"ports", {{{"first", 5432}, {"last", 5432}}}}}}, {"protocol", "tcp"}});
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 2u);  // IPv4 and IPv6
  EXPECT_EQ((*f)[0].keys,
            (std::vector<U32Key>{
                {6U << 16, 0x00ff0000, 8}, {0x05000000, 0x0f000000, 0}, {5432, 0xffff, 20}}));
  EXPECT_EQ((*f)[1].keys, (std::vector<U32Key>{{6U << 8, 0xff00, 4}, {5432, 0xffff, 40}}));
  // Protocol all with ports: TCP and UDP.
  auto both = qdiscFilters({{"from", {{"ports", {{{"first", 53}, {"last", 53}}}}}}});
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->size(), 4u);
}

TEST(QdiscFilters, PortRangesBecomeAlignedBlocks) {
  using B = std::vector<std::pair<uint16_t, uint16_t>>;
  EXPECT_EQ(portBlocks(8000, 8003), (B{{8000, 0xfffc}}));
  EXPECT_EQ(portBlocks(5, 5), (B{{5, 0xffff}}));
  EXPECT_EQ(portBlocks(1, 6), (B{{1, 0xffff}, {2, 0xfffe}, {4, 0xfffe}, {6, 0xffff}}));
  EXPECT_EQ(portBlocks(0, 65535), (B{{0, 0}}));
}

TEST(QdiscFilters, TooManyFiltersIsAnError) {
  nlohmann::json cidrs = nlohmann::json::array();
  for (int i = 0; i < 300; ++i) cidrs.push_back("10.0." + std::to_string(i % 250) + ".1/32");
  EXPECT_FALSE(qdiscFilters({{"to", {{"cidr", cidrs}}}}).ok());
}

TEST(QdiscNames, IfbNameFitsAndSlotIsStable) {
  EXPECT_EQ(qdiscIfbName("run-1/step-2").size(), 15u);
  EXPECT_EQ(qdiscIfbName("a").rfind("cdifb", 0), 0u);
  EXPECT_NE(qdiscIfbName("a"), qdiscIfbName("b"));
  EXPECT_EQ(qdiscSlot("x"), qdiscSlot("x"));
  EXPECT_LT(qdiscSlot("x"), 0x3000u);
}

}  // namespace
}  // namespace chaosd
