#include "reports/HtmlTimeline.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include "reports/Escape.h"
#include "reports/ReportFields.h"

namespace chaosd::report {
namespace {

constexpr double kWidth = 1200;
constexpr double kLeft = 160;
constexpr double kRight = 24;
constexpr double kLaneHeight = 90;
constexpr double kLaneGap = 12;
constexpr double kLabelRow = 15;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// The last time anything of the run happened, in ns from its start.
int64_t spanOf(const Json& report) {
  int64_t end = 0;
  for (const auto& p : list(report, "probes")) {
    for (const auto& s : list(p, "samples")) {
      end = std::max(end, nanos(s, "offsetNs").value_or(0) + nanos(s, "durationNs").value_or(0));
    }
  }
  for (const auto& f : list(report, "faults")) {
    end = std::max(
        {end, nanos(f, "appliedOffsetNs").value_or(0), nanos(f, "revertedOffsetNs").value_or(0)});
  }
  for (const auto& ph : list(report, "phases")) {
    if (flag(ph, "ran")) end = std::max(end, wallOffset(report, ph, "endedAt").value_or(0));
  }
  return std::max<int64_t>(end, 1'000'000'000);
}

// A tick step of 1, 2 or 5 times a power of ten seconds giving at most about ten ticks.
double tickStepSeconds(double spanSeconds) {
  const double raw = spanSeconds / 10;
  const double power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= raw) return m * power;
  }
  return 10 * power;
}

struct Layout {
  int64_t span = 1;
  int labelRows = 1;
  double lanesTop = 0;
  double lanesBottom = 0;
  double x(int64_t ns) const {
    return kLeft + (kWidth - kLeft - kRight) * static_cast<double>(std::max<int64_t>(ns, 0)) /
                       static_cast<double>(span);
  }
};

struct Window {
  const Json* fault;
  double x0, x1;
  int row;
};

// Fault windows with their label row: a label goes in the first row where it does not
// overlap the previous label (labels are about 7px per character).
std::vector<Window> faultWindows(const Json& report, const Layout& layout, int& rows) {
  std::vector<Window> out;
  std::vector<double> rowEnd;
  for (const auto& f : list(report, "faults")) {
    auto on = nanos(f, "appliedOffsetNs");
    if (!on) continue;
    auto off = nanos(f, "revertedOffsetNs");
    Window w{&f, layout.x(*on), layout.x(off ? *off : layout.span), 0};
    w.x1 = std::max(w.x1, w.x0 + 2);
    const double labelEnd = w.x0 + 7.0 * static_cast<double>(text(f, "step").size()) + 8;
    size_t row = 0;
    while (row < rowEnd.size() && rowEnd[row] > w.x0) ++row;
    if (row == rowEnd.size()) rowEnd.push_back(0);
    rowEnd[row] = labelEnd;
    w.row = static_cast<int>(row);
    out.push_back(w);
  }
  rows = std::max<int>(1, static_cast<int>(rowEnd.size()));
  return out;
}

void drawAxis(const Layout& l, std::ostringstream& svg) {
  const double spanSeconds = static_cast<double>(l.span) / 1e9;
  const double step = tickStepSeconds(spanSeconds);
  svg << "<g class=\"axis\">";
  svg << "<line x1=\"" << num(kLeft) << "\" y1=\"" << num(l.lanesBottom) << "\" x2=\""
      << num(kWidth - kRight) << "\" y2=\"" << num(l.lanesBottom) << "\" stroke=\"#555\"/>";
  for (double t = 0; t <= spanSeconds + 1e-9; t += step) {
    const double x = l.x(static_cast<int64_t>(t * 1e9));
    char label[32];
    std::snprintf(label, sizeof label, "%gs", std::round(t * 1000) / 1000);
    svg << "<line x1=\"" << num(x) << "\" y1=\"" << num(l.lanesBottom) << "\" x2=\"" << num(x)
        << "\" y2=\"" << num(l.lanesBottom + 5) << "\" stroke=\"#555\"/><text x=\"" << num(x)
        << "\" y=\"" << num(l.lanesBottom + 18) << "\" text-anchor=\"middle\">" << label
        << "</text>";
  }
  svg << "<text x=\"" << num(kWidth - kRight) << "\" y=\"" << num(l.lanesBottom + 34)
      << "\" text-anchor=\"end\">time from the run's start</text></g>\n";
}

void drawPhases(const Json& report, const Layout& l, std::ostringstream& svg) {
  for (const auto& ph : list(report, "phases")) {
    if (!flag(ph, "ran")) continue;
    auto start = wallOffset(report, ph, "startedAt");
    auto end = wallOffset(report, ph, "endedAt");
    if (!start) continue;
    const std::string name = text(ph, "phase");
    for (auto t : {start, end}) {
      if (!t) continue;
      svg << "<line class=\"phase-boundary\" data-phase=\"" << xmlEscape(name) << "\" x1=\""
          << num(l.x(*t)) << "\" y1=\"2\" x2=\"" << num(l.x(*t)) << "\" y2=\"" << num(l.lanesBottom)
          << "\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>";
    }
    svg << "<text class=\"phase-label\" x=\"" << num(l.x(*start) + 4) << "\" y=\"12\">"
        << xmlEscape(name == "before" ? "before (baseline)" : name) << "</text>\n";
  }
}

void drawLane(const Json& probe, double top, const Layout& l, std::ostringstream& svg) {
  const auto& samples = list(probe, "samples");
  int64_t slowest = 1;
  for (const auto& s : samples) slowest = std::max(slowest, nanos(s, "durationNs").value_or(0));
  svg << "<g class=\"lane\" data-probe=\"" << xmlEscape(text(probe, "name")) << "\">";
  svg << "<rect x=\"" << num(kLeft) << "\" y=\"" << num(top) << "\" width=\""
      << num(kWidth - kLeft - kRight) << "\" height=\"" << num(kLaneHeight)
      << "\" fill=\"#f4f6f8\" stroke=\"#ccd\"/>";
  svg << "<text class=\"lane-label\" x=\"" << num(kLeft - 8) << "\" y=\""
      << num(top + kLaneHeight / 2) << "\" text-anchor=\"end\">" << xmlEscape(text(probe, "name"))
      << "</text><text class=\"lane-scale\" x=\"" << num(kLeft - 8) << "\" y=\""
      << num(top + kLaneHeight / 2 + 14) << "\" text-anchor=\"end\">top "
      << xmlEscape(duration(slowest)) << "</text>";
  for (const auto& s : samples) {
    const bool ok = flag(s, "ok");
    const double frac =
        static_cast<double>(nanos(s, "durationNs").value_or(0)) / static_cast<double>(slowest);
    const double y = top + kLaneHeight - 4 - frac * (kLaneHeight - 8);
    svg << "<circle class=\"sample " << (ok ? "ok" : "fail") << "\" cx=\""
        << num(l.x(nanos(s, "offsetNs").value_or(0))) << "\" cy=\"" << num(y) << "\" r=\""
        << (ok ? "2.5" : "3.5") << "\" fill=\"" << (ok ? "#1f77b4" : "#d62728") << "\"";
    if (ok) {
      svg << "/>";
    } else {
      svg << "><title>" << xmlEscape(duration(nanos(s, "durationNs")) + ": " + text(s, "detail"))
          << "</title></circle>";
    }
  }
  svg << "</g>\n";
}

}  // namespace

std::string timelineSvg(const Json& report) {
  Layout l;
  l.span = spanOf(report);
  const auto windows = faultWindows(report, l, l.labelRows);
  l.lanesTop = kLabelRow + kLabelRow * l.labelRows + 8;
  const auto& probes = list(report, "probes");
  const double lanes = static_cast<double>(std::max<size_t>(probes.size(), 1));
  l.lanesBottom = l.lanesTop + lanes * (kLaneHeight + kLaneGap);
  const double height = l.lanesBottom + 44;
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 "
      << num(kWidth) << " " << num(height) << "\" width=\"" << num(kWidth) << "\" height=\""
      << num(height) << "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" "
      << "aria-label=\"timeline of the run\">\n";
  for (size_t i = 0; i < probes.size(); ++i) {
    drawLane(probes[i], l.lanesTop + static_cast<double>(i) * (kLaneHeight + kLaneGap), l, svg);
  }
  for (const auto& w : windows) {
    const std::string step = text(*w.fault, "step");
    svg << "<rect class=\"fault-window\" data-step=\"" << xmlEscape(step) << "\" x=\"" << num(w.x0)
        << "\" y=\"" << num(l.lanesTop - 4) << "\" width=\"" << num(w.x1 - w.x0) << "\" height=\""
        << num(l.lanesBottom - l.lanesTop) << "\" fill=\"#ff7f0e\" "
        << "fill-opacity=\"0.18\" stroke=\"#ff7f0e\"><title>"
        << xmlEscape("fault " + step + ": " + text(*w.fault, "type") + " on " +
                     text(*w.fault, "target"))
        << "</title></rect><text class=\"fault-label\" x=\"" << num(w.x0 + 3) << "\" y=\""
        << num(kLabelRow * (w.row + 2)) << "\" fill=\"#a04000\">" << xmlEscape(step) << "</text>\n";
  }
  drawPhases(report, l, svg);
  drawAxis(l, svg);
  svg << "</svg>";
  return svg.str();
}

}  // namespace chaosd::report
