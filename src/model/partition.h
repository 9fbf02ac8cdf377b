// File: partition.h
//
// Partitioners that spread the users of a split over federated clients.
//
//   PartitionOptions options{PartitionScheme::kDirichlet, /*num_partitions=*/10, /*alpha=*/0.3};
//   PETAL_ASSIGN_OR_RETURN(auto parts, PartitionUsers(split, options));
//   // parts[p] = ascending user indices of client p
//
// Every user of split.users lands in exactly one partition; the result depends
// only on the split and the options (seed included), so N processes compute
// the same partitions independently. Thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/split.h"

namespace petal::model {

enum class PartitionScheme {
  kIid,        // users shuffled and dealt round-robin (sizes differ by at most 1)
  kDirichlet,  // per dominant genre, shares ~ Dirichlet(alpha) over partitions (label skew)
  kPerUser,    // one partition per user (cross-device), in ascending user order
};

// "iid", "dirichlet", "per_user"; InvalidArgument listing them otherwise.
absl::StatusOr<PartitionScheme> ParsePartitionScheme(std::string_view name);
std::string_view PartitionSchemeName(PartitionScheme scheme);

struct PartitionOptions {
  PartitionScheme scheme = PartitionScheme::kIid;
  // Number of partitions; for kPerUser 0 means "one per user" (any other value
  // must equal the number of users).
  int32_t num_partitions = 1;
  double alpha = 0.5;               // Dirichlet concentration (> 0); small = more skew
  int32_t min_partition_size = 1;   // Dirichlet: resample until every partition has this many
  uint64_t seed = 0;
};

// InvalidArgument for num_partitions < 1 or > number of users, alpha <= 0, or
// a Dirichlet draw that cannot satisfy min_partition_size after 1000 tries.
absl::StatusOr<std::vector<std::vector<int32_t>>> PartitionUsers(const SplitData& split,
                                                                 const PartitionOptions& options);

// The genre each user interacted with most in split.train (ties: lowest genre
// id), or catalog.num_genres for users without any genre; indexed by dataset
// user index. This is the label the Dirichlet partitioner skews.
std::vector<int32_t> DominantGenres(const SplitData& split);

}  // namespace petal::model
