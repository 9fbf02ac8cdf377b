#include "client/stop_signal.h"

#include <atomic>
#include <future>
#include <thread>

#include "gtest/gtest.h"

namespace petal::client {
namespace {

TEST(StopSignalTest, WaitTimesOutWhenNotStopped) {
  StopSignal stop;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(stop.WaitUntil(start + absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_FALSE(stop.stopped());
}

TEST(StopSignalTest, StopWakesAWaiterOnAnotherThread) {
  StopSignal stop;
  std::promise<void> waiting;
  auto waiter = std::async(std::launch::async, [&] {
    waiting.set_value();
    return stop.WaitUntil(absl::Now() + absl::Hours(1));
  });
  waiting.get_future().wait();
  stop.Stop();
  ASSERT_EQ(waiter.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(waiter.get());
  EXPECT_TRUE(stop.stopped());
}

TEST(StopSignalTest, CallbacksRunOnceAndRemovedOnesNever) {
  StopSignal stop;
  int a = 0;
  int b = 0;
  stop.AddCallback([&] { ++a; });
  const StopSignal::CallbackId id = stop.AddCallback([&] { ++b; });
  stop.RemoveCallback(id);
  stop.Stop();
  stop.Stop();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0);
}

TEST(StopSignalTest, CallbackAddedAfterStopRunsImmediately) {
  StopSignal stop;
  stop.Stop();
  bool ran = false;
  EXPECT_EQ(stop.AddCallback([&] { ran = true; }), 0u);
  EXPECT_TRUE(ran);
  EXPECT_TRUE(stop.WaitUntil(absl::InfiniteFuture()));
}

TEST(StopSignalTest, ScopedCallbackIsRemovedWithItsScope) {
  StopSignal stop;
  int calls = 0;
  {
    ScopedStopCallback cb(stop, [&] { ++calls; });
  }
  stop.Stop();
  EXPECT_EQ(calls, 0);
}

TEST(StopSignalTest, ConcurrentStopAndRemoveNeverRunAFinishedCallback) {
  for (int round = 0; round < 200; ++round) {
    StopSignal stop;
    std::atomic<int> alive{1};
    std::atomic<bool> ran_after_removal{false};
    const StopSignal::CallbackId id = stop.AddCallback([&] {
      if (alive.load() == 0) ran_after_removal = true;
    });
    std::thread stopper([&] { stop.Stop(); });
    stop.RemoveCallback(id);
    alive = 0;
    stopper.join();
    EXPECT_FALSE(ran_after_removal.load());
  }
}

}  // namespace
}  // namespace petal::client
