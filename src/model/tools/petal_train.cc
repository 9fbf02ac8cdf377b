// petal-train: the centralized baseline. Trains TagNCF on pooled data from a
// YAML config, prints one progress line per epoch, and writes per-epoch
// metrics (metrics.json, metrics.csv), the effective config and the final
// model (model.npz, all parameters by name) to output.dir.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/cli.h"
#include "common/config.h"
#include "common/file_util.h"
#include "common/logging.h"
#include "common/npz.h"
#include "common/status_macros.h"
#include "model/experiment.h"
#include "model/workload.h"

namespace petal::model {
namespace {

struct TrainAppConfig {
  DataConfig data;
  SplitConfig split;
  TagNcfOptions model;
  TrainConfig train;
  EvalConfig eval;
  int32_t eval_every = 1;           // evaluate every N epochs (0 = only after the last)
  bool full_catalog_each_epoch = false;
  uint64_t seed = 1;
  int32_t threads = 1;
  std::string output_dir = "out/centralized";
  bool save_model = true;
};

absl::StatusOr<TrainAppConfig> ReadConfig(const common::YamlConfig& yaml) {
  TrainAppConfig c;
  c.train.epochs = 10;
  common::ConfigReader r(yaml);
  ReadDataConfig(r, "data", &c.data);
  ReadSplitConfig(r, "split", &c.split);
  ReadModelOptions(r, "model", &c.model);
  ReadTrainConfig(r, "train", &c.train);
  ReadEvalConfig(r, "eval", &c.eval);
  int every = c.eval_every;
  r.Read("eval.every", &every, common::AtLeast<int64_t>(0));
  c.eval_every = every;
  r.Read("eval.full_catalog_each_epoch", &c.full_catalog_each_epoch);
  int64_t seed = static_cast<int64_t>(c.seed);
  r.Read("seed", &seed, common::AtLeast<int64_t>(0));
  c.seed = static_cast<uint64_t>(seed);
  int threads = c.threads;
  r.Read("threads", &threads, common::InRange<int64_t>(1, 256));
  c.threads = threads;
  r.Read("output.dir", &c.output_dir);
  r.Read("output.save_model", &c.save_model);
  if (c.output_dir.empty()) r.Fail("output.dir", "must not be empty");
  PETAL_RETURN_IF_ERROR(r.Finish());
  return c;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

nlohmann::ordered_json EvalJson(const EvalStats& e) {
  nlohmann::ordered_json j;
  j["eval_loss"] = e.loss;
  if (e.ranking_cases > 0) {
    j[fmt::format("hr@{}", e.k)] = e.hit_rate;
    j[fmt::format("ndcg@{}", e.k)] = e.ndcg;
    j["ranking_cases"] = e.ranking_cases;
  }
  if (e.catalog_users > 0) {
    j[fmt::format("precision@{}", e.k)] = e.precision;
    j[fmt::format("recall@{}", e.k)] = e.recall;
    j["catalog_users"] = e.catalog_users;
  }
  if (e.rating_count > 0) {
    j["rmse"] = e.rmse;
    j["mae"] = e.mae;
    j["test_ratings"] = e.rating_count;
  }
  return j;
}

std::string EvalLine(const EvalStats& e) {
  std::string s;
  if (e.ranking_cases > 0) s += fmt::format("  hr@{} {:.4f}  ndcg@{} {:.4f}", e.k, e.hit_rate, e.k, e.ndcg);
  if (e.rating_count > 0) s += fmt::format("  rmse {:.4f}  mae {:.4f}", e.rmse, e.mae);
  if (e.catalog_users > 0) {
    s += fmt::format("  p@{} {:.4f}  r@{} {:.4f}", e.k, e.precision, e.k, e.recall);
  }
  return s;
}

// Rows of metrics.csv share one header: every key any epoch produced.
std::string ToCsv(const nlohmann::ordered_json& epochs) {
  std::vector<std::string> columns;
  for (const auto& row : epochs) {
    for (const auto& [key, value] : row.items()) {
      if (std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);
    }
  }
  std::string out = fmt::format("{}\n", fmt::join(columns, ","));
  for (const auto& row : epochs) {
    std::vector<std::string> cells;
    for (const auto& c : columns) {
      if (!row.contains(c)) {
        cells.emplace_back();
      } else if (row[c].is_number_float()) {
        cells.push_back(fmt::format("{:.6g}", row[c].get<double>()));
      } else {
        cells.push_back(row[c].dump());
      }
    }
    out += fmt::format("{}\n", fmt::join(cells, ","));
  }
  return out;
}

absl::Status Run(const TrainAppConfig& c, const common::YamlConfig& yaml) {
  const auto t0 = std::chrono::steady_clock::now();
  PETAL_ASSIGN_OR_RETURN(Dataset dataset, LoadDataset(c.data));
  const double load_seconds = Seconds(t0);
  const Catalog& catalog = *dataset.catalog;
  std::cout << fmt::format(
                   "data: {} ({}): {} users, {} items, {} tags ({} genres), {} interactions, {} tag "
                   "applications, loaded in {:.3f} s\n",
                   catalog.name, c.data.source, dataset.num_users(), catalog.num_items(),
                   catalog.num_tags(), catalog.num_genres, dataset.interactions.size(),
                   dataset.interactions.tag_applications.size(), load_seconds)
            << std::flush;
  PETAL_ASSIGN_OR_RETURN(SplitData split, MakeSplit(dataset, c.data, c.split));
  std::cout << fmt::format("split: {}: {} train, {} test interactions, {} ranking cases\n",
                           split.protocol, split.train.size(), split.test.size(),
                           split.ranking.size());
  std::optional<SplitData> cold;
  if (c.split.cold_users > 0.0) {
    PETAL_ASSIGN_OR_RETURN(ColdStartSplit parts,
                           SplitOffColdUsers(split, c.split.cold_users, c.split.seed));
    std::cout << fmt::format(
        "cold start: {} of {} users held out of training ({} interactions never trained on), "
        "ranked from their history alone in {} cases\n",
        parts.cold.users.size(), split.users.size(), parts.cold.train.size(),
        parts.cold.ranking.size());
    split = std::move(parts.warm);
    cold = std::move(parts.cold);
  }
  PETAL_ASSIGN_OR_RETURN(std::unique_ptr<LocalWorkload> workload,
                         LocalWorkload::Create(std::move(split), c.model, c.train, c.seed, c.threads));
  // Warm metrics plus, with cold users, their "cold_" metrics.
  auto evaluate = [&](const EvalConfig& ec, nlohmann::ordered_json& json,
                      std::string& line) -> absl::Status {
    PETAL_ASSIGN_OR_RETURN(EvalStats e, workload->Evaluate(ec));
    json.update(EvalJson(e));
    line += EvalLine(e);
    if (cold) {
      PETAL_ASSIGN_OR_RETURN(EvalStats ce, workload->EvaluateColdStart(*cold, ec.k));
      json[fmt::format("cold_hr@{}", ce.k)] = ce.hit_rate;
      json[fmt::format("cold_ndcg@{}", ce.k)] = ce.ndcg;
      json["cold_ranking_cases"] = ce.ranking_cases;
      line += fmt::format("  cold hr@{} {:.4f}  ndcg@{} {:.4f}", ce.k, ce.hit_rate, ce.k, ce.ndcg);
    }
    return absl::OkStatus();
  };
  const TagNcfOptions& o = workload->options();
  int64_t global_params = 0;
  for (const auto& shape : workload->GlobalParameterShapes()) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    global_params += n;
  }
  std::cout << fmt::format(
      "model: TagNCF {} ({}{}), gmf {} mlp {} [{}] tag {}; {} global parameters in {} arrays; "
      "{} threads\n",
      FeedbackModeName(o.mode), o.gmf_only ? "GMF only" : "GMF+MLP", o.use_tags ? ", tags" : ", no tags",
      o.gmf_dim, o.mlp_embedding_dim, fmt::join(o.mlp_layers, ","), o.tag_dim, global_params,
      workload->GlobalParameterNames().size(), c.threads);
  PETAL_RETURN_IF_ERROR(common::CreateDirectories(c.output_dir));

  nlohmann::ordered_json epochs = nlohmann::ordered_json::array();
  TrainConfig one_epoch = c.train;
  one_epoch.epochs = 1;
  nlohmann::ordered_json last_eval;
  bool evaluated_last = false;
  double train_seconds = 0;
  int64_t samples = 0;
  for (int32_t epoch = 1; epoch <= c.train.epochs; ++epoch) {
    PETAL_ASSIGN_OR_RETURN(TrainStats t, workload->Train(one_epoch));
    train_seconds += t.seconds;
    samples += t.num_samples;
    nlohmann::ordered_json row;
    row["epoch"] = epoch;
    row["train_loss"] = t.loss;
    row["train_seconds"] = t.seconds;
    row["samples_per_second"] = t.samples_per_second;
    std::string line = fmt::format("epoch {:>3}/{}  loss {:.4f}  {:.1f} s  {:.0f} samples/s", epoch,
                                   c.train.epochs, t.loss, t.seconds, t.samples_per_second);
    const bool last = epoch == c.train.epochs;
    if (last || (c.eval_every > 0 && epoch % c.eval_every == 0)) {
      EvalConfig ec = c.eval;
      ec.full_catalog = c.eval.full_catalog && (last || c.full_catalog_each_epoch);
      const auto te = std::chrono::steady_clock::now();
      nlohmann::ordered_json metrics;
      PETAL_RETURN_IF_ERROR(evaluate(ec, metrics, line));
      row.update(metrics);
      row["eval_seconds"] = Seconds(te);
      last_eval = std::move(metrics);
      evaluated_last = last;
    }
    std::cout << line << "\n" << std::flush;
    epochs.push_back(row);
  }
  if (!evaluated_last) {
    std::string line = "final:";
    last_eval = nlohmann::ordered_json::object();
    PETAL_RETURN_IF_ERROR(evaluate(c.eval, last_eval, line));
    std::cout << line << "\n";
  }

  nlohmann::ordered_json summary;
  summary["dataset"] = {{"name", catalog.name},
                        {"source", c.data.source},
                        {"users", dataset.num_users()},
                        {"items", catalog.num_items()},
                        {"tags", catalog.num_tags()},
                        {"interactions", dataset.interactions.size()},
                        {"tag_applications", dataset.interactions.tag_applications.size()},
                        {"load_seconds", load_seconds}};
  summary["split"] = {{"protocol", workload->data().protocol},
                      {"train", workload->data().train.size()},
                      {"test", workload->data().test.size()},
                      {"ranking_cases", workload->data().ranking.size()}};
  summary["seed"] = c.seed;
  summary["threads"] = c.threads;
  summary["epochs"] = epochs;
  if (cold) {
    summary["cold_start"] = {{"cold_users", cold->users.size()},
                             {"cold_history_interactions", cold->train.size()},
                             {"cold_ranking_cases", cold->ranking.size()}};
  }
  summary["final"] = last_eval;
  summary["train_seconds"] = train_seconds;
  summary["samples_per_second"] = train_seconds > 0 ? samples / train_seconds : 0.0;
  summary["total_seconds"] = Seconds(t0);
  summary["config"] = yaml.Dump();
  PETAL_RETURN_IF_ERROR(
      common::WriteFileAtomically(c.output_dir + "/metrics.json", summary.dump(2) + "\n"));
  PETAL_RETURN_IF_ERROR(common::WriteFileAtomically(c.output_dir + "/metrics.csv", ToCsv(epochs)));
  PETAL_RETURN_IF_ERROR(common::WriteFileAtomically(c.output_dir + "/config.yaml", yaml.Dump()));
  if (c.save_model) {
    PETAL_RETURN_IF_ERROR(common::WriteNpz(c.output_dir + "/model.npz", workload->AllArrays()));
  }
  std::cout << fmt::format(
      "done in {:.1f} s (training {:.1f} s, {:.0f} samples/s); wrote {}/metrics.json, "
      "metrics.csv, config.yaml{}\n",
      Seconds(t0), train_seconds, train_seconds > 0 ? samples / train_seconds : 0.0, c.output_dir,
      c.save_model ? ", model.npz" : "");
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  common::CommandLine cli("petal-train",
                          "Trains tag-aware NCF centrally on pooled data (the baseline that "
                          "federated runs are compared with).");
  cli.AddFlag("config", "PATH", "YAML config", "configs/centralized.yaml");
  cli.AddFlag("out", "DIR", "output directory (same as --set output.dir=DIR)");
  cli.AddEpilog(
      "Examples:\n"
      "  petal-train                                  # synthetic data, configs/centralized.yaml\n"
      "  petal-train --config configs/model/ml100k_implicit.yaml   # needs PETAL_DATA_DIR\n"
      "  petal-train --set train.epochs=5 --set model.use_tags=false --out out/no_tags\n"
      "Config sections: data, split, model, train, eval, seed, threads, output "
      "(see configs/centralized.yaml).\n"
      "Exit codes: 0 success, 1 training/data error, 2 usage or config error.");
  if (absl::Status s = cli.Parse(argc, argv); !s.ok()) {
    std::cerr << "petal-train: " << s.message() << "\n";
    return 2;
  }
  if (cli.help_requested()) {
    std::cout << cli.Usage();
    return 0;
  }
  absl::StatusOr<common::YamlConfig> yaml = common::YamlConfig::LoadFile(cli.Get("config"));
  if (!yaml.ok()) {
    std::cerr << "petal-train: " << yaml.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = cli.ApplyOverrides(*yaml); !s.ok()) {
    std::cerr << "petal-train: " << s.message() << "\n";
    return 2;
  }
  if (cli.Has("out")) {
    if (absl::Status s = yaml->ApplyOverride("output.dir=" + cli.Get("out")); !s.ok()) {
      std::cerr << "petal-train: " << s.message() << "\n";
      return 2;
    }
  }
  absl::StatusOr<TrainAppConfig> config = ReadConfig(*yaml);
  if (!config.ok()) {
    std::cerr << "petal-train: " << config.status().message() << "\n";
    return 2;
  }
  if (absl::Status s = Run(*config, *yaml); !s.ok()) {
    std::cerr << "petal-train: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace petal::model

int main(int argc, char** argv) { return petal::model::Main(argc, argv); }
