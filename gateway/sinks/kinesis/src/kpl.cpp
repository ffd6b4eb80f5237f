#include "tidegate/sinks/kpl.h"

#include <openssl/evp.h>

#include <cstring>

#include "aggregation.pb.h"  // protobuf_generate_cpp writes generated files flat

namespace tidegate::sinks::kpl {
namespace {

std::string md5(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

}  // namespace

std::string aggregate(const std::string& partition_key, const std::vector<std::string>& datas) {
  tidegate::kpl::AggregatedRecord message;
  message.add_partition_key_table(partition_key);
  for (const auto& d : datas) {
    auto* r = message.add_records();
    r->set_partition_key_index(0);
    r->set_data(d);
  }
  const std::string body = message.SerializeAsString();
  std::string out(reinterpret_cast<const char*>(kMagic), sizeof kMagic);
  out += body;
  out += md5(body);
  return out;
}

std::optional<std::vector<std::string>> deaggregate(const std::string& data) {
  constexpr std::size_t kDigest = 16;
  if (data.size() < sizeof kMagic + kDigest || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    return std::nullopt;
  }
  const std::string body = data.substr(sizeof kMagic, data.size() - sizeof kMagic - kDigest);
  if (md5(body) != data.substr(data.size() - kDigest)) return std::nullopt;
  tidegate::kpl::AggregatedRecord message;
  // Not ParseFromString: it writes an ERROR line to stderr for each message
  // missing a required field (kpl_fuzz filled 43 MB of log with them).
  if (!message.ParsePartialFromString(body) || !message.IsInitialized()) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& r : message.records()) out.push_back(r.data());
  return out;
}

std::size_t overhead(std::size_t count, std::size_t partition_key_size) {
  // magic + digest + key table entry + per record: tags, index and lengths.
  return 4 + 16 + partition_key_size + 8 + count * 16;
}

}  // namespace tidegate::sinks::kpl
