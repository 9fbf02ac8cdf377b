// File: ncf_client.h
//
// NcfClient: petal-client's Client. Serves one model::LocalWorkload (this
// client's partition, its TagNcf and optimizer) to a Flower server:
//   get_parameters -> the GLOBAL arrays (item/tag embeddings, MLP, output) in
//                     wire order, float32;
//   fit            -> load the received global arrays, train with the server's
//                     config over the YAML defaults (local_epochs, batch_size,
//                     lr, proximal_mu switches on the FedProx term,
//                     clipping_norm clips the update like Flower's client-side
//                     fixed clipping), optionally apply local DP, return the
//                     global arrays, num_examples and metrics (train_loss,
//                     samples_per_second, ...); then persist the local state;
//   evaluate       -> load the received arrays and report loss, HR@k, NDCG@k
//                     (or RMSE/MAE in rating mode), Precision/Recall@k.
// USER embeddings never leave the client: they live in the workload and are
// saved to `state_dir` after every fit, with the optimizer state and the
// privacy accountant, and loaded again on start (a restarted client continues
// where it stopped). Bad instructions (wrong count/shape/dtype, NaN/Inf,
// config values of the wrong type) return InvalidArgument naming the problem
// and change nothing. Not thread-safe (the transport calls it from one thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/local_dp.h"
#include "model/options.h"
#include "model/workload.h"

namespace petal::client {

struct NcfClientOptions {
  std::string name = "petal-client";
  int32_t partition_id = 0;
  // Where local state lives ("" = keep nothing across restarts).
  std::string state_dir;
  model::TrainConfig train;  // defaults; the server's fit config overrides them
  model::EvalConfig eval;    // defaults; the server's evaluate config overrides them
  LocalDpOptions privacy;
  std::optional<uint64_t> privacy_seed;  // reproducible DP noise (tests only)
};

class NcfClient final : public Client {
 public:
  // Takes the workload; loads `state_dir` when it holds state (NotFound is a
  // fresh start; state of other users/options, or a damaged file, is an error).
  static absl::StatusOr<std::unique_ptr<NcfClient>> Create(
      std::unique_ptr<model::LocalWorkload> workload, NcfClientOptions options);
  ~NcfClient() override;

  absl::StatusOr<GetPropertiesRes> GetProperties(const GetPropertiesIns& ins) override;
  absl::StatusOr<GetParametersRes> GetParameters(const GetParametersIns& ins) override;
  absl::StatusOr<FitRes> Fit(const FitIns& ins) override;
  absl::StatusOr<EvaluateRes> Evaluate(const EvaluateIns& ins) override;

  // Whether Create found and loaded local state.
  bool resumed() const { return resumed_; }
  int64_t fits_done() const { return fits_done_; }
  const model::LocalWorkload& workload() const { return *workload_; }
  const RdpAccountant& accountant() const { return dp_.accountant(); }

  // Files in state_dir besides the workload's own.
  static std::string AccountantPath(const std::string& state_dir);

 private:
  struct Token {};  // only Create constructs

 public:
  NcfClient(Token, std::unique_ptr<model::LocalWorkload> workload, NcfClientOptions options);

 private:
  absl::Status SaveState();

  std::unique_ptr<model::LocalWorkload> workload_;
  NcfClientOptions options_;
  LocalDp dp_;
  bool resumed_ = false;
  int64_t fits_done_ = 0;
};

}  // namespace petal::client
