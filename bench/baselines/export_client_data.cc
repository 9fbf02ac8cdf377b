// petal_bench_export: writes the data ONE petal-client trains and evaluates on
// (its partition, split and tag features, computed by src/model exactly as
// petal-client computes them) to an .npz, so that the PyTorch baseline in
// bench/baselines/tag_ncf_torch.py trains the same model on the same data.
//
//   petal_bench_export --config configs/federation/ml100k/client.yaml
//       --set partition.num_partitions=4 --set client.partition_id=0 --out client0.npz
//
// Arrays (int64 unless noted; "local" = row in this client's sorted user list):
//   num_items, num_tags            [1]
//   train_user, train_item         [N]  positives in data order (local user, item)
//   has_train                      [U]  1 if the local user has training data (else
//                                       they are scored as cold start, row -1)
//   seen_offsets, seen_items       CSR: each local user's distinct training items, sorted
//   item_tag_offsets/_indices, item_tag_weights (float32)   normalized item tag rows
//   profile_offsets/_indices, profile_weights (float32)     one tag profile per local user
//   rank_user, rank_item           [C]  leave-one-out cases (local user, held-out item)
//   rank_neg_offsets, rank_negatives    CSR: each case's sampled negatives
// Exit codes: 0 written, 1 data error, 2 usage or config error.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/cli.h"
#include "common/config.h"
#include "common/npz.h"
#include "common/status_macros.h"
#include "model/experiment.h"
#include "model/internal/features.h"

namespace petal::bench {
namespace {

using common::NDArray;
using common::NamedArrays;

struct ExportConfig {
  model::DataConfig data;
  model::SplitConfig split;
  model::PartitionOptions partition;
  model::TagNcfOptions model;
  int32_t partition_id = 0;
};

absl::StatusOr<ExportConfig> ReadConfig(const common::YamlConfig& yaml) {
  ExportConfig c;
  common::ConfigReader r(yaml);
  model::ReadDataConfig(r, "data", &c.data);
  model::ReadSplitConfig(r, "split", &c.split);
  model::ReadPartitionOptions(r, "partition", &c.partition);
  model::ReadModelOptions(r, "model", &c.model);
  int64_t id = 0;
  r.Read("client.partition_id", &id, common::AtLeast<int64_t>(0));
  c.partition_id = static_cast<int32_t>(id);
  // The rest of petal-client's file is not needed here.
  for (const char* other : {"server", "client", "train", "eval", "privacy", "seed", "threads",
                            "output", "strategy"}) {
    r.Consume(other);
  }
  PETAL_RETURN_IF_ERROR(r.Finish());
  return c;
}

template <typename T>
NDArray Vec(const std::vector<T>& v) {
  return NDArray::FromVector<T>({static_cast<int64_t>(v.size())}, v).value();
}

std::vector<int64_t> Widen(const std::vector<int32_t>& v) { return {v.begin(), v.end()}; }

absl::Status Run(const ExportConfig& c, const std::string& out) {
  PETAL_ASSIGN_OR_RETURN(model::SplitData data,
                         model::LoadClientData(c.data, c.split, c.partition, c.partition_id));
  std::vector<int32_t> users = data.users;
  std::sort(users.begin(), users.end());
  auto local_of = [&users](int32_t user) {
    return static_cast<int64_t>(std::lower_bound(users.begin(), users.end(), user) - users.begin());
  };
  const model::Catalog& catalog = *data.catalog;
  const int64_t num_local = static_cast<int64_t>(users.size());

  // As LocalWorkload::Create: items and own tags per local user, in data order.
  std::vector<std::vector<int32_t>> items_of(num_local);
  std::vector<std::vector<int32_t>> tags_of(num_local);
  std::vector<int64_t> train_user;
  std::vector<int64_t> train_item;
  std::vector<int64_t> has_train(num_local, 0);
  for (size_t r = 0; r < data.train.size(); ++r) {
    const int64_t local = local_of(data.train.users[r]);
    train_user.push_back(local);
    train_item.push_back(data.train.items[r]);
    has_train[local] = 1;
    items_of[local].push_back(data.train.items[r]);
  }
  for (const model::TagApplication& a : data.train.tag_applications) {
    tags_of[local_of(a.user)].push_back(a.tag);
  }
  const model::SparseRows item_tags = model::internal::NormalizedItemTags(catalog);
  model::SparseRows profiles;
  std::vector<int64_t> seen_offsets = {0};
  std::vector<int64_t> seen_items;
  for (int64_t u = 0; u < num_local; ++u) {
    model::internal::AppendProfile(item_tags, items_of[u], tags_of[u], c.model.profile_max_tags,
                                   c.model.own_tag_weight, profiles);
    std::vector<int32_t> items = items_of[u];
    std::sort(items.begin(), items.end());
    items.erase(std::unique(items.begin(), items.end()), items.end());
    seen_items.insert(seen_items.end(), items.begin(), items.end());
    seen_offsets.push_back(static_cast<int64_t>(seen_items.size()));
  }
  std::vector<int64_t> rank_user;
  std::vector<int64_t> rank_item;
  std::vector<int64_t> rank_neg_offsets = {0};
  std::vector<int64_t> rank_negatives;
  for (const model::RankingCase& rc : data.ranking) {
    rank_user.push_back(local_of(rc.user));
    rank_item.push_back(rc.item);
    rank_negatives.insert(rank_negatives.end(), rc.negatives.begin(), rc.negatives.end());
    rank_neg_offsets.push_back(static_cast<int64_t>(rank_negatives.size()));
  }

  NamedArrays arrays;
  arrays.emplace_back("num_items", Vec(std::vector<int64_t>{catalog.num_items()}));
  arrays.emplace_back("num_tags", Vec(std::vector<int64_t>{catalog.num_tags()}));
  arrays.emplace_back("train_user", Vec(train_user));
  arrays.emplace_back("train_item", Vec(train_item));
  arrays.emplace_back("has_train", Vec(has_train));
  arrays.emplace_back("seen_offsets", Vec(seen_offsets));
  arrays.emplace_back("seen_items", Vec(seen_items));
  arrays.emplace_back("item_tag_offsets", Vec(item_tags.offsets));
  arrays.emplace_back("item_tag_indices", Vec(Widen(item_tags.indices)));
  arrays.emplace_back("item_tag_weights", Vec(item_tags.weights));
  arrays.emplace_back("profile_offsets", Vec(profiles.offsets));
  arrays.emplace_back("profile_indices", Vec(Widen(profiles.indices)));
  arrays.emplace_back("profile_weights", Vec(profiles.weights));
  arrays.emplace_back("rank_user", Vec(rank_user));
  arrays.emplace_back("rank_item", Vec(rank_item));
  arrays.emplace_back("rank_neg_offsets", Vec(rank_neg_offsets));
  arrays.emplace_back("rank_negatives", Vec(rank_negatives));
  PETAL_RETURN_IF_ERROR(common::WriteNpz(out, arrays));
  std::cerr << fmt::format("petal_bench_export: partition {}: {} users, {} positives, {} cases -> {}\n",
                           c.partition_id, num_local, train_user.size(), rank_user.size(), out);
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  common::CommandLine cli("petal_bench_export",
                          "Writes one petal-client's training/evaluation data to an .npz for the "
                          "PyTorch baseline.");
  cli.AddFlag("config", "FILE", "petal-client YAML", "configs/client.yaml");
  cli.AddFlag("out", "FILE", "output .npz", "client.npz");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << "petal_bench_export: " << s.message() << "\n";
    return 2;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  absl::StatusOr<common::YamlConfig> yaml = common::YamlConfig::LoadFile(cli.Get("config"));
  if (!yaml.ok()) {
    std::cerr << "petal_bench_export: " << yaml.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = cli.ApplyOverrides(*yaml); !s.ok()) {
    std::cerr << "petal_bench_export: " << s.message() << "\n";
    return 2;
  }
  absl::StatusOr<ExportConfig> config = ReadConfig(*yaml);
  if (!config.ok()) {
    std::cerr << "petal_bench_export: " << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = Run(*config, cli.Get("out")); !s.ok()) {
    std::cerr << "petal_bench_export: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace petal::bench

int main(int argc, char** argv) { return petal::bench::Main(argc, argv); }
