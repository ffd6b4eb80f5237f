// AWS Signature Version 4, written from the published specification
// ("Signature Version 4 signing process": canonical request, string to sign,
// derived signing key, signature) and checked against AWS's published test
// vectors and @smithy/signature-v4 in tests/unit/sigv4_test.cpp.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tidegate::sinks::sigv4 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials; empty if none
};

struct Request {
  std::string method = "POST";
  std::string canonical_uri = "/";      // already URI-encoded
  std::string canonical_query;          // already encoded and sorted; empty if none
  // Headers to sign (any case; "host" and "x-amz-date" must be among them,
  // and "x-amz-security-token" when a session token is used).
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
};

struct Signed {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // hex
  std::string authorization;  // the Authorization header value
};

// amz_date: "YYYYMMDDTHHMMSSZ" (also sent as x-amz-date).
Signed sign(const Request& request, const Credentials& credentials, std::string_view region, std::string_view service,
            std::string_view amz_date);

std::string sha256_hex(std::string_view data);
std::string amz_date_now();

}  // namespace tidegate::sinks::sigv4
