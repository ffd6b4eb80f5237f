#include "tidegate/drivers/mqtt/listener_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <fstream>
#include <sstream>

#include "tidegate/common/text.h"

namespace tidegate::drivers::mqtt {
namespace {

using common::trim;

std::optional<std::string> base64_decode(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's zero bytes too.
  std::size_t size = static_cast<std::size_t>(n);
  for (std::size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) size -= 1;
  out.resize(size);
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) out.push_back(part);
  if (!s.empty() && s.back() == sep) out.emplace_back();
  return out;
}

// Calls visit(line, where) for each line that is not blank or a comment,
// `where` being "PATH:LINE: " for errors.
template <typename Visit>
void for_each_line(const std::string& path, Visit&& visit) {
  std::ifstream in(path);
  if (!in) throw AuthFileError(path + ": cannot be read");
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    visit(line, path + ":" + std::to_string(number) + ": ");
  }
}

}  // namespace

PasswordFile PasswordFile::load(const std::string& path) {
  PasswordFile out;
  for_each_line(path, [&](const std::string& line, const std::string& where) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) throw AuthFileError(where + "expected user:hash");
    const std::string user = line.substr(0, colon);
    const auto fields = split(line.substr(colon + 1), '$');  // "", "7", iterations, salt, hash
    Entry e;
    std::optional<std::string> salt, hash;
    if (fields.size() == 5 && fields[0].empty() && fields[1] == "7") {
      e.iterations = std::atoi(fields[2].c_str());
      salt = base64_decode(fields[3]);
      hash = base64_decode(fields[4]);
      if (e.iterations <= 0) throw AuthFileError(where + "bad iteration count");
    } else if (fields.size() == 4 && fields[0].empty() && fields[1] == "6") {
      salt = base64_decode(fields[2]);
      hash = base64_decode(fields[3]);
    } else {
      throw AuthFileError(where + "user '" + user +
                          "': not a hashed password ($6$ or $7$); plain text passwords are refused: run "
                          "mosquitto_passwd -U on the file");
    }
    if (!salt || !hash || hash->size() != 64) throw AuthFileError(where + "user '" + user + "': unreadable salt or hash");
    e.salt = std::move(*salt);
    e.hash = std::move(*hash);
    out.entries_[user] = std::move(e);
  });
  return out;
}

bool PasswordFile::check(const std::string& user, const std::string& password) const {
  const auto it = entries_.find(user);
  if (it == entries_.end()) return false;
  const Entry& e = it->second;
  unsigned char derived[64];
  bool ok = false;
  if (e.iterations > 0) {
    ok = PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                           reinterpret_cast<const unsigned char*>(e.salt.data()), static_cast<int>(e.salt.size()),
                           e.iterations, EVP_sha512(), sizeof derived, derived) == 1;
  } else {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx, password.data(), password.size()) == 1 &&
         EVP_DigestUpdate(ctx, e.salt.data(), e.salt.size()) == 1 && EVP_DigestFinal_ex(ctx, derived, &n) == 1 &&
         n == sizeof derived;
    EVP_MD_CTX_free(ctx);
  }
  return ok && CRYPTO_memcmp(derived, e.hash.data(), sizeof derived) == 0;
}

AclFile AclFile::load(const std::string& path) {
  AclFile out;
  std::vector<Rule>* current = &out.anonymous_;
  for_each_line(path, [&](const std::string& line, const std::string& where) {
    const auto space = line.find_first_of(" \t");
    const std::string word = line.substr(0, space);
    std::string rest = space == std::string::npos ? "" : trim(line.substr(space));
    if (word == "user") {
      if (rest.empty()) throw AuthFileError(where + "user without a name");
      current = &out.by_user_[rest];
      return;
    }
    if (word != "topic" && word != "pattern") {
      throw AuthFileError(where + "expected 'user', 'topic' or 'pattern', not '" + word + "'");
    }
    Rule rule{Access::kReadWrite, {}};
    const auto next = rest.find_first_of(" \t");
    const std::string first = rest.substr(0, next);
    if (next != std::string::npos && (first == "read" || first == "write" || first == "readwrite" || first == "deny")) {
      rule.access = first == "read"    ? Access::kRead
                    : first == "write" ? Access::kWrite
                    : first == "deny"  ? Access::kDeny
                                       : Access::kReadWrite;
      rest = trim(rest.substr(next));
    }
    if (rest.empty()) throw AuthFileError(where + word + " without a topic filter");
    rule.filter = rest;
    (word == "pattern" ? out.patterns_ : *current).push_back(std::move(rule));
  });
  return out;
}

bool AclFile::may_publish(const std::optional<std::string>& user, const std::string& client_id,
                          const std::string& topic) const {
  bool granted = false;
  auto apply = [&](const Rule& rule, const std::string& filter) {
    if (!topic_matches(filter, topic)) return true;
    if (rule.access == Access::kDeny) return false;
    if (rule.access == Access::kWrite || rule.access == Access::kReadWrite) granted = true;
    return true;
  };
  const std::vector<Rule>* own = &anonymous_;
  if (user) {
    const auto it = by_user_.find(*user);
    own = it == by_user_.end() ? nullptr : &it->second;
  }
  if (own) {
    for (const auto& rule : *own) {
      if (!apply(rule, rule.filter)) return false;
    }
  }
  // %c and %u stand for one topic level: an id or name holding a wildcard or
  // a '/' would widen the rule, so the pattern does not apply to it.
  auto substitute = [&](const std::string& pattern) -> std::optional<std::string> {
    std::string filter;
    for (std::size_t i = 0; i < pattern.size(); ++i) {
      const bool placeholder = pattern[i] == '%' && i + 1 < pattern.size() && (pattern[i + 1] == 'c' || pattern[i + 1] == 'u');
      if (!placeholder) {
        filter += pattern[i];
        continue;
      }
      if (pattern[i + 1] == 'u' && !user) return std::nullopt;
      const std::string& value = pattern[i + 1] == 'c' ? client_id : *user;
      if (value.find_first_of("+#/") != std::string::npos) return std::nullopt;
      filter += value;
      ++i;
    }
    return filter;
  };
  for (const auto& rule : patterns_) {
    const auto filter = substitute(rule.filter);
    if (filter && !apply(rule, *filter)) return false;
  }
  return granted;
}

}  // namespace tidegate::drivers::mqtt
