#pragma once

#include <string>
#include <vector>

#include "reports/ReportFields.h"

// What a fault's injector observed (report.json `faults[].observed`), in a few sentences for
// people: who a kill hit and whether the service restarted it, how much a fill took, the IO
// load's throughput, how many syscalls were intercepted and failed, what a qdisc or the
// NFQUEUE consumer did to packets. The HTML, Markdown and JUnit reports print these lines.
namespace chaosd::report {

// At most `maxLines` lines (the rest is summed up in a last line); none when nothing
// readable was observed.
std::vector<std::string> observedLines(const Json& fault, size_t maxLines = 6);

}  // namespace chaosd::report
