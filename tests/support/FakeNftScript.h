#pragma once

// FakeNftScript: the nft text the nftables faults send (NftRules.h: the run's table block, `add
// rule` with their matches, `delete rule ... handle N`, `delete table`; the host sets: `add
// set`, `add element`, `flush set`, `delete set`, `@set` matches; and `flush`, `list`),
// parsed and applied to one namespace's FakeNetfilter state as libnftables and the kernel
// would: handles drawn from the table's counter, ENOENT for a table, chain or handle not there.
// Anything else is a syntax error, which FakeNftKernel turns into a failed test: a change to the
// injectors' text must come with a change here, not slip past a fake that accepts anything.
#include <netinet/in.h>

#include <cctype>
#include <stdexcept>
#include <string>
#include <vector>

#include "chaosd/base/Units.h"
#include "tests/support/FakeNetfilter.h"

namespace chaosd::testing {

class FakeNftScript {
 public:
  // Text nft cannot parse: the test's fault, not the injector's.
  struct SyntaxError : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  // A command the kernel (or nft's evaluation) refuses: the error text nft prints.
  struct Refused : std::runtime_error {
    using std::runtime_error::runtime_error;
  };

  // Applies every command of `script` to `ns` in order; what `list` commands print. Throws on
  // the first failure, leaving `ns` half changed: the caller applies to a copy (a transaction).
  // A command containing `failOn` (when not empty) is refused with `failText`.
  static std::string apply(FakeNetfilterNs& ns, const std::string& script,
                           const std::string& failOn = "", const std::string& failText = "") {
    std::string out;
    for (auto& cmd : commands(tokenize(script))) {
      FakeNftScript p(ns, cmd);
      if (!failOn.empty() && p.source_.find(failOn) != std::string::npos) p.refuse(failText);
      out += p.run();
    }
    return out;
  }

  // A table as `nft list table` prints it.
  static std::string render(const FakeNftTable& t) {
    std::string s = "table " + t.family + " " + t.name + " {\n";
    for (const auto& c : t.chains) {
      s += "\tchain " + c.name + " {\n";
      if (!c.hook.empty()) {
        s += "\t\ttype " + c.type + " hook " + c.hook + " priority " + std::to_string(c.priority) +
             "; policy " + c.policy + ";\n";
      }
      for (const auto& r : c.rules) {
        s += "\t\t" + r.text + (r.comment.empty() ? "" : " comment \"" + r.comment + "\"") + "\n";
      }
      s += "\t}\n";
    }
    return s + "}\n";
  }

 private:
  struct Token {
    std::string text;
    bool quoted = false;
  };
  using Tokens = std::vector<Token>;

  FakeNftScript(FakeNetfilterNs& ns, const Tokens& cmd) : ns_(ns), t_(cmd) {
    for (const auto& tok : cmd) {
      source_ += (source_.empty() ? "" : " ") + (tok.quoted ? "\"" + tok.text + "\"" : tok.text);
    }
  }

  static Tokens tokenize(const std::string& s) {
    Tokens out;
    for (size_t i = 0; i < s.size();) {
      const char c = s[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++i;
      } else if (c == '\n' || c == ';' || c == '{' || c == '}' || c == ',') {
        out.push_back({std::string(1, c == '\n' ? ';' : c)});
        ++i;
      } else if (c == '"') {
        const size_t end = s.find('"', i + 1);
        if (end == std::string::npos) throw SyntaxError("Error: unterminated string");
        out.push_back({s.substr(i + 1, end - i - 1), true});
        i = end + 1;
      } else {
        size_t end = i;
        while (end < s.size() &&
               std::string_view(" \t\r\n;{},\"").find(s[end]) == std::string::npos) {
          ++end;
        }
        out.push_back({s.substr(i, end - i)});
        i = end;
      }
    }
    return out;
  }

  // Top-level commands: split at ';' (or a newline) outside braces.
  static std::vector<Tokens> commands(const Tokens& all) {
    std::vector<Tokens> out(1);
    int depth = 0;
    for (const auto& tok : all) {
      if (!tok.quoted && tok.text == "{") ++depth;
      if (!tok.quoted && tok.text == "}" && --depth < 0) {
        throw SyntaxError("Error: syntax error, unexpected '}'");
      }
      if (depth == 0 && !tok.quoted && tok.text == ";") {
        if (!out.back().empty()) out.emplace_back();
        continue;
      }
      out.back().push_back(tok);
    }
    if (depth != 0) throw SyntaxError("Error: syntax error, unexpected end of file");
    if (out.back().empty()) out.pop_back();
    return out;
  }

  // ---- reading tokens ----
  bool end() const { return i_ >= t_.size(); }
  bool peek(const char* w) const { return !end() && !t_[i_].quoted && t_[i_].text == w; }
  bool accept(const char* w) {
    if (!peek(w)) return false;
    ++i_;
    return true;
  }
  void expect(const char* w) {
    if (!accept(w)) syntax();
  }
  std::string word() {
    if (end() || t_[i_].quoted ||
        std::string_view("{};,").find(t_[i_].text[0]) != std::string::npos) {
      syntax();
    }
    return t_[i_++].text;
  }
  std::string quoted() {
    if (end() || !t_[i_].quoted) syntax();
    return t_[i_++].text;
  }
  std::string identifier() {
    std::string w = word();
    if (!std::isalpha(static_cast<unsigned char>(w[0])) && w[0] != '_') syntax();
    for (char c : w) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') syntax();
    }
    return w;
  }
  std::string family() {
    std::string f = word();
    if (f != "inet" && f != "ip" && f != "ip6") syntax();
    return f;
  }
  [[noreturn]] void syntax() const {
    const std::string at = end() ? "end of command" : "\"" + t_[i_].text + "\"";
    throw SyntaxError("Error: syntax error, unexpected " + at + "\n" + source_);
  }
  [[noreturn]] void refuse(const std::string& why) const {
    throw Refused("Error: Could not process rule: " + why + "\n" + source_);
  }
  [[noreturn]] void missing() const { refuse("No such file or directory"); }

  // ---- commands ----
  std::string run() {
    const std::string verb = word();
    if (verb == "table") return addTable(true);
    if (verb == "add" && accept("table")) return addTable(false);
    if (verb == "add" && accept("chain")) return addChain();
    if (verb == "add" && accept("rule")) return addRule();
    if (verb == "add" && accept("set")) return addSet();
    if (verb == "add" && accept("element")) return addElements();
    if (verb == "delete" && accept("table")) return deleteTable();
    if (verb == "delete" && accept("rule")) return deleteRule();
    if (verb == "delete" && accept("set")) return deleteSet();
    if (verb == "flush" && accept("set")) return flushSet();
    if (verb == "flush") return flush();
    if (verb == "list") return list();
    syntax();
  }

  FakeNftTable& table() {
    const std::string f = family();
    FakeNftTable* tab = ns_.table(f, identifier());
    if (tab == nullptr) missing();
    return *tab;
  }
  FakeNftChain& chainOf(FakeNftTable& tab) {
    FakeNftChain* c = tab.chain(identifier());
    if (c == nullptr) missing();
    return *c;
  }

  // `table F T { chain ... }` and `add table F T [{ ... }]`: an existing table is kept.
  std::string addTable(bool blockRequired) {
    const std::string f = family();
    const std::string name = identifier();
    if (ns_.table(f, name) == nullptr) {
      FakeNftTable t;
      t.family = f;
      t.name = name;
      t.handle = ns_.nextTableHandle++;
      ns_.tables.push_back(std::move(t));
    }
    FakeNftTable& tab = *ns_.table(f, name);
    if (!accept("{")) {
      if (blockRequired) syntax();
    } else {
      while (!accept("}")) {
        if (accept(";")) continue;
        expect("chain");
        const std::string chain = identifier();
        expect("{");
        defineChain(tab, chain, true);
      }
    }
    if (!end()) syntax();
    return "";
  }

  std::string addChain() {
    FakeNftTable& tab = table();
    const std::string name = identifier();
    defineChain(tab, name, accept("{"));
    if (!end()) syntax();
    return "";
  }

  // A chain and, when `body`, its spec up to the closing brace. An existing chain is kept;
  // moving a base chain to another hook is refused, as the kernel does.
  void defineChain(FakeNftTable& tab, const std::string& name, bool body) {
    FakeNftChain spec;
    spec.name = name;
    while (body && !accept("}")) {
      if (accept(";")) continue;
      if (accept("type")) {
        spec.type = word();
        if (spec.type != "filter") syntax();
        expect("hook");
        spec.hook = word();
        if (std::string_view(" prerouting input forward output postrouting ")
                .find(" " + spec.hook + " ") == std::string_view::npos) {
          syntax();
        }
        expect("priority");
        const std::string prio = word();
        const size_t digits = prio.size() - (prio[0] == '-' ? 1 : 0);
        if (digits == 0 || digits > 5) syntax();
        for (size_t k = prio.size() - digits; k < prio.size(); ++k) {
          if (!std::isdigit(static_cast<unsigned char>(prio[k]))) syntax();
        }
        spec.priority = std::stoi(prio);
      } else if (accept("policy")) {
        spec.policy = word();
        if (spec.policy != "accept" && spec.policy != "drop") syntax();
      } else {
        syntax();
      }
    }
    if (!spec.hook.empty() && spec.policy.empty()) spec.policy = "accept";
    if (FakeNftChain* existing = tab.chain(name)) {
      if (!spec.hook.empty() && existing->hook != spec.hook) refuse("Operation not supported");
      return;
    }
    spec.handle = tab.nextHandle++;
    tab.chains.push_back(std::move(spec));
  }

  std::string addRule() {
    FakeNftTable& tab = table();
    FakeNftChain& chain = chainOf(tab);
    table_ = &tab;
    FakeNftRule rule = statements();
    rule.handle = tab.nextHandle++;
    chain.rules.push_back(std::move(rule));
    return "";
  }

  FakeNftSet& setOf(FakeNftTable& tab) {
    FakeNftSet* set = tab.set(identifier());
    if (set == nullptr) missing();
    return *set;
  }

  // `add set F T S { type ipv4_addr|ipv6_addr; }`: an existing set is kept.
  std::string addSet() {
    FakeNftTable& tab = table();
    const std::string name = identifier();
    expect("{");
    expect("type");
    const std::string type = word();
    if (type != "ipv4_addr" && type != "ipv6_addr") syntax();
    accept(";");
    expect("}");
    if (!end()) syntax();
    if (tab.set(name) == nullptr) tab.sets.push_back(FakeNftSet{name, type, tab.nextHandle++, {}});
    return "";
  }

  // `add element F T S { a, b }`: addresses of the set's family.
  std::string addElements() {
    FakeNftTable& tab = table();
    FakeNftSet& set = setOf(tab);
    const bool v6 = set.type == "ipv6_addr";
    std::string list = values([&](const std::string& v) {
      auto c = units::parseCidr(v);
      return c.ok() && c->family == (v6 ? AF_INET6 : AF_INET) && v.find('/') == std::string::npos;
    });
    if (!end()) syntax();
    if (list.starts_with("{ ")) list = list.substr(2, list.size() - 4);
    for (size_t at = 0; at < list.size();) {
      size_t comma = list.find(", ", at);
      if (comma == std::string::npos) comma = list.size();
      set.elements.insert(list.substr(at, comma - at));
      at = comma + 2;
    }
    return "";
  }

  std::string flushSet() {
    FakeNftTable& tab = table();
    FakeNftSet& set = setOf(tab);
    if (!end()) syntax();
    set.elements.clear();
    return "";
  }

  // A set a rule still refers to cannot go (EBUSY), as in the kernel.
  std::string deleteSet() {
    FakeNftTable& tab = table();
    const std::string name = setOf(tab).name;
    if (!end()) syntax();
    for (const auto& c : tab.chains) {
      for (const auto& r : c.rules) {
        if ((r.text + " ").find("@" + name + " ") != std::string::npos) {
          refuse("Device or resource busy");
        }
      }
    }
    std::erase_if(tab.sets, [&](const FakeNftSet& x) { return x.name == name; });
    return "";
  }

  std::string deleteTable() {
    const std::string f = family();
    const std::string name = identifier();
    if (!end()) syntax();
    if (!ns_.eraseTable(f, name)) missing();
    return "";
  }

  std::string deleteRule() {
    FakeNftTable& tab = table();
    FakeNftChain& chain = chainOf(tab);
    expect("handle");
    const uint64_t handle = std::stoull(number());
    if (!end()) syntax();
    for (auto it = chain.rules.begin(); it != chain.rules.end(); ++it) {
      if (it->handle == handle) {
        chain.rules.erase(it);
        return "";
      }
    }
    missing();
  }

  std::string flush() {
    if (accept("ruleset")) {
      if (!end()) syntax();
      ns_.tables.clear();
      return "";
    }
    const bool whole = accept("table");
    if (!whole) expect("chain");
    FakeNftTable& tab = table();
    if (whole) {
      for (auto& c : tab.chains) c.rules.clear();
    } else {
      chainOf(tab).rules.clear();
    }
    if (!end()) syntax();
    return "";
  }

  std::string list() {
    if (accept("tables")) {
      std::string out;
      for (const auto& t : ns_.tables) out += "table " + t.family + " " + t.name + "\n";
      return out;
    }
    expect("table");
    const FakeNftTable& tab = table();
    if (!end()) syntax();
    return render(tab);
  }

  // ---- a rule's statements ----
  // Matches, then an optional counter, verdict and comment, in the order NftRules writes them.
  FakeNftRule statements() {
    FakeNftRule rule;
    bool tcpOnly = false;
    bool verdict = false;
    while (!end()) {
      if (verdict && !peek("comment")) syntax();  // nothing follows a verdict but its comment
      const std::string w = word();
      std::string part = w;
      if (w == "oifname" || w == "iifname") {
        part += " \"" + quoted() + "\"";
      } else if (w == "ip" || w == "ip6") {
        const std::string dir = word();
        if (dir != "saddr" && dir != "daddr") syntax();
        if (!end() && !t_[i_].quoted && t_[i_].text.starts_with("@")) {
          // A named set of the table, of the match's family.
          const std::string name = word().substr(1);
          const FakeNftSet* set = table_ == nullptr ? nullptr : table_->set(name);
          if (set == nullptr) missing();
          if (set->type != (w == "ip" ? "ipv4_addr" : "ipv6_addr")) {
            refuse("datatype mismatch, set " + name + " has type " + set->type);
          }
          part += " " + dir + " @" + name;
        } else {
          part += " " + dir + " " + values([&](const std::string& v) {
                    auto c = units::parseCidr(v);
                    return c.ok() && c->family == (w == "ip" ? AF_INET : AF_INET6);
                  });
        }
      } else if (w == "meta") {
        expect("l4proto");
        const std::string protos = values([](const std::string& v) {
          return v == "tcp" || v == "udp" || v == "icmp" || v == "ipv6-icmp";
        });
        tcpOnly = protos == "tcp";
        part += " l4proto " + protos;
      } else if (w == "th") {
        const std::string dir = word();
        if (dir != "sport" && dir != "dport") syntax();
        part += " " + dir + " " +
                values([](const std::string& v) { return units::parsePortRange(v).ok(); });
      } else if (w == "numgen") {
        expect("random");
        expect("mod");
        const std::string mod = number();
        expect("<");
        part += " random mod " + mod + " < " + number();
      } else if (w == "counter") {
      } else if (w == "drop" || w == "accept") {
        verdict = true;
      } else if (w == "reject") {
        verdict = true;
        if (accept("with")) {
          expect("tcp");
          expect("reset");
          // nft's evaluation: a TCP reset answers TCP only.
          if (!tcpOnly) refuse("conflicting protocols specified: reject with tcp reset needs tcp");
          part += " with tcp reset";
        }
      } else if (w == "comment") {
        rule.comment = quoted();
        if (rule.comment.size() > 128) refuse("comment too long");
        if (!end()) syntax();
        break;
      } else {
        --i_;
        syntax();
      }
      rule.text += (rule.text.empty() ? "" : " ") + part;
    }
    if (rule.text.empty()) syntax();
    return rule;
  }

  // One value, or an anonymous set `{ a, b }`, each element checked by `valid`.
  template <typename Valid>
  std::string values(Valid valid) {
    if (!accept("{")) {
      std::string v = word();
      if (!valid(v)) syntax();
      return v;
    }
    std::string out = "{ ";
    for (bool first = true; !accept("}"); first = false) {
      if (!first) expect(",");
      std::string v = word();
      if (!valid(v)) syntax();
      out += (first ? "" : ", ") + v;
    }
    if (out == "{ ") syntax();
    return out + " }";
  }

  std::string number() {
    std::string w = word();
    if (w.size() > 18) syntax();
    for (char c : w) {
      if (!std::isdigit(static_cast<unsigned char>(c))) syntax();
    }
    return w;
  }

  FakeNetfilterNs& ns_;
  FakeNftTable* table_ = nullptr;  // the table of the rule being added
  const Tokens& t_;
  size_t i_ = 0;
  std::string source_;
};

}  // namespace chaosd::testing
