#include "tunnel/tunnel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>

#include "support/test_support.h"

namespace peerstack::tunnel {
namespace {

using namespace std::chrono_literals;

// A provider whose behaviour the test switches.
struct Knobs {
  std::atomic<bool> opens{true};
  std::atomic<bool> alive{true};
  std::atomic<int> closed{0};
};

class FakeProvider final : public Provider {
 public:
  FakeProvider(std::string name, std::string url, Knobs* k)
      : name_(std::move(name)), url_(std::move(url)), k_(k) {}
  std::string name() const override { return name_; }
  Result<std::string> Open() override {
    if (!k_->opens) return Status::Error("down", name_ + " is down");
    return url_;
  }
  bool Alive() override { return k_->alive; }
  void Close() override { ++k_->closed; }

 private:
  std::string name_, url_;
  Knobs* k_;
};

class ManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<Manager> Make() {
    ManagerOptions o;
    o.providers.push_back(std::make_unique<FakeProvider>("direct", "http://direct", &direct_));
    o.providers.push_back(std::make_unique<FakeProvider>("relay", "http://relay", &relay_));
    o.verify = [this](const std::string& url) {
      return url != "http://unverified" ? Reach::kConfirmed : Reach::kRefuted;
    };
    o.on_change = [this](const std::string& url, const std::string& p) {
      std::lock_guard<std::mutex> lock(mu_);
      changes_.push_back(p + " " + url);
    };
    o.check_interval = 20ms;
    o.retry_better_interval = 100ms;
    return std::make_unique<Manager>(std::move(o));
  }
  std::vector<std::string> Changes() {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_;
  }

  Knobs direct_, relay_;
  std::mutex mu_;
  std::vector<std::string> changes_;
};

TEST_F(ManagerTest, UsesTheFirstProviderThatWorks) {
  direct_.opens = false;
  auto m = Make();
  m->Start();
  EXPECT_EQ(m->state().provider, "relay");
  EXPECT_EQ(m->state().url, "http://relay");
  ASSERT_EQ(m->state().failures.size(), 1u);
  EXPECT_EQ(m->state().failures[0].first, "direct");
  m->Stop();
}

TEST_F(ManagerTest, FailsOverAndComesBackToTheBetterProvider) {
  auto m = Make();
  m->Start();
  EXPECT_EQ(m->state().provider, "direct");
  // direct breaks: the manager moves to relay and says so.
  direct_.alive = false;
  direct_.opens = false;
  ASSERT_TRUE(test::WaitFor([&] { return m->state().provider == "relay"; }, 5s));
  // direct works again: back to it (relay is closed).
  direct_.alive = true;
  direct_.opens = true;
  ASSERT_TRUE(test::WaitFor([&] { return m->state().provider == "direct"; }, 5s));
  EXPECT_GE(relay_.closed.load(), 1);
  m->Stop();
  const auto changes = Changes();
  ASSERT_GE(changes.size(), 3u);
  EXPECT_EQ(changes[0], "direct http://direct");
  EXPECT_EQ(changes[1], "relay http://relay");
  EXPECT_EQ(changes[2], "direct http://direct");
}

TEST_F(ManagerTest, NeverTakesAnUnverifiedUrl) {
  ManagerOptions o;
  Knobs k;
  o.providers.push_back(std::make_unique<FakeProvider>("command", "http://unverified", &k));
  o.verify = [](const std::string& url) {
    return url != "http://unverified" ? Reach::kConfirmed : Reach::kRefuted;
  };
  o.check_interval = 20ms;
  Manager m(std::move(o));
  m.Start();
  EXPECT_EQ(m.state().provider, "");
  ASSERT_EQ(m.state().failures.size(), 1u);
  EXPECT_NE(m.state().failures[0].second.find("does not answer with its key"), std::string::npos);
  m.Stop();
}

// Busy or absent peers (an unknown verdict) neither make a path nor break the one in use; a
// refusal does.
TEST(ManagerVerdicts, UnknownNeitherMakesNorBreaksAPath) {
  Knobs k;
  std::atomic<int> verdict{static_cast<int>(Reach::kUnknown)};
  std::atomic<int> checks{0};
  auto make = [&] {
    ManagerOptions o;
    o.providers.push_back(std::make_unique<FakeProvider>("direct", "http://direct", &k));
    o.verify = [&](const std::string&) {
      ++checks;
      return static_cast<Reach>(verdict.load());
    };
    o.check_interval = 20ms;
    return std::make_unique<Manager>(std::move(o));
  };
  auto unsure = make();
  unsure->Start();
  EXPECT_EQ(unsure->state().provider, "");  // not taken on an unknown verdict
  EXPECT_NE(unsure->state().failures.at(0).second.find("no peer could check"), std::string::npos);
  unsure->Stop();

  verdict = static_cast<int>(Reach::kConfirmed);
  auto m = make();
  m->Start();
  ASSERT_EQ(m->state().provider, "direct");
  verdict = static_cast<int>(Reach::kUnknown);
  const int seen = checks;
  ASSERT_TRUE(test::WaitFor([&] { return checks >= seen + 5; }, 5s));
  EXPECT_EQ(m->state().provider, "direct");  // kept through five unknown checks
  verdict = static_cast<int>(Reach::kRefuted);
  EXPECT_TRUE(test::WaitFor([&] { return m->state().provider.empty(); }, 5s));
  m->Stop();
}

// While nothing works, the attempts back off (to 6x the check interval); CheckNow starts
// over at once.
TEST(ManagerBackoff, AttemptsSlowDownWhileUnreachableAndCheckNowRestarts) {
  Knobs k;
  k.opens = false;
  std::atomic<int> opens{0};
  class Counting final : public Provider {
   public:
    Counting(Knobs* knobs, std::atomic<int>* n) : k_(knobs), n_(n) {}
    std::string name() const override { return "relay"; }
    Result<std::string> Open() override {
      ++*n_;
      if (!k_->opens) return Status::Error("down", "no relay");
      return std::string("http://relay");
    }

   private:
    Knobs* k_;
    std::atomic<int>* n_;
  };
  ManagerOptions o;
  o.providers.push_back(std::make_unique<Counting>(&k, &opens));
  o.verify = [](const std::string&) { return Reach::kConfirmed; };
  o.check_interval = 50ms;
  Manager m(std::move(o));
  const auto start = std::chrono::steady_clock::now();
  m.Start();
  // Attempts at 0, 50, 150, 350, 650, 950 ms...: at most 5 in the first 800 ms (12 at a fixed
  // interval); a floor the backoff guarantees, with no upper bound on a slow machine.
  ASSERT_TRUE(test::WaitFor([&] { return opens >= 4; }, 5s));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 340ms);
  k.opens = true;
  m.CheckNow();
  EXPECT_TRUE(test::WaitFor([&] { return m.state().provider == "relay"; }, 2s));
  m.Stop();
}

TEST(CommandProvider, TakesTheUrlTheProgramPrintsAndStopsIt) {
  auto p = MakeCommandProvider(
      "echo starting; echo 'your url is: https://fox.example.net/x/ ok'; exec sleep 30", "", 8080,
      5s);
  auto url = p->Open();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(*url, "https://fox.example.net/x");
  EXPECT_TRUE(p->Alive());
  p->Close();
  EXPECT_FALSE(p->Alive());
}

TEST(CommandProvider, ReplacesThePortAndHonoursAPattern) {
  auto p = MakeCommandProvider(
      "echo 'listening on {port}, public tcp://bore.pub:4711 (http://ignored)'; exec sleep 30",
      R"(public (tcp://[^ ]+))", 9000, 5s);
  auto url = p->Open();
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(*url, "tcp://bore.pub:4711");
  p->Close();
}

TEST(CommandProvider, ReportsAProgramThatPrintsNoUrlOrDies) {
  auto silent = MakeCommandProvider("echo no url here; exit 3", "", 80, 2s);
  auto r = silent->Open();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "no_url");
  auto dies = MakeCommandProvider("echo http://127.0.0.1:1/; exit 0", "", 80, 2s);
  ASSERT_TRUE(dies->Open().ok());
  EXPECT_TRUE(test::WaitFor([&] { return !dies->Alive(); }, 5s));
  auto bad = MakeCommandProvider("true", "([", 80, 1s);
  EXPECT_EQ(bad->Open().status().code(), "bad_pattern");
}

}  // namespace
}  // namespace peerstack::tunnel
