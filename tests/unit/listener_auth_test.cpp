// The listener's password and ACL files, in mosquitto's formats: lines made
// by Debian's mosquitto_passwd (2.0.11) for known passwords.
#include "tidegate/drivers/mqtt/listener_auth.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_support.h"

namespace tidegate::drivers::mqtt {
namespace {

class ListenerAuthTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) {
    const auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(ListenerAuthTest, PasswordFileOfMosquittoPasswdChecksPbkdf2AndSha512Hashes) {
  const auto path = write("passwd",
                          "# made with mosquitto_passwd\n"
                          "alice:$7$101$/ymsucTKgeD+wkCU$5tZxK4NjfZ/j4FeMpgGO43D6cU1smZypg8Xtoxae7F2ASHkNsVHaPZMxcCNamH+9tIrGHi+"
                          "UFvcjyY5bR/aR8Q==\n"
                          "bob:$7$101$DAcFC1W3rUoxKUhb$crMPoZM2maVKFFpXRieFa3BKFUEjRCb9Db4LHAOkPcMh/QeJavurPofqoToswwFuAeLU8/"
                          "oAW5BbevzfkMhong==\n"
                          "carol:$6$uo3KW2ZwlGp+Hf6v$WE4w+JHuRn78v9gAutHYFRyIbHagztuoWLOyVE3Qxm6+UCgoMeEHZM/GMG3C4uSElU9aIhfQ+"
                          "GqgTKKJMjPvtQ==\n");
  const auto file = PasswordFile::load(path);
  EXPECT_EQ(file.users(), 3u);
  EXPECT_TRUE(file.check("alice", "secret"));
  EXPECT_FALSE(file.check("alice", "Secret"));
  EXPECT_FALSE(file.check("alice", ""));
  EXPECT_TRUE(file.check("bob", "pa:ss"));  // a colon in the password
  EXPECT_TRUE(file.check("carol", "c4rol"));  // $6$: SHA-512 of password and salt
  EXPECT_FALSE(file.check("dave", "secret"));
}

TEST_F(ListenerAuthTest, UnusablePasswordFilesAreRefusedNamingTheLine) {
  EXPECT_THROW(PasswordFile::load((dir_ / "missing").string()), AuthFileError);
  try {
    PasswordFile::load(write("plain", "alice:$7$101$/ymsucTKgeD+wkCU$abc=\nbob:plaintext\n"));
    FAIL();
  } catch (const AuthFileError& e) {
    EXPECT_NE(std::string(e.what()).find(":1: user 'alice': unreadable salt or hash"), std::string::npos) << e.what();
  }
  try {
    PasswordFile::load(write("plain2", "bob:plaintext\n"));
    FAIL();
  } catch (const AuthFileError& e) {
    EXPECT_NE(std::string(e.what()).find(":1: user 'bob': not a hashed password"), std::string::npos) << e.what();
  }
}

// MQTT 5 section 4.7: wildcards in filters.
TEST_F(ListenerAuthTest, TopicFiltersMatchAsSection4_7Says) {
  EXPECT_TRUE(topic_matches("sensors/#", "sensors/a/b"));
  EXPECT_TRUE(topic_matches("sensors/#", "sensors"));  // '#' includes the parent level
  EXPECT_TRUE(topic_matches("sensors/+/t", "sensors/a/t"));
  EXPECT_FALSE(topic_matches("sensors/+/t", "sensors/a/b/t"));
  EXPECT_FALSE(topic_matches("sensors/+", "sensors"));
  EXPECT_TRUE(topic_matches("+/+", "/x"));  // an empty level is a level
  EXPECT_FALSE(topic_matches("#", "$SYS/x"));  // '$' topics only by name
  EXPECT_TRUE(topic_matches("$SYS/#", "$SYS/x"));
  EXPECT_FALSE(topic_matches("a/b", "a/b/c"));
}

TEST_F(ListenerAuthTest, AclFileGrantsPerUserAndPatternsWithDenyWinning) {
  const auto acl = AclFile::load(write("acl",
                                       "# anonymous clients\n"
                                       "topic write public/#\n"
                                       "\n"
                                       "user alice\n"
                                       "topic readwrite sensors/alice/#\n"
                                       "topic deny sensors/alice/secret\n"
                                       "topic read commands/#\n"
                                       "user bob\n"
                                       "topic sensors/bob/#\n"
                                       "pattern write devices/%u/%c/#\n"));
  EXPECT_TRUE(acl.may_publish(std::nullopt, "c1", "public/x"));
  EXPECT_FALSE(acl.may_publish(std::nullopt, "c1", "sensors/alice/t"));
  EXPECT_TRUE(acl.may_publish("alice", "c1", "sensors/alice/t"));
  EXPECT_FALSE(acl.may_publish("alice", "c1", "sensors/alice/secret"));  // deny wins
  EXPECT_FALSE(acl.may_publish("alice", "c1", "commands/x"));            // read only
  EXPECT_FALSE(acl.may_publish("alice", "c1", "public/x"));  // anonymous rules are not a user's
  EXPECT_TRUE(acl.may_publish("bob", "c1", "sensors/bob/t"));  // no access word: readwrite
  EXPECT_TRUE(acl.may_publish("bob", "dev-9", "devices/bob/dev-9/t"));
  EXPECT_FALSE(acl.may_publish("bob", "dev-9", "devices/alice/dev-9/t"));
  EXPECT_FALSE(acl.may_publish(std::nullopt, "dev-9", "devices//dev-9/t"));  // %u: no anonymous
  EXPECT_FALSE(acl.may_publish("eve", "x/#", "devices/eve/x/#/t"));   // a wildcard in an id widens nothing
  EXPECT_FALSE(acl.may_publish("carol", "c1", "sensors/carol/t"));    // unknown user: patterns only
  EXPECT_THROW(AclFile::load(write("bad", "topics write a/#\n")), AuthFileError);
}

}  // namespace
}  // namespace tidegate::drivers::mqtt
