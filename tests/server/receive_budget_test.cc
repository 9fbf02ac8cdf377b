// ReceiveBudget on its own, with scripted readers: admission by bytes, a
// reply larger than the budget, first-come-first-served order, cancellation,
// readers that are ending, and concurrent use.
#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/grpc_service.h"

namespace petal::server {
namespace {

// Records every admission into a shared log; refuses if `ending`.
class FakeReader final : public ReceiveBudget::Reader {
 public:
  FakeReader(int id, std::vector<int>* log) : id_(id), log_(log) {}
  bool TryStartRead(int64_t cost) override {
    if (ending) return false;
    ++starts;
    last_cost = cost;
    log_->push_back(id_);
    return true;
  }
  bool ending = false;
  int starts = 0;
  int64_t last_cost = 0;

 private:
  const int id_;
  std::vector<int>* log_;
};

std::vector<std::unique_ptr<FakeReader>> MakeReaders(int n, std::vector<int>* log) {
  std::vector<std::unique_ptr<FakeReader>> readers;
  for (int i = 0; i < n; ++i) readers.push_back(std::make_unique<FakeReader>(i, log));
  return readers;
}

TEST(ReceiveBudgetTest, ManySmallRepliesAreAdmittedAtOnce) {
  std::vector<int> log;
  ReceiveBudget budget(16 << 20);
  auto readers = MakeReaders(200, &log);
  for (auto& r : readers) budget.Request(r.get(), 1024);
  EXPECT_EQ(log.size(), 200u);  // 200 KiB fit in 16 MiB: nobody waits
  EXPECT_EQ(budget.used_bytes(), 200 * 1024);
  EXPECT_EQ(budget.queued(), 0);
  for (int i = 0; i < 200; ++i) budget.Release(1024);
  EXPECT_EQ(budget.used_bytes(), 0);
}

TEST(ReceiveBudgetTest, ModelSizedRepliesAreAdmittedAsTheyFit) {
  std::vector<int> log;
  ReceiveBudget budget(10 << 20);
  auto readers = MakeReaders(5, &log);
  for (auto& r : readers) budget.Request(r.get(), 4 << 20);
  EXPECT_EQ(log, (std::vector<int>{0, 1}));  // 8 MiB in use, a third would not fit
  EXPECT_EQ(budget.queued(), 3);
  budget.Release(4 << 20);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(budget.used_bytes(), 8 << 20);
}

TEST(ReceiveBudgetTest, AReplyLargerThanTheBudgetIsAdmittedAlone) {
  std::vector<int> log;
  ReceiveBudget budget(1024);
  auto readers = MakeReaders(3, &log);
  budget.Request(readers[0].get(), 1 << 20);  // nothing in use: admitted
  budget.Request(readers[1].get(), 1 << 20);
  budget.Request(readers[2].get(), 100);
  EXPECT_EQ(log, (std::vector<int>{0}));
  EXPECT_EQ(budget.used_bytes(), 1 << 20);
  budget.Release(1 << 20);
  EXPECT_EQ(log, (std::vector<int>{0, 1}));  // then the next, alone again
  budget.Release(1 << 20);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
  budget.Release(100);
  EXPECT_EQ(budget.used_bytes(), 0);
  EXPECT_EQ(budget.queued(), 0);
}

TEST(ReceiveBudgetTest, FirstComeFirstServedEvenWhenALaterOneWouldFit) {
  std::vector<int> log;
  ReceiveBudget budget(10);
  auto readers = MakeReaders(4, &log);
  budget.Request(readers[0].get(), 6);
  budget.Request(readers[1].get(), 8);  // does not fit: queued
  budget.Request(readers[2].get(), 2);  // would fit, but waits behind 1
  budget.Request(readers[3].get(), 1);
  EXPECT_EQ(log, (std::vector<int>{0}));
  EXPECT_EQ(budget.queued(), 3);
  budget.Release(6);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));  // 8 + 2 = 10 fits; 3 does not
  EXPECT_EQ(budget.used_bytes(), 10);
  budget.Release(2);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(readers[1]->last_cost, 8);
}

TEST(ReceiveBudgetTest, CancelledReaderIsNeverAdmittedAndUnblocksTheQueue) {
  std::vector<int> log;
  ReceiveBudget budget(10);
  auto readers = MakeReaders(3, &log);
  budget.Request(readers[0].get(), 6);
  budget.Request(readers[1].get(), 8);
  budget.Request(readers[2].get(), 3);
  EXPECT_FALSE(budget.Cancel(readers[0].get()));  // admitted, not queued
  EXPECT_TRUE(budget.Cancel(readers[1].get()));   // the head leaves: 2 fits now
  EXPECT_EQ(log, (std::vector<int>{0, 2}));
  EXPECT_FALSE(budget.Cancel(readers[1].get()));
  budget.Release(6);
  budget.Release(3);
  EXPECT_EQ(readers[1]->starts, 0);
  EXPECT_EQ(budget.used_bytes(), 0);
}

TEST(ReceiveBudgetTest, AnEndingReaderIsSkippedAndNotCharged) {
  std::vector<int> log;
  ReceiveBudget budget(10);
  auto readers = MakeReaders(3, &log);
  budget.Request(readers[0].get(), 10);
  budget.Request(readers[1].get(), 10);
  budget.Request(readers[2].get(), 10);
  readers[1]->ending = true;
  budget.Release(10);
  EXPECT_EQ(log, (std::vector<int>{0, 2}));
  EXPECT_EQ(budget.used_bytes(), 10);
  EXPECT_EQ(budget.queued(), 0);
  readers[0]->ending = true;
  budget.Release(10);
  budget.Request(readers[0].get(), 5);  // refused at once: nothing charged
  EXPECT_EQ(budget.used_bytes(), 0);
}

// Threads request and release concurrently; every admitted read is released
// by a consumer thread. The budget is never exceeded except by a lone read,
// and all reads complete.
TEST(ReceiveBudgetTest, ConcurrentRequestsAndReleasesStayWithinTheBudget) {
  constexpr int64_t kLimit = 100;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  ReceiveBudget budget(kLimit);

  struct Admitted {
    std::mutex mu;
    std::vector<int64_t> costs;
    int64_t in_use = 0;
    bool violated = false;
  } admitted;
  class CountingReader final : public ReceiveBudget::Reader {
   public:
    explicit CountingReader(Admitted* a) : a_(a) {}
    bool TryStartRead(int64_t cost) override {
      std::lock_guard<std::mutex> lock(a_->mu);
      if (a_->in_use > 0 && a_->in_use + cost > kLimit) a_->violated = true;
      a_->in_use += cost;
      a_->costs.push_back(cost);
      return true;
    }

   private:
    Admitted* a_;
  };

  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  std::vector<std::unique_ptr<CountingReader>> readers;
  for (int t = 0; t < kThreads * kPerThread; ++t) {
    readers.push_back(std::make_unique<CountingReader>(&admitted));
  }
  for (int t = 0; t < kThreads; ++t) {
    producers.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kPerThread; ++i) {
        budget.Request(readers[t * kPerThread + i].get(), 1 + static_cast<int64_t>(rng() % 150));
      }
    });
  }
  std::thread consumer([&] {
    int released = 0;
    while (released < kThreads * kPerThread) {
      int64_t cost = 0;
      {
        std::lock_guard<std::mutex> lock(admitted.mu);
        if (admitted.costs.empty()) {
          cost = -1;
        } else {
          cost = admitted.costs.back();
          admitted.costs.pop_back();
          admitted.in_use -= cost;
        }
      }
      if (cost < 0) {
        std::this_thread::yield();  // spin until a producer's read is admitted
        continue;
      }
      budget.Release(cost);
      ++released;
    }
    done = released;
  });
  for (auto& p : producers) p.join();
  consumer.join();
  EXPECT_EQ(done.load(), kThreads * kPerThread);
  EXPECT_FALSE(admitted.violated);
  EXPECT_EQ(budget.used_bytes(), 0);
  EXPECT_EQ(budget.queued(), 0);
}

}  // namespace
}  // namespace petal::server
