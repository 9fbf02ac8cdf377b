#include "server/server.h"

#include <unistd.h>

#include <fmt/format.h>
#include <filesystem>
#include <future>
#include <thread>

#include "common/npz.h"
#include "common/serde.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/checkpoint.h"
#include "strategy/registry.h"
#include "fake_connection.h"

namespace petal::server {
namespace {

namespace fs = std::filesystem;
using common::NDArray;
using common::NDArrays;
using flwr::proto::ClientMessage;
using flwr::proto::ServerMessage;
using ::petal::testing::IsOk;
using ::petal::testing::StatusIs;
using ::testing::HasSubstr;
using testing::FakeConnection;

NDArrays Model(float a, float b) {
  return {NDArray::FromVector<float>({2}, {a, b}).value(), NDArray::FromVector<double>({1}, {a + b}).value()};
}

// The well-behaved client k: w = p + (k + 1), n = k + 1; loss = k, n = 1.
std::optional<ClientMessage> Honest(int k, const ServerMessage& m) {
  ClientMessage reply;
  if (m.has_fit_ins()) {
    ServerMessage::FitIns ins = m.fit_ins();
    auto params = common::ParametersToNDArrays(ins.parameters()).value();
    for (NDArray& a : params) {
      if (a.dtype() == common::DType::kFloat32) {
        for (float& v : a.mutable_values<float>()) v += static_cast<float>(k + 1);
      } else {
        for (double& v : a.mutable_values<double>()) v += k + 1;
      }
    }
    common::FitRes res{common::SuccessStatus(), std::move(params), k + 1, {{"k", int64_t{k}}}};
    common::FitResToProto(res, reply.mutable_fit_res());
  } else if (m.has_evaluate_ins()) {
    common::EvaluateRes res{common::SuccessStatus(), static_cast<float>(k), 1, {}};
    common::EvaluateResToProto(res, reply.mutable_evaluate_res());
  } else if (m.has_get_parameters_ins()) {
    common::GetParametersRes res{common::SuccessStatus(), Model(10, 20)};
    common::GetParametersResToProto(res, reply.mutable_get_parameters_res());
  } else if (m.has_reconnect_ins()) {
    reply.mutable_disconnect_res()->set_reason(flwr::proto::Reason::RECONNECT);
  }
  return reply;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("petal_server_test_{}_{}", ::getpid(),
                                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::shared_ptr<FakeConnection> Add(strategy::ClientManager& m, std::string cid, FakeConnection::Handler h) {
    auto c = std::make_shared<FakeConnection>(std::move(cid), std::move(h));
    m.Register(c);
    return c;
  }

  strategy::StrategyPtr Strategy(std::string name, common::ConfigMap params = {},
                                 std::optional<NDArrays> initial = Model(1, 2)) {
    strategy::StrategyConfig c;
    c.name = std::move(name);
    c.params = std::move(params);
    c.initial_parameters = std::move(initial);
    c.on_fit_config = [](int64_t r) { return common::ConfigMap{{"server_round", r}}; };
    return strategy::MakeStrategy(std::move(c)).value();
  }

  ServerOptions Options(int64_t rounds) {
    ServerOptions o;
    o.num_rounds = rounds;
    o.round_timeout = absl::Seconds(20);
    o.reconnect_timeout = absl::Seconds(5);
    o.output_dir = (dir_ / "out").string();
    o.checkpoint_dir = (dir_ / "ckpt").string();
    return o;
  }

  fs::path dir_;
};

TEST_F(ServerTest, RunsRoundsAggregatesAndSavesEverything) {
  strategy::SimpleClientManager manager(1, absl::Seconds(5));
  std::vector<std::shared_ptr<FakeConnection>> clients;
  for (int k = 0; k < 3; ++k) {
    clients.push_back(Add(manager, fmt::format("c{}", k), [k](const ServerMessage& m) { return Honest(k, m); }));
  }
  Server server(Options(2), Strategy("fedavg", {{"min_available_clients", int64_t{3}}}), manager);
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult result, server.Run());
  EXPECT_EQ(result.outcome, RunOutcome::kCompleted);
  EXPECT_EQ(result.last_round, 2);
  // Each round adds the weighted mean of (k + 1) with weights (k + 1): 14/6.
  const float step = 14.0f / 6.0f;
  EXPECT_FLOAT_EQ((*result.parameters)[0].values<float>()[0], 1 + 2 * step);
  EXPECT_DOUBLE_EQ((*result.parameters)[1].values<double>()[0], 3 + 2 * (14.0 / 6.0));
  ASSERT_EQ(result.history.rounds().size(), 2u);
  const RoundRecord& r1 = result.history.rounds()[0];
  EXPECT_EQ(r1.fit_sampled, 3);
  EXPECT_EQ(r1.fit_results, 3);
  EXPECT_TRUE(r1.model_updated);
  EXPECT_DOUBLE_EQ(r1.loss_distributed.value(), 1.0);  // mean of 0, 1, 2
  EXPECT_DOUBLE_EQ(r1.fit_metrics.GetDouble("k").value(), 8.0 / 6.0);
  for (const auto& c : clients) {
    std::vector<ServerMessage> got = c->received();
    ASSERT_EQ(got.size(), 5u);  // fit, evaluate, fit, evaluate, reconnect
    EXPECT_TRUE(got[0].has_fit_ins());
    EXPECT_EQ(got[0].fit_ins().config().at("server_round").sint64(), 1);
    EXPECT_TRUE(got[1].has_evaluate_ins());
    EXPECT_TRUE(got[4].has_reconnect_ins());
    EXPECT_EQ(got[4].reconnect_ins().seconds(), 0);
    // The receive budget is charged a fit reply's size as the instruction's
    // (the model travels both ways), an evaluate reply's as small.
    std::vector<size_t> charged = c->charged();
    ASSERT_EQ(charged.size(), 5u);
    EXPECT_EQ(charged[0], got[0].ByteSizeLong());
    EXPECT_EQ(charged[2], got[2].ByteSizeLong());
    EXPECT_LE(charged[1], 1024u);
    EXPECT_LE(charged[4], 1024u);
  }
  // Outputs: model.npz (arr_0, arr_1), history.json/csv, checkpoint of round 2.
  PETAL_ASSERT_OK_AND_ASSIGN(common::NamedArrays model, common::ReadNpz((dir_ / "out" / "model.npz").string()));
  ASSERT_EQ(model.size(), 2u);
  EXPECT_EQ(model[0].first, "arr_0");
  EXPECT_EQ(model[0].second, (*result.parameters)[0]);
  EXPECT_TRUE(fs::exists(dir_ / "out" / "history.json"));
  EXPECT_TRUE(fs::exists(dir_ / "out" / "history.csv"));
  PETAL_ASSERT_OK_AND_ASSIGN(Checkpoint ckpt, LoadCheckpoint((dir_ / "ckpt").string()));
  EXPECT_EQ(ckpt.round, 2);
  EXPECT_EQ(ckpt.parameters, *result.parameters);
}

TEST_F(ServerTest, LateBrokenAndInvalidRepliesAreFailures) {
  // Evaluation then waits (1 s) for a 7th client and samples the 6 left.
  strategy::SimpleClientManager manager(1, absl::Seconds(1));
  auto good = Add(manager, "good", [](const ServerMessage& m) { return Honest(0, m); });
  auto silent = Add(manager, "silent", [](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (m.has_fit_ins()) return std::nullopt;
    return Honest(1, m);
  });
  auto wrong_kind = Add(manager, "wrong", [](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (!m.has_fit_ins()) return Honest(2, m);
    ClientMessage reply;
    common::EvaluateResToProto({common::SuccessStatus(), 1.0f, 1, {}}, reply.mutable_evaluate_res());
    return reply;
  });
  auto nan = Add(manager, "nan", [](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (!m.has_fit_ins()) return Honest(3, m);
    ClientMessage reply;
    common::FitResToProto({common::SuccessStatus(), Model(NAN, 1), 5, {}}, reply.mutable_fit_res());
    return reply;
  });
  auto shape = Add(manager, "shape", [](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (!m.has_fit_ins()) return Honest(4, m);
    ClientMessage reply;
    common::FitResToProto({common::SuccessStatus(), {NDArray::FromVector<float>({3}, {1, 2, 3}).value()}, 5, {}},
                          reply.mutable_fit_res());
    return reply;
  });
  auto refused = Add(manager, "refused", [](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (!m.has_fit_ins()) return Honest(5, m);
    ClientMessage reply;
    reply.mutable_fit_res()->mutable_status()->set_code(flwr::proto::Code::FIT_NOT_IMPLEMENTED);
    return reply;
  });
  auto zero = Add(manager, "zero", [](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (!m.has_fit_ins()) return Honest(6, m);
    ClientMessage reply;
    common::FitResToProto({common::SuccessStatus(), Model(1, 1), 0, {}}, reply.mutable_fit_res());
    return reply;
  });
  ServerOptions options = Options(1);
  options.round_timeout = absl::Milliseconds(300);
  Server server(options, Strategy("fedavg", {{"min_available_clients", int64_t{7}}}), manager);
  const absl::Time start = absl::Now();
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult result, server.Run());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  const RoundRecord& r = result.history.rounds()[0];
  EXPECT_EQ(r.fit_results, 1);
  EXPECT_EQ(r.fit_failures, 6);
  // Only the good client's update reached the model: 1 + 1 and 2 + 1.
  EXPECT_EQ((*result.parameters)[0].values<float>()[0], 2.0f);
  EXPECT_EQ((*result.parameters)[0].values<float>()[1], 3.0f);
  std::map<std::string, std::string> why;
  for (const FailureRecord& f : r.failures) why[f.cid] = f.error;
  EXPECT_THAT(why["silent"], HasSubstr("DEADLINE_EXCEEDED: Timeout of 0.3sec was exceeded."));
  EXPECT_THAT(why["wrong"], HasSubstr("expected fit_res in reply, got evaluate_res"));
  EXPECT_THAT(why["nan"], HasSubstr("non-finite"));
  EXPECT_THAT(why["shape"], HasSubstr("expected 2 arrays, got 1"));
  EXPECT_THAT(why["refused"], HasSubstr("FIT_NOT_IMPLEMENTED"));
  EXPECT_THAT(why["zero"], HasSubstr("num_examples must be > 0"));
  // The late client's stream was closed with Flower's timeout status, and it left the pool.
  EXPECT_THAT(silent->closed(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(manager.NumAvailable(), 6);
}

TEST_F(ServerTest, RefusedFailuresKeepTheModel) {
  strategy::SimpleClientManager manager(1, absl::Seconds(5));
  Add(manager, "a", [](const ServerMessage& m) { return Honest(0, m); });
  Add(manager, "b", [](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (m.has_fit_ins()) {
      ClientMessage reply;
      reply.mutable_fit_res()->mutable_status()->set_code(flwr::proto::Code::FIT_NOT_IMPLEMENTED);
      return reply;
    }
    return Honest(1, m);
  });
  Server server(Options(1), Strategy("fedavg", {{"accept_failures", false}}), manager);
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult result, server.Run());
  EXPECT_FALSE(result.history.rounds()[0].model_updated);
  EXPECT_EQ(*result.parameters, Model(1, 2));
}

TEST_F(ServerTest, InitialParametersFromOneClient) {
  strategy::SimpleClientManager manager(1, absl::Seconds(5));
  auto a = Add(manager, "a", [](const ServerMessage& m) { return Honest(0, m); });
  auto b = Add(manager, "b", [](const ServerMessage& m) { return Honest(1, m); });
  Server server(Options(1), Strategy("fedavg", {}, std::nullopt), manager);
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult result, server.Run());
  int asked = 0;
  for (const auto& c : {a, b}) {
    for (const ServerMessage& m : c->received()) asked += m.has_get_parameters_ins();
  }
  EXPECT_EQ(asked, 1);
  // Model(10, 20) plus the weighted mean of 1 and 2 (weights 1, 2): 5/3.
  EXPECT_FLOAT_EQ((*result.parameters)[0].values<float>()[0], 10 + 5.0f / 3.0f);
}

TEST_F(ServerTest, NoInitialParametersIsAnError) {
  strategy::SimpleClientManager manager(1, absl::Milliseconds(100));
  Server server(Options(1), Strategy("fedavg", {}, std::nullopt), manager);
  EXPECT_THAT(server.Run(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no client connected")));
}

TEST_F(ServerTest, ResumeContinuesExactlyLikeAnUninterruptedRun) {
  auto run = [&](int64_t rounds, bool resume, const std::string& ckpt, const std::string& out) {
    strategy::SimpleClientManager manager(1, absl::Seconds(5));
    std::vector<std::shared_ptr<FakeConnection>> clients;
    for (int k = 0; k < 3; ++k) {
      clients.push_back(Add(manager, fmt::format("c{}", k), [k](const ServerMessage& m) { return Honest(k, m); }));
    }
    ServerOptions o = Options(rounds);
    o.resume = resume;
    o.checkpoint_dir = (dir_ / ckpt).string();
    o.output_dir = (dir_ / out).string();
    Server server(o, Strategy("fedadam", {{"min_available_clients", int64_t{3}}}), manager);
    return server.Run();
  };
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult full, run(4, false, "full", "full-out"));
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult first, run(2, false, "split", "split-out"));
  EXPECT_EQ(first.last_round, 2);
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult rest, run(4, true, "split", "split-out"));
  EXPECT_EQ(rest.last_round, 4);
  EXPECT_EQ(*rest.parameters, *full.parameters);
  ASSERT_EQ(rest.history.rounds().size(), 4u);
  EXPECT_EQ(rest.history.rounds()[3].loss_distributed, full.history.rounds()[3].loss_distributed);
  // Resuming with another strategy is refused.
  strategy::SimpleClientManager manager(1, absl::Seconds(1));
  ServerOptions o = Options(5);
  o.resume = true;
  o.checkpoint_dir = (dir_ / "split").string();
  Server other(o, Strategy("fedyogi"), manager);
  EXPECT_THAT(other.Run(), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'fedadam'")));
  Server missing([&] {
    ServerOptions m = Options(1);
    m.resume = true;
    m.checkpoint_dir = (dir_ / "nothing").string();
    return m;
  }(), Strategy("fedadam"), manager);
  EXPECT_THAT(missing.Run(), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(ServerTest, StopAbandonsTheRoundInFlightAndKeepsTheLastCheckpoint) {
  strategy::SimpleClientManager manager(1, absl::Seconds(5));
  std::promise<void> round2_started;
  std::atomic<bool> signalled{false};
  Add(manager, "a", [](const ServerMessage& m) { return Honest(0, m); });
  Add(manager, "b", [&](const ServerMessage& m) -> std::optional<ClientMessage> {
    if (m.has_fit_ins() && m.fit_ins().config().at("server_round").sint64() == 2) {
      if (!signalled.exchange(true)) round2_started.set_value();
      return std::nullopt;  // never answers round 2
    }
    return Honest(1, m);
  });
  ServerOptions o = Options(3);
  o.round_timeout.reset();  // would wait forever
  Server server(o, Strategy("fedavg"), manager);
  std::thread stopper([&] {
    round2_started.get_future().wait();
    server.RequestStop();
  });
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult result, server.Run());
  stopper.join();
  EXPECT_EQ(result.outcome, RunOutcome::kStopped);
  EXPECT_EQ(result.last_round, 1);
  EXPECT_EQ(result.history.rounds().size(), 1u);
  PETAL_ASSERT_OK_AND_ASSIGN(Checkpoint ckpt, LoadCheckpoint((dir_ / "ckpt").string()));
  EXPECT_EQ(ckpt.round, 1);
  EXPECT_EQ(ckpt.parameters, *result.parameters);
  PETAL_ASSERT_OK_AND_ASSIGN(common::NamedArrays model, common::ReadNpz((dir_ / "out" / "model.npz").string()));
  EXPECT_EQ(model[0].second, (*result.parameters)[0]);
}

TEST_F(ServerTest, StopWhileWaitingForClients) {
  strategy::SimpleClientManager manager(1, absl::Hours(1));
  Server server(Options(2), Strategy("fedavg"), manager);
  std::thread stopper([&] { server.RequestStop(); });
  PETAL_ASSERT_OK_AND_ASSIGN(RunResult result, server.Run());
  stopper.join();
  EXPECT_EQ(result.outcome, RunOutcome::kStopped);
}

}  // namespace
}  // namespace petal::server
