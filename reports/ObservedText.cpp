#include "reports/ObservedText.h"

#include <cstdio>
#include <iterator>

namespace chaosd::report {
namespace {

std::string ms(double value) {
  char buf[32];
  if (value < 10) {
    std::snprintf(buf, sizeof buf, "%.2f ms", value);
  } else if (value < 1000) {
    std::snprintf(buf, sizeof buf, "%.0f ms", value);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f s", value / 1000);
  }
  return buf;
}

// 1.5 GiB, 256 MiB, 12.3 KiB, 512 B: for reading, not for parsing back.
std::string size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(units)) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0 || v >= 100 || v == static_cast<double>(static_cast<uint64_t>(v))) {
    std::snprintf(buf, sizeof buf, "%.0f %s", v, units[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

uint64_t count(const Json& j, const char* key) {
  const double n = number(j, key, 0);
  return n > 0 ? static_cast<uint64_t>(n) : 0;
}

std::string process(const Json& p) {
  return std::to_string(count(p, "pid")) +
         (text(p, "comm").empty() ? "" : " (" + text(p, "comm") + ")");
}

// A restart by what it runs: "19557 (python3, started as ip)" when it exec'd after it was
// seen; "19557 (started as ip)" when it was gone by the revert (what it became is unknown).
std::string restartedProcess(const Json& r) {
  const std::string first = text(r, "startedAs");
  if (first.empty()) return process(r);
  const std::string comm = text(r, "comm");
  const std::string pid = std::to_string(count(r, "pid"));
  if (comm == first) return pid + " (started as " + first + ")";
  return pid + " (" + comm + ", started as " + first + ")";
}

void killLines(const Json& o, std::vector<std::string>& out) {
  if (flag(o, "noop")) {
    out.push_back("nothing matched the selector: no signal sent");
    return;
  }
  const std::string signal = text(o, "signalName").empty() ? "the signal" : text(o, "signalName");
  out.push_back(signal + " sent to " + std::to_string(count(o, "signalled")) + " process(es), " +
                std::to_string(count(o, "died")) + " died");
  for (const auto& v : list(o, "victims")) {
    const std::string outcome = text(v, "outcome");
    if (outcome == "signalled") {
      out.push_back(process(v) +
                    (v.contains("diedAfterSignalMs") && v["diedAfterSignalMs"].is_number()
                         ? ": died " + ms(number(v, "diedAfterSignalMs")) + " after the signal"
                         : ": had not died when the watch ended"));
    } else if (!outcome.empty()) {
      out.push_back(process(v) + ": " + outcome +
                    (text(v, "error").empty() ? "" : " (" + text(v, "error") + ")"));
    }
  }
  const auto& restarts = list(o, "restarts");
  for (const auto& r : restarts) {
    std::string line = "restarted: " + restartedProcess(r);
    if (r.contains("restartMs") && r["restartMs"].is_number()) {
      line += " " + ms(number(r, "restartMs")) + " after " +
              (r.contains("replaces") ? std::to_string(count(r, "replaces")) : "the kill") +
              " was killed";
    }
    out.push_back(line);
  }
  if (restarts.empty() && count(o, "died") > 0) {
    out.push_back("no process matching the selector appeared in the " + ms(number(o, "watchedMs")) +
                  " watched: not restarted");
  }
}

void pauseLines(const Json& o, std::vector<std::string>& out) {
  if (flag(o, "noop")) {
    out.push_back("nothing matched the selector: nothing stopped");
    return;
  }
  out.push_back("SIGSTOP: " + std::to_string(count(o, "stopped")) + " process(es) seen stopped" +
                (count(o, "notConfirmed") > 0
                     ? ", " + std::to_string(count(o, "notConfirmed")) + " not confirmed"
                     : ""));
  if (!list(o, "alreadyStopped").empty()) {
    out.push_back(std::to_string(list(o, "alreadyStopped").size()) +
                  " already stopped before the fault: left stopped");
  }
}

void fillLines(const Json& o, std::vector<std::string>& out) {
  const bool usage = o.contains("usageBefore") && o.contains("usageAfter");
  if (flag(o, "noop")) {
    out.push_back(usage
                      ? "already at " + percent(number(o, "usageBefore")) + " use: nothing to fill"
                      : "nothing to fill");
    return;
  }
  if (!o.contains("bytesAllocated")) return;
  std::string line = size(count(o, "bytesAllocated")) + " allocated";
  if (count(o, "bytesPlanned") > 0 && count(o, "bytesPlanned") != count(o, "bytesAllocated")) {
    line += " of " + size(count(o, "bytesPlanned")) + " planned";
  }
  if (!text(o, "method").empty()) line += " (" + text(o, "method") + ")";
  if (usage) {
    line += "; the filesystem went from " + percent(number(o, "usageBefore")) + " to " +
            percent(number(o, "usageAfter")) + " used";
  }
  out.push_back(line);
  if (flag(o, "partial")) out.push_back("partial fill: " + text(o, "partialReason"));
}

void ioLines(const Json& o, std::vector<std::string>& out) {
  if (!o.contains("totalMBps")) return;
  char buf[160];
  std::snprintf(buf, sizeof buf, "read %.1f MB/s, wrote %.1f MB/s (%.1f MB/s in all over %.1f s)",
                number(o, "readMBps"), number(o, "writeMBps"), number(o, "totalMBps"),
                number(o, "loadSeconds"));
  out.push_back(buf);
  out.push_back(size(count(o, "bytesRead")) + " read, " + size(count(o, "bytesWritten")) +
                " written, direct IO " + (flag(o, "directAtEnd") ? "yes" : "no"));
  for (const auto& e : list(o, "workerErrors")) {
    if (e.is_string()) out.push_back("worker error: " + e.get<std::string>());
  }
}

// cpu.stress and memory.stress: per place (host, or a target's cgroup), asked against achieved,
// and the pressure (PSI "some") the place saw during the fault.
void stressLines(const Json& o, std::vector<std::string>& out) {
  for (const auto& place : list(o, "places")) {
    if (!place.is_object()) continue;
    char buf[200];
    if (place.contains("askedLoad")) {
      std::snprintf(buf, sizeof buf, "cpu: asked %.0f%% per worker, achieved %.1f%% (%.1f CPU-s)",
                    number(place, "askedLoad") * 100, number(place, "achievedLoad") * 100,
                    number(place, "cpuSeconds"));
      out.push_back(buf);
    } else if (place.contains("askedBytes")) {
      std::string line = "memory: held " + size(count(place, "heldBytes")) + " of " +
                         size(count(place, "askedBytes")) + " asked";
      if (flag(place, "stoppedAtReserve")) {
        line += ", stopped at the reserve of " + size(count(place, "reserveBytes"));
      }
      out.push_back(line);
      if (!text(place, "error").empty())
        out.push_back("memory hog failed: " + text(place, "error"));
    }
    if (place.contains("pressure") && place["pressure"].is_object()) {
      std::string line;
      for (const char* r : {"cpu", "memory", "io"}) {
        const Json& p = place["pressure"].contains(r) ? place["pressure"][r] : Json();
        if (!p.is_object()) continue;
        std::snprintf(buf, sizeof buf, "%s%s %.1f%%", line.empty() ? "" : ", ", r,
                      number(p, "someShareDuring") * 100);
        line += buf;
      }
      if (!line.empty()) out.push_back("stalled during the fault (PSI some): " + line);
    }
    for (const auto& e : list(place, "endedBeforeRevert")) {
      if (e.is_object()) {
        out.push_back("pid " + std::to_string(count(e, "pid")) + " " + text(e, "how") +
                      " before the revert");
      }
    }
  }
}

void syscallLines(const Json& fault, const Json& o, std::vector<std::string>& out) {
  if (!o.contains("matched")) return;
  const Json& args = fault.contains("args") && fault["args"].is_object() ? fault["args"] : Json();
  std::string effect =
      text(fault, "type") == "syscall.delay"
          ? "delayed" + (text(args, "delay").empty() ? "" : " by " + text(args, "delay"))
          : "failed" + (text(args, "errno").empty() ? "" : " with " + text(args, "errno"));
  out.push_back(std::to_string(count(o, "matched")) + " call(s) matched, " +
                std::to_string(count(o, "hit")) + " " + effect + ", " +
                std::to_string(count(o, "passed")) + " let through");
}

void corruptLines(const Json& o, std::vector<std::string>& out) {
  if (!o.contains("matched")) return;
  out.push_back(std::to_string(count(o, "matched")) + " open(s) matched, " +
                std::to_string(count(o, "corrupted")) + " given a corrupted copy, " +
                std::to_string(count(o, "passed")) + " let through (" +
                std::to_string(count(o, "notReadOnly")) + " not read-only, " +
                std::to_string(count(o, "copyFailed")) + " not copied)");
}

// Host names in a network fault's filter: what each resolved to when the fault was prepared.
void hostLines(const Json& o, std::vector<std::string>& out) {
  if (!o.contains("hosts") || !o["hosts"].is_object()) return;
  for (const auto& [name, addresses] : o["hosts"].items()) {
    std::string line = name + " resolved to";
    if (addresses.is_array()) {
      for (size_t i = 0; i < addresses.size(); ++i) {
        line += (i ? ", " : " ") +
                (addresses[i].is_string() ? addresses[i].get<std::string>() : addresses[i].dump());
      }
    }
    out.push_back(line);
  }
  // `refresh`: what changed while the fault was held.
  auto addresses = [](const Json& list) {
    std::string s;
    if (!list.is_array()) return std::string("?");
    for (const auto& a : list)
      s += (s.empty() ? "" : ", ") + (a.is_string() ? a.get<std::string>() : a.dump());
    return s.empty() ? std::string("nothing") : s;
  };
  auto after = [](const Json& e) { return " after " + ms(number(e, "atMs", 0)); };
  for (const auto& e : list(o, "hostChanges")) {
    out.push_back(text(e, "name") + " changed" + after(e) + ": " + addresses(list(e, "from")) +
                  " -> " + addresses(list(e, "to")) + " (the filter followed)");
  }
  for (const auto& e : list(o, "hostsUnresolved")) {
    out.push_back(text(e, "name") + " stopped resolving" + after(e) + " (" + text(e, "error") +
                  "): kept " + addresses(list(e, "kept")));
  }
  for (const auto& e : list(o, "hostRefreshErrors")) {
    out.push_back("refresh failed" + after(e) + ": " + text(e, "error"));
  }
}

void packetLines(const Json& o, std::vector<std::string>& out) {
  hostLines(o, out);
  if (o.contains("resetsSent")) {  // network.reset's rule counters at the revert
    out.push_back(std::to_string(count(o, "resetsSent")) + " TCP reset(s) sent");
  }
  if (o.contains("queued")) {  // the NFQUEUE consumer
    std::string line = std::to_string(count(o, "queued")) + " packet(s) held and released (" +
                       std::to_string(count(o, "releasedAtStop")) +
                       " released early at the revert)";
    if (count(o, "overflow") > 0) {
      line += "; " + std::to_string(count(o, "overflow")) + " passed undelayed (queue full)";
    }
    if (count(o, "failOpen") > 0) {
      line += "; " + std::to_string(count(o, "failOpen")) + " passed undelayed (fail-open)";
    }
    out.push_back(line);
    return;
  }
  if (o.contains("packets")) {  // the qdisc leaf's counters at the revert
    out.push_back(std::to_string(count(o, "packets")) + " packet(s) (" + size(count(o, "bytes")) +
                  ") through the fault's qdisc, " + std::to_string(count(o, "drops")) +
                  " dropped, " + std::to_string(count(o, "overlimits")) + " over the limit");
  }
}

// io.throttle: per cgroup, the IO it did on the device under the throttle, and what became of
// each file written (restored to its value before, already so, or gone with its cgroup).
void throttleLines(const Json& o, std::vector<std::string>& out) {
  for (const auto& place : list(o, "places")) {
    if (!place.is_object()) continue;
    if (place.contains("during") && place["during"].is_object()) {
      const Json& d = place["during"];
      const double seconds = number(d, "seconds");
      char buf[240];
      std::snprintf(
          buf, sizeof buf,
          "%s on %s, %.1f s under the throttle: wrote %s in %llu op(s) (%s/s), read %s "
          "in %llu op(s) (%s/s)",
          text(place, "cgroup").c_str(), text(o, "device").c_str(), seconds,
          size(count(d, "writeBytes")).c_str(),
          static_cast<unsigned long long>(count(d, "writeOps")),
          size(seconds > 0
                   ? static_cast<uint64_t>(static_cast<double>(count(d, "writeBytes")) / seconds)
                   : 0)
              .c_str(),
          size(count(d, "readBytes")).c_str(), static_cast<unsigned long long>(count(d, "readOps")),
          size(seconds > 0
                   ? static_cast<uint64_t>(static_cast<double>(count(d, "readBytes")) / seconds)
                   : 0)
              .c_str());
      out.push_back(buf);
    }
    for (const auto& f : list(place, "files")) {
      if (!f.is_object()) continue;
      const std::string previous = text(f, "previous");
      out.push_back(text(f, "file") + ": set " + text(f, "written") + ", " + text(f, "action") +
                    " (before: " + (previous.empty() ? "none" : previous) + ")");
    }
  }
}

}  // namespace

std::vector<std::string> observedLines(const Json& fault, size_t maxLines) {
  std::vector<std::string> out;
  if (!fault.is_object() || !fault.contains("observed") || !fault["observed"].is_object()) {
    return out;
  }
  const Json& o = fault["observed"];
  const std::string type = text(fault, "type");
  if (type == "process.kill") {
    killLines(o, out);
  } else if (type == "process.pause") {
    pauseLines(o, out);
  } else if (type == "disk.fill") {
    fillLines(o, out);
  } else if (type == "disk.io-load") {
    ioLines(o, out);
  } else if (type == "cpu.stress" || type == "memory.stress") {
    stressLines(o, out);
  } else if (type == "io.throttle") {
    throttleLines(o, out);
  } else if (type.rfind("syscall.", 0) == 0) {
    syscallLines(fault, o, out);
  } else if (type == "file.corrupt") {
    corruptLines(o, out);
  } else if (type.rfind("network.", 0) == 0) {
    packetLines(o, out);
  }
  if (maxLines > 0 && out.size() > maxLines) {
    const size_t more = out.size() - (maxLines - 1);
    out.resize(maxLines - 1);
    out.push_back("... and " + std::to_string(more) + " more (report.json has them all)");
  }
  return out;
}

}  // namespace chaosd::report
