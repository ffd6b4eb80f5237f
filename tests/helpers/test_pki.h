// A throw-away PKI made by the openssl command for one test run: a CA, a
// server certificate for "localhost" (and 127.0.0.1), client certificates,
// and a second CA nothing is signed by.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace tidegate::testing {

inline void sh(const std::string& command) {
  const std::string full = command + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(full.c_str()), 0) << command;
}

class TestPki {
 public:
  // ca.pem/ca.key, server.pem/server.key, other-ca.pem in `dir`.
  explicit TestPki(std::filesystem::path dir) : dir_(std::move(dir)) {
    const std::string d = dir_.string();
    sh("openssl req -x509" + kKey + " -keyout " + d + "/ca.key -out " + d + "/ca.pem -days 2 -subj '/CN=tidegate test CA'");
    sh("openssl req" + kKey + " -keyout " + d + "/server.key -out " + d + "/server.csr -subj '/CN=localhost'");
    // Written here, not by the shell: sh() sends stdout to /dev/null.
    std::ofstream(dir_ / "san.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    sh("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -out " +
       d + "/server.pem -days 2 -extfile " + d + "/san.ext");
    sh("openssl req -x509" + kKey + " -keyout " + d + "/other.key -out " + d + "/other-ca.pem -days 2 -subj '/CN=other'");
  }
  // <name>.pem and <name>.key, signed by the CA, with common name `name`.
  void client(const std::string& name) const {
    const std::string d = dir_.string();
    sh("openssl req" + kKey + " -keyout " + d + "/" + name + ".key -out " + d + "/" + name + ".csr -subj '/CN=" +
       name + "'");
    sh("openssl x509 -req -in " + d + "/" + name + ".csr -CA " + d + "/ca.pem -CAkey " + d +
       "/ca.key -CAcreateserial -out " + d + "/" + name + ".pem -days 2");
  }
  // expired.pem and expired.key: a server certificate from the CA, for the
  // right names, whose validity ended yesterday.
  void expired_server() const {
    const std::string d = dir_.string();
    sh("openssl req" + kKey + " -keyout " + d + "/expired.key -out " + d + "/expired.csr -subj '/CN=localhost'");
    sh("openssl x509 -req -in " + d + "/expired.csr -CA " + d + "/ca.pem -CAkey " + d +
       "/ca.key -CAcreateserial -out " + d + "/expired.pem -days -1 -extfile " + d + "/san.ext");
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

 private:
  inline static const std::string kKey = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::filesystem::path dir_;
};

}  // namespace tidegate::testing
