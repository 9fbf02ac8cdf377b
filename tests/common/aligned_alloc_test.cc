#include "common/aligned_alloc.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <thread>
#include <vector>

#include "common/ndarray.h"
#include "gtest/gtest.h"

namespace petal::common {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

class AlignedAllocTest : public ::testing::Test {
 protected:
  void SetUp() override { ReleaseCachedLargeBlocks(); }
  void TearDown() override { ReleaseCachedLargeBlocks(); }
};

TEST_F(AlignedAllocTest, SmallBlocksAre64ByteAlignedAndLargeOnes2MiB) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, kLargeBlockBytes - 1}) {
    void* p = AllocateAligned(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << n;
    FreeAligned(p, n);
  }
  for (size_t n : {kLargeBlockBytes, kLargeBlockBytes + 3, 40 * kMiB}) {
    auto* p = static_cast<unsigned char*>(AllocateAligned(n));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % (2 * kMiB), 0u) << n;
    p[0] = 1;
    p[n - 1] = 2;  // the whole block is usable
    FreeAligned(p, n);
  }
  EXPECT_THROW(AllocateAligned(std::numeric_limits<size_t>::max() - 100), std::bad_alloc);
  FreeAligned(nullptr, 8 * kMiB);  // ignored
}

TEST_F(AlignedAllocTest, AFreedLargeBlockIsReusedForTheSameRoundedSize) {
  void* p = AllocateAligned(8 * kMiB);
  std::memset(p, 7, 8 * kMiB);
  void* other = AllocateAligned(6 * kMiB);
  FreeAligned(p, 8 * kMiB);
  if (!LargeBlockCacheEnabled()) {  // AddressSanitizer build: every block goes back at once
    EXPECT_EQ(CachedLargeBlockBytes(), 0u);
    FreeAligned(other, 6 * kMiB);
    EXPECT_EQ(CachedLargeBlockBytes(), 0u);
    return;
  }
  EXPECT_EQ(CachedLargeBlockBytes(), 8 * kMiB);
  // 8 MiB - 100 rounds up to the same 8 MiB: the cached block comes back.
  void* q = AllocateAligned(8 * kMiB - 100);
  EXPECT_EQ(q, p);
  EXPECT_EQ(CachedLargeBlockBytes(), 0u);
  FreeAligned(q, 8 * kMiB - 100);
  // A different rounded size does not take it.
  void* r = AllocateAligned(10 * kMiB);
  EXPECT_NE(r, p);
  EXPECT_EQ(CachedLargeBlockBytes(), 8 * kMiB);
  FreeAligned(r, 10 * kMiB);
  FreeAligned(other, 6 * kMiB);
  EXPECT_EQ(CachedLargeBlockBytes(), 24 * kMiB);
  // Small blocks never enter the cache.
  FreeAligned(AllocateAligned(1000), 1000);
  EXPECT_EQ(CachedLargeBlockBytes(), 24 * kMiB);
  ReleaseCachedLargeBlocks();
  EXPECT_EQ(CachedLargeBlockBytes(), 0u);
}

TEST_F(AlignedAllocTest, TheCacheStaysWithinItsBudget) {
  // Blocks are never touched here, so they cost address space, not memory.
  // A multiple of 2 MiB (the cache counts rounded sizes) such that two fit and three do not.
  const size_t block = (kLargeBlockCacheBytes / 3 / (2 * kMiB) + 1) * 2 * kMiB;
  std::vector<void*> blocks;
  for (int i = 0; i < 3; ++i) blocks.push_back(AllocateAligned(block));
  for (void* p : blocks) FreeAligned(p, block);
  EXPECT_LE(CachedLargeBlockBytes(), kLargeBlockCacheBytes);
  if (LargeBlockCacheEnabled()) {
    EXPECT_EQ(CachedLargeBlockBytes(), 2 * block);  // the oldest went back to the system
    // The newest is handed out first.
    void* p = AllocateAligned(block);
    EXPECT_EQ(p, blocks[2]);
    FreeAligned(p, block);
  }
  // A block larger than the whole budget is never kept.
  ReleaseCachedLargeBlocks();
  void* huge = AllocateAligned(kLargeBlockCacheBytes + 2 * kMiB);
  FreeAligned(huge, kLargeBlockCacheBytes + 2 * kMiB);
  EXPECT_EQ(CachedLargeBlockBytes(), 0u);
}

TEST_F(AlignedAllocTest, ConcurrentUseNeverHandsOneBlockToTwoOwners) {
  constexpr int kThreads = 4;
  constexpr size_t kBytes = 6 * kMiB;
  std::vector<std::thread> threads;
  std::vector<int> corrupted(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &corrupted] {
      for (int round = 0; round < 20; ++round) {
        auto* p = static_cast<unsigned char*>(AllocateAligned(kBytes));
        const unsigned char mark = static_cast<unsigned char>(t * 31 + round);
        std::memset(p, mark, kBytes);
        std::this_thread::yield();
        for (size_t i = 0; i < kBytes; i += 4096) corrupted[t] += p[i] != mark;
        FreeAligned(p, kBytes);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(corrupted[t], 0) << "thread " << t;
  EXPECT_LE(CachedLargeBlockBytes(), size_t{kThreads} * kBytes);
}

TEST_F(AlignedAllocTest, ModelSizedNDArrayBuffersAreRecycled) {
  const void* first = nullptr;
  {
    absl::StatusOr<NDArray> a = NDArray::ForOverwrite(DType::kFloat32, {10'000'000});
    ASSERT_TRUE(a.ok());
    first = a->data();
  }
  absl::StatusOr<NDArray> b = NDArray::ForOverwrite(DType::kFloat32, {10'000'000});
  ASSERT_TRUE(b.ok());
  if (LargeBlockCacheEnabled()) {
    EXPECT_EQ(b->data(), first);
  } else {
    EXPECT_EQ(CachedLargeBlockBytes(), 0u);
  }
}

}  // namespace
}  // namespace petal::common
