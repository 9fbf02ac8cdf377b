// File: fedopt.h
//
// The FedOpt family (Reddi et al., "Adaptive Federated Optimization"), as
// Flower's legacy FedAdagrad, FedAdam and FedYogi: FedAvg of the results, then a
// server optimizer step on the pseudo-gradient delta = average - x.
//
//   m <- beta_1 * m + (1 - beta_1) * delta
//   Adagrad: v <- v + delta^2
//   Adam:    v <- beta_2 * v + (1 - beta_2) * delta^2
//   Yogi:    v <- v - (1 - beta_2) * delta^2 * sign(v - delta^2)
//   x <- x + eta_r * m / (sqrt(v) + tau)
// with eta_r = eta * sqrt(1 - beta_2^(r+1)) / (1 - beta_1^(r+1)) for Adam only.
//
// Defaults (Flower legacy): FedAdagrad eta=0.1 eta_l=0.1 tau=1e-9 (beta forced
// to 0); FedAdam eta=0.1 eta_l=0.1 beta_1=0.9 beta_2=0.99 tau=1e-9; FedYogi
// eta=0.01 eta_l=0.0316 beta_1=0.9 beta_2=0.99 tau=1e-3. eta_l is kept but, as
// in Flower, never sent to clients.
//
// x is the global model sent this round (Flower keeps the same thing as
// current_weights). Unlike Flower, initial parameters are not mandatory: a
// model obtained from a client works too. m and v are the checkpointed state.
#pragma once

#include "strategy/fedavg.h"

namespace petal::strategy {

class FedOpt : public FedAvg {
 public:
  FedOpt(std::string_view name, ServerOptimizer optimizer, FedAvgOptions options,
         FedOptHyperparameters hp, double eta_l);

  std::string_view name() const override { return name_; }
  absl::StatusOr<NDArrays> ServerUpdate(int64_t server_round, const SharedNDArrays& current,
                                        NDArrays average) override;
  StrategyState SaveState() const override;
  absl::Status LoadState(const StrategyState& state) override;

  const FedOptHyperparameters& hyperparameters() const { return hp_; }
  double eta_l() const { return eta_l_; }

 private:
  std::string_view name_;
  ServerOptimizer optimizer_;
  FedOptHyperparameters hp_;
  double eta_l_;
  NDArrays m_t_;
  NDArrays v_t_;
};

}  // namespace petal::strategy
