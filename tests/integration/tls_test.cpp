// https:// peers: a member behind a TLS-terminating proxy (socat, started by the test on
// loopback, with a certificate from a CA the test makes with openssl). A node that trusts
// that CA (--ca-file) joins through it; one that does not, or that names the member by an
// address the certificate does not cover, is refused by TLS and says why in /status.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "support/test_node.h"

namespace peerstack {
namespace {

using namespace std::chrono_literals;
using test::TestNode;

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string out;
    if (test::RunCommand({"sh", "-c", "command -v openssl && command -v socat"}, &out) != 0) {
      GTEST_SKIP() << "needs openssl and socat (scripts/install-deps.sh installs them)";
    }
    ::mkdir(dir_.Sub("plugins").c_str(), 0755);
    test::CopyFile(test::BuiltPlugin("hello"), dir_.Sub("plugins/libhello.so"));
    // A CA and a certificate for "localhost" signed by it.
    const std::string d = dir_.path();
    test::WriteFile(d + "/ext.cnf", "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n");
    const std::string script = "set -e; cd '" + d +
                               "';"
                               "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                               "-nodes -keyout ca.key -out ca.pem"
                               " -days 2 -subj /CN=peerstack-test-ca 2>/dev/null;"
                               "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                               "-keyout srv.key -out srv.csr"
                               " -subj /CN=localhost 2>/dev/null;"
                               "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
                               "-CAcreateserial -out srv.pem -days 2"
                               " -extfile ext.cnf 2>/dev/null";
    ASSERT_EQ(test::RunCommand({"sh", "-c", script}, &out), 0) << out;
    // Member a serves plain HTTP on its port; socat terminates TLS in front of it.
    a_port_ = test::FreePort();
    tls_port_ = test::FreePort();
    proxy_ = std::make_unique<test::Process>(
        "/usr/bin/socat",
        std::vector<std::string>{"OPENSSL-LISTEN:" + std::to_string(tls_port_) +
                                     ",bind=127.0.0.1,reuseaddr,fork,cert=" + d +
                                     "/srv.pem,key=" + d + "/srv.key,verify=0",
                                 "TCP:127.0.0.1:" + std::to_string(a_port_)},
        d + "/socat.log");
    ASSERT_TRUE(test::WaitFor([&] { return test::RawConnection(tls_port_).connected(); }, 5s));
    a_ = Node("a", {"--port", std::to_string(a_port_), "--public-url", AUrl(), "--tunnel", "direct",
                    "--ca-file", dir_.Sub("ca.pem")});
  }

  std::string AUrl(const std::string& host = "localhost") const {
    return "https://" + host + ":" + std::to_string(tls_port_);
  }
  std::unique_ptr<TestNode> Node(const std::string& name, std::vector<std::string> args) {
    ::mkdir(dir_.Sub(name).c_str(), 0755);
    args.insert(args.end(), {"--plugins", dir_.Sub("plugins"), "--front", dir_.Sub("front")});
    auto node = std::make_unique<TestNode>(dir_.Sub(name), args);
    std::string why;
    EXPECT_TRUE(node->Start(&why)) << why;
    return node;
  }
  static bool IsMember(const TestNode& n) {
    const json::Value st = n.Status();
    return st.is_object() && st.find("network")->find("member")->as_bool();
  }
  // The transport's last error towards the member, as /status shows it.
  static std::string LastError(const TestNode& n) {
    const json::Value st = n.Status();
    if (!st.is_object()) return "";
    for (const auto& p : st.find("transport")->find("peers")->as_array()) {
      if (!p.find_string("last_error")->empty()) return *p.find_string("last_error");
    }
    return "";
  }

  test::TempDir dir_;
  uint16_t a_port_ = 0, tls_port_ = 0;
  std::unique_ptr<test::Process> proxy_;
  std::unique_ptr<TestNode> a_;
};

TEST_F(TlsTest, ANodeThatTrustsTheCaJoinsAMemberBehindHttps) {
  auto b = Node("b", {"--join", AUrl(), "--ca-file", dir_.Sub("ca.pem")});
  ASSERT_TRUE(test::WaitFor([&] { return IsMember(*b); }, 20s)) << b->Log() << a_->Log();
  // a knows b; and a itself was reachable at its https URL (its own check went through TLS).
  EXPECT_TRUE(
      test::WaitFor([&] { return *a_->Status().find("network")->find_int("members") == 2; }, 10s));
  EXPECT_EQ(*a_->Status().find("tunnel")->find_string("url"), AUrl());
}

TEST_F(TlsTest, AnUntrustedCertificateOrAnotherNameIsRefusedWithTheReason) {
  auto untrusting = Node("c", {"--join", AUrl()});  // the system's CAs only
  auto wrong_name = Node("d", {"--join", AUrl("127.0.0.1"), "--ca-file", dir_.Sub("ca.pem")});
  ASSERT_TRUE(test::WaitFor(
      [&] { return !LastError(*untrusting).empty() && !LastError(*wrong_name).empty(); }, 10s));
  EXPECT_NE(LastError(*untrusting).find("tls_failed"), std::string::npos) << LastError(*untrusting);
  EXPECT_NE(LastError(*untrusting).find("certificate"), std::string::npos)
      << LastError(*untrusting);
  EXPECT_NE(LastError(*wrong_name).find("tls_failed"), std::string::npos) << LastError(*wrong_name);
  EXPECT_NE(untrusting->Log().find("cannot reach " + AUrl()), std::string::npos)
      << untrusting->Log();
  EXPECT_FALSE(IsMember(*untrusting));
  EXPECT_FALSE(IsMember(*wrong_name));
  EXPECT_EQ(*a_->Status().find("network")->find_int("members"), 1);
}

}  // namespace
}  // namespace peerstack
