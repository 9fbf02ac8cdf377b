#include "model/split.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "model/internal/csv.h"
#include "model/internal/random.h"

namespace petal::model {
namespace {

uint64_t PairKey(int32_t user, int32_t item) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(user)) << 32) | static_cast<uint32_t>(item);
}

void CopyRow(const Interactions& from, size_t r, Interactions& to) {
  to.Add(from.users[r], from.items[r], from.ratings[r], from.timestamps[r]);
}

// Builds a split from a per-row test mask: rows go to train or test, tag
// applications on held-out (user, item) pairs go to test, and the catalog's item
// tags are rebuilt from the training applications only.
SplitData Assemble(const Dataset& dataset, const std::vector<bool>& is_test, std::string protocol) {
  const Interactions& all = dataset.interactions;
  SplitData split;
  split.user_ids = dataset.user_ids;
  split.protocol = std::move(protocol);
  split.users.resize(dataset.num_users());
  std::iota(split.users.begin(), split.users.end(), 0);
  std::unordered_set<uint64_t> held_out;
  for (size_t r = 0; r < all.size(); ++r) {
    if (is_test[r]) {
      CopyRow(all, r, split.test);
      held_out.insert(PairKey(all.users[r], all.items[r]));
    } else {
      CopyRow(all, r, split.train);
    }
  }
  for (const TagApplication& a : all.tag_applications) {
    (held_out.count(PairKey(a.user, a.item)) ? split.test : split.train)
        .tag_applications.push_back(a);
  }
  if (held_out.empty() || all.tag_applications.empty()) {
    split.catalog = dataset.catalog;
  } else {
    Catalog catalog = *dataset.catalog;
    RebuildItemTags(catalog, split.train.tag_applications);
    split.catalog = std::make_shared<const Catalog>(std::move(catalog));
  }
  return split;
}

}  // namespace

absl::StatusOr<SplitData> LeaveOneOut(const Dataset& dataset, int32_t num_negatives,
                                      uint64_t seed) {
  if (num_negatives < 0) {
    return absl::InvalidArgumentError(
        fmt::format("leave-one-out: num_negatives must be >= 0, got {}", num_negatives));
  }
  const Interactions& all = dataset.interactions;
  const int32_t num_users = dataset.num_users();
  const int32_t num_items = dataset.catalog->num_items();
  const UserIndex index = IndexByUser(all, num_users);
  std::vector<bool> is_test(all.size(), false);
  std::vector<RankingCase> cases;
  std::vector<int32_t> seen;
  std::unordered_set<int32_t> picked;
  for (int32_t u = 0; u < num_users; ++u) {
    auto rows = index.Rows(u);
    if (rows.size() < 2) continue;
    const int64_t test_row = rows.back();
    is_test[test_row] = true;
    RankingCase c;
    c.user = u;
    c.item = all.items[test_row];
    seen.clear();
    for (int64_t r : rows) seen.push_back(all.items[r]);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    const int32_t available = num_items - static_cast<int32_t>(seen.size());
    if (available <= num_negatives) {
      for (int32_t i = 0; i < num_items; ++i) {
        if (!std::binary_search(seen.begin(), seen.end(), i)) c.negatives.push_back(i);
      }
    } else {
      internal::Rng rng(internal::DeriveSeed(seed, static_cast<uint64_t>(u)));
      picked.clear();
      while (static_cast<int32_t>(c.negatives.size()) < num_negatives) {
        const int32_t i = static_cast<int32_t>(rng.UniformInt(num_items));
        if (std::binary_search(seen.begin(), seen.end(), i) || !picked.insert(i).second) continue;
        c.negatives.push_back(i);
      }
    }
    cases.push_back(std::move(c));
  }
  SplitData split = Assemble(dataset, is_test, "leave_one_out");
  split.ranking = std::move(cases);
  return split;
}

absl::StatusOr<SplitData> KFold(const Dataset& dataset, int32_t num_folds, int32_t fold,
                                uint64_t seed) {
  if (num_folds < 2) {
    return absl::InvalidArgumentError(
        fmt::format("kfold: num_folds must be >= 2, got {}", num_folds));
  }
  if (fold < 0 || fold >= num_folds) {
    return absl::InvalidArgumentError(
        fmt::format("kfold: fold must be in [0, {}), got {}", num_folds, fold));
  }
  const size_t n = dataset.interactions.size();
  std::vector<int64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  internal::Rng rng(internal::DeriveSeed(seed, 0xF01D));
  rng.Shuffle(perm);
  std::vector<bool> is_test(n, false);
  const size_t begin = n * static_cast<size_t>(fold) / num_folds;
  const size_t end = n * static_cast<size_t>(fold + 1) / num_folds;
  for (size_t k = begin; k < end; ++k) is_test[perm[k]] = true;
  return Assemble(dataset, is_test, fmt::format("kfold {}/{}", fold + 1, num_folds));
}

absl::StatusOr<SplitData> MovieLens100KFold(const Dataset& dataset, const std::string& dir,
                                            const std::string& name) {
  static const char* const kNames[] = {"u1", "u2", "u3", "u4", "u5", "ua", "ub"};
  if (std::find(std::begin(kNames), std::end(kNames), name) == std::end(kNames)) {
    return absl::InvalidArgumentError(
        fmt::format("ML-100K fold must be one of u1..u5, ua, ub; got '{}'", name));
  }
  std::unordered_map<std::string, int32_t> user_index;
  for (int32_t u = 0; u < dataset.num_users(); ++u) user_index.emplace((*dataset.user_ids)[u], u);
  const Catalog& catalog = *dataset.catalog;
  auto read = [&](const std::string& path, Interactions& out) -> absl::Status {
    PETAL_ASSIGN_OR_RETURN(std::string text, common::ReadFileToString(path));
    internal::CsvReader reader(text, path, '\t', /*quoting=*/false);
    while (reader.Next()) {
      PETAL_RETURN_IF_ERROR(reader.ExpectColumns(4));
      const std::string_view user_id = internal::Trim(reader.fields()[0]);
      auto user = user_index.find(std::string(user_id));
      if (user == user_index.end()) {
        return reader.Error(fmt::format("unknown user '{}' (not in u.data)", user_id));
      }
      std::optional<int32_t> item = catalog.FindItem(internal::Trim(reader.fields()[1]));
      if (!item) {
        return reader.Error(
            fmt::format("unknown item '{}' (not in u.item)", internal::Trim(reader.fields()[1])));
      }
      PETAL_ASSIGN_OR_RETURN(double rating, reader.Double(2, "rating"));
      if (rating < 1.0 || rating > 5.0) {
        return reader.Error(fmt::format("rating {} is outside [1, 5]", rating));
      }
      PETAL_ASSIGN_OR_RETURN(int64_t ts, reader.Int(3, "timestamp"));
      out.Add(user->second, *item, static_cast<float>(rating), ts);
    }
    return reader.status();
  };
  SplitData split;
  split.catalog = dataset.catalog;  // ML-100K has no tag applications to hold out
  split.user_ids = dataset.user_ids;
  split.users.resize(dataset.num_users());
  std::iota(split.users.begin(), split.users.end(), 0);
  split.protocol = "ml100k " + name;
  PETAL_RETURN_IF_ERROR(read(dir + "/" + name + ".base", split.train));
  PETAL_RETURN_IF_ERROR(read(dir + "/" + name + ".test", split.test));
  return split;
}

SplitData NoSplit(const Dataset& dataset) {
  return Assemble(dataset, std::vector<bool>(dataset.interactions.size(), false), "none");
}

absl::StatusOr<SplitData> RestrictToUsers(const SplitData& split,
                                          absl::Span<const int32_t> users) {
  std::vector<bool> member(split.num_users_total(), false);
  for (int32_t u : users) {
    if (u < 0 || u >= split.num_users_total()) {
      return absl::InvalidArgumentError(fmt::format(
          "user index {} is outside the dataset's {} users", u, split.num_users_total()));
    }
    if (member[u]) return absl::InvalidArgumentError(fmt::format("user index {} is listed twice", u));
    member[u] = true;
  }
  SplitData out;
  out.catalog = split.catalog;
  out.user_ids = split.user_ids;
  out.protocol = split.protocol;
  out.users.assign(users.begin(), users.end());
  std::sort(out.users.begin(), out.users.end());
  auto filter = [&member](const Interactions& from, Interactions& to) {
    for (size_t r = 0; r < from.size(); ++r) {
      if (member[from.users[r]]) CopyRow(from, r, to);
    }
    for (const TagApplication& a : from.tag_applications) {
      if (member[a.user]) to.tag_applications.push_back(a);
    }
  };
  filter(split.train, out.train);
  filter(split.test, out.test);
  for (const RankingCase& c : split.ranking) {
    if (member[c.user]) out.ranking.push_back(c);
  }
  return out;
}

absl::StatusOr<ColdStartSplit> SplitOffColdUsers(const SplitData& split, double fraction,
                                                 uint64_t seed) {
  if (!(fraction > 0.0 && fraction < 1.0)) {
    return absl::InvalidArgumentError(
        fmt::format("the cold-user fraction must be in (0, 1), got {}", fraction));
  }
  // Candidates: users with a ranking case, in ascending order, then shuffled by the seed.
  std::vector<int32_t> candidates;
  for (const RankingCase& c : split.ranking) candidates.push_back(c.user);
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  const auto num_cold = static_cast<size_t>(std::llround(fraction * candidates.size()));
  if (num_cold == 0 || num_cold >= split.users.size()) {
    return absl::InvalidArgumentError(fmt::format(
        "a cold-user fraction of {} leaves {} cold of {} users with a ranking case ({} users in "
        "all); both groups must be non-empty (leave_one_out has ranking cases)",
        fraction, num_cold, candidates.size(), split.users.size()));
  }
  internal::Rng rng(internal::DeriveSeed(seed, 0xC01D5EEDull));
  rng.Shuffle(candidates);
  std::vector<int32_t> cold(candidates.begin(), candidates.begin() + num_cold);
  std::sort(cold.begin(), cold.end());
  std::vector<int32_t> warm;
  std::set_difference(split.users.begin(), split.users.end(), cold.begin(), cold.end(),
                      std::back_inserter(warm));
  ColdStartSplit out;
  PETAL_ASSIGN_OR_RETURN(out.warm, RestrictToUsers(split, warm));
  PETAL_ASSIGN_OR_RETURN(out.cold, RestrictToUsers(split, cold));
  out.warm.protocol += " (warm users)";
  out.cold.protocol += " (cold users)";
  return out;
}

}  // namespace petal::model
