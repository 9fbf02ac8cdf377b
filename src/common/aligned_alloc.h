// File: aligned_alloc.h
//
// The memory behind NDArray buffers and the strategies' accumulators.
//
//   void* p = AllocateAligned(n);   // uninitialized, 64-byte aligned, never null
//   ...
//   FreeAligned(p, n);              // the same n
//
// Model-sized blocks (kLargeBlockBytes or more) get two treatments:
// - They are 2 MiB aligned and advised for transparent huge pages (madvise; a
//   no-op where THP is off): one page fault per 2 MiB instead of per 4 KiB.
// - Freed ones are kept in a small process-wide cache (at most
//   kLargeBlockCacheBytes) and handed out again for the same rounded size. A
//   server allocates the same model-sized buffers every round; fresh memory
//   costs a page fault and a kernel zeroing of every page each time (on a
//   lazily backed VM, far more), which for a 10M-parameter model is most of the
//   aggregation time. Blocks leave the cache newest-first, and the oldest are
//   released to the system when it is full. Builds with AddressSanitizer skip
//   the cache so use-after-free stays detectable.
// Thread-safe.
#pragma once

#include <cstddef>

namespace petal::common {

inline constexpr size_t kLargeBlockBytes = size_t{4} << 20;
inline constexpr size_t kLargeBlockCacheBytes = size_t{512} << 20;

// std::bad_alloc when memory runs out (or nbytes is absurd).
void* AllocateAligned(size_t nbytes);
// `p` from AllocateAligned(nbytes), or null (ignored).
void FreeAligned(void* p, size_t nbytes);

// False in AddressSanitizer builds (see above).
bool LargeBlockCacheEnabled();
// Bytes held by the cache of freed large blocks (for tests and diagnostics).
size_t CachedLargeBlockBytes();
// Releases every cached block to the system.
void ReleaseCachedLargeBlocks();

}  // namespace petal::common
