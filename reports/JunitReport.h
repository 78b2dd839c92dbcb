#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace chaosd::report {

// junit.xml from a report.json document (docs/reports.md): <testsuites> holding one
// <testsuite> per experiment with a <testcase> per probe and phase, per fault applied, per
// fault reverted, per rollback and one for the audit. Failure messages say what failed, where
// and the first failure's detail, for a person reading a CI page.
std::string junitXml(const nlohmann::json& report);

}  // namespace chaosd::report
