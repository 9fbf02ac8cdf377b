// File: internal/features.h
//
// Tag features fed to TagNcf, computed without LibTorch: item tag rows
// normalized to sum 1, and user tag profiles (see TagNcfOptions).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "model/dataset.h"

namespace petal::model::internal {

// catalog.item_tags with each non-empty row scaled to sum 1.
SparseRows NormalizedItemTags(const Catalog& catalog);

// One user's profile: the normalized tag rows of `history_items` (each item
// contributes total weight item_weights[k], or 1 when item_weights is empty)
// plus `own_tag_weight` per own tag application, truncated to the `max_tags`
// heaviest tags (0 = all; ties keep the lower id), then normalized to sum 1.
// Appended to `out` as one row (empty if no tags).
void AppendProfile(const SparseRows& item_tags_normalized, absl::Span<const int32_t> history_items,
                   absl::Span<const int32_t> own_tags, int64_t max_tags, double own_tag_weight,
                   SparseRows& out, absl::Span<const double> item_weights = {});

// Recency weights for a history with these timestamps (in history order):
// the k-th most recent item gets 0.5^(k / half_life); equal timestamps keep
// history order (the later entry counts as more recent). Empty if
// half_life <= 0 (every item weighs 1).
std::vector<double> RecencyWeights(absl::Span<const int64_t> timestamps, double half_life);

}  // namespace petal::model::internal
