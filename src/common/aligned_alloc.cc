#include "common/aligned_alloc.h"

#include <sys/mman.h>

#include <cstdlib>
#include <deque>
#include <limits>
#include <mutex>
#include <new>
#include <utility>

namespace petal::common {
namespace {

constexpr size_t kSmallAlign = 64;
constexpr size_t kHugePage = size_t{2} << 20;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUseCache = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUseCache = false;
#else
constexpr bool kUseCache = true;
#endif
#else
constexpr bool kUseCache = true;
#endif

// Rounded size and alignment of a request.
std::pair<size_t, size_t> Layout(size_t nbytes) {
  const size_t align = nbytes >= kLargeBlockBytes ? kHugePage : kSmallAlign;
  if (nbytes > std::numeric_limits<size_t>::max() - align) throw std::bad_alloc();
  size_t rounded = (nbytes + align - 1) / align * align;
  if (rounded == 0) rounded = align;
  return {rounded, align};
}

class LargeBlockCache {
 public:
  // A cached block of exactly `rounded` bytes, or null.
  void* Take(size_t rounded) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = blocks_.rbegin(); it != blocks_.rend(); ++it) {
      if (it->second == rounded) {
        void* p = it->first;
        bytes_ -= rounded;
        blocks_.erase(std::next(it).base());
        return p;
      }
    }
    return nullptr;
  }
  // Keeps the block; frees the oldest ones beyond the budget (outside the lock).
  void Put(void* p, size_t rounded) {
    std::deque<std::pair<void*, size_t>> evicted;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (rounded > kLargeBlockCacheBytes) {
        evicted.emplace_back(p, rounded);
      } else {
        blocks_.emplace_back(p, rounded);
        bytes_ += rounded;
        while (bytes_ > kLargeBlockCacheBytes) {
          bytes_ -= blocks_.front().second;
          evicted.push_back(blocks_.front());
          blocks_.pop_front();
        }
      }
    }
    for (const auto& [q, n] : evicted) std::free(q);
  }
  size_t bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return bytes_;
  }
  void Clear() {
    std::deque<std::pair<void*, size_t>> all;
    {
      std::lock_guard<std::mutex> lock(mu_);
      all.swap(blocks_);
      bytes_ = 0;
    }
    for (const auto& [q, n] : all) std::free(q);
  }

 private:
  std::mutex mu_;
  std::deque<std::pair<void*, size_t>> blocks_;  // oldest first
  size_t bytes_ = 0;
};

LargeBlockCache& Cache() {
  static auto* cache = new LargeBlockCache();  // never destroyed: frees may run at exit
  return *cache;
}

}  // namespace

void* AllocateAligned(size_t nbytes) {
  const auto [rounded, align] = Layout(nbytes);
  if (kUseCache && align == kHugePage) {
    if (void* p = Cache().Take(rounded)) return p;
  }
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr) throw std::bad_alloc();
  if (align == kHugePage) ::madvise(p, rounded, MADV_HUGEPAGE);  // advice only: errors ignored
  return p;
}

void FreeAligned(void* p, size_t nbytes) {
  if (p == nullptr) return;
  const auto [rounded, align] = Layout(nbytes);
  if (kUseCache && align == kHugePage) {
    Cache().Put(p, rounded);
    return;
  }
  std::free(p);
}

bool LargeBlockCacheEnabled() { return kUseCache; }

size_t CachedLargeBlockBytes() { return Cache().bytes(); }

void ReleaseCachedLargeBlocks() { Cache().Clear(); }

}  // namespace petal::common
