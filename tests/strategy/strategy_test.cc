#include <memory>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategy/fedavg.h"
#include "strategy/fedopt.h"
#include "strategy/registry.h"

namespace petal::strategy {
namespace {

using common::NDArray;
using common::NDArrays;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

NDArrays Model(double v) {
  return {NDArray::FromVector<float>({2}, {static_cast<float>(v), static_cast<float>(2 * v)}).value()};
}

FitResult Result(std::string cid, NDArrays arrays, int64_t n, common::ConfigMap metrics = {}) {
  FitResult r;
  r.client = std::make_shared<ClientProxy>(std::move(cid));
  r.res.status = common::SuccessStatus();
  r.res.parameters = std::move(arrays);
  r.res.num_examples = n;
  r.res.metrics = std::move(metrics);
  return r;
}

StrategyPtr Make(std::string name, common::ConfigMap params = {}) {
  StrategyConfig config;
  config.name = std::move(name);
  config.params = std::move(params);
  auto s = MakeStrategy(std::move(config));
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

class FedAvgTest : public ::testing::Test {
 protected:
  void Connect(int n) {
    for (int i = 0; i < n; ++i) manager_.Register(std::make_shared<ClientProxy>(std::to_string(i)));
  }
  SimpleClientManager manager_{5, absl::Milliseconds(20)};
};

TEST_F(FedAvgTest, MinFitClientsOverridesFraction) {
  FedAvgOptions o;
  o.fraction_fit = 0.1;
  o.min_fit_clients = 3;
  FedAvg s(o);
  EXPECT_EQ(s.NumFitClients(10).first, 3);
  EXPECT_EQ(s.NumFitClients(100).first, 10);
  EXPECT_EQ(s.NumFitClients(39).first, 3);  // int(3.9) = 3
  EXPECT_EQ(s.NumFitClients(10).second, 2);
}

TEST_F(FedAvgTest, ConfigureFitSamplesAndSendsTheHookConfig) {
  Connect(5);
  FedAvgOptions o;
  o.fraction_fit = 0.6;
  o.on_fit_config = [](int64_t round) { return common::ConfigMap{{"server_round", round}}; };
  FedAvg s(o);
  auto params = common::Share(Model(1));
  std::vector<FitInstruction> ins = s.ConfigureFit(4, params, manager_);
  ASSERT_EQ(ins.size(), 3u);
  for (const FitInstruction& i : ins) {
    EXPECT_EQ(i.ins.parameters, params);  // shared, not copied
    EXPECT_THAT(i.ins.config.GetInt("server_round"), ::petal::testing::IsOkAndHolds(4));
  }
}

TEST_F(FedAvgTest, ConfigureFitSkipsWhenTooFewClients) {
  Connect(1);
  FedAvg s(FedAvgOptions{});
  EXPECT_TRUE(s.ConfigureFit(1, common::Share(Model(1)), manager_).empty());
}

TEST_F(FedAvgTest, FractionEvaluateZeroDisablesEvaluation) {
  Connect(4);
  FedAvgOptions o;
  o.fraction_evaluate = 0.0;
  FedAvg s(o);
  EXPECT_TRUE(s.ConfigureEvaluate(1, common::Share(Model(1)), manager_).empty());
  FedAvg t(FedAvgOptions{});
  EXPECT_EQ(t.ConfigureEvaluate(1, common::Share(Model(1)), manager_).size(), 4u);
}

TEST_F(FedAvgTest, FedProxAddsProximalMu) {
  Connect(2);
  StrategyPtr s = Make("fedprox", {{"proximal_mu", 0.25}});
  auto ins = s->ConfigureFit(1, common::Share(Model(1)), manager_);
  ASSERT_EQ(ins.size(), 2u);
  EXPECT_THAT(ins[0].ins.config.GetDouble("proximal_mu"), ::petal::testing::IsOkAndHolds(0.25));
}

TEST_F(FedAvgTest, AggregateFitRefusesMismatchedResultsAsFailures) {
  StrategyPtr s = Make("fedavg");
  std::vector<FitResult> results;
  results.push_back(Result("a", Model(1), 1, {{"acc", 0.5}}));
  results.push_back(Result("b", {NDArray::FromVector<float>({3}, {1, 2, 3}).value()}, 1));
  results.push_back(Result("c", Model(3), 3, {{"acc", 1.0}}));
  PETAL_ASSERT_OK_AND_ASSIGN(FitAggregate agg, s->AggregateFit(1, common::Share(Model(0)), std::move(results), {}));
  ASSERT_TRUE(agg.parameters);
  EXPECT_THAT((*agg.parameters)[0].values<float>(), ElementsAre(2.5f, 5.0f));
  EXPECT_THAT(agg.metrics.GetDouble("acc"), ::petal::testing::IsOkAndHolds(0.875));
}

TEST_F(FedAvgTest, NoResultsOrRefusedFailuresKeepTheModel) {
  StrategyPtr s = Make("fedavg");
  PETAL_ASSERT_OK_AND_ASSIGN(FitAggregate none, s->AggregateFit(1, common::Share(Model(0)), {}, {}));
  EXPECT_FALSE(none.parameters);
  StrategyPtr strict = Make("fedavg", {{"accept_failures", false}});
  std::vector<FitResult> results;
  results.push_back(Result("a", Model(1), 1));
  PETAL_ASSERT_OK_AND_ASSIGN(
      FitAggregate refused,
      strict->AggregateFit(1, common::Share(Model(0)), std::move(results), {{"x", absl::DeadlineExceededError("t")}}));
  EXPECT_FALSE(refused.parameters);
  PETAL_ASSERT_OK_AND_ASSIGN(EvaluateAggregate ev, strict->AggregateEvaluate(1, {}, {}));
  EXPECT_FALSE(ev.loss);
}

TEST_F(FedAvgTest, AggregateEvaluateWeightsLossesAndMetrics) {
  StrategyPtr s = Make("fedavg");
  std::vector<EvaluateResult> results(2);
  results[0].res = {common::SuccessStatus(), 0.5f, 1, {{"hr10", 0.2}}};
  results[1].res = {common::SuccessStatus(), 1.0f, 3, {{"hr10", 0.6}}};
  PETAL_ASSERT_OK_AND_ASSIGN(EvaluateAggregate ev, s->AggregateEvaluate(1, results, {}));
  EXPECT_DOUBLE_EQ(*ev.loss, 0.875);
  EXPECT_DOUBLE_EQ(ev.metrics.GetDouble("hr10").value(), 0.5);
  StrategyPtr quiet = Make("fedavg", {{"evaluate_metrics_aggregation", std::string("none")}});
  PETAL_ASSERT_OK_AND_ASSIGN(EvaluateAggregate ev2, quiet->AggregateEvaluate(1, results, {}));
  EXPECT_TRUE(ev2.metrics.empty());
}

TEST_F(FedAvgTest, InitializeParametersOnceThenForgets) {
  StrategyConfig config;
  config.initial_parameters = Model(7);
  StrategyPtr s = MakeStrategy(std::move(config)).value();
  PETAL_ASSERT_OK_AND_ASSIGN(auto first, s->InitializeParameters(manager_));
  ASSERT_TRUE(first);
  PETAL_ASSERT_OK_AND_ASSIGN(auto second, s->InitializeParameters(manager_));
  EXPECT_FALSE(second);
}

TEST_F(FedAvgTest, CentralizedEvaluationHook) {
  StrategyConfig config;
  config.evaluate_fn = [](int64_t round, const NDArrays& p) -> absl::StatusOr<std::optional<CentralEvaluation>> {
    return CentralEvaluation{static_cast<double>(round) + p.size(), {}};
  };
  StrategyPtr s = MakeStrategy(std::move(config)).value();
  PETAL_ASSERT_OK_AND_ASSIGN(auto ev, s->Evaluate(3, Model(1)));
  ASSERT_TRUE(ev);
  EXPECT_EQ(ev->loss, 4.0);
  PETAL_ASSERT_OK_AND_ASSIGN(auto none, Make("fedavg")->Evaluate(3, Model(1)));
  EXPECT_FALSE(none);
}

TEST(FedOptTest, StateRoundTripContinuesIdentically) {
  for (std::string name : {"fedadam", "fedyogi", "fedadagrad", "fedavgm"}) {
    SCOPED_TRACE(name);
    common::ConfigMap params;
    if (name == "fedavgm") params.Set("server_momentum", 0.9);
    StrategyPtr a = Make(name, params);
    auto global = common::Share(Model(1));
    auto step = [&](Strategy& s, int64_t round, SharedNDArrays g) {
      std::vector<FitResult> r;
      r.push_back(Result("a", Model(1.0 + 0.1 * round), 2));
      r.push_back(Result("b", Model(1.0 - 0.05 * round), 5));
      return common::Share(*s.AggregateFit(round, g, std::move(r), {}).value().parameters);
    };
    global = step(*a, 1, global);
    global = step(*a, 2, global);
    StrategyState state = a->SaveState();
    EXPECT_FALSE(state.arrays.empty());
    StrategyPtr b = Make(name, params);
    ASSERT_THAT(b->LoadState(state), IsOk());
    auto from_a = step(*a, 3, global);
    auto from_b = step(*b, 3, global);
    EXPECT_EQ(*from_a, *from_b);
    // Without the state the continuation differs (the moments matter).
    StrategyPtr fresh = Make(name, params);
    EXPECT_NE(*step(*fresh, 3, global), *from_a);
  }
}

TEST(FedOptTest, LoadStateRejectsForeignState) {
  StrategyPtr s = Make("fedadam");
  StrategyState bad;
  bad.arrays.emplace_back("m.0", Model(1)[0]);
  EXPECT_THAT(s->LoadState(bad), StatusIs(absl::StatusCode::kInvalidArgument));
  bad.arrays.emplace_back("v.1", Model(1)[0]);
  EXPECT_THAT(s->LoadState(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing entry 0")));
  EXPECT_THAT(Make("fedavg")->LoadState(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keeps no state")));
}

TEST(FedOptTest, IntegerModelIsAnAggregationError) {
  StrategyPtr s = Make("fedadam");
  NDArrays ints = {NDArray::FromVector<int64_t>({2}, {1, 2}).value()};
  std::vector<FitResult> r;
  r.push_back(Result("a", ints, 1));
  EXPECT_THAT(s->AggregateFit(1, common::Share(ints), std::move(r), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("floating-point")));
}

TEST(RegistryTest, EveryStrategyIsRegisteredWithDocumentedParams) {
  EXPECT_THAT(StrategyNames(), ElementsAre("fedavg", "fedprox", "fedadagrad", "fedadam", "fedyogi",
                                           "fedavgm", "fedmedian", "fedtrimmedavg", "krum"));
  for (const StrategyInfo& info : Strategies()) {
    EXPECT_FALSE(info.summary.empty());
    for (const ParamSpec& p : info.params) EXPECT_FALSE(p.help.empty()) << info.name << "." << p.name;
    if (info.name == "fedprox") continue;  // proximal_mu is required
    StrategyConfig config;
    config.name = info.name;
    auto s = MakeStrategy(std::move(config));
    ASSERT_THAT(s, IsOk()) << info.name;
    EXPECT_EQ((*s)->name(), info.name);
  }
}

TEST(RegistryTest, FlowerDefaults) {
  auto info = FindStrategy("fedyogi");
  ASSERT_NE(info, nullptr);
  std::map<std::string, double> defaults;
  for (const ParamSpec& p : info->params) {
    if (const double* d = std::get_if<double>(&*p.default_value)) defaults[p.name] = *d;
  }
  EXPECT_EQ(defaults["eta"], 0.01);
  EXPECT_EQ(defaults["eta_l"], 0.0316);
  EXPECT_EQ(defaults["tau"], 1e-3);
  EXPECT_EQ(defaults["beta_1"], 0.9);
  EXPECT_EQ(defaults["beta_2"], 0.99);
  EXPECT_EQ(defaults["fraction_fit"], 1.0);
  auto* fedopt = dynamic_cast<FedOpt*>(Make("fedadam").get());
  ASSERT_NE(fedopt, nullptr);
}

TEST(RegistryTest, ErrorsNameStrategyParameterAndPlace) {
  StrategyConfig unknown;
  unknown.name = "fedsgd";
  EXPECT_THAT(MakeStrategy(std::move(unknown)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown strategy 'fedsgd' (known: fedavg, fedprox")));
  StrategyConfig typo;
  typo.name = "fedadam";
  typo.params.Set("etaa", 0.1);
  typo.where = [](std::string_view name) { return std::string("server.yaml:9"); };
  EXPECT_THAT(MakeStrategy(std::move(typo)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("strategy 'fedadam' has no parameter 'etaa' (server.yaml:9); did you mean 'eta'?")));
  StrategyConfig range;
  range.name = "fedavg";
  range.params.Set("fraction_fit", 1.5);
  EXPECT_THAT(MakeStrategy(std::move(range)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'fraction_fit' = 1.5: must be in [0, 1]")));
  StrategyConfig type;
  type.name = "fedavg";
  type.params.Set("min_fit_clients", 2.5);
  EXPECT_THAT(MakeStrategy(std::move(type)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be an integer")));
  StrategyConfig missing;
  missing.name = "fedprox";
  EXPECT_THAT(MakeStrategy(std::move(missing)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("requires parameter 'proximal_mu'")));
  StrategyConfig choice;
  choice.name = "fedavg";
  choice.params.Set("accumulation", std::string("float32"));
  EXPECT_THAT(MakeStrategy(std::move(choice)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be one of: float64, native")));
  StrategyConfig trimmed;
  trimmed.name = "fedtrimmedavg";
  trimmed.params.Set("beta", 0.5);
  EXPECT_THAT(MakeStrategy(std::move(trimmed)), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("[0, 0.5)")));
  StrategyConfig ints_ok;
  ints_ok.name = "fedadam";
  ints_ok.params.Set("eta", int64_t{1});  // an int is fine for a float parameter
  EXPECT_THAT(MakeStrategy(std::move(ints_ok)), IsOk());
}

TEST(KrumTest, MultiKrumAveragesTheBest) {
  StrategyPtr s = Make("krum", {{"num_clients_to_keep", int64_t{2}}});
  std::vector<FitResult> r;
  r.push_back(Result("a", Model(1.0), 1));
  r.push_back(Result("b", Model(1.2), 3));
  r.push_back(Result("c", Model(50.0), 1));
  PETAL_ASSERT_OK_AND_ASSIGN(FitAggregate agg, s->AggregateFit(1, common::Share({}), std::move(r), {}));
  ASSERT_TRUE(agg.parameters.has_value());
  const NDArrays& best = *agg.parameters;
  EXPECT_THAT(best[0].values<float>()[0], ::testing::FloatEq(1.15f));
  StrategyPtr too_many = Make("krum", {{"num_clients_to_keep", int64_t{5}}});
  std::vector<FitResult> r2;
  r2.push_back(Result("a", Model(1.0), 1));
  EXPECT_THAT(too_many->AggregateFit(1, common::Share({}), std::move(r2), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_clients_to_keep is 5")));
}

}  // namespace
}  // namespace petal::strategy
