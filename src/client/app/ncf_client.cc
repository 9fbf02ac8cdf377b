#include "client/app/ncf_client.h"

#include <fmt/format.h>

#include <utility>

#include "common/file_util.h"
#include "common/logging.h"
#include "common/status_macros.h"

namespace petal::client {
namespace {

namespace log = common::log;

// GlobalArrays() views the live parameters; replies need their own copy.
common::NDArrays Snapshot(const model::LocalWorkload& workload) {
  common::NDArrays out;
  for (const common::NDArray& a : workload.GlobalArrays()) out.push_back(common::NDArray(a));
  return out;
}

}  // namespace

std::string NcfClient::AccountantPath(const std::string& state_dir) {
  return state_dir + "/privacy_accountant.txt";
}

NcfClient::NcfClient(Token, std::unique_ptr<model::LocalWorkload> workload,
                     NcfClientOptions options)
    : workload_(std::move(workload)),
      options_(std::move(options)),
      dp_(options_.privacy, options_.privacy_seed) {}

NcfClient::~NcfClient() = default;

absl::StatusOr<std::unique_ptr<NcfClient>> NcfClient::Create(
    std::unique_ptr<model::LocalWorkload> workload, NcfClientOptions options) {
  if (workload == nullptr) return absl::InvalidArgumentError("NcfClient needs a workload");
  if (options.privacy.enabled) PETAL_RETURN_IF_ERROR(options.privacy.Validate());
  auto client = std::make_unique<NcfClient>(Token{}, std::move(workload), std::move(options));
  const std::string& dir = client->options_.state_dir;
  if (dir.empty()) return client;

  absl::Status loaded = client->workload_->LoadLocalState(dir);
  if (loaded.ok()) {
    client->resumed_ = true;
    log::Info("[{}] resumed local state from {}", client->options_.name, dir);
  } else if (absl::IsNotFound(loaded)) {
    log::Info("[{}] no local state in {} yet: starting fresh", client->options_.name, dir);
  } else {
    return common::Annotate(loaded, fmt::format("loading local state from {}", dir));
  }
  absl::StatusOr<std::string> accountant = common::ReadFileToString(AccountantPath(dir));
  if (accountant.ok()) {
    PETAL_ASSIGN_OR_RETURN(client->dp_.accountant(), RdpAccountant::Parse(*accountant));
  } else if (!absl::IsNotFound(accountant.status())) {
    return accountant.status();
  }
  return client;
}

absl::Status NcfClient::SaveState() {
  if (options_.state_dir.empty()) return absl::OkStatus();
  PETAL_RETURN_IF_ERROR(workload_->SaveLocalState(options_.state_dir));
  if (dp_.accountant().rounds() > 0) {
    PETAL_RETURN_IF_ERROR(common::WriteFileAtomically(AccountantPath(options_.state_dir),
                                                      dp_.accountant().Serialize()));
  }
  return absl::OkStatus();
}

absl::StatusOr<GetPropertiesRes> NcfClient::GetProperties(const GetPropertiesIns&) {
  const model::TagNcfOptions& o = workload_->options();
  common::ConfigMap props{
      {"name", options_.name},    {"partition_id", int64_t{options_.partition_id}},
      {"num_users", o.num_users}, {"num_items", o.num_items},
      {"num_tags", o.num_tags},   {"num_train_examples", workload_->num_train_examples()},
      {"fits_done", fits_done_},  {"local_dp", options_.privacy.enabled},
  };
  return GetPropertiesRes{common::SuccessStatus(), std::move(props)};
}

absl::StatusOr<GetParametersRes> NcfClient::GetParameters(const GetParametersIns&) {
  return GetParametersRes{common::SuccessStatus(), Snapshot(*workload_)};
}

absl::StatusOr<FitRes> NcfClient::Fit(const FitIns& ins) {
  PETAL_ASSIGN_OR_RETURN(model::TrainConfig config,
                         model::MergeTrainConfig(options_.train, ins.config));
  PETAL_RETURN_IF_ERROR(workload_->SetGlobalArrays(*ins.parameters));
  PETAL_ASSIGN_OR_RETURN(model::TrainStats stats, workload_->Train(config));
  common::NDArrays arrays = Snapshot(*workload_);

  common::ConfigMap metrics = model::ToConfigMap(stats);
  metrics.Set("loss", stats.loss);
  metrics.SetInt("local_epochs", config.epochs);
  metrics.SetInt("batch_size", config.batch_size);
  metrics.Set("lr", config.lr);
  metrics.Set("proximal_mu", config.proximal_mu);
  metrics.Set("clipping_norm", config.clipping_norm);
  metrics.SetInt("partition_id", options_.partition_id);
  if (options_.privacy.enabled) {
    PETAL_ASSIGN_OR_RETURN(DpRelease release, dp_.Privatize(*ins.parameters, &arrays));
    metrics.Set("dp_epsilon", dp_.accountant().Epsilon(options_.privacy.delta));
    metrics.Set("dp_delta", options_.privacy.delta);
    metrics.SetInt("dp_rounds", dp_.accountant().rounds());
    metrics.Set("dp_update_norm", release.update_norm);
    metrics.Set("dp_clipped", release.clipped);
  }
  PETAL_RETURN_IF_ERROR(common::Annotate(SaveState(), "saving local state"));
  ++fits_done_;
  log::Info("[{}] fit: {} examples, train loss {:.4f}, {:.0f} samples/s{}", options_.name,
            stats.num_examples, stats.loss, stats.samples_per_second,
            options_.privacy.enabled
                ? fmt::format(", DP epsilon {:.3f} (delta {:g}) after {} round(s)",
                              dp_.accountant().Epsilon(options_.privacy.delta),
                              options_.privacy.delta, dp_.accountant().rounds())
                : std::string());
  return FitRes{common::SuccessStatus(), std::move(arrays), stats.num_examples, std::move(metrics)};
}

absl::StatusOr<EvaluateRes> NcfClient::Evaluate(const EvaluateIns& ins) {
  PETAL_ASSIGN_OR_RETURN(model::EvalConfig config,
                         model::MergeEvalConfig(options_.eval, ins.config));
  PETAL_RETURN_IF_ERROR(workload_->SetGlobalArrays(*ins.parameters));
  PETAL_ASSIGN_OR_RETURN(model::EvalStats stats, workload_->Evaluate(config));
  common::ConfigMap metrics = model::ToConfigMap(stats);
  metrics.SetInt("partition_id", options_.partition_id);
  log::Info("[{}] evaluate: {} cases, loss {:.4f}{}", options_.name, stats.num_examples, stats.loss,
            stats.ranking_cases > 0 ? fmt::format(", hr@{} {:.4f}, ndcg@{} {:.4f}", stats.k,
                                                  stats.hit_rate, stats.k, stats.ndcg)
                                    : fmt::format(", rmse {:.4f}", stats.rmse));
  return EvaluateRes{common::SuccessStatus(), static_cast<float>(stats.loss), stats.num_examples,
                     std::move(metrics)};
}

}  // namespace petal::client
