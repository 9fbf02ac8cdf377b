#include "strategy/client_manager.h"

#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace petal::strategy {
namespace {

ClientProxyPtr Proxy(std::string cid) { return std::make_shared<ClientProxy>(std::move(cid)); }

TEST(SimpleClientManagerTest, RegisterUnregisterInOrder) {
  SimpleClientManager m(1);
  EXPECT_TRUE(m.Register(Proxy("a")));
  EXPECT_TRUE(m.Register(Proxy("b")));
  EXPECT_FALSE(m.Register(Proxy("a")));
  EXPECT_EQ(m.NumAvailable(), 2);
  m.Unregister("a");
  m.Unregister("a");  // idempotent
  ASSERT_EQ(m.All().size(), 1u);
  EXPECT_EQ(m.All()[0]->cid(), "b");
}

TEST(SimpleClientManagerTest, WaitForTimesOutWithoutClients) {
  SimpleClientManager m(1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(m.WaitFor(1, absl::Milliseconds(50)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(45));
  EXPECT_TRUE(m.WaitFor(0, absl::ZeroDuration()));
}

TEST(SimpleClientManagerTest, WaitForWakesOnRegistration) {
  SimpleClientManager m(1);
  std::promise<void> waiting;
  auto result = std::async(std::launch::async, [&] {
    waiting.set_value();
    return m.WaitFor(2, absl::Seconds(30));
  });
  waiting.get_future().wait();
  m.Register(Proxy("a"));
  m.Register(Proxy("b"));
  EXPECT_TRUE(result.get());
}

TEST(SimpleClientManagerTest, ShutdownWakesWaitersAndSampleReturnsNothing) {
  SimpleClientManager m(1, absl::Hours(1));
  auto result = std::async(std::launch::async, [&] { return m.Sample(2, 2, 0); });
  m.Shutdown();
  EXPECT_TRUE(result.get().empty());
  EXPECT_TRUE(m.shut_down());
  EXPECT_FALSE(m.WaitFor(0, absl::Seconds(1)));
}

TEST(SimpleClientManagerTest, SampleNeedsEnoughClients) {
  SimpleClientManager m(1, absl::Milliseconds(10));
  m.Register(Proxy("a"));
  EXPECT_TRUE(m.Sample(2, 1, 0).empty());  // Flower: "Sampling failed"
  EXPECT_EQ(m.Sample(1, 1, 0).size(), 1u);
  EXPECT_TRUE(m.Sample(0, 0, 0).empty());
}

TEST(SimpleClientManagerTest, SamplingIsSeededDistinctAndCoversEveryone) {
  SimpleClientManager m(42, absl::Milliseconds(10));
  for (int i = 0; i < 10; ++i) m.Register(Proxy(std::to_string(i)));
  std::set<std::string> seen;
  for (uint64_t key = 0; key < 50; ++key) {
    auto picked = m.Sample(3, 3, key);
    ASSERT_EQ(picked.size(), 3u);
    std::set<std::string> distinct;
    for (auto& p : picked) distinct.insert(p->cid());
    EXPECT_EQ(distinct.size(), 3u);
    seen.insert(distinct.begin(), distinct.end());
    // Same seed and key: same picks.
    auto again = m.Sample(3, 3, key);
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(again[i]->cid(), picked[i]->cid());
  }
  EXPECT_EQ(seen.size(), 10u);
  SimpleClientManager other(43, absl::Milliseconds(10));
  for (int i = 0; i < 10; ++i) other.Register(Proxy(std::to_string(i)));
  int differences = 0;
  for (uint64_t key = 0; key < 20; ++key) {
    differences += m.Sample(3, 3, key)[0]->cid() != other.Sample(3, 3, key)[0]->cid();
  }
  EXPECT_GT(differences, 0);
}

TEST(SampleIndicesTest, UniformEnough) {
  std::vector<int> counts(5, 0);
  for (uint64_t key = 0; key < 5000; ++key) {
    for (int64_t i : SampleIndices(5, 2, 7, key)) ++counts[static_cast<size_t>(i)];
  }
  for (int c : counts) {
    EXPECT_GT(c, 1800);  // expected 2000 each
    EXPECT_LT(c, 2200);
  }
}

}  // namespace
}  // namespace petal::strategy
