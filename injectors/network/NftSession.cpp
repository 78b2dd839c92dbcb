#include "injectors/network/NftSession.h"

#include <nftables/libnftables.h>
#include <sys/stat.h>

#include <cerrno>

namespace chaosd {
namespace {

// The calling thread's network namespace, as the identity of its file.
Result<std::pair<dev_t, ino_t>> currentNetns() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) {
    return Error::fromErrno("stat /proc/thread-self/ns/net", errno);
  }
  return std::pair{st.st_dev, st.st_ino};
}

}  // namespace

NftSession::NftSession() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
  if (ctx_ != nullptr) {
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
  }
}

NftSession::~NftSession() {
  if (ctx_ != nullptr) nft_ctx_free(ctx_);
}

Result<std::string> NftSession::listJson(const std::string& what) {
  return runWith("list " + what, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
}

Result<std::string> NftSession::runWith(const std::string& commands, unsigned flags) {
  std::lock_guard lock(mu_);
  if (ctx_ == nullptr) return Error(ErrorCode::kInternal, "nft_ctx_new failed");
  nft_ctx_output_set_flags(ctx_, flags);
  const int rc = nft_run_cmd_from_buffer(ctx_, commands.c_str());
  const std::string out = nft_ctx_get_output_buffer(ctx_);
  std::string err = nft_ctx_get_error_buffer(ctx_);
  if (rc != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    return Error(ErrorCode::kKernel, "nftables: " + (err.empty() ? "failed" : err));
  }
  return out;
}

Result<std::shared_ptr<NftSession>> NftSessionPool::here() {
  auto ns = currentNetns();
  if (!ns) return std::move(ns).error();
  std::lock_guard lock(mu_);
  auto& slot = sessions_[*ns];
  if (!slot) slot = std::make_shared<NftSession>();
  return slot;
}

void NftSessionPool::dropHere() {
  auto ns = currentNetns();
  if (!ns) return;
  std::shared_ptr<NftSession> last;  // closed outside the lock
  std::lock_guard lock(mu_);
  auto it = sessions_.find(*ns);
  if (it == sessions_.end()) return;
  last = std::move(it->second);
  sessions_.erase(it);
}

}  // namespace chaosd
