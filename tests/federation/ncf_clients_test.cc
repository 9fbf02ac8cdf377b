#include "client/sim/ncf_clients.h"

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/experiment.h"
#include "strategy/registry.h"

namespace petal::sim {
namespace {

namespace fs = std::filesystem;
using common::ConfigMap;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

// A small synthetic federation, as configs/federation/demo/client.yaml shaped.
client::ClientAppConfig Config(model::PartitionScheme scheme) {
  client::ClientAppConfig c;
  c.data.source = "synthetic";
  c.data.synthetic.num_users = 60;
  c.data.synthetic.num_items = 80;
  c.data.synthetic.num_tags = 10;
  c.data.synthetic.mean_interactions = 15;
  c.data.synthetic.min_interactions = 5;
  c.split.num_negatives = 20;
  c.partition.scheme = scheme;
  c.partition.alpha = 0.5;
  c.partition.seed = 3;
  c.model.gmf_dim = 8;
  c.model.mlp_embedding_dim = 8;
  c.model.tag_dim = 8;
  c.model.mlp_layers = {16, 8};
  c.train.batch_size = 64;
  c.eval.full_catalog = false;
  return c;
}

class NcfClientPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::petal::testing::ScratchPath("ncf_pool");
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::string State() const { return (dir_ / "state").string(); }
  fs::path dir_;
};

common::FitIns FitWith(const common::NDArrays& global) {
  common::FitIns ins;
  ins.parameters = common::Share(global);
  ins.config.SetInt("local_epochs", 1);
  return ins;
}

TEST_F(NcfClientPoolTest, VirtualClientsHoldWhatEachPetalClientWouldLoad) {
  client::ClientAppConfig config = Config(model::PartitionScheme::kDirichlet);
  absl::StatusOr<std::unique_ptr<NcfClientPool>> pool = NcfClientPool::Create(config, 3, "");
  ASSERT_THAT(pool.status(), IsOk());
  ASSERT_EQ((*pool)->num_clients(), 3);
  model::PartitionOptions parts = config.partition;
  parts.num_partitions = 3;
  std::set<int32_t> all;
  int64_t interactions = 0;
  for (int32_t i = 0; i < 3; ++i) {
    absl::StatusOr<model::SplitData> own =
        model::LoadClientData(config.data, config.split, parts, i);
    ASSERT_THAT(own.status(), IsOk());
    const model::SplitData& virt = (*pool)->partition(i);
    EXPECT_EQ(virt.users, own->users) << "client " << i;
    EXPECT_EQ(virt.train.items, own->train.items);
    EXPECT_EQ(virt.ranking.size(), own->ranking.size());
    all.insert(virt.users.begin(), virt.users.end());
    interactions += static_cast<int64_t>(own->train.size() + own->test.size());
  }
  EXPECT_EQ(all.size(), 60u);
  EXPECT_EQ((*pool)->total_interactions(), interactions);
  // The partitions share one catalog.
  EXPECT_EQ((*pool)->partition(0).catalog.get(), (*pool)->partition(2).catalog.get());
}

TEST_F(NcfClientPoolTest, LocalStateCarriesUserEmbeddingsFromOneVisitToTheNext) {
  client::ClientAppConfig config = Config(model::PartitionScheme::kIid);
  auto stateful = NcfClientPool::Create(config, 2, State());
  auto stateless = NcfClientPool::Create(config, 2, "");
  ASSERT_THAT(stateful.status(), IsOk());
  ASSERT_THAT(stateless.status(), IsOk());
  auto first = (*stateful)->Make(1);
  ASSERT_THAT(first.status(), IsOk());
  absl::StatusOr<common::GetParametersRes> global = (*first)->GetParameters({});
  ASSERT_THAT(global.status(), IsOk());
  const common::FitIns ins = FitWith(global->parameters);

  absl::StatusOr<common::FitRes> a1 = (*first)->Fit(ins);
  ASSERT_THAT(a1.status(), IsOk());
  EXPECT_TRUE(fs::exists(fs::path(NcfClientPool::StateDir(State(), 1)) / "local_state.npz"));
  EXPECT_FALSE(fs::exists(NcfClientPool::StateDir(State(), 0)));
  auto second = (*stateful)->Make(1);  // a new object: the state comes from the folder
  ASSERT_THAT(second.status(), IsOk());
  absl::StatusOr<common::FitRes> a2 = (*second)->Fit(ins);
  ASSERT_THAT(a2.status(), IsOk());
  // Trained user embeddings change the next update from the same global model.
  EXPECT_NE(a1->parameters[0].bytes(), a2->parameters[0].bytes());

  auto fresh1 = (*stateless)->Make(1);
  auto fresh2 = (*stateless)->Make(1);
  ASSERT_THAT(fresh1.status(), IsOk());
  ASSERT_THAT(fresh2.status(), IsOk());
  absl::StatusOr<common::FitRes> b1 = (*fresh1)->Fit(ins);
  absl::StatusOr<common::FitRes> b2 = (*fresh2)->Fit(ins);
  ASSERT_THAT(b1.status(), IsOk());
  ASSERT_THAT(b2.status(), IsOk());
  EXPECT_EQ(b1->parameters[0].bytes(), b2->parameters[0].bytes());
  EXPECT_EQ(b1->parameters[0].bytes(), a1->parameters[0].bytes());  // same first visit
}

TEST_F(NcfClientPoolTest, BadIndicesAndConfigsAreErrors) {
  client::ClientAppConfig config = Config(model::PartitionScheme::kIid);
  auto pool = NcfClientPool::Create(config, 2, "");
  ASSERT_THAT(pool.status(), IsOk());
  EXPECT_THAT((*pool)->Make(2).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2")));
  EXPECT_THAT((*pool)->Make(-1).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NcfClientPool::Create(config, 0, "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(NcfClientPool::Create(config, 61, "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));  // more partitions than users
  client::ClientAppConfig per_user = Config(model::PartitionScheme::kPerUser);
  EXPECT_THAT(NcfClientPool::Create(per_user, 59, "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));  // per_user needs one per user
}

// One client per user with sampling: the cross-device setting, small.
absl::StatusOr<SimulationResult> CrossDevice(const std::string& state, int32_t threads) {
  client::ClientAppConfig config = Config(model::PartitionScheme::kPerUser);
  PETAL_ASSIGN_OR_RETURN(auto pool, NcfClientPool::Create(config, 60, state));
  strategy::StrategyConfig sc;
  sc.name = "fedavg";
  sc.params.Set("fraction_fit", 0.2);
  sc.params.SetInt("min_fit_clients", 2);
  sc.params.SetInt("min_evaluate_clients", 60);
  sc.params.SetInt("min_available_clients", 60);
  sc.on_fit_config = [](int64_t round) {
    ConfigMap c;
    c.SetInt("local_epochs", 2);
    c.SetInt("server_round", round);
    return c;
  };
  PETAL_ASSIGN_OR_RETURN(strategy::StrategyPtr strategy, strategy::MakeStrategy(std::move(sc)));
  SimulationOptions o;
  o.num_clients = 60;
  o.num_rounds = 3;
  o.threads = threads;
  o.evaluate_every = 3;
  o.seed = 5;
  Simulation sim(o, std::move(strategy), pool->Factory());
  return sim.Run();
}

TEST_F(NcfClientPoolTest, CrossDeviceSimulationIsDeterministicAcrossThreadCounts) {
  absl::StatusOr<SimulationResult> one = CrossDevice((dir_ / "one").string(), 1);
  absl::StatusOr<SimulationResult> three = CrossDevice((dir_ / "three").string(), 3);
  ASSERT_THAT(one.status(), IsOk());
  ASSERT_THAT(three.status(), IsOk());
  ASSERT_EQ(one->history.rounds().size(), 3u);
  for (const server::RoundRecord& r : one->history.rounds()) {
    EXPECT_EQ(r.fit_sampled, 12);  // 20 % of 60
    EXPECT_EQ(r.fit_results, 12);
    EXPECT_EQ(r.evaluate_sampled, r.round == 3 ? 60 : 0);
  }
  const server::RoundRecord& last = one->history.rounds().back();
  EXPECT_EQ(last.evaluate_results, 60);
  absl::StatusOr<double> hr = last.evaluate_metrics.GetDouble("hr@10");
  ASSERT_THAT(hr.status(), IsOk());
  EXPECT_GT(*hr, 0.0);
  EXPECT_LE(*hr, 1.0);
  // Same seeds, any thread count: the same model, bit for bit.
  ASSERT_EQ(one->parameters->size(), three->parameters->size());
  for (size_t i = 0; i < one->parameters->size(); ++i) {
    EXPECT_EQ((*one->parameters)[i].bytes(), (*three->parameters)[i].bytes()) << "array " << i;
  }
  EXPECT_EQ(last.evaluate_metrics.GetDouble("hr@10").value(),
            three->history.rounds().back().evaluate_metrics.GetDouble("hr@10").value());
  // Only the sampled users have state: 3 rounds x 12 draws out of 60.
  int with_state = 0;
  for (int32_t i = 0; i < 60; ++i) {
    with_state += fs::exists(fs::path(NcfClientPool::StateDir((dir_ / "one").string(), i)) /
                             "local_state.npz");
  }
  EXPECT_GE(with_state, 12);
  EXPECT_LE(with_state, 36);
  EXPECT_LE(one->max_live_clients, 1);
  EXPECT_LE(three->max_live_clients, 3);
}

}  // namespace
}  // namespace petal::sim
