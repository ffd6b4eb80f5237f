// Every configuration the docs show is one a reader will copy: `check-config`
// must accept it as written, with the certificate, password and ACL files it
// names in place and its secrets in the service's environment file.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "doc_examples.h"
#include "test_pki.h"
#include "test_support.h"
#include "tidegate/gateway/cli.h"

namespace tidegate::gateway {
namespace {

const std::filesystem::path kSource = TIDEGATE_SOURCE_DIR;

class DocExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "pki");
    pki_ = std::make_unique<testing::TestPki>(dir_ / "pki");
    pki_->client("device");
  }

  // The block with its /etc/tidegate and /var/lib/tidegate paths moved into
  // the test's directory, and every file it names created there.
  std::filesystem::path materialize(std::string toml, const std::string& tag) {
    const auto root = dir_ / tag;
    testing::replace_all(toml, "/etc/tidegate/", (root / "etc").string() + "/");
    testing::replace_all(toml, "/var/lib/tidegate/", (root / "var").string() + "/");
    std::filesystem::create_directories(root / "var");
    static const std::regex file_key(R"re((\w+_file)\s*=\s*"([^"]+)")re");
    for (std::sregex_iterator it(toml.begin(), toml.end(), file_key), end; it != end; ++it) {
      const std::string key = (*it)[1];
      const std::filesystem::path path = std::string((*it)[2]);
      std::filesystem::create_directories(path.parent_path());
      if (key == "ca_file") {
        std::filesystem::copy_file(pki_->file("ca.pem"), path, std::filesystem::copy_options::overwrite_existing);
      } else if (key == "cert_file") {
        std::filesystem::copy_file(pki_->file("device.pem"), path, std::filesystem::copy_options::overwrite_existing);
      } else if (key == "key_file") {
        std::filesystem::copy_file(pki_->file("device.key"), path, std::filesystem::copy_options::overwrite_existing);
      } else if (key == "acl_file") {
        std::ofstream(path) << "pattern write sensors/%u/#\n";
      } else if (key == "table_file") {  // an enrich table
        std::ofstream(path) << (path.extension() == ".toml" ? "[[rules]]\ndevice = \"x\"\nfields = { a = 1 }\n"
                                                             : "device,building\nahu-*,B\n");
      } else if (key == "script_file") {  // a Lua processor
        std::ofstream(path) << "function process(r) return r end\n";
      } else {
        std::ofstream(path) << "";
      }
    }
    const auto config = root / "tidegate.toml";
    std::ofstream(config) << toml;
    return config;
  }

  int check_config(const std::filesystem::path& config, const std::filesystem::path& env_file, std::string& output) {
    const std::string c = config.string(), e = env_file.string();
    const char* argv[] = {"tidegate", "check-config", "--config", c.c_str(), "--env-file", e.c_str()};
    std::ostringstream out, err;
    const int rc = run_cli(6, argv, out, err);
    output = out.str() + err.str();
    return rc;
  }

  testing::TempDir dir_;
  std::unique_ptr<testing::TestPki> pki_;
};

TEST_F(DocExamplesTest, EveryConfigurationInTheDocsPassesCheckConfig) {
  const auto env_file = dir_ / "default-tidegate";
  std::ofstream(env_file) << "# as /etc/default/tidegate\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\n"
                             "AWS_SECRET_ACCESS_KEY=\"wJalrXUtnFEMI/K7MDENG\"\n";
  int checked = 0;
  std::vector<std::filesystem::path> pages = {kSource / "README.md"};
  for (const auto& entry : std::filesystem::directory_iterator(kSource / "docs")) {
    if (entry.path().extension() == ".md") pages.push_back(entry.path());
  }
  for (const auto& page : pages) {
    const auto label = std::filesystem::relative(page, kSource).string();
    for (const auto& block : testing::toml_blocks(page, label)) {
      const auto config = materialize(block.toml, "block" + std::to_string(++checked));
      std::string output;
      EXPECT_EQ(check_config(config, env_file, output), 0) << block.where << ":\n" << output;
    }
  }
  EXPECT_GE(checked, 5);  // cloud.md's four upstreams and the listener's security example at least
}

// The Kinesis example takes its keys from the service's environment file
// only: without them check-config says what is missing, as the service would.
TEST_F(DocExamplesTest, TheKinesisExampleNeedsTheKeysOfTheEnvironmentFile) {
  const auto toml = testing::doc_example(kSource / "docs" / "cloud.md", "kinesis");
  ASSERT_FALSE(toml.empty());
  const auto config = materialize(toml, "kinesis");
  const auto empty_env = dir_ / "empty-env";
  std::ofstream(empty_env) << "# nothing yet\n";
  std::string output;
  EXPECT_EQ(check_config(config, empty_env, output), 2);
  EXPECT_NE(output.find("no AWS credentials"), std::string::npos) << output;

  const auto env_file = dir_ / "env";
  std::ofstream(env_file) << "AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY='secret with spaces'\n";
  EXPECT_EQ(check_config(config, env_file, output), 0) << output;
}

TEST_F(DocExamplesTest, AnUnreadableOrMalformedEnvironmentFileIsAnErrorThatSaysWhere) {
  const auto config = materialize(testing::doc_example(kSource / "docs" / "cloud.md", "kinesis"), "bad-env");
  std::string output;
  EXPECT_EQ(check_config(config, dir_ / "does-not-exist", output), 2);
  EXPECT_NE(output.find("cannot read"), std::string::npos) << output;

  const auto env_file = dir_ / "malformed";
  std::ofstream(env_file) << "AWS_ACCESS_KEY_ID=AKIAEXAMPLE\nexport AWS_SECRET_ACCESS_KEY=x\nNO_EQUALS_SIGN\n";
  EXPECT_EQ(check_config(config, env_file, output), 2);
  EXPECT_NE(output.find("malformed:2: 'export AWS_SECRET_ACCESS_KEY' is not a variable name"), std::string::npos)
      << output;
  EXPECT_NE(output.find("malformed:3: expected NAME=VALUE"), std::string::npos) << output;
}

}  // namespace
}  // namespace tidegate::gateway
