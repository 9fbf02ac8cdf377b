#include "client/app/ncf_client.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <string>

#include "client/app/app_config.h"
#include "common/config.h"
#include "common/testing/scratch_path.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/experiment.h"

namespace petal::client {
namespace {

using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;

// A fresh directory under the test temp dir, removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    path_ = ::petal::testing::ScratchPath("ncf_client");
    std::filesystem::remove_all(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

model::DataConfig SmallData() {
  model::DataConfig d;
  d.source = "synthetic";
  d.synthetic.num_users = 60;
  d.synthetic.num_items = 80;
  d.synthetic.num_tags = 10;
  d.synthetic.mean_interactions = 15;
  d.synthetic.min_interactions = 5;
  return d;
}

std::unique_ptr<model::LocalWorkload> MakeWorkload(int32_t partition_id) {
  model::SplitConfig split;
  split.num_negatives = 20;
  model::PartitionOptions parts;
  parts.num_partitions = 2;
  parts.seed = 3;
  absl::StatusOr<model::SplitData> data =
      model::LoadClientData(SmallData(), split, parts, partition_id);
  EXPECT_THAT(data.status(), IsOk());
  model::TagNcfOptions options;
  options.gmf_dim = 8;
  options.mlp_embedding_dim = 8;
  options.tag_dim = 8;
  options.mlp_layers = {16, 8};
  model::TrainConfig train;
  train.batch_size = 64;
  train.lr = 0.01;
  absl::StatusOr<std::unique_ptr<model::LocalWorkload>> w =
      model::LocalWorkload::Create(*std::move(data), options, train, /*seed=*/5, /*threads=*/1);
  EXPECT_THAT(w.status(), IsOk());
  return *std::move(w);
}

std::unique_ptr<NcfClient> MakeClient(int32_t partition_id, const std::string& state_dir = "",
                                      bool dp = false) {
  NcfClientOptions o;
  o.name = "test";
  o.partition_id = partition_id;
  o.state_dir = state_dir;
  o.train.batch_size = 64;
  o.train.lr = 0.01;
  o.privacy.enabled = dp;
  o.privacy.clipping_norm = 0.5;
  o.privacy.noise_multiplier = 2.0;
  o.privacy_seed = 11;
  absl::StatusOr<std::unique_ptr<NcfClient>> c = NcfClient::Create(MakeWorkload(partition_id), o);
  EXPECT_THAT(c.status(), IsOk());
  return *std::move(c);
}

common::NDArrays Initial(NcfClient& client) {
  absl::StatusOr<GetParametersRes> res = client.GetParameters({});
  EXPECT_THAT(res.status(), IsOk());
  return res->parameters;
}

double Distance(const common::NDArrays& a, const common::NDArrays& b) {
  double sq = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    auto x = a[k].values<float>();
    auto y = b[k].values<float>();
    for (size_t i = 0; i < x.size(); ++i) sq += (x[i] - y[i]) * (x[i] - y[i]);
  }
  return std::sqrt(sq);
}

TEST(NcfClientTest, GetParametersGivesTheGlobalArraysInWireOrder) {
  std::unique_ptr<NcfClient> client = MakeClient(0);
  const common::NDArrays arrays = Initial(*client);
  const auto shapes = client->workload().GlobalParameterShapes();
  ASSERT_EQ(arrays.size(), shapes.size());
  for (size_t i = 0; i < arrays.size(); ++i) {
    EXPECT_EQ(arrays[i].shape(), shapes[i]);
    EXPECT_EQ(arrays[i].dtype(), common::DType::kFloat32);
  }
}

TEST(NcfClientTest, FitTrainsWithTheServersConfigAndReportsMetrics) {
  std::unique_ptr<NcfClient> client = MakeClient(0);
  const common::NDArrays initial = Initial(*client);
  FitIns ins{common::Share(initial),
             common::ConfigMap{{"local_epochs", int64_t{2}}, {"lr", 0.02}, {"proximal_mu", 0.1}}};
  PETAL_ASSERT_OK_AND_ASSIGN(FitRes res, client->Fit(ins));
  EXPECT_EQ(res.status.message, "Success");
  EXPECT_EQ(res.num_examples, client->workload().num_train_examples());
  EXPECT_GT(Distance(res.parameters, initial), 0.0);
  EXPECT_THAT(res.metrics.GetInt("local_epochs"), ::petal::testing::IsOkAndHolds(2));
  EXPECT_THAT(res.metrics.GetDouble("lr"), ::petal::testing::IsOkAndHolds(0.02));
  EXPECT_THAT(res.metrics.GetDouble("proximal_mu"), ::petal::testing::IsOkAndHolds(0.1));
  PETAL_ASSERT_OK_AND_ASSIGN(double loss, res.metrics.GetDouble("train_loss"));
  EXPECT_TRUE(std::isfinite(loss));
  PETAL_ASSERT_OK_AND_ASSIGN(double speed, res.metrics.GetDouble("samples_per_second"));
  EXPECT_GT(speed, 0.0);
  EXPECT_FALSE(res.metrics.Contains("dp_epsilon"));
  EXPECT_EQ(client->fits_done(), 1);
}

TEST(NcfClientTest, TheProximalTermShrinksTheUpdate) {
  std::unique_ptr<NcfClient> plain = MakeClient(0);
  std::unique_ptr<NcfClient> prox = MakeClient(0);
  const common::NDArrays initial = Initial(*plain);
  common::ConfigMap config{{"local_epochs", int64_t{3}}, {"lr", 0.05}};
  PETAL_ASSERT_OK_AND_ASSIGN(FitRes a, plain->Fit(FitIns{common::Share(initial), config}));
  config.Set("proximal_mu", 50.0);
  PETAL_ASSERT_OK_AND_ASSIGN(FitRes b, prox->Fit(FitIns{common::Share(initial), config}));
  EXPECT_LT(Distance(b.parameters, initial), Distance(a.parameters, initial));
}

TEST(NcfClientTest, MalformedInstructionsAreRejectedAndChangeNothing) {
  std::unique_ptr<NcfClient> client = MakeClient(0);
  const common::NDArrays initial = Initial(*client);

  common::NDArrays fewer(initial.begin(), initial.end() - 1);
  EXPECT_THAT(client->Fit(FitIns{common::Share(fewer), {}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  common::NDArrays reshaped = initial;
  reshaped[0] = *common::NDArray::Zeros(common::DType::kFloat32, {3});
  EXPECT_THAT(client->Fit(FitIns{common::Share(reshaped), {}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  common::NDArrays doubles = initial;
  doubles[1] = *common::NDArray::Zeros(common::DType::kFloat64, initial[1].shape());
  EXPECT_THAT(client->Evaluate(EvaluateIns{common::Share(doubles), {}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  common::NDArrays nan = initial;
  nan[0].mutable_values<float>()[0] = NAN;
  EXPECT_THAT(client->Fit(FitIns{common::Share(nan), {}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(client->Fit(FitIns{common::Share(initial), {{"lr", std::string("fast")}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lr")));
  EXPECT_THAT(client->Fit(FitIns{common::Share(initial), {{"local_epochs", -1.5}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("local_epochs")));

  const common::NDArrays after = Initial(*client);
  EXPECT_EQ(Distance(after, initial), 0.0);
  EXPECT_EQ(client->fits_done(), 0);
}

TEST(NcfClientTest, EvaluateReportsRankingMetrics) {
  std::unique_ptr<NcfClient> client = MakeClient(1);
  PETAL_ASSERT_OK_AND_ASSIGN(
      EvaluateRes res,
      client->Evaluate(EvaluateIns{common::Share(Initial(*client)), {{"k", int64_t{5}}}}));
  EXPECT_EQ(res.status.code, common::Code::kOk);
  EXPECT_GT(res.num_examples, 0);
  EXPECT_TRUE(std::isfinite(res.loss));
  PETAL_ASSERT_OK_AND_ASSIGN(double hr, res.metrics.GetDouble("hr@5"));
  EXPECT_GE(hr, 0.0);
  EXPECT_LE(hr, 1.0);
  EXPECT_TRUE(res.metrics.Contains("ndcg@5"));
}

TEST(NcfClientTest, LocalStateSurvivesARestartAndBelongsToItsUsers) {
  ScratchDir dir;
  common::NDArrays initial;
  {
    std::unique_ptr<NcfClient> client = MakeClient(0, dir.path(), /*dp=*/true);
    EXPECT_FALSE(client->resumed());
    initial = Initial(*client);
    ASSERT_THAT(client->Fit(FitIns{common::Share(initial), {}}).status(), IsOk());
    EXPECT_TRUE(std::filesystem::exists(model::LocalWorkload::LocalStatePath(dir.path())));
    EXPECT_TRUE(std::filesystem::exists(NcfClient::AccountantPath(dir.path())));
  }
  std::unique_ptr<NcfClient> again = MakeClient(0, dir.path(), /*dp=*/true);
  EXPECT_TRUE(again->resumed());
  EXPECT_EQ(again->accountant().rounds(), 1);
  PETAL_ASSERT_OK_AND_ASSIGN(FitRes res, again->Fit(FitIns{common::Share(initial), {}}));
  EXPECT_THAT(res.metrics.GetInt("dp_rounds"), ::petal::testing::IsOkAndHolds(2));

  // Another partition's users cannot take over this state.
  NcfClientOptions o;
  o.state_dir = dir.path();
  EXPECT_THAT(NcfClient::Create(MakeWorkload(1), o),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(NcfClientTest, LocalDpClipsAddsNoiseAndAccounts) {
  std::unique_ptr<NcfClient> client = MakeClient(0, "", /*dp=*/true);
  const common::NDArrays initial = Initial(*client);
  PETAL_ASSERT_OK_AND_ASSIGN(FitRes res, client->Fit(FitIns{common::Share(initial), {}}));
  RdpAccountant want;
  want.AddRounds(2.0);
  EXPECT_THAT(res.metrics.GetDouble("dp_epsilon"),
              ::petal::testing::IsOkAndHolds(want.Epsilon(1e-5)));
  EXPECT_THAT(res.metrics.GetInt("dp_rounds"), ::petal::testing::IsOkAndHolds(1));
  // Noise of std 2 * 0.5 = 1 on every element: far from the clipped update.
  int64_t elements = 0;
  for (const auto& a : initial) elements += a.size();
  const double distance = Distance(res.parameters, initial);
  EXPECT_NEAR(distance / std::sqrt(static_cast<double>(elements)), 1.0, 0.05);
}

TEST(ClientAppConfigTest, TheShippedConfigIsValid) {
  PETAL_ASSERT_OK_AND_ASSIGN(common::YamlConfig yaml,
                             common::YamlConfig::LoadFile(PETAL_SOURCE_DIR "/configs/client.yaml"));
  ASSERT_THAT(yaml.ApplyOverride("client.partition_id=1"), IsOk());
  PETAL_ASSERT_OK_AND_ASSIGN(ClientAppConfig c, ReadClientAppConfig(yaml));
  EXPECT_EQ(c.partition_id, 1);
  EXPECT_EQ(c.name, "petal-client-1");
  EXPECT_EQ(c.state_dir, "state/client-1");
  EXPECT_EQ(c.connection.name, "petal-client-1");
  EXPECT_EQ(c.connection.server_address, "127.0.0.1:8080");
  EXPECT_EQ(c.connection.max_message_length, kFlowerMaxMessageLength);
  EXPECT_FALSE(c.privacy.enabled);
  EXPECT_EQ(c.fleet.api, fleet::FleetApiKind::kHttp);
  EXPECT_EQ(c.fleet.heartbeat_interval, absl::Seconds(30));
}

TEST(ClientAppConfigTest, FleetSectionSelectsTheFleetApiBinding) {
  PETAL_ASSERT_OK_AND_ASSIGN(
      common::YamlConfig yaml,
      common::YamlConfig::Parse("server:\n  transport: grpc-rere\n  address: 127.0.0.1:9092\n"
                                "  fleet: {api: grpc, heartbeat_interval_s: 12, poll_interval_s: 0.5}\n",
                                "f.yaml"));
  PETAL_ASSERT_OK_AND_ASSIGN(ClientAppConfig c, ReadClientAppConfig(yaml));
  EXPECT_EQ(c.connection.transport, TransportKind::kGrpcRere);
  EXPECT_EQ(c.fleet.api, fleet::FleetApiKind::kGrpc);
  EXPECT_EQ(c.fleet.heartbeat_interval, absl::Seconds(12));
  EXPECT_EQ(c.fleet.poll_interval, absl::Milliseconds(500));
}

TEST(ClientAppConfigTest, BadValuesFailNamingTheKey) {
  auto read = [](const std::string& text) {
    absl::StatusOr<common::YamlConfig> yaml = common::YamlConfig::Parse(text, "c.yaml");
    if (!yaml.ok()) return yaml.status();
    return ReadClientAppConfig(*yaml).status();
  };
  EXPECT_THAT(read("client: {partition_id: 3}\npartition: {num_partitions: 2}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("client.partition_id")));
  EXPECT_THAT(read("privacy: {enabled: true, delta: 2}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("privacy.delta")));
  EXPECT_THAT(read("privacy: {noise_multiplier: 0}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("privacy.noise_multiplier")));
  EXPECT_THAT(read("server: {address: ''}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server_address")));
  EXPECT_THAT(read("server: {fleet: {api: rest}}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server.fleet.api")));
  EXPECT_THAT(read("server: {fleet: {heartbeat_interval_s: 5}}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("server.fleet.heartbeat_interval_s")));
  EXPECT_THAT(read("trian: {lr: 1}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("trian")));
}

}  // namespace
}  // namespace petal::client
