// Signature V4 against AWS's published test vectors. (kinesalite does not
// check signatures, so these and the @smithy/signature-v4 comparison in the
// Kinesis integration test are what keep the signer honest.)
#include "tidegate/sinks/sigv4.h"

#include <gtest/gtest.h>

namespace tidegate::sinks::sigv4 {
namespace {

// AWS SigV4 test suite, get-vanilla: GET / with host and x-amz-date only.
TEST(SigV4, GetVanillaFromTheAwsTestSuite) {
  Request r;
  r.method = "GET";
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  const Credentials c{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  const auto s = sign(r, c, "us-east-1", "service", "20150830T123600Z");
  EXPECT_EQ(s.canonical_request,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(s.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// Amazon S3 API reference, "Example: GET Object" (header-based SigV4), with
// its published string to sign and signature.
TEST(SigV4, S3GetObjectExampleFromTheS3ApiReference) {
  Request r;
  r.method = "GET";
  r.canonical_uri = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
               {"x-amz-date", "20130524T000000Z"}};
  const Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  const auto s = sign(r, c, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4, HeaderValuesAreTrimmedAndNamesLowerCased) {
  Request r;
  r.headers = {{"X-Meta", "  a   b  "}, {"Host", "h"}, {"X-Amz-Date", "20150830T123600Z"}};
  const auto s = sign(r, {"A", "S", ""}, "us-east-1", "kinesis", "20150830T123600Z");
  EXPECT_NE(s.canonical_request.find("\nx-meta:a b\n"), std::string::npos) << s.canonical_request;
  EXPECT_NE(s.authorization.find("SignedHeaders=host;x-amz-date;x-meta,"), std::string::npos);
}

TEST(SigV4, Sha256OfKnownInputs) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace tidegate::sinks::sigv4
