// Host names in packet filters: their syntax (chaosd/base/HostNames.h), and their resolution
// into the `cidr` lists the network injectors take (injectors/network/HostFilters.h), with a
// resolver of the test's own.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "chaosd/base/HostNames.h"
#include "injectors/network/HostFilters.h"

namespace chaosd {
namespace {

using json = nlohmann::json;

TEST(HostNamesTest, AcceptsNamesAndAddressLiteralsLowercased) {
  EXPECT_EQ(*checkHostName("db.internal"), "db.internal");
  EXPECT_EQ(*checkHostName("DB.Internal."), "db.internal");
  EXPECT_EQ(*checkHostName("_pg._tcp.db-1.internal"), "_pg._tcp.db-1.internal");
  EXPECT_EQ(*checkHostName("localhost"), "localhost");
  EXPECT_EQ(*checkHostName("10.0.0.2"), "10.0.0.2");
  EXPECT_EQ(*checkHostName("FD00::1"), "fd00::1");
}

TEST(HostNamesTest, RefusesWhatIsNotAName) {
  auto why = [](std::string_view s) {
    auto r = checkHostName(s);
    EXPECT_FALSE(r.ok()) << s;
    return r.ok() ? std::string() : r.error().message();
  };
  EXPECT_NE(why("db..internal").find("an empty label"), std::string::npos);
  EXPECT_NE(why("-db.internal").find("starts or ends with '-'"), std::string::npos);
  EXPECT_NE(why("db internal").find("' '"), std::string::npos);
  EXPECT_NE(why("db/internal").find("'/'"), std::string::npos);
  EXPECT_NE(why(std::string(64, 'a') + ".internal").find("longer than 63"), std::string::npos);
  EXPECT_NE(why(std::string(300, 'a')).find("longer than 253"), std::string::npos);
  EXPECT_NE(why("").find("empty"), std::string::npos);
  EXPECT_NE(why(".").find("empty"), std::string::npos);
}

TEST(HostNamesTest, LocalhostResolvesThroughTheSystemResolver) {
  auto found = resolveHostName("localhost");
  ASSERT_TRUE(found.ok()) << found.error().describe();
  EXPECT_NE(std::find(found->begin(), found->end(), "127.0.0.1"), found->end());
  EXPECT_TRUE(std::is_sorted(found->begin(), found->end()));
}

// A resolver of the test's: names to addresses, anything else unknown.
HostResolver table(std::map<std::string, std::vector<std::string>> names) {
  return [names = std::move(names)](const std::string& n) -> Result<std::vector<std::string>> {
    auto it = names.find(n);
    if (it == names.end()) {
      return Error(ErrorCode::kNotFound, "host name '" + n + "' does not resolve: unknown");
    }
    return it->second;
  };
}

TEST(HostFiltersTest, TopLevelHostsJoinTheCidrListAndLeaveTheArgs) {
  auto r = resolveHostFilters(
      json{{"cidr", {"10.0.0.9/32"}}, {"hosts", {"db.internal"}}, {"ports", {{{"first", 5432}}}}},
      table({{"db.internal", {"10.0.0.5", "fd00::5"}}}));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->args["cidr"], json({"10.0.0.9/32", "10.0.0.5/32", "fd00::5/128"}));
  EXPECT_FALSE(r->args.contains("hosts"));
  EXPECT_EQ(r->args["ports"], json({{{"first", 5432}}}));
  EXPECT_EQ(r->observed, json({{"hosts", {{"db.internal", {"10.0.0.5", "fd00::5"}}}}}));
}

TEST(HostFiltersTest, ToAndFromHostsResolveOnTheirSideAndDuplicatesCollapse) {
  auto r =
      resolveHostFilters(json{{"delay", 1000},
                              {"to", {{"hosts", {"a.internal", "b.internal"}}}},
                              {"from", {{"hosts", {"c.internal"}}, {"cidr", {"10.0.0.7/32"}}}}},
                         table({{"a.internal", {"10.0.0.1"}},
                                {"b.internal", {"10.0.0.1", "10.0.0.2"}},
                                {"c.internal", {"10.0.0.7"}}}));
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(r->args["to"], json({{"cidr", {"10.0.0.1/32", "10.0.0.2/32"}}}));
  EXPECT_EQ(r->args["from"], json({{"cidr", {"10.0.0.7/32"}}}));
  EXPECT_EQ(r->args["delay"], 1000);
  EXPECT_EQ(r->observed["hosts"].size(), 3u);
}

TEST(HostFiltersTest, ANameThatDoesNotResolveIsAnErrorNamingTheField) {
  auto r = resolveHostFilters(json{{"to", {{"hosts", {"a.internal", "gone.internal"}}}}},
                              table({{"a.internal", {"10.0.0.1"}}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("to.hosts: host name 'gone.internal' does not resolve"),
            std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("never left empty"), std::string::npos);
}

TEST(HostFiltersTest, ArgsWithoutHostsPassUnchanged) {
  const json args{{"cidr", {"10.0.0.0/24"}}, {"to", {{"ports", {{{"first", 80}}}}}}};
  auto r = resolveHostFilters(args, table({}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->args, args);
  EXPECT_TRUE(r->observed.is_null());
}

}  // namespace
}  // namespace chaosd
