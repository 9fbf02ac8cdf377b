// File: split.h
//
// Train/test protocols over a Dataset, and the restriction of a split to the
// users one client holds.
//
//   PETAL_ASSIGN_OR_RETURN(SplitData split, LeaveOneOut(dataset, 99, /*seed=*/1));
//   SplitData client = RestrictToUsers(split, partition[3]);   // shares the catalog
//
// Held-out interactions take the tags their user applied to the held-out item
// with them: those applications move to `test` and are removed from the
// catalog's item tags (a new Catalog, shared by every restriction), so no
// held-out information leaks into training features.
//
// Everything is deterministic: negatives for a user come from a random stream
// derived from (seed, user index) alone, so a client that loads only its own
// partition gets exactly the test cases the pooled run evaluates.
// Thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/dataset.h"

namespace petal::model {

// One leave-one-out ranking case: the held-out item against sampled negatives
// the user never interacted with.
struct RankingCase {
  int32_t user = 0;
  int32_t item = 0;
  std::vector<int32_t> negatives;
};

struct SplitData {
  std::shared_ptr<const Catalog> catalog;  // item tags exclude held-out applications
  std::shared_ptr<const std::vector<std::string>> user_ids;
  std::vector<int32_t> users;  // the users this data covers (ascending dataset indices)
  Interactions train;
  Interactions test;                 // held-out interactions (with their tag applications)
  std::vector<RankingCase> ranking;  // leave-one-out only
  std::string protocol;              // "leave_one_out", "kfold 2/5", "ml100k u1", "none"

  int32_t num_users_total() const { return user_ids ? static_cast<int32_t>(user_ids->size()) : 0; }
};

// Holds out each user's latest interaction (largest timestamp; among equal
// timestamps the one that comes last in the data) and samples
// `num_negatives` distinct items the user never interacted with (fewer when
// the catalog has fewer). Users with a single interaction keep it for training
// and get no case. InvalidArgument for num_negatives < 0.
absl::StatusOr<SplitData> LeaveOneOut(const Dataset& dataset, int32_t num_negatives,
                                      uint64_t seed);

// Rating protocol: the interactions shuffled by `seed` and cut into
// `num_folds` equal parts (like Surprise's KFold); fold `fold` (0-based) is the
// test set. InvalidArgument for num_folds < 2 or fold outside [0, num_folds).
absl::StatusOr<SplitData> KFold(const Dataset& dataset, int32_t num_folds, int32_t fold,
                                uint64_t seed);

// MovieLens 100K's predefined folds: `dir`/<name>.base and <name>.test with
// name u1..u5, ua or ub, read in the user and item space of `dataset` (which
// must be LoadMovieLens100K(dir)). Errors name file and line (unknown user or
// item, malformed line).
absl::StatusOr<SplitData> MovieLens100KFold(const Dataset& dataset, const std::string& dir,
                                            const std::string& name);

// Everything is training data (no test set).
SplitData NoSplit(const Dataset& dataset);

// The part of `split` that belongs to `users` (dataset user indices, any
// order): their train/test interactions and ranking cases, in the original
// order. The catalog is shared, not copied. InvalidArgument for an index out
// of range or a duplicate.
absl::StatusOr<SplitData> RestrictToUsers(const SplitData& split, absl::Span<const int32_t> users);

// Cold-start protocol: a seeded `fraction` of the users with a ranking case
// become COLD: the model never trains on them (they get no embedding), and
// their ranking cases are scored from their training history alone (the tag
// profile, see LocalWorkload::ScoreColdStartUser). `warm` keeps everybody
// else; `cold` holds the cold users' history (train), held-out data and
// ranking cases. Both share the catalog. InvalidArgument unless 0 < fraction
// < 1 and both groups end up non-empty.
struct ColdStartSplit {
  SplitData warm;
  SplitData cold;
};
absl::StatusOr<ColdStartSplit> SplitOffColdUsers(const SplitData& split, double fraction,
                                                 uint64_t seed);

}  // namespace petal::model
