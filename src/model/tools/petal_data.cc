// petal-data: loads the dataset of a config, times the load, and summarizes
// the split and a partitioning (sizes and genre skew per partition). Handy to
// check data files and to see what each federated client will hold.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <string>

#include <fmt/format.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/status_macros.h"
#include "model/experiment.h"

namespace petal::model {
namespace {

struct DataAppConfig {
  DataConfig data;
  SplitConfig split;
  PartitionOptions partition;
  bool has_partition = false;
};

absl::StatusOr<DataAppConfig> ReadConfig(const common::YamlConfig& yaml) {
  DataAppConfig c;
  common::ConfigReader r(yaml);
  ReadDataConfig(r, "data", &c.data);
  ReadSplitConfig(r, "split", &c.split);
  c.has_partition = r.Has("partition");
  ReadPartitionOptions(r, "partition", &c.partition);
  // Sections for other tools are allowed in the same file.
  for (const char* other : {"model", "train", "eval", "seed", "threads", "output", "server",
                            "client", "strategy"}) {
    r.Consume(other);
  }
  PETAL_RETURN_IF_ERROR(r.Finish());
  return c;
}

absl::Status Run(const DataAppConfig& c, int repeat) {
  double best = 1e300;
  absl::StatusOr<Dataset> loaded = absl::UnknownError("not loaded");
  for (int k = 0; k < repeat; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    loaded = LoadDataset(c.data);
    if (!loaded.ok()) return loaded.status();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const Dataset& ds = *loaded;
  const Catalog& catalog = *ds.catalog;
  int64_t item_tag_nnz = catalog.item_tags.nnz();
  std::cout << fmt::format(
      "dataset {} ({}): {} users, {} items, {} interactions, {} duplicate (user, item) pairs kept\n"
      "  tags: {} ({} genres, {} free/genome), {} tag applications, {} item-tag entries",
      catalog.name, c.data.source, ds.num_users(), catalog.num_items(), ds.interactions.size(),
      ds.stats.num_duplicate_ratings, catalog.num_tags(), catalog.num_genres,
      catalog.num_tags() - catalog.num_genres, ds.interactions.tag_applications.size(),
      item_tag_nnz);
  if (ds.stats.num_genome_scores_total > 0) {
    std::cout << fmt::format(", genome {} of {} scores kept", ds.stats.num_genome_scores_kept,
                             ds.stats.num_genome_scores_total);
  }
  std::cout << fmt::format("\n  load time {:.3f} s (best of {})\n", best, repeat);

  PETAL_ASSIGN_OR_RETURN(SplitData split, MakeSplit(ds, c.data, c.split));
  std::cout << fmt::format("split {}: {} train, {} test interactions, {} ranking cases\n",
                           split.protocol, split.train.size(), split.test.size(),
                           split.ranking.size());
  if (!c.has_partition) return absl::OkStatus();
  PETAL_ASSIGN_OR_RETURN(auto parts, PartitionUsers(split, c.partition));
  const std::vector<int32_t> label = DominantGenres(split);
  std::vector<int64_t> train_rows(split.num_users_total(), 0);
  for (int32_t u : split.train.users) ++train_rows[u];
  std::cout << fmt::format("partition {} into {} (alpha {}, seed {}):\n",
                           PartitionSchemeName(c.partition.scheme), parts.size(), c.partition.alpha,
                           c.partition.seed);
  const size_t shown = std::min<size_t>(parts.size(), 20);
  for (size_t p = 0; p < shown; ++p) {
    std::map<int32_t, int> counts;
    int64_t rows = 0;
    int best_count = 0;
    int32_t best_label = -1;
    for (int32_t u : parts[p]) {
      rows += train_rows[u];
      if (++counts[label[u]] > best_count) {
        best_count = counts[label[u]];
        best_label = label[u];
      }
    }
    const std::string genre = best_label >= 0 && best_label < catalog.num_genres
                                  ? catalog.tag_names[best_label]
                                  : std::string("(none)");
    std::cout << fmt::format("  {:>4}: {:>6} users {:>8} train interactions, top genre {} ({:.0f}%)\n",
                             p, parts[p].size(), rows, genre,
                             parts[p].empty() ? 0.0 : 100.0 * best_count / parts[p].size());
  }
  if (shown < parts.size()) std::cout << fmt::format("  ... {} more\n", parts.size() - shown);
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  common::CommandLine cli("petal-data",
                          "Loads a config's dataset, times the load, and summarizes its split and "
                          "(with partition.* keys) a partitioning over clients.");
  cli.AddFlag("config", "PATH", "YAML config (its data/split/partition sections are used)",
              "configs/centralized.yaml");
  cli.AddFlag("repeat", "N", "load N times and report the fastest", "1");
  cli.AddEpilog(
      "Examples:\n"
      "  petal-data --set data.source=ml-latest --repeat 5\n"
      "  petal-data --set partition.scheme=dirichlet --set partition.num_partitions=10 "
      "--set partition.alpha=0.3\n"
      "Exit codes: 0 success, 1 data error, 2 usage or config error.");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << "petal-data: " << s.message() << "\n";
    return 2;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  int repeat = 0;
  try {
    repeat = std::stoi(cli.Get("repeat"));
  } catch (const std::exception&) {
    repeat = 0;
  }
  if (repeat < 1) {
    std::cerr << "petal-data: --repeat must be a positive integer\n";
    return 2;
  }
  absl::StatusOr<common::YamlConfig> yaml = common::YamlConfig::LoadFile(cli.Get("config"));
  if (!yaml.ok()) {
    std::cerr << "petal-data: " << yaml.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = cli.ApplyOverrides(*yaml); !s.ok()) {
    std::cerr << "petal-data: " << s.message() << "\n";
    return 2;
  }
  absl::StatusOr<DataAppConfig> config = ReadConfig(*yaml);
  if (!config.ok()) {
    std::cerr << "petal-data: " << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = Run(*config, repeat); !s.ok()) {
    std::cerr << "petal-data: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace petal::model

int main(int argc, char** argv) { return petal::model::Main(argc, argv); }
