// Who may connect to the listener and what they may publish, in the file
// formats mosquitto uses, so a site's existing files work unchanged:
// - a password file as mosquitto_passwd writes it ("user:$7$iterations$salt$hash",
//   PBKDF2-HMAC-SHA512; or "user:$6$salt$hash", SHA-512 of password and salt);
// - an ACL file of "user NAME", "topic [read|write|readwrite|deny] FILTER" and
//   "pattern [...] FILTER" lines, %c and %u in patterns standing for the client id
//   and the user name (mosquitto.conf(5), acl_file).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "tidegate/common/patterns.h"

namespace tidegate::drivers::mqtt {

// A line of a file that cannot be used: the message names the file and line.
class AuthFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class PasswordFile {
 public:
  // Throws AuthFileError for an unreadable file or a line it cannot use.
  static PasswordFile load(const std::string& path);
  // Constant-time comparison of the derived hash.
  bool check(const std::string& user, const std::string& password) const;
  std::size_t users() const { return entries_.size(); }

 private:
  struct Entry {
    int iterations = 0;  // 0: "$6$" (one SHA-512)
    std::string salt;    // decoded
    std::string hash;    // decoded
  };
  std::unordered_map<std::string, Entry> entries_;
};

// MQTT topic filter matching, shared with the sinks' routes.
using common::topic_matches;

class AclFile {
 public:
  static AclFile load(const std::string& path);
  // Publishing is what the listener checks ("write" or "readwrite"). A
  // "deny" rule that matches wins over any grant. `user` is nullopt for an
  // anonymous client, which only the rules before the first "user" line
  // apply to (and the patterns).
  bool may_publish(const std::optional<std::string>& user, const std::string& client_id,
                   const std::string& topic) const;

 private:
  enum class Access { kRead, kWrite, kReadWrite, kDeny };
  struct Rule {
    Access access;
    std::string filter;
  };
  std::vector<Rule> anonymous_;
  std::unordered_map<std::string, std::vector<Rule>> by_user_;
  std::vector<Rule> patterns_;
};

}  // namespace tidegate::drivers::mqtt
