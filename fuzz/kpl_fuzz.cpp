// KPL de-aggregation of records read back from a stream. The input is tried
// as it is and wrapped as an aggregated record (magic, message, MD5 of the
// message), so that the protobuf parsing behind the digest is reached.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "tidegate/sinks/kpl.h"

namespace kpl = tidegate::sinks::kpl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string message(reinterpret_cast<const char*>(data), size);
  (void)kpl::deaggregate(message);

  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(data, size, digest, &digest_size, EVP_md5(), nullptr) != 1) return 0;
  std::string wrapped(reinterpret_cast<const char*>(kpl::kMagic), sizeof kpl::kMagic);
  wrapped += message;
  wrapped.append(reinterpret_cast<const char*>(digest), digest_size);
  (void)kpl::deaggregate(wrapped);
  return 0;
}
