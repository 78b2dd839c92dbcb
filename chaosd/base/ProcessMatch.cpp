#include <algorithm>
#include <cctype>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <string_view>

#include "chaosd/base/Log.h"
#include "chaosd/base/ProcessTable.h"
#include "chaosd/base/Users.h"

// ProcessTable's matching of a selector and its protection rules; the scan is in
// ProcessTable.cpp.
namespace chaosd {
namespace detail {

bool inCgroup(const std::string& path, const std::string& cgroup) {
  if (cgroup == "/") return !path.empty();
  return path.starts_with(cgroup) && (path.size() == cgroup.size() || path[cgroup.size()] == '/');
}

}  // namespace detail

using detail::inCgroup;

// ---- matching -------------------------------------------------------------------------

namespace {

bool isEmpty(const ProcessSelector& s) {
  return !s.pid && s.name.empty() && s.cmdline.empty() && s.cgroup.empty() && s.user.empty() &&
         s.pidFile.empty();
}

// The longest run of plain characters that every match of an (already valid) ECMAScript
// pattern must contain, or "" when unsure. A substring search rules out most processes
// far faster than std::regex can. Errs towards "": a shorter literal only costs speed,
// a wrong one would hide targets.
std::string requiredLiteral(std::string_view re) {
  if (re.find('|') != std::string_view::npos) return "";  // alternatives: nothing is required
  std::string best, run;
  bool lastIsLiteral = false;  // the last character of run may still be made optional
  int depth = 0;               // inside (...): skipped, as the group may be optional
  auto endRun = [&] {
    if (run.size() > best.size()) best = run;
    run.clear();
    lastIsLiteral = false;
  };
  for (size_t i = 0; i < re.size(); ++i) {
    char c = re[i];
    if (c == '\\') {
      if (++i == re.size()) return "";
      char e = re[i];
      if (std::ispunct(static_cast<unsigned char>(e)) && depth == 0) {
        run += e;
        lastIsLiteral = true;
      } else if (std::string_view("dDwWsSbBfnrtv").find(e) != std::string_view::npos ||
                 std::ispunct(static_cast<unsigned char>(e))) {
        endRun();
      } else {
        return "";  // \x41, \u0041, \cA, back-references: not worth decoding
      }
      continue;
    }
    switch (c) {
      case '?':
      case '*':
      case '{':  // may repeat zero times: the character before is optional
        if (lastIsLiteral) run.pop_back();
        endRun();
        if (c == '{') {
          i = re.find('}', i);
          if (i == std::string_view::npos) return "";
        }
        break;
      case '+':  // at least once, but "ab+c" need not contain "abc"
        endRun();
        break;
      case '(':
        endRun();
        ++depth;
        break;
      case ')':
        endRun();
        if (--depth < 0) return "";
        break;
      case '[':
        endRun();
        for (++i; i < re.size() && re[i] != ']'; ++i) {
          if (re[i] == '\\') ++i;
        }
        if (i >= re.size()) return "";
        break;
      case '.':
      case '^':
      case '$':
      case ']':
      case '}':
        endRun();
        break;
      default:
        if (depth > 0) break;
        run += c;
        lastIsLiteral = true;
    }
  }
  endRun();
  return best;
}

// libstdc++'s std::regex matches depth-first with a stack frame or more per character a
// match attempt consumes: on an 8 MiB stack ".*" crashed at ~27,000 characters and "(a|b)*"
// at ~12,000 (~7,000 under ASan); Java classpaths make command lines that long. Longer lines
// go to its breadth-first executor, a libstdc++ extension without that recursion, ~5x slower.
constexpr size_t kDepthFirstMaxLength = 1024;
#if defined(__GLIBCXX__)
constexpr auto kBreadthFirst = std::regex_constants::__polynomial;
#else
constexpr auto kBreadthFirst = std::regex_constants::syntax_option_type{};
#endif

// A `cmdline:` pattern, ready to search command lines of any length.
class CmdlineRegex {
 public:
  static Result<CmdlineRegex> compile(const std::string& pattern) {
    CmdlineRegex out;
    constexpr auto kFlags = std::regex::ECMAScript | std::regex::optimize;
    try {
      out.shortLines_.assign(pattern, kFlags);
    } catch (const std::regex_error& e) {
      return Error(ErrorCode::kInvalid, "invalid cmdline regex '" + pattern + "': " + e.what());
    }
    try {
      out.longLines_.assign(pattern, kFlags | kBreadthFirst);
    } catch (const std::regex_error&) {  // the breadth-first executor has no back-references
      return Error(ErrorCode::kInvalid,
                   "cmdline regex '" + pattern + "': back-references (\\1...) are not supported");
    }
    out.literal_ = requiredLiteral(pattern);
    return out;
  }

  bool search(const std::string& commandLine) const {
    if (commandLine.find(literal_) == std::string::npos) return false;
    const std::regex& re = commandLine.size() <= kDepthFirstMaxLength ? shortLines_ : longLines_;
    return std::regex_search(commandLine, re);
  }

 private:
  std::regex shortLines_;
  std::regex longLines_;
  std::string literal_;  // every match contains it; "" when unknown
};

// A selector with its lookups (regex, user, pid file) done once, not once per process.
struct CompiledSelector {
  std::optional<pid_t> pid;
  std::optional<pid_t> pidFromFile;
  std::optional<CmdlineRegex> cmdline;
  std::optional<uid_t> uid;
  std::vector<std::string> cgroups;  // any of: without a trailing '/'; "/" stays "/"
};

Result<uid_t> lookupUser(const std::string& user, const MatchContext& context) {
  if (auto uid = parseUid(user)) return *uid;
  return context.uidByName ? context.uidByName(user) : uidByName(user);
}

Result<CompiledSelector> compile(const ProcessSelector& s, const MatchContext& context) {
  if (isEmpty(s)) return Error(ErrorCode::kInvalid, "process selector sets no field");
  CompiledSelector out;
  out.pid = s.pid;
  if (!s.pidFile.empty()) {
    auto pid = readPidFile(s.pidFile);
    if (!pid) return std::move(pid).error();
    out.pidFromFile = *pid;
  }
  if (!s.cmdline.empty()) {
    auto regex = CmdlineRegex::compile(s.cmdline);
    if (!regex) return std::move(regex).error();
    out.cmdline.emplace(std::move(*regex));
  }
  if (!s.user.empty()) {
    auto uid = lookupUser(s.user, context);
    if (!uid) return std::move(uid).error().withContext("in process selector user");
    out.uid = *uid;
  }
  if (!s.cgroup.empty()) {
    std::vector<std::string> groups{s.cgroup};
    groups.insert(groups.end(), s.moreCgroups.begin(), s.moreCgroups.end());
    for (std::string& g : groups) {
      if (g.empty() || g.front() != '/') {
        return Error(ErrorCode::kInvalid,
                     "cgroup must be a path from the cgroup2 root, starting "
                     "with '/': '" +
                         g + "'");
      }
      while (g.size() > 1 && g.back() == '/') g.pop_back();
      out.cgroups.push_back(std::move(g));
    }
  }
  return out;
}

bool matches(const ProcessInfo& p, const ProcessSelector& s, const CompiledSelector& c) {
  if (c.pid && p.pid != *c.pid) return false;
  if (std::find(s.exceptPids.begin(), s.exceptPids.end(), p.pid) != s.exceptPids.end()) {
    return false;
  }
  if (c.pidFromFile && p.pid != *c.pidFromFile) return false;
  if (!s.name.empty() && p.comm != s.name) return false;
  if (c.uid && p.uid != *c.uid) return false;
  if (!c.cgroups.empty() &&
      std::none_of(c.cgroups.begin(), c.cgroups.end(),
                   [&](const std::string& g) { return inCgroup(p.cgroup, g); })) {
    return false;
  }
  // Last: the only expensive test.
  return !c.cmdline || c.cmdline->search(p.commandLine);
}

}  // namespace

namespace detail {

std::function<bool(const ProcessInfo&)> selectorMatcher(const ProcessSelector& selector) {
  auto compiled = compile(selector, MatchContext{});
  if (!compiled) return {};
  auto c = std::make_shared<const CompiledSelector>(std::move(*compiled));
  return [selector, c](const ProcessInfo& p) {
    try {
      return matches(p, selector, *c);
    } catch (const std::regex_error&) {  // match() reports it; the scan only reads less
      return false;
    }
  };
}

}  // namespace detail

Result<std::vector<ProcessInfo>> ProcessTable::match(const ProcessSelector& selector,
                                                     const MatchContext& context) const {
  if ((fieldsFor(selector) & ~fields_) != 0) {
    return Error(ErrorCode::kInternal, "the process scan left out what this selector needs");
  }
  auto compiled = compile(selector, context);
  if (!compiled) return std::move(compiled).error();
  std::vector<ProcessInfo> found;
  try {
    for (const ProcessInfo& p : processes_) {
      if (p.isKernelThread && !context.includeKernelThreads) continue;
      if (matches(p, selector, *compiled)) found.push_back(p);
    }
  } catch (const std::regex_error& e) {  // error_complexity / error_stack on long lines
    return Error(ErrorCode::kInvalid,
                 "cmdline regex '" + selector.cmdline + "' is too costly: " + e.what());
  }
  return found;
}

// ---- protection -----------------------------------------------------------------------

Result<void> ProcessTable::checkNotProtected(const ProcessInfo& process,
                                             const ProtectionContext& context) const {
  auto refuse = [&](const std::string& why) {
    return Error(ErrorCode::kPermission, "pid " + std::to_string(process.pid) + " (" +
                                             process.comm + ") is protected: " + why);
  };
  auto contains = [](const std::vector<pid_t>& pids, pid_t pid) {
    return std::find(pids.begin(), pids.end(), pid) != pids.end();
  };
  if (process.pid == 1) return refuse("it is the init process (PID 1)");
  if (process.isKernelThread) return refuse("it is a kernel thread");
  if (process.pid == context.selfPid) return refuse("it is chaosd itself");
  if (context.guardedPids.contains(process.pid)) {
    return refuse("it is a helper of chaosd (its guardian)");
  }
  pid_t invoker = context.invokerPid > 0 ? context.invokerPid : context.selfPid;
  if (process.pid == invoker) {
    return refuse("it is the " + context.invokerName + " that started the experiment");
  }
  if (contains(ancestorsOf(invoker), process.pid)) {
    return refuse("it is an ancestor of " + context.invokerName +
                  " (the shell or session that started it)");
  }
  if (invoker != context.selfPid && contains(ancestorsOf(context.selfPid), process.pid)) {
    return refuse("it is an ancestor of chaosd (the service manager or shell that runs it)");
  }
  return success();
}

}  // namespace chaosd
