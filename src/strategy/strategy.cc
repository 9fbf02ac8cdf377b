#include "strategy/strategy.h"

#include <fmt/format.h>

#include "common/status_macros.h"

namespace petal::strategy {

FitAggregator::~FitAggregator() = default;
Strategy::~Strategy() = default;

absl::StatusOr<FitAggregate> Strategy::AggregateFit(int64_t server_round,
                                                    const SharedNDArrays& current,
                                                    std::vector<FitResult> results,
                                                    std::vector<Failure> failures) {
  PETAL_ASSIGN_OR_RETURN(FitAggregatorPtr aggregator, BeginAggregateFit(server_round, current));
  for (FitResult& r : results) {
    std::string cid = r.client ? r.client->cid() : std::string();
    absl::Status s = aggregator->Add(std::move(r));
    if (!s.ok()) failures.push_back(Failure{std::move(cid), std::move(s)});
  }
  return aggregator->Finish(failures);
}

StrategyState Strategy::SaveState() const { return {}; }

absl::Status Strategy::LoadState(const StrategyState& state) {
  if (!state.arrays.empty() || !state.scalars.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "strategy '{}' keeps no state, but the checkpoint holds {} arrays and {} scalars for it",
        name(), state.arrays.size(), state.scalars.size()));
  }
  return absl::OkStatus();
}

}  // namespace petal::strategy
