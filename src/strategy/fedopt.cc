#include "strategy/fedopt.h"

#include "common/status_macros.h"

namespace petal::strategy {

FedOpt::FedOpt(std::string_view name, ServerOptimizer optimizer, FedAvgOptions options,
               FedOptHyperparameters hp, double eta_l)
    : FedAvg(std::move(options)), name_(name), optimizer_(optimizer), hp_(hp), eta_l_(eta_l) {}

absl::StatusOr<NDArrays> FedOpt::ServerUpdate(int64_t server_round, const SharedNDArrays& current,
                                              NDArrays average) {
  const double step = optimizer_ == ServerOptimizer::kAdam
                          ? AdamStepSize(hp_.eta, hp_.beta_1, hp_.beta_2, server_round)
                          : hp_.eta;
  // Work on copies so a failed step leaves the moments untouched.
  NDArrays m = m_t_;
  NDArrays v = v_t_;
  PETAL_ASSIGN_OR_RETURN(NDArrays next, FedOptStep(optimizer_, hp_, step, *current, average, &m, &v));
  m_t_ = std::move(m);
  v_t_ = std::move(v);
  return next;
}

StrategyState FedOpt::SaveState() const {
  StrategyState state;
  AppendNamedArrays("m", m_t_, &state.arrays);
  AppendNamedArrays("v", v_t_, &state.arrays);
  return state;
}

absl::Status FedOpt::LoadState(const StrategyState& state) {
  PETAL_ASSIGN_OR_RETURN(NDArrays m, ExtractNamedArrays("m", state.arrays));
  PETAL_ASSIGN_OR_RETURN(NDArrays v, ExtractNamedArrays("v", state.arrays));
  if (m.size() != v.size() || m.size() + v.size() != state.arrays.size()) {
    return absl::InvalidArgumentError(
        "FedOpt state must hold m.0..m.n-1 and v.0..v.n-1 and nothing else");
  }
  m_t_ = std::move(m);
  v_t_ = std::move(v);
  return absl::OkStatus();
}

}  // namespace petal::strategy
