// The deterministic synthetic dataset (the embedded default).
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "model/dataset.h"
#include "model/internal/random.h"

namespace petal::model {
namespace {

absl::Status Invalid(std::string_view option, std::string_view rule) {
  return absl::InvalidArgumentError(fmt::format("synthetic option '{}' {}", option, rule));
}

absl::Status Validate(const SyntheticOptions& o) {
  if (o.num_users < 1) return Invalid("num_users", "must be >= 1");
  if (o.num_items < 2) return Invalid("num_items", "must be >= 2");
  if (o.num_genres < 1) return Invalid("num_genres", "must be >= 1");
  if (o.num_tags < 0) return Invalid("num_tags", "must be >= 0");
  if (o.latent_dim < 1) return Invalid("latent_dim", "must be >= 1");
  if (o.min_interactions < 1) return Invalid("min_interactions", "must be >= 1");
  if (o.min_interactions > o.num_items) return Invalid("min_interactions", "must be <= num_items");
  if (!(o.mean_interactions >= 1.0)) return Invalid("mean_interactions", "must be >= 1");
  if (!(o.popularity_exponent >= 0.0)) return Invalid("popularity_exponent", "must be >= 0");
  if (!(o.taste_strength >= 0.0)) return Invalid("taste_strength", "must be >= 0");
  if (!(o.rating_noise >= 0.0)) return Invalid("rating_noise", "must be >= 0");
  if (!(o.tag_rate >= 0.0 && o.tag_rate <= 1.0)) return Invalid("tag_rate", "must be in [0, 1]");
  return absl::OkStatus();
}

double Dot(const double* a, const double* b, int d) {
  double s = 0;
  for (int k = 0; k < d; ++k) s += a[k] * b[k];
  return s;
}

}  // namespace

absl::StatusOr<Dataset> GenerateSynthetic(const SyntheticOptions& o) {
  if (absl::Status s = Validate(o); !s.ok()) return s;
  const int d = o.latent_dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  internal::Rng rng(internal::DeriveSeed(o.seed, 0x5E7));

  auto gaussian_rows = [&](int n) {
    std::vector<double> m(static_cast<size_t>(n) * d);
    for (double& x : m) x = rng.Normal();
    return m;
  };
  const std::vector<double> item_factors = gaussian_rows(o.num_items);
  const std::vector<double> genre_dirs = gaussian_rows(o.num_genres);
  const std::vector<double> tag_dirs = gaussian_rows(o.num_tags);
  std::vector<double> item_quality(o.num_items);
  for (double& q : item_quality) q = 0.35 * rng.Normal();

  // Power-law popularity over a random ranking of the items.
  std::vector<int32_t> rank(o.num_items);
  std::iota(rank.begin(), rank.end(), 0);
  rng.Shuffle(rank);
  std::vector<double> log_popularity(o.num_items);
  for (int32_t i = 0; i < o.num_items; ++i) {
    log_popularity[i] = -o.popularity_exponent * std::log(1.0 + rank[i]);
  }

  Catalog catalog;
  catalog.name = "synthetic";
  for (int g = 0; g < o.num_genres; ++g) catalog.tag_names.push_back(fmt::format("genre_{:02d}", g));
  catalog.num_genres = o.num_genres;
  for (int t = 0; t < o.num_tags; ++t) catalog.tag_names.push_back(fmt::format("tag_{:03d}", t));

  // Genres follow the item's latent factors: the best-aligned genre, plus up to
  // two more that align strongly.
  std::vector<std::pair<double, int32_t>> scored(o.num_genres);
  for (int32_t i = 0; i < o.num_items; ++i) {
    catalog.item_ids.push_back(fmt::format("{}", i + 1));
    catalog.item_titles.push_back(fmt::format("Synthetic item {}", i + 1));
    for (int g = 0; g < o.num_genres; ++g) {
      scored[g] = {Dot(&item_factors[i * d], &genre_dirs[g * d], d) * scale + 0.3 * rng.Normal(),
                   g};
    }
    std::sort(scored.begin(), scored.end(), std::greater<>());
    std::vector<int32_t> genres = {scored[0].second};
    for (int k = 1; k < std::min(3, o.num_genres); ++k) {
      if (scored[k].first > 0.9) genres.push_back(scored[k].second);
    }
    std::sort(genres.begin(), genres.end());
    std::vector<float> ones(genres.size(), 1.0f);
    catalog.item_genres.AddRow(genres, ones);
    catalog.item_genome.AddRow({}, {});
  }

  Interactions interactions;
  interactions.Reserve(static_cast<size_t>(o.num_users * o.mean_interactions * 1.2));
  std::vector<std::string> user_ids;
  std::vector<double> taste(d);
  std::vector<std::pair<double, int32_t>> keys(o.num_items);
  std::vector<double> tag_logits(o.num_tags);
  const int32_t max_interactions = std::max(o.min_interactions, o.num_items / 2);
  int64_t clock = 1'000'000'000;
  for (int32_t u = 0; u < o.num_users; ++u) {
    user_ids.push_back(fmt::format("{}", u + 1));
    internal::Rng urng(internal::DeriveSeed(o.seed, 1000 + u));
    for (double& x : taste) x = urng.Normal();
    const double n_real = o.mean_interactions * std::exp(0.8 * urng.Normal() - 0.32);
    const int32_t n = std::clamp<int32_t>(static_cast<int32_t>(std::lround(n_real)),
                                          o.min_interactions, max_interactions);
    // Gumbel top-k: n items without replacement, P ~ popularity * exp(strength * affinity).
    for (int32_t i = 0; i < o.num_items; ++i) {
      const double affinity = Dot(taste.data(), &item_factors[i * d], d) * scale;
      keys[i] = {log_popularity[i] + o.taste_strength * affinity + urng.Gumbel(), i};
    }
    std::partial_sort(keys.begin(), keys.begin() + n, keys.end(), std::greater<>());
    // Random order in time.
    std::vector<int32_t> chosen(n);
    for (int32_t k = 0; k < n; ++k) chosen[k] = keys[k].second;
    urng.Shuffle(chosen);
    int64_t t = clock + static_cast<int64_t>(urng.UniformInt(86400 * 30));
    for (int32_t item : chosen) {
      t += 60 + static_cast<int64_t>(urng.UniformInt(3600 * 6));
      const double affinity = Dot(taste.data(), &item_factors[item * d], d) * scale;
      const double raw = 3.4 + 0.9 * affinity + item_quality[item] + o.rating_noise * urng.Normal();
      const float rating = static_cast<float>(std::clamp(std::round(raw), 1.0, 5.0));
      interactions.Add(u, item, rating, t);
      if (o.num_tags > 0 && urng.Uniform() < o.tag_rate) {
        // The tag reflects both the item and the user's taste.
        double max_logit = -1e300;
        for (int k = 0; k < o.num_tags; ++k) {
          tag_logits[k] = 2.0 * scale *
                          (Dot(&item_factors[item * d], &tag_dirs[k * d], d) +
                           Dot(taste.data(), &tag_dirs[k * d], d));
          max_logit = std::max(max_logit, tag_logits[k]);
        }
        double total = 0;
        for (double& l : tag_logits) total += (l = std::exp(l - max_logit));
        double pick = urng.Uniform() * total;
        int k = 0;
        while (k + 1 < o.num_tags && pick >= tag_logits[k]) pick -= tag_logits[k++];
        interactions.tag_applications.push_back({u, item, o.num_genres + k, t + 30});
      }
    }
  }
  Dataset ds;
  ds.stats.num_ratings = static_cast<int64_t>(interactions.size());
  ds.stats.num_tag_applications = static_cast<int64_t>(interactions.tag_applications.size());
  RebuildItemTags(catalog, interactions.tag_applications);
  catalog.BuildIndex();
  ds.catalog = std::make_shared<const Catalog>(std::move(catalog));
  ds.user_ids = std::make_shared<const std::vector<std::string>>(std::move(user_ids));
  ds.interactions = std::move(interactions);
  return ds;
}

}  // namespace petal::model
