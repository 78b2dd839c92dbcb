#include "chaosd/app/daemon/Access.h"

#include <grp.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace chaosd::daemon {

AccessPolicy loadAccessPolicy(const std::string& groupName) {
  AccessPolicy p;
  p.groupName = groupName;
  struct group gr {};
  struct group* found = nullptr;
  std::vector<char> buf(16384);
  if (::getgrnam_r(groupName.c_str(), &gr, buf.data(), buf.size(), &found) == 0 &&
      found != nullptr) {
    p.group = found->gr_gid;
  }
  return p;
}

bool allowed(const AccessPolicy& policy, const PeerCred& peer, const std::string& procRoot) {
  if (peer.uid == 0) return true;
  if (!policy.group) return false;
  if (peer.gid == *policy.group) return true;
  std::ifstream in(procRoot + "/" + std::to_string(peer.pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream groups(line.substr(7));
    for (long g; groups >> g;) {
      if (static_cast<gid_t>(g) == *policy.group) return true;
    }
  }
  return false;
}

Credentials callerCredentials(const PeerCred& peer, const std::string& procRoot) {
  return credentialsOfPeer(peer.pid, peer.uid, peer.gid, procRoot);
}

nlohmann::json callerJson(const Credentials& who, pid_t pid) {
  return {
      {"uid", who.uid}, {"gid", who.gid}, {"groups", who.groups}, {"user", who.user}, {"pid", pid}};
}

std::optional<Credentials> credentialsFromJson(const nlohmann::json& caller) {
  if (!caller.is_object() || !caller.contains("uid") || !caller["uid"].is_number_unsigned() ||
      !caller.contains("gid") || !caller["gid"].is_number_unsigned()) {
    return std::nullopt;
  }
  Credentials c;
  c.uid = caller["uid"].get<uid_t>();
  c.gid = caller["gid"].get<gid_t>();
  if (caller.contains("groups") && caller["groups"].is_array()) {
    for (const auto& g : caller["groups"]) {
      if (g.is_number_unsigned()) c.groups.push_back(g.get<gid_t>());
    }
  }
  c.user = caller.value("user", "");
  return c;
}

}  // namespace chaosd::daemon
