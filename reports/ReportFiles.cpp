#include "reports/ReportFiles.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "chaosd/base/Fd.h"
#include "reports/HtmlReport.h"
#include "reports/JunitReport.h"
#include "reports/MarkdownReport.h"
#include "reports/ReportJson.h"

namespace chaosd::report {

const char* fileNameOf(ReportFormat format) {
  switch (format) {
    case ReportFormat::kJunit:
      return "junit.xml";
    case ReportFormat::kHtml:
      return "report.html";
    case ReportFormat::kMarkdown:
      return "summary.md";
  }
  return "report";
}

std::optional<std::vector<ReportFormat>> parseFormats(const std::string& value) {
  if (value == "all") return allFormats();
  if (value == "junit") return std::vector{ReportFormat::kJunit};
  if (value == "html") return std::vector{ReportFormat::kHtml};
  if (value == "markdown") return std::vector{ReportFormat::kMarkdown};
  return std::nullopt;
}

std::string render(ReportFormat format, const nlohmann::json& report) {
  switch (format) {
    case ReportFormat::kJunit:
      return junitXml(report);
    case ReportFormat::kHtml:
      return htmlReport(report);
    case ReportFormat::kMarkdown:
      return markdownSummary(report);
  }
  return "";
}

Result<nlohmann::json> loadReportFile(const std::string& runDir) {
  std::error_code ec;
  const std::string path =
      std::filesystem::is_directory(runDir, ec) ? runDir + "/report.json" : runDir;
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorCode::kNotFound, path + ": cannot open (no report.json there?)");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parseReportText(text, path);
}

Result<nlohmann::json> parseReportText(std::string_view text, const std::string& path) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return Error(ErrorCode::kInvalid, path + ": not valid JSON");
  if (!doc.is_object() || !doc.contains("schema") || !doc["schema"].is_string()) {
    return Error(ErrorCode::kInvalid, path + ": not a chaosd report (no \"schema\" field)");
  }
  const std::string schema = doc["schema"].get<std::string>();
  if (schema != kReportSchema) {
    return Error(ErrorCode::kInvalid, path + ": schema '" + schema + "' is not " + kReportSchema);
  }
  return doc;
}

Result<void> writeFileAtomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Error::fromErrno("open " + tmp, errno);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::unlink(tmp.c_str());
      return Error::fromErrno("write " + tmp, err);
    }
    off += static_cast<size_t>(n);
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Error::fromErrno("rename " + path, err);
  }
  return success();
}

std::vector<WrittenFile> writeReportFiles(const nlohmann::json& report, const std::string& dir,
                                          const std::vector<ReportFormat>& formats) {
  std::vector<WrittenFile> out;
  for (auto format : formats) {
    WrittenFile w{format, dir + "/" + fileNameOf(format), std::nullopt};
    std::string text;
    try {
      text = render(format, report);
    } catch (const std::exception& ex) {  // nlohmann::json on a malformed report
      w.error = Error(ErrorCode::kInvalid, std::string("cannot render: ") + ex.what());
      out.push_back(std::move(w));
      continue;
    }
    auto written = writeFileAtomically(w.path, text);
    if (!written) w.error = written.error();
    out.push_back(std::move(w));
  }
  return out;
}

}  // namespace chaosd::report
