#include "chaosd/app/cli/FleetReportCommand.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "chaosd/base/ExitCode.h"
#include "reports/FleetReport.h"
#include "reports/FleetTopology.h"
#include "reports/FleetWriters.h"

namespace chaosd::cli {
namespace {

namespace fs = std::filesystem;
using report::FleetMember;

struct Located {
  std::string host;
  std::string path;  // a report.json
};

std::string canonical(const std::string& path) {
  std::error_code ec;
  auto c = fs::weakly_canonical(path, ec);
  return ec ? path : c.string();
}

// The report.json files under a host's folder: exactly one, or an error saying what to do.
Result<std::string> onlyReportUnder(const fs::path& dir, const std::string& host) {
  std::vector<std::string> found;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->path().filename() == "report.json" && it->is_regular_file()) {
      found.push_back(it->path().string());
    }
  }
  if (found.empty()) {
    return Error(ErrorCode::kNotFound, dir.string() + ": no report.json for host " + host);
  }
  if (found.size() > 1) {
    return Error(ErrorCode::kInvalid, dir.string() + ": " + std::to_string(found.size()) +
                                          " report.json files for host " + host +
                                          ": name the one to merge (HOST=PATH, --control PATH)");
  }
  return found.front();
}

// One command-line input as hosts and their report files.
Result<std::vector<Located>> locate(const std::string& input) {
  std::error_code ec;
  const auto eq = input.find('=');
  if (eq != std::string::npos && eq > 0 && !fs::exists(input, ec)) {
    const std::string host = input.substr(0, eq);
    const std::string path = input.substr(eq + 1);
    if (!fs::is_directory(path, ec)) return std::vector<Located>{{host, path}};
    if (fs::exists(path + "/report.json", ec)) {
      return std::vector<Located>{{host, path + "/report.json"}};
    }
    auto file = onlyReportUnder(path, host);  // the host's folder of run folders
    if (!file) return file.error();
    return std::vector<Located>{{host, *file}};
  }
  const fs::path p(input);
  if (!fs::is_directory(p, ec)) {
    return std::vector<Located>{{p.parent_path().filename().string(), input}};
  }
  if (fs::exists(p / "report.json", ec)) {
    return std::vector<Located>{
        {fs::absolute(p).lexically_normal().filename().string(), (p / "report.json").string()}};
  }
  std::vector<fs::path> hostDirs;
  for (const auto& e : fs::directory_iterator(p, ec)) {
    if (e.is_directory()) hostDirs.push_back(e.path());
  }
  std::sort(hostDirs.begin(), hostDirs.end());
  if (hostDirs.empty()) {
    return Error(ErrorCode::kNotFound,
                 input + ": no report.json and no per-host folders (HOST/.../report.json)");
  }
  std::vector<Located> out;
  for (const auto& d : hostDirs) {
    const std::string host = d.filename().string();
    auto file = onlyReportUnder(d, host);
    if (!file) return file.error();
    out.push_back({host, *file});
  }
  return out;
}

Result<FleetMember> load(const Located& l) {
  auto doc = report::loadReportFile(l.path);
  if (!doc) return doc.error();
  return FleetMember{l.host, l.path, std::move(*doc)};
}

Result<report::FleetInputs> gather(const std::vector<std::string>& inputs,
                                   const FleetOptions& options) {
  report::FleetInputs in;
  std::string controlFile;
  if (!options.control.empty()) {
    std::error_code ec;
    controlFile = options.control;
    if (fs::is_directory(options.control, ec)) {
      // A run folder, or a folder with one run folder below (chaosctl run --report-dir).
      auto only = fs::exists(options.control + "/report.json", ec)
                      ? Result<std::string>(options.control + "/report.json")
                      : onlyReportUnder(options.control, "the control node");
      if (!only) return only.error();
      controlFile = *only;
    }
    auto control = load({"control", controlFile});
    if (!control) return control.error();
    in.control = std::move(*control);
  }
  for (const auto& input : inputs) {
    auto located = locate(input);
    if (!located) return located.error();
    for (const auto& l : *located) {
      // A fleet folder may hold the control node's report too: it is not a host.
      if (!controlFile.empty() && canonical(l.path) == canonical(controlFile)) continue;
      auto member = load(l);
      if (!member) return member.error();
      in.hosts.push_back(std::move(*member));
    }
  }
  std::stringstream hosts(options.expectHosts);
  for (std::string host; std::getline(hosts, host, ',');) {
    if (!host.empty()) in.expectedHosts.push_back(host);
  }
  if (!options.topology.empty()) {
    std::ifstream file(options.topology);
    if (!file) return Error(ErrorCode::kNotFound, options.topology + ": cannot open");
    std::ostringstream text;
    text << file.rdbuf();
    auto topology = report::parseTopology(text.str(), options.topology);
    if (!topology) return topology.error();
    in.topology = std::move(*topology);
  }
  return in;
}

}  // namespace

void addFleetOptions(po::options_description& desc, FleetOptions& fleet) {
  desc.add_options()("fleet", po::bool_switch(&fleet.fleet),
                     "merge the reports of one game day's hosts into one: each RUN_DIR is "
                     "HOST=PATH, a run folder or report.json (host: its folder's name), or a "
                     "folder of per-host folders")(
      "control", po::value(&fleet.control),
      "with --fleet: the control node's run folder or report.json, or a folder with one "
      "below (its probes watch the front end)")(
      "topology", po::value(&fleet.topology),
      "with --fleet: the system's tiers (YAML or JSON) for the reliability model")(
      "out", po::value(&fleet.out), "with --fleet: the folder for the fleet files (default .)")(
      "expect-hosts", po::value(&fleet.expectHosts),
      "with --fleet: HOST,HOST,...: the hosts of the game day; one without a report makes the "
      "fleet's outcome an error (exit 5), as does a topology host without one");
}

int fleetReport(const std::vector<std::string>& inputs, const FleetOptions& options,
                const std::vector<report::ReportFormat>& formats, const CommonOptions& common) {
  auto in = gather(inputs, options);
  if (!in) {
    std::cerr << "chaosctl report --fleet: " << in.error().describe() << "\n";
    return kExitInvalid;
  }
  Result<nlohmann::json> fleet = Error(ErrorCode::kInternal, "not built");
  try {
    fleet = report::buildFleetReport(*in);
  } catch (const nlohmann::json::exception& ex) {  // a field of an unexpected type
    fleet = Error(ErrorCode::kInvalid, std::string("a report is malformed: ") + ex.what());
  }
  if (!fleet) {
    std::cerr << "chaosctl report --fleet: " << fleet.error().describe() << "\n";
    return kExitInvalid;
  }
  const std::string dir = options.out.empty() ? "." : options.out;
  std::error_code ec;
  fs::create_directories(dir, ec);
  int exit = report::fleetExitCode(*fleet);
  nlohmann::json written = nlohmann::json::array();
  for (const auto& w : report::writeFleetFiles(*fleet, dir, formats)) {
    if (w.error) {
      std::cerr << "chaosctl report --fleet: cannot write " << w.path << ": " << w.error->describe()
                << "\n";
      // What was left behind on a host outranks a file not written here.
      if (exit != kExitLeftovers) exit = kExitRuntimeError;
      continue;
    }
    written.push_back(w.path);
    if (!common.json()) std::cout << "wrote " << w.path << "\n";
  }
  if (common.json()) {
    std::cout << nlohmann::json{{"written", written},
                                {"outcome", (*fleet)["outcome"]},
                                {"exitCode", (*fleet)["exitCode"]}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "fleet " << (*fleet)["outcome"].get<std::string>() << " (exit "
              << (*fleet)["exitCode"].get<int>() << ") across " << in->hosts.size() << " host(s)\n";
  }
  return exit;
}

}  // namespace chaosd::cli
