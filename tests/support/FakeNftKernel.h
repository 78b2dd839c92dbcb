#pragma once

// FakeNftKernel: the NftKernel of the nftables faults over a FakeNetfilter. run() applies the
// nft text (FakeNftScript.h) to a copy of the namespace's state and keeps the copy only when
// every command succeeded: one transaction, all or nothing, as libnftables' batch. listJson()
// answers in libnftables' JSON shape. A planned failure (failRun, failList, failCommand) makes
// a call fail with nft's error text; text nft would not parse fails the test.
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "injectors/network/NftKernel.h"
#include "tests/support/FakeNetfilter.h"
#include "tests/support/FakeNftScript.h"

namespace chaosd::testing {

class FakeNftKernel final : public NftKernel {
 public:
  explicit FakeNftKernel(std::shared_ptr<FakeNetfilter> state = std::make_shared<FakeNetfilter>())
      : state_(std::move(state)) {}

  Result<std::string> run(const std::string& netnsPath, const std::string& commands) override {
    scripts_.push_back(commands);
    if (auto e = state_->failures.onCall("run")) return std::move(*e);
    if (state_->gone(netnsPath)) return FakeNetfilter::goneError(netnsPath);
    sessions_.insert(netnsPath);
    FakeNetfilterNs copy = state_->netns(netnsPath);
    try {
      std::string out = FakeNftScript::apply(copy, commands, failOn_, failText_);
      state_->netns(netnsPath) = std::move(copy);  // the transaction commits
      return out;
    } catch (const FakeNftScript::SyntaxError& e) {
      ADD_FAILURE() << "FakeNftKernel: nft would not parse this: " << e.what();
      return nftError(e.what());
    } catch (const FakeNftScript::Refused& e) {
      return nftError(e.what());
    }
  }

  Result<std::string> listJson(const std::string& netnsPath, const std::string& what,
                               NftSessionUse use) override {
    if (auto e = state_->failures.onCall("listJson")) return std::move(*e);
    if (state_->gone(netnsPath)) return FakeNetfilter::goneError(netnsPath);
    if (use == NftSessionUse::kPooled) sessions_.insert(netnsPath);
    ++listings_;
    if (use == NftSessionUse::kOneOff) ++oneOffListings_;
    const std::string prefix = "table inet ";
    if (!what.starts_with(prefix)) {
      ADD_FAILURE() << "FakeNftKernel: lists only `table inet T`, not `" << what << "`";
      return nftError("Error: syntax error");
    }
    const FakeNftTable* t = state_->table(netnsPath, what.substr(prefix.size()));
    if (t == nullptr) {
      return nftError(
          "Error: No such file or directory; did you mean table in family inet?\n"
          "list " +
          what);
    }
    return FakeNetfilter::listJson(*t).dump();
  }

  void forget(const std::string& netnsPath) override { sessions_.erase(netnsPath); }

  // The Nth run() from now fails with nft's `error` ("Error: ..."), changing nothing.
  void failRun(int nth, const std::string& error) {
    state_->failures.failNth("run", nth, nftError(error));
  }
  // The Nth listJson() from now fails with `error`.
  void failList(int nth, Error error) {
    state_->failures.failNth("listJson", nth, std::move(error));
  }
  // Every command containing `text` is refused with `why` where it stands in its transaction,
  // after the commands before it were applied (to the copy the failure throws away).
  void failCommand(std::string text, std::string why) {
    failOn_ = std::move(text);
    failText_ = std::move(why);
  }

  FakeNetfilter& state() { return *state_; }
  // Every script run() was given, in order (failed ones too).
  const std::vector<std::string>& scripts() const { return scripts_; }
  // The namespaces holding a pooled session (made by run or a pooled listing, dropped by forget).
  const std::set<std::string>& sessions() const { return sessions_; }
  int oneOffListings() const { return oneOffListings_; }
  // Every listJson() call that got past a planned failure, pooled or one-off.
  int listings() const { return listings_; }

  // An error as LibnftablesKernel returns nft's (NftSession::run).
  static Error nftError(const std::string& text) {
    return Error(ErrorCode::kKernel, "nftables: " + text);
  }

 private:
  std::shared_ptr<FakeNetfilter> state_;
  std::vector<std::string> scripts_;
  std::set<std::string> sessions_;
  int oneOffListings_ = 0;
  int listings_ = 0;
  std::string failOn_;
  std::string failText_;
};

}  // namespace chaosd::testing
