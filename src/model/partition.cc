#include "model/partition.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "model/internal/random.h"

namespace petal::model {

absl::StatusOr<PartitionScheme> ParsePartitionScheme(std::string_view name) {
  if (name == "iid") return PartitionScheme::kIid;
  if (name == "dirichlet") return PartitionScheme::kDirichlet;
  if (name == "per_user") return PartitionScheme::kPerUser;
  return absl::InvalidArgumentError(fmt::format(
      "unknown partition scheme '{}' (expected one of: iid, dirichlet, per_user)", name));
}

std::string_view PartitionSchemeName(PartitionScheme scheme) {
  switch (scheme) {
    case PartitionScheme::kIid:
      return "iid";
    case PartitionScheme::kDirichlet:
      return "dirichlet";
    case PartitionScheme::kPerUser:
      return "per_user";
  }
  return "?";
}

std::vector<int32_t> DominantGenres(const SplitData& split) {
  const Catalog& catalog = *split.catalog;
  const int32_t num_genres = catalog.num_genres;
  std::vector<std::vector<int32_t>> counts(split.num_users_total());
  for (size_t r = 0; r < split.train.size(); ++r) {
    auto& c = counts[split.train.users[r]];
    if (c.empty()) c.assign(num_genres, 0);
    for (int32_t g : catalog.item_genres.Indices(split.train.items[r])) ++c[g];
  }
  std::vector<int32_t> label(split.num_users_total(), num_genres);
  for (size_t u = 0; u < counts.size(); ++u) {
    int32_t best = -1;
    for (int32_t g = 0; g < static_cast<int32_t>(counts[u].size()); ++g) {
      if (counts[u][g] > 0 && (best < 0 || counts[u][g] > counts[u][best])) best = g;
    }
    if (best >= 0) label[u] = best;
  }
  return label;
}

absl::StatusOr<std::vector<std::vector<int32_t>>> PartitionUsers(const SplitData& split,
                                                                 const PartitionOptions& options) {
  std::vector<int32_t> users = split.users;
  std::sort(users.begin(), users.end());
  const int32_t num_users = static_cast<int32_t>(users.size());
  int32_t n = options.num_partitions;
  if (options.scheme == PartitionScheme::kPerUser) {
    if (n == 0) n = num_users;
    if (n != num_users) {
      return absl::InvalidArgumentError(fmt::format(
          "per_user partitioning needs num_partitions = number of users ({}) or 0, got {}",
          num_users, options.num_partitions));
    }
  }
  if (n < 1 || n > num_users) {
    return absl::InvalidArgumentError(fmt::format(
        "num_partitions must be in [1, {}] (the number of users), got {}", num_users, n));
  }
  std::vector<std::vector<int32_t>> parts(n);
  internal::Rng rng(internal::DeriveSeed(options.seed, 0x9A27));
  switch (options.scheme) {
    case PartitionScheme::kPerUser:
      for (int32_t k = 0; k < n; ++k) parts[k] = {users[k]};
      return parts;
    case PartitionScheme::kIid: {
      rng.Shuffle(users);
      for (int32_t k = 0; k < num_users; ++k) parts[k % n].push_back(users[k]);
      break;
    }
    case PartitionScheme::kDirichlet: {
      if (!(options.alpha > 0.0) || !std::isfinite(options.alpha)) {
        return absl::InvalidArgumentError(
            fmt::format("dirichlet alpha must be a finite number > 0, got {}", options.alpha));
      }
      if (options.min_partition_size < 0 ||
          static_cast<int64_t>(options.min_partition_size) * n > num_users) {
        return absl::InvalidArgumentError(fmt::format(
            "min_partition_size {} is impossible for {} users in {} partitions",
            options.min_partition_size, num_users, n));
      }
      const std::vector<int32_t> label = DominantGenres(split);
      const int32_t num_classes = split.catalog->num_genres + 1;
      std::vector<std::vector<int32_t>> by_class(num_classes);
      for (int32_t u : users) by_class[label[u]].push_back(u);
      std::vector<double> share(n);
      bool ok = false;
      for (int attempt = 0; attempt < 1000 && !ok; ++attempt) {
        for (auto& p : parts) p.clear();
        for (auto& members : by_class) {
          if (members.empty()) continue;
          rng.Shuffle(members);
          double total = 0;
          for (double& s : share) total += (s = rng.Gamma(options.alpha));
          if (!(total > 0.0)) {
            // Every draw underflowed (tiny alpha): the limit puts the class in one partition.
            std::fill(share.begin(), share.end(), 0.0);
            share[rng.UniformInt(n)] = 1.0;
            total = 1.0;
          }
          const int64_t m = static_cast<int64_t>(members.size());
          double cumulative = 0;
          int64_t start = 0;
          for (int32_t k = 0; k < n; ++k) {
            cumulative += share[k];
            const int64_t end =
                k + 1 == n ? m : std::min<int64_t>(m, std::llround(cumulative / total * m));
            for (int64_t j = start; j < end; ++j) parts[k].push_back(members[j]);
            start = std::max(start, end);
          }
        }
        ok = true;
        for (const auto& p : parts) ok = ok && static_cast<int32_t>(p.size()) >= options.min_partition_size;
      }
      if (!ok) {
        return absl::InvalidArgumentError(fmt::format(
            "dirichlet partitioning (alpha {}) left a partition with fewer than {} users after "
            "1000 draws; raise alpha or lower num_partitions / min_partition_size",
            options.alpha, options.min_partition_size));
      }
      break;
    }
  }
  for (auto& p : parts) std::sort(p.begin(), p.end());
  return parts;
}

}  // namespace petal::model
