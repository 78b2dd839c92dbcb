#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "chaosd/app/daemon/HttpServer.h"
#include "chaosd/base/Credentials.h"

// Who may talk to the daemon (DESIGN.md 7): root, or a member of the `chaosd` group when that
// group exists. The caller is the process at the other end of the socket (SO_PEERCRED).
namespace chaosd::daemon {

struct AccessPolicy {
  std::optional<gid_t> group;  // the chaosd group's id, when it exists
  std::string groupName = "chaosd";
};

// Looks the group up by name (nullopt when there is none).
AccessPolicy loadAccessPolicy(const std::string& groupName = "chaosd");

// Whether the peer may call the API. Group membership is the peer's primary gid or one of the
// supplementary groups of the peer process (/proc/PID/status), as the kernel sees them now.
bool allowed(const AccessPolicy& policy, const PeerCred& peer,
             const std::string& procRoot = "/proc");

// The peer's credentials: its SO_PEERCRED ids and its supplementary groups now.
Credentials callerCredentials(const PeerCred& peer, const std::string& procRoot = "/proc");

// A caller as the journal keeps it (RunRecord::caller, ScheduleRecord::creator):
// {"uid", "gid", "groups", "user", "pid"}, plus "experimentHash" and "source" when given.
nlohmann::json callerJson(const Credentials& who, pid_t pid);
// The credentials of a journalled caller; nullopt for an empty record (chaosctl run, or a
// schedule from before journal version 4: run as the daemon).
std::optional<Credentials> credentialsFromJson(const nlohmann::json& caller);

}  // namespace chaosd::daemon
